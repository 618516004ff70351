//! One endpoint's request path: request modifiers, backend calls (in
//! parallel, or in sequence with `proxy.sequential`, under the endpoint
//! timeout), decoding and merging, static data, rendering in the output
//! encoding, response modifiers. Everything an endpoint needs is
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
use sepia_config::{
    BackendEncoding, BackendErrors, Endpoint, OutputEncoding, Shaping, StaticResponse,
};
use sepia_plugin_api::{
    BodyLayout, Header, MemberSpan, Request as PluginRequest, RequestContext,
    Response as PluginResponse,
};
use serde_json::{Map, Value};

use super::{
    decode::{decode, encoding_name},
    forwarding::{add_forwarded, strip_hop_by_hop, HeaderFilter, QueryFilter},
    hook_pool::HookPool,
    hooks::{
        buffered_response, from_plugin_headers, from_plugin_response, plugin_reply,
        to_plugin_headers, ModifierChain, RequestOutcome,
    },
    merge::{merge, merge_canonical, CanonicalPart},
    sequence::ResponseRef,
    shaping,
    static_data::{self, Outcome},
    url_template::UrlTemplate,
};
use crate::{
    body::{full, ResponseBody, COMPLETED, COMPLETED_HEADER, JSON_CONTENT_TYPE},
    error::ProxyError,
    plugin_host::BoundModifier,
    upstream::backend_client::{describe, ClientSet},
};

/// Largest client body the gateway buffers to forward.
const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;
/// Largest backend body the gateway buffers to decode.
const MAX_BACKEND_BODY: usize = 64 * 1024 * 1024;
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
    /// How its failures reach the client (`backend/http`).
    errors: BackendErrors,
    /// Earlier responses its `url_pattern` uses (sequential endpoints).
    references: Vec<ResponseRef>,
    /// The names of its URL values: the endpoint's parameters, then its
    /// references.
    param_names: Vec<String>,
    /// The query parameters it receives: the endpoint's, narrowed by its
    /// own `input_query_strings`.
    query: QueryFilter,
    /// Its own `input_headers`, narrowing the endpoint's.
    headers: Option<HeaderFilter>,
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
    /// The request's context after the endpoint's request hooks; each
    /// backend's hooks get a copy.
    context: RequestContext,
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
    /// JSON already written in Go's encoding, with no tree built: one
    /// backend's object, or several merged (`direct_json`).
    Encoded {
        status: StatusCode,
        body: Vec<u8>,
        complete: bool,
    },
    /// Decoded and merged data.
    Data {
        status: StatusCode,
        data: Map<String, Value>,
        complete: bool,
        /// Whether a backend failed (the data is what the others sent).
        errored: bool,
    },
}

/// What backends called in parallel delivered.
struct Gathered<T> {
    /// The parts that arrived, in configuration order.
    parts: Vec<T>,
    /// Every backend answered, each completely.
    complete: bool,
    /// A backend failed.
    errored: bool,
}

