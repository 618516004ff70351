//! The plugin's configuration, read strictly: an unknown key or a wrong type
//! is an error that names it.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Panic,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub on: Hook,
    pub kind: FaultKind,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settings {
    pub request_set: Vec<(String, String)>,
    pub request_remove: Vec<String>,
    pub response_set: Vec<(String, String)>,
    pub response_remove: Vec<String>,
    pub block_when_header: Option<String>,
    pub log_responses: bool,
    pub fault: Option<Fault>,
    /// Milliseconds each response hook sleeps: a slow plugin, for testing.
    pub delay_ms: u64,
}

fn string_map(key: &str, value: &Value) -> Result<Vec<(String, String)>, String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("\"{key}\" must be an object of header names to values"))?;
    map.iter()
        .map(|(name, v)| {
            v.as_str()
                .map(|s| (name.clone(), s.to_owned()))
                .ok_or_else(|| format!("\"{key}\".\"{name}\" must be a string"))
        })
        .collect()
}

fn string_list(key: &str, value: &Value) -> Result<Vec<String>, String> {
    let list = value
        .as_array()
        .ok_or_else(|| format!("\"{key}\" must be an array of header names"))?;
    list.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("\"{key}\" must hold only strings"))
        })
        .collect()
}

fn fault(value: &Value) -> Result<Fault, String> {
    let map: &Map<String, Value> = value
        .as_object()
        .ok_or("\"fault\" must be an object such as {\"on\": \"request\", \"kind\": \"panic\"}")?;
    let on = match map.get("on").and_then(Value::as_str) {
        Some("request") => Hook::Request,
        Some("response") => Hook::Response,
        _ => return Err("\"fault.on\" must be \"request\" or \"response\"".into()),
    };
    let kind = match map.get("kind").and_then(Value::as_str) {
        Some("panic") => FaultKind::Panic,
        Some("error") => FaultKind::Error,
        _ => return Err("\"fault.kind\" must be \"panic\" or \"error\"".into()),
    };
    Ok(Fault { on, kind })
}

impl Settings {
    pub fn parse(config_json: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(config_json)
            .map_err(|e| format!("configuration is not JSON: {e}"))?;
        let map = value
            .as_object()
            .ok_or("the configuration must be a JSON object")?;
        let mut settings = Settings::default();
        for (key, value) in map {
            match key.as_str() {
                "request_set" => settings.request_set = string_map(key, value)?,
                "request_remove" => settings.request_remove = string_list(key, value)?,
                "response_set" => settings.response_set = string_map(key, value)?,
                "response_remove" => settings.response_remove = string_list(key, value)?,
                "block_when_header" => {
                    settings.block_when_header = Some(
                        value
                            .as_str()
                            .ok_or("\"block_when_header\" must be a header name")?
                            .to_owned(),
                    )
                }
                "log_responses" => {
                    settings.log_responses = value
                        .as_bool()
                        .ok_or("\"log_responses\" must be true or false")?
                }
                "fault" => settings.fault = Some(fault(value)?),
                "delay_ms" => {
                    settings.delay_ms = value
                        .as_u64()
                        .ok_or("\"delay_ms\" must be a whole number of milliseconds")?
                }
                other => {
                    return Err(format!(
                        "unknown setting \"{other}\": use request_set, request_remove, response_set, response_remove, block_when_header, log_responses, fault or delay_ms"
                    ))
                }
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_refuse_unknown_keys() {
        let s = Settings::parse(
            r#"{"response_set":{"x-a":"1"},"request_remove":["cookie"],"fault":{"on":"response","kind":"error"}}"#,
        )
        .unwrap();
        assert_eq!(s.response_set, vec![("x-a".to_owned(), "1".to_owned())]);
        assert_eq!(
            s.fault,
            Some(Fault {
                on: Hook::Response,
                kind: FaultKind::Error
            })
        );
        assert!(Settings::parse(r#"{"colour":1}"#)
            .unwrap_err()
            .contains("unknown setting \"colour\""));
        assert!(Settings::parse(r#"{"response_set":{"x":1}}"#)
            .unwrap_err()
            .contains("must be a string"));
        assert!(Settings::parse("[]").is_err());
    }
}
