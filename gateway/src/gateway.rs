//! The request router of a running gateway: health, endpoints, 404 and 405.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use abi_stable::std_types::{RString, RVec};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use sepia_config::Config;
use sepia_plugin_api::{
    BodyLayout, Hooks, Request as PluginRequest, RequestContext, Response as PluginResponse,
};

use crate::{
    body::{full, json_response, ResponseBody, COMPLETED_HEADER},
    builtin::{self, BuiltinRoutes},
    client_address::ClientAddr,
    endpoint::{
        backend::method_of,
        url_template::{climbs_out, encoded_param},
        Endpoint, ServiceSettings,
    },
    error::{ErrorStyle, ProxyError},
    identity::Identity,
    jwks::{self, JwksPublisher},
    modifiers::{
        chain::{ModifierChain, RequestOutcome},
        convert::{from_plugin_headers, from_plugin_response, plugin_reply, to_plugin_headers},
        hook_pool::HookPool,
    },
    plugin_host::{PluginHost, PluginHostError},
    request_context,
    router::{Redirects, RouteMatch, Router},
    upstream::{service_discovery::ServiceDiscovery, Upstream},
};

/// What plugins are loaded (name, version, ABI, file, namespaces).
pub const PLUGINS_PATH: &str = "/__plugins";

/// Why a gateway could not be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Plugins refused their configuration.
    #[error(transparent)]
    Plugins(#[from] PluginHostError),
    /// The router settings are wrong.
    #[error("{0}")]
    Router(String),
    /// The JWK set publishing setting is wrong.
    #[error("{0}")]
    Jwks(String),
    /// The threads of blocking hooks could not start.
    #[error("cannot start the hook threads: {0}")]
    HookThreads(#[source] std::io::Error),
    /// `telemetry/logging` is wrong.
    #[error("{0}")]
    Logging(String),
    /// `telemetry/opentelemetry` is wrong.
    #[error("{0}")]
    Telemetry(String),
}

/// A configured gateway, ready to serve.
pub struct Gateway {
    router: Router<Endpoint>,
    jwks: Option<(String, JwksPublisher)>,
    /// `GET /__plugins`'s answer, when `sepia.plugins_endpoint` is on.
    plugins_body: Option<Bytes>,
    builtin: BuiltinRoutes,
    /// Service-level modifiers (top-level `extra_config`) with a request
    /// hook: before routing.
    service_requests: ModifierChain,
    /// Those with a response hook: on every answer.
    service_responses: ModifierChain,
    /// How the router's refusals look.
    errors: ErrorStyle,
    /// When the gateway was built: the monotonic origin of the health
    /// answer's `now`.
    started: Instant,
    /// `telemetry/logging`, for the process's log.
    log_settings: Option<crate::logging::LogSettings>,
    /// `X-Krakend`'s value on the gateway's own answers, when it has one.
    version_header: Option<HeaderValue>,
    /// `telemetry/opentelemetry`, for the process's metrics.
    otel_settings: Option<crate::telemetry::settings::OtelSettings>,
    /// `telemetry/metrics`, when the file has it.
    stats_settings: Option<crate::telemetry::stats::settings::StatsSettings>,
}

/// The endpoint that answered a request, by its route's meter (its
/// `http.route`), as a response extension for the metrics and traces.
#[derive(Debug, Clone)]
pub struct MatchedRoute(pub std::sync::Arc<crate::telemetry::metrics::RouteMeter>);

impl Gateway {
    /// Builds every endpoint's pipeline, with the modifiers its plugins
    /// give, and the service-level modifiers; what did not stop it, as
    /// warnings.
    pub fn build(
        config: &Config,
        plugins: &PluginHost,
        discovery: &Arc<ServiceDiscovery>,
    ) -> Result<(Self, Vec<String>), BuildError> {
        let (builtin, mut warnings) =
            BuiltinRoutes::from_config(config).map_err(BuildError::Router)?;
        let (otel_settings, otel_warnings) =
            crate::telemetry::settings::OtelSettings::from_config(config)
                .map_err(BuildError::Telemetry)?;
        warnings.extend(otel_warnings);
        let log_settings =
            crate::logging::LogSettings::from_config(config).map_err(BuildError::Logging)?;
        let stats_settings = crate::telemetry::stats::settings::StatsSettings::from_config(config)
            .map_err(BuildError::Telemetry)?;
        let mut router = Router::default();
        let mut chains = Vec::new();
        let hook_pool = HookPool::per_core().map_err(BuildError::HookThreads)?;
        let service = sepia_plugin_api::ServiceInfo {
            name: config.name.as_str().into(),
            port: config.port,
            config_version: config.version,
        };
        let service_chain = ModifierChain::new(
            plugins.service_modifiers(&config.extra_config, &service)?,
            &hook_pool,
        );
        let body_limits = crate::body_budget::BodyLimits::new(
            config.sepia.max_request_body.unwrap_or(32 << 20),
            config.sepia.request_bodies_in_flight.unwrap_or(256 << 20),
        );
        for endpoint in &config.endpoints {
            let info = sepia_plugin_api::EndpointInfo {
                endpoint: endpoint.endpoint.as_str().into(),
                method: endpoint.method.as_str().into(),
                scope: sepia_plugin_api::ModifierScope::Endpoint,
                backend_url_pattern: "".into(),
                timeout_ms: endpoint.timeout.as_millis().min(u64::MAX as u128) as u64,
            };
            let modifiers =
                plugins.modifiers_for(&endpoint.json_path, &endpoint.extra_config, &info)?;
            let mut backend_modifiers = Vec::with_capacity(endpoint.backends.len());
            for backend in &endpoint.backends {
                let info = sepia_plugin_api::EndpointInfo {
                    scope: sepia_plugin_api::ModifierScope::Backend,
                    backend_url_pattern: backend.url_pattern.as_str().into(),
                    ..info.clone()
                };
                backend_modifiers.push(plugins.modifiers_for(
                    &backend.json_path,
                    &backend.extra_config,
                    &info,
                )?);
            }
            let served = Endpoint::new(
                endpoint,
                modifiers,
                backend_modifiers,
                &hook_pool,
                &ServiceSettings {
                    reveal_error_body: builtin.return_error_msg,
                    config_version: config.version,
                    pass_backend_status: config.sepia.pass_backend_status,
                    disable_compression: config.disable_compression,
                    identity: Identity::new(
                        config.version,
                        config.sepia.own_identity,
                        builtin.hide_version,
                    ),
                    errors: ErrorStyle::of(config),
                    pass_backend_errors: config.sepia.pass_backend_errors,
                    body_limits: body_limits.clone(),
                    measure_requests: otel_settings
                        .as_ref()
                        .is_some_and(|o| o.global_metrics || o.traces.global),
                    stages: otel_settings.as_ref().map(|o| o.stages.clone()),
                    stats: stats_settings.clone(),
                    append_forwarded_for: config.sepia.append_forwarded_for,
                    discovery: discovery.clone(),
                },
            );
            chains.extend(served.modifier_chains().map(|chain| chain.shared()));
            router.insert(method_of(endpoint.method), &endpoint.endpoint, served);
        }
        router.shrink_to_fit();
        let jwks = Self::jwks_route(config, &router, chains)?;
        if let Some(health) = &builtin.health_path {
            if !matches!(
                router.find(&Method::GET, health, Redirects::NONE),
                RouteMatch::NotFound
            ) {
                return Err(BuildError::Router(format!(
                    "extra_config.router.health_path {health} is also an endpoint: choose another path"
                )));
            }
        }
        let version_header = Identity::new(
            config.version,
            config.sepia.own_identity,
            builtin.hide_version,
        )
        .version_header();
        Ok((
            Self {
                router,
                jwks,
                plugins_body: config
                    .sepia
                    .plugins_endpoint
                    .then(|| plugins_listing(plugins)),
                builtin,
                service_requests: service_chain.declaring(Hooks::REQUEST),
                service_responses: service_chain.declaring(Hooks::RESPONSE),
                errors: ErrorStyle::of(config),
                started: Instant::now(),
                log_settings,
                version_header,
                otel_settings,
                stats_settings,
            },
            warnings,
        ))
    }

    fn jwks_route(
        config: &Config,
        router: &Router<Endpoint>,
        chains: Vec<std::sync::Arc<[crate::plugin_host::BoundModifier]>>,
    ) -> Result<Option<(String, JwksPublisher)>, BuildError> {
        let settings = jwks::settings(&config.extra_config).map_err(BuildError::Jwks)?;
        let (Some(path), Some(publisher)) = (settings.path, JwksPublisher::new(chains)) else {
            return Ok(None);
        };
        if !matches!(
            router.find(&Method::GET, &path, Redirects::NONE),
            RouteMatch::NotFound
        ) {
            if settings.explicit {
                return Err(BuildError::Jwks(format!(
                    "extra_config.\"{}\".path {path} is also an endpoint: choose another path",
                    jwks::NAMESPACE
                )));
            }
            tracing::warn!(%path, "an endpoint serves the default JWK set path: the signers' public keys are not published (set extra_config.\"sepia/jwks\".path)");
            return Ok(None);
        }
        tracing::info!(%path, "publishing the signers' public keys");
        Ok(Some((path, publisher)))
    }

    /// Who `request` from `peer` comes from, by the router's rule.
    pub fn client_addr<B>(&self, request: &Request<B>, peer: std::net::IpAddr) -> ClientAddr {
        self.builtin.client_rule.resolve(peer, request.headers())
    }

    /// `telemetry/metrics`, when the file has it.
    pub fn stats_settings(&self) -> Option<&crate::telemetry::stats::settings::StatsSettings> {
        self.stats_settings.as_ref()
    }

    /// `telemetry/opentelemetry`, when the file has it.
    pub fn otel_settings(&self) -> Option<&crate::telemetry::settings::OtelSettings> {
        self.otel_settings.as_ref()
    }

    /// `telemetry/logging`, when the file has it.
    pub fn log_settings(&self) -> Option<&crate::logging::LogSettings> {
        self.log_settings.as_ref()
    }

    /// The access log's settings, unless `router.disable_access_log`.
    pub fn access_log(&self) -> Option<&crate::logging::access::AccessLog> {
        self.builtin.access_log.as_ref()
    }

    /// Serves one request, calling backends through `upstream` (the
    /// worker's own client): the service-level request hooks, routing, the
    /// service-level response hooks.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        client: ClientAddr,
        upstream: &impl Upstream,
    ) -> Response<ResponseBody> {
        if let Some(refusal) = crate::http_rules::refusal(&request) {
            return refusal;
        }
        if self.service_requests.is_empty() && self.service_responses.is_empty() {
            return self.route(request, client, None, upstream).await.0;
        }
        // Boxed: held inline, the service path's state made every request's
        // future larger, and futures are copied as they are built (perf:
        // ~1% of a plain request's CPU in those copies).
        Box::pin(self.around_service(request, client, upstream)).await
    }

    /// [`Gateway::handle`] with service-level modifiers.
    async fn around_service(
        &self,
        request: Request<Incoming>,
        client: ClientAddr,
        upstream: &impl Upstream,
    ) -> Response<ResponseBody> {
        let mut context = Box::new(request_context::new(client, &request));
        let response = if self.service_requests.is_empty() {
            let (response, back) =
                Box::pin(self.route(request, client, Some(context), upstream)).await;
            context = back.unwrap_or_default();
            response
        } else {
            let (mut parts, body) = request.into_parts();
            let seen = PluginRequest {
                method: RString::from(parts.method.as_str()),
                path: RString::from(parts.uri.path()),
                query: RString::from(parts.uri.query().unwrap_or("")),
                params: RVec::new(),
                headers: to_plugin_headers(&parts.headers),
                body: RVec::new(),
            };
            let plugin = self.service_requests.last_plugin();
            match self.service_requests.on_request(seen, &mut context).await {
                Ok(RequestOutcome::Respond(plugin, answer)) => {
                    // The hook answered: no later hook runs, as for endpoints.
                    return from_plugin_response(answer, &plugin)
                        .unwrap_or_else(ProxyError::into_response);
                }
                Ok(RequestOutcome::Continue(seen)) => {
                    match from_plugin_headers(&seen.headers, "request", &plugin) {
                        Ok(headers) => {
                            parts.headers = headers;
                            let request = Request::from_parts(parts, body);
                            let (response, back) =
                                Box::pin(self.route(request, client, Some(context), upstream))
                                    .await;
                            context = back.unwrap_or_default();
                            response
                        }
                        Err(error) => error.into_response(),
                    }
                }
                Err(error) => error.into_response(),
            }
        };
        if self.service_responses.is_empty() {
            return response;
        }
        self.service_response(response, context).await
    }

    /// The service-level response hooks on an answer: they see its status
    /// and headers (the body may be streaming, so they get none and cannot
    /// change it).
    async fn service_response(
        &self,
        response: Response<ResponseBody>,
        mut context: Box<RequestContext>,
    ) -> Response<ResponseBody> {
        let (mut parts, body) = response.into_parts();
        let complete = parts
            .headers
            .get(COMPLETED_HEADER)
            .is_none_or(|v| v.as_bytes() != b"false");
        let seen = PluginResponse {
            status: parts.status.as_u16(),
            headers: to_plugin_headers(&parts.headers),
            body: RVec::new(),
            complete,
        };
        let answer = match self
            .service_responses
            .on_response(seen, &mut context, BodyLayout::unknown())
            .await
        {
            Ok(answer) => answer,
            Err(error) => return error.into_response(),
        };
        let plugin = self.service_responses.last_plugin();
        match plugin_reply(answer, &plugin) {
            Ok((status, mut headers, _)) => {
                // The body is the gateway's: its framing headers stay.
                for name in [header::CONTENT_LENGTH, header::TRANSFER_ENCODING] {
                    headers.remove(&name);
                    if let Some(value) = parts.headers.get(&name) {
                        headers.insert(name, value.clone());
                    }
                }
                parts.status = status;
                parts.headers = headers;
                Response::from_parts(parts, body)
            }
            Err(error) => error.into_response(),
        }
    }

    /// The gateway's own routes, then the router; the context handed back
    /// when one was given.
    async fn route(
        &self,
        request: Request<Incoming>,
        client: ClientAddr,
        context: Option<Box<RequestContext>>,
        upstream: &impl Upstream,
    ) -> (Response<ResponseBody>, Option<Box<RequestContext>>) {
        let cleaned;
        let path = if self.builtin.remove_extra_slash {
            cleaned = crate::router::clean_path(request.uri().path());
            cleaned.as_str()
        } else {
            request.uri().path()
        };
        if self.builtin.debug && builtin::under(path, "/__debug") {
            let (parts, _) = request.into_parts();
            return (
                json_response(sepia_json::to_vec(&builtin::debug(&parts))),
                context,
            );
        }
        if self.builtin.echo && builtin::under(path, "/__echo") {
            let (parts, body) = request.into_parts();
            let echoed = Box::pin(builtin::echo(parts, body)).await;
            return (json_response(sepia_json::to_vec(&echoed)), context);
        }
        if request.method() == Method::GET {
            if self.builtin.health_path.as_deref() == Some(path) {
                return (health(self.builtin.krakend2, self.started), context);
            }
            if let Some(listing) = self.plugins_body.as_ref().filter(|_| path == PLUGINS_PATH) {
                return (json_response(listing.clone()), context);
            }
            if let Some((jwks_path, publisher)) = &self.jwks {
                if path == jwks_path {
                    return (publisher.respond(), context);
                }
            }
        }
        let refused = match self
            .router
            .find(request.method(), path, self.builtin.redirects)
        {
            RouteMatch::Redirect(to) => {
                let query = request.uri().query();
                return (redirect(request.method(), &to, query), context);
            }
            RouteMatch::Found(_, params) if params.iter().any(|p| climbs_out(p)) => {
                ProxyError::DotSegment {
                    path: path.to_owned(),
                }
            }
            RouteMatch::Found(_, params)
                if self.builtin.path_decoding_check
                    && params.iter().any(|p| encoded_param(p).is_some()) =>
            {
                ProxyError::EncodedParam {
                    reason: params
                        .iter()
                        .find_map(|p| encoded_param(p))
                        .unwrap_or_default(),
                }
            }
            RouteMatch::Found(endpoint, params) => {
                let params: Vec<String> = params.into_iter().map(str::to_owned).collect();
                // Boxed: the endpoint's future is ~4.7 KB, and held inline it
                // made this one 10 KB, copied whole as it was built and moved
                // into hyper's connection task (perf: 1-2% of a request's
                // CPU in those copies).
                let served = endpoint.handle(request, params, client, context, upstream);
                let (mut response, context) = Box::pin(served).await;
                if let Some(route) = &endpoint.route {
                    response
                        .extensions_mut()
                        .insert(MatchedRoute(route.clone()));
                }
                return (response, context);
            }
            // `router.auto_options`: lura 2's OPTIONS handler for each
            // endpoint path.
            RouteMatch::MethodNotAllowed(methods)
                if self.builtin.auto_options && request.method() == Method::OPTIONS =>
            {
                return (self.auto_options(&methods), context);
            }
            // `router.disable_handle_method_not_allowed`: such a request is
            // answered as an unknown path, as KrakenD does then.
            RouteMatch::MethodNotAllowed(_) if !self.builtin.method_not_allowed => {
                ProxyError::NotFound {
                    path: path.to_owned(),
                }
            }
            RouteMatch::MethodNotAllowed(methods) => ProxyError::MethodNotAllowed {
                method: request.method().to_string(),
                path: path.to_owned(),
                allow: methods
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            RouteMatch::NotFound => ProxyError::NotFound {
                path: path.to_owned(),
            },
        };
        (refused.into_response_as(self.errors), context)
    }
}

impl Gateway {
    /// lura 2's answer to an `OPTIONS` under `router.auto_options`: 200, no
    /// body, the path's methods sorted in `Allow`, and KrakenD's version
    /// header.
    fn auto_options(&self, methods: &[Method]) -> Response<ResponseBody> {
        let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
        names.sort_unstable();
        let mut response = Response::new(full(Bytes::new()));
        let headers = response.headers_mut();
        if let Ok(allow) = HeaderValue::from_str(&names.join(", ")) {
            headers.insert(header::ALLOW, allow);
        }
        if let Some(version) = &self.version_header {
            headers.insert(crate::identity::VERSION_HEADER, version.clone());
        }
        response
    }
}

/// gin's redirect to the path a near miss meant, as Go's `http.Redirect`
/// writes it: 301 for GET and 307 for other methods (which keeps the
/// method and body), the query kept, and for GET and HEAD a small HTML body.
fn redirect(method: &Method, path: &str, query: Option<&str>) -> Response<ResponseBody> {
    let mut location = path.to_owned();
    if let Some(query) = query {
        location.push('?');
        location.push_str(query);
    }
    let (status, text) = if *method == Method::GET {
        (StatusCode::MOVED_PERMANENTLY, "Moved Permanently")
    } else {
        (StatusCode::TEMPORARY_REDIRECT, "Temporary Redirect")
    };
    let body = if *method == Method::GET || *method == Method::HEAD {
        format!("<a href=\"{}\">{text}</a>.\n\n", html_escape(&location))
    } else {
        String::new()
    };
    let has_body = !body.is_empty();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    if has_body {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    response
}

/// Go's `html.EscapeString` set, as `http.Redirect` escapes a location.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn plugins_listing(plugins: &PluginHost) -> Bytes {
    let list: Vec<serde_json::Value> = plugins
        .plugins()
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.library.name,
                "version": p.library.version,
                "abi_version": p.library.abi_version,
                // The file's name only: where it lives is the operator's.
                "file": p.library.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                "namespaces": p.library.namespaces,
            })
        })
        .collect();
    Bytes::from(sepia_json::to_vec(&serde_json::json!({ "plugins": list })))
}

