//! KrakenD CE's integration suite, run against Sepia: the mock backend of
//! upstream's `tests/integration.go` (Go's `http.ServeMux` routes), and the
//! suite's configuration and specs with their ports moved, for `sepia e2e`
//! to run. Written from upstream's harness; its code is not copied.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Map, Value};

use crate::{Recorded, Reply, TestBackend};

/// The copied fixtures (`tests/fixtures/krakend-ce`).
pub fn fixtures() -> PathBuf {
    crate::artifacts::workspace_root()
        .join("tests")
        .join("fixtures")
        .join("krakend-ce")
}

/// Go's canonical header name (`x-forwarded-host` is `X-Forwarded-Host`).
pub fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// Go's `json.Encoder`: sorted keys, HTML-safe escapes, a trailing newline.
fn go_encode(value: &Value) -> String {
    let mut text = sepia_json::to_string(value);
    text.push('\n');
    text
}

/// `url.Values` of a raw query, as Go parses it.
fn query_values(query: Option<&str>) -> Value {
    let mut values: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        values
            .entry(unescape(key))
            .or_default()
            .push(Value::String(unescape(value)));
    }
    Value::Object(
        values
            .into_iter()
            .map(|(k, v)| (k, Value::Array(v)))
            .collect(),
    )
}

fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(byte) => {
                    out.push(byte);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The echo of `/param_forwarding/`: path, query, headers (less
/// `X-Forwarded-For`, and as Go's server leaves them in `r.Header`: without
/// `Host` or `Transfer-Encoding`), `foo`, and the body with `dump_body=1`.
fn echo(request: &Recorded) -> Reply {
    let mut headers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, value) in &request.headers {
        if name == "x-forwarded-for" || name == "host" || name == "transfer-encoding" {
            continue;
        }
        headers
            .entry(canonical_header(name.as_str()))
            .or_default()
            .push(Value::String(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
    }
    let query = query_values(request.query.as_deref());
    let mut body = Map::new();
    body.insert("path".into(), Value::String(request.path.clone()));
    body.insert(
        "headers".into(),
        Value::Object(
            headers
                .into_iter()
                .map(|(k, v)| (k, Value::Array(v)))
                .collect(),
        ),
    );
    body.insert("foo".into(), Value::from(42));
    let dump = query["dump_body"]
        .as_array()
        .and_then(|v| v.first())
        .and_then(Value::as_str)
        == Some("1");
    body.insert("query".into(), query);
    if dump {
        body.insert(
            "body".into(),
            Value::String(String::from_utf8_lossy(&request.body).into_owned()),
        );
    }
    Reply::json(200, &go_encode(&Value::Object(body)))
        .with_header("set-cookie", "test1=test1")
        .with_header("set-cookie", "test2=test2")
}

/// Upstream's `checkXForwardedFor`: one loopback address, or a 400.
fn forwarded_from_loopback(request: &Recorded) -> bool {
    request
        .header("x-forwarded-for")
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<user type="admin">
  <name>Elliot</name>
  <social>
    <facebook>https://facebook.com</facebook>
    <twitter>https://twitter.com</twitter>
    <youtube>https://youtube.com</youtube>
  </social>
</user>"#;

const SYMMETRIC_JWK: &str = r#"{
  "keys": [
    {
      "kty": "oct",
      "alg": "A128KW",
      "k": "GawgguFyGrWKav7AX4VKUg",
      "kid": "sim1"
    },
    {
      "kty": "oct",
      "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
      "kid": "sim2",
      "alg": "HS256"
    }
  ]
}"#;

/// Go's `http.Error`.
fn go_error(status: u16, message: &str) -> Reply {
    Reply::text(status, &format!("{message}\n"))
        .with_content_type("text/plain; charset=utf-8")
        .with_header("x-content-type-options", "nosniff")
}

/// A feed as showRSS serves one (the suite reads the live showrss.info;
/// the tests stay on loopback, so the mock stands in for it).
fn show_rss(title: &str) -> Reply {
    let feed = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{title}</title><link>http://showrss.info</link>
<description>{title}</description>
<item><title>An episode</title><link>http://showrss.info/e/1</link><guid>1</guid>
<pubDate>Mon, 02 Jan 2006 15:04:05 +0000</pubDate></item>
</channel></rss>"#
    );
    Reply::text(200, &feed).with_content_type("application/rss+xml; charset=utf-8")
}

fn mock(request: &Recorded) -> Reply {
    let path = request.path.as_str();
    if path == "/jwk/symmetric" {
        return Reply::json(200, SYMMETRIC_JWK);
    }
    // showrss.info's two feeds.
    if path.starts_with("/user/schedule/") && path.ends_with(".rss") {
        return show_rss("showRSS schedule feed");
    }
    if path.starts_with("/user/") && path.ends_with(".rss") {
        return show_rss("showRSS personal feed");
    }
    // Go's ServeMux sends a subtree's bare name to the subtree (301).
    if ["/param_forwarding", "/collection", "/delayed", "/redirect"].contains(&path) {
        let mut location = format!("{path}/");
        if let Some(query) = &request.query {
            location.push('?');
            location.push_str(query);
        }
        let body = if request.method == "GET" || request.method == "HEAD" {
            format!("<a href=\"{location}\">Moved Permanently</a>.\n\n")
        } else {
            String::new()
        };
        return Reply::text(301, &body)
            .with_content_type("text/html; charset=utf-8")
            .with_header("location", &location);
    }
    let routed = path.starts_with("/param_forwarding/")
        || path == "/xml"
        || path.starts_with("/collection/")
        || path.starts_with("/delayed/")
        || path.starts_with("/redirect/");
    if !routed {
        return go_error(404, "404 page not found");
    }
    if !forwarded_from_loopback(request) {
        return go_error(400, "invalid X-Forwarded-For");
    }
    if path == "/xml" {
        return Reply::text(200, XML).with_content_type("application/xml; charset=utf-8");
    }
    if path.starts_with("/collection/") {
        let items: Vec<Value> = (0..10)
            .map(|i| serde_json::json!({"path": path, "i": i}))
            .collect();
        return Reply::json(200, &go_encode(&Value::Array(items)));
    }
    if path.starts_with("/delayed/") {
        return echo(request).delayed(Duration::from_millis(200));
    }
    if path.starts_with("/redirect/") {
        let query = query_values(request.query.as_deref());
        let status = query["status"]
            .as_array()
            .and_then(|v| v.first())
            .and_then(Value::as_str)
            .unwrap_or("301");
        let Ok(code) = status.parse::<u16>() else {
            return go_error(400, "invalid status");
        };
        let mut location = "/param_forwarding/".to_owned();
        if let Some(q) = &request.query {
            location.push('?');
            location.push_str(q);
        }
        return Reply::text(code, "").with_header("location", &location);
    }
    echo(request)
}

/// Upstream's mock backend, on a free port.
pub async fn mock_backend() -> TestBackend {
    TestBackend::start(mock).await
}

/// The suite's configuration with its ports moved: the gateway's to
/// `gateway`, the mock backend's to `backend`, the metrics' to `metrics`;
/// `debug_endpoint` on, as `krakend run -d` turns it on. The Lua sources'
/// relative paths, which upstream reads from its tests' folder, point at
/// the copied scripts.
pub fn config(gateway: u16, backend: u16, metrics: u16) -> Value {
    let text = std::fs::read_to_string(fixtures().join("krakend.json")).expect("krakend.json");
    let scripts = format!("{}/", fixtures().join("lua").display());
    let text = text
        .replace("\"fixtures/lua/", &format!("\"{scripts}"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{gateway}"))
        .replace("localhost:8080", &format!("127.0.0.1:{gateway}"))
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{backend}"))
        .replace(
            "http://showrss.info/",
            &format!("http://127.0.0.1:{backend}/"),
        )
        .replace("\":8090\"", &format!("\"127.0.0.1:{metrics}\""));
    let mut config: Value = serde_json::from_str(&text).expect("the suite's config is JSON");
    config["debug_endpoint"] = Value::Bool(true);
    config
}

/// Copies every spec into `dir` with the suite's ports moved as [`config`]
/// moves them (the expected answers name them too: `X-Forwarded-Host`,
/// `Referer`); the folder `sepia e2e -f` reads.
pub fn write_specs(dir: &Path, gateway: u16, backend: u16) -> PathBuf {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("specs folder");
    for entry in std::fs::read_dir(fixtures().join("specs")).expect("the suite's specs") {
        let path = entry.expect("a spec").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)
                .expect("spec")
                .replace("localhost:8080", &format!("localhost:{gateway}"))
                .replace("127.0.0.1:8081", &format!("127.0.0.1:{backend}"));
            let name = path.file_name().expect("a file name");
            std::fs::write(specs.join(name), text).expect("write the spec");
        }
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_spellings() {
        assert_eq!(
            canonical_header("x-krakend-completed"),
            "X-Krakend-Completed"
        );
        assert_eq!(canonical_header("CONTENT-type"), "Content-Type");
        assert_eq!(
            query_values(Some("a=1&b=2&b=x%20y&c")),
            serde_json::json!({"a": ["1"], "b": ["2", "x y"], "c": [""]})
        );
    }
}
