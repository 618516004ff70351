//! Revoked tokens, as KrakenD's bloomfilter rejecter sees them: a token is
//! refused when one of its `token_keys` claims (a string) was revoked,
//! kept as `claim-value` (`jti-abc`). An exact set with expiry rather than a
//! rotating bloom filter, so that no valid token is ever refused by a false
//! positive.
//!
//! With Redis, every gateway instance shares the set: a revocation goes into
//! a sorted set (member `claim-value`, score its expiry) and is published on
//! a channel; each instance keeps its own copy, loads the sorted set at
//! start and after every reconnection (messages missed while disconnected),
//! and applies what the channel brings. Requests only ever read the local
//! copy.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value};

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where revocations are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub url: String,
    /// Names the sorted set (`PREFIX:revoked`) and the channel
    /// (`PREFIX:revocations`).
    pub key_prefix: String,
}

impl RedisSettings {
    fn set_key(&self) -> String {
        format!("{}:revoked", self.key_prefix)
    }

    fn channel(&self) -> String {
        format!("{}:revocations", self.key_prefix)
    }
}

/// Why a revocation did not reach the other instances.
#[derive(Debug)]
pub struct NotShared(pub String);

/// The revoked `claim-value` entries and their expiry.
pub struct Revocations {
    token_keys: Vec<String>,
    entries: RwLock<HashMap<String, u64>>,
    redis: Option<Shared>,
}

struct Shared {
    settings: RedisSettings,
    client: redis::Client,
    /// The connection revocations are written with, opened on demand.
    writer: Mutex<Option<redis::Connection>>,
}

const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

impl Revocations {
    /// A set checking the claims `token_keys`, shared through Redis when
    /// `redis` is set (then a background thread follows the other
    /// instances; it ends when the set is dropped).
    pub fn new(token_keys: Vec<String>, redis: Option<RedisSettings>) -> Result<Arc<Self>, String> {
        let redis = match redis {
            None => None,
            Some(settings) => {
                let client = redis::Client::open(settings.url.as_str())
                    .map_err(|e| format!("the Redis URL {:?} is not usable: {e}", settings.url))?;
                Some(Shared {
                    settings,
                    client,
                    writer: Mutex::new(None),
                })
            }
        };
        let revocations = Arc::new(Self {
            token_keys,
            entries: RwLock::new(HashMap::new()),
            redis,
        });
        if revocations.redis.is_some() {
            revocations.load()?;
            spawn_follower(Arc::downgrade(&revocations))?;
        }
        Ok(revocations)
    }

    /// The claims a revocation may name.
    pub fn token_keys(&self) -> &[String] {
        &self.token_keys
    }

    /// Whether one of the token's listed claims is revoked.
    pub fn is_revoked(&self, claims: &Map<String, Value>) -> bool {
        let now = unix_now();
        let Ok(entries) = self.entries.read() else {
            // A poisoned lock must not let revoked tokens through.
            return true;
        };
        if entries.is_empty() {
            return false;
        }
        self.token_keys.iter().any(|key| {
            let Some(Value::String(value)) = claims.get(key) else {
                return false;
            };
            entries
                .get(&entry(key, value))
                .is_some_and(|expires| *expires > now)
        })
    }

    /// Whether `claim` = `value` is revoked.
    pub fn contains(&self, claim: &str, value: &str) -> bool {
        let now = unix_now();
        self.entries
            .read()
            .map(|e| e.get(&entry(claim, value)).is_some_and(|x| *x > now))
            .unwrap_or(true)
    }

    fn apply(&self, member: String, expires: u64) {
        if let Ok(mut entries) = self.entries.write() {
            let now = unix_now();
            entries.retain(|_, x| *x > now);
            let slot = entries.entry(member).or_insert(expires);
            *slot = (*slot).max(expires);
        }
    }

