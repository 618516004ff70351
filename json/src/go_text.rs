//! Go's text of a value that `encoding/json` decoded into `interface{}`, as
//! KrakenD puts such values into URLs and headers: `fmt`'s `%v`, and
//! krakend-jose's `Claims.Get` for token claims.

use serde_json::Value;

/// Appends Go's `%v` of a decoded JSON value: `<nil>`, `true`, numbers as
/// they were read, strings bare, `[a b]`, `map[k:v]` with sorted keys.
pub fn write_go_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Go prints a map's keys sorted.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_go_value(&map[key], out);
            }
            out.push(']');
        }
    }
}

/// Appends an array's items in Go's `%v`, joined by commas; any other value
/// in `%v`.
pub fn write_go_list(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_value(item, out);
            }
        }
        other => write_go_value(other, out),
    }
}

/// krakend-jose's text of a claim (`Claims.Get`), for headers and URLs:
/// strings bare, an array's items joined by commas, objects, booleans and
/// null as JSON. Numbers differ by generation: krakend-jose 1.4 (`krakend2`
/// false) prints every number as `%f` (`1735689600.000000`), the current one
/// prints whole numbers as integers and the rest as `%f`.
pub fn claim_text(value: &Value, krakend2: bool) -> String {
    let mut out = String::new();
    match value {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if krakend2 && (f - f.round()).abs() <= 1e-6 {
                out.push_str(&format!("{}", f.round() as i64));
            } else {
                out.push_str(&format!("{f:.6}"));
            }
        }
        Value::Array(_) => write_go_list(value, &mut out),
        other => out.push_str(&crate::to_string(other)),
    }
    out
}

/// The current krakend-jose's claim as a list of header values
/// (`Claims.List`, with `propagate_claims_preserve_array`): an array's items
/// each in `%v`, anything else as [`claim_text`] gives it.
pub fn claim_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let mut text = String::new();
                write_go_value(item, &mut text);
                text
            })
            .collect(),
        other => vec![claim_text(other, true)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_read_as_each_generation_writes_them() {
        assert_eq!(claim_text(&json!("alice"), true), "alice");
        assert_eq!(claim_text(&json!(1735689600), true), "1735689600");
        assert_eq!(claim_text(&json!(1735689600), false), "1735689600.000000");
        assert_eq!(claim_text(&json!(1.5), true), "1.500000");
        assert_eq!(claim_text(&json!(["a", 1, true]), true), "a,1,true");
        assert_eq!(
            claim_text(&json!({"b": 1, "a": "<"}), true),
            r#"{"a":"\u003c","b":1}"#
        );
        assert_eq!(claim_text(&json!(null), false), "null");
        assert_eq!(claim_list(&json!(["a", {"k": 1}])), ["a", "map[k:1]"]);
        let mut text = String::new();
        write_go_list(&json!([null, [1, 2]]), &mut text);
        assert_eq!(text, "<nil>,[1 2]");
    }
}
