//! One backend of an endpoint: its request built from what the endpoint
//! forwards, sent through its own modifiers and the worker's upstream, its
//! answer sorted by status and decoded. Calls go one way: `fetch_*` →
//! `exchange` → `send`.

use std::{
    borrow::Cow,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use abi_stable::std_types::{RString, RVec};
use bytes::Bytes;
use futures_util::future::select_ok;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use sepia_config::{BackendEncoding, BackendErrors, Shaping};
use sepia_plugin_api::{
    BodyLayout, Hooks, Request as PluginRequest, RequestContext, Response as PluginResponse,
};
use serde_json::{Map, Value};

use super::{
    call_report::{conclude, CallReport},
    decode::{decode, encoding_name, safejson_scalar_key},
    go_client,
    jwt_claims::ClaimParams,
    request::{plugin_params, Outgoing},
    sequence::ResponseRef,
    shaping,
    url_template::UrlTemplate,
};
use crate::{
    error::ProxyError,
    forwarding::{HeaderFilter, QueryFilter},
    modifiers::{
        chain::{ModifierChain, RequestOutcome},
        convert::{from_plugin_headers, plugin_reply, to_plugin_headers},
        hook_pool::HookPool,
    },
    plugin_host::BoundModifier,
    upstream::{service_discovery::SrvHosts, Upstream, UpstreamBody},
};

/// Largest backend body the gateway buffers to decode.
const MAX_BACKEND_BODY: usize = 64 * 1024 * 1024;

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

/// Where a backend's hosts come from.
enum Hosts {
    /// The `host` list.
    Listed(Vec<String>),
    /// `"sd": "dns"`.
    Discovered(Arc<SrvHosts>),
}

/// One backend of an endpoint, ready to call.
pub struct BackendCall {
    hosts: Hosts,
    next_host: AtomicUsize,
    template: UrlTemplate,
    /// The `url_pattern` as configured, for lura's error text.
    pattern: String,
    /// `sepia.pass_backend_errors`: a 4xx reaches the client as it came.
    pass_client_errors: bool,
    method: Method,
    encoding: BackendEncoding,
    is_collection: bool,
    /// Its reshaping, unless it keeps the answer as it is (most do: the
    /// settings inline were a sixth of a backend's size).
    shaping: Option<Box<Shaping>>,
    /// How its failures reach the client (`backend/http`).
    errors: BackendErrors,
    /// `router.return_error_msg`: a `return_error_code` failure shows the
    /// backend's body.
    reveal_error_body: bool,
    /// Where `safejson` puts a scalar answer.
    safejson_scalar: &'static str,
    /// Identical calls raced, the first success winning (the endpoint's
    /// `concurrent_calls`).
    concurrent_calls: u32,
    /// `backend/http/client.send_body_on_redirect`.
    send_body_on_redirect: bool,
    /// `disable_compression`: no `Accept-Encoding: gzip` of the gateway's
    /// own, so nothing to inflate.
    disable_compression: bool,
    /// Earlier responses its `url_pattern` uses (sequential endpoints).
    pub(super) references: Vec<ResponseRef>,
    /// The endpoint's `sequential_propagated_params`, which it receives as
    /// parameters after those of its references.
    pub(super) propagated: Vec<sepia_config::PropagatedParam>,
    /// The names of its URL values: the endpoint's parameters, then its
    /// references.
    param_names: Vec<String>,
    /// The query parameters it receives: the endpoint's, narrowed by its
    /// own `input_query_strings`.
    query: QueryFilter,
    /// Its own `input_headers`, narrowing the endpoint's.
    headers: Option<HeaderFilter>,
    /// Modifiers configured in this backend's `extra_config`.
    pub(super) modifiers: ModifierChain,
    /// Those of them with a request hook.
    request_hooks: ModifierChain,
    /// Those with a response hook.
    response_hooks: ModifierChain,
    /// Those told how each call went.
    result_hooks: ModifierChain,
    /// The backend stage's meter, when it is measured.
    stage: Option<Box<crate::telemetry::metrics::StageMeter>>,
    /// The backend stage's span, when it is traced.
    trace: Option<Box<crate::telemetry::traces::StageTrace>>,
    /// The span of each HTTP exchange, when those are traced.
    client_trace: Option<Box<crate::telemetry::traces::ClientTrace>>,
    /// The backend client's `http.client.*` metrics, when measured.
    client_meter: Option<Box<crate::telemetry::client_metrics::ClientMeter>>,
    /// `telemetry/metrics`' backend layer.
    stats: Option<Box<crate::telemetry::stats::registry::LayerStats>>,
}

/// A backend's answer, read whole.
pub struct BackendReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that answered (after redirects), for lura's error text.
    pub url: String,
}

