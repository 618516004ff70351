//! From a configuration file to a serving gateway, and the checks
//! `sepia check` shares with `sepia run`.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use sepia_config::{Config, ConfigError, Problem};

use crate::{
    gateway::Gateway,
    plugin_host::{
        discovery::{executable_folder, Origin, PluginSource},
        fetch::Fetcher,
        loader::LoadError,
        root_module::Builtin,
        PluginHost, PluginHostError,
    },
    proxy::backend_client::ClientSet,
    server::{bind, serve_workers, shutdown_signal, ServerSettings},
    tls::{TlsError, TlsSettings},
};

/// Namespaces whose absence would weaken security: an endpoint configured to
/// sign or validate tokens must never run without the plugin that does it.
const REQUIRED_NAMESPACES: &[&str] = &["auth/signer", "auth/validator"];

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Plugins could not be loaded or refused their configuration.
    #[error(transparent)]
    Plugins(#[from] PluginHostError),
    /// The backend client's TLS could not be set up.
    #[error("cannot set up TLS for backend calls: {0}")]
    Tls(#[from] TlsError),
    /// A security namespace is configured but no plugin serves it.
    #[error("{path}.extra_config.\"{namespace}\": no loaded plugin serves this namespace, and serving the endpoint without it would be unsafe: put the plugin in the plugin folder (see `sepia check`)")]
    Unserved {
        /// Where it is configured.
        path: String,
        /// The namespace.
        namespace: String,
    },
    /// The router settings are wrong.
    #[error("{0}")]
    Router(String),
    /// The JWK set publishing setting is wrong.
    #[error("{0}")]
    Jwks(String),
    /// The server's worker threads failed.
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    /// A start-up task died (a panic in the loader).
    #[error("a start-up task failed: {0}")]
    Task(String),
    /// The port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Options of `sepia run` beyond the configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// Overrides `port`.
    pub port: Option<u16>,
    /// Loads plugins an untrusted user could replace.
    pub allow_insecure_plugins: bool,
    /// How long shutdown waits for requests in flight.
    pub shutdown_timeout: std::time::Duration,
    /// Plugins compiled into the binary.
    pub builtins: Vec<Builtin>,
}

/// The plugin folders for a configuration: `plugin.folder` and the
/// executable's folder.
pub fn plugin_sources(config: &Config) -> Vec<PluginSource> {
    let mut sources = Vec::new();
    if let Some(plugin) = &config.plugin {
        sources.push(PluginSource {
            folder: PathBuf::from(&plugin.folder),
            pattern: plugin.pattern.clone(),
            origin: Origin::Configured,
        });
    }
    if let Some(folder) = executable_folder() {
        sources.push(PluginSource {
            folder,
            pattern: String::new(),
            origin: Origin::DefaultFolder,
        });
    }
    sources
}

/// An `extra_config` namespace no plugin serves: `(json path, namespace)`.
pub fn unserved_namespaces(config: &Config, plugins: &PluginHost) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut visit = |path: &str, extra: &sepia_config::ExtraConfig| {
        for entry in extra.entries() {
            if !plugins.serves(&entry.namespace) {
                out.push((path.to_owned(), entry.namespace.clone()));
            }
        }
    };
    for endpoint in &config.endpoints {
        visit(&endpoint.json_path, &endpoint.extra_config);
        for backend in &endpoint.backends {
            visit(&backend.json_path, &backend.extra_config);
        }
    }
    out
}

/// Logs files that were skipped or refused.
pub fn report_skipped(skipped: &[LoadError]) {
    for problem in skipped {
        match problem {
            LoadError::NotAPlugin { .. } => tracing::warn!("{problem}; skipped"),
            LoadError::Refused { .. } => tracing::error!("{problem}"),
        }
    }
}

fn report_warnings(warnings: &[Problem]) {
    for warning in warnings {
        tracing::warn!("configuration: {warning}");
    }
}

/// `sepia run`: loads everything, serves until SIGINT/SIGTERM.
pub async fn run(options: RunOptions) -> Result<(), StartupError> {
    let loaded = sepia_config::load(&options.config, false)?;
    report_warnings(&loaded.warnings);
    let mut config = loaded.config;
    if let Some(port) = options.port {
        config.port = port;
    }
    let sources = plugin_sources(&config);
    let allow_insecure = options.allow_insecure_plugins;
    let builtins = options.builtins.clone();
    let (plugins, skipped) =
        tokio::task::spawn_blocking(move || PluginHost::load(&sources, &builtins, allow_insecure))
            .await
            .map_err(|e| StartupError::Task(e.to_string()))??;
    report_skipped(&skipped);
    for (path, namespace) in unserved_namespaces(&config, &plugins) {
        if REQUIRED_NAMESPACES.contains(&sepia_config::namespace::canonical(&namespace)) {
            return Err(StartupError::Unserved { path, namespace });
        }
        tracing::warn!("{path}.extra_config.\"{namespace}\": no loaded plugin serves this namespace; it is ignored");
    }
    let fetcher = Fetcher::new(tokio::runtime::Handle::current());
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let clients = ClientSet::new(workers, &TlsSettings::default())?;
    // Plugin calls may block (key fetches): keep them off the async workers.
    let (plugins, gateway, config) =
        tokio::task::spawn_blocking(move || -> Result<_, StartupError> {
            plugins.init(&fetcher)?;
            let gateway = Gateway::build(&config, &plugins, &clients)?;
            Ok((plugins, gateway, config))
        })
        .await
        .map_err(|e| StartupError::Task(e.to_string()))??;
    let address = SocketAddr::new(config.listen_ip, config.port);
    let listeners =
        bind(address, workers).map_err(|source| StartupError::Bind { address, source })?;
    let local = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(address);
    tracing::info!(
        address = %local,
        endpoints = config.endpoints.len(),
        plugins = plugins.plugins().len(),
        workers,
        "listening"
    );
    let settings = ServerSettings {
        read_header_timeout: config.read_header_timeout,
        shutdown_timeout: options.shutdown_timeout,
    };
    serve_workers(Arc::new(gateway), listeners, settings, shutdown_signal())
        .await
        .map_err(StartupError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}
