//! The last phase of an endpoint: static data added where its strategy says,
//! the collected answer rendered in the output encoding, the endpoint's
//! response hooks run, the client's response built.

use abi_stable::std_types::RVec;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Either;
use sepia_config::{OutputEncoding, StaticResponse};
use sepia_plugin_api::{
    BodyLayout, Header, MemberSpan, RequestContext, Response as PluginResponse,
    VALUE_BACKEND_STATUS,
};
use serde_json::{Map, Value};

use super::{
    static_data::{self, Outcome},
    strategy::Collected,
};
use crate::{
    body::{full, ResponseBody, COMPLETED, COMPLETED_HEADER, JSON_CONTENT_TYPE},
    error::ProxyError,
    forwarding::strip_hop_by_hop,
    identity::VERSION_HEADER,
    modifiers::{
        chain::ModifierChain,
        convert::{buffered_response, from_plugin_response, to_plugin_headers},
    },
};

/// How an endpoint answers.
pub struct ResponsePhase {
    /// The endpoint path as configured, for logs.
    endpoint: String,
    output: OutputEncoding,
    /// `Cache-Control` for complete GET answers (`cache_ttl`).
    cache_control: Option<HeaderValue>,
    /// Data added to the response (`proxy.static`).
    static_response: Option<Box<StaticResponse>>,
    /// The endpoint's modifiers (their response hooks run here).
    modifiers: ModifierChain,
    /// `sepia.pass_backend_status`.
    pass_backend_status: bool,
    /// `X-Krakend`, which lura's endpoint handler puts on every answer.
    version_header: Option<HeaderValue>,
    /// A version-1/2 file: `negotiate` is lura 1.4's, on gin of 2017.
    krakend1_negotiation: bool,
    /// The endpoint's `flatmap_filter`.
    flatmap: Option<Vec<sepia_config::FlatmapOp>>,
}

/// A body the gateway wrote, about to be answered.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
    /// Every backend answered and there is data: lura's
    /// `X-Krakend-Completed: true` (and only then `Cache-Control`), in both
    /// generations; an empty answer is marked incomplete.
    complete: bool,
    /// Written in Go's canonical JSON encoding.
    canonical: bool,
    /// KrakenD's render panicked (lura 1.4's XML of an object): gin's
    /// recovery answers 500, whatever the status.
    render_failed: bool,
}

impl ResponsePhase {
    /// The response phase of `endpoint`.
    pub fn new(
        endpoint: &sepia_config::Endpoint,
        modifiers: ModifierChain,
        service: &super::ServiceSettings,
    ) -> Self {
        Self {
            endpoint: endpoint.endpoint.clone(),
            output: endpoint.output_encoding,
            // lura sets it whatever the method, in both generations.
            cache_control: endpoint.cache_ttl.and_then(|ttl| {
                HeaderValue::from_str(&format!("public, max-age={}", ttl.as_secs())).ok()
            }),
            static_response: endpoint.static_response.clone().map(Box::new),
            flatmap: endpoint.flatmap.clone(),
            modifiers,
            pass_backend_status: service.pass_backend_status,
            version_header: service.identity.version_header(),
            krakend1_negotiation: !sepia_plugin_api::is_krakend2(service.config_version),
        }
    }

    /// The client's response for what the backend phase collected.
    pub async fn respond(
        &self,
        collected: Result<Collected, ProxyError>,
        context: &mut Option<Box<RequestContext>>,
        accept: Option<&str>,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        match self.with_static_data(self.with_flatmap(collected))? {
            Collected::Refused {
                status,
                mut headers,
                body,
            } => {
                headers.insert(COMPLETED_HEADER, HeaderValue::from_static("false"));
                self.mark(&mut headers);
                Ok(buffered_response(status, headers, body))
            }
            Collected::Stream(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                // lura marks every answer with no decoded data incomplete,
                // a passed-through one too.
                parts
                    .headers
                    .insert(COMPLETED_HEADER, HeaderValue::from_static("false"));
                self.mark(&mut parts.headers);
                // The client's protocol version is the server's business,
                // not the backend's.
                parts.version = http::Version::default();
                Ok(Response::from_parts(parts, Either::Right(body)))
            }
            Collected::Raw {
                status,
                mut headers,
                body,
            } => {
                headers.insert(COMPLETED_HEADER, HeaderValue::from_static("false"));
                self.mark(&mut headers);
                let response = PluginResponse {
                    status: status.as_u16(),
                    headers: to_plugin_headers(&headers),
                    body: RVec::from(body.to_vec()),
                    complete: true,
                };
                self.through_hooks(response, context, BodyLayout::unknown())
                    .await
            }
            Collected::Encoded {
                status,
                body,
                complete,
            } => {
                let answer = Answer {
                    status,
                    // Canonical: an object without members is exactly `{}`.
                    complete: complete && body != b"{}",
                    body,
                    content_type: JSON_CONTENT_TYPE,
                    canonical: true,
                    render_failed: false,
                };
                self.answer(answer, context).await
            }
            Collected::Data {
                status,
                data,
                complete,
                ..
            } => {
                // lura 1.4's `negotiate` writes XML with its own render.
                let (output, legacy_xml) = match self.output {
                    OutputEncoding::Negotiate if self.krakend1_negotiation => {
                        let chosen = negotiate_krakend1(accept);
                        (chosen, chosen == OutputEncoding::Xml)
                    }
                    OutputEncoding::Negotiate => (negotiate(accept), false),
                    fixed => (fixed, false),
                };
                let canonical = output == OutputEncoding::Json;
                let has_data = !data.is_empty();
                let (body, content_type, render_failed) = if legacy_xml {
                    match super::xml::encode_go_content(&data) {
                        Some(body) => (body, GO_XML_CONTENT_TYPE, false),
                        None => (Vec::new(), GO_XML_CONTENT_TYPE, true),
                    }
                } else {
                    let (body, content_type) = render(output, data);
                    (body, content_type, false)
                };
                let answer = Answer {
                    status,
                    body,
                    content_type,
                    complete: complete && has_data,
                    canonical,
                    render_failed,
                };
                self.answer(answer, context).await
            }
        }
    }

