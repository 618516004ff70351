//! Every way a request can fail, and the one place that turns a failure into
//! the client's response: a JSON body `{"error": ..., "source": ...}` whose
//! `source` (and the `X-Sepia-Error-Source` header) says which side failed, so
//! a client can tell a gateway or backend problem from its own mistake.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use sepia_plugin_api::PluginError;

use crate::{
    body::{full, json_response, ResponseBody, COMPLETED_HEADER},
    upstream::{backend_client::describe, SendError},
};

/// Which side failed, on every error response.
const ERROR_SOURCE: HeaderName = HeaderName::from_static("x-sepia-error-source");

/// How the gateway's own refusals look to clients: as the KrakenD of the
/// configuration's generation answers them, or as Sepia's JSON errors
/// (`extra_config.sepia.json_errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorStyle {
    /// Sepia's JSON errors.
    pub json: bool,
    /// A version-3 file: KrakenD 2.x (gin 1.10, lura 2) rather than 1.x
    /// (gin 1.7, lura 1.4).
    pub krakend2: bool,
}

impl ErrorStyle {
    /// The style a configuration asks for.
    pub fn of(config: &sepia_config::Config) -> Self {
        Self {
            json: config.sepia.json_errors,
            krakend2: config.krakend2(),
        }
    }
}

/// Which side of the gateway a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The client's request was not acceptable.
    Client,
    /// A backend failed or answered something unusable.
    Backend,
    /// A plugin refused the request or failed.
    Plugin,
    /// The gateway itself.
    Gateway,
}

impl ErrorSource {
    fn as_str(self) -> &'static str {
        match self {
            ErrorSource::Client => "client",
            ErrorSource::Backend => "backend",
            ErrorSource::Plugin => "plugin",
            ErrorSource::Gateway => "gateway",
        }
    }
}

