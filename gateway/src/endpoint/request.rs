//! The first phase of an endpoint: the client's request read (its body,
//! the headers and query the endpoint forwards), the endpoint's request
//! hooks run, and the forwarding headers added. What comes out is what the
//! backends receive.

use std::borrow::Cow;

use abi_stable::std_types::{RString, RVec, Tuple2};
use bytes::Bytes;
use http::{header, request::Parts, HeaderMap, HeaderValue, Response};
use hyper::body::Body;
use sepia_plugin_api::{Request as PluginRequest, RequestContext};

use super::jwt_claims::ClaimParams;
use crate::{
    body::ResponseBody,
    body_budget::{self, BodyLimits},
    client_address::ClientAddr,
    error::ProxyError,
    forwarding::{add_forwarded, HeaderFilter},
    identity::Identity,
    modifiers::{
        chain::{ModifierChain, RequestOutcome},
        convert::{from_plugin_headers, from_plugin_response, to_plugin_headers},
    },
};

const X_FORWARDED_VIA: http::HeaderName = http::HeaderName::from_static("x-forwarded-via");

/// What the backends receive, after filtering and request modifiers.
pub struct Outgoing<'a> {
    pub params: Vec<String>,
    pub query: Cow<'a, str>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The client body's share of the gateway's body budget, held until
    /// the request is done (none for a copy made for one step).
    pub _body_reservation: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The request's context after the endpoint's request hooks, when a
    /// hook will read it; each backend's hooks get a copy.
    pub context: Option<Box<RequestContext>>,
}

/// How an endpoint reads its requests.
pub struct RequestPhase {
    /// The endpoint's `{param}` names.
    param_names: Vec<String>,
    /// The method carries a body to forward.
    forwards_body: bool,
    /// `input_headers`.
    headers: HeaderFilter,
    /// The endpoint's modifiers (their request hooks run here).
    modifiers: ModifierChain,
    /// `{JWT.claim}` of its backends, filled in after the hooks.
    claims: ClaimParams,
    /// The gateway's `User-Agent`.
    user_agent: HeaderValue,
    /// How much body a request may send, and all of them together.
    body_limits: BodyLimits,
    /// `sepia.append_forwarded_for`.
    append_forwarded_for: bool,
}

/// What the request phase decided.
pub enum Read<'a> {
    /// Call the backends with this.
    Forward(Outgoing<'a>),
    /// A request hook answered.
    Answered(Response<ResponseBody>),
}

impl RequestPhase {
    /// The request phase of `endpoint`.
    pub fn new(
        endpoint: &sepia_config::Endpoint,
        modifiers: ModifierChain,
        claims: ClaimParams,
        identity: Identity,
        body_limits: BodyLimits,
        append_forwarded_for: bool,
    ) -> Self {
        Self {
            append_forwarded_for,
            user_agent: identity.user_agent(),
            param_names: endpoint.params.clone(),
            forwards_body: endpoint.method.has_body(),
            headers: HeaderFilter::new(&endpoint.input_headers),
            modifiers,
            claims,
            body_limits,
        }
    }

