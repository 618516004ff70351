//! The context a request carries through the plugin hooks (who the client
//! is, its id, the matched endpoint, the values hooks hand on), made only for
//! requests that meet a hook.

use std::{
    hash::BuildHasher,
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
};

use abi_stable::std_types::RString;
use sepia_plugin_api::{RequestContext, VALUE_TLS};

use crate::client_address::ClientAddr;

/// Marks a request that came over TLS (a request extension the listener
/// sets), so that its context says so to the hooks.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// A context for `request` from `client` (its peer, and the client address
/// the router's rule made of it: see [`crate::client_address`]).
pub fn new<B>(client: ClientAddr, request: &http::Request<B>) -> RequestContext {
    let mut context = RequestContext {
        client_ip: RString::from(client.client.to_string()),
        peer_ip: RString::from(client.peer.to_string()),
        request_id: RString::from(next_request_id()),
        endpoint: RString::new(),
        values: Default::default(),
    };
    if request.extensions().get::<OverTls>().is_some() {
        context.set_value(VALUE_TLS, "true");
    }
    context
}

/// A counter behind a random prefix drawn once a process: unique within the
/// process, and unlikely to repeat across restarts and instances.
pub(crate) fn next_request_id() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix =
        *PREFIX.get_or_init(|| std::hash::RandomState::new().hash_one(std::process::id()) as u32);
    format!("{prefix:08x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn contexts_name_the_client_and_get_distinct_ids() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let plain = http::Request::new(());
        let first = new(ClientAddr::of_peer(peer), &plain);
        let second = new(ClientAddr::of_peer(peer), &plain);
        assert_eq!(first.value(VALUE_TLS), None);
        let mut secure = http::Request::new(());
        secure.extensions_mut().insert(OverTls);
        assert_eq!(
            new(ClientAddr::of_peer(peer), &secure).value(VALUE_TLS),
            Some("true")
        );
        assert_eq!(first.peer_ip.as_str(), "127.0.0.1");
        assert_eq!(first.client_ip, first.peer_ip);
        assert_ne!(first.request_id, second.request_id);
        assert_eq!(first.request_id.as_str().split('-').count(), 2);
    }
}
