//! krakend-circuitbreaker's settings: `interval`, `timeout` (whole
//! seconds), `max_errors` (`maxErrors` in version 1 and 2 files), `name`,
//! `log_status_change` (`logStatusChange`).

use std::time::Duration;

use sepia_plugin_settings::{Known, SettingsReader};

use crate::breaker::BreakerSettings;

#[derive(Debug)]
pub struct Settings {
    pub breaker: BreakerSettings,
    pub log_status_change: bool,
}

const V3: &[Known] = &[
    ("interval", None),
    ("timeout", None),
    ("max_errors", None),
    ("name", None),
    ("log_status_change", None),
];
const V1: &[Known] = &[
    ("interval", None),
    ("timeout", None),
    ("maxErrors", None),
    ("name", None),
    ("logStatusChange", None),
];

impl Settings {
    pub fn parse(config_json: &str, krakend2: bool) -> Result<Self, String> {
        let value = SettingsReader::parse(config_json)?;
        let (known, errors_key, log_key): (&'static [&'static [Known]], _, _) = if krakend2 {
            (&[V3], "max_errors", "log_status_change")
        } else {
            (&[V1], "maxErrors", "logStatusChange")
        };
        let mut r = SettingsReader::new(&value, known, move |key| {
            let other = match key {
                "max_errors" | "maxErrors" => errors_key,
                "log_status_change" | "logStatusChange" => log_key,
                _ => return None,
            };
            Some(format!(
                "unknown setting \"{key}\": a version {} file spells it \"{other}\"",
                if krakend2 { "3" } else { "1 or 2" }
            ))
        });
        let name = r.string("name").unwrap_or_default();
        let interval = r.unsigned("interval").unwrap_or(0);
        let timeout = r.unsigned("timeout").unwrap_or(0);
        let max_errors = r.unsigned(errors_key).unwrap_or(0);
        let log_status_change = r.boolean(log_key);
        if max_errors > u64::from(u32::MAX) {
            r.problem(format!("\"{errors_key}\" is too large"));
        }
        r.finish()?;
        if name.is_empty() && interval == 0 && timeout == 0 && max_errors == 0 && !log_status_change
        {
            // KrakenD builds no breaker from an empty configuration.
            return Err(format!(
                "the namespace sets nothing, and KrakenD builds no breaker from it: set \"{errors_key}\", \"timeout\" and \"interval\", or remove it"
            ));
        }
        Ok(Self {
            breaker: BreakerSettings {
                name,
                interval: Duration::from_secs(interval),
                timeout: Duration::from_secs(timeout),
                max_errors: u32::try_from(max_errors).unwrap_or(u32::MAX),
            },
            log_status_change,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generation_spells_its_settings() {
        let v3 = Settings::parse(
            r#"{"interval":60,"timeout":10,"max_errors":1,"name":"cb","log_status_change":true}"#,
            true,
        )
        .unwrap();
        assert_eq!(v3.breaker.max_errors, 1);
        assert_eq!(v3.breaker.timeout, Duration::from_secs(10));
        assert!(v3.log_status_change);
        let v1 = Settings::parse(
            r#"{"timeout":5,"maxErrors":2,"logStatusChange":true}"#,
            false,
        )
        .unwrap();
        assert_eq!(v1.breaker.max_errors, 2);
        let err = Settings::parse(r#"{"maxErrors":2}"#, true).unwrap_err();
        assert!(err.contains("spells it \"max_errors\""), "{err}");
        let err = Settings::parse(r#"{"timeout":"10s"}"#, true).unwrap_err();
        assert!(err.contains("\"timeout\" must be a whole number"), "{err}");
        assert!(Settings::parse("{}", true)
            .unwrap_err()
            .contains("sets nothing"));
    }
}
