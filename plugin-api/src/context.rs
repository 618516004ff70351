use abi_stable::{
    std_types::{RString, RVec, Tuple2},
    StableAbi,
};

/// The context value holding the verified claims of the request's token, set
/// by the validator and read by the gateway (`{JWT.claim}`).
pub const VALUE_JWT: &str = "JWT";

/// The context value the gateway sets for response hooks when the client
/// gets lura's `200` in place of the backend's success status: that status,
/// as a JSON number (`201`).
pub const VALUE_BACKEND_STATUS: &str = "backend_status";

/// The context value the gateway sets to `true` when the request came over
/// TLS (the gateway serves HTTPS): what Go's `r.TLS != nil` tells
/// KrakenD's components (since 1.3).
pub const VALUE_TLS: &str = "tls";

/// Whether a configuration file of this `version` is served as KrakenD 2.x
/// (version 3) rather than as KrakenD 1.x (versions 1 and 2): the rule every
/// generation-dependent behaviour follows, in the gateway and in plugins.
pub fn is_krakend2(config_version: u64) -> bool {
    config_version >= 3
}

/// What the gateway knows about the request a hook runs for, beyond the
/// request itself; one context travels with a request through every hook
/// (appended in 1.2).
///
/// The context starts at the service-level hooks (see
/// [`crate::Plugin::new_service_modifier`]), goes through the endpoint's
/// request hooks, is copied to each backend's hooks (backends run in
/// parallel: what a backend hook sets is seen by that backend's later hooks
/// only) and comes back to the endpoint's and the service's response hooks.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The IP address of the peer that opened the connection, as text
    /// (`127.0.0.1`, `::1`).
    pub peer_ip: RString,
    /// The client's IP address: the peer's, or the one a trusted forwarding
    /// header names when the configuration trusts one (KrakenD's
    /// `router.forwarded_by_client_ip`). Rate limits and logs key on this.
    pub client_ip: RString,
    /// An identifier of this request, unique within the gateway process
    /// and the same in every hook and in the gateway's own log lines.
    pub request_id: RString,
    /// The matched endpoint as configured (`/users/{id}`). Empty in
    /// service-level request hooks, which run before routing, and for
    /// answers no endpoint served (404, 405, the gateway's own routes).
    pub endpoint: RString,
    /// Values that hooks hand to later hooks and to the gateway, by name,
    /// each the text of one JSON value. Use [`RequestContext::value`] and
    /// [`RequestContext::set_value`]. Names the gateway reads: `JWT`, the
    /// verified claims object of the request's token (for `{JWT.claim}` in
    /// a backend's `url_pattern`). Names the gateway sets for response
    /// hooks: `backend_status`, the backend's success status (`201`) when
    /// the client gets lura's `200` instead; `tls`, `true` when the request
    /// came over TLS (since 1.3).
    pub values: RVec<Tuple2<RString, RString>>,
}

impl RequestContext {
    /// The JSON text of the value `name`, when a hook set one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|pair| pair.0.as_str() == name)
            .map(|pair| pair.1.as_str())
    }

    /// Sets the value `name` to the text of one JSON value (`"\"alice\""`,
    /// `"{\"sub\":\"alice\"}"`), replacing an earlier one. The gateway does
    /// not check the text: write valid JSON.
    pub fn set_value(&mut self, name: &str, json: impl Into<String>) {
        let json = RString::from(json.into());
        match self.values.iter_mut().find(|pair| pair.0.as_str() == name) {
            Some(pair) => pair.1 = json,
            None => self.values.push(Tuple2(RString::from(name), json)),
        }
    }

    /// Removes the value `name`.
    pub fn remove_value(&mut self, name: &str) {
        self.values.retain(|pair| pair.0.as_str() != name);
    }
}

/// Where one top-level member of a JSON object stands in a body: byte
/// offsets, end exclusive.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberSpan {
    /// Start of the key, at its opening quote.
    pub key_start: u32,
    /// End of the key, after its closing quote.
    pub key_end: u32,
    /// Start of the value.
    pub value_start: u32,
    /// End of the value.
    pub value_end: u32,
}

impl MemberSpan {
    /// The key as written, without its quotes (escaped as Go escapes it).
    pub fn key<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        let start = (self.key_start as usize + 1).min(body.len());
        let end = (self.key_end as usize).saturating_sub(1).max(start);
        body.get(start..end).unwrap_or_default()
    }

    /// The value's bytes.
    pub fn value<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        body.get(self.value_start as usize..self.value_end as usize)
            .unwrap_or_default()
    }
}

/// What the gateway knows of a response body it hands a response hook
/// (appended in 1.2), so that a hook need not read the body again.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyLayout {
    /// `true` when the body is a JSON object the gateway itself wrote in Go's
    /// canonical encoding (keys sorted by bytes at every level, no white
    /// space, Go's escapes, numbers as the backend wrote them), as KrakenD
    /// writes its JSON answers. Only then is `members` filled in.
    pub canonical_json: bool,
    /// The object's top-level members, in body order (sorted by key).
    /// Describes the body as it was when the hook was called: a hook that
    /// changes the body must not hand these offsets on.
    pub members: RVec<MemberSpan>,
}

impl BodyLayout {
    /// A layout that says nothing about the body (not JSON, or not written
    /// by the gateway).
    pub fn unknown() -> Self {
        Self::default()
    }
}

/// The gateway's service, for a service-level modifier (appended in 1.2).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The configuration's `name`.
    pub name: RString,
    /// The port the gateway listens on.
    pub port: u16,
    /// The configuration file's `version` (1, 2 or 3). Files of version 1
    /// and 2 are served as KrakenD 1.x serves them, version 3 as KrakenD
    /// 2.x: a plugin that mirrors a KrakenD component should follow the
    /// generation the file was written for.
    pub config_version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_set_replaced_and_removed() {
        let mut context = RequestContext::default();
        assert_eq!(context.value("JWT"), None);
        context.set_value("JWT", r#"{"sub":"a"}"#);
        context.set_value("JWT", r#"{"sub":"b"}"#);
        context.set_value("other", "1");
        assert_eq!(context.value("JWT"), Some(r#"{"sub":"b"}"#));
        assert_eq!(context.values.len(), 2);
        context.remove_value("JWT");
        assert_eq!(context.value("JWT"), None);
        assert_eq!(context.value("other"), Some("1"));
    }

    #[test]
    fn spans_cut_keys_without_quotes_and_survive_bad_offsets() {
        let body = br#"{"a":1,"bc":{"x":2}}"#;
        let span = MemberSpan {
            key_start: 7,
            key_end: 11,
            value_start: 12,
            value_end: 19,
        };
        assert_eq!(span.key(body), b"bc");
        assert_eq!(span.value(body), br#"{"x":2}"#);
        let wild = MemberSpan {
            key_start: 90,
            key_end: 3,
            value_start: 50,
            value_end: 99,
        };
        assert_eq!(wild.key(body), b"");
        assert_eq!(wild.value(body), b"");
    }
}
