//! Re-encoding JSON text the way [`crate::write_value`] writes a decoded
//! value (Go's encoding: keys sorted, Go's escapes, numbers as written),
//! without building a tree: one pass over the bytes, writing as it reads.
//! An object whose keys arrive in order (the common case: most services,
//! and everything Sepia itself writes) costs no reordering; one whose keys
//! do not is rewritten from its members' spans.
//!
//! It accepts what serde_json accepts and refuses the rest, so that the
//! gateway answers the same whichever path a body takes; the tests compare
//! both paths byte for byte.

use std::{borrow::Cow, ops::Range};

use crate::{needs_escape, write_string, NEEDS_ESCAPE};

/// serde_json's nesting limit, kept so both paths refuse the same bodies.
const MAX_DEPTH: usize = 128;

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at byte {offset}")]
pub struct JsonError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// The kind of a top-level value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `{...}`
    Object,
    /// `[...]`
    Array,
    /// `"..."`
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
}

impl Kind {
    /// "an object", "null", ... for messages, as [`crate::type_name`].
    pub fn name(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// One member of a canonical top-level object: its decoded name, and where
/// its canonical value stands in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<'a> {
    /// The key, unescaped.
    pub name: Cow<'a, str>,
    /// The canonical key's bytes in the output, quotes included.
    pub key: Range<usize>,
    /// The canonical value's bytes in the output.
    pub value: Range<usize>,
}

/// Appends the canonical encoding of the JSON `input` to `out`; the kind of
/// its top-level value. On error `out` may hold part of the encoding.
pub fn write_canonical(out: &mut Vec<u8>, input: &[u8]) -> Result<Kind, JsonError> {
    let mut reader = Reader::new(input)?;
    let kind = reader.value(out, 0)?;
    reader.end()?;
    Ok(kind)
}

/// Like [`write_canonical`] for a top-level object, also returning its
/// members in output order (sorted, a repeated key once, the last one).
/// `Ok(Err(kind))` when the top level is valid JSON but not an object.
pub fn write_canonical_object<'a>(
    out: &mut Vec<u8>,
    input: &'a [u8],
) -> Result<Result<Vec<Member<'a>>, Kind>, JsonError> {
    let mut reader = Reader::new(input)?;
    reader.skip_whitespace();
    if reader.peek() != Some(b'{') {
        let kind = reader.value(out, 0)?;
        reader.end()?;
        return Ok(Err(kind));
    }
    reader.object(out, 0)?;
    reader.end()?;
    Ok(Ok(reader
        .pending
        .drain(..)
        .map(|m| Member {
            name: match m.name {
                Cow::Borrowed(raw) => Cow::Borrowed(as_str(raw)),
                Cow::Owned(decoded) => Cow::Owned(String::from_utf8(decoded).unwrap_or_default()),
            },
            key: m.whole.start..m.value.start - 1,
            value: m.value,
        })
        .collect()))
}

