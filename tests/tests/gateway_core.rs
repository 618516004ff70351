//! The gateway core end to end: the real binary against real backends.

use std::time::{Duration, Instant};

use http::Method;
use sepia_e2e::{
    get, request, run_sepia,
    sepia::{lone_sepia, run_program, write_config},
    Reply, Sepia, TestBackend,
};
use serde_json::{json, Value};

fn one_endpoint(endpoint: serde_json::Value) -> serde_json::Value {
    json!({"version": 3, "endpoints": [endpoint]})
}

#[tokio::test(flavor = "multi_thread")]
async fn json_is_re_encoded_as_krakend_does_and_201_becomes_lura_s_200() {
    let backend = TestBackend::always(Reply::json(
        201,
        r#"{"z":1,"a":{"y":"<b>&</b>","b":12345678901234567890,"f":1.50},"m":"\u2028"}"#,
    ))
    .await;
    let sepia = Sepia::start(one_endpoint(json!({
        "endpoint": "/token", "method": "POST",
        "backend": [{"host": [backend.url()], "url_pattern": "/issue"}]
    })))
    .await;
    let answer = request(Method::POST, &sepia.url("/token"), &[], b"{}", false).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.text(),
        r#"{"a":{"b":12345678901234567890,"f":1.50,"y":"\u003cb\u003e\u0026\u003c/b\u003e"},"m":"\u2028","z":1}"#
    );
    assert_eq!(
        answer.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(answer.header("x-krakend-completed"), Some("true"));
    // Sepia's switch keeps the backend's status.
    let passing = Sepia::start(
        json!({"version": 3, "extra_config": {"sepia": {"pass_backend_status": true}},
        "endpoints": [{"endpoint": "/token", "method": "POST",
                       "backend": [{"host": [backend.url()], "url_pattern": "/issue"}]}]}),
    )
    .await;
    let answer = request(Method::POST, &passing.url("/token"), &[], b"{}", false).await;
    assert_eq!(answer.status, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn params_queries_and_headers_are_forwarded_as_configured() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let sepia = Sepia::start(json!({
        "version": 3,
        "host": [backend.url()],
        "endpoints": [
            {"endpoint": "/users/{id}/posts/{post}",
             "input_query_strings": ["page", "size"],
             "input_headers": ["Authorization", "X-Custom"],
             "backend": [{"url_pattern": "/u/{id}/p/{post}?fixed=1&post={post}"}]},
            {"endpoint": "/all", "input_query_strings": ["*"], "input_headers": ["*"],
             "backend": [{"url_pattern": "/all"}]},
            {"endpoint": "/default", "backend": [{"url_pattern": "/default"}]}
        ]
    }))
    .await;
    let answer = request(
        Method::GET,
        &sepia.url("/users/a%20b/posts/7?page=2&secret=x&size=10"),
        &[
            ("authorization", "Bearer t"),
            ("x-custom", "c"),
            ("cookie", "s=1"),
            ("x-forwarded-for", "10.1.1.1"),
        ],
        b"",
        false,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    request(
        Method::GET,
        &sepia.url("/all?a=1&b=2"),
        &[("x-any", "v"), ("cookie", "s=1")],
        b"",
        false,
    )
    .await;
    request(
        Method::GET,
        &sepia.url("/default?a=1"),
        &[("content-type", "text/x"), ("cookie", "s=1")],
        b"",
        false,
    )
    .await;
    let seen = backend.requests();
    assert_eq!(seen.len(), 3);
    let first = &seen[0];
    assert_eq!(first.path, "/u/a%20b/p/7");
    assert_eq!(
        first.query.as_deref(),
        Some("fixed=1&post=7&page=2&size=10")
    );
    assert_eq!(first.header("authorization"), Some("Bearer t"));
    assert_eq!(first.header("x-custom"), Some("c"));
    assert_eq!(first.header("cookie"), None);
    // gin's client address: every proxy trusted by default.
    assert_eq!(first.header("x-forwarded-for"), Some("10.1.1.1"));
    assert_eq!(
        first.header("x-forwarded-host"),
        Some(format!("127.0.0.1:{}", sepia.port).as_str())
    );
    // The gateway calls as KrakenD 2.13.8's Go client does.
    assert_eq!(first.header("user-agent"), Some("KrakenD Version 2.13.8"));
    assert_eq!(first.header("accept-encoding"), Some("gzip"));
    assert_eq!(first.header("x-forwarded-via"), None);
    let all = &seen[1];
    assert_eq!(all.query.as_deref(), Some("a=1&b=2"));
    // Forwarding headers but with no User-Agent from the client: the
    // gateway's.
    assert_eq!(all.header("user-agent"), Some("KrakenD Version 2.13.8"));
    assert_eq!(all.header("x-any"), Some("v"));
    assert_eq!(all.header("cookie"), Some("s=1"));
    // KrakenD forwards only Content-Type and no query string by default.
    let default = &seen[2];
    assert_eq!(default.query, None);
    assert_eq!(default.header("content-type"), Some("text/x"));
    assert_eq!(default.header("cookie"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_are_forwarded_for_post_put_and_patch() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let endpoints: Vec<_> = ["POST", "PUT", "PATCH"]
        .iter()
        .map(|m| json!({"endpoint": "/body", "method": m, "backend": [{"host": [backend.url()], "url_pattern": "/b"}]}))
        .collect();
    let sepia = Sepia::start(json!({"version": 3, "endpoints": endpoints})).await;
    for method in [Method::POST, Method::PUT, Method::PATCH] {
        let answer = request(
            method.clone(),
            &sepia.url("/body"),
            &[("content-type", "application/json")],
            br#"{"user":"john"}"#,
            false,
        )
        .await;
        assert_eq!(answer.status, 200, "{method}: {}", answer.text());
    }
    for (recorded, method) in backend.requests().iter().zip(["POST", "PUT", "PATCH"]) {
        assert_eq!(recorded.method, method);
        assert_eq!(&recorded.body[..], br#"{"user":"john"}"#);
        assert_eq!(recorded.header("content-type"), Some("application/json"));
    }
}

/// One endpoint with these top-level `extra_config` settings.
fn with_extra(endpoint: Value, extra: Value) -> Value {
    json!({"version": 3, "extra_config": extra, "endpoints": [endpoint]})
}

const JSON_ERRORS: &str = r#"{"sepia": {"json_errors": true}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_backend_fails_at_the_endpoint_timeout() {
    let backend = TestBackend::always(Reply::json(200, "{}").delayed(Duration::from_secs(3))).await;
    let endpoint = json!({
        "endpoint": "/slow", "timeout": "300ms",
        "backend": [{"host": [backend.url()], "url_pattern": "/"}]
    });
    // As lura: 500, an empty body (no return_error_msg), incomplete.
    let krakend = Sepia::start(with_extra(endpoint.clone(), json!({}))).await;
    let started = Instant::now();
    let answer = get(&krakend.url("/slow")).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(answer.status, 500);
    assert!(answer.body.is_empty(), "{}", answer.text());
    assert_eq!(answer.header("content-type"), None);
    assert_eq!(answer.header("x-krakend-completed"), Some("false"));
    assert_eq!(answer.header("x-krakend"), Some("Version 2.13.8"));
    // Sepia's JSON errors: 504 and the reason.
    let json_errors = Sepia::start(with_extra(
        endpoint,
        serde_json::from_str(JSON_ERRORS).unwrap(),
    ))
    .await;
    let answer = get(&json_errors.url("/slow")).await;
    assert_eq!(answer.status, 504);
    assert!(answer.json()["error"].as_str().unwrap().contains("300ms"));
    assert_eq!(answer.header("x-sepia-error-source"), Some("gateway"));
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_failures_answer_as_krakend_or_as_json_errors() {
    let html = TestBackend::always(Reply::text(200, "<html>oops</html>")).await;
    let array = TestBackend::always(Reply::json(200, "[1,2]")).await;
    let unavailable = TestBackend::always(Reply::json(503, r#"{"e":1}"#)).await;
    let closed_port = sepia_e2e::sepia::free_port();
    let config = |version: u64, extra: Value| {
        json!({"version": version, "extra_config": extra, "endpoints": [
            {"endpoint": "/html", "backend": [{"host": [html.url()], "url_pattern": "/"}]},
            {"endpoint": "/array", "backend": [{"host": [array.url()], "url_pattern": "/"}]},
            {"endpoint": "/unavailable", "backend": [{"host": [unavailable.url()], "url_pattern": "/"}]},
            {"endpoint": "/down", "backend": [{"host": [format!("127.0.0.1:{closed_port}")], "url_pattern": "/"}]}
        ]})
    };
    let cases = [
        ("/html", "not valid json"),
        ("/array", "expected a JSON object, found an array"),
        ("/unavailable", "answered 503"),
        ("/down", "unreachable"),
    ];
    // KrakenD: 500; with return_error_msg the error's text, lura's own
    // words for a failing status (per generation). KrakenD 1.x reads no
    // router settings: a status alone.
    for version in [3, 2] {
        let sepia = Sepia::start(config(
            version,
            json!({"router": {"return_error_msg": true}}),
        ))
        .await;
        for (path, needle) in cases {
            let answer = get(&sepia.url(path)).await;
            assert_eq!(answer.status, 500, "{path}: {}", answer.text());
            let text_type = (version == 3).then_some("text/plain; charset=utf-8");
            assert_eq!(answer.header("content-type"), text_type);
            let text = answer.text();
            match (path, version) {
                ("/unavailable", 3) => assert_eq!(
                    text,
                    format!("invalid status code 503 [GET /]: {}/", unavailable.url())
                ),
                (_, 2) => assert_eq!(text, "", "{path}"),
                _ => assert!(text.contains(needle), "{path}: {text}"),
            }
        }
    }
    let quiet = Sepia::start(config(3, json!({}))).await;
    let answer = get(&quiet.url("/unavailable")).await;
    assert_eq!(
        (answer.status.as_u16(), answer.text()),
        (500, String::new())
    );
    // Sepia's JSON errors: 502 and the reason.
    let json_errors = Sepia::start(config(3, serde_json::from_str(JSON_ERRORS).unwrap())).await;
    for (path, needle) in cases {
        let answer = get(&json_errors.url(path)).await;
        assert_eq!(answer.status, 502, "{path}: {}", answer.text());
        let body = answer.json();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(needle), "{path}: {body}");
        // The internal address and the OS's words stay in the log.
        assert!(
            !error.contains("127.0.0.1") && !error.contains("refused"),
            "{path}: {body}"
        );
        assert_eq!(body["source"], "backend");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_4xx_is_lura_s_500_unless_passed_through() {
    let backend = TestBackend::always(
        Reply::json(401, r#"{"error":"bad password"}"#).with_header("www-authenticate", "Basic"),
    )
    .await;
    let endpoint = json!({
        "endpoint": "/login", "method": "POST",
        "backend": [{"host": [backend.url()], "url_pattern": "/"}]
    });
    let krakend = Sepia::start(with_extra(endpoint.clone(), json!({}))).await;
    let answer = request(Method::POST, &krakend.url("/login"), &[], b"{}", false).await;
    assert_eq!(answer.status, 500);
    assert!(answer.body.is_empty());
    // KrakenD answers a bare 500 here (krakend-ce #970, #644); the switch
    // gives the client the backend's reason.
    let passing = Sepia::start(with_extra(
        endpoint,
        json!({"sepia": {"pass_backend_errors": true}}),
    ))
    .await;
    let answer = request(Method::POST, &passing.url("/login"), &[], b"{}", false).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.text(), r#"{"error":"bad password"}"#);
    assert_eq!(answer.header("www-authenticate"), Some("Basic"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_op_passes_status_headers_and_body_through() {
    let backend = TestBackend::always(
        Reply::text(404, "not <json> at all").with_header("x-origin", "backend"),
    )
    .await;
    let sepia = Sepia::start(one_endpoint(json!({
        "endpoint": "/raw", "output_encoding": "no-op",
        "backend": [{"host": [backend.url()], "url_pattern": "/", "encoding": "no-op"}]
    })))
    .await;
    let answer = get(&sepia.url("/raw")).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.text(), "not <json> at all");
    assert_eq!(answer.header("x-origin"), Some("backend"));
    assert_eq!(answer.header("content-type"), Some("text/plain"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_and_methods_get_krakends_404_and_405_per_generation() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let config = |version: u64, sepia: Value| {
        json!({"version": version, "extra_config": {"sepia": sepia}, "endpoints": [{
            "endpoint": "/only-get/{id}", "backend": [{"host": [backend.url()], "url_pattern": "/"}]
        }]})
    };
    // KrakenD 2.x: gin's plain text, lura 2's incomplete mark, gin 1.10's Allow.
    let v3 = Sepia::start(config(3, json!({}))).await;
    let answer = get(&v3.url("/nowhere")).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.text(), "404 page not found");
    assert_eq!(answer.header("content-type"), Some("text/plain"));
    assert_eq!(answer.header("x-krakend-completed"), Some("false"));
    let answer = request(Method::DELETE, &v3.url("/only-get/1"), &[], b"", false).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.text(), "405 method not allowed");
    assert_eq!(answer.header("content-type"), Some("text/plain"));
    assert_eq!(answer.header("allow"), Some("GET"));
    assert_eq!(answer.header("x-krakend-completed"), Some("false"));
    // KrakenD 1.x (gin 1.7, lura 1.4): the same bodies, no other header.
    let v2 = Sepia::start(config(2, json!({}))).await;
    let answer = request(Method::DELETE, &v2.url("/only-get/1"), &[], b"", false).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.text(), "405 method not allowed");
    assert_eq!(answer.header("allow"), None);
    assert_eq!(answer.header("x-krakend-completed"), None);
    assert_eq!(get(&v2.url("/nowhere")).await.text(), "404 page not found");
    // Sepia's JSON errors, switched on.
    let json_errors = Sepia::start(config(2, json!({"json_errors": true}))).await;
    let answer = get(&json_errors.url("/nowhere")).await;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["error"]
        .as_str()
        .unwrap()
        .contains("/nowhere"));
    let answer = request(
        Method::DELETE,
        &json_errors.url("/only-get/1"),
        &[],
        b"",
        false,
    )
    .await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("GET"));
    assert_eq!(answer.json()["source"], "client");
    assert_eq!(answer.header("x-sepia-error-source"), Some("client"));
}

#[tokio::test(flavor = "multi_thread")]
async fn health_answers_and_http2_prior_knowledge_works() {
    let backend = TestBackend::always(Reply::json(200, r#"{"b":2,"a":1}"#)).await;
    let sepia = Sepia::start(one_endpoint(json!({
        "endpoint": "/x", "backend": [{"host": [backend.url()], "url_pattern": "/"}]
    })))
    .await;
    // lura 2's health answer: agents, Go's time.Now().String(), status.
    let health = get(&sepia.url("/__health")).await;
    assert_eq!(health.status, 200);
    let body = health.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["agents"], json!({}));
    let now = body["now"].as_str().unwrap();
    let (clock, monotonic) = now
        .split_once(" +0000 UTC m=+")
        .unwrap_or_else(|| panic!("{now}"));
    assert!(
        clock.len() >= 19 && &clock[4..5] == "-" && &clock[10..11] == " ",
        "{now}"
    );
    assert!(monotonic.parse::<f64>().is_ok(), "{now}");
    // lura 1.4's, for a version-2 file: the status alone.
    let v2 = Sepia::start(json!({"version": 2, "endpoints": []})).await;
    let health = get(&v2.url("/__health")).await;
    assert_eq!(health.text(), r#"{"status":"ok"}"#);
    assert_eq!(
        health.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let answer = request(Method::GET, &sepia.url("/x"), &[], b"", true).await;
    assert_eq!(answer.version, http::Version::HTTP_2);
    assert_eq!(answer.text(), r#"{"a":1,"b":2}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_backends_merge_in_config_order_and_report_completeness() {
    let a = TestBackend::always(
        Reply::json(200, r#"{"a":1,"shared":"a"}"#).delayed(Duration::from_millis(150)),
    )
    .await;
    let b = TestBackend::always(Reply::json(200, r#"{"b":2,"shared":"b"}"#)).await;
    let broken = TestBackend::always(Reply::json(500, "{}")).await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/merged", "backend": [
            {"host": [a.url()], "url_pattern": "/"}, {"host": [b.url()], "url_pattern": "/"}]},
        {"endpoint": "/partial", "backend": [
            {"host": [a.url()], "url_pattern": "/"}, {"host": [broken.url()], "url_pattern": "/"}]},
        {"endpoint": "/none", "backend": [
            {"host": [broken.url()], "url_pattern": "/"}, {"host": [broken.url()], "url_pattern": "/"}]}
    ]}))
    .await;
    let merged = get(&sepia.url("/merged")).await;
    assert_eq!(merged.text(), r#"{"a":1,"b":2,"shared":"b"}"#);
    assert_eq!(merged.header("x-krakend-completed"), Some("true"));
    let partial = get(&sepia.url("/partial")).await;
    assert_eq!(partial.status, 200);
    assert_eq!(partial.text(), r#"{"a":1,"shared":"a"}"#);
    assert_eq!(partial.header("x-krakend-completed"), Some("false"));
    let none = get(&sepia.url("/none")).await;
    assert_eq!(none.status, 500);
    assert!(none.body.is_empty(), "{}", none.text());
    assert_eq!(none.header("x-krakend-completed"), Some("false"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_requests_in_flight_then_exits_0() {
    let backend = TestBackend::always(
        Reply::json(200, r#"{"done":true}"#).delayed(Duration::from_millis(800)),
    )
    .await;
    let mut sepia = Sepia::start(one_endpoint(json!({
        "endpoint": "/slow", "backend": [{"host": [backend.url()], "url_pattern": "/"}]
    })))
    .await;
    let url = sepia.url("/slow");
    let in_flight = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    sepia.terminate();
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), r#"{"done":true}"#);
    let status = sepia.wait(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}\n{}", sepia.logs());
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", sepia.port))
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_2_config_with_old_key_names_is_served() {
    let backend = TestBackend::always(Reply::json(200, r#"{"v":2}"#)).await;
    let sepia = Sepia::start(json!({
        "version": 2, "host": [backend.url()], "timeout": "1s",
        "endpoints": [{"endpoint": "/old", "headers_to_pass": ["X-Old"], "querystring_params": ["q"],
                       "backend": [{"url_pattern": "/old"}]}]
    }))
    .await;
    let answer = request(
        Method::GET,
        &sepia.url("/old?q=1&z=2"),
        &[("x-old", "yes")],
        b"",
        false,
    )
    .await;
    assert_eq!(answer.text(), r#"{"v":2}"#);
    let seen = &backend.requests()[0];
    assert_eq!(seen.header("x-old"), Some("yes"));
    assert_eq!(seen.query.as_deref(), Some("q=1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_a_line() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let sepia = Sepia::start_with(
        one_endpoint(
            json!({"endpoint": "/x", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}),
        ),
        &["--log-format", "json"],
        &[],
    )
    .await;
    let logs = sepia.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value["level"].is_string(), "{line}");
    }
    assert!(logs.contains("listening"));
}

#[test]
fn check_reports_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_config(
        dir.path(),
        &json!({"version": 3, "timeout": "2 seconds", "endpoints": [
            {"endpoint": "/a/{id}", "backend": [{"host": ["h"], "url_pattern": "/x/{user}"}]},
            {"endpoint": "/a/{other}", "backend": [{"host": ["h"], "url_pattern": "/"}]},
            {"endpoint": "/__health", "backend": [{"host": ["h"], "url_pattern": "/"}]},
            {"endpoint": "/b", "method": "GET", "backend": [{"url_pattern": "/"}]},
            {"endpoint": "/c", "backend": "nope"}
        ]}),
    );
    let output = run_sepia(&["check", "-c", bad.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "timeout: \"2 seconds\" has an unknown unit",
        "endpoints[0].backend[0].url_pattern: {user} is not a parameter",
        "endpoints[1].endpoint: GET /a/{other} is already served by endpoints[0]",
        "endpoints[2].endpoint: \"/__health\" is reserved",
        "endpoints[3].backend[0].host: no host",
        "endpoints[4].backend: expected an array, found a string",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[test]
fn check_summarises_a_valid_config_and_lint_fails_on_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"version": 3, "host": ["http://h"], "colour": "red", "endpoints": [
        {"endpoint": "/a", "backend": [{"url_pattern": "/"}, {"url_pattern": "/b", "encoding": "yaml"}],
         "extra_config": {"example/not-installed": {}}}
    ]});
    let path = write_config(dir.path(), &config);
    let output = run_sepia(&["check", "-c", path.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "OK: 1 endpoint(s), 2 backend(s), plugins needed: example/not-installed (missing)"
        ),
        "{stdout}"
    );
    assert!(stderr.contains("warning: colour: unknown key"), "{stderr}");
    assert!(
        stdout.contains(
            "behaves as KrakenD 2.x; Sepia switches (extra_config.sepia): json_errors off, pass_backend_status off"
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("endpoints[0].backend[1].encoding: KrakenD registers no \"yaml\" decoder"),
        "{stderr}"
    );
    assert!(
        stderr.contains("endpoints[0].extra_config.\"example/not-installed\": no loaded plugin serves this namespace"),
        "{stderr}"
    );
    let output = run_sepia(&["check", "--lint", "-c", path.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("colour: unknown key"), "{stderr}");
}

#[test]
fn version_names_the_plugin_abi() {
    let output = run_sepia(&["version"], &[]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("sepia "), "{stdout}");
    assert!(
        stdout.contains("plugin ABI (sepia-plugin-api) 1."),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_config_stops_run_with_the_problem() {
    let err =
        Sepia::refused(json!({"version": 3, "endpoints": [{"endpoint": "nope", "backend": []}]}))
            .await;
    assert!(
        err.contains("endpoints[0].endpoint: \"nope\" must start with '/'"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_gateway_on_a_taken_port_is_refused() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let config = one_endpoint(
        json!({"endpoint": "/x", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}),
    );
    let first = Sepia::start(config.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config);
    let output = run_sepia(
        &[
            "run",
            "-c",
            path.to_str().unwrap(),
            "-p",
            &first.port.to_string(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains("in use"),
        "{err}"
    );
    assert_eq!(get(&first.url("/__health")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_responses_are_shaped_in_krakend_order_before_merging() {
    let users = TestBackend::always(Reply::json(
        200,
        r#"{"data":{"id":7,"name":"Ann","secret":"x","address":{"city":"Oslo","zip":"0150"}},"meta":{"page":1}}"#,
    ))
    .await;
    let posts = TestBackend::always(Reply::json(200, r#"[{"id":1},{"id":2}]"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/profile", "backend": [
            {"host": [users.url()], "url_pattern": "/", "target": "data",
             "allow": ["id", "name", "address.city"], "mapping": {"name": "full_name"}, "group": "user"},
            {"host": [posts.url()], "url_pattern": "/", "is_collection": true, "mapping": {"collection": "posts"}}
        ]},
        {"endpoint": "/denied", "backend": [
            {"host": [users.url()], "url_pattern": "/", "deny": ["data.secret", "data.address.zip", "meta"]}
        ]},
        {"endpoint": "/posts", "output_encoding": "json-collection", "backend": [
            {"host": [posts.url()], "url_pattern": "/", "is_collection": true}
        ]}
    ]}))
    .await;
    assert_eq!(
        get(&sepia.url("/profile")).await.text(),
        r#"{"posts":[{"id":1},{"id":2}],"user":{"address":{"city":"Oslo"},"full_name":"Ann","id":7}}"#
    );
    assert_eq!(
        get(&sepia.url("/denied")).await.text(),
        r#"{"data":{"address":{"city":"Oslo"},"id":7,"name":"Ann"}}"#
    );
    assert_eq!(
        get(&sepia.url("/posts")).await.text(),
        r#"[{"id":1},{"id":2}]"#
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_ttl_concurrent_calls_round_robin_and_builtin_routes() {
    let a = TestBackend::always(Reply::json(200, r#"{"from":"a"}"#)).await;
    let b = TestBackend::always(Reply::json(200, r#"{"from":"b"}"#)).await;
    let slow =
        TestBackend::always(Reply::json(200, r#"{"x":1}"#).delayed(Duration::from_millis(2000)))
            .await;
    let broken = TestBackend::always(Reply::json(500, "{}")).await;
    let sepia = Sepia::start(json!({"version": 3, "cache_ttl": "1m", "debug_endpoint": true, "echo_endpoint": true,
        "extra_config": {"router": {"health_path": "/ping"}},
        "endpoints": [
            {"endpoint": "/cached", "backend": [{"host": [a.url()], "url_pattern": "/"}]},
            {"endpoint": "/own-ttl", "cache_ttl": "10s", "backend": [{"host": [a.url()], "url_pattern": "/"}]},
            {"endpoint": "/partial", "backend": [{"host": [a.url()], "url_pattern": "/"}, {"host": [broken.url()], "url_pattern": "/"}]},
            {"endpoint": "/balanced", "backend": [{"host": [a.url(), b.url()], "url_pattern": "/"}]},
            {"endpoint": "/racing", "concurrent_calls": 3, "backend": [{"host": [slow.url(), a.url()], "url_pattern": "/"}]}
        ]}))
    .await;
    assert_eq!(
        get(&sepia.url("/cached")).await.header("cache-control"),
        Some("public, max-age=60")
    );
    assert_eq!(
        get(&sepia.url("/own-ttl")).await.header("cache-control"),
        Some("public, max-age=10")
    );
    assert_eq!(
        get(&sepia.url("/partial")).await.header("cache-control"),
        None
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        seen.insert(
            get(&sepia.url("/balanced")).await.json()["from"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen.len(), 2, "both hosts used: {seen:?}");
    // Three identical calls go to slow, fast, slow: the fast answer wins.
    let started = Instant::now();
    assert_eq!(get(&sepia.url("/racing")).await.json()["from"], "a");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    assert_eq!(get(&sepia.url("/ping")).await.json()["status"], "ok");
    assert_eq!(get(&sepia.url("/__health")).await.status, 404);
    assert_eq!(
        get(&sepia.url("/__debug/anything")).await.json()["message"],
        "pong"
    );
    let echo = request(
        Method::POST,
        &sepia.url("/__echo/x?a=1"),
        &[("x-test", "v")],
        b"hello",
        false,
    )
    .await
    .json();
    assert_eq!(echo["req_method"], "POST");
    assert_eq!(echo["req_uri_details"]["path"], "/__echo/x");
    assert_eq!(echo["req_querystring"]["a"], json!(["1"]));
    assert_eq!(echo["req_body"], "hello");
    assert_eq!(echo["req_headers"]["X-Test"], json!(["v"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_level_forwarding_narrows_what_the_endpoint_forwards() {
    let narrow = TestBackend::always(Reply::json(200, r#"{"n":1}"#)).await;
    let wide = TestBackend::always(Reply::json(200, r#"{"w":1}"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/f", "input_headers": ["X-Tenant", "Authorization"], "input_query_strings": ["a", "b"],
         "backend": [
            {"host": [narrow.url()], "url_pattern": "/n", "sd": "static",
             "input_headers": ["X-Tenant"], "input_query_strings": ["b", "c"]},
            {"host": [format!("{}/", wide.url())], "url_pattern": "/w", "disable_host_sanitize": true}
         ]}
    ]}))
    .await;
    let answer = request(
        Method::GET,
        &sepia.url("/f?a=1&b=2&c=3"),
        &[("x-tenant", "t1"), ("authorization", "Bearer x")],
        b"",
        false,
    )
    .await;
    assert_eq!(answer.text(), r#"{"n":1,"w":1}"#);
    let n = &narrow.requests()[0];
    assert_eq!(n.query.as_deref(), Some("b=2"));
    assert_eq!(n.header("x-tenant"), Some("t1"));
    assert_eq!(n.header("authorization"), None);
    assert!(n.header("x-forwarded-for").is_some());
    let w = &wide.requests()[0];
    // Not sanitized: the host's trailing slash stays, as in KrakenD.
    assert_eq!(w.path, "//w");
    assert_eq!(w.query.as_deref(), Some("a=1&b=2"));
    assert_eq!(w.header("authorization"), Some("Bearer x"));
}

#[tokio::test(flavor = "multi_thread")]
async fn router_flags_turn_405_into_404_and_are_checked() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let sepia = Sepia::start(json!({"version": 3,
        "extra_config": {"router": {"disable_handle_method_not_allowed": true, "hide_version_header": true, "use_h2c": true}},
        "endpoints": [{"endpoint": "/only-get", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}]}))
    .await;
    let answer = request(Method::POST, &sepia.url("/only-get"), &[], b"{}", false).await;
    assert_eq!(answer.status, 404);
    assert!(answer.header("allow").is_none());
    assert_eq!(answer.text(), "404 page not found");
    assert_eq!(get(&sepia.url("/only-get")).await.status, 200);
    let message = Sepia::refused(json!({"version": 3,
        "extra_config": {"router": {"disable_handle_method_not_allowed": "yes"}}, "endpoints": []}))
    .await;
    assert!(
        message.contains(
            "extra_config.router.disable_handle_method_not_allowed must be true or false"
        ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_options_answers_with_the_paths_methods_in_version_3() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let config = |version: u64| {
        json!({"version": version,
        "extra_config": {"router": {"auto_options": true}},
        "endpoints": [
            {"endpoint": "/items/{id}", "method": "POST", "backend": [{"host": [backend.url()], "url_pattern": "/"}]},
            {"endpoint": "/items/{id}", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}
        ]})
    };
    let sepia = Sepia::start(config(3)).await;
    let answer = request(Method::OPTIONS, &sepia.url("/items/7"), &[], b"", false).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("allow"), Some("GET, POST"));
    assert_eq!(answer.header("x-krakend"), Some("Version 2.13.8"));
    assert!(answer.body.is_empty());
    assert_eq!(
        request(Method::OPTIONS, &sepia.url("/nowhere"), &[], b"", false)
            .await
            .status,
        404
    );
    // KrakenD 1.x has no auto_options: the path's 405.
    let old = Sepia::start(config(2)).await;
    let answer = request(Method::OPTIONS, &old.url("/items/7"), &[], b"", false).await;
    assert_eq!(answer.status, 405);
    assert!(
        old.logs().contains("auto_options: KrakenD 1.x"),
        "{}",
        old.logs()
    );
}

/// A backend that answers the first request of each connection and closes
/// the connection when the second arrives, as a backend closing an idle
/// keep-alive connection does when a request races the close. Counts the
/// requests it reads.
async fn closes_kept_connections() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{atomic::AtomicUsize, atomic::Ordering, Arc};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut heads = 0;
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    // A request is its head and `content-length` bytes of
                    // body, or a chunked body up to its last chunk (the
                    // test's bodies hold no "0\r\n\r\n").
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                        let length = if head.contains("transfer-encoding: chunked") {
                            match buffer[end + 4..].windows(5).position(|w| w == b"0\r\n\r\n") {
                                Some(last) => last + 5,
                                None => break,
                            }
                        } else {
                            head.lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0)
                        };
                        if buffer.len() < end + 4 + length {
                            break;
                        }
                        buffer.drain(..end + 4 + length);
                        counter.fetch_add(1, Ordering::SeqCst);
                        heads += 1;
                        if heads == 2 {
                            return;
                        }
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, read)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_get_goes_again_when_the_backend_closes_its_kept_connection_but_a_post_does_not() {
    use std::sync::atomic::Ordering;
    let (get_url, gets_read) = closes_kept_connections().await;
    let (post_url, posts_read) = closes_kept_connections().await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/read", "backend": [{"host": [get_url], "url_pattern": "/"}]},
        {"endpoint": "/write", "method": "POST", "backend": [{"host": [post_url], "url_pattern": "/", "method": "POST"}]}
    ]}))
    .await;
    // Four calls over two workers: at least one worker calls the backend
    // twice, the second time on a connection the backend then closes.
    for _ in 0..4 {
        let answer = get(&sepia.url("/read")).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json(), json!({"ok": true}));
    }
    assert!(
        gets_read.load(Ordering::SeqCst) > 4,
        "no GET was sent again"
    );
    let mut failed = 0;
    for _ in 0..4 {
        let answer = request(Method::POST, &sepia.url("/write"), &[], b"{}", false).await;
        if answer.status == 500 {
            failed += 1;
        } else {
            assert_eq!(answer.status, 200, "{}", answer.text());
        }
    }
    assert!(failed >= 1, "a POST was sent again");
    assert_eq!(
        posts_read.load(Ordering::SeqCst),
        4,
        "a POST was sent twice"
    );
}

/// `sepia check` with this configuration: exit code, stdout, stderr.
fn check_config(config: &Value, extra: &[&str]) -> (Option<i32>, String, String) {
    check_config_with(&sepia_e2e::artifacts::sepia_bin(), config, extra)
}

/// `program check` with this configuration.
fn check_config_with(
    program: &std::path::Path,
    config: &Value,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), config);
    let mut args = vec!["check", "-c", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = run_program(program, &args, &[]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_what_run_refuses_with_the_same_message() {
    let unsafe_config = json!({"version": 2, "host": ["http://127.0.0.1:9"], "endpoints": [
        {"endpoint": "/private", "backend": [{"url_pattern": "/"}],
         "extra_config": {"github.com/devopsfaith/krakend-jose/validator": {"alg": "RS256"}}}
    ]});
    let message = "endpoints[0].extra_config.\"github.com/devopsfaith/krakend-jose/validator\": no loaded plugin serves this namespace, and serving without it would be unsafe";
    // A gateway without the validator plugin beside it.
    let bin_dir = tempfile::tempdir().unwrap();
    let lone = lone_sepia(bin_dir.path());
    let refused = match Sepia::try_start_program(&lone, unsafe_config.clone(), &[], &[]).await {
        Ok(_) => panic!("a protected endpoint was served without its validator"),
        Err(logs) => logs,
    };
    assert!(refused.contains(message), "{refused}");
    let (code, _, stderr) = check_config_with(&lone, &unsafe_config, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");

    // A plugin's refusal of its settings, too: check builds every modifier.
    let bad_signer = json!({"version": 3, "host": ["http://127.0.0.1:9"], "endpoints": [
        {"endpoint": "/token", "backend": [{"url_pattern": "/"}],
         "extra_config": {"auth/signer": {"alg": "XX999", "kid": "k", "keys_to_sign": ["a"],
                                           "jwk_url": "https://127.0.0.1:9/keys"}}}
    ]});
    let refused = Sepia::refused(bad_signer.clone()).await;
    let (code, _, stderr) = check_config(&bad_signer, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let line =
        "endpoints[0].extra_config.\"auth/signer\": plugin jose-signer refused the configuration";
    assert!(refused.contains(line), "{refused}");
    assert!(stderr.contains(line), "{stderr}");
    assert!(stderr.contains("XX999"), "{stderr}");
}

#[test]
fn check_does_not_fetch_remote_keys_unless_asked() {
    // Nothing listens on port 9: `run` would fail to load the key.
    let signer = json!({"version": 3, "host": ["http://127.0.0.1:9"], "endpoints": [
        {"endpoint": "/token", "backend": [{"url_pattern": "/"}],
         "extra_config": {"auth/signer": {"alg": "RS256", "kid": "k", "keys_to_sign": ["a"],
                                           "jwk_url": "https://127.0.0.1:9/keys",
                                           "jwk_startup_timeout": "300ms"}}}
    ]});
    let (code, stdout, stderr) = check_config(&signer, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("auth/signer (jose-signer)"), "{stdout}");
    let (code, _, stderr) = check_config(&signer, &["--fetch"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("endpoints[0].extra_config.\"auth/signer\": plugin jose-signer refused"),
        "{stderr}"
    );
}

#[test]
fn check_names_every_unserved_namespace_at_every_level_in_every_spelling() {
    // The top level of KrakenD's version-2 playground, less its revoker
    // (its CORS is served by the cors plugin).
    let config = json!({"version": 2, "host": ["http://127.0.0.1:9"],
    "extra_config": {
        "github_com/devopsfaith/krakend-cors": {"allow_origins": ["*"]},
        "github_com/devopsfaith/krakend-metrics": {"listen_address": ":8090"},
        "github_com/devopsfaith/krakend-gologging": {"level": "ERROR"},
        "github_com/devopsfaith/krakend-opencensus": {"sample_rate": 100},
        "router": {"return_error_msg": true}
    },
    "endpoints": [
        {"endpoint": "/a", "backend": [{"url_pattern": "/",
            "extra_config": {"github.com/devopsfaith/krakend-httpcache": {}}}],
         "extra_config": {"modifier/martian": {"fifo.Group": {}}}},
        {"endpoint": "/b", "backend": [{"url_pattern": "/"}],
         "extra_config": {"github.com/devopsfaith/krakend-martian": {"fifo.Group": {}}}}
    ]});
    let (code, _, stderr) = check_config(&config, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    for path in [
        "extra_config.\"github_com/devopsfaith/krakend-opencensus\"",
        "endpoints[0].extra_config.\"modifier/martian\"",
        "endpoints[1].extra_config.\"github.com/devopsfaith/krakend-martian\"",
        "endpoints[0].backend[0].extra_config.\"github.com/devopsfaith/krakend-httpcache\"",
    ] {
        assert!(
            stderr.contains(&format!(
                "warning: {path}: no loaded plugin serves this namespace"
            )),
            "{path} not named in:\n{stderr}"
        );
    }
    // The gateway reads the router, the logging and the stats settings
    // itself.
    assert!(!stderr.contains("\"router\""), "{stderr}");
    assert!(!stderr.contains("krakend-gologging"), "{stderr}");
    assert!(!stderr.contains("krakend-metrics"), "{stderr}");
    let (code, _, stderr) = check_config(&config, &["--lint"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("4 namespace(s) no plugin serves"),
        "{stderr}"
    );

    // The revoker, in its version-2 spelling, guards tokens: refused by a
    // gateway without the plugin that serves it.
    let mut revoking = config.clone();
    revoking["extra_config"]["github_com/devopsfaith/bloomfilter"] = json!({"N": 100});
    let bin_dir = tempfile::tempdir().unwrap();
    let lone = lone_sepia(bin_dir.path());
    let (code, _, stderr) = check_config_with(&lone, &revoking, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("extra_config.\"github_com/devopsfaith/bloomfilter\": no loaded plugin serves this namespace, and serving without it would be unsafe"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn near_miss_paths_redirect_as_krakends_router_does() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let config = |version: u64, router: Value| {
        json!({"version": version, "extra_config": {"github_com/luraproject/lura/router/gin": router},
        "endpoints": [
            {"endpoint": "/users/{id}", "backend": [{"host": [backend.url()], "url_pattern": "/"}]},
            {"endpoint": "/users/{id}", "method": "POST", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}
        ]})
    };
    let sepia = Sepia::start(config(2, json!({}))).await;
    // A trailing slash: 301 for GET, with Go's small HTML body, query kept.
    let answer = get(&sepia.url("/users/7/?a=1&b=%3C2%3E")).await;
    assert_eq!(answer.status, 301);
    assert_eq!(answer.header("location"), Some("/users/7?a=1&b=%3C2%3E"));
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        answer.text(),
        "<a href=\"/users/7?a=1&amp;b=%3C2%3E\">Moved Permanently</a>.\n\n"
    );
    // Any other method: 307, which keeps it, and no body.
    let answer = request(Method::POST, &sepia.url("/users/7/"), &[], b"{}", false).await;
    assert_eq!(answer.status, 307);
    assert_eq!(answer.header("location"), Some("/users/7"));
    assert_eq!(answer.text(), "");
    // The wrong case, or an unclean path: to the route's own spelling.
    let answer = get(&sepia.url("/USERS/Abc")).await;
    assert_eq!(answer.status, 301);
    assert_eq!(answer.header("location"), Some("/users/Abc"));
    assert!(backend.requests().is_empty());
    // Switched off in lura 2's router settings: near misses are misses.
    let off = json!({
        "disable_redirect_trailing_slash": true, "disable_redirect_fixed_path": true
    });
    let strict = Sepia::start(config(3, off.clone())).await;
    assert_eq!(get(&strict.url("/users/7/")).await.status, 404);
    assert_eq!(get(&strict.url("/USERS/7")).await.status, 404);
    assert_eq!(get(&strict.url("/users/7")).await.status, 200);
    // KrakenD 1.x has them always on.
    let fixed = Sepia::start(config(2, off)).await;
    assert_eq!(get(&fixed.url("/users/7/")).await.status, 301);
    assert!(
        fixed
            .logs()
            .contains("disable_redirect_fixed_path: KrakenD 1.x"),
        "{}",
        fixed.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_names_itself_as_its_krakend_generation_unless_switched() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let config = |version: u64, extra: Value| {
        json!({"version": version, "host": [backend.url()], "extra_config": extra,
               "endpoints": [{"endpoint": "/x", "backend": [{"url_pattern": "/x"}]}]})
    };
    for (config, agent, version_header) in [
        (
            config(3, json!({})),
            "KrakenD Version 2.13.8",
            Some("Version 2.13.8"),
        ),
        (
            config(3, json!({"router": {"hide_version_header": true}})),
            "KrakenD Version 2.13.8",
            Some("Version undefined"),
        ),
        (
            config(2, json!({})),
            "KrakenD Version 1.4.1",
            Some("Version 1.4.1"),
        ),
        (
            config(3, json!({"sepia": {"own_identity": true}})),
            "Sepia/",
            None,
        ),
    ] {
        let sepia = Sepia::start(config.clone()).await;
        let answer = get(&sepia.url("/x")).await;
        assert_eq!(answer.status, 200, "{config}");
        assert_eq!(answer.header("x-krakend"), version_header, "{config}");
        let seen = backend.requests();
        let seen_agent = seen
            .last()
            .unwrap()
            .header("user-agent")
            .unwrap_or_default();
        assert!(
            seen_agent == agent || (agent == "Sepia/" && seen_agent.starts_with(agent)),
            "{seen_agent}: {config}"
        );
        // Unknown paths are gin's, not an endpoint's: no version header.
        assert_eq!(get(&sepia.url("/nope")).await.header("x-krakend"), None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backends_redirects_are_followed_and_their_gzip_undone() {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(br#"{"packed":true}"#).unwrap();
    let packed = encoder.finish().unwrap();
    let backend = TestBackend::start(move |r| match r.path.as_str() {
        "/moved" => Reply::text(301, "").with_header("location", "/final?from=moved"),
        "/loop" => Reply::text(302, "").with_header("location", "/loop"),
        "/gzip" => Reply {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("content-encoding".into(), "gzip".into()),
            ],
            body: packed.clone(),
            delay: Duration::ZERO,
        },
        _ => Reply::json(
            200,
            &json!({"path": r.path, "query": r.query, "referer": r.header("referer")}).to_string(),
        ),
    })
    .await;
    let sepia = Sepia::start(json!({"version": 3, "host": [backend.url()], "extra_config": {"router": {"return_error_msg": true}}, "endpoints": [
        {"endpoint": "/moved", "backend": [{"url_pattern": "/moved"}]},
        {"endpoint": "/loop", "backend": [{"url_pattern": "/loop"}]},
        {"endpoint": "/gzip", "backend": [{"url_pattern": "/gzip"}]},
        {"endpoint": "/gzip-raw", "output_encoding": "no-op", "backend": [{"url_pattern": "/gzip", "encoding": "no-op"}]}
    ]}))
    .await;
    let moved = get(&sepia.url("/moved")).await;
    assert_eq!(moved.status, 200, "{}", moved.text());
    assert_eq!(
        moved.json(),
        json!({"path": "/final", "query": "from=moved", "referer": format!("{}/moved", backend.url())})
    );
    // Go's client gives up after ten redirects: the backend failed.
    let looped = get(&sepia.url("/loop")).await;
    assert_eq!(looped.status, 500, "{}", looped.text());
    assert!(
        looped.text().contains("stopped after 10 redirects"),
        "{}",
        looped.text()
    );
    assert_eq!(
        backend
            .requests()
            .iter()
            .filter(|r| r.path == "/loop")
            .count(),
        11
    );
    assert_eq!(
        get(&sepia.url("/gzip")).await.json(),
        json!({"packed": true})
    );
    let raw = get(&sepia.url("/gzip-raw")).await;
    assert_eq!(raw.text(), r#"{"packed":true}"#);
    assert_eq!(raw.header("content-encoding"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn version_2_negotiation_is_lura_1s() {
    let backend = TestBackend::start(|r| match r.path.as_str() {
        "/text" => Reply::json(200, r#"{"content": "a<b", "n": 1}"#),
        "/nested" => Reply::json(200, r#"{"content": {"a": 1}}"#),
        _ => Reply::json(200, r#"{"a": 1}"#),
    })
    .await;
    let endpoint = |path: &str| json!({"endpoint": path, "output_encoding": "negotiate", "backend": [{"url_pattern": path}]});
    let sepia = Sepia::start(json!({"version": 2, "host": [backend.url()], "endpoints": [
        endpoint("/text"), endpoint("/nested"), endpoint("/plain")
    ]}))
    .await;
    let ask = |path: &str, accept: &'static str| {
        let url = sepia.url(path);
        async move { request(Method::GET, &url, &[("accept", accept)], b"", false).await }
    };
    // lura 1.4's XML is Go's encoding/xml of `content`.
    let xml = ask("/text", "application/xml").await;
    assert_eq!(xml.status, 200);
    assert_eq!(
        xml.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    assert_eq!(xml.text(), "<string>a&lt;b</string>");
    assert_eq!(ask("/plain", "application/xml").await.text(), "");
    assert_eq!(ask("/nested", "application/xml").await.status, 500);
    // No YAML offer and no wildcards on gin of 2017: JSON.
    for accept in ["application/x-yaml", "*/*"] {
        let answer = ask("/plain", accept).await;
        assert_eq!(answer.json(), json!({"a": 1}), "{accept}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_compression_asks_backends_for_no_gzip() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    for (disable, asked) in [(false, Some("gzip")), (true, None)] {
        let sepia = Sepia::start(json!({"version": 2, "host": [backend.url()],
            "disable_compression": disable,
            "endpoints": [{"endpoint": "/x", "backend": [{"url_pattern": "/x"}]}]}))
        .await;
        assert_eq!(get(&sepia.url("/x")).await.status, 200);
        let seen = backend.requests().last().cloned().unwrap();
        assert_eq!(seen.header("accept-encoding"), asked, "{disable}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_307_to_a_request_with_a_body_is_followed_only_when_asked() {
    let backend = TestBackend::start(|r| match r.path.as_str() {
        "/temporary" => Reply::text(307, "").with_header("location", "/target"),
        _ => Reply::json(
            200,
            &json!({"method": r.method, "body": String::from_utf8_lossy(&r.body)}).to_string(),
        ),
    })
    .await;
    let endpoint = |path: &str, encoding: &str, replay: bool| {
        json!({"endpoint": path, "method": "POST", "output_encoding": encoding,
               "backend": [{"url_pattern": "/temporary", "encoding": encoding,
                            "extra_config": {"backend/http/client": {"send_body_on_redirect": replay}}}]})
    };
    let sepia = Sepia::start(json!({"version": 3, "host": [backend.url()], "endpoints": [
        endpoint("/json", "json", false),
        endpoint("/raw", "no-op", false),
        endpoint("/replayed", "json", true),
        {"endpoint": "/get", "backend": [{"url_pattern": "/temporary"}]}
    ]}))
    .await;
    // Go's client cannot rewind the body lura hands it: the 307 is the
    // backend's answer, which a JSON endpoint refuses and no-op passes on.
    let refused = request(Method::POST, &sepia.url("/json"), &[], b"payload", false).await;
    assert_eq!(refused.status, 500, "{}", refused.text());
    let passed = request(Method::POST, &sepia.url("/raw"), &[], b"payload", false).await;
    assert_eq!(passed.status, 307, "{}", passed.text());
    assert_eq!(passed.header("location"), Some("/target"));
    let replayed = request(
        Method::POST,
        &sepia.url("/replayed"),
        &[],
        b"payload",
        false,
    )
    .await;
    assert_eq!(replayed.status, 200, "{}", replayed.text());
    assert_eq!(
        replayed.json(),
        json!({"method": "POST", "body": "payload"})
    );
    // Without a body there is nothing to replay: followed.
    let bodiless = get(&sepia.url("/get")).await;
    assert_eq!(bodiless.json(), json!({"method": "GET", "body": ""}));
    assert_eq!(
        backend
            .requests()
            .iter()
            .filter(|r| r.path == "/target")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_address_is_gins_per_generation_unless_switched() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let forwarded_for = |version: u64, router: Value, sepia_switches: Value| {
        let backend = backend.url();
        async move {
            let sepia = Sepia::start(json!({"version": version,
                "extra_config": {"router": router, "sepia": sepia_switches},
                "endpoints": [{"endpoint": "/who", "backend": [{"host": [backend], "url_pattern": "/who"}]}]}))
            .await;
            let answer = request(
                Method::GET,
                &sepia.url("/who"),
                &[("x-forwarded-for", "6.6.6.6, 1.2.3.4")],
                b"",
                false,
            )
            .await;
            assert_eq!(answer.status, 200);
        }
    };
    let last = || {
        backend
            .requests()
            .last()
            .and_then(|r| r.header("x-forwarded-for").map(str::to_owned))
    };
    // lura 2: every proxy trusted, the left-most address.
    forwarded_for(3, json!({}), json!({})).await;
    assert_eq!(last().as_deref(), Some("6.6.6.6"));
    // Trusting the peer only: the right-most address that is not it.
    forwarded_for(3, json!({"trusted_proxies": ["127.0.0.1"]}), json!({})).await;
    assert_eq!(last().as_deref(), Some("1.2.3.4"));
    // A peer that is not trusted is the client.
    forwarded_for(3, json!({"trusted_proxies": ["10.0.0.0/8"]}), json!({})).await;
    assert_eq!(last().as_deref(), Some("127.0.0.1"));
    forwarded_for(3, json!({"forwarded_by_client_ip": false}), json!({})).await;
    assert_eq!(last().as_deref(), Some("127.0.0.1"));
    // Another header.
    forwarded_for(3, json!({"remote_ip_headers": ["X-Client"]}), json!({})).await;
    assert_eq!(last().as_deref(), Some("127.0.0.1"));
    // lura 1.4: the first entry.
    forwarded_for(2, json!({}), json!({})).await;
    assert_eq!(last().as_deref(), Some("6.6.6.6"));
    // Sepia's switch: no header trusted, the chain kept.
    forwarded_for(3, json!({}), json!({"append_forwarded_for": true})).await;
    assert_eq!(last().as_deref(), Some("6.6.6.6, 1.2.3.4, 127.0.0.1"));
    let refused = Sepia::refused(json!({"version": 3,
        "extra_config": {"router": {"trusted_proxies": ["10.0.0.0/99"]}},
        "endpoints": []}))
    .await;
    assert!(refused.contains("trusted_proxies"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_extra_slash_and_app_engine_are_gins() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let start = |router: Value| {
        let backend = backend.url();
        async move {
            Sepia::start(json!({"version": 3, "extra_config": {"router": router},
                "endpoints": [{"endpoint": "/users/{id}", "backend": [{"host": [backend], "url_pattern": "/u/{id}"}]}]}))
            .await
        }
    };
    let plain = start(json!({})).await;
    let unclean = get(&plain.url("//users/./x/../7")).await;
    assert_eq!(unclean.status, 301);
    assert_eq!(unclean.header("location"), Some("/users/7"));
    // gin cleans the path before it routes it: served, not redirected.
    let cleaning = start(json!({"remove_extra_slash": true, "app_engine": true})).await;
    let served = request(
        Method::GET,
        &cleaning.url("//users/./x/../7"),
        &[("x-appengine-remote-addr", "9.9.9.9")],
        b"",
        false,
    )
    .await;
    assert_eq!(served.status, 200, "{}", served.text());
    let seen = backend.requests().last().cloned().unwrap();
    assert_eq!(seen.path, "/u/7");
    // app_engine: its header names the client, before X-Forwarded-For.
    assert_eq!(seen.header("x-forwarded-for"), Some("9.9.9.9"));
}

#[tokio::test(flavor = "multi_thread")]
async fn lura_2_refuses_path_parameters_encoded_twice_unless_disabled() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let start = |version: u64, router: Value| {
        let backend = backend.url();
        async move {
            Sepia::start(json!({"version": version, "extra_config": {"router": router},
                "endpoints": [{"endpoint": "/items/{id}", "backend": [{"host": [backend], "url_pattern": "/items/{id}"}]}]}))
            .await
        }
    };
    let sepia = start(3, json!({})).await;
    let refused = get(&sepia.url("/items/a%2520b")).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.text(), "error: encoded url params");
    assert_eq!(
        refused.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(get(&sepia.url("/items/a%3Fb")).await.status, 400);
    assert_eq!(get(&sepia.url("/items/a%20b")).await.status, 200);
    let before = backend.requests().len();
    // Version-1/2 files (lura 1.4) and disable_path_decoding pass them.
    let old = start(2, json!({})).await;
    assert_eq!(get(&old.url("/items/a%2520b")).await.status, 200);
    let off = start(3, json!({"disable_path_decoding": true})).await;
    assert_eq!(get(&off.url("/items/a%2520b")).await.status, 200);
    assert_eq!(backend.requests().len(), before + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_transport_settings_reach_the_backend_client() {
    let backend = TestBackend::start(|r| match r.path.as_str() {
        "/slow" => Reply::json(200, "{}").delayed(Duration::from_millis(800)),
        _ => Reply::json(200, "{}"),
    })
    .await;
    for disable in [false, true] {
        let sepia = Sepia::start(json!({"version": 3, "host": [backend.url()],
            "timeout": "3s", "disable_keep_alives": disable,
            "response_header_timeout": "200ms", "max_idle_connections_per_host": 1,
            "idle_connection_timeout": "1s", "dialer_timeout": "1s",
            "dialer_keep_alive": "-1s", "dialer_fallback_delay": "100ms",
            "endpoints": [
                {"endpoint": "/x", "backend": [{"url_pattern": "/x"}]},
                {"endpoint": "/slow", "backend": [{"url_pattern": "/slow"}]}]}))
        .await;
        assert_eq!(get(&sepia.url("/x")).await.status, 200);
        let seen = backend.requests().last().cloned().unwrap();
        let close = disable.then_some("close");
        assert_eq!(seen.header("connection"), close, "{disable}");
        // A backend slower than response_header_timeout is a failed
        // backend (lura's 500) long before the endpoint's timeout.
        let started = Instant::now();
        let slow = get(&sepia.url("/slow")).await;
        assert_eq!(slow.status, 500, "{}", slow.text());
        assert!(
            started.elapsed() < Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
    }
}
