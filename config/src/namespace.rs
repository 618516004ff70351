//! KrakenD's `extra_config` namespaces: the short aliases of version 3 and
//! the long Go import paths of versions 1 and 2 name the same thing.

/// Long (pre-v3) namespace and its v3 alias.
const ALIASES: &[(&str, &str)] = &[
    ("github.com/devopsfaith/krakend-jose/signer", "auth/signer"),
    (
        "github.com/devopsfaith/krakend-jose/validator",
        "auth/validator",
    ),
    ("github.com/devopsfaith/bloomfilter", "auth/revoker"),
    ("github.com/devopsfaith/krakend/proxy", "proxy"),
    ("github.com/devopsfaith/krakend/http", "backend/http"),
    (
        "github.com/devopsfaith/krakend/transport/http/server/handler",
        "plugin/http-server",
    ),
    (
        "github.com/devopsfaith/krakend/transport/http/client/executor",
        "plugin/http-client",
    ),
    (
        "github.com/devopsfaith/krakend/proxy/plugin",
        "plugin/req-resp-modifier",
    ),
    ("github_com/devopsfaith/krakend/router/gin", "router"),
    ("github_com/luraproject/lura/router/gin", "router"),
    ("github.com/devopsfaith/krakend-martian", "modifier/martian"),
    ("github.com/devopsfaith/krakend-cors", "security/cors"),
    ("github_com/devopsfaith/krakend-cors", "security/cors"),
    ("github.com/devopsfaith/krakend-httpsecure", "security/http"),
    (
        "github.com/devopsfaith/krakend-ratelimit/juju/router",
        "qos/ratelimit/router",
    ),
    (
        "github.com/devopsfaith/krakend-ratelimit/juju/proxy",
        "qos/ratelimit/proxy",
    ),
    (
        "github.com/devopsfaith/krakend-circuitbreaker/gobreaker",
        "qos/circuit-breaker",
    ),
    ("github.com/devopsfaith/krakend-httpcache", "qos/http-cache"),
    (
        "github.com/devopsfaith/krakend-lua/router",
        "modifier/lua-endpoint",
    ),
    (
        "github.com/devopsfaith/krakend-lua/proxy",
        "modifier/lua-proxy",
    ),
    (
        "github.com/devopsfaith/krakend-lua/proxy/backend",
        "modifier/lua-backend",
    ),
    (
        "github.com/devopsfaith/krakend-jsonschema",
        "validation/json-schema",
    ),
    ("github.com/devopsfaith/krakend-cel", "validation/cel"),
    (
        "github.com/devopsfaith/krakend-botdetector",
        "security/bot-detector",
    ),
    (
        "github_com/devopsfaith/krakend-gologging",
        "telemetry/logging",
    ),
    (
        "github_com/devopsfaith/krakend-metrics",
        "telemetry/metrics",
    ),
    (
        "github_com/devopsfaith/krakend-opencensus",
        "telemetry/opencensus",
    ),
];

/// The canonical (v3 alias) spelling of a namespace; a namespace without an
/// alias is its own canonical spelling.
pub fn canonical(namespace: &str) -> &str {
    ALIASES
        .iter()
        .find(|(long, _)| *long == namespace)
        .map(|(_, short)| *short)
        .unwrap_or(namespace)
}

/// Whether two spellings name the same namespace.
pub fn same_namespace(a: &str, b: &str) -> bool {
    canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_short_spellings_are_one_namespace() {
        assert_eq!(
            canonical("github.com/devopsfaith/krakend-jose/signer"),
            "auth/signer"
        );
        assert_eq!(canonical("auth/signer"), "auth/signer");
        assert!(same_namespace(
            "auth/signer",
            "github.com/devopsfaith/krakend-jose/signer"
        ));
        assert!(same_namespace(
            "github.com/devopsfaith/krakend-jose/signer",
            "auth/signer"
        ));
        assert!(!same_namespace("auth/signer", "auth/validator"));
        assert_eq!(canonical("example/mine"), "example/mine");
    }
}
