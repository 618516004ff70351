//! `proxy.shadow`: backends that get a copy of each request and whose
//! answers are ignored, as lura's shadow proxy runs them: after the
//! endpoint's request phase, beside the answering backends, in a task of
//! their own that the client's answer never waits for, bounded by
//! `shadow_timeout` (lura 2) or the endpoint's timeout.

use std::{borrow::Cow, sync::Arc, time::Duration};

use super::{
    backend::BackendCall,
    request::Outgoing,
    strategy::{collect, Limits, Strategy},
};
use crate::upstream::Upstream;

/// An endpoint's shadow backends.
pub struct Shadow {
    strategy: Strategy,
    backends: Arc<[BackendCall]>,
    /// The longest of their timeouts, as lura bounds them all.
    timeout: Duration,
    /// The endpoint, for logs.
    path: Arc<str>,
}

impl Shadow {
    /// `backends` called as `strategy` calls them, within `timeout`.
    pub fn new(
        strategy: Strategy,
        backends: Vec<BackendCall>,
        timeout: Duration,
        path: &str,
    ) -> Self {
        Self {
            strategy,
            backends: backends.into(),
            timeout,
            path: Arc::from(path),
        }
    }

    /// Whether a shadow backend has modifiers.
    pub fn has_modifiers(&self) -> bool {
        self.backends.iter().any(|b| !b.modifiers.is_empty())
    }

    /// The shadow backends' modifier chains.
    pub fn modifier_chains(&self) -> impl Iterator<Item = &crate::modifiers::chain::ModifierChain> {
        self.backends.iter().map(|b| &b.modifiers)
    }

    /// Sends a copy of `outgoing` to the shadow backends and returns at
    /// once. An upstream that cannot be detached from the request (the
    /// tests' in-memory ones) sends none.
    pub fn send(&self, outgoing: &Outgoing<'_>, upstream: &impl Upstream) {
        let Some(client) = upstream.detached() else {
            tracing::debug!(endpoint = %self.path, "this upstream cannot call shadow backends");
            return;
        };
        // lura's CloneRequest: the shadows get their own copy.
        let copy = Outgoing {
            params: outgoing.params.clone(),
            query: Cow::Owned(outgoing.query.to_string()),
            headers: outgoing.headers.clone(),
            body: outgoing.body.clone(),
            _body_reservation: None,
            context: outgoing.context.clone(),
        };
        let backends = self.backends.clone();
        let strategy = self.strategy;
        let path = self.path.clone();
        let timeout = self.timeout;
        let call = async move {
            let limits = Limits {
                deadline: tokio::time::Instant::now() + timeout,
                timeout,
                empty_when_all_fail: false,
            };
            let called = tokio::time::timeout_at(
                limits.deadline,
                collect(strategy, &backends, &copy, &client, &path, limits),
            )
            .await;
            if let Ok(Err(error)) = &called {
                tracing::debug!(endpoint = %path, %error, "a shadow backend failed (its answer is ignored)");
            }
        };
        // The shadows' spans stay in the request's trace.
        match crate::telemetry::traces::installed() {
            Some(_) => {
                let context = opentelemetry::Context::current();
                tokio::spawn(opentelemetry::trace::FutureExt::with_context(call, context));
            }
            None => {
                tokio::spawn(call);
            }
        }
    }
}
