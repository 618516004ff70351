//! Locating the top-level members of a JSON object this crate wrote, without
//! decoding it: what the gateway hands response hooks so that they need not
//! read a body again.

use std::ops::Range;

/// The key (quotes included) and value ranges of each top-level member of
/// `text`, a JSON object in the canonical form [`crate::write_canonical`]
/// writes (no white space). `None` when `text` is not such an object.
pub fn canonical_members(text: &[u8]) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    if text.first() != Some(&b'{') || text.last() != Some(&b'}') {
        return None;
    }
    let mut members = Vec::new();
    let mut pos = 1;
    if text.get(pos) == Some(&b'}') {
        return (pos + 1 == text.len()).then_some(members);
    }
    loop {
        let key_start = pos;
        let key_end = string_end(text, pos)?;
        if text.get(key_end) != Some(&b':') {
            return None;
        }
        let value_start = key_end + 1;
        let value_end = value_end(text, value_start)?;
        members.push((key_start..key_end, value_start..value_end));
        match text.get(value_end) {
            Some(b',') => pos = value_end + 1,
            Some(b'}') if value_end + 1 == text.len() => return Some(members),
            _ => return None,
        }
    }
}

/// The end (after the closing quote) of the string opening at `start`.
fn string_end(text: &[u8], start: usize) -> Option<usize> {
    if text.get(start) != Some(&b'"') {
        return None;
    }
    let mut pos = start + 1;
    while let Some(&byte) = text.get(pos) {
        match byte {
            b'"' => return Some(pos + 1),
            b'\\' => pos += 2,
            _ => pos += 1,
        }
    }
    None
}

/// The end of the value starting at `start`.
fn value_end(text: &[u8], start: usize) -> Option<usize> {
    match text.get(start)? {
        b'"' => string_end(text, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut pos = start;
            while let Some(&byte) = text.get(pos) {
                match byte {
                    b'"' => {
                        pos = string_end(text, pos)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(pos + 1);
                        }
                    }
                    _ => {}
                }
                pos += 1;
            }
            None
        }
        _ => {
            // A number, true, false or null: up to the next separator.
            let rest = text.get(start..)?;
            let len = rest.iter().position(|b| matches!(b, b',' | b'}' | b']'))?;
            (len > 0).then_some(start + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Option<Vec<(String, String)>> {
        canonical_members(text.as_bytes()).map(|members| {
            members
                .into_iter()
                .map(|(k, v)| (text[k].to_owned(), text[v].to_owned()))
                .collect()
        })
    }

    #[test]
    fn members_of_canonical_objects() {
        assert_eq!(pairs("{}"), Some(vec![]));
        assert_eq!(
            pairs(r#"{"a":1,"b\"}":"x,}","c":{"d":[1,{"e":"]"}]},"f":null,"g":-1.5e3}"#),
            Some(vec![
                (r#""a""#.into(), "1".into()),
                (r#""b\"}""#.into(), r#""x,}""#.into()),
                (r#""c""#.into(), r#"{"d":[1,{"e":"]"}]}"#.into()),
                (r#""f""#.into(), "null".into()),
                (r#""g""#.into(), "-1.5e3".into()),
            ])
        );
    }

    #[test]
    fn what_is_not_a_canonical_object_has_no_members() {
        for text in [
            "",
            "[]",
            "1",
            r#""x""#,
            "{",
            r#"{"a":1"#,
            r#"{"a" :1}"#,
            r#"{"a":}"#,
            r#"{"a":1}x"#,
            r#"{"a":1,}"#,
            r#"{"a":"open}"#,
        ] {
            assert_eq!(pairs(text), None, "{text}");
        }
    }

    #[test]
    fn agrees_with_the_canonical_writer() {
        let input = br#"{ "z": [1, 2], "a": {"y": "\u00e9", "b": true}, "m": "\u2028<" }"#;
        let mut out = Vec::new();
        let written = crate::write_canonical_object(&mut out, input)
            .unwrap()
            .unwrap();
        let found = canonical_members(&out).unwrap();
        let expected: Vec<_> = written
            .iter()
            .map(|m| (m.key.clone(), m.value.clone()))
            .collect();
        assert_eq!(found, expected);
    }
}
