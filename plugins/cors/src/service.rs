//! The CORS service modifier: in front of the router, it answers preflight
//! requests and notes what the answer of any other request must carry; the
//! note travels in the request context to the response hook.

use sepia_plugin_api::{
    BodyLayout, Header, Modifier, PluginError, RVec, Request, RequestContext, RequestFlow, Response,
};
use serde_json::Value;

use crate::policy::{Asked, Decision, Policy};

/// The context value holding the headers an answer gets.
const NOTE: &str = "sepia/cors";

/// CORS for every request of the gateway.
pub struct CorsService {
    policy: Policy,
}

impl CorsService {
    pub fn new(policy: Policy) -> Self {
        Self { policy }
    }
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.header(name).and_then(|h| h.value_str())
}

/// The headers an answer gets, one `name: value` a line (header values
/// hold no line breaks), `vary` lines to add, the others to replace.
fn note(decision: &Decision) -> String {
    let mut text = String::new();
    for (name, value) in &decision.set {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push('\n');
    }
    for value in &decision.vary {
        text.push_str("vary: ");
        text.push_str(value);
        text.push('\n');
    }
    text
}

fn apply(decision: &Decision, headers: &mut RVec<Header>) {
    for (name, value) in &decision.set {
        headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
        headers.push(Header::new(name, value.as_bytes()));
    }
    for value in &decision.vary {
        headers.push(Header::new("vary", value.as_bytes()));
    }
}

impl Modifier for CorsService {
    fn on_request(&self, request: &mut Request) -> Result<RequestFlow, PluginError> {
        self.on_request_with(request, &mut RequestContext::default())
    }

    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        let asked = Asked {
            method: request.method.as_str(),
            origin: header(request, "origin"),
            request_method: header(request, "access-control-request-method"),
            request_headers: request
                .headers
                .iter()
                .filter(|h| {
                    h.name
                        .eq_ignore_ascii_case("access-control-request-headers")
                })
                .filter_map(|h| h.value_str())
                .collect(),
            private_network: header(request, "access-control-request-private-network")
                == Some("true"),
        };
        let decision = self.policy.decide(&asked);
        if let Some(status) = decision.answer {
            let mut headers = RVec::new();
            apply(&decision, &mut headers);
            return Ok(RequestFlow::Respond(Response {
                status,
                headers,
                body: RVec::new(),
                complete: true,
            }));
        }
        if !decision.set.is_empty() || !decision.vary.is_empty() {
            context.set_value(NOTE, Value::String(note(&decision)).to_string());
        }
        Ok(RequestFlow::Continue)
    }

    fn on_response_with(
        &self,
        response: &mut Response,
        context: &mut RequestContext,
        _layout: &BodyLayout,
    ) -> Result<(), PluginError> {
        let Some(note) = context.value(NOTE) else {
            return Ok(());
        };
        let note: String = serde_json::from_str(note).map_err(|e| {
            PluginError::internal(format!("the CORS note is not a JSON string: {e}"))
        })?;
        for line in note.lines() {
            let Some((name, value)) = line.split_once(": ") else {
                continue;
            };
            if name != "vary" {
                response
                    .headers
                    .retain(|h| !h.name.eq_ignore_ascii_case(name));
            }
            response.headers.push(Header::new(name, value.as_bytes()));
        }
        Ok(())
    }
}
