//! The `sepia` command with the header-modifier plugin compiled in instead of
//! loaded from its `.so`: the same plugin code on both sides of the ABI, for
//! bench/run.sh to compare end to end. Also the way to embed Sepia with your
//! own Rust plugins.

use sepia::plugin_host::root_module::Builtin;

fn main() -> std::process::ExitCode {
    sepia::cli::main_with_builtins(vec![Builtin::of::<
        sepia_header_modifier::HeaderModifierPlugin,
    >()])
}