/// What kind of failure an error is, whichever variant carries it: what
/// tests, logs and metrics sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client asked for something the gateway does not serve, or sent
    /// an unreadable request.
    Client,
    /// No connection to a backend could be made.
    Connect,
    /// The endpoint's deadline passed.
    Timeout,
    /// HTTP failed on a backend connection.
    Protocol,
    /// A backend answered with a status the endpoint does not accept.
    Status,
    /// A backend's body could not be read or is not what its encoding says.
    Body,
    /// A plugin refused the request or failed.
    Plugin,
    /// The configuration produced something unusable (a backend URL that
    /// does not parse).
    Config,
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No endpoint has this path.
    #[error("no endpoint serves {path}")]
    NotFound {
        /// The requested path.
        path: String,
    },
    /// An endpoint has this path, but not this method.
    #[error("{method} is not allowed on {path}: use {allow}")]
    MethodNotAllowed {
        /// The requested method.
        method: String,
        /// The requested path.
        path: String,
        /// The methods the path serves, comma separated.
        allow: String,
    },
    /// A path parameter would climb out of the backend's `url_pattern`.
    #[error("the path {path} has a parameter that is a dot segment (. or ..), which would reach outside the backend's url_pattern: refused")]
    DotSegment {
        /// The requested path.
        path: String,
    },
    /// A path parameter is encoded twice, or holds `?` or `#` (lura 2's
    /// `paramChecker`); `reason` is lura's words for it.
    #[error("error: {reason}")]
    EncodedParam {
        /// `encoded url params`, or `invalid URL escape "%zz"`.
        reason: String,
    },
    /// The client's body could not be read or was too large.
    #[error("cannot read the request body: {reason}")]
    RequestBody {
        /// Why.
        reason: String,
        /// 400 or 413.
        status: StatusCode,
    },
    /// The client's body had not arrived when `read_timeout` passed.
    #[error("the request body was not received within read_timeout ({limit:?})")]
    RequestBodyTimeout {
        /// The `read_timeout`.
        limit: std::time::Duration,
    },
    /// The backend could not be reached, or HTTP failed on the way.
    #[error("backend {url} is unreachable: {}", describe(.cause))]
    BackendUnreachable {
        /// The backend URL called.
        url: String,
        /// What the client reported.
        #[source]
        cause: SendError,
    },
    /// `"sd": "dns"` found no host for the backend (lura's
    /// `ErrNoHosts`).
    #[error("backend {name} has no hosts available: its DNS SRV lookup found none")]
    NoHosts {
        /// The name looked up.
        name: String,
    },
    /// The backend redirected somewhere the client cannot follow.
    #[error("backend {url} is unreachable: its redirect cannot be followed: {reason}")]
    BackendRedirect {
        /// The URL that redirected.
        url: String,
        /// Why.
        reason: String,
    },
    /// The backend's URL, as built from its `url_pattern`, does not parse.
    #[error("backend {url} is unreachable: not a valid URL: {cause}")]
    BackendUrl {
        /// The URL built.
        url: String,
        /// Why it does not parse.
        #[source]
        cause: http::uri::InvalidUri,
    },
    /// The backend's body broke off or was too large.
    #[error("backend {url} is unreachable: reading the body failed: {cause}")]
    BackendBodyRead {
        /// The backend URL called.
        url: String,
        /// Why.
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend answered with a status the gateway does not treat as
    /// success.
    #[error("backend {url} answered {status}")]
    BackendStatus {
        /// The backend URL that answered.
        url: String,
        /// Its status.
        status: StatusCode,
        /// The backend's method.
        method: String,
        /// Its `url_pattern`.
        pattern: String,
    },
    /// A backend with `return_error_code` failed: its status reaches the
    /// client, and its body only with `router.return_error_msg`.
    #[error("backend {url} answered {status}")]
    BackendCode {
        /// The backend URL called.
        url: String,
        /// Its status.
        status: StatusCode,
        /// Its body and content type, when the client may see them.
        body: Option<(Bytes, Option<HeaderValue>)>,
    },
    /// A sequential backend's `url_pattern` uses a value an earlier
    /// response does not have.
    #[error("backend {url} needs {{{name}}}, which backend {backend}'s response does not have")]
    MissingResponseValue {
        /// The backend URL pattern.
        url: String,
        /// The placeholder.
        name: String,
        /// The earlier backend.
        backend: usize,
    },
    /// The backend's body is not what its `encoding` declares.
    #[error("backend {url} sent a body that is not valid {encoding}: {reason}")]
    BackendBody {
        /// The backend URL called.
        url: String,
        /// The declared encoding.
        encoding: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// Every backend of the endpoint failed.
    #[error("all {count} backends failed; first: {first}")]
    AllBackendsFailed {
        /// How many backends.
        count: usize,
        /// The first failure.
        #[source]
        first: Box<ProxyError>,
    },
    /// The endpoint's timeout fired.
    #[error("the endpoint did not complete within its timeout of {0:?}")]
    Timeout(Duration),
    /// A plugin's modifier returned an error or panicked.
    #[error("plugin {plugin}: {}", .error.message())]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// What it reported.
        #[source]
        error: PluginError,
    },
}

