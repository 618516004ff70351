//! Traces end to end: the gateway exports its spans over OTLP (HTTP and
//! gRPC) to a collector started by the test, which decodes them with the
//! official protobuf definitions; the spans' names, parent links and
//! attributes are krakend-otel's, a client's `traceparent` is their parent,
//! and the backend gets the `traceparent` of the gateway's client span.

use std::time::Duration;

use http::Method;
use sepia_e2e::{
    get,
    otlp::{ReceivedSpan, TestCollector},
    request, Reply, Sepia, TestBackend,
};
use serde_json::{json, Value};

const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";

/// Spans are exported a tenth of a second after they end, not five.
const QUICK_EXPORT: &[(&str, &str)] = &[("OTEL_BSP_SCHEDULE_DELAY", "100")];

fn config(otlp: Value, backend: &TestBackend) -> Value {
    json!({"version": 3,
    "extra_config": {"telemetry/opentelemetry": {
        "service_name": "sepia-traces",
        "service_version": "9.9",
        "metric_reporting_period": 1,
        "exporters": {"otlp": [otlp]},
        "layers": {"global": {"traces_static_attributes": [{"key": "zone", "value": "e2e"}]}}
    }},
    "endpoints": [
        {"endpoint": "/items/{id}",
         "extra_config": {"modifier/lua-proxy": {"post": "response.load():data():set('seen', true)"}},
         "backend": [{"host": [backend.url()], "url_pattern": "/stock/{id}"}]}
    ]})
}

/// An OTLP/HTTP exporter to `collector`, of spans only.
fn spans_to(collector: &TestCollector) -> Value {
    let (host, port) = collector.http_endpoint();
    json!({"name": "local", "host": host, "port": port, "use_http": true, "disable_metrics": true})
}

