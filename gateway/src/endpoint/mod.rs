//! One endpoint's request path, a phase a module, in the order a request
//! meets them: [`request`] (the client's request read, the endpoint's
//! request hooks), [`strategy`] (the backends called as the endpoint's
//! strategy says, each through [`backend`]: its hooks, the upstream,
//! [`decode`], [`shaping`]; then [`merge`]), [`respond`] (static data,
//! rendering, the endpoint's response hooks). Everything an endpoint needs
//! is prepared when it is built; a request only fills it in.

pub mod backend;
mod call_report;
pub mod decode;
pub mod feed;
pub mod flatmap;
pub mod go_client;
pub mod jwt_claims;
pub mod merge;
pub mod request;
pub mod respond;
pub mod sequence;
mod shadow;
pub mod shaping;
pub mod static_data;
pub mod strategy;
pub mod url_template;
pub mod xml;

#[cfg(test)]
mod tests;

use std::time::Duration;

use abi_stable::std_types::RString;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Body;
use sepia_plugin_api::{Hooks, RequestContext};

use self::{
    backend::{method_of, BackendCall},
    jwt_claims::ClaimParams,
    request::{Read, RequestPhase},
    respond::ResponsePhase,
    strategy::{Limits, Strategy},
};
use crate::{
    body::ResponseBody,
    client_address::ClientAddr,
    error::{ErrorStyle, ProxyError},
    identity::{Identity, VERSION_HEADER},
    modifiers::{chain::ModifierChain, hook_pool::HookPool},
    plugin_host::BoundModifier,
    upstream::Upstream,
};

/// What every endpoint of a service shares.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// `router.return_error_msg`: a `return_error_code` failure shows the
    /// backend's body.
    pub reveal_error_body: bool,
    /// The configuration's `version`: what KrakenD generation its backends'
    /// answers are read as.
    pub config_version: u64,
    /// `sepia.pass_backend_status`.
    pub pass_backend_status: bool,
    /// `disable_compression`: backends are not asked for gzip.
    pub disable_compression: bool,
    /// The `User-Agent` and `X-Krakend` the gateway sends.
    pub identity: Identity,
    /// How failures look (`sepia.json_errors`).
    pub errors: ErrorStyle,
    /// `sepia.pass_backend_errors`: a single backend's 4xx reaches the
    /// client as it came.
    pub pass_backend_errors: bool,
    /// The limits on client bodies, one budget for all endpoints.
    pub body_limits: crate::body_budget::BodyLimits,
    /// Requests are measured (`telemetry/opentelemetry`): answers name
    /// their endpoint's pattern.
    pub measure_requests: bool,
    /// The proxy and backend stages' metrics, with `telemetry/opentelemetry`.
    pub stages: Option<crate::telemetry::settings::StageSettings>,
    /// KrakenD's own stats, with `telemetry/metrics`.
    pub stats: Option<crate::telemetry::stats::settings::StatsSettings>,
    /// `sepia.append_forwarded_for`.
    pub append_forwarded_for: bool,
    /// The hosts of backends with `"sd": "dns"`.
    pub discovery: std::sync::Arc<crate::upstream::service_discovery::ServiceDiscovery>,
}

