//! The circuit breaker end to end: a failing backend opens it after more
//! than `max_errors` failures in a row; while open the backend is not
//! called and fails as lura reports it; after `timeout` one trial call
//! decides; timeouts count; a merge loses only the broken backend; bad
//! settings are refused. Each breaker moves on counts, and the waits are
//! its own `timeout`, with margin.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use sepia_e2e::{get, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

/// A backend that fails with 500 while `broken` is set.
async fn switchable(broken: Arc<AtomicBool>) -> TestBackend {
    TestBackend::start(move |_| {
        if broken.load(Ordering::SeqCst) {
            Reply::json(500, r#"{"error":"down"}"#)
        } else {
            Reply::json(200, r#"{"up":true}"#)
        }
    })
    .await
}

fn guarded(backend: &TestBackend, breaker: Value) -> Value {
    json!({"host": [backend.url()], "url_pattern": "/",
           "extra_config": {"qos/circuit-breaker": breaker}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_backend_opens_the_breaker_and_one_trial_closes_it() {
    let broken = Arc::new(AtomicBool::new(true));
    let backend = switchable(broken.clone()).await;
    let sepia = Sepia::start(json!({"version": 3,
        "extra_config": {"router": {"return_error_msg": true}},
        "endpoints": [{"endpoint": "/cb", "backend": [guarded(&backend,
            json!({"interval": 60, "timeout": 2, "max_errors": 1, "name": "cb-test", "log_status_change": true}))]}]}))
    .await;
    // Two failures in a row: more than max_errors (1), so it opens.
    for _ in 0..2 {
        let answer = get(&sepia.url("/cb")).await;
        assert_eq!(answer.status, 500);
        assert!(
            answer.text().starts_with("invalid status code 500"),
            "{}",
            answer.text()
        );
    }
    assert_eq!(backend.requests().len(), 2);
    // Open: the backend is not called; lura's 500 with gobreaker's words.
    broken.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        let answer = get(&sepia.url("/cb")).await;
        assert_eq!(answer.status, 500);
        assert_eq!(answer.text(), "circuit breaker is open");
        assert_eq!(answer.header("x-krakend-completed"), Some("false"));
    }
    assert_eq!(backend.requests().len(), 2);
    let logs = sepia.logs();
    assert!(
        logs.contains("[CB] Circuit breaker named 'cb-test' went from 'closed' to 'open'"),
        "{logs}"
    );
    // After the timeout, a trial call reaches the healthy backend and
    // closes the breaker.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let trial = get(&sepia.url("/cb")).await;
    assert_eq!(trial.status, 200, "{}", trial.text());
    assert_eq!(trial.json(), json!({"up": true}));
    for _ in 0..3 {
        assert_eq!(get(&sepia.url("/cb")).await.status, 200);
    }
    assert_eq!(backend.requests().len(), 2 + 4);
    let logs = sepia.logs();
    assert!(logs.contains("went from 'open' to 'half-open'"), "{logs}");
    assert!(logs.contains("went from 'half-open' to 'closed'"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_trial_reopens_and_a_timeout_counts_as_a_failure() {
    // Version 2 spelling; the backend answers after the endpoint's deadline.
    let slow =
        TestBackend::always(Reply::json(200, "{}").delayed(Duration::from_millis(800))).await;
    let sepia = Sepia::start(
        json!({"version": 2, "endpoints": [{"endpoint": "/slow", "timeout": "200ms",
        "backend": [{"host": [slow.url()], "url_pattern": "/", "extra_config": {
            "github.com/devopsfaith/krakend-circuitbreaker/gobreaker":
                {"timeout": 1, "maxErrors": 0, "logStatusChange": true}}}]}]}),
    )
    .await;
    // One timeout opens it (more than 0 failures in a row).
    assert_eq!(get(&sepia.url("/slow")).await.status, 500);
    assert_eq!(get(&sepia.url("/slow")).await.status, 500);
    assert_eq!(slow.requests().len(), 1);
    // The trial times out too: open again, the backend called once more.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get(&sepia.url("/slow")).await.status, 500);
    assert_eq!(get(&sepia.url("/slow")).await.status, 500);
    assert_eq!(slow.requests().len(), 2);
    let logs = sepia.logs();
    assert!(
        logs.contains("circuit breaker named '' went from 'half-open' to 'open'"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_breaker_costs_a_merge_only_its_backend() {
    let broken = Arc::new(AtomicBool::new(true));
    let flaky = switchable(broken).await;
    let steady = TestBackend::always(Reply::json(200, r#"{"steady":1}"#)).await;
    let sepia = Sepia::start(
        json!({"version": 3, "endpoints": [{"endpoint": "/m", "backend": [
        guarded(&flaky, json!({"timeout": 30, "max_errors": 0})),
        {"host": [steady.url()], "url_pattern": "/"}]}]}),
    )
    .await;
    for _ in 0..3 {
        let answer = get(&sepia.url("/m")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json(), json!({"steady": 1}));
        assert_eq!(answer.header("x-krakend-completed"), Some("false"));
    }
    assert_eq!(flaky.requests().len(), 1);
    assert_eq!(steady.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn breaker_settings_krakend_would_ignore_are_refused() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    for (version, place, breaker, says) in [
        (
            3,
            "backend",
            json!({"maxErrors": 1}),
            "spells it \"max_errors\"",
        ),
        (
            2,
            "backend",
            json!({"max_errors": 1}),
            "spells it \"maxErrors\"",
        ),
        (
            3,
            "backend",
            json!({"timeout": "10s"}),
            "\"timeout\" must be a whole number",
        ),
        (3, "backend", json!({}), "sets nothing"),
        (3, "endpoint", json!({"max_errors": 1}), "guards a backend"),
    ] {
        let namespace = if version == 3 {
            "qos/circuit-breaker"
        } else {
            "github.com/devopsfaith/krakend-circuitbreaker/gobreaker"
        };
        let mut extra = serde_json::Map::new();
        extra.insert(namespace.to_owned(), breaker.clone());
        let endpoint = if place == "backend" {
            json!({"endpoint": "/e", "backend": [{"host": [backend.url()], "url_pattern": "/", "extra_config": extra}]})
        } else {
            json!({"endpoint": "/e", "backend": [{"host": [backend.url()], "url_pattern": "/"}], "extra_config": extra})
        };
        let logs = Sepia::refused(json!({"version": version, "endpoints": [endpoint]})).await;
        assert!(logs.contains(says), "{breaker}: {logs}");
        assert!(logs.contains("endpoints[0]"), "{breaker}: {logs}");
    }
}
