use std::{any::Any, sync::OnceLock};

use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString, RVec};

use crate::{
    context::ServiceInfo,
    host::{Host, HostBox},
    log_bridge,
    modifier::{guarded, GuardedModifier, ModifierBox},
    module::{EndpointInfo, PluginInfo},
    Plugin, PluginError,
};

/// The host services of this plugin library. Each `cdylib` has its own copy of
/// this static, so it holds exactly the host that loaded this plugin.
static HOST: OnceLock<Host> = OnceLock::new();

/// The gateway's services, once the plugin has been initialised (from
/// [`Plugin::init`] on). `None` only outside a gateway, in unit tests.
pub fn host() -> Option<&'static Host> {
    HOST.get()
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Exports a type implementing [`Plugin`] as this library's root module.
///
/// Put it once in the plugin crate's `lib.rs`; the crate must be built as a
/// `cdylib`:
///
/// ```toml
/// [lib]
/// crate-type = ["cdylib"]
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // The symbol abi_stable looks up when it loads a library; the name is
        // checked against abi_stable's own mangling by sepia-plugin-api's tests.
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __SEPIA_PLUGIN_LIB_HEADER: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn info() -> $crate::PluginInfo {
                $crate::__private::info_of::<$plugin>()
            }
            extern "C" fn init(
                host: $crate::HostBox,
            ) -> $crate::__private::abi_stable::std_types::RResult<(), $crate::PluginError> {
                $crate::__private::init_plugin::<$plugin>(host)
            }
            extern "C" fn new_modifier(
                namespace: $crate::__private::abi_stable::std_types::RStr<'_>,
                config_json: $crate::__private::abi_stable::std_types::RStr<'_>,
                endpoint: &$crate::EndpointInfo,
            ) -> $crate::__private::abi_stable::std_types::RResult<
                $crate::ModifierBox,
                $crate::PluginError,
            > {
                $crate::__private::new_modifier_of::<$plugin>(namespace, config_json, endpoint)
            }
            extern "C" fn service_namespaces(
            ) -> $crate::__private::abi_stable::std_types::RVec<$crate::RString> {
                $crate::__private::service_namespaces_of::<$plugin>()
            }
            extern "C" fn new_service_modifier(
                namespace: $crate::__private::abi_stable::std_types::RStr<'_>,
                config_json: $crate::__private::abi_stable::std_types::RStr<'_>,
                service: &$crate::ServiceInfo,
            ) -> $crate::__private::abi_stable::std_types::RResult<
                $crate::ModifierBox,
                $crate::PluginError,
            > {
                $crate::__private::new_service_modifier_of::<$plugin>(
                    namespace,
                    config_json,
                    service,
                )
            }
            fn root_module() -> $crate::PluginModuleRef {
                use $crate::__private::abi_stable::prefix_type::PrefixTypeTrait;
                $crate::PluginModule {
                    info,
                    init,
                    new_modifier,
                    service_namespaces,
                    new_service_modifier,
                }
                .leak_into_prefix()
            }
            extern "C" fn erased_root_module(
            ) -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(root_module)
            }
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<
                    $crate::PluginModuleRef,
                >(
                    erased_root_module,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

/// `PluginModule::info` of plugin `P`.
pub fn info_of<P: Plugin>() -> PluginInfo {
    PluginInfo {
        name: RString::from(P::NAME),
        version: RString::from(P::VERSION),
        namespaces: P::NAMESPACES
            .iter()
            .map(|ns| RString::from(*ns))
            .collect::<RVec<_>>(),
    }
}

/// `PluginModule::init` of plugin `P`: keeps the host, routes this library's
/// `tracing` events and panic messages to the host's log, then runs
/// [`Plugin::init`].
pub fn init_plugin<P: Plugin>(host: HostBox) -> RResult<(), PluginError> {
    guarded("init", || {
        if HOST.set(Host::new(host)).is_err() {
            return Err(PluginError::internal(format!(
                "plugin {} was initialised twice",
                P::NAME
            )));
        }
        let Some(host) = HOST.get() else {
            return Err(PluginError::internal("plugin host was not kept"));
        };
        log_bridge::install(host, P::NAME);
        P::init(host)
    })
}

/// `PluginModule::new_modifier` of plugin `P`.
pub fn new_modifier_of<P: Plugin>(
    namespace: RStr<'_>,
    config_json: RStr<'_>,
    endpoint: &EndpointInfo,
) -> RResult<ModifierBox, PluginError> {
    match guarded("new_modifier", || {
        P::new_modifier(namespace.as_str(), config_json.as_str(), endpoint)
    }) {
        ROk(modifier) => ROk(GuardedModifier(modifier).into_box()),
        RErr(err) => RErr(err),
    }
}

/// `PluginModule::service_namespaces` of plugin `P`.
pub fn service_namespaces_of<P: Plugin>() -> RVec<RString> {
    P::SERVICE_NAMESPACES
        .iter()
        .map(|ns| RString::from(*ns))
        .collect()
}

/// `PluginModule::new_service_modifier` of plugin `P`.
pub fn new_service_modifier_of<P: Plugin>(
    namespace: RStr<'_>,
    config_json: RStr<'_>,
    service: &ServiceInfo,
) -> RResult<ModifierBox, PluginError> {
    match guarded("new_service_modifier", || {
        P::new_service_modifier(namespace.as_str(), config_json.as_str(), service)
    }) {
        ROk(modifier) => ROk(GuardedModifier(modifier).into_box()),
        RErr(err) => RErr(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_symbol_is_the_one_abi_stable_looks_up() {
        // `export_plugin!` hard-codes the symbol so that plugin crates need no
        // direct dependency on abi_stable; this keeps it honest.
        assert_eq!(
            abi_stable_shared::mangled_root_module_loader_name(),
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }

    #[test]
    fn panic_messages_are_extracted() {
        let payload = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(payload.as_ref()), "boom 1");
        let payload = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(payload.as_ref()), "a panic without a message");
    }

    #[test]
    fn guarded_turns_a_panic_into_a_500() {
        let result: RResult<(), PluginError> = guarded("on_request", || panic!("kaput"));
        let err = result.unwrap_err();
        assert_eq!(err.status, 500);
        assert!(err.message().contains("kaput"), "{}", err.message());
        assert!(err.message().contains("on_request"), "{}", err.message());
    }
}
