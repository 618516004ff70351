//! The keys tokens are checked with: the JWK set's keys that fit the
//! configured algorithm, by the identity tokens name them with, kept fresh
//! by a background thread and fetched again at once when a token names a
//! key the set lacks (a rotation at the identity provider), at most once per
//! cooldown so that made-up key ids cannot make the gateway hammer it.

use std::{
    collections::{hash_map::DefaultHasher, HashMap},
    hash::{Hash, Hasher},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex, RwLock, Weak,
    },
    time::{Duration, Instant},
};

use josekit::jwk::Jwk;
use sepia_jose::{set_keys, KeyError, Verifier};
use sepia_plugin_api::host;
use serde_json::{Map, Value};

use crate::settings::{KeyIdentity, Settings};

/// One key set, ready to verify with.
pub struct KeySet {
    by_id: HashMap<String, Arc<Verifier>>,
}

impl KeySet {
    /// Builds the set from a JWK set body: every key that fits the
    /// algorithm, by its identity; keys for other algorithms or uses are
    /// skipped. A set with no usable key is an error.
    pub fn from_body(body: &[u8], settings: &Settings) -> Result<Self, KeyError> {
        let source = settings.keys.source.name();
        let alg = settings.alg;
        let mut by_id = HashMap::new();
        let mut skipped = Vec::new();
        for (i, map) in set_keys(body, &settings.keys.source)?
            .into_iter()
            .enumerate()
        {
            let id = identity(&map, settings.key_identity);
            let label = map
                .get("kid")
                .and_then(Value::as_str)
                .map_or_else(|| format!("#{i}"), |kid| format!("\"{kid}\""));
            let verifier = Jwk::from_map(map)
                .map_err(|e| format!("not a valid JWK: {e}"))
                .and_then(|jwk| {
                    alg.check_verification_key(&jwk)?;
                    alg.verifier(&jwk)
                });
            match verifier {
                Ok(verifier) => {
                    by_id.insert(id, Arc::new(verifier));
                }
                Err(why) => skipped.push(format!("{label}: {why}")),
            }
        }
        if by_id.is_empty() {
            return Err(KeyError::fatal(format!(
                "the key set from {source} has no key that can verify {} tokens ({})",
                alg.name(),
                if skipped.is_empty() {
                    "it is empty".to_owned()
                } else {
                    skipped.join("; ")
                }
            )));
        }
        for why in &skipped {
            tracing::debug!(source = %source, key = %why, "key skipped");
        }
        Ok(Self { by_id })
    }

    fn get(&self, id: &str) -> Option<Arc<Verifier>> {
        self.by_id.get(id).cloned()
    }
}

fn digest_of(body: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}

/// A key's identity under the configured strategy, as krakend-jose
/// computes it (`kid`, the `x5t` thumbprint, or both joined).
fn identity(map: &Map<String, Value>, strategy: KeyIdentity) -> String {
    let member = |name: &str| {
        map.get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_end_matches('=')
            .to_owned()
    };
    match strategy {
        KeyIdentity::Kid => member("kid"),
        KeyIdentity::X5t => member("x5t"),
        KeyIdentity::X5tS256 => member("x5t#S256"),
        KeyIdentity::KidX5t => member("kid") + &member("x5t"),
    }
}

#[derive(Default)]
struct OnDemand {
    /// A fetch for an unknown key is under way.
    running: bool,
    /// When the last one started.
    last: Option<Instant>,
}

/// The current key set and how to renew it.
pub struct KeyStore {
    settings: Arc<Settings>,
    current: RwLock<Arc<KeySet>>,
    /// Changes whenever the set's content does: what a token verified
    /// against an older set is no longer trusted by (see `cache`).
    generation: AtomicU64,
    /// A digest of the set's bytes, to tell a changed set from a refetch.
    digest: Mutex<u64>,
    on_demand: Mutex<OnDemand>,
    finished: Condvar,
}

/// How long a request waits for a fetch another request started.
const WAIT_FOR_FETCH: Duration = Duration::from_secs(6);

