//! KrakenD CE's integration suite, run against Sepia: the mock backend of
//! upstream's `tests/integration.go` (Go's `http.ServeMux` routes), a client
//! that behaves as Go's `http.DefaultClient`, and upstream's comparison of
//! an answer with its spec. Written from upstream's harness; its code is
//! not copied.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
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

/// One spec file.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub value: Value,
}

/// Every spec, by name, with the suite's ports moved as [`config`] moves
/// them (the expected answers name them too: `X-Forwarded-Host`,
/// `Referer`).
pub fn specs(gateway: u16, backend: u16) -> Vec<Spec> {
    let dir = fixtures().join("specs");
    let mut specs: Vec<Spec> = std::fs::read_dir(&dir)
        .expect("specs folder")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .expect("spec")
                .replace("localhost:8080", &format!("localhost:{gateway}"))
                .replace("127.0.0.1:8081", &format!("127.0.0.1:{backend}"));
            Spec {
                name: spec_name(&path),
                value: serde_json::from_str(&text).expect("spec JSON"),
            }
        })
        .collect();
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    specs
}

fn spec_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A response as Go's client hands it over, after redirects.
struct Received {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Sends the spec's request as `http.DefaultClient` would, to the gateway
/// on `port`.
async fn send(input: &Value, port: u16) -> Result<Received, String> {
    let method = input["method"].as_str().unwrap_or("GET");
    // Go resolves localhost; the gateway listens on 127.0.0.1 only.
    let mut url = input["url"]
        .as_str()
        .ok_or("the spec has no url")?
        .replace(&format!("localhost:{port}"), &format!("127.0.0.1:{port}"));
    let body = match &input["body"] {
        Value::Null => Vec::new(),
        Value::String(text) => text.clone().into_bytes(),
        other => sepia_json::to_vec(other),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(map) = input["header"].as_object() {
        for (name, value) in map {
            let value = value.as_str().unwrap_or_default().to_owned();
            headers.push((canonical_header(name), value));
        }
    }
    let has = |headers: &[(String, String)], name: &str| {
        headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !has(&headers, "user-agent") {
        headers.push(("User-Agent".into(), "Go-http-client/1.1".into()));
    }
    if !has(&headers, "accept-encoding") {
        headers.push(("Accept-Encoding".into(), "gzip".into()));
    }
    if !has(&headers, "host") {
        headers.push(("Host".into(), format!("localhost:{port}")));
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut body = body;
    for _ in 0..=10 {
        let mut builder = Request::builder().method(method.clone()).uri(&url);
        for (name, value) in &headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within 10 s"))?
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (parts, incoming) = response.into_parts();
        let bytes = incoming
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let redirects = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
        match location {
            Some(location) if redirects => {
                url = resolve(&url, &location);
                // Go turns a 301/302/303 into a GET without a body.
                if matches!(status.as_u16(), 301..=303) && method != Method::HEAD {
                    method = Method::GET;
                    body.clear();
                }
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
                headers.push(("Host".into(), host_of(&url)));
            }
            _ => {
                return Ok(Received {
                    status,
                    headers: parts.headers,
                    body: bytes,
                })
            }
        }
    }
    Err("stopped after 10 redirects".into())
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
        .to_owned()
}

fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    format!("{}{}", &base[..origin_end], location)
}

/// Numbers as Go's `interface{}` holds them: float64.
fn as_go(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(as_go).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), as_go(v))).collect())
        }
        other => other.clone(),
    }
}

/// Upstream's `assertResponse`: every difference, or none.
fn compare(received: &Received, output: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let want_status = output["status_code"].as_u64().unwrap_or(0);
    if u64::from(received.status.as_u16()) != want_status {
        problems.push(format!(
            "status {} where {want_status} is expected",
            received.status.as_u16()
        ));
    }
    if let Some(headers) = output["header"].as_object() {
        for (name, wanted) in headers {
            let wanted: Vec<&str> = wanted
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let have: Vec<String> = received
                .headers
                .get_all(name.to_ascii_lowercase().as_str())
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            let absent_wanted = wanted.first() == Some(&"");
            let equal = have.iter().map(String::as_str).eq(wanted.iter().copied());
            if !(equal || (have.is_empty() && absent_wanted)) {
                problems.push(format!(
                    "header {}: {have:?} where {wanted:?} is expected",
                    canonical_header(name)
                ));
            }
        }
    }
    let text = String::from_utf8_lossy(&received.body).into_owned();
    if let Some(schema) = output.get("schema").filter(|s| !s.is_null()) {
        if received.body.is_empty() {
            problems.push("an empty body, where a schema is to be checked".into());
            return problems;
        }
        let body: Value = match serde_json::from_slice(&received.body) {
            Ok(body) => body,
            Err(e) => {
                problems.push(format!("the body is not JSON ({e}): {text}"));
                return problems;
            }
        };
        match jsonschema::validator_for(schema) {
            Ok(validator) => {
                for error in validator.iter_errors(&body) {
                    problems.push(format!("schema: {error} in {text}"));
                }
            }
            Err(e) => problems.push(format!("the spec's schema does not compile: {e}")),
        }
        return problems;
    }
    match &output["body"] {
        Value::Null => {}
        Value::String(wanted) => {
            if &text != wanted {
                problems.push(format!("body {text:?} where {wanted:?} is expected"));
            }
        }
        wanted => {
            let have = serde_json::from_slice::<Value>(&received.body)
                .map(|v| as_go(&v))
                .unwrap_or(Value::Null);
            if have != as_go(wanted) {
                problems.push(format!("body {text} where {wanted} is expected"));
            }
        }
    }
    problems
}

/// Runs one spec against the gateway on `port`; its problems, none when it
/// passes.
pub async fn run(spec: &Spec, port: u16) -> Vec<String> {
    match send(&spec.value["in"], port).await {
        Ok(received) => compare(&received, &spec.value["out"]),
        Err(error) => vec![error],
    }
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
        assert_eq!(resolve("http://h:1/a/b?x", "/c?d"), "http://h:1/c?d");
    }
}
