//! The logs end to end: the access log as KrakenD's router writes it (gin's
//! line, on the standard output), as JSON with `--log-format json`, skipped
//! and disabled by the router's settings; `telemetry/logging`'s prefix and
//! patterns (default, logstash, custom) on the application log, each line
//! parsed back; a bad setting refused at start-up.

use std::time::Duration;

use sepia_e2e::{get, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

fn config(backend: &TestBackend, extra: Value) -> Value {
    json!({"version": 3, "extra_config": extra, "endpoints": [
        {"endpoint": "/items", "backend": [{"host": [backend.url()], "url_pattern": "/items"}]}
    ]})
}

/// The log once `wanted` shows up in it (the access log is written by a
/// thread of its own, a moment after the answer).
async fn logs_with(sepia: &Sepia, wanted: &str) -> String {
    for _ in 0..50 {
        let logs = sepia.logs();
        if logs.contains(wanted) {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sepia.logs()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_gets_gins_access_line_unless_skipped() {
    let backend = TestBackend::always(Reply::json(200, r#"{"a":1}"#)).await;
    let sepia = Sepia::start(config(
        &backend,
        json!({"router": {"logger_skip_paths": ["/__health"]}}),
    ))
    .await;
    assert_eq!(get(&sepia.url("/items?page=2")).await.status, 200);
    assert_eq!(get(&sepia.url("/missing")).await.status, 404);
    let logs = logs_with(&sepia, "\"/missing\"").await;
    let lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("[GIN] ")).collect();
    let items = lines
        .iter()
        .find(|l| l.ends_with("GET     \"/items?page=2\""))
        .unwrap_or_else(|| panic!("no access line for /items:\n{logs}"));
    // [GIN] 2006/01/02 - 15:04:05 | 200 |   1.234567ms |       127.0.0.1 | GET     "/items?page=2"
    let columns: Vec<&str> = items.split(" | ").collect();
    assert_eq!(columns.len(), 5, "{items}");
    assert_eq!(columns[0].len(), "[GIN] 2006/01/02 - 15:04:05".len());
    assert_eq!(columns[1], "200");
    assert_eq!(columns[2].chars().count(), 13, "{items}");
    assert!(
        columns[2].trim().ends_with("ms") || columns[2].trim().ends_with("µs"),
        "{items}"
    );
    assert_eq!(columns[3], "      127.0.0.1");
    assert!(lines.iter().any(|l| l.contains(" | 404 | ")), "{logs}");
    // The harness's health probe is skipped.
    assert!(!lines.iter().any(|l| l.contains("/__health")), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_access_lines_and_a_disabled_access_log() {
    let backend = TestBackend::always(Reply::json(200, r#"{"a":1}"#)).await;
    let sepia =
        Sepia::start_with(config(&backend, json!({})), &["--log-format", "json"], &[]).await;
    let answer = sepia_e2e::request(
        http::Method::GET,
        &sepia.url("/items"),
        &[("x-request-id", "req-42")],
        b"",
        false,
    )
    .await;
    assert_eq!(answer.status, 200);
    let logs = logs_with(&sepia, "req-42").await;
    let line: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["target"] == "sepia::access" && l["path"] == "/items")
        .unwrap_or_else(|| panic!("no JSON access line:\n{logs}"));
    assert_eq!(line["status"], 200);
    assert_eq!(line["method"], "GET");
    assert_eq!(line["request_id"], "req-42");
    assert_eq!(line["client"], "127.0.0.1");
    assert_eq!(line["bytes"], 7);
    assert!(line["latency_us"].as_u64().is_some(), "{line}");

    let quiet = Sepia::start(config(
        &backend,
        json!({"router": {"disable_access_log": true}}),
    ))
    .await;
    assert_eq!(get(&quiet.url("/items")).await.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!quiet.logs().contains("[GIN]"), "{}", quiet.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn telemetry_logging_writes_krakends_lines() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    // The default pattern, behind the prefix, on the standard output.
    let sepia = Sepia::start(config(
        &backend,
        json!({"telemetry/logging": {"level": "INFO", "prefix": "[KRAKEND]", "stdout": true}}),
    ))
    .await;
    let logs = sepia.logs();
    let listening = logs
        .lines()
        .find(|l| l.contains("listening"))
        .unwrap_or_else(|| panic!("{logs}"));
    // [KRAKEND] 2006/01/02 - 15:04:05.000 ▶ INFO listening address=...
    let rest = listening
        .strip_prefix("[KRAKEND] ")
        .unwrap_or_else(|| panic!("{listening}"));
    assert_eq!(&rest[4..5], "/", "{listening}");
    assert_eq!(
        &rest["2006/01/02 - 15:04:05.000".len()..],
        &format!(
            " ▶ INFO listening{}",
            listening.split_once("listening").unwrap().1
        )
    );
    assert!(listening.contains(" address=127.0.0.1:"), "{listening}");

    // logstash: every application line is a JSON object.
    let logstash = Sepia::start(config(
        &backend,
        json!({"github_com/devopsfaith/krakend-gologging": {"level": "DEBUG", "format": "logstash", "stdout": true}}),
    ))
    .await;
    let logs = logstash.logs();
    let line: Value = logs
        .lines()
        .filter(|l| l.contains("listening"))
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no logstash line:\n{logs}"));
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["module"], "KRAKEND");
    assert_eq!(line["@version"], 1);
    assert!(line["message"]
        .as_str()
        .unwrap()
        .starts_with("listening address="));
    assert!(line["@timestamp"].as_str().unwrap().ends_with("+00:00"));

    // custom: the user's pattern, without the prefix.
    let custom = Sepia::start(config(
        &backend,
        json!({"telemetry/logging": {"format": "custom", "prefix": "[X]",
               "custom_format": "%{level:.1s}|%{module}|%{message}"}}),
    ))
    .await;
    let logs = custom.logs();
    assert!(
        logs.lines()
            .any(|l| l.starts_with("I|KRAKEND|listening address=")),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_logging_settings_stop_start_up() {
    for (logging, wanted) in [
        (json!({"level": "LOUD"}), "telemetry/logging\".level"),
        (
            json!({"format": "custom", "custom_format": "%{nope}"}),
            "custom_format: %{nope}",
        ),
    ] {
        let config = json!({"version": 3, "extra_config": {"telemetry/logging": logging},
            "endpoints": [{"endpoint": "/x", "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}]}]});
        let logs = Sepia::refused(config).await;
        assert!(logs.contains(wanted), "{wanted}: {logs}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn syslog_gets_krakends_lines_with_its_facility_and_severity() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("log.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let path = socket_path.display().to_string();
    let _sepia = Sepia::start_with(
        config(
            &backend,
            json!({"telemetry/logging": {"level": "INFO", "prefix": "[KRAKEND]", "syslog": true,
                   "syslog_facility": "local5", "stdout": true}}),
        ),
        &[],
        &[("SEPIA_SYSLOG_SOCKET", path.as_str())],
    )
    .await;
    let mut buffer = [0u8; 4096];
    let mut seen = Vec::new();
    // The "listening" line is among the first sent.
    while let Ok(n) = socket.recv(&mut buffer) {
        let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
        let done = message.contains("listening");
        seen.push(message);
        if done {
            break;
        }
    }
    let listening = seen
        .iter()
        .find(|m| m.contains("listening"))
        .unwrap_or_else(|| panic!("no listening line in {seen:?}"));
    // RFC 3164: <priority>, local5 (21) * 8 + info (6) = 174; the prefix
    // as the tag; krakend-gologging's "LEVEL > message".
    assert!(listening.starts_with("<174>"), "{listening}");
    assert!(listening.contains("[KRAKEND]["), "{listening}");
    assert!(
        listening.contains("INFO > listening address=127.0.0.1:"),
        "{listening}"
    );
}
