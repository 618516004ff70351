//! The configuration as Sepia uses it, after parsing and validation: every
//! default applied, every alias resolved.

use std::{net::IpAddr, time::Duration};

use serde_json::{Map, Value};

use crate::namespace::canonical;

/// HTTP methods an endpoint or backend may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The upper-case method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    /// Whether a client's body is forwarded to the backend.
    pub fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

/// How a backend's response body is decoded (`backend[].encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendEncoding {
    /// A JSON object (or an array with `is_collection`).
    Json,
    /// Any JSON value: objects as they are, arrays under `collection`, other
    /// values under `content`.
    SafeJson,
    /// The body as text under `content`.
    String,
    /// Passed to the client untouched: status, headers and body.
    NoOp,
    /// An XML document, read as krakend-xml (mxj) reads it.
    Xml,
    /// An RSS or Atom feed, read as krakend-rss (gofeed) reads it.
    Rss,
}

/// How an endpoint writes its response (`output_encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputEncoding {
    /// A JSON object with sorted keys.
    Json,
    /// The `collection` array of the merged response, as a JSON array.
    JsonCollection,
    /// The `content` value as plain text.
    String,
    /// The backend's response as it came.
    NoOp,
    /// XML, as krakend-xml (mxj) writes it.
    Xml,
    /// YAML, as gin writes it.
    Yaml,
    /// JSON, XML or YAML, as the client's `Accept` asks (gin's
    /// `NegotiateFormat`).
    Negotiate,
}

/// An endpoint's or backend's `extra_config`: namespaces as written, with
/// their canonical (v3 alias) spelling for look-ups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtraConfig {
    entries: Vec<ExtraConfigEntry>,
}

/// One namespace of an `extra_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraConfigEntry {
    /// The namespace as the file spells it.
    pub namespace: String,
    /// Its canonical spelling (`auth/signer` for the krakend-jose import path).
    pub canonical: String,
    /// Its configuration.
    pub value: Value,
}

impl ExtraConfig {
    pub(crate) fn push(&mut self, namespace: String, value: Value) {
        let canonical = canonical(&namespace).into_owned();
        self.entries.push(ExtraConfigEntry {
            namespace,
            canonical,
            value,
        });
    }

    /// The configuration of a namespace, in either spelling.
    pub fn get(&self, namespace: &str) -> Option<&Value> {
        let wanted = canonical(namespace);
        self.entries
            .iter()
            .find(|e| e.canonical == wanted)
            .map(|e| &e.value)
    }

    /// Every namespace, in file order.
    pub fn entries(&self) -> &[ExtraConfigEntry] {
        &self.entries
    }

    /// Whether there are no namespaces.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes a namespace the gateway itself reads, in either spelling.
    pub(crate) fn take(&mut self, namespace: &str) -> Option<ExtraConfigEntry> {
        let wanted = canonical(namespace);
        let position = self.entries.iter().position(|e| e.canonical == wanted)?;
        Some(self.entries.remove(position))
    }
}

/// When an endpoint's static data is added to its response
/// (`extra_config.proxy.static.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticStrategy {
    /// To every response, and in place of every failure.
    Always,
    /// When no backend failed.
    Success,
    /// When a backend failed (the data replaces the failure).
    Errored,
    /// When every backend answered and no backend failed.
    Complete,
    /// When a backend failed or the response is partial.
    Incomplete,
}

/// One of `proxy.sequential_propagated_params`: a value of an earlier
/// backend's response handed to each later backend as a parameter (its
/// hooks read it, a Lua script with `req:params("Resp0_user.id")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropagatedParam {
    /// The parameter's name, as lura names it: `Resp0_user.id`, `Resp1`.
    pub name: String,
    /// The backend whose response it reads.
    pub backend: usize,
    /// The dot path into that backend's data; empty for its whole (no-op)
    /// body.
    pub path: Vec<String>,
}

/// Data added to an endpoint's response (`extra_config.proxy.static`).
#[derive(Debug, Clone, PartialEq)]
pub struct StaticResponse {
    /// When the data is added.
    pub strategy: StaticStrategy,
    /// Top-level keys added, replacing a backend's keys of the same name.
    pub data: Map<String, Value>,
}

