//! Reshaping one backend's decoded response before the merge, as KrakenD's
//! entity formatter does, in its order: `target`, then `allow` (or else
//! `deny`), then `mapping`, then `group`; with `flatmap_filter`, its
//! operations take the place of `allow`, `deny` and `mapping`, as lura's
//! flatmap formatter does. Paths are dot-separated keys into nested
//! objects.

use sepia_config::Shaping;
use serde_json::{Map, Value};

/// Applies `shaping` to `data`.
pub fn apply(shaping: &Shaping, mut data: Map<String, Value>) -> Map<String, Value> {
    if let Some(target) = &shaping.target {
        data = extract(target, data);
    }
    if let Some(ops) = &shaping.flatmap {
        data = super::flatmap::apply(ops, data);
    } else if !shaping.allow.is_empty() {
        let mut kept = Map::new();
        for path in &shaping.allow {
            copy_path(&data, &mut kept, &path.split('.').collect::<Vec<_>>());
        }
        data = kept;
    } else {
        for path in &shaping.deny {
            remove_path(&mut data, &path.split('.').collect::<Vec<_>>());
        }
    }
    if shaping.flatmap.is_none() {
        for (from, to) in &shaping.mapping {
            if let Some(value) = data.remove(from) {
                data.insert(to.clone(), value);
            }
        }
    }
    if let Some(group) = &shaping.group {
        let mut grouped = Map::new();
        grouped.insert(group.clone(), Value::Object(data));
        data = grouped;
    }
    data
}

/// The object at a dot path; anything else (missing, not an object) leaves
/// nothing, as in KrakenD.
fn extract(path: &str, data: Map<String, Value>) -> Map<String, Value> {
    let mut current = Value::Object(data);
    for key in path.split('.') {
        current = match current {
            Value::Object(mut map) => map.remove(key).unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    match current {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn copy_path(source: &Map<String, Value>, target: &mut Map<String, Value>, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(value) = source.get(*first) else {
        return;
    };
    if rest.is_empty() {
        target.insert((*first).to_owned(), value.clone());
        return;
    }
    if let Value::Object(child) = value {
        let slot = target
            .entry((*first).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(slot) = slot {
            copy_path(child, slot, rest);
        }
    }
}

fn remove_path(data: &mut Map<String, Value>, path: &[&str]) {
    match path {
        [] => {}
        [last] => {
            data.remove(*last);
        }
        [first, rest @ ..] => {
            if let Some(Value::Object(child)) = data.get_mut(*first) {
                remove_path(child, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shaped(shaping: Shaping, data: Value) -> Value {
        Value::Object(apply(&shaping, data.as_object().unwrap().clone()))
    }

    fn sample() -> Value {
        json!({"a": {"b": 1, "x": 2, "deep": {"c": 3, "d": 4}}, "c": 3, "d": 4, "data": {"id": 7, "name": "n"}})
    }

    #[test]
    fn target_extracts_nested_objects_or_nothing() {
        let s = |t: &str| Shaping {
            target: Some(t.into()),
            ..Default::default()
        };
        assert_eq!(shaped(s("data"), sample()), json!({"id": 7, "name": "n"}));
        assert_eq!(shaped(s("a.deep"), sample()), json!({"c": 3, "d": 4}));
        assert_eq!(shaped(s("c"), sample()), json!({}));
        assert_eq!(shaped(s("missing"), sample()), json!({}));
    }

    #[test]
    fn allow_keeps_dot_paths_and_deny_removes_them() {
        let allow = Shaping {
            allow: vec!["a.b".into(), "a.deep.d".into(), "c".into(), "nope.x".into()],
            ..Default::default()
        };
        assert_eq!(
            shaped(allow, sample()),
            json!({"a": {"b": 1, "deep": {"d": 4}}, "c": 3})
        );
        let deny = Shaping {
            deny: vec![
                "a.x".into(),
                "a.deep.c".into(),
                "d".into(),
                "data".into(),
                "nope.x".into(),
            ],
            ..Default::default()
        };
        assert_eq!(
            shaped(deny, sample()),
            json!({"a": {"b": 1, "deep": {"d": 4}}, "c": 3})
        );
    }

    #[test]
    fn mapping_then_group_in_krakend_order() {
        let s = Shaping {
            target: Some("data".into()),
            allow: vec!["id".into()],
            mapping: vec![
                ("id".into(), "user_id".into()),
                ("absent".into(), "x".into()),
            ],
            group: Some("user".into()),
            ..Default::default()
        };
        assert_eq!(shaped(s, sample()), json!({"user": {"user_id": 7}}));
    }

    /// The inputs and expected bodies of lura's entity formatter tests
    /// (proxy/formatter_test.go).
    #[test]
    fn lura_formatter_cases_give_luras_bodies() {
        let sample = json!({"supu": 42, "tupu": false, "foo": "bar", "a": {"b": true, "c": 42, "d": "tupu"}});
        // Lura runs its allow and deny cases with the same field list.
        let fields: Vec<String> = ["supu", "a.b", "a.c", "foo.unknown"]
            .map(String::from)
            .to_vec();
        let allow = Shaping {
            allow: fields.clone(),
            ..Default::default()
        };
        assert_eq!(
            shaped(allow, sample.clone()),
            json!({"supu": 42, "a": {"b": true, "c": 42}})
        );
        let deny = Shaping {
            deny: fields,
            ..Default::default()
        };
        assert_eq!(
            shaped(deny, sample.clone()),
            json!({"tupu": false, "foo": "bar", "a": {"d": "tupu"}})
        );
        let group = Shaping {
            group: Some("group1".into()),
            ..Default::default()
        };
        assert_eq!(
            shaped(group, json!({"supu": 42, "tupu": false, "foo": "bar"})),
            json!({"group1": {"supu": 42, "tupu": false, "foo": "bar"}})
        );
        // Mapping renames top-level keys only: "a.b" is no key.
        let mapping = Shaping {
            mapping: vec![
                ("supu".into(), "SUPUUUUU".into()),
                ("tupu".into(), "TUPUUUUU".into()),
                ("a.b".into(), "a.BOOOOO".into()),
            ],
            ..Default::default()
        };
        assert_eq!(
            shaped(mapping, sample.clone()),
            json!({"SUPUUUUU": 42, "TUPUUUUU": false, "foo": "bar", "a": {"b": true, "c": 42, "d": "tupu"}})
        );
        let target = |name: &str| Shaping {
            target: Some(name.into()),
            ..Default::default()
        };
        assert_eq!(
            shaped(
                target("group1"),
                json!({"supu": 42, "group1": {"b": true, "c": 42, "d": "tupu"}})
            ),
            json!({"b": true, "c": 42, "d": "tupu"})
        );
        assert_eq!(shaped(target("group1"), json!({"supu": 42})), json!({}));
        assert_eq!(
            shaped(target("group1"), json!({"supu": 42, "group1": false})),
            json!({})
        );
        let altogether = Shaping {
            target: Some("a".into()),
            allow: vec!["d".into()],
            mapping: vec![("d".into(), "D".into())],
            group: Some("group".into()),
            ..Default::default()
        };
        assert_eq!(shaped(altogether, sample), json!({"group": {"D": "tupu"}}));
    }
}
