//! Memory benchmark (issue 14 §2): what a node with the four stock plugin checks holds, next
//! to keepalived with the four equivalent checks as shell scripts, in the same run.
//!
//! Each run starts both daemons side by side (wasmalived on n1, keepalived on n2, one VRRPv2
//! instance each, `interval 1` checks), lets every check run [`SETTLE`] worth of intervals,
//! then reads, per daemon, the sum over its processes (keepalived: the parent and its VRRP
//! child; scripts are short-lived and not counted). wasmalived is read twice: after its first
//! start, which compiles the plugins (Cranelift's code and allocations are then resident), and
//! after a restart on the same state directory, which loads them from the code cache (every
//! start after the first). Read:
//!
//! - RSS (`VmRSS` of `/proc/PID/status`),
//! - PSS (`Pss` of `/proc/PID/smaps_rollup`: shared pages divided among their users),
//! - VSZ (`VmSize`: the address space reserved),
//! - threads.
//!
//! and, for wasmalived, where its RSS is (the largest mappings of `/proc/PID/smaps`, grouped).
//! wasmalived runs from a copy of `WASMALIVED_BIN` made for the bench, as an installed binary
//! is copied into place: how the file was written decides how the page cache holds it, and
//! so how much of it a code fault maps. A copy, or a file read back from disk, is cached in
//! large folios, and this kernel (6.18) maps a cached folio whole on a fault; a daemon run
//! straight from the linker's output file held 1.2–1.8 MiB less of its binary than the same
//! build copied (README, "Memory vs keepalived").
//! wasmalived runs with a production service's environment
//! ([`stock_node::PRODUCTION_ENV`](wasmalived_e2e::stock_node::PRODUCTION_ENV): `info` logs,
//! no backtraces).
//!
//! The checks, same schedule for both (`interval 1`, `fall 3`, `rise 2`, `weight -5`):
//!
//! | check   | wasmalived plugin                         | keepalived script                    |
//! |---------|-------------------------------------------|--------------------------------------|
//! | process | `nginx-process`, `process nginx`          | `pgrep --ns $$ --nslist net -x nginx`|
//! | http    | `http`, `url http://127.0.0.1:8080/`      | `curl -fsS -m 1 http://127.0.0.1:8080/` |
//! | tcp     | `tcp`, `address 127.0.0.1:8080`           | `timeout 1 bash -c '</dev/tcp/127.0.0.1/8080'` |
//! | lock    | `disk-lock` on a lab directory            | `flock -n DIR/lock true`             |
//!
//! Nothing listens on port 8080 and no nginx runs: the checks fail, as they would with the
//! service down, which costs each daemon the same work as success.
//!
//! ```text
//! cargo run -p wasmalived-e2e --bin memory_bench -- [--runs 5]
//! ```
//! Needs root, keepalived, curl, `cargo build --release -p wasmalived` (set
//! `WASMALIVED_BIN`) and `make plugins-release` (set `WASMALIVED_PLUGIN_DIR`).

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use wasmalived_e2e::stock_node::{self, CHECKS, TIMING};
use wasmalived_e2e::{
    median, script_check, with_checks, Daemon, Impl, Lab, LabError, Proto, Result, NODES,
};

/// Time for every check to have run several times before memory is read.
const SETTLE: Duration = Duration::from_secs(8);

/// Memory of one daemon (all its processes).
#[derive(Clone, Copy, Debug, Default)]
struct Footprint {
    rss_kib: u64,
    pss_kib: u64,
    vsz_kib: u64,
    threads: u64,
    processes: u64,
}

/// `key:   N kB` of a `/proc` file.
fn field_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn read(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|e| LabError::io(format!("reading {}", path.display()), e))
}

/// `pid` and its descendants that are still the same program (keepalived's VRRP child).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        let children = fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        tree.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
        i += 1;
    }
    let comm = |p: u32| fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    let own = comm(pid);
    tree.retain(|p| comm(*p) == own);
    tree
}

fn footprint(pid: u32) -> Result<Footprint> {
    let mut f = Footprint::default();
    for p in process_tree(pid) {
        let status = read(format!("/proc/{p}/status"))?;
        let rollup = read(format!("/proc/{p}/smaps_rollup"))?;
        let get = |text: &str, key: &str| {
            field_kib(text, key)
                .ok_or_else(|| LabError::parse(format!("/proc/{p} field {key}"), text))
        };
        f.rss_kib += get(&status, "VmRSS")?;
        f.vsz_kib += get(&status, "VmSize")?;
        f.threads += get(&status, "Threads")?;
        f.pss_kib += get(&rollup, "Pss")?;
        f.processes += 1;
    }
    Ok(f)
}