/// One backend's answer, sorted.
pub enum BackendAnswer {
    /// Success (200 or 201), decoded; or a failure reported as data
    /// (`return_error_details`), which makes the response incomplete.
    Data {
        status: StatusCode,
        data: Map<String, Value>,
        complete: bool,
        /// A `no-op` backend's body, kept whole beside its empty data as
        /// lura keeps it (a later sequential backend may take it as
        /// `respN`).
        raw: Option<Bytes>,
    },
    /// A 4xx answer, kept whole (`sepia.pass_backend_errors`).
    Refused {
        url: String,
        method: String,
        pattern: String,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
}

impl BackendAnswer {
    /// Whether lura counts this answer as the backend failing: a status
    /// reported as data (`return_error_details`) or a 4xx passed on.
    pub fn is_failure(&self) -> bool {
        match self {
            BackendAnswer::Data { complete, .. } => !complete,
            BackendAnswer::Refused { .. } => true,
        }
    }

    /// The data, or the refusal as a failure (when several backends are
    /// merged, a refusal is one backend failing).
    pub fn into_success(self) -> Result<(StatusCode, Map<String, Value>, bool), ProxyError> {
        match self {
            BackendAnswer::Data {
                status,
                data,
                complete,
                ..
            } => Ok((status, data, complete)),
            BackendAnswer::Refused {
                url,
                status,
                method,
                pattern,
                ..
            } => Err(ProxyError::BackendStatus {
                url,
                status,
                method,
                pattern,
            }),
        }
    }
}

impl BackendCall {
    /// Prepares backend `backend` of `endpoint`.
    pub fn new(
        endpoint: &sepia_config::Endpoint,
        backend: &sepia_config::Backend,
        modifiers: Vec<BoundModifier>,
        hook_pool: &HookPool,
        service: &super::ServiceSettings,
        observed: Option<&crate::telemetry::settings::StageSettings>,
        claims: &ClaimParams,
    ) -> Self {
        let endpoint_query = QueryFilter::new(&endpoint.input_query_strings);
        let query = match &backend.input_query_strings {
            Some(names) => endpoint_query.intersect(&QueryFilter::new(names)),
            None => endpoint_query,
        };
        let references = ResponseRef::of_pattern(&backend.url_pattern, &endpoint.params);
        // The order of the values: the endpoint's, its claims', then the
        // earlier responses'.
        let mut param_names = endpoint.params.clone();
        param_names.extend(claims.names().iter().cloned());
        param_names.extend(references.iter().map(|r| r.name.clone()));
        let propagated = if endpoint.sequential {
            endpoint.propagated_params.clone()
        } else {
            Vec::new()
        };
        param_names.extend(propagated.iter().map(|p| p.name.clone()));
        let modifiers = ModifierChain::new(modifiers, hook_pool);
        // The stage's span and, with the stage marked, its exchanges'.
        let stage_trace = observed
            .filter(|s| s.backend_traces || s.backend_round_trip)
            .map(|s| {
                crate::telemetry::traces::StageTrace::backend(
                    method_of(backend.method).as_str(),
                    &backend.url_pattern,
                    &endpoint.endpoint,
                    method_of(endpoint.method).as_str(),
                    &s.backend_trace_attributes,
                    s.backend_headers.as_ref(),
                )
            });
        let metric_attributes = |s: &crate::telemetry::settings::StageSettings| {
            crate::telemetry::metrics::backend_attributes(
                method_of(backend.method).as_str(),
                &backend.url_pattern,
                &endpoint.endpoint,
                method_of(endpoint.method).as_str(),
                &s.backend_attributes,
            )
        };
        Self {
            request_hooks: modifiers.declaring(Hooks::REQUEST),
            response_hooks: modifiers.declaring(Hooks::RESPONSE),
            result_hooks: modifiers.declaring(Hooks::BACKEND_RESULT),
            stage: observed
                .filter(|s| s.backend)
                .map(|s| crate::telemetry::metrics::StageMeter::new(metric_attributes(s)))
                .map(Box::new),
            stats: service.stats.as_ref().filter(|s| s.backend).map(|_| {
                crate::telemetry::stats::registry::registry()
                    .layer(
                        "backend",
                        &crate::telemetry::stats::registry::lura_url_pattern(&backend.url_pattern),
                    )
                    .into()
            }),
            client_meter: observed
                .filter(|s| s.client_round_trip || s.client_read_payload)
                .map(|s| {
                    crate::telemetry::client_metrics::ClientMeter::new(
                        metric_attributes(s),
                        &crate::telemetry::metrics::lowercase_params(
                            &crate::telemetry::metrics::route_of(&backend.url_pattern),
                        ),
                        s.client_round_trip,
                        s.client_read_payload,
                        s.client_detailed,
                        endpoint.timeout,
                    )
                    .into()
                }),
            client_trace: stage_trace.as_ref().and_then(|t| {
                observed
                    .filter(|s| s.backend_round_trip)
                    .map(|s| t.client(s.backend_read_payload, s.backend_detailed).into())
            }),
            trace: stage_trace
                .filter(|_| observed.is_some_and(|s| s.backend_traces))
                .map(Box::new),
            modifiers,
            hosts: match service.discovery.hosts_of(&backend.json_path) {
                Some(found) => Hosts::Discovered(found),
                None => Hosts::Listed(backend.hosts.clone()),
            },
            next_host: AtomicUsize::new(0),
            template: UrlTemplate::parse(&backend.url_pattern, &param_names),
            pattern: backend.url_pattern.clone(),
            pass_client_errors: service.pass_backend_errors,
            method: method_of(backend.method),
            encoding: backend.encoding,
            is_collection: backend.is_collection,
            shaping: backend
                .shaping
                .reshapes()
                .then(|| Box::new(backend.shaping.clone())),
            errors: backend.errors.clone(),
            reveal_error_body: service.reveal_error_body,
            safejson_scalar: safejson_scalar_key(service.config_version),
            concurrent_calls: endpoint.concurrent_calls,
            send_body_on_redirect: backend.send_body_on_redirect,
            disable_compression: service.disable_compression,
            references,
            propagated,
            param_names,
            query,
            headers: backend.input_headers.as_deref().map(HeaderFilter::new),
        }
    }

