//! Merging the responses of several backends, as KrakenD does: a shallow
//! union of keys, later backends (in configuration order) winning a clash.

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
