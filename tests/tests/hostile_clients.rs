//! Clients that do not play by the rules: silent sockets, idle ones, floods
//! of connections, requests HTTP forbids, and paths that would climb out of
//! a backend's url_pattern. Each is refused or closed, and the gateway keeps
//! serving everyone else.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sepia_e2e::{get, post_status_early, request, Reply, Sepia, TestBackend};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

fn port(sepia: &Sepia) -> u16 {
    sepia
        .url("")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// Whether the gateway closed `stream` within `limit` (reads hit EOF or a
/// reset), draining whatever it sent first.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Sends raw bytes and returns what came back until the gateway closed.
async fn raw(port: u16, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET path` over an HTTP/2 connection (prior knowledge) that stays open,
/// answering the server's pings when `pings`; the task driving it ends when
/// the server closes the connection, as long as the returned sender lives.
async fn h2_get_and_keep(
    port: u16,
    path: &str,
    pings: bool,
) -> (
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(hyper_util::rt::TokioTimer::new());
    if pings {
        builder.keep_alive_interval(Duration::from_millis(200));
    }
    let (mut sender, connection) = builder.handshake(TokioIo::new(stream)).await.unwrap();
    let driver = tokio::spawn(connection);
    let answer = sender
        .send_request(
            http::Request::builder()
                .uri(format!("http://127.0.0.1:{port}{path}"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let _ = answer.into_body().collect().await;
    // The sender is handed back: dropping it would close the connection
    // from the client's side.
    (driver, sender)
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_idle_connections_are_closed_in_both_protocols() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let slow =
        TestBackend::always(Reply::json(200, "{}").delayed(Duration::from_millis(900))).await;
    let sepia = Sepia::start(json!({"version": 3, "read_header_timeout": "400ms", "idle_timeout": "600ms",
        "endpoints": [{"endpoint": "/e", "backend": [{"host": [backend.url()], "url_pattern": "/"}]},
                      {"endpoint": "/slow", "backend": [{"host": [slow.url()], "url_pattern": "/"}]}]}))
    .await;
    let port = port(&sepia);
    // Nothing at all.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    // Part of the HTTP/2 preface, then nothing.
    let mut partial = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed_within(&mut partial, Duration::from_secs(3)).await);
    // HTTP/1.1 kept alive after one request, then idle.
    let mut kept = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    kept.write_all(b"GET /e HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // (hyper's header timer, 400 ms here, bounds an idle HTTP/1 wait too.)
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await);
    // HTTP/2 after one request: the connection ends (GOAWAY) when idle.
    let (driver, _sender) = h2_get_and_keep(port, "/e", false).await;
    let ended = tokio::time::timeout(Duration::from_secs(3), driver).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection stayed open");
    // A first request outlasting the first-request timeout: once it ends,
    // the idle timeout still closes the connection.
    let (driver, _sender) = h2_get_and_keep(port, "/slow", false).await;
    let ended = tokio::time::timeout(Duration::from_secs(3), driver).await;
    assert!(
        ended.is_ok(),
        "idle after a long request, the HTTP/2 connection stayed open"
    );
    // Everyone else is still served.
    assert_eq!(get(&sepia.url("/e")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_are_closed_and_the_gateway_keeps_serving() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":1}"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "read_header_timeout": "5s",
        "extra_config": {"sepia": {"max_connections": 2}},
        "endpoints": [{"endpoint": "/e", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}]}))
    .await;
    let port = port(&sepia);
    // The start-up probe's connection closes first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut first = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut second = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(!closed_within(&mut first, Duration::from_millis(200)).await);
    assert!(!closed_within(&mut second, Duration::from_millis(200)).await);
    // Both slots are held: a third connection is closed at once.
    let mut third = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    third
        .write_all(b"GET /e HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), third.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "served beyond max_connections: {read:?}"
    );
    // A slot freed, the next client is served.
    drop(first);
    let mut served = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = raw(
            port,
            b"GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        if answer.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
    }
    assert!(served, "no client was served after a slot freed");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_does_not_wait_for_idle_http2_clients() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let mut sepia = Sepia::start(json!({"version": 3,
        "endpoints": [{"endpoint": "/e", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}]}))
    .await;
    let port = port(&sepia);
    let (_driver, _sender) = h2_get_and_keep(port, "/e", true).await;
    let started = Instant::now();
    sepia.terminate();
    let status = sepia.wait(Duration::from_secs(8));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "an idle client held the shutdown for {:?} (its timeout is 10 s)",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_http_forbids_are_refused_before_anything_sees_them() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let sepia = Sepia::start(json!({"version": 3,
        "endpoints": [{"endpoint": "/e", "method": "POST", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}]}))
    .await;
    let port = port(&sepia);
    for (bytes, status) in [
        (&b"POST /e HTTP/1.1\r\nContent-Length: 0\r\n\r\n"[..], "400"),
        (
            b"POST /e HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
            "400",
        ),
        (
            b"POST /e HTTP/1.1\r\nHost: user@evil\r\nContent-Length: 0\r\n\r\n",
            "400",
        ),
        (
            b"POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "501",
        ),
    ] {
        let answer = raw(port, bytes).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
    }
    assert!(backend.requests().is_empty());
    let fine = raw(
        port,
        b"POST /e HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine}");
}

#[tokio::test(flavor = "multi_thread")]
async fn parameters_and_headers_cannot_smuggle_past_the_filters() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/p/{x}", "backend": [{"host": [backend.url()], "url_pattern": "/seen/{x}"}]},
        {"endpoint": "/q", "input_query_strings": ["a"], "input_headers": ["X-Secret", "X-Kept"],
         "backend": [{"host": [backend.url()], "url_pattern": "/q"}]}]}))
    .await;
    for path in ["/p/..", "/p/%2e%2e", "/p/.%2E", "/p/..%2Fadmin", "/p/."] {
        let answer = get(&sepia.url(path)).await;
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(answer.text(), "400 Bad Request");
    }
    assert!(backend.requests().is_empty());
    assert_eq!(get(&sepia.url("/p/v1.2")).await.status, 200);
    let answer = request(
        http::Method::GET,
        &sepia.url("/q?a=1;b=2&a=3"),
        &[
            ("connection", "x-secret"),
            ("x-secret", "hop"),
            ("x-kept", "end"),
        ],
        b"",
        false,
    )
    .await;
    assert_eq!(answer.status, 200);
    let seen = backend.requests();
    let last = seen.last().expect("called");
    assert_eq!(last.query.as_deref(), Some("a=3"));
    assert!(last.headers.get("x-secret").is_none());
    assert_eq!(last.headers["x-kept"], "end");
}

/// A backend on loopback that sends `head` and then `chunk` every 100 ms
/// for ever (or nothing more when `chunk` is empty).
async fn stalling_backend(head: &'static [u8], chunk: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                if stream.write_all(head).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if !chunk.is_empty() && stream.write_all(chunk).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_no_op_endpoints_timeout_covers_the_whole_answer() {
    let stalls = stalling_backend(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",
        b"",
    )
    .await;
    let endless = stalling_backend(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\nmore.\r\n",
    )
    .await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/stalls", "timeout": "1s", "output_encoding": "no-op",
         "backend": [{"host": [stalls], "url_pattern": "/", "encoding": "no-op"}]},
        {"endpoint": "/endless", "timeout": "1s", "output_encoding": "no-op",
         "backend": [{"host": [endless], "url_pattern": "/", "encoding": "no-op"}]}]}))
    .await;
    let port = port(&sepia);
    for path in ["/stalls", "/endless"] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        assert!(
            closed_within(&mut stream, Duration::from_secs(5)).await,
            "{path}: the answer ran past the endpoint's timeout"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{path}: cut after {took:?}, the timeout is 1 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_are_bounded_each_and_all_together() {
    let slow =
        TestBackend::always(Reply::json(200, "{}").delayed(Duration::from_millis(1500))).await;
    let sepia = Sepia::start(json!({"version": 3,
        "extra_config": {"sepia": {"max_request_body": 1048576, "request_bodies_in_flight": 3145728}},
        "endpoints": [{"endpoint": "/upload", "method": "POST", "timeout": "5s",
                       "backend": [{"host": [slow.url()], "url_pattern": "/"}]}]}))
    .await;
    let url = sepia.url("/upload");
    let too_big = post_status_early(&url, &vec![b'x'; 2 << 20]).await;
    assert_eq!(too_big, 413);
    // Five 1 MiB uploads at once: three fit in the 3 MiB budget, while
    // their backend is slow; the others are turned away with 503.
    let body = vec![b'y'; 1 << 20];
    let uploads: Vec<_> = (0..5)
        .map(|_| {
            let url = url.clone();
            let body = body.clone();
            tokio::spawn(async move { post_status_early(&url, &body).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for upload in uploads {
        statuses.push(upload.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 200, 200, 503, 503], "{}", sepia.logs());
    // The budget is back once they are done.
    let again = request(http::Method::POST, &url, &[], &body, false).await;
    assert_eq!(again.status, 200);
}

/// A `POST path` whose head says ten bytes of body and which sends two,
/// then stalls; what came back until the gateway closed.
async fn stalled_post(port: u16, path: &str) -> String {
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{{\"");
    raw(port, head.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn read_and_write_timeouts_cut_what_outlasts_them_in_both_protocols() {
    let fast = TestBackend::always(Reply::json(200, r#"{"a":1}"#)).await;
    let slow =
        TestBackend::always(Reply::json(200, r#"{"a":1}"#).delayed(Duration::from_millis(800)))
            .await;
    let config = |switches: serde_json::Value| {
        json!({"version": 3, "timeout": "3s", "read_timeout": "300ms", "write_timeout": "400ms",
            "extra_config": {"sepia": switches},
            "endpoints": [
                {"endpoint": "/fast", "backend": [{"host": [fast.url()], "url_pattern": "/"}]},
                {"endpoint": "/post", "method": "POST",
                 "backend": [{"host": [fast.url()], "url_pattern": "/"}]},
                {"endpoint": "/slow", "backend": [{"host": [slow.url()], "url_pattern": "/"}]}]})
    };
    let sepia = Sepia::start(config(json!({}))).await;
    let gateway = port(&sepia);
    // Within both timeouts, in both protocols.
    for h2c in [false, true] {
        let answer = request(http::Method::GET, &sepia.url("/fast"), &[], b"", h2c).await;
        assert_eq!(answer.status, 200, "h2c {h2c}");
        let posted = request(http::Method::POST, &sepia.url("/post"), &[], b"{}", h2c).await;
        assert_eq!(posted.status, 200, "h2c {h2c}");
    }
    // A body still arriving at read_timeout: the endpoint fails as
    // lura's does when Go's read deadline cuts the body (500).
    let started = Instant::now();
    let answer = stalled_post(gateway, "/post").await;
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // An answer ready after write_timeout is never written: HTTP/1 closes
    // the connection.
    let answer = raw(gateway, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(answer, "", "an answer came after write_timeout");
    // HTTP/2 resets the stream, and the connection serves on.
    let stream = TcpStream::connect(("127.0.0.1", gateway)).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let get = |path: &str| {
        http::Request::builder()
            .uri(format!("http://127.0.0.1:{gateway}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let reset = sender.send_request(get("/slow")).await.unwrap_err();
    // RST_STREAM with INTERNAL_ERROR, as Go's server resets it.
    assert!(format!("{reset:?}").contains("INTERNAL_ERROR"), "{reset:?}");
    let answer = sender.send_request(get("/fast")).await.unwrap();
    assert_eq!(answer.status(), 200);
    // Sepia's statuses name the timeout: 408.
    let sepia = Sepia::start(config(json!({"json_errors": true}))).await;
    let answer = stalled_post(port(&sepia), "/post").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn request_heads_may_be_as_large_as_go_s_server_allows() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let config = |version: u64, limit: Option<u64>| {
        let mut file = json!({"version": version,
            "endpoints": [{"endpoint": "/e", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}]});
        if let Some(limit) = limit {
            file["max_header_bytes"] = json!(limit);
        }
        file
    };
    let head_with = |bytes: usize| {
        format!(
            "GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
            "a".repeat(bytes)
        )
    };
    // Go's default, 1 MiB (and 4 KiB of slack), in both generations: more
    // than hyper's own 400 KiB.
    for version in [2, 3] {
        let sepia = Sepia::start(config(version, None)).await;
        let answer = raw(port(&sepia), head_with(900 << 10).as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{}",
            &answer[..answer.len().min(200)]
        );
        let answer = raw(port(&sepia), head_with((1 << 20) + 8192).as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{}",
            &answer[..answer.len().min(200)]
        );
        // An HTTP/2 header list over hyper's 16 KiB.
        let big = "b".repeat(64 << 10);
        let answer = request(
            http::Method::GET,
            &sepia.url("/e"),
            &[("x-big", &big)],
            b"",
            true,
        )
        .await;
        assert_eq!(answer.status, 200, "version {version}");
    }
    // Version 3 sets it.
    let sepia = Sepia::start(config(3, Some(16 << 10))).await;
    let answer = raw(port(&sepia), head_with(10 << 10).as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = raw(port(&sepia), head_with(24 << 10).as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}
