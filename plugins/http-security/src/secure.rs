//! unrolled/secure's `Process`, as krakend-httpsecure configures it: the
//! host check (a bad host is a 500 `Bad Host`), the https redirect (301),
//! then the response headers. KrakenD 1.x (krakend-httpsecure 1.4) reads
//! `public_key` (HPKP) and no `allowed_hosts_are_regex`, `force_sts_header`
//! or `ssl_proxy_headers`; KrakenD 2.x the reverse. `is_development` turns
//! the host check, the redirect and STS off, as in unrolled/secure.

use regex::Regex;
use sepia_plugin_api::{
    BodyLayout, Header, Modifier, PluginError, RVec, Request, RequestContext, RequestFlow,
    Response, VALUE_TLS,
};
use sepia_plugin_settings::{Known, SettingsReader};
use serde_json::Value;

/// The context value telling the response hook the request came over
/// https (STS and HPKP go only on those).
const SECURE_REQUEST: &str = "sepia/http-security-ssl";

const BOTH: &[Known] = &[
    ("allowed_hosts", None),
    ("host_proxy_headers", None),
    ("sts_seconds", None),
    ("custom_frame_options_value", None),
    ("content_security_policy", None),
    ("ssl_host", None),
    ("referrer_policy", None),
    ("content_type_nosniff", None),
    ("browser_xss_filter", None),
    ("is_development", None),
    ("sts_include_subdomains", None),
    ("frame_deny", None),
    ("ssl_redirect", None),
];
const KRAKEND1_ONLY: &[Known] = &[("public_key", None)];
const KRAKEND2_ONLY: &[Known] = &[
    ("allowed_hosts_are_regex", None),
    ("force_sts_header", None),
    ("ssl_proxy_headers", None),
];

/// Allowed hosts: names compared without case, or patterns.
#[derive(Debug)]
enum Hosts {
    Any,
    Names(Vec<String>),
    Patterns(Vec<Regex>),
}

/// The compiled settings.
#[derive(Debug)]
pub struct Secure {
    hosts: Hosts,
    host_headers: Vec<String>,
    ssl_redirect: bool,
    ssl_host: Option<String>,
    ssl_headers: Vec<(String, String)>,
    /// `Strict-Transport-Security`, for https requests (or every request
    /// with `force_sts_header`).
    sts: Option<String>,
    force_sts: bool,
    public_key: Option<String>,
    /// The headers every answer gets.
    always: Vec<(&'static str, String)>,
}

impl Secure {
    /// Reads the configuration of a file of `config_version`; every
    /// problem at once.
    pub fn parse(config_json: &str, config_version: u64) -> Result<Self, String> {
        let krakend2 = sepia_plugin_api::is_krakend2(config_version);
        let value = SettingsReader::parse(config_json)?;
        let mut r = SettingsReader::new(&value, &[BOTH, KRAKEND1_ONLY, KRAKEND2_ONLY], |_| None);
        let (other, why) = if krakend2 {
            (KRAKEND1_ONLY, "(HPKP) is read by KrakenD 1.x only (a version-1 or 2 file), and browsers no longer honour it: remove it")
        } else {
            (
                KRAKEND2_ONLY,
                "is read by KrakenD 2.x only (a version-3 file): remove it or use a version-3 file",
            )
        };
        let present: Vec<&str> = other.iter().map(|(k, _)| *k).filter(|k| r.has(k)).collect();
        for key in present {
            r.problem(format!("\"{key}\" {why}"));
        }
        let non_empty = |text: Option<String>| text.filter(|t| !t.is_empty());
        let development = r.boolean("is_development");
        let names = r.strings("allowed_hosts");
        let regex = r.boolean("allowed_hosts_are_regex");
        let hosts = if names.is_empty() || development {
            Hosts::Any
        } else if regex {
            let mut patterns = Vec::new();
            for (i, name) in names.iter().enumerate() {
                match Regex::new(name) {
                    Ok(p) => patterns.push(p),
                    Err(e) => r.problem(format!(
                        "\"allowed_hosts\"[{i}] {name:?} is not a valid pattern: {e}"
                    )),
                }
            }
            Hosts::Patterns(patterns)
        } else {
            Hosts::Names(names)
        };
        let host_headers = r.strings("host_proxy_headers");
        let sts_seconds = r.unsigned("sts_seconds").unwrap_or(0);
        let include_subdomains = r.boolean("sts_include_subdomains");
        let sts = (sts_seconds != 0 && !development).then(|| {
            let sub = if include_subdomains {
                "; includeSubDomains"
            } else {
                ""
            };
            format!("max-age={sts_seconds}{sub}")
        });
        let ssl_headers = match r.value("ssl_proxy_headers") {
            None => Vec::new(),
            Some(Value::Object(pairs)) if pairs.values().all(Value::is_string) => pairs
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect(),
            Some(_) => {
                r.problem("\"ssl_proxy_headers\" must be an object of header names and values");
                Vec::new()
            }
        };
        let mut always = Vec::new();
        if let Some(value) = non_empty(r.string("custom_frame_options_value")) {
            always.push(("x-frame-options", value));
        } else if r.boolean("frame_deny") {
            always.push(("x-frame-options", "DENY".to_owned()));
        }
        if r.boolean("content_type_nosniff") {
            always.push(("x-content-type-options", "nosniff".to_owned()));
        }
        if r.boolean("browser_xss_filter") {
            always.push(("x-xss-protection", "1; mode=block".to_owned()));
        }
        if let Some(value) = non_empty(r.string("content_security_policy")) {
            always.push(("content-security-policy", value));
        }
        if let Some(value) = non_empty(r.string("referrer_policy")) {
            always.push(("referrer-policy", value));
        }
        let secure = Self {
            hosts,
            host_headers,
            ssl_redirect: r.boolean("ssl_redirect") && !development,
            ssl_host: non_empty(r.string("ssl_host")),
            ssl_headers,
            sts,
            force_sts: r.boolean("force_sts_header"),
            public_key: non_empty(r.string("public_key")).filter(|_| !development),
            always,
        };
        r.finish()?;
        Ok(secure)
    }