    /// Runs the endpoint's `flatmap_filter` on the merged data, as lura's
    /// flatmap middleware does: before the static data, and not when a
    /// backend failed (lura passes the merge's error by unchanged).
    fn with_flatmap(
        &self,
        collected: Result<Collected, ProxyError>,
    ) -> Result<Collected, ProxyError> {
        let Some(ops) = &self.flatmap else {
            return collected;
        };
        match collected {
            Ok(Collected::Data {
                status,
                data,
                complete,
                errored: false,
            }) => Ok(Collected::Data {
                status,
                data: super::flatmap::apply(ops, data),
                complete,
                errored: false,
            }),
            other => other,
        }
    }

    /// Adds the static data (`proxy.static`) where its strategy says: to
    /// the merged data, or in place of a failure.
    fn with_static_data(
        &self,
        collected: Result<Collected, ProxyError>,
    ) -> Result<Collected, ProxyError> {
        let Some(fixed) = &self.static_response else {
            return collected;
        };
        let outcome = match &collected {
            Ok(Collected::Data {
                complete, errored, ..
            }) => match (complete, errored) {
                (_, true) => Outcome::Errored,
                (true, false) => Outcome::Complete,
                (false, false) => Outcome::Incomplete,
            },
            Ok(Collected::Refused { .. }) | Err(_) => Outcome::Errored,
            // Bytes passed through: nothing to add to (the configuration
            // check warned). Encoded bodies never have static data (see
            // `Strategy::of`).
            Ok(Collected::Stream(_) | Collected::Raw { .. } | Collected::Encoded { .. }) => {
                return collected
            }
        };
        if !static_data::applies(fixed.strategy, outcome) {
            return collected;
        }
        match collected {
            Ok(Collected::Data {
                status,
                mut data,
                complete,
                errored,
            }) => {
                static_data::add(&fixed.data, &mut data);
                Ok(Collected::Data {
                    status,
                    data,
                    complete,
                    errored,
                })
            }
            failed => {
                let why = match &failed {
                    Err(error) => error.to_string(),
                    Ok(Collected::Refused { status, .. }) => {
                        format!("the backend answered {status}")
                    }
                    Ok(_) => String::new(),
                };
                tracing::warn!(endpoint = %self.endpoint, error = %why, "answering with the static data in place of a failure");
                Ok(Collected::Data {
                    status: StatusCode::OK,
                    data: fixed.data.clone(),
                    complete: false,
                    errored: true,
                })
            }
        }
    }

