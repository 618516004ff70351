//! rs/cors' decisions, per generation: which origins, methods and headers
//! pass, and the headers a preflight or an actual request gets. KrakenD 1.x
//! uses rs/cors 1.6 (preflight 200, header names canonicalised and matched
//! in any order, `Origin` always allowed), KrakenD 2.x rs/cors 1.11
//! (preflight 204, header names matched lower-case in the sorted order
//! browsers send, the request's own values echoed back).

use sepia_plugin_api::canonical_header_name;

use crate::settings::Settings;

/// A `prefix*suffix` origin pattern.
#[derive(Debug, Clone)]
struct Wildcard {
    prefix: String,
    suffix: String,
}

impl Wildcard {
    fn matches(&self, origin: &str) -> bool {
        origin.len() >= self.prefix.len() + self.suffix.len()
            && origin.starts_with(&self.prefix)
            && origin.ends_with(&self.suffix)
    }
}

/// The compiled settings.
#[derive(Debug, Clone)]
pub struct Policy {
    krakend2: bool,
    all_origins: bool,
    origins: Vec<String>,
    wildcards: Vec<Wildcard>,
    methods: Vec<String>,
    all_headers: bool,
    /// Allowed header names: canonical (1.x) or lower-case and sorted (2.x).
    headers: Vec<String>,
    /// `Access-Control-Expose-Headers`, joined.
    exposed: Option<String>,
    credentials: bool,
    private_network: bool,
    passthrough: bool,
    success_status: u16,
    max_age: Option<String>,
    debug: bool,
}

/// rs/cors 1.6's `parseHeaderList`: names split at commas and spaces,
/// canonicalised, other characters dropped.
fn parse_header_list(list: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut upper = true;
    let bytes = list.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'a'..=b'z' => current.push(if upper { (b - 32) as char } else { b as char }),
            b'A'..=b'Z' => current.push(if upper { b as char } else { (b + 32) as char }),
            b'-' | b'_' | b'.' | b'0'..=b'9' => current.push(b as char),
            _ => {}
        }
        if b == b' ' || b == b',' || i == bytes.len() - 1 {
            if !current.is_empty() {
                names.push(std::mem::take(&mut current));
                upper = true;
            }
        } else {
            upper = b == b'-';
        }
    }
    names
}

/// What a request gets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// For a preflight that is not passed through: answer it with this
    /// status.
    pub answer: Option<u16>,
    /// Headers to set on the answer (replacing any of the same name).
    pub set: Vec<(&'static str, String)>,
    /// `Vary` values to add.
    pub vary: Vec<String>,
}

/// The request's parts CORS looks at.
pub struct Asked<'a> {
    pub method: &'a str,
    pub origin: Option<&'a str>,
    pub request_method: Option<&'a str>,
    /// Every `Access-Control-Request-Headers` value.
    pub request_headers: Vec<&'a str>,
    pub private_network: bool,
}

