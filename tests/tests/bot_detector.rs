//! The bot detector end to end: at the top level it guards every request
//! before routing, in an endpoint that endpoint only; bots get a bare 403.

use http::Method;
use sepia_e2e::{request, Reply, Sepia, TestBackend};
use serde_json::json;

async fn status(sepia: &Sepia, path: &str, agent: Option<&str>) -> (u16, usize) {
    let headers: Vec<(&str, &str)> = agent.map(|a| vec![("user-agent", a)]).unwrap_or_default();
    let answer = request(Method::GET, &sepia.url(path), &headers, b"", false).await;
    (answer.status.as_u16(), answer.body.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_get_a_bare_403_where_the_detector_stands() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let detector = json!({"deny": ["curl/8"], "allow": ["Googlebot-Partner"],
                          "patterns": ["(?i)bot", "^python-requests/"], "empty_user_agent_is_bot": true});
    // Version 2 spelling, at the top level: every request, 404s too.
    let guarded = Sepia::start(json!({"version": 2, "host": [backend.url()],
        "extra_config": {"github_com/devopsfaith/krakend-botdetector": detector.clone()},
        "endpoints": [{"endpoint": "/a", "backend": [{"url_pattern": "/"}]}]}))
    .await;
    for (agent, want) in [
        (Some("Mozilla/5.0"), 200),
        (Some("curl/8"), 403),
        (Some("SuperBot 1.0"), 403),
        (Some("python-requests/2.31"), 403),
        (Some("Googlebot-Partner"), 200),
        (None, 403),
    ] {
        let (got, body) = status(&guarded, "/a", agent).await;
        assert_eq!(got, want, "{agent:?}");
        if want == 403 {
            assert_eq!(body, 0, "{agent:?}");
        }
    }
    assert_eq!(status(&guarded, "/nope", Some("curl/8")).await.0, 403);
    // In one endpoint: only there.
    let one = Sepia::start(json!({"version": 3, "host": [backend.url()], "endpoints": [
        {"endpoint": "/guarded", "backend": [{"url_pattern": "/"}],
         "extra_config": {"security/bot-detector": detector}},
        {"endpoint": "/open", "backend": [{"url_pattern": "/"}]}]}))
    .await;
    assert_eq!(status(&one, "/guarded", Some("curl/8")).await.0, 403);
    assert_eq!(status(&one, "/open", Some("curl/8")).await.0, 200);
    // A pattern Go would refuse too stops start-up instead of letting bots in.
    let logs = Sepia::refused(json!({"version": 3, "host": [backend.url()],
        "extra_config": {"security/bot-detector": {"patterns": ["(unclosed"]}},
        "endpoints": [{"endpoint": "/a", "backend": [{"url_pattern": "/"}]}]}))
    .await;
    assert!(logs.contains("is not a valid pattern"), "{logs}");
}
