//! Traces as krakend-otel makes them, exported over OTLP: a server span
//! per request (named by its path, `krakend.stage=global`), a child for
//! the endpoint's proxy stage (named by its route), one per backend (named
//! by its URL pattern) and, under that, a client span per HTTP exchange
//! (`krakend.stage=backend-request`), which is the one whose `traceparent`
//! the backend gets. Sepia adds a span per plugin hook
//! (`krakend.stage=plugin`).
//!
//! The request's context travels as OpenTelemetry's current context: the
//! connection wraps the request's future in it, each stage wraps the
//! futures it awaits in its own span's, so that no layer passes spans to
//! another by hand.

use std::{
    fmt::Display,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, OnceLock},
    time::Instant,
};

use futures_util::future::Either;
use http::{header::HeaderName, HeaderMap, Request};
use opentelemetry::{
    propagation::{TextMapCompositePropagator, TextMapPropagator as _},
    trace::{SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _},
    Context, KeyValue,
};
use opentelemetry_sdk::{
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::{Sampler, SdkTracer, SdkTracerProvider},
};

use super::{
    metrics::{lowercase_params, route_of, shared, status_route},
    otlp::{span_exporter, ExportClient, OtlpError},
    settings::{HeaderReport, OtelSettings},
};
use crate::upstream::connection_timings::ConnectionTimings;

/// krakend-otel's tracer name (the spans' instrumentation scope).
const SCOPE: &str = "io.krakend.krakend-otel";

/// The process's tracer, once traces are exported.
pub struct GatewayTracer {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// W3C trace context and baggage, krakend-otel's default propagators.
    propagator: TextMapCompositePropagator,
    /// Not `layers.global.disable_propagation`.
    propagation: bool,
    /// The server span's fixed attributes; `None` with
    /// `layers.global.disable_traces`.
    global: Option<Vec<KeyValue>>,
    /// `layers.global.report_headers`.
    global_headers: Option<HeaderReport>,
}

static TRACER: OnceLock<GatewayTracer> = OnceLock::new();

/// Sets up the tracer when some OTLP exporter takes spans (once; later
/// calls keep the first). Call it on the gateway's runtime.
pub fn install(
    settings: &OtelSettings,
    client: &ExportClient,
) -> Result<Option<&'static GatewayTracer>, OtlpError> {
    if let Some(installed) = TRACER.get() {
        return Ok(Some(installed));
    }
    if !settings.traces_exported() {
        return Ok(None);
    }
    let mut builder = SdkTracerProvider::builder().with_resource(super::resource(settings));
    for exporter in settings.otlp.iter().filter(|e| e.traces) {
        builder = builder.with_batch_exporter(span_exporter(exporter, client)?);
    }
    // krakend-otel samples every trace unless the rate is strictly between
    // 0 and 1; then it follows the parent's decision, else the trace id's.
    let rate = settings.traces.sample_rate;
    let sampler = if rate > 0.0 && rate < 1.0 {
        Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(rate)))
    } else {
        Sampler::AlwaysOn
    };
    let provider = builder.with_sampler(sampler).build();
    let tracer = provider.tracer(SCOPE);
    let global = settings.traces.global.then(|| {
        let mut fixed = vec![KeyValue::new("krakend.stage", "global")];
        fixed.extend(statics(&settings.traces.global_attributes));
        fixed
    });
    Ok(Some(TRACER.get_or_init(|| GatewayTracer {
        provider,
        tracer,
        propagator: TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]),
        propagation: settings.traces.propagation,
        global,
        global_headers: settings.traces.global_headers.clone(),
    })))
}

/// The tracer, once installed.
pub fn installed() -> Option<&'static GatewayTracer> {
    TRACER.get()
}

/// Exports the spans still buffered; at shutdown. Blocks.
pub fn flush() {
    if let Some(tracer) = installed() {
        if let Err(error) = tracer.provider.force_flush() {
            tracing::warn!(%error, "not every span could be exported at shutdown");
        }
    }
}

/// krakend-otel leaves out attributes with an empty key or value.
fn statics(attributes: &[(String, String)]) -> impl Iterator<Item = KeyValue> + '_ {
    attributes
        .iter()
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .map(|(k, v)| shared(k, v))
}

/// A request's `http.request.body.size` as Go's `ContentLength` gives it:
/// its `Content-Length`, 0 for a request without a body, unknown (`None`)
/// for a chunked one.
fn request_body_size(headers: &HeaderMap) -> Option<i64> {
    match headers.get(http::header::CONTENT_LENGTH) {
        Some(length) => length.to_str().ok()?.parse().ok(),
        None if headers.contains_key(http::header::TRANSFER_ENCODING) => None,
        None => Some(0),
    }
}

