//! The daemon's allocator: mimalloc, tuned for a small, long-running process.
//!
//! **Why not glibc's malloc.** Its arena locks do not inherit priority. With
//! `vrrp_rt_priority`, a protocol thread (`SCHED_RR`) that freed or grew a block waited on the
//! arena lock a plugin executor thread (nice 10) held when the scheduler preempted it, and on
//! a busy host that thread waits for a CPU for tens of milliseconds: `sched_switch` stacks of
//! the VRRP worker in `__lll_lock_wait_private` under `_int_free` and `realloc`, 54–76 ms off
//! CPU, adverts up to 855 ms late and 24 spurious takeovers in 10 minutes at `advert_int 0.01`
//! (README, "A pair at `advert_int 0.01` under load"). mimalloc's heaps are per thread and a
//! free from another thread is a lock-free push, so no thread waits on another's allocator
//! state.
//!
//! **Options.** mimalloc's defaults suit a large server: it commits its arenas eagerly on an
//! overcommitting kernel, reserves 1 GiB of address space up front, keeps freed pages for a
//! while and lets the kernel back them with huge pages. A node with four plugin checks held
//! 47 MiB of RSS with them (glibc: 13 MiB). [`OPTIONS`] turns those off; they are set by a
//! constructor in `.init_array`, before `main` and before the first allocation, because the
//! first arena is reserved by the first allocation and options read later do not change it.
//! The `MIMALLOC_*` environment variables no longer override these (mimalloc reads an option
//! from the environment only until it is set).
#![allow(unsafe_code)]

use std::os::raw::{c_int, c_long};

/// The global allocator of the daemon's binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc 3.x's option numbers (`mi_option_t` in `mimalloc.h`; libmimalloc-sys 0.1.49 ships
/// the 2.x names only). The test below pins them against mimalloc's own defaults, with three
/// options the daemon leaves alone.
mod option {
    use super::c_int;
    pub const ARENA_EAGER_COMMIT: c_int = 4;
    #[cfg(test)]
    pub const OS_TAG: c_int = 18;
    pub const PURGE_DELAY: c_int = 15;
    pub const ARENA_RESERVE: c_int = 23;
    pub const ARENA_PURGE_MULT: c_int = 24;
    #[cfg(test)]
    pub const GENERIC_COLLECT: c_int = 34;
    pub const PAGE_FULL_RETAIN: c_int = 36;
    #[cfg(test)]
    pub const PAGE_MAX_CANDIDATES: c_int = 37;
    pub const ALLOW_THP: c_int = 43;
}

/// What the daemon sets, and why.
const OPTIONS: &[(c_int, c_long)] = &[
    // Commit arena memory as it is used, not the whole arena up front.
    (option::ARENA_EAGER_COMMIT, 0),
    // Reserve 64 MiB of address space at a time, not 1 GiB (a VSZ alarm, `ulimit -v`).
    (option::ARENA_RESERVE, 64 * 1024), // KiB
    // Hand freed pages back at once (and arenas' after 1 × that): the daemon is mostly idle.
    (option::PURGE_DELAY, 0),
    (option::ARENA_PURGE_MULT, 1),
    // Keep no full pages per size class beyond what is in use.
    (option::PAGE_FULL_RETAIN, 0),
    // No transparent huge pages: a 2 MiB page would be resident for a few KiB of heap.
    (option::ALLOW_THP, 0),
];

/// Run before `main` (and before the Rust runtime allocates) by the dynamic loader.
#[used]
#[unsafe(link_section = ".init_array")]
static SET_OPTIONS: extern "C" fn() = set_options;

extern "C" fn set_options() {
    for &(option, value) in OPTIONS {
        // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; it takes no
        // pointers and is valid before mimalloc is initialised.
        unsafe { libmimalloc_sys::mi_option_set(option, value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(option: c_int) -> c_long {
        // SAFETY: reads an integer from mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_get(option) }
    }

    /// Options the daemon does not set still have mimalloc 3's defaults at the numbers this
    /// module uses (so the numbers name the options it means), and the constructor ran.
    #[test]
    fn the_option_numbers_are_mimalloc_3_s_and_the_constructor_set_them() {
        assert_eq!(get(option::OS_TAG), 100, "os_tag");
        assert_eq!(get(option::GENERIC_COLLECT), 10_000, "generic_collect");
        assert_eq!(get(option::PAGE_MAX_CANDIDATES), 4, "page_max_candidates");
        for &(option, value) in OPTIONS {
            assert_eq!(get(option), value, "option {option}");
        }
    }
}