/// The health answer: lura 2's `{"agents": {}, "now": ..., "status": "ok"}`,
/// `now` as Go's `time.Now().String()`; lura 1.4's bare `{"status":"ok"}`.
fn health(krakend2: bool, started: Instant) -> Response<ResponseBody> {
    if !krakend2 {
        return json_response(Bytes::from_static(br#"{"status":"ok"}"#));
    }
    let body = format!(
        r#"{{"agents":{{}},"now":"{}","status":"ok"}}"#,
        go_time_string(SystemTime::now(), started.elapsed())
    );
    json_response(Bytes::from(body))
}

/// A UTC time as Go's `Time.String` writes a reading of `time.Now()`:
/// `2026-11-29 13:46:40.5 +0000 UTC m=+12.000000001`, the fraction without
/// trailing zeros, then the monotonic clock since the process started. Days
/// to civil date after Howard Hinnant's algorithm, so that the health answer
/// needs no date crate.
fn go_time_string(time: SystemTime, monotonic: Duration) -> String {
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let nanos = since_epoch.subsec_nanos();
    let fraction = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_owned()
    };
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}{fraction} +0000 UTC m=+{}.{:09}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        monotonic.as_secs(),
        monotonic.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_are_escaped_as_go_escapes_html() {
        assert_eq!(html_escape(r#"/a?x=<'&">"#), "/a?x=&lt;&#39;&amp;&#34;&gt;");
    }

    #[test]
    fn times_are_written_as_go_writes_time_now() {
        let zero = Duration::ZERO;
        assert_eq!(
            go_time_string(SystemTime::UNIX_EPOCH, zero),
            "1970-01-01 00:00:00 +0000 UTC m=+0.000000000"
        );
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_960_000, 500_000_000);
        assert_eq!(
            go_time_string(t, Duration::new(12, 1)),
            "2026-11-29 13:46:40.5 +0000 UTC m=+12.000000001"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::new(951_825_600, 123_456_789);
        assert_eq!(
            go_time_string(leap, zero),
            "2000-02-29 12:00:00.123456789 +0000 UTC m=+0.000000000"
        );
    }
}
