//! Which parts of the client's request reach the backends:
//! `input_headers` and `input_query_strings`, as KrakenD filters them.

use http::{header, HeaderMap, HeaderName, HeaderValue};

use crate::client_address::ClientAddr;

// Names a request uses, parsed once: a `&str` name is parsed and hashed
// afresh on every map operation.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::CONTENT_LENGTH,
    header::PROXY_AUTHORIZATION,
];

/// `input_headers`: every header (`*`) or a list of names.
#[derive(Debug, Clone)]
pub enum HeaderFilter {
    /// Forward every end-to-end header.
    All,
    /// Forward only these.
    Only(Vec<HeaderName>),
}

impl HeaderFilter {
    /// Builds the filter from the configured names; names that are not valid
    /// header names cannot match any header and are dropped.
    pub fn new(names: &[String]) -> Self {
        if names.iter().any(|n| n == "*") {
            return HeaderFilter::All;
        }
        HeaderFilter::Only(
            names
                .iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect(),
        )
    }

    /// Copies the allowed headers of `from` into `to`. Headers that
    /// describe the client's connection never pass, even when listed:
    /// the hop-by-hop ones, `Proxy-Connection`, and those the client's
    /// `Connection` names (RFC 9110 §7.6.1), which a backend would
    /// otherwise take as meant for it.
    pub fn copy(&self, from: &HeaderMap, to: &mut HeaderMap) {
        let named = connection_named(from);
        let passes = |name: &HeaderName| {
            !HOP_BY_HOP.contains(name)
                && name != KEEP_ALIVE
                && name != PROXY_CONNECTION
                && !named.contains(name)
        };
        match self {
            HeaderFilter::All => {
                for (name, value) in from {
                    if passes(name) {
                        to.append(name.clone(), value.clone());
                    }
                }
            }
            HeaderFilter::Only(names) => {
                for name in names.iter().filter(|n| passes(n)) {
                    for value in from.get_all(name) {
                        to.append(name.clone(), value.clone());
                    }
                }
            }
        }
    }

    /// Whether `name` is forwarded.
    pub fn allows(&self, name: &HeaderName) -> bool {
        match self {
            HeaderFilter::All => true,
            HeaderFilter::Only(names) => names.contains(name),
        }
    }

    /// A backend's own `input_headers` applied to what the endpoint
    /// forwards: the client headers it does not list are dropped; the ones
    /// the gateway sets itself (`X-Forwarded-*`, `User-Agent`) stay.
    pub fn narrow(&self, headers: &HeaderMap) -> HeaderMap {
        let mut kept = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            if self.allows(name) || GATEWAY_SET.contains(name) {
                kept.append(name.clone(), value.clone());
            }
        }
        kept
    }
}

/// The headers `Connection` names (none, and no allocation, without one).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut named = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(text) = value.to_str() else { continue };
        named.extend(
            text.split(',')
                .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok()),
        );
    }
    named
}

/// Headers the gateway writes on every backend request.
const GATEWAY_SET: [HeaderName; 3] = [X_FORWARDED_FOR, X_FORWARDED_HOST, header::USER_AGENT];

/// `input_query_strings`: every parameter (`*`) or a list of names.
#[derive(Debug, Clone)]
pub enum QueryFilter {
    /// Forward the whole query.
    All,
    /// Forward only these parameter names.
    Only(Vec<String>),
}

impl QueryFilter {
    /// Builds the filter from the configured names.
    pub fn new(names: &[String]) -> Self {
        if names.iter().any(|n| n == "*") {
            QueryFilter::All
        } else {
            QueryFilter::Only(names.to_vec())
        }
    }

    /// Whether nothing is ever forwarded.
    pub fn is_empty(&self) -> bool {
        matches!(self, QueryFilter::Only(names) if names.is_empty())
    }

    fn allows(&self, name: &str) -> bool {
        match self {
            QueryFilter::All => true,
            QueryFilter::Only(names) => names.iter().any(|n| n == name),
        }
    }

    /// What passes both filters: a backend's own `input_query_strings`
    /// narrows the endpoint's.
    pub fn intersect(&self, other: &QueryFilter) -> QueryFilter {
        match (self, other) {
            (QueryFilter::All, narrower) | (narrower, QueryFilter::All) => narrower.clone(),
            (QueryFilter::Only(names), other) => {
                QueryFilter::Only(names.iter().filter(|n| other.allows(n)).cloned().collect())
            }
        }
    }

