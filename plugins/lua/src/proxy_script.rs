//! `modifier/lua-proxy` (an endpoint's proxy) and `modifier/lua-backend`
//! (one backend's): `pre` on the request before it goes on, `post` on the
//! answer, `skip_next` to answer without going on (krakend-lua's
//! `proxy/proxy.go`).

use sepia_plugin_api::{
    BodyLayout, Hooks, Modifier, ModifierScope, PluginError, Request, RequestContext, RequestFlow,
    Response,
};

use crate::{
    engine::{Engine, Phase, REQUEST_SLOT, RESPONSE_SLOT},
    request::LuaRequest,
    response::LuaResponse,
};

pub struct ProxyScript {
    engine: Engine,
    scope: ModifierScope,
    krakend2: bool,
    /// `[ENDPOINT: /x][Lua]`, as KrakenD's log lines start.
    label: String,
    blocking: bool,
}

impl ProxyScript {
    pub fn new(
        engine: Engine,
        scope: ModifierScope,
        krakend2: bool,
        label: String,
        blocking: bool,
    ) -> Self {
        Self {
            engine,
            scope,
            krakend2,
            label,
            blocking,
        }
    }

    fn failed(&self, failure: crate::failure::Failure) -> PluginError {
        let error = failure.into_plugin_error(self.krakend2);
        tracing::error!("{} {}", self.label, error.message());
        error
    }

    fn run_post(
        &self,
        answer: LuaResponse,
        carried: Option<&str>,
    ) -> Result<LuaResponse, PluginError> {
        self.engine
            .run(
                Phase::Post,
                carried,
                |lua| {
                    let answer = lua.create_userdata(answer)?;
                    lua.set_named_registry_value(RESPONSE_SLOT, &answer)?;
                    Ok(answer)
                },
                |_, answer| answer.take::<LuaResponse>(),
            )
            .map(|(answer, _)| answer)
            .map_err(|f| self.failed(f))
    }
}

impl Modifier for ProxyScript {
    fn hooks(&self) -> Hooks {
        let settings = self.engine.settings();
        let mut hooks = Hooks::NONE;
        if !settings.pre.is_empty() || settings.skip_next {
            hooks = hooks | Hooks::REQUEST;
        }
        if !settings.post.is_empty() {
            hooks = hooks | Hooks::RESPONSE;
        }
        hooks
    }

    fn is_blocking(&self) -> bool {
        self.blocking
    }

    fn on_request_with(
        &self,
        request: &mut Request,
        context: &mut RequestContext,
    ) -> Result<RequestFlow, PluginError> {
        let seen = LuaRequest::take(request, self.scope, self.krakend2);
        let (changed, left) = self
            .engine
            .run(
                Phase::Pre,
                None,
                |lua| {
                    let seen = lua.create_userdata(seen)?;
                    lua.set_named_registry_value(REQUEST_SLOT, &seen)?;
                    Ok(seen)
                },
                |_, seen| seen.take::<LuaRequest>(),
            )
            .map_err(|f| self.failed(f))?;
        changed.apply(request);
        if !self.engine.settings().skip_next {
            if let Some(left) = left {
                context.set_value(self.engine.carry_key(), left);
            }
            return Ok(RequestFlow::Continue);
        }
        // lura's empty response, through `post`, is the answer.
        let answer = self.run_post(LuaResponse::empty(), left.as_deref())?;
        Ok(RequestFlow::Respond(answer.into_answer()))
    }

