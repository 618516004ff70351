//! The one pooled, keep-alive HTTP client every backend call goes through:
//! plain http on [`Http1Pool`], https (rustls, HTTP/1.1 or HTTP/2) on
//! hyper-util's pooled client.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioTimer},
};

use super::http1_pool::{Http1Error, Http1Pool};
use super::tls::{client_config, TlsError, TlsSettings};

/// A pooled HTTP/1.1 and HTTP/2 client.
#[derive(Clone, Debug)]
pub struct BackendClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    plain: Arc<Http1Pool>,
}

/// Why a backend request failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// On the https client.
    #[error(transparent)]
    Pooled(#[from] hyper_util::client::legacy::Error),
    /// On a plain-http connection.
    #[error(transparent)]
    Plain(#[from] Http1Error),
}

impl SendError {
    /// Whether no connection could be made (as opposed to one failing).
    pub fn is_connect(&self) -> bool {
        match self {
            SendError::Pooled(error) => error.is_connect(),
            SendError::Plain(error) => matches!(
                error,
                Http1Error::Connect(_) | Http1Error::ConnectTimeout | Http1Error::NoHost
            ),
        }
    }
}

impl BackendClient {
    /// A client whose https connections use `tls`.
    pub fn new(tls: &TlsSettings) -> Result<Self, TlsError> {
        Ok(Self::with_config(client_config(tls)?))
    }

    /// A client with a prepared TLS configuration.
    fn with_config(tls: rustls::ClientConfig) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Self {
            client,
            plain: Arc::default(),
        }
    }

    /// Sends a request and waits for the response head.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, SendError> {
        if request.uri().scheme() == Some(&http::uri::Scheme::HTTP) {
            return Ok(self.plain.send(request).await?);
        }
        Ok(self.client.request(request).await?)
    }

    /// `workers` clients sharing one TLS configuration (loading the system
    /// roots is the costly part: once for all).
    pub fn per_worker(workers: usize, tls: &TlsSettings) -> Result<Vec<Self>, TlsError> {
        let config = client_config(tls)?;
        Ok((0..workers.max(1))
            .map(|_| Self::with_config(config.clone()))
            .collect())
    }
}

impl super::Upstream for BackendClient {
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<super::UpstreamBody>, SendError> {
        let response = BackendClient::send(self, request).await?;
        Ok(response.map(super::UpstreamBody::Remote))
    }

    fn detached(&self) -> Option<BackendClient> {
        Some(self.clone())
    }
}

/// The most useful text of a client error: hyper-util's own message is
/// generic ("client error (Connect)"), the cause says what happened.
pub fn describe(error: &SendError) -> String {
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
