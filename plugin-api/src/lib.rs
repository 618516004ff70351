//! The stable ABI between the Sepia gateway and its plugins.
//!
//! A Sepia plugin is a `cdylib` that depends on this crate and nothing else of
//! Sepia's. The gateway loads it at start-up, checks that both sides agree on
//! the layout of every type declared here, and asks it for *modifiers*: objects
//! that see each request before the backend is called and each response before
//! it is written.
//!
//! # Writing a plugin
//!
//! ```no_run
//! use sepia_plugin_api::{
//!     export_plugin, EndpointInfo, Modifier, Plugin, PluginError, Response,
//! };
//!
//! struct Hello;
//!
//! impl Modifier for Hello {
//!     fn on_response(&self, response: &mut Response) -> Result<(), PluginError> {
//!         response.set_header("x-hello", "world");
//!         Ok(())
//!     }
//! }
//!
//! struct HelloPlugin;
//!
//! impl Plugin for HelloPlugin {
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = "0.1.0";
//!     const NAMESPACES: &'static [&'static str] = &["example/hello"];
//!
//!     fn new_modifier(
//!         _namespace: &str,
//!         _config_json: &str,
//!         _endpoint: &EndpointInfo,
//!     ) -> Result<Box<dyn Modifier>, PluginError> {
//!         Ok(Box::new(Hello))
//!     }
//! }
//!
//! export_plugin!(HelloPlugin);
//! ```
//!
//! # Compatibility
//!
//! A plugin built against `sepia-plugin-api` 1.x loads into any gateway that
//! provides 1.y with y ≥ x. Within a major version the types here only grow by
//! appending: new fields of prefix types ([`PluginModule`]) and new methods of
//! the trait objects ([`AbiModifier`], [`AbiHost`]) come after the last field
//! or method of the previous version, and each new trait method has a default
//! body. abi_stable refuses a library whose vtables are shorter than the
//! host's, so the gateway keeps each earlier minor version of this crate
//! frozen and loads older plugins through it, with the defaults for what they
//! lack. Plain data types ([`Request`], [`Response`], ...) never change within
//! a major version.
//!
//! Version history: 1.0 the first interface; 1.1 appended
//! [`Modifier::is_blocking`] and [`Modifier::public_keys`]; 1.2 appended
//! service-level modifiers ([`Plugin::SERVICE_NAMESPACES`],
//! [`Plugin::new_service_modifier`]), the [`RequestContext`] and
//! [`BodyLayout`] of [`Modifier::on_request_with`] and
//! [`Modifier::on_response_with`], the host's metrics
//! ([`Host::register_metric`]), shared values ([`Host::shared_add`],
//! [`Host::shared_compare_and_swap`]), [`Host::checking`] and
//! [`Host::config_version`], and
//! [`parse_duration`] for settings written as Go durations; 1.3 appended
//! [`Modifier::hooks`], so the gateway calls only the hooks a modifier
//! declares, and [`Modifier::on_backend_result`], how each backend call
//! went ([`BackendResult`]).
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod context;
mod duration;
mod error;
mod export;
mod hooks;
mod host;
mod http;
mod log_bridge;
mod modifier;
mod module;

/// The FFI-safe standard types the data types here are made of.
pub use abi_stable::std_types::{RString, RVec, Tuple2};
pub use context::{
    is_krakend2, BodyLayout, MemberSpan, RequestContext, ServiceInfo, VALUE_BACKEND_STATUS,
    VALUE_JWT, VALUE_TLS,
};
pub use duration::parse_duration;
pub use error::PluginError;
pub use export::host;
pub use hooks::{BackendFailure, BackendResult, Hooks};
pub use host::{
    AbiHost, AbiHost_TO, FetchRequest, FetchResponse, Host, HostBox, LogLevel, MetricId,
    MetricKind, MetricSpec, TlsOptions,
};
pub use http::{canonical_header_name, lura_param_name, Header, Request, RequestFlow, Response};
pub use modifier::{into_modifier_box, AbiModifier, AbiModifier_TO, Modifier, ModifierBox};
pub use module::{
    EndpointInfo, ModifierScope, PluginInfo, PluginModule, PluginModuleRef, ABI_VERSION,
};

/// Items the [`export_plugin!`] macro expands to. Not part of the stable
/// surface: call them only through the macro.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{
        info_of, init_plugin, new_modifier_of, new_service_modifier_of, service_namespaces_of,
    };
    pub use abi_stable;
}

/// The plugin-side interface a plugin implements once, and exports with
/// [`export_plugin!`].
///
/// Every method runs inside a panic guard: a panic becomes a
/// [`PluginError`] with status 500 instead of taking the gateway down.
pub trait Plugin {
    /// Short name shown in the gateway's logs and in `sepia check-plugin`.
    const NAME: &'static str;
    /// The plugin's own version (usually `env!("CARGO_PKG_VERSION")`).
    const VERSION: &'static str;
    /// The `extra_config` namespaces this plugin serves, for example
    /// `"auth/signer"`. An endpoint whose `extra_config` holds one of them gets
    /// a modifier from [`Plugin::new_modifier`]. KrakenD's long and short
    /// spellings of a namespace are one namespace to the gateway: listing
    /// either is enough.
    const NAMESPACES: &'static [&'static str];

    /// Called once, after the gateway has loaded the plugin and before any
    /// modifier is built. Logging through `tracing` already works here.
    /// `host` gives access to the gateway's services (an HTTP client, ...).
    fn init(host: &Host) -> Result<(), PluginError> {
        let _ = host;
        Ok(())
    }

    /// Builds the modifier of one endpoint (or backend, see
    /// [`EndpointInfo::scope`]) from the namespace's configuration, given as
    /// JSON text. An error stops the gateway's start-up with its message, so
    /// say what is wrong and how to fix it.
    fn new_modifier(
        namespace: &str,
        config_json: &str,
        endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError>;

    /// The namespaces this plugin serves in the configuration's top-level
    /// `extra_config`, where KrakenD puts what applies to the whole service
    /// (`security/cors`, `telemetry/logging`, ...). Usually a subset of
    /// [`Plugin::NAMESPACES`]; either spelling of a namespace is enough.
    /// Since 1.2; empty by default.
    const SERVICE_NAMESPACES: &'static [&'static str] = &[];

    /// Builds the service-level modifier of a namespace of
    /// [`Plugin::SERVICE_NAMESPACES`] from its top-level configuration (see
    /// [`Modifier`] for what its hooks see). Called at most once per
    /// namespace. An error stops start-up, as for
    /// [`Plugin::new_modifier`]. Since 1.2.
    fn new_service_modifier(
        namespace: &str,
        config_json: &str,
        service: &ServiceInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let _ = (config_json, service);
        Err(PluginError::config(format!(
            "{} does not serve \"{namespace}\" in the top-level extra_config",
            Self::NAME
        )))
    }
}