/// What the client learns when a backend answers with a status other than
/// 200 or 201 (`extra_config."backend/http"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BackendErrors {
    /// Sepia's default: a single backend's 4xx reaches the client whole;
    /// any other failure is a gateway error.
    #[default]
    Default,
    /// `return_error_code`: a single backend's status reaches the client,
    /// with an empty body (the body too with `router.return_error_msg`).
    StatusCode,
    /// `return_error_details`: the status, body and content type go under
    /// `error_<name>` in the response, which counts as incomplete.
    Details(String),
}

/// Where plugins are loaded from (`plugin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// The folder to scan.
    pub folder: String,
    /// A file is loaded when its name contains this text (KrakenD's rule);
    /// empty means every shared library in the folder.
    pub pattern: String,
}

/// How a backend's decoded response is reshaped before merging, in
/// KrakenD's order: `target`, `allow` or `deny`, `mapping`, `group`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shaping {
    /// Keep only the object under this (dot-separated) key.
    pub target: Option<String>,
    /// Keep only these dot paths (`whitelist` in version 2).
    pub allow: Vec<String>,
    /// Remove these dot paths (`blacklist` in version 2).
    pub deny: Vec<String>,
    /// Rename top-level keys: `(from, to)`.
    pub mapping: Vec<(String, String)>,
    /// Wrap everything under this key.
    pub group: Option<String>,
    /// `proxy.flatmap_filter`: when set, these operations replace `allow`,
    /// `deny` and `mapping` (as lura's formatter does), between `target`
    /// and `group`.
    pub flatmap: Option<Vec<FlatmapOp>>,
}

impl Shaping {
    /// Whether any setting changes the answer (none is set: it passes as
    /// the backend gave it).
    pub fn reshapes(&self) -> bool {
        *self != Self::default()
    }
}

/// One `flatmap_filter` operation; paths are split at dots, `*` matches
/// every key or index of a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlatmapOp {
    /// Moves (or renames) the value at the first path to the second.
    Move(Vec<String>, Vec<String>),
    /// Appends the array at the first path to the array at the second, and
    /// removes the first.
    Append(Vec<String>, Vec<String>),
    /// Deletes every path.
    Del(Vec<Vec<String>>),
}

/// A backend of an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// Where it is in the file (`endpoints[0].backend[1]`).
    pub json_path: String,
    /// Base URLs (scheme added, trailing `/` removed).
    pub hosts: Vec<String>,
    /// Path and query with `{param}` placeholders.
    pub url_pattern: String,
    /// Method to call the backend with (the endpoint's by default).
    pub method: Method,
    /// How to decode its response.
    pub encoding: BackendEncoding,
    /// The response is a JSON array, kept under `collection`.
    pub is_collection: bool,
    /// How the response is reshaped.
    pub shaping: Shaping,
    /// How its failures reach the client (`backend/http`).
    pub errors: BackendErrors,
    /// Narrows the endpoint's `input_headers` for this backend.
    pub input_headers: Option<Vec<String>>,
    /// Narrows the endpoint's `input_query_strings` for this backend.
    pub input_query_strings: Option<Vec<String>>,
    /// `proxy.shadow`: the backend gets a copy of each request and its
    /// answer is ignored.
    pub shadow: Option<ShadowBackend>,
    /// `backend/http/client.send_body_on_redirect` (lura 2): a 307 or 308
    /// answer to a request with a body is followed with the body. Without
    /// it, as Go's client cannot replay the body lura hands it, such an
    /// answer is the backend's answer.
    pub send_body_on_redirect: bool,
    /// `sd: "dns"`: the hosts are found by a DNS SRV lookup instead of
    /// `hosts` (then empty).
    pub dns_srv: Option<DnsSrv>,
    /// Its `extra_config`, without the namespaces the gateway reads itself.
    pub extra_config: ExtraConfig,
}