    fn on_response_with(
        &self,
        response: &mut Response,
        context: &mut RequestContext,
        layout: &BodyLayout,
    ) -> Result<(), PluginError> {
        let key = self.engine.carry_key();
        let carried = context.value(key).map(str::to_owned);
        if carried.is_some() {
            context.remove_value(key);
        }
        let answer = self.run_post(LuaResponse::take(response, layout), carried.as_deref())?;
        answer.apply(response);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sepia_plugin_api::{Header, RString, RVec, Tuple2};

    use super::*;
    use crate::settings::Settings;

    fn script(json: serde_json::Value, scope: ModifierScope) -> ProxyScript {
        let (settings, sources) = Settings::parse(&json.to_string()).unwrap();
        let engine = Engine::new(settings, sources, true, 1000);
        ProxyScript::new(engine, scope, true, "[ENDPOINT: /t][Lua]".into(), false)
    }

    fn ce_source(name: &str) -> String {
        format!(
            "{}/../../tests/fixtures/krakend-ce/lua/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    fn request(path: &str) -> Request {
        Request {
            method: RString::from("GET"),
            path: RString::from(path),
            query: RString::from("b=2&a=1"),
            params: vec![Tuple2(RString::from("id"), RString::from("7"))].into(),
            headers: vec![Header::new("authorization", "bearer x")].into(),
            body: RVec::new(),
        }
    }

    fn pre(s: &ProxyScript, r: &mut Request) -> Result<RequestFlow, PluginError> {
        s.on_request_with(r, &mut RequestContext::default())
    }

    #[test]
    fn the_suites_post_script_reshapes_the_merged_data() {
        let s = script(
            serde_json::json!({
                "sources": [ce_source("json.lua"), ce_source("base64.lua"), ce_source("collection.lua")],
                "post": "post_proxy(response.load())",
                "allow_open_libs": true
            }),
            ModifierScope::Endpoint,
        );
        let mut answer = Response::json(
            200,
            r#"{"collection":[{"path":"/collection/1"},{"path":"/collection/2"}]}"#,
        );
        let layout = BodyLayout {
            canonical_json: true,
            ..BodyLayout::unknown()
        };
        s.on_response_with(&mut answer, &mut RequestContext::default(), &layout)
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&answer.body).unwrap(),
            r#"{"paths":{"1":"/collection/1","2":"/collection/2"},"total":2}"#
        );
    }

