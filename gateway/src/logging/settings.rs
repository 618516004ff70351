//! `telemetry/logging` (`github_com/devopsfaith/krakend-gologging` in
//! version-1/2 files), as krakend-gologging reads it in both generations.

use sepia_config::Config;
use serde_json::Value;

use super::pattern::Pattern;

/// The namespace.
pub const NAMESPACE: &str = "telemetry/logging";

/// krakend-gologging's default line: ` 2006/01/02 - 15:04:05.000 ▶ INFO message`.
pub const DEFAULT_PATTERN: &str =
    " %{time:2006/01/02 - 15:04:05.000} %{color}▶ %{level}%{color:reset} %{message}";
/// Its `logstash` line.
pub const LOGSTASH_PATTERN: &str = r#"{"@timestamp":"%{time:2006-01-02T15:04:05.000+00:00}", "@version": 1, "level": "%{level}", "message": "%{message}", "module": "%{module}"}"#;

/// The application log's settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The least severe level written, as a tracing filter directive.
    pub level: &'static str,
    /// Written before each line (not with `logstash` or `custom`).
    pub prefix: String,
    /// Lines go to the standard output (else the standard error).
    pub stdout: bool,
    /// The line pattern.
    pub pattern: Pattern,
    /// `logstash`: messages are escaped to stay inside the JSON string.
    pub json_message: bool,
    /// `syslog: true`: lines go to the local syslog too, at this facility
    /// (`syslog_facility`, KrakenD's `local3` by default).
    pub syslog: Option<syslog::Facility>,
    /// The one severity krakend-gologging gives every syslog message: the
    /// configured level's.
    pub syslog_severity: SyslogSeverity,
}

/// Syslog severities krakend-gologging maps its levels to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogSeverity {
    Critical,
    Error,
    Warning,
    Info,
    Debug,
}

fn invalid(key: &str, message: impl std::fmt::Display) -> String {
    format!("extra_config.\"{NAMESPACE}\".{key}: {message}")
}

impl LogSettings {
    /// The settings, when the file has the namespace.
    pub fn from_config(config: &Config) -> Result<Option<LogSettings>, String> {
        let Some(value) = config.extra_config.get(NAMESPACE) else {
            return Ok(None);
        };
        let Value::Object(map) = value else {
            return Err(format!(
                "extra_config.\"{NAMESPACE}\" must be an object with \"level\", \"prefix\", \"stdout\"…"
            ));
        };
        let text = |key: &str| -> Result<Option<&str>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(invalid(key, "must be a string")),
            }
        };
        let flag = |key: &str| -> Result<bool, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(invalid(key, "must be true or false")),
            }
        };
        // go-logging's names, in any case; KrakenD falls back to its basic
        // logger on another, here start-up stops.
        // One reading of the level: the filter, and the one severity
        // krakend-gologging gives every syslog message (CRITICAL when the
        // level is unset, its default).
        let (level, syslog_severity) = match text("level")?.map(str::to_ascii_uppercase).as_deref()
        {
            None => ("debug", SyslogSeverity::Critical),
            Some("DEBUG") => ("debug", SyslogSeverity::Debug),
            Some("INFO") | Some("NOTICE") => ("info", SyslogSeverity::Info),
            Some("WARNING") => ("warn", SyslogSeverity::Warning),
            Some("ERROR") => ("error", SyslogSeverity::Error),
            Some("CRITICAL") => ("error", SyslogSeverity::Critical),
            Some(other) => {
                return Err(invalid(
                    "level",
                    format!(
                        "\"{other}\" is not a level: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
                    ),
                ))
            }
        };
        let mut prefix = text("prefix")?.unwrap_or_default().to_owned();
        let format = text("format")?.unwrap_or("default");
        let (pattern, json_message) = match format {
            "logstash" => {
                prefix.clear();
                (LOGSTASH_PATTERN.to_owned(), true)
            }
            "custom" => {
                prefix.clear();
                let custom = text("custom_format")?.ok_or_else(|| {
                    invalid(
                        "custom_format",
                        "missing: \"format\": \"custom\" needs a pattern",
                    )
                })?;
                (custom.to_owned(), false)
            }
            // krakend-gologging uses its default pattern for any other
            // value, as for "default".
            _ => (DEFAULT_PATTERN.to_owned(), false),
        };
        let key = if format == "custom" {
            "custom_format"
        } else {
            "format"
        };
        let pattern = Pattern::parse(&pattern).map_err(|e| invalid(key, e))?;
        let facility = match text("syslog_facility")?
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => syslog::Facility::LOG_LOCAL3,
            Some(
                name @ ("local0" | "local1" | "local2" | "local3" | "local4" | "local5" | "local6"
                | "local7"),
            ) => name.parse().unwrap_or(syslog::Facility::LOG_LOCAL3),
            Some(other) => {
                return Err(invalid(
                    "syslog_facility",
                    format!("\"{other}\" is not a facility: use local0 to local7"),
                ))
            }
        };
        Ok(Some(LogSettings {
            level,
            prefix,
            stdout: flag("stdout")?,
            pattern,
            json_message,
            syslog: flag("syslog")?.then_some(facility),
            syslog_severity,
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(logging: Value, version: u64) -> Result<Option<LogSettings>, String> {
        let namespace = if version == 3 {
            NAMESPACE
        } else {
            "github_com/devopsfaith/krakend-gologging"
        };
        let text =
            json!({"version": version, "extra_config": {namespace: logging}, "endpoints": []})
                .to_string();
        LogSettings::from_config(&sepia_config::parse_str(&text, false).unwrap().config)
    }

    #[test]
    fn each_generations_spelling_is_read() {
        let s = settings(
            json!({"level": "WARNING", "prefix": "[KRAKEND]", "stdout": true}),
            3,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (s.level, s.prefix.as_str(), s.stdout),
            ("warn", "[KRAKEND]", true)
        );
        assert_eq!(s.pattern, Pattern::parse(DEFAULT_PATTERN).unwrap());
        let old = settings(
            json!({"level": "debug", "format": "logstash", "prefix": "x"}),
            2,
        )
        .unwrap()
        .unwrap();
        assert!(old.json_message && old.prefix.is_empty());
        assert_eq!(old.level, "debug");
    }

    #[test]
    fn bad_settings_are_refused_with_their_place() {
        let bad = |v: Value| settings(v, 3).unwrap_err();
        assert!(bad(json!({"level": "LOUD"})).contains(".level: \"LOUD\" is not a level"));
        assert!(bad(json!({"format": "custom"})).contains("custom_format: missing"));
        assert!(bad(json!({"format": "custom", "custom_format": "%{oops}"}))
            .contains("custom_format: %{oops}"));
        assert!(bad(json!({"stdout": "yes"})).contains("stdout: must be true or false"));
        assert!(bad(json!({"syslog": true, "syslog_facility": "kern"}))
            .contains("syslog_facility: \"kern\" is not a facility"));
    }
}
