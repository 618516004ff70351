//! The endpoints the gateway answers itself, beside the configured ones:
//! health (`router.health_path`, `router.disable_health`), KrakenD's
//! `debug_endpoint` (`/__debug/...`) and `echo_endpoint` (`/__echo/...`).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::request::Parts;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use sepia_config::Config;
use serde_json::{json, Value};

use crate::{client_address::ClientRule, router::Redirects};

/// Where health answers unless `router.health_path` moves it.
pub const HEALTH_PATH: &str = "/__health";

/// Router settings (`extra_config.router`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinRoutes {
    /// Where health answers; `None` when disabled.
    pub health_path: Option<String>,
    /// `/__debug/` is on.
    pub debug: bool,
    /// `/__echo/` is on.
    pub echo: bool,
    /// `return_error_msg`: a backend failure passed on by
    /// `return_error_code` shows the backend's body.
    pub return_error_msg: bool,
    /// A known path asked with another method answers 405 (KrakenD's
    /// default); `disable_handle_method_not_allowed` makes it 404.
    pub method_not_allowed: bool,
    /// gin's redirects of near misses (`disable_redirect_trailing_slash`,
    /// `disable_redirect_fixed_path`).
    pub redirects: Redirects,
    /// A version-3 file: the built-in answers are lura 2's.
    pub krakend2: bool,
    /// `hide_version_header` (lura 2 only).
    pub hide_version: bool,
    /// `auto_options` (lura 2 only): an `OPTIONS` to an endpoint's path
    /// answers 200 with the methods it serves.
    pub auto_options: bool,
    /// The access log, unless `disable_access_log`.
    pub access_log: Option<crate::logging::access::AccessLog>,
    /// Who a request comes from: gin's rule of the file's generation
    /// (`forwarded_by_client_ip`, `remote_ip_headers`, `trusted_proxies`
    /// in lura 2), or the peer with `sepia.append_forwarded_for`.
    pub client_rule: ClientRule,
    /// lura 2's `paramChecker`: path parameters encoded twice are
    /// refused, unless `disable_path_decoding`.
    pub path_decoding_check: bool,
    /// `remove_extra_slash` (lura 2): gin cleans the path (`//`, `.`,
    /// `..`) before it routes it, so a near miss of that kind is served
    /// instead of redirected.
    pub remove_extra_slash: bool,
}

/// Router settings Sepia reads; the others are reported as not supported.
const ROUTER_KEYS: &[&str] = &[
    "health_path",
    "disable_health",
    "return_error_msg",
    "disable_handle_method_not_allowed",
    "disable_redirect_trailing_slash",
    "disable_redirect_fixed_path",
    "hide_version_header",
    "use_h2c",
    "disable_access_log",
    "logger_skip_paths",
    "auto_options",
    "forwarded_by_client_ip",
    "remote_ip_headers",
    "trusted_proxies",
    "disable_path_decoding",
    "remove_extra_slash",
    "app_engine",
    "max_multipart_memory",
];

/// Router settings only KrakenD Enterprise reads.
const ENTERPRISE_KEYS: &[&str] = &["error_body", "disable_gzip"];

/// lura 2's settings of the client address.
const CLIENT_KEYS: &[&str] = &[
    "forwarded_by_client_ip",
    "remote_ip_headers",
    "trusted_proxies",
    "app_engine",
];

