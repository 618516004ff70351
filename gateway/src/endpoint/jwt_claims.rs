//! `{JWT.claim}` in a backend's `url_pattern`: a claim of the request's
//! validated token, which the validator hands over in the request context
//! (`VALUE_JWT`). KrakenD takes top-level claims only and writes them as
//! krakend-jose's `Claims.Get` does; a claim the token lacks leaves the
//! placeholder in the URL, as lura's template leaves `{{.JWT.claim}}`.

use sepia_plugin_api::{is_krakend2, RequestContext, VALUE_JWT};
use serde_json::Value;

use super::sequence::percent_encode;

/// The `{JWT.claim}` placeholders of one endpoint's backends.
#[derive(Debug, Clone, Default)]
pub struct ClaimParams {
    /// The placeholders' names (`JWT.sub`), each once, in pattern order.
    names: Vec<String>,
    krakend2: bool,
}

impl ClaimParams {
    /// The claim placeholders of `endpoint`'s backends (the configuration
    /// was validated: they only appear where a validator runs).
    pub fn of(endpoint: &sepia_config::Endpoint, config_version: u64) -> Self {
        let mut names: Vec<String> = Vec::new();
        for backend in &endpoint.backends {
            for name in sepia_config::placeholders(&backend.url_pattern).unwrap_or_default() {
                let is_claim = sepia_config::jwt_claim_reference(name).is_some()
                    && !endpoint.params.iter().any(|p| p == name);
                if is_claim && !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
        Self {
            names,
            krakend2: is_krakend2(config_version),
        }
    }

    /// The placeholders' names, which follow the endpoint's parameters.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Appends each placeholder's value for this request to `params`.
    pub fn append_values(&self, context: Option<&RequestContext>, params: &mut Vec<String>) {
        if self.names.is_empty() {
            return;
        }
        let claims: Option<Value> = context
            .and_then(|c| c.value(VALUE_JWT))
            .and_then(|text| serde_json::from_str(text).ok());
        for name in &self.names {
            let claim = sepia_config::jwt_claim_reference(name).unwrap_or_default();
            let text = match claims.as_ref().and_then(|c| c.get(claim)) {
                Some(value) => sepia_json::claim_text(value, self.krakend2),
                // What lura's template leaves, as Go's client escapes it.
                None => format!("{{{{.{name}}}}}"),
            };
            params.push(percent_encode(&text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(patterns: &[&str]) -> sepia_config::Endpoint {
        let backends: Vec<Value> = patterns
            .iter()
            .map(|p| serde_json::json!({"host": ["http://b"], "url_pattern": p}))
            .collect();
        let config = serde_json::json!({"version": 3, "endpoints": [{
            "endpoint": "/e/{id}", "backend": backends,
            "extra_config": {"auth/validator": {"alg": "HS256"}}}]});
        let loaded = sepia_config::parse_str(&config.to_string(), false).unwrap();
        loaded.config.endpoints[0].clone()
    }

    #[test]
    fn claims_fill_their_placeholders_and_missing_ones_stay() {
        let endpoint = endpoint(&["/a/{JWT.sub}/{id}", "/b/{JWT.sub}/{JWT.n}/{JWT.gone}"]);
        let claims = ClaimParams::of(&endpoint, 3);
        assert_eq!(claims.names(), ["JWT.sub", "JWT.n", "JWT.gone"]);
        let mut context = RequestContext::default();
        context.set_value(VALUE_JWT, r#"{"sub":"a b","n":7}"#);
        let mut params = vec!["1".to_owned()];
        claims.append_values(Some(&context), &mut params);
        assert_eq!(params, ["1", "a%20b", "7", "%7B%7B.JWT.gone%7D%7D"]);
        let old = ClaimParams::of(&endpoint, 2);
        let mut params = Vec::new();
        old.append_values(Some(&context), &mut params);
        assert_eq!(params[1], "7.000000");
    }
}
