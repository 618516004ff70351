//! What Sepia's JOSE plugins share, so that the signer and the validator
//! read the same settings, trust the same keys and refuse the same bad ones:
//! the algorithms and their key checks, signing and verifying, and getting a JWK set through the
//! gateway's host services (https, pins, local CA, start-up retries).
//!
//! A library linked into each plugin, never into the gateway: plugins reach
//! the gateway through `sepia-plugin-api` alone.

pub mod algorithm;
pub mod key_source;

pub use algorithm::{Algorithm, KeyProblem, Signer, Verifier};
pub use key_source::{
    explain_unsupported, set_keys, KeyError, KeySource, KeySourceSettings, KEY_SOURCE_SETTINGS,
};
pub use sepia_plugin_settings::{Known, SettingsReader};
