//! Who a request comes from, as KrakenD's router (gin's `ClientIP`) tells
//! it: the address its access log writes, its backends get as
//! `X-Forwarded-For`, and its plugins see as the client's.
//!
//! - lura 2 (version-3 files): with `forwarded_by_client_ip` (on by
//!   default) and a peer among `trusted_proxies` (every address by
//!   default), the first of `remote_ip_headers` (`X-Forwarded-For`,
//!   `X-Real-IP`) whose addresses, read from the right, end at an address
//!   that is not a trusted proxy (or at the first one); else the peer.
//!   With `app_engine`, an `X-Appengine-Remote-Addr` first, whoever sent
//!   it (gin's legacy flag).
//! - lura 1.4 (version-1/2 files), on gin of 2017: the first
//!   `X-Forwarded-For` entry, else `X-Real-Ip`, else the peer.
//! - `sepia.append_forwarded_for`: always the peer (no header is trusted).

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// A request's addresses: the connection's peer, and the client the
/// router's rule makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    pub peer: IpAddr,
    pub client: IpAddr,
}

impl ClientAddr {
    /// A request whose client is its peer.
    #[cfg(test)]
    pub fn of_peer(peer: IpAddr) -> Self {
        Self { peer, client: peer }
    }
}

/// How the client address is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRule {
    /// `sepia.append_forwarded_for`: the peer.
    Peer,
    /// lura 1.4's gin.
    Gin2017,
    /// lura 2's gin.
    Gin {
        /// `forwarded_by_client_ip`.
        forwarded: bool,
        /// `remote_ip_headers`.
        headers: Vec<HeaderName>,
        /// `trusted_proxies`; `None`: every address, gin's default.
        trusted: Option<Vec<IpNet>>,
        /// `app_engine`: gin reads `X-Appengine-Remote-Addr` before all.
        app_engine: bool,
    },
}

impl Default for ClientRule {
    fn default() -> Self {
        ClientRule::Gin {
            forwarded: true,
            headers: vec![
                HeaderName::from_static("x-forwarded-for"),
                HeaderName::from_static("x-real-ip"),
            ],
            trusted: None,
            app_engine: false,
        }
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

impl ClientRule {
    /// The addresses of a request from `peer` with `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        let client = match self {
            ClientRule::Peer => None,
            ClientRule::Gin2017 => {
                let forwarded = header_text(headers, "x-forwarded-for");
                let first = forwarded.split(',').next().unwrap_or("").trim();
                // gin of 2017 hands on the text unchecked; an address is
                // what the gateway can carry, so a non-address falls
                // through to the next source.
                first
                    .parse()
                    .ok()
                    .or_else(|| header_text(headers, "x-real-ip").trim().parse().ok())
            }
            ClientRule::Gin {
                forwarded,
                headers: names,
                trusted,
                app_engine,
            } => {
                // gin hands the header's text on unchecked; an address is
                // what the gateway can carry, so another text falls through.
                let app_engine_addr = app_engine
                    .then(|| {
                        header_text(headers, "x-appengine-remote-addr")
                            .trim()
                            .parse()
                            .ok()
                    })
                    .flatten();
                let trusts = |ip: IpAddr| {
                    trusted
                        .as_ref()
                        .is_none_or(|nets| nets.iter().any(|n| n.contains(&ip)))
                };
                if app_engine_addr.is_some() {
                    app_engine_addr
                } else if *forwarded && trusts(peer) {
                    names.iter().find_map(|name| {
                        let mut lines =
                            headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
                        // gin joins a header's several lines with commas; the
                        // usual one line is read in place.
                        let joined: std::borrow::Cow<'_, str> = match (lines.next(), lines.next()) {
                            (None, _) => return None,
                            (Some(one), None) => one.into(),
                            (Some(first), Some(second)) => [first, second]
                                .into_iter()
                                .chain(lines)
                                .collect::<Vec<_>>()
                                .join(",")
                                .into(),
                        };
                        gin_validate(&joined, &trusts)
                    })
                } else {
                    None
                }
            }
        };
        ClientAddr {
            peer,
            client: client.unwrap_or(peer),
        }
    }
}