/// An endpoint, ready to serve.
pub struct Endpoint {
    /// The endpoint path as configured, for logs.
    pub path: String,
    /// The same, for the metrics' `http.route`, when requests are measured.
    pub route: Option<std::sync::Arc<crate::telemetry::metrics::RouteMeter>>,
    /// The proxy stage's metric attributes, when it is measured.
    proxy_stage: Option<Box<crate::telemetry::metrics::StageMeter>>,
    /// The shadow backends (`proxy.shadow`), when it has some.
    shadow: Option<Box<shadow::Shadow>>,
    /// The proxy stage's span, when it is traced.
    proxy_trace: Option<Box<crate::telemetry::traces::StageTrace>>,
    /// `telemetry/metrics`' router metrics of the endpoint.
    router_stats: Option<Box<crate::telemetry::stats::registry::EndpointStats>>,
    /// `telemetry/metrics`' `pipe` layer of the endpoint.
    pipe_stats: Option<Box<crate::telemetry::stats::registry::LayerStats>>,
    request: RequestPhase,
    strategy: Strategy,
    backends: Vec<BackendCall>,
    timeout: Duration,
    response: ResponsePhase,
    /// The endpoint's own modifiers (both phases hold them too).
    modifiers: ModifierChain,
    /// The endpoint or one of its backends has modifiers: requests carry a
    /// context.
    has_modifiers: bool,
    /// A version-1/2 file: lura 1.4 answers `{}` when every parallel
    /// backend failed.
    empty_when_all_fail: bool,
    /// `X-Krakend` of the endpoint's failures (its other answers get it in
    /// the response phase).
    version_header: Option<http::HeaderValue>,
    /// How its failures look.
    errors: ErrorStyle,
    /// `router.return_error_msg`.
    reveal_error: bool,
    /// Its answers are signed (`auth/signer`): krakend-jose's handler
    /// answers its failures.
    signs: bool,
}

impl Endpoint {
    /// Prepares `endpoint` with its modifiers and those of each backend (in
    /// backend order).
    pub fn new(
        endpoint: &sepia_config::Endpoint,
        modifiers: Vec<BoundModifier>,
        backend_modifiers: Vec<Vec<BoundModifier>>,
        hook_pool: &HookPool,
        service: &ServiceSettings,
    ) -> Self {
        // krakend-otel's skip_paths name endpoints neither measured nor
        // traced.
        let observed = service
            .stages
            .as_ref()
            .filter(|s| !s.skip_paths.contains(&endpoint.endpoint));
        // lura builds the endpoint from its answering backends, and the
        // shadow ones (`proxy.shadow`) as a proxy of their own.
        let (mut answering_modifiers, mut shadow_modifiers) = (Vec::new(), Vec::new());
        for (backend, modifiers) in endpoint.backends.iter().zip(
            backend_modifiers
                .into_iter()
                .chain(std::iter::repeat_with(Vec::new)),
        ) {
            match backend.shadow {
                Some(_) => shadow_modifiers.push(modifiers),
                None => answering_modifiers.push(modifiers),
            }
        }
        let part = |shadow: bool| sepia_config::Endpoint {
            backends: endpoint
                .backends
                .iter()
                .filter(|b| b.shadow.is_some() == shadow)
                .cloned()
                .collect(),
            ..endpoint.clone()
        };
        let calls = |endpoint: &sepia_config::Endpoint, modifiers: Vec<Vec<BoundModifier>>| {
            let claims = ClaimParams::of(endpoint, service.config_version);
            let calls: Vec<BackendCall> = endpoint
                .backends
                .iter()
                .zip(modifiers)
                .map(|(b, modifiers)| {
                    BackendCall::new(
                        endpoint, b, modifiers, hook_pool, service, observed, &claims,
                    )
                })
                .collect();
            (calls, claims)
        };
        let has_shadows = !shadow_modifiers.is_empty();
        let shadow = has_shadows.then(|| {
            let config = part(true);
            let timeout = config
                .backends
                .iter()
                .filter_map(|b| {
                    b.shadow
                        .as_ref()
                        .map(|s| s.timeout.unwrap_or(endpoint.timeout))
                })
                .max()
                .unwrap_or(endpoint.timeout);
            let (backends, _) = calls(&config, shadow_modifiers);
            let hooks = backends.iter().any(|b| !b.modifiers.is_empty());
            shadow::Shadow::new(
                Strategy::of(&config, hooks),
                backends,
                timeout,
                &endpoint.endpoint,
            )
        });
        let answering = if has_shadows {
            std::borrow::Cow::Owned(part(false))
        } else {
            std::borrow::Cow::Borrowed(endpoint)
        };
        let endpoint = answering.as_ref();
        let (backends, claims) = calls(endpoint, answering_modifiers);
        let route = crate::telemetry::metrics::route_of(&endpoint.endpoint);
        let modifiers = ModifierChain::new(modifiers, hook_pool);
        let has_modifiers = !modifiers.is_empty()
            || backends.iter().any(|b| !b.modifiers.is_empty())
            || shadow.as_ref().is_some_and(shadow::Shadow::has_modifiers);
        // The telemetry and the shadow are boxed: most endpoints have
        // none, and inline they were a third of an endpoint's size.
        Self {
            shadow: shadow.map(Box::new),
            path: endpoint.endpoint.clone(),
            proxy_stage: observed.filter(|s| s.proxy).map(|s| {
                crate::telemetry::metrics::StageMeter::new(
                    crate::telemetry::metrics::proxy_attributes(
                        &endpoint.endpoint,
                        &s.proxy_attributes,
                    ),
                )
                .into()
            }),
            proxy_trace: observed.filter(|s| s.proxy_traces).map(|s| {
                crate::telemetry::traces::StageTrace::proxy(
                    &endpoint.endpoint,
                    method_of(endpoint.method).as_str(),
                    &s.proxy_trace_attributes,
                    s.proxy_headers.as_ref(),
                )
                .into()
            }),
            router_stats: service.stats.as_ref().filter(|s| s.router).map(|_| {
                crate::telemetry::stats::registry::registry()
                    .endpoint(&route)
                    .into()
            }),
            pipe_stats: service.stats.as_ref().filter(|s| s.proxy).map(|_| {
                crate::telemetry::stats::registry::registry()
                    .layer("pipe", &route)
                    .into()
            }),
            route: service
                .measure_requests
                .then(|| std::sync::Arc::new(crate::telemetry::metrics::RouteMeter::new(&route))),
            request: RequestPhase::new(
                endpoint,
                modifiers.declaring(Hooks::REQUEST),
                claims,
                service.identity,
                service.body_limits.clone(),
                service.append_forwarded_for,
            ),
            strategy: Strategy::of(endpoint, has_modifiers),
            backends,
            timeout: endpoint.timeout,
            response: ResponsePhase::new(endpoint, modifiers.declaring(Hooks::RESPONSE), service),
            modifiers,
            has_modifiers,
            empty_when_all_fail: !sepia_plugin_api::is_krakend2(service.config_version),
            version_header: service.identity.version_header(),
            errors: service.errors,
            reveal_error: service.reveal_error_body,
            signs: endpoint.extra_config.get("auth/signer").is_some(),
        }
    }

