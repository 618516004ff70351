//! Reading a plugin's JSON settings the way KrakenD's components spell them
//! in either generation (`keys_to_sign` and the older `keys-to-sign`),
//! collecting every problem so that one `sepia check` names them all.
//! Unknown keys are problems: a misspelt setting must not silently weaken
//! security. A library for Sepia's plugins; it links nothing of the
//! gateway.

use std::time::Duration;

use serde_json::{Map, Value};

/// A setting's name and, when it has one, its older spelling.
pub type Known = (&'static str, Option<&'static str>);

/// Reads settings from one JSON object and gathers their problems.
pub struct SettingsReader<'a> {
    map: &'a Map<String, Value>,
    known: &'static [&'static [Known]],
    problems: Vec<String>,
}

impl<'a> SettingsReader<'a> {
    /// Parses `config_json`, which must be an object.
    pub fn parse(config_json: &str) -> Result<Value, String> {
        let value: Value = serde_json::from_str(config_json)
            .map_err(|e| format!("the configuration is not JSON: {e}"))?;
        if !value.is_object() {
            return Err("the configuration must be a JSON object".into());
        }
        Ok(value)
    }

    /// A reader of `value` (an object; anything else reads as empty) that
    /// knows the settings of the lists `known`. `explain_unknown` may give a better
    /// message for a key that is not known (a feature not supported yet).
    pub fn new(
        value: &'a Value,
        known: &'static [&'static [Known]],
        explain_unknown: impl Fn(&str) -> Option<String>,
    ) -> Self {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let map = value
            .as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        let mut reader = Self {
            map,
            known,
            problems: Vec::new(),
        };
        for key in map.keys() {
            let is_known = known
                .iter()
                .flat_map(|list| list.iter())
                .any(|(k, old)| k == key || old.is_some_and(|o| o == key));
            if !is_known {
                let message =
                    explain_unknown(key).unwrap_or_else(|| format!("unknown setting \"{key}\""));
                reader.problems.push(message);
            }
        }
        reader
    }

    /// Records a problem.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// Whether no problem was found so far.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// All problems, joined by "; ", or `Ok` when there are none.
    pub fn finish(self) -> Result<(), String> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems.join("; "))
        }
    }

    /// Whether the setting is present, in either spelling.
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key) || self.old_name(key).is_some_and(|o| self.map.contains_key(o))
    }

    fn old_name(&self, key: &str) -> Option<&'static str> {
        self.known
            .iter()
            .flat_map(|list| list.iter())
            .find(|(k, _)| *k == key)
            .and_then(|(_, old)| *old)
    }

    /// The raw value of a setting, in either spelling.
    pub fn value(&mut self, key: &str) -> Option<&'a Value> {
        let old = self.old_name(key);
        match (self.map.get(key), old.and_then(|o| self.map.get(o))) {
            (Some(v), Some(_)) => {
                self.problems.push(format!(
                    "\"{key}\" and \"{}\" are one setting: keep only \"{key}\"",
                    old.unwrap_or_default()
                ));
                Some(v)
            }
            (Some(v), None) | (None, Some(v)) => Some(v),
            (None, None) => None,
        }
    }

    /// A string setting.
    pub fn string(&mut self, key: &str) -> Option<String> {
        match self.value(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.problems.push(format!("\"{key}\" must be a string"));
                None
            }
        }
    }

    /// A boolean setting; absent is `false`.
    pub fn boolean(&mut self, key: &str) -> bool {
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

    /// A non-negative integer setting.
    pub fn unsigned(&mut self, key: &str) -> Option<u64> {
        match self.value(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            _ => {
                self.problems
                    .push(format!("\"{key}\" must be a whole number of 0 or more"));
                None
            }
        }
    }

    /// A number of 0 or more, whole or not (KrakenD reads rates as Go's
    /// `float64`).
    pub fn number(&mut self, key: &str) -> Option<f64> {
        match self.value(key)? {
            Value::Number(n) if n.as_f64().is_some_and(|f| f >= 0.0 && f.is_finite()) => n.as_f64(),
            _ => {
                self.problems
                    .push(format!("\"{key}\" must be a number of 0 or more"));
                None
            }
        }
    }

    /// An array of strings; absent is empty.
    pub fn strings(&mut self, key: &str) -> Vec<String> {
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

    /// A Go duration (`"5m"`, `"1h30m"`).
    pub fn duration(&mut self, key: &str) -> Option<Duration> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Known] = &[("jwk_url", Some("jwk-url")), ("n", None)];

    #[test]
    fn both_spellings_and_every_problem() {
        let value = SettingsReader::parse(r#"{"jwk-url":"u","n":-1,"colour":1}"#).unwrap();
        let mut r = SettingsReader::new(&value, &[KNOWN], |_| None);
        assert_eq!(r.string("jwk_url").as_deref(), Some("u"));
        assert!(r.has("jwk_url"));
        assert_eq!(r.unsigned("n"), None);
        assert_eq!(r.number("n"), None);
        let err = r.finish().unwrap_err();
        assert!(err.contains("unknown setting \"colour\""), "{err}");
        assert!(err.contains("\"n\" must be a whole number"), "{err}");
        assert!(err.contains("\"n\" must be a number of 0 or more"), "{err}");
        let value = SettingsReader::parse(r#"{"jwk-url":"u","jwk_url":"v"}"#).unwrap();
        let mut r = SettingsReader::new(&value, &[KNOWN], |_| None);
        assert_eq!(r.string("jwk_url").as_deref(), Some("v"));
        assert!(r.finish().unwrap_err().contains("are one setting"));
        assert!(SettingsReader::parse("[1]").is_err());
    }
}