    /// The response for a body the gateway wrote, through the endpoint's
    /// response hooks.
    async fn answer(
        &self,
        answer: Answer,
        context: &mut Option<Box<RequestContext>>,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let Answer {
            status: backend_status,
            body,
            content_type,
            complete,
            canonical,
            render_failed,
        } = answer;
        // lura's renderers write 200 whatever the backend's success status
        // was, in both generations.
        let status = if render_failed {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if self.pass_backend_status {
            backend_status
        } else {
            StatusCode::OK
        };
        // KrakenD lets clients cache only complete answers.
        let cache_control = self.cache_control.as_ref().filter(|_| complete);
        if self.modifiers.is_empty() {
            let mut response = Response::new(full(body));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                COMPLETED_HEADER,
                HeaderValue::from_static(if complete { "true" } else { "false" }),
            );
            if let Some(value) = cache_control {
                headers.insert(header::CACHE_CONTROL, value.clone());
            }
            self.mark(headers);
            return Ok(response);
        }
        let mut headers = vec![
            Header::new("content-type", content_type),
            Header::new(COMPLETED, if complete { "true" } else { "false" }),
        ];
        if let Some(value) = cache_control {
            headers.push(Header::new("cache-control", value.as_bytes()));
        }
        if let Some(value) = &self.version_header {
            headers.push(Header::new(VERSION_HEADER.as_str(), value.as_bytes()));
        }
        // Only a JSON object has members to point at.
        let layout = match canonical.then(|| sepia_json::canonical_members(&body)) {
            Some(Some(members)) => BodyLayout {
                canonical_json: true,
                members: members.into_iter().map(member_span).collect(),
            },
            _ => BodyLayout::unknown(),
        };
        let response = PluginResponse {
            status: status.as_u16(),
            headers: RVec::from(headers),
            body: RVec::from(body),
            complete,
        };
        if backend_status != status {
            context
                .get_or_insert_with(Box::default)
                .set_value(VALUE_BACKEND_STATUS, backend_status.as_u16().to_string());
        }
        self.through_hooks(response, context, layout).await
    }

    /// Adds `X-Krakend`.
    fn mark(&self, headers: &mut http::HeaderMap) {
        if let Some(value) = &self.version_header {
            headers.insert(VERSION_HEADER, value.clone());
        }
    }

    async fn through_hooks(
        &self,
        response: PluginResponse,
        context: &mut Option<Box<RequestContext>>,
        layout: BodyLayout,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let context = context.get_or_insert_with(Box::default);
        let response = self
            .modifiers
            .on_response(response, context, layout)
            .await?;
        from_plugin_response(response, &self.modifiers.last_plugin())
    }
}

/// A member's key and value ranges as the ABI carries them. Bodies over
/// 4 GiB never reach here (the gateway buffers at most 64 MiB).
fn member_span((key, value): (std::ops::Range<usize>, std::ops::Range<usize>)) -> MemberSpan {
    let at = |offset: usize| u32::try_from(offset).unwrap_or(u32::MAX);
    MemberSpan {
        key_start: at(key.start),
        key_end: at(key.end),
        value_start: at(value.start),
        value_end: at(value.end),
    }
}

/// Writes `data` in the output encoding: the body and its content type.
fn render(output: OutputEncoding, mut data: Map<String, Value>) -> (Vec<u8>, &'static str) {
    match output {
        OutputEncoding::Json | OutputEncoding::NoOp => {
            (sepia_json::to_vec(&Value::Object(data)), JSON_CONTENT_TYPE)
        }
        OutputEncoding::JsonCollection => {
            let collection = match data.remove("collection") {
                Some(Value::Array(items)) => Value::Array(items),
                _ => Value::Array(Vec::new()),
            };
            (sepia_json::to_vec(&collection), JSON_CONTENT_TYPE)
        }
        OutputEncoding::String => {
            let text = match data.remove("content") {
                Some(Value::String(text)) => text.into_bytes(),
                Some(other) => sepia_json::to_vec(&other),
                None => Vec::new(),
            };
            (text, "text/plain; charset=utf-8")
        }
        // krakend-xml writes nothing where mxj refuses the map.
        OutputEncoding::Xml => (
            super::xml::encode(&data).unwrap_or_default(),
            "application/xml",
        ),
        OutputEncoding::Yaml => (
            yaml(&Value::Object(data)),
            "application/yaml; charset=utf-8",
        ),
        // Chosen per request before rendering; JSON should one slip by.
        OutputEncoding::Negotiate => (sepia_json::to_vec(&Value::Object(data)), JSON_CONTENT_TYPE),
    }
}

/// gin's XML content type, as lura 1.4's own XML render writes it.
const GO_XML_CONTENT_TYPE: &str = "application/xml; charset=utf-8";

/// The format lura 1.4's `negotiate` picks with gin of 2017's
/// `NegotiateFormat` over JSON, plain text and XML: the first `Accept`
/// entry equal to one (no wildcards, no YAML offer), JSON without an
/// `Accept` or when none is equal. Plain text is answered as YAML.
fn negotiate_krakend1(accept: Option<&str>) -> OutputEncoding {
    const OFFERED: [(&str, OutputEncoding); 3] = [
        ("application/json", OutputEncoding::Json),
        ("text/plain", OutputEncoding::Yaml),
        ("application/xml", OutputEncoding::Xml),
    ];
    accept
        .unwrap_or("")
        .split(',')
        .map(|part| part.split(';').next().unwrap_or("").trim())
        .filter(|part| !part.is_empty())
        .find_map(|wanted| OFFERED.iter().find(|(offer, _)| *offer == wanted))
        .map_or(OutputEncoding::Json, |(_, encoding)| *encoding)
}