/// RSS by kind of mapping (`/proc/PID/smaps`), largest first: the binary, heap, anonymous
/// (wasm pool slots, compiled code, stacks, allocator arenas), shared libraries.
fn rss_by_mapping(pid: u32) -> Result<Vec<(String, u64)>> {
    let smaps = read(format!("/proc/{pid}/smaps"))?;
    let mut groups: std::collections::BTreeMap<String, u64> = Default::default();
    let mut current = String::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.contains('-') && first.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) {
            let perms = words.next().unwrap_or_default();
            let name = words.nth(3).unwrap_or("");
            current = match name {
                "" => format!("[anon {perms}]"),
                n if n.starts_with('[') => n.to_string(),
                n => Path::new(n)
                    .file_name()
                    .map_or(n.to_string(), |f| f.to_string_lossy().into_owned()),
            };
        } else if first == "Rss:" {
            *groups.entry(current.clone()).or_default() +=
                words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    let mut v: Vec<_> = groups.into_iter().filter(|(_, kib)| *kib > 0).collect();
    v.sort_by_key(|(_, kib)| std::cmp::Reverse(*kib));
    Ok(v)
}

fn script_checks(lab: &Lab) -> Result<String> {
    let lock = lab.dir().join("lock-n2");
    let scripts = [
        "[ \"$(pgrep --ns $$ --nslist net -x nginx | wc -l)\" -gt 0 ]".to_string(),
        "curl -fsS -m 1 -o /dev/null http://127.0.0.1:8080/".to_string(),
        "timeout 1 bash -c '</dev/tcp/127.0.0.1/8080'".to_string(),
        format!("flock -n {} true", lock.display()),
    ];
    let mut blocks = String::new();
    for (name, body) in CHECKS.iter().zip(scripts) {
        let file = lab.dir().join(format!("{name}.sh"));
        fs::write(&file, format!("#!/bin/bash\n{body}\n"))
            .map_err(|e| LabError::io(format!("writing {}", file.display()), e))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o755))
            .map_err(|e| LabError::io(format!("chmod {}", file.display()), e))?;
        blocks.push_str(&script_check(name, &file.display().to_string(), &TIMING));
    }
    Ok(blocks)
}

/// What one run measured.
struct RunResult {
    /// wasmalived's first start: the plugins compiled (cold code cache).
    compiled: Footprint,
    /// wasmalived restarted: the plugins from the code cache (every later start).
    cached: Footprint,
    /// The restarted wasmalived again, `--hold` seconds later (if asked).
    held: Option<Footprint>,
    keepalived: Footprint,
    /// wasmalived's RSS by mapping, restarted.
    map: Vec<(String, u64)>,
}

/// Let the checks run, check both daemons are up and every plugin check has run.
fn settle(w: &Daemon, k: &Daemon) -> Result<()> {
    thread::sleep(SETTLE);
    for d in [w, k] {
        if !d.proc.is_running() {
            return Err(LabError::check(format!(
                "{} exited\n{}",
                d.describe(),
                d.proc.log_tail(20)
            )));
        }
    }
    let runs = wasmalived_e2e::checks::parse_check_status(&w.status_json()?)?;
    if runs.len() != CHECKS.len() || runs.iter().any(|c| c.last.is_empty()) {
        return Err(LabError::check(format!(
            "not every wasmalived check has run: {runs:?}"
        )));
    }
    Ok(())
}

