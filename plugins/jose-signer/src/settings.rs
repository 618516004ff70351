//! The signer's configuration, in both KrakenD spellings (`keys_to_sign` and
//! the older `keys-to-sign`, ...). Unknown keys are errors: a misspelt
//! setting must not silently leave claims unsigned.

use std::time::Duration;

use sepia_jose::{
    explain_unsupported, Algorithm, KeySourceSettings, Known, SettingsReader, KEY_SOURCE_SETTINGS,
};

/// A valid signer configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub alg: Algorithm,
    pub kid: String,
    pub keys_to_sign: Vec<String>,
    pub keys: KeySourceSettings,
    pub full: bool,
    /// The JWS header's `typ`; `None` writes none (krakend-jose 1.4).
    pub typ: Option<String>,
    /// How often the key set is fetched again; `None` never.
    pub refresh_interval: Option<Duration>,
}

const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// The signer's own settings, with their older spellings; the key set's
/// are [`KEY_SOURCE_SETTINGS`].
const KNOWN: &[Known] = &[
    ("alg", None),
    ("kid", None),
    ("keys_to_sign", Some("keys-to-sign")),
    ("full", None),
    ("typ", None),
    ("jwk_refresh_interval", None),
];

impl Settings {
    /// Reads and validates the configuration. All problems are reported
    /// at once, joined by "; ".
    pub fn parse(config_json: &str) -> Result<Self, String> {
        let value = SettingsReader::parse(config_json)?;
        let mut r = SettingsReader::new(&value, &[KNOWN, KEY_SOURCE_SETTINGS], explain_unsupported);
        let alg = match r.string("alg") {
            Some(name) => Algorithm::parse(&name).map_err(|e| r.problem(e)).ok(),
            None => {
                r.problem(
                    "\"alg\" is missing: set the signing algorithm, such as \"RS256\" or \"HS256\"",
                );
                None
            }
        };
        let kid = r.string("kid").unwrap_or_default();
        if kid.is_empty() {
            r.problem("\"kid\" is missing: name the key of the JWK set to sign with");
        }
        let keys_to_sign = r.strings("keys_to_sign");
        if keys_to_sign.is_empty() {
            r.problem("\"keys_to_sign\" is missing or empty: list the response keys whose objects become tokens");
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
        let keys = KeySourceSettings::read(&mut r);
        let refresh_interval = match r.duration("jwk_refresh_interval") {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(DEFAULT_REFRESH),
        };
        let clean = r.is_clean();
        r.finish()?;
        match (alg, keys, clean) {
            (Some(alg), Some(keys), true) => Ok(Settings {
                alg,
                kid,
                keys_to_sign,
                keys,
                full,
                typ,
                refresh_interval,
            }),
            _ => Err("the signer settings are incomplete".into()),
        }
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
        assert_eq!(new.keys.source, old.keys.source);
        assert_eq!(new.typ.as_deref(), Some("JWT"));
        assert!(!new.keys.skips_verification());
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
        assert!(s.keys.skips_verification());
        assert_eq!(s.keys.tls.cipher_suites.as_slice(), &[49199]);
        assert_eq!(s.keys.tls.pins_sha256.len(), 1);
        assert_eq!(s.refresh_interval, None);
    }
}
