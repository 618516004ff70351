//! From a configuration file to a serving gateway, and the checks
//! `sepia check` shares with `sepia run`.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use arc_swap::ArcSwap;

use sepia_config::{namespace, Config, ConfigError};

use crate::{
    gateway::{BuildError, Gateway},
    jwks,
    plugin_host::{
        discovery::{executable_folder, Origin, PluginSource},
        fetch::Fetcher,
        host_services::HostServices,
        loader::LoadError,
        root_module::Builtin,
        PluginHost, PluginHostError,
    },
    server::{
        bind, default_max_connections, raise_open_file_limit, serve_workers, shutdown_signal,
        ServerSettings, Worker,
    },
    upstream::backend_client::BackendClient,
    upstream::service_discovery::{DiscoveryError, ServiceDiscovery},
    upstream::tls::{TlsError, TlsSettings},
};

/// Namespaces whose absence would weaken security: an endpoint configured to
/// sign or validate tokens, or a service that revokes them, must never run
/// without the plugin that does it.
const REQUIRED_NAMESPACES: &[&str] = &["auth/signer", "auth/validator", "auth/revoker"];

/// Top-level namespaces the gateway reads itself.
const GATEWAY_NAMESPACES: &[&str] = &[
    "router",
    jwks::NAMESPACE,
    crate::logging::settings::NAMESPACE,
    crate::telemetry::settings::NAMESPACE,
    crate::telemetry::stats::settings::NAMESPACE,
];

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Plugins could not be loaded or refused their configuration.
    #[error(transparent)]
    Plugins(#[from] PluginHostError),
    /// `"sd": "dns"` cannot look names up.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The backend client's TLS could not be set up.
    #[error("cannot set up TLS for backend calls: {0}")]
    Tls(#[from] TlsError),
    /// HTTPS for the listener cannot be set up.
    #[error("cannot serve HTTPS: {0}")]
    ServerTls(#[from] crate::server_tls::ServerTlsError),
    /// A security namespace is configured but no plugin serves it.
    #[error("{}: no loaded plugin serves this namespace, and serving without it would be unsafe: put the plugin in the plugin folder (see `sepia check`)", namespace::json_path(.path, .namespace))]
    Unserved {
        /// Where it is configured (empty: the top level).
        path: String,
        /// The namespace.
        namespace: String,
    },
    /// The gateway could not be built from the configuration.
    #[error(transparent)]
    Build(#[from] BuildError),
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
    /// The metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] crate::telemetry::metrics::MetricsError),
    /// `telemetry/metrics`' listener could not be bound.
    #[error(
        "extra_config.\"telemetry/metrics\".listen_address: cannot listen on {address}: {source}"
    )]
    StatsBind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// An OTLP exporter could not be set up.
    #[error(transparent)]
    Otlp(#[from] crate::telemetry::otlp::OtlpError),
    /// A Prometheus exporter's port could not be bound.
    #[error("extra_config.\"telemetry/opentelemetry\".exporters.prometheus \"{name}\": cannot listen on {address}: {source}")]
    MetricsBind {
        /// The exporter's name.
        name: String,
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// What `sepia run` and `sepia check` verify a configuration with.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// Overrides `port`.
    pub port: Option<u16>,
    /// Unknown keys are errors (`check --lint`).
    pub lint: bool,
    /// Loads plugins an untrusted user could replace.
    pub allow_insecure_plugins: bool,
    /// Plugins compiled into the binary.
    pub builtins: Vec<Builtin>,
    /// Only checking (`sepia check`): plugins are told, so that they skip
    /// fetching remote resources (see `sepia_plugin_api::Host::checking`).
    pub checking: bool,
}

/// A configuration that passed every check `sepia run` makes before it
/// binds: parsed, its plugins loaded and initialised, every endpoint built.
pub struct Verified {
    /// The configuration (with the `port` override applied).
    pub config: Config,
    /// The gateway, ready to serve.
    pub gateway: Gateway,
    /// One backend client a server worker.
    pub upstreams: Vec<BackendClient>,
    /// HTTPS for the listener, when the configuration has `tls`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS towards backends, as the upstreams were built with.
    pub backend_tls: TlsSettings,
    /// The loaded plugins.
    pub plugins: PluginHost,
    /// What did not stop it, for the log (`sepia run`) or the terminal
    /// (`sepia check`).
    pub warnings: Vec<String>,
    /// Namespaces no plugin serves, `(parent json path, namespace)`; each
    /// is also among the warnings. `check --lint` fails on them.
    pub unserved: Vec<(String, String)>,
}

/// Options of `sepia run` beyond the configuration./// Options of `sepia run` beyond the configuration.
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
    /// Reloads when the configuration file changes, as on SIGHUP.
    pub watch: bool,
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

/// The `extra_config` namespaces no plugin serves where they stand, at every
/// level and in every spelling: `(json path of the parent, namespace as
/// written)`, the parent empty for the top level. The namespaces the
/// gateway reads itself are not listed.
pub fn unserved_namespaces(config: &Config, plugins: &PluginHost) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in config.extra_config.entries() {
        let own = GATEWAY_NAMESPACES.contains(&entry.canonical.as_str());
        if !own && !plugins.serves_service(&entry.namespace) {
            out.push((String::new(), entry.namespace.clone()));
        }
    }
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

/// The warning for a plugin file that was skipped or refused.
fn skipped_warning(problem: &LoadError) -> String {
    match problem {
        LoadError::NotAPlugin { .. } => format!("{problem}; skipped"),
        LoadError::Refused { .. } => problem.to_string(),
    }
}

/// One server worker a core.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Everything `sepia run` does before it binds, and all `sepia check` does:
/// one function, so that a configuration `check` passes is one `run`
/// serves, and one `run` refuses fails `check` with the same message.
pub async fn verify(options: VerifyOptions) -> Result<Verified, StartupError> {
    let (config, mut warnings) = load_config(&options.config, options.port, options.lint)?;
    let sources = plugin_sources(&config);
    let allow_insecure = options.allow_insecure_plugins;
    let builtins = options.builtins.clone();
    let (plugins, skipped) =
        tokio::task::spawn_blocking(move || PluginHost::load(&sources, &builtins, allow_insecure))
            .await
            .map_err(|e| StartupError::Task(e.to_string()))??;
    warnings.extend(skipped.iter().map(skipped_warning));
    let checked = check_against(&config, &plugins, &mut warnings)?;
    let services = HostServices::new(
        Fetcher::new(tokio::runtime::Handle::current()),
        options.checking,
        config.version,
    );
    let upstreams = BackendClient::per_worker(
        worker_count(),
        &checked.backend_tls,
        &config.backend_transport,
    )?;
    let Checked {
        tls,
        unserved,
        backend_tls,
    } = checked;
    let discovery = Arc::new(ServiceDiscovery::start(&config, !options.checking).await?);
    // Plugin calls may block (key fetches): keep them off the async workers.
    tokio::task::spawn_blocking(move || -> Result<Verified, StartupError> {
        plugins.init(&services)?;
        let (gateway, gateway_warnings) = Gateway::build(&config, &plugins, &discovery)?;
        warnings.extend(gateway_warnings);
        Ok(Verified {
            config,
            gateway,
            upstreams,
            tls,
            backend_tls,
            plugins,
            warnings,
            unserved,
        })
    })
    .await
    .map_err(|e| StartupError::Task(e.to_string()))?
}

/// The configuration file, with the `-p` override and its warnings.
fn load_config(
    path: &std::path::Path,
    port: Option<u16>,
    lint: bool,
) -> Result<(Config, Vec<String>), StartupError> {
    let loaded = sepia_config::load(path, lint)?;
    let warnings = loaded.warnings.iter().map(|w| w.to_string()).collect();
    let mut config = loaded.config;
    if let Some(port) = port {
        config.port = port;
    }
    Ok((config, warnings))
}

/// What a configuration needs beyond its own file, checked against the
/// loaded plugins: no security namespace left unserved, TLS settings whose
/// files read and keys match. The part of [`verify`] a reload repeats.
struct Checked {
    unserved: Vec<(String, String)>,
    backend_tls: TlsSettings,
    tls: Option<Arc<rustls::ServerConfig>>,
}

fn check_against(
    config: &Config,
    plugins: &PluginHost,
    warnings: &mut Vec<String>,
) -> Result<Checked, StartupError> {
    let unserved = unserved_namespaces(config, plugins);
    for (path, namespace) in &unserved {
        if REQUIRED_NAMESPACES.contains(&namespace::canonical(namespace).as_ref()) {
            return Err(StartupError::Unserved {
                path: path.clone(),
                namespace: namespace.clone(),
            });
        }
        let level = if path.is_empty() {
            " at the top level"
        } else {
            ""
        };
        warnings.push(format!(
            "{}: no loaded plugin serves this namespace{level}; it is ignored",
            namespace::json_path(path, namespace)
        ));
    }
    let backend_tls = match &config.backend_tls {
        Some(settings) => {
            let (tls, tls_warnings) = TlsSettings::for_backends(settings)?;
            if tls.skip_verify {
                warnings.push(
                    "client_tls.allow_insecure_connections: backends' certificates are not checked"
                        .into(),
                );
            }
            warnings.extend(tls_warnings);
            tls
        }
        None => TlsSettings::default(),
    };
    let tls = match &config.tls {
        Some(settings) => {
            let (server, tls_warnings) = crate::server_tls::server_config(settings)?;
            warnings.extend(tls_warnings);
            Some(server)
        }
        None => None,
    };
    Ok(Checked {
        unserved,
        backend_tls,
        tls,
    })
}

/// A configuration reloaded with the plugins already loaded: the new
/// gateway and listener TLS, verified as at start-up.
struct Reloaded {
    config: Config,
    gateway: Gateway,
    tls: Option<Arc<rustls::ServerConfig>>,
    backend_tls: TlsSettings,
    warnings: Vec<String>,
}

/// Reads `path` again and builds its gateway with `plugins` (plugin files
/// are not loaded again: a new or changed `.so` needs a restart).
async fn reload(
    path: PathBuf,
    port: Option<u16>,
    plugins: Arc<PluginHost>,
) -> Result<Reloaded, StartupError> {
    let (config, mut warnings) = load_config(&path, port, false)?;
    let discovery = Arc::new(ServiceDiscovery::start(&config, true).await?);
    tokio::task::spawn_blocking(move || -> Result<Reloaded, StartupError> {
        let checked = check_against(&config, &plugins, &mut warnings)?;
        let (gateway, gateway_warnings) = Gateway::build(&config, &plugins, &discovery)?;
        warnings.extend(gateway_warnings);
        Ok(Reloaded {
            config,
            gateway,
            tls: checked.tls,
            backend_tls: checked.backend_tls,
            warnings,
        })
    })
    .await
    .map_err(|e| StartupError::Task(e.to_string()))?
}

/// `sepia run`: verifies everything, serves until SIGINT/SIGTERM.
pub async fn run(options: RunOptions) -> Result<(), StartupError> {
    serve_until(options, shutdown_signal(), None).await
}

/// Verifies everything and serves until `stop` completes; `listening`, when
/// given, is told the address once the listeners are bound (what `sepia
/// e2e` waits for).
pub async fn serve_until(
    options: RunOptions,
    stop: impl std::future::Future<Output = ()>,
    listening: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), StartupError> {
    let config_path = options.config.clone();
    let verified = verify(VerifyOptions {
        config: options.config,
        port: options.port,
        lint: false,
        allow_insecure_plugins: options.allow_insecure_plugins,
        builtins: options.builtins,
        checking: false,
    })
    .await?;
    if let Some(settings) = verified.gateway.log_settings() {
        crate::logging::apply(settings);
    }
    // Held until the gateway stops: the access log's writer thread.
    let _access_log = crate::logging::access::open();
    if let Some(otel) = verified.gateway.otel_settings() {
        // Loading the system's roots for it costs start-up time: only
        // when an OTLP exporter sends through it.
        let client = if otel.otlp.is_empty() {
            None
        } else {
            Some(crate::telemetry::otlp::ExportClient::new()?)
        };
        let readers = match &client {
            Some(client) => crate::telemetry::otlp::metric_readers(otel, client)?,
            None => Vec::new(),
        };
        // As krakend-otel's meter is a no-op one when no exporter reads
        // the metrics, nothing is measured then.
        let metrics = if otel.prometheus.is_empty() && readers.is_empty() {
            None
        } else {
            Some(crate::telemetry::metrics::install(otel, readers)?)
        };
        if let Some(client) = &client {
            if crate::telemetry::traces::install(otel, client)?.is_some() {
                for exporter in otel.otlp.iter().filter(|e| e.traces) {
                    tracing::info!(name = %exporter.name, endpoint = %exporter.endpoint, http = exporter.use_http, "exporting traces over OTLP");
                }
            }
        }
        if let Some(metrics) = metrics {
            serve_prometheus(otel, metrics).await?;
        }
    }
    if let Some(stats) = verified.gateway.stats_settings() {
        serve_stats(stats).await?;
    }
    for warning in &verified.warnings {
        tracing::warn!("{warning}");
    }
    let Verified {
        config,
        gateway,
        upstreams,
        tls,
        backend_tls,
        plugins,
        ..
    } = verified;
    let workers = upstreams.len();
    let address = SocketAddr::new(config.listen_ip, config.port);
    let listeners =
        bind(address, workers).map_err(|source| StartupError::Bind { address, source })?;
    let local = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(address);
    tracing::info!(
        address = %local,
        https = tls.is_some(),
        endpoints = config.endpoints.len(),
        plugins = plugins.plugins().len(),
        workers,
        "listening"
    );
    let open_files = raise_open_file_limit();
    let max_connections = config
        .sepia
        .max_connections
        .unwrap_or_else(|| default_max_connections(open_files));
    tracing::info!(open_files, max_connections, "connection limits");
    let tls = tls.map(|config| Arc::new(ArcSwap::new(config)));
    let settings = ServerSettings {
        read_header_timeout: config.read_header_timeout,
        idle_timeout: config.idle_timeout,
        read_timeout: config.read_timeout,
        write_timeout: config.write_timeout,
        max_header_bytes: config.max_header_bytes,
        shutdown_timeout: options.shutdown_timeout,
        tls: tls.clone(),
        max_connections: Arc::new(tokio::sync::Semaphore::new(max_connections)),
    };
    let current = Arc::new(ArcSwap::from_pointee(gateway));
    // A reload compares the new file's listener-level settings with these;
    // the endpoints, most of a large file's memory, are not kept for it.
    let mut config = config;
    config.endpoints = Vec::new();
    crate::memory::give_back();
    let reloader = tokio::spawn(reload_on_sighup(
        options.watch,
        config_path,
        options.port,
        Arc::new(plugins),
        current.clone(),
        tls,
        (config, backend_tls),
    ));
    let workers = listeners
        .into_iter()
        .zip(upstreams)
        .map(|(listener, upstream)| Worker { listener, upstream })
        .collect();
    if let Some(listening) = listening {
        // The listeners are bound: connections wait in their backlog
        // until the workers take them, so the address is usable now.
        let _ = listening.send(local);
    }
    let served = serve_workers(current, workers, settings, stop).await;
    reloader.abort();
    // The batch processor's thread blocks on its exports.
    let _ = tokio::task::spawn_blocking(crate::telemetry::traces::flush).await;
    served.map_err(StartupError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// Each `exporters.prometheus` listener, serving `metrics`.
async fn serve_prometheus(
    otel: &crate::telemetry::settings::OtelSettings,
    metrics: &'static crate::telemetry::metrics::GatewayMetrics,
) -> Result<(), StartupError> {
    for exporter in &otel.prometheus {
        let address = SocketAddr::new(exporter.host, exporter.port);
        let page = crate::telemetry::page_listener::Page {
            path: "/metrics",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: Arc::new(|| metrics.encode()),
        };
        let local = crate::telemetry::page_listener::serve(address, page)
            .await
            .map_err(|source| StartupError::MetricsBind {
                name: exporter.name.clone(),
                address,
                source,
            })?;
        tracing::info!(name = %exporter.name, address = %local, "serving metrics for Prometheus at /metrics");
    }
    Ok(())
}

/// `telemetry/metrics`: the collection every `collection_time`, and
/// `/__stats` on its own listener unless `endpoint_disabled`.
async fn serve_stats(
    stats: &crate::telemetry::stats::settings::StatsSettings,
) -> Result<(), StartupError> {
    let registry = crate::telemetry::stats::registry::registry();
    let period = stats.collection_time;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            registry.collect();
        }
    });
    if !stats.endpoint {
        return Ok(());
    }
    let page = crate::telemetry::page_listener::Page {
        path: "/__stats",
        content_type: "application/json; charset=utf-8",
        body: Arc::new(|| registry.page()),
    };
    let address = stats.listen;
    let local = crate::telemetry::page_listener::serve(address, page)
        .await
        .map_err(|source| StartupError::StatsBind { address, source })?;
    tracing::info!(address = %local, "serving KrakenD's stats at /__stats");
    Ok(())
}

/// The OpenTelemetry settings a file's gateway serves: what a reload
/// compares, so that a version-1/2 file's ignored namespace never asks for
/// a restart.
fn otel_served(config: &Config) -> Option<crate::telemetry::settings::OtelSettings> {
    crate::telemetry::settings::OtelSettings::from_config(config)
        .ok()
        .and_then(|(settings, _)| settings)
}

/// On each SIGHUP, verifies the configuration file again exactly as at
/// start-up (with the plugins already loaded) and, if it is good, swaps the
/// new gateway in: new requests go to it, requests in flight finish on the
/// old one. A bad file changes nothing and is logged. What a running
/// listener cannot change (address, port, HTTPS on or off, timeouts,
/// connection cap, TLS to backends and the backend transport) is kept, with a warning to restart;
/// the listener's certificates are read again.
async fn reload_on_sighup(
    watch: bool,
    path: PathBuf,
    port: Option<u16>,
    plugins: Arc<PluginHost>,
    current: Arc<ArcSwap<Gateway>>,
    tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    running: (Config, TlsSettings),
) {
    #[cfg(unix)]
    {
        let (running, running_backend_tls) = running;
        let mut hangups =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGHUP: reloading is off");
                    return;
                }
            };
        let mut watched = watch.then(|| crate::config_watch::ConfigWatch::new(&path));
        if watched.is_some() {
            tracing::info!(file = %path.display(), "watching the configuration file: a change reloads it");
        }
        loop {
            let cause = tokio::select! {
                signal = hangups.recv() => match signal {
                    Some(()) => "SIGHUP",
                    None => break,
                },
                () = async {
                    match watched.as_mut() {
                        Some(watch) => watch.changed().await,
                        None => std::future::pending().await,
                    }
                } => "the file changed",
            };
            tracing::info!(file = %path.display(), cause, "reloading the configuration");
            let reloaded = match reload(path.clone(), port, plugins.clone()).await {
                Ok(reloaded) => reloaded,
                Err(error) => {
                    tracing::error!(%error, "the new configuration is refused: the running one keeps serving");
                    continue;
                }
            };
            for warning in &reloaded.warnings {
                tracing::warn!("{warning}");
            }
            let new = &reloaded.config;
            // The namespaces read once at start-up.
            let changed = |namespace: &str| {
                new.extra_config.get(namespace) != running.extra_config.get(namespace)
            };
            let fixed = [
                ("listen_ip", new.listen_ip != running.listen_ip),
                ("port", new.port != running.port),
                (
                    "tls (on or off)",
                    new.tls.is_some() != running.tls.is_some(),
                ),
                (
                    "read_header_timeout",
                    new.read_header_timeout != running.read_header_timeout,
                ),
                ("idle_timeout", new.idle_timeout != running.idle_timeout),
                ("read_timeout", new.read_timeout != running.read_timeout),
                ("write_timeout", new.write_timeout != running.write_timeout),
                (
                    "max_header_bytes",
                    new.max_header_bytes != running.max_header_bytes,
                ),
                (
                    "sepia.max_connections",
                    new.sepia.max_connections != running.sepia.max_connections,
                ),
                ("client_tls", reloaded.backend_tls != running_backend_tls),
                (
                    "the backend transport (dialer_*, max_idle_connections*, …)",
                    new.backend_transport != running.backend_transport,
                ),
                (
                    "extra_config.\"telemetry/opentelemetry\"",
                    otel_served(new) != otel_served(&running),
                ),
                (
                    "extra_config.\"telemetry/metrics\"",
                    changed(crate::telemetry::stats::settings::NAMESPACE),
                ),
                (
                    "extra_config.\"telemetry/logging\"",
                    changed(crate::logging::settings::NAMESPACE),
                ),
            ];
            for (setting, changed) in fixed {
                if changed {
                    tracing::warn!(
                        setting,
                        "changed, but a running listener keeps the old value: restart to apply it"
                    );
                }
            }
            if let (Some(slot), Some(server)) = (&tls, reloaded.tls) {
                slot.store(server);
            }
            current.store(Arc::new(reloaded.gateway));
            tracing::info!(
                endpoints = new.endpoints.len(),
                "reloaded: new requests go to the new configuration"
            );
            drop(reloaded.config);
            crate::memory::give_back();
        }
    }
    #[cfg(not(unix))]
    let _ = (watch, path, port, plugins, current, tls, running);
}
