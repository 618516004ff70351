//! The JOSE signer: KrakenD's `github.com/devopsfaith/krakend-jose/signer`
//! (alias `auth/signer`) as a Sepia plugin. An endpoint whose backend issues
//! plain claims answers the client with signed JWTs, made with a key that
//! never leaves the gateway.
//!
//! ```json
//! "extra_config": {
//!   "auth/signer": {
//!     "alg": "RS256", "kid": "2011-04-29",
//!     "keys_to_sign": ["access_token", "refresh_token"],
//!     "jwk_url": "https://keys.internal/jwk/private.json"
//!   }
//! }
//! ```
//!
//! Settings: `alg`, `kid`, `keys_to_sign` (`keys-to-sign`), `jwk_url`
//! (`jwk-url`), `jwk_local_path`, `jwk_local_ca`, `full`, `typ`,
//! `disable_jwk_security`, `jwk_fingerprints`, `cipher_suites`, and Sepia's
//! `jwk_refresh_interval` (default `5m`, `0s` turns refreshing off) and
//! `jwk_startup_timeout` (default `15s`).

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated); the system one made a tenth of an HS256 endpoint's cost in
// malloc and free, mimalloc's thread-local heaps far less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod key_set;
mod modifier;
mod settings;
mod token;

use sepia_plugin_api::{export_plugin, EndpointInfo, Modifier, Plugin, PluginError};

struct JoseSignerPlugin;

impl Plugin for JoseSignerPlugin {
    const NAME: &'static str = "jose-signer";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &["auth/signer"];

    fn new_modifier(
        _namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let settings = settings::Settings::parse(config_json).map_err(PluginError::config)?;
        let checking = sepia_plugin_api::host().is_some_and(|host| host.checking());
        if checking && settings.keys.is_remote() {
            // `sepia check` must not depend on the key server: the settings
            // were checked; the key is fetched by `sepia run` (or `check
            // --fetch`). A local key file is read, and so checked, below.
            return Ok(Box::new(modifier::CheckedOnly));
        }
        let signer = modifier::Signer::new(settings, endpoint.endpoint.to_string())
            .map_err(PluginError::config)?;
        Ok(Box::new(signer))
    }
}

export_plugin!(JoseSignerPlugin);
