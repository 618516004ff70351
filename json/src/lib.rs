//! JSON encoding that matches Go's `encoding/json` byte for byte, as KrakenD
//! writes response bodies and JWT payloads: object keys sorted by byte order,
//! `<` `>` `&` U+2028 U+2029 escaped as `\u003c` `\u003e` `\u0026` `\u2028`
//! `\u2029`, numbers exactly as they were read (serde_json's
//! `arbitrary_precision` keeps their text).
//!
//! Keys are sorted here rather than left to serde_json's `Map`: a dependency
//! (josekit) turns on `preserve_order`, which keeps insertion order instead.
#![forbid(unsafe_code)]

use serde_json::Value;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `text` as a JSON string with Go's escapes.
pub fn write_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, ch) in text.char_indices() {
        let escape: Option<&[u8]> = match ch {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '\u{8}' => Some(b"\\b"),
            '\u{c}' => Some(b"\\f"),
            '<' => Some(b"\\u003c"),
            '>' => Some(b"\\u003e"),
            '&' => Some(b"\\u0026"),
            '\u{2028}' => Some(b"\\u2028"),
            '\u{2029}' => Some(b"\\u2029"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        match escape {
            Some(escape) => out.extend_from_slice(escape),
            None => {
                let byte = ch as u32 as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        start = index + ch.len_utf8();
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends the Go encoding of `value` to `out`.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => out.extend_from_slice(number.to_string().as_bytes()),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// The Go encoding of `value`.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, value);
    out
}

/// The Go encoding of `value`, as text.
pub fn to_string(value: &Value) -> String {
    // Valid UTF-8: the input is UTF-8 and every escape is ASCII.
    String::from_utf8_lossy(&to_vec(value)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(text: &str) -> String {
        to_string(&serde_json::from_str::<Value>(text).unwrap())
    }

    #[test]
    fn keys_are_sorted_by_bytes() {
        assert_eq!(
            go(r#"{"b":1,"a":2,"B":3,"é":4,"aa":5}"#),
            r#"{"B":3,"a":2,"aa":5,"b":1,"é":4}"#
        );
    }

    #[test]
    fn html_and_line_separators_are_escaped_as_go_does() {
        assert_eq!(
            go(r#"{"x":"<a href=\"q\">&</a>\u2028\u2029"}"#),
            r#"{"x":"\u003ca href=\"q\"\u003e\u0026\u003c/a\u003e\u2028\u2029"}"#
        );
        assert_eq!(
            go(r#"{"<k>":"\n\t\u0001"}"#),
            r#"{"\u003ck\u003e":"\n\t\u0001"}"#
        );
    }

    #[test]
    fn numbers_keep_their_text() {
        assert_eq!(
            go(r#"{"big":12345678901234567890123,"f":1.50,"n":-0,"e":1.5e-7}"#),
            r#"{"big":12345678901234567890123,"e":1.5e-7,"f":1.50,"n":-0}"#
        );
    }

    #[test]
    fn exponents_are_normalised() {
        // serde_json writes exponents as `e+N`/`e-N` while parsing; Go would
        // keep `1E3`. Known, documented difference; the digits and the value
        // are the same.
        assert_eq!(go(r#"{"e":1E3}"#), r#"{"e":1e+3}"#);
    }

    #[test]
    fn nested_values_and_unicode_pass_through() {
        assert_eq!(
            go(r#"[{"z":[true,null]},"ü😀"]"#),
            r#"[{"z":[true,null]},"ü😀"]"#
        );
    }
}
