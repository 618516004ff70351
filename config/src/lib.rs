//! The KrakenD configuration model of the Sepia gateway.
//!
//! [`load`] and [`parse_str`] read a KrakenD configuration (version 3, and the
//! version 1 and 2 layouts users still have), resolve namespace aliases,
//! apply KrakenD's defaults and validate it. Every problem found is reported
//! with the JSON path it is about, all at once, so that one `sepia check`
//! shows everything to fix.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod diagnostics;
mod gateway_namespaces;
mod model;
pub mod namespace;
mod parse;
mod reader;
mod tls;
mod transport;

use std::path::{Path, PathBuf};

pub use diagnostics::{Problem, ProblemKind};
pub use gateway_namespaces::response_reference;
pub use model::{
    Backend, BackendEncoding, BackendErrors, Config, DnsSrv, Endpoint, ExtraConfig,
    ExtraConfigEntry, FlatmapOp, Method, OutputEncoding, PluginSettings, PropagatedParam,
    SepiaSwitches, ShadowBackend, Shaping, StaticResponse, StaticStrategy,
};
pub use parse::{jwt_claim_reference, placeholders, DEFAULT_MAX_HEADER_BYTES};
/// Go duration strings; shared with plugins through the plugin interface.
pub use sepia_plugin_api::parse_duration;
pub use tls::{BackendTls, ClientCert, ServerTls, TlsKeyPair, TlsVersion};
pub use transport::{BackendTransport, DialerSetting, DEFAULT_MAX_IDLE_PER_HOST};

/// A configuration that was read, with the problems that did not stop it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Unknown keys and settings Sepia does not implement (fatal with
    /// `--lint`, warnings otherwise).
    pub warnings: Vec<Problem>,
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("the configuration is not valid JSON (line {line}, column {column}): {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// The file is JSON but not a valid configuration.
    #[error("the configuration has {} problem(s):\n{}", .problems.len(), list(.problems))]
    Invalid {
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and validates a configuration file. With `lint`, unknown keys and
/// unsupported settings are errors too.
pub fn load(path: &Path, lint: bool) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&text, lint)
}

/// Reads and validates a configuration from text. See [`load`].
pub fn parse_str(text: &str, lint: bool) -> Result<Loaded, ConfigError> {
    let root: serde_json::Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let mut diags = diagnostics::Diagnostics::default();
    let config = parse::parse_document(&root, &mut diags);
    let (fatal, warnings): (Vec<Problem>, Vec<Problem>) =
        diags.problems.into_iter().partition(|p| p.is_fatal(lint));
    match config {
        Some(config) if fatal.is_empty() => Ok(Loaded { config, warnings }),
        _ => Err(ConfigError::Invalid {
            problems: if fatal.is_empty() { warnings } else { fatal },
        }),
    }
}

#[cfg(test)]
mod tests;
