//! CORS end to end: the cors plugin in front of the router, as
//! krakend-cors wraps KrakenD's handler, per generation (rs/cors 1.6 for
//! version-2 files, 1.11 for version 3).

use http::Method;
use sepia_e2e::{request, Answer, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

fn config(version: u64, namespace: &str, cors: Value, backend: &TestBackend) -> Value {
    json!({"version": version, "host": [backend.url()],
           "extra_config": {namespace: cors},
           "endpoints": [{"endpoint": "/items", "method": "GET", "backend": [{"url_pattern": "/"}]}]})
}

async fn ask(sepia: &Sepia, method: Method, path: &str, headers: &[(&str, &str)]) -> Answer {
    request(method, &sepia.url(path), headers, b"", false).await
}

fn values(answer: &Answer, name: &str) -> Vec<String> {
    answer
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn preflights_and_answers_carry_cors_per_generation() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let cors = json!({"allow_origins": ["https://app.example.com", "https://*.example.org"],
                      "allow_methods": ["GET", "POST"], "allow_headers": ["Authorization", "Content-Type"],
                      "expose_headers": ["x-total"], "allow_credentials": true, "max_age": "1h"});
    let v3 = Sepia::start(config(3, "security/cors", cors.clone(), &backend)).await;
    let v2 = Sepia::start(config(
        2,
        "github_com/devopsfaith/krakend-cors",
        cors,
        &backend,
    ))
    .await;
    let preflight = [
        ("origin", "https://app.example.com"),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization,content-type",
        ),
    ];
    // KrakenD 2.x: 204, the request's values echoed, one Vary line.
    let answer = ask(&v3, Method::OPTIONS, "/items", &preflight).await;
    assert_eq!(answer.status, 204);
    assert!(answer.body.is_empty());
    assert_eq!(
        values(&answer, "access-control-allow-origin"),
        ["https://app.example.com"]
    );
    assert_eq!(values(&answer, "access-control-allow-methods"), ["POST"]);
    assert_eq!(
        values(&answer, "access-control-allow-headers"),
        ["authorization,content-type"]
    );
    assert_eq!(
        values(&answer, "access-control-allow-credentials"),
        ["true"]
    );
    assert_eq!(values(&answer, "access-control-max-age"), ["3600"]);
    assert_eq!(
        values(&answer, "vary"),
        ["Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]
    );
    // KrakenD 1.x: 200, names canonicalised, three Vary lines.
    let answer = ask(&v2, Method::OPTIONS, "/items", &preflight).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        values(&answer, "access-control-allow-headers"),
        ["Authorization, Content-Type"]
    );
    assert_eq!(values(&answer, "vary").len(), 3);
    // A preflight from elsewhere gets no CORS headers, and no backend call.
    for sepia in [&v3, &v2] {
        let evil = ask(
            sepia,
            Method::OPTIONS,
            "/items",
            &[
                ("origin", "https://evil.com"),
                ("access-control-request-method", "GET"),
            ],
        )
        .await;
        assert_eq!(
            values(&evil, "access-control-allow-origin"),
            Vec::<String>::new()
        );
    }
    assert!(backend.requests().is_empty());

    // Actual requests: the origin, the exposed headers, Vary; 404s too.
    for sepia in [&v3, &v2] {
        let answer = ask(
            sepia,
            Method::GET,
            "/items",
            &[("origin", "https://a.example.org")],
        )
        .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json(), json!({"ok": true}));
        assert_eq!(
            values(&answer, "access-control-allow-origin"),
            ["https://a.example.org"]
        );
        assert_eq!(
            values(&answer, "access-control-expose-headers"),
            ["X-Total"]
        );
        assert_eq!(values(&answer, "vary"), ["Origin"]);
        let missing = ask(
            sepia,
            Method::GET,
            "/nope",
            &[("origin", "https://app.example.com")],
        )
        .await;
        assert_eq!(missing.status, 404);
        assert_eq!(
            values(&missing, "access-control-allow-origin"),
            ["https://app.example.com"]
        );
        let plain = ask(sepia, Method::GET, "/items", &[]).await;
        assert_eq!(
            values(&plain, "access-control-allow-origin"),
            Vec::<String>::new()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn krakend_2_settings_default_and_passthrough() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    // krakend-cors 2 allows every origin and header when none are listed.
    let open = Sepia::start(config(3, "security/cors", json!({}), &backend)).await;
    let answer = ask(
        &open,
        Method::OPTIONS,
        "/items",
        &[
            ("origin", "https://x.test"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-anything"),
        ],
    )
    .await;
    assert_eq!(answer.status, 204);
    assert_eq!(values(&answer, "access-control-allow-origin"), ["*"]);
    assert_eq!(
        values(&answer, "access-control-allow-headers"),
        ["x-anything"]
    );
    // options_passthrough: the gateway answers the OPTIONS itself (here
    // the router's 405), with the preflight's headers.
    let passing = Sepia::start(config(
        3,
        "security/cors",
        json!({"options_passthrough": true, "options_success_status": 200}),
        &backend,
    ))
    .await;
    let answer = ask(
        &passing,
        Method::OPTIONS,
        "/items",
        &[
            ("origin", "https://x.test"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(answer.status, 405);
    assert_eq!(values(&answer, "access-control-allow-origin"), ["*"]);
    // A KrakenD 2.x setting in a version-2 file is named, not ignored.
    let logs = Sepia::refused(config(
        2,
        "github_com/devopsfaith/krakend-cors",
        json!({"options_passthrough": true}),
        &backend,
    ))
    .await;
    assert!(logs.contains("KrakenD 2.x only"), "{logs}");
}
