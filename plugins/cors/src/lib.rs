//! CORS: KrakenD's `security/cors` (`github_com/devopsfaith/krakend-cors` in
//! version-2 files) as a Sepia plugin. It sits in front of the router, as
//! krakend-cors wraps KrakenD's whole handler: it answers preflight
//! requests itself and adds the CORS headers to every other answer, 404s
//! included, following rs/cors as the file's generation uses it (1.6 under
//! KrakenD 1.x, 1.11 under KrakenD 2.x).
//!
//! ```json
//! "extra_config": {
//!   "security/cors": {
//!     "allow_origins": ["https://app.example.com"], "allow_methods": ["GET", "POST"],
//!     "allow_headers": ["Origin", "Authorization", "Content-Type"],
//!     "expose_headers": ["Content-Length"], "max_age": "12h", "allow_credentials": true
//!   }
//! }
//! ```

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod policy;
mod service;
mod settings;

use sepia_plugin_api::{export_plugin, EndpointInfo, Modifier, Plugin, PluginError, ServiceInfo};

struct CorsPlugin;

impl Plugin for CorsPlugin {
    const NAME: &'static str = "cors";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &[];
    const SERVICE_NAMESPACES: &'static [&'static str] = &["security/cors"];

    fn new_modifier(
        namespace: &str,
        _config_json: &str,
        _endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        Err(PluginError::config(format!(
            "{namespace} belongs in the top-level extra_config: CORS covers the whole gateway, as in KrakenD"
        )))
    }

    fn new_service_modifier(
        _namespace: &str,
        config_json: &str,
        service: &ServiceInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let settings = settings::Settings::parse(config_json, service.config_version)
            .map_err(PluginError::config)?;
        Ok(Box::new(service::CorsService::new(policy::Policy::new(
            settings,
        ))))
    }
}

export_plugin!(CorsPlugin);
