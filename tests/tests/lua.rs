//! Lua end to end: the three namespaces at their points (the CE suite's
//! scripts run in `krakend_ce`), a runaway script and a script error each
//! failing their own request only, `custom_error` answering with its
//! status, a script calling out through `http_response`, `live` sources
//! read again, and scripts that cannot run stopping start-up with their
//! file and line.

use std::path::Path;

use sepia_e2e::{get, request, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

fn echo_backend() -> impl Fn(&sepia_e2e::Recorded) -> Reply + Send + Sync + 'static {
    |r| {
        let seen = r.header("x-seen").unwrap_or("");
        Reply::json(
            200,
            &json!({"path": r.path, "query": r.query, "seen": seen, "method": r.method})
                .to_string(),
        )
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("script written");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_run_at_krakends_points() {
    let backend = TestBackend::start(echo_backend()).await;
    let dir = tempfile::tempdir().unwrap();
    let lib = write(
        dir.path(),
        "lib.lua",
        "function mark(r)\n  r:headers('X-Seen', 'lua:' .. r:params('Id'))\nend\n",
    );
    let sepia = Sepia::start(json!({"version": 3,
    "extra_config": {"router": {"return_error_msg": true}},
    "endpoints": [
        {"endpoint": "/items/{id}",
         "extra_config": {
            "modifier/lua-endpoint": {"pre": r#"
                    local c = ctx.load()
                    if c:params("id") == "0" then custom_error("no zero", 403) end
                    c:query("added", "yes")
                "#},
            "modifier/lua-proxy": {"sources": [lib],
                "pre": "mark(request.load()); started = 'in pre'",
                "post": r#"
                        local r = response.load()
                        r:data():set("decorated", true)
                        r:data():set("carried", started)
                        r:headers("X-Lua", "post")
                    "#}
         },
         "input_query_strings": ["added"],
         "input_headers": ["X-Seen"],
         "backend": [{"host": [backend.url()], "url_pattern": "/raw/{id}",
            "extra_config": {"modifier/lua-backend": {"allow_open_libs": true, "pre": r#"
                    local r = request.load()
                    r:url(string.gsub(r:url(), "/raw/", "/cooked/"))
                    r:method("POST")
                "#}}}]}
    ]}))
    .await;

    let answer = get(&sepia.url("/items/7")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"path": "/cooked/7", "query": "added=yes", "seen": "lua:7",
               "method": "POST", "decorated": true, "carried": "in pre"})
    );
    assert_eq!(answer.header("x-lua"), Some("post"));

    // lua-endpoint's custom_error: its status, no body (gin's abort).
    let before = backend.requests().len();
    let refused = get(&sepia.url("/items/0")).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.is_empty(), "{}", refused.text());
    assert_eq!(backend.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_or_failing_script_fails_only_its_request() {
    let backend = TestBackend::start(echo_backend()).await;
    let sepia = Sepia::start(json!({"version": 3,
    "extra_config": {"router": {"return_error_msg": true}},
    "endpoints": [
        {"endpoint": "/spin/{id}",
         "extra_config": {"modifier/lua-proxy": {"pre": r#"
                local r = request.load()
                if r:params("Id") == "forever" then while true do end end
                if r:params("Id") == "broken" then
                  local missing = nil
                  missing:call()
                end
             "#}},
         "backend": [{"host": [backend.url()], "url_pattern": "/{id}"}]},
        {"endpoint": "/calm",
         "backend": [{"host": [backend.url()], "url_pattern": "/calm"}]}
    ]}))
    .await;

    let (forever, calm_url) = (sepia.url("/spin/forever"), sepia.url("/calm"));
    // The calm endpoint is served while the runaway script runs.
    let (runaway, calm) = tokio::join!(get(&forever), get(&calm_url));
    assert_eq!(runaway.status, 500);
    assert!(
        runaway.text().contains("stopped after"),
        "{}",
        runaway.text()
    );
    assert_eq!(calm.status, 200);

    let broken = get(&sepia.url("/spin/broken")).await;
    assert_eq!(broken.status, 500);
    assert!(
        broken.text().contains("(pre-script:L6)"),
        "{}",
        broken.text()
    );
    let fine = get(&sepia.url("/spin/3")).await;
    assert_eq!(fine.status, 200, "{}", fine.text());
    assert_eq!(fine.json()["path"], "/3");
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_call_out_and_live_sources_are_read_again() {
    let backend = TestBackend::start(|r| {
        if r.path == "/lookup" {
            Reply::json(200, r#"{"tier":"gold"}"#).with_header("x-tier", "gold")
        } else {
            Reply::json(
                200,
                &json!({"tier": r.header("x-tier").unwrap_or("")}).to_string(),
            )
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let live = write(dir.path(), "live.lua", "function tag() return 'one' end\n");
    let lookup = format!("{}/lookup", backend.url());
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/tier",
         "input_headers": ["X-Tier"],
         "extra_config": {"modifier/lua-proxy": {"pre": format!(r#"
            local answer = http_response.new("{lookup}")
            request.load():headers("X-Tier", answer:headers("X-Tier") .. ":" .. answer:statusCode())
         "#)}},
         "backend": [{"host": [backend.url()], "url_pattern": "/tier"}]},
        {"endpoint": "/tag",
         "extra_config": {"modifier/lua-proxy": {"sources": [live.clone()], "live": true,
            "post": "response.load():data():set('tag', tag())"}},
         "backend": [{"host": [backend.url()], "url_pattern": "/tag"}]}
    ]}))
    .await;

    let tier = get(&sepia.url("/tier")).await;
    assert_eq!(tier.status, 200, "{}", tier.text());
    assert_eq!(tier.json(), json!({"tier": "gold:200"}));

    assert_eq!(get(&sepia.url("/tag")).await.json()["tag"], "one");
    std::fs::write(&live, "function tag() return 'two' end\n").unwrap();
    assert_eq!(get(&sepia.url("/tag")).await.json()["tag"], "two");
}

#[tokio::test(flavor = "multi_thread")]
async fn version_2_files_get_krakend_1s_namespaces_and_words() {
    let backend = TestBackend::start(echo_backend()).await;
    let sepia = Sepia::start(json!({"version": 2,
        "extra_config": {"sepia": {"json_errors": true}},
        "endpoints": [{"endpoint": "/old",
         "extra_config": {"github.com/devopsfaith/krakend-lua/proxy": {
            "pre": "local r = request.load()\nr:nothing()"}},
         "backend": [{"host": [backend.url()], "url_pattern": "/old"}]}]}))
    .await;
    let answer = request(http::Method::GET, &sepia.url("/old"), &[], b"", false).await;
    assert_eq!(answer.status, 500);
    // krakend-lua 1.4 words an error without its place (KrakenD 1.x shows
    // no error text: Sepia's JSON errors do).
    let error = answer.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!error.contains("(pre-script"), "{error}");
    assert!(error.contains("nothing"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_that_cannot_run_stop_start_up_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.lua", "x = 1\n");
    let bad = write(dir.path(), "bad.lua", "y = 1\nfunction (\n");
    let config = |lua: Value, namespace: &str| {
        json!({"version": 3, "endpoints": [{"endpoint": "/x",
            "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/"}],
            "extra_config": {namespace: lua}}]})
    };
    for (lua, namespace, wanted) in [
        (
            json!({"sources": [good.clone(), bad]}),
            "modifier/lua-proxy",
            "bad.lua, line 2",
        ),
        (
            json!({"post": "if then"}),
            "modifier/lua-proxy",
            "post-script, line 1",
        ),
        (
            json!({"sources": [good.clone()], "md5": {good.clone(): "0123456789abcdef0123456789abcdef"}}),
            "modifier/lua-proxy",
            "changed since the sum was written",
        ),
        (
            json!({"sources": ["/no/such/script.lua"]}),
            "modifier/lua-proxy",
            "cannot read the Lua source",
        ),
        (
            json!({"pre": "x = 1"}),
            "modifier/lua-backend",
            "move it into a backend",
        ),
    ] {
        let logs = Sepia::refused(config(lua, namespace)).await;
        assert!(logs.contains("endpoints[0].extra_config"), "{logs}");
        assert!(logs.contains(wanted), "{wanted}: {logs}");
    }
}
