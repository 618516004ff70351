//! krakend-botdetector's rule, the same in both generations: an empty
//! `User-Agent` is a bot only with `empty_user_agent_is_bot`; an allowed one
//! never is; a denied one, or one a pattern matches, is.

use std::collections::HashSet;

use regex::Regex;
use sepia_plugin_api::{Modifier, PluginError, RVec, Request, RequestFlow, Response};
use serde_json::Value;

/// The compiled settings.
#[derive(Debug)]
pub struct Detector {
    allow: HashSet<String>,
    deny: HashSet<String>,
    patterns: Vec<Regex>,
    empty_is_bot: bool,
}

const KNOWN: &[&str] = &[
    "allow",
    "deny",
    "patterns",
    "cache_size",
    "empty_user_agent_is_bot",
];

impl Detector {
    /// Reads and compiles the settings; every problem at once. A pattern
    /// that does not compile stops start-up (KrakenD logs it and lets every
    /// bot through).
    pub fn parse(config_json: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(config_json)
            .map_err(|e| format!("the configuration is not JSON: {e}"))?;
        let map = value
            .as_object()
            .ok_or("the configuration must be a JSON object")?;
        let mut problems: Vec<String> = map
            .keys()
            .filter(|k| !KNOWN.contains(&k.as_str()))
            .map(|k| format!("unknown setting \"{k}\""))
            .collect();
        let mut list = |key: &str| -> Vec<String> {
            match map.get(key) {
                None => Vec::new(),
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Some(_) => {
                    problems.push(format!("\"{key}\" must be an array of strings"));
                    Vec::new()
                }
            }
        };
        let allow = list("allow");
        let deny = list("deny");
        let sources = list("patterns");
        let mut patterns = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            match Regex::new(source) {
                Ok(pattern) => patterns.push(pattern),
                Err(e) => problems.push(format!(
                    "\"patterns\"[{i}] {source:?} is not a valid pattern: {e}"
                )),
            }
        }
        let empty_is_bot = match map.get("empty_user_agent_is_bot") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                problems.push("\"empty_user_agent_is_bot\" must be true or false".into());
                false
            }
        };
        // `cache_size` sizes KrakenD's LRU of past decisions; matching is
        // cheap enough here to need none.
        if map.get("cache_size").is_some_and(|v| v.as_u64().is_none()) {
            problems.push("\"cache_size\" must be a whole number".into());
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Self {
            allow: allow.into_iter().collect(),
            deny: deny.into_iter().collect(),
            patterns,
            empty_is_bot,
        })
    }

    /// Whether this `User-Agent` is a bot's.
    pub fn is_bot(&self, user_agent: &str) -> bool {
        if user_agent.is_empty() {
            return self.empty_is_bot;
        }
        if self.allow.contains(user_agent) {
            return false;
        }
        self.deny.contains(user_agent) || self.patterns.iter().any(|p| p.is_match(user_agent))
    }
}

impl Modifier for Detector {
    fn on_request(&self, request: &mut Request) -> Result<RequestFlow, PluginError> {
        // Go's `Header.Get`: the first value.
        let user_agent = request
            .header("user-agent")
            .and_then(|h| h.value_str())
            .unwrap_or("");
        if !self.is_bot(user_agent) {
            return Ok(RequestFlow::Continue);
        }
        tracing::info!(user_agent = %user_agent, "bot rejected");
        Ok(RequestFlow::Respond(Response {
            status: 403,
            headers: RVec::new(),
            body: RVec::new(),
            complete: true,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_krakend_ce_suites_rules() {
        let d = Detector::parse(
            r#"{"deny":["a","b"],"allow":["c","Pingdom.com_bot_version_1.1"],
                "patterns":["(Pingdom.com_bot_version_).*","(facebookexternalhit)/.*"]}"#,
        )
        .unwrap();
        assert!(d.is_bot("a"));
        assert!(!d.is_bot("c"));
        assert!(d.is_bot("Pingdom.com_bot_version_1.2"));
        assert!(!d.is_bot("Pingdom.com_bot_version_1.1"));
        assert!(d.is_bot("facebookexternalhit/1.1"));
        assert!(!d.is_bot("Mozilla/5.0"));
        assert!(!d.is_bot(""));
    }

    #[test]
    fn bad_settings_are_named() {
        let err =
            Detector::parse(r#"{"patterns":["(unclosed"],"deny":"a","color":1}"#).unwrap_err();
        assert!(err.contains("\"patterns\"[0]"), "{err}");
        assert!(err.contains("\"deny\" must be"), "{err}");
        assert!(err.contains("unknown setting \"color\""), "{err}");
        assert!(Detector::parse(r#"{"empty_user_agent_is_bot":true}"#)
            .unwrap()
            .is_bot(""));
    }
}
