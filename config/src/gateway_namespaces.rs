//! The KrakenD namespaces the gateway serves itself rather than through a
//! plugin: `proxy` at endpoints (static data, sequential calls) and
//! `backend/http` at backends (how a backend's error reaches the client).
//! They are taken out of the `extra_config` they sit in, so that no plugin
//! is looked for and no "no plugin serves this namespace" warning is given.

use serde_json::Value;

use crate::{
    diagnostics::{join, Diagnostics, ProblemKind},
    model::{
        BackendErrors, ExtraConfig, ExtraConfigEntry, FlatmapOp, PropagatedParam, SepiaSwitches,
        ShadowBackend, StaticResponse, StaticStrategy,
    },
    reader::{type_name, ObjectReader},
};

const PROXY: &str = "proxy";
const BACKEND_HTTP: &str = "backend/http";
const BACKEND_HTTP_CLIENT: &str = "backend/http/client";
/// `backend/http/client` settings only KrakenD Enterprise reads.
const HTTP_CLIENT_ENTERPRISE: &[&str] = &["client_tls", "no_redirect", "proxy_address"];
/// Sepia's own switches, at the top level.
pub const SEPIA: &str = "sepia";

/// Endpoint `proxy` settings Sepia does not implement yet.
const PROXY_NOT_SUPPORTED: &[&str] = &[];
/// Backend `proxy` settings Sepia does not implement yet.
const BACKEND_PROXY_NOT_SUPPORTED: &[&str] = &[];

/// Where a namespace of an `extra_config` is: `endpoints[0].extra_config.proxy`.
fn namespace_path(parent: &str, entry: &ExtraConfigEntry) -> String {
    join(&join(parent, "extra_config"), &entry.namespace)
}

/// What an endpoint's `proxy` namespace asks for.
#[derive(Debug, Default)]
pub(crate) struct ProxySettings {
    pub(crate) sequential: bool,
    pub(crate) static_response: Option<StaticResponse>,
    pub(crate) flatmap: Option<Vec<FlatmapOp>>,
    pub(crate) propagated_params: Vec<PropagatedParam>,
}

/// Takes `proxy` out of an endpoint's `extra_config` and reads it.
pub(crate) fn endpoint_proxy(
    extra: &mut ExtraConfig,
    parent: &str,
    version: u64,
    diags: &mut Diagnostics,
) -> ProxySettings {
    let mut settings = ProxySettings::default();
    let Some(entry) = extra.take(PROXY) else {
        return settings;
    };
    let path = namespace_path(parent, &entry);
    let Some(mut reader) = ObjectReader::of(path, &entry.value, diags) else {
        return settings;
    };
    settings.sequential = reader.bool("sequential", diags).unwrap_or(false);
    settings.propagated_params = propagated_params(&mut reader, version, diags);
    settings.flatmap = flatmap_filter(&mut reader, diags);
    if let Some(static_reader) = reader.object("static", diags) {
        settings.static_response = static_response(static_reader, diags);
    }
    combiner(&mut reader, diags);
    reader.finish(PROXY_NOT_SUPPORTED, diags);
    settings
}

/// `combiner`: lura merges with the combiner registered under the name, and
/// with its default one for a name it has none for; KrakenD CE registers
/// none (both generations), so every name merges as the default one.
fn combiner(reader: &mut ObjectReader<'_>, diags: &mut Diagnostics) {
    match reader.string("combiner", diags) {
        Some(name) if name != "default" => diags.push(
            &reader.path_of("combiner"),
            ProblemKind::Suspicious,
            format!("KrakenD CE registers no response combiner \"{name}\": it merges the backends' answers as its default one does, and so does Sepia"),
        ),
        _ => {}
    }
}