/// A member while its object is read: its key's bytes (unescaped; UTF-8,
/// compared as bytes as Go sorts them), key and value spans in the output.
struct Pending<'a> {
    name: Cow<'a, [u8]>,
    /// From the key's opening quote to the value's end.
    whole: Range<usize>,
    value: Range<usize>,
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// The members of the objects being read, innermost last: one list
    /// for the whole text instead of an allocation an object.
    pending: Vec<Pending<'a>>,
    /// Where an unsorted object's members wait while they are rewritten.
    scratch: Vec<u8>,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Result<Self, JsonError> {
        // Validating UTF-8 once up front lets strings be copied as bytes.
        if let Err(e) = std::str::from_utf8(input) {
            return Err(JsonError {
                offset: e.valid_up_to(),
                reason: "invalid UTF-8",
            });
        }
        Ok(Self {
            input,
            pos: 0,
            pending: Vec::with_capacity(16),
            scratch: Vec::new(),
        })
    }

    fn error(&self, reason: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn end(&mut self) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.pos != self.input.len() {
            return Err(self.error("trailing characters"));
        }
        Ok(())
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.peek() != Some(byte) {
            return Err(self.error(reason));
        }
        self.pos += 1;
        Ok(())
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<Kind, JsonError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => {
                let outer = self.pending.len();
                self.object(out, depth)?;
                self.pending.truncate(outer);
                Ok(Kind::Object)
            }
            Some(b'[') => self.array(out, depth).map(|_| Kind::Array),
            Some(b'"') => self.string(out).map(|_| Kind::String),
            Some(b't') => self.literal(out, b"true").map(|_| Kind::Bool),
            Some(b'f') => self.literal(out, b"false").map(|_| Kind::Bool),
            Some(b'n') => self.literal(out, b"null").map(|_| Kind::Null),
            Some(b'-' | b'0'..=b'9') => self.number(out).map(|_| Kind::Number),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn literal(&mut self, out: &mut Vec<u8>, word: &'static [u8]) -> Result<(), JsonError> {
        if !self.input[self.pos..].starts_with(word) {
            return Err(self.error("expected a value"));
        }
        self.pos += word.len();
        out.extend_from_slice(word);
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Numbers keep their text; only the exponent is written as serde_json
    /// writes it: `e`, an explicit sign, the digits.
    fn number(&mut self, out: &mut Vec<u8>) -> Result<(), JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error("invalid number: leading zero"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number: no digit after the point"));
            }
        }
        out.extend_from_slice(&self.input[start..self.pos]);
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            out.push(b'e');
            match self.peek() {
                Some(b'-') => {
                    self.pos += 1;
                    out.push(b'-');
                }
                Some(b'+') => {
                    self.pos += 1;
                    out.push(b'+');
                }
                _ => out.push(b'+'),
            }
            let digits_start = self.pos;
            if self.digits() == 0 {
                return Err(self.error("invalid number: no digit in the exponent"));
            }
            out.extend_from_slice(&self.input[digits_start..self.pos]);
        }
        Ok(())
    }

    /// Reads a string at the opening quote and writes it with Go's escapes;
    /// returns it unescaped (borrowed when it has no escapes).
    fn string(&mut self, out: &mut Vec<u8>) -> Result<Cow<'a, [u8]>, JsonError> {
        self.pos += 1;
        let start = self.pos;
        let input = self.input;
        let mut clean = true;
        loop {
            // Most bytes need no attention: skip them by the escape table,
            // which also holds the quote, the backslash and control bytes.
            let rest = &input[self.pos..];
            self.pos += rest
                .iter()
                .position(|&b| NEEDS_ESCAPE[usize::from(b)])
                .unwrap_or(rest.len());
            match input.get(self.pos) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    clean = false;
                    break;
                }
                Some(&byte) if byte < 0x20 => {
                    return Err(self.error("control character in a string"))
                }
                Some(_) => {
                    if needs_escape(input, self.pos) {
                        clean = false;
                    }
                    self.pos += 1;
                }
            }
        }
        if clean {
            let raw = &input[start..self.pos];
            self.pos += 1;
            out.push(b'"');
            out.extend_from_slice(raw);
            out.push(b'"');
            return Ok(Cow::Borrowed(raw));
        }
        // Escapes (or characters Go escapes): decode, then write as Go does.
        let mut text = String::from(as_str(&input[start..self.pos]));
        loop {
            match input.get(self.pos) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut text)?;
                }
                Some(&byte) if byte < 0x20 => {
                    return Err(self.error("control character in a string"))
                }
                Some(_) => {
                    let run = self.pos;
                    while let Some(&b) = input.get(self.pos) {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.pos += 1;
                    }
                    text.push_str(as_str(&input[run..self.pos]));
                }
            }
        }
        write_string(out, &text);
        Ok(Cow::Owned(text.into_bytes()))
    }

    fn escape(&mut self, text: &mut String) -> Result<(), JsonError> {
        let Some(&byte) = self.input.get(self.pos) else {
            return Err(self.error("unterminated string"));
        };
        self.pos += 1;
        let decoded = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                match first {
                    0xD800..=0xDBFF => {
                        if !self.input[self.pos..].starts_with(b"\\u") {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        self.pos += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                        char::from_u32(code)
                            .ok_or_else(|| self.error("invalid unicode code point"))?
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.error("lone trailing surrogate in hex escape"))
                    }
                    code => char::from_u32(code)
                        .ok_or_else(|| self.error("invalid unicode code point"))?,
                }
            }
            _ => return Err(self.error("invalid escape")),
        };
        text.push(decoded);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .input
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("unterminated string"))?;
        let mut code = 0u32;
        for &d in digits {
            let value = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error("invalid escape")),
            };
            code = code * 16 + u32::from(value);
        }
        self.pos += 4;
        Ok(code)
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), JsonError> {
        if depth + 1 >= MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        self.pos += 1;
        out.push(b'[');
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            out.push(b']');
            return Ok(());
        }
        loop {
            self.value(out, depth + 1)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    out.push(b',');
                }
                Some(b']') => {
                    self.pos += 1;
                    out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    /// Writes the object's members as they come; if their keys were not
    /// sorted and unique, rewrites them in order from their spans. Leaves
    /// its members on top of `self.pending`.
    fn object(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), JsonError> {
        if depth + 1 >= MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        self.pos += 1;
        out.push(b'{');
        let body_start = out.len();
        let first = self.pending.len();
        let mut in_order = true;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            out.push(b'}');
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            if self.pending.len() > first {
                out.push(b',');
            }
            let whole_start = out.len();
            let name = self.string(out)?;
            self.expect(b':', "expected ':'")?;
            out.push(b':');
            let value_start = out.len();
            self.value(out, depth + 1)?;
            if self.pending.len() > first {
                if let Some(last) = self.pending.last() {
                    in_order &= compare_keys(&last.name, &name).is_lt();
                }
            }
            self.pending.push(Pending {
                name,
                whole: whole_start..out.len(),
                value: value_start..out.len(),
            });
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
        if !in_order {
            reorder(out, body_start, &mut self.pending, first, &mut self.scratch);
        }
        out.push(b'}');
        Ok(())
    }
}

