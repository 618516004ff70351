//! Plugin loading and calling, end to end, with the real header-modifier
//! plugin and deliberately broken libraries.

use std::{fs, os::unix::fs::PermissionsExt, path::Path};

use http::Method;
use sepia_e2e::{
    artifacts::{fixture_library, plugin_library},
    get, request, Reply, Sepia, TestBackend,
};
use serde_json::{json, Value};

const NS: &str = "sepia/header-modifier";

fn endpoint_with(path: &str, backend: &TestBackend, plugin_config: Value) -> Value {
    json!({"endpoint": path, "backend": [{"host": [backend.url()], "url_pattern": "/"}],
           "extra_config": {NS: plugin_config}})
}

fn copy_plugin(folder: &Path, file_name: &str, source: &Path) {
    fs::copy(source, folder.join(file_name)).unwrap();
    fs::set_permissions(folder.join(file_name), fs::Permissions::from_mode(0o755)).unwrap();
}

fn plugin_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A fresh plugin folder holding these libraries under these names.
fn plugin_folder_with(files: &[(&str, std::path::PathBuf)]) -> tempfile::TempDir {
    let folder = plugin_folder();
    for (name, library) in files {
        copy_plugin(folder.path(), name, library);
    }
    folder
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_edit_requests_and_responses_and_can_answer_themselves() {
    let backend =
        TestBackend::always(Reply::json(200, r#"{"ok":true}"#).with_header("server", "backend"))
            .await;
    let mut endpoint = endpoint_with(
        "/edited",
        &backend,
        json!({
            "request_set": {"x-api-version": "2"},
            "request_remove": ["x-drop"],
            "response_set": {"cache-control": "no-store"},
            "response_remove": ["x-krakend-completed"],
            "block_when_header": "x-block",
            "log_responses": true
        }),
    );
    // Modifiers see the headers the endpoint forwards.
    endpoint["input_headers"] = json!(["x-block", "x-drop"]);
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [endpoint]})).await;
    let answer = request(
        Method::GET,
        &sepia.url("/edited"),
        &[("x-drop", "1")],
        b"",
        false,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), r#"{"ok":true}"#);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("x-krakend-completed"), None);
    let seen = backend.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-api-version"), Some("2"));
    assert_eq!(seen[0].header("x-drop"), None);

    let blocked = request(
        Method::GET,
        &sepia.url("/edited"),
        &[("x-block", "1")],
        b"",
        false,
    )
    .await;
    assert_eq!(blocked.status, 403);
    assert_eq!(
        blocked.json()["error"],
        "requests with x-block are not allowed"
    );
    assert_eq!(
        backend.requests().len(),
        1,
        "a blocked request never reaches the backend"
    );

    // The plugin's tracing lines reach the gateway's log under its name.
    let logs = sepia.logs();
    assert!(
        logs.contains("header-modifier") && logs.contains("response modified"),
        "{logs}"
    );
    assert!(logs.contains("request blocked"), "{logs}");
    assert!(
        logs.contains("plugin loaded") && logs.contains("libsepia_header_modifier"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_log_lines_follow_the_host_filter() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let sepia = Sepia::start_with(
        json!({"version": 3, "endpoints": [endpoint_with("/quiet", &backend, json!({"log_responses": true}))]}),
        &[],
        &[("RUST_LOG", "warn,header-modifier=warn")],
    )
    .await;
    assert_eq!(get(&sepia.url("/quiet")).await.status, 200);
    assert!(
        !sepia.logs().contains("response modified"),
        "{}",
        sepia.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn panics_fail_only_their_requests_even_under_load() {
    let backend = TestBackend::always(Reply::json(200, r#"{"fine":true}"#)).await;
    // Sepia's JSON errors say which plugin failed and why.
    let sepia = Sepia::start(json!({"version": 3, "extra_config": {"sepia": {"json_errors": true}}, "endpoints": [
        endpoint_with("/panic-request", &backend, json!({"fault": {"on": "request", "kind": "panic"}})),
        endpoint_with("/panic-response", &backend, json!({"fault": {"on": "response", "kind": "panic"}})),
        endpoint_with("/error", &backend, json!({"fault": {"on": "request", "kind": "error"}})),
        endpoint_with("/fine", &backend, json!({}))
    ]}))
    .await;
    let mut tasks = Vec::new();
    for i in 0..120 {
        let path = ["/panic-request", "/panic-response", "/fine"][i % 3];
        let url = sepia.url(path);
        tasks.push(tokio::spawn(async move { (path, get(&url).await) }));
    }
    for task in tasks {
        let (path, answer) = task.await.unwrap();
        if path == "/fine" {
            assert_eq!(answer.status, 200, "{}", answer.text());
            assert_eq!(answer.text(), r#"{"fine":true}"#);
        } else {
            assert_eq!(answer.status, 500, "{path}: {}", answer.text());
            let body = answer.json();
            assert_eq!(body["source"], "plugin");
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .contains("plugin header-modifier: plugin panicked"),
                "{body}"
            );
        }
    }
    let error = get(&sepia.url("/error")).await;
    assert_eq!(error.status, 418);
    assert!(error.json()["error"]
        .as_str()
        .unwrap()
        .contains("fault injected"));
    assert_eq!(get(&sepia.url("/__health")).await.status, 200);
    let logs = sepia.logs();
    assert!(logs.contains("plugin header-modifier panicked"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_modifier_config_stops_start_up_naming_endpoint_and_plugin() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let err = Sepia::refused(json!({"version": 3, "endpoints": [endpoint_with("/bad", &backend, json!({"colour": "red"}))]})).await;
    assert!(
        err.contains("endpoints[0].extra_config.\"sepia/header-modifier\": plugin header-modifier refused the configuration: unknown setting \"colour\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_folder_wins_over_the_executable_folder() {
    let folder = plugin_folder_with(&[(
        "my-header-plugin.so",
        plugin_library("sepia-header-modifier"),
    )]);
    fs::write(folder.path().join("notes-plugin.txt"), "not a library").unwrap();
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let sepia = Sepia::start(json!({"version": 3,
        "plugin": {"folder": folder.path(), "pattern": "plugin"},
        "endpoints": [endpoint_with("/x", &backend, json!({"response_set": {"x-from": "configured"}}))]}))
    .await;
    assert_eq!(
        get(&sepia.url("/x")).await.header("x-from"),
        Some("configured")
    );
    let logs = sepia.logs();
    assert!(logs.contains("my-header-plugin.so"), "{logs}");
    assert!(
        logs.contains("notes-plugin.txt is not a Sepia plugin"),
        "{logs}"
    );
    assert!(
        logs.contains(
            "plugin not used: a built-in or configured-folder plugin serves its namespace"
        ),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_plugins_claiming_one_namespace_stop_start_up() {
    let library = plugin_library("sepia-header-modifier");
    let folder = plugin_folder_with(&[("a.so", library.clone()), ("b.so", library)]);
    let err = Sepia::refused(json!({"version": 3, "plugin": {"folder": folder.path(), "pattern": ".so"}, "endpoints": []})).await;
    assert!(
        err.contains("both serve namespace \"sepia/header-modifier\""),
        "{err}"
    );
    assert!(err.contains("/a.so") && err.contains("/b.so"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn world_writable_plugins_are_refused_unless_allowed() {
    let folder = plugin_folder_with(&[("open.so", plugin_library("sepia-header-modifier"))]);
    fs::set_permissions(
        folder.path().join("open.so"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let config = json!({"version": 3, "plugin": {"folder": folder.path(), "pattern": ".so"},
        "endpoints": [endpoint_with("/x", &backend, json!({"response_set": {"x-on": "1"}}))]});
    let sepia = Sepia::start(config.clone()).await;
    let logs = sepia.logs();
    assert!(
        logs.contains("open.so refused: the file is writable by every user"),
        "{logs}"
    );
    // The executable folder's copy serves the namespace instead.
    assert!(logs.contains("libsepia_header_modifier"), "{logs}");
    drop(sepia);
    let sepia = Sepia::start_with(config, &["--allow-insecure-plugins"], &[]).await;
    assert!(sepia.logs().contains("open.so"), "{}", sepia.logs());
    assert!(!sepia.logs().contains("refused"), "{}", sepia.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn incompatible_libraries_are_refused_with_a_short_message() {
    let folder = plugin_folder_with(&[
        (
            "layout.so",
            fixture_library("abi-mismatch-plugin", "abi_mismatch_plugin"),
        ),
        (
            "future.so",
            fixture_library("abi-next-major-plugin", "abi_next_major_plugin"),
        ),
    ]);
    let backend = TestBackend::always(Reply::json(200, r#"{"still":"serving"}"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "plugin": {"folder": folder.path(), "pattern": ".so"},
        "endpoints": [{"endpoint": "/x", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}]}))
    .await;
    assert_eq!(get(&sepia.url("/x")).await.text(), r#"{"still":"serving"}"#);
    let logs = sepia.logs();
    let layout = logs
        .lines()
        .find(|l| l.contains("layout.so refused"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        layout.contains("do not match the layout of sepia-plugin-api 1."),
        "{layout}"
    );
    assert!(
        layout.contains("rebuild it against sepia-plugin-api"),
        "{layout}"
    );
    assert!(
        layout.len() < 600,
        "refusal should be short, got {} chars",
        layout.len()
    );
    let future = logs
        .lines()
        .find(|l| l.contains("future.so refused"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        future.contains("built against sepia-plugin-api 2.0.0"),
        "{future}"
    );
    assert!(future.contains("major versions differ"), "{future}");
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_without_a_plugin_warn_but_security_ones_stop_start_up() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        {"endpoint": "/x", "backend": [{"host": [backend.url()], "url_pattern": "/"}],
         "extra_config": {"example/none": {}}}]}))
    .await;
    assert!(sepia.logs().contains("endpoints[0].extra_config.\"example/none\": no loaded plugin serves this namespace; it is ignored"));
    // A gateway without the validator plugin beside it.
    let bin_dir = tempfile::tempdir().unwrap();
    let lone = sepia_e2e::sepia::lone_sepia(bin_dir.path());
    let protected = json!({"version": 3, "endpoints": [
            {"endpoint": "/t", "backend": [{"host": [backend.url()], "url_pattern": "/"}],
             "extra_config": {"github.com/devopsfaith/krakend-jose/validator": {}}}]});
    let Err(err) = Sepia::try_start_program(&lone, protected, &[], &[]).await else {
        panic!("a protected endpoint was served without its validator");
    };
    assert!(
        err.contains(
            "no loaded plugin serves this namespace, and serving without it would be unsafe"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_plugin_and_the_plugins_listing_say_what_loads() {
    let good = plugin_library("sepia-header-modifier");
    let bad = fixture_library("abi-mismatch-plugin", "abi_mismatch_plugin");
    let output = sepia_e2e::run_sepia(&["check-plugin", good.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("OK ") && stdout.contains("header-modifier 0.1.0 (sepia-plugin-api 1."),
        "{stdout}"
    );
    assert!(
        stdout.contains("namespaces: sepia/header-modifier"),
        "{stdout}"
    );
    let output = sepia_e2e::run_sepia(
        &[
            "check-plugin",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
            "/etc/hostname",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED plugin") && stdout.contains("rebuild it against sepia-plugin-api"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAILED /etc/hostname is not a Sepia plugin"),
        "{stdout}"
    );

    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    // The listing tells any client what runs: off by default.
    let quiet = Sepia::start(
        json!({"version": 3, "endpoints": [endpoint_with("/x", &backend, json!({}))]}),
    )
    .await;
    assert_eq!(get(&quiet.url("/__plugins")).await.status, 404);
    let sepia = Sepia::start(
        json!({"version": 3, "extra_config": {"sepia": {"plugins_endpoint": true}},
               "endpoints": [endpoint_with("/x", &backend, json!({}))]}),
    )
    .await;
    let listing = get(&sepia.url("/__plugins")).await.json();
    let plugins = listing["plugins"].as_array().unwrap();
    let header = plugins
        .iter()
        .find(|p| p["name"] == "header-modifier")
        .expect("listed");
    assert_eq!(header["namespaces"], json!(["sepia/header-modifier"]));
    // The file's name, not where the gateway keeps it.
    assert_eq!(header["file"], "libsepia_header_modifier.so");
    assert!(header.get("path").is_none());
    assert!(header["abi_version"].as_str().unwrap().starts_with("1."));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_template_builds_on_its_own_and_loads_from_a_fresh_folder() {
    let library = sepia_e2e::artifacts::standalone_library(
        "examples/plugin-template",
        "sepia_plugin_template",
    );
    let folder = plugin_folder_with(&[("api-key-guard.so", library)]);
    let backend = TestBackend::always(Reply::json(200, r#"{"orders":[]}"#)).await;
    let sepia = Sepia::start(json!({"version": 3,
        "plugin": {"folder": folder.path(), "pattern": ".so"},
        "extra_config": {"example/served-by": {"name": "test"}},
        "endpoints": [{"endpoint": "/orders", "input_headers": ["X-Api-Key"],
            "backend": [{"host": [backend.url()], "url_pattern": "/orders"}],
            "extra_config": {"example/api-key-guard": {"keys": ["s3cret"], "max_failures": 3}}}]}))
    .await;
    let refused = get(&sepia.url("/orders")).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("www-authenticate"), Some("ApiKey"));
    assert_eq!(refused.header("x-served-by"), Some("test"));
    assert!(backend.requests().is_empty());
    let orders = sepia.url("/orders");
    let with_key = || request(Method::GET, &orders, &[("x-api-key", "s3cret")], b"", false);
    let allowed = with_key().await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("x-served-by"), Some("test"));
    assert_eq!(backend.requests()[0].header("x-api-key"), None);
    // The service-level modifier stamps the gateway's own answers too.
    let missing = get(&sepia.url("/nowhere")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-served-by"), Some("test"));
    // Three failures from this client, counted across workers: then 429,
    // even with the right key.
    for _ in 0..2 {
        assert_eq!(get(&sepia.url("/orders")).await.status, 401);
    }
    assert_eq!(with_key().await.status, 429);
    let logs = sepia.logs();
    assert!(
        logs.contains("api-key-guard") && logs.contains("API-key guard ready"),
        "{logs}"
    );
    assert!(logs.contains("request without a valid API key"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_built_against_the_previous_interface_still_loads_and_runs() {
    let folder = plugin_folder_with(&[
        (
            "old.so",
            fixture_library("old-abi-plugin", "old_abi_plugin"),
        ),
        (
            "next.so",
            fixture_library("abi-next-minor-plugin", "abi_next_minor_plugin"),
        ),
    ]);
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":1}"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "plugin": {"folder": folder.path(), "pattern": ".so"},
        "endpoints": [{"endpoint": "/old", "backend": [{"host": [backend.url()], "url_pattern": "/"}],
                       "extra_config": {"test/old-abi": {}}}]}))
    .await;
    let answer = get(&sepia.url("/old")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-old-plugin"), Some("abi-1.0"));
    let logs = sepia.logs();
    assert!(
        logs.contains("name=old-abi") && logs.contains("abi=1.0.0"),
        "{logs}"
    );
    let next = logs
        .lines()
        .find(|l| l.contains("next.so refused"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(next.contains("built against sepia-plugin-api 1.99.0, newer than this gateway's 1.3.0: upgrade the gateway"), "{next}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_of_every_earlier_minor_interface_load_and_keep_their_behaviour() {
    let folder = plugin_folder_with(&[
        (
            "old.so",
            fixture_library("old-abi-plugin", "old_abi_plugin"),
        ),
        (
            "one-one.so",
            fixture_library("abi-1.1-plugin", "abi_1_1_plugin"),
        ),
    ]);
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":1}"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "plugin": {"folder": folder.path(), "pattern": ".so"},
        "endpoints": [{"endpoint": "/both", "backend": [{"host": [backend.url()], "url_pattern": "/"}],
                       "extra_config": {"test/old-abi": {}, "test/abi-1-1": {}}}]}))
    .await;
    let answer = get(&sepia.url("/both")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-old-plugin"), Some("abi-1.0"));
    assert_eq!(answer.header("x-abi-1-1"), Some("1.1"));
    // The 1.1 plugin's is_blocking reached the gateway: its hooks ran on
    // the hook threads.
    assert!(
        answer
            .header("x-hook-thread")
            .is_some_and(|t| t.starts_with("sepia-hooks-")),
        "{:?}",
        answer.header("x-hook-thread")
    );
    let logs = sepia.logs();
    assert!(
        logs.contains("name=abi-1-1") && logs.contains("abi=1.1.0"),
        "{logs}"
    );
}

fn context_config(folder: &Path, backend: &TestBackend, service: Value) -> Value {
    json!({"version": 3, "name": "ctx-test", "plugin": {"folder": folder, "pattern": ".so"},
    "extra_config": {"test/service": service},
    "endpoints": [
        {"endpoint": "/ctx", "backend": [{"host": [backend.url()], "url_pattern": "/"}],
         "input_headers": ["*"],
         "extra_config": {"test/context": {}}},
        {"endpoint": "/plain", "backend": [{"host": [backend.url()], "url_pattern": "/"}]}
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn abi_1_2_request_context_service_hooks_and_shared_values() {
    let folder = plugin_folder_with(&[(
        "context.so",
        fixture_library("context-plugin", "context_plugin"),
    )]);
    let backend = TestBackend::always(Reply::json(200, r#"{"b":[1,{"x":"}"}],"a":2}"#)).await;
    let sepia = Sepia::start(context_config(folder.path(), &backend, json!({}))).await;

    let answer = get(&sepia.url("/ctx")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // The endpoint hook got the client, an id, the endpoint and the layout
    // of the canonical body the gateway wrote.
    assert_eq!(answer.header("x-client-ip"), Some("127.0.0.1"));
    assert_eq!(answer.header("x-endpoint"), Some("/ctx"));
    assert_eq!(
        answer.header("x-layout"),
        Some(r#"canonical=true keys=a,b values=2,[1,{"x":"}"}]"#)
    );
    // One context from the service hooks through the endpoint's and back.
    let id = answer.header("x-endpoint-request-id").unwrap().to_owned();
    assert!(!id.is_empty());
    assert_eq!(answer.header("x-service-request-id"), Some(id.as_str()));
    assert_eq!(answer.header("x-service-endpoint"), Some("/ctx"));
    assert_eq!(answer.header("x-service-value"), Some("\"from-endpoint\""));
    assert_eq!(answer.header("x-service-status"), Some("200"));
    // The service hook's request changes and value reached the endpoint
    // and the backend.
    let seen = backend.requests();
    let last = seen.last().unwrap();
    assert_eq!(last.headers.get("x-added-by-service").unwrap(), "1");
    assert_eq!(last.headers.get("x-service-saw").unwrap(), "true");

    // Ids differ between requests; the shared count spans every worker.
    let mut ids = vec![id];
    for expected in 2..=6 {
        let answer = get(&sepia.url("/ctx")).await;
        assert_eq!(answer.header("x-hits"), Some(expected.to_string().as_str()));
        ids.push(answer.header("x-endpoint-request-id").unwrap().to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);

    // The service hooks see every answer: other endpoints, 404s.
    let plain = get(&sepia.url("/plain")).await;
    assert_eq!(plain.header("x-service-endpoint"), Some("/plain"));
    assert_eq!(plain.header("x-service-value"), Some("none"));
    let missing = get(&sepia.url("/nowhere")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-service-status"), Some("404"));
    assert_eq!(missing.header("x-service-endpoint"), Some(""));
    // And may answer before routing, for any path.
    let preflight = request(Method::OPTIONS, &sepia.url("/any/path"), &[], b"", false).await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("x-preflight"), Some("/any/path"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_level_refusal_stops_start_up_with_its_path() {
    let folder = plugin_folder_with(&[(
        "context.so",
        fixture_library("context-plugin", "context_plugin"),
    )]);
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let err = Sepia::refused(context_config(
        folder.path(),
        &backend,
        json!({"refuse": true}),
    ))
    .await;
    assert!(
        err.contains("extra_config.\"test/service\": plugin context refused the configuration: refused for service ctx-test (config version 3)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn krakend_req_resp_modifier_names_plugins() {
    let backend = TestBackend::always(Reply::json(200, "{}")).await;
    let endpoint = |config: Value| {
        json!({"endpoint": "/named", "backend": [{"host": [backend.url()], "url_pattern": "/"}],
               "extra_config": {"plugin/req-resp-modifier": config}})
    };
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [endpoint(json!({
        "name": ["header-modifier"],
        "header-modifier": {"response_set": {"x-named": "yes"}}
    }))]}))
    .await;
    assert_eq!(
        get(&sepia.url("/named")).await.header("x-named"),
        Some("yes")
    );
    assert!(
        !sepia.logs().contains("no loaded plugin serves"),
        "{}",
        sepia.logs()
    );
    let err =
        Sepia::refused(json!({"version": 3, "endpoints": [endpoint(json!({"name": ["nope"]}))]}))
            .await;
    assert!(err.contains("no loaded plugin is named \"nope\""), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_level_modifiers_see_each_backend_call() {
    let a = TestBackend::always(Reply::json(200, r#"{"a":1}"#)).await;
    let b = TestBackend::always(Reply::json(200, r#"{"b":2}"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "extra_config": {"sepia": {"json_errors": true}}, "endpoints": [
        {"endpoint": "/both", "input_headers": ["x-block"], "backend": [
            {"host": [a.url()], "url_pattern": "/a", "extra_config": {NS: {"request_set": {"x-for": "a"}}}},
            {"host": [b.url()], "url_pattern": "/b", "extra_config": {NS: {"block_when_header": "x-block"}}}
        ]},
        {"endpoint": "/broken", "backend": [
            {"host": [a.url()], "url_pattern": "/a", "extra_config": {NS: {"fault": {"on": "response", "kind": "error"}}}}
        ]}
    ]}))
    .await;
    let answer = get(&sepia.url("/both")).await;
    assert_eq!(answer.text(), r#"{"a":1,"b":2}"#);
    assert_eq!(a.requests()[0].header("x-for"), Some("a"));
    assert_eq!(b.requests()[0].header("x-for"), None);
    // The second backend's modifier answers for it: that backend "fails".
    let partial = request(
        Method::GET,
        &sepia.url("/both"),
        &[("x-block", "1")],
        b"",
        false,
    )
    .await;
    assert_eq!(partial.text(), r#"{"a":1}"#);
    assert_eq!(partial.header("x-krakend-completed"), Some("false"));
    assert_eq!(
        b.requests().len(),
        1,
        "the blocked call never reached backend b"
    );
    let broken = get(&sepia.url("/broken")).await;
    assert_eq!(broken.status, 418);
    assert_eq!(broken.json()["source"], "plugin");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_plugin_does_not_stall_other_endpoints() {
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let sepia = Sepia::start(json!({"version": 3, "endpoints": [
        endpoint_with("/slow", &backend, json!({"delay_ms": 1000})),
        endpoint_with("/fast", &backend, json!({}))
    ]}))
    .await;
    let slow: Vec<_> = (0..8)
        .map(|_| {
            let url = sepia.url("/slow");
            tokio::spawn(async move { get(&url).await.status })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        assert_eq!(get(&sepia.url("/fast")).await.status, 200);
        assert!(
            started.elapsed() < std::time::Duration::from_millis(700),
            "fast endpoint took {:?}",
            started.elapsed()
        );
    }
    for task in slow {
        assert_eq!(task.await.unwrap(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_compiled_in_behaves_as_the_loaded_one() {
    let program = sepia_e2e::artifacts::example_bin("compiled_in");
    let backend = TestBackend::always(Reply::json(200, r#"{"ok":true}"#)).await;
    let config = json!({"version": 3, "extra_config": {"sepia": {"plugins_endpoint": true}},
        "endpoints": [endpoint_with("/x", &backend, json!({"response_set": {"x-built": "in"}}))]});
    let sepia = Sepia::try_start_program(&program, config, &[], &[])
        .await
        .unwrap_or_else(|logs| panic!("{logs}"));
    let answer = get(&sepia.url("/x")).await;
    assert_eq!(answer.header("x-built"), Some("in"));
    let listing = get(&sepia.url("/__plugins")).await.json();
    assert_eq!(listing["plugins"][0]["file"], "(built in)");
    assert_eq!(listing["plugins"][0]["name"], "header-modifier");
}
