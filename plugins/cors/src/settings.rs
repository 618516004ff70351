//! krakend-cors' settings, per generation: KrakenD 1.x (krakend-cors 1.4)
//! reads `allow_origins`, `allow_methods`, `allow_headers`,
//! `expose_headers`, `allow_credentials`, `max_age` and `debug`; KrakenD 2.x
//! adds `allow_private_network`, `options_passthrough` and
//! `options_success_status`. A setting of the other generation is an error
//! naming the generation that reads it, so nothing is silently ignored.

use std::time::Duration;

use serde_json::{Map, Value};

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

const BOTH: &[&str] = &[
    "allow_origins",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "allow_credentials",
    "max_age",
    "debug",
];
const KRAKEND2_ONLY: &[&str] = &[
    "allow_private_network",
    "options_passthrough",
    "options_success_status",
];

fn strings(map: &Map<String, Value>, key: &str, problems: &mut Vec<String>) -> Vec<String> {
    match map.get(key) {
        None => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => {
            problems.push(format!("\"{key}\" must be an array of strings"));
            Vec::new()
        }
    }
}

fn flag(map: &Map<String, Value>, key: &str, problems: &mut Vec<String>) -> bool {
    match map.get(key) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push(format!("\"{key}\" must be true or false"));
            false
        }
    }
}

impl Settings {
    /// Reads the configuration of a file of `config_version`; all problems
    /// at once.
    pub fn parse(config_json: &str, config_version: u64) -> Result<Self, String> {
        let krakend2 = sepia_plugin_api::is_krakend2(config_version);
        let value: Value = serde_json::from_str(config_json)
            .map_err(|e| format!("the configuration is not JSON: {e}"))?;
        let map = value
            .as_object()
            .ok_or("the configuration must be a JSON object")?;
        let mut problems = Vec::new();
        for key in map.keys() {
            if BOTH.contains(&key.as_str()) {
                continue;
            }
            if KRAKEND2_ONLY.contains(&key.as_str()) {
                if !krakend2 {
                    problems.push(format!("\"{key}\" is read by KrakenD 2.x only (a version-3 file); KrakenD 1.x ignores it: remove it or use a version-3 file"));
                }
                continue;
            }
            problems.push(format!("unknown setting \"{key}\""));
        }
        let max_age = match map.get("max_age") {
            None => Duration::ZERO,
            Some(Value::String(text)) => {
                sepia_plugin_api::parse_duration(text).unwrap_or_else(|e| {
                    problems.push(format!("\"max_age\": {e}"));
                    Duration::ZERO
                })
            }
            Some(_) => {
                problems.push("\"max_age\" must be a duration such as \"12h\"".into());
                Duration::ZERO
            }
        };
        let options_success_status = match map.get("options_success_status") {
            None => 0,
            Some(v) => match v.as_u64().and_then(|n| u16::try_from(n).ok()) {
                Some(n) if (100..600).contains(&n) => n,
                _ => {
                    problems.push(
                        "\"options_success_status\" must be an HTTP status such as 204".into(),
                    );
                    0
                }
            },
        };
        let settings = Settings {
            allow_origins: strings(map, "allow_origins", &mut problems),
            allow_methods: strings(map, "allow_methods", &mut problems),
            allow_headers: strings(map, "allow_headers", &mut problems),
            expose_headers: strings(map, "expose_headers", &mut problems),
            allow_credentials: flag(map, "allow_credentials", &mut problems),
            allow_private_network: flag(map, "allow_private_network", &mut problems),
            options_passthrough: flag(map, "options_passthrough", &mut problems),
            options_success_status,
            max_age,
            debug: flag(map, "debug", &mut problems),
            krakend2,
        };
        if settings.allow_credentials && settings.allow_origins.iter().any(|o| o == "*") {
            tracing::warn!("allow_credentials with the origin \"*\": browsers refuse credentials for a wildcard origin, as the CORS standard says");
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems.join("; "))
        }
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
        assert!(err.contains("\"max_age\" must be"), "{err}");
    }
}
