//! Getting the signing key: fetch or read the JWK set, pick the key by exact
//! `kid`, check it fits the algorithm, build the signer. No message here ever
//! contains key material.

use std::time::{Duration, Instant};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use josekit::jwk::Jwk;
use sepia_plugin_api::{FetchRequest, Host};
use serde_json::{json, Value};

use crate::{
    algorithm::Signer,
    settings::{KeySource, Settings},
};

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

/// Why one attempt to get the key failed.
#[derive(Debug)]
pub struct KeyError {
    pub message: String,
    /// Whether trying again may help (network trouble, 5xx).
    pub retryable: bool,
}

impl KeyError {
    fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}

const FETCH_TIMEOUT_MS: u64 = 5_000;

fn fetch_url(url: &str, settings: &Settings, host: Option<&Host>) -> Result<Vec<u8>, KeyError> {
    let host =
        host.ok_or_else(|| KeyError::fatal("no gateway host services to fetch the key set with"))?;
    let mut request = FetchRequest::get(url);
    request.timeout_ms = FETCH_TIMEOUT_MS;
    request.tls = settings.tls.clone();
    let response = host
        .fetch(request)
        .map_err(|e| KeyError::transient(format!("fetching {url} failed: {}", e.message())))?;
    match response.status {
        200 => {}
        status @ 500..=599 => return Err(KeyError::transient(format!("{url} answered {status}"))),
        status => {
            return Err(KeyError::fatal(format!(
                "{url} answered {status}, not a JWK set"
            )))
        }
    }
    let content_type = response
        .header("content-type")
        .and_then(|h| h.value_str())
        .unwrap_or("(none)")
        .to_ascii_lowercase();
    if !content_type.contains("json") {
        return Err(KeyError::fatal(format!(
            "{url} answered with content type {content_type}, not a JSON JWK set"
        )));
    }
    Ok(response.body.into_vec())
}

fn read_set(settings: &Settings, host: Option<&Host>) -> Result<Vec<u8>, KeyError> {
    match &settings.source {
        KeySource::Url(url) => fetch_url(url, settings, host),
        KeySource::File(path) => std::fs::read(path).map_err(|e| {
            KeyError::fatal(format!("cannot read the key set {}: {e}", path.display()))
        }),
    }
}

fn source_name(settings: &Settings) -> String {
    match &settings.source {
        KeySource::Url(url) => url.clone(),
        KeySource::File(path) => path.display().to_string(),
    }
}

/// Picks key `kid` from a JWK set body and builds its signer.
pub fn select(body: &[u8], settings: &Settings) -> Result<SigningKey, KeyError> {
    let source = source_name(settings);
    let set: Value = serde_json::from_slice(body)
        .map_err(|e| KeyError::fatal(format!("the key set from {source} is not JSON: {e}")))?;
    let keys = set.get("keys").and_then(Value::as_array).ok_or_else(|| {
        KeyError::fatal(format!("the key set from {source} has no \"keys\" array"))
    })?;
    let kid = settings.kid.as_str();
    let found = keys
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid));
    let Some(Value::Object(map)) = found else {
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
    let body = read_set(settings, host)?;
    select(&body, settings)
}

/// Start-up: retries transient failures with backoff until
/// `jwk_startup_timeout`, then gives up with the last reason.
pub fn load_key_at_start(settings: &Settings, host: Option<&Host>) -> Result<SigningKey, String> {
    let deadline = Instant::now() + settings.startup_timeout;
    let mut wait = Duration::from_millis(200);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match load_key(settings, host) {
            Ok(key) => return Ok(key),
            Err(e) if !e.retryable => return Err(e.message),
            Err(e) => {
                if Instant::now() + wait > deadline {
                    return Err(format!(
                        "{} (gave up after {attempts} attempt(s) in {:?}; raise jwk_startup_timeout to wait longer)",
                        e.message, settings.startup_timeout
                    ));
                }
                tracing::warn!(error = %e.message, retry_in = ?wait, "key set not available yet");
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}