    /// Appends the allowed parameters of `query` to `url`, with `?` or `&`
    /// as `url` needs.
    pub fn append(&self, query: &str, url: &mut String, url_has_query: bool) {
        let mut has_query = url_has_query;
        // Go's url.ParseQuery (since Go 1.17, which KrakenD 2 is built with)
        // drops a pair holding a `;`: `a=1;b=2` must not slip `b` through a
        // filter that lets `a` pass.
        for pair in query
            .split('&')
            .filter(|p| !p.is_empty() && !p.contains(';'))
        {
            let name = pair.split('=').next().unwrap_or(pair);
            if self.allows(name) {
                url.push(if has_query { '&' } else { '?' });
                url.push_str(pair);
                has_query = true;
            }
        }
    }
}

/// Sets `X-Forwarded-For` to the client address, as lura does (both
/// generations), or with `append` (`sepia.append_forwarded_for`) appends
/// the peer to what the client sent, as reverse proxies chain it; and sets
/// `X-Forwarded-Host`.
pub fn add_forwarded(
    client: ClientAddr,
    append: bool,
    host: Option<&HeaderValue>,
    incoming: &HeaderMap,
    to: &mut HeaderMap,
) {
    let earlier = incoming
        .get(X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|e| append && !e.is_empty());
    let forwarded_for = match earlier {
        Some(earlier) => format!("{earlier}, {}", client.peer),
        None if append => client.peer.to_string(),
        None => client.client.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        to.insert(X_FORWARDED_FOR, value);
    }
    if let Some(host) = host {
        to.insert(X_FORWARDED_HOST, host.clone());
    }
}

