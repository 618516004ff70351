//! The signer modifier of one endpoint: replaces each configured top-level
//! object of a successful response by its token, with a key that a background
//! thread keeps fresh.

use std::{
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

use sepia_plugin_api::{host, Modifier, PluginError, RVec, Response};
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
    key: Arc<KeySlot>,
    endpoint: String,
}

impl Signer {
    /// Loads the key (retrying as configured) and starts the refresh thread.
    pub fn new(settings: Settings, endpoint: String) -> Result<Self, String> {
        if settings.skips_verification() {
            tracing::warn!(
                endpoint = %endpoint,
                "disable_jwk_security is set for an https:// key set: its server certificate is NOT verified"
            );
        }
        let key = load_key_at_start(&settings, host())?;
        let signer = Signer {
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

impl Modifier for Signer {
    fn on_response(&self, response: &mut Response) -> Result<(), PluginError> {
        if !(200..300).contains(&response.status) {
            return Ok(());
        }
        // One pass re-encodes the body as Go does (sorted keys at every
        // level): each claims object's bytes are then exactly the payload
        // KrakenD signs, with no tree built.
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
        let key = self.current_key()?;
        let mut body = Vec::with_capacity(canonical.len() + 512);
        body.push(b'{');
        for (i, member) in members.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            // The key as the canonical pass already escaped it.
            body.extend_from_slice(&canonical[member.key.clone()]);
            body.push(b':');
            let value = &canonical[member.value.clone()];
            let is_object = value.first() == Some(&b'{');
            if is_object && self.settings.keys_to_sign.iter().any(|k| *k == member.name) {
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
        response.body = RVec::from(body);
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
