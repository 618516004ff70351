//! HTTP security: KrakenD's `security/http`
//! (`github_com/devopsfaith/krakend-httpsecure` in version-2 files) as a
//! Sepia plugin, in front of the router as krakend-httpsecure's gin
//! middleware is: unknown hosts refused, plain-http requests redirected to
//! https when asked, and the security headers on every answer, following
//! unrolled/secure as each generation uses it.
//!
//! ```json
//! "extra_config": {
//!   "security/http": {
//!     "allowed_hosts": ["api.example.com"], "ssl_proxy_headers": {"X-Forwarded-Proto": "https"},
//!     "sts_seconds": 31536000, "sts_include_subdomains": true, "frame_deny": true,
//!     "content_type_nosniff": true, "browser_xss_filter": true,
//!     "content_security_policy": "default-src 'self'", "referrer_policy": "same-origin"
//!   }
//! }
//! ```

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod secure;

use sepia_plugin_api::{export_plugin, EndpointInfo, Modifier, Plugin, PluginError, ServiceInfo};

struct HttpSecurityPlugin;

impl Plugin for HttpSecurityPlugin {
    const NAME: &'static str = "http-security";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &[];
    const SERVICE_NAMESPACES: &'static [&'static str] = &["security/http"];

    fn new_modifier(
        namespace: &str,
        _config_json: &str,
        _endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        Err(PluginError::config(format!(
            "{namespace} belongs in the top-level extra_config: it covers the whole gateway, as in KrakenD"
        )))
    }

    fn new_service_modifier(
        _namespace: &str,
        config_json: &str,
        service: &ServiceInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let secure = secure::Secure::parse(config_json, service.config_version)
            .map_err(PluginError::config)?;
        Ok(Box::new(secure))
    }
}

export_plugin!(HttpSecurityPlugin);