    /// Every modifier chain of the endpoint: its own, then each backend's
    /// (the shadow ones' last).
    pub fn modifier_chains(&self) -> impl Iterator<Item = &ModifierChain> {
        std::iter::once(&self.modifiers)
            .chain(self.backends.iter().map(|b| &b.modifiers))
            .chain(self.shadow.iter().flat_map(|s| s.modifier_chains()))
    }

    /// Serves one request through `upstream`; every failure becomes its
    /// error response. `context` is the one the service-level hooks
    /// started, handed back as the endpoint's hooks left it; without one, a
    /// context is made only if the endpoint has hooks.
    pub async fn handle<B>(
        &self,
        request: Request<B>,
        params: Vec<String>,
        client: ClientAddr,
        context: Option<Box<RequestContext>>,
        upstream: &impl Upstream,
    ) -> (Response<ResponseBody>, Option<Box<RequestContext>>)
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let from_service = context.is_some();
        // Boxed, and only for requests that meet a hook: the context then
        // costs a plain request nothing, not even room in its future.
        let mut context = match context {
            None if self.has_modifiers => {
                Some(Box::new(crate::request_context::new(client, &request)))
            }
            given => given,
        };
        if let Some(context) = &mut context {
            context.endpoint = RString::from(self.path.as_str());
        }
        let stats_started = self.router_stats.as_ref().map(|stats| {
            stats.begin();
            std::time::Instant::now()
        });
        let response = match self
            .run(request, params, client, &mut context, upstream)
            .await
        {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(endpoint = %self.path, status = error.status().as_u16(), kind = ?error.kind(), error = %error, "request failed");
                let mut response =
                    error.into_endpoint_response(self.errors, self.reveal_error, self.signs);
                // lura's endpoint handler sets it before calling the proxy;
                // krakend-jose's signer handler, which replaces it, does not.
                if let (Some(version), false) = (&self.version_header, self.signs) {
                    response
                        .headers_mut()
                        .insert(VERSION_HEADER, version.clone());
                }
                response
            }
        };
        if let (Some(stats), Some(started)) = (&self.router_stats, stats_started) {
            // gin's writer size: -1 until a byte of body is written.
            let size = crate::body::known_size(&response)
                .filter(|size| *size > 0)
                .and_then(|size| i64::try_from(size).ok())
                .unwrap_or(-1);
            stats.end(response.status().as_u16(), size, started.elapsed());
        }
        (response, context.filter(|_| from_service))
    }

    /// The phases in order: request, backends under the endpoint timeout,
    /// response.
    async fn run<B>(
        &self,
        request: Request<B>,
        params: Vec<String>,
        client: ClientAddr,
        context: &mut Option<Box<RequestContext>>,
        upstream: &impl Upstream,
    ) -> Result<Response<ResponseBody>, ProxyError>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let mut outgoing = match self
            .request
            .read(&parts, body, params, client, context)
            .await?
        {
            Read::Forward(outgoing) => outgoing,
            Read::Answered(response) => return Ok(response),
        };
        if let Some(shadow) = &self.shadow {
            shadow.send(&outgoing, upstream);
        }
        let limits = Limits {
            deadline: tokio::time::Instant::now() + self.timeout,
            timeout: self.timeout,
            empty_when_all_fail: self.empty_when_all_fail,
        };
        let backends = strategy::collect(
            self.strategy,
            &self.backends,
            &outgoing,
            upstream,
            &self.path,
            limits,
        );
        let proxy_started =
            (self.proxy_stage.is_some() || self.pipe_stats.is_some()).then(std::time::Instant::now);
        let proxy_span = self
            .proxy_trace
            .as_ref()
            .and_then(|t| t.start(&outgoing.headers));
        // Either, not an async block: the block would keep `backends`
        // beside the timer that holds it, twice the future's size.
        let backends = if self.strategy.bounds_itself() {
            futures_util::future::Either::Left(backends)
        } else {
            futures_util::future::Either::Right(strategy::bounded(limits, backends))
        };
        let collected = {
            let backends = std::pin::pin!(backends);
            crate::telemetry::traces::within(backends, proxy_span.clone()).await
        };
        if let Some(span) = &proxy_span {
            crate::telemetry::traces::end_stage(
                span,
                crate::telemetry::traces::StageEnd {
                    status: match &collected {
                        Ok(c) => c.status().as_u16(),
                        Err(_) => 500,
                    },
                    error: collected
                        .as_ref()
                        .err()
                        .map(|e| e as &dyn std::fmt::Display),
                    canceled: false,
                    complete: collected.as_ref().is_ok_and(|c| c.is_complete()),
                },
            );
        }
        if let (Some(stats), Some(started)) = (&self.pipe_stats, proxy_started) {
            stats.record(
                collected.as_ref().is_ok_and(|c| c.is_complete()),
                collected.is_err(),
                started.elapsed(),
            );
        }
        if let (Some(meter), Some(started)) = (&self.proxy_stage, proxy_started) {
            crate::telemetry::metrics::record_stage(
                crate::telemetry::metrics::Stage::Proxy,
                meter,
                started.elapsed(),
                crate::telemetry::metrics::StageOutcome {
                    error: collected.as_ref().map_or(true, |c| c.errored()),
                    canceled: false,
                    complete: collected.as_ref().is_ok_and(|c| c.is_complete()),
                },
            );
        }
        *context = outgoing.context.take();
        // `negotiate` answers in the format the client's Accept asks for.
        let accept = parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        self.response.respond(collected, context, accept).await
    }
}
