//! Cluster mode: the buckets of a limit kept in Redis, so that every gateway
//! instance counts against one limit. One script call a request takes the
//! client's token and then the endpoint's, atomically, with Redis's clock,
//! so instances whose clocks differ still agree. When Redis cannot be asked
//! the limit falls back as configured (`on_failure`), and Redis is left
//! alone for a second before it is tried again, so a dead server costs one
//! timeout a second, not one a request.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::settings::{Limit, RedisSettings};

/// A continuous token bucket per key: tokens are fractional, refilled by
/// the time since the last take.
const SCRIPT: &str = r#"
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
local function take(key, rate, cap)
  local b = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(b[1])
  local at = tonumber(b[2])
  if tokens == nil or at == nil then tokens = cap; at = t end
  if t > at then
    tokens = math.min(cap, tokens + (t - at) * rate / 1000000)
    at = t
  end
  local ok = 0
  if tokens >= 1 then tokens = tokens - 1; ok = 1 end
  redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'at', string.format('%.0f', at))
  redis.call('PEXPIRE', key, math.min(math.ceil(cap / rate * 1000) + 1000, 31536000000))
  return ok
end
local client_rate = tonumber(ARGV[1])
if client_rate > 0 and take(KEYS[1], client_rate, tonumber(ARGV[2])) == 0 then return 2 end
local endpoint_rate = tonumber(ARGV[3])
if endpoint_rate > 0 and take(KEYS[2], endpoint_rate, tonumber(ARGV[4])) == 0 then return 1 end
return 0
"#;

/// What the shared buckets said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The endpoint-wide limit is spent.
    EndpointLimited,
    /// The client's limit is spent.
    ClientLimited,
}

/// The Redis side of one limit.
pub struct SharedBuckets {
    settings: RedisSettings,
    client: redis::Client,
    /// The script's SHA-1, as `SCRIPT LOAD` names it.
    sha: String,
    /// Idle connections; one per hook thread at most is ever in use.
    idle: Mutex<Vec<redis::Connection>>,
    /// Until when Redis is not asked, after a failure.
    resting_until: Mutex<Option<Instant>>,
}

const REST_AFTER_FAILURE: Duration = Duration::from_secs(1);

impl SharedBuckets {
    /// Connects once, so that a wrong URL or an unreachable server stops
    /// start-up instead of the first request.
    pub fn connect(settings: RedisSettings) -> Result<Self, String> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| format!("\"redis\".\"url\" {:?} is not usable: {e}", settings.url))?;
        let shared = Self {
            settings,
            client,
            sha: String::new(),
            idle: Mutex::new(Vec::new()),
            resting_until: Mutex::new(None),
        };
        let mut connection = shared.open().map_err(|e| {
            format!(
                "Redis at {} is not reachable: {e} (start it, or remove \"redis\" to limit each instance on its own)",
                shared.settings.url
            )
        })?;
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(SCRIPT)
            .query(&mut connection)
            .map_err(|e| {
                format!(
                    "Redis at {} refused the rate-limit script: {e}",
                    shared.settings.url
                )
            })?;
        let shared = Self { sha, ..shared };
        shared.give_back(connection);
        Ok(shared)
    }

    /// What to do when Redis cannot be asked.
    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    fn open(&self) -> redis::RedisResult<redis::Connection> {
        let connection = self
            .client
            .get_connection_with_timeout(self.settings.timeout)?;
        connection.set_read_timeout(Some(self.settings.timeout))?;
        connection.set_write_timeout(Some(self.settings.timeout))?;
        Ok(connection)
    }

    fn give_back(&self, connection: redis::Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
    }

    /// Takes a token from the client's bucket (when given) and then from
    /// the endpoint's (when given); `None` when Redis could not be asked.
    pub fn take(
        &self,
        client: Option<(&str, &Limit)>,
        endpoint: Option<(&str, &Limit)>,
    ) -> Option<Verdict> {
        if let Ok(resting) = self.resting_until.lock() {
            if resting.is_some_and(|until| Instant::now() < until) {
                return None;
            }
        }
        match self.ask(client, endpoint) {
            Ok(verdict) => {
                if let Ok(mut resting) = self.resting_until.lock() {
                    if resting.take().is_some() {
                        tracing::info!(url = %self.settings.url, "Redis answers again: the rate limit is shared again");
                    }
                }
                Some(verdict)
            }
            Err(error) => {
                if let Ok(mut resting) = self.resting_until.lock() {
                    if resting.is_none() {
                        tracing::warn!(url = %self.settings.url, %error, on_failure = ?self.settings.on_failure,
                            "Redis cannot be asked: the rate limit falls back until it answers");
                    }
                    *resting = Some(Instant::now() + REST_AFTER_FAILURE);
                }
                None
            }
        }
    }

    fn ask(
        &self,
        client: Option<(&str, &Limit)>,
        endpoint: Option<(&str, &Limit)>,
    ) -> redis::RedisResult<Verdict> {
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let Some(connection) = reused else {
            return self.ask_on(self.open()?, client, endpoint);
        };
        match self.ask_on(connection, client, endpoint) {
            Ok(verdict) => Ok(verdict),
            Err(_) => {
                // An idle connection may have outlived its server (Redis
                // restarted): the others are as stale, so they go, and the
                // call is tried once on a fresh one.
                if let Ok(mut idle) = self.idle.lock() {
                    idle.clear();
                }
                self.ask_on(self.open()?, client, endpoint)
            }
        }
    }

    fn ask_on(
        &self,
        mut connection: redis::Connection,
        client: Option<(&str, &Limit)>,
        endpoint: Option<(&str, &Limit)>,
    ) -> redis::RedisResult<Verdict> {
        let prefix = &self.settings.key_prefix;
        let key = |part: Option<(&str, &Limit)>| {
            part.map(|(name, _)| format!("{prefix}:ratelimit:{name}"))
                .unwrap_or_else(|| format!("{prefix}:ratelimit:none"))
        };
        let rate = |part: Option<(&str, &Limit)>| part.map_or(0.0, |(_, l)| l.rate);
        let capacity = |part: Option<(&str, &Limit)>| part.map_or(0, |(_, l)| l.capacity);
        let mut call = redis::cmd("EVALSHA");
        call.arg(&self.sha)
            .arg(2)
            .arg(key(client))
            .arg(key(endpoint))
            .arg(format!("{:.17e}", rate(client)))
            .arg(capacity(client))
            .arg(format!("{:.17e}", rate(endpoint)))
            .arg(capacity(endpoint));
        let answer: redis::RedisResult<i64> = match call.query(&mut connection) {
            // The server forgot the script (restarted, flushed): load it.
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(SCRIPT)
                    .query::<String>(&mut connection)?;
                call.query(&mut connection)
            }
            other => other,
        };
        let verdict = match answer? {
            0 => Verdict::Allowed,
            1 => Verdict::EndpointLimited,
            _ => Verdict::ClientLimited,
        };
        // Only a connection that answered goes back for reuse.
        self.give_back(connection);
        Ok(verdict)
    }
}
