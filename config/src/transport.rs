//! The service's settings of the HTTP client every backend call goes
//! through: the top-level keys lura copies into Go's `http.DefaultTransport`
//! and its `net.Dialer` (`InitHTTPDefaultTransport`, the same in lura 1.4
//! and lura 2).

use std::time::Duration;

use serde_json::Value;

use crate::{
    diagnostics::Diagnostics,
    reader::{type_name, ObjectReader},
};

/// lura's `DefaultMaxIdleConnsPerHost`, used when the file sets none (or 0).
pub const DEFAULT_MAX_IDLE_PER_HOST: usize = 250;

/// A dialer setting Go reads three ways: zero (or unset) for Go's default,
/// a negative duration to turn the feature off, a positive one to set it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DialerSetting {
    /// Unset or zero: Go's default.
    #[default]
    GoDefault,
    /// Negative: off.
    Off,
    /// This long.
    Set(Duration),
}

impl DialerSetting {
    /// The duration in force: `go_default` unless set, `None` when off.
    pub fn or(self, go_default: Duration) -> Option<Duration> {
        match self {
            DialerSetting::GoDefault => Some(go_default),
            DialerSetting::Off => None,
            DialerSetting::Set(duration) => Some(duration),
        }
    }
}

/// How backends are connected to and their connections kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendTransport {
    /// `dialer_timeout`: how long a TCP connect may take; `None` (unset or
    /// zero) leaves it to the system and to the endpoint's timeout, as Go.
    pub dialer_timeout: Option<Duration>,
    /// `dialer_keep_alive`: the period of TCP keep-alive probes (Go's
    /// default 15 s; negative: none).
    pub dialer_keep_alive: DialerSetting,
    /// `dialer_fallback_delay`: how long an IPv6 connect gets before IPv4
    /// is tried beside it (Go's default 300 ms; negative: one family after
    /// the other).
    pub dialer_fallback_delay: DialerSetting,
    /// `disable_keep_alives`: one request a connection, each sent with
    /// `Connection: close`.
    pub disable_keep_alives: bool,
    /// `max_idle_connections`: idle connections kept over all backends;
    /// 0 for no limit.
    pub max_idle_connections: usize,
    /// `max_idle_connections_per_host`: idle connections kept a backend
    /// (250 when unset or 0).
    pub max_idle_connections_per_host: usize,
    /// `idle_connection_timeout`: an idle connection is closed after this
    /// long; `None` (unset or zero) keeps it until the backend closes it.
    pub idle_connection_timeout: Option<Duration>,
    /// `response_header_timeout`: how long a backend may take to send its
    /// response head once the request is sent; `None`: no limit of its own.
    pub response_header_timeout: Option<Duration>,
    /// `expect_continue_timeout`: Go's wait for a `100 Continue` before a
    /// request body carrying `Expect: 100-continue`. Sepia's client sends
    /// the body with the head, as Go does once that wait ends, so a backend
    /// receives the same request; the value is only read and checked.
    pub expect_continue_timeout: Option<Duration>,
}

impl Default for BackendTransport {
    /// A file that sets none of the keys: Go's `http.Transport` as lura
    /// builds it.
    fn default() -> Self {
        Self {
            dialer_timeout: None,
            dialer_keep_alive: DialerSetting::GoDefault,
            dialer_fallback_delay: DialerSetting::GoDefault,
            disable_keep_alives: false,
            max_idle_connections: 0,
            max_idle_connections_per_host: DEFAULT_MAX_IDLE_PER_HOST,
            idle_connection_timeout: None,
            response_header_timeout: None,
            expect_continue_timeout: None,
        }
    }
}

/// Reads the transport keys of the top-level object.
pub(crate) fn backend_transport(
    top: &mut ObjectReader<'_>,
    diags: &mut Diagnostics,
) -> BackendTransport {
    let per_host = count(top, "max_idle_connections_per_host", diags)
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_IDLE_PER_HOST);
    BackendTransport {
        dialer_timeout: top.timeout("dialer_timeout", diags),
        dialer_keep_alive: dialer_setting(top, "dialer_keep_alive", diags),
        dialer_fallback_delay: dialer_setting(top, "dialer_fallback_delay", diags),
        disable_keep_alives: top.bool("disable_keep_alives", diags).unwrap_or(false),
        max_idle_connections: count(top, "max_idle_connections", diags).unwrap_or(0),
        max_idle_connections_per_host: per_host,
        idle_connection_timeout: top.timeout("idle_connection_timeout", diags),
        response_header_timeout: top.timeout("response_header_timeout", diags),
        expect_continue_timeout: top.timeout("expect_continue_timeout", diags),
    }
}

/// A count of connections.
fn count<'a>(top: &mut ObjectReader<'a>, key: &'a str, diags: &mut Diagnostics) -> Option<usize> {
    top.uint(key, usize::MAX as u64, diags).map(|n| n as usize)
}

/// A duration that may be negative (Go's "off").
fn dialer_setting<'a>(
    top: &mut ObjectReader<'a>,
    key: &'a str,
    diags: &mut Diagnostics,
) -> DialerSetting {
    let path = top.path_of(key);
    match top.raw(key) {
        None => DialerSetting::GoDefault,
        Some(Value::String(text)) => {
            let trimmed = text.trim();
            let (negative, magnitude) = match trimmed.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, trimmed),
            };
            match crate::parse_duration(magnitude) {
                Ok(d) if d.is_zero() => DialerSetting::GoDefault,
                Ok(_) if negative => DialerSetting::Off,
                Ok(d) => DialerSetting::Set(d),
                Err(message) => {
                    diags.invalid(&path, message);
                    DialerSetting::GoDefault
                }
            }
        }
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(0), _) => DialerSetting::GoDefault,
            (Some(nanos), _) => DialerSetting::Set(Duration::from_nanos(nanos)),
            (None, Some(_)) => DialerSetting::Off,
            (None, None) => {
                diags.invalid(&path, "a duration must be a string such as \"30s\"");
                DialerSetting::GoDefault
            }
        },
        Some(other) => {
            diags.invalid(
                &path,
                format!(
                    "expected a duration such as \"30s\" (negative turns it off), found {}",
                    type_name(other)
                ),
            );
            DialerSetting::GoDefault
        }
    }
}