/// Sorts the members from `first` on by key (bytes, as Go), keeps the last
/// of a repeated key (as decoding into a map does), and rewrites them after
/// `start`, through `scratch`.
fn reorder(
    out: &mut Vec<u8>,
    start: usize,
    pending: &mut Vec<Pending<'_>>,
    first: usize,
    scratch: &mut Vec<u8>,
) {
    // Stable: a repeated key's members stay in input order.
    pending[first..].sort_by(|a, b| compare_keys(&a.name, &b.name));
    if pending[first..].windows(2).any(|w| w[0].name == w[1].name) {
        let mut members = pending.split_off(first);
        members.dedup_by(|later, kept| {
            let same = later.name == kept.name;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        pending.append(&mut members);
    }
    scratch.clear();
    scratch.extend_from_slice(&out[start..]);
    out.truncate(start);
    for (i, member) in pending[first..].iter_mut().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let new_start = out.len();
        out.extend_from_slice(&scratch[member.whole.start - start..member.whole.end - start]);
        let shift = |at: usize| at - member.whole.start + new_start;
        member.value = shift(member.value.start)..shift(member.value.end);
        member.whole = new_start..out.len();
    }
}

/// Byte order, as Go sorts keys; the first bytes settle most pairs without
/// a call to `memcmp`.
fn compare_keys(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

fn as_str(bytes: &[u8]) -> &str {
    // The whole input was checked to be UTF-8, and spans end on ASCII
    // delimiters, so every span is UTF-8 too.
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The tree path's answer: `Some(bytes)` or `None` when serde_json
    /// refuses the text.
    fn through_tree(input: &[u8]) -> Option<Vec<u8>> {
        serde_json::from_slice::<Value>(input)
            .ok()
            .map(|v| crate::to_vec(&v))
    }

    fn streamed(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        write_canonical(&mut out, input).ok().map(|_| out)
    }

    fn same(input: &str) {
        assert_eq!(
            streamed(input.as_bytes()).map(String::from_utf8),
            through_tree(input.as_bytes()).map(String::from_utf8),
            "input: {input}"
        );
    }

    #[test]
    fn both_paths_agree_on_hand_picked_texts() {
        for text in [
            r#"{"b":1,"a":2,"B":3,"é":4,"aa":5}"#,
            r#"{"x":"<a href=\"q\">&</a>\u2028\u2029 † €"}"#,
            r#"{"<k>":"\n\t\u0001\/\b\f\r","\u00e9":"\ud83d\ude00"}"#,
            r#"{"big":12345678901234567890123,"f":1.50,"n":-0,"e":1.5e-7,"E":1E3,"p":2e+05,"z":0e0}"#,
            r#" { "dup" : 1 , "a" : [ 1 , { "z" : null , "y" : true } , "s" ] , "dup" : { "k" : false } } "#,
            r#"{"dup":1,"dup":2}"#,
            r#"{"z":{"d":1,"c":{"b":1,"a":2}},"y":[]}"#,
            r#"[]"#,
            r#"[{}, [], "", 0, -1.0, false]"#,
            r#""just a string""#,
            r#"42"#,
            r#"null"#,
            r#"{"é":1,"e":2,"z":3,"\u0065":4}"#,
        ] {
            same(text);
        }
    }

    #[test]
    fn both_paths_refuse_the_same_texts() {
        for text in [
            "",
            " ",
            "{",
            "}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "01",
            "1.",
            "-",
            "1e",
            "1e+",
            ".5",
            "+1",
            "tru",
            "nul",
            "\"unterminated",
            "\"bad \\x escape\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"tab\there\"",
            "{} extra",
            "{'a':1}",
            "{a:1}",
            "NaN",
            "[1]]",
        ] {
            assert_eq!(streamed(text.as_bytes()), None, "accepted: {text:?}");
            assert_eq!(
                through_tree(text.as_bytes()),
                None,
                "serde accepted: {text:?}"
            );
        }
        assert_eq!(streamed(b"\"\xff\""), None);
        let deep_ok = format!("{}{}", "[".repeat(127), "]".repeat(127));
        let too_deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(
            streamed(deep_ok.as_bytes()).is_some(),
            through_tree(deep_ok.as_bytes()).is_some()
        );
        assert_eq!(
            streamed(too_deep.as_bytes()).is_some(),
            through_tree(too_deep.as_bytes()).is_some()
        );
    }

    /// A small deterministic generator of JSON texts: keys in random order
    /// with repeats, escapes, odd whitespace and every number form.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }

        fn ws(&mut self, out: &mut String) {
            out.push_str(self.pick(&["", "", " ", "\n  ", "\t"]));
        }

        fn string(&mut self, out: &mut String) {
            out.push('"');
            for _ in 0..self.next() % 4 {
                out.push_str(self.pick(&[
                    "a",
                    "b",
                    "Z",
                    "é",
                    "€",
                    "<",
                    "&",
                    "\\n",
                    "\\\"",
                    "\\u00e9",
                    "\\u2028",
                    "\\ud83d\\ude00",
                    "\\/",
                    "key",
                    "\u{2029}",
                ]));
            }
            out.push('"');
        }

        fn value(&mut self, out: &mut String, depth: u32) {
            let choice = if depth > 3 {
                self.next() % 4
            } else {
                self.next() % 6
            };
            match choice {
                0 => self.string(out),
                1 => out.push_str(self.pick(&[
                    "0",
                    "-0",
                    "1.50",
                    "12345678901234567890123",
                    "1E3",
                    "2e-5",
                    "-3.25E+10",
                    "7",
                ])),
                2 => out.push_str(self.pick(&["true", "false", "null"])),
                3 => self.string(out),
                4 => {
                    out.push('[');
                    for i in 0..self.next() % 4 {
                        if i > 0 {
                            out.push(',');
                        }
                        self.ws(out);
                        self.value(out, depth + 1);
                        self.ws(out);
                    }
                    out.push(']');
                }
                _ => self.object(out, depth),
            }
        }

        fn object(&mut self, out: &mut String, depth: u32) {
            out.push('{');
            for i in 0..self.next() % 6 {
                if i > 0 {
                    out.push(',');
                }
                self.ws(out);
                self.string(out);
                self.ws(out);
                out.push(':');
                self.ws(out);
                self.value(out, depth + 1);
            }
            out.push('}');
        }
    }

    #[test]
    fn both_paths_agree_on_generated_texts() {
        let mut generator = Gen(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let mut text = String::new();
            generator.object(&mut text, 0);
            same(&text);
        }
    }

    #[test]
    fn object_members_point_at_their_canonical_values() {
        let mut out = b"prefix".to_vec();
        let members =
            write_canonical_object(&mut out, br#"{"b":{"y":1,"x":2},"a":"\u00e9","b":[1]}"#)
                .unwrap()
                .unwrap();
        assert_eq!(&out[6..], r#"{"a":"é","b":[1]}"#.as_bytes());
        let names: Vec<&str> = members.iter().map(|m| m.name.as_ref()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(&out[members[0].value.clone()], "\"é\"".as_bytes());
        assert_eq!(&out[members[0].key.clone()], b"\"a\"");
        assert_eq!(&out[members[1].value.clone()], b"[1]");
        let mut out = Vec::new();
        assert_eq!(
            write_canonical_object(&mut out, b" [1] ").unwrap(),
            Err(Kind::Array)
        );
    }

    #[test]
    fn nested_objects_leave_no_members_behind() {
        // The inner objects' members share the reader's list with the outer
        // ones: only the top level's may come back, in order, each once.
        let mut out = Vec::new();
        let members = write_canonical_object(
            &mut out,
            br#"{"z":{"b":{"d":1,"c":2},"a":3},"y":[{"q":1,"p":2}],"z":{"k":{"m":1,"l":2}},"x":0}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"x":0,"y":[{"p":2,"q":1}],"z":{"k":{"l":2,"m":1}}}"#
        );
        let names: Vec<&str> = members.iter().map(|m| m.name.as_ref()).collect();
        assert_eq!(names, ["x", "y", "z"]);
        assert_eq!(&out[members[1].key.clone()], b"\"y\"");
        assert_eq!(&out[members[2].value.clone()], br#"{"k":{"l":2,"m":1}}"#);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_bytes_are_refused_or_written_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            let _ = write_canonical(&mut out, &bytes);
        }

        #[test]
        fn the_canonical_form_keeps_the_value_and_is_a_fixed_point(value in json_value()) {
            let text = serde_json::to_vec(&value).unwrap();
            let mut once = Vec::new();
            write_canonical(&mut once, &text).unwrap();
            let reparsed: Value = serde_json::from_slice(&once).unwrap();
            prop_assert_eq!(reparsed, value);
            let mut twice = Vec::new();
            write_canonical(&mut twice, &once).unwrap();
            prop_assert_eq!(once, twice);
        }
    }
}
