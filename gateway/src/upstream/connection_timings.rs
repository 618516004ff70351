//! How long a backend request took to get its connection, told apart as
//! Go's `httptrace` tells krakend-otel's `detailed_connection`: the time
//! to get a connection (a kept one, or a new one dialled), the name's
//! look-up and the TLS handshake.
//!
//! The clients know nothing of the request being measured, so the timings
//! travel in a task-local cell that [`timed`] sets around one send: the
//! resolver, the connectors and the plain pool add to it when they run in
//! that task. A connection hyper-util's pool finishes dialling in the
//! background (another request took a kept one first) is not counted,
//! which is right: this request did not wait for it.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures_util::FutureExt;
use http::Uri;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

/// One send's connection timings; zero for what did not happen (a kept
/// connection is not dialled, an IP is not looked up, plain http has no
/// handshake), as Go reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionTimings {
    /// Go's `GetConn` to `GotConn`.
    pub get_conn: Duration,
    /// Go's `DNSStart` to `DNSDone`.
    pub dns: Duration,
    /// Go's `TLSHandshakeStart` to `TLSHandshakeDone`.
    pub tls: Duration,
}

/// What the connectors add to while a send runs.
#[derive(Debug, Default)]
struct Cell {
    timings: ConnectionTimings,
    /// The TCP connection's part of an https connection's time, the rest
    /// of which is the handshake.
    dialled: Duration,
}

tokio::task_local! {
    static CELL: Arc<Mutex<Cell>>;
}

fn add(update: impl FnOnce(&mut Cell)) {
    let _ = CELL.try_with(|cell| {
        if let Ok(mut cell) = cell.lock() {
            update(&mut cell);
        }
    });
}

/// Runs `send`, and what its connection took.
///
/// A plain function, not an `async fn`: an `async fn` keeps `send` beside
/// the scope that holds it, which doubled every backend call's future.
pub fn timed<F: Future>(send: F) -> impl Future<Output = (F::Output, ConnectionTimings)> {
    let cell = Arc::new(Mutex::new(Cell::default()));
    CELL.scope(cell.clone(), send).map(move |output| {
        let timings = cell.lock().map(|c| c.timings).unwrap_or_default();
        (output, timings)
    })
}

/// The plain pool got a new connection in `took`.
pub fn connected(took: Duration) {
    add(|cell| cell.timings.get_conn += took);
}

/// What a [`TimedConnector`] measures.
#[derive(Debug, Clone, Copy)]
pub enum Leg {
    /// The TCP connection under TLS.
    Dial,
    /// The whole https connection: the dial and the handshake.
    Whole,
}

/// A connector that times its connections as `leg`.
#[derive(Debug, Clone)]
pub struct TimedConnector<C> {
    inner: C,
    leg: Leg,
}

impl<C> TimedConnector<C> {
    pub fn new(inner: C, leg: Leg) -> Self {
        Self { inner, leg }
    }
}

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<C> tower_service::Service<Uri> for TimedConnector<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = C::Error;
    type Future = Boxed<C::Response, C::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let started = Instant::now();
        let connecting = self.inner.call(uri);
        let leg = self.leg;
        Box::pin(async move {
            let connected = connecting.await;
            let took = started.elapsed();
            add(|cell| match leg {
                Leg::Dial => cell.dialled += took,
                Leg::Whole => {
                    cell.timings.get_conn += took;
                    cell.timings.tls += took.saturating_sub(cell.dialled);
                }
            });
            connected
        })
    }
}

/// The system resolver, timed.
#[derive(Debug, Clone)]
pub struct TimedResolver(GaiResolver);

impl Default for TimedResolver {
    fn default() -> Self {
        Self(GaiResolver::new())
    }
}

impl tower_service::Service<Name> for TimedResolver {
    type Response = <GaiResolver as tower_service::Service<Name>>::Response;
    type Error = <GaiResolver as tower_service::Service<Name>>::Error;
    type Future = Boxed<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let started = Instant::now();
        let resolving = self.0.call(name);
        Box::pin(async move {
            let resolved = resolving.await;
            let took = started.elapsed();
            add(|cell| cell.timings.dns += took);
            resolved
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_runs_in_a_timed_send_is_counted_and_nothing_outside() {
        connected(Duration::from_secs(9));
        let ((), timings) = timed(async {
            connected(Duration::from_millis(3));
            add(|cell| cell.dialled += Duration::from_millis(1));
        })
        .await;
        assert_eq!(timings.get_conn, Duration::from_millis(3));
        assert_eq!(timings.tls, Duration::ZERO);
        assert_eq!(timings.dns, Duration::ZERO);
    }

    #[tokio::test]
    async fn a_name_looked_up_is_timed_and_an_ip_is_not_looked_up() {
        use std::str::FromStr as _;
        use tower_service::Service as _;
        let (resolved, timings) = timed(async {
            let mut resolver = TimedResolver::default();
            resolver.call(Name::from_str("localhost").unwrap()).await
        })
        .await;
        assert!(resolved.is_ok());
        assert!(timings.dns > Duration::ZERO, "{timings:?}");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let http = hyper_util::client::legacy::connect::HttpConnector::new_with_resolver(
            TimedResolver::default(),
        );
        let mut dial = TimedConnector::new(http, Leg::Dial);
        let uri: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let (connected, timings) = timed(async {
            std::future::poll_fn(|cx| dial.poll_ready(cx))
                .await
                .unwrap();
            dial.call(uri).await
        })
        .await;
        assert!(connected.is_ok());
        assert_eq!(timings.dns, Duration::ZERO);
        // A dial alone is no https connection: nothing is its handshake.
        assert_eq!(timings.tls, Duration::ZERO);
        assert_eq!(timings.get_conn, Duration::ZERO);
    }
}