/// A backend's DNS SRV service discovery (`"sd": "dns"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsSrv {
    /// The name looked up: the backend's first `host`, as written.
    pub name: String,
    /// The scheme of the URLs made of the records (`sd_scheme`; `http`).
    pub scheme: String,
}

/// A shadow backend's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowBackend {
    /// `proxy.shadow_timeout` (lura 2): how long its call may take; the
    /// endpoint's timeout when absent.
    pub timeout: Option<Duration>,
}

/// An endpoint the gateway serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Where it is in the file (`endpoints[3]`).
    pub json_path: String,
    /// Path with `{param}` segments.
    pub endpoint: String,
    /// Its method.
    pub method: Method,
    /// `{param}` names, in path order.
    pub params: Vec<String>,
    /// Its backends (at least one).
    pub backends: Vec<Backend>,
    /// The whole request's time limit.
    pub timeout: Duration,
    /// `Cache-Control: public, max-age=N` on complete GET responses.
    pub cache_ttl: Option<Duration>,
    /// Identical calls made to each backend at once; the first good answer
    /// wins.
    pub concurrent_calls: u32,
    /// Client headers forwarded to backends (`*` for all); KrakenD's default
    /// is `Content-Type` alone.
    pub input_headers: Vec<String>,
    /// Client query parameters forwarded to backends (`*` for all).
    pub input_query_strings: Vec<String>,
    /// How the response is written.
    pub output_encoding: OutputEncoding,
    /// Backends are called one after the other, each able to use the
    /// earlier responses in its `url_pattern` (`proxy.sequential`).
    pub sequential: bool,
    /// `proxy.sequential_propagated_params` (version-3 files; KrakenD 1.x
    /// has no such setting).
    pub propagated_params: Vec<PropagatedParam>,
    /// Data added to the response (`proxy.static`).
    pub static_response: Option<StaticResponse>,
    /// `proxy.flatmap_filter`: operations on the merged data, before the
    /// static data is added (lura's middleware order).
    pub flatmap: Option<Vec<FlatmapOp>>,
    /// Its `extra_config`, without the namespaces the gateway reads itself.
    pub extra_config: ExtraConfig,
}

impl Endpoint {
    /// Whether the backend's response passes through untouched (`no-op`
    /// output, or a single `no-op` backend): status, headers and bytes.
    pub fn passes_through(&self) -> bool {
        self.output_encoding == OutputEncoding::NoOp
            || matches!(self.backends.as_slice(), [only] if only.encoding == BackendEncoding::NoOp)
    }
}

/// A whole, valid configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file's `version` (1, 2 or 3).
    pub version: u64,
    /// The service name.
    pub name: String,
    /// Port to listen on.
    pub port: u16,
    /// Address to listen on.
    pub listen_ip: IpAddr,
    /// Default backend hosts.
    pub host: Vec<String>,
    /// Default endpoint timeout.
    pub timeout: Duration,
    /// Idle keep-alive connection timeout of the server.
    pub idle_timeout: Option<Duration>,
    /// Time allowed to read a request's headers.
    pub read_header_timeout: Option<Duration>,
    /// `read_timeout`: time allowed to read a whole request, its body
    /// included (and its headers, the idle wait too, when their own
    /// timeouts are unset, as Go's server reads it).
    pub read_timeout: Option<Duration>,
    /// `write_timeout`: from a request's head being read to its response
    /// written; past it the connection (HTTP/1) or the stream (HTTP/2)
    /// is cut, as Go's write deadline does.
    pub write_timeout: Option<Duration>,
    /// `max_header_bytes` (version 3; Go's 1 MiB otherwise): how large a
    /// request's head may be.
    pub max_header_bytes: usize,
    /// `disable_compression`: backends are not asked for gzip (Go's
    /// transport then neither adds `Accept-Encoding` nor inflates).
    pub disable_compression: bool,
    /// How backends are connected to and their connections kept.
    pub backend_transport: crate::transport::BackendTransport,
    /// HTTPS for the listener (`tls`, unless `disabled`).
    pub tls: Option<crate::tls::ServerTls>,
    /// TLS towards backends (`client_tls`, `allow_insecure_connections`).
    pub backend_tls: Option<crate::tls::BackendTls>,
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Top-level `extra_config`, less the namespaces the configuration
    /// model reads itself (`sepia`).
    pub extra_config: ExtraConfig,
    /// Sepia's switches.
    pub sepia: SepiaSwitches,
    /// Plugin folder and pattern, when configured.
    pub plugin: Option<PluginSettings>,
    /// `/__debug/` answers and logs every request.
    pub debug_endpoint: bool,
    /// `/__echo/` answers with the request it received.
    pub echo_endpoint: bool,
    /// How often DNS SRV names are looked up again (`dns_cache_ttl`, 30 s).
    pub dns_cache_ttl: Duration,
}

