//! Reads a JSON object key by key, recording a [`Problem`] with its path for
//! every wrong type and remembering which keys were read, so that the rest can
//! be reported as unknown or not supported.

use std::time::Duration;

use sepia_plugin_api::parse_duration;
use serde_json::{Map, Value};

use crate::diagnostics::{index, join, Diagnostics, ProblemKind};

pub(crate) use sepia_json::type_name;

pub(crate) struct ObjectReader<'a> {
    pub(crate) path: String,
    map: &'a Map<String, Value>,
    read: Vec<&'a str>,
}

impl<'a> ObjectReader<'a> {
    pub(crate) fn new(path: String, map: &'a Map<String, Value>) -> Self {
        Self {
            path,
            map,
            read: Vec::new(),
        }
    }

    /// Reads an object at `path`, or records that it is not one.
    pub(crate) fn of(path: String, value: &'a Value, diags: &mut Diagnostics) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self::new(path, map)),
            other => {
                diags.invalid(
                    &path,
                    format!("expected an object, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of the first of `keys` present (later spellings are
    /// older aliases of the first), marking all of them read. Two spellings
    /// present at once is an error: which one wins would be a guess.
    pub(crate) fn raw_any(
        &mut self,
        keys: &[&'a str],
        diags: &mut Diagnostics,
    ) -> Option<(&'a str, &'a Value)> {
        let mut found: Option<(&'a str, &'a Value)> = None;
        for key in keys {
            self.read.push(key);
            if let Some(value) = self.map.get(*key) {
                if let Some((first, _)) = found {
                    diags.invalid(
                        &self.path_of(key),
                        format!("\"{key}\" and \"{first}\" are two spellings of one setting: keep only \"{}\"", keys[0]),
                    );
                } else {
                    found = Some((key, value));
                }
            }
        }
        found
    }

    pub(crate) fn raw(&mut self, key: &'a str) -> Option<&'a Value> {
        self.read.push(key);
        self.map.get(key)
    }

    fn typed<T>(
        &mut self,
        keys: &[&'a str],
        diags: &mut Diagnostics,
        expected: &str,
        convert: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Option<T> {
        let (key, value) = self.raw_any(keys, diags)?;
        let converted = convert(value);
        if converted.is_none() {
            diags.invalid(
                &self.path_of(key),
                format!("expected {expected}, found {}", type_name(value)),
            );
        }
        converted
    }

    pub(crate) fn string(&mut self, key: &'a str, diags: &mut Diagnostics) -> Option<String> {
        self.string_any(&[key], diags)
    }

    pub(crate) fn string_any(
        &mut self,
        keys: &[&'a str],
        diags: &mut Diagnostics,
    ) -> Option<String> {
        self.typed(keys, diags, "a string", |v| v.as_str().map(str::to_owned))
    }

    pub(crate) fn bool(&mut self, key: &'a str, diags: &mut Diagnostics) -> Option<bool> {
        self.typed(&[key], diags, "true or false", Value::as_bool)
    }

    /// An object of strings to strings, in file order.
    pub(crate) fn string_map(
        &mut self,
        key: &'a str,
        diags: &mut Diagnostics,
    ) -> Option<Vec<(String, String)>> {
        let path = self.path_of(key);
        let map = self.typed(&[key], diags, "an object of strings", Value::as_object)?;
        let mut out = Vec::with_capacity(map.len());
        for (name, value) in map {
            match value.as_str() {
                Some(text) => out.push((name.clone(), text.to_owned())),
                None => diags.invalid(
                    &join(&path, name),
                    format!("expected a string, found {}", type_name(value)),
                ),
            }
        }
        Some(out)
    }

    /// A non-negative whole number no larger than `max`.
    pub(crate) fn uint(&mut self, key: &'a str, max: u64, diags: &mut Diagnostics) -> Option<u64> {
        let value = self.typed(&[key], diags, "a whole number", Value::as_u64)?;
        if value > max {
            diags.invalid(
                &self.path_of(key),
                format!("{value} is too large: at most {max}"),
            );
            return None;
        }
        Some(value)
    }

    /// A timeout Go reads as unset when it is zero (the server's and the
    /// transport's): `None` for absent or zero.
    pub(crate) fn timeout(&mut self, key: &'a str, diags: &mut Diagnostics) -> Option<Duration> {
        self.duration(key, diags).filter(|d| !d.is_zero())
    }

    /// A Go duration string. KrakenD also accepts a bare number of
    /// nanoseconds; so does Sepia.
    pub(crate) fn duration(&mut self, key: &'a str, diags: &mut Diagnostics) -> Option<Duration> {
        let value = self.raw(key)?;
        let path = self.path_of(key);
        match value {
            Value::String(text) => match parse_duration(text) {
                Ok(duration) => Some(duration),
                Err(message) => {
                    diags.invalid(&path, message);
                    None
                }
            },
            Value::Number(n) => match n.as_u64() {
                Some(nanos) => Some(Duration::from_nanos(nanos)),
                None => {
                    diags.invalid(&path, "a duration must be a string such as \"2s\"");
                    None
                }
            },
            other => {
                diags.invalid(
                    &path,
                    format!(
                        "expected a duration such as \"2s\", found {}",
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn string_list(
        &mut self,
        key: &'a str,
        diags: &mut Diagnostics,
    ) -> Option<Vec<String>> {
        self.string_list_any(&[key], diags)
    }

    pub(crate) fn string_list_any(
        &mut self,
        keys: &[&'a str],
        diags: &mut Diagnostics,
    ) -> Option<Vec<String>> {
        let (key, value) = self.raw_any(keys, diags)?;
        let path = self.path_of(key);
        let Value::Array(items) = value else {
            diags.invalid(
                &path,
                format!("expected an array of strings, found {}", type_name(value)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => diags.invalid(
                    &index(&path, i),
                    format!("expected a string, found {}", type_name(item)),
                ),
            }
        }
        Some(out)
    }

    pub(crate) fn array(
        &mut self,
        key: &'a str,
        diags: &mut Diagnostics,
    ) -> Option<&'a Vec<Value>> {
        self.typed(&[key], diags, "an array", Value::as_array)
    }

    pub(crate) fn object(
        &mut self,
        key: &'a str,
        diags: &mut Diagnostics,
    ) -> Option<ObjectReader<'a>> {
        let path = self.path_of(key);
        let value = self.raw(key)?;
        ObjectReader::of(path, value, diags)
    }

    /// Reports every key that was not read: `not_supported` keys are KrakenD
    /// settings Sepia does not implement yet, the rest are unknown.
    pub(crate) fn finish(self, not_supported: &[&str], diags: &mut Diagnostics) {
        for key in self.map.keys() {
            if self.read.contains(&key.as_str()) {
                continue;
            }
            let path = join(&self.path, key);
            if not_supported.contains(&key.as_str()) {
                diags.push(
                    &path,
                    ProblemKind::NotSupported,
                    "a KrakenD setting Sepia does not implement yet: it is ignored",
                );
            } else {
                diags.push(
                    &path,
                    ProblemKind::UnknownKey,
                    "unknown key: neither KrakenD nor Sepia reads it (check the spelling)",
                );
            }
        }
    }
}
