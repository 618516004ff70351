//! The settings of both namespaces, as each generation's component reads
//! them: krakend-ratelimit v3 (`max_rate`, `client_max_rate`, `every`, ...)
//! for version-3 files, juju's (`maxRate`, `clientMaxRate`) for version 1
//! and 2. Where KrakenD quietly drops a limit (an unknown strategy, a key
//! it cannot read) Sepia refuses the file: a limit the operator wrote must
//! not vanish.

use std::time::Duration;

use sepia_plugin_settings::{Known, SettingsReader};
use serde_json::Value;

/// How the bucket counts: each generation's algorithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    Krakend2,
    Juju,
}

/// One limit: `rate` tokens a second, `capacity` at most.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub rate: f64,
    pub capacity: u64,
    pub algorithm: Algorithm,
}

/// Whom a client limit counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// The client's address, or the first address a header names.
    Ip { header: Option<String> },
    /// A header's value.
    Header(String),
    /// An endpoint parameter's value.
    Param(String),
}

/// `qos/ratelimit/router`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterSettings {
    /// The endpoint-wide limit (`max_rate`).
    pub endpoint: Option<Limit>,
    /// The per-client limit (`client_max_rate`).
    pub client: Option<(Limit, Strategy)>,
    /// How long an idle client's bucket is kept.
    pub ttl: Duration,
    pub shards: usize,
    pub cleanup_period: Duration,
    pub redis: Option<RedisSettings>,
}

/// `qos/ratelimit/proxy`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    pub limit: Option<Limit>,
    pub redis: Option<RedisSettings>,
}

/// What to do when Redis cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRedisFailure {
    /// Each instance enforces the whole limit on its own until Redis is
    /// back (the default: the limit degrades, it does not vanish).
    Local,
    /// Let every request through.
    Allow,
    /// Refuse every request, as the limit refuses them.
    Deny,
}

/// Sepia's cluster mode: the buckets live in Redis, so every gateway
/// instance counts against one limit.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisSettings {
    pub url: String,
    pub key_prefix: String,
    pub on_failure: OnRedisFailure,
    /// How long a Redis call may take before it counts as failed.
    pub timeout: Duration,
}

/// krakend-ratelimit's idle-bucket lifetime.
const DATA_TTL: Duration = Duration::from_secs(600);

const ROUTER_V3: &[Known] = &[
    ("max_rate", None),
    ("capacity", None),
    ("strategy", None),
    ("client_max_rate", None),
    ("client_capacity", None),
    ("key", None),
    ("every", None),
    ("num_shards", None),
    ("cleanup_period", None),
    ("cleanup_threads", None),
];
const ROUTER_V1: &[Known] = &[
    ("maxRate", None),
    ("clientMaxRate", None),
    ("strategy", None),
    ("key", None),
];
const PROXY_V3: &[Known] = &[("max_rate", None), ("capacity", None), ("every", None)];
const PROXY_V1: &[Known] = &[("maxRate", None), ("capacity", None)];
const SEPIA: &[Known] = &[("redis", None)];

/// Where the other generation spells a setting otherwise.
fn explain(krakend2: bool) -> impl Fn(&str) -> Option<String> {
    move |key| {
        let (v3, v1) = match key {
            "maxRate" | "max_rate" => ("max_rate", "maxRate"),
            "clientMaxRate" | "client_max_rate" => ("client_max_rate", "clientMaxRate"),
            "client_capacity" | "every" | "num_shards" | "cleanup_period" | "cleanup_threads" => {
                return (!krakend2).then(|| {
                    format!(
                        "unknown setting \"{key}\": KrakenD 1.x's rate limit (a version 1 or 2 file) has no such setting; it came with version 3"
                    )
                })
            }
            _ => return None,
        };
        Some(if krakend2 {
            format!("unknown setting \"{key}\": a version 3 file spells it \"{v3}\"")
        } else {
            format!("unknown setting \"{key}\": a version 1 or 2 file spells it \"{v1}\" (KrakenD 1.x's juju limiter)")
        })
    }
}