/// `user_agent.original`, when the request names one.
fn user_agent(headers: &HeaderMap) -> Option<KeyValue> {
    headers
        .get(http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .filter(|a| !a.is_empty())
        .map(|agent| KeyValue::new("user_agent.original", agent.to_owned()))
}

/// krakend-otel's `report_headers`: each of `headers` as
/// `http.{direction}.header.{name}` with all its values, but those the
/// report skips and those `left_out` says Go's request would not hold.
fn header_attributes(
    report: &HeaderReport,
    direction: &str,
    headers: &HeaderMap,
    left_out: impl Fn(&HeaderName) -> bool,
    out: &mut Vec<KeyValue>,
) {
    for name in headers.keys() {
        if left_out(name) || !report.records(name.as_str()) {
            continue;
        }
        let values = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
            .collect();
        out.push(KeyValue::new(
            format!("http.{direction}.header.{name}"),
            opentelemetry::Value::Array(opentelemetry::Array::String(values)),
        ));
    }
}

/// Go keeps a request's `Host` out of its headers (it is `Request.Host`).
fn is_host(name: &HeaderName) -> bool {
    name == http::header::HOST
}

/// One request's trace: the context its stages run in.
pub struct RequestTrace {
    context: Context,
    /// The context holds the request's own span (it may hold only a
    /// client's remote parent).
    has_span: bool,
    /// `layers.global.report_headers`.
    headers: Option<&'static HeaderReport>,
}

impl GatewayTracer {
    /// Starts a request's trace: its parent from the client's
    /// `traceparent` (unless propagation is off), and its server span.
    pub fn begin<B>(&'static self, request: &Request<B>, remote: SocketAddr) -> RequestTrace {
        let parent = if self.propagation {
            self.propagator
                .extract(&opentelemetry_http::HeaderExtractor(request.headers()))
        } else {
            Context::new()
        };
        let Some(fixed) = &self.global else {
            return RequestTrace {
                context: parent,
                has_span: false,
                headers: None,
            };
        };
        let headers = request.headers();
        let mut attributes = Vec::with_capacity(fixed.len() + 6);
        attributes.push(KeyValue::new("url.full", request.uri().to_string()));
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()))
            .unwrap_or("");
        attributes.push(KeyValue::new("server.address", host.to_owned()));
        attributes.push(KeyValue::new(
            "http.request.method",
            request.method().as_str().to_owned(),
        ));
        if let Some(size) = request_body_size(headers) {
            attributes.push(KeyValue::new("http.request.body.size", size));
        }
        attributes.extend(user_agent(headers));
        attributes.push(KeyValue::new("client.address", remote.to_string()));
        attributes.extend(fixed.iter().cloned());
        if let Some(report) = &self.global_headers {
            header_attributes(report, "request", headers, is_host, &mut attributes);
        }
        let span = self
            .tracer
            .span_builder(request.uri().path().to_owned())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        RequestTrace {
            context: parent.with_span(span),
            has_span: true,
            headers: self.global_headers.as_ref(),
        }
    }
}

impl RequestTrace {
    /// The context the request is served in.
    pub fn context(&self) -> Context {
        self.context.clone()
    }

    /// Ends the server span: `route` is the endpoint's (`None` when no
    /// endpoint answered: krakend-otel then names the status); `headers`
    /// the answer's.
    pub fn end(self, route: Option<Arc<str>>, status: u16, size: u64, headers: &HeaderMap) {
        if !self.has_span {
            return;
        }
        let span = self.context.span();
        let route: opentelemetry::Value = match route {
            Some(route) => route.into(),
            None => status_route(status).into(),
        };
        span.set_attributes([
            KeyValue::new("http.route", route),
            KeyValue::new("http.response.status_code", i64::from(status)),
            KeyValue::new(
                "http.response.body.size",
                i64::try_from(size).unwrap_or(i64::MAX),
            ),
        ]);
        if let Some(report) = self.headers {
            let mut reported = Vec::new();
            header_attributes(report, "response", headers, |_| false, &mut reported);
            span.set_attributes(reported);
        }
        span.set_status(Status::Ok);
        span.end();
    }
}

