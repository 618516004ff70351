// `#[sabi_trait]` expands to impls inside a const block, which rustc flags.
#![allow(non_local_definitions)]

use abi_stable::{
    sabi_trait,
    std_types::{RArc, RErr, RResult, RStr, RString, RVec},
    StableAbi,
};

use crate::{http::Header, PluginError};

/// Severity of a log line a plugin sends to the gateway.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Logging is off.
    Off = 0,
    /// Something failed.
    Error = 1,
    /// Something looks wrong but the gateway goes on.
    Warn = 2,
    /// Normal operation worth knowing about.
    Info = 3,
    /// Detail for debugging.
    Debug = 4,
    /// Very detailed tracing.
    Trace = 5,
}

/// TLS settings for a [`FetchRequest`] to an `https://` URL. The defaults are
/// the safe ones: TLS 1.2 or newer, the system's trusted roots, every cipher
/// suite the gateway supports, no pinning.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Extra trusted certificate authorities, PEM encoded (may hold several).
    pub extra_roots_pem: RVec<u8>,
    /// Public-key pins: base64 (URL-safe alphabet, padded) SHA-256 digests of
    /// a certificate's SubjectPublicKeyInfo. When not empty, the server must
    /// present at least one certificate whose key matches one pin.
    pub pins_sha256: RVec<RString>,
    /// Allowed cipher suites as IANA IDs (for example `0xC02F`); empty means
    /// the gateway's defaults. An ID the gateway does not support fails the
    /// fetch with an error naming it.
    pub cipher_suites: RVec<u16>,
    /// Skips certificate verification entirely. Only for tests and for users
    /// who explicitly asked for it: the gateway logs a warning every time.
    pub skip_verify: bool,
}

/// An outgoing HTTP request a plugin asks the gateway to perform.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// HTTP method, upper-case.
    pub method: RString,
    /// Absolute `http://` or `https://` URL.
    pub url: RString,
    /// Request headers.
    pub headers: RVec<Header>,
    /// Request body (empty for none).
    pub body: RVec<u8>,
    /// Whole-request timeout in milliseconds (0 means the gateway's default of
    /// 10 seconds).
    pub timeout_ms: u64,
    /// TLS settings for `https://` URLs.
    pub tls: TlsOptions,
}

impl FetchRequest {
    /// A `GET` of `url` with default settings.
    pub fn get(url: &str) -> Self {
        Self {
            method: RString::from("GET"),
            url: RString::from(url),
            headers: RVec::new(),
            body: RVec::new(),
            timeout_ms: 0,
            tls: TlsOptions::default(),
        }
    }
}

/// The answer to a [`FetchRequest`]. Any status counts as an answer; network
/// and TLS failures are errors instead.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers, names lower-case.
    pub headers: RVec<Header>,
    /// Response body.
    pub body: RVec<u8>,
}

impl FetchResponse {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Header> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    }
}

/// Services the gateway offers its plugins, as an ABI-stable trait object.
///
/// Plugin authors use it through [`Host`]; the gateway implements it. New
/// services are appended with default bodies, so a plugin built against a
/// newer API that calls a service an older gateway lacks gets an error, not a
/// crash.
#[sabi_trait]
pub trait AbiHost: Send + Sync {
    /// The most verbose level the gateway's log filter lets through; the
    /// plugin drops anything more verbose before it crosses the ABI.
    fn max_log_level(&self) -> LogLevel;

    /// Writes one log line into the gateway's log, attributed to the plugin.
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);

    /// Performs an HTTP request on the gateway's own runtime and blocks the
    /// calling thread until it is done. Do not call it from a hot request
    /// hook: it is meant for start-up and background work (fetching keys,
    /// configuration, ...).
    #[sabi(last_prefix_field)]
    fn fetch(&self, request: FetchRequest) -> RResult<FetchResponse, PluginError> {
        let _ = request;
        RErr(PluginError::internal(
            "this gateway does not offer HTTP fetch to plugins: upgrade it",
        ))
    }
}

/// The host-services object as it crosses the ABI.
pub type HostBox = AbiHost_TO<'static, RArc<()>>;

/// The gateway's services, as a plugin sees them.
pub struct Host {
    inner: HostBox,
}

impl Host {
    pub(crate) fn new(inner: HostBox) -> Self {
        Self { inner }
    }

    /// Writes a log line into the gateway's log. Plugins normally use the
    /// `tracing` macros instead, which end up here.
    pub fn log(&self, level: LogLevel, target: &str, message: &str) {
        if level != LogLevel::Off && level <= self.max_log_level() {
            self.inner.log(level, target.into(), message.into());
        }
    }

    /// The most verbose level the gateway logs.
    pub fn max_log_level(&self) -> LogLevel {
        self.inner.max_log_level()
    }

    /// Performs an HTTP request through the gateway and waits for the answer.
    /// See [`AbiHost::fetch`].
    pub fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, PluginError> {
        self.inner.fetch(request).into_result()
    }
}
