//! KrakenD's `proxy` namespace (static data, sequential backends) and
//! `backend/http` error strategies, end to end: the real binary against real
//! backends.

use std::time::Duration;

use sepia_e2e::{get, Recorded, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

fn backend(host: &TestBackend, pattern: &str) -> Value {
    json!({"host": [host.url()], "url_pattern": pattern})
}

fn with_static(endpoint: &str, strategy: &str, backends: Vec<Value>) -> Value {
    json!({"endpoint": endpoint, "timeout": "500ms", "backend": backends,
           "extra_config": {"proxy": {"static": {"strategy": strategy, "data": {"a": "static", "s": true}}}}})
}

#[tokio::test(flavor = "multi_thread")]
async fn static_data_follows_each_krakend_strategy() {
    let ok = TestBackend::always(Reply::json(200, r#"{"a":1,"b":2}"#)).await;
    let other = TestBackend::always(Reply::json(200, r#"{"c":3}"#)).await;
    let broken = TestBackend::always(Reply::json(500, "{}")).await;
    let slow =
        TestBackend::always(Reply::json(200, r#"{"late":1}"#).delayed(Duration::from_secs(2)))
            .await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        with_static("/always/ok", "always", vec![backend(&ok, "/")]),
        with_static("/always/broken", "always", vec![backend(&broken, "/")]),
        with_static("/success/ok", "success", vec![backend(&ok, "/")]),
        with_static("/success/broken", "success", vec![backend(&broken, "/")]),
        with_static("/errored/ok", "errored", vec![backend(&ok, "/")]),
        with_static("/errored/broken", "errored", vec![backend(&broken, "/")]),
        with_static("/errored/partial", "errored", vec![backend(&other, "/"), backend(&broken, "/")]),
        with_static("/errored/timeout", "errored", vec![backend(&slow, "/")]),
        with_static("/complete/ok", "complete", vec![backend(&ok, "/"), backend(&other, "/")]),
        with_static("/complete/partial", "complete", vec![backend(&other, "/"), backend(&broken, "/")]),
        with_static("/incomplete/ok", "incomplete", vec![backend(&ok, "/")]),
        with_static("/incomplete/partial", "incomplete", vec![backend(&other, "/"), backend(&broken, "/")])
    ]}))
    .await;
    // (path, status, body, X-Krakend-Completed)
    let expected = [
        (
            "/always/ok",
            200,
            r#"{"a":"static","b":2,"s":true}"#,
            "true",
        ),
        ("/always/broken", 200, r#"{"a":"static","s":true}"#, "false"),
        (
            "/success/ok",
            200,
            r#"{"a":"static","b":2,"s":true}"#,
            "true",
        ),
        ("/errored/ok", 200, r#"{"a":1,"b":2}"#, "true"),
        (
            "/errored/broken",
            200,
            r#"{"a":"static","s":true}"#,
            "false",
        ),
        (
            "/errored/partial",
            200,
            r#"{"a":"static","c":3,"s":true}"#,
            "false",
        ),
        (
            "/errored/timeout",
            200,
            r#"{"a":"static","s":true}"#,
            "false",
        ),
        (
            "/complete/ok",
            200,
            r#"{"a":"static","b":2,"c":3,"s":true}"#,
            "true",
        ),
        ("/complete/partial", 200, r#"{"c":3}"#, "false"),
        ("/incomplete/ok", 200, r#"{"a":1,"b":2}"#, "true"),
        (
            "/incomplete/partial",
            200,
            r#"{"a":"static","c":3,"s":true}"#,
            "false",
        ),
    ];
    for (path, status, body, completed) in expected {
        let answer = get(&sepia.url(path)).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.text());
        assert_eq!(answer.text(), body, "{path}");
        assert_eq!(
            answer.header("x-krakend-completed"),
            Some(completed),
            "{path}"
        );
    }
    // "success" adds nothing to a failure: the failure stands (lura's 500).
    let failed = get(&sepia.url("/success/broken")).await;
    assert_eq!(failed.status, 500);
    assert!(failed.body.is_empty(), "{}", failed.text());
    assert!(sepia
        .logs()
        .contains("answering with the static data in place of a failure"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sequential_backends_use_values_from_earlier_responses() {
    let users = TestBackend::start(|r: &Recorded| match r.path.as_str() {
        "/users/7" => Reply::json(
            200,
            r#"{"id":7,"user":{"name":"Jo Doe","team":42},"tags":["x","y"]}"#,
        ),
        "/users/8" => Reply::json(200, r#"{"id":8,"user":{"name":"No Team"}}"#),
        _ => Reply::json(404, r#"{"error":"no such user"}"#),
    })
    .await;
    let teams = TestBackend::start(|r: &Recorded| match r.path.as_str() {
        "/teams/42" => Reply::json(200, r#"{"team":"red","id":"team-42"}"#),
        _ => Reply::json(500, "{}"),
    })
    .await;
    let audit = TestBackend::always(Reply::json(200, r#"{"audited":true}"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/profile/{id}", "extra_config": {"proxy": {"sequential": true}},
         "backend": [
            backend(&users, "/users/{id}"),
            {"host": [teams.url()], "url_pattern": "/teams/{resp0_user.team}?name={resp0_user.name}&tags={resp0_tags}",
             "allow": ["team"]},
            backend(&audit, "/audit/{resp1_team}/{id}")
         ]}
    ]}))
    .await;

    let answer = get(&sepia.url("/profile/7")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.text(),
        r#"{"audited":true,"id":7,"tags":["x","y"],"team":"red","user":{"name":"Jo Doe","team":42}}"#
    );
    assert_eq!(answer.header("x-krakend-completed"), Some("true"));
    let team_call = &teams.requests()[0];
    assert_eq!(team_call.path, "/teams/42");
    assert_eq!(team_call.query.as_deref(), Some("name=Jo%20Doe&tags=x,y"));
    // The third backend reads the second's response after its shaping.
    assert_eq!(audit.requests()[0].path, "/audit/red/7");

    // A later backend lacking its value: what arrived, marked incomplete,
    // and the backends after it are not called.
    let answer = get(&sepia.url("/profile/8")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), r#"{"id":8,"user":{"name":"No Team"}}"#);
    assert_eq!(answer.header("x-krakend-completed"), Some("false"));
    assert_eq!(teams.requests().len(), 1);
    assert_eq!(audit.requests().len(), 1);
    assert!(sepia.logs().contains("needs {resp0_user.team}"));

    // The first backend's failure is the endpoint's: lura's 500.
    let answer = get(&sepia.url("/profile/9")).await;
    assert_eq!(answer.status, 500);
    assert!(answer.body.is_empty(), "{}", answer.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_error_strategies_pass_statuses_and_details_as_configured() {
    let missing = TestBackend::always(Reply::text(404, "no such thing")).await;
    let unavailable = TestBackend::always(Reply::json(503, r#"{"retry":true}"#)).await;
    let ok = TestBackend::always(Reply::json(200, r#"{"a":1}"#)).await;
    let code = |host: &TestBackend| {
        json!({"host": [host.url()], "url_pattern": "/",
               "extra_config": {"backend/http": {"return_error_code": true}}})
    };
    let details = |host: &TestBackend, name: &str| {
        json!({"host": [host.url()], "url_pattern": "/",
               "extra_config": {"github.com/devopsfaith/krakend/http": {"return_error_details": name}}})
    };
    let endpoints = json!([
        {"endpoint": "/code/missing", "backend": [code(&missing)]},
        {"endpoint": "/code/unavailable", "backend": [code(&unavailable)]},
        {"endpoint": "/code/ok", "backend": [code(&ok)]},
        {"endpoint": "/details", "backend": [details(&ok, "a"), details(&missing, "b")]},
        {"endpoint": "/details/single", "backend": [details(&unavailable, "only")]}
    ]);
    let hidden = Sepia::start(json!({"version": 3, "endpoints": endpoints})).await;

    // return_error_code: the backend's status, an empty body.
    let answer = get(&hidden.url("/code/missing")).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.text(), "");
    assert_eq!(answer.header("x-krakend-completed"), Some("false"));
    let answer = get(&hidden.url("/code/unavailable")).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.text(), "");
    let answer = get(&hidden.url("/code/ok")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), r#"{"a":1}"#);

    // return_error_details: the failure as data, the response incomplete.
    let answer = get(&hidden.url("/details")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.text(),
        r#"{"a":1,"error_b":{"http_body":"no such thing","http_body_encoding":"text/plain","http_status_code":404}}"#
    );
    assert_eq!(answer.header("x-krakend-completed"), Some("false"));
    let answer = get(&hidden.url("/details/single")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"error_only": {"http_status_code": 503, "http_body": "{\"retry\":true}",
                              "http_body_encoding": "application/json"}})
    );

    // router.return_error_msg: return_error_code shows the body too.
    let revealed = Sepia::start(json!({"version": 3, "endpoints": endpoints,
        "extra_config": {"router": {"return_error_msg": true}}}))
    .await;
    let answer = get(&revealed.url("/code/missing")).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.text(), "no such thing");
    assert_eq!(answer.header("content-type"), Some("text/plain"));
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_mistakes_stop_start_up_with_their_paths() {
    let message = Sepia::refused(
        json!({"version": 3, "host": ["http://127.0.0.1:9"], "endpoints": [
            {"endpoint": "/a", "backend": [{"url_pattern": "/a"}, {"url_pattern": "/b/{resp0_id}"}]}
        ]}),
    )
    .await;
    assert!(
        message.contains("endpoints[0].backend[1].url_pattern: {resp0_id} uses backend 0's response, which needs sequential calls"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_flatmap_works_on_the_merged_data_before_static_data() {
    let users = TestBackend::always(Reply::json(
        200,
        r#"{"users":[{"id":1,"secret":"x"},{"id":2,"secret":"y"}]}"#,
    ))
    .await;
    let extra =
        TestBackend::always(Reply::json(200, r#"{"admins":[{"id":9,"secret":"z"}]}"#)).await;
    let broken = TestBackend::always(Reply::json(500, "{}")).await;
    let flatmap = json!([
        {"type": "append", "args": ["admins", "users"]},
        {"type": "del", "args": ["users.*.secret"]},
        {"type": "move", "args": ["users", "people"]}
    ]);
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/people", "backend": [
            {"host": [users.url()], "url_pattern": "/"}, {"host": [extra.url()], "url_pattern": "/"}],
         "extra_config": {"proxy": {"flatmap_filter": flatmap, "static": {"strategy": "always", "data": {"users": "static"}}}}},
        {"endpoint": "/partial", "backend": [
            {"host": [users.url()], "url_pattern": "/"}, {"host": [broken.url()], "url_pattern": "/"}],
         "extra_config": {"proxy": {"flatmap_filter": flatmap}}}
    ]}))
    .await;
    let answer = get(&sepia.url("/people")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // The static data comes after the flatmap: its "users" is not moved.
    assert_eq!(
        answer.json(),
        json!({"people": [{"id": 1}, {"id": 2}, {"id": 9}], "users": "static"})
    );
    // A backend failed: lura hands the merge's error past the flatmap.
    let partial = get(&sepia.url("/partial")).await;
    assert_eq!(
        partial.json(),
        json!({"users": [{"id": 1, "secret": "x"}, {"id": 2, "secret": "y"}]})
    );
    assert_eq!(partial.header("x-krakend-completed"), Some("false"));
}

#[tokio::test(flavor = "multi_thread")]
async fn shadow_backends_get_a_copy_and_their_answers_are_ignored() {
    let answering = TestBackend::always(Reply::json(200, r#"{"from":"answering"}"#)).await;
    // Slower than the client will wait, and with data that must not show.
    let shadow = TestBackend::always(
        Reply::json(200, r#"{"from":"shadow","secret":1}"#).delayed(Duration::from_millis(800)),
    )
    .await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/items/{id}", "input_headers": ["X-Tenant"], "timeout": "3s", "backend": [
            backend(&answering, "/stock/{id}"),
            {"host": [shadow.url()], "url_pattern": "/copy/{id}",
             "extra_config": {"proxy": {"shadow": true, "shadow_timeout": "2s"}}}
        ]}
    ]}))
    .await;
    let started = std::time::Instant::now();
    let answer = sepia_e2e::request(
        http::Method::GET,
        &sepia.url("/items/7"),
        &[("X-Tenant", "t1")],
        b"",
        false,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200);
    // The answering backend alone, as a single-backend endpoint answers.
    assert_eq!(answer.json(), json!({"from": "answering"}));
    assert_eq!(answer.header("x-krakend-completed"), Some("true"));
    assert!(
        took < Duration::from_millis(700),
        "waited for the shadow: {took:?}"
    );
    // The shadow got its copy of the request.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while shadow.requests().is_empty() {
        assert!(
            std::time::Instant::now() < until,
            "the shadow got no request"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let copy: Recorded = shadow.requests()[0].clone();
    assert_eq!(copy.path, "/copy/7");
    assert_eq!(copy.header("x-tenant"), Some("t1"));
    assert_eq!(answering.requests().len(), 1);
    let refused = Sepia::refused(json!({"version": 3, "endpoints": [
        {"endpoint": "/only", "backend": [
            {"host": [shadow.url()], "url_pattern": "/copy", "extra_config": {"proxy": {"shadow": true}}}]}
    ]}))
    .await;
    assert!(refused.contains("every backend is a shadow"), "{refused}");
}
