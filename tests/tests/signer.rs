//! The JOSE signer end to end: the real binary, the real plugin, JWK sets
//! over http, https (test CA, pins) and files, tokens checked with
//! independent JOSE code.

use std::{
    fs,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use http::Method;
use sepia_e2e::{
    jose::{b64url, fixture_set, hs256, key_of, rs256, split, verify},
    request, run_sepia,
    tls::TestPki,
    Reply, Sepia, TestBackend,
};
use serde_json::{json, Value};

const CLAIMS: &str = r#"{"access_token":{"aud":"https://api.example.com","sub":"john","exp":1735689600,"roles":["<admin>"],"n":1.50},"refresh_token":{"sub":"john","jti":"r1"},"exp":1735689600,"note":"plain","list":[1]}"#;
/// The access token's payload as Go's encoding/json writes it, by hand.
const ACCESS_PAYLOAD: &str = r#"{"aud":"https://api.example.com","exp":1735689600,"n":1.50,"roles":["\u003cadmin\u003e"],"sub":"john"}"#;
const REFRESH_PAYLOAD: &str = r#"{"jti":"r1","sub":"john"}"#;

async fn jwk_server(set: Value) -> TestBackend {
    TestBackend::always(Reply::json(200, &set.to_string())).await
}

async fn claims_backend() -> TestBackend {
    TestBackend::always(Reply::json(201, CLAIMS)).await
}

fn token_endpoint(path: &str, backend: &TestBackend, namespace: &str, signer: Value) -> Value {
    json!({"endpoint": path, "method": "POST",
           "backend": [{"host": [backend.url()], "url_pattern": "/issue"}],
           "extra_config": {namespace: signer}})
}

async fn post(sepia: &Sepia, path: &str) -> sepia_e2e::Answer {
    request(
        Method::POST,
        &sepia.url(path),
        &[("content-type", "application/json")],
        br#"{"user":"john","pass":"doe"}"#,
        false,
    )
    .await
}

fn token(body: &Value, key: &str) -> String {
    body[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a token in {body}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn hs256_and_rs256_tokens_are_byte_identical_to_independent_ones() {
    let symmetric = fixture_set("symmetric.json");
    let private = fixture_set("private.json");
    let keys_hs = jwk_server(symmetric.clone()).await;
    let keys_rs = jwk_server(private.clone()).await;
    let backend = claims_backend().await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        token_endpoint("/hs", &backend, "auth/signer", json!({
            "alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token", "refresh_token", "note", "missing"],
            "jwk_url": format!("{}/jwk/symmetric.json", keys_hs.url()), "disable_jwk_security": true})),
        token_endpoint("/rs", &backend, "auth/signer", json!({
            "alg": "RS256", "kid": "2011-04-29", "keys_to_sign": ["access_token", "refresh_token"],
            "jwk_url": format!("{}/jwk/private.json", keys_rs.url()), "disable_jwk_security": true}))
    ]}))
    .await;

    let answer = post(&sepia, "/hs").await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let body = answer.json();
    let sim2 = key_of(&symmetric, "sim2");
    let header = b64url(r#"{"alg":"HS256","kid":"sim2","typ":"JWT"}"#);
    for (key, payload) in [
        ("access_token", ACCESS_PAYLOAD),
        ("refresh_token", REFRESH_PAYLOAD),
    ] {
        let input = format!("{header}.{}", b64url(payload));
        let expected = format!("{input}.{}", hs256(&input, &sim2));
        assert_eq!(token(&body, key), expected, "{key}");
        verify(&expected, &sim2);
    }
    // Non-objects and missing keys are left as they are; the rest passes.
    assert_eq!(body["note"], "plain");
    assert!(body.get("missing").is_none());
    assert_eq!(body["exp"], 1735689600);
    assert_eq!(body["list"], json!([1]));

    let body = post(&sepia, "/rs").await.json();
    let rsa = key_of(&private, "2011-04-29");
    let header = b64url(r#"{"alg":"RS256","kid":"2011-04-29","typ":"JWT"}"#);
    let input = format!("{header}.{}", b64url(ACCESS_PAYLOAD));
    let expected = format!("{input}.{}", rs256(&input, &rsa));
    assert_eq!(token(&body, "access_token"), expected);
    verify(&expected, &rsa);

    // No private key material in the log.
    let logs = sepia.logs();
    for secret in [
        sim2["k"].as_str().unwrap(),
        rsa["d"].as_str().unwrap(),
        rsa["p"].as_str().unwrap(),
    ] {
        assert!(!logs.contains(&secret[..20]), "key material in the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn both_spellings_and_namespaces_give_the_same_tokens() {
    let keys = jwk_server(fixture_set("symmetric.json")).await;
    let backend = claims_backend().await;
    let url = format!("{}/jwk", keys.url());
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        token_endpoint("/new", &backend, "auth/signer", json!({
            "alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token"], "jwk_url": url, "disable_jwk_security": true})),
        token_endpoint("/old", &backend, "github.com/devopsfaith/krakend-jose/signer", json!({
            "alg": "HS256", "kid": "sim2", "keys-to-sign": ["access_token"], "jwk-url": url, "disable_jwk_security": true}))
    ]}))
    .await;
    let new = post(&sepia, "/new").await.json();
    let old = post(&sepia, "/old").await.json();
    assert_eq!(new["access_token"], old["access_token"]);
    assert!(new["access_token"].as_str().unwrap().starts_with("eyJ"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_algorithm_signs_verifiable_tokens_in_both_serialisations() {
    let algs = [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
        "ES384", "ES512", "EdDSA",
    ];
    let dir = tempfile::tempdir().unwrap();
    let backend = claims_backend().await;
    let mut endpoints = Vec::new();
    let mut keys = Vec::new();
    for alg in algs {
        let kid = format!("key-{alg}");
        let output = run_sepia(&["keygen", "--alg", alg, "--kid", &kid], &[]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let set: Value = serde_json::from_slice(&output.stdout).unwrap();
        let path = dir.path().join(format!("{alg}.json"));
        fs::write(&path, &output.stdout).unwrap();
        for full in [false, true] {
            endpoints.push(token_endpoint(
                &format!("/{alg}/{full}"),
                &backend,
                "auth/signer",
                json!({
                "alg": alg, "kid": kid, "keys_to_sign": ["access_token"], "full": full,
                "jwk_local_path": path, "disable_jwk_security": true}),
            ));
        }
        keys.push((alg, kid, key_of(&set, &format!("key-{alg}"))));
    }
    let sepia = Sepia::start(json!({"version": 3, "endpoints": endpoints})).await;
    for (alg, kid, jwk) in keys {
        let compact = token(
            &post(&sepia, &format!("/{alg}/false")).await.json(),
            "access_token",
        );
        let parts = split(&compact);
        assert_eq!(
            parts.header,
            format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"JWT"}}"#)
        );
        assert_eq!(parts.payload, ACCESS_PAYLOAD);
        verify(&compact, &jwk);
        let flattened: Value = serde_json::from_str(&token(
            &post(&sepia, &format!("/{alg}/true")).await.json(),
            "access_token",
        ))
        .unwrap();
        let object = flattened.as_object().unwrap();
        assert_eq!(
            object.keys().collect::<Vec<_>>(),
            ["payload", "protected", "signature"]
        );
        let rebuilt = format!(
            "{}.{}.{}",
            flattened["protected"].as_str().unwrap(),
            flattened["payload"].as_str().unwrap(),
            flattened["signature"].as_str().unwrap()
        );
        verify(&rebuilt, &jwk);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_key_sets_use_the_test_ca_and_pins() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    fs::write(&ca_path, &pki.ca_pem).unwrap();
    let keys = TestBackend::start_tls(pki.server_config.clone(), {
        let set = fixture_set("symmetric.json").to_string();
        move |_| Reply::json(200, &set).with_header("content-type", "application/jwk-set+json")
    })
    .await;
    let backend = claims_backend().await;
    let signer = |extra: Value| {
        let mut config = json!({"alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token"],
            "jwk_url": format!("{}/keys", keys.https_url()), "jwk_startup_timeout": "1s"});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        config
    };
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        token_endpoint("/ca", &backend, "auth/signer", signer(json!({"jwk_local_ca": ca_path}))),
        token_endpoint("/pinned", &backend, "auth/signer", signer(json!({"jwk_local_ca": ca_path, "jwk_fingerprints": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", pki.server_pin]}))),
        token_endpoint("/suites", &backend, "auth/signer", signer(json!({"jwk_local_ca": ca_path, "cipher_suites": [49199, 49195, 4865]}))),
        token_endpoint("/insecure", &backend, "auth/signer", signer(json!({"disable_jwk_security": true})))
    ]}))
    .await;
    let reference = post(&sepia, "/ca").await.json()["access_token"].clone();
    assert!(reference.is_string());
    for path in ["/pinned", "/suites", "/insecure"] {
        assert_eq!(
            post(&sepia, path).await.json()["access_token"],
            reference,
            "{path}"
        );
    }
    assert!(
        sepia
            .logs()
            .contains("its server certificate is NOT verified"),
        "{}",
        sepia.logs()
    );

    let refused = |extra: Value| json!({"version": 3, "endpoints": [token_endpoint("/t", &backend, "auth/signer", signer(extra))]});
    let wrong_pin = Sepia::refused(refused(json!({"jwk_local_ca": ca_path, "jwk_fingerprints": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}))).await;
    assert!(
        wrong_pin.contains("matches the configured fingerprints"),
        "{wrong_pin}"
    );
    let untrusted = Sepia::refused(refused(json!({}))).await;
    assert!(
        untrusted.contains("UnknownIssuer") || untrusted.contains("unknown issuer"),
        "{untrusted}"
    );
    let unknown_suite = Sepia::refused(refused(
        json!({"jwk_local_ca": ca_path, "cipher_suites": [5]}),
    ))
    .await;
    assert!(
        unknown_suite.contains("cipher suite 5 (0x0005) is not supported"),
        "{unknown_suite}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_and_local_files_need_disable_jwk_security() {
    let keys = jwk_server(fixture_set("symmetric.json")).await;
    let backend = claims_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.json");
    fs::write(&file, fixture_set("symmetric.json").to_string()).unwrap();
    let http = Sepia::refused(json!({"version": 3, "endpoints": [token_endpoint("/t", &backend, "auth/signer", json!({
        "alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token"], "jwk_url": keys.url()}))]})).await;
    assert!(http.contains("endpoints[0].extra_config.\"auth/signer\": plugin jose-signer refused the configuration: insecure connection to the JWK service"), "{http}");
    assert!(http.contains("disable_jwk_security"), "{http}");
    let local = Sepia::refused(json!({"version": 3, "endpoints": [token_endpoint("/t", &backend, "auth/signer", json!({
        "alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token"], "jwk_local_path": file}))]})).await;
    assert!(
        local.contains("\"jwk_local_path\"") && local.contains("disable_jwk_security"),
        "{local}"
    );
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [token_endpoint("/t", &backend, "auth/signer", json!({
        "alg": "HS256", "kid": "sim2", "keys_to_sign": ["access_token"], "jwk_local_path": file, "disable_jwk_security": true}))]})).await;
    verify(
        &token(&post(&sepia, "/t").await.json(), "access_token"),
        &key_of(&fixture_set("symmetric.json"), "sim2"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_keys_and_settings_stop_start_up_with_the_reason() {
    let symmetric = jwk_server(fixture_set("symmetric.json")).await;
    let private = jwk_server(fixture_set("private.json")).await;
    let public = jwk_server(fixture_set("public.json")).await;
    let output = run_sepia(&["keygen", "--alg", "ES256", "--kid", "p256"], &[]);
    let p256 = jwk_server(serde_json::from_slice(&output.stdout).unwrap()).await;
    let weak = {
        use rsa::traits::{PrivateKeyParts, PublicKeyParts};
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let b = |n: &rsa::BigUint| b64url_bytes(&n.to_bytes_be());
        let primes = key.primes();
        jwk_server(json!({"keys": [{"kty": "RSA", "kid": "weak", "n": b(key.n()), "e": b(key.e()), "d": b(key.d()),
            "p": b(&primes[0]), "q": b(&primes[1])}]})).await
    };
    let unreachable = format!("http://127.0.0.1:{}/keys", sepia_e2e::sepia::free_port());
    let backend = claims_backend().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"alg": "HS256", "kid": "nope", "jwk_url": symmetric.url()}), "key \"nope\" is not in the key set"),
        (json!({"alg": "HS256", "kid": "sim1", "jwk_url": symmetric.url()}), "key \"sim1\" cannot sign HS256: it is 16 bytes long, but HS256 needs at least 32 bytes"),
        (json!({"alg": "RS256", "kid": "2011-04-29", "jwk_url": public.url()}), "it is a public key"),
        (json!({"alg": "HS256", "kid": "2011-04-29", "jwk_url": private.url()}), "its key type is RSA, but HS256 needs key type oct"),
        (json!({"alg": "ES384", "kid": "p256", "jwk_url": p256.url()}), "it is on curve P-256, but ES384 needs P-384"),
        (json!({"alg": "ES256", "kid": "1", "jwk_url": private.url()}), "marked \"use\": \"enc\""),
        (json!({"alg": "RS256", "kid": "weak", "jwk_url": weak.url()}), "it is a 1024-bit RSA key: at least 2048 bits are needed"),
        (json!({"kid": "sim2", "jwk_url": symmetric.url()}), "\"alg\" is missing"),
        (json!({"alg": "none", "kid": "sim2", "jwk_url": symmetric.url()}), "alg \"none\" would send unsigned tokens"),
        (json!({"alg": "HS257", "kid": "sim2", "jwk_url": symmetric.url()}), "alg \"HS257\" is not supported"),
        (json!({"alg": "HS256", "kid": "sim2", "jwk_url": unreachable, "jwk_startup_timeout": "1s"}), "gave up after"),
    ];
    for (signer, needle) in cases {
        let mut signer = signer;
        let object = signer.as_object_mut().unwrap();
        object.insert("keys_to_sign".into(), json!(["access_token"]));
        object.insert("disable_jwk_security".into(), json!(true));
        let err = Sepia::refused(json!({"version": 3, "endpoints": [token_endpoint("/token", &backend, "auth/signer", signer.clone())]})).await;
        assert!(err.contains(needle), "{needle}:\n{err}");
        assert!(
            err.contains("endpoints[0].extra_config.\"auth/signer\""),
            "{err}"
        );
    }
}

