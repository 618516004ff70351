//! The modifiers: `qos/ratelimit/router` on an endpoint's requests (a 429
//! when the client's limit is spent, checked first; a 503 when the
//! endpoint's is, both with an empty body, as gin's `AbortWithError` leaves
//! them) and `qos/ratelimit/proxy` on a backend's (that backend fails with
//! krakend-ratelimit's "rate limit exceded", as lura reports it).

use std::{sync::Mutex, time::Instant};

use sepia_plugin_api::{
    Hooks, Modifier, PluginError, Request, RequestContext, RequestFlow, Response,
};

use crate::{
    bucket::{JujuBucket, Krakend2Bucket, TokenBucket},
    settings::{Algorithm, Limit, OnRedisFailure, ProxySettings, RouterSettings, Strategy},
    shared::{SharedBuckets, Verdict},
    store::ClientBuckets,
};

/// krakend-ratelimit's error text, misspelt as it is.
pub const LIMITED: &str = "rate limit exceded";

fn bucket(limit: &Limit, now: Instant) -> TokenBucket {
    match limit.algorithm {
        Algorithm::Krakend2 => {
            TokenBucket::Krakend2(Krakend2Bucket::new(limit.rate, limit.capacity, now))
        }
        // The settings refuse what juju cannot build; should one slip
        // through, the stricter bucket of the other generation stands in.
        Algorithm::Juju => JujuBucket::new(limit.rate, limit.capacity, now)
            .map(TokenBucket::Juju)
            .unwrap_or_else(|| {
                TokenBucket::Krakend2(Krakend2Bucket::new(limit.rate, limit.capacity, now))
            }),
    }
}

/// One limit held in this process.
struct LocalLimit {
    limit: Limit,
    bucket: Mutex<TokenBucket>,
}

impl LocalLimit {
    fn new(limit: Limit) -> Self {
        Self {
            limit,
            bucket: Mutex::new(bucket(&limit, Instant::now())),
        }
    }

    fn allow(&self, now: Instant) -> bool {
        self.bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(now)
    }
}

/// `qos/ratelimit/router` of one endpoint.
pub struct RouterLimiter {
    endpoint: Option<LocalLimit>,
    client: Option<(Limit, Strategy, ClientBuckets)>,
    shared: Option<SharedBuckets>,
    /// Names the endpoint's buckets in Redis (`GET /users/{id}`).
    scope: String,
}

impl RouterLimiter {
    pub fn new(settings: RouterSettings, scope: String) -> Result<Self, String> {
        let shared = settings.redis.map(SharedBuckets::connect).transpose()?;
        let client = settings.client.map(|(limit, strategy)| {
            let store = ClientBuckets::new(
                move |now| bucket(&limit, now),
                settings.shards,
                settings.ttl,
                settings.cleanup_period,
            );
            (limit, strategy, store)
        });
        Ok(Self {
            endpoint: settings.endpoint.map(LocalLimit::new),
            client,
            shared,
            scope,
        })
    }