/// Sepia's improvements that change what a client sees, as named switches in
/// the top-level `extra_config.sepia`. Each is off by default, so that a
/// file behaves as the KrakenD of its generation does; `sepia check` lists
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SepiaSwitches {
    /// `json_errors`: the gateway's own refusals of unknown paths and
    /// methods, and its endpoints' failures, answer `{"error": ...,
    /// "source": ...}` with `X-Sepia-Error-Source` (and `Allow` on a 405)
    /// and Sepia's statuses (502 for a failing backend, 504 for a timeout),
    /// instead of KrakenD's plain-text `404 page not found`, `405 method
    /// not allowed` and lura's 500.
    pub json_errors: bool,
    /// `pass_backend_status`: an endpoint answers with its backend's success
    /// status (a 201 stays 201) instead of lura's 200, which its renderers
    /// write whatever the backend said.
    pub pass_backend_status: bool,
    /// `own_identity`: backends get Sepia's `User-Agent` and clients no
    /// `X-Krakend` version header, instead of those of the KrakenD release
    /// of the file's generation.
    pub own_identity: bool,
    /// `pass_backend_errors`: a single backend's 4xx reaches the client
    /// with its status and body, instead of lura's 500.
    pub pass_backend_errors: bool,
    /// `append_forwarded_for`: the client address is the connection's
    /// peer (no forwarding header is trusted) and backends get
    /// `X-Forwarded-For` with the peer appended to what the client sent,
    /// instead of gin's client address (by default the left-most
    /// `X-Forwarded-For` address, which a client can write) sent alone.
    pub append_forwarded_for: bool,
    /// `plugins_endpoint`: `GET /__plugins` lists the loaded plugins (name,
    /// version, ABI, file name, namespaces). Off by default: it tells any
    /// client what the gateway runs.
    pub plugins_endpoint: bool,
    /// `max_connections` (a limit, not a switch): client connections
    /// served at once; more are closed as soon as they are accepted.
    /// `None`: half the open-file limit, less a reserve.
    pub max_connections: Option<usize>,
    /// `max_request_body` (a limit): the largest client body, in bytes,
    /// one request may send (413 beyond). `None`: 32 MiB.
    pub max_request_body: Option<usize>,
    /// `request_bodies_in_flight` (a limit): the bytes of client bodies all
    /// requests together may hold (503 beyond). `None`: 256 MiB.
    pub request_bodies_in_flight: Option<usize>,
}

impl SepiaSwitches {
    /// Every switch with its value, for `sepia check`.
    pub fn listed(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("json_errors", self.json_errors),
            ("pass_backend_status", self.pass_backend_status),
            ("own_identity", self.own_identity),
            ("pass_backend_errors", self.pass_backend_errors),
            ("append_forwarded_for", self.append_forwarded_for),
            ("plugins_endpoint", self.plugins_endpoint),
        ]
    }
}

impl Config {
    /// Whether the file is served as KrakenD 2.x (`"version": 3`) rather
    /// than 1.x.
    pub fn krakend2(&self) -> bool {
        sepia_plugin_api::is_krakend2(self.version)
    }

    /// Every namespace used by any endpoint or backend, canonical, sorted,
    /// without repeats.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .endpoints
            .iter()
            .flat_map(|e| {
                e.extra_config
                    .entries()
                    .iter()
                    .chain(e.backends.iter().flat_map(|b| b.extra_config.entries()))
            })
            .map(|entry| entry.canonical.clone())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}
