//! Merging the responses of several backends, as KrakenD does: a shallow
//! union of keys, later backends (in configuration order) winning a clash.
//! Decoded objects merge as maps; bodies already in Go's encoding merge as
//! text, from their members' spans.

use std::{borrow::Cow, ops::Range};

use sepia_json::Member;
use serde_json::{Map, Value};

/// Merges `parts` in order into one object.
pub fn merge(parts: impl IntoIterator<Item = Map<String, Value>>) -> Map<String, Value> {
    let mut iter = parts.into_iter();
    let mut merged = iter.next().unwrap_or_default();
    for part in iter {
        merged.extend(part);
    }
    merged
}

/// One backend's object in Go's encoding, with where its members stand.
pub struct CanonicalPart {
    body: Vec<u8>,
    members: Vec<PartMember>,
}

struct PartMember {
    key: Range<usize>,
    value: Range<usize>,
    /// The unescaped name when the key has escapes; otherwise the key's
    /// text between its quotes is the name.
    escaped_name: Option<String>,
}

impl CanonicalPart {
    /// `body` as `write_canonical_object` wrote it, with its members.
    pub fn new(body: Vec<u8>, members: &[Member<'_>]) -> Self {
        let members = members
            .iter()
            .map(|m| PartMember {
                key: m.key.clone(),
                value: m.value.clone(),
                escaped_name: match &m.name {
                    Cow::Owned(name) => Some(name.clone()),
                    Cow::Borrowed(_) => None,
                },
            })
            .collect();
        Self { body, members }
    }

    fn name<'a>(&'a self, member: &'a PartMember) -> &'a [u8] {
        match &member.escaped_name {
            Some(name) => name.as_bytes(),
            None => &self.body[member.key.start + 1..member.key.end - 1],
        }
    }
}

/// Merges the parts in order into one object in Go's encoding: keys sorted,
/// a later part winning a clash.
pub fn merge_canonical(parts: &[CanonicalPart]) -> Vec<u8> {
    let mut all: Vec<(&[u8], &CanonicalPart, &PartMember)> = parts
        .iter()
        .flat_map(|part| part.members.iter().map(move |m| (part.name(m), part, m)))
        .collect();
    // Stable: for one name, the parts stay in order and the last one wins.
    all.sort_by(|a, b| a.0.cmp(b.0));
    let capacity = parts.iter().map(|p| p.body.len()).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(capacity);
    out.push(b'{');
    let mut written = 0;
    for (i, (name, part, member)) in all.iter().enumerate() {
        if all.get(i + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        if written > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&part.body[member.key.clone()]);
        out.push(b':');
        out.extend_from_slice(&part.body[member.value.clone()]);
        written += 1;
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(text: &str) -> CanonicalPart {
        let mut out = Vec::new();
        let members = sepia_json::write_canonical_object(&mut out, text.as_bytes())
            .unwrap()
            .unwrap();
        CanonicalPart::new(out, &members)
    }

    #[test]
    fn encoded_parts_merge_as_decoded_ones_do() {
        let texts = [
            r#"{"a":1,"b":{"x":1},"<":"lt","shared":"first"}"#,
            r#"{"c":3,"b":{"y":2},"shared":"second","<":"escaped"}"#,
            r#"{}"#,
            r#"{"z":[1,2],"a":"last"}"#,
        ];
        let merged = merge_canonical(&texts.map(part));
        let decoded = merge(texts.map(|t| serde_json::from_str::<Map<String, Value>>(t).unwrap()));
        assert_eq!(
            String::from_utf8(merged).unwrap(),
            sepia_json::to_string(&Value::Object(decoded))
        );
        assert_eq!(merge_canonical(&[]), b"{}");
    }

    #[test]
    fn later_backends_win_and_keys_are_united() {
        let a = json!({"a": 1, "b": {"x": 1}}).as_object().unwrap().clone();
        let b = json!({"b": {"y": 2}, "c": 3}).as_object().unwrap().clone();
        assert_eq!(
            Value::Object(merge([a, b])),
            json!({"a": 1, "b": {"y": 2}, "c": 3})
        );
        assert!(merge(Vec::new()).is_empty());
    }
}