impl RouterSettings {
    /// Reads `qos/ratelimit/router` for a file of `config_version`.
    pub fn parse(config_json: &str, krakend2: bool) -> Result<Self, String> {
        let known: &'static [&'static [Known]] = if krakend2 {
            &[ROUTER_V3, SEPIA]
        } else {
            &[ROUTER_V1, SEPIA]
        };
        let settings = read(config_json, known, krakend2, |r, redis| {
            if krakend2 {
                Self::v3(r, redis)
            } else {
                Self::v1(r, redis)
            }
        })?;
        let settings = settings.ok_or("no limit was read")?;
        if settings.endpoint.is_none() && settings.client.is_none() {
            return Err(if krakend2 {
                "neither \"max_rate\" nor \"client_max_rate\" is above 0: the namespace limits nothing (remove it, or set a rate)".into()
            } else {
                "neither \"maxRate\" nor \"clientMaxRate\" is above 0: the namespace limits nothing (remove it, or set a rate)".into()
            });
        }
        Ok(settings)
    }

    fn v3(r: &mut SettingsReader<'_>, redis: Option<RedisSettings>) -> Option<Self> {
        let max_rate = r.number("max_rate").unwrap_or(0.0);
        let capacity = r.unsigned("capacity").unwrap_or(0);
        let client_max_rate = r.number("client_max_rate").unwrap_or(0.0);
        let client_capacity = r.unsigned("client_capacity").unwrap_or(0);
        let (factor, every) = every_factor(r);
        let max_rate = max_rate * factor;
        let client_max_rate = client_max_rate * factor;
        let mut ttl = DATA_TTL;
        if let Some(every) = every.filter(|e| *e > DATA_TTL) {
            ttl = every + every / 4;
        }
        let shards = r.unsigned("num_shards").unwrap_or(64).clamp(1, 4096) as usize;
        let cleanup_period = r
            .duration("cleanup_period")
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_secs(1));
        r.unsigned("cleanup_threads");
        let endpoint = (max_rate > 0.0).then(|| Limit {
            rate: max_rate,
            capacity: if capacity > 0 {
                capacity
            } else {
                default_capacity(max_rate)
            },
            algorithm: Algorithm::Krakend2,
        });
        let client = if client_max_rate > 0.0 {
            let strategy = strategy(r, true)?;
            // krakend-ratelimit v3 derives the client's default capacity
            // from the endpoint-wide rate's size (a quirk kept: a file
            // without `max_rate` gets a client capacity of 1).
            let capacity = if client_capacity > 0 {
                client_capacity
            } else if max_rate < 1.0 {
                1
            } else {
                client_max_rate as u64
            };
            Some((
                Limit {
                    rate: client_max_rate,
                    capacity: capacity.max(1),
                    algorithm: Algorithm::Krakend2,
                },
                strategy,
            ))
        } else {
            r.string("strategy");
            r.string("key");
            None
        };
        Some(Self {
            endpoint,
            client,
            ttl,
            shards,
            cleanup_period,
            redis,
        })
    }

    fn v1(r: &mut SettingsReader<'_>, redis: Option<RedisSettings>) -> Option<Self> {
        // juju's limiter reads whole numbers (Go's int64 of the JSON
        // number) and holds as many tokens as its rate.
        let max_rate = r.number("maxRate").unwrap_or(0.0).trunc();
        let client_max_rate = r.number("clientMaxRate").unwrap_or(0.0).trunc();
        let endpoint = (max_rate >= 1.0).then_some(Limit {
            rate: max_rate,
            capacity: max_rate as u64,
            algorithm: Algorithm::Juju,
        });
        let client = if client_max_rate >= 1.0 {
            let strategy = strategy(r, false)?;
            Some((
                Limit {
                    rate: client_max_rate,
                    capacity: client_max_rate as u64,
                    algorithm: Algorithm::Juju,
                },
                strategy,
            ))
        } else {
            r.string("strategy");
            r.string("key");
            None
        };
        Some(Self {
            endpoint,
            client,
            ttl: DATA_TTL,
            shards: 64,
            cleanup_period: Duration::from_secs(60),
            redis,
        })
    }
}

