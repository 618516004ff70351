//! The settings of `telemetry/opentelemetry` Sepia reads (krakend-otel's
//! `config/config.go`).

use std::net::{IpAddr, Ipv4Addr};

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

/// What Sepia does of the namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelSettings {
    /// `service_name` (`target_info`'s `service_name`).
    pub service_name: String,
    pub prometheus: Vec<PrometheusExporter>,
    /// `layers.global.disable_metrics`.
    pub global_metrics: bool,
    /// `layers.global.metrics_static_attributes`.
    pub static_attributes: Vec<(String, String)>,
    /// The proxy and backend stages' metrics.
    pub stages: StageSettings,
}

/// `layers.proxy` and `layers.backend.metrics`: whether each stage's
/// duration is measured, and the attributes added to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSettings {
    /// Not `layers.proxy.disable_metrics`.
    pub proxy: bool,
    pub proxy_attributes: Vec<(String, String)>,
    /// Not `layers.backend.metrics.disable_stage`.
    pub backend: bool,
    pub backend_attributes: Vec<(String, String)>,
}

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

impl OtelSettings {
    /// The settings, and warnings for what is not served yet; `None` when
    /// the file has no such namespace.
    pub fn from_config(config: &Config) -> Result<Option<(OtelSettings, Vec<String>)>, String> {
        let Some(value) = config.extra_config.get(NAMESPACE) else {
            return Ok(None);
        };
        let map = object(value, "")?;
        let mut warnings = Vec::new();
        let service_name = match map.get("service_name") {
            None => "KrakenD".to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(format!("{}: must be a string", path("service_name"))),
        };
        let mut prometheus = Vec::new();
        if let Some(exporters) = map.get("exporters") {
            let exporters = object(exporters, "exporters")?;
            if exporters.contains_key("otlp") {
                warnings.push(format!(
                    "{}: the OTLP exporters are not served yet: nothing is pushed",
                    path("exporters.otlp")
                ));
            }
            if let Some(list) = exporters.get("prometheus") {
                let Value::Array(list) = list else {
                    return Err(format!("{}: must be a list", path("exporters.prometheus")));
                };
                for (i, entry) in list.iter().enumerate() {
                    let at = format!("exporters.prometheus[{i}]");
                    let entry = object(entry, &at)?;
                    if entry.get("disable_metrics").and_then(Value::as_bool) == Some(true) {
                        continue;
                    }
                    let port = match entry.get("port") {
                        None => 9090,
                        Some(v) => v
                            .as_u64()
                            .and_then(|p| u16::try_from(p).ok())
                            .filter(|p| *p > 0)
                            .ok_or_else(|| {
                                format!("{}: must be a port number", path(&format!("{at}.port")))
                            })?,
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
                    let name = entry
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("prometheus")
                        .to_owned();
                    prometheus.push(PrometheusExporter { name, host, port });
                }
            }
        }
        let mut global_metrics = true;
        let mut static_attributes = Vec::new();
        let mut stages = StageSettings {
            proxy: true,
            proxy_attributes: Vec::new(),
            backend: true,
            backend_attributes: Vec::new(),
        };
        if let Some(layers) = map.get("layers") {
            let layers = object(layers, "layers")?;
            if let Some(global) = layers.get("global") {
                let global = object(global, "layers.global")?;
                global_metrics =
                    global.get("disable_metrics").and_then(Value::as_bool) != Some(true);
                static_attributes = attributes(
                    global.get("metrics_static_attributes"),
                    "layers.global.metrics_static_attributes",
                )?;
            }
            if let Some(proxy) = layers.get("proxy") {
                let proxy = object(proxy, "layers.proxy")?;
                stages.proxy = proxy.get("disable_metrics").and_then(Value::as_bool) != Some(true);
                stages.proxy_attributes = attributes(
                    proxy.get("metrics_static_attributes"),
                    "layers.proxy.metrics_static_attributes",
                )?;
            }
            if let Some(backend) = layers.get("backend") {
                let backend = object(backend, "layers.backend")?;
                if let Some(metrics) = backend.get("metrics") {
                    let metrics = object(metrics, "layers.backend.metrics")?;
                    stages.backend =
                        metrics.get("disable_stage").and_then(Value::as_bool) != Some(true);
                    stages.backend_attributes = attributes(
                        metrics.get("static_attributes"),
                        "layers.backend.metrics.static_attributes",
                    )?;
                    for detail in ["round_trip", "read_payload", "detailed_connection"] {
                        if metrics.get(detail).and_then(Value::as_bool) == Some(true) {
                            warnings.push(format!(
                                "{}: the backend client's http.client.* metrics are not exported yet",
                                path(&format!("layers.backend.metrics.{detail}"))
                            ));
                        }
                    }
                }
                if backend.contains_key("traces") {
                    warnings.push(format!(
                        "{}: traces are not exported yet",
                        path("layers.backend.traces")
                    ));
                }
            }
        }
        if map.contains_key("trace_sample_rate") {
            warnings.push(format!(
                "{}: traces are not exported yet",
                path("trace_sample_rate")
            ));
        }
        Ok(Some((
            OtelSettings {
                service_name,
                prometheus,
                global_metrics,
                static_attributes,
                stages,
            },
            warnings,
        )))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(otel: Value) -> Result<Option<(OtelSettings, Vec<String>)>, String> {
        let text =
            json!({"version": 3, "extra_config": {NAMESPACE: otel}, "endpoints": []}).to_string();
        OtelSettings::from_config(&sepia_config::parse_str(&text, false).unwrap().config)
    }

    #[test]
    fn exporters_and_layers_are_read_as_krakend_otel_reads_them() {
        let (s, warnings) = settings(json!({
            "service_name": "shop",
            "exporters": {"prometheus": [{"name": "local", "port": 9091, "host": "127.0.0.1"}],
                          "otlp": [{"name": "x", "host": "collector"}]},
            "layers": {"global": {"metrics_static_attributes": [{"key": "env", "value": "prod"}]},
                       "backend": {"metrics": {"round_trip": true}}}
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
        // The OTLP exporter and the backend client's detailed metrics.
        assert_eq!(warnings.len(), 2, "{warnings:?}");
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
    }
}