    /// Reads `parts` and `body` into what the backends receive. `context`
    /// goes into the [`Outgoing`]; when a hook answers or fails, it is put
    /// back.
    pub async fn read<'a, B>(
        &self,
        parts: &'a Parts,
        body: B,
        params: Vec<String>,
        client: ClientAddr,
        context: &mut Option<Box<RequestContext>>,
    ) -> Result<Read<'a>, ProxyError>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (body, body_reservation) = if self.forwards_body {
            let deadline = parts.extensions.get::<body_budget::ReadDeadline>().copied();
            let held = body_budget::read(body, &self.body_limits, deadline).await?;
            (held.bytes, held.reservation)
        } else {
            (Bytes::new(), None)
        };
        // Request hooks see the client's headers, as KrakenD's handlers see
        // the client's request (a validator reads `Authorization` even when
        // `input_headers` does not forward it); the filter applies after
        // them (`forwarded`).
        let mut headers = HeaderMap::new();
        if self.modifiers.is_empty() {
            self.headers.copy(&parts.headers, &mut headers);
        }
        let mut outgoing = Outgoing {
            params,
            query: Cow::Borrowed(parts.uri.query().unwrap_or("")),
            headers,
            body,
            _body_reservation: body_reservation,
            context: context.take(),
        };
        if !self.modifiers.is_empty() {
            match self.run_hooks(parts, &mut outgoing).await {
                Ok(None) => {}
                Ok(Some(response)) => {
                    *context = outgoing.context;
                    return Ok(Read::Answered(response));
                }
                Err(error) => {
                    *context = outgoing.context;
                    return Err(error);
                }
            }
        }
        self.claims
            .append_values(outgoing.context.as_deref(), &mut outgoing.params);
        // HTTP/2 carries the host in the URI's authority, not a Host header.
        let authority = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        let host = parts.headers.get(header::HOST).or(authority.as_ref());
        add_forwarded(
            client,
            self.append_forwarded_for,
            host,
            &parts.headers,
            &mut outgoing.headers,
        );
        // lura's rule in both generations: the gateway's own User-Agent
        // unless the client's is forwarded, which then says it came via
        // the gateway.
        let via = if outgoing.headers.contains_key(header::USER_AGENT) {
            X_FORWARDED_VIA
        } else {
            header::USER_AGENT
        };
        outgoing.headers.insert(via, self.user_agent.clone());
        Ok(Read::Forward(outgoing))
    }

    /// The endpoint's request hooks; a response when one answered.
    async fn run_hooks(
        &self,
        parts: &Parts,
        outgoing: &mut Outgoing<'_>,
    ) -> Result<Option<Response<ResponseBody>>, ProxyError> {
        let request = PluginRequest {
            method: RString::from(parts.method.as_str()),
            path: RString::from(parts.uri.path()),
            query: RString::from(outgoing.query.as_ref()),
            params: plugin_params(&self.param_names, &outgoing.params),
            headers: to_plugin_headers(&parts.headers),
            body: RVec::from(outgoing.body.to_vec()),
        };
        let context = outgoing.context.get_or_insert_with(Box::default);
        let request = match self.modifiers.on_request(request, context).await? {
            RequestOutcome::Continue(request) => request,
            RequestOutcome::Respond(plugin, response) => {
                return from_plugin_response(response, &plugin).map(Some)
            }
        };
        outgoing.params = request.params.iter().map(|p| p.1.to_string()).collect();
        outgoing.query = Cow::Owned(request.query.into_string());
        let after_hooks =
            from_plugin_headers(&request.headers, "request", &self.modifiers.last_plugin())?;
        outgoing.headers = self.forwarded(&parts.headers, &after_hooks);
        outgoing.body = Bytes::from(request.body.into_vec());
        Ok(None)
    }
}

impl RequestPhase {
    /// What the backends get of the headers the hooks left: those
    /// `input_headers` lists, and those a hook set or changed (a claim the
    /// validator propagates). A client header the endpoint does not forward
    /// stays behind even though the hooks saw it.
    fn forwarded(&self, client: &HeaderMap, after_hooks: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::with_capacity(after_hooks.keys_len());
        self.headers.copy(after_hooks, &mut out);
        for name in after_hooks.keys() {
            if self.headers.allows(name) {
                continue;
            }
            let set_by_hook = !after_hooks
                .get_all(name)
                .iter()
                .eq(client.get_all(name).iter());
            if set_by_hook {
                for value in after_hooks.get_all(name) {
                    out.append(name.clone(), value.clone());
                }
            }
        }
        out
    }
}

/// These `{param}` names with these values, as ABI data.
pub fn plugin_params(names: &[String], values: &[String]) -> RVec<Tuple2<RString, RString>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = names.get(i).map(String::as_str).unwrap_or("");
            Tuple2(RString::from(name), RString::from(v.as_str()))
        })
        .collect()
}
