//! Running the lists at krakend-cel's points, with its answers.

use std::{collections::HashSet, sync::Arc};

use cel::{Context, Env, Value};
use sepia_plugin_api::{
    BodyLayout, Hooks, Modifier, PluginError, RVec, Request, RequestContext, RequestFlow, Response,
    VALUE_JWT,
};

use crate::{
    activation,
    checks::{Check, Checks, NOW},
};

/// One endpoint's or backend's checks.
pub struct Evaluator {
    checks: Checks,
    /// CEL's standard library, built once (a context per request shares it).
    env: Arc<Env>,
    /// The variables each list reads.
    request_needs: HashSet<String>,
    response_needs: HashSet<String>,
    /// `[ENDPOINT: /x][CEL]`, as KrakenD's log lines start.
    label: String,
    krakend2: bool,
}

fn union(list: &[Arc<Check>]) -> HashSet<String> {
    list.iter()
        .flat_map(|c| c.variables.iter().cloned())
        .collect()
}

impl Evaluator {
    pub fn new(checks: Checks, label: String, krakend2: bool) -> Self {
        Self {
            request_needs: union(&checks.request),
            response_needs: union(&checks.response),
            checks,
            env: Arc::new(Env::stdlib()),
            label,
            krakend2,
        }
    }

    /// The number of the first check that is not `true`, logged as
    /// krakend-cel logs it.
    fn first_failing(
        &self,
        list: &[Arc<Check>],
        context: &Context<'_, '_>,
        phase: &str,
    ) -> Option<usize> {
        for (i, check) in list.iter().enumerate() {
            match check.program.execute(context) {
                Ok(Value::Bool(true)) => {
                    tracing::debug!("{}[{phase}] Evaluator #{i} result: true", self.label);
                }
                Ok(other) => {
                    tracing::info!("{}[{phase}] Evaluator #{i} result: {other:?}", self.label);
                    return Some(i);
                }
                Err(error) => {
                    tracing::info!(
                        "{}[{phase}] Evaluator #{i} failed: {error} ({:?})",
                        self.label,
                        check.source
                    );
                    return Some(i);
                }
            }
        }
        None
    }

    fn aborted(&self, i: usize) -> PluginError {
        // krakend-cel 1.4 prints the Go program struct after "by"; its
        // number is what can be told.
        let prefix = if self.krakend2 { "" } else { "CEL: " };
        PluginError::internal(format!("{prefix}request aborted by evaluator #{i}"))
    }

    /// krakend-jose's answer when its rejecter says no: the status alone.
    fn unauthorized() -> RequestFlow {
        RequestFlow::Respond(Response {
            status: 401,
            headers: RVec::new(),
            body: RVec::new(),
            complete: true,
        })
    }

    fn claims_pass(&self, context: &RequestContext) -> bool {
        // The validator runs first and leaves the claims of a token it
        // verified; the configuration refuses claims checks without one.
        let Some(claims) = context
            .value(VALUE_JWT)
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        else {
            tracing::info!("{}[JWT] no verified token to check", self.label);
            return false;
        };
        let wants_now = self.checks.claims.iter().any(|c| c.variables.contains(NOW));
        let mut bindings = activation::context(&self.env, wants_now, self.krakend2);
        activation::bind_claims(&mut bindings, &claims);
        self.first_failing(&self.checks.claims, &bindings, "JWT")
            .is_none()
    }
}

