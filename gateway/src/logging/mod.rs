//! The gateway's log: tracing-subscriber with a `RUST_LOG`-style filter
//! (default `info`), as text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Installs the global subscriber. A bad `RUST_LOG` falls back to `info`
/// with a warning rather than silencing the log.
pub fn init(format: LogFormat) {
    init_at(format, "info");
}

/// The subscriber of `sepia check`: warnings and errors only (plugins'
/// own included), unless `RUST_LOG` asks for more.
pub fn init_for_check() {
    init_at(LogFormat::Text, "warn");
}

fn init_at(format: LogFormat, default_level: &str) {
    let (filter, bad_filter) = match EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        Err(e) => {
            let had_value = std::env::var_os("RUST_LOG").is_some();
            (
                EnvFilter::new(default_level),
                had_value.then(|| e.to_string()),
            )
        }
    };
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if installed.is_err() {
        return;
    }
    if let Some(error) = bad_filter {
        tracing::warn!(%error, "RUST_LOG is not a valid filter; logging at {default_level}");
    }
}
