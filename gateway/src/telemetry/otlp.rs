//! krakend-otel's `exporters.otlp`: OpenTelemetry's OTLP exporters, over
//! HTTP (protobuf bodies, krakend-otel's `use_http`) or gRPC, pushing the
//! spans and the metrics to a collector.
//!
//! The SDK exports from threads of its own (the batch span processor, the
//! periodic metric reader), which block on each export. Over HTTP the
//! exporter sends through [`ExportClient`]: the gateway's own client, its
//! calls spawned on the gateway's runtime and awaited from the SDK's
//! thread, so that the exports share the backends' TLS stack and no second
//! HTTP client is built in. gRPC is tonic's channel, which lives on the
//! runtime it was made in.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use opentelemetry_otlp::{
    tonic_types::transport::ClientTlsConfig, MetricExporter, Protocol, SpanExporter,
    WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};

use super::settings::OtlpExporter;
use crate::upstream::{backend_client::BackendClient, tls::TlsSettings};

/// The periodic reader that pushes the metrics to one collector.
pub type MetricReader = opentelemetry_sdk::metrics::PeriodicReader<MetricExporter>;

/// How long one export may take, as Go's OTLP exporters allow.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of a collector's answer read.
const MAX_ANSWER: usize = 1 << 20;

/// Why an OTLP exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("cannot set up the OTLP exporter \"{name}\" for {endpoint}: {source}")]
    Build {
        name: String,
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("cannot set up the OTLP exporters' HTTP client: {0}")]
    Client(#[source] crate::upstream::tls::TlsError),
}

/// The HTTP client the OTLP/HTTP exporters send through.
#[derive(Debug, Clone)]
pub struct ExportClient {
    client: BackendClient,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    /// A client on the current runtime, trusting the system's roots.
    pub fn new() -> Result<Self, OtlpError> {
        Ok(Self {
            client: BackendClient::new(&TlsSettings::default()).map_err(OtlpError::Client)?,
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

/// Why one export's HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
enum ExportSendError {
    #[error("the collector did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Send(#[from] crate::upstream::SendError),
    #[error("reading the collector's answer: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the gateway is stopping")]
    Stopped(#[source] tokio::task::JoinError),
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let request = request.map(Full::new);
        let exchange = self.runtime.spawn(async move {
            let exchange = async {
                let response = client.send(request).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_ANSWER)
                    .collect()
                    .await
                    .map_err(ExportSendError::Body)?
                    .to_bytes();
                Ok::<_, ExportSendError>(http::Response::from_parts(parts, body))
            };
            tokio::time::timeout(EXPORT_TIMEOUT, exchange)
                .await
                .map_err(|_| ExportSendError::Timeout(EXPORT_TIMEOUT))?
        });
        Ok(exchange.await.map_err(ExportSendError::Stopped)??)
    }
}

fn built<T>(
    exporter: &OtlpExporter,
    result: Result<T, opentelemetry_otlp::ExporterBuildError>,
) -> Result<T, OtlpError> {
    result.map_err(|source| OtlpError::Build {
        name: exporter.name.clone(),
        endpoint: exporter.endpoint.clone(),
        source,
    })
}

fn tls(exporter: &OtlpExporter) -> Option<ClientTlsConfig> {
    exporter
        .endpoint
        .starts_with("https://")
        .then(|| ClientTlsConfig::new().with_native_roots())
}

/// An OTLP exporter of one signal (`SpanExporter`, `MetricExporter`) for
/// `exporter`: over HTTP to `path`, else over gRPC. The two signals'
/// builders are distinct types with the same methods, hence a macro.
macro_rules! otlp_exporter {
    ($kind:ty, $path:literal, $exporter:expr, $client:expr) => {{
        let exporter: &OtlpExporter = $exporter;
        let result = if exporter.use_http {
            <$kind>::builder()
                .with_http()
                .with_http_client($client.clone())
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}{}", exporter.endpoint, $path))
                .with_timeout(EXPORT_TIMEOUT)
                .build()
        } else {
            let builder = <$kind>::builder()
                .with_tonic()
                .with_endpoint(exporter.endpoint.clone())
                .with_timeout(EXPORT_TIMEOUT);
            match tls(exporter) {
                Some(tls) => builder.with_tls_config(tls).build(),
                None => builder.build(),
            }
        };
        built(exporter, result)
    }};
}

/// The span exporter for `exporter`; call it on the gateway's runtime.
pub fn span_exporter(
    exporter: &OtlpExporter,
    client: &ExportClient,
) -> Result<SpanExporter, OtlpError> {
    otlp_exporter!(SpanExporter, "/v1/traces", exporter, client)
}

/// The metric exporter for `exporter`; call it on the gateway's runtime.
pub fn metric_exporter(
    exporter: &OtlpExporter,
    client: &ExportClient,
) -> Result<MetricExporter, OtlpError> {
    otlp_exporter!(MetricExporter, "/v1/metrics", exporter, client)
}

/// A reader per OTLP exporter that takes metrics, each at its reporting
/// period; call it on the gateway's runtime.
pub fn metric_readers(
    settings: &super::settings::OtelSettings,
    client: &ExportClient,
) -> Result<Vec<MetricReader>, OtlpError> {
    settings
        .otlp
        .iter()
        .filter(|e| e.metrics)
        .map(|exporter| {
            Ok(
                opentelemetry_sdk::metrics::PeriodicReader::builder(metric_exporter(
                    exporter, client,
                )?)
                .with_interval(exporter.reporting_period)
                .build(),
            )
        })
        .collect()
}
