//! Keep-alive HTTP/1.1 connections to plain-http backends, on hyper's own
//! connection API.
//!
//! hyper-util's pooled client does the same job for every scheme, but its
//! generic pool (connection racing, waiters, a hashed key a request, a
//! background idle sweeper) cost ~15% of a bare hyper proxy's throughput on
//! plain-http backends (BENCHMARKS.md, third session). Most backends of a
//! gateway are plain http on a private network, so they get this lean path;
//! https keeps hyper-util's client.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{header, uri::PathAndQuery, HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::{body::Incoming, client::conn::http1};
use sepia_config::BackendTransport;

type Sender = http1::SendRequest<Full<Bytes>>;

/// What a connector's failure is, hyper-util's `ConnectError` not being
/// nameable.
type ConnectCause = Box<dyn std::error::Error + Send + Sync>;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const X_IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("x-idempotency-key");

/// Why a request to a plain-http backend failed.
#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    /// The URL has no host.
    #[error("the URL has no host")]
    NoHost,
    /// The TCP connection could not be made (in time, when `dialer_timeout`
    /// is set).
    #[error(transparent)]
    Connect(ConnectCause),
    /// HTTP failed on the connection.
    #[error(transparent)]
    Http(hyper::Error),
    /// The backend sent no response head within `response_header_timeout`.
    #[error("timeout awaiting response headers: none within response_header_timeout ({0:?})")]
    ResponseHeaderTimeout(Duration),
}

/// One connection not in use, and since when.
struct Idle {
    sender: Sender,
    since: Instant,
}

/// Idle connections by backend (`host:port`), each list oldest first.
type IdleConnections = Mutex<HashMap<String, Vec<Idle>>>;

/// How many connections are kept, and how long.
#[derive(Debug, Clone, Copy)]
struct KeepRules {
    /// `disable_keep_alives` off: connections are kept at all.
    keep: bool,
    /// Kept a backend (`max_idle_connections_per_host`).
    per_backend: usize,
    /// Kept over all backends (`max_idle_connections`), when limited.
    total: Option<usize>,
    /// Closed after this long idle (`idle_connection_timeout`).
    timeout: Option<Duration>,
}

/// Keep-alive connections to plain-http backends.
pub struct Http1Pool {
    idle: Arc<IdleConnections>,
    rules: KeepRules,
    connector: super::dialer::Dialer,
    response_header_timeout: Option<Duration>,
    /// Started with the first kept connection when an idle timeout is set,
    /// on the runtime that owns the connections.
    sweeper: OnceLock<()>,
}

impl std::fmt::Debug for Http1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Pool")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Default for Http1Pool {
    fn default() -> Self {
        Self::new(&BackendTransport::default(), 1)
    }
}

impl Http1Pool {
    /// A pool for `transport`'s settings, one of `shares` pools (one a
    /// server worker) that split its connection limits between them, so
    /// that a backend never sees more kept connections than configured.
    pub fn new(transport: &BackendTransport, shares: usize) -> Self {
        let rules = KeepRules {
            keep: !transport.disable_keep_alives,
            per_backend: share(transport.max_idle_connections_per_host, shares),
            total: (transport.max_idle_connections > 0)
                .then(|| share(transport.max_idle_connections, shares)),
            timeout: transport.idle_connection_timeout,
        };
        Self {
            idle: Arc::default(),
            rules,
            connector: super::dialer::connector(transport),
            response_header_timeout: transport.response_header_timeout,
            sweeper: OnceLock::new(),
        }
    }

    /// Sends `request` (an absolute `http://` URL) on a pooled connection,
    /// or a new one, and waits for the response head.
    pub async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, Http1Error> {
        let uri = request.uri().clone();
        let host = uri.host().ok_or(Http1Error::NoHost)?.to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let key = format!("{host}:{port}");
        // What hyper-util's client sends: the host, and the port unless it
        // is the default.
        if !request.headers().contains_key(header::HOST) {
            let value = if port == 80 {
                HeaderValue::from_str(&host)
            } else {
                HeaderValue::from_str(&key)
            };
            if let Ok(value) = value {
                request.headers_mut().insert(header::HOST, value);
            }
        }
        // HTTP/1.1 requests name the path, not the whole URL.
        let origin = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(origin);

        if let Some(mut sender) = self.checkout(&key) {
            // A backend may close a kept connection just as a request goes
            // out on it (Node.js closes them after 5 s idle). Go's client,
            // and so KrakenD, then sends a replayable request again on a new
            // connection; a copy is kept for that.
            let copy = replayable_copy(&request);
            match self.head(sender.try_send_request(request)).await? {
                Ok(response) => {
                    self.check_in(key, sender);
                    return Ok(response);
                }
                Err(mut error) => match (error.take_message(), copy) {
                    // Closed before the request went out: safe for any.
                    (Some(unsent), _) => request = unsent,
                    (None, Some(copy)) if closed_before_answering(error.error()) => {
                        tracing::debug!(backend = %key, "a kept connection closed under a request; sending it again");
                        request = copy;
                    }
                    (None, _) => return Err(Http1Error::Http(error.into_error())),
                },
            }
        }
        let mut sender = self.connect(uri).await?;
        let response = self
            .head(sender.send_request(request))
            .await?
            .map_err(Http1Error::Http)?;
        self.check_in(key, sender);
        Ok(response)
    }