fn static_response(
    mut reader: ObjectReader<'_>,
    diags: &mut Diagnostics,
) -> Option<StaticResponse> {
    let strategy = match reader.string("strategy", diags).as_deref() {
        // KrakenD's default.
        None | Some("always") => StaticStrategy::Always,
        Some("success") => StaticStrategy::Success,
        Some("errored") => StaticStrategy::Errored,
        Some("complete") => StaticStrategy::Complete,
        Some("incomplete") => StaticStrategy::Incomplete,
        Some(other) => {
            // KrakenD quietly treats an unknown strategy as "always".
            diags.invalid(
                &reader.path_of("strategy"),
                format!("unknown strategy \"{other}\": use always, success, errored, complete or incomplete"),
            );
            StaticStrategy::Always
        }
    };
    let data_path = reader.path_of("data");
    let data = match reader.raw("data") {
        Some(Value::Object(map)) => Some(map.clone()),
        Some(other) => {
            diags.invalid(
                &data_path,
                format!(
                    "expected an object of the keys to add, found {}",
                    type_name(other)
                ),
            );
            None
        }
        None => {
            // KrakenD quietly ignores a static response without data.
            diags.invalid(
                &data_path,
                "missing: the object whose keys are added to the response",
            );
            None
        }
    };
    reader.finish(&[], diags);
    Some(StaticResponse {
        strategy,
        data: data?,
    })
}

/// Takes Sepia's switches (top-level `extra_config.sepia`) out of the
/// top-level `extra_config` and reads them.
pub(crate) fn sepia_switches(extra: &mut ExtraConfig, diags: &mut Diagnostics) -> SepiaSwitches {
    let mut switches = SepiaSwitches::default();
    let Some(entry) = extra.take(SEPIA) else {
        return switches;
    };
    let path = namespace_path("", &entry);
    let Some(mut reader) = ObjectReader::of(path, &entry.value, diags) else {
        return switches;
    };
    switches.json_errors = reader.bool("json_errors", diags).unwrap_or(false);
    switches.pass_backend_status = reader.bool("pass_backend_status", diags).unwrap_or(false);
    switches.own_identity = reader.bool("own_identity", diags).unwrap_or(false);
    switches.pass_backend_errors = reader.bool("pass_backend_errors", diags).unwrap_or(false);
    switches.append_forwarded_for = reader.bool("append_forwarded_for", diags).unwrap_or(false);
    switches.plugins_endpoint = reader.bool("plugins_endpoint", diags).unwrap_or(false);
    switches.max_connections = match reader.uint("max_connections", 1 << 24, diags) {
        Some(0) => {
            diags.invalid(
                &reader.path_of("max_connections"),
                "0 would serve nobody: set at least 1, or remove it for the default",
            );
            None
        }
        other => other.map(|n| n as usize),
    };
    for (key, slot) in [
        ("max_request_body", &mut switches.max_request_body),
        (
            "request_bodies_in_flight",
            &mut switches.request_bodies_in_flight,
        ),
    ] {
        *slot = match reader.uint(key, 1 << 40, diags) {
            Some(0) => {
                diags.invalid(
                    &reader.path_of(key),
                    "0 bytes would refuse every body: set a size in bytes, or remove it for the default",
                );
                None
            }
            other => other.map(|n| n as usize),
        };
    }
    reader.finish(&[], diags);
    switches
}

/// What a backend's own namespaces (`backend/http`, `backend/http/client`,
/// the backend-level `proxy`) ask of the gateway.
#[derive(Debug, Default)]
pub(crate) struct BackendSettings {
    pub(crate) errors: BackendErrors,
    pub(crate) flatmap: Option<Vec<FlatmapOp>>,
    pub(crate) shadow: Option<ShadowBackend>,
    pub(crate) send_body_on_redirect: bool,
}

/// Takes the namespaces the gateway reads itself out of a backend's
/// `extra_config` and reads them.
pub(crate) fn backend_http(
    extra: &mut ExtraConfig,
    parent: &str,
    version: u64,
    diags: &mut Diagnostics,
) -> BackendSettings {
    let mut settings = BackendSettings::default();
    if let Some(entry) = extra.take(PROXY) {
        let path = namespace_path(parent, &entry);
        if let Some(mut reader) = ObjectReader::of(path, &entry.value, diags) {
            settings.flatmap = flatmap_filter(&mut reader, diags);
            let timeout = reader.duration("shadow_timeout", diags);
            if reader.bool("shadow", diags) == Some(true) {
                settings.shadow = Some(ShadowBackend { timeout });
            }
            reader.finish(BACKEND_PROXY_NOT_SUPPORTED, diags);
        }
    }
    settings.send_body_on_redirect = http_client(extra, parent, version, diags);
    settings.errors = backend_errors(extra, parent, diags);
    settings
}

