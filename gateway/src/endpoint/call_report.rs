//! Telling a backend's result hooks how each call went, exactly once: with
//! its outcome, or as abandoned when the call is dropped (the endpoint's
//! deadline passed, a faster `concurrent_calls` twin won, the client left),
//! which is how lura reports a cancelled context to a circuit breaker.

use std::time::Instant;

use sepia_plugin_api::{BackendFailure, BackendResult, RequestContext};

use crate::{
    error::{ErrorKind, ProxyError},
    modifiers::chain::ModifierChain,
};

/// One backend call being watched.
pub struct CallReport<'a> {
    hooks: &'a ModifierChain,
    /// The backend stage's meter, when it is measured.
    stage: Option<&'a crate::telemetry::metrics::StageMeter>,
    /// The backend stage's span, when it is traced.
    span: Option<opentelemetry::Context>,
    /// `telemetry/metrics`' backend layer, when it is kept.
    stats: Option<&'a crate::telemetry::stats::registry::LayerStats>,
    /// The backend's copy of the request's context, which its hooks change
    /// and its result hooks then see (a circuit breaker notes there whether
    /// it let the call through).
    context: RequestContext,
    started: Instant,
    /// The backend's status once it answered; 0 before.
    status: u16,
    reported: bool,
}

impl<'a> CallReport<'a> {
    /// Starts watching a call (and its span, under the current context,
    /// given the request's headers as the stage gets them);
    /// `None` (and no copy, no clock read) when no hook wants the result
    /// and the stage is neither measured, traced nor counted.
    pub fn start(
        hooks: &'a ModifierChain,
        context: Option<&RequestContext>,
        stage: Option<&'a crate::telemetry::metrics::StageMeter>,
        trace: Option<&crate::telemetry::traces::StageTrace>,
        request_headers: &http::HeaderMap,
        stats: Option<&'a crate::telemetry::stats::registry::LayerStats>,
    ) -> Option<Self> {
        let span = trace.and_then(|t| t.start(request_headers));
        (!hooks.is_empty() || stage.is_some() || span.is_some() || stats.is_some()).then(|| Self {
            hooks,
            stage,
            span,
            stats,
            context: context.cloned().unwrap_or_default(),
            started: Instant::now(),
            status: 0,
            reported: false,
        })
    }

    /// Notes the status of `reply` when the backend answered.
    pub fn answered<T>(
        report: &mut Option<Self>,
        reply: &Result<T, ProxyError>,
        status: impl FnOnce(&T) -> u16,
    ) {
        if let (Some(report), Ok(reply)) = (report, reply) {
            report.status = status(reply);
        }
    }

    /// The context holding the call's span, for what the call awaits.
    pub fn span(&self) -> Option<opentelemetry::Context> {
        self.span.clone()
    }

    /// The context the backend's hooks are to use.
    pub fn context(&mut self) -> &mut RequestContext {
        &mut self.context
    }

    /// Reports the call's outcome; `error` says why it failed.
    pub fn finish(mut self, failure: BackendFailure, error: Option<&dyn std::fmt::Display>) {
        self.report(failure, false, error);
    }

    fn report(
        &mut self,
        failure: BackendFailure,
        abandoned: bool,
        error: Option<&dyn std::fmt::Display>,
    ) {
        self.reported = true;
        let elapsed = self.started.elapsed();
        let failed = failure != BackendFailure::None;
        if let Some(stats) = self.stats {
            stats.record(!failed, failed, elapsed);
        }
        if let Some(span) = &self.span {
            // A status counted as a failure has no error of its own.
            let status = (failed && error.is_none())
                .then(|| format!("the backend answered {}", self.status));
            crate::telemetry::traces::end_stage(
                span,
                crate::telemetry::traces::StageEnd {
                    // krakend-otel records a failed stage as 500.
                    status: if failed { 500 } else { self.status },
                    error: error.or(status.as_ref().map(|s| s as &dyn std::fmt::Display)),
                    canceled: abandoned,
                    complete: !failed,
                },
            );
        }
        if let Some(stage) = self.stage {
            crate::telemetry::metrics::record_stage(
                crate::telemetry::metrics::Stage::Backend,
                stage,
                elapsed,
                crate::telemetry::metrics::StageOutcome {
                    error: !abandoned && failed,
                    canceled: abandoned,
                    complete: !failed,
                },
            );
        }
        if self.hooks.is_empty() {
            return;
        }
        let result = BackendResult {
            failure,
            status: self.status,
            elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        };
        self.hooks.on_backend_result(&result, &self.context);
    }
}

impl Drop for CallReport<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.report(BackendFailure::Timeout, true, None);
        }
    }
}

/// Reports `outcome` when a report is running: `failed` says whether an
/// answer that arrived is one lura counts as an error (a status reported as
/// data, a 4xx passed on).
pub fn conclude<T>(
    report: Option<CallReport<'_>>,
    outcome: &Result<T, ProxyError>,
    failed: impl FnOnce(&T) -> bool,
) {
    let Some(report) = report else {
        return;
    };
    match outcome {
        Ok(answer) if failed(answer) => report.finish(BackendFailure::Status, None),
        Ok(_) => report.finish(BackendFailure::None, None),
        Err(error) => report.finish(failure_of(error), Some(error)),
    }
}

/// The ABI's word for an error's kind.
fn failure_of(error: &ProxyError) -> BackendFailure {
    match error.kind() {
        ErrorKind::Connect => BackendFailure::Connect,
        ErrorKind::Timeout => BackendFailure::Timeout,
        ErrorKind::Status => BackendFailure::Status,
        ErrorKind::Body => BackendFailure::Body,
        ErrorKind::Plugin => BackendFailure::Plugin,
        ErrorKind::Protocol | ErrorKind::Client | ErrorKind::Config => BackendFailure::Protocol,
    }
}
