//! What crossing the plugin ABI costs per call: a response hook with a
//! 1 KiB body, called (1) as a plain Rust trait object, (2) through the ABI
//! vtable but compiled into this binary, and (3) in the real header-modifier
//! plugin loaded from its `.so` (built by `cargo build --release --workspace`).
//! Prints nanoseconds a call, the median of several runs. Target: under 1 µs.
//!
//!     cargo build --release --workspace && cargo bench -p sepia --bench abi_call

use std::{
    hint::black_box,
    path::PathBuf,
    time::{Duration, Instant},
};

use sepia_plugin_api::{
    into_modifier_box, EndpointInfo, Modifier, ModifierBox, ModifierScope, PluginError, RVec,
    Response,
};

struct NoOp;

impl Modifier for NoOp {
    fn on_response(&self, response: &mut Response) -> Result<(), PluginError> {
        black_box(&response.body);
        Ok(())
    }
}

const CALLS: u32 = 200_000;
const RUNS: usize = 7;

fn response() -> Response {
    let mut response = Response::json(200, vec![b'x'; 1024]);
    response.body = RVec::from(vec![b'x'; 1024]);
    response
}

fn median_ns(mut call: impl FnMut(&mut Response)) -> f64 {
    let mut response = response();
    for _ in 0..10_000 {
        call(&mut response);
    }
    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..CALLS {
                call(&mut response);
            }
            started.elapsed()
        })
        .collect();
    runs.sort();
    runs[RUNS / 2].as_nanos() as f64 / f64::from(CALLS)
}

fn plugin_modifier() -> Result<ModifierBox, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/release/deps/abi_call-... → target/release
    let dir: PathBuf = exe
        .parent()
        .and_then(|p| p.parent())
        .ok_or("no target folder")?
        .to_owned();
    let path = dir.join(format!(
        "{}sepia_header_modifier{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let library = sepia::load_library(&path, false).map_err(|e| e.to_string())?;
    let info = EndpointInfo {
        endpoint: "/bench".into(),
        method: "GET".into(),
        scope: ModifierScope::Endpoint,
        backend_url_pattern: "".into(),
        timeout_ms: 1000,
    };
    library
        .module
        .new_modifier("sepia/header-modifier", "{}", &info)
        .map_err(|e| e.to_string())
}

fn main() {
    let direct: Box<dyn Modifier> = Box::new(NoOp);
    let compiled_in = into_modifier_box(Box::new(NoOp));
    let direct_ns = median_ns(|r| {
        let _ = black_box(direct.on_response(r));
    });
    let compiled_ns = median_ns(|r| {
        let _ = black_box(compiled_in.on_response(r));
    });
    println!(
        "{:<40} {:>8.1} ns/call",
        "Rust trait object (no ABI)", direct_ns
    );
    println!(
        "{:<40} {:>8.1} ns/call",
        "ABI vtable, compiled in", compiled_ns
    );
    match plugin_modifier() {
        Ok(plugin) => {
            let plugin_ns = median_ns(|r| {
                let _ = black_box(plugin.on_response(r));
            });
            println!(
                "{:<40} {:>8.1} ns/call",
                "header-modifier plugin (.so)", plugin_ns
            );
        }
        Err(e) => {
            println!("plugin not measured ({e}): run cargo build --release --workspace first")
        }
    }
}