/// A stage's span, as configured once per endpoint or backend.
#[derive(Debug, Clone)]
pub struct StageTrace {
    name: String,
    attributes: Vec<KeyValue>,
    /// The layer's `report_headers`.
    headers: Option<Arc<HeaderReport>>,
}

/// How a stage ended, for its span.
pub struct StageEnd<'a> {
    /// The answer's status; 500 on an error, as krakend-otel records it.
    pub status: u16,
    pub error: Option<&'a dyn Display>,
    pub canceled: bool,
    pub complete: bool,
}

impl StageTrace {
    /// An endpoint's proxy stage: named by its route (`/items/:id`).
    pub fn proxy(
        endpoint: &str,
        method: &str,
        statics_: &[(String, String)],
        headers: Option<&HeaderReport>,
    ) -> Self {
        let route = route_of(endpoint);
        let mut attributes = vec![
            shared("http.request.method", method),
            shared("http.route", &route),
        ];
        attributes.extend(statics(statics_));
        attributes.push(KeyValue::new("krakend.stage", "proxy"));
        Self {
            name: route,
            attributes,
            headers: headers.cloned().map(Arc::new),
        }
    }

    /// A backend's stage: named by its normalised URL pattern
    /// (`/users/:id`).
    pub fn backend(
        method: &str,
        url_pattern: &str,
        endpoint: &str,
        endpoint_method: &str,
        statics_: &[(String, String)],
        headers: Option<&HeaderReport>,
    ) -> Self {
        let pattern = lowercase_params(&route_of(url_pattern));
        let mut attributes = vec![
            shared("http.request.method", method),
            shared("http.route", &pattern),
            shared("krakend.endpoint.route", &route_of(endpoint)),
            shared("krakend.endpoint.method", endpoint_method),
        ];
        attributes.extend(statics(statics_));
        attributes.push(KeyValue::new("krakend.stage", "backend"));
        Self {
            name: pattern,
            attributes,
            headers: headers.cloned().map(Arc::new),
        }
    }

    /// The same fixed attributes for the backend's client spans
    /// (`krakend.stage=backend-request`); `read_payload`: each answer's
    /// body read has a span of its own; `detailed`: the span holds its
    /// connection's durations.
    pub fn client(&self, read_payload: bool, detailed: bool) -> ClientTrace {
        let mut attributes = self.attributes.clone();
        if let Some(stage) = attributes
            .iter_mut()
            .find(|kv| kv.key.as_str() == "krakend.stage")
        {
            *stage = KeyValue::new("krakend.stage", "backend-request");
        }
        ClientTrace {
            stage: StageTrace {
                name: self.name.clone(),
                attributes,
                headers: self.headers.clone(),
            },
            read_payload,
            detailed,
        }
    }

    /// Starts the stage's span under the current context; `None` when
    /// nothing is traced. `headers` are the request's as the stage gets
    /// it (those `input_headers` lets through).
    pub fn start(&self, headers: &HeaderMap) -> Option<Context> {
        let tracer = installed()?;
        let parent = Context::current();
        let mut attributes = self.attributes.clone();
        if let Some(report) = &self.headers {
            header_attributes(report, "request", headers, is_host, &mut attributes);
        }
        let span = tracer
            .tracer
            .span_builder(self.name.clone())
            .with_attributes(attributes)
            .start_with_context(&tracer.tracer, &parent);
        Some(parent.with_span(span))
    }
}

/// `future` run inside `context`, when there is one.
///
/// The future is taken pinned where it lives, so the wrapper holds a
/// pointer and not a copy of a large future (the copies were 5% of a
/// traced request's CPU). And it is awaited once whichever the case:
/// awaiting it in two arms made rustc keep the pinned future apart from
/// every other state of its caller, adding their sizes.
pub fn within<F: Future + ?Sized>(
    future: Pin<&mut F>,
    context: Option<Context>,
) -> impl Future<Output = F::Output> + '_ {
    match context {
        Some(context) => Either::Left(opentelemetry::trace::FutureExt::with_context(
            future, context,
        )),
        None => Either::Right(future),
    }
}

/// Ends a stage's span.
pub fn end_stage(context: &Context, end: StageEnd<'_>) {
    let span = context.span();
    if !span.is_recording() {
        return;
    }
    if end.canceled {
        span.set_attribute(KeyValue::new("canceled", true));
    } else if let Some(error) = end.error {
        span.set_attribute(KeyValue::new("error", error.to_string()));
    }
    span.set_attributes([
        KeyValue::new("http.response.status_code", i64::from(end.status)),
        KeyValue::new("complete", end.complete),
    ]);
    span.end();
}

