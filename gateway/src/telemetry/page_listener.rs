//! The telemetry's own listeners, away from the gateway's traffic: each
//! answers one page (`GET /metrics` of a Prometheus exporter, `/__stats`
//! of `telemetry/metrics`) made anew for each request, and 404 to anything
//! else. They speak HTTP/1.1, as Go's server does for Prometheus, and hold
//! up to [`Limits`]: before, a client that connected and sent nothing was
//! kept for ever, and enough of them took the process's last sockets.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

/// What a page listener holds: scrapers are few and ask often.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; one more is closed as it comes.
    pub connections: usize,
    /// How long a connection may take to send a request's head, counted
    /// from when it connected or answered its last request: so also how
    /// long it may stay idle. Longer than the usual scrape interval, so a
    /// scraper keeps its connection.
    pub head: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections: 64,
            head: Duration::from_secs(30),
        }
    }
}

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
    serve_within(address, page, Limits::default()).await
}

/// [`serve`] within `limits`.
async fn serve_within(
    address: SocketAddr,
    page: Page,
    limits: Limits,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    let open = Arc::new(Semaphore::new(limits.connections));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, most likely: wait for some to
                // be freed rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(held) = open.clone().try_acquire_owned() else {
                tracing::debug!(
                    connections = limits.connections,
                    page = page.path,
                    "telemetry listener full: connection closed"
                );
                continue;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let answer = answer(&request, &page);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.head)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(held);
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn page() -> Page {
        Page {
            path: "/metrics",
            content_type: "text/plain",
            body: Arc::new(|| b"up 1\n".to_vec()),
        }
    }

    /// What the server sends before it closes, or `None` when it keeps the
    /// connection open past `wait`.
    async fn until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<Vec<u8>> {
        let mut got = Vec::new();
        tokio::time::timeout(wait, stream.read_to_end(&mut got))
            .await
            .ok()
            .map(|_| got)
    }

    async fn get(address: SocketAddr) -> Vec<u8> {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        until_closed(&mut stream, Duration::from_secs(5))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_and_one_beyond_the_cap_at_once() {
        let limits = Limits {
            connections: 2,
            head: Duration::from_millis(300),
        };
        let address = serve_within("127.0.0.1:0".parse().unwrap(), page(), limits)
            .await
            .unwrap();
        let mut silent = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut half = tokio::net::TcpStream::connect(address).await.unwrap();
        half.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        // Both slots are taken: the third is closed, its request
        // unanswered (the server may close before the request is sent).
        let mut third = tokio::net::TcpStream::connect(address).await.unwrap();
        let _ = third
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        assert_eq!(
            until_closed(&mut third, Duration::from_secs(5)).await,
            Some(Vec::new())
        );
        // The silent one and the one that stopped mid-head are closed at
        // the head timeout, not held.
        assert!(until_closed(&mut silent, Duration::from_secs(3))
            .await
            .is_some());
        assert!(until_closed(&mut half, Duration::from_secs(3))
            .await
            .is_some());
        // And their slots serve again.
        let answer = String::from_utf8(get(address).await).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("up 1\n"), "{answer}");
    }
}
