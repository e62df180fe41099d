//! The few libc calls the script runner needs, which the `libc` crate only offers as
//! `unsafe fn`s. Nothing else in `checks` uses `unsafe`.
//!
//! - [`kill_process_group`]: `kill(-pgid, sig)`, to kill a timed-out script *and its children*
//!   (keepalived `vrrp_script_child_thread` does `kill(-pid, …)`).
//! - [`set_credentials`]: a `pre_exec` hook doing `setgroups` + `setgid` + `setuid` in the
//!   child, because std's `CommandExt::uid` clears the supplementary groups (`setgroups(0)`) and
//!   has no stable way to set them, while keepalived gives the script the user's supplementary
//!   groups (`core/notify.c`, `set_script_env`).
//! - [`set_child_nice`]: a `pre_exec` hook doing `setpriority` in the child, so the LVS
//!   director's scripts run at `checker_priority` as keepalived's checker process's children do.
//! - [`effective_ids`]: `geteuid`/`getegid`, to know whether a script would run as root.
//! - [`set_round_robin`], [`set_cpu_affinity`], [`cpu_affinity`], [`lock_current_memory`],
//!   [`current_tid`]: keepalived's `vrrp_rt_priority`, `vrrp_cpu_affinity` and `vrrp_no_swap`
//!   for the daemon's protocol threads.
#![allow(unsafe_code)]

use std::io;

/// Send `signal` to every process of the process group `pgid`.
///
/// `pgid` must be a process group this daemon created (a script's own group, whose leader has
/// not been reaped yet), so the group id cannot have been reused.
pub fn kill_process_group(pgid: u32, signal: libc::c_int) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pgid out of range"))?;
    if pgid <= 1 {
        // kill(0 / -1, …) would hit our own group or every process: never.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal process group <= 1",
        ));
    }
    // SAFETY: kill(2) has no memory-safety preconditions; the argument is a negative pgid.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Make the child switch to `uid`/`gid` with supplementary `groups` just before `exec`.
pub fn set_credentials(cmd: &mut tokio::process::Command, uid: u32, gid: u32, groups: Vec<u32>) {
    let groups: Vec<libc::gid_t> = groups;
    // SAFETY: the closure runs in the forked child before exec; it only makes the
    // async-signal-safe system calls setgroups/setgid/setuid, on data allocated before the
    // fork, and allocates nothing. Order matters: groups and gid while still privileged, uid
    // last.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setgid(gid) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setuid(uid) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Make the child set its own nice value to `nice` just before `exec`; a refusal (a lower value
/// without `CAP_SYS_NICE`) is ignored and the child keeps the value it inherited.
pub fn set_child_nice(cmd: &mut tokio::process::Command, nice: i8) {
    // SAFETY: the closure runs in the forked child before exec and makes one
    // async-signal-safe system call on plain integers; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpriority(libc::PRIO_PROCESS, 0, libc::c_int::from(nice));
            Ok(())
        });
    }
}

/// This process's effective uid and gid.
pub fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid/getegid cannot fail and have no preconditions.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// The calling thread's kernel id.
pub fn current_tid() -> i32 {
    // SAFETY: gettid(2) takes nothing and cannot fail.
    unsafe { libc::gettid() }
}

