//! The global layer's metrics as krakend-otel records them (its
//! `http/server/metrics.go`, without a semantic convention set):
//! `http.server.duration` (seconds) and `http.server.response.size`
//! (bytes), histograms with krakend-otel's buckets, by method, scheme,
//! route and status, on OpenTelemetry's SDK read by its Prometheus
//! exporter.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use opentelemetry::{
    metrics::{BoundHistogram, Counter, Histogram, MeterProvider as _},
    KeyValue,
};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder as _, TextEncoder};

use super::{bound::Bindings, settings::OtelSettings};

/// krakend-otel's meter name (`otel_scope_name`).
const METER: &str = "io.krakend.krakend-otel";

/// krakend-otel's `TimeBucketsOpt`, seconds.
pub(super) const TIME_BUCKETS: &[f64] = &[
    0.010, 0.020, 0.050, 0.075, 0.100, 0.125, 0.150, 0.175, 0.200, 0.250, 0.300, 0.350, 0.500,
    0.750, 1.000, 1.500, 2.000, 3.500, 5.000, 10.000,
];

/// krakend-otel's `SizeBucketsOpt`, bytes.
pub(super) const SIZE_BUCKETS: &[f64] = &[
    128.0, 256.0, 512.0, 1024.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0, 262144.0, 524288.0,
    1048576.0, 4194304.0, 16777216.0, 67108864.0,
];

/// `builder` with `named`'s unit and description, those given: the
/// histogram and counter builders are different types alike in these.
macro_rules! described {
    ($builder:expr, $named:expr) => {{
        let mut builder = $builder;
        if !$named.unit.is_empty() {
            builder = builder.with_unit($named.unit);
        }
        if !$named.description.is_empty() {
            builder = builder.with_description($named.description);
        }
        builder
    }};
}

/// An instrument's name, unit and description (empty: none), as
/// krakend-otel makes it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Named {
    name: &'static str,
    unit: &'static str,
    description: &'static str,
}

impl Named {
    pub(super) const fn new(name: &'static str) -> Self {
        Self {
            name,
            unit: "",
            description: "",
        }
    }

    pub(super) const fn unit(self, unit: &'static str) -> Self {
        Self { unit, ..self }
    }

    pub(super) const fn described(self, description: &'static str) -> Self {
        Self {
            description,
            ..self
        }
    }

    /// A histogram of seconds, with krakend-otel's time buckets.
    pub(super) fn seconds(self, meter: &opentelemetry::metrics::Meter) -> Histogram<f64> {
        let builder = meter
            .f64_histogram(self.name)
            .with_boundaries(TIME_BUCKETS.to_vec());
        described!(builder, self).build()
    }

    /// A histogram of bytes, with krakend-otel's size buckets.
    pub(super) fn bytes(self, meter: &opentelemetry::metrics::Meter) -> Histogram<u64> {
        let builder = meter
            .u64_histogram(self.name)
            .with_boundaries(SIZE_BUCKETS.to_vec());
        described!(builder, self).build()
    }

    /// A counter of whole numbers.
    pub(super) fn counter(self, meter: &opentelemetry::metrics::Meter) -> Counter<u64> {
        described!(meter.u64_counter(self.name), self).build()
    }
}

/// The methods krakend-otel names; any other is `_OTHER`, so that a client
/// cannot grow the metrics' cardinality.
const METHODS: &[&str] = &[
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

/// An endpoint's `http.route`, as krakend-otel reports it: the path gin
/// routes, `{id}` written `:id` (`/items/:id`).
pub fn route_of(endpoint: &str) -> String {
    super::map_params(endpoint, |out, name| {
        out.push(':');
        out.push_str(name);
    })
}

/// An endpoint's `http.route` (see [`route_of`]) and the server
/// instruments bound to it, one set a method, scheme and status.
#[derive(Debug)]
pub struct RouteMeter {
    name: Arc<str>,
    bound: Bindings<ServerKey, ServerBound>,
}

impl RouteMeter {
    /// The meter of an endpoint whose route is `route` (see [`route_of`]).
    pub fn new(route: &str) -> Self {
        Self {
            name: Arc::from(route),
            // An endpoint answers with a handful of statuses; any beyond
            // are measured unbound.
            bound: Bindings::new(16),
        }
    }

    /// The route, as `http.route` says it.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }
}

/// The attributes of a served request that are not its route's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ServerKey {
    method: &'static str,
    over_tls: bool,
    status: u16,
}

