//! The JOSE validator end to end: the real binary and plugins, key sets
//! served over http by a test backend, tokens minted independently
//! (jsonwebtoken, RustCrypto p521) and by Sepia's own signer.

use std::{
    fs,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::Method;
use sepia_e2e::{
    jose::{b64url, key_of, mint, public_set},
    request, run_sepia, Answer, Reply, Sepia, TestBackend,
};
use serde_json::{json, Value};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A private JWK set from `sepia keygen`.
fn keygen(alg: &str, kid: &str) -> Value {
    let output = run_sepia(&["keygen", "--alg", alg, "--kid", kid], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("key set")
}

async fn jwk_server(set: Value) -> TestBackend {
    TestBackend::always(Reply::json(200, &set.to_string())).await
}

/// A backend that echoes the path and headers it received.
async fn echo_backend() -> TestBackend {
    TestBackend::start(|r| {
        let headers: serde_json::Map<String, Value> = r
            .headers
            .keys()
            .map(|name| {
                let values: Vec<Value> = r
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|v| Value::String(v.to_str().unwrap_or("?").to_owned()))
                    .collect();
                (name.as_str().to_owned(), Value::Array(values))
            })
            .collect();
        Reply::json(
            200,
            &json!({"path": r.path, "headers": headers}).to_string(),
        )
    })
    .await
}

fn protected(path: &str, backend: &TestBackend, validator: Value) -> Value {
    json!({"endpoint": path,
           "backend": [{"host": [backend.url()], "url_pattern": "/echo"}],
           "extra_config": {"auth/validator": validator}})
}

async fn call(sepia: &Sepia, path: &str, headers: &[(&str, &str)]) -> Answer {
    request(Method::GET, &sepia.url(path), headers, b"", false).await
}

async fn with_token(sepia: &Sepia, path: &str, token: &str) -> Answer {
    let bearer = format!("Bearer {token}");
    call(sepia, path, &[("authorization", &bearer)]).await
}

/// KrakenD's refusal: the status, an empty body, no content type.
fn assert_refused(answer: &Answer, status: u16, what: &str) {
    assert_eq!(answer.status.as_u16(), status, "{what}: {}", answer.text());
    assert!(answer.body.is_empty(), "{what}: {}", answer.text());
    assert_eq!(answer.header("content-type"), None, "{what}");
    assert_eq!(answer.header("x-krakend-completed"), None, "{what}");
}

fn claims() -> Value {
    json!({"sub": "alice", "iss": "https://idp.example", "aud": ["https://api.example"],
           "exp": now() + 600, "roles": ["user", "admin"], "scope": "read write"})
}

#[tokio::test(flavor = "multi_thread")]
async fn every_algorithm_family_accepts_its_tokens_and_nothing_else() {
    let algs = [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
        "ES384", "ES512", "EdDSA",
    ];
    let backend = echo_backend().await;
    let mut servers = Vec::new();
    let mut endpoints = Vec::new();
    let mut keys = Vec::new();
    for alg in algs {
        let kid = format!("key-{alg}");
        let private = keygen(alg, &kid);
        let server = jwk_server(public_set(&private)).await;
        endpoints.push(protected(
            &format!("/{alg}"),
            &backend,
            json!({"alg": alg, "jwk_url": format!("{}/jwks", server.url()),
                   "disable_jwk_security": true,
                   "issuer": "https://idp.example", "audience": ["https://api.example"]}),
        ));
        keys.push((alg, kid.clone(), key_of(&private, &kid)));
        servers.push(server);
    }
    let sepia = Sepia::start(json!({"version": 3, "endpoints": endpoints})).await;
    let hs_secret = keys[0].2.clone();
    for (alg, kid, jwk) in &keys {
        let path = format!("/{alg}");
        let token = mint(alg, kid, jwk, &claims());
        let answer = with_token(&sepia, &path, &token).await;
        assert_eq!(answer.status, 200, "{alg}: {}", answer.text());
        assert_eq!(answer.json()["path"], "/echo", "{alg}");

        // The payload changed under the same signature.
        let mut pieces: Vec<&str> = token.split('.').collect();
        let mut tampered_claims = claims();
        tampered_claims["roles"] = json!(["root"]);
        let tampered_payload = b64url(&tampered_claims.to_string());
        pieces[1] = &tampered_payload;
        let answer = with_token(&sepia, &path, &pieces.join(".")).await;
        assert_refused(&answer, 401, &format!("{alg} tampered"));

        // Unsigned.
        let none_header = b64url(&json!({"alg": "none", "kid": kid}).to_string());
        let unsigned = format!("{none_header}.{}.", b64url(&claims().to_string()));
        assert_refused(&with_token(&sepia, &path, &unsigned).await, 401, "alg none");

        // Another algorithm, or another family's key.
        if *alg != "HS256" {
            let other = mint("HS256", kid, &hs_secret, &claims());
            assert_refused(
                &with_token(&sepia, &path, &other).await,
                401,
                &format!("HS256 token at {alg}"),
            );
        }
    }
    // The classic confusion: an RSA public key's modulus used as an HMAC
    // secret, with the header claiming HS256, at an RS256 endpoint.
    let rsa = &keys.iter().find(|k| k.0 == "RS256").unwrap().2;
    let forged = mint("HS256", "key-RS256", &json!({"k": rsa["n"]}), &claims());
    assert_refused(
        &with_token(&sepia, "/RS256", &forged).await,
        401,
        "RSA key as HMAC secret",
    );
}

/// One HS256 key set on a server, and a validator per case.
struct Fixture {
    sepia: Sepia,
    backend: TestBackend,
    secret: Value,
    _keys: TestBackend,
}

async fn fixture(version: u64, cases: &[(&str, Value)]) -> Fixture {
    let private = keygen("HS256", "k1");
    let keys = jwk_server(private.clone()).await;
    let backend = echo_backend().await;
    let endpoints: Vec<Value> = cases
        .iter()
        .map(|(path, extra)| {
            let mut validator = json!({"alg": "HS256", "jwk_url": format!("{}/jwks", keys.url()),
                                       "disable_jwk_security": true});
            for (k, v) in extra.as_object().expect("object") {
                validator[k] = v.clone();
            }
            protected(path, &backend, validator)
        })
        .collect();
    let sepia = Sepia::start(json!({"version": version, "endpoints": endpoints})).await;
    Fixture {
        sepia,
        backend,
        secret: key_of(&private, "k1"),
        _keys: keys,
    }
}

impl Fixture {
    fn token(&self, claims: &Value) -> String {
        mint("HS256", "k1", &self.secret, claims)
    }

    async fn get(&self, path: &str, claims: &Value) -> Answer {
        with_token(&self.sepia, path, &self.token(claims)).await
    }
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().expect("object") {
        if v.is_null() {
            claims.as_object_mut().expect("object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

#[tokio::test(flavor = "multi_thread")]
async fn each_refusal_has_krakends_status_and_an_empty_body() {
    let f = fixture(
        3,
        &[
            (
                "/strict",
                json!({"issuer": "https://idp.example", "audience": ["https://api.example"]}),
            ),
            ("/admins", json!({"roles": ["admin", "ops"]})),
            ("/root", json!({"roles": ["root"]})),
            (
                "/nested",
                json!({"roles": ["admin"], "roles_key": "realm.roles", "roles_key_is_nested": true}),
            ),
            ("/any", json!({"scopes_key": "scope", "scopes": ["write", "delete"]})),
            (
                "/all",
                json!({"scopes_key": "scope", "scopes": ["read", "delete"], "scopes_matcher": "all"}),
            ),
            (
                "/all-array",
                json!({"scopes_key": "scp", "scopes": ["read", "write"], "scopes_matcher": "all"}),
            ),
        ],
    )
    .await;
    let good = claims();
    assert_eq!(f.get("/strict", &good).await.status, 200);
    for (what, claims) in [
        ("expired", with(good.clone(), json!({"exp": now() - 30}))),
        (
            "not yet valid",
            with(good.clone(), json!({"nbf": now() + 60})),
        ),
        (
            "wrong issuer",
            with(good.clone(), json!({"iss": "https://evil.example"})),
        ),
        (
            "wrong audience",
            with(good.clone(), json!({"aud": "https://other.example"})),
        ),
        ("no audience", with(good.clone(), json!({"aud": null}))),
        (
            "mistyped exp",
            with(good.clone(), json!({"exp": "tomorrow"})),
        ),
    ] {
        assert_refused(&f.get("/strict", &claims).await, 401, what);
    }
    let wrong_kid = mint("HS256", "k2", &f.secret, &good);
    assert_refused(
        &with_token(&f.sepia, "/strict", &wrong_kid).await,
        401,
        "unknown kid",
    );
    assert_refused(&call(&f.sepia, "/strict", &[]).await, 401, "no token");
    assert_refused(
        &with_token(&f.sepia, "/strict", "a.bad.token").await,
        401,
        "malformed",
    );

    assert_eq!(f.get("/admins", &good).await.status, 200);
    assert_refused(&f.get("/root", &good).await, 403, "missing role");
    let nested = with(good.clone(), json!({"realm": {"roles": ["admin"]}}));
    assert_eq!(f.get("/nested", &nested).await.status, 200);
    assert_refused(&f.get("/nested", &good).await, 403, "missing nested role");

    assert_eq!(f.get("/any", &good).await.status, 200);
    assert_refused(&f.get("/all", &good).await, 403, "one scope of two");
    let both = with(good.clone(), json!({"scope": "delete read"}));
    assert_eq!(f.get("/all", &both).await.status, 200);
    let array = with(good.clone(), json!({"scp": ["write", "read"]}));
    assert_eq!(f.get("/all-array", &array).await.status, 200);
    let short = with(good.clone(), json!({"scp": ["write"]}));
    assert_refused(&f.get("/all-array", &short).await, 403, "array scopes");
    // No backend saw a refused request.
    assert_eq!(f.backend.requests().len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_come_from_the_configured_header_or_cookie() {
    let f = fixture(
        3,
        &[
            ("/default", json!({})),
            (
                "/custom",
                json!({"auth_header_name": "X-Token", "cookie_key": "session"}),
            ),
        ],
    )
    .await;
    let token = f.token(&claims());
    let cookie = format!("theme=dark; access_token={token}");
    assert_eq!(
        call(&f.sepia, "/default", &[("cookie", &cookie)])
            .await
            .status,
        200
    );
    let bare = token.clone();
    assert_eq!(
        call(&f.sepia, "/default", &[("authorization", &bare)])
            .await
            .status,
        200
    );
    assert_eq!(
        call(&f.sepia, "/custom", &[("x-token", &bare)])
            .await
            .status,
        200
    );
    let session = format!("session={token}");
    assert_eq!(
        call(&f.sepia, "/custom", &[("cookie", &session)])
            .await
            .status,
        200
    );
    // A header that is there but holds no token is not passed over for the
    // cookie (go-auth0's order).
    let answer = call(
        &f.sepia,
        "/default",
        &[("authorization", "Basic eDp5"), ("cookie", &cookie)],
    )
    .await;
    assert_refused(&answer, 401, "basic auth and a cookie");
    assert_refused(
        &call(&f.sepia, "/custom", &[("cookie", &cookie)]).await,
        401,
        "wrong cookie",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_2_file_takes_bearer_tokens_only_and_a_minute_of_leeway() {
    let f = fixture(2, &[("/v2", json!({}))]).await;
    let token = f.token(&claims());
    let bare = call(&f.sepia, "/v2", &[("authorization", &token)]).await;
    assert_refused(&bare, 401, "a bare token in a version-2 file");
    let late = with(claims(), json!({"exp": now() - 30}));
    assert_eq!(
        f.get("/v2", &late).await.status,
        200,
        "within go-auth0's minute"
    );
    let later = with(claims(), json!({"exp": now() - 120}));
    assert_refused(&f.get("/v2", &later).await, 401, "past the minute");
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_reach_the_backends_as_headers_and_in_the_url() {
    let private = keygen("HS256", "k1");
    let keys = jwk_server(private.clone()).await;
    let backend = echo_backend().await;
    let validator = |version: u64| {
        let mut v = json!({"alg": "HS256", "jwk_url": format!("{}/jwks", keys.url()),
                           "disable_jwk_security": true});
        let key = if version >= 3 {
            "propagate_claims"
        } else {
            "propagate-claims"
        };
        v[key] = json!([
            ["sub", "x-user"],
            ["realm.tier", "x-tier"],
            ["roles", "x-roles"],
            ["n", "x-n"],
            ["missing", "x-missing"]
        ]);
        v
    };
    let endpoint = |version: u64| {
        json!({"endpoint": "/me/{id}", "input_headers": ["X-Trace"],
               "backend": [{"host": [backend.url()], "url_pattern": "/users/{JWT.sub}/{id}/{JWT.n}/{JWT.nope}"}],
               "extra_config": {"auth/validator": validator(version)}})
    };
    let token = mint(
        "HS256",
        "k1",
        &key_of(&private, "k1"),
        &json!({"sub": "alice", "realm": {"tier": "gold"}, "roles": ["a", "b"], "n": 42,
                "exp": now() + 600}),
    );
    let bearer = format!("Bearer {token}");
    for version in [3, 2] {
        let sepia =
            Sepia::start(json!({"version": version, "endpoints": [endpoint(version)]})).await;
        let answer = call(
            &sepia,
            "/me/7",
            &[
                ("authorization", &bearer),
                ("x-user", "mallory"),
                ("x-missing", "forged"),
                ("x-trace", "t1"),
                ("x-other", "o"),
            ],
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let seen = answer.json();
        let number = if version >= 3 { "42" } else { "42.000000" };
        assert_eq!(
            seen["path"],
            format!("/users/alice/7/{number}/%7B%7B.JWT.nope%7D%7D"),
            "version {version}"
        );
        let headers = &seen["headers"];
        assert_eq!(headers["x-user"], json!(["alice"]), "version {version}");
        assert_eq!(headers["x-tier"], json!(["gold"]));
        assert_eq!(headers["x-roles"], json!(["a,b"]));
        assert_eq!(headers["x-n"], json!([number]));
        assert_eq!(headers["x-trace"], json!(["t1"]));
        // The client's own header never stands for a claim the token lacks.
        let missing = if version >= 3 {
            json!([""])
        } else {
            Value::Null
        };
        assert_eq!(headers["x-missing"], missing, "version {version}");
        // Headers the endpoint does not forward stay behind, the token too.
        assert_eq!(headers["authorization"], Value::Null);
        assert_eq!(headers["x-other"], Value::Null);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_sepias_own_signer_open_the_protected_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let private = keygen("RS256", "signing-key");
    let private_path = dir.path().join("private.json");
    fs::write(&private_path, private.to_string()).unwrap();
    let public_path = dir.path().join("public.json");
    fs::write(&public_path, public_set(&private).to_string()).unwrap();
    let claims_backend = TestBackend::always(Reply::json(
        200,
        &json!({"access_token": {"sub": "bob", "roles": ["reader"], "exp": now() + 600}})
            .to_string(),
    ))
    .await;
    let backend = echo_backend().await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/token", "method": "POST",
         "backend": [{"host": [claims_backend.url()], "url_pattern": "/claims"}],
         "extra_config": {"auth/signer": {"alg": "RS256", "kid": "signing-key",
            "keys_to_sign": ["access_token"], "jwk_local_path": private_path,
            "disable_jwk_security": true}}},
        {"endpoint": "/private", "backend": [{"host": [backend.url()], "url_pattern": "/echo"}],
         "extra_config": {"auth/validator": {"alg": "RS256", "roles": ["reader"],
            "jwk_local_path": public_path, "disable_jwk_security": true}}}
    ]}))
    .await;
    let issued = request(Method::POST, &sepia.url("/token"), &[], b"{}", false)
        .await
        .json();
    let token = issued["access_token"].as_str().expect("a token").to_owned();
    assert_eq!(with_token(&sepia, "/private", &token).await.status, 200);
    assert_refused(&call(&sepia, "/private", &[]).await, 401, "no token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_is_fetched_once_and_unknown_kids_cannot_force_fetches() {
    let old = keygen("ES256", "old");
    let new = keygen("ES256", "new");
    let served = Arc::new(Mutex::new(public_set(&old)));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (set, count) = (served.clone(), fetches.clone());
    let keys = TestBackend::start(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
        Reply::json(200, &set.lock().unwrap().to_string())
    })
    .await;
    let backend = echo_backend().await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [protected("/p", &backend,
        json!({"alg": "ES256", "jwk_url": format!("{}/jwks", keys.url()), "disable_jwk_security": true,
               "failed_jwk_key_cooldown": "2s", "jwk_refresh_interval": "1h"}))]}))
    .await;
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "the set is fetched at start-up"
    );
    let old_token = mint("ES256", "old", &key_of(&old, "old"), &claims());
    assert_eq!(with_token(&sepia, "/p", &old_token).await.status, 200);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "known keys need no fetch"
    );

    // The identity provider rotates: the new key appears in its set.
    let mut both = public_set(&old);
    both["keys"]
        .as_array_mut()
        .unwrap()
        .extend(public_set(&new)["keys"].as_array().unwrap().iter().cloned());
    *served.lock().unwrap() = both;
    let new_token = mint("ES256", "new", &key_of(&new, "new"), &claims());
    assert_eq!(with_token(&sepia, "/p", &new_token).await.status, 200);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "one fetch for the new key"
    );

    // Made-up kids: at most one fetch per cooldown, however many requests
    // (the rotation's fetch just started one).
    let forged_key = keygen("ES256", "forged");
    for i in 0..20 {
        let kid = format!("made-up-{i}");
        let forged = mint("ES256", &kid, &key_of(&forged_key, "forged"), &claims());
        assert_refused(&with_token(&sepia, "/p", &forged).await, 401, "made-up kid");
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "no fetch within the cooldown"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for i in 0..5 {
        let kid = format!("made-up-late-{i}");
        let forged = mint("ES256", &kid, &key_of(&forged_key, "forged"), &claims());
        assert_refused(&with_token(&sepia, "/p", &forged).await, 401, "made-up kid");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 3, "one after the cooldown");
}

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_or_misspelt_validators_stop_start_up_with_the_reason() {
    let backend = echo_backend().await;
    for (validator, needle) in [
        (
            json!({"alg": "RS256", "jwk_url": "http://127.0.0.1:1/jwks"}),
            "insecure connection",
        ),
        (
            json!({"alg": "none", "jwk_url": "https://idp/jwks"}),
            "would accept unsigned tokens",
        ),
        (
            json!({"alg": "RS256", "jwk_url": "https://idp/jwks", "roles_kye": "x"}),
            "unknown setting \"roles_kye\"",
        ),
    ] {
        let logs = Sepia::refused(
            json!({"version": 3, "endpoints": [protected("/p", &backend, validator)]}),
        )
        .await;
        assert!(logs.contains(needle), "{needle}: {logs}");
    }
    let logs = Sepia::refused(json!({"version": 3, "endpoints": [
        {"endpoint": "/p", "backend": [{"host": [backend.url()], "url_pattern": "/u/{JWT.sub}"}]}]}))
    .await;
    assert!(logs.contains("validates no token"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_removed_from_the_set_stops_its_tokens_even_remembered_ones() {
    let old = keygen("RS256", "old");
    let new = keygen("RS256", "new");
    let mut both = public_set(&old);
    both["keys"]
        .as_array_mut()
        .unwrap()
        .extend(public_set(&new)["keys"].as_array().unwrap().iter().cloned());
    let served = Arc::new(Mutex::new(both));
    let set = served.clone();
    let keys =
        TestBackend::start(move |_| Reply::json(200, &set.lock().unwrap().to_string())).await;
    let backend = echo_backend().await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [protected("/p", &backend,
        json!({"alg": "RS256", "jwk_url": format!("{}/jwks", keys.url()), "disable_jwk_security": true,
               "jwk_refresh_interval": "300ms"}))]}))
    .await;
    let old_token = mint("RS256", "old", &key_of(&old, "old"), &claims());
    let new_token = mint("RS256", "new", &key_of(&new, "new"), &claims());
    // Twice each: the second use is answered from the verified-token cache.
    for _ in 0..2 {
        assert_eq!(with_token(&sepia, "/p", &old_token).await.status, 200);
        assert_eq!(with_token(&sepia, "/p", &new_token).await.status, 200);
    }
    // The provider drops the leaked key.
    *served.lock().unwrap() = public_set(&new);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_refused(
        &with_token(&sepia, "/p", &old_token).await,
        401,
        "a dropped key",
    );
    assert_eq!(with_token(&sepia, "/p", &new_token).await.status, 200);
    // An expiring token is refused once its time is up, remembered or not.
    let short = with(claims(), json!({"exp": now() + 1}));
    let short_token = mint("RS256", "new", &key_of(&new, "new"), &short);
    assert_eq!(with_token(&sepia, "/p", &short_token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_refused(
        &with_token(&sepia, "/p", &short_token).await,
        401,
        "expired since",
    );
}
