//! The Sepia gateway: serves KrakenD configurations, loads features from
//! plugins over a stable ABI.
//!
//! Where things live: `cli` (the `sepia` command), `e2e` (`sepia e2e`: specs
//! run against a started gateway), `startup` (from a
//! configuration file to a verified gateway, the one verification `check`
//! and `run` share), `server` (workers, listeners, shutdown), `gateway`
//! (service-level hooks, the gateway's own routes, then `router`),
//! `endpoint` (an endpoint's request path, a phase a module), `modifiers`
//! (plugin hooks bound to where they run), `plugin_host` (finding, loading
//! and calling plugins, the host services), `upstream` (backend clients and
//! their TLS), `error` (failures, their kinds, and the one place they become
//! client responses). Modules import in one direction; the test
//! `module_graph` keeps it so.
#![deny(unsafe_code)]

// The façade: what the binary, embedding programs, the examples and the
// benchmarks use. Everything else is the crate's own.

mod body;
mod body_budget;
mod builtin;
mod cli;
mod client_address;
mod config_watch;
mod connection;
mod demo;
mod e2e;
mod endpoint;
mod error;
mod forwarding;
mod gateway;
mod http_rules;
mod identity;
mod jwks;
mod keygen;
mod logging;
mod memory;
mod modifiers;
mod plugin_host;
mod request_context;
mod router;
mod server;
mod server_tls;
mod startup;
mod telemetry;
mod upstream;
mod write_deadline;

pub use cli::{main, main_with_builtins};
pub use plugin_host::{loader::load_library, root_module::Builtin};
pub use server::bind;
pub use upstream::{
    backend_client::{describe, BackendClient},
    tls::TlsSettings,
};
