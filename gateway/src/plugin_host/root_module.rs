//! A loaded plugin's root module, whichever interface version it was built
//! against. abi_stable refuses a library whose vtables have fewer methods
//! than the host's, so each earlier interface is kept frozen
//! (`compat/plugin-api-1.N`) and a plugin built against one is adapted to
//! the current interface: the methods it lacks get their defaults.

#![allow(non_local_definitions)]

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RStr},
};
use sepia_plugin_api::{
    EndpointInfo, HostBox, ModifierBox, PluginError, PluginModuleRef, ServiceInfo,
};

use super::host_services::GatewayHost;

/// What builds a built-in plugin's modifiers: [`sepia_plugin_api::Plugin::new_modifier`].
pub type ModifierFactory =
    fn(&str, &str, &EndpointInfo) -> Result<Box<dyn sepia_plugin_api::Modifier>, PluginError>;

/// What builds a built-in plugin's service-level modifiers:
/// [`sepia_plugin_api::Plugin::new_service_modifier`].
pub type ServiceModifierFactory =
    fn(&str, &str, &ServiceInfo) -> Result<Box<dyn sepia_plugin_api::Modifier>, PluginError>;

/// A plugin compiled into the binary, for programs that embed the gateway
/// as a library: the same [`sepia_plugin_api::Plugin`] a `.so` exports,
/// called without crossing a library boundary.
#[derive(Clone, Copy)]
pub struct Builtin {
    name: &'static str,
    version: &'static str,
    namespaces: &'static [&'static str],
    service_namespaces: &'static [&'static str],
    factory: ModifierFactory,
    service_factory: ServiceModifierFactory,
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
            service_namespaces: P::SERVICE_NAMESPACES,
            factory: P::new_modifier,
            service_factory: P::new_service_modifier,
        }
    }
}

/// The root module of a plugin.
#[derive(Clone, Copy)]
pub enum RootModule {
    /// Built against the current interface.
    Current(PluginModuleRef),
    /// Built against ABI 1.2.
    V1_2(sepia_plugin_api_v1_2::PluginModuleRef),
    /// Built against ABI 1.1.
    V1_1(sepia_plugin_api_v1_1::PluginModuleRef),
    /// Built against ABI 1.0.
    V1_0(sepia_plugin_api_v1_0::PluginModuleRef),
    /// Compiled into this binary.
    Builtin(Builtin),
}

/// What a plugin says about itself.
pub struct Info {
    pub name: String,
    pub version: String,
    pub namespaces: Vec<String>,
    /// The namespaces it serves in the top-level `extra_config` (none
    /// before ABI 1.2).
    pub service_namespaces: Vec<String>,
}

