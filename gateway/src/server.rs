//! The listener: HTTP/1.1 and HTTP/2 (prior knowledge, h2c) on one port, or
//! HTTPS with both through ALPN, with graceful shutdown: stop accepting, let
//! requests in flight finish within a bound, then return.
//!
//! One worker thread a core, each with its own single-threaded runtime, its
//! own listener on the shared port (SO_REUSEPORT: the kernel spreads the
//! connections) and its own backend connection pool: a request never hops
//! between threads, as in nginx's worker model.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::net::TcpListener;

use crate::{gateway::Gateway, request_context::OverTls, upstream::backend_client::BackendClient};

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
    gateway: Arc<Gateway>,
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
    /// Time to read a request's headers.
    pub read_header_timeout: Option<Duration>,
    /// How long shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// HTTPS, when the configuration has `tls`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// How long a client may take to finish its TLS handshake when no
/// `read_header_timeout` bounds it: a connection that never completes one
/// must not hold a file descriptor for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `gateway` on `listener`, calling backends through `upstream`,
/// until `shutdown` completes.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    upstream: Arc<BackendClient>,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    if let Some(timeout) = settings.read_header_timeout {
        builder.http1().header_read_timeout(timeout);
    }
    builder.http2().timer(TokioTimer::new());
    let tls = settings.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let handshake_timeout = settings.read_header_timeout.unwrap_or(HANDSHAKE_TIMEOUT);
    let graceful = GracefulShutdown::new();
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
        };
        let _ = stream.set_nodelay(true);
        let gateway = gateway.clone();
        let upstream = upstream.clone();
        let over_tls = tls.is_some();
        let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let gateway = gateway.clone();
            let upstream = upstream.clone();
            if over_tls {
                request.extensions_mut().insert(OverTls);
            }
            async move {
                let response = gateway
                    .handle(request, remote.ip(), upstream.as_ref())
                    .await;
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let Some(acceptor) = &tls else {
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, %remote, "connection ended with an error");
                }
            });
            continue;
        };
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%error, %remote, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, timeout = ?handshake_timeout, "TLS handshake timed out");
                    return;
                }
            };
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "shutting down: waiting for requests in flight"
    );
    if tokio::time::timeout(settings.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?settings.shutdown_timeout, "requests still in flight at the shutdown timeout were cut");
    }
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
