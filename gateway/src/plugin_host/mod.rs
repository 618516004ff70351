//! Finds, loads and initialises plugins, and builds their modifiers for the
//! endpoints that configure them.

pub mod discovery;
pub mod fetch;
pub mod host_services;
pub mod loader;
pub mod log_bridge;
pub mod metrics;
pub mod root_module;
pub mod shared_state;
pub mod stack_order;

use std::{collections::HashMap, sync::Arc};

use sepia_config::{
    namespace::{self, canonical},
    ExtraConfig,
};
use sepia_plugin_api::{EndpointInfo, Hooks, ModifierBox, ServiceInfo};

use self::{
    discovery::{discover, Candidate, DiscoveryError, Origin, PluginSource},
    host_services::{GatewayHost, HostServices},
    loader::{load_library, LoadError, LoadedLibrary},
    log_bridge::host_max_level,
    root_module::{Builtin, RootModule},
};

/// KrakenD's namespace that names modifier plugins instead of being one.
pub const NAMED_MODIFIERS: &str = "plugin/req-resp-modifier";

/// A start-up failure of the plugin host.
#[derive(Debug, thiserror::Error)]
pub enum PluginHostError {
    /// A configured plugin folder could not be read.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// Two plugins of one folder claim one namespace.
    #[error("plugins {first} and {second} both serve namespace \"{namespace}\": remove one of them from the plugin folder")]
    Conflict {
        /// The namespace.
        namespace: String,
        /// The file that claimed it first.
        first: String,
        /// The other file.
        second: String,
    },
    /// A plugin's init failed.
    #[error("plugin {plugin} ({path}) failed to initialise: {message}")]
    Init {
        /// The plugin's name.
        plugin: String,
        /// Its file.
        path: String,
        /// What it said.
        message: String,
    },
    /// A plugin refused an endpoint's configuration.
    #[error("{}: plugin {plugin} refused the configuration: {message}", namespace::json_path(.json_path, .namespace))]
    Modifier {
        /// Where the `extra_config` is (empty: the top level).
        json_path: String,
        /// The namespace as written.
        namespace: String,
        /// The plugin's name.
        plugin: String,
        /// What it said.
        message: String,
    },
}

/// A loaded plugin.
pub struct ActivePlugin {
    /// The library and what it said about itself.
    pub library: LoadedLibrary,
    /// Where it was found.
    pub origin: Origin,
}

/// A modifier of one endpoint, with the name of the plugin it came from.
#[derive(Clone)]
pub struct BoundModifier {
    /// The plugin's name, for logs and errors.
    pub plugin: Arc<str>,
    /// The modifier (shared: the phases that call its hooks each hold it).
    pub modifier: Arc<ModifierBox>,
    /// The hooks it declared, asked once.
    pub hooks: Hooks,
}

impl BoundModifier {
    /// `modifier` of `plugin`, with the hooks it declares.
    pub fn new(plugin: Arc<str>, modifier: ModifierBox) -> Self {
        let hooks = modifier.hooks();
        Self {
            plugin,
            modifier: Arc::new(modifier),
            hooks,
        }
    }
}

/// What the plugin folders held.
pub struct PluginHost {
    plugins: Vec<ActivePlugin>,
    /// Canonical namespace to (plugin index, the plugin's spelling).
    by_namespace: HashMap<String, (usize, String)>,
    /// The same for the namespaces plugins serve in the top-level
    /// `extra_config`.
    by_service_namespace: HashMap<String, (usize, String)>,
}

/// Files that were not loaded, for warnings.
pub type Skipped = Vec<LoadError>;

impl PluginHost {
    /// A host with no plugins.
    pub fn empty() -> Self {
        Self {
            plugins: Vec::new(),
            by_namespace: HashMap::new(),
            by_service_namespace: HashMap::new(),
        }
    }

