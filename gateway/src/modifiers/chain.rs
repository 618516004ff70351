//! Running a chain of plugin modifiers (the service's, an endpoint's or a
//! backend's). Chains with a modifier that declares itself blocking run on
//! the hook threads ([`HookPool`]), so an RSA signature never stalls the
//! connections an async worker serves.

use std::sync::Arc;

use sepia_plugin_api::{
    BackendResult, BodyLayout, Hooks, PluginError, Request as PluginRequest, RequestContext,
    RequestFlow, Response as PluginResponse,
};

use super::{convert::plugin_error, hook_pool::HookPool};
use crate::{
    error::ProxyError,
    plugin_host::BoundModifier,
    telemetry::traces::{self, HookSpan},
};

/// What the request hooks decided.
pub enum RequestOutcome {
    /// Call the backends with this (possibly changed) request.
    Continue(PluginRequest),
    /// Answer with this response (from the named plugin).
    Respond(Arc<str>, PluginResponse),
}

/// The modifiers of one place (service, endpoint or backend), in
/// configuration order.
#[derive(Clone)]
pub struct ModifierChain {
    modifiers: Arc<[BoundModifier]>,
    /// Where the chain runs when a modifier blocks.
    pool: Option<HookPool>,
}

/// `modifiers`, to share. Every empty list shares one allocation: most
/// chains are empty, and an endpoint has seven.
fn share(modifiers: Vec<BoundModifier>) -> Arc<[BoundModifier]> {
    static EMPTY: std::sync::OnceLock<Arc<[BoundModifier]>> = std::sync::OnceLock::new();
    if modifiers.is_empty() {
        return EMPTY.get_or_init(|| Arc::from(Vec::new())).clone();
    }
    modifiers.into()
}

impl ModifierChain {
    /// A chain of `modifiers`; blocking ones run on `pool`.
    pub fn new(modifiers: Vec<BoundModifier>, pool: &HookPool) -> Self {
        let blocking = modifiers.iter().any(|m| m.modifier.is_blocking());
        Self {
            modifiers: share(modifiers),
            pool: blocking.then(|| pool.clone()),
        }
    }

    /// The modifiers of this chain that declared `hooks`, in order: what a
    /// phase runs, so that a modifier is called only for the hooks it has
    /// and a phase whose chain is empty skips the copies into ABI data.
    pub fn declaring(&self, hooks: Hooks) -> Self {
        let modifiers: Vec<BoundModifier> = self
            .modifiers
            .iter()
            .filter(|m| m.hooks.contains(hooks))
            .cloned()
            .collect();
        let blocking = modifiers.iter().any(|m| m.modifier.is_blocking());
        Self {
            modifiers: share(modifiers),
            pool: self.pool.clone().filter(|_| blocking),
        }
    }

    /// Whether there are no modifiers.
    pub fn is_empty(&self) -> bool {
        self.modifiers.is_empty()
    }

    /// Tells every modifier how a backend call went. Inline, also for
    /// blocking modifiers: the hook only counts, and it must run even
    /// when the call is dropped at the deadline.
    pub fn on_backend_result(&self, result: &BackendResult, context: &RequestContext) {
        for bound in self.modifiers.iter() {
            bound.modifier.on_backend_result(result, context);
        }
    }

    /// Runs `work` here, or on the hook threads when a modifier blocks;
    /// an error only when the hook threads are gone.
    async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce(&[BoundModifier]) -> R + Send + 'static,
    ) -> Result<R, ProxyError> {
        let Some(pool) = &self.pool else {
            return Ok(work(&self.modifiers));
        };
        let modifiers = self.modifiers.clone();
        pool.run(move || work(&modifiers))
            .await
            .map_err(|e| ProxyError::Plugin {
                plugin: self.last_plugin().to_string(),
                error: PluginError::internal(e.to_string()),
            })
    }

    /// Runs every request hook, in order, with the request's context,
    /// which is left as the hooks left it (also when one fails).
    pub async fn on_request(
        &self,
        request: PluginRequest,
        context: &mut RequestContext,
    ) -> Result<RequestOutcome, ProxyError> {
        let taken = std::mem::take(context);
        let traced = traces::current_for_hooks();
        let (outcome, back) = self
            .run(move |modifiers| {
                let mut request = request;
                let mut context = taken;
                for bound in modifiers {
                    let span = traced
                        .as_ref()
                        .and_then(|parent| HookSpan::start(parent, &bound.plugin, "request"));
                    let flow = bound
                        .modifier
                        .on_request_with(&mut request, &mut context)
                        .into_result()
                        .map_err(|error| plugin_error(&bound.plugin, error));
                    if let Some(span) = span {
                        span.end(flow.as_ref().err().map(|e| e as &dyn std::fmt::Display));
                    }
                    match flow {
                        Ok(RequestFlow::Continue) => {}
                        Ok(RequestFlow::Respond(response)) => {
                            let outcome = RequestOutcome::Respond(bound.plugin.clone(), response);
                            return (Ok(outcome), context);
                        }
                        Err(error) => return (Err(error), context),
                    }
                }
                (Ok(RequestOutcome::Continue(request)), context)
            })
            .await?;
        *context = back;
        outcome
    }

    /// Runs every response hook, in order; any error replaces the whole
    /// response. `layout` describes the body as the gateway wrote it; a
    /// later hook gets it only while no hook before replaced or resized the
    /// body (the contract asks hooks to replace a body, not to edit it in
    /// place).
    pub async fn on_response(
        &self,
        response: PluginResponse,
        context: &mut RequestContext,
        layout: BodyLayout,
    ) -> Result<PluginResponse, ProxyError> {
        let taken = std::mem::take(context);
        let traced = traces::current_for_hooks();
        let (outcome, back) = self
            .run(move |modifiers| {
                let mut response = response;
                let mut context = taken;
                let mut layout = layout;
                for bound in modifiers {
                    let before = (response.body.as_ptr(), response.body.len());
                    let span = traced
                        .as_ref()
                        .and_then(|parent| HookSpan::start(parent, &bound.plugin, "response"));
                    let done = bound
                        .modifier
                        .on_response_with(&mut response, &mut context, &layout)
                        .into_result()
                        .map_err(|error| plugin_error(&bound.plugin, error));
                    if let Some(span) = span {
                        span.end(done.as_ref().err().map(|e| e as &dyn std::fmt::Display));
                    }
                    if let Err(error) = done {
                        return (Err(error), context);
                    }
                    if layout.canonical_json
                        && before != (response.body.as_ptr(), response.body.len())
                    {
                        layout = BodyLayout::unknown();
                    }
                }
                (Ok(response), context)
            })
            .await?;
        *context = back;
        outcome
    }

    /// The modifiers, shared (the JWK set publisher asks them for keys).
    pub fn shared(&self) -> Arc<[BoundModifier]> {
        self.modifiers.clone()
    }

    /// The name of the last plugin, to blame for what the chain produced.
    pub fn last_plugin(&self) -> Arc<str> {
        self.modifiers
            .last()
            .map(|b| b.plugin.clone())
            .unwrap_or_else(|| Arc::from(""))
    }
}