    /// Appends the next host, round-robin (a relaxed counter is enough
    /// for balancing).
    fn push_host(&self, url: &mut String) -> Result<(), ProxyError> {
        let n = self.next_host.fetch_add(1, Ordering::Relaxed);
        match &self.hosts {
            Hosts::Listed(hosts) => {
                url.push_str(hosts.get(n % hosts.len().max(1)).map_or("", String::as_str));
                Ok(())
            }
            Hosts::Discovered(found) if found.push_host(n, url) => Ok(()),
            Hosts::Discovered(found) => Err(ProxyError::NoHosts {
                name: found.name().to_owned(),
            }),
        }
    }

    /// The backend's first host (or SRV name) and pattern, for messages.
    pub fn label(&self) -> String {
        let mut url = String::new();
        let first = match &self.hosts {
            Hosts::Listed(hosts) => hosts.first().map(String::as_str).unwrap_or(""),
            Hosts::Discovered(found) => found.name(),
        };
        self.template.render(first, &[] as &[&str], &mut url);
        url
    }

    /// Appends the backend's path and query for this request to `out`.
    fn append_target(&self, outgoing: &Outgoing<'_>, out: &mut String) {
        self.template.render("", &outgoing.params, out);
        if !self.query.is_empty() {
            self.query
                .append(&outgoing.query, out, self.template.has_query());
        }
    }