    /// Scans `sources`, loads every candidate and maps namespaces to
    /// plugins. Plugins are not initialised yet (see [`PluginHost::init`]).
    pub fn load(
        sources: &[PluginSource],
        builtins: &[Builtin],
        allow_insecure: bool,
    ) -> Result<(Self, Skipped), PluginHostError> {
        let mut candidates: Vec<Candidate> = discover(sources)?;
        // Built-in, then configured plugins first: they win over
        // default-folder ones.
        candidates.sort_by_key(|c| c.origin);
        let mut host = Self::empty();
        for builtin in builtins {
            let module = RootModule::Builtin(*builtin);
            let info = module.info();
            let library = LoadedLibrary {
                path: std::path::PathBuf::from("(built in)"),
                name: info.name,
                version: info.version,
                abi_version: sepia_plugin_api::ABI_VERSION.to_owned(),
                namespaces: info.namespaces,
                service_namespaces: info.service_namespaces,
                module,
            };
            host.add(library, Origin::Builtin)?;
        }
        let mut skipped = Vec::new();
        for candidate in candidates {
            match load_library(&candidate.path, allow_insecure) {
                Ok(library) => host.add(library, candidate.origin)?,
                Err(e) => skipped.push(e),
            }
        }
        Ok((host, skipped))
    }

    fn add(&mut self, library: LoadedLibrary, origin: Origin) -> Result<(), PluginHostError> {
        let claimed = library
            .namespaces
            .iter()
            .map(|n| (n, &self.by_namespace))
            .chain(
                library
                    .service_namespaces
                    .iter()
                    .map(|n| (n, &self.by_service_namespace)),
            );
        for (namespace, map) in claimed {
            if let Some((index, _)) = map.get(canonical(namespace).as_ref()) {
                let other = &self.plugins[*index];
                if other.origin == origin {
                    return Err(PluginHostError::Conflict {
                        namespace: namespace.clone(),
                        first: other.library.path.display().to_string(),
                        second: library.path.display().to_string(),
                    });
                }
                tracing::info!(
                    path = %library.path.display(),
                    shadowed_by = %other.library.path.display(),
                    "plugin not used: a built-in or configured-folder plugin serves its namespace"
                );
                return Ok(());
            }
        }
        let index = self.plugins.len();
        for namespace in &library.namespaces {
            self.by_namespace.insert(
                canonical(namespace).into_owned(),
                (index, namespace.clone()),
            );
        }
        for namespace in &library.service_namespaces {
            self.by_service_namespace.insert(
                canonical(namespace).into_owned(),
                (index, namespace.clone()),
            );
        }
        self.plugins.push(ActivePlugin { library, origin });
        Ok(())
    }

