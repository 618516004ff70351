//! KrakenD runs an endpoint's components in one fixed order, whatever order
//! the file lists them in (krakend-ce's handler and backend factories): a
//! bot is turned away before its token is checked, and a request with a bad
//! token spends no rate-limit token. The gateway sorts the modifiers of one
//! `extra_config` into that order; namespaces KrakenD does not place keep
//! their file order, after those it does.

use sepia_plugin_api::ModifierScope;

/// Where KrakenD puts a component, outermost first.
const ENDPOINT_STACK: &[&str] = &[
    "security/bot-detector",
    "auth/validator",
    "modifier/lua-endpoint",
    "qos/ratelimit/router",
    // The proxy stack inside the router's (krakend-ce's proxy_factory.go,
    // innermost last): Lua, CEL, then the body's JSON Schema.
    "modifier/lua-proxy",
    "validation/cel",
    "validation/json-schema",
];

const BACKEND_STACK: &[&str] = &[
    "qos/circuit-breaker",
    "qos/ratelimit/proxy",
    "modifier/lua-backend",
    "validation/cel",
];

/// The position of the namespace `canonical` in KrakenD's stack for
/// `scope`; namespaces it does not place come last.
pub fn rank(scope: ModifierScope, canonical: &str) -> usize {
    let stack = match scope {
        ModifierScope::Endpoint => ENDPOINT_STACK,
        ModifierScope::Backend => BACKEND_STACK,
    };
    stack
        .iter()
        .position(|n| *n == canonical)
        .unwrap_or(stack.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn krakends_order_and_the_rest_after() {
        let mut names = vec![
            "qos/ratelimit/router",
            "example/mine",
            "auth/validator",
            "security/bot-detector",
        ];
        names.sort_by_key(|n| rank(ModifierScope::Endpoint, n));
        assert_eq!(
            names,
            vec![
                "security/bot-detector",
                "auth/validator",
                "qos/ratelimit/router",
                "example/mine"
            ]
        );
        assert!(
            rank(ModifierScope::Endpoint, "qos/ratelimit/router")
                < rank(ModifierScope::Endpoint, "validation/json-schema")
        );
        assert!(
            rank(ModifierScope::Backend, "qos/circuit-breaker")
                < rank(ModifierScope::Backend, "qos/ratelimit/proxy")
        );
    }
}
