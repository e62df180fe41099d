//! The C allocator's share of the daemon's memory (glibc malloc), tuned for a long-running,
//! mostly idle daemon.
//!
//! The daemon's own (Rust) allocations go to mimalloc (`#[global_allocator]` in the daemon's
//! `main.rs`): glibc's arena locks are not priority-inheriting, and a real-time protocol thread
//! waited on one held by a preempted plugin executor thread. What stays with glibc is libc's
//! own allocations (name resolution, `stdio`, locale) and any C library's; the tuning below
//! keeps those small. Measured before the switch, when glibc held every allocation:
//!
//! glibc gives threads their own malloc arenas, up to 8 per core, each a 64 MiB address-space
//! reservation: the daemon's tokio workers, blocking-pool threads (plugin loads, reloads),
//! plugin executor threads and wasmtime's compile threads made ~12 arenas — 0.8 GiB of VSZ —
//! and four of them kept ~4.5 MiB resident each from the start-up's transient allocations
//! (issue 14: measured with `tests/src/bin/memory_bench.rs`). Two arenas hold what this
//! daemon allocates (it does not allocate on the advert path, and a plugin run's allocations
//! are small), and trimming after the bursts (start-up, a reload) hands their freed pages
//! back to the kernel.
//!
//! glibc also raises its thresholds as the process runs: freeing a large `mmap`ed block (a
//! plugin file read, deserialised code, at start-up) lifts the size above which blocks are
//! `mmap`ed to that block's size (up to 32 MiB) and the free space an arena keeps before it
//! shrinks to twice that, so every later large allocation comes from an arena that never
//! gives it back. A node with four plugin checks held ~4 MiB of such free space in its
//! second arena a few seconds after start-up. Fixed thresholds (glibc's own starting values)
//! turn that off: large blocks are `mmap`ed and returned on free, and an arena shrinks once
//! more than [`TRIM_THRESHOLD`] is free at its top. Cost, measured on that node: two `mmap`
//! calls in 4 s of checks and no change in its CPU time.
#![allow(unsafe_code)]

/// Arenas glibc may create (`M_ARENA_MAX`): the main one and one for the other threads.
const ARENAS: i32 = 2;
/// Blocks this large or larger are `mmap`ed and unmapped on free (`M_MMAP_THRESHOLD`;
/// glibc's initial value, fixed so it does not grow).
const MMAP_THRESHOLD: i32 = 128 * 1024;
/// Free space at an arena's top beyond which it shrinks (`M_TRIM_THRESHOLD`; glibc's
/// initial value, fixed so it does not grow).
const TRIM_THRESHOLD: i32 = 128 * 1024;

/// Cap the number of malloc arenas and fix the thresholds at which freed memory goes back to
/// the kernel. Call first thing in `main`, before other threads exist (an arena, once
/// created, is never removed). Whether the allocator took every setting (`false` outside
/// glibc).
pub fn configure() -> bool {
    #[cfg(target_env = "gnu")]
    // SAFETY: `mallopt` only sets an allocator parameter and reports an unknown one by its
    // return value; no memory is passed.
    unsafe {
        [
            (libc::M_ARENA_MAX, ARENAS),
            (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ]
        .into_iter()
        .fold(true, |ok, (param, value)| {
            libc::mallopt(param, value) == 1 && ok
        })
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
    fn glibc_takes_the_arena_cap_and_thresholds_and_trims() {
        assert!(configure(), "mallopt refused a setting");
        let freed: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 64 * 1024]).collect();
        drop(freed);
        release_free_memory();
    }
}
