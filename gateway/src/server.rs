//! The listener: HTTP/1.1 and HTTP/2 (prior knowledge, h2c) on one port, or
//! HTTPS with both through ALPN, with graceful shutdown: stop accepting, let
//! requests in flight finish within a bound, then return.
//!
//! One worker thread a core, each with its own single-threaded runtime, its
//! own listener on the shared port (SO_REUSEPORT: the kernel spreads the
//! connections) and its own backend connection pool: a request never hops
//! between threads, as in nginx's worker model.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    net::TcpListener,
    sync::{watch, Semaphore},
    task::JoinSet,
};

use crate::{
    connection::{self, ConnectionContext, ConnectionLimits},
    gateway::Gateway,
    upstream::backend_client::BackendClient,
};

/// Binds `workers` listening sockets on `address` sharing the port.
pub fn bind(address: SocketAddr, workers: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Socket, Type};
    // SO_REUSEPORT would let a second gateway started by mistake share the
    // port silently; a plain bind first fails as "address in use" instead.
    if address.port() != 0 {
        drop(std::net::TcpListener::bind(address)?);
    }
    let mut listeners = Vec::with_capacity(workers);
    let mut address = address;
    for _ in 0..workers.max(1) {
        let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&address.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        // Port 0 picks a port once; the other workers share it.
        address = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// One server worker: its listening socket and the backend client only it
/// uses (a pooled connection belongs to the runtime that opened it, so
/// sharing one pool would bounce every request between threads).
pub struct Worker {
    /// Its listening socket.
    pub listener: std::net::TcpListener,
    /// Its backend client.
    pub upstream: BackendClient,
}

/// Serves `gateway` on one thread a worker until `shutdown` completes, then
/// waits for every worker to finish its requests.
pub async fn serve_workers(
    gateway: Arc<ArcSwap<Gateway>>,
    workers: Vec<Worker>,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::with_capacity(workers.len());
    for (index, worker) in workers.into_iter().enumerate() {
        let gateway = gateway.clone();
        let settings = settings.clone();
        let mut stopped = stopped.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sepia-worker-{index}"))
            .spawn(move || -> std::io::Result<()> {
                let Worker { listener, upstream } = worker;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    let stop = async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    serve(gateway, listener, Arc::new(upstream), settings, stop).await;
                    Ok(())
                })
            })?;
        threads.push(thread);
    }
    shutdown.await;
    let _ = stop.send(true);
    let joined = tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a worker thread panicked")))
            })
            .collect::<std::io::Result<Vec<()>>>()
    })
    .await
    .map_err(std::io::Error::other)?;
    joined.map(|_| ())
}

/// Server settings from the configuration.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Time to read a request's headers (HTTP/1), and to send the first
    /// request.
    pub read_header_timeout: Option<Duration>,
    /// How long an idle connection is kept (`idle_timeout`).
    pub idle_timeout: Option<Duration>,
    /// `read_timeout`: a whole request, its body included; it stands for
    /// the header and idle timeouts where those are unset, as in Go.
    pub read_timeout: Option<Duration>,
    /// `write_timeout`: from a request's head to its response written.
    pub write_timeout: Option<Duration>,
    /// `max_header_bytes`: how large a request's head may be.
    pub max_header_bytes: usize,
    /// How long shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// HTTPS, when the configuration has `tls`; a reload swaps in new
    /// certificates.
    pub tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    /// Connections served at once by the whole process; more are closed
    /// as soon as they are accepted.
    pub max_connections: Arc<Semaphore>,
}

/// How long a client may take to send its first request (its TLS handshake
/// included) when no `read_header_timeout` bounds it: a connection that
/// never sends one must not hold a file descriptor for ever.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle connection is kept when the file sets no
/// `idle_timeout` (Go keeps it for ever; an unbounded wait lets idle
/// clients exhaust the descriptors).
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Serves `gateway` on `listener`, calling backends through `upstream`,
/// until `shutdown` completes.
pub async fn serve(
    gateway: Arc<ArcSwap<Gateway>>,
    listener: TcpListener,
    upstream: Arc<BackendClient>,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    // Go's server reads the header and idle timeouts as `read_timeout`
    // where they are unset.
    let header_timeout = settings.read_header_timeout.or(settings.read_timeout);
    if let Some(timeout) = header_timeout {
        builder.http1().header_read_timeout(timeout);
    }
    // Go reads `max_header_bytes` and 4 KiB more of an HTTP/1 head: hyper's
    // buffer bounds what is read (8 KiB at the least), the connection's
    // service refuses the rest as Go does. An HTTP/2 header list may be 320
    // bytes more (ten fields' overhead).
    let max_head = settings.max_header_bytes.saturating_add(4096);
    builder.http1().max_buf_size(max_head.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(
            u32::try_from(settings.max_header_bytes.saturating_add(320)).unwrap_or(u32::MAX),
        );
    let tls = settings.tls.clone();
    let limits = ConnectionLimits {
        first_request: header_timeout.unwrap_or(FIRST_REQUEST_TIMEOUT),
        idle: settings
            .idle_timeout
            .or(settings.read_timeout)
            .unwrap_or(IDLE_TIMEOUT),
        read: settings.read_timeout,
        write: settings.write_timeout,
        max_head,
    };
    let (stop, stopped) = watch::channel(false);
    let context = ConnectionContext {
        gateway,
        upstream,
        builder,
        limits,
        stop: stopped,
    };
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly
                    // instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
            // Finished connections are reaped as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // Over the cap, a connection is closed at once: the listener keeps
        // accepting (a flood cannot starve it) and no descriptor is held.
        let Ok(permit) = settings.max_connections.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "connection refused: max_connections reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let context = context.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let _permit = permit;
            let Some(acceptor) =
                tls.map(|current| tokio_rustls::TlsAcceptor::from(current.load_full()))
            else {
                connection::serve(TokioIo::new(stream), remote, false, context).await;
                return;
            };
            let handshake = acceptor.accept(stream);
            match tokio::time::timeout(context.limits.first_request, handshake).await {
                Ok(Ok(stream)) => {
                    connection::serve(TokioIo::new(stream), remote, true, context).await
                }
                Ok(Err(error)) => tracing::debug!(%error, %remote, "TLS handshake failed"),
                Err(_) => {
                    tracing::debug!(%remote, "no TLS handshake within the first-request timeout")
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    tracing::info!(
        connections = connections.len(),
        "shutting down: waiting for requests in flight"
    );
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(settings.shutdown_timeout, drained)
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?settings.shutdown_timeout, "requests still in flight at the shutdown timeout were cut");
        connections.abort_all();
    }
}

/// Raises this process's open-file limit to its hard limit, so that the
/// connection cap, not the common soft limit of 1024, bounds how many
/// clients are served; the limit in force.
#[allow(unsafe_code)]
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// The default connection cap for an open-file limit: half of what is left
/// after a reserve, since each client connection may hold a backend one.
pub fn default_max_connections(open_files: u64) -> usize {
    let usable = open_files.saturating_sub(256) / 2;
    usize::try_from(usable.clamp(64, 1 << 20)).unwrap_or(1 << 20)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
