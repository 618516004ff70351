//! The `sepia` command line: `run`, `check`, `e2e`, `version`, and the
//! helpers `check-plugin`, `demo`, `keygen`.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    e2e::E2eOptions,
    logging::{self, LogFormat},
    plugin_host::{loader::load_library, root_module::Builtin},
    startup::{self, RunOptions, VerifyOptions},
};

/// An API gateway that serves KrakenD configurations and loads its features
/// as plugins.
#[derive(Debug, Parser)]
#[command(name = "sepia", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves a configuration until SIGINT or SIGTERM.
    Run {
        /// The KrakenD configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Overrides the configuration's `port`.
        #[arg(short = 'p', long = "port")]
        port: Option<u16>,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Loads plugin files that any user could replace (world-writable).
        #[arg(long)]
        allow_insecure_plugins: bool,
        /// How long shutdown waits for requests in flight (Go duration).
        #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
        shutdown_timeout: Duration,
        /// Reloads the configuration when its file changes, as on SIGHUP
        /// (a bad file keeps the running one serving).
        #[arg(long)]
        watch: bool,
    },
    /// Starts the gateway with a configuration and runs a folder of specs in
    /// KrakenD's end-to-end format against it (`in`: the request; `out`:
    /// the status, headers and body expected). Exit status 0 when every
    /// spec passes, 1 when one fails, 2 when they could not be run.
    E2e {
        /// The KrakenD configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// The folder of spec files (`*.json`, run in file-name order).
        #[arg(short = 'f', long = "specs", default_value = "specs")]
        specs: PathBuf,
        /// Overrides the configuration's `port`.
        #[arg(short = 'p', long = "port")]
        port: Option<u16>,
        /// A wait after the gateway listens, before the first spec (Go
        /// duration), for backends that start beside it.
        #[arg(long, default_value = "0s", value_parser = parse_duration_arg)]
        delay: Duration,
        /// How long each request of a spec may take (Go duration).
        #[arg(long, default_value = "30s", value_parser = parse_duration_arg)]
        request_timeout: Duration,
        /// PEM roots to trust beside the system's, for an HTTPS gateway
        /// with a private certificate (repeatable).
        #[arg(long = "ca-certs")]
        ca_certs: Vec<PathBuf>,
        /// Log line format of the gateway.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Loads plugin files that any user could replace (world-writable).
        #[arg(long)]
        allow_insecure_plugins: bool,
    },
    /// Parses and validates a configuration without serving it.
    Check {
        /// The KrakenD configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Also fails on unknown keys and on settings Sepia does not implement.
        #[arg(long)]
        lint: bool,
        /// Considers plugin files that any user could replace.
        #[arg(long)]
        allow_insecure_plugins: bool,
        /// Lets plugins fetch remote resources (key sets, ...) as `run`
        /// does, so that unreachable ones fail the check too.
        #[arg(long)]
        fetch: bool,
    },
    /// Prints the gateway's version and its plugin ABI version.
    Version,
    /// Loads plugin files as the gateway would and says, per file, whether it
    /// would be used: name, version, ABI version and namespaces, or why not.
    CheckPlugin {
        /// The plugin files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Accepts files that any user could replace.
        #[arg(long)]
        allow_insecure_plugins: bool,
    },
    /// Runs the quick start: an example token backend, an example key, and
    /// the gateway serving a signed POST /token.
    Demo {
        /// Port of the gateway.
        #[arg(short = 'p', long = "port", default_value_t = 8080)]
        port: u16,
    },
    /// Prints a new private JWK set for the signer.
    Keygen {
        /// Signing algorithm (HS256 ... EdDSA).
        #[arg(long)]
        alg: String,
        /// Key ID, as the signer's `kid` will name it.
        #[arg(long)]
        kid: String,
        /// Also writes the public JWK set to this file (asymmetric keys).
        #[arg(long)]
        public: Option<PathBuf>,
    },
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    sepia_config::parse_duration(text)
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    main_with_builtins(Vec::new())
}

/// Runs the command line of a program that embeds the gateway with plugins
/// compiled in (they win over loaded plugins serving the same namespace).
pub fn main_with_builtins(builtins: Vec<Builtin>) -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("sepia {}", env!("CARGO_PKG_VERSION"));
            println!(
                "plugin ABI (sepia-plugin-api) {}",
                sepia_plugin_api::ABI_VERSION
            );
            ExitCode::SUCCESS
        }
        Command::Check {
            config,
            lint,
            allow_insecure_plugins,
            fetch,
        } => {
            // Plugins' own warnings and the gateway's refusals go to stderr;
            // the summary to stdout.
            logging::init_for_check();
            check(VerifyOptions {
                config,
                port: None,
                lint,
                allow_insecure_plugins,
                builtins,
                checking: !fetch,
            })
        }
        Command::Keygen { alg, kid, public } => keygen(&alg, &kid, public.as_deref()),
        Command::CheckPlugin {
            files,
            allow_insecure_plugins,
        } => check_plugins(&files, allow_insecure_plugins),
        Command::Demo { port } => {
            logging::init(LogFormat::Text);
            block_on(crate::demo::run(port))
        }
        Command::E2e {
            config,
            specs,
            port,
            delay,
            request_timeout,
            ca_certs,
            log_format,
            allow_insecure_plugins,
        } => {
            logging::init(log_format);
            e2e(E2eOptions {
                run: RunOptions {
                    config,
                    port,
                    allow_insecure_plugins,
                    shutdown_timeout: Duration::from_secs(10),
                    watch: false,
                    builtins,
                },
                specs,
                delay,
                request_timeout,
                ca_certs,
            })
        }
        Command::Run {
            config,
            port,
            log_format,
            allow_insecure_plugins,
            shutdown_timeout,
            watch,
        } => {
            logging::init(log_format);
            block_on(startup::run(RunOptions {
                config,
                port,
                allow_insecure_plugins,
                shutdown_timeout,
                watch,
                builtins,
            }))
        }
    }
}

