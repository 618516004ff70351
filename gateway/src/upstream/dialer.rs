//! How TCP connections to backends are opened, for both clients: Go's
//! `net.Dialer` settings as lura sets them (`dialer_timeout`,
//! `dialer_keep_alive`, `dialer_fallback_delay`) onto hyper-util's
//! connector, which resolves the name off the async workers and races IPv6
//! and IPv4 as Go's dialer does.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use sepia_config::BackendTransport;

use super::connection_timings::TimedResolver;

/// The TCP connector both clients dial with, its look-ups timed for
/// `detailed_connection`.
pub type Dialer = HttpConnector<TimedResolver>;

/// Go's `net.Dialer` keep-alive period when none is set.
const GO_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Go's `net.Dialer` fallback delay (RFC 6555) when none is set.
const GO_FALLBACK_DELAY: Duration = Duration::from_millis(300);

/// A connector for `transport`'s dialer settings.
pub fn connector(transport: &BackendTransport) -> Dialer {
    let mut http = HttpConnector::new_with_resolver(TimedResolver::default());
    http.set_nodelay(true);
    http.set_connect_timeout(transport.dialer_timeout);
    // Go sets the idle time and the probe interval both to the period.
    let keep_alive = transport.dialer_keep_alive.or(GO_KEEP_ALIVE);
    http.set_keepalive(keep_alive);
    http.set_keepalive_interval(keep_alive);
    http.set_happy_eyeballs_timeout(transport.dialer_fallback_delay.or(GO_FALLBACK_DELAY));
    http
}