/// The format lura's `negotiate` output picks with gin's `NegotiateFormat`
/// over JSON, plain text, XML and YAML: the first `Accept` entry (in the
/// header's order, q-values ignored, as gin does) that is a prefix of an
/// offer or a wildcard; JSON without an `Accept` or when none matches.
/// Plain text is answered as YAML, as lura does.
fn negotiate(accept: Option<&str>) -> OutputEncoding {
    const OFFERED: [(&str, OutputEncoding); 4] = [
        ("application/json", OutputEncoding::Json),
        ("text/plain", OutputEncoding::Yaml),
        ("application/xml", OutputEncoding::Xml),
        ("application/x-yaml", OutputEncoding::Yaml),
    ];
    let accepted = accept.unwrap_or("").split(',').filter_map(|part| {
        let part = match part.find(';') {
            Some(i) if i > 0 => &part[..i],
            _ => part,
        };
        let part = part.trim();
        (!part.is_empty()).then_some(part)
    });
    for wanted in accepted {
        for (offer, encoding) in OFFERED {
            let (a, o) = (wanted.as_bytes(), offer.as_bytes());
            let mut i = 0;
            while i < a.len() && i < o.len() {
                if a[i] == b'*' || o[i] == b'*' {
                    return encoding;
                }
                if a[i] != o[i] {
                    break;
                }
                i += 1;
            }
            if i == a.len() {
                return encoding;
            }
        }
    }
    OutputEncoding::Json
}

/// `data` as YAML: a block mapping with sorted keys, two spaces a level,
/// as Go's yaml writes gin's answers; numbers as numbers.
fn yaml(data: &Value) -> Vec<u8> {
    serde_norway::to_string(&to_yaml(data))
        .map(String::into_bytes)
        .unwrap_or_default()
}

fn to_yaml(value: &Value) -> serde_norway::Value {
    use serde_norway::Value as Y;
    match value {
        Value::Null => Y::Null,
        Value::Bool(flag) => Y::Bool(*flag),
        Value::Number(number) => {
            let text = number.to_string();
            if let Ok(n) = text.parse::<i64>() {
                Y::Number(n.into())
            } else if let Ok(n) = text.parse::<u64>() {
                Y::Number(n.into())
            } else {
                text.parse::<f64>()
                    .map(|f| Y::Number(f.into()))
                    .unwrap_or(Y::String(text))
            }
        }
        Value::String(text) => Y::String(text.clone()),
        Value::Array(items) => Y::Sequence(items.iter().map(to_yaml).collect()),
        Value::Object(members) => {
            // Go's yaml sorts a map's keys; this map may keep file order.
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Y::Mapping(
                sorted
                    .into_iter()
                    .map(|(k, v)| (Y::String(k.clone()), to_yaml(v)))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn version_2_negotiation_follows_gin_of_2017() {
        for (accept, chosen) in [
            (None, OutputEncoding::Json),
            (
                Some("application/xml;q=0.9, text/plain"),
                OutputEncoding::Xml,
            ),
            (Some("text/plain"), OutputEncoding::Yaml),
            // Equal entries only: no YAML offer, no wildcards.
            (Some("application/x-yaml"), OutputEncoding::Json),
            (Some("text/*, application/xml"), OutputEncoding::Xml),
            (Some("*/*"), OutputEncoding::Json),
        ] {
            assert_eq!(negotiate_krakend1(accept), chosen, "{accept:?}");
        }
    }

    #[test]
    fn negotiation_follows_gins_rules() {
        for (accept, chosen) in [
            (None, OutputEncoding::Json),
            (
                Some("application/json; charset=utf-8"),
                OutputEncoding::Json,
            ),
            (Some("text/plain"), OutputEncoding::Yaml),
            (Some("application/x-yaml"), OutputEncoding::Yaml),
            (
                Some("application/xml;q=0.1, application/json"),
                OutputEncoding::Xml,
            ),
            (Some("text/*"), OutputEncoding::Yaml),
            (Some("*/*"), OutputEncoding::Json),
            (Some("image/png"), OutputEncoding::Json),
        ] {
            assert_eq!(negotiate(accept), chosen, "{accept:?}");
        }
    }

    #[test]
    fn yaml_is_written_as_gin_writes_it() {
        let Value::Object(data) = json!({"b": [1, "x"], "a": {"-type": "admin", "n": 2.5}}) else {
            unreachable!()
        };
        let (body, content_type) = render(OutputEncoding::Yaml, data);
        assert_eq!(content_type, "application/yaml; charset=utf-8");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "a:\n  -type: admin\n  n: 2.5\nb:\n- 1\n- x\n"
        );
    }
}