/// A backend's client spans, one per HTTP exchange (each redirect too).
#[derive(Debug, Clone)]
pub struct ClientTrace {
    stage: StageTrace,
    /// `read_payload`.
    read_payload: bool,
    /// `detailed_connection`.
    detailed: bool,
}

/// One exchange's span.
pub struct ClientSpan {
    context: Context,
    sent: Instant,
    /// `layers.backend.traces.report_headers`.
    headers: Option<Arc<HeaderReport>>,
    /// The read span's attributes, when the body's reading is traced.
    read: Option<Vec<KeyValue>>,
    /// `detailed_connection`.
    detailed: bool,
}

impl ClientTrace {
    /// Starts the span of one exchange (to `url`, parsed as `uri`) under
    /// the current context and, when
    /// it records, writes its `traceparent` into `headers` (krakend-otel
    /// propagates only from a recording span). `added` tells the headers that
    /// Sepia writes where Go's transport would, which Go's request does not
    /// hold when krakend-otel reports its headers.
    pub fn start(
        &self,
        method: &http::Method,
        url: &str,
        uri: &http::Uri,
        headers: &mut HeaderMap,
        added: &dyn Fn(&HeaderName) -> bool,
        body_size: usize,
    ) -> Option<ClientSpan> {
        let tracer = installed()?;
        let parent = Context::current();
        let mut attributes = self.stage.attributes.clone();
        attributes.push(KeyValue::new("url.full", url.to_owned()));
        let host = uri.authority().map_or("", |a| a.as_str());
        attributes.push(KeyValue::new("server.address", host.to_owned()));
        attributes.push(KeyValue::new(
            "http.request.method",
            method.as_str().to_owned(),
        ));
        attributes.push(KeyValue::new(
            "http.request.body.size",
            i64::try_from(body_size).unwrap_or(i64::MAX),
        ));
        attributes.extend(user_agent(headers));
        if let Some(report) = &self.stage.headers {
            let left_out = |name: &HeaderName| is_host(name) || added(name);
            header_attributes(report, "request", headers, left_out, &mut attributes);
        }
        let span = tracer
            .tracer
            .span_builder(self.stage.name.clone())
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&tracer.tracer, &parent);
        let context = parent.with_span(span);
        if !context.span().is_recording() {
            return None;
        }
        tracer
            .propagator
            .inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
        Some(ClientSpan {
            context,
            sent: Instant::now(),
            headers: self.stage.headers.clone(),
            read: self.read_payload.then(|| self.stage.attributes.clone()),
            detailed: self.detailed,
        })
    }
}

impl ClientSpan {
    /// Whether its connection's durations are recorded.
    pub fn detailed(&self) -> bool {
        self.detailed
    }

    /// The backend answered with `status` and `headers` (its first byte at
    /// `first_byte`, its connection taking `connection`); `length` is its
    /// `Content-Length` (Go's -1 when unknown). The span ends; what is
    /// left is the trace of its body's reading, when that is traced.
    pub fn answered(
        self,
        status: u16,
        length: Option<u64>,
        headers: &HeaderMap,
        connection: ConnectionTimings,
        first_byte: std::time::SystemTime,
    ) -> Option<ReadTrace> {
        let span = self.context.span();
        span.set_attributes([
            KeyValue::new("http.response.status_code", i64::from(status)),
            KeyValue::new(
                "http.response.body.size",
                length.and_then(|l| i64::try_from(l).ok()).unwrap_or(-1),
            ),
            KeyValue::new("response-duration", self.sent.elapsed().as_secs_f64()),
        ]);
        if let Some(report) = &self.headers {
            let mut reported = Vec::new();
            header_attributes(report, "response", headers, |_| false, &mut reported);
            span.set_attributes(reported);
        }
        if self.detailed {
            span.set_attributes([
                KeyValue::new("get-conn-duration", connection.get_conn.as_secs_f64()),
                KeyValue::new("dns-duration", connection.dns.as_secs_f64()),
                KeyValue::new("tls-duration", connection.tls.as_secs_f64()),
            ]);
            span.add_event_with_timestamp("first-byte-time", first_byte, Vec::new());
        }
        span.set_status(Status::Ok);
        span.end();
        let attributes = self.read?;
        Some(ReadTrace {
            parent: self.context.clone(),
            attributes,
        })
    }

    /// The exchange failed.
    pub fn failed(self, error: &dyn Display) {
        let span = self.context.span();
        record_error(&span, error);
        span.end();
    }
}

