//! Builds a [`Config`] from JSON, collecting every problem with its path.

use std::{
    collections::{hash_map::Entry, HashMap},
    net::IpAddr,
    time::Duration,
};

use serde_json::Value;

use crate::{
    diagnostics::{index, join, Diagnostics},
    gateway_namespaces::{
        backend_http, endpoint_proxy, is_whole_response_reference, response_reference,
    },
    model::{
        Backend, BackendEncoding, Config, DnsSrv, Endpoint, ExtraConfig, Method, OutputEncoding,
        PluginSettings, Shaping,
    },
    namespace::same_namespace,
    reader::{type_name, ObjectReader},
};

const DEFAULT_PORT: u16 = 8080;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const RESERVED_PATHS: &[&str] = &["/__health", "/__debug", "/__echo", "/__plugins"];

/// Top-level KrakenD settings Sepia does not implement yet.
const TOP_NOT_SUPPORTED: &[&str] = &["disable_rest", "async_agent"];

/// Endpoint settings Sepia does not implement yet.
const ENDPOINT_NOT_SUPPORTED: &[&str] = &[];

/// Backend settings Sepia does not implement yet.
const BACKEND_NOT_SUPPORTED: &[&str] = &[];

/// Reads a whole configuration document.
pub(crate) fn parse_document(root: &Value, diags: &mut Diagnostics) -> Option<Config> {
    let mut top = ObjectReader::of(String::new(), root, diags)?;
    let _ = top.raw("$schema");
    let version = match top.uint("version", u64::MAX, diags) {
        Some(v @ 1..=3) => v,
        Some(other) => {
            diags.invalid(
                "version",
                format!("version {other} is not a KrakenD configuration version: use 3"),
            );
            3
        }
        None => {
            if top.raw("version").is_none() {
                diags.invalid("version", "missing: add \"version\": 3");
            }
            3
        }
    };
    let name = top.string("name", diags).unwrap_or_default();
    let port = top
        .uint("port", u16::MAX as u64, diags)
        .map_or(DEFAULT_PORT, |p| p as u16);
    let listen_ip = match top.string("listen_ip", diags) {
        Some(text) => match text.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                diags.invalid(
                    "listen_ip",
                    format!("\"{text}\" is not an IP address (such as 0.0.0.0 or 127.0.0.1)"),
                );
                IpAddr::from([0, 0, 0, 0])
            }
        },
        None => IpAddr::from([0, 0, 0, 0]),
    };
    let host = hosts(&mut top, true, diags).unwrap_or_default();
    let timeout = positive(&mut top, "timeout", diags).unwrap_or(DEFAULT_TIMEOUT);
    let cache_ttl = cache_ttl(&mut top, version, diags).filter(|d| !d.is_zero());
    let debug_endpoint = top.bool("debug_endpoint", diags).unwrap_or(false);
    let echo_endpoint = top.bool("echo_endpoint", diags).unwrap_or(false);
    let idle_timeout = top.timeout("idle_timeout", diags);
    let dns_cache_ttl = dns_cache_ttl(&mut top, version, diags);
    let read_header_timeout = top.timeout("read_header_timeout", diags);
    let read_timeout = top.timeout("read_timeout", diags);
    let write_timeout = top.timeout("write_timeout", diags);
    let max_header_bytes = max_header_bytes(&mut top, version, diags);
    sequential_start(&mut top, version, diags);
    let disable_compression = top.bool("disable_compression", diags).unwrap_or(false);
    let backend_transport = crate::transport::backend_transport(&mut top, diags);
    let tls = crate::tls::server_tls(&mut top, version, diags);
    let backend_tls = crate::tls::backend_tls(&mut top, version, diags);
    let output_encoding = output_encoding(&mut top, version, diags)
        .unwrap_or(Render::Registered(OutputEncoding::Json));
    let mut extra_config = extra_config(&mut top, diags);
    let sepia = crate::gateway_namespaces::sepia_switches(&mut extra_config, diags);
    let plugin = plugin_settings(&mut top, diags);
    let defaults = EndpointDefaults {
        version,
        host: &host,
        timeout,
        cache_ttl,
        output_encoding,
    };
    let endpoints = match top.array("endpoints", diags) {
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, value)| endpoint(index("endpoints", i), value, &defaults, diags))
            .collect(),
        None => Vec::new(),
    };
    top.finish(TOP_NOT_SUPPORTED, diags);
    check_duplicates(&endpoints, diags);
    Some(Config {
        version,
        name,
        port,
        listen_ip,
        host,
        timeout,
        idle_timeout,
        read_header_timeout,
        read_timeout,
        write_timeout,
        max_header_bytes,
        disable_compression,
        backend_transport,
        tls,
        backend_tls,
        endpoints,
        extra_config,
        sepia,
        plugin,
        debug_endpoint,
        echo_endpoint,
        dns_cache_ttl,
    })
}

