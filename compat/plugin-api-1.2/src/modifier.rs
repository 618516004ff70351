// `#[sabi_trait]` expands to impls inside a const block, which rustc flags.
#![allow(non_local_definitions)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RErr, RNone, ROk, ROption, RResult, RString},
};

use crate::{
    context::{BodyLayout, RequestContext},
    export::panic_message,
    http::{Request, RequestFlow, Response},
    PluginError,
};

/// What a plugin implements to see and change traffic.
///
/// Every hook has a default body, so implement only what you need. The
/// gateway calls [`Modifier::on_request_with`] and
/// [`Modifier::on_response_with`]; their defaults call
/// [`Modifier::on_request`] and [`Modifier::on_response`], so a modifier that
/// needs no [`RequestContext`] implements the short forms. Hooks run on the
/// gateway's I/O threads unless [`Modifier::is_blocking`] says otherwise:
/// keep them short (well under a millisecond); a panic inside one fails that
/// request with a 500 and the gateway keeps serving.
///
/// Where a modifier runs depends on where its namespace is configured:
/// - in the top-level `extra_config` (built by
///   [`crate::Plugin::new_service_modifier`]): the request hooks see every
///   request before routing, with all its headers and an empty body, and may
///   answer it (a CORS preflight to any path); the response hooks see every
///   answer the gateway gives, its own errors and 404s included, with its
///   status and headers and an empty body (changes to the body are ignored:
///   answers may be streamed).
/// - in an endpoint's `extra_config`: the request hooks see the client's
///   request after routing, with all its headers, before any backend is
///   called (the backends get the headers `input_headers` lists and those a
///   hook set); the response hooks see the endpoint's encoded answer.
/// - in a backend's `extra_config`: the request to that backend and its
///   answer as it came, before decoding.
pub trait Modifier: Send + Sync {
    /// Runs on the request, in the order the modifiers are configured: for
    /// an endpoint modifier before any backend is called, for a backend
    /// modifier before that backend is called, for a service modifier
    /// before routing (see the list above). Change the request in place and
    /// return [`RequestFlow::Continue`], or answer yourself with
    /// [`RequestFlow::Respond`] (a backend modifier's answer stands for that
    /// backend's). An error answers the client with its status.
    fn on_request(&self, request: &mut Request) -> Result<RequestFlow, PluginError> {
        let _ = request;
        Ok(RequestFlow::Continue)
    }

    /// Runs on the answer: for an endpoint modifier after the backends'
    /// answers were decoded, merged and encoded in the endpoint's output,
    /// just before it is written; for a backend modifier on that backend's
    /// raw answer, before decoding; for a service modifier on every answer's
    /// status and headers. Change it in place. An error replaces the whole
    /// response with a JSON error of its status, so the client never
    /// receives a half-modified body.
    fn on_response(&self, response: &mut Response) -> Result<(), PluginError> {
        let _ = response;
        Ok(())
    }

    /// Whether the hooks do heavy work (more than ~50 µs of CPU, such as RSA
    /// signing, or blocking I/O). The gateway then runs them on its hook
    /// threads (one a core, at a slightly lower priority than its I/O
    /// threads), so that they never stall other connections; the hand-off
    /// costs a few microseconds, so leave it `false` for light hooks.
    fn is_blocking(&self) -> bool {
        false
    }

    /// The public keys of whatever this modifier signs, as the text of a
    /// JSON array of JWKs, so the gateway can publish them in its JWK set
    /// (`/.well-known/jwks.json`). Called on every request for that set, so
    /// a rotated key shows up at once. `None` (the default) publishes
    /// nothing; never return private members.
    fn public_keys(&self) -> Option<String> {
        None
    }

    /// [`Modifier::on_request`] with the request's context: who the client
    /// is, the request id, the matched endpoint, and the values earlier
    /// hooks set, to read or add to. This is what the gateway calls (since
    /// 1.2); the default ignores the context.
    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        let _ = context;
        self.on_request(request)
    }

    /// [`Modifier::on_response`] with the request's context and what the
    /// gateway knows of the body: when [`BodyLayout::canonical_json`] is
    /// set, the body is a JSON object in Go's canonical encoding and
    /// [`BodyLayout::members`] locates its top-level members, so the hook
    /// need not parse it. This is what the gateway calls (since 1.2); the
    /// default ignores both.
    fn on_response_with(
        &self,
        response: &mut Response,
        context: &mut RequestContext,
        layout: &BodyLayout,
    ) -> Result<(), PluginError> {
        let _ = (context, layout);
        self.on_response(response)
    }
}

