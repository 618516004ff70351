use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString, RVec},
    StableAbi,
};

use crate::{context::ServiceInfo, host::HostBox, modifier::ModifierBox, PluginError};

/// The version of this interface crate, which is the plugin ABI version.
/// The gateway prints it in `sepia version`; plugins record the version they
/// were built against in their library header.
pub const ABI_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a plugin says about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Short name, shown in logs.
    pub name: RString,
    /// The plugin's own version.
    pub version: RString,
    /// The `extra_config` namespaces the plugin serves.
    pub namespaces: RVec<RString>,
}

/// Where a modifier sits in the pipeline.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifierScope {
    /// Configured in an endpoint's `extra_config`: sees the client's request
    /// and the final response.
    Endpoint,
    /// Configured in a backend's `extra_config`: sees the request to that
    /// backend and its response.
    Backend,
}

/// The endpoint a modifier is built for.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The endpoint path as configured, with `{param}` segments.
    pub endpoint: RString,
    /// The endpoint's HTTP method.
    pub method: RString,
    /// Whether the modifier works on the endpoint or on one of its backends.
    pub scope: ModifierScope,
    /// For [`ModifierScope::Backend`], the backend's `url_pattern`; empty
    /// otherwise.
    pub backend_url_pattern: RString,
    /// The endpoint timeout in milliseconds.
    pub timeout_ms: u64,
}

/// The root module every plugin library exports. Built by
/// [`crate::export_plugin!`]; plugin authors never fill it by hand.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
pub struct PluginModule {
    /// Name, version and namespaces of the plugin.
    pub info: extern "C" fn() -> PluginInfo,
    /// Hands the plugin the gateway's services; called once, before any
    /// `new_modifier`.
    pub init: extern "C" fn(host: HostBox) -> RResult<(), PluginError>,
    /// Builds a modifier from a namespace, its configuration as JSON text and
    /// the endpoint it is for.
    #[sabi(last_prefix_field)]
    pub new_modifier: extern "C" fn(
        namespace: RStr<'_>,
        config_json: RStr<'_>,
        endpoint: &EndpointInfo,
    ) -> RResult<ModifierBox, PluginError>,
    /// The namespaces the plugin serves in the top-level `extra_config`
    /// (appended in 1.2).
    pub service_namespaces: extern "C" fn() -> RVec<RString>,
    /// Builds the service-level modifier of a top-level namespace (appended
    /// in 1.2).
    pub new_service_modifier: extern "C" fn(
        namespace: RStr<'_>,
        config_json: RStr<'_>,
        service: &ServiceInfo,
    ) -> RResult<ModifierBox, PluginError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "sepia_plugin";
    const NAME: &'static str = "sepia_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
