//! `sepia demo`: the quick start in one command. Runs an example
//! token-issuing backend, makes an example RS256 key, and serves
//! `config/examples/token.json` with both, so that
//! `curl -X POST localhost:8080/token -d '{"user":"john","pass":"doe"}'`
//! answers with signed tokens.

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::startup::{self, RunOptions, StartupError};

/// The example configuration the demo serves.
const TEMPLATE: &str = include_str!("../../config/examples/token.json");
/// The example users and their passwords.
const USERS: &[(&str, &str)] = &[("john", "doe"), ("jane", "secret")];

static ISSUED: AtomicU64 = AtomicU64::new(0);

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Writing the example files failed.
    #[error("cannot prepare the demo in {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The example backend could not listen.
    #[error("cannot start the example backend: {0}")]
    Backend(std::io::Error),
    /// The example key could not be made.
    #[error(transparent)]
    Key(#[from] crate::keygen::KeygenError),
    /// The embedded example configuration is not what the demo expects.
    #[error("the example configuration is broken: {0}")]
    Template(String),
    /// The gateway did not start.
    #[error(transparent)]
    Gateway(#[from] StartupError),
}

fn claims(user: &str) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let serial = ISSUED.fetch_add(1, Ordering::Relaxed);
    json!({
        "access_token": {
            "aud": "http://api.example.com",
            "iss": "http://sepia.example.com",
            "sub": user,
            "jti": format!("access-{now}-{serial}"),
            "roles": ["user"],
            "iat": now,
            "exp": now + 3600
        },
        "refresh_token": {
            "aud": "http://api.example.com",
            "iss": "http://sepia.example.com",
            "sub": user,
            "jti": format!("refresh-{now}-{serial}"),
            "iat": now,
            "exp": now + 86_400
        },
        "exp": now + 3600
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(sepia_json::to_vec(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The example backend: `POST /issue` with `{"user","pass"}` returns plain
/// claims for a known user, 401 otherwise.
async fn issue(request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::POST || request.uri().path() != "/issue" {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "POST /issue"}));
    }
    let body = match Limited::new(request.into_body(), 64 * 1024).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "unreadable body"}),
            )
        }
    };
    let credentials: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let user = credentials["user"].as_str().unwrap_or("");
    let pass = credentials["pass"].as_str().unwrap_or("");
    if USERS.iter().any(|(u, p)| *u == user && *p == pass) {
        json_response(StatusCode::CREATED, &claims(user))
    } else {
        json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid credentials: try {\"user\":\"john\",\"pass\":\"doe\"}"}),
        )
    }
}

async fn start_backend() -> Result<SocketAddr, DemoError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(DemoError::Backend)?;
    let address = listener.local_addr().map_err(DemoError::Backend)?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    service_fn(|request| async move { Ok::<_, Infallible>(issue(request).await) });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, DemoError> {
    std::fs::write(&path, bytes).map_err(|source| DemoError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The example configuration pointed at the running backend and the key.
fn configuration(
    backend: SocketAddr,
    key_path: &std::path::Path,
    port: u16,
) -> Result<Value, DemoError> {
    let mut config: Value =
        serde_json::from_str(TEMPLATE).map_err(|e| DemoError::Template(e.to_string()))?;
    let endpoint = config
        .pointer_mut("/endpoints/0")
        .ok_or_else(|| DemoError::Template("no endpoint".into()))?;
    endpoint["backend"][0]["host"] = json!([format!("http://{backend}")]);
    let signer = endpoint
        .pointer_mut("/extra_config/auth~1signer")
        .ok_or_else(|| DemoError::Template("no auth/signer".into()))?;
    signer["jwk_local_path"] = json!(key_path);
    config["port"] = json!(port);
    // A demo with a throw-away key is for this machine only.
    config["listen_ip"] = json!("127.0.0.1");
    Ok(config)
}

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(port: u16) -> Result<(), DemoError> {
    let folder = std::env::temp_dir().join(format!("sepia-demo-{}", std::process::id()));
    std::fs::create_dir_all(&folder).map_err(|source| DemoError::Io {
        path: folder.clone(),
        source,
    })?;
    let backend = start_backend().await?;
    let key = crate::keygen::generate("RS256", "demo")?;
    let key_path = write(
        folder.join("demo-private.json"),
        &sepia_json::to_vec(&key.private_set),
    )?;
    let config = configuration(backend, &key_path, port)?;
    let config_path = write(folder.join("token.json"), &sepia_json::to_vec(&config))?;
    println!("Sepia demo: example token backend on http://{backend}, example RS256 key \"demo\".");
    println!("Try:");
    println!("  curl -X POST localhost:{port}/token -d '{{\"user\":\"john\",\"pass\":\"doe\"}}'");
    println!("  curl localhost:{port}/.well-known/jwks.json");
    println!(
        "Configuration: {} (from config/examples/token.json). Ctrl-C stops.",
        config_path.display()
    );
    let result = startup::run(RunOptions {
        config: config_path,
        port: Some(port),
        allow_insecure_plugins: false,
        shutdown_timeout: Duration::from_secs(5),
        watch: false,
        builtins: Vec::new(),
    })
    .await;
    let _ = std::fs::remove_dir_all(&folder);
    result.map_err(DemoError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_adapted_and_stays_a_valid_configuration() {
        let config = configuration(
            "127.0.0.1:9".parse().unwrap(),
            std::path::Path::new("/tmp/k.json"),
            8088,
        )
        .unwrap();
        assert_eq!(
            config["endpoints"][0]["backend"][0]["host"][0],
            "http://127.0.0.1:9"
        );
        assert_eq!(
            config["endpoints"][0]["extra_config"]["auth/signer"]["jwk_local_path"],
            "/tmp/k.json"
        );
        let loaded = sepia_config::parse_str(&config.to_string(), true).unwrap();
        assert_eq!(loaded.config.port, 8088);
    }

    #[test]
    fn claims_carry_the_user() {
        let c = claims("john");
        assert_eq!(c["access_token"]["sub"], "john");
        assert!(c["refresh_token"]["exp"].as_u64() > c["access_token"]["exp"].as_u64());
    }
}