    /// The client's key, as krakend-ratelimit's token extractors read it;
    /// empty when the request carries none.
    fn client_key<'r>(
        strategy: &Strategy,
        request: &'r Request,
        context: &'r RequestContext,
    ) -> &'r str {
        match strategy {
            Strategy::Ip { header: None } => context.client_ip.as_str(),
            Strategy::Ip {
                header: Some(header),
            } => {
                // The first address the header lists, without a port, when
                // it is an address at all; else the client's.
                let named = request
                    .header(header)
                    .and_then(|h| h.value_str())
                    .map(|v| v.split(',').next().unwrap_or("").trim())
                    .map(|v| v.split(':').next().unwrap_or(""))
                    .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
                named.unwrap_or(context.client_ip.as_str())
            }
            Strategy::Header(name) => request
                .header(name)
                .and_then(|h| h.value_str())
                .unwrap_or(""),
            Strategy::Param(name) => request.param(name).unwrap_or(""),
        }
    }

    fn verdict(&self, client_key: Option<&str>) -> Verdict {
        let now = Instant::now();
        if let Some(shared) = &self.shared {
            let client = self
                .client
                .as_ref()
                .zip(client_key)
                .map(|((limit, _, _), key)| (format!("{}:client:{key}", self.scope), limit));
            let endpoint = self
                .endpoint
                .as_ref()
                .map(|local| (format!("{}:endpoint", self.scope), &local.limit));
            let asked = shared.take(
                client.as_ref().map(|(k, l)| (k.as_str(), *l)),
                endpoint.as_ref().map(|(k, l)| (k.as_str(), *l)),
            );
            match (asked, shared.settings().on_failure) {
                (Some(verdict), _) => return verdict,
                (None, OnRedisFailure::Allow) => return Verdict::Allowed,
                (None, OnRedisFailure::Deny) => {
                    return if self.client.is_some() {
                        Verdict::ClientLimited
                    } else {
                        Verdict::EndpointLimited
                    }
                }
                (None, OnRedisFailure::Local) => {}
            }
        }
        if let (Some((_, _, store)), Some(key)) = (&self.client, client_key) {
            if !store.allow(key, now) {
                return Verdict::ClientLimited;
            }
        }
        match &self.endpoint {
            Some(local) if !local.allow(now) => Verdict::EndpointLimited,
            _ => Verdict::Allowed,
        }
    }
}

/// A bare status, as gin's `AbortWithError` answers.
fn refusal(status: u16) -> RequestFlow {
    RequestFlow::Respond(Response {
        status,
        headers: Default::default(),
        body: Default::default(),
        complete: false,
    })
}

impl Modifier for RouterLimiter {
    fn hooks(&self) -> Hooks {
        // Refusals are decided on the request; answers are left alone.
        Hooks::REQUEST
    }

    fn is_blocking(&self) -> bool {
        // A Redis round trip must not hold an I/O thread.
        self.shared.is_some()
    }

    fn on_request(&self, _: &mut Request) -> Result<RequestFlow, PluginError> {
        Err(PluginError::internal(
            "the rate limit needs the request's context: the gateway is older than sepia-plugin-api 1.2",
        ))
    }

    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        let client_key = match &self.client {
            Some((_, strategy, _)) => {
                let key = Self::client_key(strategy, request, context);
                if key.is_empty() {
                    // krakend-ratelimit refuses a request that names no client.
                    return Ok(refusal(429));
                }
                Some(key.to_owned())
            }
            None => None,
        };
        Ok(match self.verdict(client_key.as_deref()) {
            Verdict::Allowed => RequestFlow::Continue,
            Verdict::ClientLimited => refusal(429),
            Verdict::EndpointLimited => refusal(503),
        })
    }
}

/// `qos/ratelimit/proxy` of one backend.
pub struct ProxyLimiter {
    local: LocalLimit,
    shared: Option<SharedBuckets>,
    scope: String,
}

impl ProxyLimiter {
    pub fn new(settings: ProxySettings, scope: String) -> Result<Self, String> {
        let limit = settings.limit.ok_or("no limit was set")?;
        Ok(Self {
            local: LocalLimit::new(limit),
            shared: settings.redis.map(SharedBuckets::connect).transpose()?,
            scope,
        })
    }

    fn allowed(&self) -> bool {
        if let Some(shared) = &self.shared {
            let key = format!("{}:backend", self.scope);
            match (
                shared.take(None, Some((&key, &self.local.limit))),
                shared.settings().on_failure,
            ) {
                (Some(verdict), _) => return verdict == Verdict::Allowed,
                (None, OnRedisFailure::Allow) => return true,
                (None, OnRedisFailure::Deny) => return false,
                (None, OnRedisFailure::Local) => {}
            }
        }
        self.local.allow(Instant::now())
    }
}