    /// The headers this backend receives: the endpoint's as they are, or
    /// narrowed by the backend's own `input_headers`.
    fn headers_for<'o>(&self, outgoing: &'o Outgoing<'_>) -> Cow<'o, HeaderMap> {
        match &self.headers {
            Some(filter) => Cow::Owned(filter.narrow(&outgoing.headers)),
            None => Cow::Borrowed(&outgoing.headers),
        }
    }

    /// Sends the request for `outgoing`; the response as it comes, and the
    /// URL that gave it (after redirects).
    pub async fn send(
        &self,
        upstream: &impl Upstream,
        outgoing: &Outgoing<'_>,
    ) -> Result<(Response<UpstreamBody>, String), ProxyError> {
        let mut url = String::with_capacity(96);
        self.push_host(&mut url)?;
        self.append_target(outgoing, &mut url);
        let headers = self.headers_for(outgoing);
        self.dispatch(
            upstream,
            self.method.clone(),
            url,
            &headers,
            outgoing.body.clone(),
        )
        .await
    }

    /// Sends one call as lura's Go client makes it: gzip asked for and
    /// undone, redirects followed. Each hop's headers are `headers` with
    /// what the redirects so far change: one copy a hop, and only one when
    /// nothing redirects.
    async fn dispatch(
        &self,
        upstream: &impl Upstream,
        method: Method,
        url: String,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<(Response<UpstreamBody>, String), ProxyError> {
        let mut body = if method == Method::GET || method == Method::DELETE {
            Bytes::new()
        } else {
            body
        };
        let mut method = method;
        let mut url = url;
        let mut hops = go_client::Hops::default();
        for _ in 0..=go_client::MAX_REDIRECTS {
            let mut hop_headers = headers.clone();
            let gzip = !self.disable_compression && go_client::ask_for_gzip(&mut hop_headers);
            hops.apply(&mut hop_headers);
            go_client::frame_body(&method, body.len(), &mut hop_headers);
            let uri = url.parse().map_err(|cause| ProxyError::BackendUrl {
                url: url.clone(),
                cause,
            })?;
            // Go's request holds neither its framing nor the gzip its
            // transport asks for in its headers.
            let added = |name: &header::HeaderName| {
                name == header::CONTENT_LENGTH
                    || name == header::TRANSFER_ENCODING
                    || (gzip && name == header::ACCEPT_ENCODING)
            };
            let span = self
                .client_trace
                .as_ref()
                .and_then(|t| t.start(&method, &url, &uri, &mut hop_headers, &added, body.len()));
            let measured = self
                .client_meter
                .as_ref()
                .and_then(|m| m.exchange(&method, &uri, body.len()));
            let mut request = Request::new(Full::new(body.clone()));
            *request.method_mut() = method.clone();
            *request.headers_mut() = hop_headers;
            *request.uri_mut() = uri;
            // detailed_connection: what the connection took, told apart.
            let timed = span.as_ref().is_some_and(|s| s.detailed())
                || measured.as_ref().is_some_and(|m| m.detailed());
            let (response, connection) = if timed {
                crate::upstream::connection_timings::timed(upstream.send(request)).await
            } else {
                (upstream.send(request).await, Default::default())
            };
            let read_trace = if span.is_some() || measured.is_some() {
                observe_exchange(&response, span, measured, connection)
            } else {
                None
            };
            let mut response = response.map_err(|cause| ProxyError::BackendUnreachable {
                url: url.clone(),
                cause,
            })?;
            // The stream lura hands Go's client cannot be sent again unless
            // `send_body_on_redirect` buffers it.
            let replays_body = body.is_empty() || self.send_body_on_redirect;
            match go_client::redirect(
                response.status(),
                response.headers(),
                &url,
                &method,
                replays_body,
            ) {
                None => {
                    if read_trace.is_some() || self.client_meter.is_some() {
                        response.extensions_mut().insert(BodyWatch(read_trace));
                    }
                    return Ok((self.inflated(response, gzip, &url).await?, url));
                }
                Some(Err(reason)) => return Err(ProxyError::BackendRedirect { url, reason }),
                Some(Ok(hop)) => hops.follow(hop, &mut method, &mut url, &mut body),
            }
        }
        Err(ProxyError::BackendRedirect {
            url,
            reason: format!("stopped after {} redirects", go_client::MAX_REDIRECTS),
        })
    }

    /// The answer with gzip undone, when the gateway asked for it.
    async fn inflated(
        &self,
        response: Response<UpstreamBody>,
        gzip: bool,
        url: &str,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        if !gzip || !go_client::is_gzip(response.headers()) {
            return Ok(response);
        }
        let (mut parts, body) = response.into_parts();
        // Go's transport undoes the gzip it asked for under the reader
        // krakend-otel measures: one read, of the plain body.
        let watch = self.watch_read(&mut parts.extensions);
        let plain = self.read_body(body).await.and_then(|packed| {
            go_client::gunzip(&packed, MAX_BACKEND_BODY).map_err(|cause| {
                ProxyError::BackendBodyRead {
                    url: url.to_owned(),
                    cause: Box::new(cause),
                }
            })
        });
        watch.finish(&plain);
        let plain = plain?;
        go_client::forget_encoding(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            UpstreamBody::Local(Full::new(plain)),
        ))
    }

