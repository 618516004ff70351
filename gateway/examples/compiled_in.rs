//! The `sepia` command with the header-modifier plugin compiled in instead of
//! loaded from its `.so`: the same plugin code on both sides of the ABI, for
//! bench/run.sh to compare end to end. Also the way to embed Sepia with your
//! own Rust plugins.

use sepia::Builtin;

// The allocator the `sepia` binary uses, so that the comparison with the
// loaded plugin differs in the ABI alone.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sepia::main_with_builtins(vec![Builtin::of::<
        sepia_header_modifier::HeaderModifierPlugin,
    >()])
}
