// The system allocator serialises on arena locks under many small per-request
// allocations; mimalloc's thread-local heaps measured faster (BENCHMARKS.md).
// Plugins keep their own allocators: ABI types free memory where it was
// allocated.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sepia::main()
}
