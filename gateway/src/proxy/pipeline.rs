//! One endpoint's request path: request modifiers, backend calls (in
//! parallel, under the endpoint timeout), decoding and merging, rendering in
//! the output encoding, response modifiers. Everything an endpoint needs is
//! prepared at start-up; a request only fills it in.

use std::{
    borrow::Cow,
    net::IpAddr,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use abi_stable::std_types::{RString, RVec, Tuple2};
use bytes::Bytes;
use futures_util::future::{join_all, select_ok};
use http::{header, request::Parts, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use sepia_config::{BackendEncoding, Endpoint, OutputEncoding, Shaping};
use sepia_plugin_api::{Header, Request as PluginRequest, Response as PluginResponse};
use serde_json::{Map, Value};

use super::{
    backend_client::{describe, ClientSet},
    decode::{decode, encoding_name},
    forwarding::{add_forwarded, strip_hop_by_hop, HeaderFilter, QueryFilter},
    hook_pool::HookPool,
    hooks::{
        buffered_response, from_plugin_headers, from_plugin_response, plugin_reply,
        to_plugin_headers, ModifierChain, RequestOutcome,
    },
    merge::merge,
    shaping,
    url_template::UrlTemplate,
};
use crate::{
    body::{full, ResponseBody, JSON_CONTENT_TYPE},
    error::ProxyError,
    plugin_host::BoundModifier,
};

/// Largest client body the gateway buffers to forward.
const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;
/// Largest backend body the gateway buffers to decode.
const MAX_BACKEND_BODY: usize = 64 * 1024 * 1024;
/// KrakenD's completeness header, which clients of a KrakenD API rely on.
const COMPLETED: &str = "x-krakend-completed";
const USER_AGENT: &str = concat!("Sepia/", env!("CARGO_PKG_VERSION"));

/// One backend of an endpoint, ready to call.
pub struct BackendCall {
    hosts: Vec<String>,
    next_host: AtomicUsize,
    template: UrlTemplate,
    method: Method,
    encoding: BackendEncoding,
    is_collection: bool,
    shaping: Shaping,
    /// Modifiers configured in this backend's `extra_config`.
    modifiers: ModifierChain,
}

/// A backend's answer, read whole.
struct BackendReply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl BackendCall {
    fn host(&self) -> &str {
        // Round-robin; a relaxed counter is enough for balancing.
        let n = self.next_host.fetch_add(1, Ordering::Relaxed);
        self.hosts
            .get(n % self.hosts.len().max(1))
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// What the backends receive, after filtering and request modifiers.
struct Outgoing<'a> {
    params: Vec<String>,
    query: Cow<'a, str>,
    headers: HeaderMap,
    body: Bytes,
}

/// What the backends answered.
enum Collected {
    /// A `no-op` response, streamed as it is.
    Stream(Response<Incoming>),
    /// A `no-op` response buffered for response modifiers.
    Raw {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// A single backend's 4xx answer, forwarded as it came: the client
    /// learns why it was refused (KrakenD hides it behind a bare status).
    Refused {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// Decoded and merged data.
    Data {
        status: StatusCode,
        data: Map<String, Value>,
        complete: bool,
    },
}

/// One backend's answer.
enum BackendAnswer {
    /// Success (200 or 201), decoded.
    Data(StatusCode, Map<String, Value>),
    /// A 4xx answer, kept whole.
    Refused {
        url: String,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
}

impl BackendAnswer {
    /// The data, or the refusal as a failure (when several backends are
    /// merged, a refusal is one backend failing).
    fn into_success(self) -> Result<(StatusCode, Map<String, Value>), ProxyError> {
        match self {
            BackendAnswer::Data(status, data) => Ok((status, data)),
            BackendAnswer::Refused { url, status, .. } => {
                Err(ProxyError::BackendStatus { url, status })
            }
        }
    }
}

/// An endpoint, ready to serve.
pub struct Pipeline {
    /// The endpoint path as configured, for logs.
    pub endpoint: String,
    param_names: Vec<String>,
    backends: Vec<BackendCall>,
    timeout: Duration,
    forwards_body: bool,
    headers: HeaderFilter,
    query: QueryFilter,
    output: OutputEncoding,
    pass_through: bool,
    /// `Cache-Control` for complete GET answers (`cache_ttl`).
    cache_control: Option<HeaderValue>,
    concurrent_calls: u32,
    modifiers: ModifierChain,
    clients: ClientSet,
}

/// The `http` method of a configured method.
pub fn method_of(method: sepia_config::Method) -> Method {
    match method {
        sepia_config::Method::Get => Method::GET,
        sepia_config::Method::Post => Method::POST,
        sepia_config::Method::Put => Method::PUT,
        sepia_config::Method::Patch => Method::PATCH,
        sepia_config::Method::Delete => Method::DELETE,
    }
}

impl Pipeline {
    /// Prepares `endpoint` with its modifiers and those of each backend
    /// (in backend order).
    pub fn new(
        endpoint: &Endpoint,
        modifiers: Vec<BoundModifier>,
        backend_modifiers: Vec<Vec<BoundModifier>>,
        clients: ClientSet,
        hook_pool: &HookPool,
    ) -> Self {
        let mut backend_modifiers = backend_modifiers.into_iter();
        let backends: Vec<BackendCall> = endpoint
            .backends
            .iter()
            .map(|b| BackendCall {
                modifiers: ModifierChain::new(
                    backend_modifiers.next().unwrap_or_default(),
                    hook_pool,
                ),
                hosts: b.hosts.clone(),
                next_host: AtomicUsize::new(0),
                template: UrlTemplate::parse(&b.url_pattern, &endpoint.params),
                method: method_of(b.method),
                encoding: b.encoding,
                is_collection: b.is_collection,
                shaping: b.shaping.clone(),
            })
            .collect();
        let pass_through = endpoint.output_encoding == OutputEncoding::NoOp
            || (backends.len() == 1 && backends[0].encoding == BackendEncoding::NoOp);
        Self {
            endpoint: endpoint.endpoint.clone(),
            param_names: endpoint.params.clone(),
            backends,
            timeout: endpoint.timeout,
            forwards_body: endpoint.method.has_body(),
            headers: HeaderFilter::new(&endpoint.input_headers),
            query: QueryFilter::new(&endpoint.input_query_strings),
            output: endpoint.output_encoding,
            pass_through,
            cache_control: endpoint
                .cache_ttl
                .filter(|_| endpoint.method == sepia_config::Method::Get)
                .and_then(|ttl| {
                    HeaderValue::from_str(&format!("public, max-age={}", ttl.as_secs())).ok()
                }),
            concurrent_calls: endpoint.concurrent_calls,
            modifiers: ModifierChain::new(modifiers, hook_pool),
            clients,
        }
    }

    /// Every modifier chain of the endpoint: its own, then each backend's.
    pub fn modifier_chains(&self) -> impl Iterator<Item = &ModifierChain> {
        std::iter::once(&self.modifiers).chain(self.backends.iter().map(|b| &b.modifiers))
    }

    /// Serves one request; every failure becomes its JSON error response.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        params: Vec<String>,
        client_ip: IpAddr,
    ) -> Response<ResponseBody> {
        match self.run(request, params, client_ip).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(endpoint = %self.endpoint, status = error.status().as_u16(), error = %error, "request failed");
                error.into_response()
            }
        }
    }

    async fn run(
        &self,
        request: Request<Incoming>,
        params: Vec<String>,
        client_ip: IpAddr,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let (parts, body) = request.into_parts();
        let body = if self.forwards_body {
            read_request_body(body).await?
        } else {
            Bytes::new()
        };
        let mut headers = HeaderMap::new();
        self.headers.copy(&parts.headers, &mut headers);
        let mut outgoing = Outgoing {
            params,
            query: Cow::Borrowed(parts.uri.query().unwrap_or("")),
            headers,
            body,
        };
        if !self.modifiers.is_empty() {
            if let Some(response) = self.run_request_modifiers(&parts, &mut outgoing).await? {
                return Ok(response);
            }
        }
        // HTTP/2 carries the host in the URI's authority, not a Host header.
        let authority = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        let host = parts.headers.get(header::HOST).or(authority.as_ref());
        add_forwarded(
            &client_ip.to_string(),
            host,
            &parts.headers,
            &mut outgoing.headers,
        );
        if !self.headers.allows(&header::USER_AGENT) {
            outgoing
                .headers
                .insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        }
        let collected = tokio::time::timeout(self.timeout, self.call_backends(&outgoing))
            .await
            .map_err(|_| ProxyError::Timeout(self.timeout))??;
        self.respond(collected).await
    }

    async fn run_request_modifiers(
        &self,
        parts: &Parts,
        outgoing: &mut Outgoing<'_>,
    ) -> Result<Option<Response<ResponseBody>>, ProxyError> {
        let request = PluginRequest {
            method: RString::from(parts.method.as_str()),
            path: RString::from(parts.uri.path()),
            query: RString::from(outgoing.query.as_ref()),
            params: self.plugin_params(&outgoing.params),
            headers: to_plugin_headers(&outgoing.headers),
            body: RVec::from(outgoing.body.to_vec()),
        };
        let request = match self.modifiers.on_request(request).await? {
            RequestOutcome::Continue(request) => request,
            RequestOutcome::Respond(plugin, response) => {
                return from_plugin_response(response, &plugin).map(Some)
            }
        };
        outgoing.params = request.params.iter().map(|p| p.1.to_string()).collect();
        outgoing.query = Cow::Owned(request.query.into_string());
        outgoing.headers =
            from_plugin_headers(&request.headers, "request", &self.modifiers.last_plugin())?;
        outgoing.body = Bytes::from(request.body.into_vec());
        Ok(None)
    }

    /// The endpoint's `{param}` names with these values, as ABI data.
    fn plugin_params(&self, values: &[String]) -> RVec<Tuple2<RString, RString>> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Tuple2(RString::from(self.param_name(i)), RString::from(v.as_str())))
            .collect()
    }

    fn param_name(&self, index: usize) -> &str {
        self.param_names
            .get(index)
            .map(String::as_str)
            .unwrap_or("")
    }

    async fn call_backends(&self, outgoing: &Outgoing<'_>) -> Result<Collected, ProxyError> {
        if self.pass_through {
            let backend = &self.backends[0];
            if self.modifiers.is_empty() && backend.modifiers.is_empty() {
                return Ok(Collected::Stream(self.send(backend, outgoing).await?));
            }
            let reply = self.exchange(backend, outgoing).await?;
            return Ok(Collected::Raw {
                status: reply.status,
                headers: reply.headers,
                body: reply.body,
            });
        }
        if self.backends.len() == 1 {
            return Ok(match self.fetch_data(&self.backends[0], outgoing).await? {
                BackendAnswer::Data(status, data) => Collected::Data {
                    status,
                    data,
                    complete: true,
                },
                BackendAnswer::Refused {
                    status,
                    headers,
                    body,
                    ..
                } => Collected::Refused {
                    status,
                    headers,
                    body,
                },
            });
        }
        let results = join_all(self.backends.iter().map(|b| self.fetch_data(b, outgoing))).await;
        let count = results.len();
        let mut parts = Vec::with_capacity(count);
        let mut first_error = None;
        for result in results {
            match result.and_then(BackendAnswer::into_success) {
                Ok((_, data)) => parts.push(data),
                Err(error) => {
                    tracing::warn!(endpoint = %self.endpoint, error = %error, "a backend failed");
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(first) if parts.is_empty() => Err(ProxyError::AllBackendsFailed {
                count,
                first: Box::new(first),
            }),
            partial => Ok(Collected::Data {
                status: StatusCode::OK,
                data: merge(parts),
                complete: partial.is_none(),
            }),
        }
    }

    /// Appends the backend's path and query for this request to `out`.
    fn append_target(&self, backend: &BackendCall, outgoing: &Outgoing<'_>, out: &mut String) {
        backend.template.render("", &outgoing.params, out);
        if !self.query.is_empty() {
            self.query
                .append(&outgoing.query, out, backend.template.has_query());
        }
    }

    async fn send(
        &self,
        backend: &BackendCall,
        outgoing: &Outgoing<'_>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let mut url = String::with_capacity(96);
        url.push_str(backend.host());
        self.append_target(backend, outgoing, &mut url);
        self.dispatch(
            backend,
            url,
            outgoing.headers.clone(),
            outgoing.body.clone(),
        )
        .await
    }

    async fn dispatch(
        &self,
        backend: &BackendCall,
        url: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<Incoming>, ProxyError> {
        let body = if backend.method == Method::GET || backend.method == Method::DELETE {
            Bytes::new()
        } else {
            body
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = backend.method.clone();
        *request.headers_mut() = headers;
        *request.uri_mut() = url.parse().map_err(|e| ProxyError::BackendUnreachable {
            url: url.clone(),
            reason: format!("not a valid URL: {e}"),
        })?;
        self.clients
            .current()
            .send(request)
            .await
            .map_err(|e| ProxyError::BackendUnreachable {
                url,
                reason: describe(&e),
            })
    }

    /// Calls a backend and reads its answer whole, through the backend's
    /// own modifiers when it has some: they see the request to this backend
    /// (and may answer it themselves) and its raw answer.
    async fn exchange(
        &self,
        backend: &BackendCall,
        outgoing: &Outgoing<'_>,
    ) -> Result<BackendReply, ProxyError> {
        if backend.modifiers.is_empty() {
            let (parts, body) = self.send(backend, outgoing).await?.into_parts();
            let body = read_backend_body(body, backend).await?;
            return Ok(BackendReply {
                status: parts.status,
                headers: parts.headers,
                body,
            });
        }
        let plugin = backend.modifiers.last_plugin();
        let mut target = String::with_capacity(64);
        self.append_target(backend, outgoing, &mut target);
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let request = PluginRequest {
            method: RString::from(backend.method.as_str()),
            path: RString::from(path),
            query: RString::from(query),
            params: self.plugin_params(&outgoing.params),
            headers: to_plugin_headers(&outgoing.headers),
            body: RVec::from(outgoing.body.to_vec()),
        };
        let reply = match backend.modifiers.on_request(request).await? {
            RequestOutcome::Respond(_, response) => response,
            RequestOutcome::Continue(request) => {
                let mut url = format!("{}{}", backend.host(), request.path);
                if !request.query.is_empty() {
                    url.push('?');
                    url.push_str(&request.query);
                }
                let headers = from_plugin_headers(&request.headers, "request", &plugin)?;
                let body = Bytes::from(request.body.into_vec());
                let (parts, body) = self
                    .dispatch(backend, url, headers, body)
                    .await?
                    .into_parts();
                let body = read_backend_body(body, backend).await?;
                PluginResponse {
                    status: parts.status.as_u16(),
                    headers: to_plugin_headers(&parts.headers),
                    body: RVec::from(body.to_vec()),
                    complete: true,
                }
            }
        };
        let reply = backend.modifiers.on_response(reply).await?;
        let (status, headers, body) = plugin_reply(reply, &plugin)?;
        Ok(BackendReply {
            status,
            headers,
            body,
        })
    }

    /// One backend's answer; with `concurrent_calls` several identical
    /// calls race and the first success wins (a 4xx then counts as failure).
    async fn fetch_data(
        &self,
        backend: &BackendCall,
        outgoing: &Outgoing<'_>,
    ) -> Result<BackendAnswer, ProxyError> {
        if self.concurrent_calls <= 1 {
            return self.fetch_once(backend, outgoing).await;
        }
        let attempts = (0..self.concurrent_calls).map(|_| {
            Box::pin(async {
                let answer = self.fetch_once(backend, outgoing).await?;
                answer.into_success()
            })
        });
        let ((status, data), _) = select_ok(attempts).await?;
        Ok(BackendAnswer::Data(status, data))
    }

    async fn fetch_once(
        &self,
        backend: &BackendCall,
        outgoing: &Outgoing<'_>,
    ) -> Result<BackendAnswer, ProxyError> {
        let reply = self.exchange(backend, outgoing).await?;
        if reply.status.is_client_error() {
            return Ok(BackendAnswer::Refused {
                url: backend_label(backend),
                status: reply.status,
                headers: reply.headers,
                body: reply.body,
            });
        }
        // KrakenD counts only 200 and 201 as success.
        if reply.status != StatusCode::OK && reply.status != StatusCode::CREATED {
            return Err(ProxyError::BackendStatus {
                url: backend_label(backend),
                status: reply.status,
            });
        }
        let data = decode(backend.encoding, backend.is_collection, &reply.body).map_err(|e| {
            ProxyError::BackendBody {
                url: backend_label(backend),
                encoding: encoding_name(backend.encoding),
                reason: e.0,
            }
        })?;
        Ok(BackendAnswer::Data(
            reply.status,
            shaping::apply(&backend.shaping, data),
        ))
    }

    async fn respond(&self, collected: Collected) -> Result<Response<ResponseBody>, ProxyError> {
        match collected {
            Collected::Refused {
                status,
                headers,
                body,
            } => Ok(buffered_response(status, headers, body)),
            Collected::Stream(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                // The client's protocol version is the server's business,
                // not the backend's.
                parts.version = http::Version::default();
                Ok(Response::from_parts(parts, Either::Right(body)))
            }
            Collected::Raw {
                status,
                headers,
                body,
            } => {
                let response = PluginResponse {
                    status: status.as_u16(),
                    headers: to_plugin_headers(&headers),
                    body: RVec::from(body.to_vec()),
                    complete: true,
                };
                self.finish_with_modifiers(response).await
            }
            Collected::Data {
                status,
                data,
                complete,
            } => {
                let (body, content_type) = render(self.output, data);
                // KrakenD lets clients cache only complete answers.
                let cache_control = self.cache_control.as_ref().filter(|_| complete);
                if self.modifiers.is_empty() {
                    let mut response = Response::new(full(body));
                    *response.status_mut() = status;
                    let headers = response.headers_mut();
                    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                    headers.insert(
                        COMPLETED,
                        HeaderValue::from_static(if complete { "true" } else { "false" }),
                    );
                    if let Some(value) = cache_control {
                        headers.insert(header::CACHE_CONTROL, value.clone());
                    }
                    return Ok(response);
                }
                let mut headers = vec![
                    Header::new("content-type", content_type),
                    Header::new(COMPLETED, if complete { "true" } else { "false" }),
                ];
                if let Some(value) = cache_control {
                    headers.push(Header::new("cache-control", value.as_bytes()));
                }
                let response = PluginResponse {
                    status: status.as_u16(),
                    headers: RVec::from(headers),
                    body: RVec::from(body),
                    complete,
                };
                self.finish_with_modifiers(response).await
            }
        }
    }

    async fn finish_with_modifiers(
        &self,
        response: PluginResponse,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let response = self.modifiers.on_response(response).await?;
        from_plugin_response(response, &self.modifiers.last_plugin())
    }
}

/// The backend's first host and pattern, for messages.
fn backend_label(backend: &BackendCall) -> String {
    let mut url = String::new();
    backend.template.render(
        backend.hosts.first().map(String::as_str).unwrap_or(""),
        &[] as &[&str],
        &mut url,
    );
    url
}

/// Writes `data` in the output encoding: the body and its content type.
fn render(output: OutputEncoding, mut data: Map<String, Value>) -> (Vec<u8>, &'static str) {
    match output {
        OutputEncoding::Json | OutputEncoding::NoOp => {
            (sepia_json::to_vec(&Value::Object(data)), JSON_CONTENT_TYPE)
        }
        OutputEncoding::JsonCollection => {
            let collection = match data.remove("collection") {
                Some(Value::Array(items)) => Value::Array(items),
                _ => Value::Array(Vec::new()),
            };
            (sepia_json::to_vec(&collection), JSON_CONTENT_TYPE)
        }
        OutputEncoding::String => {
            let text = match data.remove("content") {
                Some(Value::String(text)) => text.into_bytes(),
                Some(other) => sepia_json::to_vec(&other),
                None => Vec::new(),
            };
            (text, "text/plain; charset=utf-8")
        }
    }
}

async fn read_request_body(body: Incoming) -> Result<Bytes, ProxyError> {
    match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            let too_large = error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            Err(ProxyError::RequestBody {
                reason: if too_large {
                    format!("larger than {MAX_REQUEST_BODY} bytes")
                } else {
                    error.to_string()
                },
                status: if too_large {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                },
            })
        }
    }
}

async fn read_backend_body(body: Incoming, backend: &BackendCall) -> Result<Bytes, ProxyError> {
    Limited::new(body, MAX_BACKEND_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ProxyError::BackendUnreachable {
            url: backend_label(backend),
            reason: format!("reading the body failed: {e}"),
        })
}
