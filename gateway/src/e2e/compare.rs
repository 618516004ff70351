//! Whether an answer is the one a spec expects, by the rules of KrakenD's
//! harness: the status equal; each header named with exactly the values
//! listed (`[""]`: absent); then the body, by schema, byte for byte, or as
//! JSON whose numbers are Go's `float64`s.

use serde_json::Value;

use super::{
    client::Received,
    spec::{Expected, ExpectedBody},
};

/// Every difference between `received` and `expected`; none when it passes.
pub fn differences(received: &Received, expected: &Expected) -> Vec<String> {
    let mut problems = Vec::new();
    if received.status.as_u16() != expected.status {
        problems.push(format!(
            "status {} where {} is expected",
            received.status.as_u16(),
            expected.status
        ));
    }
    for (name, wanted) in &expected.headers {
        let have: Vec<String> = received
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let absent_wanted = wanted.first().is_some_and(String::is_empty);
        if !(have == *wanted || (have.is_empty() && absent_wanted)) {
            problems.push(format!(
                "header {}: {have:?} where {wanted:?} is expected",
                sepia_plugin_api::canonical_header_name(name.as_str())
            ));
        }
    }
    let text = || String::from_utf8_lossy(&received.body).into_owned();
    match &expected.body {
        ExpectedBody::Unchecked => {}
        ExpectedBody::Exact(wanted) => {
            if received.body != wanted.as_bytes() {
                problems.push(format!("body {:?} where {wanted:?} is expected", text()));
            }
        }
        ExpectedBody::Json(wanted) => {
            let have = serde_json::from_slice::<Value>(&received.body).map(|v| as_go(&v));
            if have.as_ref().ok() != Some(&as_go(wanted)) {
                problems.push(format!("body {} where {wanted} is expected", text()));
            }
        }
        ExpectedBody::Schema(validator) => {
            if received.body.is_empty() {
                problems.push("an empty body, where the schema is to be checked".into());
                return problems;
            }
            match serde_json::from_slice::<Value>(&received.body) {
                Ok(body) => {
                    for error in validator.iter_errors(&body) {
                        problems.push(format!("schema: {error} in {}", text()));
                    }
                }
                Err(e) => problems.push(format!("the body is not JSON ({e}): {}", text())),
            }
        }
    }
    problems
}

/// Numbers as Go's `interface{}` holds them: float64, so `1` and `1.0` are
/// equal and integers past 2^53 round as Go rounds them.
fn as_go(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(as_go).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), as_go(v))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2e::spec::parse;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};
    use serde_json::json;

    fn received(status: u16, headers: &[(&str, &str)], body: &str) -> Received {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Received {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: Bytes::from(body.to_owned()),
        }
    }

    fn expected(out: Value) -> Expected {
        parse(
            std::path::Path::new("a.json"),
            &json!({"in": {"url": "http://h/"}, "out": out}),
            &mut Vec::new(),
        )
        .unwrap()
        .expected
    }

    #[test]
    fn a_matching_answer_has_no_differences() {
        let want = expected(json!({
            "status_code": 200,
            "header": {"content-type": ["application/json"], "X-Gone": [""]},
            "body": {"a": 1, "b": [1.0, "x"]}
        }));
        let have = received(
            200,
            &[("Content-Type", "application/json")],
            r#"{"b":[1,"x"],"a":1.0}"#,
        );
        assert_eq!(differences(&have, &want), Vec::<String>::new());
    }

    #[test]
    fn each_difference_is_named() {
        let want = expected(json!({
            "status_code": 204,
            "header": {"x-krakend": ["Version 2"], "X-Gone": [""]},
            "body": "exact"
        }));
        let have = received(200, &[("X-Gone", "here")], "other");
        let found = differences(&have, &want);
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(found[0], "status 200 where 204 is expected");
        assert!(found[1].starts_with("header X-Krakend: []"), "{found:?}");
        assert!(
            found[2].starts_with("header X-Gone: [\"here\"]"),
            "{found:?}"
        );
        assert_eq!(found[3], r#"body "other" where "exact" is expected"#);
    }

    #[test]
    fn json_bodies_compare_by_value_and_schemas_validate() {
        let json_body = expected(json!({"status_code": 200, "body": {"a": "1"}}));
        assert_eq!(
            differences(&received(200, &[], r#"{"a":1}"#), &json_body).len(),
            1
        );
        assert_eq!(
            differences(&received(200, &[], "not json"), &json_body).len(),
            1
        );
        let schema =
            expected(json!({"status_code": 200, "schema": {"type": "object", "required": ["id"]}}));
        assert!(differences(&received(200, &[], r#"{"id":3}"#), &schema).is_empty());
        assert_eq!(
            differences(&received(200, &[], r#"{"no":3}"#), &schema).len(),
            1
        );
        assert_eq!(
            differences(&received(200, &[], ""), &schema),
            ["an empty body, where the schema is to be checked"]
        );
    }
}
