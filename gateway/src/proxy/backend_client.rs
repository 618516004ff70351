//! The one pooled, keep-alive HTTP client every backend call goes through
//! (http and https via rustls).

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioTimer},
};

use crate::tls::{client_config, TlsError, TlsSettings};

/// A pooled HTTP/1.1 and HTTP/2 client.
#[derive(Clone, Debug)]
pub struct BackendClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl BackendClient {
    /// A client whose https connections use `tls`.
    pub fn new(tls: &TlsSettings) -> Result<Self, TlsError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(client_config(tls)?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Self { client })
    }

    /// Sends a request and waits for the response head.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }
}

/// The most useful text of a client error: hyper-util's own message is
/// generic ("client error (Connect)"), the cause says what happened.
pub fn describe(error: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
