//! Sequential backends (`proxy.sequential`): a backend's `url_pattern` may
//! use `{respN_field}`, a value from the response of an earlier backend N,
//! found by a dot path into its (shaped) data.

use serde_json::{Map, Value};

/// One `{respN_path}` of a backend's `url_pattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRef {
    /// The placeholder's name, as the pattern writes it.
    pub name: String,
    /// The earlier backend whose response it reads.
    pub backend: usize,
    /// The dot path into that response.
    pub path: Vec<String>,
}

impl ResponseRef {
    /// The response references among a pattern's placeholders that are not
    /// endpoint parameters (the configuration was validated).
    pub fn of_pattern(url_pattern: &str, endpoint_params: &[String]) -> Vec<Self> {
        let names = sepia_config::placeholders(url_pattern).unwrap_or_default();
        let mut refs: Vec<Self> = Vec::new();
        for name in names {
            if endpoint_params.iter().any(|p| p == name) || refs.iter().any(|r| r.name == name) {
                continue;
            }
            if let Some((backend, path)) = sepia_config::response_reference(name) {
                refs.push(ResponseRef {
                    name: name.to_owned(),
                    backend,
                    path: path.split('.').map(str::to_owned).collect(),
                });
            }
        }
        refs
    }

    /// The value for the URL, from the earlier responses; `None` when that
    /// response lacks the field (or that backend gave nothing).
    pub fn resolve(&self, responses: &[Map<String, Value>]) -> Option<String> {
        let (last, parents) = self.path.split_last()?;
        let mut data = responses.get(self.backend)?;
        for key in parents {
            data = data.get(key)?.as_object()?;
        }
        let mut text = String::new();
        sepia_json::write_go_list(data.get(last)?, &mut text);
        Some(percent_encode(&text))
    }
}

/// Escapes what cannot stand in a URL path segment or query value. KrakenD
/// inserts values raw, so a space or `?` in a value breaks its URL; unreserved
/// characters and the comma of joined arrays are kept.
pub fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b',') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn references_are_found_in_patterns_once_each() {
        let refs = ResponseRef::of_pattern(
            "/u/{id}/{resp0_user.id}?t={resp1_tags}&again={resp0_user.id}",
            &["id".to_owned()],
        );
        assert_eq!(
            refs,
            vec![
                ResponseRef {
                    name: "resp0_user.id".into(),
                    backend: 0,
                    path: vec!["user".into(), "id".into()],
                },
                ResponseRef {
                    name: "resp1_tags".into(),
                    backend: 1,
                    path: vec!["tags".into()],
                },
            ]
        );
    }

    #[test]
    fn values_are_written_as_krakend_writes_them_and_escaped() {
        let responses = vec![
            serde_json::from_str(
                r#"{"user": {"id": 42, "name": "Jo Doe"}, "tags": ["a", 1.50, true]}"#,
            )
            .unwrap(),
            object(json!({"nested": {"m": {"b": 2, "a": [1, "x"]}}, "none": null})),
        ];
        let text = |name: &str| {
            let (backend, path) = sepia_config::response_reference(name).unwrap();
            ResponseRef {
                name: name.into(),
                backend,
                path: path.split('.').map(str::to_owned).collect(),
            }
            .resolve(&responses)
        };
        assert_eq!(text("resp0_user.id").as_deref(), Some("42"));
        assert_eq!(text("resp0_user.name").as_deref(), Some("Jo%20Doe"));
        assert_eq!(text("resp0_tags").as_deref(), Some("a,1.50,true"));
        assert_eq!(
            text("resp1_nested.m").as_deref(),
            Some("map%5Ba%3A%5B1%20x%5D%20b%3A2%5D")
        );
        assert_eq!(text("resp1_none").as_deref(), Some("%3Cnil%3E"));
        assert_eq!(text("resp0_user.missing"), None);
        assert_eq!(text("resp0_tags.deeper"), None);
        assert_eq!(text("resp2_id"), None);
    }
}