    fn host<'a>(&self, request: &'a Request) -> &'a str {
        for name in &self.host_headers {
            if let Some(value) = request.header(name).and_then(|h| h.value_str()) {
                if !value.is_empty() {
                    return value;
                }
            }
        }
        request
            .header("host")
            .and_then(|h| h.value_str())
            .unwrap_or("")
    }

    fn host_allowed(&self, host: &str) -> bool {
        match &self.hosts {
            Hosts::Any => true,
            Hosts::Names(names) => names.iter().any(|n| n.eq_ignore_ascii_case(host)),
            Hosts::Patterns(patterns) => patterns.iter().any(|p| p.is_match(host)),
        }
    }

    /// A request is https when it came to the gateway over TLS (as Go's
    /// `r.TLS != nil`), or when a trusted proxy header says so.
    fn is_ssl(&self, request: &Request, context: &RequestContext) -> bool {
        context.value(VALUE_TLS) == Some("true")
            || self.ssl_headers.iter().any(|(name, value)| {
                request.header(name).and_then(|h| h.value_str()) == Some(value.as_str())
            })
    }
}

fn answer(status: u16, headers: Vec<Header>, body: &str) -> RequestFlow {
    RequestFlow::Respond(Response {
        status,
        headers: RVec::from(headers),
        body: RVec::from(body.as_bytes().to_vec()),
        complete: true,
    })
}

impl Modifier for Secure {
    fn on_request(&self, request: &mut Request) -> Result<RequestFlow, PluginError> {
        self.on_request_with(request, &mut RequestContext::default())
    }

    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        let host = self.host(request).to_owned();
        if !self.host_allowed(&host) {
            tracing::info!(host = %host, "request for a host not allowed");
            // Go's `http.Error`.
            let headers = vec![
                Header::new("content-type", "text/plain; charset=utf-8"),
                Header::new("x-content-type-options", "nosniff"),
            ];
            return Ok(answer(500, headers, "Bad Host\n"));
        }
        let ssl = self.is_ssl(request, context);
        if self.ssl_redirect && !ssl {
            let target_host = self.ssl_host.as_deref().unwrap_or(&host);
            let mut location = format!("https://{target_host}{}", request.path);
            if !request.query.is_empty() {
                location.push('?');
                location.push_str(&request.query);
            }
            // Go's `http.Redirect` writes a link body for GET and HEAD.
            let body = if request.method == "GET" || request.method == "HEAD" {
                format!("<a href=\"{location}\">Moved Permanently</a>.\n\n")
            } else {
                String::new()
            };
            let mut headers = vec![Header::new("location", location.as_bytes())];
            if !body.is_empty() {
                headers.push(Header::new("content-type", "text/html; charset=utf-8"));
            }
            return Ok(answer(301, headers, &body));
        }
        if ssl {
            context.set_value(SECURE_REQUEST, "true");
        }
        Ok(RequestFlow::Continue)
    }

    fn on_response_with(
        &self,
        response: &mut Response,
        context: &mut RequestContext,
        _layout: &BodyLayout,
    ) -> Result<(), PluginError> {
        let ssl = context.value(SECURE_REQUEST).is_some();
        let mut set = |name: &str, value: &str| {
            response
                .headers
                .retain(|h| !h.name.eq_ignore_ascii_case(name));
            response.headers.push(Header::new(name, value.as_bytes()));
        };
        if let Some(sts) = self.sts.as_deref().filter(|_| ssl || self.force_sts) {
            set("strict-transport-security", sts);
        }
        if let Some(key) = self.public_key.as_deref().filter(|_| ssl) {
            set("public-key-pins", key);
        }
        for (name, value) in &self.always {
            set(name, value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generation_reads_its_settings() {
        assert!(Secure::parse(r#"{"frame_deny":true,"force_sts_header":true}"#, 3).is_ok());
        let err = Secure::parse(r#"{"force_sts_header":true,"colour":1}"#, 2).unwrap_err();
        assert!(err.contains("KrakenD 2.x only"), "{err}");
        assert!(err.contains("unknown setting \"colour\""), "{err}");
        let err = Secure::parse(r#"{"public_key":"pin-sha256=..."}"#, 3).unwrap_err();
        assert!(err.contains("KrakenD 1.x only"), "{err}");
        let err = Secure::parse(
            r#"{"allowed_hosts":["(bad"],"allowed_hosts_are_regex":true}"#,
            3,
        )
        .unwrap_err();
        assert!(err.contains("not a valid pattern"), "{err}");
    }
}
