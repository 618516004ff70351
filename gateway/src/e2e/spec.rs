//! A spec file of KrakenD's end-to-end format: one request (`in`) and the
//! answer expected (`out`), read whole before the gateway starts, so that a
//! mistyped spec stops the run with its file and JSON path instead of
//! failing as if the gateway had answered wrongly.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};

/// A spec that cannot be used, with where.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The folder or a file could not be read.
    #[error("{}: cannot read it: {source}", .path.display())]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The folder holds no spec.
    #[error("{}: no spec files (*.json) in this folder: give the folder of your specs with -f", .0.display())]
    Empty(PathBuf),
    /// A file is not JSON.
    #[error("{}: not JSON: {source}", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A value of the spec is wrong.
    #[error("{}: {at}: {reason}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The JSON path in it.
        at: String,
        /// What is wrong, and what would do.
        reason: String,
    },
}

/// One spec.
#[derive(Debug)]
pub struct Spec {
    /// The file's name without `.json`, as the report names it.
    pub name: String,
    /// The request to send.
    pub request: SpecRequest,
    /// What the answer must be.
    pub expected: Expected,
}

/// `in`: the request.
#[derive(Debug, Clone)]
pub struct SpecRequest {
    pub method: Method,
    pub url: String,
    /// In the file's order, names as written (Go's `Header.Add`
    /// canonicalises them; HTTP/1 sends them case-insensitively anyway).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// `out`: the answer expected.
#[derive(Debug)]
pub struct Expected {
    pub status: u16,
    /// Each named header's exact values; `[""]` means "absent".
    pub headers: Vec<(HeaderName, Vec<String>)>,
    pub body: ExpectedBody,
}

/// How the body is checked.
#[derive(Debug)]
pub enum ExpectedBody {
    /// Neither `body` nor `schema`: the body is not looked at.
    Unchecked,
    /// A string `body`: the body byte for byte.
    Exact(String),
    /// Any other `body`: the body as JSON, numbers compared as Go's
    /// `float64`s, key order and spacing aside.
    Json(Value),
    /// `schema`: a non-empty JSON body valid against it.
    Schema(Box<jsonschema::Validator>),
}

/// Every `*.json` file of `folder`, in file-name order (KrakenD runs them
/// alphabetically), and the warnings about keys the format does not have.
pub fn load_folder(folder: &Path) -> Result<(Vec<Spec>, Vec<String>), SpecError> {
    let read_error = |source| SpecError::Read {
        path: folder.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(SpecError::Empty(folder.to_owned()));
    }
    files.sort();
    let mut warnings = Vec::new();
    let mut specs = Vec::with_capacity(files.len());
    for path in files {
        let text = std::fs::read(&path).map_err(|source| SpecError::Read {
            path: path.clone(),
            source,
        })?;
        let value: Value = serde_json::from_slice(&text).map_err(|source| SpecError::Json {
            path: path.clone(),
            source,
        })?;
        specs.push(parse(&path, &value, &mut warnings)?);
    }
    Ok((specs, warnings))
}

/// One spec from its JSON.
pub fn parse(path: &Path, value: &Value, warnings: &mut Vec<String>) -> Result<Spec, SpecError> {
    let invalid = |at: &str, reason: String| SpecError::Invalid {
        path: path.to_owned(),
        at: at.to_owned(),
        reason,
    };
    let top = object(value, "$", &invalid)?;
    unknown_keys(path, "$", top, &["in", "out", "next"], warnings);
    if top.contains_key("next") {
        warnings.push(format!(
            "{}: next: not run (KrakenD's harness reads it and does not run it either)",
            path.display()
        ));
    }
    let input = object(required(top, "in", "$", &invalid)?, "in", &invalid)?;
    let output = object(required(top, "out", "$", &invalid)?, "out", &invalid)?;
    unknown_keys(
        path,
        "in",
        input,
        &["method", "url", "header", "body"],
        warnings,
    );
    unknown_keys(
        path,
        "out",
        output,
        &["status_code", "header", "body", "schema"],
        warnings,
    );
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Spec {
        name,
        request: request(input, &invalid)?,
        expected: expected(output, &invalid)?,
    })
}