/// Runs a serving command; its error is logged and printed.
fn block_on<E: std::fmt::Display>(
    work: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    match run_to_end(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("sepia: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` on the start-up runtime. The serving itself happens on the
/// server's own worker threads: this runtime does start-up, signals and
/// plugins' fetches, so one thread is plenty.
fn run_to_end<T, E: std::fmt::Display>(
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime.block_on(work).map_err(|error| error.to_string())
}

/// `sepia e2e`: the report on the standard output, once the gateway has
/// stopped (its own log lines come first).
fn e2e(options: E2eOptions) -> ExitCode {
    match run_to_end(crate::e2e::run(options)) {
        Ok(report) => {
            print!("{}", report.render());
            if report.failed() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("sepia e2e: {error}");
            ExitCode::from(2)
        }
    }
}

/// `sepia check-plugin`: one line a file; exit 1 when any would not load.
fn check_plugins(files: &[PathBuf], allow_insecure: bool) -> ExitCode {
    let mut all_ok = true;
    for file in files {
        match load_library(file, allow_insecure) {
            Ok(library) => println!(
                "OK {}: {} {} (sepia-plugin-api {}), namespaces: {}",
                file.display(),
                library.name,
                library.version,
                library.abi_version,
                library.namespaces.join(", ")
            ),
            Err(error) => {
                all_ok = false;
                println!("FAILED {error}");
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `sepia keygen`: the private set on stdout, the public set to a file.
fn keygen(alg: &str, kid: &str, public: Option<&std::path::Path>) -> ExitCode {
    let key = match crate::keygen::generate(alg, kid) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("sepia keygen: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = public {
        let Some(public_set) = &key.public_set else {
            eprintln!("sepia keygen: {alg} keys are symmetric: there is no public key to write");
            return ExitCode::FAILURE;
        };
        if let Err(error) = std::fs::write(path, sepia_json::to_vec(public_set)) {
            eprintln!("sepia keygen: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("{}", sepia_json::to_string(&key.private_set));
    ExitCode::SUCCESS
}

/// `sepia check`: the verification `sepia run` makes before it binds, with
/// every problem and warning printed, or a one-line summary.
fn check(options: VerifyOptions) -> ExitCode {
    let path = options.config.clone();
    let lint = options.lint;
    let verified = match run_to_end(startup::verify(options)) {
        Ok(verified) => verified,
        Err(error) => {
            eprintln!("{}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    };
    for warning in &verified.warnings {
        eprintln!("warning: {warning}");
    }
    if lint && !verified.unserved.is_empty() {
        eprintln!(
            "{}: {} namespace(s) no plugin serves (--lint fails on them)",
            path.display(),
            verified.unserved.len()
        );
        return ExitCode::FAILURE;
    }
    let config = &verified.config;
    let backends: usize = config.endpoints.iter().map(|e| e.backends.len()).sum();
    let needed: Vec<String> = config
        .namespaces()
        .iter()
        .map(|ns| {
            let served_by = verified.plugins.plugins().iter().find(|p| {
                p.library
                    .namespaces
                    .iter()
                    .chain(&p.library.service_namespaces)
                    .any(|n| sepia_config::namespace::same_namespace(n, ns))
            });
            match served_by {
                Some(p) => format!("{ns} ({})", p.library.name),
                None => format!("{ns} (missing)"),
            }
        })
        .collect();
    println!(
        "OK: {} endpoint(s), {backends} backend(s), plugins needed: {}",
        config.endpoints.len(),
        if needed.is_empty() {
            "none".to_owned()
        } else {
            needed.join(", ")
        }
    );
    let switches: Vec<String> = config
        .sepia
        .listed()
        .iter()
        .map(|(name, on)| format!("{name} {}", if *on { "on" } else { "off" }))
        .collect();
    println!(
        "behaves as KrakenD {}; Sepia switches (extra_config.sepia): {}",
        if config.krakend2() { "2.x" } else { "1.x" },
        switches.join(", ")
    );
    ExitCode::SUCCESS
}
