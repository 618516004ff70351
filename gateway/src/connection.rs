//! One client connection, from its first byte to its close: HTTP/1.1 or
//! HTTP/2 served on it, and the deadlines no client may stretch. A
//! connection that sends no request within the first-request timeout, or
//! stays idle (no request in flight) past the idle timeout, is closed, in
//! both protocols (HTTP/2 with a GOAWAY); at shutdown an idle connection is
//! closed at once and a busy one after its requests. Before this, a socket
//! that never sent a byte was held for ever: hyper's header timer starts only
//! once the protocol is known.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use http_body_util::Either;
use hyper::{body::Incoming, service::service_fn, Request};
use hyper_util::{rt::TokioExecutor, server::conn::auto};
use tokio::sync::watch;

use crate::{
    body_budget::ReadDeadline,
    gateway::Gateway,
    request_context::OverTls,
    upstream::backend_client::BackendClient,
    write_deadline::{DeadlineIo, WriteDeadline},
};

/// The deadlines of a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From accepting to the first request's arrival (TLS handshake
    /// included).
    pub first_request: Duration,
    /// With no request in flight, how long the connection may wait for the
    /// next one.
    pub idle: Duration,
    /// `read_timeout`: by when, from its head, a request's body must have
    /// arrived.
    pub read: Option<Duration>,
    /// `write_timeout`: by when, from its head, a request's response must
    /// have been written.
    pub write: Option<Duration>,
    /// The largest HTTP/1 head served (`max_header_bytes` and Go's slack).
    pub max_head: usize,
}

/// An HTTP/2 stream whose response was not ready by its `write_timeout`:
/// hyper resets the stream, as Go's server does.
#[derive(Debug, thiserror::Error)]
#[error("write_timeout ({0:?}) passed before the response was ready: the stream is reset")]
pub struct StreamWriteTimeout(Duration);

/// What a connection is doing, as its requests come and go.
struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    seen_request: AtomicBool,
    /// Milliseconds from `born` to the last request's start or end.
    last_change_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            seen_request: AtomicBool::new(false),
            last_change_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_change_ms.store(ms, Ordering::Relaxed);
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.seen_request.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    /// When the connection is to close if nothing happens, or `None`
    /// while a request is in flight.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.busy() {
            return None;
        }
        let since = Duration::from_millis(self.last_change_ms.load(Ordering::Relaxed));
        let allowed = if self.seen_request.load(Ordering::Relaxed) {
            limits.idle
        } else {
            limits.first_request
        };
        Some(self.born + since + allowed)
    }
}

/// A request in flight; its end is activity too.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// What every connection of a worker shares.
#[derive(Clone)]
pub struct ConnectionContext {
    /// The gateway in force; a reload swaps it, and each request takes
    /// the one current when it arrives.
    pub gateway: Arc<ArcSwap<Gateway>>,
    pub upstream: Arc<BackendClient>,
    pub builder: auto::Builder<TokioExecutor>,
    pub limits: ConnectionLimits,
    /// Becomes `true` at shutdown.
    pub stop: watch::Receiver<bool>,
}