    /// Revokes `claim` = `value` until `expires` here, then at every
    /// instance through Redis; `Err` says why the others did not get it
    /// (this instance refuses the token anyway).
    pub fn revoke(&self, claim: &str, value: &str, expires: u64) -> Result<(), NotShared> {
        let member = entry(claim, value);
        self.apply(member.clone(), expires);
        let Some(shared) = &self.redis else {
            return Ok(());
        };
        let mut writer = shared
            .writer
            .lock()
            .map_err(|_| NotShared("the Redis connection lock is poisoned".into()))?;
        for attempt in 0..2 {
            if writer.is_none() {
                let connection = shared
                    .client
                    .get_connection_with_timeout(REDIS_TIMEOUT)
                    .and_then(|c| {
                        c.set_read_timeout(Some(REDIS_TIMEOUT))?;
                        c.set_write_timeout(Some(REDIS_TIMEOUT))?;
                        Ok(c)
                    })
                    .map_err(|e| NotShared(format!("cannot reach Redis: {e}")))?;
                *writer = Some(connection);
            }
            let Some(connection) = writer.as_mut() else {
                continue;
            };
            let result: redis::RedisResult<()> = redis::pipe()
                .atomic()
                .cmd("ZADD")
                .arg(shared.settings.set_key())
                .arg("GT")
                .arg(expires)
                .arg(&member)
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(shared.settings.set_key())
                .arg("-inf")
                .arg(unix_now())
                .ignore()
                .cmd("PUBLISH")
                .arg(shared.settings.channel())
                .arg(format!("{expires} {member}"))
                .ignore()
                .query(connection);
            match result {
                Ok(()) => return Ok(()),
                // A stale connection: open a new one and try once more.
                Err(e) if attempt == 0 && (e.is_io_error() || e.is_connection_dropped()) => {
                    *writer = None;
                }
                Err(e) => {
                    *writer = None;
                    return Err(NotShared(format!("Redis refused the revocation: {e}")));
                }
            }
        }
        Err(NotShared("cannot reach Redis".into()))
    }

    /// Reads every unexpired revocation from Redis.
    fn load(&self) -> Result<(), String> {
        let Some(shared) = &self.redis else {
            return Ok(());
        };
        let mut connection = shared
            .client
            .get_connection_with_timeout(REDIS_TIMEOUT)
            .map_err(|e| format!("cannot reach Redis at {}: {e}", shared.settings.url))?;
        let _ = connection.set_read_timeout(Some(REDIS_TIMEOUT));
        let now = unix_now();
        let found: Vec<(String, u64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(shared.settings.set_key())
            .arg(format!("({now}"))
            .arg("+inf")
            .arg("WITHSCORES")
            .query(&mut connection)
            .map_err(|e| format!("cannot read the revocations from Redis: {e}"))?;
        for (member, expires) in found {
            self.apply(member, expires);
        }
        Ok(())
    }
}

/// KrakenD's bloom filter entry: `claim-value`.
fn entry(claim: &str, value: &str) -> String {
    format!("{claim}-{value}")
}

/// Follows the channel; after any failure, reconnects, subscribes again
/// and reloads the whole set, so nothing published meanwhile is lost.
fn spawn_follower(revocations: Weak<Revocations>) -> Result<(), String> {
    std::thread::Builder::new()
        .name("revocations-redis".into())
        .spawn(move || {
            let mut backoff = Duration::from_millis(100);
            loop {
                let Some(current) = revocations.upgrade() else { return };
                let outcome = follow(&current, &revocations);
                drop(current);
                match outcome {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "lost the Redis revocation channel; revocations from other instances wait until it is back");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the Redis revocation thread: {e}"))
}

/// One subscription; `Ok` when the set is gone.
fn follow(current: &Revocations, weak: &Weak<Revocations>) -> Result<(), String> {
    let Some(shared) = &current.redis else {
        return Ok(());
    };
    let mut connection = shared
        .client
        .get_connection_with_timeout(REDIS_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let mut pubsub = connection.as_pubsub();
    pubsub
        .subscribe(shared.settings.channel())
        .map_err(|e| e.to_string())?;
    // Subscribed first, loaded second: a revocation published in between
    // arrives on the channel.
    current.load()?;
    // Wakes up every second to notice the set is gone.
    pubsub
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    loop {
        if weak.strong_count() == 0 {
            return Ok(());
        }
        match pubsub.get_message() {
            Ok(message) => {
                let payload: String = message.get_payload().unwrap_or_default();
                if let Some((expires, member)) = payload.split_once(' ') {
                    if let Ok(expires) = expires.parse::<u64>() {
                        current.apply(member.to_owned(), expires);
                    }
                }
            }
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listed_string_claims_are_checked_and_expire() {
        let revocations = Revocations::new(vec!["jti".into(), "sub".into()], None).unwrap();
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert!(!revocations.is_revoked(&claims(json!({"jti": "a"}))));
        revocations.revoke("jti", "a", unix_now() + 60).unwrap();
        revocations.revoke("sub", "old", unix_now() - 1).unwrap();
        assert!(revocations.is_revoked(&claims(json!({"jti": "a"}))));
        assert!(revocations.contains("jti", "a"));
        assert!(!revocations.is_revoked(&claims(json!({"jti": "b", "sub": "old"}))));
        // Only string claims count, as in KrakenD.
        revocations.revoke("sub", "7", unix_now() + 60).unwrap();
        assert!(!revocations.is_revoked(&claims(json!({"sub": 7}))));
        assert!(!revocations.is_revoked(&claims(json!({"other": "a"}))));
    }
}