    /// Calls the backend and reads its answer whole, through the backend's
    /// own hooks when it has some: its request hooks see the request to
    /// this backend (and may answer it themselves), its response hooks the
    /// raw answer.
    /// `context` is the backend's copy of the request's context when the
    /// caller keeps one (for the result hooks); else one is made here.
    pub async fn exchange(
        &self,
        upstream: &impl Upstream,
        outgoing: &Outgoing<'_>,
        context: Option<&mut RequestContext>,
    ) -> Result<BackendReply, ProxyError> {
        if self.request_hooks.is_empty() && self.response_hooks.is_empty() {
            let (response, url) = self.send(upstream, outgoing).await?;
            return self.read_reply(response, url).await;
        }
        let mut own = None;
        let context = match context {
            Some(context) => context,
            None => own.insert(outgoing.context.as_deref().cloned().unwrap_or_default()),
        };
        let reply = if self.request_hooks.is_empty() {
            let (response, url) = self.send(upstream, outgoing).await?;
            self.read_reply(response, url).await?
        } else {
            self.through_request_hooks(upstream, outgoing, context)
                .await?
        };
        if self.response_hooks.is_empty() {
            return Ok(reply);
        }
        let plugin = self.response_hooks.last_plugin();
        let seen = PluginResponse {
            status: reply.status.as_u16(),
            headers: to_plugin_headers(&reply.headers),
            body: RVec::from(reply.body.to_vec()),
            complete: true,
        };
        let seen = self
            .response_hooks
            .on_response(seen, context, BodyLayout::unknown())
            .await?;
        let (status, headers, body) = plugin_reply(seen, &plugin)?;
        Ok(BackendReply {
            status,
            headers,
            body,
            url: reply.url,
        })
    }

