use std::fmt;

use abi_stable::{std_types::RString, StableAbi};

/// An error a plugin reports to the gateway.
///
/// At request time the client receives `status` and a JSON body
/// `{"error": message}`; at start-up the gateway stops and prints `message`
/// with the endpoint it was building. Messages reach logs and clients: never
/// put secrets (keys, passwords, tokens) in them.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The HTTP status the client receives (400–599; anything else is
    /// answered as 500).
    pub status: u16,
    /// What went wrong, for a human.
    pub message: RString,
}

impl PluginError {
    /// An error with the given client status and message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: RString::from(message.into()),
        }
    }

    /// A 500 error: something failed inside the plugin.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// A 400 error: the client's request was not acceptable.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// A configuration error, reported when a modifier is built.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The message as a `&str`.
    pub fn message(&self) -> &str {
        self.message.as_str()
    }

    /// The status the gateway will answer with: `status` when it is an HTTP
    /// error status (400–599), 500 otherwise.
    pub fn client_status(&self) -> u16 {
        if (400..=599).contains(&self.status) {
            self.status
        } else {
            500
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (status {})", self.message, self.status)
    }
}

impl std::error::Error for PluginError {}
