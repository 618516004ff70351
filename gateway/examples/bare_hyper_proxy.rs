//! The floor under sepia's proxy path: hyper's server and sepia's backend
//! client, on the same worker model (one current-thread runtime a core,
//! SO_REUSEPORT listeners, a client a worker), with no gateway logic at all:
//! no routing, no header filtering, no decoding. bench/run.sh runs it beside
//! nginx to show how much of sepia's gap to nginx is the HTTP library and how
//! much is sepia's own work.
//!
//!   bare_hyper_proxy LISTEN_ADDRESS BACKEND_URL
//!   bare_hyper_proxy 127.0.0.1:18106 http://127.0.0.1:18101

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Full};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use sepia::{describe, BackendClient, TlsSettings};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(backend)) = (args.next(), args.next()) else {
        return Err("usage: bare_hyper_proxy LISTEN_ADDRESS BACKEND_URL".into());
    };
    let listen: SocketAddr = listen.parse()?;
    let backend: Arc<str> = backend.trim_end_matches('/').into();
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let listeners = sepia::bind(listen, workers)?;
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let backend = backend.clone();
            std::thread::spawn(move || worker(listener, backend))
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "a worker panicked")??;
    }
    Ok(())
}

fn worker(listener: std::net::TcpListener, backend: Arc<str>) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let client = BackendClient::new(&TlsSettings::default())?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let client = client.clone();
            let backend = backend.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let client = client.clone();
                let backend = backend.clone();
                async move {
                    let response = match forward(&client, &backend, request).await {
                        Ok(response) => response.map(Either::Left),
                        Err(error) => {
                            let body = Full::new(Bytes::from(error));
                            let mut response = Response::new(Either::Right(body));
                            *response.status_mut() = StatusCode::BAD_GATEWAY;
                            response
                        }
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn forward(
    client: &BackendClient,
    backend: &str,
    request: Request<Incoming>,
) -> Result<Response<Incoming>, String> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = Request::new(Full::new(body));
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = format!("{backend}{path}")
        .parse::<Uri>()
        .map_err(|e| e.to_string())?;
    client.send(outgoing).await.map_err(|e| describe(&e))
}