impl ProxySettings {
    /// Reads `qos/ratelimit/proxy` for a file of `config_version`.
    pub fn parse(config_json: &str, krakend2: bool) -> Result<Self, String> {
        let known: &'static [&'static [Known]] = if krakend2 {
            &[PROXY_V3, SEPIA]
        } else {
            &[PROXY_V1, SEPIA]
        };
        let (limit, redis) = read(config_json, known, krakend2, |r, redis| {
            (Self::limit(r, krakend2), redis)
        })?;
        if limit.is_none() {
            return Err(if krakend2 {
                "\"max_rate\" is not above 0: the namespace limits nothing (remove it, or set a rate)".into()
            } else {
                "\"maxRate\" is not above 0: the namespace limits nothing (remove it, or set a rate)".into()
            });
        }
        Ok(Self { limit, redis })
    }

    /// The backend's limit as the file's generation spells it.
    fn limit(r: &mut SettingsReader<'_>, krakend2: bool) -> Option<Limit> {
        if krakend2 {
            let max_rate = r.number("max_rate").unwrap_or(0.0);
            let capacity = r.unsigned("capacity").unwrap_or(0);
            let (factor, _) = every_factor(r);
            let rate = max_rate * factor;
            (rate > 0.0).then(|| Limit {
                rate,
                capacity: if capacity > 0 {
                    capacity
                } else {
                    default_capacity(rate)
                },
                algorithm: Algorithm::Krakend2,
            })
        } else {
            let max_rate = r.number("maxRate").unwrap_or(0.0);
            let capacity = r.unsigned("capacity").unwrap_or(0);
            if max_rate > 0.0 && capacity == 0 {
                // KrakenD 1.x's juju bucket panics at start-up on this.
                r.problem("\"capacity\" must be 1 or more when \"maxRate\" is set (KrakenD 1.x's limiter cannot start without it)");
            }
            (max_rate > 0.0 && capacity > 0).then_some(Limit {
                rate: max_rate,
                capacity,
                algorithm: Algorithm::Juju,
            })
        }
    }
}

/// Reads `config_json` with `known`'s settings and the `redis` block,
/// building what `build` makes of them; every problem at once.
fn read<T>(
    config_json: &str,
    known: &'static [&'static [Known]],
    krakend2: bool,
    build: impl FnOnce(&mut SettingsReader<'_>, Option<RedisSettings>) -> T,
) -> Result<T, String> {
    let value = SettingsReader::parse(config_json)?;
    let mut r = SettingsReader::new(&value, known, explain(krakend2));
    let redis = redis_settings(&mut r);
    let built = build(&mut r, redis);
    r.finish()?;
    Ok(built)
}

/// What a bucket holds when `capacity` is not set: its rate, at least 1.
fn default_capacity(rate: f64) -> u64 {
    if rate < 1.0 {
        1
    } else {
        rate as u64
    }
}

/// `every`: the period the rates are counted in (a second by default);
/// krakend-ratelimit counts anything under a second as a second.
fn every_factor(r: &mut SettingsReader<'_>) -> (f64, Option<Duration>) {
    let Some(every) = r.duration("every") else {
        return (1.0, None);
    };
    let every = every.max(Duration::from_secs(1));
    (1.0 / every.as_secs_f64(), Some(every))
}

