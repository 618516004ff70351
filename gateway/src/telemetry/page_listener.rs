//! The telemetry's own listeners, away from the gateway's traffic: each
//! answers one page (`GET /metrics` of a Prometheus exporter, `/__stats`
//! of `telemetry/metrics`) made anew for each request, and 404 to anything
//! else.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A page: its content type and what makes its body.
#[derive(Clone)]
pub struct Page {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: Arc<dyn Fn() -> Vec<u8> + Send + Sync>,
}

/// Binds `address`; the serving runs on the current runtime until the
/// process ends.
pub async fn serve(address: SocketAddr, page: Page) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, most likely: wait for some to
                // be freed rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let answer = answer(&request, &page);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(local)
}

fn answer<B>(request: &Request<B>, page: &Page) -> Response<Full<Bytes>> {
    if request.uri().path() != page.path {
        let mut response = Response::new(Full::new(Bytes::from_static(b"404 page not found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return response;
    }
    let mut response = Response::new(Full::new(Bytes::from((page.body)())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(page.content_type),
    );
    response
}
