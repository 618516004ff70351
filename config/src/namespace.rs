//! KrakenD's `extra_config` namespaces: the short aliases of version 3 and
//! the long Go import paths of versions 1 and 2 name the same thing.

use std::borrow::Cow;

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

/// Version-2 files write top-level namespaces with `github_com/` (a dot in
/// a key confused the config library of KrakenD 1.x) and endpoint-level ones
/// with `github.com/`: both name the same component.
const UNDERSCORED: &str = "github_com/";
const DOTTED: &str = "github.com/";

fn dotted(namespace: &str) -> Cow<'_, str> {
    match namespace.strip_prefix(UNDERSCORED) {
        Some(rest) => Cow::Owned(format!("{DOTTED}{rest}")),
        None => Cow::Borrowed(namespace),
    }
}

/// The canonical spelling of a namespace: its v3 alias; otherwise, for a Go
/// import path, the `github.com/` form; otherwise the namespace itself.
pub fn canonical(namespace: &str) -> Cow<'_, str> {
    // Compared without the prefix rather than rewritten: this runs for
    // every namespace look-up of every endpoint at start-up.
    let wanted = github_path(namespace);
    if let Some((_, short)) = ALIASES.iter().find(|(long, _)| github_path(long) == wanted) {
        return Cow::Borrowed(short);
    }
    dotted(namespace)
}

/// A namespace as its GitHub path when it is one (either spelling of the
/// prefix), so that the two spellings compare equal.
fn github_path(namespace: &str) -> (bool, &str) {
    match namespace
        .strip_prefix(UNDERSCORED)
        .or_else(|| namespace.strip_prefix(DOTTED))
    {
        Some(rest) => (true, rest),
        None => (false, namespace),
    }
}

/// Where a namespace of an `extra_config` is, for messages:
/// `endpoints[0].extra_config."auth/signer"`, or `extra_config."security/cors"`
/// at the top level (`parent` empty).
pub fn json_path(parent: &str, namespace: &str) -> String {
    if parent.is_empty() {
        format!("extra_config.\"{namespace}\"")
    } else {
        format!("{parent}.extra_config.\"{namespace}\"")
    }
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
        assert_eq!(
            canonical("github_com/devopsfaith/krakend-cors"),
            "security/cors"
        );
        assert_eq!(
            canonical("github.com/devopsfaith/krakend-gologging"),
            "telemetry/logging"
        );
        assert_eq!(
            canonical("github_com/devopsfaith/bloomfilter"),
            "auth/revoker"
        );
        assert!(same_namespace(
            "github_com/example/thing",
            "github.com/example/thing"
        ));
    }
}
