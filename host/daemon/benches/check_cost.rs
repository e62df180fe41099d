//! CPU cost of one health check, three ways, in one run (`cargo bench -p wasmalived --bench
//! check_cost`, or `make bench`):
//! (a) the `nginx-process` plugin through the full runtime (`CheckPlugin::run`), as the
//!     daemon runs a plugin check (resident on an executor thread, each run inline), its
//!     `processes.by-name` answered by the process index the daemon keeps from the kernel's
//!     process connector (the daemon's own `ProcessMonitor` and `procs::index_feed`, run in
//!     this process: root, initial network namespace); then (a') the same plugin with the
//!     index stopped, scanning `/proc` on each call (the daemon's path without the connector),
//! (b) the trivial plugin (the runtime's fixed cost), two ways: as the daemon runs a plugin
//!     check — its loop resident on a plugin executor thread, a timer between runs, each run
//!     inline on that thread — in [`TRIVIAL_REPEATS`] separate runs of the benchmark phase
//!     (the target holds in every one: ≤ 10 µs CPU p50); and, for comparison, called from
//!     another thread (a run spawned onto the executor and its result handed back: two
//!     cross-thread wake-ups),
//! (c) fork+exec of `/bin/sh -c 'ps -C nginx --no-heading | wc -l'`, as keepalived runs a
//!     `vrrp_script` (child CPU from `getrusage(RUSAGE_CHILDREN)` plus the parent's own CPU).
//!
//! A process named `nginx` (a copy of `sleep`) runs during the benchmark so that both the
//! plugin and `ps` find one. Plugins are taken from `target/wasm32-wasip2/release` (built by
//! `make plugins-release`), falling back to `debug`.
//!
//! CPU per check = whole-process CPU time (all threads: caller, plugin executor, epoch ticker)
//! plus children's CPU, measured around each check. For the plugins, the time inside the run
//! (`RunOutcome::wall`, "in-run") is shown too; the rest is the hand-off between threads. The
//! runs go through `CheckPlugin::run`, as the daemon's checks do, which does not meter them. The process table is counted during each phase: the scanning
//! `nginx-process` (a') grows with it (one `comm` read per user process), the indexed one (a)
//! reads the matching processes only; `ps` reads several files for every process, kernel
//! threads included. The index's upkeep (one hash-map update per process event, one `comm`
//! read per `exec`) runs on this process's threads too, so it is in the CPU figures of (a).
//!
//! Options (after `--`): `nginx`, `trivial`, `fork` run only those phases (for profiling);
//! `CHECK_COST_IDLE=N` starts N idle `sleep` processes for the run (the README's "with idle
//! processes added" table);
//! `CHECK_COST_RUNS=N` sets the number of plugin runs; `CHECK_COST_INLINE_ONLY=1` skips the
//! hand-off phases (to profile the daemon's path alone); `CHECK_COST_SLOT_MIB=4096` sizes the
//! instance pool's memory slots to 4 GiB (no bounds checks in compiled code) instead of the
//! default 64 MiB (bounds-checked), to compare the two.

// The daemon's allocator, with its options: the figures are the daemon's.
#[path = "../src/allocator.rs"]
#[allow(dead_code)] // its tests run in the daemon binary's test target
mod allocator;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmalived::procs::{index_feed, ProcessMonitor};

use wasmalived_plugin_host::grants::{Grants, ProcessGrant, RemediationCommand};
use wasmalived_plugin_host::{children_cpu_time, process_cpu_time, PoolLimits, Runtime, Verdict};

