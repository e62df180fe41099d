//! The C allocator's share of the daemon's memory (glibc malloc), tuned for a long-running,
//! mostly idle daemon.
//!
//! glibc gives threads their own malloc arenas, up to 8 per core, each a 64 MiB address-space
//! reservation: the daemon's tokio workers, blocking-pool threads (plugin loads, reloads),
//! plugin executor threads and wasmtime's compile threads made ~12 arenas — 0.8 GiB of VSZ —
//! and four of them kept ~4.5 MiB resident each from the start-up's transient allocations
//! (issue 14: measured with `tests/src/bin/memory_bench.rs`). Two arenas hold what this
//! daemon allocates (it does not allocate on the advert path, and a plugin run's allocations
//! are small), and trimming after the bursts (start-up, a reload) hands their freed pages
//! back to the kernel.
#![allow(unsafe_code)]

/// Arenas glibc may create (`M_ARENA_MAX`): the main one and one for the other threads.
const ARENAS: i32 = 2;

/// Cap the number of malloc arenas. Call first thing in `main`, before other threads exist
/// (an arena, once created, is never removed). Whether the allocator took the setting
/// (`false` outside glibc).
pub fn limit_arenas() -> bool {
    #[cfg(target_env = "gnu")]
    // SAFETY: `mallopt` only sets an allocator parameter and reports an unknown one by its
    // return value; no memory is passed.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS) == 1
    }
    #[cfg(not(target_env = "gnu"))]
    false
}

/// Return the allocator's free pages to the kernel (`malloc_trim`): after start-up or a
/// reload, whose transient allocations (plugin files read, compiled code deserialised)
/// would otherwise stay resident. A no-op outside glibc.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: `malloc_trim` walks the arenas under their locks; safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_env = "gnu")]
    fn glibc_takes_the_arena_cap_and_trims() {
        assert!(limit_arenas(), "mallopt(M_ARENA_MAX) refused");
        let freed: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 64 * 1024]).collect();
        drop(freed);
        release_free_memory();
    }
}
