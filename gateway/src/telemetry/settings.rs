//! The settings of `telemetry/opentelemetry` Sepia reads (krakend-otel's
//! `config/config.go`).

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use sepia_config::Config;
use serde_json::{Map, Value};

/// The namespace.
pub const NAMESPACE: &str = "telemetry/opentelemetry";

/// One `exporters.prometheus` entry: a listener serving `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusExporter {
    pub name: String,
    pub host: IpAddr,
    pub port: u16,
}

/// One `exporters.otlp` entry: a collector the metrics and spans are
/// pushed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpExporter {
    pub name: String,
    /// `scheme://host:port`: krakend-otel's `host` and `port` (4317 and
    /// `localhost` by default), plain unless `host` says `https://`.
    pub endpoint: String,
    /// `use_http`: OTLP over HTTP (protobuf bodies), else gRPC.
    pub use_http: bool,
    /// Not `disable_metrics`.
    pub metrics: bool,
    /// Not `disable_traces`.
    pub traces: bool,
    /// `custom_metric_reporting_period` when at least a second, else the
    /// namespace's `metric_reporting_period`.
    pub reporting_period: Duration,
}

/// The traces' settings that are not a stage's.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// `trace_sample_rate`: krakend-otel samples every trace unless the
    /// rate is strictly between 0 and 1 (so 0 samples all, as there).
    pub sample_rate: f64,
    /// Not `layers.global.disable_propagation`: a client's `traceparent`
    /// is the parent of the gateway's spans.
    pub propagation: bool,
    /// Not `layers.global.disable_traces`: a span per request.
    pub global: bool,
    /// `layers.global.traces_static_attributes`.
    pub global_attributes: Vec<(String, String)>,
    /// `layers.global.report_headers`: the server span records the
    /// request's and the answer's headers.
    pub global_headers: Option<HeaderReport>,
}

/// A layer's `report_headers` and `skip_headers`: its spans record each
/// header as `http.request.header.<name>` (and `http.response.header.`),
/// but those skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderReport {
    /// `skip_headers`, lower case (Go compares them canonicalised, so
    /// case does not matter).
    pub skip: Vec<String>,
}

impl HeaderReport {
    /// Whether `name` (lower case, as `http` names headers) is recorded.
    pub fn records(&self, name: &str) -> bool {
        !self.skip.iter().any(|s| s == name)
    }
}

/// What Sepia does of the namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelSettings {
    /// `service_name` (`target_info`'s `service_name`).
    pub service_name: String,
    /// `service_version` and `deploy_env`, the resource's
    /// `service.version` and `deployment.environment`.
    pub service_version: String,
    pub deploy_env: String,
    pub prometheus: Vec<PrometheusExporter>,
    pub otlp: Vec<OtlpExporter>,
    /// `layers.global.disable_metrics`.
    pub global_metrics: bool,
    /// `layers.global.semantic_convention` `"1.27"`: the server's and the
    /// backend client's metrics under OpenTelemetry's 1.27 names (any
    /// other value: krakend-otel's own).
    pub semconv_1_27: bool,
    /// `layers.global.metrics_static_attributes`.
    pub static_attributes: Vec<(String, String)>,
    pub traces: TraceSettings,
    /// The proxy and backend stages' metrics and spans.
    pub stages: StageSettings,
}

impl OtelSettings {
    /// Whether spans are made: some OTLP exporter takes them
    /// (krakend-otel's tracer is a no-op one without).
    pub fn traces_exported(&self) -> bool {
        self.otlp.iter().any(|e| e.traces)
    }

    /// Whether a request to `path` is left out of the metrics and traces
    /// (`skip_paths`, matched whole).
    pub fn skips(&self, path: &str) -> bool {
        self.stages.skip_paths.iter().any(|p| p == path)
    }
}

