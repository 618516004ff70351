//! A minimal HTTP client for tests (hyper, HTTP/1.1 or h2c).

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Protocol version.
    pub version: http::Version,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends a request; `h2c` uses HTTP/2 with prior knowledge.
pub async fn request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    h2c: bool,
) -> Answer {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(h2c)
        .build_http::<Full<Bytes>>();
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("valid request");
    let response = client
        .request(request)
        .await
        .unwrap_or_else(|e| panic!("request to {url} failed: {e:?}"));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
        version: parts.version,
    }
}

/// `GET url`.
pub async fn get(url: &str) -> Answer {
    request(Method::GET, url, &[], b"", false).await
}

/// The status of a `POST` of `body` to `url` (on loopback, plain HTTP/1.1)
/// from a client that reads the answer while it still writes, as one that
/// is turned away early must: a server that answers before the body is in
/// (413, 503) may close the connection under the writer, which a client
/// that only reads after writing sees as a broken pipe instead of the
/// answer.
pub async fn post_status_early(url: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let uri: http::Uri = url.parse().expect("valid URL");
    let authority = uri.authority().expect("URL with a host").to_string();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .unwrap_or_else(|e| panic!("connect to {authority}: {e}"));
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        uri.path_and_query().map_or("/", |p| p.as_str()),
        body.len()
    );
    let body = body.to_vec();
    let writing = tokio::spawn(async move {
        // A write the server cut short is expected: the answer tells.
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await;
        writer
    });
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    writing.abort();
    let line = String::from_utf8_lossy(&answer);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line from {url}: {line:?}"))
}