    /// Hands every plugin its host services. Logs what was loaded.
    pub fn init(&self, services: &HostServices) -> Result<(), PluginHostError> {
        let max_level = host_max_level();
        for plugin in &self.plugins {
            let library = &plugin.library;
            let host = GatewayHost::new(&library.name, max_level, services.clone());
            if let Err(e) = library.module.init(host) {
                return Err(PluginHostError::Init {
                    plugin: library.name.clone(),
                    path: library.path.display().to_string(),
                    message: e.message().to_owned(),
                });
            }
            tracing::info!(
                path = %library.path.display(),
                name = %library.name,
                version = %library.version,
                abi = %library.abi_version,
                namespaces = ?library.namespaces,
                "plugin loaded"
            );
        }
        Ok(())
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &[ActivePlugin] {
        &self.plugins
    }

    /// Whether some plugin serves `namespace` (either spelling). KrakenD's
    /// `plugin/req-resp-modifier` is served by the host, which checks its
    /// names when it builds the modifiers.
    pub fn serves(&self, namespace: &str) -> bool {
        let canonical = canonical(namespace);
        canonical == NAMED_MODIFIERS || self.by_namespace.contains_key(canonical.as_ref())
    }

    /// Whether some plugin serves `namespace` in the top-level
    /// `extra_config`.
    pub fn serves_service(&self, namespace: &str) -> bool {
        self.by_service_namespace
            .contains_key(canonical(namespace).as_ref())
    }

    /// Builds the service-level modifiers of the top-level `extra_config`,
    /// in file order; namespaces no plugin serves there are left out.
    pub fn service_modifiers(
        &self,
        extra_config: &ExtraConfig,
        service: &ServiceInfo,
    ) -> Result<Vec<BoundModifier>, PluginHostError> {
        let mut out = Vec::new();
        for entry in extra_config.entries() {
            let Some((index, spelling)) = self.by_service_namespace.get(&entry.canonical) else {
                continue;
            };
            let library = &self.plugins[*index].library;
            let config_json = serde_json::to_string(&entry.value).unwrap_or_else(|_| "null".into());
            match library
                .module
                .new_service_modifier(spelling, &config_json, service)
            {
                Ok(modifier) => out.push(BoundModifier::new(
                    Arc::from(library.name.as_str()),
                    modifier,
                )),
                Err(e) => {
                    return Err(PluginHostError::Modifier {
                        json_path: String::new(),
                        namespace: entry.namespace.clone(),
                        plugin: library.name.clone(),
                        message: e.message().to_owned(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Builds the modifiers an `extra_config` asks for, in KrakenD's order
    /// ([`stack_order`]), else in file order: one for each namespace a
    /// plugin serves, and one for each plugin that KrakenD's
    /// `plugin/req-resp-modifier` lists by `name`.
    pub fn modifiers_for(
        &self,
        json_path: &str,
        extra_config: &ExtraConfig,
        endpoint: &EndpointInfo,
    ) -> Result<Vec<BoundModifier>, PluginHostError> {
        let mut out = Vec::new();
        let mut entries: Vec<_> = extra_config.entries().iter().collect();
        entries.sort_by_key(|e| stack_order::rank(endpoint.scope, &e.canonical));
        for entry in entries {
            if entry.canonical == NAMED_MODIFIERS {
                for (index, name, config) in
                    self.named(json_path, &entry.namespace, &entry.value)?
                {
                    out.push(self.build(
                        index,
                        &name,
                        config,
                        json_path,
                        &entry.namespace,
                        endpoint,
                    )?);
                }
                continue;
            }
            let Some((index, spelling)) = self.by_namespace.get(&entry.canonical) else {
                continue;
            };
            out.push(self.build(
                *index,
                spelling,
                &entry.value,
                json_path,
                &entry.namespace,
                endpoint,
            )?);
        }
        Ok(out)
    }

    /// The plugins a `plugin/req-resp-modifier` entry names, each with its
    /// configuration: the entry's member of that name, as KrakenD plugins
    /// read it, or the whole entry.
    fn named<'v>(
        &self,
        json_path: &str,
        namespace: &str,
        value: &'v serde_json::Value,
    ) -> Result<Vec<(usize, String, &'v serde_json::Value)>, PluginHostError> {
        let refuse = |message: String| PluginHostError::Modifier {
            json_path: json_path.to_owned(),
            namespace: namespace.to_owned(),
            plugin: "(gateway)".into(),
            message,
        };
        let names = value
            .get("name")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| {
                refuse("\"name\" must list the plugins to run, such as [\"my-modifier\"]".into())
            })?;
        let mut out = Vec::new();
        for name in names {
            let name = name
                .as_str()
                .ok_or_else(|| refuse("\"name\" must hold only strings".into()))?;
            let index = self
                .plugins
                .iter()
                .position(|p| {
                    p.library.name == name || p.library.namespaces.iter().any(|n| n == name)
                })
                .ok_or_else(|| {
                    refuse(format!(
                        "no loaded plugin is named \"{name}\" (loaded: {})",
                        self.plugins
                            .iter()
                            .map(|p| p.library.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            out.push((index, name.to_owned(), value.get(name).unwrap_or(value)));
        }
        Ok(out)
    }

    fn build(
        &self,
        index: usize,
        namespace: &str,
        config: &serde_json::Value,
        json_path: &str,
        written: &str,
        endpoint: &EndpointInfo,
    ) -> Result<BoundModifier, PluginHostError> {
        let library = &self.plugins[index].library;
        let config_json = serde_json::to_string(config).unwrap_or_else(|_| "null".into());
        match library
            .module
            .new_modifier(namespace, &config_json, endpoint)
        {
            Ok(modifier) => Ok(BoundModifier::new(
                Arc::from(library.name.as_str()),
                modifier,
            )),
            Err(e) => Err(PluginHostError::Modifier {
                json_path: json_path.to_owned(),
                namespace: written.to_owned(),
                plugin: library.name.clone(),
                message: e.message().to_owned(),
            }),
        }
    }
}