/// Removes connection-level headers from a backend response before it is
/// passed through.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        if name != header::CONTENT_LENGTH && name != header::HOST {
            headers.remove(name);
        }
    }
    headers.remove(KEEP_ALIVE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_filter_keeps_listed_names_in_order() {
        let f = QueryFilter::new(&["a".into(), "c".into()]);
        let mut url = "http://h/x".to_owned();
        f.append("a=1&b=2&c=3&a=4", &mut url, false);
        assert_eq!(url, "http://h/x?a=1&c=3&a=4");
        let mut url = "http://h/x?k=v".to_owned();
        QueryFilter::new(&["*".into()]).append("b=2", &mut url, true);
        assert_eq!(url, "http://h/x?k=v&b=2");
        assert!(QueryFilter::new(&[]).is_empty());
        let mut url = "http://h/x".to_owned();
        QueryFilter::new(&["a".into()]).append("a=1;b=2&a=3", &mut url, false);
        assert_eq!(url, "http://h/x?a=3");
    }

    #[test]
    fn headers_the_connection_names_never_pass() {
        let mut from = HeaderMap::new();
        from.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        from.insert("x-secret-hop", HeaderValue::from_static("1"));
        from.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        from.insert("x-kept", HeaderValue::from_static("2"));
        for filter in [
            HeaderFilter::All,
            HeaderFilter::new(&[
                "X-Secret-Hop".into(),
                "Proxy-Connection".into(),
                "X-Kept".into(),
            ]),
        ] {
            let mut to = HeaderMap::new();
            filter.copy(&from, &mut to);
            assert_eq!(to.len(), 1, "{to:?}");
            assert_eq!(to["x-kept"], "2");
        }
    }

    #[test]
    fn header_filter_copies_listed_or_all_end_to_end_headers() {
        let mut from = HeaderMap::new();
        from.insert("authorization", HeaderValue::from_static("x"));
        from.insert("content-type", HeaderValue::from_static("application/json"));
        from.insert("connection", HeaderValue::from_static("close"));
        let mut to = HeaderMap::new();
        HeaderFilter::new(&["Content-Type".into()]).copy(&from, &mut to);
        assert_eq!(to.len(), 1);
        let mut to = HeaderMap::new();
        HeaderFilter::new(&["*".into()]).copy(&from, &mut to);
        assert_eq!(to.len(), 2);
        assert!(to.get("connection").is_none());
    }

    #[test]
    fn backend_filters_narrow_the_endpoint_ones() {
        let endpoint = QueryFilter::new(&["a".into(), "b".into()]);
        let backend = QueryFilter::new(&["b".into(), "c".into()]);
        let mut url = String::new();
        endpoint
            .intersect(&backend)
            .append("a=1&b=2&c=3", &mut url, false);
        assert_eq!(url, "?b=2");
        let mut url = String::new();
        QueryFilter::All
            .intersect(&backend)
            .append("a=1&c=3", &mut url, false);
        assert_eq!(url, "?c=3");

        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("x"));
        headers.insert("x-tenant", HeaderValue::from_static("t"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert("user-agent", HeaderValue::from_static("Sepia"));
        let narrowed = HeaderFilter::new(&["X-Tenant".into()]).narrow(&headers);
        assert!(narrowed.get("authorization").is_none());
        assert_eq!(narrowed["x-tenant"], "t");
        assert_eq!(narrowed["x-forwarded-for"], "10.0.0.1");
        assert_eq!(narrowed["user-agent"], "Sepia");
    }

    #[test]
    fn forwarded_for_is_the_client_or_with_the_switch_the_chain() {
        let mut incoming = HeaderMap::new();
        incoming.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let client = ClientAddr {
            peer: "127.0.0.1".parse().unwrap(),
            client: "10.0.0.1".parse().unwrap(),
        };
        let host = HeaderValue::from_static("api.example");
        let mut to = HeaderMap::new();
        add_forwarded(client, false, Some(&host), &incoming, &mut to);
        assert_eq!(to["x-forwarded-for"], "10.0.0.1");
        assert_eq!(to["x-forwarded-host"], "api.example");
        let mut to = HeaderMap::new();
        add_forwarded(client, true, Some(&host), &incoming, &mut to);
        assert_eq!(to["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        let mut to = HeaderMap::new();
        add_forwarded(client, true, None, &HeaderMap::new(), &mut to);
        assert_eq!(to["x-forwarded-for"], "127.0.0.1");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const NAMES: &[&str] = &[
        "authorization",
        "content-type",
        "x-a",
        "x-b",
        "connection",
        "keep-alive",
        "te",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
    ];

    proptest! {
        #[test]
        fn connection_headers_never_pass_and_nothing_is_invented(
            headers in prop::collection::vec((prop::sample::select(NAMES), "[a-z0-9 ,-]{0,12}"), 0..10),
            connection_names in prop::collection::vec(prop::sample::select(NAMES), 0..3),
            listed in prop::collection::vec(prop::sample::select(NAMES), 0..5),
            all in any::<bool>(),
        ) {
            let mut from = HeaderMap::new();
            for (name, value) in &headers {
                if let Ok(value) = HeaderValue::from_str(value) {
                    from.append(HeaderName::from_static(name), value);
                }
            }
            if let Ok(value) = HeaderValue::from_str(&connection_names.join(", ")) {
                from.append(header::CONNECTION, value);
            }
            let filter = if all {
                HeaderFilter::All
            } else {
                HeaderFilter::new(&listed.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            };
            let mut to = HeaderMap::new();
            filter.copy(&from, &mut to);
            for (name, value) in &to {
                prop_assert!(!HOP_BY_HOP.contains(name) && name != KEEP_ALIVE && name != PROXY_CONNECTION);
                prop_assert!(!connection_names.contains(&name.as_str()));
                prop_assert!(from.get_all(name).iter().any(|v| v == value));
                prop_assert!(all || listed.contains(&name.as_str()));
            }
        }

        #[test]
        fn queries_pass_only_listed_names_and_never_a_semicolon(
            query in "[a-c=;&%0-9]{0,24}",
            names in prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..3),
        ) {
            let filter = QueryFilter::new(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
            let mut url = "http://h/x".to_owned();
            filter.append(&query, &mut url, false);
            if let Some((_, forwarded)) = url.split_once('?') {
                for pair in forwarded.split('&') {
                    prop_assert!(!pair.contains(';'));
                    let name = pair.split('=').next().unwrap_or(pair);
                    prop_assert!(names.contains(&name));
                }
            }
        }
    }
}
