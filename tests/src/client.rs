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
