//! Gives the memory start-up and reloads freed back to the system.
//!
//! mimalloc returns freed pages after a delay, and checks that delay only
//! when the freeing thread allocates again. The threads that read and built
//! a configuration then wait on the network, so what they freed (the file's
//! parsed tree, its endpoint list, the old gateway of a reload) stayed
//! resident: with 5 000 endpoints, 23 MB of anonymous memory, more than the
//! gateway itself keeps (BENCHMARKS.md, twelfth session).

/// Returns the pages freed so far to the system. It walks the calling
/// thread's heap and the shared arenas: for start-up and reloads, not for
/// requests.
#[allow(unsafe_code)]
pub fn give_back() {
    // SAFETY: mi_collect takes no argument that points anywhere, and
    // mimalloc allows it on any thread at any time; with another global
    // allocator it only tidies mimalloc's own, unused heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
