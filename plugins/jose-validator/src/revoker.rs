//! KrakenD's revoker (`auth/revoker`, `github_com/devopsfaith/bloomfilter`)
//! at the top level of a file: the set of revoked tokens every validator of
//! the gateway consults, and the authenticated admin endpoint revocations
//! are added through, where KrakenD opens an unauthenticated Go RPC port.
//!
//! ```json
//! "auth/revoker": {
//!   "N": 10000000, "P": 0.0000001, "HashName": "optimal", "TTL": 1500,
//!   "port": 1234, "TokenKeys": ["jti"],
//!   "redis": {"url": "redis://127.0.0.1:6379", "key_prefix": "sepia"},
//!   "admin": {"path": "/__revoker", "token_env": "SEPIA_REVOKER_TOKEN"}
//! }
//! ```

use std::sync::{Arc, RwLock};

use sepia_jose::{Known, SettingsReader};
use sepia_plugin_api::{Hooks, Modifier, PluginError, Request, RequestFlow, Response};
use serde_json::{json, Value};

use crate::revocation::{unix_now, RedisSettings, Revocations};

/// The gateway's revocations, once its revoker is built: every validator
/// of this plugin reads them. A plugin-internal slot (one configuration a
/// process), not state shared with the gateway.
static CURRENT: RwLock<Option<Arc<Revocations>>> = RwLock::new(None);

/// The revocations validators consult, when a revoker is configured.
pub fn current() -> Option<Arc<Revocations>> {
    CURRENT.read().ok().and_then(|slot| slot.clone())
}

fn install(revocations: Arc<Revocations>) {
    match CURRENT.write() {
        Ok(mut slot) => *slot = Some(revocations),
        Err(poisoned) => *poisoned.into_inner() = Some(revocations),
    }
}

/// Both generations' spellings: krakend-jose 1.4's bloomfilter reads the Go
/// field names, the current one its JSON tags.
const KNOWN: &[Known] = &[
    ("N", Some("n")),
    ("P", Some("p")),
    ("HashName", Some("hash_name")),
    ("TTL", Some("ttl")),
    ("port", Some("Port")),
    ("TokenKeys", Some("token_keys")),
    ("Headers", Some("headers")),
    ("redis", None),
    ("admin", None),
];

const DEFAULT_ADMIN_PATH: &str = "/__revoker";
const DEFAULT_TOKEN_ENV: &str = "SEPIA_REVOKER_TOKEN";

/// A valid revoker configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub token_keys: Vec<String>,
    /// How long a revocation holds, in seconds: three rotations of
    /// KrakenD's sliding filters, the longest it keeps an entry.
    pub lifetime: u64,
    pub redis: Option<RedisSettings>,
    pub admin_path: String,
    /// The admin endpoint's bearer token; `None` turns adding off here.
    pub admin_token: Option<String>,
    pub admin_token_env: String,
}

