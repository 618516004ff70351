//! The signer modifier of one endpoint: replaces each configured top-level
//! object of a successful response by its token, with a key that a background
//! thread keeps fresh.

use std::{
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use sepia_plugin_api::{
    host, BodyLayout, Hooks, Modifier, PluginError, RVec, RequestContext, Response,
};
use serde_json::Value;

use crate::{
    key_set::{load_key, load_key_at_start, SigningKey},
    settings::Settings,
    token::sign,
};

type KeySlot = RwLock<Arc<SigningKey>>;

/// Signs the configured keys of each response.
pub struct Signer {
    settings: Arc<Settings>,
    /// `keys_to_sign` as they stand in a canonical body: quoted, escaped as
    /// Go escapes them, so members are matched without decoding their keys.
    quoted_keys_to_sign: Vec<Vec<u8>>,
    key: Arc<KeySlot>,
    endpoint: String,
}

impl Signer {
    /// Loads the key (retrying as configured) and starts the refresh thread.
    pub fn new(settings: Settings, endpoint: String) -> Result<Self, String> {
        if settings.keys.skips_verification() {
            tracing::warn!(
                endpoint = %endpoint,
                "disable_jwk_security is set for an https:// key set: its server certificate is NOT verified"
            );
        }
        let key = load_key_at_start(&settings, host())?;
        let quoted_keys_to_sign = settings
            .keys_to_sign
            .iter()
            .map(|name| {
                let mut quoted = Vec::with_capacity(name.len() + 2);
                sepia_json::write_string(&mut quoted, name);
                quoted
            })
            .collect();
        let signer = Signer {
            quoted_keys_to_sign,
            settings: Arc::new(settings),
            key: Arc::new(RwLock::new(Arc::new(key))),
            endpoint,
        };
        if let Some(interval) = signer.settings.refresh_interval {
            spawn_refresh(
                Arc::downgrade(&signer.key),
                signer.settings.clone(),
                interval,
            )?;
        }
        tracing::info!(endpoint = %signer.endpoint, kid = %signer.settings.kid, alg = signer.settings.alg.name(), "signing key loaded");
        Ok(signer)
    }

    fn current_key(&self) -> Result<Arc<SigningKey>, PluginError> {
        self.key
            .read()
            .map(|key| key.clone())
            .map_err(|_| self.failure("the key store is poisoned"))
    }

    fn failure(&self, why: &str) -> PluginError {
        PluginError::internal(format!(
            "cannot sign the response of {}: {why}",
            self.endpoint
        ))
    }
}

/// What `sepia check` builds for a signer whose key set is remote: its
/// settings passed, its key was not fetched. It is never served; if it ever
/// were, it refuses rather than answer unsigned claims.
pub struct CheckedOnly;

impl Modifier for CheckedOnly {
    fn on_response(&self, _: &mut Response) -> Result<(), PluginError> {
        Err(PluginError::internal(
            "this signer was built by `sepia check` without its key and cannot sign",
        ))
    }
}

/// Re-reads the key set every `interval`; a failure keeps the last good key.
/// The thread is the plugin's own (never the host's runtime) and ends when
/// the modifier is gone.
fn spawn_refresh(
    slot: Weak<KeySlot>,
    settings: Arc<Settings>,
    interval: Duration,
) -> Result<(), String> {
    std::thread::Builder::new()
        .name(format!("jwk-refresh-{}", settings.kid))
        .spawn(move || loop {
            std::thread::sleep(interval);
            let Some(slot) = slot.upgrade() else { return };
            match load_key(&settings, host()) {
                Ok(key) => {
                    if let Ok(mut current) = slot.write() {
                        *current = Arc::new(key);
                        tracing::debug!(kid = %settings.kid, "key set refreshed");
                    }
                }
                Err(e) => tracing::warn!(
                    kid = %settings.kid,
                    error = %e.message,
                    "key refresh failed; signing with the last good key"
                ),
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the key refresh thread: {e}"))
}

impl Signer {
    /// The body with each configured claims object replaced by its token.
    /// `members` are the key (quotes included, as Go escapes it) and value
    /// ranges of the canonical object `canonical`, in its order.
    fn sign_members<'a>(
        &self,
        canonical: &[u8],
        members: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Vec<u8>, PluginError> {
        let key = self.current_key()?;
        let mut body = Vec::with_capacity(canonical.len() + 512);
        body.push(b'{');
        for (i, (quoted_key, value)) in members.enumerate() {
            if i > 0 {
                body.push(b',');
            }
            // The key as the canonical pass already escaped it.
            body.extend_from_slice(quoted_key);
            body.push(b':');
            let is_object = value.first() == Some(&b'{');
            if is_object && self.signs(quoted_key) {
                let token = sign(value, &key, self.settings.full).map_err(|e| self.failure(&e))?;
                if self.settings.full {
                    sepia_json::write_string(&mut body, &token);
                } else {
                    // A compact JWS is base64url and dots: nothing in it
                    // needs escaping, so it is not scanned for escapes.
                    body.push(b'"');
                    body.extend_from_slice(token.as_bytes());
                    body.push(b'"');
                }
            } else {
                body.extend_from_slice(value);
            }
        }
        body.push(b'}');
        Ok(body)
    }

    /// Whether the member with this key (quoted, Go-escaped) is to be signed.
    fn signs(&self, quoted_key: &[u8]) -> bool {
        self.quoted_keys_to_sign.iter().any(|k| k == quoted_key)
    }
}

impl Modifier for Signer {
    fn hooks(&self) -> Hooks {
        // Only the backend's claims are signed; requests pass as they are.
        Hooks::RESPONSE
    }

    fn on_response(&self, response: &mut Response) -> Result<(), PluginError> {
        self.on_response_with(
            response,
            &mut RequestContext::default(),
            &BodyLayout::unknown(),
        )
    }

    fn on_response_with(
        &self,
        response: &mut Response,
        context: &mut RequestContext,
        layout: &BodyLayout,
    ) -> Result<(), PluginError> {
        if !(200..300).contains(&response.status) {
            return Ok(());
        }
        // krakend-jose answers with the backend's status (a 201 stays 201)
        // where lura's renderers would write 200: the gateway says which.
        if let Some(status) = context
            .value(sepia_plugin_api::VALUE_BACKEND_STATUS)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (200..300).contains(s))
        {
            response.status = status;
        }
        // krakend-jose's signer answers with its own handler, which writes
        // the signed body alone: none of lura's completeness, cache or
        // version headers, in either generation.
        response.remove_header("x-krakend-completed");
        response.remove_header("cache-control");
        response.remove_header("x-krakend");
        if layout.canonical_json {
            // The gateway wrote the body in Go's encoding and says where its
            // members are: each claims object's bytes are already exactly
            // the payload KrakenD signs.
            let body = &response.body;
            let members = layout.members.iter().map(|m| {
                let key = body
                    .get(m.key_start as usize..m.key_end as usize)
                    .unwrap_or_default();
                (key, m.value(body))
            });
            let signed = self.sign_members(body, members)?;
            response.body = RVec::from(signed);
            return Ok(());
        }
        // One pass re-encodes the body as Go does (sorted keys at every
        // level), with no tree built.
        let mut canonical = Vec::with_capacity(response.body.len());
        let members = match sepia_json::write_canonical_object(&mut canonical, &response.body) {
            Ok(Ok(members)) => members,
            Ok(Err(kind)) => {
                return Err(self.failure(&format!(
                    "the response body is {}, not a JSON object",
                    kind.name()
                )))
            }
            Err(_) => {
                return Err(
                    self.failure("the response body is not JSON (use the json output encoding)")
                )
            }
        };
        let spans = members
            .iter()
            .map(|m| (&canonical[m.key.clone()], &canonical[m.value.clone()]));
        let signed = self.sign_members(&canonical, spans)?;
        response.body = RVec::from(signed);
        Ok(())
    }

    fn is_blocking(&self) -> bool {
        self.settings.alg.is_expensive()
    }

    fn public_keys(&self) -> Option<String> {
        let key = self.current_key().ok()?;
        let jwk = key.public_jwk.as_ref()?;
        Some(sepia_json::to_string(&Value::Array(vec![jwk.clone()])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sepia_plugin_api::MemberSpan;

    fn hs256_signer() -> Signer {
        let keys = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/jwk/symmetric.json"
        );
        let config = serde_json::json!({
            "alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token", "t\u{e9}<"],
            "jwk_local_path": keys, "disable_jwk_security": true, "jwk_refresh_interval": "0s"
        });
        let settings = Settings::parse(&config.to_string()).unwrap();
        Signer::new(settings, "/token".into()).unwrap()
    }

    fn layout_of(body: &[u8]) -> BodyLayout {
        let members = sepia_json::canonical_members(body).unwrap();
        BodyLayout {
            canonical_json: true,
            members: members
                .into_iter()
                .map(|(k, v)| MemberSpan {
                    key_start: k.start as u32,
                    key_end: k.end as u32,
                    value_start: v.start as u32,
                    value_end: v.end as u32,
                })
                .collect(),
        }
    }

    #[test]
    fn the_gateways_layout_and_a_fresh_read_sign_the_same_bytes() {
        let signer = hs256_signer();
        // As the gateway hands it over: written by the canonical pass.
        let input = r#"{"z":"s","t\u00e9<":{"x":[1]},"n":1,"access_token":{"sub":"a","exp":1000}}"#;
        let mut canonical = Vec::new();
        sepia_json::write_canonical(&mut canonical, input.as_bytes()).unwrap();
        let body = canonical.as_slice();
        let response = || Response::json(200, body.to_vec());
        let mut read_again = response();
        signer.on_response(&mut read_again).unwrap();
        let mut with_layout = response();
        signer
            .on_response_with(
                &mut with_layout,
                &mut RequestContext::default(),
                &layout_of(body),
            )
            .unwrap();
        assert_eq!(read_again.body, with_layout.body);
        let text = String::from_utf8(with_layout.body.to_vec()).unwrap();
        // Both configured objects became tokens; the rest is as it was.
        assert!(text.starts_with(r#"{"access_token":"eyJ"#), "{text}");
        assert!(text.contains(r#","n":1,"té\u003c":"eyJ"#), "{text}");
        assert!(text.ends_with(r#","z":"s"}"#), "{text}");
    }
}
