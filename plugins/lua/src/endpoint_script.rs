//! `modifier/lua-endpoint`: `pre` on the client's request, before
//! KrakenD's endpoint handler (in an endpoint) or before routing (at the
//! top level), as krakend-lua's `router/gin/lua.go` runs it on gin's
//! context. A failure aborts the request with its status and no body, as
//! gin's `AbortWithError` does.

use sepia_plugin_api::{
    Hooks, Modifier, PluginError, RVec, Request, RequestContext, RequestFlow, Response,
};

use crate::{
    context::LuaContext,
    engine::{Engine, Phase, CONTEXT_SLOT},
    failure::Failure,
};

pub struct EndpointScript {
    engine: Engine,
    krakend2: bool,
    /// `[ENDPOINT: /x][Lua]` or `[SERVICE: Gin][Lua]`.
    label: String,
    /// At the top level, krakend-lua answers every failure with a 500.
    service: bool,
    blocking: bool,
}

impl EndpointScript {
    pub fn new(
        engine: Engine,
        krakend2: bool,
        label: String,
        service: bool,
        blocking: bool,
    ) -> Self {
        Self {
            engine,
            krakend2,
            label,
            service,
            blocking,
        }
    }

    fn aborted(&self, failure: Failure) -> Response {
        let (status, content_type) = match &failure {
            Failure::Custom(custom) if !self.service => (
                custom
                    .status
                    .filter(|s| (100..=599).contains(s))
                    .unwrap_or(500),
                custom.content_type.clone(),
            ),
            _ => (500, None),
        };
        let error = failure.into_plugin_error(self.krakend2);
        tracing::error!("{} {}", self.label, error.message());
        let mut response = Response {
            status,
            headers: RVec::new(),
            body: RVec::new(),
            complete: false,
        };
        if let Some(content_type) = content_type {
            response.set_header("content-type", &content_type);
        }
        response
    }
}

impl Modifier for EndpointScript {
    fn hooks(&self) -> Hooks {
        if self.engine.settings().pre.is_empty() {
            Hooks::NONE
        } else {
            Hooks::REQUEST
        }
    }

    fn is_blocking(&self) -> bool {
        self.blocking
    }

    fn on_request_with(
        &self,
        request: &mut Request,
        _context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        let seen = LuaContext::take(request, self.krakend2);
        let outcome = self.engine.run(
            Phase::Pre,
            None,
            |lua| {
                let seen = lua.create_userdata(seen)?;
                lua.set_named_registry_value(CONTEXT_SLOT, &seen)?;
                Ok(seen)
            },
            |_, seen| seen.take::<LuaContext>(),
        );
        match outcome {
            Ok((changed, _)) => {
                changed.apply(request);
                Ok(RequestFlow::Continue)
            }
            Err(failure) => Ok(RequestFlow::Respond(self.aborted(failure))),
        }
    }
}