/// lura's DNS SRV lookups are redone every 30 s; lura 2 reads
/// `dns_cache_ttl` and keeps 30 s for less than a second.
const DEFAULT_DNS_TTL: Duration = Duration::from_secs(30);

fn dns_cache_ttl(reader: &mut ObjectReader<'_>, version: u64, diags: &mut Diagnostics) -> Duration {
    let Some(ttl) = reader.duration("dns_cache_ttl", diags) else {
        return DEFAULT_DNS_TTL;
    };
    let path = reader.path_of("dns_cache_ttl");
    if !sepia_plugin_api::is_krakend2(version) {
        diags.push(
            &path,
            crate::ProblemKind::Suspicious,
            "KrakenD 1.x has no such setting: DNS SRV names are looked up every 30s (use version 3 to set it)",
        );
        return DEFAULT_DNS_TTL;
    }
    if ttl < Duration::from_secs(1) {
        diags.push(
            &path,
            crate::ProblemKind::Suspicious,
            "less than a second, which KrakenD ignores: DNS SRV names are looked up every 30s",
        );
        return DEFAULT_DNS_TTL;
    }
    ttl
}

/// `sequential_start`: KrakenD CE starts its async agents before the router
/// instead of beside it, and does nothing else with it; without
/// `async_agent` (which Sepia names as not served yet) it changes nothing,
/// so it is only checked. lura 1.4 has neither.
fn sequential_start(reader: &mut ObjectReader<'_>, version: u64, diags: &mut Diagnostics) {
    let path = reader.path_of("sequential_start");
    if reader.bool("sequential_start", diags).is_some() && !sepia_plugin_api::is_krakend2(version) {
        diags.push(
            &path,
            crate::ProblemKind::Suspicious,
            "KrakenD 1.x has no such setting (nor async agents): ignored",
        );
    }
}

/// Go's `http.DefaultMaxHeaderBytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 1 << 20;

/// `max_header_bytes`: lura 2 hands it to Go's server, where zero (or
/// less) is Go's default, 1 MiB; lura 1.4 has no such setting.
fn max_header_bytes(reader: &mut ObjectReader<'_>, version: u64, diags: &mut Diagnostics) -> usize {
    let path = reader.path_of("max_header_bytes");
    let Some(value) = reader.raw("max_header_bytes") else {
        return DEFAULT_MAX_HEADER_BYTES;
    };
    let Some(bytes) = value.as_i64() else {
        diags.invalid(
            &path,
            format!("expected a number of bytes, found {}", type_name(value)),
        );
        return DEFAULT_MAX_HEADER_BYTES;
    };
    if !sepia_plugin_api::is_krakend2(version) {
        diags.push(
            &path,
            crate::ProblemKind::Suspicious,
            "KrakenD 1.x has no such setting: request heads may be 1 MiB (use version 3 to set it)",
        );
        return DEFAULT_MAX_HEADER_BYTES;
    }
    usize::try_from(bytes)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_HEADER_BYTES)
}

struct EndpointDefaults<'a> {
    version: u64,
    host: &'a [String],
    timeout: Duration,
    cache_ttl: Option<Duration>,
    output_encoding: Render,
}

/// A `cache_ttl`. A Go duration string in every generation; a bare number
/// is seconds in version 1 and 2 files, as lura 1.x reads an endpoint's
/// (`"cache_ttl": 300`), and nanoseconds in version 3 files, as a duration
/// number is everywhere else, which is never what was meant: a warning.
fn cache_ttl(
    reader: &mut ObjectReader<'_>,
    version: u64,
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let path = reader.path_of("cache_ttl");
    match reader.raw("cache_ttl") {
        Some(Value::Number(n)) if !sepia_plugin_api::is_krakend2(version) => match n.as_u64() {
            Some(seconds) => Some(Duration::from_secs(seconds)),
            None => {
                diags.invalid(
                    &path,
                    "must be a whole number of seconds, or a duration such as \"300s\"",
                );
                None
            }
        },
        Some(Value::Number(_)) => {
            diags.push(
                &path,
                crate::ProblemKind::Suspicious,
                "a bare number is read as nanoseconds in a version-3 file (a cache time of 0): write the duration as a string, such as \"300s\"",
            );
            reader.duration("cache_ttl", diags)
        }
        _ => reader.duration("cache_ttl", diags),
    }
}

