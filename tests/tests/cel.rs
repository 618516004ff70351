//! The CEL checks end to end: request checks at an endpoint stop it with
//! KrakenD's 500 and evaluator number, a backend's check fails that backend
//! alone (the answer is incomplete), answer checks read the data, claims
//! checks refuse a verified token with a bare 401; a check that does not
//! parse or names an unknown variable stops start-up with its place.

use sepia_e2e::{
    get,
    jose::{fixture_set, key_of, mint},
    request, Reply, Sepia, TestBackend,
};
use serde_json::{json, Value};

fn backend_at(backend: &TestBackend, path: &str, group: &str, checks: Value) -> Value {
    json!({"host": [backend.url()], "url_pattern": path, "group": group,
           "extra_config": {"validation/cel": checks}})
}

#[tokio::test(flavor = "multi_thread")]
async fn request_and_backend_checks_stop_what_krakend_stops() {
    let backend =
        TestBackend::start(|r| Reply::json(200, &format!(r#"{{"path":"{}"}}"#, r.path))).await;
    let sepia = Sepia::start(json!({"version": 3,
        "extra_config": {"router": {"return_error_msg": true}},
        "endpoints": [{
            "endpoint": "/items/{id}", "input_headers": ["X-Tenant"],
            "extra_config": {"validation/cel": [
                {"check_expr": "req_headers['X-Tenant'][0] == 'acme'"},
                {"check_expr": "int(req_params.Id) < 100"}
            ]},
            "backend": [
                backend_at(&backend, "/a/{id}", "a", json!([{"check_expr": "int(req_params.Id) % 2 == 0"}])),
                backend_at(&backend, "/b/{id}", "b", json!([{"check_expr": "req_path.startsWith('/b/')"}]))
            ]
        }]}))
    .await;
    let tenant = [("x-tenant", "acme")];
    let url = |id: &str| sepia.url(&format!("/items/{id}"));

    let both = request(http::Method::GET, &url("4"), &tenant, b"", false).await;
    assert_eq!(both.status, 200, "{}", both.text());
    assert_eq!(
        both.json(),
        json!({"a": {"path": "/a/4"}, "b": {"path": "/b/4"}})
    );
    assert_eq!(both.header("x-krakend-completed"), Some("true"));

    // Backend a's check fails: it is not called, b answers alone.
    let before = backend.requests().len();
    let one = request(http::Method::GET, &url("5"), &tenant, b"", false).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json(), json!({"b": {"path": "/b/5"}}));
    assert_eq!(one.header("x-krakend-completed"), Some("false"));
    assert_eq!(backend.requests().len(), before + 1);

    let too_big = request(http::Method::GET, &url("200"), &tenant, b"", false).await;
    assert_eq!(too_big.status, 500);
    assert_eq!(too_big.text(), "request aborted by evaluator #1");
    // No such header: the first check cannot evaluate, which aborts too.
    let stranger = get(&url("4")).await;
    assert_eq!(stranger.status, 500);
    assert_eq!(stranger.text(), "request aborted by evaluator #0");
    let before = backend.requests().len();
    let _ = get(&url("6")).await;
    assert_eq!(
        backend.requests().len(),
        before,
        "a refused request reached a backend"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn answer_checks_read_the_data_and_claims_checks_the_token() {
    let backend = TestBackend::start(|r| {
        if r.path == "/adult" {
            Reply::json(200, r#"{"age": 30}"#)
        } else {
            Reply::json(200, r#"{"age": 12}"#)
        }
    })
    .await;
    let set = fixture_set("symmetric.json");
    let keys = TestBackend::always(Reply::json(200, &set.to_string())).await;
    let validator = json!({"alg": "HS256", "jwk_url": keys.url(), "disable_jwk_security": true});
    let endpoint = |path: &str| {
        json!({"endpoint": path, "backend": [{"host": [backend.url()], "url_pattern": path}],
        "extra_config": {"auth/validator": validator, "validation/cel": [
            {"check_expr": "resp_data.age >= 18"},
            {"check_expr": "'admin' in JWT.roles"}
        ]}})
    };
    let sepia = Sepia::start(json!({"version": 3,
        "endpoints": [endpoint("/adult"), endpoint("/minor")]}))
    .await;
    let key = key_of(&set, "sim2");
    let token = |roles: Value| {
        let claims = json!({"sub": "alice", "roles": roles, "exp": 4_102_444_800u64});
        format!("Bearer {}", mint("HS256", "sim2", &key, &claims))
    };
    let admin = token(json!(["admin"]));
    let call = |path: &str, auth: String| {
        let url = sepia.url(path);
        async move {
            request(
                http::Method::GET,
                &url,
                &[("authorization", &auth)],
                b"",
                false,
            )
            .await
        }
    };
    let ok = call("/adult", admin.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json(), json!({"age": 30}));
    let minor = call("/minor", admin).await;
    assert_eq!(minor.status, 500);
    let user = call("/adult", token(json!(["user"]))).await;
    assert_eq!(user.status, 401);
    assert!(user.body.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_that_cannot_run_stop_start_up_with_their_place() {
    for (checks, wanted) in [
        (
            json!([{"check_expr": "req_method =="}]),
            "[0].check_expr \"req_method ==\" does not parse",
        ),
        (
            json!([{"check_expr": "req_metod == 'GET'"}]),
            "reads \"req_metod\"",
        ),
        (
            json!({"check_expr": "req_method == 'GET'"}),
            "must be an array",
        ),
    ] {
        let config = json!({"version": 3, "endpoints": [{"endpoint": "/x",
            "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}],
            "extra_config": {"validation/cel": checks}}]});
        let logs = Sepia::refused(config).await;
        assert!(
            logs.contains("endpoints[0].extra_config.\"validation/cel\""),
            "{logs}"
        );
        assert!(logs.contains(wanted), "{wanted}: {logs}");
    }
    let without_validator = json!({"version": 3, "endpoints": [{"endpoint": "/x",
        "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}],
        "extra_config": {"validation/cel": [{"check_expr": "JWT.sub == 'a'"}]}}]});
    let logs = Sepia::refused(without_validator).await;
    assert!(logs.contains("validates no token"), "{logs}");
}
