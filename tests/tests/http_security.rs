//! HTTP security end to end: the http-security plugin in front of the
//! router, as krakend-httpsecure's middleware is, per generation.

use http::Method;
use sepia_e2e::{request, Answer, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

fn config(version: u64, namespace: &str, settings: Value, backend: &TestBackend) -> Value {
    json!({"version": version, "host": [backend.url()],
           "extra_config": {namespace: settings},
           "endpoints": [{"endpoint": "/a", "backend": [{"url_pattern": "/"}]}]})
}

async fn get(sepia: &Sepia, path: &str, headers: &[(&str, &str)]) -> Answer {
    request(Method::GET, &sepia.url(path), headers, b"", false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn security_headers_hosts_and_the_https_redirect() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let settings = json!({"allowed_hosts": ["api.example.com"], "ssl_proxy_headers": {"X-Forwarded-Proto": "https"},
        "sts_seconds": 31536000, "sts_include_subdomains": true, "frame_deny": true,
        "content_type_nosniff": true, "browser_xss_filter": true,
        "content_security_policy": "default-src 'self'", "referrer_policy": "same-origin"});
    let sepia = Sepia::start(config(3, "security/http", settings, &backend)).await;
    let host = ("host", "api.example.com");
    let https = ("x-forwarded-proto", "https");
    let answer = get(&sepia, "/a", &[host, https]).await;
    assert_eq!(answer.status, 200);
    for (name, value) in [
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("x-xss-protection", "1; mode=block"),
        ("content-security-policy", "default-src 'self'"),
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(answer.header(name), Some(value), "{name}");
    }
    // Plain http gets no STS; 404s get the headers too.
    let plain = get(&sepia, "/nope", &[host, https]).await;
    assert_eq!(plain.status, 404);
    assert_eq!(plain.header("x-frame-options"), Some("DENY"));
    // Another host: unrolled/secure's 500 "Bad Host", no backend call.
    let bad = get(&sepia, "/a", &[("host", "evil.example.com")]).await;
    assert_eq!(
        (bad.status.as_u16(), bad.text()),
        (500, "Bad Host\n".to_owned())
    );
    assert_eq!(backend.requests().len(), 1);

    // ssl_redirect: plain http goes to https, 301; https passes.
    let redirecting = Sepia::start(config(
        3,
        "security/http",
        json!({"ssl_redirect": true, "ssl_proxy_headers": {"X-Forwarded-Proto": "https"}}),
        &backend,
    ))
    .await;
    let moved = get(&redirecting, "/a?x=1", &[host]).await;
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        Some("https://api.example.com/a?x=1")
    );
    assert_eq!(get(&redirecting, "/a", &[host, https]).await.status, 200);

    // Version 2 spelling: KrakenD 1.x never sees https here, so no STS.
    let v2 = Sepia::start(config(
        2,
        "github_com/devopsfaith/krakend-httpsecure",
        json!({"sts_seconds": 60, "frame_deny": true}),
        &backend,
    ))
    .await;
    let answer = get(&v2, "/a", &[https]).await;
    assert_eq!(answer.header("strict-transport-security"), None);
    assert_eq!(answer.header("x-frame-options"), Some("DENY"));
    let logs = Sepia::refused(config(
        2,
        "github_com/devopsfaith/krakend-httpsecure",
        json!({"force_sts_header": true}),
        &backend,
    ))
    .await;
    assert!(logs.contains("KrakenD 2.x only"), "{logs}");
}