fn positive(
    reader: &mut ObjectReader<'_>,
    key: &'static str,
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let value = reader.duration(key, diags)?;
    if value.is_zero() {
        diags.invalid(
            &reader.path_of(key),
            "must be more than zero, such as \"2s\"",
        );
        return None;
    }
    Some(value)
}

/// `host`: base URLs with `http://` added where no scheme is given and the
/// trailing `/` removed, as KrakenD sanitises them (unless a backend sets
/// `disable_host_sanitize`).
fn hosts(
    reader: &mut ObjectReader<'_>,
    sanitize: bool,
    diags: &mut Diagnostics,
) -> Option<Vec<String>> {
    let list = reader.string_list("host", diags)?;
    let path = reader.path_of("host");
    let mut out = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        if !sanitize {
            if raw.starts_with("http://") || raw.starts_with("https://") {
                out.push(raw.clone());
            } else {
                diags.invalid(
                    &index(&path, i),
                    format!("\"{raw}\": with disable_host_sanitize the host is used as written, so it needs its http:// or https://"),
                );
            }
            continue;
        }
        let trimmed = raw.trim().trim_end_matches('/');
        if trimmed.is_empty() {
            diags.invalid(
                &index(&path, i),
                "an empty host: write it as \"http://name:port\"",
            );
            continue;
        }
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        if !(with_scheme.starts_with("http://") || with_scheme.starts_with("https://")) {
            diags.invalid(
                &index(&path, i),
                format!("\"{raw}\": only http:// and https:// hosts are supported"),
            );
            continue;
        }
        out.push(with_scheme);
    }
    Some(out)
}

/// The render an `output_encoding` names, as lura's render register finds
/// it.
#[derive(Clone, Copy, Debug)]
enum Render {
    Registered(OutputEncoding),
    /// A name KrakenD registers no render for: lura's `getRender` takes the
    /// single backend's encoding's render, else JSON.
    Fallback,
}

/// The renders KrakenD CE registers: lura 1.4 has no `yaml` one (its
/// `negotiate` still answers YAML), lura 2 has; CE adds `xml` in both.
fn registered_render(name: &str, version: u64) -> Option<OutputEncoding> {
    Some(match name {
        "json" => OutputEncoding::Json,
        "json-collection" => OutputEncoding::JsonCollection,
        "string" => OutputEncoding::String,
        "no-op" => OutputEncoding::NoOp,
        "xml" => OutputEncoding::Xml,
        "negotiate" => OutputEncoding::Negotiate,
        "yaml" if sepia_plugin_api::is_krakend2(version) => OutputEncoding::Yaml,
        _ => return None,
    })
}

fn output_encoding(
    reader: &mut ObjectReader<'_>,
    version: u64,
    diags: &mut Diagnostics,
) -> Option<Render> {
    let text = reader.string("output_encoding", diags)?;
    if text.is_empty() {
        // lura reads an empty name as an absent one.
        return None;
    }
    if let Some(encoding) = registered_render(&text, version) {
        return Some(Render::Registered(encoding));
    }
    let krakend = if sepia_plugin_api::is_krakend2(version) {
        "2.x"
    } else {
        "1.x (version-1 and 2 files; yaml needs \"version\": 3)"
    };
    diags.push(
        &reader.path_of("output_encoding"),
        crate::ProblemKind::Suspicious,
        format!(
            "KrakenD {krakend} registers no \"{text}\" output encoding: as there, an endpoint with one backend renders as that backend's encoding names (string, xml, no-op, ...) and any other as JSON; use json, json-collection, string, xml, yaml, negotiate or no-op"
        ),
    );
    Some(Render::Fallback)
}

/// What `getRender` makes of an endpoint's output encoding; `only_backend`
/// is the `encoding` its single backend names, as written.
fn endpoint_render(render: Render, only_backend: Option<&str>, version: u64) -> OutputEncoding {
    match render {
        Render::Registered(encoding) => encoding,
        Render::Fallback => only_backend
            .and_then(|name| registered_render(name, version))
            .unwrap_or(OutputEncoding::Json),
    }
}