type Invalid<'a> = dyn Fn(&str, String) -> SpecError + 'a;

fn object<'v>(
    value: &'v Value,
    at: &str,
    invalid: &Invalid<'_>,
) -> Result<&'v Map<String, Value>, SpecError> {
    value
        .as_object()
        .ok_or_else(|| invalid(at, "must be an object".into()))
}

fn required<'v>(
    map: &'v Map<String, Value>,
    key: &str,
    at: &str,
    invalid: &Invalid<'_>,
) -> Result<&'v Value, SpecError> {
    map.get(key)
        .ok_or_else(|| invalid(at, format!("has no \"{key}\"")))
}

/// Keys beginning with `@` are comments, as in KrakenD's files.
fn unknown_keys(
    path: &Path,
    at: &str,
    map: &Map<String, Value>,
    known: &[&str],
    warnings: &mut Vec<String>,
) {
    for key in map.keys() {
        if !key.starts_with('@') && !known.contains(&key.as_str()) {
            warnings.push(format!(
                "{}: {at}.{key}: unknown key, ignored (known: {})",
                path.display(),
                known.join(", ")
            ));
        }
    }
}

fn request(input: &Map<String, Value>, invalid: &Invalid<'_>) -> Result<SpecRequest, SpecError> {
    let method = match input.get("method") {
        None | Some(Value::Null) => Method::GET,
        Some(Value::String(m)) => Method::from_bytes(m.as_bytes())
            .map_err(|_| invalid("in.method", format!("{m:?} is not an HTTP method")))?,
        Some(_) => {
            return Err(invalid(
                "in.method",
                "must be a string such as \"GET\"".into(),
            ))
        }
    };
    let url = match input.get("url") {
        Some(Value::String(url)) => url.clone(),
        _ => {
            return Err(invalid(
                "in.url",
                "must be the full URL to request, such as \"http://localhost:8080/users/1\"".into(),
            ))
        }
    };
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.host().is_some() => {}
        _ => {
            return Err(invalid(
                "in.url",
                format!("{url:?} is not a full http:// or https:// URL"),
            ))
        }
    }
    let mut headers = Vec::new();
    if let Some(map) = input.get("header").filter(|h| !h.is_null()) {
        for (name, value) in object(map, "in.header", invalid)? {
            let at = format!("in.header.{name}");
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(&at, "is not a header name".into()))?;
            let text = value
                .as_str()
                .ok_or_else(|| invalid(&at, "must be a string".into()))?;
            let value = HeaderValue::from_str(text)
                .map_err(|_| invalid(&at, "is not a header value".into()))?;
            headers.push((header, value));
        }
    }
    // As KrakenD's harness: a string as it is, anything else JSON-encoded.
    let body = match input.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) => Bytes::from(text.clone().into_bytes()),
        Some(other) => Bytes::from(sepia_json::to_vec(other)),
    };
    Ok(SpecRequest {
        method,
        url,
        headers,
        body,
    })
}

