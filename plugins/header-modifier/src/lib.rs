//! A Sepia plugin that edits headers, configured per endpoint under the
//! namespace `sepia/header-modifier`:
//!
//! ```json
//! "extra_config": {
//!   "sepia/header-modifier": {
//!     "request_set": {"x-api-version": "2"},
//!     "request_remove": ["cookie"],
//!     "response_set": {"cache-control": "no-store"},
//!     "response_remove": ["server"],
//!     "block_when_header": "x-block",
//!     "log_responses": true,
//!     "fault": {"on": "request", "kind": "panic"},
//!     "delay_ms": 0
//!   }
//! }
//! ```
//!
//! `block_when_header` answers requests carrying that header with 403 and a
//! JSON body, without calling the backend. `fault` injects a failure (`kind`
//! `panic` or `error`, `on` `request` or `response`) so that a gateway's
//! handling of misbehaving plugins can be tested; `delay_ms` makes every
//! response hook that slow (and declares the modifier blocking).

mod settings;

use sepia_plugin_api::{
    export_plugin, EndpointInfo, Modifier, Plugin, PluginError, Request, RequestFlow, Response,
};

use settings::{Fault, FaultKind, Hook, Settings};

/// The plugin's namespace.
pub const NAMESPACE: &str = "sepia/header-modifier";

struct HeaderModifier {
    settings: Settings,
    endpoint: String,
}

impl HeaderModifier {
    fn inject(&self, hook: Hook) -> Result<(), PluginError> {
        match &self.settings.fault {
            Some(Fault { on, kind }) if *on == hook => match kind {
                FaultKind::Panic => panic!("fault injected in {hook:?} at {}", self.endpoint),
                FaultKind::Error => Err(PluginError::new(
                    418,
                    format!("fault injected in {hook:?} at {}", self.endpoint),
                )),
            },
            _ => Ok(()),
        }
    }
}

impl Modifier for HeaderModifier {
    fn on_request(&self, request: &mut Request) -> Result<RequestFlow, PluginError> {
        self.inject(Hook::Request)?;
        if let Some(name) = &self.settings.block_when_header {
            if request.header(name).is_some() {
                tracing::info!(endpoint = %self.endpoint, header = %name, "request blocked");
                let body =
                    serde_json::json!({ "error": format!("requests with {name} are not allowed") });
                return Ok(RequestFlow::Respond(Response::json(403, body.to_string())));
            }
        }
        for name in &self.settings.request_remove {
            request.remove_header(name);
        }
        for (name, value) in &self.settings.request_set {
            request.set_header(name, value);
        }
        Ok(RequestFlow::Continue)
    }

    fn on_response(&self, response: &mut Response) -> Result<(), PluginError> {
        self.inject(Hook::Response)?;
        if self.settings.delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.settings.delay_ms));
        }
        for name in &self.settings.response_remove {
            response.remove_header(name);
        }
        for (name, value) in &self.settings.response_set {
            response.set_header(name, value);
        }
        if self.settings.log_responses {
            tracing::info!(endpoint = %self.endpoint, status = response.status, "response modified");
        }
        Ok(())
    }

    /// A deliberately slow modifier says so, and runs on the hook threads.
    fn is_blocking(&self) -> bool {
        self.settings.delay_ms > 0
    }
}

/// The plugin, also usable compiled in (see `sepia::plugin_host::root_module::Builtin`).
pub struct HeaderModifierPlugin;

impl Plugin for HeaderModifierPlugin {
    const NAME: &'static str = "header-modifier";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &[NAMESPACE];

    fn new_modifier(
        _namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let settings = Settings::parse(config_json).map_err(PluginError::config)?;
        tracing::debug!(endpoint = %endpoint.endpoint, "header modifier built");
        Ok(Box::new(HeaderModifier {
            settings,
            endpoint: endpoint.endpoint.to_string(),
        }))
    }
}

export_plugin!(HeaderModifierPlugin);