/// Serves one connection until it closes, the client goes quiet past its
/// deadline, or shutdown closes it.
pub async fn serve<I>(io: I, remote: SocketAddr, over_tls: bool, context: ConnectionContext)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let ConnectionContext {
        gateway,
        upstream,
        builder,
        limits,
        mut stop,
    } = context;
    let activity = Arc::new(Activity::new());
    let watched = activity.clone();
    let write_deadline = WriteDeadline::new();
    let io = DeadlineIo::new(io, write_deadline.clone());
    let service = service_fn(move |mut request: Request<Incoming>| {
        let gateway = gateway.load_full();
        let upstream = upstream.clone();
        let in_flight = watched.begin();
        if over_tls {
            request.extensions_mut().insert(OverTls);
        }
        if let Some(limit) = limits.read {
            let at = tokio::time::Instant::now() + limit;
            request.extensions_mut().insert(ReadDeadline { at, limit });
        }
        // HTTP/1: the connection's writes, as Go's server sets its
        // deadline; HTTP/2: this stream's, checked here.
        let stream_deadline = limits.write.and_then(|limit| {
            if request.version() == http::Version::HTTP_2 {
                Some((tokio::time::Instant::now() + limit, limit))
            } else {
                write_deadline.arm(limit);
                None
            }
        });
        async move {
            let client = gateway.client_addr(&request, remote.ip());
            let entry = gateway
                .access_log()
                .and_then(|log| log.begin(&request, client.client));
            // krakend-otel's skip_paths: neither measured nor traced.
            let observed = !gateway
                .otel_settings()
                .is_some_and(|o| o.skips(request.uri().path()));
            let measured = crate::telemetry::metrics::installed()
                .filter(|m| observed && m.measures_requests())
                .map(|m| (m, Instant::now(), request.method().clone()));
            let trace = crate::telemetry::traces::installed()
                .filter(|_| observed)
                .map(|t| t.begin(&request, remote));
            let handled = async {
                match crate::http_rules::oversized_head(&request, limits.max_head) {
                    Some(refused) => refused,
                    None => gateway.handle(request, client, upstream.as_ref()).await,
                }
            };
            let handled = std::pin::pin!(handled);
            let context = trace.as_ref().map(|t| t.context());
            let response = crate::telemetry::traces::within(handled, context).await;
            if let Some(entry) = entry {
                entry.end(&response);
            }
            let route = || {
                response
                    .extensions()
                    .get::<crate::gateway::MatchedRoute>()
                    .map(|r| r.0.clone())
            };
            if let Some(trace) = trace {
                trace.end(
                    route().map(|r| r.name().clone()),
                    response.status().as_u16(),
                    crate::body::known_size(&response).unwrap_or(0),
                    response.headers(),
                );
            }
            if let Some((metrics, started, method)) = measured {
                let route = route();
                metrics.record_request(
                    &method,
                    over_tls,
                    route.as_deref(),
                    response.status().as_u16(),
                    started.elapsed(),
                    crate::body::known_size(&response).unwrap_or(0),
                );
            }
            drop(in_flight);
            match stream_deadline {
                None => Ok(response),
                Some((at, limit)) if tokio::time::Instant::now() >= at => {
                    Err(StreamWriteTimeout(limit))
                }
                Some((at, _)) => Ok(response.map(|body| match body {
                    Either::Right(streamed) => Either::Right(streamed.until(at)),
                    buffered => buffered,
                })),
            }
        }
    });
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    let mut stopping = *stop.borrow();
    if stopping {
        return;
    }
    loop {
        // While a request is in flight there is no deadline, but the
        // timer still runs, so that the idle one is armed once it ends.
        let deadline = (!closing).then(|| {
            activity
                .deadline(&limits)
                .unwrap_or_else(|| Instant::now() + limits.idle)
        });
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %remote, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                // The deadline may have moved while the timer ran.
                if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    if !activity.seen_request.load(Ordering::Relaxed) {
                        tracing::debug!(%remote, "no request within the first-request timeout: closed");
                        return;
                    }
                    tracing::debug!(%remote, "idle past the idle timeout: closing");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_err() || !activity.busy() {
                    // Idle at shutdown: nothing to wait for.
                    return;
                }
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_requests() {
        let limits = ConnectionLimits {
            first_request: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            read: None,
            write: None,
            max_head: 1 << 20,
        };
        let activity = Arc::new(Activity::new());
        let first = activity.deadline(&limits).unwrap();
        assert!(first <= activity.born + Duration::from_secs(10));
        let request = activity.begin();
        assert_eq!(activity.deadline(&limits), None);
        drop(request);
        let idle = activity.deadline(&limits).unwrap();
        assert!(idle >= activity.born + Duration::from_secs(60));
    }
}
