//! `telemetry/metrics` (`github_com/devopsfaith/krakend-metrics` in
//! version-1/2 files), as krakend-metrics reads it in both generations.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use sepia_config::Config;
use serde_json::{Map, Value};

/// The namespace.
pub const NAMESPACE: &str = "telemetry/metrics";

/// What Sepia does of the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSettings {
    /// `collection_time`: how often the router's connection counts are
    /// aggregated and the histograms cleared (a minute by default).
    pub collection_time: Duration,
    /// `listen_address` (`:8090` by default): where `/__stats` is served.
    pub listen: SocketAddr,
    /// Not `proxy_disabled`: the endpoints' `pipe` layer.
    pub proxy: bool,
    /// Not `router_disabled`: each endpoint's answers.
    pub router: bool,
    /// Not `backend_disabled`: each backend call.
    pub backend: bool,
    /// Not `endpoint_disabled`: `/__stats` is served.
    pub endpoint: bool,
}

fn path(key: &str) -> String {
    format!("extra_config.\"{NAMESPACE}\".{key}")
}

fn flag(map: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{}: must be true or false", path(key))),
    }
}

/// A Go listen address: `:8090`, `127.0.0.1:8090`, `[::1]:8090`.
fn listen_address(text: &str) -> Option<SocketAddr> {
    if let Some(port) = text.strip_prefix(':') {
        return Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port.parse().ok()?,
        ));
    }
    text.parse().ok()
}

impl StatsSettings {
    /// The settings, when the file has the namespace.
    pub fn from_config(config: &Config) -> Result<Option<StatsSettings>, String> {
        let Some(value) = config.extra_config.get(NAMESPACE) else {
            return Ok(None);
        };
        let Value::Object(map) = value else {
            return Err(format!("extra_config.\"{NAMESPACE}\": must be an object"));
        };
        let collection_time = match map.get("collection_time") {
            None | Some(Value::Null) => Duration::from_secs(60),
            Some(Value::String(text)) => sepia_plugin_api::parse_duration(text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!(
                        "{}: \"{text}\" is not a duration (write it as Go does: \"1m\", \"30s\")",
                        path("collection_time")
                    )
                })?,
            Some(_) => {
                return Err(format!(
                    "{}: must be a duration such as \"1m\"",
                    path("collection_time")
                ))
            }
        };
        let listen = match map.get("listen_address") {
            None | Some(Value::Null) => listen_address(":8090"),
            Some(Value::String(text)) => listen_address(text),
            Some(_) => None,
        }
        .ok_or_else(|| {
            format!(
                "{}: must be an address to listen on, such as \":8090\" or \"127.0.0.1:8090\"",
                path("listen_address")
            )
        })?;
        Ok(Some(StatsSettings {
            collection_time,
            listen,
            proxy: !flag(map, "proxy_disabled")?,
            router: !flag(map, "router_disabled")?,
            backend: !flag(map, "backend_disabled")?,
            endpoint: !flag(map, "endpoint_disabled")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(
        namespace: &str,
        value: Value,
        version: u64,
    ) -> Result<Option<StatsSettings>, String> {
        let text = json!({"version": version, "extra_config": {namespace: value}, "endpoints": []})
            .to_string();
        StatsSettings::from_config(&sepia_config::parse_str(&text, false).unwrap().config)
    }

    #[test]
    fn both_generations_spellings_are_read_with_krakend_metrics_defaults() {
        let s = settings(NAMESPACE, json!({}), 3).unwrap().unwrap();
        assert_eq!(s.collection_time, Duration::from_secs(60));
        assert_eq!(s.listen, "0.0.0.0:8090".parse().unwrap());
        assert!(s.proxy && s.router && s.backend && s.endpoint);
        let s = settings(
            "github_com/devopsfaith/krakend-metrics",
            json!({"collection_time": "30s", "listen_address": "127.0.0.1:9001", "backend_disabled": true}),
            2,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.collection_time, Duration::from_secs(30));
        assert_eq!(s.listen, "127.0.0.1:9001".parse().unwrap());
        assert!(!s.backend && s.proxy);
    }

    #[test]
    fn bad_settings_are_refused_with_their_place() {
        let error = settings(NAMESPACE, json!({"collection_time": "soon"}), 3).unwrap_err();
        assert!(error.contains("collection_time"), "{error}");
        let error = settings(NAMESPACE, json!({"listen_address": "8090"}), 3).unwrap_err();
        assert!(error.contains("listen_address"), "{error}");
        let error = settings(NAMESPACE, json!({"proxy_disabled": "yes"}), 3).unwrap_err();
        assert!(error.contains("proxy_disabled"), "{error}");
    }
}
