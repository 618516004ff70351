//! Configuration reload on SIGHUP: a good file is verified as at start-up
//! and swapped in while requests keep flowing, none failing; a bad one
//! changes nothing; ten reloads leave no descriptors behind.

use std::{
    fs,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sepia_e2e::{get, sepia::write_config, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

fn config(backend: &TestBackend, port: u16) -> Value {
    json!({"version": 3, "port": port, "endpoints": [
        {"endpoint": "/e", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}]})
}

fn open_files(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn answers_from(sepia: &Sepia, who: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if get(&sepia.url("/e")).await.json()["from"] == who {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_reloads_under_load_fail_no_request() {
    let a = TestBackend::always(Reply::json(200, r#"{"from":"a"}"#)).await;
    let b = TestBackend::always(Reply::json(200, r#"{"from":"b"}"#)).await;
    let port = sepia_e2e::sepia::free_port();
    let sepia = Sepia::start_on(port, config(&a, port)).await;
    let dir = sepia.config_path().parent().unwrap().to_owned();
    // Four clients requesting without pause for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
            let url = sepia.url("/e");
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if get(&url).await.status == 200 {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut files_after_first = 0;
    for round in 0..10 {
        let (backend, who) = if round % 2 == 0 { (&b, "b") } else { (&a, "a") };
        write_config(&dir, &config(backend, port));
        sepia.hangup();
        assert!(
            answers_from(&sepia, who).await,
            "round {round}: still the old configuration\n{}",
            sepia.logs()
        );
        // Counted once both backends have been called under load: each
        // worker's pool then holds its idle connections to both (up to one
        // a client), which are not a leak.
        if round == 1 {
            files_after_first = open_files(sepia.pid());
        }
    }
    // A file that does not verify changes nothing.
    fs::write(
        sepia.config_path(),
        r#"{"version": 3, "endpoints": [{"endpoint": "/e"}]}"#,
    )
    .unwrap();
    sepia.hangup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(&sepia.url("/e")).await.json()["from"], "a");
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the reloads"
    );
    assert!(served.load(Ordering::Relaxed) > 100);
    let logs = sepia.logs();
    assert_eq!(
        logs.matches("reloaded: new requests go to the new configuration")
            .count(),
        10
    );
    assert!(logs.contains("the new configuration is refused"), "{logs}");
    let files_at_end = open_files(sepia.pid());
    assert!(
        files_at_end <= files_after_first + 8,
        "descriptors grew from {files_after_first} to {files_at_end} over the reloads"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_watch_a_changed_file_is_reloaded_and_a_bad_one_refused() {
    let a = TestBackend::always(Reply::json(200, r#"{"from":"a"}"#)).await;
    let b = TestBackend::always(Reply::json(200, r#"{"from":"b"}"#)).await;
    let sepia = Sepia::start_with(config(&a, 0), &["--watch"], &[]).await;
    assert!(answers_from(&sepia, "a").await);
    let dir = sepia.config_path().parent().unwrap().to_owned();
    // Saved as editors save: a new file renamed over the old one.
    let written = write_config(&dir, &config(&b, 0));
    let staged = dir.join("staged.json");
    fs::rename(&written, &staged).unwrap();
    fs::rename(&staged, sepia.config_path()).unwrap();
    assert!(answers_from(&sepia, "b").await, "{}", sepia.logs());
    // A file that does not verify changes nothing.
    fs::write(
        sepia.config_path(),
        r#"{"version": 3, "endpoints": [{"endpoint": "/e"}]}"#,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sepia.logs().contains("the new configuration is refused") {
        assert!(Instant::now() < deadline, "{}", sepia.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(&sepia.url("/e")).await.json()["from"], "b");
    let logs = sepia.logs();
    assert!(logs.contains("the file changed"), "{logs}");
    assert_eq!(
        logs.matches("reloaded: new requests go to the new configuration")
            .count(),
        1,
        "{logs}"
    );
}

/// Writes `config` over the running file as an editor saves it, and waits
/// for the reload it causes.
async fn save_and_wait_for_reload(sepia: &Sepia, config: &Value, reloads_before: usize) {
    let dir = sepia.config_path().parent().unwrap().to_owned();
    let written = write_config(&dir, config);
    let staged = dir.join("staged.json");
    fs::rename(&written, &staged).unwrap();
    fs::rename(&staged, sepia.config_path()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sepia.logs().matches("reloaded: new requests").count() <= reloads_before {
        assert!(Instant::now() < deadline, "{}", sepia.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_opentelemetry_namespace_asks_for_a_restart_only_where_it_is_served() {
    let a = TestBackend::always(Reply::json(200, r#"{"from":"a"}"#)).await;
    let with_otel = |version: u64, name: &str| {
        json!({"version": version, "port": 0,
            "extra_config": {"telemetry/opentelemetry": {"service_name": name}},
            "endpoints": [{"endpoint": "/e", "backend": [{"host": [a.url()], "url_pattern": "/"}]}]})
    };
    let restart = "extra_config.\\\"telemetry/opentelemetry\\\"";
    for (version, warned) in [(2, false), (3, true)] {
        let sepia = Sepia::start_with(with_otel(version, "one"), &["--watch"], &[]).await;
        assert!(answers_from(&sepia, "a").await);
        save_and_wait_for_reload(&sepia, &with_otel(version, "two"), 0).await;
        let logs = sepia.logs();
        let asked = logs
            .lines()
            .any(|line| line.contains("restart to apply it") && line.contains(restart));
        assert_eq!(asked, warned, "version {version}: {logs}");
    }
}
