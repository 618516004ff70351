//! Headers as krakend-lua's scripts see them: Go's `http.Header`, a map
//! from canonical names to their values.

use sepia_plugin_api::{canonical_header_name, Header, RVec};
use serde_json::{Map, Value};

/// Headers by canonical name, in the order they first came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, Vec<String>)>,
}

impl HeaderMap {
    pub fn from_plugin(headers: &[Header]) -> HeaderMap {
        let mut map = HeaderMap::default();
        for header in headers {
            let name = canonical_header_name(header.name.as_str());
            let value = String::from_utf8_lossy(&header.value).into_owned();
            match map.entries.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => map.entries.push((name, vec![value])),
            }
        }
        map
    }

    /// The values under exactly this name, as a Go map lookup finds them.
    pub fn exact(&self, name: &str) -> &[String] {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// The values of `name` in any case (Go's `Header.Values`).
    pub fn values(&self, name: &str) -> &[String] {
        self.exact(&canonical_header_name(name))
    }

    /// Replaces the values of `name`.
    pub fn set(&mut self, name: &str, values: Vec<String>) {
        let name = canonical_header_name(name);
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = values,
            None => self.entries.push((name, values)),
        }
    }

    pub fn delete(&mut self, name: &str) {
        let name = canonical_header_name(name);
        self.entries.retain(|(n, _)| *n != name);
    }

    /// `{"Name": ["value", ...]}`, for a `luaTable`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (name, values) in &self.entries {
            map.insert(
                name.clone(),
                Value::Array(values.iter().cloned().map(Value::String).collect()),
            );
        }
        Value::Object(map)
    }

    pub fn into_plugin(self) -> RVec<Header> {
        let mut out = RVec::new();
        for (name, values) in self.entries {
            for value in values {
                out.push(Header::new(&name.to_ascii_lowercase(), value.into_bytes()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_kept_under_canonical_names() {
        let mut map = HeaderMap::from_plugin(&[
            Header::new("x-a", "1"),
            Header::new("X-A", "2"),
            Header::new("accept", "*/*"),
        ]);
        assert_eq!(map.exact("X-A"), ["1", "2"]);
        assert!(map.exact("x-a").is_empty());
        assert_eq!(map.values("x-a"), ["1", "2"]);
        map.set("x-b", vec!["3".into()]);
        map.delete("ACCEPT");
        let back = map.into_plugin();
        let names: Vec<&str> = back.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x-a", "x-a", "x-b"]);
    }
}
