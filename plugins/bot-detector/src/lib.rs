//! The bot detector: KrakenD's `security/bot-detector`
//! (`github_com/devopsfaith/krakend-botdetector` in version-2 files) as a
//! Sepia plugin. A request whose `User-Agent` is denied or matches a bot
//! pattern, and is not allowed, gets a bare 403, as krakend-botdetector
//! aborts it. At the top level it guards every request (404s too, as a gin
//! middleware does); in an endpoint's `extra_config`, that endpoint.
//!
//! ```json
//! "extra_config": {
//!   "security/bot-detector": {
//!     "allow": ["MyAndroidClient/1.0"], "deny": ["a", "b"],
//!     "patterns": ["(Pingdom.com_bot_version_).*", "(facebookexternalhit)/.*"],
//!     "empty_user_agent_is_bot": true
//!   }
//! }
//! ```

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod detector;

use sepia_plugin_api::{export_plugin, EndpointInfo, Modifier, Plugin, PluginError, ServiceInfo};

struct BotDetectorPlugin;

impl Plugin for BotDetectorPlugin {
    const NAME: &'static str = "bot-detector";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &["security/bot-detector"];
    const SERVICE_NAMESPACES: &'static [&'static str] = &["security/bot-detector"];

    fn new_modifier(
        _namespace: &str,
        config_json: &str,
        _endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let detector = detector::Detector::parse(config_json).map_err(PluginError::config)?;
        Ok(Box::new(detector))
    }

    fn new_service_modifier(
        _namespace: &str,
        config_json: &str,
        _service: &ServiceInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let detector = detector::Detector::parse(config_json).map_err(PluginError::config)?;
        Ok(Box::new(detector))
    }
}

export_plugin!(BotDetectorPlugin);