impl Modifier for ProxyLimiter {
    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }

    fn is_blocking(&self) -> bool {
        self.shared.is_some()
    }

    fn on_request(&self, _: &mut Request) -> Result<RequestFlow, PluginError> {
        if self.allowed() {
            Ok(RequestFlow::Continue)
        } else {
            // The backend fails, as the proxy middleware's error makes it.
            Err(PluginError::internal(LIMITED))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sepia_plugin_api::{Header, RString, RVec, Tuple2};

    fn request(headers: &[(&str, &str)], params: &[(&str, &str)]) -> Request {
        Request {
            method: RString::from("GET"),
            path: RString::from("/x"),
            query: RString::new(),
            params: params
                .iter()
                .map(|(k, v)| Tuple2(RString::from(*k), RString::from(*v)))
                .collect(),
            headers: headers.iter().map(|(k, v)| Header::new(k, *v)).collect(),
            body: RVec::new(),
        }
    }

    fn status(flow: RequestFlow) -> u16 {
        match flow {
            RequestFlow::Continue => 200,
            RequestFlow::Respond(r) => r.status,
        }
    }

    fn context(ip: &str) -> RequestContext {
        RequestContext {
            client_ip: RString::from(ip),
            ..Default::default()
        }
    }

    #[test]
    fn clients_are_limited_first_then_the_endpoint() {
        let settings = RouterSettings::parse(
            r#"{"max_rate":3,"client_max_rate":2,"strategy":"header","key":"X-Key"}"#,
            true,
        )
        .unwrap();
        let limiter = RouterLimiter::new(settings, "GET /x".into()).unwrap();
        let mut statuses = Vec::new();
        for key in ["a", "a", "a", "b", "b"] {
            let mut r = request(&[("x-key", key)], &[]);
            statuses.push(status(
                limiter
                    .on_request_with(&mut r, &mut context("1.1.1.1"))
                    .unwrap(),
            ));
        }
        // a: 2 then 429 (endpoint untouched); b: 1 left at the endpoint.
        assert_eq!(statuses, vec![200, 200, 429, 200, 503]);
        let mut nameless = request(&[], &[]);
        assert_eq!(
            status(
                limiter
                    .on_request_with(&mut nameless, &mut context("1.1.1.1"))
                    .unwrap()
            ),
            429
        );
    }

    #[test]
    fn clients_are_told_apart_as_krakend_does() {
        let ip = Strategy::Ip {
            header: Some("X-Forwarded-For".into()),
        };
        let ctx = context("10.0.0.1");
        let r = request(&[("x-forwarded-for", " 192.0.2.7:8080, 10.1.1.1")], &[]);
        assert_eq!(RouterLimiter::client_key(&ip, &r, &ctx), "192.0.2.7");
        let junk = request(&[("x-forwarded-for", "unknown")], &[]);
        assert_eq!(RouterLimiter::client_key(&ip, &junk, &ctx), "10.0.0.1");
        let plain = Strategy::Ip { header: None };
        assert_eq!(RouterLimiter::client_key(&plain, &r, &ctx), "10.0.0.1");
        let param = Strategy::Param("id".into());
        let p = request(&[], &[("id", "42")]);
        assert_eq!(RouterLimiter::client_key(&param, &p, &ctx), "42");
    }

    #[test]
    fn a_backend_over_its_limit_fails_with_krakends_words() {
        let settings = ProxySettings::parse(r#"{"max_rate":1,"capacity":2}"#, true).unwrap();
        let limiter = ProxyLimiter::new(settings, "GET /x /b 0".into()).unwrap();
        let mut r = request(&[], &[]);
        assert!(limiter.on_request(&mut r).is_ok());
        assert!(limiter.on_request(&mut r).is_ok());
        let error = limiter.on_request(&mut r).unwrap_err();
        assert_eq!(error.status, 500);
        assert_eq!(error.message(), LIMITED);
    }
}
