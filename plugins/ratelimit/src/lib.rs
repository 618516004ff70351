//! KrakenD's rate limits as a Sepia plugin: `qos/ratelimit/router` on an
//! endpoint (`github.com/devopsfaith/krakend-ratelimit/juju/router` in
//! version-2 files) and `qos/ratelimit/proxy` on a backend
//! (`.../juju/proxy`), each with its generation's settings and token
//! bucket. The buckets live in the plugin, shared by all of the gateway's
//! workers; with `"redis": {"url": ...}` they live in Redis instead, and
//! every gateway instance counts against one limit.
//!
//! ```json
//! "extra_config": {
//!   "qos/ratelimit/router": {
//!     "max_rate": 100, "client_max_rate": 5, "strategy": "ip",
//!     "redis": {"url": "redis://127.0.0.1:6379", "on_failure": "local"}
//!   }
//! }
//! ```

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bucket;
mod limiter;
mod settings;
mod shared;
mod store;

use sepia_plugin_api::{
    export_plugin, host, is_krakend2, EndpointInfo, Modifier, ModifierScope, Plugin, PluginError,
};
use settings::{ProxySettings, RouterSettings};

const ROUTER: &str = "qos/ratelimit/router";
const PROXY: &str = "qos/ratelimit/proxy";

struct RateLimitPlugin;

impl Plugin for RateLimitPlugin {
    const NAME: &'static str = "ratelimit";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &[ROUTER, PROXY];

    fn new_modifier(
        namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let host = host();
        let krakend2 = is_krakend2(host.map_or(3, |h| h.config_version()));
        // `sepia check` must not depend on Redis.
        let checking = host.is_some_and(|h| h.checking());
        let is_router = namespace == ROUTER || namespace.ends_with("/router");
        let scope = format!("{} {}", endpoint.method, endpoint.endpoint);
        match (is_router, endpoint.scope) {
            (true, ModifierScope::Endpoint) => {
                let mut settings =
                    RouterSettings::parse(config_json, krakend2).map_err(PluginError::config)?;
                if checking {
                    settings.redis = None;
                }
                let limiter =
                    limiter::RouterLimiter::new(settings, scope).map_err(PluginError::config)?;
                Ok(Box::new(limiter))
            }
            (false, ModifierScope::Backend) => {
                let mut settings =
                    ProxySettings::parse(config_json, krakend2).map_err(PluginError::config)?;
                if checking {
                    settings.redis = None;
                }
                let scope = format!("{scope} {}", endpoint.backend_url_pattern);
                let limiter =
                    limiter::ProxyLimiter::new(settings, scope).map_err(PluginError::config)?;
                Ok(Box::new(limiter))
            }
            (true, ModifierScope::Backend) => Err(PluginError::config(format!(
                "\"{namespace}\" limits an endpoint: move it to the endpoint's extra_config (a backend's limit is \"{PROXY}\")"
            ))),
            (false, ModifierScope::Endpoint) => Err(PluginError::config(format!(
                "\"{namespace}\" limits a backend: move it to a backend's extra_config (an endpoint's limit is \"{ROUTER}\")"
            ))),
        }
    }
}

export_plugin!(RateLimitPlugin);
