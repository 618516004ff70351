//! The Sepia gateway: serves KrakenD configurations, loads features from
//! plugins over a stable ABI.
//!
//! Where things live: [`cli`] (the `sepia` command), [`startup`] (from a
//! configuration file to a serving gateway), [`server`] (listener and
//! shutdown), [`gateway`] and [`router`] (request routing), [`endpoint`] (an
//! endpoint's request path, by phases), [`modifiers`] (plugin hooks bound
//! to where they run), [`plugin_host`]
//! (finding, loading and calling plugins), [`error`] (failures as client
//! responses), [`upstream`] (backend clients and their TLS).
#![deny(unsafe_code)]

pub mod body;
pub mod builtin;
pub mod cli;
pub mod demo;
pub mod endpoint;
pub mod error;
pub mod gateway;
pub mod jwks;
pub mod keygen;
pub mod logging;
pub mod modifiers;
pub mod plugin_host;
pub mod request_context;
pub mod router;
pub mod server;
pub mod startup;
pub mod upstream;