/// The ABI-stable form of a [`Modifier`], as it crosses between plugin and
/// gateway. Plugin authors implement [`Modifier`]; [`crate::export_plugin!`]
/// wraps it into this.
#[sabi_trait]
pub trait AbiModifier: Send + Sync {
    /// See [`Modifier::on_request`].
    fn on_request(&self, request: &mut Request) -> RResult<RequestFlow, PluginError> {
        let _ = request;
        ROk(RequestFlow::Continue)
    }

    /// See [`Modifier::on_response`].
    #[sabi(last_prefix_field)]
    fn on_response(&self, response: &mut Response) -> RResult<(), PluginError> {
        let _ = response;
        ROk(())
    }

    /// See [`Modifier::is_blocking`]. Appended after the first layout:
    /// a plugin built without it answers `false`.
    fn is_blocking(&self) -> bool {
        false
    }

    /// See [`Modifier::public_keys`]. Appended after the first layout: a
    /// plugin built without it publishes nothing.
    fn public_keys(&self) -> ROption<RString> {
        RNone
    }

    /// See [`Modifier::on_request_with`]. Appended in 1.2.
    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> RResult<RequestFlow, PluginError> {
        let _ = context;
        self.on_request(request)
    }

    /// See [`Modifier::on_response_with`]. Appended in 1.2.
    fn on_response_with(
        &self,
        response: &mut Response,
        context: &mut RequestContext,
        layout: &BodyLayout,
    ) -> RResult<(), PluginError> {
        let _ = (context, layout);
        self.on_response(response)
    }
}

/// A modifier as it crosses the ABI.
pub type ModifierBox = AbiModifier_TO<'static, RBox<()>>;

/// Runs a plugin-side closure, turning a panic into a 500 [`PluginError`].
pub(crate) fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, PluginError>,
) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => ROk(value),
        Ok(Err(err)) => RErr(err),
        Err(payload) => RErr(PluginError::internal(format!(
            "plugin panicked in {what}: {}",
            panic_message(payload.as_ref())
        ))),
    }
}

/// A plugin's [`Modifier`] behind the panic guard.
pub(crate) struct GuardedModifier(pub(crate) Box<dyn Modifier>);

impl AbiModifier for GuardedModifier {
    fn on_request(&self, request: &mut Request) -> RResult<RequestFlow, PluginError> {
        guarded("on_request", || self.0.on_request(request))
    }

    fn on_response(&self, response: &mut Response) -> RResult<(), PluginError> {
        guarded("on_response", || self.0.on_response(response))
    }

    fn is_blocking(&self) -> bool {
        guarded("is_blocking", || Ok(self.0.is_blocking())).unwrap_or(false)
    }

    fn public_keys(&self) -> ROption<RString> {
        guarded("public_keys", || Ok(self.0.public_keys()))
            .unwrap_or(None)
            .map(RString::from)
            .into()
    }

    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> RResult<RequestFlow, PluginError> {
        guarded("on_request", || self.0.on_request_with(request, context))
    }

    fn on_response_with(
        &self,
        response: &mut Response,
        context: &mut RequestContext,
        layout: &BodyLayout,
    ) -> RResult<(), PluginError> {
        guarded("on_response", || {
            self.0.on_response_with(response, context, layout)
        })
    }
}

impl GuardedModifier {
    pub(crate) fn into_box(self) -> ModifierBox {
        AbiModifier_TO::from_value(self, abi_stable::sabi_trait::TD_Opaque)
    }
}

/// Wraps a modifier written against [`Modifier`] into the ABI-stable form,
/// with the panic guard. Useful for gateways and tests that build modifiers
/// without loading a library.
pub fn into_modifier_box(modifier: Box<dyn Modifier>) -> ModifierBox {
    GuardedModifier(modifier).into_box()
}
