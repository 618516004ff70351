//! An API-key guard, as a Sepia plugin to copy from.
//!
//! ```json
//! "extra_config": {"example/served-by": {"name": "orders-gateway"}},
//! "endpoints": [{
//!   "endpoint": "/orders",
//!   "input_headers": ["X-Api-Key"],
//!   "backend": [{"host": ["http://orders:8000"], "url_pattern": "/orders"}],
//!   "extra_config": {
//!     "example/api-key-guard": {"keys": ["s3cret"], "max_failures": 5}
//!   }
//! }]
//! ```
//!
//! A request without one of `keys` in `X-Api-Key` gets 401 from the plugin;
//! the backend never sees it. A client (by address) that fails
//! `max_failures` times within a minute gets 429 until the minute is over,
//! counted across all of the gateway's workers. Rejections are counted in
//! the metric `api_key_guard_rejected_total`. Note `input_headers`:
//! endpoint modifiers see the headers the endpoint forwards.
//!
//! At the top level, `example/served-by` stamps `X-Served-By` on every
//! answer the gateway gives, its own 404s included: a service-level
//! modifier.

use std::time::Duration;

use sepia_plugin_api::{
    export_plugin, host, BodyLayout, EndpointInfo, MetricId, MetricKind, MetricSpec, Modifier,
    Plugin, PluginError, Request, RequestContext, RequestFlow, Response, ServiceInfo,
};

/// How long failed attempts are remembered.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The guard of one endpoint.
struct ApiKeyGuard {
    keys: Vec<String>,
    max_failures: i64,
    endpoint: String,
    rejected: Option<MetricId>,
}

impl ApiKeyGuard {
    fn reject(&self, status: u16, reason: &str, message: &str) -> RequestFlow {
        if let (Some(host), Some(metric)) = (host(), self.rejected) {
            host.record(metric, &[&self.endpoint, reason], 1.0);
        }
        let body = format!(r#"{{"error":"{message}"}}"#);
        let mut response = Response::json(status, body);
        response.set_header("www-authenticate", "ApiKey");
        RequestFlow::Respond(response)
    }
}

impl Modifier for ApiKeyGuard {
    // The `_with` form: it needs the client's address from the context.
    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        // Shared by every worker; the plugin keeps no state of its own.
        let failures_key = format!("api-key-guard/failures/{}", context.client_ip);
        let shared = host();
        let failures = shared.map_or(0, |h| h.shared_add(&failures_key, 0, Some(FAILURE_WINDOW)));
        if failures >= self.max_failures {
            return Ok(self.reject(429, "too_many_failures", "too many failed attempts"));
        }
        let presented = request.header("x-api-key").and_then(|h| h.value_str());
        if presented.is_some_and(|key| self.keys.iter().any(|k| k == key)) {
            // The backend has no business with the key.
            request.remove_header("x-api-key");
            return Ok(RequestFlow::Continue);
        }
        if let Some(shared) = shared {
            shared.shared_add(&failures_key, 1, Some(FAILURE_WINDOW));
        }
        tracing::warn!(endpoint = %self.endpoint, request_id = %context.request_id, "request without a valid API key");
        Ok(self.reject(401, "missing_key", "a valid X-Api-Key header is required"))
    }
}

/// Stamps every answer of the service.
struct ServedBy(String);

impl Modifier for ServedBy {
    fn on_response_with(
        &self,
        response: &mut Response,
        _: &mut RequestContext,
        _: &BodyLayout,
    ) -> Result<(), PluginError> {
        response.set_header("x-served-by", &self.0);
        Ok(())
    }
}

struct ApiKeyGuardPlugin;

fn parse(config_json: &str) -> Result<serde_json::Value, PluginError> {
    serde_json::from_str(config_json)
        .map_err(|e| PluginError::config(format!("the configuration is not JSON: {e}")))
}

impl Plugin for ApiKeyGuardPlugin {
    const NAME: &'static str = "api-key-guard";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &["example/api-key-guard"];
    const SERVICE_NAMESPACES: &'static [&'static str] = &["example/served-by"];

    fn new_modifier(
        _namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let config = parse(config_json)?;
        let keys: Vec<String> = config["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if keys.is_empty() {
            return Err(PluginError::config(
                "\"keys\" is missing or empty: list the API keys to accept",
            ));
        }
        let max_failures = match &config["max_failures"] {
            serde_json::Value::Null => 10,
            value => value.as_i64().filter(|n| *n > 0).ok_or_else(|| {
                PluginError::config("\"max_failures\" must be a whole number above 0")
            })?,
        };
        // Registered once per endpoint; the same metric comes back each time.
        let rejected = match host() {
            Some(host) => Some(
                host.register_metric(
                    MetricSpec::new(
                        MetricKind::Counter,
                        "api_key_guard_rejected_total",
                        "Requests the API-key guard refused",
                    )
                    .with_labels(&["endpoint", "reason"]),
                )?,
            ),
            None => None,
        };
        tracing::info!(endpoint = %endpoint.endpoint, keys = keys.len(), "API-key guard ready");
        Ok(Box::new(ApiKeyGuard {
            keys,
            max_failures,
            endpoint: endpoint.endpoint.to_string(),
            rejected,
        }))
    }

    fn new_service_modifier(
        _namespace: &str,
        config_json: &str,
        service: &ServiceInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let config = parse(config_json)?;
        let name = match config["name"].as_str() {
            Some(name) => name.to_owned(),
            None => service.name.to_string(),
        };
        Ok(Box::new(ServedBy(name)))
    }
}

export_plugin!(ApiKeyGuardPlugin);