impl RootModule {
    /// Name, version, namespaces.
    pub fn info(&self) -> Info {
        match self {
            RootModule::Current(module) => {
                let info = (module.info())();
                let service_namespaces = module
                    .service_namespaces()
                    .map(|list| list().iter().map(|n| n.to_string()).collect())
                    .unwrap_or_default();
                Info {
                    name: info.name.into_string(),
                    version: info.version.into_string(),
                    namespaces: info.namespaces.iter().map(|n| n.to_string()).collect(),
                    service_namespaces,
                }
            }
            RootModule::V1_2(module) => v1_2::info(module),
            RootModule::V1_1(module) => v1_1::info(module),
            RootModule::V1_0(module) => v1_0::info(module),
            RootModule::Builtin(builtin) => Info {
                name: builtin.name.to_owned(),
                version: builtin.version.to_owned(),
                namespaces: builtin.namespaces.iter().map(|n| (*n).to_owned()).collect(),
                service_namespaces: builtin
                    .service_namespaces
                    .iter()
                    .map(|n| (*n).to_owned())
                    .collect(),
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
            RootModule::V1_2(module) => v1_2::init(module, host),
            RootModule::V1_1(module) => v1_1::init(module, host),
            RootModule::V1_0(module) => v1_0::init(module, host),
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
            RootModule::V1_2(module) => {
                v1_2::new_modifier(module, namespace, config_json, endpoint)
            }
            RootModule::V1_1(module) => {
                v1_1::new_modifier(module, namespace, config_json, endpoint)
            }
            RootModule::V1_0(module) => {
                v1_0::new_modifier(module, namespace, config_json, endpoint)
            }
            RootModule::Builtin(builtin) => (builtin.factory)(namespace, config_json, endpoint)
                .map(sepia_plugin_api::into_modifier_box),
        }
    }

    /// Builds a service-level modifier. Only plugins built against ABI 1.2
    /// or later serve top-level namespaces, so [`Info::service_namespaces`]
    /// never sends an older one here.
    pub fn new_service_modifier(
        &self,
        namespace: &str,
        config_json: &str,
        service: &ServiceInfo,
    ) -> Result<ModifierBox, PluginError> {
        match self {
            RootModule::Current(module) => match module.new_service_modifier() {
                Some(build) => {
                    build(RStr::from(namespace), RStr::from(config_json), service).into_result()
                }
                None => Err(no_service_scope(namespace)),
            },
            RootModule::Builtin(builtin) => {
                (builtin.service_factory)(namespace, config_json, service)
                    .map(sepia_plugin_api::into_modifier_box)
            }
            RootModule::V1_2(module) => {
                v1_2::new_service_modifier(module, namespace, config_json, service)
            }
            RootModule::V1_1(_) | RootModule::V1_0(_) => Err(no_service_scope(namespace)),
        }
    }
}

fn no_service_scope(namespace: &str) -> PluginError {
    PluginError::config(format!(
        "the plugin was built against an interface without service-level modifiers and cannot serve \"{namespace}\" in the top-level extra_config: rebuild it against sepia-plugin-api {}",
        sepia_plugin_api::ABI_VERSION
    ))
}

/// The adapter of one frozen interface: its data moved into and out of the
/// current types (the fields are the same in every 1.x version), its
/// modifiers behind the current trait, and the gateway's host services as
/// that version calls them. What a version has beyond 1.0 comes in blocks:
/// `services` its top-level namespaces, `modifier` the modifier methods
/// beyond the two hooks, `host` the host methods beyond logging and fetch,
/// `items` anything else its adapter needs.
macro_rules! frozen_interface {
    (
        $module:ident, $api:ident,
        services: |$info_module:ident| $services:expr,
        modifier: { $($extra:tt)* },
        host: { $($host_extra:tt)* },
        items: { $($items:tt)* }
    ) => {
        #[allow(unused_imports)]
        mod $module {
            use abi_stable::{
                sabi_trait::TD_Opaque,
                std_types::{RArc, RErr, ROk, RResult, RStr, RString, RVec},
            };
            use sepia_plugin_api::{
                AbiModifier, AbiModifier_TO, EndpointInfo, FetchRequest, Header, LogLevel,
                ModifierBox, ModifierScope, PluginError, Request, RequestFlow, Response,
                TlsOptions,
            };
            use $api as old;

            use super::{GatewayHost, Info};

            pub(super) fn info(module: &old::PluginModuleRef) -> Info {
                let info = (module.info())();
                let $info_module = module;
                Info {
                    name: info.name.into_string(),
                    version: info.version.into_string(),
                    namespaces: info.namespaces.iter().map(|n| n.to_string()).collect(),
                    service_namespaces: $services,
                }
            }

            pub(super) fn init(
                module: &old::PluginModuleRef,
                host: GatewayHost,
            ) -> Result<(), PluginError> {
                let host: old::HostBox = old::AbiHost_TO::from_ptr(RArc::new(host), TD_Opaque);
                (module.init())(host).into_result().map_err(error_from)
            }

            pub(super) fn new_modifier(
                module: &old::PluginModuleRef,
                namespace: &str,
                config_json: &str,
                endpoint: &EndpointInfo,
            ) -> Result<ModifierBox, PluginError> {
                let endpoint = old::EndpointInfo {
                    endpoint: endpoint.endpoint.clone(),
                    method: endpoint.method.clone(),
                    scope: match endpoint.scope {
                        ModifierScope::Endpoint => old::ModifierScope::Endpoint,
                        ModifierScope::Backend => old::ModifierScope::Backend,
                    },
                    backend_url_pattern: endpoint.backend_url_pattern.clone(),
                    timeout_ms: endpoint.timeout_ms,
                };
                (module.new_modifier())(RStr::from(namespace), RStr::from(config_json), &endpoint)
                    .into_result()
                    .map(|old| AbiModifier_TO::from_value(Adapted(old), TD_Opaque))
                    .map_err(error_from)
            }

            fn error_from(error: old::PluginError) -> PluginError {
                PluginError {
                    status: error.status,
                    message: error.message,
                }
            }

            fn error_to(error: PluginError) -> old::PluginError {
                old::PluginError {
                    status: error.status,
                    message: error.message,
                }
            }

            fn headers_to(headers: RVec<Header>) -> RVec<old::Header> {
                headers
                    .into_iter()
                    .map(|h| old::Header {
                        name: h.name,
                        value: h.value,
                    })
                    .collect()
            }

            fn headers_from(headers: RVec<old::Header>) -> RVec<Header> {
                headers
                    .into_iter()
                    .map(|h| Header {
                        name: h.name,
                        value: h.value,
                    })
                    .collect()
            }

            fn response_to(response: Response) -> old::Response {
                old::Response {
                    status: response.status,
                    headers: headers_to(response.headers),
                    body: response.body,
                    complete: response.complete,
                }
            }

            fn response_from(response: old::Response) -> Response {
                Response {
                    status: response.status,
                    headers: headers_from(response.headers),
                    body: response.body,
                    complete: response.complete,
                }
            }

            /// The request, moved out of `request` into this version's type.
            fn request_to(request: &mut Request) -> old::Request {
                let current = std::mem::replace(
                    request,
                    Request {
                        method: RString::new(),
                        path: RString::new(),
                        query: RString::new(),
                        params: RVec::new(),
                        headers: RVec::new(),
                        body: RVec::new(),
                    },
                );
                old::Request {
                    method: current.method,
                    path: current.path,
                    query: current.query,
                    params: current.params,
                    headers: headers_to(current.headers),
                    body: current.body,
                }
            }

            fn request_from(older: old::Request) -> Request {
                Request {
                    method: older.method,
                    path: older.path,
                    query: older.query,
                    params: older.params,
                    headers: headers_from(older.headers),
                    body: older.body,
                }
            }

            fn flow_from(
                result: RResult<old::RequestFlow, old::PluginError>,
            ) -> RResult<RequestFlow, PluginError> {
                match result {
                    ROk(old::RequestFlow::Continue) => ROk(RequestFlow::Continue),
                    ROk(old::RequestFlow::Respond(response)) => {
                        ROk(RequestFlow::Respond(response_from(response)))
                    }
                    RErr(error) => RErr(error_from(error)),
                }
            }

            /// The response, moved out of `response`.
            fn take_response(response: &mut Response) -> Response {
                std::mem::replace(
                    response,
                    Response {
                        status: 0,
                        headers: RVec::new(),
                        body: RVec::new(),
                        complete: false,
                    },
                )
            }

            $($items)*

            /// An older modifier behind the current interface. The data
            /// types have the same fields in every version; they are moved
            /// across, not copied.
            struct Adapted(old::ModifierBox);

            impl AbiModifier for Adapted {
                fn on_request(&self, request: &mut Request) -> RResult<RequestFlow, PluginError> {
                    let mut older = request_to(request);
                    let result = self.0.on_request(&mut older);
                    *request = request_from(older);
                    flow_from(result)
                }

                fn on_response(&self, response: &mut Response) -> RResult<(), PluginError> {
                    let mut older = response_to(take_response(response));
                    let result = self.0.on_response(&mut older);
                    *response = response_from(older);
                    result.map_err(error_from)
                }

                $($extra)*
            }

            fn level_to(level: LogLevel) -> old::LogLevel {
                match level {
                    LogLevel::Off => old::LogLevel::Off,
                    LogLevel::Error => old::LogLevel::Error,
                    LogLevel::Warn => old::LogLevel::Warn,
                    LogLevel::Info => old::LogLevel::Info,
                    LogLevel::Debug => old::LogLevel::Debug,
                    LogLevel::Trace => old::LogLevel::Trace,
                }
            }

            fn level_from(level: old::LogLevel) -> LogLevel {
                match level {
                    old::LogLevel::Off => LogLevel::Off,
                    old::LogLevel::Error => LogLevel::Error,
                    old::LogLevel::Warn => LogLevel::Warn,
                    old::LogLevel::Info => LogLevel::Info,
                    old::LogLevel::Debug => LogLevel::Debug,
                    old::LogLevel::Trace => LogLevel::Trace,
                }
            }

            /// The host services as a plugin of this version calls them.
            impl old::AbiHost for GatewayHost {
                fn max_log_level(&self) -> old::LogLevel {
                    level_to(sepia_plugin_api::AbiHost::max_log_level(self))
                }

                fn log(&self, level: old::LogLevel, target: RStr<'_>, message: RStr<'_>) {
                    sepia_plugin_api::AbiHost::log(self, level_from(level), target, message)
                }

                fn fetch(
                    &self,
                    request: old::FetchRequest,
                ) -> RResult<old::FetchResponse, old::PluginError> {
                    let request = FetchRequest {
                        method: request.method,
                        url: request.url,
                        headers: headers_from(request.headers),
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
                        ROk(response) => ROk(old::FetchResponse {
                            status: response.status,
                            headers: headers_to(response.headers),
                            body: response.body,
                        }),
                        RErr(error) => RErr(error_to(error)),
                    }
                }

                $($host_extra)*
            }
        }
    };
}

// 1.0: the two hooks only; is_blocking and public_keys take their defaults.
frozen_interface!(
    v1_0, sepia_plugin_api_v1_0,
    services: |_module| Vec::new(),
    modifier: {},
    host: {},
    items: {}
);

frozen_interface!(
    v1_1, sepia_plugin_api_v1_1,
    services: |_module| Vec::new(),
    modifier: {
        fn is_blocking(&self) -> bool {
            self.0.is_blocking()
        }

        fn public_keys(&self) -> abi_stable::std_types::ROption<RString> {
            self.0.public_keys()
        }
    },
    host: {},
    items: {}
);

// 1.2: service scope, the request context and the host's metrics and shared
// values; hooks and on_backend_result take their defaults.
frozen_interface!(
    v1_2, sepia_plugin_api_v1_2,
    services: |module| module
        .service_namespaces()
        .map(|list| list().iter().map(|n| n.to_string()).collect())
        .unwrap_or_default(),
    modifier: {
        fn is_blocking(&self) -> bool {
            self.0.is_blocking()
        }

        fn public_keys(&self) -> abi_stable::std_types::ROption<RString> {
            self.0.public_keys()
        }

        fn on_request_with(
            &self,
            request: &mut Request,
            context: &mut sepia_plugin_api::RequestContext,
        ) -> RResult<RequestFlow, PluginError> {
            let mut older = request_to(request);
            let mut older_context = context_to(context);
            let result = self.0.on_request_with(&mut older, &mut older_context);
            *request = request_from(older);
            *context = context_from(older_context);
            flow_from(result)
        }

        fn on_response_with(
            &self,
            response: &mut Response,
            context: &mut sepia_plugin_api::RequestContext,
            layout: &sepia_plugin_api::BodyLayout,
        ) -> RResult<(), PluginError> {
            let mut older = response_to(take_response(response));
            let mut older_context = context_to(context);
            let older_layout = old::BodyLayout {
                canonical_json: layout.canonical_json,
                members: layout
                    .members
                    .iter()
                    .map(|m| old::MemberSpan {
                        key_start: m.key_start,
                        key_end: m.key_end,
                        value_start: m.value_start,
                        value_end: m.value_end,
                    })
                    .collect(),
            };
            let result = self
                .0
                .on_response_with(&mut older, &mut older_context, &older_layout);
            *response = response_from(older);
            *context = context_from(older_context);
            result.map_err(error_from)
        }
    },
    host: {
        fn checking(&self) -> bool {
            sepia_plugin_api::AbiHost::checking(self)
        }

        fn config_version(&self) -> u64 {
            sepia_plugin_api::AbiHost::config_version(self)
        }

        fn register_metric(
            &self,
            spec: old::MetricSpec,
        ) -> RResult<old::MetricId, old::PluginError> {
            let spec = sepia_plugin_api::MetricSpec {
                kind: match spec.kind {
                    old::MetricKind::Counter => sepia_plugin_api::MetricKind::Counter,
                    old::MetricKind::Gauge => sepia_plugin_api::MetricKind::Gauge,
                    old::MetricKind::Histogram => sepia_plugin_api::MetricKind::Histogram,
                },
                name: spec.name,
                help: spec.help,
                label_names: spec.label_names,
                buckets: spec.buckets,
            };
            match sepia_plugin_api::AbiHost::register_metric(self, spec) {
                ROk(id) => ROk(old::MetricId(id.0)),
                RErr(error) => RErr(error_to(error)),
            }
        }

        fn record_metric(
            &self,
            metric: old::MetricId,
            labels: abi_stable::std_types::RSlice<'_, RStr<'_>>,
            value: f64,
        ) {
            sepia_plugin_api::AbiHost::record_metric(
                self,
                sepia_plugin_api::MetricId(metric.0),
                labels,
                value,
            )
        }

        fn shared_add(&self, key: RStr<'_>, delta: i64, ttl_ms: u64) -> i64 {
            sepia_plugin_api::AbiHost::shared_add(self, key, delta, ttl_ms)
        }

        fn shared_compare_and_swap(
            &self,
            key: RStr<'_>,
            expected: abi_stable::std_types::ROption<i64>,
            new: i64,
            ttl_ms: u64,
        ) -> abi_stable::std_types::ROption<i64> {
            sepia_plugin_api::AbiHost::shared_compare_and_swap(self, key, expected, new, ttl_ms)
        }
    },
    items: {
        /// The context, moved out of `context` into this version's type.
        fn context_to(context: &mut sepia_plugin_api::RequestContext) -> old::RequestContext {
            let current = std::mem::take(context);
            old::RequestContext {
                peer_ip: current.peer_ip,
                client_ip: current.client_ip,
                request_id: current.request_id,
                endpoint: current.endpoint,
                values: current.values,
            }
        }

        fn context_from(older: old::RequestContext) -> sepia_plugin_api::RequestContext {
            sepia_plugin_api::RequestContext {
                peer_ip: older.peer_ip,
                client_ip: older.client_ip,
                request_id: older.request_id,
                endpoint: older.endpoint,
                values: older.values,
            }
        }

        pub(super) fn new_service_modifier(
            module: &old::PluginModuleRef,
            namespace: &str,
            config_json: &str,
            service: &sepia_plugin_api::ServiceInfo,
        ) -> Result<ModifierBox, PluginError> {
            let Some(build) = module.new_service_modifier() else {
                return Err(super::no_service_scope(namespace));
            };
            let service = old::ServiceInfo {
                name: service.name.clone(),
                port: service.port,
                config_version: service.config_version,
            };
            build(RStr::from(namespace), RStr::from(config_json), &service)
                .into_result()
                .map(|old| AbiModifier_TO::from_value(Adapted(old), TD_Opaque))
                .map_err(error_from)
        }
    }
);