fn backend_encoding(
    reader: &mut ObjectReader<'_>,
    diags: &mut Diagnostics,
) -> Option<BackendEncoding> {
    let text = reader.string("encoding", diags)?;
    // lura finds decoders by the lower-cased name, and takes JSON's for a
    // name it has none for; its no-op proxy is chosen by the exact name.
    Some(match text.to_lowercase().as_str() {
        "json" | "" => BackendEncoding::Json,
        "safejson" => BackendEncoding::SafeJson,
        "string" => BackendEncoding::String,
        "no-op" if text == "no-op" => BackendEncoding::NoOp,
        "xml" => BackendEncoding::Xml,
        "rss" => BackendEncoding::Rss,
        "no-op" => {
            diags.invalid(
                &reader.path_of("encoding"),
                format!("write \"no-op\": KrakenD passes a backend through only for that spelling, and reads \"{text}\" as a JSON backend whose body it drops"),
            );
            return None;
        }
        _ => {
            diags.push(
                &reader.path_of("encoding"),
                crate::ProblemKind::Suspicious,
                format!("KrakenD registers no \"{text}\" decoder and reads the body as JSON, and so does Sepia; use json, safejson, string, xml, rss or no-op"),
            );
            BackendEncoding::Json
        }
    })
}

fn method(reader: &mut ObjectReader<'_>, diags: &mut Diagnostics) -> Option<Method> {
    let text = reader.string("method", diags)?;
    let parsed = Method::parse(&text);
    if parsed.is_none() {
        diags.invalid(
            &reader.path_of("method"),
            format!(
                "\"{text}\" is not a method KrakenD serves: use GET, POST, PUT, PATCH or DELETE"
            ),
        );
    }
    parsed
}

fn extra_config(reader: &mut ObjectReader<'_>, diags: &mut Diagnostics) -> ExtraConfig {
    let mut out = ExtraConfig::default();
    let path = reader.path_of("extra_config");
    let map = match reader.raw("extra_config") {
        None => return out,
        Some(Value::Object(map)) => map,
        Some(other) => {
            diags.invalid(
                &path,
                format!("expected an object, found {}", type_name(other)),
            );
            return out;
        }
    };
    for (namespace, value) in map {
        if let Some(first) = out.get(namespace).and_then(|_| {
            out.entries()
                .iter()
                .find(|e| same_namespace(&e.namespace, namespace))
                .map(|e| e.namespace.clone())
        }) {
            diags.invalid(
                &join(&path, namespace),
                format!("\"{namespace}\" and \"{first}\" are one namespace: keep only one of them"),
            );
            continue;
        }
        out.push(namespace.clone(), value.clone());
    }
    out
}

/// A CEL check of the token's claims runs where krakend-jose validates the
/// token; on an endpoint without a validator KrakenD never runs it, so the
/// check a file asks for would silently not be made.
fn check_claims_checks(extra_config: &ExtraConfig, endpoint_path: &str, diags: &mut Diagnostics) {
    if extra_config.get("auth/validator").is_some() {
        return;
    }
    let Some(entry) = extra_config
        .entries()
        .iter()
        .find(|e| e.canonical == "validation/cel")
    else {
        return;
    };
    let reads_claims = entry.value.as_array().is_some_and(|checks| {
        checks.iter().any(|check| {
            check
                .get("check_expr")
                .and_then(Value::as_str)
                .is_some_and(|text| text.contains("JWT"))
        })
    });
    if reads_claims {
        diags.invalid(
            &crate::namespace::json_path(endpoint_path, &entry.namespace),
            "a check_expr reads JWT, the claims of the request's token, but this endpoint validates no token: add \"auth/validator\" to its extra_config",
        );
    }
}

fn plugin_settings(
    reader: &mut ObjectReader<'_>,
    diags: &mut Diagnostics,
) -> Option<PluginSettings> {
    let mut plugin = reader.object("plugin", diags)?;
    let folder = plugin.string("folder", diags);
    let pattern = plugin.string("pattern", diags).unwrap_or_default();
    let path = plugin.path.clone();
    plugin.finish(&[], diags);
    match folder {
        Some(folder) if !folder.trim().is_empty() => Some(PluginSettings { folder, pattern }),
        _ => {
            diags.invalid(
                &format!("{path}.folder"),
                "missing: name the folder that holds the plugin files",
            );
            None
        }
    }
}

/// The claim a `{JWT.claim}` placeholder of a `url_pattern` names (KrakenD
/// takes it from the validated token, top-level only); `None` for any other
/// placeholder.
pub fn jwt_claim_reference(name: &str) -> Option<&str> {
    name.strip_prefix("JWT.")
}

/// The `{name}` placeholders of a path or URL pattern, in order.
pub fn placeholders(pattern: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("\"{pattern}\" has a '{{' without its '}}'"));
        };
        let name = &after[..close];
        if name.is_empty() || name.contains('{') {
            return Err(format!("\"{pattern}\" has an empty or nested {{param}}"));
        }
        out.push(name);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("\"{pattern}\" has a '}}' without its '{{'"));
    }
    Ok(out)
}

