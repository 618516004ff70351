//! Getting the signing key: fetch or read the JWK set, pick the key by exact
//! `kid`, check it fits the algorithm, build the signer. No message here ever
//! contains key material.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use josekit::jwk::Jwk;
use sepia_jose::{set_keys, KeyError, Signer};
use sepia_plugin_api::Host;
use serde_json::{json, Value};

use crate::settings::Settings;

/// A key ready to sign with.
pub struct SigningKey {
    pub signer: Signer,
    /// `b64url(protected header)`, the same for every token of this key.
    pub header_b64: String,
    /// The public half as a JWK, for asymmetric keys.
    pub public_jwk: Option<Value>,
}

/// Members that carry private key material in any key type.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn public_half(jwk: &Jwk, settings: &Settings) -> Option<Value> {
    if !settings.alg.is_asymmetric() {
        return None;
    }
    let public = jwk.to_public_key().ok()?;
    let mut map = public.as_ref().clone();
    for member in PRIVATE_MEMBERS {
        map.remove(*member);
    }
    map.insert("kid".into(), Value::String(settings.kid.clone()));
    map.insert("alg".into(), Value::String(settings.alg.name().into()));
    map.insert("use".into(), Value::String("sig".into()));
    Some(Value::Object(map))
}

/// Picks key `kid` from a JWK set body and builds its signer.
pub fn select(body: &[u8], settings: &Settings) -> Result<SigningKey, KeyError> {
    let source = settings.keys.source.name();
    let keys = set_keys(body, &settings.keys.source)?;
    let kid = settings.kid.as_str();
    let found = keys
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid));
    let Some(map) = found else {
        let kids: Vec<&str> = keys
            .iter()
            .filter_map(|k| k.get("kid").and_then(Value::as_str))
            .collect();
        return Err(KeyError::fatal(format!(
            "key \"{kid}\" is not in the key set from {source} (it has: {})",
            if kids.is_empty() {
                "no kids".to_owned()
            } else {
                kids.join(", ")
            }
        )));
    };
    let jwk = Jwk::from_map(map.clone()).map_err(|e| {
        KeyError::fatal(format!(
            "key \"{kid}\" from {source} is not a valid JWK: {e}"
        ))
    })?;
    let refuse = |why: String| {
        KeyError::fatal(format!(
            "key \"{kid}\" cannot sign {}: {why}",
            settings.alg.name()
        ))
    };
    settings.alg.check_key(&jwk).map_err(refuse)?;
    let signer = settings.alg.signer(&jwk).map_err(refuse)?;
    // krakend-jose 1.4 (version 1 and 2 files) writes {"alg","kid"}; the
    // current one adds "typ".
    let header = match &settings.typ {
        Some(typ) => json!({"alg": settings.alg.name(), "kid": kid, "typ": typ}),
        None => json!({"alg": settings.alg.name(), "kid": kid}),
    };
    Ok(SigningKey {
        signer,
        header_b64: URL_SAFE_NO_PAD.encode(sepia_json::to_vec(&header)),
        public_jwk: public_half(&jwk, settings),
    })
}

/// One attempt: read the set and pick the key.
pub fn load_key(settings: &Settings, host: Option<&Host>) -> Result<SigningKey, KeyError> {
    let body = settings.keys.read_set(host)?;
    select(&body, settings)
}

/// Start-up: retries transient failures until `jwk_startup_timeout`.
pub fn load_key_at_start(settings: &Settings, host: Option<&Host>) -> Result<SigningKey, String> {
    settings
        .keys
        .load_at_start(host, |body| select(body, settings))
}
