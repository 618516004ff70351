//! KrakenD CE's own integration suite (`tests/fixtures/krakend-ce`): its
//! configuration served by the real binary with the real plugins, its mock
//! backend on loopback, each spec's request sent and its answer compared as
//! upstream compares it.
//!
//! Every spec must pass except those listed in [`NOT_YET`], each with the
//! reason; a listed spec that passes fails the test too, so the list only
//! shrinks.

use sepia_e2e::{
    krakend_ce::{config, mock_backend, run, specs},
    sepia::free_port,
    Sepia,
};

/// The specs Sepia does not pass yet, and why.
const NOT_YET: &[(&str, &str)] = &[
    ("backend_301", "backend redirects are not followed (Go's client follows them, with a Referer) (#12)"),
    ("backend_302", "backend redirects are not followed (#12)"),
    ("backend_303", "backend redirects are not followed (#12)"),
    ("backend_307", "backend redirects are not followed (#12)"),
    ("backend_404", "lura 2's 500 with its error text (`invalid status code 404 [GET /unknown]: URL`) (#12)"),
    ("botdetector_1", "security/bot-detector (#13)"),
    ("botdetector_2", "security/bot-detector (#13)"),
    ("botdetector_3", "security/bot-detector (#13)"),
    ("botdetector_4", "security/bot-detector (#13)"),
    ("cel-1", "validation/cel (#14)"),
    ("cel-2", "validation/cel (#14)"),
    ("cel-3", "validation/cel (#14)"),
    ("cel-4", "validation/cel (#14)"),
    ("cel-7", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12)"),
    ("cors_1", "security/cors (#13)"),
    ("cors_2", "security/cors (#13)"),
    ("cors_3", "security/cors (#13)"),
    ("cors_4", "security/cors (#13)"),
    ("cors_5", "security/cors (#13), and the X-Krakend version header (#12)"),
    ("detail_error", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12)"),
    ("flatmap_1", "proxy.flatmap_filter (#12)"),
    ("jsonschema_1", "validation/json-schema (#14)"),
    ("lua_1", "modifier/lua-backend (#14)"),
    ("lua_2", "modifier/lua-proxy (#14)"),
    ("negotitate_json", "the xml backend encoding (#12)"),
    ("negotitate_plain", "the xml backend encoding and the negotiate output (#12)"),
    ("no-op_1", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12), and lura's Content-Length: 0"),
    ("param_forwarding_1", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12)"),
    ("param_forwarding_2", "backends get Sepia's name in X-Forwarded-Via (#12)"),
    ("param_forwarding_3", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12)"),
    ("param_forwarding_4", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12); a POST answer gets no Cache-Control"),
    ("query_forwarding_1", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12)"),
    ("query_forwarding_2", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12)"),
    ("query_forwarding_3", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12)"),
    ("rss", "needs the internet (showrss.info) and the rss encoding"),
    ("sequential_1", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12)"),
    ("sequential_3", "proxy.sequential_propagated_params (#12)"),
    ("sequential_4", "{resp0} as a whole response (#12)"),
    ("timeout", "backends get Sepia's User-Agent and no Accept-Encoding: gzip (#12)"),
    ("xml_1", "the xml backend encoding and output (#12)"),
    ("xml_2", "the xml output encoding (#12)"),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_krakend_ce_suite_passes() {
    let backend = mock_backend().await;
    let port = free_port();
    let metrics = free_port();
    let config = config(port, backend.addr.port(), metrics);
    let sepia = Sepia::start_on(port, config).await;
    let mut unexpected = Vec::new();
    let mut passing_but_listed = Vec::new();
    for spec in specs(port, backend.addr.port()) {
        let problems = run(&spec, sepia.port).await;
        let listed = NOT_YET.iter().any(|(name, _)| *name == spec.name);
        match (problems.is_empty(), listed) {
            (true, true) => passing_but_listed.push(spec.name.clone()),
            (false, false) => unexpected.push(format!("{}: {}", spec.name, problems.join("; "))),
            _ => {}
        }
    }
    assert!(
        unexpected.is_empty(),
        "{} spec(s) fail:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        passing_but_listed.is_empty(),
        "these specs pass now: remove them from NOT_YET: {passing_but_listed:?}"
    );
}
