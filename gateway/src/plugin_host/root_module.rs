//! A loaded plugin's root module, whichever interface version it was built
//! against. abi_stable refuses a library whose vtables have fewer methods
//! than the host's, so each earlier interface is kept frozen
//! (`compat/plugin-api-1.0`) and a plugin built against it is adapted to the
//! current one: the methods it lacks get their defaults.

#![allow(non_local_definitions)]

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RErr, ROk, RResult, RStr, RString, RVec},
};
use sepia_plugin_api::{
    AbiModifier, AbiModifier_TO, EndpointInfo, FetchRequest, Header, HostBox, LogLevel,
    ModifierBox, ModifierScope, PluginError, PluginModuleRef, Request, RequestFlow, Response,
    TlsOptions,
};
use sepia_plugin_api_v1_0 as v1_0;

use super::host_services::GatewayHost;

/// What builds a built-in plugin's modifiers: [`sepia_plugin_api::Plugin::new_modifier`].
pub type ModifierFactory =
    fn(&str, &str, &EndpointInfo) -> Result<Box<dyn sepia_plugin_api::Modifier>, PluginError>;

/// A plugin compiled into the binary, for programs that embed the gateway
/// as a library: the same [`sepia_plugin_api::Plugin`] a `.so` exports,
/// called without crossing a library boundary.
#[derive(Clone, Copy)]
pub struct Builtin {
    name: &'static str,
    version: &'static str,
    namespaces: &'static [&'static str],
    factory: ModifierFactory,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin")
            .field("name", &self.name)
            .field("namespaces", &self.namespaces)
            .finish()
    }
}

impl Builtin {
    /// The built-in form of plugin `P`.
    pub fn of<P: sepia_plugin_api::Plugin>() -> Self {
        Self {
            name: P::NAME,
            version: P::VERSION,
            namespaces: P::NAMESPACES,
            factory: P::new_modifier,
        }
    }
}

/// The root module of a plugin.
#[derive(Clone, Copy)]
pub enum RootModule {
    /// Built against the current interface.
    Current(PluginModuleRef),
    /// Built against ABI 1.0.
    V1_0(v1_0::PluginModuleRef),
    /// Compiled into this binary.
    Builtin(Builtin),
}

/// What a plugin says about itself.
pub struct Info {
    pub name: String,
    pub version: String,
    pub namespaces: Vec<String>,
}

impl RootModule {
    /// Name, version, namespaces.
    pub fn info(&self) -> Info {
        match self {
            RootModule::Current(module) => {
                let info = (module.info())();
                Info {
                    name: info.name.into_string(),
                    version: info.version.into_string(),
                    namespaces: info.namespaces.iter().map(|n| n.to_string()).collect(),
                }
            }
            RootModule::V1_0(module) => {
                let info = (module.info())();
                Info {
                    name: info.name.into_string(),
                    version: info.version.into_string(),
                    namespaces: info.namespaces.iter().map(|n| n.to_string()).collect(),
                }
            }
            RootModule::Builtin(builtin) => Info {
                name: builtin.name.to_owned(),
                version: builtin.version.to_owned(),
                namespaces: builtin.namespaces.iter().map(|n| (*n).to_owned()).collect(),
            },
        }
    }

    /// Hands the plugin its host services.
    pub fn init(&self, host: GatewayHost) -> Result<(), PluginError> {
        match self {
            RootModule::Current(module) => {
                let host: HostBox =
                    sepia_plugin_api::AbiHost_TO::from_ptr(RArc::new(host), TD_Opaque);
                (module.init())(host).into_result()
            }
            RootModule::V1_0(module) => {
                let host: v1_0::HostBox = v1_0::AbiHost_TO::from_ptr(RArc::new(host), TD_Opaque);
                (module.init())(host).into_result().map_err(error_from_v1_0)
            }
            // Compiled in: it shares the gateway's tracing and runtime.
            RootModule::Builtin(_) => Ok(()),
        }
    }