fn b64url_bytes(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_on_refresh_and_a_failed_refresh_keeps_the_last_good_key() {
    let first = run_sepia(&["keygen", "--alg", "HS256", "--kid", "rot"], &[]);
    let second = run_sepia(&["keygen", "--alg", "HS256", "--kid", "rot"], &[]);
    let first: Value = serde_json::from_slice(&first.stdout).unwrap();
    let second: Value = serde_json::from_slice(&second.stdout).unwrap();
    let phase = Arc::new(AtomicUsize::new(0));
    let keys = {
        let phase = phase.clone();
        let (a, b) = (first.to_string(), second.to_string());
        TestBackend::start(move |_| match phase.load(Ordering::SeqCst) {
            0 => Reply::json(200, &a),
            1 => Reply::json(200, &b),
            _ => Reply::json(503, "{}"),
        })
        .await
    };
    let backend = claims_backend().await;
    let sepia = Sepia::start(
        json!({"version": 3, "endpoints": [token_endpoint("/t", &backend, "auth/signer", json!({
        "alg": "HS256", "kid": "rot", "keys_to_sign": ["access_token"], "jwk_url": keys.url(),
        "disable_jwk_security": true, "jwk_refresh_interval": "200ms"}))]}),
    )
    .await;
    let signed_with = |token: &str, set: &Value| {
        let parts = split(token);
        hs256(&parts.signing_input, &key_of(set, "rot")) == b64url_bytes(&parts.signature)
    };
    assert!(signed_with(
        &token(&post(&sepia, "/t").await.json(), "access_token"),
        &first
    ));
    phase.store(1, Ordering::SeqCst);
    let mut rotated = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if signed_with(
            &token(&post(&sepia, "/t").await.json(), "access_token"),
            &second,
        ) {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "the new key was never used:\n{}", sepia.logs());
    phase.store(2, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(signed_with(
        &token(&post(&sepia, "/t").await.json(), "access_token"),
        &second
    ));
    assert!(
        sepia
            .logs()
            .contains("key refresh failed; signing with the last good key"),
        "{}",
        sepia.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_failures_are_never_signed() {
    let keys = jwk_server(fixture_set("symmetric.json")).await;
    let refused = TestBackend::always(Reply::json(
        401,
        r#"{"error":"bad password","sub":{"x":1}}"#,
    ))
    .await;
    let broken = TestBackend::always(Reply::json(500, CLAIMS)).await;
    let slow = TestBackend::always(Reply::json(200, CLAIMS).delayed(Duration::from_secs(3))).await;
    let collection = TestBackend::always(Reply::json(200, r#"[{"a":1}]"#)).await;
    let signer = json!({"alg": "HS256", "kid": "sim2", "keys_to_sign": ["sub"], "jwk_url": keys.url(), "disable_jwk_security": true});
    let mut slow_endpoint = token_endpoint("/slow", &slow, "auth/signer", signer.clone());
    slow_endpoint["timeout"] = json!("300ms");
    let mut collection_endpoint =
        token_endpoint("/collection", &collection, "auth/signer", signer.clone());
    collection_endpoint["output_encoding"] = json!("json-collection");
    collection_endpoint["backend"][0]["encoding"] = json!("safejson");
    // As krakend-jose's signer answers: any failure is a bare 400.
    let krakend = Sepia::start(json!({"version": 3, "endpoints": [
        token_endpoint("/refused", &refused, "auth/signer", signer.clone()),
        token_endpoint("/broken", &broken, "auth/signer", signer.clone())
    ]}))
    .await;
    for path in ["/refused", "/broken"] {
        let answer = post(&krakend, path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text());
        assert!(answer.body.is_empty(), "{path}");
        assert_eq!(answer.header("x-krakend"), None, "{path}");
        assert_eq!(answer.header("x-krakend-completed"), None, "{path}");
    }
    // Sepia's switches: the backend's 4xx whole, other failures as JSON.
    let sepia = Sepia::start(json!({"version": 3,
        "extra_config": {"sepia": {"pass_backend_errors": true, "json_errors": true}},
        "endpoints": [
        token_endpoint("/refused", &refused, "auth/signer", signer.clone()),
        token_endpoint("/broken", &broken, "auth/signer", signer.clone()),
        slow_endpoint,
        collection_endpoint
    ]}))
    .await;
    let answer = post(&sepia, "/refused").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.text(), r#"{"error":"bad password","sub":{"x":1}}"#);
    let answer = post(&sepia, "/broken").await;
    assert_eq!(answer.status, 502);
    assert!(!answer.text().contains("eyJ"));
    assert_eq!(post(&sepia, "/slow").await.status, 504);
    let answer = post(&sepia, "/collection").await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("cannot sign the response of /collection"),
        "{}",
        answer.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_public_keys_of_asymmetric_signers_are_published() {
    let private = fixture_set("private.json");
    let keys = jwk_server(private.clone()).await;
    let symmetric = jwk_server(fixture_set("symmetric.json")).await;
    let backend = claims_backend().await;
    let signer = |alg: &str, kid: &str, url: String| json!({"alg": alg, "kid": kid, "keys_to_sign": ["access_token"], "jwk_url": url, "disable_jwk_security": true});
    let endpoints = json!([
        token_endpoint(
            "/rs",
            &backend,
            "auth/signer",
            signer("RS256", "2011-04-29", keys.url())
        ),
        token_endpoint(
            "/rs-again",
            &backend,
            "auth/signer",
            signer("RS256", "2011-04-29", keys.url())
        ),
        token_endpoint(
            "/ps",
            &backend,
            "auth/signer",
            signer("PS256", "p256", keys.url())
        ),
        token_endpoint(
            "/hs",
            &backend,
            "auth/signer",
            signer("HS256", "sim2", symmetric.url())
        )
    ]);
    let sepia = Sepia::start(json!({"version": 3, "endpoints": endpoints})).await;
    let set = sepia_e2e::get(&sepia.url("/.well-known/jwks.json")).await;
    assert_eq!(set.status, 200);
    let set = set.json();
    let published = set["keys"].as_array().unwrap();
    assert_eq!(
        published.len(),
        2,
        "one entry a key, HMAC keys never: {set}"
    );
    for jwk in published {
        for private_member in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                jwk.get(private_member).is_none(),
                "{private_member} published: {jwk}"
            );
        }
    }
    let rsa_public = key_of(&set, "2011-04-29");
    verify(
        &token(&post(&sepia, "/rs").await.json(), "access_token"),
        &rsa_public,
    );
    verify(
        &token(&post(&sepia, "/ps").await.json(), "access_token"),
        &key_of(&set, "p256"),
    );
    drop(sepia);

    let sepia = Sepia::start(json!({"version": 3, "extra_config": {"sepia/jwks": {"path": "/keys"}}, "endpoints": endpoints})).await;
    assert_eq!(
        sepia_e2e::get(&sepia.url("/keys")).await.json()["keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        sepia_e2e::get(&sepia.url("/.well-known/jwks.json"))
            .await
            .status,
        404
    );
    drop(sepia);
    let sepia = Sepia::start(json!({"version": 3, "extra_config": {"sepia/jwks": {"disable": true}}, "endpoints": endpoints})).await;
    assert_eq!(
        sepia_e2e::get(&sepia.url("/.well-known/jwks.json"))
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_signs_tokens_that_verify_with_its_published_key() {
    let sepia = Sepia::start_demo().await;
    let answer = request(
        Method::POST,
        &sepia.url("/token"),
        &[],
        br#"{"user":"john","pass":"doe"}"#,
        false,
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    let body = answer.json();
    let set = sepia_e2e::get(&sepia.url("/.well-known/jwks.json"))
        .await
        .json();
    let public = key_of(&set, "demo");
    for key in ["access_token", "refresh_token"] {
        let token = token(&body, key);
        verify(&token, &public);
        let claims: Value = serde_json::from_str(&split(&token).payload).unwrap();
        assert_eq!(claims["sub"], "john");
    }
    let refused = request(
        Method::POST,
        &sepia.url("/token"),
        &[],
        br#"{"user":"john","pass":"nope"}"#,
        false,
    )
    .await;
    assert_eq!(refused.status, 401);
    assert!(refused.text().contains("invalid credentials"));
}

#[tokio::test(flavor = "multi_thread")]
async fn version_2_files_get_krakend_1_tokens_and_no_lura_headers() {
    let symmetric = fixture_set("symmetric.json");
    let keys = jwk_server(symmetric.clone()).await;
    let backend = claims_backend().await;
    let signer = json!({"alg": "HS256", "kid": "sim2", "keys-to-sign": ["access_token"],
        "jwk-url": format!("{}/jwk/symmetric.json", keys.url()), "disable_jwk_security": true});
    let sepia = Sepia::start(json!({"version": 2, "endpoints": [
        token_endpoint("/hs", &backend, "github.com/devopsfaith/krakend-jose/signer", signer)
    ]}))
    .await;
    let answer = post(&sepia, "/hs").await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    // krakend-jose's signer writes its own answer: no completeness mark.
    assert_eq!(answer.header("x-krakend-completed"), None);
    // krakend-jose 1.4's header: {"alg","kid"}, no typ.
    let header = b64url(r#"{"alg":"HS256","kid":"sim2"}"#);
    let input = format!("{header}.{}", b64url(ACCESS_PAYLOAD));
    let sim2 = key_of(&symmetric, "sim2");
    let expected = format!("{input}.{}", hs256(&input, &sim2));
    assert_eq!(token(&answer.json(), "access_token"), expected);
    verify(&expected, &sim2);
}
