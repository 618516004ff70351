//! Checking one compact JWS token as go-auth0 and go-jose do under
//! krakend-jose: the header's algorithm must be the configured one (never
//! chosen by the token), the key is found by the configured identity, the
//! signature must verify, and the registered claims must be well typed and
//! within their window.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{Map, Value};

use crate::{
    key_store::KeyStore,
    settings::{KeyIdentity, Settings},
};

/// Why a token was refused. Never holds the token or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No token in the header or the cookie.
    Missing,
    /// Not three base64url parts with a JSON header and payload.
    Malformed(&'static str),
    /// The header's `alg` is not the configured one (`none` included).
    WrongAlgorithm(String),
    /// A critical header extension, which go-jose refuses too.
    CriticalHeader,
    /// No key of the set has the token's key identity.
    UnknownKey(String),
    BadSignature,
    /// A registered claim of the wrong JSON type.
    BadClaim(&'static str),
    Expired,
    NotYetValid,
    IssuedInTheFuture,
    WrongIssuer,
    WrongAudience,
    /// One of its `TokenKeys` claims was revoked.
    Revoked,
    MissingRoles,
    MissingScopes,
}

impl Refusal {
    /// The status KrakenD answers with: 403 for a valid token without the
    /// roles or scopes, 401 for everything else. Both with an empty body.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::MissingRoles | Refusal::MissingScopes => 403,
            _ => 401,
        }
    }

    /// For `operation_debug` logs.
    pub fn describe(&self) -> String {
        match self {
            Refusal::Missing => "no token in the request".into(),
            Refusal::Malformed(why) => format!("the token is malformed: {why}"),
            Refusal::WrongAlgorithm(alg) => {
                format!("the token is signed with {alg:?}, not the configured algorithm")
            }
            Refusal::CriticalHeader => "the token has critical header extensions (\"crit\")".into(),
            Refusal::UnknownKey(id) => format!("no key {id:?} in the key set"),
            Refusal::BadSignature => "the signature does not verify".into(),
            Refusal::BadClaim(claim) => format!("the claim \"{claim}\" has the wrong type"),
            Refusal::Expired => "the token has expired (exp)".into(),
            Refusal::NotYetValid => "the token is not valid yet (nbf)".into(),
            Refusal::IssuedInTheFuture => "the token is issued in the future (iat)".into(),
            Refusal::WrongIssuer => "the issuer (iss) is not the configured one".into(),
            Refusal::WrongAudience => "the audience (aud) lacks a configured one".into(),
            Refusal::Revoked => "the token was revoked".into(),
            Refusal::MissingRoles => "the token does not have the required roles".into(),
            Refusal::MissingScopes => "the token does not have the required scopes".into(),
        }
    }
}

/// A token whose signature and registered claims passed.
pub struct Verified {
    /// The payload, a JSON object.
    pub claims: Map<String, Value>,
    /// Its text as the token carried it.
    pub payload: String,
}

fn decode(part: &str, what: &'static str) -> Result<Vec<u8>, Refusal> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| Refusal::Malformed(what))
}

/// Checks `token` against the settings and keys.
pub fn verify(token: &str, settings: &Settings, keys: &KeyStore) -> Result<Verified, Refusal> {
    let mut parts = token.splitn(4, '.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed("a compact token has three parts"));
    };
    let header: Map<String, Value> =
        serde_json::from_slice(&decode(header, "header is not base64url")?)
            .map_err(|_| Refusal::Malformed("header is not a JSON object"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != settings.alg.name() {
        return Err(Refusal::WrongAlgorithm(alg.to_owned()));
    }
    if header.contains_key("crit") {
        return Err(Refusal::CriticalHeader);
    }
    let member = |name: &str| header.get(name).and_then(Value::as_str).unwrap_or("");
    let id = match settings.key_identity {
        KeyIdentity::Kid => member("kid").to_owned(),
        KeyIdentity::X5t => member("x5t").to_owned(),
        KeyIdentity::X5tS256 => member("x5t#S256").to_owned(),
        KeyIdentity::KidX5t => format!("{}{}", member("kid"), member("x5t")),
    };
    let verifier = keys.verifier(&id).ok_or(Refusal::UnknownKey(id))?;
    let signature = decode(signature, "signature is not base64url")?;
    let signing_input = &token[..token.len() - signature_len(token)];
    if !verifier.verify(signing_input.as_bytes(), &signature) {
        return Err(Refusal::BadSignature);
    }
    let payload_bytes = decode(payload, "payload is not base64url")?;
    let payload =
        String::from_utf8(payload_bytes).map_err(|_| Refusal::Malformed("payload is not UTF-8"))?;
    let claims: Map<String, Value> = serde_json::from_str(&payload)
        .map_err(|_| Refusal::Malformed("payload is not a JSON object"))?;
    check_claims(&claims, settings, now())?;
    Ok(Verified { claims, payload })
}

/// The length of the last part and its dot.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

/// Seconds since the epoch, as the claims' dates count them.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A NumericDate claim: absent or null is `None`; go-jose truncates a
/// fractional one to whole seconds.
fn date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some(f.trunc()))
            .ok_or(Refusal::BadClaim(name)),
        Some(_) => Err(Refusal::BadClaim(name)),
    }
}

