//! The validator's configuration: every setting krakend-jose reads in
//! either generation (`propagate_claims` and the older `propagate-claims`,
//! ...), with the defaults of the file's generation. Unknown or mistyped
//! settings are errors where KrakenD would log them and serve the endpoint
//! unprotected.

use std::time::Duration;

use sepia_jose::{
    explain_unsupported, Algorithm, KeySourceSettings, Known, SettingsReader, KEY_SOURCE_SETTINGS,
};

/// How a token names the key that signed it (`key_identify_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyIdentity {
    /// The header's `kid` against the key's `kid` (the default).
    Kid,
    /// The header's `x5t` against the key's SHA-1 certificate thumbprint.
    X5t,
    /// The header's `x5t#S256` against the SHA-256 thumbprint.
    X5tS256,
    /// `kid` and `x5t` together.
    KidX5t,
}

/// A claim sent to the backends as a header (`propagate_claims`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagation {
    /// The claim, a dot path into nested objects unless it is a URL.
    pub claim: String,
    /// The request header it becomes.
    pub header: String,
}

/// A valid validator configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub alg: Algorithm,
    pub keys: KeySourceSettings,
    /// How often the key set is fetched again; `None` never.
    pub refresh_interval: Option<Duration>,
    /// The shortest time between two fetches caused by tokens naming an
    /// unknown key.
    pub unknown_key_cooldown: Duration,
    pub key_identity: KeyIdentity,
    /// Each must be among the token's `aud`.
    pub audience: Vec<String>,
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    pub roles_key: String,
    pub roles_key_is_nested: bool,
    pub roles: Vec<String>,
    pub scopes_key: String,
    pub scopes: Vec<String>,
    /// `scopes_matcher: all`; otherwise any one scope is enough.
    pub all_scopes: bool,
    pub propagate: Vec<Propagation>,
    /// `propagate_claims_preserve_array`: an array claim becomes one header
    /// value per item.
    pub propagate_arrays: bool,
    pub cookie_key: String,
    /// The header the token comes in.
    pub auth_header: String,
    pub operation_debug: bool,
    /// How many verified tokens are remembered (Sepia's
    /// `token_cache_size`; 0 turns the cache off).
    pub token_cache_size: usize,
    /// The file is served as KrakenD 2.x.
    pub krakend2: bool,
}

/// The validator's own settings, with their older spellings; the key set's
/// are [`KEY_SOURCE_SETTINGS`].
const KNOWN: &[Known] = &[
    ("alg", None),
    ("cache", None),
    ("cache_duration", None),
    ("audience", None),
    ("issuer", None),
    ("roles", None),
    ("roles_key", None),
    ("roles_key_is_nested", None),
    ("scopes", None),
    ("scopes_key", None),
    ("scopes_matcher", None),
    ("propagate_claims", Some("propagate-claims")),
    ("propagate_claims_preserve_array", None),
    ("cookie_key", None),
    ("auth_header_name", None),
    ("key_identify_strategy", None),
    ("operation_debug", None),
    ("leeway", None),
    ("failed_jwk_key_cooldown", None),
    ("jwk_refresh_interval", None),
    ("token_cache_size", None),
];

/// KrakenD's `cache: true` keeps keys this long by default.
const DEFAULT_CACHE: Duration = Duration::from_secs(15 * 60);
/// Without `cache`, KrakenD fetches the set on every request; Sepia keeps
/// it and fetches it again this often (and at once for an unknown key).
const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10);
/// Verified tokens remembered an endpoint: a client reuses its token, and
/// a look-up is far cheaper than a signature check.
const DEFAULT_TOKEN_CACHE: usize = 1024;

fn explain(key: &str) -> Option<String> {
    match key {
        "key_identify_by" => Some(
            "\"key_identify_by\" is not a krakend-jose setting (KrakenD ignores it and identifies keys by kid): write \"key_identify_strategy\""
                .into(),
        ),
        "shared_cache_duration" => Some(
            "\"shared_cache_duration\" belongs in the top-level extra_config, not an endpoint's"
                .into(),
        ),
        other => explain_unsupported(other),
    }
}

