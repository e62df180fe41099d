//! The few operating-system and wasmtime calls the plugin runtime needs that Rust marks
//! `unsafe`. Everything unsafe in `plugins/` lives here, each call with its justification, so
//! the rest of the runtime stays `unsafe`-free.
#![allow(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::Engine;

/// CPU time consumed by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time consumed by the whole process (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes into it. These
    // clock ids always exist on Linux; on the impossible failure we report zero.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// CPU time (user + system) of all waited-for children (`getrusage(RUSAGE_CHILDREN)`).
pub fn children_cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid and writable; getrusage only writes into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_usec).unwrap_or(0).saturating_mul(1000),
        )
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Send SIGKILL to every process in process group `pgid` (used for remediation timeouts).
/// Errors (group already gone) are ignored: the goal is that nothing of it survives.
pub fn kill_process_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return; // never signal init's group or "every process" (-1)
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses the group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Load a precompiled component from the daemon's code cache.
///
/// `Component::deserialize` is `unsafe` because wasmtime trusts the artifact: a crafted
/// file is arbitrary native code. The caller (`cache.rs`) guarantees the file lives in the
/// daemon-owned cache directory (mode 0700, owned by the daemon's uid, checked at open) and
/// was written by this daemon; wasmtime additionally checks the header (version, engine
/// configuration) and refuses a mismatched artifact with an error.
///
/// The file is read into memory rather than mapped (`deserialize_file` would `mmap` it): a
/// mapped file truncated in place later would kill the daemon with SIGBUS.
pub fn deserialize_cached_component(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(path)?;
    // SAFETY: see above — the bytes were produced by `Component::serialize` of this daemon
    // and stored only where the daemon's uid alone can write.
    unsafe { Component::deserialize(engine, &bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let a = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = thread_cpu_time();
        assert!(b > a, "{a:?} -> {b:?}");
        assert!(process_cpu_time() >= b - a);
    }

    #[test]
    fn kill_refuses_init_and_all() {
        kill_process_group(0);
        kill_process_group(1);
    }
}