fn one<'a>(spans: &'a [ReceivedSpan], stage: &str) -> &'a ReceivedSpan {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.attribute("krakend.stage").as_deref() == Some(stage))
        .collect();
    assert_eq!(found.len(), 1, "one {stage} span: {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_requests_spans_reach_an_otlp_http_collector_as_krakend_otel_makes_them() {
    let collector = TestCollector::start().await;
    let backend = TestBackend::always(Reply::json(200, r#"{"stock":3}"#)).await;
    let sepia = Sepia::start_with(config(spans_to(&collector), &backend), &[], QUICK_EXPORT).await;
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let answer = request(
        Method::GET,
        &sepia.url("/items/7?x=1"),
        &[("traceparent", &traceparent), ("User-Agent", "e2e-client")],
        b"",
        false,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["seen"], true);
    assert!(
        collector
            .wait_for(Duration::from_secs(15), |spans| spans.len() >= 6)
            .await,
        "{:#?}",
        collector.spans()
    );
    let spans = collector.spans();
    assert_eq!(spans.len(), 6, "{spans:#?}");

    // The server span: named by the path, child of the client's span.
    let server = one(&spans, "global");
    assert_eq!(server.span.name, "/items/7");
    assert_eq!(server.span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(server.trace_id(), CLIENT_TRACE);
    assert_eq!(server.parent_id(), CLIENT_SPAN);
    for (key, value) in [
        ("http.route", "/items/:id"),
        ("http.response.status_code", "200"),
        ("http.request.method", "GET"),
        ("url.full", "/items/7?x=1"),
        ("user_agent.original", "e2e-client"),
        ("zone", "e2e"),
    ] {
        assert_eq!(
            server.attribute(key).as_deref(),
            Some(value),
            "{key}: {server:#?}"
        );
    }
    assert!(server
        .attribute("client.address")
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    assert_eq!(server.resource["service.name"], "sepia-traces");
    assert_eq!(server.resource["service.version"], "9.9");
    assert_eq!(server.scope, "io.krakend.krakend-otel");

    // The proxy stage under it, named by the endpoint's route.
    let proxy = one(&spans, "proxy");
    assert_eq!(proxy.span.name, "/items/:id");
    assert_eq!(proxy.parent_id(), server.span_id());
    assert_eq!(proxy.attribute("complete").as_deref(), Some("true"));
    assert_eq!(
        proxy.attribute("http.response.status_code").as_deref(),
        Some("200")
    );

    // The backend stage under the proxy, named by the backend's pattern.
    let stage = one(&spans, "backend");
    assert_eq!(stage.span.name, "/stock/:id");
    assert_eq!(stage.parent_id(), proxy.span_id());
    assert_eq!(
        stage.attribute("krakend.endpoint.route").as_deref(),
        Some("/items/:id")
    );
    assert_eq!(stage.attribute("complete").as_deref(), Some("true"));

    // The HTTP exchange under the backend stage: its traceparent is what
    // the backend got.
    let exchanges: Vec<_> = spans.iter().filter(|s| s.span.kind == 3).collect();
    assert_eq!(exchanges.len(), 1, "{spans:#?}");
    let exchange = exchanges[0];
    assert_eq!(
        exchange.attribute("krakend.stage").as_deref(),
        Some("backend-request")
    );
    assert_eq!(exchange.span.kind, 3, "SPAN_KIND_CLIENT");
    assert_eq!(exchange.parent_id(), stage.span_id());
    assert_eq!(
        exchange.attribute("url.full"),
        Some(format!("{}/stock/7", backend.url()))
    );
    assert_eq!(
        exchange.attribute("http.response.status_code").as_deref(),
        Some("200")
    );
    let sent = backend.requests()[0]
        .header("traceparent")
        .expect("the backend gets a traceparent")
        .to_owned();
    assert_eq!(sent, format!("00-{CLIENT_TRACE}-{}-01", exchange.span_id()));

    // The answer's body read, under the exchange (read_payload, on by
    // default): its size and time, with the exchange's fixed attributes.
    let read = spans
        .iter()
        .find(|s| s.span.name == "http.client.response.read.tracker")
        .unwrap_or_else(|| panic!("a read span: {spans:#?}"));
    assert_eq!(read.parent_id(), exchange.span_id());
    assert_eq!(
        read.attribute("http.client.response.read.size").as_deref(),
        Some("11")
    );
    assert!(read
        .attribute("http.client.response.read.time")
        .is_some_and(|t| t.parse::<f64>().is_ok_and(|t| t >= 0.0)));
    assert_eq!(
        read.attribute("krakend.endpoint.route").as_deref(),
        Some("/items/:id")
    );

    // Sepia's own: the Lua hook's span, under the server span (an endpoint's
    // hooks run around its proxy stage).
    let hook = one(&spans, "plugin");
    assert_eq!(hook.parent_id(), server.span_id());
    assert_eq!(
        hook.attribute("sepia.plugin.hook").as_deref(),
        Some("response")
    );
    for span in &spans {
        assert_eq!(span.trace_id(), CLIENT_TRACE, "{span:#?}");
    }

    // krakend-otel's default skip_paths leave the health check out; an
    // answer no endpoint gave is named by its status.
    assert_eq!(get(&sepia.url("/__health")).await.status, 200);
    assert_eq!(get(&sepia.url("/nowhere")).await.status, 404);
    assert!(
        collector
            .wait_for(Duration::from_secs(15), |spans| spans.len() >= 7)
            .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = collector.spans();
    assert_eq!(spans.len(), 7, "{spans:#?}");
    let missing = spans
        .iter()
        .find(|s| s.span.name == "/nowhere")
        .expect("a span for the 404");
    assert_eq!(
        missing.attribute("http.route").as_deref(),
        Some("404 Not Found")
    );
    // Without a client's traceparent, a trace of its own.
    assert_ne!(missing.trace_id(), CLIENT_TRACE);
    assert!(missing.parent_id().is_empty());
    assert!(collector.exports().0 > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn report_headers_puts_each_layers_headers_on_its_spans_but_those_skipped() {
    let collector = TestCollector::start().await;
    let backend = TestBackend::always(
        Reply::json(200, r#"{"stock":3}"#)
            .with_header("X-Backend", "b1")
            .with_header("X-Secret", "s"),
    )
    .await;
    let sepia = Sepia::start_with(
        json!({"version": 3,
        "extra_config": {"telemetry/opentelemetry": {
            "exporters": {"otlp": [spans_to(&collector)]},
            "layers": {
                "global": {"report_headers": true, "skip_headers": ["authorization"]},
                "proxy": {"report_headers": true},
                "backend": {"traces": {"round_trip": true, "report_headers": true, "skip_headers": ["X-SECRET"]}}
            }
        }},
        "endpoints": [{"endpoint": "/items/{id}", "input_headers": ["X-Tenant", "Authorization"],
                       "backend": [{"host": [backend.url()], "url_pattern": "/stock/{id}"}]}]}),
        &[],
        QUICK_EXPORT,
    )
    .await;
    let answer = request(
        Method::GET,
        &sepia.url("/items/7"),
        &[
            ("X-Tenant", "t1"),
            ("Authorization", "Bearer x"),
            ("X-Other", "o"),
        ],
        b"",
        false,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(
        collector
            .wait_for(Duration::from_secs(15), |spans| spans.len() >= 4)
            .await,
        "{:#?}",
        collector.spans()
    );
    let spans = collector.spans();
    let header = |span: &ReceivedSpan, key: &str| span.strings(key);
    let one_value = |v: &str| Some(vec![v.to_owned()]);

    // The server span: every header the client sent but the skipped one
    // (and Host, which Go keeps out of a request's headers), and the
    // answer's headers.
    let server = one(&spans, "global");
    assert_eq!(
        header(server, "http.request.header.x-tenant"),
        one_value("t1")
    );
    assert_eq!(
        header(server, "http.request.header.x-other"),
        one_value("o")
    );
    let requested = server.keys_starting("http.request.header.");
    assert!(
        !requested
            .iter()
            .any(|k| k.ends_with(".authorization") || k.ends_with(".host")),
        "{requested:?}"
    );
    assert_eq!(
        header(server, "http.response.header.content-type"),
        one_value("application/json; charset=utf-8")
    );

    // The stages get the request as input_headers lets it through; the
    // proxy layer skips nothing.
    let proxy = one(&spans, "proxy");
    assert_eq!(
        header(proxy, "http.request.header.authorization"),
        one_value("Bearer x")
    );
    assert_eq!(header(proxy, "http.request.header.x-other"), None);
    let stage = one(&spans, "backend");
    assert_eq!(
        header(stage, "http.request.header.x-tenant"),
        one_value("t1")
    );

    // The exchange: what was sent but what Go's transport adds itself,
    // and what the backend answered but the skipped header.
    let exchange = one(&spans, "backend-request");
    assert_eq!(exchange.span.kind, 3, "SPAN_KIND_CLIENT");
    assert_eq!(
        header(exchange, "http.request.header.x-tenant"),
        one_value("t1")
    );
    let sent = exchange.keys_starting("http.request.header.");
    assert!(
        !sent.iter().any(|k| k.ends_with(".accept-encoding")
            || k.ends_with(".content-length")
            || k.ends_with(".traceparent")),
        "{sent:?}"
    );
    assert_eq!(
        header(exchange, "http.response.header.x-backend"),
        one_value("b1")
    );
    assert_eq!(header(exchange, "http.response.header.x-secret"), None);

    // Without report_headers, no span holds a header.
    let quiet = Sepia::start_with(config(spans_to(&collector), &backend), &[], QUICK_EXPORT).await;
    assert_eq!(get(&quiet.url("/items/8")).await.status, 200);
    assert!(
        collector
            .wait_for(Duration::from_secs(15), |spans| spans.len() >= 9)
            .await
    );
    for span in collector.spans().iter().skip(spans.len()) {
        assert!(
            span.keys_starting("http.request.header.").is_empty()
                && span.keys_starting("http.response.header.").is_empty(),
            "{span:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_answer_is_read_once_and_its_read_span_counts_the_plain_body() {
    use std::io::Write;
    let plain = br#"{"packed":true,"padding":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(plain).unwrap();
    let packed = encoder.finish().unwrap();
    assert_ne!(packed.len(), plain.len());
    let backend = TestBackend::always(Reply {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("content-encoding".into(), "gzip".into()),
        ],
        body: packed,
        delay: Duration::ZERO,
    })
    .await;
    let collector = TestCollector::start().await;
    let sepia = Sepia::start_with(
        json!({"version": 3,
        "extra_config": {"telemetry/opentelemetry": {
            "exporters": {"otlp": [spans_to(&collector)]}
        }},
        "endpoints": [{"endpoint": "/packed", "backend": [{"host": [backend.url()], "url_pattern": "/p"}]}]}),
        &[],
        QUICK_EXPORT,
    )
    .await;
    let answer = get(&sepia.url("/packed")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["packed"], true);
    assert!(
        collector
            .wait_for(Duration::from_secs(15), |spans| spans.len() >= 5)
            .await,
        "{:#?}",
        collector.spans()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = collector.spans();
    let reads: Vec<_> = spans
        .iter()
        .filter(|s| s.span.name == "http.client.response.read.tracker")
        .collect();
    assert_eq!(reads.len(), 1, "{spans:#?}");
    assert_eq!(
        reads[0].attribute("http.client.response.read.size"),
        Some(plain.len().to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn detailed_connection_times_a_new_https_connection_its_handshake_and_none_when_kept() {
    let pki = sepia_e2e::tls::TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let backend = TestBackend::start_tls(pki.server_config.clone(), |_| {
        Reply::json(200, r#"{"tls":1}"#)
    })
    .await;
    let collector = TestCollector::start().await;
    // detailed_connection is on when layers.backend.traces is absent, as
    // in krakend-otel.
    let sepia = Sepia::start_with(
        json!({"version": 3,
        "client_tls": {"ca_certs": [ca], "disable_system_ca_pool": true},
        "extra_config": {"telemetry/opentelemetry": {
            "exporters": {"otlp": [spans_to(&collector)]}
        }},
        "endpoints": [{"endpoint": "/secure", "backend": [{"host": [backend.https_url()], "url_pattern": "/"}]}]}),
        &[],
        QUICK_EXPORT,
    )
    .await;
    // Six requests; each of the gateway's two workers has its own pool, so
    // at most two of them dial.
    for _ in 0..6 {
        assert_eq!(get(&sepia.url("/secure")).await.status, 200);
    }
    assert!(
        collector
            .wait_for(Duration::from_secs(15), |spans| {
                spans.iter().filter(|s| s.span.kind == 3).count() >= 6
            })
            .await,
        "{:#?}",
        collector.spans()
    );
    let spans = collector.spans();
    let mut exchanges: Vec<_> = spans.iter().filter(|s| s.span.kind == 3).collect();
    exchanges.sort_by_key(|s| s.span.start_time_unix_nano);
    let seconds = |span: &ReceivedSpan, key: &str| -> f64 {
        span.attribute(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key}: {span:#?}"))
    };
    // The first exchange dialled and shook hands; the IP was not looked up.
    let first = exchanges[0];
    let handshake = seconds(first, "tls-duration");
    assert!(handshake > 0.0, "{first:#?}");
    assert!(
        seconds(first, "get-conn-duration") >= handshake,
        "{first:#?}"
    );
    for exchange in &exchanges {
        assert_eq!(seconds(exchange, "dns-duration"), 0.0);
    }
    // The others went out on kept connections, but one a worker dialled.
    let kept = exchanges
        .iter()
        .filter(|s| seconds(s, "tls-duration") == 0.0 && seconds(s, "get-conn-duration") == 0.0)
        .count();
    assert!(kept >= 4, "{exchanges:#?}");
    for exchange in &exchanges {
        let event = exchange
            .span
            .events
            .iter()
            .find(|e| e.name == "first-byte-time")
            .unwrap_or_else(|| panic!("a first-byte-time event: {exchange:#?}"));
        assert!(event.time_unix_nano >= exchange.span.start_time_unix_nano);
        assert!(event.time_unix_nano <= exchange.span.end_time_unix_nano);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_and_metrics_reach_an_otlp_grpc_collector() {
    let collector = TestCollector::start().await;
    let backend = TestBackend::always(Reply::json(200, r#"{"stock":3}"#)).await;
    let (host, port) = collector.grpc_endpoint();
    let sepia = Sepia::start_with(
        config(
            json!({"name": "grpc", "host": host, "port": port}),
            &backend,
        ),
        &[],
        QUICK_EXPORT,
    )
    .await;
    for id in 0..3 {
        assert_eq!(get(&sepia.url(&format!("/items/{id}"))).await.status, 200);
    }
    assert!(
        collector
            .wait_for(Duration::from_secs(15), |spans| {
                spans
                    .iter()
                    .filter(|s| s.attribute("krakend.stage").as_deref() == Some("global"))
                    .count()
                    == 3
            })
            .await,
        "{:#?}",
        collector.spans()
    );
    // Metrics are pushed every metric_reporting_period (a second here).
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while !collector
        .metric_names()
        .iter()
        .any(|m| m == "http.server.duration")
    {
        assert!(
            std::time::Instant::now() < until,
            "no metrics: {:?}",
            collector.metric_names()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let names = collector.metric_names();
    assert!(
        names.iter().any(|m| m == "krakend.backend.duration"),
        "{names:?}"
    );
    let (http, grpc) = collector.exports();
    assert_eq!(http, 0);
    assert!(grpc >= 2, "{grpc}");
    // No traceparent from the client: the backend still gets the
    // gateway's.
    assert!(backend.requests()[0].header("traceparent").is_some());
    drop(sepia);
}