fn text<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Refusal::BadClaim(name)),
    }
}

/// go-jose's `Claims.ValidateWithLeeway` against the configured issuer and
/// audience, at `now` (seconds since the epoch).
pub fn check_claims(
    claims: &Map<String, Value>,
    settings: &Settings,
    now: f64,
) -> Result<(), Refusal> {
    let leeway = settings.leeway.as_secs_f64();
    // Decoding into go-jose's Claims fails on any mistyped registered claim.
    let issuer = text(claims, "iss")?;
    text(claims, "sub")?;
    text(claims, "jti")?;
    let audience: Vec<&str> = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().ok_or(Refusal::BadClaim("aud")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Refusal::BadClaim("aud")),
    };
    let expiry = date(claims, "exp")?;
    let not_before = date(claims, "nbf")?;
    let issued_at = date(claims, "iat")?;
    if let Some(wanted) = &settings.issuer {
        if issuer != Some(wanted.as_str()) {
            return Err(Refusal::WrongIssuer);
        }
    }
    if !settings
        .audience
        .iter()
        .all(|wanted| audience.contains(&wanted.as_str()))
    {
        return Err(Refusal::WrongAudience);
    }
    if not_before.is_some_and(|nbf| now + leeway < nbf) {
        return Err(Refusal::NotYetValid);
    }
    if expiry.is_some_and(|exp| now - leeway > exp) {
        return Err(Refusal::Expired);
    }
    if issued_at.is_some_and(|iat| now + leeway < iat) {
        return Err(Refusal::IssuedInTheFuture);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(extra: Value) -> Settings {
        let mut config =
            json!({"alg": "HS256", "jwk_local_path": "/k.json", "disable_jwk_security": true});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        Settings::parse(&config.to_string(), 3).unwrap()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_window_allows_the_leeway_and_no_more() {
        let s = settings(json!({"leeway": "10s"}));
        let now = 1_000_000.0;
        assert_eq!(
            check_claims(&claims(json!({"exp": 999_995})), &s, now),
            Ok(())
        );
        assert_eq!(
            check_claims(&claims(json!({"exp": 999_989})), &s, now),
            Err(Refusal::Expired)
        );
        assert_eq!(
            check_claims(&claims(json!({"nbf": 1_000_011})), &s, now),
            Err(Refusal::NotYetValid)
        );
        assert_eq!(
            check_claims(&claims(json!({"iat": 1_000_020})), &s, now),
            Err(Refusal::IssuedInTheFuture)
        );
        assert_eq!(
            check_claims(&claims(json!({"exp": "soon"})), &s, now),
            Err(Refusal::BadClaim("exp"))
        );
        assert_eq!(
            check_claims(&claims(json!({"sub": 7})), &s, now),
            Err(Refusal::BadClaim("sub"))
        );
    }

    #[test]
    fn issuer_and_every_audience_must_match() {
        let s = settings(json!({"issuer": "https://idp", "audience": ["a", "b"]}));
        let ok = json!({"iss": "https://idp", "aud": ["b", "c", "a"]});
        assert_eq!(check_claims(&claims(ok), &s, 0.0), Ok(()));
        let one = json!({"iss": "https://idp", "aud": "a"});
        assert_eq!(
            check_claims(&claims(one), &s, 0.0),
            Err(Refusal::WrongAudience)
        );
        let other = json!({"iss": "https://other", "aud": ["a", "b"]});
        assert_eq!(
            check_claims(&claims(other), &s, 0.0),
            Err(Refusal::WrongIssuer)
        );
        assert_eq!(
            check_claims(&claims(json!({"aud": "a"})), &settings(json!({})), 0.0),
            Ok(())
        );
    }

    #[test]
    fn statuses_are_krakends() {
        assert_eq!(Refusal::MissingRoles.status(), 403);
        assert_eq!(Refusal::MissingScopes.status(), 403);
        assert_eq!(Refusal::BadSignature.status(), 401);
    }
}