/// One backend's answer.
enum BackendAnswer {
    /// Success (200 or 201), decoded; or a failure reported as data
    /// (`return_error_details`), which makes the response incomplete.
    Data {
        status: StatusCode,
        data: Map<String, Value>,
        complete: bool,
    },
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
    fn into_success(self) -> Result<(StatusCode, Map<String, Value>, bool), ProxyError> {
        match self {
            BackendAnswer::Data {
                status,
                data,
                complete,
            } => Ok((status, data, complete)),
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
    output: OutputEncoding,
    pass_through: bool,
    /// JSON backends called in parallel with nothing to reshape or add:
    /// their bodies are re-encoded (and merged) without building a tree
    /// (`Collected::Encoded`).
    direct_json: bool,
    /// `Cache-Control` for complete GET answers (`cache_ttl`).
    cache_control: Option<HeaderValue>,
    concurrent_calls: u32,
    /// Backends are called one after the other (`proxy.sequential`).
    sequential: bool,
    /// Data added to the response (`proxy.static`).
    static_response: Option<StaticResponse>,
    /// `router.return_error_msg`: a `return_error_code` failure shows the
    /// backend's body.
    reveal_error_body: bool,
    modifiers: ModifierChain,
    /// The endpoint or one of its backends has modifiers: requests carry a
    /// context.
    has_modifiers: bool,
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
    /// (in backend order). `reveal_error_body` is `router.return_error_msg`.
    pub fn new(
        endpoint: &Endpoint,
        modifiers: Vec<BoundModifier>,
        backend_modifiers: Vec<Vec<BoundModifier>>,
        clients: ClientSet,
        hook_pool: &HookPool,
        reveal_error_body: bool,
    ) -> Self {
        let mut backend_modifiers = backend_modifiers.into_iter();
        let backends: Vec<BackendCall> = endpoint
            .backends
            .iter()
            .map(|b| {
                let endpoint_query = QueryFilter::new(&endpoint.input_query_strings);
                let query = match &b.input_query_strings {
                    Some(names) => endpoint_query.intersect(&QueryFilter::new(names)),
                    None => endpoint_query,
                };
                let references = ResponseRef::of_pattern(&b.url_pattern, &endpoint.params);
                let mut param_names = endpoint.params.clone();
                param_names.extend(references.iter().map(|r| r.name.clone()));
                BackendCall {
                    modifiers: ModifierChain::new(
                        backend_modifiers.next().unwrap_or_default(),
                        hook_pool,
                    ),
                    hosts: b.hosts.clone(),
                    next_host: AtomicUsize::new(0),
                    template: UrlTemplate::parse(&b.url_pattern, &param_names),
                    method: method_of(b.method),
                    encoding: b.encoding,
                    is_collection: b.is_collection,
                    shaping: b.shaping.clone(),
                    errors: b.errors.clone(),
                    references,
                    param_names,
                    query,
                    headers: b.input_headers.as_deref().map(HeaderFilter::new),
                }
            })
            .collect();
        let pass_through = endpoint.passes_through();
        let direct_json = endpoint.backends.iter().all(|b| {
            b.encoding == BackendEncoding::Json
                && !b.is_collection
                && b.shaping == Shaping::default()
        }) && endpoint.output_encoding == OutputEncoding::Json
            && endpoint.static_response.is_none()
            && endpoint.concurrent_calls <= 1
            && !endpoint.sequential;
        let has_modifiers =
            !modifiers.is_empty() || backends.iter().any(|b| !b.modifiers.is_empty());
        Self {
            endpoint: endpoint.endpoint.clone(),
            param_names: endpoint.params.clone(),
            backends,
            timeout: endpoint.timeout,
            forwards_body: endpoint.method.has_body(),
            headers: HeaderFilter::new(&endpoint.input_headers),
            output: endpoint.output_encoding,
            pass_through,
            direct_json,
            cache_control: endpoint
                .cache_ttl
                .filter(|_| endpoint.method == sepia_config::Method::Get)
                .and_then(|ttl| {
                    HeaderValue::from_str(&format!("public, max-age={}", ttl.as_secs())).ok()
                }),
            concurrent_calls: endpoint.concurrent_calls,
            sequential: endpoint.sequential && endpoint.backends.len() > 1,
            static_response: endpoint.static_response.clone(),
            reveal_error_body,
            modifiers: ModifierChain::new(modifiers, hook_pool),
            has_modifiers,
            clients,
        }
    }

    /// Every modifier chain of the endpoint: its own, then each backend's.
    pub fn modifier_chains(&self) -> impl Iterator<Item = &ModifierChain> {
        std::iter::once(&self.modifiers).chain(self.backends.iter().map(|b| &b.modifiers))
    }

    /// Serves one request; every failure becomes its JSON error response.
    /// `context` is the one the service-level hooks started, handed back as
    /// the endpoint's hooks left it; without one, a context is made only if
    /// the endpoint has hooks.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        params: Vec<String>,
        client_ip: IpAddr,
        context: Option<RequestContext>,
    ) -> (Response<ResponseBody>, Option<RequestContext>) {
        let from_service = context.is_some();
        let mut context = match context {
            Some(context) => context,
            None if self.has_modifiers => crate::request_context::new(client_ip),
            // Allocates nothing: no hook will read it.
            None => RequestContext::default(),
        };
        if from_service || self.has_modifiers {
            context.endpoint = RString::from(self.endpoint.as_str());
        }
        let response = match self.run(request, params, client_ip, &mut context).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(endpoint = %self.endpoint, status = error.status().as_u16(), error = %error, "request failed");
                error.into_response()
            }
        };
        (response, from_service.then_some(context))
    }

    async fn run(
        &self,
        request: Request<Incoming>,
        params: Vec<String>,
        client_ip: IpAddr,
        context: &mut RequestContext,
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
            context: std::mem::take(context),
        };
        if !self.modifiers.is_empty() {
            let answered = self.run_request_modifiers(&parts, &mut outgoing).await;
            match answered {
                Ok(None) => {}
                Ok(Some(response)) => {
                    *context = outgoing.context;
                    return Ok(response);
                }
                Err(error) => {
                    *context = outgoing.context;
                    return Err(error);
                }
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
            .unwrap_or(Err(ProxyError::Timeout(self.timeout)));
        *context = outgoing.context;
        self.respond(self.with_static_data(collected)?, context)
            .await
    }

    /// Adds the static data (`proxy.static`) where its strategy says: to
    /// the merged data, or in place of a failure.
    fn with_static_data(
        &self,
        collected: Result<Collected, ProxyError>,
    ) -> Result<Collected, ProxyError> {
        let Some(fixed) = &self.static_response else {
            return collected;
        };
        let outcome = match &collected {
            Ok(Collected::Data {
                complete, errored, ..
            }) => match (complete, errored) {
                (_, true) => Outcome::Errored,
                (true, false) => Outcome::Complete,
                (false, false) => Outcome::Incomplete,
            },
            Ok(Collected::Refused { .. }) | Err(_) => Outcome::Errored,
            // Bytes passed through: nothing to add to (the configuration
            // check warned). Encoded bodies never have static data (see
            // `direct_json`).
            Ok(Collected::Stream(_) | Collected::Raw { .. } | Collected::Encoded { .. }) => {
                return collected
            }
        };
        if !static_data::applies(fixed.strategy, outcome) {
            return collected;
        }
        match collected {
            Ok(Collected::Data {
                status,
                mut data,
                complete,
                errored,
            }) => {
                static_data::add(&fixed.data, &mut data);
                Ok(Collected::Data {
                    status,
                    data,
                    complete,
                    errored,
                })
            }
            failed => {
                let why = match &failed {
                    Err(error) => error.to_string(),
                    Ok(Collected::Refused { status, .. }) => {
                        format!("the backend answered {status}")
                    }
                    Ok(_) => String::new(),
                };
                tracing::warn!(endpoint = %self.endpoint, error = %why, "answering with the static data in place of a failure");
                Ok(Collected::Data {
                    status: StatusCode::OK,
                    data: fixed.data.clone(),
                    complete: false,
                    errored: true,
                })
            }
        }
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
            params: plugin_params(&self.param_names, &outgoing.params),
            headers: to_plugin_headers(&outgoing.headers),
            body: RVec::from(outgoing.body.to_vec()),
        };
        let request = match self
            .modifiers
            .on_request(request, &mut outgoing.context)
            .await?
        {
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
            if self.direct_json {
                return self.fetch_encoded(&self.backends[0], outgoing).await;
            }
            let answer = self.fetch_data(&self.backends[0], outgoing).await?;
            return Ok(single_backend(answer));
        }
        if self.sequential {
            return self.call_in_sequence(outgoing).await;
        }
        if self.direct_json {
            return self.merge_encoded(outgoing).await;
        }
        let results = join_all(self.backends.iter().map(|b| self.fetch_data(b, outgoing))).await;
        let gathered = self.gather(results.into_iter().map(|result| {
            result
                .and_then(BackendAnswer::into_success)
                .map(|(_, data, complete)| (data, complete))
        }))?;
        Ok(Collected::Data {
            status: StatusCode::OK,
            data: merge(gathered.parts),
            complete: gathered.complete,
            errored: gathered.errored,
        })
    }

    /// Sorts the answers of backends called in parallel: the parts that
    /// arrived, in configuration order. Every backend failing is the
    /// endpoint's failure (KrakenD's 500).
    fn gather<T>(
        &self,
        results: impl ExactSizeIterator<Item = Result<(T, bool), ProxyError>>,
    ) -> Result<Gathered<T>, ProxyError> {
        let count = results.len();
        let mut parts = Vec::with_capacity(count);
        let mut first_error = None;
        let mut complete = true;
        for result in results {
            match result {
                Ok((part, part_complete)) => {
                    parts.push(part);
                    complete &= part_complete;
                }
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
            partial => Ok(Gathered {
                parts,
                complete: complete && partial.is_none(),
                errored: partial.is_some(),
            }),
        }
    }

    /// The parallel merge of a `direct_json` endpoint: each body re-encoded,
    /// then their members united (a later backend wins a clash) without a
    /// tree.
    async fn merge_encoded(&self, outgoing: &Outgoing<'_>) -> Result<Collected, ProxyError> {
        let results = join_all(self.backends.iter().map(|b| self.fetch_body(b, outgoing))).await;
        let encoded = results
            .into_iter()
            .zip(&self.backends)
            .map(|(result, backend)| {
                let (body, complete) = result?;
                let mut out = Vec::with_capacity(body.len());
                let members = canonical_object(backend, &body, &mut out)?;
                Ok((CanonicalPart::new(out, &members), complete))
            });
        let gathered = self.gather(encoded)?;
        Ok(Collected::Encoded {
            status: StatusCode::OK,
            body: merge_canonical(&gathered.parts),
            complete: gathered.complete,
        })
    }

    /// A backend's body to decode, with whether it is complete; a failure
    /// reported as data (`return_error_details`) comes encoded.
    async fn fetch_body(
        &self,
        backend: &BackendCall,
        outgoing: &Outgoing<'_>,
    ) -> Result<(Bytes, bool), ProxyError> {
        match self.accept(backend, self.exchange(backend, outgoing).await?)? {
            Ok(reply) => Ok((reply.body, true)),
            Err(answer) => {
                let (_, data, complete) = answer.into_success()?;
                Ok((
                    Bytes::from(sepia_json::to_vec(&Value::Object(data))),
                    complete,
                ))
            }
        }
    }

    /// `proxy.sequential`: each backend in turn, with the values its
    /// `url_pattern` takes from earlier responses. The first backend's
    /// failure is the endpoint's; a later one ends the sequence with what
    /// arrived so far, marked incomplete (KrakenD's rules).
    async fn call_in_sequence(&self, outgoing: &Outgoing<'_>) -> Result<Collected, ProxyError> {
        let mut responses: Vec<Map<String, Value>> = Vec::with_capacity(self.backends.len());
        let mut complete = true;
        let mut errored = false;
        for (position, backend) in self.backends.iter().enumerate() {
            let answer = match self.outgoing_with_references(backend, outgoing, &responses) {
                Ok(Some(step)) => self.fetch_data(backend, &step).await,
                Ok(None) => self.fetch_data(backend, outgoing).await,
                Err(error) => Err(error),
            };
            let failure = match answer {
                Ok(BackendAnswer::Data {
                    data,
                    complete: part_complete,
                    ..
                }) => {
                    responses.push(data);
                    if part_complete {
                        continue;
                    }
                    complete = false;
                    break;
                }
                Ok(BackendAnswer::Refused {
                    status,
                    headers,
                    body,
                    ..
                }) if position == 0 => {
                    return Ok(Collected::Refused {
                        status,
                        headers,
                        body,
                    })
                }
                Ok(refused) => refused.into_success().err(),
                Err(error) if position == 0 => return Err(error),
                Err(error) => Some(error),
            };
            if let Some(error) = failure {
                tracing::warn!(endpoint = %self.endpoint, error = %error, "a backend of the sequence failed; the later ones are not called");
            }
            complete = false;
            errored = true;
            break;
        }
        Ok(Collected::Data {
            status: StatusCode::OK,
            data: merge(responses),
            complete,
            errored,
        })
    }

    /// The request to a sequential backend whose `url_pattern` uses earlier
    /// responses: the endpoint's values, then the referenced ones. `None`
    /// when it uses none.
    fn outgoing_with_references<'a>(
        &self,
        backend: &BackendCall,
        outgoing: &'a Outgoing<'_>,
        responses: &[Map<String, Value>],
    ) -> Result<Option<Outgoing<'a>>, ProxyError> {
        if backend.references.is_empty() {
            return Ok(None);
        }
        let mut params = outgoing.params.clone();
        for reference in &backend.references {
            let value =
                reference
                    .resolve(responses)
                    .ok_or_else(|| ProxyError::MissingResponseValue {
                        url: backend_label(backend),
                        name: reference.name.clone(),
                        backend: reference.backend,
                    })?;
            params.push(value);
        }
        Ok(Some(Outgoing {
            params,
            query: Cow::Borrowed(outgoing.query.as_ref()),
            headers: outgoing.headers.clone(),
            body: outgoing.body.clone(),
            context: outgoing.context.clone(),
        }))
    }

    /// Appends the backend's path and query for this request to `out`.
    fn append_target(&self, backend: &BackendCall, outgoing: &Outgoing<'_>, out: &mut String) {
        backend.template.render("", &outgoing.params, out);
        if !backend.query.is_empty() {
            backend
                .query
                .append(&outgoing.query, out, backend.template.has_query());
        }
    }

    /// The headers this backend receives.
    fn headers_for(&self, backend: &BackendCall, outgoing: &Outgoing<'_>) -> HeaderMap {
        match &backend.headers {
            Some(filter) => filter.narrow(&outgoing.headers),
            None => outgoing.headers.clone(),
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
            self.headers_for(backend, outgoing),
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
            params: plugin_params(&backend.param_names, &outgoing.params),
            headers: to_plugin_headers(&self.headers_for(backend, outgoing)),
            body: RVec::from(outgoing.body.to_vec()),
        };
        let mut context = outgoing.context.clone();
        let reply = match backend.modifiers.on_request(request, &mut context).await? {
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
        let reply = backend
            .modifiers
            .on_response(reply, &mut context, BodyLayout::unknown())
            .await?;
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
        let ((status, data, complete), _) = select_ok(attempts).await?;
        Ok(BackendAnswer::Data {
            status,
            data,
            complete,
        })
    }

    async fn fetch_once(
        &self,
        backend: &BackendCall,
        outgoing: &Outgoing<'_>,
    ) -> Result<BackendAnswer, ProxyError> {
        let reply = match self.accept(backend, self.exchange(backend, outgoing).await?)? {
            Ok(reply) => reply,
            Err(answer) => return Ok(answer),
        };
        let data = decode(backend.encoding, backend.is_collection, &reply.body)
            .map_err(|e| body_error(backend, e.0))?;
        Ok(BackendAnswer::Data {
            status: reply.status,
            data: shaping::apply(&backend.shaping, data),
            complete: true,
        })
    }

    /// The single backend of a `direct_json` endpoint: its body re-encoded
    /// as it is read.
    async fn fetch_encoded(
        &self,
        backend: &BackendCall,
        outgoing: &Outgoing<'_>,
    ) -> Result<Collected, ProxyError> {
        let reply = match self.accept(backend, self.exchange(backend, outgoing).await?)? {
            Ok(reply) => reply,
            Err(answer) => return Ok(single_backend(answer)),
        };
        let mut body = Vec::with_capacity(reply.body.len());
        // No member list: one backend's body is written as it is read.
        match sepia_json::write_canonical(&mut body, &reply.body) {
            Ok(sepia_json::Kind::Object) => {}
            outcome => return Err(not_an_object(backend, outcome)),
        }
        Ok(Collected::Encoded {
            status: reply.status,
            body,
            complete: true,
        })
    }

    /// Sorts a backend's answer by its status: `Ok(reply)` to decode (200
    /// or 201: KrakenD counts only these as success), or what the backend's
    /// error strategy makes of any other status.
    fn accept(
        &self,
        backend: &BackendCall,
        reply: BackendReply,
    ) -> Result<Result<BackendReply, BackendAnswer>, ProxyError> {
        if reply.status == StatusCode::OK || reply.status == StatusCode::CREATED {
            return Ok(Ok(reply));
        }
        match &backend.errors {
            BackendErrors::Default => {}
            BackendErrors::Details(name) => {
                return Ok(Err(BackendAnswer::Data {
                    status: StatusCode::OK,
                    data: error_details(name, &reply),
                    complete: false,
                }))
            }
            BackendErrors::StatusCode => {
                let content_type = reply.headers.get(header::CONTENT_TYPE).cloned();
                return Err(ProxyError::BackendCode {
                    url: backend_label(backend),
                    status: reply.status,
                    body: self.reveal_error_body.then_some((reply.body, content_type)),
                });
            }
        }
        if reply.status.is_client_error() {
            return Ok(Err(BackendAnswer::Refused {
                url: backend_label(backend),
                status: reply.status,
                headers: reply.headers,
                body: reply.body,
            }));
        }
        Err(ProxyError::BackendStatus {
            url: backend_label(backend),
            status: reply.status,
        })
    }

    async fn respond(
        &self,
        collected: Collected,
        context: &mut RequestContext,
    ) -> Result<Response<ResponseBody>, ProxyError> {
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
                self.finish_with_modifiers(response, context, BodyLayout::unknown())
                    .await
            }
            Collected::Encoded {
                status,
                body,
                complete,
            } => {
                let reply = Answer {
                    status,
                    body,
                    content_type: JSON_CONTENT_TYPE,
                    complete,
                    canonical: true,
                };
                self.answer(reply, context).await
            }
            Collected::Data {
                status,
                data,
                complete,
                ..
            } => {
                let canonical = self.output == OutputEncoding::Json;
                let (body, content_type) = render(self.output, data);
                let reply = Answer {
                    status,
                    body,
                    content_type,
                    complete,
                    canonical,
                };
                self.answer(reply, context).await
            }
        }
    }

    /// The response for a body the gateway wrote, through the endpoint's
    /// response modifiers.
    async fn answer(
        &self,
        answer: Answer,
        context: &mut RequestContext,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let Answer {
            status,
            body,
            content_type,
            complete,
            canonical,
        } = answer;
        // KrakenD lets clients cache only complete answers.
        let cache_control = self.cache_control.as_ref().filter(|_| complete);
        if self.modifiers.is_empty() {
            let mut response = Response::new(full(body));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                COMPLETED_HEADER,
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
        // Only a JSON object has members to point at.
        let layout = match canonical.then(|| sepia_json::canonical_members(&body)) {
            Some(Some(members)) => BodyLayout {
                canonical_json: true,
                members: members.into_iter().map(member_span).collect(),
            },
            _ => BodyLayout::unknown(),
        };
        let response = PluginResponse {
            status: status.as_u16(),
            headers: RVec::from(headers),
            body: RVec::from(body),
            complete,
        };
        self.finish_with_modifiers(response, context, layout).await
    }

    async fn finish_with_modifiers(
        &self,
        response: PluginResponse,
        context: &mut RequestContext,
        layout: BodyLayout,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let response = self
            .modifiers
            .on_response(response, context, layout)
            .await?;
        from_plugin_response(response, &self.modifiers.last_plugin())
    }
}

