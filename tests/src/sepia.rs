//! Starting the real `sepia` binary on loopback.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tempfile::TempDir;

use crate::artifacts::sepia_bin;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running gateway; killed when dropped.
pub struct Sepia {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: TempDir,
}

/// Runs `sepia ARGS` to completion (for `check`, `version`, failing starts),
/// killing it after 60 s.
pub fn run_sepia(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_program(&sepia_bin(), args, env)
}

/// A copy of the `sepia` binary alone in `dir`: it finds none of the
/// workspace's plugins beside it.
pub fn lone_sepia(dir: &Path) -> PathBuf {
    let copy = dir.join("sepia");
    fs::copy(sepia_bin(), &copy).expect("copy the sepia binary");
    copy
}

/// Runs `program ARGS` to completion, killing it after 60 s.
pub fn run_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("sepia starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    panic!(
        "sepia {args:?} did not finish within 60 s; stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes `config` (with `listen_ip` 127.0.0.1 unless set) into `dir`.
pub fn write_config(dir: &Path, config: &Value) -> PathBuf {
    let mut config = config.clone();
    if let Some(object) = config.as_object_mut() {
        object
            .entry("listen_ip")
            .or_insert_with(|| Value::String("127.0.0.1".into()));
    }
    let path = dir.join("krakend.json");
    fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write config");
    path
}

impl Sepia {
    /// Starts `sepia run` with `config` and waits until `/__health` answers.
    pub async fn start(config: Value) -> Sepia {
        Self::start_with(config, &[], &[]).await
    }

    /// Like [`Sepia::start`], with extra arguments and environment.
    pub async fn start_with(config: Value, args: &[&str], env: &[(&str, &str)]) -> Sepia {
        match Self::try_start(config, args, env).await {
            Ok(sepia) => sepia,
            Err(logs) => panic!("sepia did not start:\n{logs}"),
        }
    }

    /// Starts `sepia run`; `Err(logs)` when it exits instead of serving.
    pub async fn try_start(
        config: Value,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Sepia, String> {
        Self::try_start_program(&sepia_bin(), config, args, env).await
    }

    /// Like [`Sepia::try_start`] with another program that runs the gateway
    /// (an example embedding it).
    pub async fn try_start_program(
        program: &Path,
        config: Value,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Sepia, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = write_config(dir.path(), &config);
        let mut full_args = vec![
            "run".to_owned(),
            "-c".to_owned(),
            config_path.display().to_string(),
        ];
        full_args.extend(args.iter().map(|a| a.to_string()));
        Self::spawn_program(program, dir, &full_args, env).await
    }

    /// Starts `sepia run` with a configuration that must be refused; the
    /// logs of the refusal.
    pub async fn refused(config: Value) -> String {
        match Self::try_start(config.clone(), &[], &[]).await {
            Ok(_) => panic!("sepia started, but this configuration should be refused: {config}"),
            Err(logs) => logs,
        }
    }

    /// Starts `sepia demo` on a free port.
    pub async fn start_demo() -> Sepia {
        let dir = tempfile::tempdir().expect("temp dir");
        match Self::spawn_program(&sepia_bin(), dir, &["demo".to_owned()], &[]).await {
            Ok(sepia) => sepia,
            Err(logs) => panic!("sepia demo did not start:\n{logs}"),
        }
    }

    /// Runs `sepia ARGS -p PORT` and waits until `/__health` answers.
    async fn spawn_program(
        program: &Path,
        dir: TempDir,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<Sepia, String> {
        Self::spawn_on(None, program, dir, args, env, false).await
    }

    /// Starts `sepia run` with `config` on `port` (for a configuration that
    /// names the gateway's own address).
    pub async fn start_on(port: u16, config: Value) -> Sepia {
        Self::start_run(Some(port), config, false).await
    }

    /// `sepia run` with `config` on `port` (any free one for `None`),
    /// waiting until it serves.
    async fn start_run(port: Option<u16>, config: Value, https: bool) -> Sepia {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = write_config(dir.path(), &config);
        let args = vec![
            "run".to_owned(),
            "-c".to_owned(),
            config_path.display().to_string(),
        ];
        match Self::spawn_on(port, &sepia_bin(), dir, &args, &[], https).await {
            Ok(sepia) => sepia,
            Err(logs) => panic!("sepia did not start:\n{logs}"),
        }
    }

    /// Starts `sepia run` with a configuration that serves HTTPS, and
    /// waits until it listens.
    pub async fn start_https(config: Value) -> Sepia {
        Self::start_run(None, config, true).await
    }

    /// `https://127.0.0.1:PORT/path`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Spawns `program ARGS -p PORT` and waits until it says it listens.
    ///
    /// Without a port it asks for port 0 and reads the port it got from its
    /// "listening" log line: a port picked here and handed over could be
    /// taken by another test's server in between, which would then answer
    /// this test's requests.
    async fn spawn_on(
        port: Option<u16>,
        program: &Path,
        dir: TempDir,
        args: &[String],
        env: &[(&str, &str)],
        https: bool,
    ) -> Result<Sepia, String> {
        let log = fs::File::create(dir.path().join("sepia.log")).expect("log file");
        // The access log, and the application log under telemetry/logging's
        // `stdout`, are on the standard output: both land in the one file.
        let out = log.try_clone().expect("log file");
        let filter = env
            .iter()
            .find(|(k, _)| *k == "RUST_LOG")
            .map(|(_, v)| v.to_string())
            .or_else(|| std::env::var("SEPIA_TEST_LOG").ok())
            .unwrap_or_else(|| "info".into());
        let mut command = Command::new(program);
        command
            .args(args)
            .arg("-p")
            .arg(port.unwrap_or(0).to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log);
        for (k, v) in env {
            command.env(k, v);
        }
        // The "listening" line is how a start is seen, whatever else the
        // test filters out.
        command.env("RUST_LOG", format!("{filter},sepia::startup=info"));
        let child = command.spawn().expect("sepia starts");
        let mut sepia = Sepia {
            child: Some(child),
            port: port.unwrap_or(0),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = sepia.child.as_mut() {
                if child.try_wait().expect("wait").is_some() {
                    sepia.child = None;
                    return Err(sepia.logs());
                }
            }
            if let Some(listening) = listening_port(&sepia.logs()) {
                sepia.port = listening;
                // It binds only once everything is loaded; a first answer
                // also shows the workers are serving.
                if https || health_ok(listening).await {
                    return Ok(sepia);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(format!("not listening within 30 s:\n{}", sepia.logs()))
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        fs::read_to_string(self.dir.path().join("sepia.log")).unwrap_or_default()
    }

    /// The configuration file it serves (rewrite it, then [`Sepia::hangup`]).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("krakend.json")
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Sends SIGHUP: reload the configuration.
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .expect("kill runs");
            assert!(status.success());
        }
    }

    /// Waits for the process to exit (after [`Sepia::terminate`]).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sepia did not exit within {limit:?}:\n{}", self.logs());
    }
}

/// The port of the "listening" line, in text or JSON logs.
fn listening_port(logs: &str) -> Option<u16> {
    let line = logs.lines().find(|l| l.contains("listening"))?;
    let (_, rest) = line
        .split_once("address=")
        .or_else(|| line.split_once("\"address\":\""))?;
    let address: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    address.rsplit_once(':')?.1.parse().ok()
}

async fn health_ok(port: u16) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    drop(stream);
    // Any answer will do: sepia listens only once everything is loaded, and
    // a test may have moved or disabled the health endpoint, or guard it
    // (a bot detector refuses a request without User-Agent).
    crate::client::get(&format!("http://127.0.0.1:{port}/__health")).await;
    true
}

impl Drop for Sepia {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