struct ServerBound {
    duration: BoundHistogram<f64>,
    size: BoundHistogram<u64>,
}

/// krakend-otel's route of an answer no endpoint gave: `404 Not Found`.
pub fn status_route(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{status} {reason}")
}

/// The gateway's metrics and the registry their exporters read.
pub struct GatewayMetrics {
    // Kept: dropping the provider stops its readers.
    _provider: SdkMeterProvider,
    registry: prometheus::Registry,
    /// `None` with `layers.global.disable_metrics`.
    server: Option<ServerInstruments>,
    /// `krakend.proxy.duration`, unless `layers.proxy.disable_metrics`.
    proxy: Option<Histogram<f64>>,
    /// `krakend.backend.duration`, unless
    /// `layers.backend.metrics.disable_stage`.
    backend: Option<Histogram<f64>>,
    /// The backend client's `http.client.*`, unless neither `round_trip`
    /// nor `read_payload`.
    client: Option<super::client_metrics::ClientInstruments>,
}

/// A stage krakend-otel measures the duration of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// An endpoint's backends called and merged.
    Proxy,
    /// One backend call.
    Backend,
}

/// How a stage ended, as krakend-otel's `error`, `canceled` and
/// `complete` attributes say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageOutcome {
    pub error: bool,
    pub canceled: bool,
    pub complete: bool,
}

/// An attribute whose key and value are shared, so that the copy each
/// measurement takes is two reference counts, not two allocations.
pub(super) fn shared(key: &str, value: &str) -> KeyValue {
    KeyValue::new(
        opentelemetry::Key::from(Arc::<str>::from(key)),
        opentelemetry::Value::from(Arc::<str>::from(value)),
    )
}

/// A proxy stage's fixed attributes: krakend-otel's `http.route` of the
/// endpoint, then `layers.proxy.metrics_static_attributes`.
pub fn proxy_attributes(endpoint: &str, statics: &[(String, String)]) -> Vec<KeyValue> {
    let mut out = vec![shared("http.route", &route_of(endpoint))];
    out.extend(statics.iter().map(|(k, v)| shared(k, v)));
    out
}

/// A backend stage's fixed attributes: its method and normalised URL
/// pattern (`/users/:id`, parameter names lower case, as krakend-otel's
/// `NormalizeURLPattern` writes lura's `{{.Id}}`), its endpoint's route and
/// method, then `layers.backend.metrics.static_attributes`.
pub fn backend_attributes(
    method: &str,
    url_pattern: &str,
    endpoint: &str,
    endpoint_method: &str,
    statics: &[(String, String)],
) -> Vec<KeyValue> {
    let mut out = vec![
        shared("http.request.method", method),
        shared("http.route", &lowercase_params(&route_of(url_pattern))),
        shared("krakend.endpoint.route", &route_of(endpoint)),
        shared("krakend.endpoint.method", endpoint_method),
    ];
    out.extend(statics.iter().map(|(k, v)| shared(k, v)));
    out
}