/// A body the gateway wrote, about to be answered.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
    complete: bool,
    /// Written in Go's canonical JSON encoding.
    canonical: bool,
}

/// A member's key and value ranges as the ABI carries them. Bodies over
/// 4 GiB never reach here (the gateway buffers at most 64 MiB).
fn member_span((key, value): (std::ops::Range<usize>, std::ops::Range<usize>)) -> MemberSpan {
    let at = |offset: usize| u32::try_from(offset).unwrap_or(u32::MAX);
    MemberSpan {
        key_start: at(key.start),
        key_end: at(key.end),
        value_start: at(value.start),
        value_end: at(value.end),
    }
}

/// Re-encodes a backend's JSON object into `out` in Go's encoding; its
/// members, or why the body is not one, naming the backend.
fn canonical_object<'b>(
    backend: &BackendCall,
    body: &'b [u8],
    out: &mut Vec<u8>,
) -> Result<Vec<sepia_json::Member<'b>>, ProxyError> {
    match sepia_json::write_canonical_object(out, body) {
        Ok(Ok(members)) => Ok(members),
        Ok(Err(kind)) => Err(not_an_object(backend, Ok(kind))),
        Err(error) => Err(not_an_object(backend, Err(error))),
    }
}

/// A JSON backend body that is not an object: valid JSON of another kind,
/// or not JSON at all.
fn not_an_object(
    backend: &BackendCall,
    outcome: Result<sepia_json::Kind, sepia_json::JsonError>,
) -> ProxyError {
    let reason = match outcome {
        Ok(kind) => format!("expected a JSON object, found {}", kind.name()),
        Err(error) => error.to_string(),
    };
    body_error(backend, reason)
}