/// `backend/http/client`: lura 2 (KrakenD CE) reads `send_body_on_redirect`
/// alone; the other settings are KrakenD Enterprise's, and lura 1.4 has no
/// such namespace.
fn http_client(
    extra: &mut ExtraConfig,
    parent: &str,
    version: u64,
    diags: &mut Diagnostics,
) -> bool {
    let Some(entry) = extra.take(BACKEND_HTTP_CLIENT) else {
        return false;
    };
    let path = namespace_path(parent, &entry);
    if !sepia_plugin_api::is_krakend2(version) {
        diags.push(
            &path,
            ProblemKind::NotSupported,
            "KrakenD 1.x, which serves version-1 and 2 files, has no backend/http/client: ignored (use \"version\": 3)",
        );
        return false;
    }
    let Some(mut reader) = ObjectReader::of(path, &entry.value, diags) else {
        return false;
    };
    let send_body = reader.bool("send_body_on_redirect", diags).unwrap_or(false);
    for key in HTTP_CLIENT_ENTERPRISE {
        if reader.raw(key).is_some() {
            diags.push(
                &reader.path_of(key),
                ProblemKind::NotSupported,
                "a KrakenD Enterprise setting: KrakenD CE ignores it, and so does Sepia",
            );
        }
    }
    reader.finish(&[], diags);
    send_body
}

/// `flatmap_filter`: its operations, each `{"type", "args"}`. KrakenD
/// skips what it cannot read; Sepia names it.
fn flatmap_filter(
    reader: &mut ObjectReader<'_>,
    diags: &mut Diagnostics,
) -> Option<Vec<FlatmapOp>> {
    let path = reader.path_of("flatmap_filter");
    let items = reader.array("flatmap_filter", diags)?;
    let split = |text: &str| text.split('.').map(str::to_owned).collect::<Vec<_>>();
    let mut ops = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        let args: Option<Vec<&str>> = item
            .get("args")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_str).collect());
        let Some(args) = args.filter(|a| !a.is_empty() && a.iter().all(|s| !s.is_empty())) else {
            diags.invalid(&at, "\"args\" must be a non-empty array of dot paths");
            continue;
        };
        match (kind, args.as_slice()) {
            ("move", [from, to]) => ops.push(FlatmapOp::Move(split(from), split(to))),
            ("append", [from, to]) => ops.push(FlatmapOp::Append(split(from), split(to))),
            ("del", paths) => ops.push(FlatmapOp::Del(paths.iter().map(|p| split(p)).collect())),
            ("move" | "append", _) => {
                diags.invalid(&at, format!("\"{kind}\" takes two paths: [from, to]"))
            }
            _ => diags.invalid(&at, format!("\"type\" {kind:?} is not move, append or del")),
        }
    }
    if ops.is_empty() {
        return None;
    }
    Some(ops)
}

fn backend_errors(extra: &mut ExtraConfig, parent: &str, diags: &mut Diagnostics) -> BackendErrors {
    let Some(entry) = extra.take(BACKEND_HTTP) else {
        return BackendErrors::Default;
    };
    let path = namespace_path(parent, &entry);
    let Some(mut reader) = ObjectReader::of(path, &entry.value, diags) else {
        return BackendErrors::Default;
    };
    let details = reader.string("return_error_details", diags);
    let code = reader.bool("return_error_code", diags).unwrap_or(false);
    let errors = match details {
        Some(name) if name.is_empty() => {
            diags.invalid(
                &reader.path_of("return_error_details"),
                "empty: name the key the errors go under (error_<name>)",
            );
            BackendErrors::Default
        }
        Some(name) => {
            if code {
                // KrakenD reads return_error_details first and never looks
                // at return_error_code then.
                diags.push(
                    &reader.path_of("return_error_code"),
                    ProblemKind::NotSupported,
                    "ignored: return_error_details is set too, and wins (as in KrakenD); keep one",
                );
            }
            BackendErrors::Details(name)
        }
        None if code => BackendErrors::StatusCode,
        None => BackendErrors::Default,
    };
    reader.finish(&[], diags);
    errors
}