impl BuiltinRoutes {
    /// From the configuration; unknown router settings are returned as
    /// warnings.
    pub fn from_config(config: &Config) -> Result<(Self, Vec<String>), String> {
        let mut routes = BuiltinRoutes {
            health_path: Some(HEALTH_PATH.to_owned()),
            debug: config.debug_endpoint,
            echo: config.echo_endpoint,
            return_error_msg: false,
            method_not_allowed: true,
            redirects: Redirects::default(),
            krakend2: config.krakend2(),
            hide_version: false,
            access_log: Some(Default::default()),
            auto_options: false,
            client_rule: if config.sepia.append_forwarded_for {
                ClientRule::Peer
            } else if config.krakend2() {
                ClientRule::default()
            } else {
                ClientRule::Gin2017
            },
            path_decoding_check: config.krakend2(),
            remove_extra_slash: false,
        };
        let mut warnings = Vec::new();
        let Some(router) = config.extra_config.get("router") else {
            return Ok((routes, warnings));
        };
        if !routes.krakend2 {
            // KrakenD CE 1.4 builds gin with fixed settings and lura 1.4's
            // router reads no `router` namespace: every key is ignored.
            let keys: Vec<String> = match router.as_object() {
                Some(map) => map.keys().map(|key| format!("router.{key}")).collect(),
                None => vec!["router".to_owned()],
            };
            warnings.extend(keys.into_iter().map(|key| {
                format!("extra_config.{key}: KrakenD 1.x, which serves version-1 and 2 files, reads no router settings: it is ignored (\"version\": 3 reads it)")
            }));
            return Ok((routes, warnings));
        }
        let map = router
            .as_object()
            .ok_or("extra_config.router must be an object")?;
        if let Some(path) = map.get("health_path") {
            match path.as_str() {
                Some(p) if p.starts_with('/') => routes.health_path = Some(p.to_owned()),
                _ => {
                    return Err(
                        "extra_config.router.health_path must be a path starting with '/'".into(),
                    )
                }
            }
        }
        if flag(map, "disable_health")?.unwrap_or(false) {
            routes.health_path = None;
        }
        routes.return_error_msg = flag(map, "return_error_msg")?.unwrap_or(false);
        routes.method_not_allowed =
            !flag(map, "disable_handle_method_not_allowed")?.unwrap_or(false);
        routes.redirects = Redirects {
            trailing_slash: !flag(map, "disable_redirect_trailing_slash")?.unwrap_or(false),
            fixed_path: !flag(map, "disable_redirect_fixed_path")?.unwrap_or(false),
        };
        routes.hide_version = flag(map, "hide_version_header")?.unwrap_or(false);
        let skip_paths = strings(map, "logger_skip_paths")?;
        routes.auto_options = flag(map, "auto_options")?.unwrap_or(false);
        if flag(map, "disable_path_decoding")?.unwrap_or(false) {
            routes.path_decoding_check = false;
        }
        routes.remove_extra_slash = flag(map, "remove_extra_slash")?.unwrap_or(false);
        // gin limits the memory of a multipart form it parses; lura parses
        // none (bodies go to the backends as they are): checked, no effect.
        if map.get("max_multipart_memory").is_some_and(|v| !v.is_i64()) {
            return Err(
                "extra_config.router.max_multipart_memory must be a whole number of bytes".into(),
            );
        }
        if let ClientRule::Gin {
            forwarded,
            headers,
            trusted,
            app_engine,
        } = &mut routes.client_rule
        {
            *app_engine = flag(map, "app_engine")?.unwrap_or(false);
            if let Some(on) = flag(map, "forwarded_by_client_ip")? {
                *forwarded = on;
            }
            let names = strings(map, "remote_ip_headers")?;
            if !names.is_empty() {
                *headers = names
                    .iter()
                    .map(|n| {
                        http::HeaderName::from_bytes(n.trim().as_bytes()).map_err(|_| {
                            format!("extra_config.router.remote_ip_headers: \"{n}\" is not a header name")
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            let proxies = strings(map, "trusted_proxies")?;
            if !proxies.is_empty() {
                *trusted = Some(crate::client_address::parse_trusted(&proxies)?);
            }
        } else {
            for key in CLIENT_KEYS.iter().filter(|k| map.contains_key(**k)) {
                warnings.push(format!("extra_config.router.{key}: sepia.append_forwarded_for is on: the client address is the peer's, and this is ignored"));
            }
        }
        routes.access_log = (!flag(map, "disable_access_log")?.unwrap_or(false))
            .then_some(crate::logging::access::AccessLog { skip_paths });
        // Sepia always serves HTTP/2 cleartext beside HTTP/1.1: `use_h2c`
        // is read only to be checked.
        flag(map, "use_h2c")?;
        for key in map.keys().filter(|k| !ROUTER_KEYS.contains(&k.as_str())) {
            warnings.push(if ENTERPRISE_KEYS.contains(&key.as_str()) {
                format!("extra_config.router.{key}: a KrakenD Enterprise setting: KrakenD CE ignores it, and so does Sepia")
            } else {
                format!("extra_config.router.{key}: neither KrakenD CE nor Sepia has this router setting: it is ignored")
            });
        }
        Ok((routes, warnings))
    }
}

/// A `router` list of strings; empty when absent.
fn strings(map: &serde_json::Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("extra_config.router.{key} must be a list of strings")),
        Some(_) => Err(format!(
            "extra_config.router.{key} must be a list of strings"
        )),
    }
}

/// A `router` flag: absent, or true or false.
fn flag(map: &serde_json::Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(_) => Err(format!("extra_config.router.{key} must be true or false")),
    }
}

/// `/__debug/...`: logs the request, answers `{"message":"pong"}`.
pub fn debug(parts: &Parts) -> Value {
    tracing::debug!(method = %parts.method, uri = %parts.uri, headers = ?parts.headers, "debug endpoint");
    json!({"message": "pong"})
}

/// `/__echo/...`: the request as KrakenD's echo endpoint describes it.
pub async fn echo(parts: Parts, body: Incoming) -> Value {
    let body: Bytes = Limited::new(body, 1024 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(sepia_plugin_api::canonical_header_name(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    json!({
        "req_uri": parts.uri.to_string(),
        "req_uri_details": {
            "user": "",
            "host": parts.uri.host().unwrap_or(""),
            "path": parts.uri.path(),
            "query": parts.uri.query().unwrap_or(""),
            "fragment": "",
        },
        "req_method": parts.method.as_str(),
        "req_querystring": query,
        "req_body": String::from_utf8_lossy(&body),
        "req_headers": headers,
    })
}

/// Whether `path` is under `prefix` (`/__debug` or `/__debug/...`).
pub fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical_and_prefixes_match_whole_segments() {
        assert_eq!(
            sepia_plugin_api::canonical_header_name("x-forwarded-for"),
            "X-Forwarded-For"
        );
        assert!(under("/__echo", "/__echo"));
        assert!(under("/__echo/a/b", "/__echo"));
        assert!(!under("/__echoes", "/__echo"));
    }

    /// A version-3 configuration with these router settings.
    fn config(router: Value) -> Config {
        let text =
            json!({"version": 3, "extra_config": {"router": router}, "endpoints": []}).to_string();
        sepia_config::parse_str(&text, false).unwrap().config
    }

    #[test]
    fn router_settings_move_or_disable_health() {
        let (routes, warnings) = BuiltinRoutes::from_config(&config(
            json!({"health_path": "/ping", "return_error_msg": true, "auto_options": true, "error_body": {}}),
        ))
        .unwrap();
        assert_eq!(routes.health_path.as_deref(), Some("/ping"));
        assert!(routes.return_error_msg);
        assert!(routes.auto_options);
        assert!(
            warnings[0].contains("router.error_body: a KrakenD Enterprise setting"),
            "{warnings:?}"
        );
        let (routes, _) =
            BuiltinRoutes::from_config(&config(json!({"disable_health": true}))).unwrap();
        assert_eq!(routes.health_path, None);
        assert!(routes.method_not_allowed);
        let (routes, warnings) = BuiltinRoutes::from_config(&config(json!({
            "disable_handle_method_not_allowed": true, "hide_version_header": true, "use_h2c": true
        })))
        .unwrap();
        assert!(!routes.method_not_allowed);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(BuiltinRoutes::from_config(&config(json!({"use_h2c": "yes"}))).is_err());
        let (routes, _) =
            BuiltinRoutes::from_config(&config(json!({"logger_skip_paths": ["/__health"]})))
                .unwrap();
        assert_eq!(
            routes.access_log.unwrap().skip_paths,
            vec!["/__health".to_owned()]
        );
        let (routes, _) =
            BuiltinRoutes::from_config(&config(json!({"disable_access_log": true}))).unwrap();
        assert!(routes.access_log.is_none());
        assert!(BuiltinRoutes::from_config(&config(json!({"logger_skip_paths": "/x"}))).is_err());
        assert!(BuiltinRoutes::from_config(&config(json!({"health_path": 1}))).is_err());
    }

    #[test]
    fn lura_2s_other_gin_settings_are_read() {
        let (routes, warnings) = BuiltinRoutes::from_config(&config(json!({
            "remove_extra_slash": true, "app_engine": true, "max_multipart_memory": 1024
        })))
        .unwrap();
        assert!(routes.remove_extra_slash);
        assert!(matches!(
            routes.client_rule,
            ClientRule::Gin {
                app_engine: true,
                ..
            }
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        let refused = BuiltinRoutes::from_config(&config(json!({"max_multipart_memory": "1MB"})))
            .unwrap_err();
        assert!(refused.contains("max_multipart_memory"), "{refused}");
        assert!(BuiltinRoutes::from_config(&config(json!({"remove_extra_slash": 1}))).is_err());
        let (_, warnings) = BuiltinRoutes::from_config(&config(json!({"colour": "red"}))).unwrap();
        assert!(
            warnings[0].contains("neither KrakenD CE nor Sepia has this router setting"),
            "{warnings:?}"
        );
    }

    #[test]
    fn version_2_files_have_krakend_1s_fixed_router() {
        let text = json!({"version": 2, "extra_config": {"router": {
            "health_path": "/ping", "return_error_msg": true, "disable_redirect_fixed_path": "yes"
        }}, "endpoints": []})
        .to_string();
        let config = sepia_config::parse_str(&text, false).unwrap().config;
        let (routes, warnings) = BuiltinRoutes::from_config(&config).unwrap();
        assert_eq!(routes.health_path.as_deref(), Some(HEALTH_PATH));
        assert!(!routes.return_error_msg);
        assert!(routes.redirects.fixed_path && routes.method_not_allowed);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings[0].contains("reads no router settings: it is ignored"),
            "{warnings:?}"
        );
    }
}