/// A backend body that is not what its `encoding` declares.
fn body_error(backend: &BackendCall, reason: String) -> ProxyError {
    ProxyError::BackendBody {
        url: backend_label(backend),
        encoding: encoding_name(backend.encoding),
        reason,
    }
}

/// A single backend's answer as the endpoint's.
fn single_backend(answer: BackendAnswer) -> Collected {
    match answer {
        BackendAnswer::Data {
            status,
            data,
            complete,
        } => Collected::Data {
            status,
            data,
            complete,
            errored: false,
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
    }
}

/// These `{param}` names with these values, as ABI data.
fn plugin_params(names: &[String], values: &[String]) -> RVec<Tuple2<RString, RString>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = names.get(i).map(String::as_str).unwrap_or("");
            Tuple2(RString::from(name), RString::from(v.as_str()))
        })
        .collect()
}

/// `return_error_details`: the failure as data under `error_<name>`, with
/// the fields KrakenD writes (empty ones left out, as Go's `omitempty`).
fn error_details(name: &str, reply: &BackendReply) -> Map<String, Value> {
    let mut detail = Map::new();
    detail.insert(
        "http_status_code".to_owned(),
        Value::from(reply.status.as_u16()),
    );
    if !reply.body.is_empty() {
        detail.insert(
            "http_body".to_owned(),
            Value::String(String::from_utf8_lossy(&reply.body).into_owned()),
        );
    }
    if let Some(content_type) = reply
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        detail.insert(
            "http_body_encoding".to_owned(),
            Value::String(content_type.to_owned()),
        );
    }
    let mut data = Map::new();
    data.insert(format!("error_{name}"), Value::Object(detail));
    data
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