impl ProxyError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProxyError::NotFound { .. }
            | ProxyError::MethodNotAllowed { .. }
            | ProxyError::DotSegment { .. }
            | ProxyError::EncodedParam { .. }
            | ProxyError::RequestBody { .. }
            | ProxyError::RequestBodyTimeout { .. } => ErrorKind::Client,
            ProxyError::BackendUnreachable { cause, .. } if cause.is_connect() => {
                ErrorKind::Connect
            }
            ProxyError::BackendUnreachable { .. } => ErrorKind::Protocol,
            ProxyError::NoHosts { .. } => ErrorKind::Connect,
            ProxyError::BackendUrl { .. } => ErrorKind::Config,
            ProxyError::BackendRedirect { .. } => ErrorKind::Protocol,
            ProxyError::BackendBodyRead { .. }
            | ProxyError::BackendBody { .. }
            | ProxyError::MissingResponseValue { .. } => ErrorKind::Body,
            ProxyError::BackendStatus { .. } | ProxyError::BackendCode { .. } => ErrorKind::Status,
            ProxyError::AllBackendsFailed { first, .. } => first.kind(),
            ProxyError::Timeout(_) => ErrorKind::Timeout,
            ProxyError::Plugin { .. } => ErrorKind::Plugin,
        }
    }

    /// The status the client receives.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NotFound { .. } => StatusCode::NOT_FOUND,
            ProxyError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::DotSegment { .. } | ProxyError::EncodedParam { .. } => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::RequestBody { status, .. } | ProxyError::BackendCode { status, .. } => {
                *status
            }
            ProxyError::RequestBodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::BackendUnreachable { .. }
            | ProxyError::NoHosts { .. }
            | ProxyError::BackendUrl { .. }
            | ProxyError::BackendRedirect { .. }
            | ProxyError::BackendBodyRead { .. }
            | ProxyError::BackendStatus { .. }
            | ProxyError::MissingResponseValue { .. }
            | ProxyError::BackendBody { .. } => StatusCode::BAD_GATEWAY,
            // KrakenD answers 500 when no backend delivered anything.
            ProxyError::AllBackendsFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Plugin { error, .. } => StatusCode::from_u16(error.client_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// Which side failed.
    pub fn source_side(&self) -> ErrorSource {
        match self {
            ProxyError::NotFound { .. }
            | ProxyError::MethodNotAllowed { .. }
            | ProxyError::DotSegment { .. }
            | ProxyError::EncodedParam { .. }
            | ProxyError::RequestBody { .. }
            | ProxyError::RequestBodyTimeout { .. } => ErrorSource::Client,
            ProxyError::BackendUnreachable { .. }
            | ProxyError::NoHosts { .. }
            | ProxyError::BackendUrl { .. }
            | ProxyError::BackendRedirect { .. }
            | ProxyError::BackendBodyRead { .. }
            | ProxyError::BackendStatus { .. }
            | ProxyError::BackendCode { .. }
            | ProxyError::MissingResponseValue { .. }
            | ProxyError::BackendBody { .. }
            | ProxyError::AllBackendsFailed { .. } => ErrorSource::Backend,
            ProxyError::Timeout(_) => ErrorSource::Gateway,
            ProxyError::Plugin { .. } => ErrorSource::Plugin,
        }
    }

    /// The client's response for this error in `style`: the router's 404 and
    /// 405 as gin writes them (plain text; with KrakenD 2.x, the 405's
    /// `Allow` and lura 2's `X-Krakend-Completed: false` on both), unless the
    /// style asks for Sepia's JSON errors.
    pub fn into_response_as(self, style: ErrorStyle) -> Response<ResponseBody> {
        if style.json {
            return self.into_response();
        }
        if let ProxyError::EncodedParam { .. } = &self {
            // lura's ErrorResponseWriter writes the text; Go's server
            // sniffs its type. No endpoint ran: no KrakenD header.
            let mut response = Response::new(full(self.to_string()));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return response;
        }
        let body: &'static str = match &self {
            ProxyError::NotFound { .. } => "404 page not found",
            ProxyError::MethodNotAllowed { .. } => "405 method not allowed",
            // As Go's server words a request it refuses.
            ProxyError::DotSegment { .. } => "400 Bad Request",
            _ => return self.into_response(),
        };
        let mut response = Response::new(full(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        if style.krakend2 {
            headers.insert(COMPLETED_HEADER, HeaderValue::from_static("false"));
            if let ProxyError::MethodNotAllowed { allow, .. } = &self {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, value);
                }
            }
        }
        response
    }

    /// The client's response for an endpoint's failure. As KrakenD answers
    /// it (lura's `DefaultToHTTPError`, both generations): 500, with the
    /// error's text as `text/plain` only under `router.return_error_msg`
    /// (`reveal`), else an empty body; a client's or a plugin's error keeps
    /// its status, and `return_error_code` answers are already KrakenD's.
    /// On a signer's endpoint (`signer`), krakend-jose's bare 400. With
    /// `sepia.json_errors`, Sepia's JSON error and status instead.
    pub fn into_endpoint_response(
        self,
        style: ErrorStyle,
        reveal: bool,
        signer: bool,
    ) -> Response<ResponseBody> {
        if style.json {
            return self.into_response();
        }
        if signer {
            // krakend-jose's signer replaces the endpoint's handler and
            // aborts any failure with a bare 400, in both generations.
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return response;
        }
        let status = match &self {
            ProxyError::BackendCode { .. } => {
                let mut response = self.into_response();
                response.headers_mut().remove(ERROR_SOURCE);
                return response;
            }
            ProxyError::RequestBody { status, .. } => *status,
            ProxyError::Plugin { .. } => self.status(),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let text = if reveal {
            self.krakend_text(style.krakend2)
        } else {
            String::new()
        };
        let empty = text.is_empty();
        let mut response = Response::new(full(text));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if !empty {
            // What Go's server sniffs for the text lura writes.
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        headers.insert(COMPLETED_HEADER, HeaderValue::from_static("false"));
        response
    }

    /// The error's text as lura writes it where Sepia knows lura's words
    /// (a backend's failing status), else Sepia's description.
    fn krakend_text(&self, krakend2: bool) -> String {
        match self {
            ProxyError::BackendStatus {
                url,
                status,
                method,
                pattern,
            } => {
                if krakend2 {
                    format!(
                        "invalid status code {} [{method} {pattern}]: {url}",
                        status.as_u16()
                    )
                } else {
                    "Invalid status code".to_owned()
                }
            }
            ProxyError::NoHosts { .. } => "no hosts available".to_owned(),
            // lura writes the error a component returned, as it says it.
            ProxyError::Plugin { error, .. } => error.message().to_owned(),
            other => other.to_string(),
        }
    }

    /// The error as a client may read it: what failed, without the
    /// backends' internal addresses or the operating system's words, which
    /// stay in the log line of the failure.
    pub fn public_text(&self) -> String {
        match self {
            ProxyError::BackendUnreachable { .. } => "a backend is unreachable".into(),
            ProxyError::NoHosts { .. } => "a backend has no hosts available".into(),
            ProxyError::BackendRedirect { .. } => "a backend's redirect cannot be followed".into(),
            ProxyError::BackendUrl { .. } => "a backend's URL is not valid".into(),
            ProxyError::BackendBodyRead { .. } => "a backend's answer broke off".into(),
            ProxyError::BackendStatus { status, .. } | ProxyError::BackendCode { status, .. } => {
                format!("a backend answered {}", status.as_u16())
            }
            ProxyError::MissingResponseValue { name, .. } => {
                format!(
                    "a backend needs {{{name}}}, which an earlier backend's response does not have"
                )
            }
            ProxyError::BackendBody {
                encoding, reason, ..
            } => format!("a backend sent a body that is not valid {encoding}: {reason}"),
            ProxyError::AllBackendsFailed { count, first } => {
                format!(
                    "all {count} backends failed; first: {}",
                    first.public_text()
                )
            }
            other => other.to_string(),
        }
    }

    /// The client's response for this error, as Sepia's JSON error.
    pub fn into_response(self) -> Response<ResponseBody> {
        let status = self.status();
        let source = self.source_side();
        if let ProxyError::BackendCode { body, .. } = self {
            return backend_code_response(status, body);
        }
        let body = serde_json::json!({
            "error": self.public_text(),
            "source": source.as_str(),
        });
        let mut response = json_response(sepia_json::to_vec(&body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(ERROR_SOURCE, HeaderValue::from_static(source.as_str()));
        // lura marks every failed answer incomplete.
        headers.insert(COMPLETED_HEADER, HeaderValue::from_static("false"));
        if let ProxyError::MethodNotAllowed { allow, .. } = &self {
            if let Ok(value) = HeaderValue::from_str(allow) {
                headers.insert(header::ALLOW, value);
            }
        }
        response
    }
}

/// KrakenD's `return_error_code` answer: the backend's status, an empty
/// body unless the router reveals it, and the response marked incomplete.
fn backend_code_response(
    status: StatusCode,
    body: Option<(Bytes, Option<HeaderValue>)>,
) -> Response<ResponseBody> {
    let (body, content_type) = body.unwrap_or_default();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(value) = content_type {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(COMPLETED_HEADER, HeaderValue::from_static("false"));
    headers.insert(
        ERROR_SOURCE,
        HeaderValue::from_static(ErrorSource::Backend.as_str()),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn errors_become_json_with_their_source() {
        let response = ProxyError::Timeout(Duration::from_millis(300)).into_response();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.headers()["x-sepia-error-source"], "gateway");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(value["error"].as_str().unwrap().contains("300ms"));
    }

    #[test]
    fn plugin_statuses_outside_the_error_range_become_500() {
        let err = ProxyError::Plugin {
            plugin: "p".into(),
            error: PluginError::new(200, "odd"),
        };
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let err = ProxyError::Plugin {
            plugin: "p".into(),
            error: PluginError::new(403, "no"),
        };
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
    }
}
