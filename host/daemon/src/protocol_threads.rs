//! keepalived's `vrrp_rt_priority`, `vrrp_cpu_affinity`, `vrrp_no_swap` and `vrrp_priority`, applied to the
//! daemon's *protocol threads*: the thread running the daemon's main loop and the async
//! runtime's worker threads, which carry the VRRP driver (adverts, timers), the sockets,
//! netlink and the control socket. Never to the plugin executor, the blocking pool (plugin
//! compiles, file I/O) or child processes (STYLE principle 7: checks never delay adverts —
//! and with these knobs, adverts preempt checks).
//!
//! keepalived applies them to its VRRP process (`vrrp_daemon.c`, `set_process_priorities`,
//! `set_cpu_affinity`): `SCHED_RR` with `SCHED_RESET_ON_FORK`, so its scripts start
//! `SCHED_OTHER`; `mlockall`. Here:
//! - `SCHED_RR | SCHED_RESET_ON_FORK` per protocol thread (by thread id): threads they create
//!   later start `SCHED_OTHER`;
//! - the CPU affinity per protocol thread; a blocking-pool thread (which inherits its
//!   creator's affinity) is given the process's original CPUs back when it starts. Scripts
//!   inherit the protocol threads' CPUs, as keepalived's do;
//! - `vrrp_priority N`: nice value N per protocol thread (`setpriority` by thread id); a
//!   blocking-pool thread, which inherits its creator's, is given the process's back when it
//!   starts (the plugin executor's is `checker_priority`, [`crate::checker_threads`]);
//! - `mlockall(MCL_CURRENT | MCL_ONFAULT)` before the plugin runtime starts: the daemon's code,
//!   stacks and heap so far are locked as touched; the plugin instance pool, mapped later, is
//!   not (its slots are reset with `madvise(MADV_DONTNEED)`, which locked pages refuse).
//!
//! Without `vrrp_rt_priority` — the default — the protocol threads ask the fair scheduler
//! for a short time slice ([`PROTOCOL_SLICE`]; Linux ≥ 6.12, EEVDF's custom slices; other
//! kernels ignore it). That scheduler lets the thread it just put on a CPU run out its slice
//! before a thread that wakes may take the CPU, unless the waking thread's slice is the
//! shorter one (`PREEMPT_SHORT`): a protocol thread woken by its advert timer while both CPUs
//! run plugin executors (a busy-loop plugin burning its timeout) otherwise waits out their
//! slice — and with `HZ=250` the tick that ends it, up to 4 ms later. With the short slice it
//! takes the CPU at once. keepalived has no such knob (its answer is `vrrp_rt_priority`); it
//! costs nothing when the CPUs are free. Threads and processes the protocol threads start
//! inherit the slice as they inherit the nice value; the blocking pool's threads (which start
//! the plugin runtime and its executor threads) are given the default slice back.
//!
//! All three take effect at start-up; a reload that changes them says so and changes nothing.
//! Which threads are the runtime's workers: the first `workers` threads the runtime starts
//! (tokio starts its workers while the runtime is built, before anything can ask for a
//! blocking thread); [`ProtocolThreads::thread_started`] is the runtime's `on_thread_start`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{info, warn};
use wasmalived_config::model::ProtocolThreads as Settings;
use wasmalived_sys::{
    cpu_affinity, current_tid, fair_slice, lock_current_memory, set_cpu_affinity, set_fair_slice,
    set_round_robin, set_thread_nice, thread_nice,
};

/// The fair-scheduler time slice of the protocol threads without `vrrp_rt_priority`: the
/// kernel's minimum, well below its default (0.7 ms × (1 + log2 CPUs), 1.4 ms here); a
/// protocol thread runs for microseconds per event.
pub const PROTOCOL_SLICE: Duration = Duration::from_micros(100);

/// How long [`ProtocolThreads::apply`] waits for the runtime's workers to have started.
const WORKER_START_WAIT: Duration = Duration::from_secs(1);

/// The protocol threads, as they start, and the settings applied to them.
#[derive(Debug)]
pub struct ProtocolThreads {
    workers: usize,
    started: AtomicUsize,
    tids: Mutex<Vec<i32>>,
    /// The process's CPUs before any pinning, given back to non-protocol threads.
    original_cpus: Vec<u16>,
    pinned: AtomicBool,
    /// The process's nice value before `vrrp_priority`, given back to non-protocol threads.
    original_nice: i8,
    niced: AtomicBool,
    /// Whether the protocol threads asked for [`PROTOCOL_SLICE`].
    sliced: AtomicBool,
}