/// `strategy` and `key` of a client limit.
fn strategy(r: &mut SettingsReader<'_>, krakend2: bool) -> Option<Strategy> {
    let name = r.string("strategy").unwrap_or_default();
    let key = r.string("key").filter(|k| !k.is_empty());
    let needs_key = |r: &mut SettingsReader<'_>, what: &str| {
        r.problem(format!(
            "\"strategy\": \"{what}\" needs \"key\", the {what} whose value names the client"
        ));
    };
    match name.to_ascii_lowercase().as_str() {
        "ip" => Some(Strategy::Ip { header: key }),
        "header" => match key {
            Some(key) => Some(Strategy::Header(key)),
            None => {
                needs_key(r, "header");
                None
            }
        },
        "param" if krakend2 => match key {
            Some(key) => Some(Strategy::Param(key)),
            None => {
                needs_key(r, "param");
                None
            }
        },
        other => {
            let allowed = if krakend2 {
                "\"ip\", \"header\" or \"param\""
            } else {
                "\"ip\" or \"header\""
            };
            r.problem(format!(
                "\"strategy\" {other:?} is not one KrakenD knows ({allowed}): KrakenD would drop the client limit, Sepia refuses to"
            ));
            None
        }
    }
}

/// `redis`: Sepia's cluster mode.
fn redis_settings(r: &mut SettingsReader<'_>) -> Option<RedisSettings> {
    let value = r.value("redis")?;
    let Value::Object(map) = value else {
        r.problem("\"redis\" must be an object such as {\"url\": \"redis://127.0.0.1:6379\"}");
        return None;
    };
    let mut problems = Vec::new();
    for key in map.keys() {
        if !["url", "key_prefix", "on_failure", "timeout"].contains(&key.as_str()) {
            problems.push(format!("\"redis\": unknown setting \"{key}\""));
        }
    }
    let url = match map.get("url") {
        Some(Value::String(url)) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            Some(url.clone())
        }
        _ => {
            problems.push("\"redis\".\"url\" must be a redis:// or rediss:// URL".into());
            None
        }
    };
    let key_prefix = match map.get("key_prefix") {
        None => "sepia".to_owned(),
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(_) => {
            problems.push("\"redis\".\"key_prefix\" must be a non-empty string".into());
            String::new()
        }
    };
    let on_failure = match map.get("on_failure").map(|v| v.as_str()) {
        None | Some(Some("local")) => OnRedisFailure::Local,
        Some(Some("allow")) => OnRedisFailure::Allow,
        Some(Some("deny")) => OnRedisFailure::Deny,
        Some(_) => {
            problems
                .push("\"redis\".\"on_failure\" must be \"local\", \"allow\" or \"deny\"".into());
            OnRedisFailure::Local
        }
    };
    let timeout = match map.get("timeout") {
        None => Duration::from_millis(100),
        Some(Value::String(text)) => {
            match sepia_plugin_api::parse_duration(text) {
                Ok(d) if !d.is_zero() => d,
                _ => {
                    problems.push(format!("\"redis\".\"timeout\" {text:?} is not a duration above 0 such as \"100ms\""));
                    Duration::from_millis(100)
                }
            }
        }
        Some(_) => {
            problems.push("\"redis\".\"timeout\" must be a duration such as \"100ms\"".into());
            Duration::from_millis(100)
        }
    };
    let had_problems = !problems.is_empty();
    for problem in problems {
        r.problem(problem);
    }
    if had_problems {
        return None;
    }
    Some(RedisSettings {
        url: url?,
        key_prefix,
        on_failure,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_3_reads_krakend_ratelimit_v3() {
        let s = RouterSettings::parse(
            r#"{"max_rate":100,"client_max_rate":5,"strategy":"header","key":"X-Key","every":"1m"}"#,
            true,
        )
        .unwrap();
        let endpoint = s.endpoint.unwrap();
        assert!((endpoint.rate - 100.0 / 60.0).abs() < 1e-9);
        assert_eq!(endpoint.capacity, 1);
        let (client, strategy) = s.client.unwrap();
        assert!((client.rate - 5.0 / 60.0).abs() < 1e-9);
        assert_eq!(client.capacity, 1, "KrakenD's default from max_rate < 1");
        assert_eq!(strategy, Strategy::Header("X-Key".into()));
        let plain = RouterSettings::parse(
            r#"{"max_rate":10,"client_max_rate":3,"strategy":"ip"}"#,
            true,
        )
        .unwrap();
        assert_eq!(plain.endpoint.unwrap().capacity, 10);
        assert_eq!(plain.client.unwrap().0.capacity, 3);
        let quirk =
            RouterSettings::parse(r#"{"client_max_rate":3,"strategy":"ip"}"#, true).unwrap();
        assert_eq!(quirk.client.unwrap().0.capacity, 1);
    }

    #[test]
    fn version_2_reads_juju_names() {
        let s = RouterSettings::parse(
            r#"{"maxRate":10,"clientMaxRate":2,"strategy":"ip","key":"X-Forwarded-For"}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            s.endpoint.unwrap(),
            Limit {
                rate: 10.0,
                capacity: 10,
                algorithm: Algorithm::Juju
            }
        );
        assert_eq!(
            s.client.unwrap().1,
            Strategy::Ip {
                header: Some("X-Forwarded-For".into())
            }
        );
        let err = RouterSettings::parse(r#"{"max_rate":10}"#, false).unwrap_err();
        assert!(err.contains("spells it \"maxRate\""), "{err}");
        let err = RouterSettings::parse(r#"{"maxRate":10}"#, true).unwrap_err();
        assert!(err.contains("spells it \"max_rate\""), "{err}");
    }

    #[test]
    fn limits_krakend_would_drop_are_refused() {
        for (config, krakend2, says) in [
            (
                r#"{"client_max_rate":1,"strategy":"cookie"}"#,
                true,
                "not one KrakenD knows",
            ),
            (
                r#"{"client_max_rate":1,"strategy":"header"}"#,
                true,
                "needs \"key\"",
            ),
            (
                r#"{"clientMaxRate":1,"strategy":"param","key":"id"}"#,
                false,
                "\"ip\" or \"header\"",
            ),
            (r#"{"max_rate":0}"#, true, "limits nothing"),
            (r#"{"max_rate":-1}"#, true, "must be a number of 0 or more"),
            (r#"{"max_rate":1,"every":"often"}"#, true, "every"),
            (
                r#"{"max_rate":1,"redis":{"url":"http://x"}}"#,
                true,
                "redis://",
            ),
            (
                r#"{"max_rate":1,"redis":{"url":"redis://x","on_failure":"maybe"}}"#,
                true,
                "on_failure",
            ),
        ] {
            let err = RouterSettings::parse(config, krakend2).unwrap_err();
            assert!(err.contains(says), "{config}: {err}");
        }
        let err = ProxySettings::parse(r#"{"maxRate":5}"#, false).unwrap_err();
        assert!(err.contains("\"capacity\" must be 1 or more"), "{err}");
    }

    #[test]
    fn proxy_limits_of_both_generations() {
        let v3 = ProxySettings::parse(r#"{"max_rate":0.5}"#, true).unwrap();
        assert_eq!(v3.limit.unwrap().capacity, 1);
        let v1 = ProxySettings::parse(r#"{"maxRate":5,"capacity":2}"#, false).unwrap();
        assert_eq!(v1.limit.unwrap().capacity, 2);
        let shared = ProxySettings::parse(
            r#"{"max_rate":5,"redis":{"url":"redis://127.0.0.1:1","on_failure":"deny","timeout":"50ms"}}"#,
            true,
        )
        .unwrap();
        let redis = shared.redis.unwrap();
        assert_eq!(redis.on_failure, OnRedisFailure::Deny);
        assert_eq!(redis.timeout, Duration::from_millis(50));
        assert_eq!(redis.key_prefix, "sepia");
    }
}