/// One run: both daemons, settle, read both; restart wasmalived (code cache warm), read it.
fn run_once(run: usize, hold: Option<Duration>) -> Result<RunResult> {
    let mut lab = Lab::new(&format!("membench{run}"))?;
    lab.add_node(NODES[0], "192.0.2.1/24", "2001:db8::1/64")?;
    lab.add_node(NODES[1], "192.0.2.2/24", "2001:db8::2/64")?;
    let proto = Proto::V2Pass;
    let conf = |node: &str| proto.conf(node, "MASTER", 100).render();
    let w_conf = stock_node::config(&lab, NODES[0])?;
    let k_conf = with_checks(&conf(NODES[1]), &script_checks(&lab)?, &CHECKS)?;
    let start = || {
        lab.start_daemon_env(
            Impl::Wasmalived,
            NODES[0],
            &w_conf,
            stock_node::PRODUCTION_ENV,
        )
    };
    let w = start()?;
    let k = lab.start_daemon(Impl::Keepalived, NODES[1], &k_conf)?;
    settle(&w, &k)?;
    let compiled = footprint(w.proc.pid())?;
    let keepalived = footprint(k.proc.pid())?;
    w.term()?;
    w.wait_exit(Duration::from_secs(10))?;
    // Same node, same state directory: the code cache the first start filled.
    let w = start()?;
    settle(&w, &k)?;
    let cached = footprint(w.proc.pid())?;
    let held = match hold {
        Some(hold) => {
            thread::sleep(hold);
            w.status_json()?;
            Some(footprint(w.proc.pid())?)
        }
        None => None,
    };
    let map = rss_by_mapping(w.proc.pid())?;
    lab.pass()?;
    Ok(RunResult {
        compiled,
        cached,
        held,
        keepalived,
        map,
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn summary(label: &str, values: &[f64], unit: &str) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{label}: {:.1} {unit} (min–max {min:.1}–{max:.1}, {} runs)",
        median(values).unwrap_or(f64::NAN),
        values.len()
    )
}

/// `--runs N` (5) and `--hold SECS` (none): read the restarted daemon again that much later.
fn parse_args() -> std::result::Result<(usize, Option<Duration>), String> {
    let mut runs = 5;
    let mut hold = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--runs takes a positive number")?;
            }
            "--hold" => {
                hold = Some(Duration::from_secs(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("--hold takes a number of seconds")?,
                ));
            }
            "-h" | "--help" => return Err("usage: memory_bench [--runs N] [--hold SECS]".into()),
            x => return Err(format!("unknown argument {x:?} (try --help)")),
        }
    }
    Ok((runs, hold))
}

fn main() -> ExitCode {
    let (runs, hold) = match parse_args() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let pinned = match wasmalived_e2e::daemon::pin_binaries("memory-bench", &stock_node::PLUGINS) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let code = measure(runs, hold);
    let _ = fs::remove_dir_all(&pinned);
    code
}

/// `runs` runs of the bench, then the summary.
fn measure(runs: usize, hold: Option<Duration>) -> ExitCode {
    let mut results: Vec<RunResult> = Vec::new();
    for run in 0..runs {
        match run_once(run, hold) {
            Ok(r) => {
                let line = |f: &Footprint| {
                    format!(
                        "RSS {:.1} MiB PSS {:.1} MiB VSZ {:.1} MiB {} threads",
                        mib(f.rss_kib),
                        mib(f.pss_kib),
                        mib(f.vsz_kib),
                        f.threads
                    )
                };
                let held = r
                    .held
                    .as_ref()
                    .map(|f| format!(" | held {}", line(f)))
                    .unwrap_or_default();
                println!(
                    "run {run}: wasmalived compiled {} | cached {}{held} | keepalived ({} processes) {}",
                    line(&r.compiled),
                    line(&r.cached),
                    r.keepalived.processes,
                    line(&r.keepalived)
                );
                results.push(r);
            }
            Err(e) => {
                eprintln!("run {run} failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let report = |label: &str, of: fn(&RunResult) -> &Footprint| {
        let col = |f: fn(&Footprint) -> f64| results.iter().map(|r| f(of(r))).collect::<Vec<_>>();
        println!("{label}:");
        println!("  {}", summary("RSS", &col(|f| mib(f.rss_kib)), "MiB"));
        println!("  {}", summary("PSS", &col(|f| mib(f.pss_kib)), "MiB"));
        println!("  {}", summary("VSZ", &col(|f| mib(f.vsz_kib)), "MiB"));
        println!("  {}", summary("threads", &col(|f| f.threads as f64), ""));
    };
    println!();
    report(
        "wasmalived, four plugin checks, first start (plugins compiled)",
        |r| &r.compiled,
    );
    report(
        "wasmalived, four plugin checks, restarted (plugins from the code cache)",
        |r| &r.cached,
    );
    if let Some(hold) = hold {
        // Every run read it again: `held` is set in each.
        report(
            &format!("wasmalived, restarted, {} s later", hold.as_secs()),
            |r| r.held.as_ref().unwrap_or(&r.cached),
        );
    }
    report("keepalived, four script checks (all its processes)", |r| {
        &r.keepalived
    });
    let ratio = |r: &RunResult| r.cached.rss_kib as f64 / r.keepalived.rss_kib.max(1) as f64;
    println!(
        "  {}",
        summary(
            "wasmalived (cached) RSS ÷ keepalived RSS",
            &results.iter().map(ratio).collect::<Vec<_>>(),
            "×"
        )
    );
    println!("\nwasmalived RSS by mapping (last run, restarted, largest first):");
    if let Some(last) = results.last() {
        for (name, kib) in last.map.iter().take(12) {
            println!("  {:>8.1} MiB  {name}", mib(*kib));
        }
    }
    ExitCode::SUCCESS
}
