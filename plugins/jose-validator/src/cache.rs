//! Tokens whose signature already verified, so that a client sending the
//! same token again costs a look-up instead of a signature check and a
//! JSON parse (an RSA-2048 check is most of an RS256 endpoint's CPU).
//!
//! Only tokens that passed every check of their own go in, keyed by their
//! whole text, tagged with the key set they verified against: a changed key
//! set (a key removed after a leak) makes every older entry count as
//! absent. The time window (`exp`, `nbf`, `iat`) is checked again on every
//! use, as are revocation, roles and scopes, which the caller checks after.
//! The cache is bounded: a full shard forgets an entry for each new one.

use std::{
    collections::{hash_map::DefaultHasher, HashMap},
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
};

use crate::token::Verified;

const SHARDS: usize = 16;

/// Verified tokens, by their text.
pub struct VerifiedCache {
    shards: Vec<Mutex<HashMap<Box<str>, Entry>>>,
    per_shard: usize,
}

struct Entry {
    generation: u64,
    verified: Arc<Verified>,
}

impl VerifiedCache {
    /// A cache for about `capacity` tokens; `None` when it is 0 (off).
    pub fn new(capacity: usize) -> Option<Self> {
        if capacity == 0 {
            return None;
        }
        let per_shard = capacity.div_ceil(SHARDS);
        Some(Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_capacity(per_shard.min(1024))))
                .collect(),
            per_shard,
        })
    }

    fn shard(&self, token: &str) -> &Mutex<HashMap<Box<str>, Entry>> {
        let mut hasher = DefaultHasher::new();
        token.hash(&mut hasher);
        &self.shards[hasher.finish() as usize % SHARDS]
    }

    /// The verified form of `token`, when it verified against key set
    /// `generation`.
    pub fn get(&self, token: &str, generation: u64) -> Option<Arc<Verified>> {
        let shard = self.shard(token).lock().ok()?;
        let entry = shard.get(token)?;
        (entry.generation == generation).then(|| entry.verified.clone())
    }

    /// Remembers that `token` verified against key set `generation`.
    pub fn put(&self, token: &str, generation: u64, verified: Arc<Verified>) {
        let Ok(mut shard) = self.shard(token).lock() else {
            return;
        };
        if shard.len() >= self.per_shard && !shard.contains_key(token) {
            // Any entry: eviction order does not matter for correctness,
            // and a bounded size is what protects memory.
            if let Some(victim) = shard.keys().next().cloned() {
                shard.remove(&victim);
            }
        }
        shard.insert(
            token.into(),
            Entry {
                generation,
                verified,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn verified() -> Arc<Verified> {
        Arc::new(Verified {
            claims: Map::new(),
            payload: "{}".into(),
        })
    }

    #[test]
    fn entries_hold_for_their_key_set_only_and_the_size_is_bounded() {
        assert!(VerifiedCache::new(0).is_none());
        let cache = VerifiedCache::new(32).unwrap();
        cache.put("a.b.c", 1, verified());
        assert!(cache.get("a.b.c", 1).is_some());
        assert!(cache.get("a.b.c", 2).is_none(), "another key set");
        assert!(cache.get("a.b.d", 1).is_none());
        for i in 0..1000 {
            cache.put(&format!("t{i}"), 1, verified());
        }
        let held: usize = cache.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= 32, "{held} entries");
    }
}
