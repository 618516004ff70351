//! krakend-botdetector's rule, the same in both generations: an empty
//! `User-Agent` is a bot only with `empty_user_agent_is_bot`; an allowed one
//! never is; a denied one, or one a pattern matches, is.

use std::collections::HashSet;

use regex::Regex;
use sepia_plugin_api::{Hooks, Modifier, PluginError, RVec, Request, RequestFlow, Response};
use sepia_plugin_settings::{Known, SettingsReader};

/// The compiled settings.
#[derive(Debug)]
pub struct Detector {
    allow: HashSet<String>,
    deny: HashSet<String>,
    patterns: Vec<Regex>,
    empty_is_bot: bool,
}

const KNOWN: &[Known] = &[
    ("allow", None),
    ("deny", None),
    ("patterns", None),
    ("cache_size", None),
    ("empty_user_agent_is_bot", None),
];

impl Detector {
    /// Reads and compiles the settings; every problem at once. A pattern
    /// that does not compile stops start-up (KrakenD logs it and lets every
    /// bot through).
    pub fn parse(config_json: &str) -> Result<Self, String> {
        let value = SettingsReader::parse(config_json)?;
        let mut r = SettingsReader::new(&value, &[KNOWN], |_| None);
        let allow = r.strings("allow");
        let deny = r.strings("deny");
        let mut patterns = Vec::new();
        for (i, source) in r.strings("patterns").iter().enumerate() {
            match Regex::new(source) {
                Ok(pattern) => patterns.push(pattern),
                Err(e) => r.problem(format!(
                    "\"patterns\"[{i}] {source:?} is not a valid pattern: {e}"
                )),
            }
        }
        let empty_is_bot = r.boolean("empty_user_agent_is_bot");
        // `cache_size` sizes KrakenD's LRU of past decisions; matching is
        // cheap enough here to need none.
        r.unsigned("cache_size");
        r.finish()?;
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
    fn hooks(&self) -> Hooks {
        // Bots are refused on the request; answers are left alone.
        Hooks::REQUEST
    }

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
        assert!(err.contains("\"deny\" must be an array"), "{err}");
        assert!(err.contains("unknown setting \"color\""), "{err}");
        assert!(Detector::parse(r#"{"empty_user_agent_is_bot":true}"#)
            .unwrap()
            .is_bot(""));
    }
}
