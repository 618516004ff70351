//! An OTLP collector for the tests, on 127.0.0.1: it takes what the
//! gateway exports over OTLP/HTTP (protobuf bodies on `/v1/traces` and
//! `/v1/metrics`) and over OTLP/gRPC, and decodes it with the official
//! protobuf definitions (the OpenTelemetry project's opentelemetry-proto).

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            metrics_service_server::{MetricsService, MetricsServiceServer},
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        },
        trace::v1::{
            trace_service_server::{TraceService, TraceServiceServer},
            ExportTraceServiceRequest, ExportTraceServiceResponse,
        },
    },
    common::v1::{any_value::Value as AnyValue, KeyValue},
    trace::v1::Span,
};
use prost::Message as _;
use tokio::net::TcpListener;

use crate::{Reply, TestBackend};

/// A span as received, with what the collector was told of its process.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub span: Span,
    /// The resource's attributes (`service.name`, ...).
    pub resource: HashMap<String, String>,
    /// The instrumentation scope's name.
    pub scope: String,
}

impl ReceivedSpan {
    /// An attribute's value as text (numbers and booleans written out).
    pub fn attribute(&self, key: &str) -> Option<String> {
        attribute(&self.span.attributes, key)
    }

    /// A list of strings the span holds under `key` (a header's values,
    /// as `report_headers` records them).
    pub fn strings(&self, key: &str) -> Option<Vec<String>> {
        let value = self.span.attributes.iter().find(|kv| kv.key == key)?;
        match value.value.as_ref()?.value.as_ref()? {
            AnyValue::ArrayValue(array) => array
                .values
                .iter()
                .map(|v| match v.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// The keys of its attributes that start with `prefix`.
    pub fn keys_starting(&self, prefix: &str) -> Vec<String> {
        self.span
            .attributes
            .iter()
            .filter(|kv| kv.key.starts_with(prefix))
            .map(|kv| kv.key.clone())
            .collect()
    }

    /// The span's id, as lowercase hex (as a `traceparent` writes it).
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// Its trace's id, as lowercase hex.
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// Its parent's id, as lowercase hex; empty for a root span.
    pub fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    Some(match value.value.as_ref()? {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    /// The names of the metrics received, with their data points' count.
    metrics: Vec<String>,
    /// Exports each way: (HTTP, gRPC).
    exports: (usize, usize),
}

impl Received {
    fn traces(&mut self, request: ExportTraceServiceRequest) {
        for resource_spans in request.resource_spans {
            let resource: HashMap<String, String> = resource_spans
                .resource
                .map(|r| {
                    r.attributes
                        .iter()
                        .filter_map(|kv| Some((kv.key.clone(), attribute(&r.attributes, &kv.key)?)))
                        .collect()
                })
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                let scope = scope_spans.scope.map(|s| s.name).unwrap_or_default();
                for span in scope_spans.spans {
                    self.spans.push(ReceivedSpan {
                        span,
                        resource: resource.clone(),
                        scope: scope.clone(),
                    });
                }
            }
        }
    }

    fn metrics(&mut self, request: ExportMetricsServiceRequest) {
        for resource_metrics in request.resource_metrics {
            for scope_metrics in resource_metrics.scope_metrics {
                self.metrics
                    .extend(scope_metrics.metrics.into_iter().map(|m| m.name));
            }
        }
    }
}

/// A running collector; stops when dropped.
pub struct TestCollector {
    http: TestBackend,
    grpc: SocketAddr,
    received: Arc<Mutex<Received>>,
    _grpc_server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct GrpcReceiver(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().expect("lock");
        received.exports.1 += 1;
        received.traces(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().expect("lock");
        received.exports.1 += 1;
        received.metrics(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl TestCollector {
    /// Starts the collector's HTTP and gRPC listeners.
    pub async fn start() -> Self {
        let received: Arc<Mutex<Received>> = Arc::default();
        let log = received.clone();
        let http = TestBackend::start(move |request| {
            let mut received = log.lock().expect("lock");
            received.exports.0 += 1;
            let decoded = match request.path.as_str() {
                "/v1/traces" => ExportTraceServiceRequest::decode(request.body.clone())
                    .map(|r| received.traces(r)),
                "/v1/metrics" => ExportMetricsServiceRequest::decode(request.body.clone())
                    .map(|r| received.metrics(r)),
                _ => return Reply::text(404, "not an OTLP path"),
            };
            match decoded {
                // An empty protobuf message is the success answer.
                Ok(()) => Reply::text(200, "").with_content_type("application/x-protobuf"),
                Err(error) => Reply::text(400, &format!("not an OTLP export: {error}")),
            }
        })
        .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let grpc = listener.local_addr().expect("address");
        let receiver = GrpcReceiver(received.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let receiver = receiver.clone();
                tokio::spawn(async move {
                    let traces = TraceServiceServer::new(receiver.clone());
                    let metrics = MetricsServiceServer::new(receiver);
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let traces = traces.clone();
                            let metrics = metrics.clone();
                            async move {
                                let service_path = request.uri().path().to_owned();
                                let response = if service_path.contains("MetricsService") {
                                    hyper::service::Service::call(
                                        &TowerToHyperService::new(metrics),
                                        request,
                                    )
                                    .await
                                } else {
                                    hyper::service::Service::call(
                                        &TowerToHyperService::new(traces),
                                        request,
                                    )
                                    .await
                                };
                                Ok::<_, Infallible>(response.unwrap_or_else(|e| match e {}))
                            }
                        },
                    );
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .http2_only()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            http,
            grpc,
            received,
            _grpc_server: server,
        }
    }

    /// The host to give an OTLP/HTTP exporter (`http://127.0.0.1`) and its
    /// port.
    pub fn http_endpoint(&self) -> (String, u16) {
        ("http://127.0.0.1".into(), self.http.addr.port())
    }

    /// The host and port to give an OTLP/gRPC exporter.
    pub fn grpc_endpoint(&self) -> (String, u16) {
        ("127.0.0.1".into(), self.grpc.port())
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.lock().expect("lock").spans.clone()
    }

    /// The names of every metric received so far.
    pub fn metric_names(&self) -> Vec<String> {
        self.received.lock().expect("lock").metrics.clone()
    }

    /// How many exports arrived over HTTP and over gRPC.
    pub fn exports(&self) -> (usize, usize) {
        self.received.lock().expect("lock").exports
    }

    /// Waits until `done` holds of what arrived, or `timeout` passes.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> bool {
        let until = Instant::now() + timeout;
        loop {
            if done(&self.spans()) {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestCollector {
    fn drop(&mut self) {
        self._grpc_server.abort();
    }
}