impl Settings {
    /// Reads and validates the configuration of a file of `config_version`.
    /// All problems are reported at once, joined by "; ".
    pub fn parse(config_json: &str, config_version: u64) -> Result<Self, String> {
        let krakend2 = sepia_plugin_api::is_krakend2(config_version);
        let value = SettingsReader::parse(config_json)?;
        let mut r = SettingsReader::new(&value, &[KNOWN, KEY_SOURCE_SETTINGS], explain);
        let alg = match r.string("alg") {
            Some(name) => Algorithm::parse(&name)
                .map_err(|e| {
                    r.problem(
                        e.replace("would send unsigned tokens", "would accept unsigned tokens"),
                    )
                })
                .ok(),
            None => {
                r.problem("\"alg\" is missing: set the algorithm tokens must be signed with, such as \"RS256\" (it is never taken from the token)");
                None
            }
        };
        let keys = KeySourceSettings::read(&mut r);
        let cache = r.boolean("cache");
        let cache_duration = r.unsigned("cache_duration");
        if cache && matches!(&keys, Some(k) if !k.is_remote()) {
            r.problem(
                "\"cache\" cannot be used with \"jwk_local_path\" (as in KrakenD): remove it",
            );
        }
        let refresh_interval = match r.duration("jwk_refresh_interval") {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None if cache => Some(match cache_duration {
                Some(seconds) if seconds > 0 => Duration::from_secs(seconds),
                _ => DEFAULT_CACHE,
            }),
            None => Some(DEFAULT_REFRESH),
        };
        let unknown_key_cooldown = match r.duration("failed_jwk_key_cooldown") {
            Some(d) if d >= Duration::from_secs(1) => d,
            Some(_) => {
                r.problem("\"failed_jwk_key_cooldown\" must be at least 1s: an unknown key must not make a fetch per request");
                DEFAULT_COOLDOWN
            }
            None => DEFAULT_COOLDOWN,
        };
        let key_identity = match r.string("key_identify_strategy").as_deref() {
            None | Some("") | Some("kid") => KeyIdentity::Kid,
            Some("x5t") => KeyIdentity::X5t,
            Some("x5t#S256") => KeyIdentity::X5tS256,
            Some("kid_x5t") => KeyIdentity::KidX5t,
            Some(other) => {
                r.problem(format!(
                    "\"key_identify_strategy\" {other:?} is not one of kid, x5t, x5t#S256, kid_x5t"
                ));
                KeyIdentity::Kid
            }
        };
        let audience = r.strings("audience");
        let issuer = r.string("issuer").filter(|i| !i.is_empty());
        // go-auth0 checks with a minute's leeway under krakend-jose 1.4;
        // the current one reads `leeway`, one second when unset or unreadable.
        let leeway = if krakend2 {
            match r.string("leeway") {
                None => Duration::from_secs(1),
                Some(text) => sepia_plugin_api::parse_duration(&text).unwrap_or_else(|e| {
                    r.problem(format!("\"leeway\": {e}"));
                    Duration::from_secs(1)
                }),
            }
        } else {
            if r.has("leeway") {
                tracing::warn!("\"leeway\" is ignored in a version-1 or 2 file, as krakend-jose 1.4 ignores it: tokens get a minute of leeway");
            }
            Duration::from_secs(60)
        };
        let roles_key = r
            .string("roles_key")
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "roles".into());
        let roles_key_is_nested = r.boolean("roles_key_is_nested");
        let roles = r.strings("roles");
        let scopes_key = r.string("scopes_key").unwrap_or_default();
        let scopes = r.strings("scopes");
        let all_scopes = match r.string("scopes_matcher").as_deref() {
            None | Some("") | Some("any") => false,
            Some("all") => true,
            Some(other) => {
                r.problem(format!(
                    "\"scopes_matcher\" {other:?} is not \"any\" or \"all\""
                ));
                false
            }
        };
        if !scopes.is_empty() && scopes_key.is_empty() {
            r.problem("\"scopes\" are required but \"scopes_key\" is missing: KrakenD would check no scope at all; name the claim that holds them (such as \"scope\")");
        }
        let propagate = propagations(&mut r);
        let propagate_arrays = r.boolean("propagate_claims_preserve_array");
        let cookie_key = r
            .string("cookie_key")
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "access_token".into());
        let auth_header = match r.string("auth_header_name").filter(|h| !h.is_empty()) {
            Some(name) if krakend2 => name,
            Some(_) => {
                tracing::warn!("\"auth_header_name\" is ignored in a version-1 or 2 file, as krakend-jose 1.4 ignores it: tokens come in Authorization");
                "authorization".into()
            }
            None => "authorization".into(),
        };
        let operation_debug = r.boolean("operation_debug");
        let token_cache_size = r
            .unsigned("token_cache_size")
            .map_or(DEFAULT_TOKEN_CACHE, |n| n.min(1 << 20) as usize);
        let clean = r.is_clean();
        r.finish()?;
        match (alg, keys, clean) {
            (Some(alg), Some(keys), true) => Ok(Settings {
                alg,
                keys,
                refresh_interval,
                unknown_key_cooldown,
                key_identity,
                audience,
                issuer,
                leeway,
                roles_key,
                roles_key_is_nested,
                roles,
                scopes_key,
                scopes,
                all_scopes,
                propagate,
                propagate_arrays: propagate_arrays && krakend2,
                cookie_key,
                auth_header,
                operation_debug,
                token_cache_size,
                krakend2,
            }),
            _ => Err("the validator settings are incomplete".into()),
        }
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `propagate_claims`: pairs of claim and header.
fn propagations(r: &mut SettingsReader<'_>) -> Vec<Propagation> {
    let Some(value) = r.value("propagate_claims") else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        r.problem("\"propagate_claims\" must be an array of [claim, header] pairs");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_array().map(Vec::as_slice) {
            Some([claim, header]) => match (claim.as_str(), header.as_str()) {
                (Some(claim), Some(header)) if is_header_name(header) && !claim.is_empty() => {
                    out.push(Propagation {
                        claim: claim.to_owned(),
                        header: header.to_owned(),
                    })
                }
                (Some(_), Some(header)) if !is_header_name(header) => r.problem(format!(
                    "\"propagate_claims\"[{i}]: {header:?} is not a valid header name"
                )),
                _ => r.problem(format!(
                    "\"propagate_claims\"[{i}] must be two non-empty strings: [claim, header]"
                )),
            },
            _ => r.problem(format!(
                "\"propagate_claims\"[{i}] must be a pair [claim, header], such as [\"sub\", \"x-user\"]"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#""alg":"RS256","jwk_url":"https://idp/jwks""#;

    fn parse(extra: &str, version: u64) -> Result<Settings, String> {
        let comma = if extra.is_empty() { "" } else { "," };
        Settings::parse(&format!("{{{BASE}{comma}{extra}}}"), version)
    }

    #[test]
    fn defaults_follow_krakend() {
        let s = parse("", 3).unwrap();
        assert_eq!(s.roles_key, "roles");
        assert_eq!(s.cookie_key, "access_token");
        assert_eq!(s.auth_header, "authorization");
        assert_eq!(s.key_identity, KeyIdentity::Kid);
        assert_eq!(s.leeway, Duration::from_secs(1));
        assert_eq!(s.refresh_interval, Some(DEFAULT_REFRESH));
        assert!(!s.all_scopes);
        let old = parse("", 2).unwrap();
        assert_eq!(old.leeway, Duration::from_secs(60));
        let cached = parse(r#""cache":true"#, 3).unwrap();
        assert_eq!(cached.refresh_interval, Some(DEFAULT_CACHE));
        let cached = parse(r#""cache":true,"cache_duration":30"#, 3).unwrap();
        assert_eq!(cached.refresh_interval, Some(Duration::from_secs(30)));
    }

    #[test]
    fn both_spellings_of_propagation_read_the_same() {
        let new = parse(r#""propagate_claims":[["sub","x-user"],["a.b","X-B"]]"#, 3).unwrap();
        let old = parse(r#""propagate-claims":[["sub","x-user"],["a.b","X-B"]]"#, 2).unwrap();
        assert_eq!(new.propagate, old.propagate);
        assert_eq!(new.propagate[1].claim, "a.b");
    }

    #[test]
    fn every_problem_is_named() {
        let err = Settings::parse(
            r#"{"alg":"none","jwk_url":"http://idp","scopes":["a"],"scopes_matcher":"most",
                "propagate_claims":[["sub"]],"key_identify_by":"kid","audience":"x","colour":1}"#,
            3,
        )
        .unwrap_err();
        for needle in [
            "would accept unsigned tokens",
            "insecure connection",
            "\"scopes_key\" is missing",
            "\"scopes_matcher\" \"most\"",
            "\"propagate_claims\"[0] must be a pair",
            "write \"key_identify_strategy\"",
            "\"audience\" must be an array",
            "unknown setting \"colour\"",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let err = Settings::parse(r#"{"jwk_url":"https://idp"}"#, 3).unwrap_err();
        assert!(err.contains("never taken from the token"), "{err}");
    }
}
