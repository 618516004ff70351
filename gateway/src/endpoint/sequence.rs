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
        let text = field_text(responses.get(self.backend)?, &self.path)?;
        Some(percent_encode(&text))
    }
}

/// The value at a dot path of a response, as lura writes it into a
/// parameter: text as it is, a list joined by commas, anything else as Go's
/// `%v`.
pub fn field_text(data: &Map<String, Value>, path: &[String]) -> Option<String> {
    let (last, parents) = path.split_last()?;
    let mut data = data;
    for key in parents {
        data = data.get(key)?.as_object()?;
    }
    let mut text = String::new();
    sepia_json::write_go_list(data.get(last)?, &mut text);
    Some(text)
}

/// The values of `proxy.sequential_propagated_params` for the backend at
/// `position`, in order: from the earlier backends' data, or a no-op
/// backend's whole body (`respN`). A value lura would not set (a later
/// backend's, a missing field, the body of a backend that is not no-op)
/// reads as empty, as a missing parameter does.
pub fn propagated_values(
    params: &[sepia_config::PropagatedParam],
    position: usize,
    responses: &[Map<String, Value>],
    raw_bodies: &[Option<bytes::Bytes>],
) -> Vec<String> {
    params
        .iter()
        .map(|param| {
            if param.backend >= position {
                return String::new();
            }
            let found = if param.path.is_empty() {
                raw_bodies
                    .get(param.backend)
                    .and_then(Option::as_ref)
                    .map(|body| String::from_utf8_lossy(body).into_owned())
            } else {
                responses
                    .get(param.backend)
                    .and_then(|data| field_text(data, &param.path))
            };
            found.unwrap_or_default()
        })
        .collect()
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

    #[test]
    fn propagated_values_come_from_earlier_backends_only() {
        let param = |backend: usize, path: &[&str]| sepia_config::PropagatedParam {
            name: String::new(),
            backend,
            path: path.iter().map(|s| s.to_string()).collect(),
        };
        let responses = vec![object(json!({"first": {"foo": 42}})), Map::new()];
        let raw = vec![
            None,
            Some(bytes::Bytes::from_static(b"{\"message\":\"pong\"}")),
        ];
        let params = [
            param(0, &["first", "foo"]),
            param(1, &[]),
            param(0, &[]),
            param(2, &["x"]),
        ];
        assert_eq!(
            propagated_values(&params, 2, &responses, &raw),
            vec!["42", "{\"message\":\"pong\"}", "", ""]
        );
        assert_eq!(propagated_values(&params, 1, &responses, &raw)[1], "");
    }
}
