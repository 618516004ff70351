//! Values shared by all of the gateway's workers, for plugins that count
//! across requests (rate limits, circuit breakers) without threads or
//! statics of their own. Integers with an expiry, behind a few locks chosen
//! by key, so that workers counting different keys rarely meet.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::Mutex,
    time::{Duration, Instant},
};

/// How many independently locked parts the map has.
const SHARDS: usize = 16;
/// A part sweeps its expired entries when it has grown by this many since
/// the last sweep, so keys that are never asked again do not pile up.
const SWEEP_EVERY: usize = 1024;

struct Entry {
    value: i64,
    /// `None`: never expires.
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

#[derive(Default)]
struct Shard {
    entries: HashMap<String, Entry>,
    /// The size after the last sweep.
    swept_at: usize,
}

impl Shard {
    fn sweep_if_grown(&mut self, now: Instant) {
        if self.entries.len() >= self.swept_at + SWEEP_EVERY {
            self.entries.retain(|_, entry| entry.live(now));
            self.swept_at = self.entries.len();
        }
    }
}

/// The shared values of one gateway process.
pub struct SharedState {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl Default for SharedState {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

fn expiry(now: Instant, ttl_ms: u64) -> Option<Instant> {
    (ttl_ms > 0).then(|| now + Duration::from_millis(ttl_ms))
}

impl SharedState {
    fn with_shard<R>(&self, key: &str, work: impl FnOnce(&mut Shard) -> R) -> R {
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        // A poisoned part holds integers only, still consistent: go on.
        let mut shard = match self.shards[index].lock() {
            Ok(shard) => shard,
            Err(poisoned) => poisoned.into_inner(),
        };
        work(&mut shard)
    }

    /// Adds `delta` to `key` (absent or expired: from zero, expiring
    /// `ttl_ms` from now, 0 never); the sum.
    pub fn add(&self, key: &str, delta: i64, ttl_ms: u64) -> i64 {
        let now = Instant::now();
        self.with_shard(key, |shard| {
            if let Some(entry) = shard.entries.get_mut(key) {
                if entry.live(now) {
                    entry.value = entry.value.saturating_add(delta);
                    return entry.value;
                }
                *entry = Entry {
                    value: delta,
                    expires: expiry(now, ttl_ms),
                };
                return delta;
            }
            shard.entries.insert(
                key.to_owned(),
                Entry {
                    value: delta,
                    expires: expiry(now, ttl_ms),
                },
            );
            shard.sweep_if_grown(now);
            delta
        })
    }

    /// Sets `key` to `new`, expiring `ttl_ms` from now, when it holds
    /// `expected` (`None`: absent or expired); the value it held before.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<i64>,
        new: i64,
        ttl_ms: u64,
    ) -> Option<i64> {
        let now = Instant::now();
        self.with_shard(key, |shard| {
            let current = shard
                .entries
                .get(key)
                .filter(|entry| entry.live(now))
                .map(|entry| entry.value);
            if current == expected {
                let entry = Entry {
                    value: new,
                    expires: expiry(now, ttl_ms),
                };
                match shard.entries.get_mut(key) {
                    Some(slot) => *slot = entry,
                    None => {
                        shard.entries.insert(key.to_owned(), entry);
                        shard.sweep_if_grown(now);
                    }
                }
            }
            current
        })
    }

    /// How many entries are held, expired ones not yet swept included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.entries.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn adds_from_zero_and_restarts_after_expiry() {
        let state = SharedState::default();
        assert_eq!(state.add("a", 2, 0), 2);
        assert_eq!(state.add("a", 3, 0), 5);
        assert_eq!(state.add("b", -1, 0), -1);
        assert_eq!(state.add("short", 1, 1), 1);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(state.add("short", 1, 1), 1, "an expired value starts again");
    }

    #[test]
    fn compare_and_swap_returns_what_was_there() {
        let state = SharedState::default();
        assert_eq!(state.compare_and_swap("k", Some(1), 9, 0), None);
        assert_eq!(state.compare_and_swap("k", None, 4, 0), None);
        assert_eq!(state.compare_and_swap("k", None, 5, 0), Some(4));
        assert_eq!(state.compare_and_swap("k", Some(4), 6, 1), Some(4));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(state.compare_and_swap("k", None, 7, 0), None);
        assert_eq!(state.add("k", 1, 0), 8);
    }

    #[test]
    fn concurrent_adds_lose_nothing() {
        let state = Arc::new(SharedState::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let state = state.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        state.add("hits", 1, 0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(state.add("hits", 0, 0), 4000);
    }

    #[test]
    fn expired_keys_are_swept_as_the_map_grows() {
        let state = SharedState::default();
        for n in 0..(SHARDS * SWEEP_EVERY * 3) {
            state.add(&format!("k{n}"), 1, 1);
            if n == 10 {
                std::thread::sleep(Duration::from_millis(3));
            }
        }
        std::thread::sleep(Duration::from_millis(3));
        for n in 0..(SHARDS * SWEEP_EVERY * 2) {
            state.add(&format!("fresh{n}"), 1, 0);
        }
        assert!(
            state.len() < SHARDS * SWEEP_EVERY * 5,
            "expired entries were kept: {}",
            state.len()
        );
    }
}