impl Settings {
    /// Reads and validates the configuration; all problems at once.
    pub fn parse(config_json: &str) -> Result<Self, String> {
        let value = SettingsReader::parse(config_json)?;
        let mut r = SettingsReader::new(&value, &[KNOWN], |_| None);
        // The bloom filter's sizing: Sepia keeps an exact set, so these
        // only need to be readable.
        r.unsigned("N");
        if let Some(p) = r.value("P") {
            if !p.as_f64().is_some_and(|p| p > 0.0 && p < 1.0) {
                r.problem("\"P\" must be a probability between 0 and 1");
            }
        }
        r.string("HashName");
        let ttl = match r.unsigned("TTL") {
            Some(0) | None => {
                r.problem("\"TTL\" is missing or 0: set how long, in seconds, a revocation holds (KrakenD rotates its filters at this period)");
                0
            }
            Some(ttl) => ttl,
        };
        if let Some(port) = r.unsigned("port") {
            tracing::warn!(port, "the revoker's \"port\" (KrakenD's Go RPC) is not opened: Sepia adds revocations through its authenticated admin endpoint (COMPATIBILITY.md)");
        }
        let token_keys = r.strings("TokenKeys");
        if token_keys.is_empty() {
            r.problem("\"TokenKeys\" is missing or empty: name the claims a revocation matches, such as [\"jti\"]");
        }
        if !r.strings("Headers").is_empty() {
            r.problem("\"Headers\" (revoking by request header) is not supported by Sepia yet: revoke by token claims (\"TokenKeys\")");
        }
        let redis = match r.value("redis") {
            None => None,
            Some(Value::Object(map)) => {
                let url = map.get("url").and_then(Value::as_str).unwrap_or("");
                if !(url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("unix://"))
                {
                    r.problem("\"redis.url\" must be a redis://, rediss:// or unix:// URL");
                }
                let key_prefix = match map.get("key_prefix") {
                    None => "sepia".to_owned(),
                    Some(Value::String(p)) if !p.is_empty() => p.clone(),
                    Some(_) => {
                        r.problem("\"redis.key_prefix\" must be a non-empty string");
                        String::new()
                    }
                };
                for key in map.keys().filter(|k| *k != "url" && *k != "key_prefix") {
                    r.problem(format!("unknown setting \"redis.{key}\""));
                }
                Some(RedisSettings {
                    url: url.to_owned(),
                    key_prefix,
                })
            }
            Some(_) => {
                r.problem("\"redis\" must be an object: {\"url\": \"redis://host:6379\"}");
                None
            }
        };
        let (admin_path, admin_token_env) = match r.value("admin") {
            None => (DEFAULT_ADMIN_PATH.to_owned(), DEFAULT_TOKEN_ENV.to_owned()),
            Some(Value::Object(map)) => {
                let path = map
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_ADMIN_PATH)
                    .to_owned();
                if !path.starts_with('/') {
                    r.problem("\"admin.path\" must start with '/'");
                }
                let env = map
                    .get("token_env")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_TOKEN_ENV)
                    .to_owned();
                for key in map.keys().filter(|k| *k != "path" && *k != "token_env") {
                    r.problem(format!("unknown setting \"admin.{key}\""));
                }
                (path, env)
            }
            Some(_) => {
                r.problem("\"admin\" must be an object: {\"path\": \"/__revoker\", \"token_env\": \"SEPIA_REVOKER_TOKEN\"}");
                (String::new(), String::new())
            }
        };
        let admin_token = std::env::var(&admin_token_env)
            .ok()
            .filter(|t| !t.is_empty());
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            r.problem(format!("the admin token in {admin_token_env} is shorter than 16 characters: use a long random one"));
        }
        r.finish()?;
        Ok(Self {
            token_keys,
            lifetime: ttl.saturating_mul(3),
            redis,
            admin_path,
            admin_token,
            admin_token_env,
        })
    }
}

/// The revoker as a service modifier: answers the admin path, lets every
/// other request through untouched.
pub struct Revoker {
    settings: Settings,
    revocations: Arc<Revocations>,
}

impl Revoker {
    /// Builds the set (and its Redis follower) and makes it the one every
    /// validator consults.
    pub fn start(settings: Settings) -> Result<Self, String> {
        let revocations = Revocations::new(settings.token_keys.clone(), settings.redis.clone())?;
        install(revocations.clone());
        match &settings.admin_token {
            Some(_) => {
                tracing::info!(path = %settings.admin_path, shared = settings.redis.is_some(), "token revocations accepted")
            }
            None => {
                tracing::warn!(path = %settings.admin_path, env = %settings.admin_token_env, "no admin token: this instance does not accept revocations (set the variable to accept them)")
            }
        }
        Ok(Self {
            settings,
            revocations,
        })
    }

    fn authorized(&self, request: &Request) -> bool {
        let Some(expected) = &self.settings.admin_token else {
            return false;
        };
        let given = request
            .header("authorization")
            .and_then(|h| h.value_str())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        same_bytes(given.as_bytes(), expected.as_bytes())
    }

    fn admin(&self, request: &Request) -> Response {
        if self.settings.admin_token.is_none() {
            return answer(
                403,
                json!({"error": format!("this instance does not accept revocations: set {} to a long random token", self.settings.admin_token_env)}),
            );
        }
        if !self.authorized(request) {
            let mut response = answer(
                401,
                json!({"error": "a valid admin bearer token is required"}),
            );
            response.set_header("www-authenticate", "Bearer");
            return response;
        }
        match request.method.as_str() {
            "POST" => self.add(request),
            "GET" => self.check(request),
            _ => {
                let mut response =
                    answer(405, json!({"error": "use POST to revoke, GET to check"}));
                response.set_header("allow", "GET, POST");
                response
            }
        }
    }

    /// `POST ?jti=abc&jti=def`. The query, not a body: service hooks run
    /// before the body is read.
    fn add(&self, request: &Request) -> Response {
        let wanted = query_pairs(&request.query);
        if wanted.is_empty() {
            return answer(
                400,
                json!({"error": format!("name the claims to revoke in the query, such as ?{}=...", self.settings.token_keys[0])}),
            );
        }
        if let Some((claim, _)) = wanted
            .iter()
            .find(|(claim, _)| !self.revocations.token_keys().iter().any(|k| k == claim))
        {
            return answer(
                400,
                json!({"error": format!("\"{claim}\" is not one of the revoker's TokenKeys ({})", self.settings.token_keys.join(", "))}),
            );
        }
        let expires = unix_now() + self.settings.lifetime;
        let mut revoked = Vec::new();
        let mut unshared = None;
        for (claim, value) in &wanted {
            if let Err(e) = self.revocations.revoke(claim, value, expires) {
                unshared = Some(e.0);
            }
            revoked.push(format!("{claim}-{value}"));
        }
        tracing::info!(entries = ?revoked, expires, "tokens revoked");
        match unshared {
            None => answer(
                200,
                json!({"revoked": revoked, "expires": expires, "shared": self.settings.redis.is_some()}),
            ),
            Some(why) => {
                tracing::error!(error = %why, "revocations hold at this instance only");
                answer(
                    502,
                    json!({"revoked": revoked, "expires": expires, "shared": false,
                    "error": format!("revoked at this instance only: {why}")}),
                )
            }
        }
    }