const PLUGIN_RUNS: usize = 2000;
const FORK_RUNS: usize = 300;
/// Separate phases of the resident trivial run: its target must hold in each.
const TRIVIAL_REPEATS: usize = 5;
/// Time between two trivial runs (both ways): a check's timer fires between runs, and the
/// thread sleeps. `CHECK_COST_GAP_US` overrides it (0: back to back).
const DEFAULT_GAP: Duration = Duration::from_millis(1);
/// Target: CPU p50 of a trivial run on the daemon's path (issue 14).
const TRIVIAL_TARGET: Duration = Duration::from_micros(10);
/// Target: fork+exec of the script ÷ the `nginx-process` plugin, at any process count (issue
/// 14 §3).
const NGINX_RATIO_TARGET: f64 = 50.0;
/// How long the process index may take to go live (the connector's acknowledgement, or the
/// rescan a second after lost events).
const INDEX_LIVE_BOUND: Duration = Duration::from_secs(5);

/// `CHECK_COST_IDLE=N` idle processes, killed when dropped.
struct IdleProcesses(Vec<Child>);

impl IdleProcesses {
    fn start() -> Self {
        let n = std::env::var("CHECK_COST_IDLE")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let children = (0..n)
            .filter_map(|_| {
                Command::new("sleep")
                    .arg("3600")
                    .stdin(Stdio::null())
                    .spawn()
                    .ok()
            })
            .collect::<Vec<_>>();
        if children.len() < n {
            eprintln!("started {} of {n} idle processes", children.len());
        }
        Self(children)
    }
}

