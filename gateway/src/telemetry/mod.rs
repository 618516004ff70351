//! `telemetry/opentelemetry`, as krakend-otel reads it: the metrics of the
//! gateway's layers, exported through OpenTelemetry's Prometheus exporter
//! on listeners of their own. Traces and the OTLP exporters are not there
//! yet (start-up warns about them).

pub mod metrics;
pub mod prometheus_listener;
pub mod settings;