impl ProtocolThreads {
    /// Call on the daemon's main thread before building the runtime with `workers` workers.
    pub fn new(workers: usize) -> Self {
        ProtocolThreads {
            workers,
            started: AtomicUsize::new(0),
            tids: Mutex::new(vec![current_tid()]),
            original_cpus: cpu_affinity(0).unwrap_or_default(),
            pinned: AtomicBool::new(false),
            original_nice: thread_nice(0).unwrap_or(0),
            niced: AtomicBool::new(false),
            sliced: AtomicBool::new(false),
        }
    }

    /// The runtime's `on_thread_start`: registers its workers; gives any later thread (the
    /// blocking pool) the process's original CPUs if the protocol threads are pinned.
    /// Names them too (`top -H`, `perf sched`): `protocol-N` for a worker, `blocking` for the
    /// rest.
    pub fn thread_started(&self) {
        let index = self.started.fetch_add(1, Ordering::SeqCst);
        let name = if index < self.workers {
            format!("protocol-{index}")
        } else {
            "blocking".to_string()
        };
        if let Ok(name) = std::ffi::CString::new(name) {
            let _ = rustix::thread::set_name(&name);
        }
        if index < self.workers {
            self.lock_tids().push(current_tid());
            return;
        }
        if self.pinned.load(Ordering::SeqCst) && !self.original_cpus.is_empty() {
            if let Err(err) = set_cpu_affinity(0, &self.original_cpus) {
                warn!("cannot give a blocking thread the process's CPUs back: {err}");
            }
        }
        if self.niced.load(Ordering::SeqCst) {
            if let Err(err) = set_thread_nice(current_tid(), self.original_nice) {
                warn!("cannot give a blocking thread the process's nice value back: {err}");
            }
        }
        if self.sliced.load(Ordering::SeqCst) {
            if let Err(err) = set_fair_slice(current_tid(), Duration::ZERO) {
                warn!("cannot give a blocking thread the default time slice back: {err}");
            }
        }
    }

    fn lock_tids(&self) -> std::sync::MutexGuard<'_, Vec<i32>> {
        self.tids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Apply `settings` (at start-up, before the plugin runtime starts). Failures are logged
    /// with what was asked and the system's answer; the daemon runs on without that knob.
    pub fn apply(&self, settings: &Settings) {
        let deadline = Instant::now() + WORKER_START_WAIT;
        while self.lock_tids().len() < self.workers + 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let tids = self.lock_tids().clone();
        if settings.no_swap {
            match lock_current_memory() {
                Ok(()) => info!("vrrp_no_swap: daemon memory locked (mlockall)"),
                Err(err) => warn!("vrrp_no_swap: mlockall failed: {err}"),
            }
        }
        if !settings.cpu_affinity.is_empty() {
            let outside: Vec<u16> = settings
                .cpu_affinity
                .iter()
                .copied()
                .filter(|c| !self.original_cpus.contains(c))
                .collect();
            if !outside.is_empty() {
                warn!(cpus = ?outside, allowed = ?self.original_cpus,
                    "vrrp_cpu_affinity names CPUs this process may not use");
            }
            self.pinned.store(true, Ordering::SeqCst);
            for &tid in &tids {
                if let Err(err) = set_cpu_affinity(tid, &settings.cpu_affinity) {
                    warn!(tid, cpus = ?settings.cpu_affinity, "vrrp_cpu_affinity: {err}");
                }
            }
        }
        if let Some(priority) = settings.rt_priority {
            for &tid in &tids {
                if let Err(err) = set_round_robin(tid, priority) {
                    warn!(
                        tid,
                        priority, "vrrp_rt_priority: cannot set SCHED_RR: {err}"
                    );
                }
            }
        }
        if let Some(nice) = settings.nice {
            self.niced.store(true, Ordering::SeqCst);
            for &tid in &tids {
                if let Err(err) = set_thread_nice(tid, nice) {
                    warn!(tid, nice, "vrrp_priority: cannot set the nice value: {err}");
                }
            }
        }
        if settings.rt_priority.is_none() {
            // After the nice value: the call keeps the thread's nice value as it finds it.
            self.sliced.store(true, Ordering::SeqCst);
            for &tid in &tids {
                if let Err(err) = set_fair_slice(tid, PROTOCOL_SLICE) {
                    warn!(tid, "cannot ask for a short time slice: {err}");
                }
            }
        }
        info!(threads = tids.len(), rt_priority = ?settings.rt_priority, nice = ?settings.nice,
            cpus = ?settings.cpu_affinity, no_swap = settings.no_swap,
            slice = ?fair_slice(0).ok(), "protocol threads configured");
    }