    /// Waits for a response head, no longer than `response_header_timeout`
    /// (Go's timer starts once the request is written: here, once a
    /// connection is there to write it on).
    async fn head<T>(&self, sent: impl std::future::Future<Output = T>) -> Result<T, Http1Error> {
        match self.response_header_timeout {
            Some(limit) => tokio::time::timeout(limit, sent)
                .await
                .map_err(|_| Http1Error::ResponseHeaderTimeout(limit)),
            None => Ok(sent.await),
        }
    }

    /// A connection ready for a request: the most recently used one, so
    /// the others age out when the load falls.
    fn checkout(&self, key: &str) -> Option<Sender> {
        if !self.rules.keep {
            return None;
        }
        let mut idle = lock(&self.idle);
        let list = idle.get_mut(key)?;
        let now = Instant::now();
        list.retain(|c| !c.sender.is_closed() && !self.rules.expired(c, now));
        // A connection whose last answer is still being read is not ready.
        let at = list.iter().rposition(|c| c.sender.is_ready())?;
        // `remove`, not `swap_remove`: the list stays oldest first, for
        // `max_idle_connections` to close the oldest.
        Some(list.remove(at).sender)
    }

    /// Returns a connection at once: it becomes ready again when the
    /// response body has been read. One over a limit is dropped, which
    /// closes it once its answer has been read, as Go closes a connection
    /// it has no room for.
    fn check_in(&self, key: String, sender: Sender) {
        if !self.rules.keep {
            return;
        }
        let mut idle = lock(&self.idle);
        let list = idle.entry(key).or_default();
        if list.len() >= self.rules.per_backend {
            return;
        }
        list.push(Idle {
            sender,
            since: Instant::now(),
        });
        // Over all backends, Go closes the longest idle one to make room.
        if let Some(total) = self.rules.total {
            if idle.values().map(Vec::len).sum::<usize>() > total {
                if let Some(oldest) = idle
                    .values_mut()
                    .filter(|list| !list.is_empty())
                    .min_by_key(|list| list[0].since)
                {
                    oldest.remove(0);
                }
            }
        }
        drop(idle);
        if let Some(timeout) = self.rules.timeout {
            self.sweeper
                .get_or_init(|| start_sweeper(Arc::downgrade(&self.idle), self.rules, timeout));
        }
    }

    /// Opens a connection to `uri`'s host and starts driving it on the
    /// current runtime.
    async fn connect(&self, uri: Uri) -> Result<Sender, Http1Error> {
        use tower_service::Service as _;
        let started = Instant::now();
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| Http1Error::Connect(e.into()))?;
        let io = connector
            .call(uri)
            .await
            .map_err(|e| Http1Error::Connect(e.into()))?;
        let (sender, connection) = http1::handshake(io).await.map_err(Http1Error::Http)?;
        super::connection_timings::connected(started.elapsed());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }
}

impl KeepRules {
    fn expired(&self, connection: &Idle, now: Instant) -> bool {
        self.timeout
            .is_some_and(|limit| now.duration_since(connection.since) >= limit)
    }
}

/// One pool's part of a limit shared by `shares` pools, at least one.
pub(super) fn share(limit: usize, shares: usize) -> usize {
    limit.div_ceil(shares.max(1)).max(1)
}

fn lock(idle: &IdleConnections) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Idle>>> {
    idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Closes connections idle past `timeout` as Go's idle timer does, though
/// their backend is not called again; ends with the pool.
fn start_sweeper(idle: Weak<IdleConnections>, rules: KeepRules, timeout: Duration) {
    // Each is closed between `timeout` and 1.25 × `timeout` idle.
    let period = (timeout / 4).max(Duration::from_millis(10));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(idle) = idle.upgrade() else {
                return;
            };
            let now = Instant::now();
            let mut idle = lock(&idle);
            // A connection still streaming its answer is in use, not idle.
            for list in idle.values_mut() {
                list.retain(|c| {
                    let idle_too_long = c.sender.is_ready() && rules.expired(c, now);
                    !c.sender.is_closed() && !idle_too_long
                });
            }
            idle.retain(|_, list| !list.is_empty());
        }
    });
}