impl Modifier for Evaluator {
    fn hooks(&self) -> Hooks {
        let mut hooks = Hooks::NONE;
        if !self.checks.request.is_empty() || !self.checks.claims.is_empty() {
            hooks = hooks | Hooks::REQUEST;
        }
        if !self.checks.response.is_empty() {
            hooks = hooks | Hooks::RESPONSE;
        }
        hooks
    }

    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        if !self.checks.claims.is_empty() && !self.claims_pass(context) {
            return Ok(Self::unauthorized());
        }
        if self.checks.request.is_empty() {
            return Ok(RequestFlow::Continue);
        }
        let wants_now = self.request_needs.contains(NOW);
        let mut bindings = activation::context(&self.env, wants_now, self.krakend2);
        activation::bind_request(&mut bindings, request, &|name| {
            self.request_needs.contains(name)
        });
        match self.first_failing(&self.checks.request, &bindings, "pre") {
            Some(i) => Err(self.aborted(i)),
            None => Ok(RequestFlow::Continue),
        }
    }

    fn on_response_with(
        &self,
        response: &mut Response,
        _context: &mut RequestContext,
        _layout: &BodyLayout,
    ) -> Result<(), PluginError> {
        let wants_now = self.response_needs.contains(NOW);
        let mut bindings = activation::context(&self.env, wants_now, self.krakend2);
        activation::bind_response(&mut bindings, response, &|name| {
            self.response_needs.contains(name)
        });
        match self.first_failing(&self.checks.response, &bindings, "post") {
            Some(i) => Err(self.aborted(i)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use sepia_plugin_api::{Header, ModifierScope, RString, Tuple2};

    use super::*;

    fn evaluator(json: &str, krakend2: bool) -> Evaluator {
        let checks = Checks::parse(json, ModifierScope::Endpoint).unwrap();
        Evaluator::new(checks, "[ENDPOINT: /t][CEL]".into(), krakend2)
    }

    fn request(id: &str, header: Option<&str>) -> Request {
        Request {
            method: RString::from("GET"),
            path: RString::from(format!("/cel/{id}")),
            query: RString::from("a=1&a=2&b=x+y"),
            params: vec![Tuple2(RString::from("id"), RString::from(id))].into(),
            headers: header
                .map(|v| vec![Header::new("x-header", v)])
                .unwrap_or_default()
                .into(),
            body: RVec::new(),
        }
    }

    fn verdict(e: &Evaluator, mut r: Request) -> Result<(), String> {
        e.on_request_with(&mut r, &mut RequestContext::default())
            .map(|_| ())
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn the_suites_request_checks_abort_with_their_number() {
        let e = evaluator(
            r#"[{"check_expr": "'something' in req_headers['X-Header']"},
                {"check_expr": "int(req_params.Id) % 2 == 0"}]"#,
            true,
        );
        assert_eq!(verdict(&e, request("10", Some("something"))), Ok(()));
        assert_eq!(
            verdict(&e, request("1", Some("something"))),
            Err("request aborted by evaluator #1".into())
        );
        // No such header: an evaluation error, which aborts too.
        assert_eq!(
            verdict(&e, request("30", None)),
            Err("request aborted by evaluator #0".into())
        );
        let old = evaluator(r#"[{"check_expr": "req_method == 'POST'"}]"#, false);
        assert_eq!(
            verdict(&old, request("1", None)),
            Err("CEL: request aborted by evaluator #0".into())
        );
    }

    #[test]
    fn query_path_and_method_read_as_lura_gives_them() {
        let e = evaluator(
            r#"[{"check_expr": "req_querystring.a == ['1', '2'] && req_querystring.b[0] == 'x y'"},
                {"check_expr": "req_path.startsWith('/cel/') && req_method == 'GET'"},
                {"check_expr": "req_headers.exists(k, k == 'X-Header')"}]"#,
            true,
        );
        assert_eq!(verdict(&e, request("4", Some("v"))), Ok(()));
    }

    #[test]
    fn answers_and_claims_are_checked_where_krakend_checks_them() {
        let e = evaluator(
            r#"[{"check_expr": "resp_data.user.age >= 18 && resp_completed && resp_metadata_status == 200"},
                {"check_expr": "'admin' in JWT.roles"}]"#,
            true,
        );
        assert!(e.hooks().contains(Hooks::REQUEST_AND_RESPONSE));
        let mut answer = Response::json(200, r#"{"user":{"age":20}}"#);
        let layout = BodyLayout::unknown();
        let mut context = RequestContext::default();
        assert!(e
            .on_response_with(&mut answer, &mut context, &layout)
            .is_ok());
        let mut minor = Response::json(200, r#"{"user":{"age":12}}"#);
        assert_eq!(
            e.on_response_with(&mut minor, &mut context, &layout)
                .unwrap_err()
                .message(),
            "request aborted by evaluator #0"
        );
        let refused = |claims: Option<&str>| {
            let mut context = RequestContext::default();
            if let Some(claims) = claims {
                context.set_value(VALUE_JWT, claims);
            }
            matches!(
                e.on_request_with(&mut request("1", None), &mut context),
                Ok(RequestFlow::Respond(Response { status: 401, .. }))
            )
        };
        assert!(!refused(Some(r#"{"roles":["admin"]}"#)));
        assert!(refused(Some(r#"{"roles":["user"]}"#)));
        assert!(refused(None));
    }
}
