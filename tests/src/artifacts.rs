//! Where the built binary and plugins are, and building them (and the test
//! fixtures) when a test needs them, so `cargo test` alone never runs a stale
//! binary.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, OnceLock},
};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// `target/debug` (the profile the tests were built with).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_owned()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned())
}

fn run_cargo(args: &[&str], target_dir: Option<&Path>) {
    let mut command = Command::new(cargo());
    command.args(args).current_dir(workspace_root());
    if let Some(dir) = target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "cargo {args:?} failed");
}

/// Builds the gateway and the workspace plugins once per test binary.
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let release = profile_dir().file_name().is_some_and(|n| n == "release");
        // The whole workspace: the binary and every plugin beside it.
        let mut args = vec!["build", "--workspace"];
        if release {
            args.push("--release");
        }
        run_cargo(&args, None);
    });
}

/// The `sepia` binary.
pub fn sepia_bin() -> PathBuf {
    ensure_built();
    profile_dir().join("sepia")
}

/// An example program of the `sepia` crate (`gateway/examples/NAME.rs`),
/// built on first use.
pub fn example_bin(name: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    ensure_built();
    let release = profile_dir().file_name().is_some_and(|n| n == "release");
    let mut args = vec!["build", "-p", "sepia", "--example", name];
    if release {
        args.push("--release");
    }
    run_cargo(&args, None);
    profile_dir().join("examples").join(name)
}

/// A workspace plugin's library, by crate name (`sepia-header-modifier`).
pub fn plugin_library(crate_name: &str) -> PathBuf {
    ensure_built();
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    profile_dir().join(file)
}

/// Builds a crate under `tests/fixtures/NAME` (outside the workspace) into
/// `target/fixtures` and returns its library.
pub fn fixture_library(name: &str, lib_name: &str) -> PathBuf {
    standalone_library(&format!("tests/fixtures/{name}"), lib_name)
}

/// Builds the standalone crate in `folder` (relative to the workspace root)
/// into `target/fixtures`, as its author would with `cargo build`, and
/// returns its library. Serialised: one cargo at a time.
pub fn standalone_library(folder: &str, lib_name: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let target = workspace_root().join("target").join("fixtures");
    let manifest = workspace_root().join(folder).join("Cargo.toml");
    run_cargo(
        &[
            "build",
            "--manifest-path",
            manifest.to_str().expect("utf-8 path"),
        ],
        Some(&target),
    );
    target.join("debug").join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        lib_name,
        std::env::consts::DLL_SUFFIX
    ))
}
