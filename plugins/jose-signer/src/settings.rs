//! The signer's configuration, in both KrakenD spellings (`keys_to_sign` and
//! the older `keys-to-sign`, ...). Unknown keys are errors: a misspelt
//! setting must not silently leave claims unsigned.

use std::{path::PathBuf, time::Duration};

use sepia_plugin_api::TlsOptions;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;

/// Where the key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `jwk_url`.
    Url(String),
    /// `jwk_local_path`.
    File(PathBuf),
}

/// A valid signer configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub alg: Algorithm,
    pub kid: String,
    pub keys_to_sign: Vec<String>,
    pub source: KeySource,
    pub full: bool,
    /// The JWS header's `typ`; `None` writes none (krakend-jose 1.4).
    pub typ: Option<String>,
    pub tls: TlsOptions,
    /// How often the key set is fetched again; `None` never.
    pub refresh_interval: Option<Duration>,
    /// How long start-up keeps retrying an unreachable key set.
    pub startup_timeout: Duration,
}

const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Every key the signer reads, with its older spelling.
const KNOWN: &[(&str, Option<&str>)] = &[
    ("alg", None),
    ("kid", None),
    ("keys_to_sign", Some("keys-to-sign")),
    ("jwk_url", Some("jwk-url")),
    ("jwk_local_path", None),
    ("jwk_local_ca", None),
    ("full", None),
    ("typ", None),
    ("disable_jwk_security", None),
    ("jwk_fingerprints", None),
    ("cipher_suites", None),
    ("jwk_refresh_interval", None),
    ("jwk_startup_timeout", None),
];

struct Reader<'a> {
    map: &'a Map<String, Value>,
    problems: Vec<String>,
}

impl<'a> Reader<'a> {
    fn value(&mut self, key: &str) -> Option<&'a Value> {
        let old = KNOWN
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, old)| *old);
        match (self.map.get(key), old.and_then(|o| self.map.get(o))) {
            (Some(_), Some(_)) => {
                self.problems.push(format!(
                    "\"{key}\" and \"{}\" are one setting: keep only \"{key}\"",
                    old.unwrap_or_default()
                ));
                self.map.get(key)
            }
            (Some(v), None) | (None, Some(v)) => Some(v),
            (None, None) => None,
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.value(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.problems.push(format!("\"{key}\" must be a string"));
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> bool {
        match self.value(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.problems
                    .push(format!("\"{key}\" must be true or false"));
                false
            }
        }
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        match self.value(key) {
            None => Vec::new(),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(_) => {
                self.problems
                    .push(format!("\"{key}\" must be an array of strings"));
                Vec::new()
            }
        }
    }

    fn duration(&mut self, key: &str) -> Option<Duration> {
        let text = self.string(key)?;
        match sepia_plugin_api::parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problems.push(format!("\"{key}\": {e}"));
                None
            }
        }
    }
}