    /// The call as the request hooks leave it, or the answer one gave.
    async fn through_request_hooks(
        &self,
        upstream: &impl Upstream,
        outgoing: &Outgoing<'_>,
        context: &mut RequestContext,
    ) -> Result<BackendReply, ProxyError> {
        let plugin = self.request_hooks.last_plugin();
        let mut target = String::with_capacity(64);
        self.append_target(outgoing, &mut target);
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let request = PluginRequest {
            method: RString::from(self.method.as_str()),
            path: RString::from(path),
            query: RString::from(query),
            params: plugin_params(&self.param_names, &outgoing.params),
            headers: to_plugin_headers(&self.headers_for(outgoing)),
            body: RVec::from(outgoing.body.to_vec()),
        };
        match self.request_hooks.on_request(request, context).await? {
            RequestOutcome::Respond(plugin, response) => {
                let (status, headers, body) = plugin_reply(response, &plugin)?;
                Ok(BackendReply {
                    status,
                    headers,
                    body,
                    url: self.label(),
                })
            }
            RequestOutcome::Continue(request) => {
                let mut url = String::with_capacity(96);
                self.push_host(&mut url)?;
                url.push_str(&request.path);
                if !request.query.is_empty() {
                    url.push('?');
                    url.push_str(&request.query);
                }
                let headers = from_plugin_headers(&request.headers, "request", &plugin)?;
                let body = Bytes::from(request.body.into_vec());
                // A hook may change the method, as lura's backend proxy
                // sends the request's.
                let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
                    ProxyError::Plugin {
                        plugin: plugin.to_string(),
                        error: sepia_plugin_api::PluginError::internal(format!(
                            "a backend request hook set the method to {:?}, which is not an \
                             HTTP method",
                            request.method.as_str()
                        )),
                    }
                })?;
                let (response, url) = self.dispatch(upstream, method, url, &headers, body).await?;
                self.read_reply(response, url).await
            }
        }
    }

    /// An answer read whole.
    async fn read_reply(
        &self,
        response: Response<UpstreamBody>,
        url: String,
    ) -> Result<BackendReply, ProxyError> {
        let (mut parts, body) = response.into_parts();
        let watch = self.watch_read(&mut parts.extensions);
        let body = self.read_body(body).await;
        watch.finish(&body);
        let body = body?;
        Ok(BackendReply {
            status: parts.status,
            headers: parts.headers,
            body,
            url,
        })
    }

    /// [`BackendCall::exchange`] watched by a [`CallReport`] (when anything
    /// watches: result hooks, the stage's metrics or span), which the
    /// caller concludes with what it makes of the reply.
    async fn watched_exchange(
        &self,
        upstream: &impl Upstream,
        outgoing: &Outgoing<'_>,
    ) -> (Option<CallReport<'_>>, Result<BackendReply, ProxyError>) {
        let mut report = CallReport::start(
            &self.result_hooks,
            outgoing.context.as_deref(),
            self.stage.as_deref(),
            self.trace.as_deref(),
            &outgoing.headers,
            self.stats.as_deref(),
        );
        let span = report.as_ref().and_then(CallReport::span);
        let exchange = self.exchange(upstream, outgoing, report.as_mut().map(CallReport::context));
        let reply = {
            let exchange = std::pin::pin!(exchange);
            crate::telemetry::traces::within(exchange, span).await
        };
        CallReport::answered(&mut report, &reply, |r| r.status.as_u16());
        (report, reply)
    }

    /// [`BackendCall::exchange`] for a `no-op` endpoint, whose every answer
    /// counts as a success, told to the result hooks.
    pub async fn pass_through(
        &self,
        upstream: &impl Upstream,
        outgoing: &Outgoing<'_>,
    ) -> Result<BackendReply, ProxyError> {
        let (report, reply) = self.watched_exchange(upstream, outgoing).await;
        conclude(report, &reply, |_| false);
        reply
    }

    async fn read_body(&self, body: UpstreamBody) -> Result<Bytes, ProxyError> {
        Limited::new(body, MAX_BACKEND_BODY)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|cause| ProxyError::BackendBodyRead {
                url: self.label(),
                cause,
            })
    }

    /// Starts watching the read of an answer's body, once: the exchange
    /// left a [`BodyWatch`] in the answer's extensions, which this takes.
    fn watch_read(&self, extensions: &mut http::Extensions) -> BodyRead<'_> {
        let Some(BodyWatch(trace)) = extensions.remove::<BodyWatch>() else {
            return BodyRead::default();
        };
        BodyRead {
            measured: self.client_meter.as_ref().and_then(|m| m.read()),
            span: trace.and_then(crate::telemetry::traces::ReadTrace::start),
        }
    }

    /// Sorts an answer by its status: `Ok(reply)` to decode (200 or 201:
    /// KrakenD counts only these as success), or what the backend's error
    /// strategy makes of any other status.
    pub fn accept(
        &self,
        reply: BackendReply,
    ) -> Result<Result<BackendReply, BackendAnswer>, ProxyError> {
        // A no-op backend takes lura's no-op status handler: every status
        // is an answer.
        if reply.status == StatusCode::OK
            || reply.status == StatusCode::CREATED
            || self.encoding == BackendEncoding::NoOp
        {
            return Ok(Ok(reply));
        }
        match &self.errors {
            BackendErrors::Default => {}
            BackendErrors::Details(name) => {
                return Ok(Err(BackendAnswer::Data {
                    status: StatusCode::OK,
                    data: error_details(name, &reply),
                    complete: false,
                    raw: None,
                }))
            }
            BackendErrors::StatusCode => {
                let content_type = reply.headers.get(header::CONTENT_TYPE).cloned();
                return Err(ProxyError::BackendCode {
                    url: self.label(),
                    status: reply.status,
                    body: self.reveal_error_body.then_some((reply.body, content_type)),
                });
            }
        }
        if reply.status.is_client_error() && self.pass_client_errors {
            return Ok(Err(BackendAnswer::Refused {
                url: reply.url,
                method: self.method.to_string(),
                pattern: self.pattern.clone(),
                status: reply.status,
                headers: reply.headers,
                body: reply.body,
            }));
        }
        Err(ProxyError::BackendStatus {
            url: reply.url,
            status: reply.status,
            method: self.method.to_string(),
            pattern: self.pattern.clone(),
        })
    }

    /// The answer, decoded and shaped; with `concurrent_calls` several
    /// identical calls race and the first success wins (a 4xx then counts
    /// as failure).
    pub async fn fetch_data(
        &self,
        upstream: &impl Upstream,
        outgoing: &Outgoing<'_>,
    ) -> Result<BackendAnswer, ProxyError> {
        if self.concurrent_calls <= 1 {
            return self.fetch_once(upstream, outgoing).await;
        }
        let attempts = (0..self.concurrent_calls).map(|_| {
            Box::pin(async {
                let answer = self.fetch_once(upstream, outgoing).await?;
                answer.into_success()
            })
        });
        let ((status, data, complete), _) = select_ok(attempts).await?;
        Ok(BackendAnswer::Data {
            status,
            data,
            complete,
            raw: None,
        })
    }

    async fn fetch_once(
        &self,
        upstream: &impl Upstream,
        outgoing: &Outgoing<'_>,
    ) -> Result<BackendAnswer, ProxyError> {
        let (report, reply) = self.watched_exchange(upstream, outgoing).await;
        let answer = reply.and_then(|reply| self.decoded(reply));
        conclude(report, &answer, BackendAnswer::is_failure);
        answer
    }

    /// An answer sorted by its status, then decoded and shaped.
    fn decoded(&self, reply: BackendReply) -> Result<BackendAnswer, ProxyError> {
        let reply = match self.accept(reply)? {
            Ok(reply) => reply,
            Err(answer) => return Ok(answer),
        };
        let data = decode(
            self.encoding,
            self.is_collection,
            self.safejson_scalar,
            &reply.body,
        )
        .map_err(|e| self.body_error(e.0))?;
        Ok(BackendAnswer::Data {
            status: reply.status,
            data: match &self.shaping {
                Some(shaping) => shaping::apply(shaping, data),
                None => data,
            },
            complete: true,
            raw: (self.encoding == BackendEncoding::NoOp).then_some(reply.body),
        })
    }

    /// A body to re-encode, with whether it is complete; a failure reported
    /// as data (`return_error_details`) comes encoded.
    pub async fn fetch_body(
        &self,
        upstream: &impl Upstream,
        outgoing: &Outgoing<'_>,
    ) -> Result<(Bytes, bool), ProxyError> {
        let (report, reply) = self.watched_exchange(upstream, outgoing).await;
        let body = reply.and_then(|reply| match self.accept(reply)? {
            Ok(reply) => Ok((reply.body, true)),
            Err(answer) => {
                let (_, data, complete) = answer.into_success()?;
                Ok((
                    Bytes::from(sepia_json::to_vec(&Value::Object(data))),
                    complete,
                ))
            }
        });
        conclude(report, &body, |(_, complete)| !complete);
        body
    }

    /// The answer re-encoded in Go's encoding as it is read (no tree, no
    /// member list), with its status; or the answer its status makes it.
    pub async fn fetch_encoded(
        &self,
        upstream: &impl Upstream,
        outgoing: &Outgoing<'_>,
    ) -> Result<Result<(StatusCode, Vec<u8>), BackendAnswer>, ProxyError> {
        let (report, reply) = self.watched_exchange(upstream, outgoing).await;
        let encoded = reply.and_then(|reply| {
            let reply = match self.accept(reply)? {
                Ok(reply) => reply,
                Err(answer) => return Ok(Err(answer)),
            };
            let mut body = Vec::with_capacity(reply.body.len());
            match sepia_json::write_canonical(&mut body, &reply.body) {
                Ok(sepia_json::Kind::Object) => Ok(Ok((reply.status, body))),
                outcome => Err(self.not_an_object(outcome)),
            }
        });
        conclude(report, &encoded, |answer| match answer {
            Ok(_) => false,
            Err(answer) => answer.is_failure(),
        });
        encoded
    }

    /// Re-encodes a JSON object into `out` in Go's encoding; its members, or
    /// why the body is not one, naming the backend.
    pub fn canonical_object<'b>(
        &self,
        body: &'b [u8],
        out: &mut Vec<u8>,
    ) -> Result<Vec<sepia_json::Member<'b>>, ProxyError> {
        match sepia_json::write_canonical_object(out, body) {
            Ok(Ok(members)) => Ok(members),
            Ok(Err(kind)) => Err(self.not_an_object(Ok(kind))),
            Err(error) => Err(self.not_an_object(Err(error))),
        }
    }

    /// A JSON body that is not an object: valid JSON of another kind, or not
    /// JSON at all.
    fn not_an_object(
        &self,
        outcome: Result<sepia_json::Kind, sepia_json::JsonError>,
    ) -> ProxyError {
        let reason = match outcome {
            Ok(kind) => format!("expected a JSON object, found {}", kind.name()),
            Err(error) => error.to_string(),
        };
        self.body_error(reason)
    }

    /// A body that is not what its `encoding` declares.
    fn body_error(&self, reason: String) -> ProxyError {
        ProxyError::BackendBody {
            url: self.label(),
            encoding: encoding_name(self.encoding),
            reason,
        }
    }
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