/// gin's `validateHeader`: the addresses from the right, stopping at the
/// first that is not a trusted proxy, or at the left-most; none when one
/// is not an address.
fn gin_validate(header: &str, trusts: &impl Fn(IpAddr) -> bool) -> Option<IpAddr> {
    if header.is_empty() {
        return None;
    }
    let mut items = header.rsplit(',').peekable();
    while let Some(item) = items.next() {
        let ip: IpAddr = item.trim().parse().ok()?;
        let leftmost = items.peek().is_none();
        if leftmost || !trusts(ip) {
            return Some(ip);
        }
    }
    None
}

/// `trusted_proxies`' entries: addresses or CIDR blocks, as gin reads them.
pub fn parse_trusted(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "extra_config.router.trusted_proxies: \"{entry}\" is neither an address nor a CIDR block (write 10.0.0.1 or 10.0.0.0/8)"
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn lura_2_takes_gins_client_ip() {
        let peer = ip("10.0.0.9");
        let rule = ClientRule::default();
        // Every proxy trusted: the left-most address.
        let h = headers(&[("X-Forwarded-For", "1.2.3.4, 10.0.0.1")]);
        assert_eq!(rule.resolve(peer, &h).client, ip("1.2.3.4"));
        assert_eq!(rule.resolve(peer, &h).peer, peer);
        // X-Real-IP when X-Forwarded-For is not there or not addresses.
        let h = headers(&[("X-Forwarded-For", "bogus"), ("X-Real-IP", "5.6.7.8")]);
        assert_eq!(rule.resolve(peer, &h).client, ip("5.6.7.8"));
        assert_eq!(rule.resolve(peer, &HeaderMap::new()).client, peer);
        // Some proxies trusted: the right-most address that is not one.
        let trusted = ClientRule::Gin {
            forwarded: true,
            headers: vec![HeaderName::from_static("x-forwarded-for")],
            trusted: Some(parse_trusted(&["10.0.0.0/8".into()]).unwrap()),
            app_engine: false,
        };
        let h = headers(&[("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.1")]);
        assert_eq!(trusted.resolve(peer, &h).client, ip("1.2.3.4"));
        // Several lines of the header read as one, as gin joins them.
        let lines = headers(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-For", "1.2.3.4, 10.0.0.1"),
        ]);
        assert_eq!(trusted.resolve(peer, &lines).client, ip("1.2.3.4"));
        // A peer that is not trusted is the client, whatever it says.
        assert_eq!(trusted.resolve(ip("8.8.8.8"), &h).client, ip("8.8.8.8"));
        let off = ClientRule::Gin {
            forwarded: false,
            headers: vec![HeaderName::from_static("x-forwarded-for")],
            trusted: None,
            app_engine: false,
        };
        assert_eq!(off.resolve(peer, &h).client, peer);
        // app_engine: its header before all, from any peer; a text that is
        // not an address falls through.
        let app_engine = ClientRule::Gin {
            forwarded: false,
            headers: Vec::new(),
            trusted: Some(Vec::new()),
            app_engine: true,
        };
        let h = headers(&[("X-Appengine-Remote-Addr", "9.9.9.9")]);
        assert_eq!(app_engine.resolve(peer, &h).client, ip("9.9.9.9"));
        let h = headers(&[("X-Appengine-Remote-Addr", "somewhere")]);
        assert_eq!(app_engine.resolve(peer, &h).client, peer);
    }

    #[test]
    fn lura_1_takes_the_first_forwarded_entry_and_sepias_switch_the_peer() {
        let peer = ip("10.0.0.9");
        let h = headers(&[("X-Forwarded-For", " 1.2.3.4 , 10.0.0.1")]);
        assert_eq!(ClientRule::Gin2017.resolve(peer, &h).client, ip("1.2.3.4"));
        let h = headers(&[("X-Real-Ip", "5.6.7.8")]);
        assert_eq!(ClientRule::Gin2017.resolve(peer, &h).client, ip("5.6.7.8"));
        assert_eq!(ClientRule::Peer.resolve(peer, &h).client, peer);
        assert!(parse_trusted(&["10.0.0.1".into(), "::1".into()]).is_ok());
        assert!(parse_trusted(&["10.0.0.0/33".into()])
            .unwrap_err()
            .contains("trusted_proxies"));
    }
}
