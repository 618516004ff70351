//! Publishing the public keys of the gateway's signers as one JWK set
//! (default `/.well-known/jwks.json`), so services can verify what the
//! gateway signs. KrakenD has no such thing. Configured at the top level:
//!
//! ```json
//! "extra_config": {"sepia/jwks": {"path": "/keys.json"}}
//! ```
//! or `{"disable": true}` to publish nothing.

use std::sync::Arc;

use http::{header, HeaderValue, Response};
use serde_json::Value;

use crate::{
    body::{json_response, ResponseBody},
    plugin_host::BoundModifier,
};

/// The top-level namespace of the setting.
pub const NAMESPACE: &str = "sepia/jwks";
/// Where the set is published unless configured otherwise.
pub const DEFAULT_PATH: &str = "/.well-known/jwks.json";

/// Where to publish, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSettings {
    /// The path; `None` publishes nothing.
    pub path: Option<String>,
    /// Whether the path was chosen by the user (a clash with an endpoint is
    /// then an error, not a warning).
    pub explicit: bool,
}

/// Reads `extra_config."sepia/jwks"`.
pub fn settings(extra_config: &sepia_config::ExtraConfig) -> Result<JwksSettings, String> {
    let Some(value) = extra_config.get(NAMESPACE) else {
        return Ok(JwksSettings {
            path: Some(DEFAULT_PATH.into()),
            explicit: false,
        });
    };
    let map = value.as_object().ok_or_else(|| {
        format!(
            "extra_config.\"{NAMESPACE}\" must be an object such as {{\"path\": \"/keys.json\"}}"
        )
    })?;
    let mut path = Some(DEFAULT_PATH.to_owned());
    let mut explicit = false;
    for (key, value) in map {
        match (key.as_str(), value) {
            ("path", Value::String(p)) if p.starts_with('/') => {
                path = Some(p.clone());
                explicit = true;
            }
            ("disable", Value::Bool(true)) => path = None,
            ("disable", Value::Bool(false)) => {}
            ("path", _) => {
                return Err(format!(
                    "extra_config.\"{NAMESPACE}\".path must be a path starting with '/'"
                ))
            }
            ("disable", _) => {
                return Err(format!(
                    "extra_config.\"{NAMESPACE}\".disable must be true or false"
                ))
            }
            (other, _) => {
                return Err(format!(
                    "extra_config.\"{NAMESPACE}\".{other}: unknown setting (use path or disable)"
                ))
            }
        }
    }
    Ok(JwksSettings { path, explicit })
}

/// The modifiers that publish keys, asked afresh on every request so that
/// a rotated key shows at once.
pub struct JwksPublisher {
    chains: Vec<Arc<[BoundModifier]>>,
}

impl JwksPublisher {
    /// Keeps the chains with at least one publishing modifier; `None` when
    /// there is nothing to publish.
    pub fn new(chains: impl IntoIterator<Item = Arc<[BoundModifier]>>) -> Option<Self> {
        let chains: Vec<_> = chains
            .into_iter()
            .filter(|chain| chain.iter().any(|m| m.modifier.public_keys().is_some()))
            .collect();
        (!chains.is_empty()).then_some(Self { chains })
    }

    /// `{"keys": [...]}` with every published key once.
    pub fn key_set(&self) -> Value {
        let mut keys: Vec<Value> = Vec::new();
        for bound in self.chains.iter().flat_map(|c| c.iter()) {
            let Some(text) = bound.modifier.public_keys().into_option() else {
                continue;
            };
            match serde_json::from_str::<Value>(text.as_str()) {
                Ok(Value::Array(published)) => {
                    for key in published {
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                }
                _ => {
                    tracing::warn!(plugin = %bound.plugin, "a plugin published public keys that are not a JSON array; skipped")
                }
            }
        }
        serde_json::json!({ "keys": keys })
    }

    /// The HTTP answer.
    pub fn respond(&self) -> Response<ResponseBody> {
        let mut response = json_response(sepia_json::to_vec(&self.key_set()));
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra(value: Value) -> sepia_config::ExtraConfig {
        let text =
            serde_json::json!({"version": 3, "extra_config": {NAMESPACE: value}, "endpoints": []})
                .to_string();
        sepia_config::parse_str(&text, false)
            .unwrap()
            .config
            .extra_config
    }

    #[test]
    fn settings_default_configure_and_refuse() {
        let none = settings(&sepia_config::ExtraConfig::default()).unwrap();
        assert_eq!(none.path.as_deref(), Some(DEFAULT_PATH));
        assert!(!none.explicit);
        let custom = settings(&extra(serde_json::json!({"path": "/keys"}))).unwrap();
        assert_eq!(custom.path.as_deref(), Some("/keys"));
        assert!(custom.explicit);
        assert_eq!(
            settings(&extra(serde_json::json!({"disable": true})))
                .unwrap()
                .path,
            None
        );
        assert!(settings(&extra(serde_json::json!({"path": "keys"}))).is_err());
        assert!(settings(&extra(serde_json::json!({"colour": 1})))
            .unwrap_err()
            .contains("colour"));
    }
}
