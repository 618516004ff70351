//! Metrics end to end: a real Prometheus server scrapes the gateway's
//! `telemetry/opentelemetry` Prometheus exporter, and the request counts
//! are read back through Prometheus's query API, under krakend-otel's
//! metric names and attributes.

use std::time::Duration;

use sepia_e2e::{get, prometheus::TestPrometheus, sepia::free_port, Reply, Sepia, TestBackend};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_request_counts_krakend_otel_exports() {
    let backend = TestBackend::always(Reply::json(200, r#"{"a":1}"#)).await;
    let metrics_port = free_port();
    let sepia = Sepia::start(json!({"version": 3,
        "extra_config": {"telemetry/opentelemetry": {
            "service_name": "sepia-test",
            "exporters": {"prometheus": [{"name": "local", "port": metrics_port, "host": "127.0.0.1"}]},
            "layers": {"global": {"metrics_static_attributes": [{"key": "env", "value": "e2e"}]}}
        }},
        "endpoints": [{"endpoint": "/items/{id}", "backend": [{"host": [backend.url()], "url_pattern": "/items/{id}"}]}]}))
    .await;
    for id in 0..5 {
        assert_eq!(get(&sepia.url(&format!("/items/{id}"))).await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(get(&sepia.url("/missing")).await.status, 404);
    }

    // The exporter's own page, as Prometheus reads it.
    let page = get(&format!("http://127.0.0.1:{metrics_port}/metrics")).await;
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(
        text.contains("# TYPE http_server_duration histogram"),
        "{text}"
    );
    assert!(text.contains("target_info{"), "{text}");
    assert!(text.contains("service_name=\"sepia-test\""), "{text}");
    // The proxy and backend stages, with krakend-otel's attributes.
    let stage = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}: {text}"))
            .to_owned()
    };
    let proxy = stage("krakend_proxy_duration_count{");
    assert!(proxy.contains("http_route=\"/items/:id\""), "{proxy}");
    assert!(proxy.contains("complete=\"true\""), "{proxy}");
    assert!(proxy.ends_with(" 5"), "{proxy}");
    let backend = stage("krakend_backend_duration_count{");
    for label in [
        "http_request_method=\"GET\"",
        "http_route=\"/items/:id\"",
        "krakend_endpoint_route=\"/items/:id\"",
        "krakend_endpoint_method=\"GET\"",
        "error=\"false\"",
        "canceled=\"false\"",
    ] {
        assert!(backend.contains(label), "{label}: {backend}");
    }
    assert!(backend.ends_with(" 5"), "{backend}");
    // The backend client's metrics, krakend-otel's transport's: per
    // exchange, and per body read.
    let started = stage("http_client_request_started_count_total{");
    for label in [
        "clientname=\"/items/:id\"",
        "server_address=\"127.0.0.1\"",
        // krakend-otel's inverted port parse: 80 for a URL with a port.
        "server_port=\"80\"",
        "http_response_status_code=\"200\"",
        "krakend_endpoint_route=\"/items/:id\"",
    ] {
        assert!(started.contains(label), "{label}: {started}");
    }
    assert!(started.ends_with(" 5"), "{started}");
    for (name, value) in [
        ("http_client_duration_count{", " 5"),
        ("http_client_response_size_count{", " 5"),
        // Sums: the requests' bodies (none), the answers' (7 bytes each).
        ("http_client_request_size_total{", " 0"),
        ("http_client_response_read_size_total{", " 35"),
        ("http_client_response_read_time_hist_seconds_count{", " 5"),
        // detailed_connection, on when layers.backend.metrics is absent.
        ("http_client_request_get_conn_duration_count{", " 5"),
        ("http_client_request_dns_duration_count{", " 5"),
        ("http_client_request_tls_duration_count{", " 5"),
        // Plain http to an IP: neither looked up nor shaken hands with.
        ("http_client_request_dns_duration_sum{", " 0"),
        ("http_client_request_tls_duration_sum{", " 0"),
    ] {
        assert!(stage(name).ends_with(value), "{name}: {text}");
    }
    // Bound instruments are bound when first recorded: nothing failed,
    // timed out or came without a length, so no such series is exported,
    // as krakend-otel exports none.
    for absent in [
        "http_client_request_failed_count",
        "http_client_request_timedout_count",
        "http_client_request_canceled_count",
        "http_client_response_no_content_length",
        "error=\"true\"",
    ] {
        assert!(!text.contains(absent), "{absent}: {text}");
    }
    assert_eq!(
        get(&format!("http://127.0.0.1:{metrics_port}/other"))
            .await
            .status,
        404
    );

    let prometheus = TestPrometheus::scraping(&format!("127.0.0.1:{metrics_port}")).await;
    // http.route is the path gin routes, as krakend-otel reports it.
    let routed = r#"sum(http_server_duration_count{http_route="/items/:id",http_response_status_code="200",http_request_method="GET",url_scheme="http",env="e2e"})"#;
    assert_eq!(
        prometheus
            .wait_for(routed, 5.0, Duration::from_secs(30))
            .await,
        Some(5.0)
    );
    // An answer no endpoint gave is named by its status.
    let unknown = r#"sum(http_server_duration_count{http_route="404 Not Found",http_response_status_code="404"})"#;
    assert_eq!(
        prometheus
            .wait_for(unknown, 2.0, Duration::from_secs(10))
            .await,
        Some(2.0),
        "{}",
        get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .text()
    );
    // Sizes are counted too: five answers of 7 bytes.
    let sizes = r#"sum(http_server_response_size_sum{http_route="/items/:id"})"#;
    assert_eq!(
        prometheus
            .wait_for(sizes, 35.0, Duration::from_secs(10))
            .await,
        Some(35.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_exporter_port_stops_start_up() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let logs = Sepia::refused(json!({"version": 3,
        "extra_config": {"telemetry/opentelemetry": {
            "exporters": {"prometheus": [{"name": "local", "port": port, "host": "127.0.0.1"}]}}},
        "endpoints": [{"endpoint": "/x", "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]}]}))
    .await;
    assert!(
        logs.contains("exporters.prometheus \"local\": cannot listen on"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn krakend_metrics_stats_are_served_at_their_own_listener_in_its_shape() {
    let backend = TestBackend::always(Reply::json(200, r#"{"a":1}"#)).await;
    let stats_port = free_port();
    // A version-2 file, with krakend-metrics' spelling of the time.
    let sepia = Sepia::start(json!({"version": 2,
        "extra_config": {"github_com/devopsfaith/krakend-metrics": {
            "listen_address": format!("127.0.0.1:{stats_port}")
        }},
        "endpoints": [{"endpoint": "/items/{id}", "backend": [{"host": [backend.url()], "url_pattern": "/items/{id}"}]}]}))
    .await;
    for id in 0..3 {
        assert_eq!(get(&sepia.url(&format!("/items/{id}"))).await.status, 200);
    }
    let page = get(&format!("http://127.0.0.1:{stats_port}/__stats")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let text = page.text();
    assert!(text.starts_with("{\n\"cmdline\": ["), "{text}");
    let stats: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    for (name, count) in [
        ("krakend.router.response./items/:id.status.200.count", 3),
        ("krakend.router.response./items/:id.time.count", 3),
        ("krakend.router.connected", 3),
        ("krakend.router.disconnected", 3),
        ("krakend.proxy.requests.layer.pipe.name./items/:id.complete.true.error.false", 3),
        ("krakend.proxy.requests.layer.pipe.name./items/:id.complete.false.error.true", 0),
        ("krakend.proxy.requests.layer.backend.name./items/{{.Id}}.complete.true.error.false", 3),
        ("krakend.proxy.latency.layer.backend.name./items/{{.Id}}.complete.true.error.false.count", 3),
    ] {
        assert_eq!(stats[name], count, "{name}: {text}");
    }
    assert_eq!(
        stats["krakend.router.response./items/:id.size.max"].as_f64(),
        Some(7.0),
        "{text}"
    );
    assert!(stats["krakend.proxy.latency.layer.pipe.name./items/:id.complete.true.error.false.99-percentile"].as_f64() > Some(0.0));
    assert_eq!(
        get(&format!("http://127.0.0.1:{stats_port}/other"))
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn version_2_files_get_no_opentelemetry_as_krakend_1_has_none() {
    let metrics_port = free_port();
    // Wrong in places too: KrakenD 1.x never reads it.
    let sepia = Sepia::start(json!({"version": 2,
        "extra_config": {"telemetry/opentelemetry": {
            "metric_reporting_period": "soon",
            "exporters": {"prometheus": [{"name": "local", "port": metrics_port, "host": "127.0.0.1"}]}
        }},
        "endpoints": [{"endpoint": "/x", "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]}]}))
    .await;
    assert!(
        sepia
            .logs()
            .contains("\"telemetry/opentelemetry\": KrakenD 1.x"),
        "{}",
        sepia.logs()
    );
    let listening = std::net::TcpStream::connect(("127.0.0.1", metrics_port)).is_ok();
    assert!(!listening, "no exporter listens for a version-2 file");
}

#[tokio::test(flavor = "multi_thread")]
async fn semantic_convention_1_27_exports_opentelemetrys_names() {
    let backend = TestBackend::always(Reply::json(200, r#"{"a":1}"#)).await;
    let page = |metrics_port: u16, detailed: bool| {
        json!({"version": 3,
        "extra_config": {"telemetry/opentelemetry": {
            "exporters": {"prometheus": [{"name": "local", "port": metrics_port, "host": "127.0.0.1"}]},
            "layers": {"global": {"semantic_convention": "1.27"},
                       "backend": {"metrics": {"round_trip": true, "read_payload": true, "detailed_connection": detailed}}}
        }},
        "endpoints": [{"endpoint": "/items/{id}", "backend": [{"host": [backend.url()], "url_pattern": "/items/{id}"}]}]})
    };
    for detailed in [false, true] {
        let metrics_port = free_port();
        let sepia = Sepia::start(page(metrics_port, detailed)).await;
        for id in 0..3 {
            assert_eq!(get(&sepia.url(&format!("/items/{id}"))).await.status, 200);
        }
        let text = get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .text();
        let count = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name}: {text}"))
                .to_owned()
        };
        for name in [
            "http_server_request_duration_seconds_count{",
            "http_server_response_body_size_bytes_count{",
            "http_client_request_duration_seconds_count{",
            "http_client_request_body_size_bytes_count{",
            "http_client_response_body_size_bytes_count{",
        ] {
            assert!(count(name).ends_with(" 3"), "{name}: {text}");
        }
        assert!(text.contains("Duration of HTTP server requests."), "{text}");
        // krakend-otel's own names are gone, and its own counters stay
        // only with detailed_connection.
        for gone in [
            "http_server_duration",
            "http_client_duration",
            "http_client_request_size_total",
        ] {
            assert!(!text.contains(gone), "{gone}: {text}");
        }
        assert_eq!(
            text.contains("http_client_request_started_count_total{"),
            detailed,
            "{text}"
        );
        assert_eq!(
            text.contains("http_client_request_get_conn_duration_seconds_count{"),
            detailed,
            "{text}"
        );
        // The stages keep krakend-otel's names.
        assert!(count("krakend_proxy_duration_count{").ends_with(" 3"));
    }
}