/// `layers.proxy` and `layers.backend`: whether each stage is measured and
/// traced, and the attributes added to each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSettings {
    /// Not `layers.proxy.disable_metrics`.
    pub proxy: bool,
    pub proxy_attributes: Vec<(String, String)>,
    /// Not `layers.backend.metrics.disable_stage`.
    pub backend: bool,
    pub backend_attributes: Vec<(String, String)>,
    /// The backend client's `http.client.*` metrics of each exchange:
    /// `layers.backend.metrics.round_trip`.
    pub client_round_trip: bool,
    /// And of reading each answer's body: `read_payload`. Both on when
    /// `layers.backend.metrics` is absent; an object given without them
    /// turns them off, as Go reads it.
    pub client_read_payload: bool,
    /// And the get-conn, DNS and TLS durations of each exchange:
    /// `detailed_connection` (on when `layers.backend.metrics` is absent).
    pub client_detailed: bool,
    /// Spans of the proxy stage: traces are exported and not
    /// `layers.proxy.disable_traces`.
    pub proxy_traces: bool,
    /// `layers.proxy.traces_static_attributes`.
    pub proxy_trace_attributes: Vec<(String, String)>,
    /// Spans of the backend stage: traces are exported and not
    /// `layers.backend.traces.disable_stage`.
    pub backend_traces: bool,
    /// A client span per HTTP exchange with a backend, which also sends
    /// the `traceparent`: `layers.backend.traces.round_trip` or
    /// `read_payload` (both on by default).
    pub backend_round_trip: bool,
    /// `layers.backend.traces.read_payload`: a span for the reading of
    /// each answer's body, under its exchange's (on by default).
    pub backend_read_payload: bool,
    /// `layers.backend.traces.detailed_connection`: the client span holds
    /// its connection's durations and the first byte's time (on when
    /// `layers.backend.traces` is absent).
    pub backend_detailed: bool,
    /// `layers.backend.traces.static_attributes`.
    pub backend_trace_attributes: Vec<(String, String)>,
    /// `layers.proxy.report_headers`: the proxy stage's spans record the
    /// request's headers.
    pub proxy_headers: Option<HeaderReport>,
    /// `layers.backend.traces.report_headers`: the backend stage's and
    /// the client's spans record the headers.
    pub backend_headers: Option<HeaderReport>,
    /// `skip_paths`: endpoints (and request paths) neither measured nor
    /// traced; krakend-otel's defaults unless the list is given.
    pub skip_paths: Vec<String>,
}

/// krakend-otel's `skip_paths` when the file gives none.
const DEFAULT_SKIP_PATHS: &[&str] = &["/__health", "/__debug/", "/__echo/", "/__stats/"];

/// A `[{"key": ..., "value": ...}]` list.
fn attributes(value: Option<&Value>, at: &str) -> Result<Vec<(String, String)>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(format!(
            "{}: must be a list of {{\"key\", \"value\"}}",
            path(at)
        ));
    };
    items
        .iter()
        .map(|item| {
            match (
                item.get("key").and_then(Value::as_str),
                item.get("value").and_then(Value::as_str),
            ) {
                (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
                _ => Err(format!(
                    "{}: each attribute is {{\"key\": ..., \"value\": ...}}",
                    path(at)
                )),
            }
        })
        .collect()
}

fn path(key: &str) -> String {
    format!("extra_config.\"{NAMESPACE}\".{key}")
}

fn object<'v>(value: &'v Value, key: &str) -> Result<&'v Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{}: must be an object", path(key)))
}

fn flag(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).and_then(Value::as_bool) == Some(true)
}

fn text(map: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{}: must be a string", path(at))),
    }
}

/// A whole number of seconds, when given.
fn seconds(map: &Map<String, Value>, key: &str, at: &str) -> Result<Option<u64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{}: must be a whole number of seconds", path(at))),
    }
}

/// An exporter's `port`, when given.
fn port(entry: &Map<String, Value>, at: &str) -> Result<Option<u16>, String> {
    entry
        .get("port")
        .map(|v| {
            v.as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| format!("{}: must be a port number", path(&format!("{at}.port"))))
        })
        .transpose()
}

