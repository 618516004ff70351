//! Rate limits end to end: the endpoint-wide limit (503) and the client's
//! (429) of both generations, a backend's limit, KrakenD's order of
//! components, bad settings refused, and three gateway processes holding one
//! limit through a real `redis-server`, Redis killed and brought back.
//! Everything is counted, not timed: limits here refill once an hour unless
//! a test says otherwise (and say their capacity: krakend-ratelimit derives
//! the default from the rate per second, which `every: 1h` makes tiny).

use std::time::Instant;

use futures_util::future::join_all;
use http::Method;
use sepia_e2e::{get, redis::TestRedis, request, Answer, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

async fn with_header(url: &str, name: &str, value: &str) -> Answer {
    request(Method::GET, url, &[(name, value)], b"", false).await
}

/// Sends `n` requests to `url` at once, as many connections, and returns
/// their statuses sorted.
async fn burst(url: &str, n: usize) -> Vec<u16> {
    let answers = join_all((0..n).map(|_| get(url))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    statuses.sort_unstable();
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

fn endpoint(path: &str, backend: &TestBackend, extra: Value) -> Value {
    json!({"endpoint": path, "backend": [{"host": [backend.url()], "url_pattern": "/"}],
           "extra_config": extra})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_endpoint_limit_answers_503_and_the_clients_429_with_empty_bodies() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        endpoint("/wide", &backend, json!({"qos/ratelimit/router": {"max_rate": 5, "capacity": 5, "every": "1h"}})),
        endpoint("/per-client", &backend, json!({"qos/ratelimit/router":
            {"client_max_rate": 3, "client_capacity": 3, "strategy": "header", "key": "X-Key", "every": "1h"}})),
        endpoint("/both", &backend, json!({"qos/ratelimit/router":
            {"max_rate": 4, "capacity": 4, "client_max_rate": 3, "client_capacity": 3, "strategy": "ip", "every": "1h"}})),
    ]}))
    .await;
    // 20 at once from 20 connections: exactly the bucket's 5 get through.
    let statuses = burst(&sepia.url("/wide"), 20).await;
    assert_eq!(count(&statuses, 200), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 503), 15, "{statuses:?}");
    let refused = get(&sepia.url("/wide")).await;
    assert_eq!(refused.status, 503);
    assert!(refused.body.is_empty());
    assert_eq!(refused.header("content-type"), None);
    assert_eq!(refused.header("x-krakend"), None);

    // Each key its own bucket; a request naming no client is refused.
    for key in ["alice", "bob"] {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(
                with_header(&sepia.url("/per-client"), "x-key", key)
                    .await
                    .status
                    .as_u16(),
            );
        }
        assert_eq!(statuses, vec![200, 200, 200, 429, 429], "{key}");
    }
    let nameless = get(&sepia.url("/per-client")).await;
    assert_eq!(nameless.status, 429);
    assert!(nameless.body.is_empty());

    // The client's limit is checked first: a client over its own limit
    // spends none of the endpoint's tokens.
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..5 {
            out.push(get(&sepia.url("/both")).await.status.as_u16());
        }
        out
    };
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    assert_eq!(backend.requests().len(), 5 + 6 + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_2_file_gets_krakend_1s_juju_limiter() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let sepia = Sepia::start(json!({"version": 2, "endpoints": [
        endpoint("/old", &backend, json!({"github.com/devopsfaith/krakend-ratelimit/juju/router":
            {"maxRate": 3, "clientMaxRate": 100, "strategy": "header", "key": "X-Key"}}))]}))
    .await;
    let started = Instant::now();
    let mut ok = 0;
    for _ in 0..12 {
        match with_header(&sepia.url("/old"), "x-key", "k")
            .await
            .status
            .as_u16()
        {
            200 => ok += 1,
            status => assert_eq!(status, 503),
        }
    }
    // juju refills 3 tokens a second from the start: the bucket's 3, and
    // at most what the elapsed time gave back.
    let refilled = (started.elapsed().as_secs_f64() * 3.0).ceil() as usize;
    assert!(
        ok >= 3 && ok <= 3 + refilled,
        "{ok} allowed, {refilled} refilled"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_over_its_limit_fails_as_lura_reports_it() {
    let backend = TestBackend::always(Reply::json(200, r#"{"a":1}"#)).await;
    let other = TestBackend::always(Reply::json(200, r#"{"b":2}"#)).await;
    let sepia = Sepia::start(json!({"version": 3,
        "extra_config": {"router": {"return_error_msg": true}},
        "endpoints": [
        {"endpoint": "/one", "backend": [{"host": [backend.url()], "url_pattern": "/",
            "extra_config": {"qos/ratelimit/proxy": {"max_rate": 2, "capacity": 2, "every": "1h"}}}]},
        {"endpoint": "/merged", "backend": [
            {"host": [backend.url()], "url_pattern": "/",
             "extra_config": {"qos/ratelimit/proxy": {"max_rate": 1, "capacity": 1, "every": "1h"}}},
            {"host": [other.url()], "url_pattern": "/"}]}]}))
    .await;
    assert_eq!(get(&sepia.url("/one")).await.status, 200);
    assert_eq!(get(&sepia.url("/one")).await.status, 200);
    let limited = get(&sepia.url("/one")).await;
    assert_eq!(limited.status, 500);
    assert_eq!(limited.text(), "rate limit exceded");
    assert_eq!(limited.header("x-krakend-completed"), Some("false"));
    // Merged: the limited backend is missing, the answer incomplete.
    let first = get(&sepia.url("/merged")).await;
    assert_eq!(first.json(), json!({"a": 1, "b": 2}));
    let second = get(&sepia.url("/merged")).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.json(), json!({"b": 2}));
    assert_eq!(second.header("x-krakend-completed"), Some("false"));
    assert_eq!(backend.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn components_run_in_krakends_order_whatever_the_files_order() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    // Listed first, the limit still runs after the bot detector, as
    // KrakenD's handler stack has it: bots spend no tokens.
    let sepia = Sepia::start(
        json!({"version": 3, "endpoints": [endpoint("/e", &backend, json!({
        "qos/ratelimit/router": {"max_rate": 2, "capacity": 2, "every": "1h"},
        "security/bot-detector": {"deny": ["EvilBot"]}}))]}),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(
            with_header(&sepia.url("/e"), "user-agent", "EvilBot")
                .await
                .status,
            403
        );
    }
    let url = sepia.url("/e");
    let statuses: Vec<u16> = join_all((0..3).map(|_| with_header(&url, "user-agent", "Mozilla")))
        .await
        .iter()
        .map(|a| a.status.as_u16())
        .collect();
    assert_eq!(count(&statuses, 200), 2, "{statuses:?}");
    assert_eq!(count(&statuses, 503), 1, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_krakend_would_drop_stop_start_up_with_their_place() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    for (version, extra, says) in [
        (
            3,
            json!({"qos/ratelimit/router": {"client_max_rate": 5, "strategy": "cookie"}}),
            "not one KrakenD knows",
        ),
        (
            3,
            json!({"qos/ratelimit/router": {"maxRate": 5}}),
            "a version 3 file spells it \"max_rate\"",
        ),
        (
            2,
            json!({"github.com/devopsfaith/krakend-ratelimit/juju/router": {"max_rate": 5}}),
            "spells it \"maxRate\"",
        ),
        (
            3,
            json!({"qos/ratelimit/router": {"client_max_rate": 5, "strategy": "header"}}),
            "needs \"key\"",
        ),
        (
            3,
            json!({"qos/ratelimit/proxy": {"max_rate": 5}}),
            "move it to a backend's extra_config",
        ),
        (
            3,
            json!({"qos/ratelimit/router": {"max_rate": 5, "redis": {"url": "redis://127.0.0.1:1"}}}),
            "is not reachable",
        ),
    ] {
        let logs = Sepia::refused(
            json!({"version": version, "endpoints": [endpoint("/e", &backend, extra.clone())]}),
        )
        .await;
        assert!(logs.contains(says), "{extra}: {logs}");
        assert!(logs.contains("endpoints[0]"), "{extra}: {logs}");
    }
}

/// Three gateway processes with one limit of `capacity` through `redis`.
async fn cluster(redis: &TestRedis, backend: &TestBackend, capacity: u64) -> Vec<Sepia> {
    let mut gateways = Vec::new();
    for on_failure in ["local", "deny", "allow"] {
        gateways.push(
            Sepia::start(json!({"version": 3, "endpoints": [endpoint("/shared", backend, json!({
                "qos/ratelimit/router": {"max_rate": capacity, "capacity": capacity, "every": "1h",
                    "redis": {"url": redis.url(), "key_prefix": "ratelimit-test", "on_failure": on_failure}}}))]}))
            .await,
        );
    }
    gateways
}

async fn spread(gateways: &[Sepia], n: usize) -> Vec<Vec<u16>> {
    let urls: Vec<String> = gateways.iter().map(|g| g.url("/shared")).collect();
    let answers = join_all((0..n).map(|i| get(&urls[i % urls.len()]))).await;
    let mut per_gateway = vec![Vec::new(); gateways.len()];
    for (i, answer) in answers.iter().enumerate() {
        per_gateway[i % gateways.len()].push(answer.status.as_u16());
    }
    per_gateway
}

#[tokio::test(flavor = "multi_thread")]
async fn three_gateways_hold_one_limit_through_redis_and_fall_back_when_it_dies() {
    let mut redis = TestRedis::start();
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let gateways = cluster(&redis, &backend, 30).await;
    // 90 requests at once, spread over the three: the one limit of 30.
    let statuses: Vec<u16> = spread(&gateways, 90).await.concat();
    assert_eq!(count(&statuses, 200), 30, "{statuses:?}");
    assert_eq!(count(&statuses, 503), 60, "{statuses:?}");

    // Redis gone: each gateway does what its on_failure says.
    redis.stop();
    let after = spread(&gateways, 15).await;
    // local: its own bucket, full since it was never used.
    assert_eq!(count(&after[0], 200), 5, "local: {:?}", after[0]);
    // deny: refuses as the limit does.
    assert_eq!(count(&after[1], 503), 5, "deny: {:?}", after[1]);
    // allow: lets everything through.
    assert_eq!(count(&after[2], 200), 5, "allow: {:?}", after[2]);
    assert!(gateways[0].logs().contains("Redis cannot be asked"));

    // Redis back (empty): after the gateways' one-second rest the limit is
    // shared again, from a fresh bucket.
    let port = redis.port;
    let _redis = TestRedis::start_on(port);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let statuses: Vec<u16> = spread(&gateways, 45).await.concat();
    assert_eq!(count(&statuses, 200), 30, "{statuses:?}");
    assert!(gateways[0]
        .logs()
        .contains("the rate limit is shared again"));
}