/// `:Name` segments written `:name`, as `NormalizeURLPattern` lowers them.
pub fn lowercase_params(route: &str) -> String {
    route
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => format!(":{}", name.to_lowercase()),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One stage's fixed attributes (see [`proxy_attributes`] and
/// [`backend_attributes`]) and its duration histogram bound to them, one
/// for each outcome.
#[derive(Debug)]
pub struct StageMeter {
    fixed: Vec<KeyValue>,
    bound: Bindings<u8, BoundHistogram<f64>>,
}

impl StageMeter {
    pub fn new(fixed: Vec<KeyValue>) -> Self {
        Self {
            fixed,
            // Every outcome: three flags.
            bound: Bindings::new(8),
        }
    }
}

impl StageOutcome {
    fn key(self) -> u8 {
        u8::from(self.error) | u8::from(self.canceled) << 1 | u8::from(self.complete) << 2
    }
}

/// Records a stage's duration, once the metrics are installed.
pub fn record_stage(stage: Stage, meter: &StageMeter, latency: Duration, outcome: StageOutcome) {
    let Some(metrics) = installed() else { return };
    let histogram = match stage {
        Stage::Proxy => metrics.proxy.as_ref(),
        Stage::Backend => metrics.backend.as_ref(),
    };
    let Some(histogram) = histogram else { return };
    let key = outcome.key();
    let bound = meter.bound.get(
        |k| *k == key,
        || {
            let mut attributes = Vec::with_capacity(meter.fixed.len() + 3);
            attributes.extend(meter.fixed.iter().cloned());
            attributes.push(KeyValue::new("error", outcome.error));
            attributes.push(KeyValue::new("canceled", outcome.canceled));
            attributes.push(KeyValue::new("complete", outcome.complete));
            (key, histogram.bind(&attributes))
        },
    );
    bound.record(latency.as_secs_f64());
}

struct ServerInstruments {
    duration: Histogram<f64>,
    size: Histogram<u64>,
    fixed: Vec<KeyValue>,
    /// Bound for answers no endpoint gave, whose route is their status.
    unrouted: Bindings<ServerKey, ServerBound>,
}

static METRICS: OnceLock<GatewayMetrics> = OnceLock::new();

/// Why the metrics could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the Prometheus exporter: {0}")]
pub struct MetricsError(#[source] opentelemetry_sdk::error::OTelSdkError);

/// Builds the process's metrics for `settings` (once; later calls keep the
/// first).
/// `otlp` are the OTLP exporters' readers (see
/// [`super::otlp::metric_readers`]).
pub fn install(
    settings: &OtelSettings,
    otlp: Vec<super::otlp::MetricReader>,
) -> Result<&'static GatewayMetrics, MetricsError> {
    if let Some(installed) = METRICS.get() {
        return Ok(installed);
    }
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(MetricsError)?;
    let mut provider = SdkMeterProvider::builder()
        .with_reader(exporter)
        .with_resource(super::resource(settings));
    for reader in otlp {
        provider = provider.with_reader(reader);
    }
    let provider = provider.build();
    let meter = provider.meter(METER);
    let (duration, size) = if settings.semconv_1_27 {
        (
            Named::new("http.server.request.duration")
                .unit("s")
                .described("Duration of HTTP server requests."),
            Named::new("http.server.response.body.size")
                .unit("By")
                .described("Size of HTTP server response bodies."),
        )
    } else {
        (
            Named::new("http.server.duration"),
            Named::new("http.server.response.size"),
        )
    };
    let server = settings.global_metrics.then(|| ServerInstruments {
        duration: duration.seconds(&meter),
        size: size.bytes(&meter),
        fixed: settings
            .static_attributes
            .iter()
            .map(|(k, v)| shared(k, v))
            .collect(),
        unrouted: Bindings::new(32),
    });
    let stage = |on: bool, name: &'static str| on.then(|| Named::new(name).seconds(&meter));
    let proxy = stage(settings.stages.proxy, "krakend.proxy.duration");
    let backend = stage(settings.stages.backend, "krakend.backend.duration");
    let client =
        (settings.stages.client_round_trip || settings.stages.client_read_payload).then(|| {
            super::client_metrics::ClientInstruments::new(
                &meter,
                settings.semconv_1_27,
                settings.stages.client_detailed,
            )
        });
    Ok(METRICS.get_or_init(|| GatewayMetrics {
        _provider: provider,
        registry,
        server,
        proxy,
        backend,
        client,
    }))
}

/// The metrics, once installed.
pub fn installed() -> Option<&'static GatewayMetrics> {
    METRICS.get()
}

impl GatewayMetrics {
    /// The backend client's instruments, when they are measured.
    pub fn client(&self) -> Option<&super::client_metrics::ClientInstruments> {
        self.client.as_ref()
    }

    /// Whether requests are measured.
    pub fn measures_requests(&self) -> bool {
        self.server.is_some()
    }

    /// Records one served request; `route` is its endpoint's, `None` for
    /// an answer no endpoint gave, which krakend-otel names by its status
    /// (`404 Not Found`).
    pub fn record_request(
        &self,
        method: &http::Method,
        over_tls: bool,
        route: Option<&RouteMeter>,
        status: u16,
        latency: Duration,
        size: u64,
    ) {
        let Some(server) = &self.server else { return };
        let key = ServerKey {
            method: METHODS
                .iter()
                .find(|m| **m == method.as_str())
                .copied()
                .unwrap_or("_OTHER"),
            over_tls,
            status,
        };
        let attributes = || {
            let mut attributes = Vec::with_capacity(server.fixed.len() + 4);
            attributes.extend(server.fixed.iter().cloned());
            attributes.push(KeyValue::new("http.request.method", key.method));
            attributes.push(KeyValue::new(
                "url.scheme",
                if over_tls { "https" } else { "http" },
            ));
            let route: opentelemetry::Value = match route {
                Some(route) => route.name.clone().into(),
                None => status_route(status).into(),
            };
            attributes.push(KeyValue::new("http.route", route));
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            attributes
        };
        let bindings = route.map_or(&server.unrouted, |r| &r.bound);
        let bound = bindings.get(
            |k| *k == key,
            || {
                let attributes = attributes();
                let bound = ServerBound {
                    duration: server.duration.bind(&attributes),
                    size: server.size.bind(&attributes),
                };
                (key, bound)
            },
        );
        bound.duration.record(latency.as_secs_f64());
        bound.size.record(size);
    }

