//! JSON encoding that matches Go's `encoding/json` byte for byte, as KrakenD
//! writes response bodies and JWT payloads: object keys sorted by byte order,
//! `<` `>` `&` U+2028 U+2029 escaped as `\u003c` `\u003e` `\u0026` `\u2028`
//! `\u2029`, numbers exactly as they were read (serde_json's
//! `arbitrary_precision` keeps their text).
//!
//! Keys are sorted here rather than left to serde_json's `Map`: a dependency
//! (josekit) turns on `preserve_order`, which keeps insertion order instead.
#![forbid(unsafe_code)]

mod canonical;
mod go_text;
mod members;

pub use canonical::{write_canonical, write_canonical_object, JsonError, Kind, Member};
pub use go_text::{claim_list, claim_text, write_go_list, write_go_value};
pub use members::canonical_members;
use serde_json::Value;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Which bytes start an escape: control characters, `"`, `\\`, `<`, `>`,
/// `&`, and 0xE2, the lead byte of U+2028 and U+2029 (checked further).
pub(crate) const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xE2] = true;
    table
};

/// Whether the byte at `i` of UTF-8 `bytes` starts something Go escapes.
pub(crate) fn needs_escape(bytes: &[u8], i: usize) -> bool {
    let byte = bytes[i];
    NEEDS_ESCAPE[usize::from(byte)]
        && (byte != 0xE2
            || (bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9))))
}

/// Appends `text` as a JSON string with Go's escapes. Works on bytes: every
/// byte that starts an escape is ASCII or 0xE2, so UTF-8 sequences are copied
/// whole.
pub fn write_string(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if !NEEDS_ESCAPE[usize::from(byte)] {
            i += 1;
            continue;
        }
        let (escape, len): (&[u8], usize) = match byte {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            0x08 => (b"\\b", 1),
            0x0C => (b"\\f", 1),
            b'<' => (b"\\u003c", 1),
            b'>' => (b"\\u003e", 1),
            b'&' => (b"\\u0026", 1),
            0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA8) => {
                (b"\\u2028", 3)
            }
            0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA9) => {
                (b"\\u2029", 3)
            }
            0xE2 => {
                i += 1;
                continue;
            }
            control => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(control >> 4)]);
                out.push(HEX[usize::from(control & 0xf)]);
                i += 1;
                start = i;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        i += len;
        start = i;
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

/// The number Go's `encoding/json` writes for a `float64`: the shortest
/// text that reads back as `f`, in fixed notation, or in exponent notation
/// (`1e+21`, `1e-7`) below 1e-6 and from 1e21 on. `None` for NaN and the
/// infinities, which Go refuses to encode.
pub fn float64_number(f: f64) -> Option<serde_json::Number> {
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    let text = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's shortest exponent form is Go's without the sign of a
        // positive exponent.
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    } else {
        format!("{f}")
    };
    text.parse().ok()
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` (what `expvar` writes of a
/// float): the shortest digits that read back as `f`, in exponent notation
/// (`1.5e+06`, `1e-05`) when the exponent is below -4 or from 6 on.
pub fn go_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust's `{:e}` is the shortest round-tripping mantissa, `1.5e6`.
    let text = format!("{f:e}");
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return text;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return text;
    };
    if (-4..6).contains(&exponent) {
        return format!("{f}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// What kind of JSON value this is, for messages: "an object", "null", ...
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
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
    fn other_three_byte_sequences_starting_like_line_separators_pass() {
        // U+2020 (†) and U+20AC (€) share the 0xE2 lead byte.
        assert_eq!(go(r#"["† € \u2028x\u2029"]"#), "[\"† € \\u2028x\\u2029\"]");
    }

    #[test]
    fn nested_values_and_unicode_pass_through() {
        assert_eq!(
            go(r#"[{"z":[true,null]},"ü😀"]"#),
            r#"[{"z":[true,null]},"ü😀"]"#
        );
    }

    #[test]
    fn floats_are_formatted_as_gos_g_verb() {
        for (f, text) in [
            (0.0, "0"),
            (5.5, "5.5"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1.5e6, "1.5e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_float_g(f), text, "{f}");
        }
    }

    #[test]
    fn float64_numbers_are_written_as_go_writes_them() {
        for (f, text) in [
            (10.0, "10"),
            (1.5, "1.5"),
            (-0.25, "-0.25"),
            (0.0, "0"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (123456789.125, "123456789.125"),
        ] {
            assert_eq!(float64_number(f).unwrap().to_string(), text, "{f}");
        }
        assert!(float64_number(f64::NAN).is_none());
        assert!(float64_number(f64::INFINITY).is_none());
    }
}
