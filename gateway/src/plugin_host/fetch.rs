//! The HTTP fetch host service: a plugin asks, the gateway performs the
//! request on its own runtime and client, and the plugin's thread waits. A
//! plugin therefore needs no async runtime and no TLS stack of its own, and
//! never calls tokio from its own copy of tokio's statics.

use std::{
    collections::HashMap,
    sync::{mpsc, Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use sepia_plugin_api::{FetchRequest, FetchResponse, Header, PluginError};
use tokio::runtime::Handle;

use crate::{
    upstream::backend_client::{describe, BackendClient},
    upstream::tls::TlsSettings,
};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Performs plugins' fetches on the gateway's runtime.
#[derive(Clone)]
pub struct Fetcher {
    runtime: Handle,
    /// One client per distinct TLS setting; fetches are rare (start-up, key
    /// refresh), so a lock here costs nothing on the request path.
    clients: Arc<Mutex<HashMap<TlsSettings, BackendClient>>>,
}

impl Fetcher {
    /// A fetcher on `runtime`.
    pub fn new(runtime: Handle) -> Self {
        Self {
            runtime,
            clients: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn client(&self, tls: TlsSettings) -> Result<BackendClient, PluginError> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| PluginError::internal("the gateway's fetch client cache is poisoned"))?;
        if let Some(client) = clients.get(&tls) {
            return Ok(client.clone());
        }
        let client = BackendClient::new(&tls).map_err(|e| PluginError::internal(e.to_string()))?;
        clients.insert(tls, client.clone());
        Ok(client)
    }

    /// Performs `request` and blocks the calling thread until it is done.
    pub fn fetch_blocking(&self, request: FetchRequest) -> Result<FetchResponse, PluginError> {
        let tls = TlsSettings {
            extra_roots_pem: request.tls.extra_roots_pem.to_vec(),
            cipher_suites: request.tls.cipher_suites.to_vec(),
            pins_sha256: request
                .tls
                .pins_sha256
                .iter()
                .map(|p| p.to_string())
                .collect(),
            skip_verify: request.tls.skip_verify,
            ..Default::default()
        };
        if tls.skip_verify {
            tracing::warn!(url = %request.url, "a plugin fetches without verifying the server's certificate");
        }
        let client = self.client(tls)?;
        let http_request = to_http(&request)?;
        let timeout = match request.timeout_ms {
            0 => DEFAULT_TIMEOUT,
            ms => Duration::from_millis(ms),
        };
        let url = request.url.to_string();
        let (sender, receiver) = mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let result = tokio::time::timeout(timeout, perform(&client, http_request, &url))
                .await
                .unwrap_or_else(|_| {
                    Err(PluginError::new(
                        504,
                        format!("fetch of {url} timed out after {timeout:?}"),
                    ))
                });
            let _ = sender.send(result);
        });
        let wait = || {
            receiver
                .recv()
                .unwrap_or_else(|_| Err(PluginError::internal("the gateway dropped the fetch")))
        };
        // On one of the runtime's own threads, tell tokio this thread blocks.
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }
}

fn to_http(request: &FetchRequest) -> Result<Request<Full<Bytes>>, PluginError> {
    let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
        PluginError::bad_request(format!("\"{}\" is not an HTTP method", request.method))
    })?;
    let url = request.url.as_str();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(PluginError::bad_request(format!(
            "fetch needs an absolute http:// or https:// URL, got \"{url}\""
        )));
    }
    let mut builder = Request::builder().method(method).uri(url);
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            PluginError::bad_request(format!("\"{}\" is not a header name", header.name))
        })?;
        let value = HeaderValue::from_bytes(&header.value).map_err(|_| {
            PluginError::bad_request(format!("the value of header {name} is not valid"))
        })?;
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(&request.body)))
        .map_err(|e| PluginError::bad_request(format!("cannot build a request for {url}: {e}")))
}

async fn perform(
    client: &BackendClient,
    request: Request<Full<Bytes>>,
    url: &str,
) -> Result<FetchResponse, PluginError> {
    let response = client
        .send(request)
        .await
        .map_err(|e| PluginError::new(502, format!("fetch of {url} failed: {}", describe(&e))))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| Header::new(name.as_str(), value.as_bytes()))
        .collect();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| PluginError::new(502, format!("reading the body of {url} failed: {e}")))?
        .to_bytes();
    Ok(FetchResponse {
        status,
        headers,
        body: body.to_vec().into(),
    })
}
