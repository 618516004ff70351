//! KrakenD's playground configuration (`tests/fixtures/krakend-playground`,
//! a version-2 file) served unchanged but for its addresses: its `fake_api`
//! backend from the playground's own data files, its Auth0 key set over
//! https on loopback, tokens from its `/token` endpoint and minted
//! independently for `/private/*`, and its revoker.

use std::{
    fs,
    time::{SystemTime, UNIX_EPOCH},
};

use http::Method;
use sepia_e2e::{
    artifacts::workspace_root,
    jose::{key_of, mint, public_set, split, verify},
    request, run_sepia,
    tls::TestPki,
    Answer, Reply, Sepia, TestBackend,
};
use serde_json::{json, Value};

const ADMIN_TOKEN: &str = "playground-admin-token-0123456789";

fn fixtures() -> std::path::PathBuf {
    workspace_root()
        .join("tests")
        .join("fixtures")
        .join("krakend-playground")
}

/// The playground's `fake_api`: its `data/` folder as static files.
async fn fake_api() -> TestBackend {
    let data = fixtures().join("data");
    TestBackend::start(move |r| {
        let file = data.join(r.path.trim_start_matches('/'));
        let inside = file.starts_with(&data) && !r.path.contains("..");
        match fs::read_to_string(&file) {
            Ok(text) if inside => Reply::json(200, &text),
            _ => Reply::text(404, "Not found"),
        }
    })
    .await
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn get(sepia: &Sepia, path: &str, token: Option<&str>) -> Answer {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("authorization", b)])
        .unwrap_or_default();
    request(Method::GET, &sepia.url(path), &headers, b"", false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_playground_serves_its_token_and_private_endpoints() {
    let api = fake_api().await;
    // Auth0's key set, as albert-test.auth0.com would serve it.
    let output = run_sepia(&["keygen", "--alg", "RS256", "--kid", "auth0-key"], &[]);
    assert!(output.status.success());
    let auth0_private: Value = serde_json::from_slice(&output.stdout).unwrap();
    let pki = TestPki::new();
    let auth0_public = public_set(&auth0_private).to_string();
    let auth0 = TestBackend::start_tls(pki.server_config.clone(), move |_| {
        Reply::json(200, &auth0_public)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    fs::write(&ca_file, &pki.ca_pem).unwrap();

    let text = fs::read_to_string(fixtures().join("krakend.json"))
        .unwrap()
        .replace("http://fake_api:8080", &api.url())
        .replace("https://albert-test.auth0.com", &auth0.https_url())
        // krakend-metrics' /__stats listener, on loopback.
        .replace(
            "\":8090\"",
            &format!("\"127.0.0.1:{}\"", sepia_e2e::sepia::free_port()),
        );
    let config: Value = serde_json::from_str(&text).unwrap();
    let ca = ca_file.display().to_string();
    let sepia = Sepia::start_with(
        config,
        &[],
        &[("SSL_CERT_FILE", &ca), ("SEPIA_REVOKER_TOKEN", ADMIN_TOKEN)],
    )
    .await;

    // /token: the playground's claims signed with its symmetric key, as
    // KrakenD 1.4 signs them ({"alg","kid"}).
    let symmetric: Value = serde_json::from_str(
        &fs::read_to_string(fixtures().join("data/jwk/symmetric.json")).unwrap(),
    )
    .unwrap();
    let sim2 = key_of(&symmetric, "sim2");
    let issued = get(&sepia, "/token", None).await;
    assert_eq!(issued.status, 200, "{}", issued.text());
    let body = issued.json();
    for key in ["access_token", "refresh_token"] {
        let token = body[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {body}"));
        assert_eq!(split(token).header, r#"{"alg":"HS256","kid":"sim2"}"#);
        verify(token, &sim2);
    }
    assert_eq!(body["exp"], 1735689600);
    // Its tokens expired on 2025-01-01: the validator refuses them, as
    // KrakenD does today.
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&sepia, "/private/custom", Some(&access)).await.status,
        401
    );

    // The same claims, still valid.
    let claims = |roles: Value, jti: &str| {
        json!({"aud": "http://api.example.com", "iss": "https://krakend.io",
               "sub": "1234567890qwertyuio", "jti": jti, "roles": roles, "exp": now() + 600})
    };
    let fresh = mint(
        "HS256",
        "sim2",
        &sim2,
        &claims(json!(["role_a", "role_b"]), "j1"),
    );
    let answer = get(&sepia, "/private/custom", Some(&fresh)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["id_user"], 1);
    let role_b = mint("HS256", "sim2", &sim2, &claims(json!(["role_b"]), "j2"));
    assert_eq!(
        get(&sepia, "/private/custom", Some(&role_b)).await.status,
        403
    );
    assert_eq!(get(&sepia, "/private/custom", None).await.status, 401);

    // /private/auth0: an RS256 token with Auth0's namespaced roles claim.
    let auth0_key = key_of(&auth0_private, "auth0-key");
    let auth0_token = |roles: Value| {
        mint(
            "RS256",
            "auth0-key",
            &auth0_key,
            &json!({"aud": ["http://api.example.com"], "sub": "auth0|1",
                    "http://api.example.com/custom/roles": roles, "exp": now() + 600}),
        )
    };
    let admin = auth0_token(json!(["admin"]));
    let answer = get(&sepia, "/private/auth0", Some(&admin)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        get(
            &sepia,
            "/private/auth0",
            Some(&auth0_token(json!(["guest"])))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        get(&sepia, "/private/auth0", Some(&fresh)).await.status,
        401
    );

    // The playground's revoker: its TokenKeys are ["jti"].
    let revoked = request(
        Method::POST,
        &sepia.url("/__revoker?jti=j1"),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        b"",
        false,
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(
        get(&sepia, "/private/custom", Some(&fresh)).await.status,
        401
    );
}
