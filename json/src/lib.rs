//! JSON encoding that matches Go's `encoding/json` byte for byte, as KrakenD
//! writes response bodies and JWT payloads: object keys sorted by byte order,
//! `<` `>` `&` U+2028 U+2029 escaped as `\u003c` `\u003e` `\u0026` `\u2028`
//! `\u2029`, numbers exactly as they were read (serde_json's
//! `arbitrary_precision` keeps their text).
//!
//! Key order comes from serde_json's default `Map`, a `BTreeMap<String, _>`,
//! whose order is the byte order Go sorts map keys by; the workspace must
//! never enable serde_json's `preserve_order`.
#![forbid(unsafe_code)]

use std::io;

use serde::Serialize;
use serde_json::{ser::Formatter, Value};

/// A serde_json formatter with Go's HTML-safe string escapes.
#[derive(Debug, Default, Clone, Copy)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let mut start = 0;
        for (index, ch) in fragment.char_indices() {
            let escape: &[u8] = match ch {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..index])?;
            writer.write_all(escape)?;
            start = index + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Appends the Go encoding of `value` to `out`.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    let mut serializer = serde_json::Serializer::with_formatter(out, GoFormatter);
    // Writing a `Value` into a Vec cannot fail: there is no I/O error and every
    // map key is a string.
    let _ = value.serialize(&mut serializer);
}

/// The Go encoding of `value`.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, value);
    out
}

/// The Go encoding of `value`, as text.
pub fn to_string(value: &Value) -> String {
    // Valid UTF-8: serde_json writes only UTF-8 and the escapes are ASCII.
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