impl KeyStore {
    /// Loads the set (retrying as configured) and starts the refresh thread.
    pub fn start(settings: Arc<Settings>) -> Result<Arc<Self>, String> {
        let (set, digest) = settings.keys.load_at_start(host(), |body| {
            KeySet::from_body(body, &settings).map(|set| (set, digest_of(body)))
        })?;
        let store = Arc::new(Self {
            settings: settings.clone(),
            current: RwLock::new(Arc::new(set)),
            generation: AtomicU64::new(0),
            digest: Mutex::new(digest),
            on_demand: Mutex::new(OnDemand::default()),
            finished: Condvar::new(),
        });
        if let Some(interval) = settings.refresh_interval {
            spawn_refresh(Arc::downgrade(&store), interval)?;
        }
        Ok(store)
    }

    fn set(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, set: KeySet) {
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
    }

    fn reload(&self) -> Result<(), KeyError> {
        let body = self.settings.keys.read_set(host())?;
        let set = KeySet::from_body(&body, &self.settings)?;
        let digest = digest_of(&body);
        let changed = match self.digest.lock() {
            Ok(mut last) => std::mem::replace(&mut *last, digest) != digest,
            Err(_) => true,
        };
        if changed {
            self.replace(set);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Which version of the set is current.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The verifier of key `id`. A miss fetches the set again, unless one
    /// such fetch started within the cooldown; a request that finds a fetch
    /// under way waits for it.
    pub fn verifier(&self, id: &str) -> Option<Arc<Verifier>> {
        if let Some(found) = self.set().get(id) {
            return Some(found);
        }
        let Ok(mut state) = self.on_demand.lock() else {
            return None;
        };
        if state.running {
            let (_state, _) = self
                .finished
                .wait_timeout_while(state, WAIT_FOR_FETCH, |s| s.running)
                .ok()?;
            return self.set().get(id);
        }
        let cooling = state
            .last
            .is_some_and(|last| last.elapsed() < self.settings.unknown_key_cooldown);
        if cooling {
            return None;
        }
        state.running = true;
        state.last = Some(Instant::now());
        drop(state);
        tracing::info!(source = %self.settings.keys.source.name(), "a token names an unknown key: fetching the key set again");
        if let Err(e) = self.reload() {
            tracing::warn!(error = %e.message, "the key set could not be fetched again; keeping the last good one");
        }
        if let Ok(mut state) = self.on_demand.lock() {
            state.running = false;
        }
        self.finished.notify_all();
        self.set().get(id)
    }
}

/// Fetches the set every `interval`; a failure keeps the last good set.
/// The thread is the plugin's own and ends when the store is gone.
fn spawn_refresh(store: Weak<KeyStore>, interval: Duration) -> Result<(), String> {
    std::thread::Builder::new()
        .name("jwk-validator-refresh".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            let Some(store) = store.upgrade() else { return };
            match store.reload() {
                Ok(()) => tracing::debug!("validator key set refreshed"),
                Err(e) => tracing::warn!(error = %e.message, "validator key refresh failed; keeping the last good set"),
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the key refresh thread: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(alg: &str, strategy: &str) -> Settings {
        let config = json!({"alg": alg, "jwk_local_path": "/nowhere.json", "disable_jwk_security": true,
                            "key_identify_strategy": strategy});
        Settings::parse(&config.to_string(), 3).unwrap()
    }

    fn symmetric() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/jwk/symmetric.json"
        ))
        .unwrap()
    }

    #[test]
    fn only_keys_that_fit_the_algorithm_are_kept() {
        // sim1 is an A128KW key: it cannot verify HS256 and is skipped.
        let set = KeySet::from_body(&symmetric(), &settings("HS256", "kid")).unwrap();
        assert!(set.get("sim2").is_some());
        assert!(set.get("sim1").is_none());
        let error = KeySet::from_body(&symmetric(), &settings("RS256", "kid"))
            .err()
            .unwrap();
        assert!(
            error.message.contains("no key that can verify RS256"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("key type is oct"),
            "{}",
            error.message
        );
    }

    #[test]
    fn identities_follow_the_strategy() {
        let map = json!({"kid": "k1", "x5t": "dGh1bWI="})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(identity(&map, KeyIdentity::Kid), "k1");
        assert_eq!(identity(&map, KeyIdentity::X5t), "dGh1bWI");
        assert_eq!(identity(&map, KeyIdentity::KidX5t), "k1dGh1bWI");
        assert_eq!(identity(&map, KeyIdentity::X5tS256), "");
    }
}