impl Drop for IdleProcesses {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// The daemon's process monitor and index feed, keeping `rt`'s process index (as the
/// daemon does when a check is granted `allow_processes`). `None` when the index does not go
/// live (no root, not the initial network namespace): then (a) scans like (a'). The monitor
/// runs as long as its handle lives.
async fn follow_processes(
    rt: &Runtime,
) -> Option<(ProcessMonitor, CancellationToken, TaskTracker)> {
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let index = Arc::clone(rt.process_index());
    let monitor = index_feed::follow_processes(Arc::clone(&index), cancel.clone(), &tracker).await;
    let start = Instant::now();
    while !index.is_live() {
        if start.elapsed() > INDEX_LIVE_BOUND {
            eprintln!("the process index did not go live (needs root and the initial network namespace): (a) scans /proc");
            cancel.cancel();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("process index live: {} processes", index.len());
    Some((monitor, cancel, tracker))
}

fn plugin_path(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm32-wasip2");
    let file = format!("plugin_{}.wasm", name.replace('-', "_"));
    for profile in ["release", "debug"] {
        let p = root.join(profile).join(&file);
        if p.exists() {
            if profile == "debug" {
                eprintln!("note: using the debug build of {file}; `make plugins-release` first for release figures");
            }
            return p;
        }
    }
    eprintln!("{file} not built: run `make plugins-release` (or `make plugins`) first");
    std::process::exit(3);
}

#[derive(Default)]
struct Samples {
    cpu: Vec<Duration>,
    wall: Vec<Duration>,
    /// Time inside the run (`RunOutcome::wall`: instantiate, call, teardown; plugins only).
    /// The daemon's path does not meter a run's CPU (a thread-clock system call on each side),
    /// and neither does this: back to back on one thread, the run's wall time is its CPU time
    /// unless the thread was preempted.
    run_cpu: Vec<Duration>,
    /// (PIDs in /proc, of which kernel threads), sampled before and after the phase.
    procs: Vec<(usize, usize)>,
    /// Rescheduling IPIs (system-wide) during the phase.
    ipis: u64,
}

impl Samples {
    fn pct(v: &[Duration], p: usize) -> Duration {
        let mut v = v.to_vec();
        v.sort_unstable();
        if v.is_empty() {
            return Duration::ZERO;
        }
        v[((p * v.len()).div_ceil(100)).clamp(1, v.len()) - 1]
    }
    fn cpu_p50(&self) -> Duration {
        Self::pct(&self.cpu, 50)
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn row(name: &str, s: &Samples) {
    let run_cpu = if s.run_cpu.is_empty() {
        "-".to_string()
    } else {
        format!("{:.1}", us(Samples::pct(&s.run_cpu, 50)))
    };
    let ipis = s.ipis as f64 / s.cpu.len().max(1) as f64;
    let (pids, kthreads) = s.procs.first().copied().unwrap_or_default();
    let (pids2, kthreads2) = s.procs.last().copied().unwrap_or_default();
    println!(
        "{name:<34} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>4}-{:<4} {:>3}-{:<3} {:>6.2}",
        s.cpu.len(),
        us(Samples::pct(&s.cpu, 50)),
        us(Samples::pct(&s.cpu, 99)),
        us(Samples::pct(&s.wall, 50)),
        us(Samples::pct(&s.wall, 99)),
        run_cpu,
        pids.min(pids2),
        pids.max(pids2),
        kthreads.min(kthreads2),
        kthreads.max(kthreads2),
        ipis,
    );
}

/// Rescheduling inter-processor interrupts so far, all CPUs (`RES` in /proc/interrupts): a
/// thread woken on another CPU costs one. On a VM they trap to the hypervisor (~24 µs of
/// guest CPU each here), so they explain a bimodal p50: see `plugins/executor.rs`.
fn resched_ipis() -> u64 {
    let text = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    text.lines()
        .find(|l| l.trim_start().starts_with("RES:"))
        .map_or(0, |l| {
            l.split_whitespace()
                .skip(1)
                .map_while(|f| f.parse::<u64>().ok())
                .sum()
        })
}

/// (PIDs in /proc, of which kernel threads: `kthreadd` and its children).
fn process_count() -> (usize, usize) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    let mut pids = 0;
    let mut kthreads = 0;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        pids += 1;
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if pid == 2 || ppid == Some(2) {
            kthreads += 1;
        }
    }
    (pids, kthreads)
}

fn plugin_runs() -> usize {
    std::env::var("CHECK_COST_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PLUGIN_RUNS)
}

fn gap() -> Duration {
    std::env::var("CHECK_COST_GAP_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(DEFAULT_GAP, Duration::from_micros)
}

/// `gap` before each run (the sleep and its wake-up counted in the run's CPU).
async fn bench_plugin(
    rt: &Runtime,
    name: &str,
    grants: &Grants,
    params: &[(String, String)],
    gap: Duration,
) -> Samples {
    let plugin = rt
        .load_check(name, &plugin_path(name), grants)
        .unwrap_or_else(|e| {
            eprintln!("cannot load {name}: {e}");
            std::process::exit(3);
        });
    let timeout = Duration::from_secs(5);
    for _ in 0..50 {
        plugin.run(params, timeout).await; // warm up
    }
    let mut s = Samples::default();
    s.procs.push(process_count());
    let ipis = resched_ipis();
    for _ in 0..plugin_runs() {
        let c0 = process_cpu_time();
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        let t0 = Instant::now();
        let out = plugin.run(params, timeout).await;
        s.wall.push(t0.elapsed());
        s.cpu.push(process_cpu_time().saturating_sub(c0));
        s.run_cpu.push(out.wall);
        if out.result != Ok(Verdict::Ok) {
            eprintln!("{name}: unexpected verdict: {:?}", out.result);
            std::process::exit(3);
        }
    }
    s.ipis = resched_ipis().saturating_sub(ipis);
    s.procs.push(process_count());
    s
}

/// The trivial plugin as the daemon runs a plugin check: a loop resident on an executor
/// thread sleeps (a timer, like the check's tick) and runs the plugin inline; CPU per run is
/// the whole process's across the wake-up and the run.
async fn bench_resident(
    rt: &Runtime,
    name: &str,
    grants: &Grants,
    params: &[(String, String)],
    gap: Duration,
) -> Samples {
    let plugin = rt
        .load_check(name, &plugin_path(name), grants)
        .unwrap_or_else(|e| {
            eprintln!("cannot load {name}: {e}");
            std::process::exit(3);
        });
    let runs = plugin_runs();
    let name = name.to_string();
    let params = params.to_vec();
    let phase = rt.spawn_resident(async move {
        let timeout = Duration::from_secs(5);
        for _ in 0..50 {
            plugin.run(&params, timeout).await; // warm up
        }
        let mut s = Samples::default();
        s.procs.push(process_count());
        let ipis = resched_ipis();
        for _ in 0..runs {
            let c0 = process_cpu_time();
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            let woke = Instant::now();
            let out = plugin.run(&params, timeout).await;
            s.wall.push(woke.elapsed());
            s.cpu.push(process_cpu_time().saturating_sub(c0));
            s.run_cpu.push(out.wall);
            if out.result != Ok(Verdict::Ok) {
                eprintln!("{name}: unexpected verdict: {:?}", out.result);
                std::process::exit(3);
            }
        }
        s.ipis = resched_ipis().saturating_sub(ipis);
        s.procs.push(process_count());
        s
    });
    phase.await.unwrap_or_else(|e| {
        eprintln!("resident phase failed: {e}");
        std::process::exit(3);
    })
}

fn bench_fork_exec() -> Samples {
    let mut s = Samples::default();
    s.procs.push(process_count());
    let ipis = resched_ipis();
    for _ in 0..FORK_RUNS {
        let (c0, k0, t0) = (process_cpu_time(), children_cpu_time(), Instant::now());
        let out = Command::new("/bin/sh")
            .args(["-c", "ps -C nginx --no-heading | wc -l"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        s.wall.push(t0.elapsed());
        let own = process_cpu_time().saturating_sub(c0);
        let kids = children_cpu_time().saturating_sub(k0);
        s.cpu.push(own + kids);
        match out {
            Ok(o) if String::from_utf8_lossy(&o.stdout).trim() != "0" => {}
            _ => {
                eprintln!("fork/exec failed or found no nginx");
                std::process::exit(3);
            }
        }
    }
    s.ipis = resched_ipis().saturating_sub(ipis);
    s.procs.push(process_count());
    s
}

fn main() {
    let _idle = IdleProcesses::start();
    // A process named `nginx` for both methods to find.
    let tmp = std::env::temp_dir().join(format!("wasmalived-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&tmp);
    let fake = tmp.join("nginx");
    let mut decoy = std::fs::copy("/bin/sleep", &fake)
        .ok()
        .and_then(|_| Command::new(&fake).arg("600").spawn().ok());
    // `CHECK_COST_SLOT_MIB=4096`: pool slots of a full 4 GiB memory, whose compiled code needs
    // no bounds checks (the layout before issue 14), to compare with the default 64 MiB slots.
    let limits = match std::env::var("CHECK_COST_SLOT_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(mib) => PoolLimits::for_checks(2, mib << 20),
        None => PoolLimits::default(),
    };
    eprintln!("instance pool: {limits:?}");
    let rt = Runtime::with_limits(&tmp.join("plugin-cache"), limits).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(3);
    });
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(3);
        });
    let nginx_grants = Grants {
        processes: Some(ProcessGrant { netns_only: false }),
        remediation: vec![RemediationCommand {
            id: "restart".into(),
            argv: vec!["/bin/true".into()],
            timeout: Duration::from_secs(5),
            user: None,
        }],
        ..Grants::default()
    };
    let params = vec![("process".to_string(), "nginx".to_string())];
    // `cargo bench` passes `--bench`; other words select phases.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |phase: &str| only.is_empty() || only.iter().any(|o| o == phase);
    let (nginx, nginx_scan, trivial, resident) = tokio_rt.block_on(async {
        let mut n = Samples::default();
        let mut ns = Samples::default();
        let mut t = Vec::new();
        let mut r = Vec::new();
        if wanted("nginx") {
            let following = follow_processes(&rt).await;
            n = bench_resident(&rt, "nginx-process", &nginx_grants, &params, Duration::ZERO).await;
            eprintln!(
                "process index after (a): live {}, {} processes",
                rt.process_index().is_live(),
                rt.process_index().len()
            );
            if let Some((_monitor, cancel, tracker)) = following {
                // The feed marks the index not live as it stops: (a') scans.
                cancel.cancel();
                tracker.close();
                tracker.wait().await;
            }
            ns = bench_resident(&rt, "nginx-process", &nginx_grants, &params, Duration::ZERO).await;
        }
        if wanted("trivial") {
            // Interleaved, so both ways see the same machine load.
            for _ in 0..TRIVIAL_REPEATS {
                r.push(bench_resident(&rt, "trivial", &Grants::default(), &[], gap()).await);
                if std::env::var_os("CHECK_COST_INLINE_ONLY").is_none() {
                    t.push(bench_plugin(&rt, "trivial", &Grants::default(), &[], gap()).await);
                }
            }
        }
        (n, ns, t, r)
    });
    let fork = if wanted("fork") {
        bench_fork_exec()
    } else {
        Samples::default()
    };
    if let Some(d) = decoy.as_mut() {
        let _ = d.kill();
        let _ = d.wait();
    }
    let _ = std::fs::remove_dir_all(&tmp);

    println!();
    println!(
        "{:<34} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9} {:>7} {:>6}",
        "check (per check, µs)",
        "runs",
        "cpu p50",
        "cpu p99",
        "wall p50",
        "wall p99",
        "in-run p50",
        "pids",
        "kthr",
        "IPI/run"
    );
    row("(a) nginx-process plugin, index", &nginx);
    row("(a') nginx-process plugin, scan", &nginx_scan);
    for (i, (r, t)) in resident.iter().zip(&trivial).enumerate() {
        row(&format!("(b) trivial, inline, phase {}", i + 1), r);
        row(&format!("(b') trivial, hand-off, phase {}", i + 1), t);
    }
    row("(c) fork+exec sh -c 'ps|wc -l'", &fork);
    let ratio = |a: &Samples, b: &Samples| us(b.cpu_p50()) / us(a.cpu_p50()).max(0.001);
    println!();
    println!(
        "fork+exec / nginx-process plugin (index): {:.1}x  (target ≥ {NGINX_RATIO_TARGET}x: {})",
        ratio(&nginx, &fork),
        if ratio(&nginx, &fork) >= NGINX_RATIO_TARGET {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "fork+exec / nginx-process plugin (scan):  {:.1}x",
        ratio(&nginx_scan, &fork)
    );
    if let Some(first) = resident.first() {
        println!(
            "fork+exec / trivial plugin:       {:.1}x",
            ratio(first, &fork)
        );
    }
    // The instance pool reserves address space, not memory: show both.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map_or_else(|| "?".to_string(), |v| v.trim().to_string())
    };
    println!(
        "bench process: VmSize {}, VmRSS {}",
        field("VmSize:"),
        field("VmRSS:")
    );
    if !resident.is_empty() {
        let p50s: Vec<String> = resident
            .iter()
            .map(|r| format!("{:.1}", us(r.cpu_p50())))
            .collect();
        let met = resident
            .iter()
            .filter(|r| r.cpu_p50() <= TRIVIAL_TARGET)
            .count();
        println!(
            "trivial plugin p50 CPU, daemon path, per phase: {} µs  (target ≤ {} µs in every phase: {met} of {} met)",
            p50s.join(" / "),
            TRIVIAL_TARGET.as_micros(),
            resident.len()
        );
    }
    if !trivial.is_empty() {
        let p50s: Vec<String> = trivial
            .iter()
            .map(|t| format!("{:.1}", us(t.cpu_p50())))
            .collect();
        println!(
            "trivial plugin p50 CPU, run handed to an executor thread, per phase: {} µs",
            p50s.join(" / ")
        );
    }
    println!("gap between trivial runs: {:?}", gap());
}