    /// `GET ?jti=abc`: whether each named claim value is revoked.
    fn check(&self, request: &Request) -> Response {
        let mut result = serde_json::Map::new();
        for (claim, value) in query_pairs(&request.query) {
            let revoked = self.revocations.contains(&claim, &value);
            result.insert(format!("{claim}-{value}"), Value::Bool(revoked));
        }
        answer(200, json!({"revoked": result}))
    }
}

/// The query's `name=value` pairs, percent-decoded.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn answer(status: u16, body: Value) -> Response {
    Response::json(status, sepia_json::to_vec(&body))
}

/// Compares in time independent of where the bytes differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Modifier for Revoker {
    fn hooks(&self) -> Hooks {
        // Only the admin requests are answered.
        Hooks::REQUEST
    }

    fn on_request(&self, request: &mut Request) -> Result<RequestFlow, PluginError> {
        if request.path.as_str() != self.settings.admin_path {
            return Ok(RequestFlow::Continue);
        }
        Ok(RequestFlow::Respond(self.admin(request)))
    }
}

/// Built by `sepia check`: settings checked, no Redis connection, and
/// nothing installed.
pub struct CheckedOnly;

impl Modifier for CheckedOnly {}

#[cfg(test)]
mod tests {
    use super::*;
    use sepia_plugin_api::RVec;

    #[test]
    fn both_generations_spell_it_and_problems_are_named() {
        let old = Settings::parse(
            r#"{"N":100,"P":0.001,"HashName":"optimal","TTL":10,"port":1234,"TokenKeys":["jti"]}"#,
        )
        .unwrap();
        let new = Settings::parse(r#"{"n":100,"p":0.001,"hash_name":"optimal","ttl":10,"port":1234,"token_keys":["jti"]}"#).unwrap();
        assert_eq!(old.token_keys, new.token_keys);
        assert_eq!(old.lifetime, 30);
        let err = Settings::parse(
            r#"{"TTL":0,"P":2,"headers":["x"],"redis":{"url":"http://x"},"colour":1}"#,
        )
        .unwrap_err();
        for needle in [
            "\"TTL\" is missing or 0",
            "\"P\" must be",
            "\"TokenKeys\" is missing",
            "\"Headers\"",
            "redis://",
            "unknown setting \"colour\"",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"abcd"));
    }

    #[test]
    fn the_admin_path_revokes_and_checks() {
        let settings = Settings {
            token_keys: vec!["jti".into()],
            lifetime: 60,
            redis: None,
            admin_path: "/__revoker".into(),
            admin_token: Some("0123456789abcdef".into()),
            admin_token_env: "T".into(),
        };
        let revoker = Revoker {
            revocations: Revocations::new(settings.token_keys.clone(), None).unwrap(),
            settings,
        };
        let request = |method: &str, auth: &str, query: &str, body: &str| Request {
            method: method.into(),
            path: "/__revoker".into(),
            query: query.into(),
            params: RVec::new(),
            headers: vec![sepia_plugin_api::Header::new(
                "authorization",
                auth.as_bytes(),
            )]
            .into(),
            body: body.as_bytes().to_vec().into(),
        };
        let good = "Bearer 0123456789abcdef";
        assert_eq!(
            revoker
                .admin(&request("POST", "Bearer nope", "jti=a", ""))
                .status,
            401
        );
        assert_eq!(
            revoker.admin(&request("POST", good, "sub=a", "")).status,
            400
        );
        assert_eq!(revoker.admin(&request("POST", good, "", "")).status, 400);
        assert_eq!(
            revoker
                .admin(&request("POST", good, "jti=a&jti=b%20c", ""))
                .status,
            200
        );
        assert!(revoker.revocations.contains("jti", "b c"));
        let checked = revoker.admin(&request("GET", good, "jti=a&jti=c", ""));
        assert_eq!(checked.status, 200);
        assert_eq!(
            String::from_utf8(checked.body.to_vec()).unwrap(),
            r#"{"revoked":{"jti-a":true,"jti-c":false}}"#
        );
        assert_eq!(revoker.admin(&request("DELETE", good, "", "")).status, 405);
    }
}
