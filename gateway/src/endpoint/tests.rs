//! The endpoint phases in process: an in-memory upstream in place of the
//! network, test modifiers in place of plugins, tokio's paused clock in
//! place of real time. The end-to-end tests in `tests/` run the same paths
//! through the real binary.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use sepia_plugin_api::{
    into_modifier_box, BackendResult, BodyLayout, Hooks, Modifier, PluginError,
    Request as PluginRequest, RequestContext, RequestFlow, Response as PluginResponse,
};
use serde_json::{json, Value};

use super::{strategy::Strategy, Endpoint};
use crate::{
    error::ErrorKind,
    modifiers::hook_pool::HookPool,
    plugin_host::BoundModifier,
    upstream::{http1_pool::Http1Error, SendError, Upstream, UpstreamBody},
};

/// A canned answer for one backend path.
#[derive(Clone)]
struct Canned {
    status: u16,
    body: &'static str,
    delay: Duration,
}

fn canned(status: u16, body: &'static str) -> Canned {
    Canned {
        status,
        body,
        delay: Duration::ZERO,
    }
}

/// Backends in memory, by path; a path it does not know is unreachable.
#[derive(Default)]
struct MockUpstream {
    answers: HashMap<&'static str, Canned>,
    seen: Mutex<Vec<(String, HeaderMap)>>,
}

impl MockUpstream {
    fn with(answers: &[(&'static str, Canned)]) -> Self {
        Self {
            answers: answers.iter().cloned().collect(),
            seen: Mutex::default(),
        }
    }

    fn seen_uris(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(u, _)| u.clone())
            .collect()
    }
}

impl Upstream for MockUpstream {
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let uri = request.uri().to_string();
        self.seen
            .lock()
            .unwrap()
            .push((uri.clone(), request.headers().clone()));
        let Some(answer) = self.answers.get(request.uri().path()).cloned() else {
            // Nothing listens there.
            return Err(SendError::Plain(Http1Error::Connect(Box::new(
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ))));
        };
        tokio::time::sleep(answer.delay).await;
        let mut response = Response::new(UpstreamBody::from(Full::new(Bytes::from(answer.body))));
        *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }
}

/// The first endpoint of a version-3 configuration with these endpoints.
fn endpoint_config(endpoint: Value) -> sepia_config::Endpoint {
    let config = json!({"version": 3, "host": ["http://backend"], "endpoints": [endpoint]});
    let loaded = sepia_config::parse_str(&config.to_string(), false).unwrap();
    loaded.config.endpoints.into_iter().next().unwrap()
}

