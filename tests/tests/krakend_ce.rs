//! KrakenD CE's own integration suite (`tests/fixtures/krakend-ce`), run by
//! `sepia e2e`: its configuration served by the real binary with the real
//! plugins, its mock backend on loopback, each spec's request sent and its
//! answer compared as upstream compares it. Every spec must pass.
//!
//! And `sepia e2e` itself: a failing spec fails the run with its
//! differences, a broken spec stops it before anything is sent.

use sepia_e2e::{
    krakend_ce::{config, mock_backend, write_specs},
    sepia::{free_port, run_sepia, write_config},
    Reply, TestBackend,
};
use serde_json::json;

/// `sepia e2e -c CONFIG -f SPECS -p PORT`, run to its end off the test's
/// runtime (the mock backend answers on it meanwhile).
async fn e2e(
    config: std::path::PathBuf,
    specs: std::path::PathBuf,
    port: u16,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let config = config.display().to_string();
        let specs = specs.display().to_string();
        let port = port.to_string();
        run_sepia(&["e2e", "-c", &config, "-f", &specs, "-p", &port], &[])
    })
    .await
    .expect("sepia e2e ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_krakend_ce_suite_passes() {
    let backend = mock_backend().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = config(port, backend.addr.port(), free_port());
    let config = write_config(dir.path(), &config);
    let specs = write_specs(dir.path(), port, backend.addr.port());
    let output = e2e(config, specs, port).await;
    let report = text(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\nthe gateway's log:\n{}",
        text(&output.stderr)
    );
    assert!(
        report.ends_with("59 specs: 59 passed, 0 failed\n"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_spec_fails_the_run_and_a_broken_one_stops_it() {
    let backend = TestBackend::always(Reply::json(200, r#"{"id":7}"#)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = write_config(
        dir.path(),
        &json!({"version": 3, "endpoints": [{
            "endpoint": "/item", "backend": [{"host": [backend.url()], "url_pattern": "/"}]
        }]}),
    );
    let specs = dir.path().join("specs");
    std::fs::create_dir(&specs).expect("specs folder");
    let url = format!("http://localhost:{port}/item");
    let spec = |status: u16, body: serde_json::Value| {
        json!({"in": {"url": url}, "out": {"status_code": status, "body": body,
            "header": {"Content-Type": ["application/json; charset=utf-8"]}}})
        .to_string()
    };
    std::fs::write(specs.join("a_passes.json"), spec(200, json!({"id": 7}))).unwrap();
    std::fs::write(specs.join("b_fails.json"), spec(201, json!({"id": 8}))).unwrap();
    let output = e2e(config.clone(), specs.clone(), port).await;
    let report = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("ok    a_passes\n"), "{report}");
    assert!(
        report.contains("FAIL  b_fails\n        status 200 where 201 is expected\n"),
        "{report}"
    );
    assert!(
        report.contains(r#"body {"id":7} where {"id":8} is expected"#),
        "{report}"
    );
    assert!(
        report.ends_with("2 specs: 1 passed, 1 failed\n"),
        "{report}"
    );
    assert_eq!(backend.requests().len(), 2);

    // A spec that cannot be read: nothing is sent, the file and place named.
    std::fs::write(
        specs.join("c_broken.json"),
        r#"{"in": {"url": "/item"}, "out": {"status_code": 200}}"#,
    )
    .unwrap();
    let output = e2e(config, specs, port).await;
    assert_eq!(output.status.code(), Some(2));
    let error = text(&output.stderr);
    assert!(
        error.contains("c_broken.json: in.url: \"/item\" is not a full"),
        "{error}"
    );
    assert_eq!(backend.requests().len(), 2, "nothing more was sent");
}