    /// A reload's settings: they take effect at restart only; say so if they changed.
    pub fn reloaded(before: &Settings, after: &Settings) {
        if before != after {
            warn!(?before, ?after,
                "vrrp_rt_priority / vrrp_cpu_affinity / vrrp_no_swap / vrrp_priority changed: they take effect when the daemon restarts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(tid: i32) -> (String, Vec<u16>) {
        let stat =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/sched")).unwrap_or_default();
        let policy = stat
            .lines()
            .find(|l| l.starts_with("policy"))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
        (policy, cpu_affinity(tid).unwrap_or_default())
    }

    /// A runtime of two workers registered with their [`ProtocolThreads`] (whose first
    /// protocol thread is the caller).
    fn two_workers() -> (std::sync::Arc<ProtocolThreads>, tokio::runtime::Runtime) {
        let threads = std::sync::Arc::new(ProtocolThreads::new(2));
        let hook = threads.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .on_thread_start(move || hook.thread_started())
            .build()
            .expect("runtime");
        (threads, rt)
    }

    /// Root only (`SCHED_RR` and a negative nice value need `CAP_SYS_NICE`): the workers get
    /// the knobs, a blocking thread gets none.
    #[test]
    fn workers_get_round_robin_and_cpus_blocking_threads_do_not() {
        if wasmalived_sys::effective_ids().0 != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        // Run in its own thread: the test harness thread must not stay pinned.
        std::thread::spawn(|| {
            let (threads, rt) = two_workers();
            let first_cpu = threads.original_cpus[0];
            threads.apply(&Settings {
                rt_priority: Some(10),
                cpu_affinity: vec![first_cpu],
                no_swap: false,
                nice: Some(-3),
            });
            let tids = threads.lock_tids().clone();
            assert_eq!(tids.len(), 3, "main thread + 2 workers");
            for &tid in &tids {
                assert_eq!(
                    policy(tid),
                    ("2".to_string(), vec![first_cpu]),
                    "SCHED_RR is 2"
                );
                assert_eq!(thread_nice(tid).expect("nice"), -3, "vrrp_priority");
            }
            let (blocking, blocking_nice) = rt
                .block_on(
                    rt.spawn_blocking(|| (policy(current_tid()), thread_nice(0).expect("nice"))),
                )
                .expect("blocking task");
            assert_eq!(blocking.0, "0", "SCHED_OTHER in a blocking thread");
            assert_eq!(blocking.1, threads.original_cpus);
            assert_eq!(
                blocking_nice, threads.original_nice,
                "the process's nice value"
            );
        })
        .join()
        .expect("test thread");
    }

    /// Without `vrrp_rt_priority` the workers ask for the short slice (where the kernel has
    /// custom slices: it reads back) and a blocking thread has the default one.
    #[test]
    fn without_real_time_priority_the_workers_get_a_short_slice_blocking_threads_do_not() {
        std::thread::spawn(|| {
            let default = fair_slice(0).expect("slice");
            let (threads, rt) = two_workers();
            threads.apply(&Settings::default());
            let tids = threads.lock_tids().clone();
            assert_eq!(tids.len(), 3, "main thread + 2 workers");
            if default.is_zero() {
                eprintln!("this kernel has no custom slices: nothing to see");
                return;
            }
            for &tid in &tids {
                assert_eq!(
                    fair_slice(tid).expect("slice"),
                    PROTOCOL_SLICE,
                    "worker {tid}"
                );
                assert_eq!(policy(tid).0, "0", "still SCHED_OTHER");
            }
            let blocking = rt
                .block_on(rt.spawn_blocking(|| fair_slice(0).expect("slice")))
                .expect("blocking task");
            assert_eq!(blocking, default, "the default slice in a blocking thread");
        })
        .join()
        .expect("test thread");
    }
}