fn prometheus_exporters(list: &Value) -> Result<Vec<PrometheusExporter>, String> {
    let Value::Array(list) = list else {
        return Err(format!("{}: must be a list", path("exporters.prometheus")));
    };
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("exporters.prometheus[{i}]");
        let entry = object(entry, &at)?;
        if flag(entry, "disable_metrics") {
            continue;
        }
        let port = match port(entry, &at)? {
            None => 9090,
            Some(0) => {
                return Err(format!(
                    "{}: must be a port number",
                    path(&format!("{at}.port"))
                ))
            }
            Some(port) => port,
        };
        let host = match entry.get("host").and_then(Value::as_str) {
            None | Some("") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(text) => text.parse().map_err(|_| {
                format!(
                    "{}: \"{text}\" is not an IP address to listen on",
                    path(&format!("{at}.host"))
                )
            })?,
        };
        let name =
            text(entry, "name", &format!("{at}.name"))?.unwrap_or_else(|| "prometheus".into());
        out.push(PrometheusExporter { name, host, port });
    }
    Ok(out)
}

fn otlp_exporters(list: &Value, default_period: Duration) -> Result<Vec<OtlpExporter>, String> {
    let Value::Array(list) = list else {
        return Err(format!("{}: must be a list", path("exporters.otlp")));
    };
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("exporters.otlp[{i}]");
        let entry = object(entry, &at)?;
        // krakend-otel: port 0 is its default, and so is an empty host.
        let port = match port(entry, &at)? {
            None | Some(0) => 4317,
            Some(port) => port,
        };
        let host = text(entry, "host", &format!("{at}.host"))?
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let endpoint = if host.starts_with("http://") || host.starts_with("https://") {
            format!("{host}:{port}")
        } else {
            format!("http://{host}:{port}")
        };
        if endpoint.parse::<http::Uri>().is_err() {
            return Err(format!(
                "{}: \"{host}\" with port {port} is not a collector address (a host name or IP, \
                 optionally after http:// or https://)",
                path(&format!("{at}.host"))
            ));
        }
        let custom = seconds(
            entry,
            "custom_metric_reporting_period",
            &format!("{at}.custom_metric_reporting_period"),
        )?
        .filter(|s| *s >= 1);
        out.push(OtlpExporter {
            name: text(entry, "name", &format!("{at}.name"))?.unwrap_or_default(),
            endpoint,
            use_http: flag(entry, "use_http"),
            metrics: !flag(entry, "disable_metrics"),
            traces: !flag(entry, "disable_traces"),
            reporting_period: custom.map_or(default_period, Duration::from_secs),
        });
    }
    Ok(out)
}

