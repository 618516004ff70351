//! KrakenD's circuit breaker as a Sepia plugin: `qos/circuit-breaker` in a
//! backend's `extra_config` (`github.com/devopsfaith/krakend-circuitbreaker/gobreaker`
//! in version-2 files). Each backend gets its own breaker; while it is open
//! the backend fails at once with gobreaker's "circuit breaker is open", so
//! the client gets what KrakenD answers for a failing backend (a 500 for a
//! lone backend, an incomplete merge otherwise).
//!
//! ```json
//! "extra_config": {
//!   "qos/circuit-breaker": {
//!     "interval": 60, "timeout": 10, "max_errors": 1,
//!     "name": "cb-users", "log_status_change": true
//!   }
//! }
//! ```

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod breaker;
mod settings;

use std::time::Instant;

use breaker::{Breaker, State};
use sepia_plugin_api::{
    export_plugin, host, is_krakend2, BackendResult, EndpointInfo, Hooks, Modifier, ModifierScope,
    Plugin, PluginError, Request, RequestContext, RequestFlow,
};

/// The context value a breaker notes the generation it let a call through
/// in, so that its result hook counts only calls it let through (gobreaker
/// ignores results from an earlier generation).
const ADMITTED: &str = "sepia/circuit-breaker";

struct CircuitBreaker {
    breaker: Breaker,
}

impl Modifier for CircuitBreaker {
    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::BACKEND_RESULT
    }

    fn on_request(&self, _: &mut Request) -> Result<RequestFlow, PluginError> {
        Err(PluginError::internal(
            "the circuit breaker needs the request's context: the gateway is older than sepia-plugin-api 1.3",
        ))
    }

    fn on_request_with(
        &self,
        _: &mut Request,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        match self.breaker.before(Instant::now()) {
            Ok(generation) => {
                context.set_value(ADMITTED, generation.to_string());
                Ok(RequestFlow::Continue)
            }
            // The backend fails with gobreaker's error, as lura reports it.
            Err(refusal) => Err(PluginError::internal(refusal.message())),
        }
    }

    fn on_backend_result(&self, result: &BackendResult, context: &RequestContext) {
        let Some(generation) = context.value(ADMITTED).and_then(|g| g.parse().ok()) else {
            return;
        };
        self.breaker
            .after(generation, result.succeeded(), Instant::now());
    }
}

struct CircuitBreakerPlugin;

impl Plugin for CircuitBreakerPlugin {
    const NAME: &'static str = "circuit-breaker";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &["qos/circuit-breaker"];

    fn new_modifier(
        namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        if endpoint.scope != ModifierScope::Backend {
            return Err(PluginError::config(format!(
                "\"{namespace}\" guards a backend: move it to a backend's extra_config"
            )));
        }
        let krakend2 = is_krakend2(host().map_or(3, |h| h.config_version()));
        let parsed =
            settings::Settings::parse(config_json, krakend2).map_err(PluginError::config)?;
        let log_changes = parsed.log_status_change;
        let backend = endpoint.backend_url_pattern.to_string();
        let on_change = move |name: &str, from: State, to: State| {
            if !log_changes {
                return;
            }
            if krakend2 {
                tracing::warn!(%backend, "[CB] Circuit breaker named '{name}' went from '{}' to '{}'", from.name(), to.name());
            } else {
                tracing::warn!(%backend, "circuit breaker named '{name}' went from '{}' to '{}'", from.name(), to.name());
            }
        };
        Ok(Box::new(CircuitBreaker {
            breaker: Breaker::new(parsed.breaker, Instant::now(), on_change),
        }))
    }
}

export_plugin!(CircuitBreakerPlugin);
