use abi_stable::StableAbi;

/// The hooks of a [`crate::Modifier`] the gateway calls (appended in 1.3).
///
/// Each hook the gateway calls costs a crossing of the library boundary and
/// a copy of the request or response into plain data, a few microseconds on
/// a busy gateway; a modifier that declares only the hooks it implements
/// (see [`crate::Modifier::hooks`]) is not called for the others, and a
/// request that no declared hook sees costs nothing at all. Bits the gateway
/// does not know are ignored, so a set built by a newer plugin is safe to
/// hand an older gateway.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hooks(u32);

impl Hooks {
    /// No hook: the modifier is only built (it may publish keys, see
    /// [`crate::Modifier::public_keys`]).
    pub const NONE: Hooks = Hooks(0);
    /// [`crate::Modifier::on_request_with`] (and so `on_request`).
    pub const REQUEST: Hooks = Hooks(1);
    /// [`crate::Modifier::on_response_with`] (and so `on_response`).
    pub const RESPONSE: Hooks = Hooks(1 << 1);
    /// [`crate::Modifier::on_backend_result`]; called for modifiers in a
    /// backend's `extra_config` only.
    pub const BACKEND_RESULT: Hooks = Hooks(1 << 2);
    /// What a modifier built before 1.3 gets: both traffic hooks.
    pub const REQUEST_AND_RESPONSE: Hooks = Hooks(1 | (1 << 1));

    /// Both sets together.
    pub const fn with(self, other: Hooks) -> Hooks {
        Hooks(self.0 | other.0)
    }

    /// Whether every hook of `other` is in this set.
    pub const fn contains(self, other: Hooks) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Hooks {
    type Output = Hooks;

    fn bitor(self, other: Hooks) -> Hooks {
        self.with(other)
    }
}

/// Why a backend call failed, as [`BackendResult::failure`] reports it
/// (appended in 1.3). The kinds are fixed: a later interface that needs
/// another adds a field to [`BackendResult`] rather than a variant here.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendFailure {
    /// The call succeeded: KrakenD would decode and use the answer.
    None,
    /// No connection could be made to the backend.
    Connect,
    /// The endpoint's deadline passed before the answer was in, or the call
    /// was abandoned (another of `concurrent_calls` won, the client left).
    Timeout,
    /// The connection failed mid-exchange, or the backend broke HTTP
    /// (a redirect loop, a malformed answer).
    Protocol,
    /// The backend answered with a status the endpoint does not accept
    /// (anything but 200 and 201, unless the endpoint's encoding is
    /// `no-op`, which accepts every status).
    Status,
    /// The answer's body could not be read or is not what the backend's
    /// `encoding` declares.
    Body,
    /// A hook of this backend refused the call or failed.
    Plugin,
}

/// How one call to a backend went, for the backend's
/// [`crate::Modifier::on_backend_result`] hooks (appended in 1.3): what a
/// circuit breaker counts and what metrics record. A call counts as failed
/// exactly when KrakenD's backend proxy returns an error for it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct BackendResult {
    /// [`BackendFailure::None`] on success, else why it failed.
    pub failure: BackendFailure,
    /// The status the backend answered with (the last one, after
    /// redirects); 0 when it gave none.
    pub status: u16,
    /// The time from sending the request to the end of the answer (or to
    /// the failure), in microseconds.
    pub elapsed_us: u64,
}

impl BackendResult {
    /// Whether the call succeeded.
    pub fn succeeded(&self) -> bool {
        self.failure == BackendFailure::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_combine_and_test_membership() {
        let both = Hooks::REQUEST | Hooks::RESPONSE;
        assert_eq!(both, Hooks::REQUEST_AND_RESPONSE);
        assert!(both.contains(Hooks::REQUEST));
        assert!(!Hooks::REQUEST.contains(Hooks::RESPONSE));
        assert!(Hooks::REQUEST.contains(Hooks::NONE));
        assert!(!Hooks::NONE.contains(Hooks::BACKEND_RESULT));
    }
}