impl OtelSettings {
    /// The settings, and warnings for what is not served yet; `None` when
    /// the file has no such namespace, or is a version-1/2 file.
    pub fn from_config(config: &Config) -> Result<(Option<OtelSettings>, Vec<String>), String> {
        let Some(value) = config.extra_config.get(NAMESPACE) else {
            return Ok((None, Vec::new()));
        };
        if !config.krakend2() {
            // krakend-otel came with KrakenD 2.x: KrakenD 1.x ignores the
            // namespace whatever it holds, so no listener nor exporter.
            return Ok((None, vec![format!("extra_config.\"{NAMESPACE}\": KrakenD 1.x, which serves version-1 and 2 files, has no OpenTelemetry: it is ignored (\"version\": 3 reads it)")]));
        }
        let map = object(value, "")?;
        let warnings = Vec::new();
        let service_name =
            text(map, "service_name", "service_name")?.unwrap_or_else(|| "KrakenD".to_owned());
        let service_version = text(map, "service_version", "service_version")?.unwrap_or_default();
        let deploy_env = text(map, "deploy_env", "deploy_env")?.unwrap_or_default();
        let period = Duration::from_secs(
            seconds(map, "metric_reporting_period", "metric_reporting_period")?.unwrap_or(30),
        );
        let mut prometheus = Vec::new();
        let mut otlp = Vec::new();
        if let Some(exporters) = map.get("exporters") {
            let exporters = object(exporters, "exporters")?;
            if let Some(list) = exporters.get("prometheus") {
                prometheus = prometheus_exporters(list)?;
            }
            if let Some(list) = exporters.get("otlp") {
                otlp = otlp_exporters(list, period)?;
            }
        }
        let mut names = std::collections::HashSet::new();
        for name in otlp
            .iter()
            .map(|e| &e.name)
            .chain(prometheus.iter().map(|e| &e.name))
        {
            if !names.insert(name) {
                return Err(format!(
                    "{}: two exporters are named \"{name}\": give each its own name",
                    path("exporters")
                ));
            }
        }
        let sample_rate = match map.get("trace_sample_rate") {
            None | Some(Value::Null) => 1.0,
            Some(v) => v
                .as_f64()
                .ok_or_else(|| format!("{}: must be a number", path("trace_sample_rate")))?,
        };
        let skip_paths = match map.get("skip_paths") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{}: must be a list of paths", path("skip_paths")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(format!("{}: must be a list of paths", path("skip_paths"))),
        };
        let skip_paths = if skip_paths.is_empty() {
            DEFAULT_SKIP_PATHS.iter().map(|p| (*p).to_owned()).collect()
        } else {
            skip_paths
        };
        let traced = otlp.iter().any(|e| e.traces);
        let mut global_metrics = true;
        let mut semconv_1_27 = false;
        let mut static_attributes = Vec::new();
        let mut traces = TraceSettings {
            sample_rate,
            propagation: true,
            global: traced,
            global_attributes: Vec::new(),
            global_headers: None,
        };
        let mut stages = StageSettings {
            proxy: true,
            proxy_attributes: Vec::new(),
            backend: true,
            backend_attributes: Vec::new(),
            client_round_trip: true,
            client_read_payload: true,
            client_detailed: true,
            proxy_traces: traced,
            proxy_trace_attributes: Vec::new(),
            backend_traces: traced,
            backend_round_trip: traced,
            backend_read_payload: traced,
            backend_detailed: traced,
            backend_trace_attributes: Vec::new(),
            proxy_headers: None,
            backend_headers: None,
            skip_paths,
        };
        if let Some(layers) = map.get("layers") {
            let layers = object(layers, "layers")?;
            if let Some(global) = layers.get("global") {
                let global = object(global, "layers.global")?;
                global_metrics = !flag(global, "disable_metrics");
                static_attributes = attributes(
                    global.get("metrics_static_attributes"),
                    "layers.global.metrics_static_attributes",
                )?;
                traces.global = traced && !flag(global, "disable_traces");
                traces.propagation = !flag(global, "disable_propagation");
                traces.global_attributes = attributes(
                    global.get("traces_static_attributes"),
                    "layers.global.traces_static_attributes",
                )?;
                traces.global_headers = header_report(global, "layers.global")?.filter(|_| traced);
                // krakend-otel knows "1.27" and reads any other value as
                // its own names.
                semconv_1_27 = text(
                    global,
                    "semantic_convention",
                    "layers.global.semantic_convention",
                )?
                .is_some_and(|v| v == "1.27");
            }
            if let Some(proxy) = layers.get("proxy") {
                let proxy = object(proxy, "layers.proxy")?;
                stages.proxy = !flag(proxy, "disable_metrics");
                stages.proxy_attributes = attributes(
                    proxy.get("metrics_static_attributes"),
                    "layers.proxy.metrics_static_attributes",
                )?;
                stages.proxy_traces = traced && !flag(proxy, "disable_traces");
                stages.proxy_trace_attributes = attributes(
                    proxy.get("traces_static_attributes"),
                    "layers.proxy.traces_static_attributes",
                )?;
                stages.proxy_headers = header_report(proxy, "layers.proxy")?.filter(|_| traced);
            }
            if let Some(backend) = layers.get("backend") {
                let backend = object(backend, "layers.backend")?;
                if let Some(metrics) = backend.get("metrics") {
                    let metrics = object(metrics, "layers.backend.metrics")?;
                    stages.backend = !flag(metrics, "disable_stage");
                    stages.backend_attributes = attributes(
                        metrics.get("static_attributes"),
                        "layers.backend.metrics.static_attributes",
                    )?;
                    stages.client_round_trip = flag(metrics, "round_trip");
                    stages.client_read_payload = flag(metrics, "read_payload");
                    stages.client_detailed = flag(metrics, "detailed_connection");
                }
                if let Some(backend_traces) = backend.get("traces") {
                    let at = "layers.backend.traces";
                    let backend_traces = object(backend_traces, at)?;
                    stages.backend_traces = traced && !flag(backend_traces, "disable_stage");
                    // Given, the two default to false, as Go's JSON leaves them.
                    stages.backend_round_trip = traced
                        && (flag(backend_traces, "round_trip")
                            || flag(backend_traces, "read_payload"));
                    stages.backend_read_payload = traced && flag(backend_traces, "read_payload");
                    stages.backend_trace_attributes = attributes(
                        backend_traces.get("static_attributes"),
                        "layers.backend.traces.static_attributes",
                    )?;
                    stages.backend_headers = header_report(backend_traces, at)?.filter(|_| traced);
                    stages.backend_detailed = traced && flag(backend_traces, "detailed_connection");
                }
            }
        }
        Ok((
            Some(OtelSettings {
                service_name,
                service_version,
                deploy_env,
                prometheus,
                otlp,
                global_metrics,
                semconv_1_27,
                static_attributes,
                traces,
                stages,
            }),
            warnings,
        ))
    }
}