impl Policy {
    /// Compiles `settings` as krakend-cors hands them to rs/cors.
    pub fn new(settings: Settings) -> Self {
        let krakend2 = settings.krakend2;
        let mut origins_setting = settings.allow_origins.clone();
        let mut headers_setting = settings.allow_headers.clone();
        if krakend2 {
            // krakend-cors 2 fills in what is missing before rs/cors sees it.
            if origins_setting.is_empty() {
                origins_setting.push("*".into());
            }
            if headers_setting.is_empty() {
                headers_setting.push("*".into());
            }
        }
        let mut all_origins = origins_setting.is_empty();
        let mut origins = Vec::new();
        let mut wildcards = Vec::new();
        for origin in &origins_setting {
            let origin = origin.to_ascii_lowercase();
            if origin == "*" {
                all_origins = true;
                origins.clear();
                wildcards.clear();
                break;
            }
            match origin.find('*') {
                Some(i) => wildcards.push(Wildcard {
                    prefix: origin[..i].to_owned(),
                    suffix: origin[i + 1..].to_owned(),
                }),
                None => origins.push(origin),
            }
        }
        let all_headers = headers_setting.iter().any(|h| h == "*");
        let headers = if all_headers {
            Vec::new()
        } else if krakend2 {
            let mut names: Vec<String> = if headers_setting.is_empty() {
                vec![
                    "accept".into(),
                    "content-type".into(),
                    "x-requested-with".into(),
                ]
            } else {
                headers_setting
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect()
            };
            names.sort();
            names.dedup();
            names
        } else if headers_setting.is_empty() {
            ["Origin", "Accept", "Content-Type", "X-Requested-With"]
                .map(String::from)
                .to_vec()
        } else {
            let mut names: Vec<String> = headers_setting
                .iter()
                .map(|h| canonical_header_name(h))
                .collect();
            names.push("Origin".into());
            names
        };
        let methods = if settings.allow_methods.is_empty() {
            vec!["GET".into(), "POST".into(), "HEAD".into()]
        } else if krakend2 {
            settings.allow_methods.clone()
        } else {
            settings
                .allow_methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect()
        };
        let exposed = (!settings.expose_headers.is_empty()).then(|| {
            settings
                .expose_headers
                .iter()
                .map(|h| canonical_header_name(h))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let seconds = settings.max_age.as_secs();
        Self {
            krakend2,
            all_origins,
            origins,
            wildcards,
            methods,
            all_headers,
            headers,
            exposed,
            credentials: settings.allow_credentials,
            private_network: settings.allow_private_network && krakend2,
            passthrough: settings.options_passthrough && krakend2,
            success_status: match settings.options_success_status {
                0 if krakend2 => 204,
                0 => 200,
                status => status,
            },
            max_age: (seconds > 0).then(|| seconds.to_string()),
            debug: settings.debug,
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self.all_origins {
            return true;
        }
        let origin = origin.to_ascii_lowercase();
        self.origins.contains(&origin) || self.wildcards.iter().any(|w| w.matches(&origin))
    }

    fn method_allowed(&self, method: &str) -> bool {
        let method = if self.krakend2 {
            method.to_owned()
        } else {
            method.to_ascii_uppercase()
        };
        method == "OPTIONS" || self.methods.contains(&method)
    }

    /// rs/cors 1.11's `SortedSet.Accepts`: every name known, in the set's
    /// order, each once; up to one space around a name, a few empty
    /// elements tolerated.
    fn headers_allowed_sorted(&self, values: &[&str]) -> bool {
        let mut last: Option<usize> = None;
        let mut empty = 0;
        for value in values {
            for element in value.split(',') {
                let name = element.strip_prefix([' ', '\t']).unwrap_or(element);
                let name = name.strip_suffix([' ', '\t']).unwrap_or(name);
                if name.starts_with([' ', '\t']) || name.ends_with([' ', '\t']) {
                    return false;
                }
                if name.is_empty() {
                    empty += 1;
                    if empty > 16 {
                        return false;
                    }
                    continue;
                }
                let Ok(position) = self.headers.binary_search_by(|h| h.as_str().cmp(name)) else {
                    return false;
                };
                if last.is_some_and(|l| position <= l) {
                    return false;
                }
                last = Some(position);
            }
        }
        true
    }

    /// What `asked` gets.
    pub fn decide(&self, asked: &Asked<'_>) -> Decision {
        let preflight =
            asked.method == "OPTIONS" && asked.request_method.is_some_and(|m| !m.is_empty());
        if preflight {
            self.preflight(asked)
        } else {
            self.actual(asked)
        }
    }

    fn log(&self, why: &str) {
        if self.debug {
            tracing::info!(target: "cors", "{why}");
        }
    }

    fn preflight(&self, asked: &Asked<'_>) -> Decision {
        let mut decision = Decision {
            answer: (!self.passthrough).then_some(self.success_status),
            ..Decision::default()
        };
        if self.krakend2 {
            let mut vary =
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers".to_owned();
            if self.private_network {
                vary.push_str(", Access-Control-Request-Private-Network");
            }
            decision.vary.push(vary);
        } else {
            for name in [
                "Origin",
                "Access-Control-Request-Method",
                "Access-Control-Request-Headers",
            ] {
                decision.vary.push(name.into());
            }
        }
        let Some(origin) = asked.origin.filter(|o| !o.is_empty()) else {
            self.log("preflight aborted: empty origin");
            return decision;
        };
        if !self.origin_allowed(origin) {
            self.log(&format!("preflight aborted: origin {origin:?} not allowed"));
            return decision;
        }
        let method = asked.request_method.unwrap_or_default();
        if !self.method_allowed(method) {
            self.log(&format!("preflight aborted: method {method:?} not allowed"));
            return decision;
        }
        let allow_headers = if self.krakend2 {
            if !asked.request_headers.is_empty()
                && !self.all_headers
                && !self.headers_allowed_sorted(&asked.request_headers)
            {
                self.log("preflight aborted: headers not allowed");
                return decision;
            }
            asked
                .request_headers
                .first()
                .filter(|first| !first.is_empty())
                .map(|_| asked.request_headers.join(", "))
        } else {
            let requested = parse_header_list(asked.request_headers.first().copied().unwrap_or(""));
            let allowed = self.all_headers
                || requested
                    .iter()
                    .all(|h| self.headers.contains(&canonical_header_name(h)));
            if !allowed {
                self.log("preflight aborted: headers not allowed");
                return decision;
            }
            (!requested.is_empty()).then(|| requested.join(", "))
        };
        let allow_origin = if self.all_origins {
            "*".to_owned()
        } else {
            origin.to_owned()
        };
        decision
            .set
            .push(("access-control-allow-origin", allow_origin));
        let methods = if self.krakend2 {
            method.to_owned()
        } else {
            method.to_ascii_uppercase()
        };
        decision.set.push(("access-control-allow-methods", methods));
        if let Some(headers) = allow_headers {
            decision.set.push(("access-control-allow-headers", headers));
        }
        if self.credentials {
            decision
                .set
                .push(("access-control-allow-credentials", "true".into()));
        }
        if self.private_network && asked.private_network {
            decision
                .set
                .push(("access-control-allow-private-network", "true".into()));
        }
        if let Some(max_age) = &self.max_age {
            decision
                .set
                .push(("access-control-max-age", max_age.clone()));
        }
        decision
    }

    fn actual(&self, asked: &Asked<'_>) -> Decision {
        let mut decision = Decision::default();
        if !self.krakend2 && asked.method.eq_ignore_ascii_case("OPTIONS") {
            return decision;
        }
        decision.vary.push("Origin".into());
        let Some(origin) = asked.origin.filter(|o| !o.is_empty()) else {
            return decision;
        };
        if !self.origin_allowed(origin) || !self.method_allowed(asked.method) {
            self.log(&format!(
                "no CORS headers: origin {origin:?} or method {} not allowed",
                asked.method
            ));
            return decision;
        }
        let allow_origin = if self.all_origins {
            "*".to_owned()
        } else {
            origin.to_owned()
        };
        decision
            .set
            .push(("access-control-allow-origin", allow_origin));
        if let Some(exposed) = &self.exposed {
            decision
                .set
                .push(("access-control-expose-headers", exposed.clone()));
        }
        if self.credentials {
            decision
                .set
                .push(("access-control-allow-credentials", "true".into()));
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str, version: u64) -> Policy {
        Policy::new(Settings::parse(json, version).unwrap())
    }

    fn preflight<'a>(origin: &'a str, method: &'a str, headers: &'a str) -> Asked<'a> {
        Asked {
            method: "OPTIONS",
            origin: Some(origin),
            request_method: Some(method),
            request_headers: if headers.is_empty() {
                vec![]
            } else {
                vec![headers]
            },
            private_network: false,
        }
    }

    const SUITE: &str = r#"{"allow_origins":["*"],"allow_methods":["POST","GET"],
        "allow_headers":["Origin","Authorization","Content-Type"],"expose_headers":["Content-Length"],"max_age":"12h"}"#;

    #[test]
    fn krakend_2_answers_the_suites_preflights() {
        let p = policy(SUITE, 3);
        let ok = p.decide(&preflight(
            "http://foo.example",
            "GET",
            "content-type,origin",
        ));
        assert_eq!(ok.answer, Some(204));
        assert!(ok
            .set
            .contains(&("access-control-allow-headers", "content-type,origin".into())));
        assert!(ok.set.contains(&("access-control-max-age", "43200".into())));
        let put = p.decide(&preflight("http://foo.example", "PUT", ""));
        assert_eq!((put.answer, put.set.len()), (Some(204), 0));
        let unknown = p.decide(&preflight("http://foo.example", "POST", "X-PINGOTHER"));
        assert!(unknown.set.is_empty());
        // Out of the sorted order browsers use: refused, as rs/cors 1.11.
        assert!(p
            .decide(&preflight(
                "http://foo.example",
                "GET",
                "origin,content-type"
            ))
            .set
            .is_empty());
    }

    #[test]
    fn krakend_1_canonicalises_and_answers_200() {
        let p = policy(SUITE, 2);
        let ok = p.decide(&preflight(
            "http://foo.example",
            "get",
            "origin, X-Requested-With, content-type",
        ));
        assert_eq!(ok.answer, Some(200));
        assert!(ok.set.is_empty(), "X-Requested-With is not allowed: {ok:?}");
        let ok = p.decide(&preflight(
            "http://foo.example",
            "get",
            "origin,content-type",
        ));
        assert!(ok.set.contains(&(
            "access-control-allow-headers",
            "Origin, Content-Type".into()
        )));
        assert!(ok
            .set
            .contains(&("access-control-allow-methods", "GET".into())));
        assert_eq!(ok.vary.len(), 3);
    }

    #[test]
    fn actual_requests_get_origin_expose_and_vary() {
        let p = policy(
            r#"{"allow_origins":["https://*.example.com"],"expose_headers":["x-total"],"allow_credentials":true}"#,
            3,
        );
        let asked = |origin| Asked {
            method: "GET",
            origin: Some(origin),
            request_method: None,
            request_headers: vec![],
            private_network: false,
        };
        let ok = p.decide(&asked("https://app.example.com"));
        assert_eq!(
            ok.set,
            vec![
                (
                    "access-control-allow-origin",
                    "https://app.example.com".to_owned()
                ),
                ("access-control-expose-headers", "X-Total".to_owned()),
                ("access-control-allow-credentials", "true".to_owned()),
            ]
        );
        assert_eq!(ok.vary, vec!["Origin".to_owned()]);
        assert!(p.decide(&asked("https://evil.com")).set.is_empty());
    }
}