fn build(
    endpoint: Value,
    hooks: Vec<BoundModifier>,
    backend_hooks: Vec<Vec<BoundModifier>>,
) -> Endpoint {
    let pool = HookPool::new(1).unwrap();
    Endpoint::new(
        &endpoint_config(endpoint),
        hooks,
        backend_hooks,
        &pool,
        &super::ServiceSettings {
            reveal_error_body: false,
            disable_compression: false,
            config_version: 3,
            pass_backend_status: false,
            identity: crate::identity::Identity::new(3, true, false),
            errors: crate::error::ErrorStyle {
                json: true,
                krakend2: true,
            },
            pass_backend_errors: true,
            body_limits: Default::default(),
            measure_requests: false,
            stages: None,
            stats: None,
            append_forwarded_for: false,
            discovery: Default::default(),
        },
    )
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn serve(
    endpoint: &Endpoint,
    upstream: &MockUpstream,
    path: &str,
    params: &[&str],
) -> Answer {
    let request = Request::builder()
        .uri(path)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let ip = crate::client_address::ClientAddr::of_peer("127.0.0.1".parse().unwrap());
    let params = params.iter().map(|p| (*p).to_owned()).collect();
    let (response, _) = endpoint.handle(request, params, ip, None, upstream).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn completed(answer: &Answer) -> &str {
    answer.headers["x-krakend-completed"].to_str().unwrap()
}

#[test]
fn the_strategy_is_chosen_when_the_endpoint_is_built() {
    let of = |endpoint: Value, hooks: bool| Strategy::of(&endpoint_config(endpoint), hooks);
    let one = json!([{"url_pattern": "/a"}]);
    let two = json!([{"url_pattern": "/a"}, {"url_pattern": "/b"}]);
    assert_eq!(
        of(json!({"endpoint": "/e", "backend": one}), false),
        Strategy::SingleEncoded
    );
    assert_eq!(
        of(
            json!({"endpoint": "/e", "backend": [{"url_pattern": "/a", "target": "data"}]}),
            false
        ),
        Strategy::Single
    );
    assert_eq!(
        of(json!({"endpoint": "/e", "backend": two}), false),
        Strategy::MergeEncoded
    );
    assert_eq!(
        of(
            json!({"endpoint": "/e", "backend": two, "concurrent_calls": 2}),
            false
        ),
        Strategy::Merge
    );
    assert_eq!(
        of(
            json!({"endpoint": "/e", "backend": two, "extra_config": {"proxy": {"sequential": true}}}),
            false
        ),
        Strategy::Sequential
    );
    let no_op = json!({"endpoint": "/e", "output_encoding": "no-op",
                       "backend": [{"url_pattern": "/a", "encoding": "no-op"}]});
    assert_eq!(of(no_op.clone(), false), Strategy::Stream);
    assert_eq!(of(no_op, true), Strategy::PassThrough);
}

#[tokio::test]
async fn one_backend_is_re_encoded_as_go_writes_json_and_a_4xx_passes_through() {
    let upstream = MockUpstream::with(&[
        ("/a", canned(201, r#"{"z":1,"a":"<&>"}"#)),
        ("/refused", canned(401, r#"{"why":"bad password"}"#)),
    ]);
    let endpoint = build(
        json!({"endpoint": "/e", "backend": [{"url_pattern": "/a"}]}),
        vec![],
        vec![],
    );
    let answer = serve(&endpoint, &upstream, "/e", &[]).await;
    // lura renders 200 whatever success the backend reported.
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, r#"{"a":"\u003c\u0026\u003e","z":1}"#);
    assert_eq!(completed(&answer), "true");

    let endpoint = build(
        json!({"endpoint": "/e", "backend": [{"url_pattern": "/refused"}]}),
        vec![],
        vec![],
    );
    let answer = serve(&endpoint, &upstream, "/e", &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body, r#"{"why":"bad password"}"#);
}

#[tokio::test]
async fn parallel_backends_merge_and_a_failure_makes_the_answer_incomplete() {
    let upstream = MockUpstream::with(&[
        ("/a", canned(200, r#"{"a":1,"same":"a"}"#)),
        ("/b", canned(200, r#"{"b":2,"same":"b"}"#)),
    ]);
    let both = json!({"endpoint": "/e", "backend": [{"url_pattern": "/a"}, {"url_pattern": "/b"}]});
    let answer = serve(&build(both, vec![], vec![]), &upstream, "/e", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    // Config order decides a clash: the later backend wins.
    assert_eq!(answer.body, r#"{"a":1,"b":2,"same":"b"}"#);
    assert_eq!(completed(&answer), "true");

    let one_down =
        json!({"endpoint": "/e", "backend": [{"url_pattern": "/a"}, {"url_pattern": "/down"}]});
    let answer = serve(&build(one_down, vec![], vec![]), &upstream, "/e", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, r#"{"a":1,"same":"a"}"#);
    assert_eq!(completed(&answer), "false");

    let all_down =
        json!({"endpoint": "/e", "backend": [{"url_pattern": "/x"}, {"url_pattern": "/y"}]});
    let answer = serve(&build(all_down, vec![], vec![]), &upstream, "/e", &[]).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test(start_paused = true)]
async fn the_endpoint_timeout_cuts_slow_backends_on_the_paused_clock() {
    let slow = Canned {
        status: 200,
        body: r#"{"late":true}"#,
        delay: Duration::from_secs(30),
    };
    let upstream = MockUpstream::with(&[("/slow", slow), ("/fast", canned(200, r#"{"a":1}"#))]);
    let endpoint = build(
        json!({"endpoint": "/e", "timeout": "1s", "backend": [{"url_pattern": "/slow"}]}),
        vec![],
        vec![],
    );
    let started = tokio::time::Instant::now();
    let answer = serve(&endpoint, &upstream, "/e", &[]).await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test]
async fn sequential_backends_use_earlier_answers_and_shaping_runs_per_backend() {
    let upstream = MockUpstream::with(&[
        ("/users/7", canned(200, r#"{"user":{"id":42,"name":"x"}}"#)),
        (
            "/orders/42",
            canned(200, r#"{"orders":[1,2],"secret":"s"}"#),
        ),
    ]);
    let endpoint = build(
        json!({"endpoint": "/u/{id}",
        "extra_config": {"proxy": {"sequential": true}},
        "backend": [
            {"url_pattern": "/users/{id}", "target": "user", "mapping": {"name": "login"}},
            {"url_pattern": "/orders/{resp0_id}", "deny": ["secret"]}
        ]}),
        vec![],
        vec![],
    );
    let answer = serve(&endpoint, &upstream, "/u/7", &["7"]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, r#"{"id":42,"login":"x","orders":[1,2]}"#);
    assert_eq!(
        upstream.seen_uris(),
        vec!["http://backend/users/7", "http://backend/orders/42"]
    );
}

/// A test modifier that logs each hook call, in order, into `log`.
struct Logging {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Modifier for Logging {
    fn on_request_with(
        &self,
        request: &mut PluginRequest,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        self.log.lock().unwrap().push(format!(
            "{} request {} (context from {})",
            self.name,
            request.path,
            context.value("by").unwrap_or("nobody")
        ));
        context.set_value("by", format!("\"{}\"", self.name));
        request.set_header("x-seen-by", self.name);
        Ok(RequestFlow::Continue)
    }

    fn on_response_with(
        &self,
        response: &mut PluginResponse,
        context: &mut RequestContext,
        layout: &BodyLayout,
    ) -> Result<(), PluginError> {
        self.log.lock().unwrap().push(format!(
            "{} response {} (context from {}, canonical {})",
            self.name,
            response.status,
            context.value("by").unwrap_or("nobody"),
            layout.canonical_json
        ));
        Ok(())
    }
}

fn logging(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> BoundModifier {
    BoundModifier::new(
        Arc::from(name),
        into_modifier_box(Box::new(Logging {
            name,
            log: log.clone(),
        })),
    )
}

#[tokio::test]
async fn hooks_run_in_phase_order_and_hand_the_context_on() {
    let upstream = MockUpstream::with(&[("/a", canned(200, r#"{"a":1}"#))]);
    let log = Arc::new(Mutex::new(Vec::new()));
    let endpoint = build(
        json!({"endpoint": "/e", "backend": [{"url_pattern": "/a"}]}),
        vec![logging("first", &log), logging("second", &log)],
        vec![vec![logging("backend", &log)]],
    );
    let answer = serve(&endpoint, &upstream, "/e", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "first request /e (context from nobody)",
            "second request /e (context from \"first\")",
            "backend request /a (context from \"second\")",
            // What a backend hook sets stays with that backend.
            "backend response 200 (context from \"backend\", canonical false)",
            "first response 200 (context from \"second\", canonical true)",
            "second response 200 (context from \"second\", canonical true)",
        ]
    );
    // The last request hook's header reached the backend.
    let seen = upstream.seen.lock().unwrap();
    assert_eq!(seen[0].1["x-seen-by"], "backend");
}

/// A modifier that declares some hooks, logging every call it gets.
struct Declaring {
    name: &'static str,
    hooks: Hooks,
    log: Arc<Mutex<Vec<String>>>,
}

impl Modifier for Declaring {
    fn hooks(&self) -> Hooks {
        self.hooks
    }

    fn on_request(&self, _: &mut PluginRequest) -> Result<RequestFlow, PluginError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} request", self.name));
        Ok(RequestFlow::Continue)
    }

    fn on_response(&self, response: &mut PluginResponse) -> Result<(), PluginError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} response {}", self.name, response.status));
        Ok(())
    }

    fn on_backend_result(&self, result: &BackendResult, context: &RequestContext) {
        self.log.lock().unwrap().push(format!(
            "{} result {:?} {} (context from {})",
            self.name,
            result.failure,
            result.status,
            context.value("by").unwrap_or("nobody")
        ));
    }
}

fn declaring(name: &'static str, hooks: Hooks, log: &Arc<Mutex<Vec<String>>>) -> BoundModifier {
    BoundModifier::new(
        Arc::from(name),
        into_modifier_box(Box::new(Declaring {
            name,
            hooks,
            log: log.clone(),
        })),
    )
}

#[tokio::test]
async fn only_the_hooks_a_modifier_declares_are_called() {
    let upstream = MockUpstream::with(&[("/a", canned(200, r#"{"a":1}"#))]);
    let log = Arc::new(Mutex::new(Vec::new()));
    let endpoint = build(
        json!({"endpoint": "/e", "backend": [{"url_pattern": "/a"}]}),
        vec![
            declaring("reads", Hooks::REQUEST, &log),
            declaring("writes", Hooks::RESPONSE, &log),
            declaring("neither", Hooks::NONE, &log),
        ],
        vec![vec![declaring("counts", Hooks::BACKEND_RESULT, &log)]],
    );
    let answer = serve(&endpoint, &upstream, "/e", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, r#"{"a":1}"#);
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "reads request",
            "counts result None 200 (context from nobody)",
            "writes response 200",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn result_hooks_hear_of_every_call_failed_or_abandoned() {
    let slow = Canned {
        status: 200,
        body: "{}",
        delay: Duration::from_secs(5),
    };
    let upstream = MockUpstream::with(&[
        ("/ok", canned(201, "{}")),
        ("/broken", canned(500, "{}")),
        ("/text", canned(200, "not json")),
        ("/slow", slow),
    ]);
    for (pattern, heard) in [
        ("/ok", "None 201"),
        ("/broken", "Status 500"),
        ("/text", "Body 200"),
        ("/nobody", "Connect 0"),
        // Dropped at the endpoint's deadline, before any answer.
        ("/slow", "Timeout 0"),
    ] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let endpoint = build(
            json!({"endpoint": "/e", "timeout": "1s", "backend": [{"url_pattern": pattern}]}),
            vec![logging("first", &log)],
            vec![vec![declaring("counts", Hooks::BACKEND_RESULT, &log)]],
        );
        serve(&endpoint, &upstream, "/e", &[]).await;
        let log = log.lock().unwrap();
        let results: Vec<&String> = log.iter().filter(|l| l.starts_with("counts")).collect();
        assert_eq!(
            results,
            vec![&format!("counts result {heard} (context from \"first\")")],
            "{pattern}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn failures_keep_their_kind_and_cause() {
    let slow = Canned {
        status: 200,
        body: "{}",
        delay: Duration::from_secs(5),
    };
    let upstream = MockUpstream::with(&[
        ("/broken", canned(500, "{}")),
        ("/text", canned(200, "not json")),
        ("/slow", slow),
    ]);
    let kind_of = |pattern: &str| {
        build(
            json!({"endpoint": "/e", "timeout": "1s", "backend": [{"url_pattern": pattern}]}),
            vec![],
            vec![],
        )
    };
    for (pattern, kind) in [
        ("/nobody", ErrorKind::Connect),
        ("/broken", ErrorKind::Status),
        ("/text", ErrorKind::Body),
        ("/slow", ErrorKind::Timeout),
    ] {
        let endpoint = kind_of(pattern);
        let request = Request::builder()
            .uri("/e")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let ip = crate::client_address::ClientAddr::of_peer("127.0.0.1".parse().unwrap());
        let mut context = None;
        let error = endpoint
            .run(request, vec![], ip, &mut context, &upstream)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{pattern}: {error}");
        if kind == ErrorKind::Connect {
            // The cause is kept, not flattened into the message only.
            let cause = std::error::Error::source(&error).expect("a source");
            assert!(cause.downcast_ref::<SendError>().is_some(), "{cause:?}");
        }
    }
}

#[tokio::test]
async fn safejson_scalars_go_where_the_files_generation_puts_them() {
    let upstream = MockUpstream::with(&[("/n", canned(200, "42"))]);
    let endpoint =
        json!({"endpoint": "/e", "backend": [{"url_pattern": "/n", "encoding": "safejson"}]});
    for (version, body) in [(2, r#"{"result":42}"#), (3, r#"{"content":42}"#)] {
        let pool = HookPool::new(1).unwrap();
        let service = super::ServiceSettings {
            reveal_error_body: false,
            disable_compression: false,
            config_version: version,
            pass_backend_status: false,
            identity: crate::identity::Identity::new(3, true, false),
            errors: crate::error::ErrorStyle {
                json: true,
                krakend2: true,
            },
            pass_backend_errors: true,
            body_limits: Default::default(),
            measure_requests: false,
            stages: None,
            stats: None,
            append_forwarded_for: false,
            discovery: Default::default(),
        };
        let built = Endpoint::new(
            &endpoint_config(endpoint.clone()),
            vec![],
            vec![],
            &pool,
            &service,
        );
        let answer = serve(&built, &upstream, "/e", &[]).await;
        assert_eq!(answer.body, body, "version {version}");
    }
}

#[tokio::test]
async fn answers_without_data_are_marked_incomplete_as_lura_marks_them() {
    let upstream = MockUpstream::with(&[
        ("/empty", canned(200, "{}")),
        ("/a", canned(200, r#"{"a":1}"#)),
    ]);
    let cached = |pattern: &str| {
        build(
            json!({"endpoint": "/e", "cache_ttl": "60s", "backend": [{"url_pattern": pattern}]}),
            vec![],
            vec![],
        )
    };
    let full = serve(&cached("/a"), &upstream, "/e", &[]).await;
    assert_eq!(completed(&full), "true");
    assert_eq!(full.headers["cache-control"], "public, max-age=60");
    let empty = serve(&cached("/empty"), &upstream, "/e", &[]).await;
    assert_eq!(empty.body, "{}");
    assert_eq!(completed(&empty), "false");
    assert!(empty.headers.get("cache-control").is_none());
    let mut endpoint = json!({"endpoint": "/e", "output_encoding": "no-op",
                              "backend": [{"url_pattern": "/a", "encoding": "no-op"}]});
    endpoint["cache_ttl"] = json!("60s");
    let passed = serve(&build(endpoint, vec![], vec![]), &upstream, "/e", &[]).await;
    assert_eq!(passed.body, r#"{"a":1}"#);
    assert_eq!(completed(&passed), "false");
    assert!(passed.headers.get("cache-control").is_none());
}

#[tokio::test]
async fn a_forwarded_user_agent_is_kept_and_the_gateway_says_it_came_via() {
    let upstream = MockUpstream::with(&[("/a", canned(200, "{}"))]);
    let endpoint = build(
        json!({"endpoint": "/e", "input_headers": ["User-Agent"], "backend": [{"url_pattern": "/a"}]}),
        vec![],
        vec![],
    );
    let request = Request::builder()
        .uri("/e")
        .header("user-agent", "client/1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let ip = crate::client_address::ClientAddr::of_peer("127.0.0.1".parse().unwrap());
    let _ = endpoint.handle(request, vec![], ip, None, &upstream).await;
    let seen = upstream.seen.lock().unwrap();
    let headers = &seen[0].1;
    assert_eq!(headers["user-agent"], "client/1");
    assert!(headers["x-forwarded-via"]
        .to_str()
        .unwrap()
        .starts_with("Sepia/"));
}

fn build_for(version: u64, endpoint: Value) -> Endpoint {
    let pool = HookPool::new(1).unwrap();
    let service = super::ServiceSettings {
        reveal_error_body: false,
        disable_compression: false,
        config_version: version,
        pass_backend_status: false,
        identity: crate::identity::Identity::new(3, true, false),
        errors: crate::error::ErrorStyle {
            json: true,
            krakend2: true,
        },
        pass_backend_errors: true,
        body_limits: Default::default(),
        measure_requests: false,
        stages: None,
        stats: None,
        append_forwarded_for: false,
        discovery: Default::default(),
    };
    Endpoint::new(&endpoint_config(endpoint), vec![], vec![], &pool, &service)
}

#[tokio::test(start_paused = true)]
async fn parallel_backends_answer_what_arrived_by_the_deadline() {
    let slow = Canned {
        status: 200,
        body: r#"{"late":true}"#,
        delay: Duration::from_secs(30),
    };
    let upstream = MockUpstream::with(&[("/slow", slow), ("/fast", canned(200, r#"{"a":1}"#))]);
    // Without and with a shaping step, so both merge strategies run.
    for (version, shaped) in [(2, false), (3, true)] {
        let mut fast = json!({"url_pattern": "/fast"});
        if shaped {
            fast["group"] = json!("g");
        }
        let endpoint = build_for(
            version,
            json!({"endpoint": "/e", "timeout": "1s", "backend": [fast, {"url_pattern": "/slow"}]}),
        );
        let started = tokio::time::Instant::now();
        let answer = serve(&endpoint, &upstream, "/e", &[]).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "version {version}: {}",
            answer.body
        );
        assert_eq!(completed(&answer), "false");
        assert!(answer.body.contains(r#""a":1"#), "{}", answer.body);
        assert!(!answer.body.contains("late"), "{}", answer.body);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}

#[tokio::test]
async fn every_parallel_backend_failing_is_an_empty_answer_in_lura_1_and_a_failure_in_lura_2() {
    let upstream = MockUpstream::default();
    let endpoint =
        json!({"endpoint": "/e", "backend": [{"url_pattern": "/x"}, {"url_pattern": "/y"}]});
    let v2 = serve(&build_for(2, endpoint.clone()), &upstream, "/e", &[]).await;
    assert_eq!(v2.status, StatusCode::OK);
    assert_eq!(v2.body, "{}");
    assert_eq!(completed(&v2), "false");
    let v3 = serve(&build_for(3, endpoint), &upstream, "/e", &[]).await;
    assert_eq!(v3.status, StatusCode::INTERNAL_SERVER_ERROR);
}
