// `#[sabi_trait]` expands to impls inside a const block, which rustc flags.
#![allow(non_local_definitions)]

use abi_stable::{
    sabi_trait,
    std_types::{RArc, RErr, RNone, ROption, RResult, RSlice, RStr, RString, RVec},
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

    /// Whether the gateway is only verifying the configuration (`sepia
    /// check`) and will not serve it. Appended in 1.2.
    fn checking(&self) -> bool {
        false
    }

    /// The configuration file's `version`. Appended in 1.2.
    fn config_version(&self) -> u64 {
        3
    }

    /// Registers a metric. Appended in 1.2.
    fn register_metric(&self, spec: MetricSpec) -> RResult<MetricId, PluginError> {
        let _ = spec;
        RErr(PluginError::internal(
            "this gateway keeps no plugin metrics: upgrade it",
        ))
    }

    /// Records one value of a metric for one set of label values. Appended
    /// in 1.2.
    fn record_metric(&self, metric: MetricId, labels: RSlice<'_, RStr<'_>>, value: f64) {
        let _ = (metric, labels, value);
    }

    /// Adds `delta` to the shared value `key` and returns the sum. A key
    /// that is absent or expired starts at zero and expires `ttl_ms`
    /// milliseconds later (0: never). Appended in 1.2.
    fn shared_add(&self, key: RStr<'_>, delta: i64, ttl_ms: u64) -> i64 {
        let _ = (key, ttl_ms);
        delta
    }

    /// Sets the shared value `key` to `new` if it is `expected` (`None`:
    /// absent or expired), then expiring `ttl_ms` milliseconds later (0:
    /// never); returns the value it had, so the swap happened exactly when
    /// that equals `expected`. Appended in 1.2.
    fn shared_compare_and_swap(
        &self,
        key: RStr<'_>,
        expected: ROption<i64>,
        new: i64,
        ttl_ms: u64,
    ) -> ROption<i64> {
        let _ = (key, expected, new, ttl_ms);
        RNone
    }
}

/// What a metric measures (appended in 1.2).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A total that only grows: each recorded value is added.
    Counter,
    /// A level: each recorded value replaces the last.
    Gauge,
    /// A distribution: each recorded value is counted in its bucket.
    Histogram,
}

/// A metric a plugin asks the gateway to keep and export with its own
/// (appended in 1.2).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The name operators see, in Prometheus style: lower case, `_`
    /// between words, a unit suffix (`ratelimit_rejected_total`,
    /// `cache_size_bytes`). Letters, digits, `_` and `:` only, not starting
    /// with a digit.
    pub name: RString,
    /// One line saying what it measures.
    pub help: RString,
    /// The names of its labels (`["endpoint", "reason"]`); every record
    /// gives one value for each, in this order.
    pub label_names: RVec<RString>,
    /// For histograms, the buckets' upper bounds in increasing order;
    /// empty for the gateway's defaults. Ignored for other kinds.
    pub buckets: RVec<f64>,
}

impl MetricSpec {
    /// A metric of `kind` with no labels.
    pub fn new(kind: MetricKind, name: &str, help: &str) -> Self {
        Self {
            kind,
            name: RString::from(name),
            help: RString::from(help),
            label_names: RVec::new(),
            buckets: RVec::new(),
        }
    }

    /// The same metric with these label names.
    pub fn with_labels(mut self, names: &[&str]) -> Self {
        self.label_names = names.iter().map(|n| RString::from(*n)).collect();
        self
    }

    /// The same histogram with these bucket bounds.
    pub fn with_buckets(mut self, bounds: &[f64]) -> Self {
        self.buckets = RVec::from(bounds.to_vec());
        self
    }
}

/// A metric the gateway registered for a plugin: pass it to
/// [`Host::record`].
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricId(pub u64);

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

    /// Whether the gateway is only verifying the configuration (`sepia
    /// check`). Modifiers are built as for serving, so that every bad
    /// setting is refused as `sepia run` would refuse it; but a plugin
    /// should then skip what only serving needs: fetching remote resources
    /// (key sets, ...), which `check` must not depend on, and starting
    /// background threads.
    pub fn checking(&self) -> bool {
        self.inner.checking()
    }

    /// The configuration file's `version` (1, 2 or 3). Files of version 1
    /// and 2 are served as KrakenD 1.x serves them and version 3 as KrakenD
    /// 2.x: a plugin that mirrors a KrakenD component follows the
    /// generation the file was written for (the signer writes KrakenD 1.x's
    /// token header for version-2 files).
    pub fn config_version(&self) -> u64 {
        self.inner.config_version()
    }

    /// Registers a metric that the gateway exports beside its own. Register
    /// once, when the modifier is built, and keep the [`MetricId`]:
    /// registering a name twice with the same kind and labels returns the
    /// same metric (each endpoint's modifier may register it), with other
    /// ones an error.
    pub fn register_metric(&self, spec: MetricSpec) -> Result<MetricId, PluginError> {
        self.inner.register_metric(spec).into_result()
    }

    /// Records `value` for `metric` with one value for each of its labels,
    /// in order: added to a counter, set on a gauge, observed by a
    /// histogram. Cheap enough for every request (no allocation for up to
    /// eight labels). A wrong number of labels is dropped with a warning in
    /// the gateway's log.
    pub fn record(&self, metric: MetricId, labels: &[&str], value: f64) {
        const INLINE: usize = 8;
        if labels.len() <= INLINE {
            let mut buffer = [RStr::from_str(""); INLINE];
            for (slot, label) in buffer.iter_mut().zip(labels) {
                *slot = RStr::from_str(label);
            }
            let labels = buffer.get(..labels.len()).unwrap_or_default();
            self.inner
                .record_metric(metric, RSlice::from_slice(labels), value);
        } else {
            let labels: Vec<RStr<'_>> = labels.iter().map(|l| RStr::from_str(l)).collect();
            self.inner
                .record_metric(metric, RSlice::from_slice(&labels), value);
        }
    }

    /// Adds `delta` to a value shared by all of the gateway's workers and
    /// returns the new value. A key that is absent or has expired starts at
    /// zero and expires `ttl` later (`None`: never): enough for fixed-window
    /// counters. Keys are the plugin's own to choose; prefix them with the
    /// plugin's name.
    pub fn shared_add(&self, key: &str, delta: i64, ttl: Option<std::time::Duration>) -> i64 {
        self.inner.shared_add(key.into(), delta, ttl_ms(ttl))
    }

    /// Sets a shared value to `new` when it holds `expected` (`None`:
    /// absent or expired), expiring `ttl` later; `Ok(())` when it did, or
    /// `Err(current)` with the value it holds instead, to compute again and
    /// retry. Token buckets and GCRA limits are built on this.
    pub fn shared_compare_and_swap(
        &self,
        key: &str,
        expected: Option<i64>,
        new: i64,
        ttl: Option<std::time::Duration>,
    ) -> Result<(), Option<i64>> {
        let before: Option<i64> = self
            .inner
            .shared_compare_and_swap(key.into(), expected.into(), new, ttl_ms(ttl))
            .into();
        if before == expected {
            Ok(())
        } else {
            Err(before)
        }
    }
}

/// A time to live as the ABI carries it: milliseconds, 0 for never, at
/// least 1 for a non-zero duration.
fn ttl_ms(ttl: Option<std::time::Duration>) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
    }
}