/// What watches the read of the last answer's body, left in its
/// extensions: the read is measured (the client's `read_payload` metrics)
/// and traced (under this, when its span is on) once, as krakend-otel's
/// reader wrapper around the answer's body does.
#[derive(Clone)]
struct BodyWatch(Option<crate::telemetry::traces::ReadTrace>);

/// One body read being measured and traced.
#[derive(Default)]
struct BodyRead<'a> {
    measured: Option<crate::telemetry::client_metrics::Read<'a>>,
    span: Option<crate::telemetry::traces::ReadSpan>,
}

impl BodyRead<'_> {
    fn finish(self, read: &Result<Bytes, ProxyError>) {
        let size = read
            .as_ref()
            .map_or(0, |body| u64::try_from(body.len()).unwrap_or(u64::MAX));
        if let Some(measured) = self.measured {
            measured.finish(size, read.is_err());
        }
        if let Some(span) = self.span {
            span.end(
                size,
                read.as_ref().err().map(|e| e as &dyn std::fmt::Display),
            );
        }
    }
}

/// Ends an exchange's span and metrics with how it went; what is left is
/// the trace its body's read goes under, when that is traced.
fn observe_exchange(
    response: &Result<Response<UpstreamBody>, crate::upstream::SendError>,
    span: Option<crate::telemetry::traces::ClientSpan>,
    measured: Option<crate::telemetry::client_metrics::Exchange<'_>>,
    connection: crate::upstream::connection_timings::ConnectionTimings,
) -> Option<crate::telemetry::traces::ReadTrace> {
    use crate::telemetry::client_metrics::ExchangeEnd;
    let first_byte = std::time::SystemTime::now();
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let length = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok());
            if let Some(measured) = measured {
                measured.finish(ExchangeEnd::Answered { status, length }, connection);
            }
            span.and_then(|span| {
                span.answered(status, length, response.headers(), connection, first_byte)
            })
        }
        Err(cause) => {
            if let Some(span) = span {
                span.failed(cause);
            }
            if let Some(measured) = measured {
                measured.finish(ExchangeEnd::Failed, connection);
            }
            None
        }
    }
}