/// What follows the `resp` (or `Resp`, as KrakenD also spells it) of a
/// placeholder that names an earlier response.
fn after_resp(name: &str) -> Option<&str> {
    name.strip_prefix("resp")
        .or_else(|| name.strip_prefix("Resp"))
}

/// `sequential_propagated_params`: `respN_path` (a value of backend N's
/// data) or `respN` (its whole no-op body), as lura 2 reads them. Version-1
/// and 2 files are served as KrakenD 1.x, which has no such setting.
fn propagated_params(
    reader: &mut ObjectReader<'_>,
    version: u64,
    diags: &mut Diagnostics,
) -> Vec<PropagatedParam> {
    const KEY: &str = "sequential_propagated_params";
    let path = reader.path_of(KEY);
    let Some(names) = reader.string_list(KEY, diags) else {
        return Vec::new();
    };
    if !sepia_plugin_api::is_krakend2(version) {
        diags.push(
            &path,
            ProblemKind::NotSupported,
            "KrakenD 1.x, which serves version-1 and 2 files, has no sequential_propagated_params: ignored (use \"version\": 3)",
        );
        return Vec::new();
    }
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let whole = is_whole_response_reference(name).then(|| {
            let digits = after_resp(name).unwrap_or_default();
            (digits.parse::<usize>().ok(), "")
        });
        let (backend, field) = match whole {
            Some((Some(backend), field)) => (backend, field),
            Some((None, _)) => {
                diags.invalid(&format!("{path}[{i}]"), "the backend number is too large");
                continue;
            }
            None => match response_reference(name) {
                Some(found) => found,
                None => {
                    diags.invalid(
                        &format!("{path}[{i}]"),
                        format!("\"{name}\" is not respN_field (a value of backend N's response) or respN (its whole body)"),
                    );
                    continue;
                }
            },
        };
        let suffix = if field.is_empty() {
            String::new()
        } else {
            format!("_{field}")
        };
        out.push(PropagatedParam {
            name: format!("Resp{backend}{suffix}"),
            backend,
            path: if field.is_empty() {
                Vec::new()
            } else {
                field.split('.').map(str::to_owned).collect()
            },
        });
    }
    out
}

/// `{respN}`: KrakenD passes backend N's whole (no-op) response.
pub(crate) fn is_whole_response_reference(name: &str) -> bool {
    after_resp(name)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// A `{respN_field}` placeholder of a sequential backend: the index of the
/// earlier backend and the dot path into its response.
pub fn response_reference(name: &str) -> Option<(usize, &str)> {
    let rest = after_resp(name)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let index = rest[..digits].parse().ok()?;
    let field = rest[digits..].strip_prefix('_')?;
    let valid = !field.is_empty()
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    valid.then_some((index, field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_references_name_a_backend_and_a_path() {
        assert_eq!(response_reference("resp0_id"), Some((0, "id")));
        assert_eq!(response_reference("Resp12_user.id"), Some((12, "user.id")));
        assert_eq!(response_reference("resp1_a-b_c"), Some((1, "a-b_c")));
        assert_eq!(response_reference("resp0"), None);
        assert_eq!(response_reference("resp_id"), None);
        assert_eq!(response_reference("resp0_"), None);
        assert_eq!(response_reference("resp0_a b"), None);
        assert_eq!(response_reference("id"), None);
        assert!(is_whole_response_reference("resp0"));
        assert!(!is_whole_response_reference("resp"));
        assert!(!is_whole_response_reference("resp0_id"));
    }
}