    #[test]
    fn a_backend_script_changes_the_url_method_and_headers() {
        let s = script(
            serde_json::json!({"pre": r#"
                local r = request.load()
                r:url(r:url() .. r:params("Id"))
                r:method("post")
                r:headers("X-Seen", r:headers("authorization"))
                r:headers("Authorization", nil)
            "#}),
            ModifierScope::Backend,
        );
        let mut r = request("/users/");
        // lura's URL carries the query: appending to it would append to
        // the query.
        r.query = RString::new();
        assert_eq!(pre(&s, &mut r), Ok(RequestFlow::Continue));
        assert_eq!(r.path.as_str(), "/users/7");
        assert_eq!(r.query.as_str(), "");
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(
            r.header("x-seen").and_then(|h| h.value_str()),
            Some("bearer x")
        );
        assert!(r.header("authorization").is_none());
    }

    #[test]
    fn at_an_endpoint_there_is_no_url_yet_and_the_query_is_go_encoded() {
        let s = script(
            serde_json::json!({"pre": r#"
                local r = request.load()
                if r:url() ~= "" or r:path() ~= "" then custom_error("url too early", 500) end
                r:query(r:query() .. "&c=x y")
                r:params("Id", "8")
            "#}),
            ModifierScope::Endpoint,
        );
        let mut r = request("/ignored");
        assert_eq!(pre(&s, &mut r), Ok(RequestFlow::Continue));
        assert_eq!(r.query.as_str(), "a=1&b=2&c=x+y");
        assert_eq!(r.param("id"), Some("8"));
    }

    #[test]
    fn custom_errors_answer_with_their_status_and_other_errors_name_the_line() {
        let s = script(
            serde_json::json!({
                "sources": [ce_source("collection.lua")],
                "pre": "json_error()"
            }),
            ModifierScope::Backend,
        );
        let error = pre(&s, &mut request("/x")).unwrap_err();
        assert_eq!(error.status, 418);
        assert_eq!(
            error.message(),
            r#"{"msg":"I refuse to make any coffee, I am a teapot!"}"#
        );
        let s = script(
            serde_json::json!({"pre": "local r = request.load()\nr:nothing()"}),
            ModifierScope::Backend,
        );
        let error = pre(&s, &mut request("/x")).unwrap_err();
        assert_eq!(error.status, 500);
        assert!(
            error.message().ends_with("(pre-script:L2)"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn a_runaway_script_fails_its_request_and_the_next_one_runs() {
        let s = script(
            serde_json::json!({"pre": r#"
                local r = request.load()
                if r:params("Id") == "7" then while true do end end
            "#}),
            ModifierScope::Backend,
        );
        let error = pre(&s, &mut request("/x")).unwrap_err();
        assert!(
            error.message().contains("stopped after"),
            "{}",
            error.message()
        );
        let mut calm = request("/x");
        calm.params = vec![Tuple2(RString::from("id"), RString::from("1"))].into();
        assert_eq!(pre(&s, &mut calm), Ok(RequestFlow::Continue));
        let hoarder = script(
            serde_json::json!({"pre": "local t = {} for i = 1, 1e8 do t[i] = i end"}),
            ModifierScope::Backend,
        );
        let error = pre(&hoarder, &mut request("/x")).unwrap_err();
        assert_eq!(error.status, 500);
    }

    #[test]
    fn a_runs_globals_are_its_own() {
        let s = script(
            serde_json::json!({"pre": r#"
                counter = (counter or 0) + 1
                request.load():headers("X-Count", counter)
            "#}),
            ModifierScope::Backend,
        );
        for _ in 0..2 {
            let mut r = request("/x");
            pre(&s, &mut r).unwrap();
            assert_eq!(r.header("x-count").and_then(|h| h.value_str()), Some("1"));
        }
    }

    #[test]
    fn the_standard_library_opens_only_with_allow_open_libs() {
        let code = "request.load():headers('X-Found', string.find('abc', 'b'))";
        let closed = script(serde_json::json!({"pre": code}), ModifierScope::Backend);
        let error = pre(&closed, &mut request("/x")).unwrap_err();
        assert!(error.message().contains("string"), "{}", error.message());
        let open = script(
            serde_json::json!({"pre": code, "allow_open_libs": true}),
            ModifierScope::Backend,
        );
        let mut r = request("/x");
        pre(&open, &mut r).unwrap();
        assert_eq!(r.header("x-found").and_then(|h| h.value_str()), Some("2"));
        let no_debug = script(
            serde_json::json!({"pre": "debug.sethook()", "allow_open_libs": true}),
            ModifierScope::Backend,
        );
        assert!(pre(&no_debug, &mut request("/x")).is_err());
    }

    #[test]
    fn what_pre_leaves_in_globals_post_reads_in_the_same_request() {
        let s = script(
            serde_json::json!({
                "pre": "seen = request.load():params('Id'); info = {n = 2, tags = {'a'}}",
                "post": r#"
                    local d = response.load():data()
                    d:set("seen", seen)
                    d:set("n", info.n)
                    d:set("tag", info.tags[1])
                "#
            }),
            ModifierScope::Endpoint,
        );
        let mut context = RequestContext::default();
        s.on_request_with(&mut request("/x"), &mut context).unwrap();
        let mut answer = Response::json(200, "{}");
        s.on_response_with(&mut answer, &mut context, &BodyLayout::unknown())
            .unwrap();
        assert_eq!(answer.body.as_slice(), br#"{"n":2,"seen":"7","tag":"a"}"#);
        // Another request's post starts clean: `info` is not there.
        let mut other = Response::json(200, "{}");
        let error = s
            .on_response_with(
                &mut other,
                &mut RequestContext::default(),
                &BodyLayout::unknown(),
            )
            .unwrap_err();
        assert!(error.message().contains("'info'"), "{}", error.message());
    }

    #[test]
    fn skip_next_answers_with_what_post_made() {
        let s = script(
            serde_json::json!({
                "skip_next": true,
                "post": "local r = response.load(); r:data():set('from', 'lua'); r:statusCode(201)"
            }),
            ModifierScope::Endpoint,
        );
        let Ok(RequestFlow::Respond(answer)) = pre(&s, &mut request("/x")) else {
            panic!("skip_next answers");
        };
        assert_eq!(answer.status, 201);
        assert!(!answer.complete);
        assert_eq!(answer.body.as_slice(), br#"{"from":"lua"}"#);
    }

    #[test]
    fn a_raw_answer_keeps_its_body_and_headers_change() {
        let s = script(
            serde_json::json!({"post": r#"
                local r = response.load()
                r:body(r:body() .. "!")
                r:headers("X-Done", "yes")
                r:isComplete(false)
            "#}),
            ModifierScope::Backend,
        );
        let mut answer = Response {
            status: 200,
            headers: vec![Header::new("content-type", "text/plain")].into(),
            body: RVec::from(b"hello".to_vec()),
            complete: true,
        };
        s.on_response_with(
            &mut answer,
            &mut RequestContext::default(),
            &BodyLayout::unknown(),
        )
        .unwrap();
        assert_eq!(answer.body.as_slice(), b"hello!");
        assert_eq!(
            answer.header("x-done").and_then(|h| h.value_str()),
            Some("yes")
        );
        assert!(!answer.complete);
    }
}
