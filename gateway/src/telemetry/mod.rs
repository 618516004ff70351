//! `telemetry/opentelemetry`, as krakend-otel reads it: the metrics of the
//! gateway's layers, exported through OpenTelemetry's Prometheus exporter
//! on listeners of their own and pushed to OTLP collectors, and the traces
//! of each request, pushed to OTLP collectors.

mod bound;
pub mod client_metrics;
pub mod metrics;
pub mod otlp;
pub mod page_listener;
pub mod settings;
pub mod stats;
pub mod traces;

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

/// What the metrics and spans say of the process, as krakend-otel's state
/// sets it: `service.name`, `service.version` (the KrakenD release Sepia
/// answers as, unless `service_version`), and `deployment.environment`
/// when `deploy_env` is given.
pub fn resource(settings: &settings::OtelSettings) -> Resource {
    let version = if settings.service_version.is_empty() {
        crate::identity::KRAKEND_2_VERSION.to_owned()
    } else {
        settings.service_version.clone()
    };
    let mut attributes = vec![KeyValue::new("service.version", version)];
    if !settings.deploy_env.is_empty() {
        attributes.push(KeyValue::new(
            "deployment.environment",
            settings.deploy_env.clone(),
        ));
    }
    Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attributes(attributes)
        .build()
}

/// `pattern` with each `{name}` written as `write` writes it: the one
/// rewriting of endpoint and URL patterns the telemetry names things with.
pub fn map_params(pattern: &str, write: impl Fn(&mut String, &str)) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        write(&mut out, &rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}
