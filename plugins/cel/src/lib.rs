//! The CEL checks: KrakenD's `validation/cel` (`github.com/devopsfaith/krakend-cel`
//! in version-2 files) as a Sepia plugin, on the cel-rust interpreter. At an
//! endpoint or a backend, a list of expressions that must each be `true`:
//!
//! ```json
//! "extra_config": {
//!   "validation/cel": [
//!     {"check_expr": "'something' in req_headers['X-Header']"},
//!     {"check_expr": "int(req_params.Id) % 2 == 0"},
//!     {"check_expr": "size(JWT.roles) > 1"}
//!   ]
//! }
//! ```
//!
//! As in krakend-cel, an expression naming `req` is checked before the
//! backends are called, one naming `resp` on the answer, and one naming
//! `JWT` on the claims the validator verified. A check that is not `true`
//! (false, another value, or an error) stops the request: `request aborted
//! by evaluator #N` (500 at an endpoint; at a backend, that backend fails,
//! as lura counts a failed backend), or a bare 401 for a claims check, as
//! krakend-jose's rejecter answers.

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod activation;
mod checks;
mod evaluator;

use sepia_plugin_api::{
    export_plugin, is_krakend2, EndpointInfo, Modifier, ModifierScope, Plugin, PluginError,
};

struct CelPlugin;

impl Plugin for CelPlugin {
    const NAME: &'static str = "cel";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &["validation/cel"];

    fn new_modifier(
        _namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let version = sepia_plugin_api::host().map_or(3, |h| h.config_version());
        let checks =
            checks::Checks::parse(config_json, endpoint.scope).map_err(PluginError::config)?;
        let label = match endpoint.scope {
            ModifierScope::Endpoint => format!("[ENDPOINT: {}][CEL]", endpoint.endpoint),
            ModifierScope::Backend => {
                format!("[BACKEND: {}][CEL]", endpoint.backend_url_pattern)
            }
        };
        Ok(Box::new(evaluator::Evaluator::new(
            checks,
            label,
            is_krakend2(version),
        )))
    }
}

export_plugin!(CelPlugin);