fn endpoint_params(path: &str, text: &str, diags: &mut Diagnostics) -> Vec<String> {
    let mut params = Vec::new();
    for segment in text.split('/').skip(1) {
        if segment.starts_with('{') && segment.ends_with('}') && segment.len() > 2 {
            let name = &segment[1..segment.len() - 1];
            if params.iter().any(|p: &String| p == name) {
                diags.invalid(path, format!("{{{name}}} appears twice in \"{text}\""));
            }
            params.push(name.to_owned());
        } else if segment.contains('{') || segment.contains('}') {
            diags.invalid(
                path,
                format!("segment \"{segment}\" of \"{text}\": a {{param}} must fill a whole path segment"),
            );
        }
    }
    params
}

fn endpoint(
    path: String,
    value: &Value,
    defaults: &EndpointDefaults<'_>,
    diags: &mut Diagnostics,
) -> Option<Endpoint> {
    let mut reader = ObjectReader::of(path.clone(), value, diags)?;
    let endpoint_path = reader.path_of("endpoint");
    let endpoint = match reader.string("endpoint", diags) {
        Some(text) if text.starts_with('/') => text,
        Some(text) => {
            diags.invalid(&endpoint_path, format!("\"{text}\" must start with '/'"));
            return None;
        }
        None => {
            if reader.raw("endpoint").is_none() {
                diags.invalid(
                    &endpoint_path,
                    "missing: the path this endpoint serves, such as \"/users/{id}\"",
                );
            }
            return None;
        }
    };
    if RESERVED_PATHS
        .iter()
        .any(|r| endpoint == *r || endpoint.starts_with(&format!("{r}/")))
    {
        diags.invalid(
            &endpoint_path,
            format!("\"{endpoint}\" is reserved by the gateway: choose another path"),
        );
    }
    let params = endpoint_params(&endpoint_path, &endpoint, diags);
    let method = method(&mut reader, diags).unwrap_or(Method::Get);
    let timeout = positive(&mut reader, "timeout", diags).unwrap_or(defaults.timeout);
    let cache_ttl = match cache_ttl(&mut reader, defaults.version, diags) {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
        None => defaults.cache_ttl,
    };
    let concurrent_calls = match reader.uint("concurrent_calls", 16, diags) {
        Some(0) => {
            diags.invalid(&reader.path_of("concurrent_calls"), "must be at least 1");
            1
        }
        Some(n) => n as u32,
        None => 1,
    };
    let input_headers = reader
        .string_list_any(&["input_headers", "headers_to_pass"], diags)
        .unwrap_or_else(|| vec!["Content-Type".to_owned()]);
    let input_query_strings = reader
        .string_list_any(&["input_query_strings", "querystring_params"], diags)
        .unwrap_or_default();
    let render =
        output_encoding(&mut reader, defaults.version, diags).unwrap_or(defaults.output_encoding);
    let only_backend_encoding = reader
        .raw("backend")
        .and_then(Value::as_array)
        .filter(|list| list.len() == 1)
        .and_then(|list| list[0].get("encoding"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let output_encoding =
        endpoint_render(render, only_backend_encoding.as_deref(), defaults.version);
    let mut extra_config = extra_config(&mut reader, diags);
    check_claims_checks(&extra_config, &path, diags);
    let proxy = endpoint_proxy(&mut extra_config, &path, defaults.version, diags);
    let backend_path = reader.path_of("backend");
    let backends: Vec<Backend> = match reader.array("backend", diags) {
        Some(list) if !list.is_empty() => list
            .iter()
            .enumerate()
            .filter_map(|(i, value)| {
                let context = BackendContext {
                    endpoint_params: &params,
                    endpoint_method: method,
                    default_hosts: defaults.host,
                    position: i,
                    sequential: proxy.sequential,
                    has_validator: extra_config.get("auth/validator").is_some(),
                    version: defaults.version,
                };
                backend(index(&backend_path, i), value, &context, diags)
            })
            .collect(),
        Some(_) => {
            diags.invalid(
                &backend_path,
                "empty: an endpoint needs at least one backend",
            );
            Vec::new()
        }
        None => {
            if reader.raw("backend").is_none() {
                diags.invalid(
                    &backend_path,
                    "missing: an endpoint needs at least one backend",
                );
            }
            Vec::new()
        }
    };
    check_propagated_params(&proxy, backends.len(), &path, diags);
    check_shadows(&backends, proxy.sequential, &backend_path, diags);
    // lura takes the shadows out before it builds the endpoint's proxy.
    let answering = backends.iter().filter(|b| b.shadow.is_none()).count();
    if output_encoding == OutputEncoding::NoOp && answering > 1 {
        diags.invalid(
            &reader.path_of("output_encoding"),
            "\"no-op\" passes one backend's response through: use a single backend",
        );
    }
    reader.finish(ENDPOINT_NOT_SUPPORTED, diags);
    let endpoint = Endpoint {
        json_path: path,
        endpoint,
        method,
        params,
        backends,
        timeout,
        cache_ttl,
        concurrent_calls,
        input_headers,
        input_query_strings,
        output_encoding,
        sequential: proxy.sequential,
        propagated_params: proxy.propagated_params,
        static_response: proxy.static_response,
        flatmap: proxy.flatmap,
        extra_config,
    };
    let has_static_data = endpoint
        .static_response
        .as_ref()
        .is_some_and(|fixed| !fixed.data.is_empty());
    if has_static_data && endpoint.passes_through() {
        diags.push(
            &join(&join(&endpoint.json_path, "extra_config"), "proxy.static"),
            crate::ProblemKind::NotSupported,
            "a no-op endpoint passes the backend's bytes through: static data cannot be added (KrakenD ignores it too)",
        );
    }
    Some(endpoint)
}

/// Shadow backends need an answering one beside them (lura builds the
/// endpoint from the others and refuses none), and are not supported in
/// a sequence, where they would renumber the `{respN_...}` the others use.
fn check_shadows(backends: &[Backend], sequential: bool, path: &str, diags: &mut Diagnostics) {
    let shadows = backends.iter().filter(|b| b.shadow.is_some()).count();
    if shadows == 0 {
        return;
    }
    if shadows == backends.len() {
        diags.invalid(
            path,
            "every backend is a shadow (proxy.shadow): an endpoint needs one whose answer it gives",
        );
    }
    if sequential {
        diags.invalid(
            path,
            "shadow backends (proxy.shadow) in a sequential endpoint are not supported by Sepia yet: make them answering backends or the endpoint not sequential",
        );
    }
}

/// `sequential_propagated_params` work only in a sequence, and only on
/// backends the endpoint has.
fn check_propagated_params(
    proxy: &crate::gateway_namespaces::ProxySettings,
    backends: usize,
    endpoint_path: &str,
    diags: &mut Diagnostics,
) {
    let path = join(
        &join(&join(endpoint_path, "extra_config"), "proxy"),
        "sequential_propagated_params",
    );
    if !proxy.propagated_params.is_empty() && !proxy.sequential {
        diags.push(
            &path,
            crate::ProblemKind::Suspicious,
            "has effect only with \"sequential\": true, as in KrakenD: ignored",
        );
    }
    for param in &proxy.propagated_params {
        if param.backend + 1 >= backends {
            // KrakenD skips it; it never gives a value.
            diags.push(
                &path,
                crate::ProblemKind::Suspicious,
                format!(
                    "{} reads backend {}, but only a backend before the last one can pass values on (the endpoint has {backends}): ignored",
                    param.name, param.backend
                ),
            );
        }
    }
}

/// What a backend needs to know of its endpoint.
struct BackendContext<'a> {
    endpoint_params: &'a [String],
    endpoint_method: Method,
    default_hosts: &'a [String],
    /// Its index among the endpoint's backends.
    position: usize,
    /// Whether the endpoint calls its backends in sequence.
    sequential: bool,
    /// Whether the endpoint validates tokens (`auth/validator`), which
    /// gives its backends `{JWT.claim}`.
    has_validator: bool,
    /// The file's `version`.
    version: u64,
}

/// Checks one `{name}` of a `url_pattern` that is not an endpoint parameter:
/// only a sequential backend may use an earlier backend's response.
fn check_placeholder(name: &str, context: &BackendContext<'_>) -> Result<(), String> {
    if let Some(claim) = jwt_claim_reference(name) {
        if claim.is_empty() {
            return Err(format!(
                "{{{name}}} names no claim: write {{JWT.sub}} for the token's \"sub\""
            ));
        }
        if !context.has_validator {
            return Err(format!("{{{name}}} takes a claim of the request's token, but this endpoint validates no token: add \"auth/validator\" to its extra_config, or remove the placeholder"));
        }
        return Ok(());
    }
    let Some((source, _)) = response_reference(name) else {
        if is_whole_response_reference(name) {
            // lura's sequentialParamsPattern wants `resp<N>_<field>`: KrakenD
            // refuses the file too ("undefined output param").
            return Err(format!("{{{name}}} would pass a whole response, which KrakenD refuses in a url_pattern too: name a field, such as {{{name}_id}}, or list \"{name}\" in the endpoint's proxy.sequential_propagated_params to hand a no-op backend's body to the later backends' plugins"));
        }
        return Err(format!("{{{name}}} is not a parameter of the endpoint: declare it in the endpoint path or remove it"));
    };
    if !name.starts_with("resp") {
        return Err(format!("{{{name}}}: KrakenD reads an earlier response only from a lower-case {{resp{source}_...}} and refuses this one as an undefined parameter: write it in lower case"));
    }
    if !context.sequential {
        return Err(format!("{{{name}}} uses backend {source}'s response, which needs sequential calls: set \"sequential\": true in the endpoint's extra_config.proxy"));
    }
    if source >= context.position {
        return Err(format!("{{{name}}} uses backend {source}'s response, but this is backend {} and backends are called in order: only an earlier backend's response can be used", context.position));
    }
    Ok(())
}

fn backend(
    path: String,
    value: &Value,
    context: &BackendContext<'_>,
    diags: &mut Diagnostics,
) -> Option<Backend> {
    let mut reader = ObjectReader::of(path.clone(), value, diags)?;
    let sanitize = !reader.bool("disable_host_sanitize", diags).unwrap_or(false);
    let dns_srv = service_discovery(&mut reader, sanitize, context.version, diags);
    let hosts = if dns_srv.is_some() {
        Vec::new()
    } else {
        match hosts(&mut reader, sanitize, diags) {
            Some(list) if !list.is_empty() => list,
            _ => context.default_hosts.to_vec(),
        }
    };
    if hosts.is_empty() && dns_srv.is_none() {
        diags.invalid(
            &reader.path_of("host"),
            "no host: add \"host\" to this backend or a top-level \"host\" list",
        );
    }
    let url_path = reader.path_of("url_pattern");
    let url_pattern = match reader.raw("url_pattern") {
        Some(Value::String(text)) => text.clone(),
        Some(other) => {
            diags.invalid(
                &url_path,
                format!("expected a string, found {}", type_name(other)),
            );
            String::new()
        }
        None => {
            diags.invalid(
                &url_path,
                "missing: the backend path to call, such as \"/users/{id}\"",
            );
            String::new()
        }
    };
    if !url_pattern.is_empty() && !url_pattern.starts_with('/') {
        diags.invalid(&url_path, format!("\"{url_pattern}\" must start with '/'"));
    }
    match placeholders(&url_pattern) {
        Ok(names) => {
            for name in names {
                if context.endpoint_params.iter().any(|p| p == name) {
                    continue;
                }
                if let Err(message) = check_placeholder(name, context) {
                    diags.invalid(&url_path, message);
                }
            }
        }
        Err(message) => diags.invalid(&url_path, message),
    }
    let method = method(&mut reader, diags).unwrap_or(context.endpoint_method);
    let encoding = backend_encoding(&mut reader, diags).unwrap_or(BackendEncoding::Json);
    let is_collection = reader.bool("is_collection", diags).unwrap_or(false);
    let input_headers = reader.string_list("input_headers", diags);
    let input_query_strings = reader.string_list("input_query_strings", diags);
    let mut shaping = shaping(&mut reader, diags);
    let mut extra_config = extra_config(&mut reader, diags);
    let namespaces = backend_http(&mut extra_config, &path, context.version, diags);
    shaping.flatmap = namespaces.flatmap;
    reader.finish(BACKEND_NOT_SUPPORTED, diags);
    Some(Backend {
        json_path: path,
        hosts,
        url_pattern,
        method,
        encoding,
        is_collection,
        shaping,
        errors: namespaces.errors,
        input_headers,
        input_query_strings,
        shadow: namespaces.shadow,
        send_body_on_redirect: namespaces.send_body_on_redirect,
        dns_srv: dns_srv.flatten(),
        extra_config,
    })
}

/// `sd`: `static` (the default) is the `host` list; `dns` looks the first
/// host up as a DNS SRV name, as lura's `dnssrv` subscriber does. `None`
/// for static; `Some(None)` for a `dns` setting that is refused.
fn service_discovery(
    reader: &mut ObjectReader<'_>,
    sanitize: bool,
    version: u64,
    diags: &mut Diagnostics,
) -> Option<Option<DnsSrv>> {
    let scheme = reader.string("sd_scheme", diags);
    match reader.string("sd", diags).as_deref() {
        None | Some("static") => {
            if scheme.is_some() {
                diags.push(
                    &reader.path_of("sd_scheme"),
                    crate::ProblemKind::Suspicious,
                    "only used with \"sd\": \"dns\"; ignored",
                );
            }
            None
        }
        Some("dns") => Some(dns_srv(reader, scheme, sanitize, version, diags)),
        Some(other) => {
            diags.invalid(
                &reader.path_of("sd"),
                format!("unknown service discovery \"{other}\": use static or dns"),
            );
            None
        }
    }
}

fn dns_srv(
    reader: &mut ObjectReader<'_>,
    scheme: Option<String>,
    sanitize: bool,
    version: u64,
    diags: &mut Diagnostics,
) -> Option<DnsSrv> {
    let scheme_path = reader.path_of("sd_scheme");
    let scheme = match scheme.as_deref() {
        None | Some("") => "http".to_owned(),
        Some(_) if !sepia_plugin_api::is_krakend2(version) => {
            diags.push(
                &scheme_path,
                crate::ProblemKind::Suspicious,
                "KrakenD 1.x has no such setting: the records are called over http (use version 3 to set it)",
            );
            "http".to_owned()
        }
        Some(s @ ("http" | "https")) => s.to_owned(),
        Some(other) => {
            diags.invalid(
                &scheme_path,
                format!("\"{other}\" is not a scheme the gateway can call: use http or https"),
            );
            return None;
        }
    };
    let host_path = reader.path_of("host");
    let names = reader.string_list("host", diags).unwrap_or_default();
    let Some(name) = names.first() else {
        diags.invalid(
            &host_path,
            "\"sd\": \"dns\" looks this backend's first host up as a DNS SRV name: add it, such as [\"_api._tcp.service.consul\"]",
        );
        return None;
    };
    if sanitize {
        // lura turns the host into a URL before it is looked up, and the
        // lookup of `http://name` fails on every request.
        diags.invalid(
            &host_path,
            "with \"sd\": \"dns\" the host is a DNS SRV name, which KrakenD turns into a URL (http://...) unless \"disable_host_sanitize\" is true, so that every lookup fails: set \"disable_host_sanitize\": true",
        );
        return None;
    }
    if names.len() > 1 {
        diags.push(
            &index(&host_path, 1),
            crate::ProblemKind::Suspicious,
            "only the first host is looked up with \"sd\": \"dns\", as KrakenD does",
        );
    }
    Some(DnsSrv {
        name: name.clone(),
        scheme,
    })
}

fn shaping(reader: &mut ObjectReader<'_>, diags: &mut Diagnostics) -> Shaping {
    let target = reader.string("target", diags).filter(|t| !t.is_empty());
    let allow = reader
        .string_list_any(&["allow", "whitelist"], diags)
        .unwrap_or_default();
    let deny = reader
        .string_list_any(&["deny", "blacklist"], diags)
        .unwrap_or_default();
    if !allow.is_empty() && !deny.is_empty() {
        diags.invalid(
            &reader.path_of("deny"),
            "\"allow\" and \"deny\" are both set: KrakenD uses only \"allow\" then; keep one",
        );
    }
    let mapping_path = reader.path_of("mapping");
    let mapping = reader
        .string_map("mapping", diags)
        .unwrap_or_default()
        .into_iter()
        .map(|(from, to)| match to.split_once('.') {
            // KrakenD renames to the part before the first dot; it never
            // nests. Sepia does the same, and says so.
            Some((first, _)) => {
                diags.push(
                    &join(&mapping_path, &from),
                    crate::ProblemKind::NotSupported,
                    format!("\"{to}\" would nest the value, which mapping does not do: it is renamed to \"{first}\", as KrakenD does"),
                );
                (from, first.to_owned())
            }
            None => (from, to),
        })
        .collect();
    let group = reader.string("group", diags).filter(|g| !g.is_empty());
    Shaping {
        target,
        allow,
        deny,
        mapping,
        group,
        flatmap: None,
    }
}

fn check_duplicates(endpoints: &[Endpoint], diags: &mut Diagnostics) {
    let mut first_of: HashMap<(String, Method), &str> = HashMap::new();
    for endpoint in endpoints {
        // `/a/{x}` and `/a/{y}` are one route.
        let shape = endpoint
            .endpoint
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        match first_of.entry((shape, endpoint.method)) {
            Entry::Vacant(slot) => {
                slot.insert(&endpoint.json_path);
            }
            Entry::Occupied(first) => diags.invalid(
                &format!("{}.endpoint", endpoint.json_path),
                format!(
                    "{} {} is already served by {}: each path and method once",
                    endpoint.method.as_str(),
                    endpoint.endpoint,
                    first.get()
                ),
            ),
        }
    }
}