/// An error as Go's `span.RecordError` and `SetStatus(codes.Error)`
/// record it: an `exception` event and the error status, both with its
/// message.
fn record_error(span: &opentelemetry::trace::SpanRef<'_>, error: &dyn Display) {
    let message = error.to_string();
    span.add_event(
        "exception",
        vec![KeyValue::new("exception.message", message.clone())],
    );
    span.set_status(Status::error(message));
}

/// What an answer's body read is traced under: its exchange's span, as
/// krakend-otel's reader wrapper takes the request's context, which holds
/// the client span.
#[derive(Clone)]
pub struct ReadTrace {
    parent: Context,
    attributes: Vec<KeyValue>,
}

/// krakend-otel's span of an answer's body being read.
const READ_SPAN: &str = "http.client.response.read.tracker";

impl ReadTrace {
    /// Starts the read's span.
    pub fn start(self) -> Option<ReadSpan> {
        let tracer = installed()?;
        let span = tracer
            .tracer
            .span_builder(READ_SPAN)
            .with_attributes(self.attributes)
            .start_with_context(&tracer.tracer, &self.parent);
        Some(ReadSpan {
            context: self.parent.with_span(span),
            started: Instant::now(),
        })
    }
}

/// The span of one body being read.
pub struct ReadSpan {
    context: Context,
    started: Instant,
}

impl ReadSpan {
    /// The body was read whole, `size` bytes, or its reading failed with
    /// `error`: the span records the size and the time it took
    /// (`http.client.response.read.size`, `.time`), as krakend-otel's.
    pub fn end(self, size: u64, error: Option<&dyn Display>) {
        let span = self.context.span();
        match error {
            Some(error) => record_error(&span, error),
            None => span.set_status(Status::Ok),
        }
        span.set_attributes([
            KeyValue::new(
                "http.client.response.read.size",
                i64::try_from(size).unwrap_or(i64::MAX),
            ),
            KeyValue::new(
                "http.client.response.read.time",
                self.started.elapsed().as_secs_f64(),
            ),
        ]);
        span.end();
    }
}

/// The span of one plugin hook, under `parent`: Sepia's addition.
pub struct HookSpan(Context);

impl HookSpan {
    /// Starts it; `hook` names the hook (`request`, `response`).
    pub fn start(parent: &Context, plugin: &str, hook: &'static str) -> Option<Self> {
        let tracer = installed()?;
        let span = tracer
            .tracer
            .span_builder(plugin.to_owned())
            .with_attributes([
                KeyValue::new("krakend.stage", "plugin"),
                KeyValue::new("sepia.plugin.hook", hook),
            ])
            .start_with_context(&tracer.tracer, parent);
        Some(Self(parent.with_span(span)))
    }

    /// Ends it, with the hook's error when it failed.
    pub fn end(self, error: Option<&dyn Display>) {
        let span = self.0.span();
        if let Some(error) = error {
            span.set_status(Status::error(error.to_string()));
        }
        span.end();
    }
}

/// The context a plugin chain's hooks run under, when traces are on.
pub fn current_for_hooks() -> Option<Context> {
    installed().map(|_| Context::current())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_spans_are_named_and_marked_as_krakend_otel_does() {
        let proxy = StageTrace::proxy("/items/{id}", "GET", &[("a".into(), "b".into())], None);
        assert_eq!(proxy.name, "/items/:id");
        let keys: Vec<_> = proxy
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
            .collect();
        assert!(keys.contains(&("krakend.stage".into(), "proxy".into())));
        assert!(keys.contains(&("a".into(), "b".into())));
        let backend =
            StageTrace::backend("POST", "/users/{userId}", "/u/{userId}", "GET", &[], None);
        assert_eq!(backend.name, "/users/:userid");
        let client = backend.client(false, false);
        assert!(client
            .stage
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "krakend.stage"
                && kv.value.to_string() == "backend-request"));
        assert!(
            StageTrace::proxy("/x", "GET", &[("".into(), "v".into())], None)
                .attributes
                .iter()
                .all(|kv| !kv.key.as_str().is_empty())
        );
    }

    #[test]
    fn request_body_sizes_are_gos_content_length() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_body_size(&headers), Some(0));
        headers.insert(http::header::CONTENT_LENGTH, "12".parse().unwrap());
        assert_eq!(request_body_size(&headers), Some(12));
        headers.remove(http::header::CONTENT_LENGTH);
        headers.insert(http::header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        assert_eq!(request_body_size(&headers), None);
    }
}
