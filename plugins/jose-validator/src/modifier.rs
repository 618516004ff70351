//! The validator of one endpoint: refuses requests without a valid token
//! (401) or without the required roles or scopes (403), both with an empty
//! body as KrakenD answers, and hands the token's claims on: to the
//! backends as headers (`propagate_claims`) and to the gateway and later
//! hooks as the request context's `JWT` value (`{JWT.sub}` in a
//! `url_pattern`).

use std::sync::Arc;

use sepia_plugin_api::{
    Hooks, Modifier, PluginError, RVec, Request, RequestContext, RequestFlow, Response, VALUE_JWT,
};
use serde_json::{Map, Value};

use crate::{
    access::{has_roles, has_scopes, is_nested_path, nested},
    cache::VerifiedCache,
    extract,
    key_store::KeyStore,
    revoker,
    settings::Settings,
    token::{check_claims, now, verify, Refusal, Verified},
};

/// Checks the token of each request to one endpoint.
pub struct Validator {
    settings: Arc<Settings>,
    keys: Arc<KeyStore>,
    cache: Option<VerifiedCache>,
    endpoint: String,
}

impl Validator {
    /// Loads the keys (retrying as configured) and starts their refresh.
    pub fn new(settings: Settings, endpoint: String) -> Result<Self, String> {
        if settings.keys.skips_verification() {
            tracing::warn!(
                endpoint = %endpoint,
                "disable_jwk_security is set for an https:// key set: its server certificate is NOT verified"
            );
        }
        let settings = Arc::new(settings);
        let keys = KeyStore::start(settings.clone())?;
        tracing::info!(endpoint = %endpoint, alg = settings.alg.name(), "token validator ready");
        Ok(Self {
            cache: VerifiedCache::new(settings.token_cache_size),
            settings,
            keys,
            endpoint,
        })
    }

    fn check(&self, request: &Request) -> Result<Arc<Verified>, Refusal> {
        let token = extract::token(request, &self.settings).ok_or(Refusal::Missing)?;
        // Read before verifying: a set replaced meanwhile voids the entry.
        let generation = self.keys.generation();
        let cached = self.cache.as_ref().and_then(|c| c.get(token, generation));
        let verified = match cached {
            Some(verified) => {
                check_claims(&verified.claims, &self.settings, now())?;
                verified
            }
            None => {
                let verified = Arc::new(verify(token, &self.settings, &self.keys)?);
                if let Some(cache) = &self.cache {
                    cache.put(token, generation, verified.clone());
                }
                verified
            }
        };
        if revoker::current().is_some_and(|r| r.is_revoked(&verified.claims)) {
            return Err(Refusal::Revoked);
        }
        if !has_roles(&verified.claims, &self.settings) {
            return Err(Refusal::MissingRoles);
        }
        if !has_scopes(&verified.claims, &self.settings) {
            return Err(Refusal::MissingScopes);
        }
        Ok(verified)
    }

    /// `propagate_claims`, as each generation writes the headers.
    fn propagate(&self, request: &mut Request, claims: &Map<String, Value>) {
        for propagation in &self.settings.propagate {
            let claim = propagation.claim.as_str();
            let header = propagation.header.as_str();
            let (value, nested_claim) = if is_nested_path(claim) {
                let found = nested(claims, claim).and_then(|(parent, last)| parent.get(last));
                (found, true)
            } else {
                (claims.get(claim), false)
            };
            if !self.settings.krakend2 {
                // krakend-jose 1.4 skips a claim the token lacks (and a
                // nested one that is not a string), which would let the
                // client's own header stand for it: Sepia removes it.
                let text = match value {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) if !nested_claim => Some(sepia_json::claim_text(other, false)),
                    _ => None,
                };
                match text {
                    Some(text) => request.set_header(header, &text),
                    None => request.remove_header(header),
                }
                continue;
            }
            if self.settings.propagate_arrays {
                request.remove_header(header);
                let values = value.map_or_else(|| vec![String::new()], sepia_json::claim_list);
                for text in values {
                    request
                        .headers
                        .push(sepia_plugin_api::Header::new(header, text.into_bytes()));
                }
            } else {
                let text = value
                    .map(|v| sepia_json::claim_text(v, true))
                    .unwrap_or_default();
                request.set_header(header, &text);
            }
        }
    }
}

/// KrakenD's refusal: the status alone, no body, no content type.
fn refusal(status: u16) -> RequestFlow {
    RequestFlow::Respond(Response {
        status,
        headers: RVec::new(),
        body: RVec::new(),
        complete: true,
    })
}

impl Modifier for Validator {
    fn hooks(&self) -> Hooks {
        // Tokens are checked on the request; answers are left alone.
        Hooks::REQUEST
    }

    fn on_request(&self, request: &mut Request) -> Result<RequestFlow, PluginError> {
        self.on_request_with(request, &mut RequestContext::default())
    }

    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        match self.check(request) {
            Ok(verified) => {
                self.propagate(request, &verified.claims);
                context.set_value(VALUE_JWT, verified.payload.as_str());
                Ok(RequestFlow::Continue)
            }
            Err(why) => {
                if self.settings.operation_debug {
                    tracing::error!(endpoint = %self.endpoint, reason = %why.describe(), "token refused");
                } else {
                    tracing::debug!(endpoint = %self.endpoint, reason = %why.describe(), "token refused");
                }
                Ok(refusal(why.status()))
            }
        }
    }
}

/// What `sepia check` builds for a validator whose key set is remote: its
/// settings passed, its keys were not fetched. It is never served; if it
/// ever were, it refuses every request rather than let one through.
pub struct CheckedOnly;

impl Modifier for CheckedOnly {
    fn on_request(&self, _: &mut Request) -> Result<RequestFlow, PluginError> {
        Ok(refusal(401))
    }
}
