//! KrakenD CE's own integration suite (`tests/fixtures/krakend-ce`): its
//! configuration served by the real binary with the real plugins, its mock
//! backend on loopback, each spec's request sent and its answer compared as
//! upstream compares it.
//!
//! Every spec must pass except those listed in [`NOT_YET`], each with the
//! reason; a listed spec that passes fails the test too, so the list only
//! shrinks. `SEPIA_CE_VERBOSE=1` prints how the listed ones fail.

use sepia_e2e::{
    krakend_ce::{config, mock_backend, run, specs},
    sepia::free_port,
    Sepia,
};

/// The specs Sepia does not pass yet, and why.
const NOT_YET: &[(&str, &str)] = &[];

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
        if listed && !problems.is_empty() && std::env::var_os("SEPIA_CE_VERBOSE").is_some() {
            eprintln!("{} (not yet): {}", spec.name, problems.join("; "));
        }
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