impl Settings {
    /// Reads and validates the configuration. All problems are reported
    /// at once, joined by "; ".
    pub fn parse(config_json: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(config_json)
            .map_err(|e| format!("the configuration is not JSON: {e}"))?;
        let map = value
            .as_object()
            .ok_or("the configuration must be a JSON object")?;
        let mut r = Reader {
            map,
            problems: Vec::new(),
        };
        for key in map.keys() {
            let known = KNOWN
                .iter()
                .any(|(k, old)| k == key || old.is_some_and(|o| o == key));
            if !known {
                r.problems.push(match key.as_str() {
                    "secret_url" | "cypher_key" => format!(
                        "\"{key}\" (encrypted keys) is not supported by Sepia yet: use jwk_url or jwk_local_path with a plain JWK set"
                    ),
                    _ => format!("unknown setting \"{key}\""),
                });
            }
        }
        let alg = match r.string("alg") {
            Some(name) => Algorithm::parse(&name).map_err(|e| r.problems.push(e)).ok(),
            None => {
                r.problems.push(
                    "\"alg\" is missing: set the signing algorithm, such as \"RS256\" or \"HS256\""
                        .into(),
                );
                None
            }
        };
        let kid = r.string("kid").unwrap_or_default();
        if kid.is_empty() {
            r.problems
                .push("\"kid\" is missing: name the key of the JWK set to sign with".into());
        }
        let keys_to_sign = r.strings("keys_to_sign");
        if keys_to_sign.is_empty() {
            r.problems.push("\"keys_to_sign\" is missing or empty: list the response keys whose objects become tokens".into());
        }
        let full = r.boolean("full");
        let version = sepia_plugin_api::host().map_or(3, |h| h.config_version());
        let typ = match (r.string("typ"), sepia_plugin_api::is_krakend2(version)) {
            (Some(typ), true) => Some(typ),
            (None, true) => Some("JWT".to_owned()),
            (Some(_), false) => {
                tracing::warn!("\"typ\" is ignored in a version-1 or 2 file, as krakend-jose 1.4 ignores it: the tokens' header is {{\"alg\",\"kid\"}}; use a version-3 file to set it");
                None
            }
            (None, false) => None,
        };
        let disable_security = r.boolean("disable_jwk_security");
        let url = r.string("jwk_url");
        let path = r.string("jwk_local_path");
        let source = match (url, path) {
            (Some(_), Some(_)) => {
                r.problems
                    .push("\"jwk_url\" and \"jwk_local_path\" are both set: keep one".into());
                None
            }
            (Some(url), None) => Some(KeySource::Url(url)),
            (None, Some(path)) => Some(KeySource::File(PathBuf::from(path))),
            (None, None) => {
                r.problems
                    .push("no key set: set \"jwk_url\" (https://...) or \"jwk_local_path\"".into());
                None
            }
        };
        match &source {
            Some(KeySource::Url(url)) if url.starts_with("http://") && !disable_security => {
                r.problems.push(format!(
                    "insecure connection to the JWK service {url}: use https://, or set \"disable_jwk_security\": true to allow plain http"
                ));
            }
            Some(KeySource::Url(url)) if !url.starts_with("http://") && !url.starts_with("https://") => {
                r.problems.push(format!("\"jwk_url\" {url} must start with https:// (or http://)"));
            }
            Some(KeySource::File(path)) if !disable_security => r.problems.push(format!(
                "\"jwk_local_path\" {} reads keys from a file: set \"disable_jwk_security\": true to allow it",
                path.display()
            )),
            _ => {}
        }
        let mut tls = TlsOptions {
            pins_sha256: r
                .strings("jwk_fingerprints")
                .into_iter()
                .map(Into::into)
                .collect(),
            skip_verify: disable_security
                && matches!(&source, Some(KeySource::Url(u)) if u.starts_with("https://")),
            ..TlsOptions::default()
        };
        match r.value("cipher_suites") {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    match item.as_u64().and_then(|n| u16::try_from(n).ok()) {
                        Some(id) => tls.cipher_suites.push(id),
                        None => r.problems.push(format!(
                            "\"cipher_suites\" holds {item}, not a cipher suite ID (a number such as 49199)"
                        )),
                    }
                }
            }
            Some(_) => r
                .problems
                .push("\"cipher_suites\" must be an array of numbers".into()),
        }
        if let Some(ca) = r.string("jwk_local_ca") {
            match std::fs::read(&ca) {
                Ok(pem) => tls.extra_roots_pem = pem.into(),
                Err(e) => r
                    .problems
                    .push(format!("\"jwk_local_ca\" {ca} cannot be read: {e}")),
            }
        }
        let refresh_interval = match r.duration("jwk_refresh_interval") {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(DEFAULT_REFRESH),
        };
        let startup_timeout = r
            .duration("jwk_startup_timeout")
            .unwrap_or(DEFAULT_STARTUP_TIMEOUT);
        match (alg, source, r.problems.is_empty()) {
            (Some(alg), Some(source), true) => Ok(Settings {
                alg,
                kid,
                keys_to_sign,
                source,
                full,
                typ,
                tls,
                refresh_interval,
                startup_timeout,
            }),
            _ => Err(r.problems.join("; ")),
        }
    }

    /// Whether certificate checks are off (KrakenD's `disable_jwk_security`
    /// on an https URL).
    pub fn skips_verification(&self) -> bool {
        self.tls.skip_verify
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_read_the_same() {
        let new = Settings::parse(
            r#"{"alg":"HS256","kid":"sim2","keys_to_sign":["a"],"jwk_url":"http://h/k","disable_jwk_security":true}"#,
        )
        .unwrap();
        let old = Settings::parse(
            r#"{"alg":"HS256","kid":"sim2","keys-to-sign":["a"],"jwk-url":"http://h/k","disable_jwk_security":true}"#,
        )
        .unwrap();
        assert_eq!(new.keys_to_sign, old.keys_to_sign);
        assert_eq!(new.source, old.source);
        assert_eq!(new.typ.as_deref(), Some("JWT"));
        assert!(!new.skips_verification());
    }

    #[test]
    fn every_problem_is_named() {
        let err =
            Settings::parse(r#"{"alg":"none","keys_to_sign":[],"colour":1,"jwk_url":"http://h"}"#)
                .unwrap_err();
        for needle in [
            "unknown setting \"colour\"",
            "unsigned",
            "\"kid\" is missing",
            "keys_to_sign",
            "insecure connection",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let err = Settings::parse(
            r#"{"alg":"RS256","kid":"k","keys_to_sign":["a"],"jwk_local_path":"/k.json"}"#,
        )
        .unwrap_err();
        assert!(err.contains("disable_jwk_security"), "{err}");
        let err = Settings::parse(r#"{"alg":"RS256","kid":"k","keys_to_sign":["a"]}"#).unwrap_err();
        assert!(err.contains("no key set"), "{err}");
    }

    #[test]
    fn security_settings_become_tls_options() {
        let s = Settings::parse(
            r#"{"alg":"RS256","kid":"k","keys_to_sign":["a"],"jwk_url":"https://h/k","disable_jwk_security":true,
                "jwk_fingerprints":["abc="],"cipher_suites":[49199],"jwk_refresh_interval":"0s"}"#,
        )
        .unwrap();
        assert!(s.skips_verification());
        assert_eq!(s.tls.cipher_suites.as_slice(), &[49199]);
        assert_eq!(s.tls.pins_sha256.len(), 1);
        assert_eq!(s.refresh_interval, None);
    }
}
