//! Lua scripts, as KrakenD's krakend-lua runs them, on the mlua interpreter
//! (Lua 5.1, the language of gopher-lua under KrakenD):
//!
//! ```json
//! "extra_config": {
//!   "modifier/lua-proxy": {
//!     "sources": ["scripts/decorate.lua"],
//!     "pre": "local r = request.load(); r:headers('X-Seen', 'yes')",
//!     "post": "decorate(response.load())",
//!     "live": false,
//!     "allow_open_libs": false,
//!     "skip_next": false
//!   }
//! }
//! ```
//!
//! - `modifier/lua-endpoint` (an endpoint or the top level): `pre` on the
//!   client's request, through `ctx.load()`.
//! - `modifier/lua-proxy` (an endpoint): `pre` on the request before the
//!   backends are called, `post` on the merged answer.
//! - `modifier/lua-backend` (a backend): `pre` on the request to that
//!   backend, `post` on its answer.
//!
//! Each thread keeps its own Lua state per namespace, with the sources run
//! once; every run is limited in instructions and memory, so a script that
//! loops or hoards fails its request and nothing else.

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod accessors;
mod context;
mod data;
mod endpoint_script;
mod engine;
mod failure;
mod header_map;
mod http_client;
mod json_helpers;
mod lua_text;
mod proxy_script;
mod query;
mod request;
mod response;
mod script;
mod settings;

use sepia_plugin_api::{
    export_plugin, is_krakend2, EndpointInfo, Modifier, ModifierScope, Plugin, PluginError,
    ServiceInfo,
};

use crate::{engine::Engine, settings::Settings};

const ENDPOINT: &str = "modifier/lua-endpoint";
const PROXY: &str = "modifier/lua-proxy";
const BACKEND: &str = "modifier/lua-backend";

struct LuaPlugin;

/// The namespace's settings, its sources read and every chunk compiled.
fn engine(config_json: &str, timeout_ms: u64) -> Result<(Engine, bool, bool), PluginError> {
    let version = sepia_plugin_api::host().map_or(3, |h| h.config_version());
    let krakend2 = is_krakend2(version);
    let (settings, sources) =
        Settings::parse(config_json).map_err(|e| PluginError::config(e.to_string()))?;
    script::check_syntax(&sources, &settings.pre, &settings.post)
        .map_err(|e| PluginError::config(format!("Lua syntax error in {e}")))?;
    // A script that calls out, or reads its files on every run, waits on
    // I/O: it runs on the gateway's hook threads.
    let calls_out = settings.pre.contains("http_response")
        || settings.post.contains("http_response")
        || sources.iter().any(|s| s.text.contains("http_response"));
    let blocking = calls_out || settings.live;
    Ok((
        Engine::new(settings, sources, krakend2, timeout_ms),
        krakend2,
        blocking,
    ))
}

impl Plugin for LuaPlugin {
    const NAME: &'static str = "lua";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &[ENDPOINT, PROXY, BACKEND];
    const SERVICE_NAMESPACES: &'static [&'static str] = &[ENDPOINT];

    fn new_modifier(
        namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let (engine, krakend2, blocking) = engine(config_json, endpoint.timeout_ms)?;
        let at_endpoint = format!("[ENDPOINT: {}][Lua]", endpoint.endpoint);
        match (namespace, endpoint.scope) {
            (ENDPOINT, ModifierScope::Endpoint) => {
                Ok(Box::new(endpoint_script::EndpointScript::new(
                    engine,
                    krakend2,
                    at_endpoint,
                    false,
                    blocking,
                )))
            }
            (PROXY, ModifierScope::Endpoint) => Ok(Box::new(proxy_script::ProxyScript::new(
                engine,
                ModifierScope::Endpoint,
                krakend2,
                at_endpoint,
                blocking,
            ))),
            (BACKEND, ModifierScope::Backend) => Ok(Box::new(proxy_script::ProxyScript::new(
                engine,
                ModifierScope::Backend,
                krakend2,
                format!("[BACKEND: {}][Lua]", endpoint.backend_url_pattern),
                blocking,
            ))),
            (BACKEND, ModifierScope::Endpoint) => Err(PluginError::config(format!(
                "{BACKEND} runs on one backend's request and answer: move it into a backend's \
                 extra_config, or use {PROXY} for the endpoint's"
            ))),
            (_, ModifierScope::Backend) => Err(PluginError::config(format!(
                "{namespace} runs at an endpoint: in a backend's extra_config use {BACKEND}"
            ))),
            (other, _) => Err(PluginError::config(format!(
                "the lua plugin does not serve \"{other}\""
            ))),
        }
    }

    fn new_service_modifier(
        namespace: &str,
        config_json: &str,
        _service: &ServiceInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        if namespace != ENDPOINT {
            return Err(PluginError::config(format!(
                "{namespace} runs at an endpoint or a backend; at the top level only \
                 {ENDPOINT} runs"
            )));
        }
        let (engine, krakend2, blocking) = engine(config_json, 0)?;
        Ok(Box::new(endpoint_script::EndpointScript::new(
            engine,
            krakend2,
            "[SERVICE: Gin][Lua]".to_owned(),
            true,
            blocking,
        )))
    }
}

export_plugin!(LuaPlugin);
