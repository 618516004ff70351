//! The per-client buckets of one limit: sharded so that clients rarely
//! wait on each other, and forgotten once unused for the limit's TTL (10
//! minutes, or longer when `every` is), as krakend-ratelimit's memory
//! backend forgets them.

use std::{
    collections::{hash_map::DefaultHasher, HashMap},
    hash::{Hash, Hasher},
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::bucket::TokenBucket;

/// Buckets by client key.
pub struct ClientBuckets {
    shards: Box<[Mutex<Shard>]>,
    /// A fresh bucket, full.
    template: Box<dyn Fn(Instant) -> TokenBucket + Send + Sync>,
    ttl: Duration,
    sweep_every: Duration,
}

struct Shard {
    buckets: HashMap<String, (TokenBucket, Instant)>,
    last_sweep: Instant,
}

impl ClientBuckets {
    /// Buckets made by `template` in `shards` shards (at least one),
    /// forgotten after `ttl` unused; each shard is swept at most every
    /// `sweep_every`.
    pub fn new(
        template: impl Fn(Instant) -> TokenBucket + Send + Sync + 'static,
        shards: usize,
        ttl: Duration,
        sweep_every: Duration,
    ) -> Self {
        let now = Instant::now();
        Self {
            shards: (0..shards.max(1))
                .map(|_| {
                    Mutex::new(Shard {
                        buckets: HashMap::new(),
                        last_sweep: now,
                    })
                })
                .collect(),
            template: Box::new(template),
            ttl,
            sweep_every,
        }
    }

    /// Takes a token from `key`'s bucket.
    pub fn allow(&self, key: &str, now: Instant) -> bool {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() as usize) % self.shards.len();
        let Some(shard) = self.shards.get(index) else {
            return false;
        };
        // A poisoned shard keeps limiting: its data is counters only.
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(shard.last_sweep) >= self.sweep_every {
            let ttl = self.ttl;
            shard
                .buckets
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < ttl);
            shard.last_sweep = now;
        }
        if let Some((bucket, seen)) = shard.buckets.get_mut(key) {
            *seen = now;
            return bucket.allow(now);
        }
        let mut bucket = (self.template)(now);
        let allowed = bucket.allow(now);
        shard.buckets.insert(key.to_owned(), (bucket, now));
        allowed
    }

    /// How many clients are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.buckets.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::Krakend2Bucket;

    #[test]
    fn each_client_has_its_bucket_and_idle_ones_are_forgotten() {
        let store = ClientBuckets::new(
            |now| TokenBucket::Krakend2(Krakend2Bucket::new(1.0, 2, now)),
            1,
            Duration::from_secs(60),
            Duration::from_secs(1),
        );
        let t0 = Instant::now();
        assert!(store.allow("a", t0));
        assert!(store.allow("a", t0));
        assert!(!store.allow("a", t0));
        assert!(store.allow("b", t0));
        assert_eq!(store.len(), 2);
        // Past the TTL, the next request sweeps the idle ones away, and
        // the client that comes back starts with a full bucket.
        let later = t0 + Duration::from_secs(120);
        assert!(store.allow("a", later));
        assert_eq!(store.len(), 1);
        assert!(store.allow("a", later));
        assert!(!store.allow("a", later));
    }
}