    /// Builds a modifier, as the current interface's object.
    pub fn new_modifier(
        &self,
        namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<ModifierBox, PluginError> {
        match self {
            RootModule::Current(module) => {
                (module.new_modifier())(RStr::from(namespace), RStr::from(config_json), endpoint)
                    .into_result()
            }
            RootModule::V1_0(module) => {
                let endpoint = v1_0::EndpointInfo {
                    endpoint: endpoint.endpoint.clone(),
                    method: endpoint.method.clone(),
                    scope: match endpoint.scope {
                        ModifierScope::Endpoint => v1_0::ModifierScope::Endpoint,
                        ModifierScope::Backend => v1_0::ModifierScope::Backend,
                    },
                    backend_url_pattern: endpoint.backend_url_pattern.clone(),
                    timeout_ms: endpoint.timeout_ms,
                };
                (module.new_modifier())(RStr::from(namespace), RStr::from(config_json), &endpoint)
                    .into_result()
                    .map(|old| AbiModifier_TO::from_value(V1_0Modifier(old), TD_Opaque))
                    .map_err(error_from_v1_0)
            }
            RootModule::Builtin(builtin) => (builtin.factory)(namespace, config_json, endpoint)
                .map(sepia_plugin_api::into_modifier_box),
        }
    }
}

fn error_from_v1_0(error: v1_0::PluginError) -> PluginError {
    PluginError {
        status: error.status,
        message: error.message,
    }
}

fn error_to_v1_0(error: PluginError) -> v1_0::PluginError {
    v1_0::PluginError {
        status: error.status,
        message: error.message,
    }
}

fn headers_to_v1_0(headers: RVec<Header>) -> RVec<v1_0::Header> {
    headers
        .into_iter()
        .map(|h| v1_0::Header {
            name: h.name,
            value: h.value,
        })
        .collect()
}

fn headers_from_v1_0(headers: RVec<v1_0::Header>) -> RVec<Header> {
    headers
        .into_iter()
        .map(|h| Header {
            name: h.name,
            value: h.value,
        })
        .collect()
}

fn response_to_v1_0(response: Response) -> v1_0::Response {
    v1_0::Response {
        status: response.status,
        headers: headers_to_v1_0(response.headers),
        body: response.body,
        complete: response.complete,
    }
}

fn response_from_v1_0(response: v1_0::Response) -> Response {
    Response {
        status: response.status,
        headers: headers_from_v1_0(response.headers),
        body: response.body,
        complete: response.complete,
    }
}

fn empty_request() -> Request {
    Request {
        method: RString::new(),
        path: RString::new(),
        query: RString::new(),
        params: RVec::new(),
        headers: RVec::new(),
        body: RVec::new(),
    }
}

/// A 1.0 modifier behind the current interface. The data types are the
/// same fields in both versions; they are moved across, not copied.
struct V1_0Modifier(v1_0::ModifierBox);

impl AbiModifier for V1_0Modifier {
    fn on_request(&self, request: &mut Request) -> RResult<RequestFlow, PluginError> {
        let current = std::mem::replace(request, empty_request());
        let mut old = v1_0::Request {
            method: current.method,
            path: current.path,
            query: current.query,
            params: current.params,
            headers: headers_to_v1_0(current.headers),
            body: current.body,
        };
        let result = self.0.on_request(&mut old);
        *request = Request {
            method: old.method,
            path: old.path,
            query: old.query,
            params: old.params,
            headers: headers_from_v1_0(old.headers),
            body: old.body,
        };
        match result {
            ROk(v1_0::RequestFlow::Continue) => ROk(RequestFlow::Continue),
            ROk(v1_0::RequestFlow::Respond(response)) => {
                ROk(RequestFlow::Respond(response_from_v1_0(response)))
            }
            RErr(error) => RErr(error_from_v1_0(error)),
        }
    }

    fn on_response(&self, response: &mut Response) -> RResult<(), PluginError> {
        let current = std::mem::replace(
            response,
            Response {
                status: 0,
                headers: RVec::new(),
                body: RVec::new(),
                complete: false,
            },
        );
        let mut old = response_to_v1_0(current);
        let result = self.0.on_response(&mut old);
        *response = response_from_v1_0(old);
        result.map_err(error_from_v1_0)
    }
}

fn level_to_v1_0(level: LogLevel) -> v1_0::LogLevel {
    match level {
        LogLevel::Off => v1_0::LogLevel::Off,
        LogLevel::Error => v1_0::LogLevel::Error,
        LogLevel::Warn => v1_0::LogLevel::Warn,
        LogLevel::Info => v1_0::LogLevel::Info,
        LogLevel::Debug => v1_0::LogLevel::Debug,
        LogLevel::Trace => v1_0::LogLevel::Trace,
    }
}

fn level_from_v1_0(level: v1_0::LogLevel) -> LogLevel {
    match level {
        v1_0::LogLevel::Off => LogLevel::Off,
        v1_0::LogLevel::Error => LogLevel::Error,
        v1_0::LogLevel::Warn => LogLevel::Warn,
        v1_0::LogLevel::Info => LogLevel::Info,
        v1_0::LogLevel::Debug => LogLevel::Debug,
        v1_0::LogLevel::Trace => LogLevel::Trace,
    }
}

/// The host services as a 1.0 plugin calls them.
impl v1_0::AbiHost for GatewayHost {
    fn max_log_level(&self) -> v1_0::LogLevel {
        level_to_v1_0(sepia_plugin_api::AbiHost::max_log_level(self))
    }

    fn log(&self, level: v1_0::LogLevel, target: RStr<'_>, message: RStr<'_>) {
        sepia_plugin_api::AbiHost::log(self, level_from_v1_0(level), target, message)
    }

    fn fetch(
        &self,
        request: v1_0::FetchRequest,
    ) -> RResult<v1_0::FetchResponse, v1_0::PluginError> {
        let request = FetchRequest {
            method: request.method,
            url: request.url,
            headers: headers_from_v1_0(request.headers),
            body: request.body,
            timeout_ms: request.timeout_ms,
            tls: TlsOptions {
                extra_roots_pem: request.tls.extra_roots_pem,
                pins_sha256: request.tls.pins_sha256,
                cipher_suites: request.tls.cipher_suites,
                skip_verify: request.tls.skip_verify,
            },
        };
        match sepia_plugin_api::AbiHost::fetch(self, request) {
            ROk(response) => ROk(v1_0::FetchResponse {
                status: response.status,
                headers: headers_to_v1_0(response.headers),
                body: response.body,
            }),
            RErr(error) => RErr(error_to_v1_0(error)),
        }
    }
}