/// Run thread `tid` `SCHED_RR` at `priority` (1–99), with `SCHED_RESET_ON_FORK`: threads and
/// processes it creates start `SCHED_OTHER` (keepalived `set_process_priorities` does the
/// same, so its scripts do not inherit real-time priority).
pub fn set_round_robin(tid: i32, priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: `param` is a valid sched_param that outlives the call.
    let rc = unsafe {
        libc::sched_setscheduler(tid, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &param)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Set thread `tid`'s nice value (-20 strongest … 19 weakest; `setpriority(PRIO_PROCESS)`
/// with a thread id applies to that thread only on Linux). Threads it creates later inherit it.
pub fn set_thread_nice(tid: i32, nice: i8) -> io::Result<()> {
    let who = libc::id_t::try_from(tid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative thread id"))?;
    // SAFETY: setpriority(2) takes plain integers.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, libc::c_int::from(nice)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Thread `tid`'s nice value (0: the caller).
pub fn thread_nice(tid: i32) -> io::Result<i8> {
    let who = libc::id_t::try_from(tid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative thread id"))?;
    // getpriority(2) may return -1 as a value: clear errno first to tell it from an error.
    // SAFETY: errno is this thread's; getpriority takes plain integers.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, who)
    };
    let err = io::Error::last_os_error();
    if nice == -1 && err.raw_os_error().is_some_and(|e| e != 0) {
        return Err(err);
    }
    i8::try_from(nice)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "nice value out of range"))
}

/// Ask the fair scheduler for a time slice of `slice` for thread `tid` (`sched_setattr` with
/// `SCHED_OTHER`; its nice value is kept; `Duration::ZERO` asks for the default slice again).
/// On Linux ≥ 6.12 (EEVDF's custom slices; the kernel clamps the value to 0.1–100 ms) a
/// waking thread whose slice is shorter than the running thread's preempts it at once instead
/// of waiting out that thread's slice (the scheduler's `PREEMPT_SHORT`); older kernels keep
/// their own slice and ignore the value.
pub fn set_fair_slice(tid: i32, slice: std::time::Duration) -> io::Result<()> {
    let attr = libc::sched_attr {
        size: SCHED_ATTR_SIZE,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: i32::from(thread_nice(tid)?),
        sched_priority: 0,
        sched_runtime: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: `attr` is a valid, fully initialised sched_attr whose `size` is its own; the
    // kernel only reads it during the call.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, tid, &attr, 0u32) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Thread `tid`'s fair-scheduler time slice as the kernel reports it (`sched_getattr`'s
/// `sched_runtime`; kernels before custom slices report 0).
pub fn fair_slice(tid: i32) -> io::Result<std::time::Duration> {
    let mut attr = libc::sched_attr {
        size: 0,
        sched_policy: 0,
        sched_flags: 0,
        sched_nice: 0,
        sched_priority: 0,
        sched_runtime: 0,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: the kernel writes at most `SCHED_ATTR_SIZE` bytes into `attr`, which is that
    // large and outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            tid,
            &mut attr,
            SCHED_ATTR_SIZE,
            0u32,
        )
    };
    if rc == 0 {
        Ok(std::time::Duration::from_nanos(attr.sched_runtime))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The size of `struct sched_attr` as this build knows it (`SCHED_ATTR_SIZE_VER0`, 48 bytes).
const SCHED_ATTR_SIZE: u32 = std::mem::size_of::<libc::sched_attr>() as u32;

/// The CPUs thread `tid` (0: the caller) may run on.
pub fn cpu_affinity(tid: i32) -> io::Result<Vec<u16>> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = u16::try_from(libc::CPU_SETSIZE).unwrap_or(u16::MAX);
    // SAFETY: CPU_ISSET reads `set` at an index below CPU_SETSIZE.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(usize::from(cpu), &set) })
        .collect())
}

/// Let thread `tid` (0: the caller) run only on `cpus` (each below `CPU_SETSIZE`).
pub fn set_cpu_affinity(tid: i32, cpus: &[u16]) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if i32::from(cpu) >= libc::CPU_SETSIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is beyond CPU_SETSIZE"),
            ));
        }
        // SAFETY: CPU_SET writes `set` at an index checked above.
        unsafe { libc::CPU_SET(usize::from(cpu), &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lock every page mapped now into memory as it is touched (`mlockall(MCL_CURRENT |
/// MCL_ONFAULT)`): never swapped out, and nothing populated ahead of use. Not `MCL_FUTURE`:
/// mappings made later (the plugin instance pool, whose slots are reset with
/// `madvise(MADV_DONTNEED)`, which locked pages refuse) stay unlocked.
pub fn lock_current_memory() -> io::Result<()> {
    // SAFETY: mlockall(2) has no memory-safety preconditions.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_ONFAULT) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_nice_value_applies_to_one_thread_and_is_inherited_by_the_threads_it_starts() {
        let before = thread_nice(0).expect("own nice value");
        let (own, child, caller) = std::thread::spawn(move || {
            let tid = current_tid();
            // Weaker than now: allowed without privileges.
            let weaker = (before + 3).min(19);
            set_thread_nice(tid, weaker).expect("setpriority");
            let child = std::thread::spawn(|| thread_nice(0).expect("child's nice"))
                .join()
                .expect("child");
            (thread_nice(tid).expect("own nice"), child, weaker)
        })
        .join()
        .expect("thread");
        assert_eq!((own, child), (caller, caller));
        assert_eq!(
            thread_nice(0).expect("unchanged"),
            before,
            "only that thread"
        );
    }

    /// Whether custom slices exist (Linux ≥ 6.12) is the kernel's: there the slice reads back
    /// (clamped to 0.1–100 ms) and is inherited by the threads the thread starts, like a nice
    /// value; elsewhere the call succeeds and reads back 0.
    #[test]
    fn a_fair_slice_applies_to_one_thread_is_inherited_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            let me = current_tid();
            let nice = thread_nice(me).expect("nice");
            set_fair_slice(me, std::time::Duration::from_micros(300)).expect("set");
            let slice = fair_slice(me).expect("get");
            let custom = !slice.is_zero();
            if custom {
                assert_eq!(slice, std::time::Duration::from_micros(300));
            }
            assert_eq!(thread_nice(me).expect("nice"), nice, "kept");
            let child = std::thread::spawn(|| fair_slice(current_tid()).expect("get"))
                .join()
                .expect("child");
            assert_eq!(child, slice, "inherited by a thread started later");
            set_fair_slice(me, std::time::Duration::from_nanos(1)).expect("clamped up");
            if custom {
                assert_eq!(
                    fair_slice(me).expect("get"),
                    std::time::Duration::from_micros(100)
                );
            }
            set_fair_slice(me, std::time::Duration::ZERO).expect("default again");
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn kill_refuses_our_own_group_init_and_everyone() {
        // kill(0, …) would hit our own group, kill(-1, …) every process: refused before the
        // system call, so this test is safe to run (a wrong implementation would kill it).
        for pgid in [0, 1] {
            let err = kill_process_group(pgid, 0).expect_err("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "pgid {pgid}");
        }
        let err = kill_process_group(u32::MAX, 0).expect_err("out of range");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn signal_zero_probes_a_group_of_our_own() {
        let child = std::process::Command::new("sleep")
            .arg("10")
            .process_group(0)
            .spawn()
            .expect("sleep");
        let pgid = child.id();
        kill_process_group(pgid, 0).expect("our child's group exists");
        kill_process_group(pgid, libc::SIGKILL).expect("kill");
        let mut child = child;
        let status = child.wait().expect("wait");
        assert!(!status.success());
    }
}
