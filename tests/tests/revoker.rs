//! Token revocation end to end: KrakenD's revoker settings, Sepia's
//! authenticated admin endpoint, and several gateway processes sharing their
//! revocations through a real `redis-server`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Method;
use sepia_e2e::{
    jose::mint, redis::TestRedis, request, run_sepia, Answer, Reply, Sepia, TestBackend,
};
use serde_json::{json, Value};

const ADMIN_TOKEN: &str = "a-long-random-admin-token";

fn keygen() -> Value {
    let output = run_sepia(&["keygen", "--alg", "HS256", "--kid", "k1"], &[]);
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("key set")
}

fn token(set: &Value, jti: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 600;
    mint(
        "HS256",
        "k1",
        &set["keys"][0],
        &json!({"sub": "alice", "jti": jti, "exp": exp}),
    )
}

struct Setup {
    keys: TestBackend,
    backend: TestBackend,
    set: Value,
}

impl Setup {
    async fn new() -> Self {
        let set = keygen();
        Self {
            keys: TestBackend::always(Reply::json(200, &set.to_string())).await,
            backend: TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await,
            set,
        }
    }

    /// A gateway whose revoker uses `redis` (a URL) when given.
    async fn gateway(&self, version: u64, redis: Option<&str>) -> Sepia {
        let mut revoker = if version >= 3 {
            json!({"n": 1000, "p": 0.0001, "hash_name": "optimal", "ttl": 600, "port": 1234, "token_keys": ["jti"]})
        } else {
            json!({"N": 1000, "P": 0.0001, "HashName": "optimal", "TTL": 600, "port": 1234, "TokenKeys": ["jti"]})
        };
        if let Some(url) = redis {
            revoker["redis"] = json!({"url": url});
        }
        let namespace = if version >= 3 {
            "auth/revoker"
        } else {
            "github_com/devopsfaith/bloomfilter"
        };
        let config = json!({"version": version,
            "extra_config": {namespace: revoker},
            "endpoints": [{"endpoint": "/p",
                "backend": [{"host": [self.backend.url()], "url_pattern": "/"}],
                "extra_config": {"github.com/devopsfaith/krakend-jose/validator": {
                    "alg": "HS256", "jwk_url": format!("{}/jwks", self.keys.url()),
                    "disable_jwk_security": true}}}]});
        Sepia::start_with(config, &[], &[("SEPIA_REVOKER_TOKEN", ADMIN_TOKEN)]).await
    }
}

async fn status_of(sepia: &Sepia, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    request(
        Method::GET,
        &sepia.url("/p"),
        &[("authorization", &bearer)],
        b"",
        false,
    )
    .await
    .status
    .as_u16()
}

async fn revoke(sepia: &Sepia, query: &str, admin: &str) -> Answer {
    let bearer = format!("Bearer {admin}");
    request(
        Method::POST,
        &sepia.url(&format!("/__revoker?{query}")),
        &[("authorization", &bearer)],
        b"",
        false,
    )
    .await
}

/// Waits up to 3 s for `sepia` to answer `want` to `token`.
async fn eventually(sepia: &Sepia, token: &str, want: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if status_of(sepia, token).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_revoked_at_one_instance_is_refused_by_all() {
    let redis = TestRedis::start();
    let setup = Setup::new().await;
    let gateways = [
        setup.gateway(3, Some(&redis.url())).await,
        setup.gateway(3, Some(&redis.url())).await,
        setup.gateway(2, Some(&redis.url())).await,
    ];
    let (revoked, kept) = (token(&setup.set, "t1"), token(&setup.set, "t2"));
    for gateway in &gateways {
        assert_eq!(status_of(gateway, &revoked).await, 200);
    }
    // The admin endpoint wants its token and the revoker's claims.
    assert_eq!(
        revoke(&gateways[0], "jti=t1", "wrong-token-wrong-token")
            .await
            .status,
        401
    );
    assert_eq!(
        revoke(&gateways[0], "sub=alice", ADMIN_TOKEN).await.status,
        400
    );
    let answer = revoke(&gateways[0], "jti=t1", ADMIN_TOKEN).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["shared"], true);
    for (i, gateway) in gateways.iter().enumerate() {
        assert!(
            eventually(gateway, &revoked, 401).await,
            "gateway {i} still accepts it"
        );
        assert_eq!(status_of(gateway, &kept).await, 200, "gateway {i}");
    }
    // An instance that starts later reads what was revoked before it.
    let late = setup.gateway(3, Some(&redis.url())).await;
    assert_eq!(status_of(&late, &revoked).await, 401);
    assert_eq!(status_of(&late, &kept).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_gone_a_revocation_holds_locally_and_sharing_resumes() {
    let mut redis = TestRedis::start();
    let port = redis.port;
    let setup = Setup::new().await;
    let (a, b) = (
        setup.gateway(3, Some(&redis.url())).await,
        setup.gateway(3, Some(&redis.url())).await,
    );
    redis.stop();
    let local = token(&setup.set, "local");
    let answer = revoke(&a, "jti=local", ADMIN_TOKEN).await;
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert_eq!(answer.json()["shared"], false);
    assert!(answer.json()["error"]
        .as_str()
        .unwrap()
        .contains("this instance only"));
    assert_eq!(status_of(&a, &local).await, 401);
    assert_eq!(status_of(&b, &local).await, 200);

    let _redis = TestRedis::start_on(port);
    // The followers reconnect within their back-off; then sharing works.
    let shared = token(&setup.set, "shared");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = revoke(&a, "jti=shared", ADMIN_TOKEN).await;
        if answer.status == 200 && eventually(&b, &shared, 401).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sharing did not resume: {}",
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_redis_revocations_are_per_instance() {
    let setup = Setup::new().await;
    let (a, b) = (setup.gateway(3, None).await, setup.gateway(2, None).await);
    let revoked = token(&setup.set, "t9");
    let answer = revoke(&a, "jti=t9", ADMIN_TOKEN).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["shared"], false);
    assert_eq!(status_of(&a, &revoked).await, 401);
    assert_eq!(status_of(&b, &revoked).await, 200);
    let check = request(
        Method::GET,
        &a.url("/__revoker?jti=t9&jti=t0"),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        b"",
        false,
    )
    .await;
    assert_eq!(
        check.json(),
        json!({"revoked": {"jti-t9": true, "jti-t0": false}})
    );
}