fn expected(output: &Map<String, Value>, invalid: &Invalid<'_>) -> Result<Expected, SpecError> {
    let status = output
        .get("status_code")
        .and_then(Value::as_u64)
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| {
            invalid(
                "out.status_code",
                "must be the status expected, such as 200".into(),
            )
        })?;
    let mut headers = Vec::new();
    if let Some(map) = output.get("header").filter(|h| !h.is_null()) {
        for (name, values) in object(map, "out.header", invalid)? {
            let at = format!("out.header.{name}");
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(&at, "is not a header name".into()))?;
            let values = values
                .as_array()
                .and_then(|list| {
                    list.iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    invalid(
                        &at,
                        "must be the list of values expected, such as [\"application/json\"], or [\"\"] for absent".into(),
                    )
                })?;
            headers.push((header, values));
        }
    }
    let body = match (
        output.get("schema").filter(|s| !s.is_null()),
        output.get("body"),
    ) {
        (Some(schema), _) => ExpectedBody::Schema(Box::new(
            jsonschema::validator_for(schema).map_err(|e| {
                invalid(
                    "out.schema",
                    format!("is not a JSON Schema this validator compiles: {e}"),
                )
            })?,
        )),
        (None, None | Some(Value::Null)) => ExpectedBody::Unchecked,
        (None, Some(Value::String(text))) => ExpectedBody::Exact(text.clone()),
        (None, Some(other)) => ExpectedBody::Json(other.clone()),
    };
    Ok(Expected {
        status: status as u16,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: Value) -> Result<(Spec, Vec<String>), SpecError> {
        let mut warnings = Vec::new();
        parse(Path::new("specs/a.json"), &value, &mut warnings).map(|s| (s, warnings))
    }

    #[test]
    fn a_spec_reads_as_krakends_harness_reads_it() {
        let (spec, warnings) = spec(json!({
            "@comment": "kept aside",
            "in": {"url": "http://localhost:8080/x?a=1", "header": {"X-A": "1"}, "body": {"b": 2}},
            "out": {"status_code": 200, "header": {"Content-Type": ["application/json"]}, "body": "ok"}
        }))
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(spec.name, "a");
        assert_eq!(spec.request.method, Method::GET);
        assert_eq!(&spec.request.body[..], br#"{"b":2}"#);
        assert_eq!(spec.request.headers[0].0.as_str(), "x-a");
        assert_eq!(spec.expected.status, 200);
        assert!(matches!(spec.expected.body, ExpectedBody::Exact(ref t) if t == "ok"));
    }

    #[test]
    fn a_wrong_spec_names_its_file_and_path() {
        let error = |value: Value| spec(value).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            error(json!({"in": {"url": "/x"}, "out": {"status_code": 200}})),
            "specs/a.json: in.url: \"/x\" is not a full http:// or https:// URL"
        );
        assert!(error(json!({"in": {"url": "http://h/"}})).contains("$: has no \"out\""));
        assert!(
            error(json!({"in": {"url": "http://h/"}, "out": {"status_code": "200"}}))
                .contains("out.status_code: must be the status expected")
        );
        assert!(error(
            json!({"in": {"url": "http://h/", "header": {"A": 1}}, "out": {"status_code": 200}})
        )
        .contains("in.header.A: must be a string"));
        assert!(error(
            json!({"in": {"url": "http://h/"}, "out": {"status_code": 200, "header": {"A": "x"}}})
        )
        .contains("out.header.A: must be the list of values expected"));
        assert!(error(
            json!({"in": {"url": "http://h/"}, "out": {"status_code": 200, "schema": {"type": 5}}})
        )
        .contains("out.schema: is not a JSON Schema"));
        assert!(error(
            json!({"in": {"url": "http://h/", "method": "G T"}, "out": {"status_code": 200}})
        )
        .contains("in.method"));
    }

    #[test]
    fn unknown_keys_and_next_are_warned_about() {
        let (_, warnings) = spec(json!({
            "in": {"url": "http://h/", "headers": {}},
            "out": {"status_code": 200},
            "next": []
        }))
        .unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings
            .iter()
            .any(|w| w.contains("in.headers: unknown key")));
        assert!(warnings.iter().any(|w| w.contains("next: not run")));
    }

    #[test]
    fn a_folder_is_read_in_name_order_and_an_empty_one_refused() {
        let dir = std::env::temp_dir().join(format!("sepia-e2e-specs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = load_folder(&dir).unwrap_err().to_string();
        assert!(empty.contains("no spec files"), "{empty}");
        let one = json!({"in": {"url": "http://h/"}, "out": {"status_code": 200}}).to_string();
        std::fs::write(dir.join("b.json"), &one).unwrap();
        std::fs::write(dir.join("a.json"), &one).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a spec").unwrap();
        let (specs, _) = load_folder(&dir).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        std::fs::write(dir.join("c.json"), "{").unwrap();
        assert!(load_folder(&dir)
            .unwrap_err()
            .to_string()
            .contains("c.json: not JSON"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
