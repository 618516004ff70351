//! The JOSE validator: KrakenD's `github.com/devopsfaith/krakend-jose/validator`
//! (alias `auth/validator`) as a Sepia plugin, and its revoker
//! (`github_com/devopsfaith/bloomfilter`, alias `auth/revoker`). A protected
//! endpoint answers 401 to a request without a valid token and 403 to one
//! without the roles or scopes it requires; the claims of a valid token go
//! to the backends as headers and to `{JWT.claim}` in their URLs.
//!
//! ```json
//! "extra_config": {
//!   "auth/validator": {
//!     "alg": "RS256", "jwk_url": "https://idp.internal/jwks.json",
//!     "audience": ["https://api.example.com"], "issuer": "https://idp.internal",
//!     "roles": ["admin"], "propagate_claims": [["sub", "x-user"]]
//!   }
//! }
//! ```
//!
//! Settings: every one krakend-jose reads in either generation (see
//! `settings.rs`), and Sepia's `jwk_refresh_interval`,
//! `jwk_startup_timeout` and `token_cache_size`.

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod access;
mod cache;
mod extract;
mod key_store;
mod modifier;
mod revocation;
mod revoker;
mod settings;
mod token;

use sepia_plugin_api::{export_plugin, EndpointInfo, Modifier, Plugin, PluginError, ServiceInfo};

struct JoseValidatorPlugin;

impl Plugin for JoseValidatorPlugin {
    const NAME: &'static str = "jose-validator";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &["auth/validator"];
    const SERVICE_NAMESPACES: &'static [&'static str] = &["auth/revoker"];

    fn new_modifier(
        _namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let host = sepia_plugin_api::host();
        let version = host.map_or(3, |h| h.config_version());
        let settings =
            settings::Settings::parse(config_json, version).map_err(PluginError::config)?;
        if host.is_some_and(|h| h.checking()) && settings.keys.is_remote() {
            // `sepia check` must not depend on the key server.
            return Ok(Box::new(modifier::CheckedOnly));
        }
        let validator = modifier::Validator::new(settings, endpoint.endpoint.to_string())
            .map_err(PluginError::config)?;
        Ok(Box::new(validator))
    }

    fn new_service_modifier(
        _namespace: &str,
        config_json: &str,
        _service: &ServiceInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let settings = revoker::Settings::parse(config_json).map_err(PluginError::config)?;
        if sepia_plugin_api::host().is_some_and(|h| h.checking()) {
            // `sepia check` must not depend on Redis.
            return Ok(Box::new(revoker::CheckedOnly));
        }
        let revoker = revoker::Revoker::start(settings).map_err(PluginError::config)?;
        Ok(Box::new(revoker))
    }
}

export_plugin!(JoseValidatorPlugin);