/// A copy of `request` when it may be sent twice, by Go's rule: GET, HEAD,
/// OPTIONS and TRACE, or any request with an idempotency key.
fn replayable_copy(request: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
    let headers = request.headers();
    let replayable = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || headers.contains_key(IDEMPOTENCY_KEY)
        || headers.contains_key(X_IDEMPOTENCY_KEY);
    if !replayable {
        return None;
    }
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = headers.clone();
    Some(copy)
}

/// Whether the backend closed or reset the connection instead of answering.
fn closed_before_answering(error: &hyper::Error) -> bool {
    use std::{error::Error as _, io::ErrorKind};
    if error.is_incomplete_message() {
        return true;
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            );
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use http_body_util::BodyExt;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
        sync::mpsc,
    };

    use super::*;

    /// How the test backend treats a connection after its first answer.
    #[derive(Clone, Copy)]
    enum After {
        KeepAlive,
        Close,
        /// Keep it, and send each body in two halves 200 ms apart.
        SlowBody,
        /// Keep it, then close it on the next request without answering,
        /// as a backend closing an idle connection does in a race.
        DropSecond,
    }

    /// A backend that answers "ok" to every request head it reads, counts
    /// the connections it accepts and reports each request head.
    async fn backend(after: After) -> (u16, Arc<AtomicUsize>, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (heads, received) = mpsc::unbounded_channel();
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let heads = heads.clone();
                tokio::spawn(async move {
                    let mut heads_read = 0;
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head: Vec<u8> = buffer.drain(..end + 4).collect();
                            let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                            heads_read += 1;
                            if matches!(after, After::DropSecond) && heads_read == 2 {
                                return;
                            }
                            let answer: &[u8] = match after {
                                After::SlowBody => {
                                    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nok"
                                }
                                _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                            };
                            if stream.write_all(answer).await.is_err() {
                                return;
                            }
                            match after {
                                After::KeepAlive | After::DropSecond => {}
                                After::Close => return,
                                After::SlowBody => {
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                    if stream.write_all(b"ok").await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                });
            }
        });
        (port, accepted, received)
    }

    fn get(url: &str) -> Request<Full<Bytes>> {
        Request::get(url).body(Full::new(Bytes::new())).unwrap()
    }

    async fn body(response: Response<Incoming>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection_with_origin_form_and_host() {
        let (port, accepted, mut heads) = backend(After::KeepAlive).await;
        let pool = Http1Pool::default();
        for _ in 0..3 {
            let response = pool
                .send(get(&format!("http://127.0.0.1:{port}/a?b=1")))
                .await
                .unwrap();
            assert_eq!(body(response).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        let head = heads.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("get /a?b=1 http/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("host: 127.0.0.1:{port}\r\n")),
            "{head}"
        );
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_is_not_used_again() {
        let (port, accepted, _heads) = backend(After::Close).await;
        let pool = Http1Pool::default();
        for _ in 0..2 {
            let response = pool
                .send(get(&format!("http://127.0.0.1:{port}/")))
                .await
                .unwrap();
            assert_eq!(body(response).await, "ok");
            // Let the connection see the backend's close.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_whose_answer_is_unread_is_not_shared() {
        let (port, accepted, _heads) = backend(After::SlowBody).await;
        let pool = Http1Pool::default();
        let url = format!("http://127.0.0.1:{port}/");
        let first = pool.send(get(&url)).await.unwrap();
        // The first body is still arriving: the second request needs its
        // own connection.
        let second = pool.send(get(&url)).await.unwrap();
        assert_eq!(body(second).await, "okok");
        assert_eq!(body(first).await, "okok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // Both are idle now; the next request reuses one.
        tokio::task::yield_now().await;
        assert_eq!(body(pool.send(get(&url)).await.unwrap()).await, "okok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    fn request(method: Method, url: &str, header: Option<(&str, &str)>) -> Request<Full<Bytes>> {
        let mut builder = Request::builder().method(method).uri(url);
        if let Some((name, value)) = header {
            builder = builder.header(name, value);
        }
        builder.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
    }

    #[tokio::test]
    async fn a_replayable_request_goes_again_when_its_kept_connection_closes() {
        for (method, header) in [
            (Method::GET, None),
            (Method::POST, Some(("Idempotency-Key", "k1"))),
        ] {
            let (port, accepted, _heads) = backend(After::DropSecond).await;
            let pool = Http1Pool::default();
            let url = format!("http://127.0.0.1:{port}/");
            for _ in 0..2 {
                let response = pool.send(request(method.clone(), &url, header)).await;
                assert_eq!(body(response.unwrap()).await, "ok", "{method}");
            }
            assert_eq!(accepted.load(Ordering::SeqCst), 2, "{method}");
        }
    }

    #[tokio::test]
    async fn a_post_is_never_sent_twice() {
        let (port, accepted, _heads) = backend(After::DropSecond).await;
        let pool = Http1Pool::default();
        let url = format!("http://127.0.0.1:{port}/");
        let first = pool.send(request(Method::POST, &url, None)).await.unwrap();
        assert_eq!(body(first).await, "ok");
        let error = pool
            .send(request(Method::POST, &url, None))
            .await
            .unwrap_err();
        let text = crate::upstream::backend_client::describe(&error.into());
        assert!(
            text.contains("connection closed before message completed"),
            "{text}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = Http1Pool::default()
            .send(get(&format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap_err();
        let text = crate::upstream::backend_client::describe(&error.into());
        assert!(text.starts_with("tcp connect error: "), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }

    fn pool_with(transport: BackendTransport) -> Http1Pool {
        Http1Pool::new(&transport, 1)
    }

    fn kept(pool: &Http1Pool) -> usize {
        lock(&pool.idle).values().map(Vec::len).sum()
    }

    #[tokio::test]
    async fn without_keep_alives_each_request_asks_to_close_and_gets_its_own_connection() {
        let (port, accepted, mut heads) = backend(After::KeepAlive).await;
        let transport = BackendTransport {
            disable_keep_alives: true,
            ..BackendTransport::default()
        };
        let client = crate::upstream::BackendClient::per_worker(
            1,
            &crate::upstream::tls::TlsSettings::default(),
            &transport,
        )
        .unwrap()
        .remove(0);
        for _ in 0..2 {
            let response = client
                .send(get(&format!("http://127.0.0.1:{port}/")))
                .await
                .unwrap();
            assert_eq!(body(response).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let head = heads.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.contains("connection: close\r\n"), "{head}");
    }

    #[tokio::test]
    async fn a_backend_keeps_no_more_connections_than_its_limit() {
        let (port, accepted, _heads) = backend(After::SlowBody).await;
        let pool = pool_with(BackendTransport {
            max_idle_connections_per_host: 1,
            ..BackendTransport::default()
        });
        let url = format!("http://127.0.0.1:{port}/");
        // Two at once need two connections; one is kept.
        let (first, second) = (
            pool.send(get(&url)).await.unwrap(),
            pool.send(get(&url)).await.unwrap(),
        );
        assert_eq!(body(first).await, "okok");
        assert_eq!(body(second).await, "okok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(kept(&pool), 1);
    }

    #[tokio::test]
    async fn over_all_backends_the_longest_idle_connection_makes_room() {
        let (a, _, _) = backend(After::KeepAlive).await;
        let (b, _, _) = backend(After::KeepAlive).await;
        let pool = pool_with(BackendTransport {
            max_idle_connections: 1,
            ..BackendTransport::default()
        });
        for port in [a, b] {
            let response = pool.send(get(&format!("http://127.0.0.1:{port}/"))).await;
            assert_eq!(body(response.unwrap()).await, "ok");
        }
        let idle = lock(&pool.idle);
        let kept: Vec<_> = idle
            .iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(kept, [format!("127.0.0.1:{b}")]);
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_after_its_timeout_though_its_backend_is_not_called() {
        let (port, accepted, _heads) = backend(After::KeepAlive).await;
        let pool = pool_with(BackendTransport {
            idle_connection_timeout: Some(Duration::from_millis(100)),
            ..BackendTransport::default()
        });
        let url = format!("http://127.0.0.1:{port}/");
        assert_eq!(body(pool.send(get(&url)).await.unwrap()).await, "ok");
        assert_eq!(kept(&pool), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(kept(&pool), 0);
        assert_eq!(body(pool.send(get(&url)).await.unwrap()).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_backend_slower_than_the_response_header_timeout_fails_with_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and reads, never answers.
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            while stream.read(&mut buffer).await.is_ok_and(|n| n > 0) {}
        });
        let pool = pool_with(BackendTransport {
            response_header_timeout: Some(Duration::from_millis(100)),
            ..BackendTransport::default()
        });
        let error = pool
            .send(get(&format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap_err();
        assert!(
            matches!(error, Http1Error::ResponseHeaderTimeout(_)),
            "{error}"
        );
        assert!(error
            .to_string()
            .contains("timeout awaiting response headers"));
        assert_eq!(kept(&pool), 0);
    }

    #[test]
    fn limits_are_split_between_workers_rounding_up() {
        assert_eq!(share(250, 2), 125);
        assert_eq!(share(3, 2), 2);
        assert_eq!(share(1, 4), 1);
        assert_eq!(share(5, 0), 5);
    }
}
