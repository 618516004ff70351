//! Decodes a backend body according to its `encoding`, into the JSON object
//! the endpoint merges and writes.

use sepia_config::BackendEncoding;
use serde_json::{Map, Value};

/// Why a body does not decode; the pipeline adds the backend URL.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// The encoding's name, for messages.
pub fn encoding_name(encoding: BackendEncoding) -> &'static str {
    match encoding {
        BackendEncoding::Json => "json",
        BackendEncoding::SafeJson => "safejson",
        BackendEncoding::String => "string",
        BackendEncoding::NoOp => "no-op",
        BackendEncoding::Xml => "xml",
        BackendEncoding::Rss => "rss",
    }
}

fn wrap(key: &str, value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    map
}

/// Where `safejson` puts a scalar answer: `result` in lura 1.4 (and 2.0),
/// so for version 1 and 2 files; `content` from lura 2.1 on, so for version
/// 3 files (KrakenD 2.x).
pub fn safejson_scalar_key(config_version: u64) -> &'static str {
    if sepia_plugin_api::is_krakend2(config_version) {
        "content"
    } else {
        "result"
    }
}

/// Decodes `body`. `json` wants an object (an array with `is_collection`,
/// kept under `collection`); `safejson` takes any value (arrays under
/// `collection`, scalars under `scalar_key`); `string` puts the text under
/// `content`.
pub fn decode(
    encoding: BackendEncoding,
    is_collection: bool,
    scalar_key: &str,
    body: &[u8],
) -> Result<Map<String, Value>, DecodeError> {
    match encoding {
        // lura's no-op parser keeps the body aside and gives no data, so a
        // no-op backend adds nothing to a merge.
        BackendEncoding::NoOp => Ok(Map::new()),
        BackendEncoding::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) if !is_collection => Ok(map),
            Ok(Value::Array(items)) if is_collection => Ok(wrap("collection", Value::Array(items))),
            Ok(Value::Object(_)) => Err(DecodeError(
                "expected a JSON array (the backend is marked is_collection), found an object"
                    .into(),
            )),
            Ok(other) => Err(DecodeError(format!(
                "expected a JSON object, found {}",
                sepia_json::type_name(&other)
            ))),
            Err(e) => Err(DecodeError(e.to_string())),
        },
        BackendEncoding::SafeJson => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(Value::Array(items)) => Ok(wrap("collection", Value::Array(items))),
            Ok(other) => Ok(wrap(scalar_key, other)),
            Err(e) => Err(DecodeError(e.to_string())),
        },
        BackendEncoding::Xml => super::xml::decode(body, is_collection),
        BackendEncoding::Rss => super::feed::decode(body).map_err(DecodeError),
        BackendEncoding::String => match std::str::from_utf8(body) {
            Ok(text) => Ok(wrap("content", Value::String(text.to_owned()))),
            Err(e) => Err(DecodeError(format!("the body is not UTF-8 text: {e}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_decodes_as_krakend_does() {
        assert_eq!(
            decode(BackendEncoding::Json, false, "content", br#"{"a":1}"#).unwrap()["a"],
            1
        );
        assert!(decode(BackendEncoding::Json, false, "content", b"[1]")
            .unwrap_err()
            .0
            .contains("found an array"));
        assert_eq!(
            decode(BackendEncoding::Json, true, "content", b"[1]").unwrap()["collection"][0],
            1
        );
        assert!(decode(BackendEncoding::Json, true, "content", b"{}")
            .unwrap_err()
            .0
            .contains("is_collection"));
        assert!(decode(BackendEncoding::Json, false, "content", b"<html>").is_err());
        assert!(
            decode(BackendEncoding::NoOp, false, "content", br#"{"a":1}"#)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            decode(BackendEncoding::SafeJson, false, "content", b"[1,2]").unwrap()["collection"][1],
            2
        );
        assert_eq!(
            decode(BackendEncoding::SafeJson, false, "content", b"true").unwrap()["content"],
            true
        );
        assert_eq!(
            decode(BackendEncoding::String, false, "content", b"hi").unwrap()["content"],
            "hi"
        );
        assert!(decode(BackendEncoding::String, false, "content", &[0xff]).is_err());
        // lura 1.4 put safejson's scalars under `result`, lura 2.1 on under
        // `content`.
        assert_eq!(safejson_scalar_key(2), "result");
        assert_eq!(safejson_scalar_key(3), "content");
        assert_eq!(
            decode(
                BackendEncoding::SafeJson,
                false,
                safejson_scalar_key(2),
                b"42"
            )
            .unwrap()["result"],
            42
        );
    }
}