    /// The metrics in Prometheus's text format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_exported_under_krakend_otels_names() {
        let text = serde_json::json!({"version": 3, "endpoints": [], "extra_config": {
            crate::telemetry::settings::NAMESPACE: {
                "service_name": "shop",
                "layers": {"global": {"metrics_static_attributes": [{"key": "env", "value": "test"}]}}
            }
        }})
        .to_string();
        let config = sepia_config::parse_str(&text, false).unwrap().config;
        let settings = OtelSettings::from_config(&config).unwrap().0.unwrap();
        let metrics = install(&settings, Vec::new()).unwrap();
        metrics.record_request(
            &http::Method::GET,
            false,
            Some(&RouteMeter::new(&route_of("/items/{id}"))),
            200,
            Duration::from_millis(30),
            700,
        );
        metrics.record_request(
            &http::Method::from_bytes(b"BREW").unwrap(),
            false,
            None,
            404,
            Duration::from_millis(1),
            0,
        );
        let text = String::from_utf8(metrics.encode()).unwrap();
        assert!(
            text.contains("# TYPE http_server_duration histogram"),
            "{text}"
        );
        let line = text
            .lines()
            .find(|l| l.starts_with("http_server_duration_count{") && l.contains("/items/:id"))
            .unwrap_or_else(|| panic!("{text}"));
        for label in [
            "env=\"test\"",
            "http_request_method=\"GET\"",
            "http_response_status_code=\"200\"",
            "url_scheme=\"http\"",
            "otel_scope_name=\"io.krakend.krakend-otel\"",
        ] {
            assert!(line.contains(label), "{label}: {line}");
        }
        assert!(line.ends_with(" 1"), "{line}");
        assert!(text.contains("http_request_method=\"_OTHER\""), "{text}");
        assert!(text.contains("http_route=\"404 Not Found\""), "{text}");
        assert_eq!(route_of("/a/{id}/b/{name}"), "/a/:id/b/:name");
        assert_eq!(route_of("/plain"), "/plain");
        record_stage(
            Stage::Backend,
            &StageMeter::new(backend_attributes(
                "GET",
                "/users/{userId}",
                "/u/{userId}",
                "GET",
                &[],
            )),
            Duration::from_millis(5),
            StageOutcome {
                error: false,
                canceled: false,
                complete: true,
            },
        );
        let text = String::from_utf8(metrics.encode()).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("krakend_backend_duration_count{"))
            .unwrap_or_else(|| panic!("{text}"));
        for label in [
            "http_route=\"/users/:userid\"",
            "krakend_endpoint_route=\"/u/:userId\"",
            "complete=\"true\"",
            "error=\"false\"",
        ] {
            assert!(line.contains(label), "{label}: {line}");
        }
        assert!(text.contains("http_server_response_size_bucket"), "{text}");
        assert!(text.contains("service_name=\"shop\""), "{text}");

        // More statuses on one route than it binds: each still counted
        // once, the ones beyond its slots through a binding made for the
        // one measurement.
        let route = RouteMeter::new("/statuses");
        for round in 0..2 {
            for status in 200..240 {
                metrics.record_request(
                    &http::Method::GET,
                    false,
                    Some(&route),
                    status,
                    Duration::from_millis(1),
                    1,
                );
            }
            let text = String::from_utf8(metrics.encode()).unwrap();
            let counts: Vec<&str> = text
                .lines()
                .filter(|l| {
                    l.starts_with("http_server_duration_count{") && l.contains("\"/statuses\"")
                })
                .collect();
            assert_eq!(counts.len(), 40, "{text}");
            let expected = format!(" {}", round + 1);
            assert!(counts.iter().all(|l| l.ends_with(&expected)), "{counts:?}");
        }
    }
}
