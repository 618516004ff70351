//! krakend-cors' settings, per generation: KrakenD 1.x (krakend-cors 1.4)
//! reads `allow_origins`, `allow_methods`, `allow_headers`,
//! `expose_headers`, `allow_credentials`, `max_age` and `debug`; KrakenD 2.x
//! adds `allow_private_network`, `options_passthrough` and
//! `options_success_status`. A setting of the other generation is an error
//! naming the generation that reads it, so nothing is silently ignored.

use std::time::Duration;

use sepia_plugin_settings::{Known, SettingsReader};

/// A valid CORS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub allow_private_network: bool,
    pub options_passthrough: bool,
    /// The status of a preflight answer; 0 for rs/cors' default.
    pub options_success_status: u16,
    pub max_age: Duration,
    pub debug: bool,
    /// The file is served as KrakenD 2.x (rs/cors 1.11), else 1.x (1.6).
    pub krakend2: bool,
}

const BOTH: &[Known] = &[
    ("allow_origins", None),
    ("allow_methods", None),
    ("allow_headers", None),
    ("expose_headers", None),
    ("allow_credentials", None),
    ("max_age", None),
    ("debug", None),
];
const KRAKEND2_ONLY: &[Known] = &[
    ("allow_private_network", None),
    ("options_passthrough", None),
    ("options_success_status", None),
];

impl Settings {
    /// Reads the configuration of a file of `config_version`; all problems
    /// at once.
    pub fn parse(config_json: &str, config_version: u64) -> Result<Self, String> {
        let krakend2 = sepia_plugin_api::is_krakend2(config_version);
        let value = SettingsReader::parse(config_json)?;
        let mut r = SettingsReader::new(&value, &[BOTH, KRAKEND2_ONLY], |_| None);
        if !krakend2 {
            let present: Vec<&str> = KRAKEND2_ONLY
                .iter()
                .map(|(key, _)| *key)
                .filter(|key| r.has(key))
                .collect();
            for key in present {
                r.problem(format!("\"{key}\" is read by KrakenD 2.x only (a version-3 file); KrakenD 1.x ignores it: remove it or use a version-3 file"));
            }
        }
        let max_age = r.duration("max_age").unwrap_or(Duration::ZERO);
        let options_success_status = match r.unsigned("options_success_status") {
            None => 0,
            Some(n) if (100..600).contains(&n) => n as u16,
            Some(_) => {
                r.problem("\"options_success_status\" must be an HTTP status such as 204");
                0
            }
        };
        let settings = Settings {
            allow_origins: r.strings("allow_origins"),
            allow_methods: r.strings("allow_methods"),
            allow_headers: r.strings("allow_headers"),
            expose_headers: r.strings("expose_headers"),
            allow_credentials: r.boolean("allow_credentials"),
            allow_private_network: r.boolean("allow_private_network"),
            options_passthrough: r.boolean("options_passthrough"),
            options_success_status,
            max_age,
            debug: r.boolean("debug"),
            krakend2,
        };
        r.finish()?;
        if settings.allow_credentials && settings.allow_origins.iter().any(|o| o == "*") {
            tracing::warn!("allow_credentials with the origin \"*\": browsers refuse credentials for a wildcard origin, as the CORS standard says");
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_of_each_generation() {
        let s = Settings::parse(
            r#"{"allow_origins":["*"],"max_age":"12h","options_success_status":200}"#,
            3,
        )
        .unwrap();
        assert_eq!(s.max_age, Duration::from_secs(12 * 3600));
        assert_eq!(s.options_success_status, 200);
        let err = Settings::parse(r#"{"options_passthrough":true,"colour":1,"max_age":5}"#, 2)
            .unwrap_err();
        assert!(err.contains("KrakenD 2.x only"), "{err}");
        assert!(err.contains("unknown setting \"colour\""), "{err}");
        assert!(err.contains("\"max_age\" must be a string"), "{err}");
    }
}
