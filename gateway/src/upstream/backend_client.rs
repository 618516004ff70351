//! The one pooled, keep-alive HTTP client every backend call goes through:
//! plain http on [`Http1Pool`], https (rustls, HTTP/1.1 or HTTP/2) on
//! hyper-util's pooled client.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioTimer},
};
use sepia_config::BackendTransport;

use super::connection_timings::{Leg, TimedConnector};
use super::dialer::Dialer;
use super::http1_pool::{Http1Error, Http1Pool};
use super::tls::{client_config, TlsError, TlsSettings};

/// A pooled HTTP/1.1 and HTTP/2 client.
#[derive(Clone, Debug)]
pub struct BackendClient {
    client: Client<TimedConnector<HttpsConnector<TimedConnector<Dialer>>>, Full<Bytes>>,
    plain: Arc<Http1Pool>,
    /// `disable_keep_alives`: each request asks its connection closed.
    close_connections: bool,
    /// `response_header_timeout`, for the https client.
    response_header_timeout: Option<Duration>,
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
    /// An https backend sent no response head within
    /// `response_header_timeout` of the request's start (its connection
    /// and TLS handshake included: hyper-util's client does not tell
    /// them apart).
    #[error("timeout awaiting response headers: none within response_header_timeout ({0:?})")]
    ResponseHeaderTimeout(Duration),
}

impl SendError {
    /// Whether no connection could be made (as opposed to one failing).
    pub fn is_connect(&self) -> bool {
        match self {
            SendError::Pooled(error) => error.is_connect(),
            SendError::Plain(error) => matches!(error, Http1Error::Connect(_) | Http1Error::NoHost),
            SendError::ResponseHeaderTimeout(_) => false,
        }
    }
}

impl BackendClient {
    /// A client whose https connections use `tls`, with the transport of a
    /// file that sets none (plugin fetches, exporters, `sepia e2e`).
    pub fn new(tls: &TlsSettings) -> Result<Self, TlsError> {
        Ok(Self::with_config(
            client_config(tls)?,
            &BackendTransport::default(),
            1,
        ))
    }

    /// One of `shares` clients with a prepared TLS configuration.
    fn with_config(tls: rustls::ClientConfig, transport: &BackendTransport, shares: usize) -> Self {
        let mut http = super::dialer::connector(transport);
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(TimedConnector::new(http, Leg::Dial));
        let connector = TimedConnector::new(connector, Leg::Whole);
        // hyper-util's pool has no limit over all hosts: the tighter of
        // the two limits stands for both.
        let mut per_host = transport.max_idle_connections_per_host;
        if transport.max_idle_connections > 0 {
            per_host = per_host.min(transport.max_idle_connections);
        }
        per_host = if transport.disable_keep_alives {
            0
        } else {
            super::http1_pool::share(per_host, shares)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(transport.idle_connection_timeout)
            .pool_max_idle_per_host(per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Self {
            client,
            plain: Arc::new(Http1Pool::new(transport, shares)),
            close_connections: transport.disable_keep_alives,
            response_header_timeout: transport.response_header_timeout,
        }
    }

    /// Sends a request and waits for the response head.
    pub async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, SendError> {
        if self.close_connections {
            // What Go's transport adds with DisableKeepAlives (hyper drops
            // it on HTTP/2, where it has no meaning).
            request
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if request.uri().scheme() == Some(&http::uri::Scheme::HTTP) {
            return Ok(self.plain.send(request).await?);
        }
        let sent = self.client.request(request);
        match self.response_header_timeout {
            Some(limit) => tokio::time::timeout(limit, sent)
                .await
                .map_err(|_| SendError::ResponseHeaderTimeout(limit))?
                .map_err(SendError::from),
            None => Ok(sent.await?),
        }
    }

    /// `workers` clients sharing one TLS configuration (loading the system
    /// roots is the costly part: once for all) and splitting `transport`'s
    /// connection limits.
    pub fn per_worker(
        workers: usize,
        tls: &TlsSettings,
        transport: &BackendTransport,
    ) -> Result<Vec<Self>, TlsError> {
        let config = client_config(tls)?;
        let workers = workers.max(1);
        Ok((0..workers)
            .map(|_| Self::with_config(config.clone(), transport, workers))
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
