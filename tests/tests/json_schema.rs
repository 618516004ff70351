//! The JSON Schema validator end to end: a body that validates reaches the
//! backend unchanged, one that does not is refused before any backend is
//! called, with KrakenD's status for each generation; the reasons reach the
//! client only with `return_error_msg`; a schema that does not compile stops
//! start-up with its JSON path.

use http::Method;
use sepia_e2e::{request, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

const SCHEMA: &str = r#"{
    "type": "object", "required": ["user"],
    "properties": {"user": {"type": "string", "minLength": 3}, "age": {"type": "integer"}}
}"#;

fn config(version: u64, namespace: &str, backend: &TestBackend, router: Value) -> Value {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    json!({"version": version, "extra_config": {"router": router}, "endpoints": [{
        "endpoint": "/users", "method": "POST",
        "backend": [{"host": [backend.url()], "url_pattern": "/store"}],
        "extra_config": {namespace: schema}
    }]})
}

async fn post(sepia: &Sepia, body: &str) -> sepia_e2e::Answer {
    request(
        Method::POST,
        &sepia.url("/users"),
        &[("content-type", "application/json")],
        body.as_bytes(),
        false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_bodies_pass_unchanged_and_invalid_ones_never_reach_the_backend() {
    let backend = TestBackend::always(Reply::json(200, r#"{"stored":true}"#)).await;
    let sepia = Sepia::start(config(3, "validation/json-schema", &backend, json!({}))).await;

    let body = r#"{"user": "alice", "age": 30}"#;
    let answer = post(&sepia, body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json(), json!({"stored": true}));
    let seen = backend.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.as_ref(), body.as_bytes());

    for bad in [
        r#"{"user": "al"}"#,
        r#"{"age": 30}"#,
        r#"{"user": "alice", "age": 1.5}"#,
        "[]",
        "",
        "{not json",
    ] {
        let answer = post(&sepia, bad).await;
        assert_eq!(answer.status, 400, "{bad:?}: {}", answer.text());
        // KrakenD 2.x keeps the reasons to itself unless return_error_msg.
        assert!(!answer.text().contains("is required"), "{}", answer.text());
    }
    assert_eq!(
        backend.requests().len(),
        1,
        "a refused body reached the backend"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn return_error_msg_tells_the_client_every_reason_in_gojsonschemas_words() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let sepia = Sepia::start(config(
        3,
        "validation/json-schema",
        &backend,
        json!({"return_error_msg": true}),
    ))
    .await;
    let answer = post(&sepia, r#"{"age": "old"}"#).await;
    assert_eq!(answer.status, 400);
    let text = answer.text();
    assert!(text.contains("- (root): user is required"), "{text}");
    assert!(
        text.contains("- age: Invalid type. Expected: integer, given: string"),
        "{text}"
    );
    let answer = post(&sepia, "").await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.text().contains("could not validate an empty body"),
        "{}",
        answer.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn version_2_files_answer_as_krakend_1() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let sepia = Sepia::start(config(
        2,
        "github.com/devopsfaith/krakend-jsonschema",
        &backend,
        json!({}),
    ))
    .await;
    assert_eq!(post(&sepia, r#"{"user": "alice"}"#).await.status, 200);
    assert_eq!(post(&sepia, r#"{"user": 1}"#).await.status, 400);
    // krakend-jsonschema 1.4 fails these with plain errors: lura's 500.
    assert_eq!(post(&sepia, "").await.status, 500);
    assert_eq!(post(&sepia, "{not json").await.status, 500);
    assert_eq!(backend.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schema_that_does_not_compile_stops_start_up_with_its_path() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let mut broken = config(3, "validation/json-schema", &backend, json!({}));
    broken["endpoints"][0]["extra_config"]["validation/json-schema"] =
        json!({"type": "object", "properties": {"user": {"minLength": "three"}}});
    let logs = Sepia::refused(broken).await;
    assert!(
        logs.contains("endpoints[0].extra_config.\"validation/json-schema\""),
        "{logs}"
    );
    assert!(logs.contains("does not compile"), "{logs}");
    let mut not_a_schema = config(3, "validation/json-schema", &backend, json!({}));
    not_a_schema["endpoints"][0]["extra_config"]["validation/json-schema"] = json!([1]);
    let logs = Sepia::refused(not_a_schema).await;
    assert!(logs.contains("not an array"), "{logs}");
}
