//! A real Prometheus server on loopback, started by a test with a scrape
//! configuration of its own and stopped when dropped (Debian's package:
//! `scripts/setup --test` installs it), and its HTTP query API.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tempfile::TempDir;

use crate::{client::get, sepia::free_port};

/// A running Prometheus scraping one target every second.
pub struct TestPrometheus {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _dir: TempDir,
}

impl TestPrometheus {
    /// Starts one scraping `target` (`127.0.0.1:port`) at `/metrics`, and
    /// waits until it is ready.
    pub async fn scraping(target: &str) -> Self {
        for _ in 0..5 {
            if let Some(prometheus) = Self::try_start(target, free_port()).await {
                return prometheus;
            }
        }
        panic!("prometheus did not start on any of 5 free ports");
    }

    async fn try_start(target: &str, port: u16) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sepia\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("prometheus.yml");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus runs (scripts/setup --test installs it)");
        let mut prometheus = Self {
            child: Some(child),
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = prometheus.child.as_mut() {
                if child.try_wait().ok().flatten().is_some() {
                    prometheus.child = None;
                    return None;
                }
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
                && get(&format!("http://127.0.0.1:{port}/-/ready"))
                    .await
                    .status
                    == 200
            {
                return Some(prometheus);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("prometheus was not ready within 30 s");
    }

    /// The value of an instant query's first sample, once it exists.
    pub async fn query(&self, promql: &str) -> Option<f64> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            self.port,
            encode(promql)
        );
        let answer = get(&url).await;
        if std::env::var_os("SEPIA_PROM_DEBUG").is_some() {
            eprintln!("{url} -> {} {}", answer.status, answer.text());
        }
        let body: Value = serde_json::from_slice(&answer.body).ok()?;
        body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Polls `promql` until it gives `wanted` (Prometheus scrapes every
    /// second); the last value read.
    pub async fn wait_for(&self, promql: &str, wanted: f64, limit: Duration) -> Option<f64> {
        let deadline = Instant::now() + limit;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.query(promql).await;
            if last == Some(wanted) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        last
    }
}

/// Percent-encodes a query parameter's value (everything but letters,
/// digits and `-_.~`).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
