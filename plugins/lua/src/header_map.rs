//! Headers as krakend-lua's scripts see them: Go's `http.Header`, a map
//! from canonical names to their values. The headers stay the list the
//! gateway handed over (lower-case names), looked up in place, so a script
//! that touches none, or one, costs no conversion of the others.

use sepia_plugin_api::{canonical_header_name, Header, RVec};
use serde_json::{Map, Value};

/// A request's or answer's headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    headers: RVec<Header>,
}

/// Whether `given` is Go's canonical form of the header name `stored`.
fn is_canonical_form(stored: &str, given: &str) -> bool {
    stored.eq_ignore_ascii_case(given) && canonical_header_name(stored) == given
}

fn text(header: &Header) -> String {
    String::from_utf8_lossy(&header.value).into_owned()
}

impl HeaderMap {
    pub fn new(headers: RVec<Header>) -> HeaderMap {
        HeaderMap { headers }
    }

    /// The values under exactly this name, as a Go map lookup finds them
    /// (`Content-Type` finds `content-type`; `content-type` finds nothing).
    pub fn exact(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|h| is_canonical_form(h.name.as_str(), name))
            .map(text)
            .collect()
    }

    /// The values of `name` in any case (Go's `Header.Values`).
    pub fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .map(text)
            .collect()
    }

    /// Replaces the values of `name`.
    pub fn set(&mut self, name: &str, values: Vec<String>) {
        self.delete(name);
        let name = name.to_ascii_lowercase();
        for value in values {
            self.headers.push(Header::new(&name, value.into_bytes()));
        }
    }

    pub fn delete(&mut self, name: &str) {
        self.headers
            .retain(|h| !h.name.as_str().eq_ignore_ascii_case(name));
    }

    /// `{"Name": ["value", ...]}` under canonical names, for a `luaTable`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for header in self.headers.iter() {
            let entry = map
                .entry(canonical_header_name(header.name.as_str()))
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(values) = entry {
                values.push(Value::String(text(header)));
            }
        }
        Value::Object(map)
    }

    pub fn into_plugin(self) -> RVec<Header> {
        self.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_as_go_finds_them() {
        let mut map = HeaderMap::new(RVec::from(vec![
            Header::new("x-a", "1"),
            Header::new("X-A", "2"),
            Header::new("accept", "*/*"),
        ]));
        assert_eq!(map.exact("X-A"), ["1", "2"]);
        assert!(map.exact("x-a").is_empty());
        assert_eq!(map.values("x-a"), ["1", "2"]);
        assert_eq!(map.to_json()["X-A"], serde_json::json!(["1", "2"]));
        map.set("X-B", vec!["3".into()]);
        map.delete("ACCEPT");
        let back = map.into_plugin();
        let names: Vec<&str> = back.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x-a", "x-a", "x-b"]);
    }
}
