//! An API-key guard, as a Sepia plugin to copy from.
//!
//! ```json
//! "endpoints": [{
//!   "endpoint": "/orders",
//!   "input_headers": ["X-Api-Key"],
//!   "backend": [{"host": ["http://orders:8000"], "url_pattern": "/orders"}],
//!   "extra_config": {
//!     "example/api-key-guard": {"keys": ["s3cret"], "served_by": "orders-gateway"}
//!   }
//! }]
//! ```
//!
//! A request without one of `keys` in `X-Api-Key` gets 401 from the plugin;
//! the backend never sees it. Responses get `X-Served-By`. Note
//! `input_headers`: modifiers see the headers the endpoint forwards.

use sepia_plugin_api::{
    export_plugin, EndpointInfo, Modifier, Plugin, PluginError, Request, RequestFlow, Response,
};

/// The guard of one endpoint.
struct ApiKeyGuard {
    keys: Vec<String>,
    served_by: String,
    endpoint: String,
}

impl Modifier for ApiKeyGuard {
    fn on_request(&self, request: &mut Request) -> Result<RequestFlow, PluginError> {
        let presented = request.header("x-api-key").and_then(|h| h.value_str());
        if presented.is_some_and(|key| self.keys.iter().any(|k| k == key)) {
            // The backend has no business with the key.
            request.remove_header("x-api-key");
            return Ok(RequestFlow::Continue);
        }
        tracing::warn!(endpoint = %self.endpoint, "request without a valid API key");
        let mut response =
            Response::json(401, r#"{"error":"a valid X-Api-Key header is required"}"#);
        response.set_header("www-authenticate", "ApiKey");
        Ok(RequestFlow::Respond(response))
    }

    fn on_response(&self, response: &mut Response) -> Result<(), PluginError> {
        response.set_header("x-served-by", &self.served_by);
        Ok(())
    }
}

struct ApiKeyGuardPlugin;

impl Plugin for ApiKeyGuardPlugin {
    const NAME: &'static str = "api-key-guard";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &["example/api-key-guard"];

    fn new_modifier(
        _namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let config: serde_json::Value = serde_json::from_str(config_json)
            .map_err(|e| PluginError::config(format!("the configuration is not JSON: {e}")))?;
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
        let served_by = config["served_by"].as_str().unwrap_or("sepia").to_owned();
        tracing::info!(endpoint = %endpoint.endpoint, keys = keys.len(), "API-key guard ready");
        Ok(Box::new(ApiKeyGuard {
            keys,
            served_by,
            endpoint: endpoint.endpoint.to_string(),
        }))
    }
}

export_plugin!(ApiKeyGuardPlugin);
