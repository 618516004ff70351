//! HTTPS end to end, with real clients (curl, `openssl s_client`): the
//! gateway serves its endpoints over TLS from KrakenD's `tls` settings,
//! HTTP/2 through ALPN; versions, suites and client certificates outside
//! the settings are refused; unusable settings stop start-up with their
//! JSON path.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use sepia_e2e::{tls::TestPki, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

struct Files {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_owned();
        Self { _dir: dir, root }
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.root.join(name);
        fs::write(&path, text).expect("write");
        path.display().to_string()
    }
}

fn config(backend: &TestBackend, version: u64, tls: Value) -> Value {
    json!({"version": version, "tls": tls, "endpoints": [
        {"endpoint": "/hello", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}]})
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs")
}

/// `openssl s_client` to the gateway with `args`; whether the handshake
/// succeeded, and what it printed.
fn s_client(port: u16, ca: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
            ca,
            "-brief",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let connected = text.contains("CONNECTION ESTABLISHED") && !text.contains("alert");
    (connected, text)
}

fn port_of(sepia: &Sepia) -> u16 {
    sepia
        .https_url("")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

fn pki_files(pki: &TestPki, files: &Files) -> (String, String, String) {
    (
        files.write("server.pem", &pki.server_chain_pem),
        files.write("server.key", &pki.server_key_pem),
        files.write("ca.pem", &pki.ca_pem),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_served_over_https_with_http2_through_alpn() {
    let backend = TestBackend::always(Reply::json(200, r#"{"hello":"tls"}"#)).await;
    let pki = TestPki::new();
    let files = Files::new();
    let (cert, key, ca) = pki_files(&pki, &files);
    let mut served = config(&backend, 3, json!({"public_key": cert, "private_key": key}));
    // The security headers know the request came over TLS, as Go's r.TLS.
    served["extra_config"] =
        json!({"security/http": {"sts_seconds": 31536000, "ssl_redirect": true}});
    let sepia = Sepia::start_https(served).await;
    let url = sepia.https_url("/hello");
    let head = curl(&["--cacert", &ca, "-D", "-", "-o", "/dev/null", &url]);
    let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
    assert!(
        head.starts_with("http/2 200"),
        "no redirect over https: {head}"
    );
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let out = curl(&[
            "--cacert",
            &ca,
            flag,
            "-w",
            "\n%{http_version} %{http_code}",
            &url,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text, format!("{{\"hello\":\"tls\"}}\n{version} 200"));
    }
    // Plain HTTP on the TLS port gets no answer.
    let plain = curl(&[&sepia.url("/hello")]);
    assert!(!plain.status.success());
    // An unknown CA: the client refuses the server, as it should.
    assert!(!curl(&[&url]).status.success());
    // Version 3 without min_version serves TLS 1.3 only, as lura 2 does.
    let port = port_of(&sepia);
    let (ok, text) = s_client(port, &ca, &["-tls1_3"]);
    assert!(ok, "{text}");
    let (ok, text) = s_client(port, &ca, &["-tls1_2"]);
    assert!(!ok, "TLS 1.2 was accepted: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_and_suites_outside_the_settings_are_refused() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let pki = TestPki::new();
    let files = Files::new();
    let (cert, key, ca) = pki_files(&pki, &files);
    // TLS 1.2 only, one suite (the test certificate is ECDSA P-256):
    // 49195 is TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.
    let sepia = Sepia::start_https(config(
        &backend,
        3,
        json!({"public_key": cert, "private_key": key,
        "min_version": "TLS12", "max_version": "TLS12", "cipher_suites": [49195]}),
    ))
    .await;
    let port = port_of(&sepia);
    let (ok, text) = s_client(
        port,
        &ca,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    );
    assert!(ok, "{text}");
    assert!(text.contains("TLSv1.2"), "{text}");
    let (ok, text) = s_client(
        port,
        &ca,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    );
    assert!(!ok, "a suite outside the list was accepted: {text}");
    let (ok, text) = s_client(port, &ca, &["-tls1_3"]);
    assert!(!ok, "TLS 1.3 was accepted: {text}");
    // TLS 1.0 and 1.1 are never served, whatever the client allows.
    for old in ["-tls1", "-tls1_1"] {
        let (ok, text) = s_client(port, &ca, &[old, "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(!ok, "{old} was accepted: {text}");
    }
    // A version 2 file is served as KrakenD 1.x serves it: TLS 1.2 at most.
    let old = Sepia::start_https(config(
        &backend,
        2,
        json!({"public_key": cert, "private_key": key}),
    ))
    .await;
    let port = port_of(&old);
    let (ok, text) = s_client(port, &ca, &[]);
    assert!(ok && text.contains("TLSv1.2"), "{text}");
    let (ok, text) = s_client(port, &ca, &["-tls1_3"]);
    assert!(!ok, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_mtls_only_clients_with_a_trusted_certificate_get_in() {
    let backend = TestBackend::always(Reply::json(200, r#"{"in":true}"#)).await;
    let pki = TestPki::new();
    let stranger = TestPki::new();
    let files = Files::new();
    let (cert, key, ca) = pki_files(&pki, &files);
    let (client_cert, client_key) = pki.client_cert("alice");
    let client_cert = files.write("alice.pem", &client_cert);
    let client_key = files.write("alice.key", &client_key);
    let (other_cert, other_key) = stranger.client_cert("mallory");
    let other_cert = files.write("mallory.pem", &other_cert);
    let other_key = files.write("mallory.key", &other_key);
    let sepia = Sepia::start_https(config(
        &backend,
        3,
        json!({"public_key": cert, "private_key": key,
        "enable_mtls": true, "ca_certs": [ca], "disable_system_ca_pool": true}),
    ))
    .await;
    let url = sepia.https_url("/hello");
    let trusted = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &client_cert,
        "--key",
        &client_key,
        &url,
    ]);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&trusted.stdout), r#"{"in":true}"#);
    let none = curl(&["--cacert", &ca, &url]);
    assert!(!none.status.success(), "no client certificate was accepted");
    let wrong = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &other_cert,
        "--key",
        &other_key,
        &url,
    ]);
    assert!(
        !wrong.status.success(),
        "a certificate of another CA was accepted"
    );
    assert_eq!(backend.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_tls_settings_stop_start_up_with_their_place() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let pki = TestPki::new();
    let other = TestPki::new();
    let files = Files::new();
    let (cert, key, ca) = pki_files(&pki, &files);
    let other_key = files.write("other.key", &other.server_key_pem);
    let missing = Path::new(&files.root)
        .join("nope.pem")
        .display()
        .to_string();
    for (tls, says) in [
        (
            json!({"private_key": key}),
            "tls.public_key: public key not defined",
        ),
        (
            json!({"public_key": missing, "private_key": key}),
            "tls.public_key",
        ),
        (
            json!({"public_key": cert, "private_key": other_key}),
            "does not match",
        ),
        (
            json!({"public_key": key, "private_key": key}),
            "holds no CERTIFICATE block",
        ),
        (
            json!({"public_key": cert, "private_key": key, "max_version": "TLS11"}),
            "TLS12 is the lowest",
        ),
        (
            json!({"public_key": cert, "private_key": key, "min_version": "TLS12", "max_version": "TLS12",
                "cipher_suites": [47]}),
            "none of the listed suites",
        ),
        (
            json!({"public_key": cert, "private_key": key, "curve_preferences": [25]}),
            "none of the listed curves",
        ),
        (
            json!({"public_key": cert, "private_key": key, "enable_mtls": true, "disable_system_ca_pool": true,
                "ca_certs": [cert.clone() + ".missing"]}),
            "tls.ca_certs[0]",
        ),
    ] {
        let logs = Sepia::refused(config(&backend, 3, tls.clone())).await;
        assert!(logs.contains(says), "{tls}: {logs}");
    }
    // `disabled` serves plain HTTP, as KrakenD does.
    let plain = Sepia::start(config(
        &backend,
        3,
        json!({"disabled": true, "public_key": ca}),
    ))
    .await;
    assert_eq!(sepia_e2e::get(&plain.url("/hello")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tls_trusts_the_backends_ca_and_presents_a_client_certificate() {
    let pki = TestPki::new();
    let files = Files::new();
    let (_, _, ca) = pki_files(&pki, &files);
    let (client_cert, client_key) = pki.client_cert("gateway");
    let client_cert = files.write("gateway.pem", &client_cert);
    let client_key = files.write("gateway.key", &client_key);
    let open = TestBackend::start_tls(pki.server_config.clone(), |_| {
        Reply::json(200, r#"{"tls":1}"#)
    })
    .await;
    let strict = TestBackend::start_tls(pki.server_config_requiring_clients(), |_| {
        Reply::json(200, r#"{"mtls":1}"#)
    })
    .await;
    let file = |client_tls: Value| {
        let mut config = json!({"version": 3, "endpoints": [
            {"endpoint": "/open", "backend": [{"host": [open.https_url()], "url_pattern": "/"}]},
            {"endpoint": "/strict", "backend": [{"host": [strict.https_url()], "url_pattern": "/"}]}]});
        if !client_tls.is_null() {
            config["client_tls"] = client_tls;
        }
        config
    };
    // The test CA is no system root: refused by default.
    let plain = Sepia::start(file(Value::Null)).await;
    assert_eq!(sepia_e2e::get(&plain.url("/open")).await.status, 500);
    // Trusted through ca_certs; the mTLS backend also gets the certificate.
    let trusting = Sepia::start(file(
        json!({"ca_certs": [ca], "disable_system_ca_pool": true,
        "client_certs": [{"certificate": client_cert, "private_key": client_key}]}),
    ))
    .await;
    let answer = sepia_e2e::get(&trusting.url("/open")).await;
    assert_eq!(answer.json(), json!({"tls": 1}));
    let answer = sepia_e2e::get(&trusting.url("/strict")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json(), json!({"mtls": 1}));
    // Without the client certificate the mTLS backend refuses the gateway.
    let no_cert = Sepia::start(file(json!({"ca_certs": [ca]}))).await;
    assert_eq!(sepia_e2e::get(&no_cert.url("/open")).await.status, 200);
    assert_eq!(sepia_e2e::get(&no_cert.url("/strict")).await.status, 500);
    // allow_insecure_connections checks nothing, and says so.
    let insecure = Sepia::start(file(json!({"allow_insecure_connections": true}))).await;
    assert_eq!(sepia_e2e::get(&insecure.url("/open")).await.status, 200);
    assert!(insecure
        .logs()
        .contains("backends' certificates are not checked"));
    // A file that cannot be read stops start-up with its place.
    let logs = Sepia::refused(file(json!({"ca_certs": [format!("{ca}.missing")]}))).await;
    assert!(logs.contains("client_tls.ca_certs[0]"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_reads_the_certificates_again() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":1}"#)).await;
    let first = TestPki::new();
    let files = Files::new();
    let (cert, key, first_ca) = pki_files(&first, &files);
    let sepia = Sepia::start_https(config(
        &backend,
        3,
        json!({"public_key": cert, "private_key": key}),
    ))
    .await;
    let url = sepia.https_url("/hello");
    assert!(curl(&["--cacert", &first_ca, &url]).status.success());
    // The certificate is renewed in place, then SIGHUP.
    let renewed = TestPki::new();
    files.write("server.pem", &renewed.server_chain_pem);
    files.write("server.key", &renewed.server_key_pem);
    let renewed_ca = files.write("renewed-ca.pem", &renewed.ca_pem);
    sepia.hangup();
    let mut switched = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if curl(&["--cacert", &renewed_ca, &url]).status.success() {
            switched = true;
            break;
        }
    }
    assert!(
        switched,
        "the renewed certificate was not served:\n{}",
        sepia.logs()
    );
    assert!(!curl(&["--cacert", &first_ca, &url]).status.success());
}