/// A layer's `report_headers` and `skip_headers`; `skip_headers` is
/// checked even when headers are not reported, as Go's JSON reads it.
fn header_report(layer: &Map<String, Value>, at: &str) -> Result<Option<HeaderReport>, String> {
    let invalid = || {
        format!(
            "{}: must be a list of header names",
            path(&format!("{at}.skip_headers"))
        )
    };
    let skip = match layer.get("skip_headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(names)) => names
            .iter()
            .map(|name| {
                name.as_str()
                    .map(str::to_ascii_lowercase)
                    .ok_or_else(invalid)
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid()),
    };
    Ok(flag(layer, "report_headers").then_some(HeaderReport { skip }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(otel: Value) -> Result<Option<(OtelSettings, Vec<String>)>, String> {
        let text =
            json!({"version": 3, "extra_config": {NAMESPACE: otel}, "endpoints": []}).to_string();
        OtelSettings::from_config(&sepia_config::parse_str(&text, false).unwrap().config)
            .map(|(settings, warnings)| settings.map(|s| (s, warnings)))
    }

    #[test]
    fn exporters_and_layers_are_read_as_krakend_otel_reads_them() {
        let (s, warnings) = settings(json!({
            "service_name": "shop",
            "exporters": {"prometheus": [{"name": "local", "port": 9091, "host": "127.0.0.1"}],
                          "otlp": [{"name": "x", "host": "collector"}]},
            "layers": {"global": {"metrics_static_attributes": [{"key": "env", "value": "prod"}]},
                       "backend": {"metrics": {"round_trip": true, "detailed_connection": true}}}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(s.service_name, "shop");
        assert_eq!(
            s.prometheus,
            vec![PrometheusExporter {
                name: "local".into(),
                host: "127.0.0.1".parse().unwrap(),
                port: 9091
            }]
        );
        assert_eq!(s.static_attributes, vec![("env".into(), "prod".into())]);
        assert!(s.stages.proxy && s.stages.backend);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(s.stages.client_round_trip && !s.stages.client_read_payload);
        assert!(s.stages.client_detailed);
        assert_eq!(s.otlp[0].endpoint, "http://collector:4317");
        assert!(!s.otlp[0].use_http && s.otlp[0].traces && s.otlp[0].metrics);
        assert_eq!(s.otlp[0].reporting_period, Duration::from_secs(30));
        assert!(s.traces_exported() && s.traces.global && s.traces.propagation);
        assert!(s.stages.proxy_traces && s.stages.backend_traces && s.stages.backend_round_trip);
        assert!(s.skips("/__health") && !s.skips("/items"));
        let (defaults, _) = settings(json!({"exporters": {"prometheus": [{}]}}))
            .unwrap()
            .unwrap();
        assert_eq!(defaults.prometheus[0].port, 9090);
        assert_eq!(defaults.service_name, "KrakenD");
        assert!(
            settings(json!({"exporters": {"prometheus": [{"port": "x"}]}}))
                .unwrap_err()
                .contains("exporters.prometheus[0].port")
        );
        assert!(!defaults.traces_exported() && !defaults.stages.proxy_traces);
        assert!(defaults.stages.client_round_trip && defaults.stages.client_read_payload);
    }

    #[test]
    fn traces_are_read_as_krakend_otel_reads_them() {
        let (s, warnings) = settings(json!({
            "trace_sample_rate": 0.25,
            "metric_reporting_period": 5,
            "skip_paths": ["/private"],
            "exporters": {"otlp": [
                {"name": "a", "host": "https://collector", "port": 4318, "use_http": true,
                 "disable_metrics": true, "custom_metric_reporting_period": 2},
                {"name": "b", "disable_traces": true}
            ]},
            "layers": {
                "global": {"disable_propagation": true,
                           "traces_static_attributes": [{"key": "zone", "value": "eu"}]},
                "proxy": {"disable_traces": true},
                "backend": {"traces": {"static_attributes": [{"key": "k", "value": "v"}]}}
            }
        }))
        .unwrap()
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(s.traces.sample_rate, 0.25);
        assert_eq!(s.otlp[0].endpoint, "https://collector:4318");
        assert!(s.otlp[0].use_http && !s.otlp[0].metrics);
        assert_eq!(s.otlp[0].reporting_period, Duration::from_secs(2));
        assert_eq!(s.otlp[1].endpoint, "http://localhost:4317");
        assert_eq!(s.otlp[1].reporting_period, Duration::from_secs(5));
        assert!(s.traces.global && !s.traces.propagation);
        assert_eq!(
            s.traces.global_attributes,
            vec![("zone".into(), "eu".into())]
        );
        assert!(!s.stages.proxy_traces && s.stages.backend_traces);
        // A traces object given without round_trip: Go reads false.
        assert!(!s.stages.backend_round_trip && !s.stages.backend_read_payload);
        assert!(!s.stages.backend_detailed && s.stages.client_detailed);
        assert!(s.skips("/private") && !s.skips("/__health"));
        let duplicate = settings(json!({"exporters": {
            "otlp": [{"name": "x"}], "prometheus": [{"name": "x"}]}}));
        assert!(duplicate
            .unwrap_err()
            .contains("two exporters are named \"x\""));
        assert!(settings(json!({"trace_sample_rate": "all"}))
            .unwrap_err()
            .contains("trace_sample_rate"));
        assert!(settings(json!({"exporters": {"otlp": [{"host": "a b"}]}}))
            .unwrap_err()
            .contains("exporters.otlp[0].host"));
    }

    #[test]
    fn semantic_convention_1_27_is_the_only_one_krakend_otel_knows() {
        let with = |value: Value| {
            settings(json!({"layers": {"global": {"semantic_convention": value}}}))
                .map(|s| s.unwrap().0.semconv_1_27)
        };
        assert_eq!(with(json!("1.27")), Ok(true));
        assert_eq!(with(json!("1.29")), Ok(false));
        assert_eq!(with(Value::Null), Ok(false));
        assert!(with(json!(1.27))
            .unwrap_err()
            .contains("layers.global.semantic_convention: must be a string"));
    }

    #[test]
    fn report_headers_is_read_per_layer_and_only_where_spans_are_made() {
        let layers = json!({
            "global": {"report_headers": true, "skip_headers": ["Authorization", "X-Key"]},
            "proxy": {"skip_headers": ["Cookie"]},
            "backend": {"traces": {"report_headers": true}}
        });
        let (s, warnings) = settings(json!({
            "exporters": {"otlp": [{"name": "a"}]},
            "layers": layers.clone()
        }))
        .unwrap()
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let global = s.traces.global_headers.unwrap();
        assert_eq!(global.skip, vec!["authorization", "x-key"]);
        assert!(!global.records("x-key") && global.records("x-tenant"));
        // skip_headers alone reports nothing.
        assert_eq!(s.stages.proxy_headers, None);
        assert_eq!(s.stages.backend_headers, Some(HeaderReport::default()));
        // No exporter takes spans: nothing is reported.
        let (untraced, _) = settings(json!({
            "exporters": {"prometheus": [{"name": "p"}]},
            "layers": layers
        }))
        .unwrap()
        .unwrap();
        assert_eq!(untraced.traces.global_headers, None);
        assert_eq!(untraced.stages.backend_headers, None);
        for bad in [json!("Authorization"), json!([1])] {
            let error = settings(json!({
                "layers": {"backend": {"traces": {"report_headers": true, "skip_headers": bad}}}
            }))
            .unwrap_err();
            assert!(
                error
                    .contains("layers.backend.traces.skip_headers: must be a list of header names"),
                "{error}"
            );
        }
    }
}
