//! Start-up and hot-reload benchmark (issue 14 §4): one wasmalived node, VRRPv3
//! `advert_int 0.1`, the four stock plugin checks.
//!
//! - **Start-up**, with the compiled-code cache cold (emptied) and warm (the previous start's):
//!   process spawned → first advert on the bridge (a `tcpdump` capture's kernel timestamp),
//!   and → every check has run once (`wasmalived status`, polled every 5 ms).
//! - **Hot reload** of the `tcp` check's plugin (`interval 60`, so only a reload runs it): a
//!   new version written beside the plugin and renamed into place → the new digest is the
//!   last runner in `status` (the first run of the new version). Cached: two versions that
//!   have both been loaded before, alternated; cold: a new version each time (a JIT compile).
//! - **Late adverts**: inter-advert gaps from a bridge capture, counted late above
//!   `advert_int` + 1 ms, during `--reloads` cached reloads one every [`RELOAD_PACE`] (no
//!   status polling), and during a quiet window of the same length before them (the control:
//!   what the loaded machine alone does).
//!
//! The status poll forks `wasmalived status` (a few ms on a loaded machine): it bounds the
//! resolution of the "plugins ready" and reload figures, which are upper bounds.
//!
//! ```text
//! cargo run -p wasmalived-e2e --bin reload_bench -- [--starts 5] [--reloads 100] [--cold-reloads 10]
//! ```
//! Needs root, tcpdump, `cargo build --release -p wasmalived` (set `WASMALIVED_BIN`) and
//! `make plugins-release` (set `WASMALIVED_PLUGIN_DIR`).

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use wasmalived_e2e::{
    median, now_epoch, plugin_check, plugin_path, wait_for, with_checks, with_global, CheckTiming,
    Daemon, Impl, Lab, LabError, Proto, Result, INSTANCE, NODES, VRID,
};

const PROTO: Proto = Proto::V3Ipv4;
const CHECKS: [&str; 4] = ["chk_process", "chk_http", "chk_tcp", "chk_lock"];
/// The reloaded check.
const RELOADED: &str = "chk_tcp";
/// Long enough that only a reload runs the reloaded check during the benchmark.
const RELOAD_INTERVAL: u32 = 60;
const POLL: Duration = Duration::from_millis(5);
const BOUND: Duration = Duration::from_secs(30);
/// Time between two reloads in the advert-timing phase (a cached reload takes ~10 ms).
const RELOAD_PACE: Duration = Duration::from_millis(50);

struct Opts {
    starts: usize,
    reloads: usize,
    cold_reloads: usize,
}

fn parse_args() -> std::result::Result<Opts, String> {
    let mut o = Opts {
        starts: 5,
        reloads: 100,
        cold_reloads: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut count = || {
            args.next()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{a} takes a positive number"))
        };
        match a.as_str() {
            "--starts" => o.starts = count()?,
            "--reloads" => o.reloads = count()?,
            "--cold-reloads" => o.cold_reloads = count()?,
            "-h" | "--help" => {
                return Err(
                    "usage: reload_bench [--starts N] [--reloads N] [--cold-reloads N]".into(),
                )
            }
            x => return Err(format!("unknown argument {x:?} (try --help)")),
        }
    }
    Ok(o)
}

fn timing(interval: u32) -> CheckTiming {
    CheckTiming {
        interval,
        timeout: Some(1),
        fall: 3,
        rise: 2,
        weight: -5,
    }
}

/// The node's config: the four stock plugins, `tcp` from `plugin_dir` (watched).
fn config(lab: &Lab, plugin_dir: &Path) -> Result<String> {
    let lock = lab.dir().join("lock");
    fs::create_dir_all(&lock).map_err(|e| LabError::io("creating the lock dir", e))?;
    let lock = lock.display().to_string();
    let blocks = [
        plugin_check(
            CHECKS[0],
            &plugin_path("nginx_process")?,
            &[("process", "nginx")],
            &["allow_processes netns"],
            &timing(1),
        ),
        plugin_check(
            CHECKS[1],
            &plugin_path("http")?,
            &[("url", "http://127.0.0.1:8080/"), ("timeout_ms", "500")],
            &["allow_http http://127.0.0.1:8080/"],
            &timing(1),
        ),
        plugin_check(
            CHECKS[2],
            &plugin_dir.join("tcp.wasm"),
            &[("address", "127.0.0.1:8080"), ("timeout_ms", "500")],
            &["allow_tcp 127.0.0.1:8080"],
            &timing(RELOAD_INTERVAL),
        ),
        plugin_check(
            CHECKS[3],
            &plugin_path("disk_lock")?,
            &[
                ("dir", lock.as_str()),
                ("node_id", "n1"),
                ("lease_ms", "6000"),
                ("renew_margin_ms", "3000"),
            ],
            &[&format!("allow_dir {lock} rw")],
            &timing(1),
        ),
    ]
    .concat();
    let conf = PROTO.conf(NODES[0], "MASTER", 100).render();
    with_global(
        &with_checks(&conf, &blocks, &CHECKS)?,
        &[&format!("plugin_dir {}", plugin_dir.display())],
    )
}

/// `(runner, runs)` of every check, by name.
fn checks(d: &Daemon) -> Result<Vec<(String, String, u64)>> {
    let json = d.status_json()?;
    let v: serde_json::Value =
        serde_json::from_str(&json).map_err(|_| LabError::parse("status JSON", &json))?;
    Ok(v["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default().to_string(),
                        c["runner"].as_str().unwrap_or_default().to_string(),
                        c["runs"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

fn runner_of(d: &Daemon, check: &str) -> Result<String> {
    Ok(checks(d)?
        .into_iter()
        .find(|c| c.0 == check)
        .map(|c| c.1)
        .unwrap_or_default())
}

/// `wasm` with a custom section appended: the same component, another digest.
fn variant(wasm: &[u8], tag: u32) -> Vec<u8> {
    let name = b"wasmalived-bench";
    let payload = [&[name.len() as u8][..], name, &tag.to_le_bytes()].concat();
    let mut out = wasm.to_vec();
    out.push(0);
    out.push(payload.len() as u8);
    out.extend_from_slice(&payload);
    out
}

/// Write `bytes` beside `file` and rename it into place.
fn install(file: &Path, bytes: &[u8]) -> Result<()> {
    let staged = file.with_extension("wasm.new");
    fs::write(&staged, bytes).map_err(|e| LabError::io("staging a plugin", e))?;
    fs::rename(&staged, file).map_err(|e| LabError::io("renaming a plugin into place", e))
}

struct Start {
    first_advert_ms: f64,
    ready_ms: f64,
}

/// Start the daemon, measure, stop it. `cold`: empty its code cache first.
fn start_once(lab: &Lab, conf: &str, own: IpAddr, cold: bool) -> Result<Start> {
    let state = lab.dir().join(format!("{}-wasmalived-state", NODES[0]));
    if cold {
        let _ = fs::remove_dir_all(state.join("plugin-cache"));
    }
    let cap = lab.capture_bridge(&format!("start-{}", now_epoch()))?;
    let t0 = now_epoch();
    let d = lab.start_daemon_env(Impl::Wasmalived, NODES[0], conf, &[("RUST_LOG", "info")])?;
    wait_for(
        "every check to have run",
        BOUND,
        POLL,
        || Ok(checks(&d).is_ok_and(|c| c.len() == CHECKS.len() && c.iter().all(|c| c.2 > 0))),
        || d.proc.log_tail(20),
    )?;
    let ready = now_epoch();
    lab.wait_state(&d, INSTANCE, "MASTER", BOUND)?;
    std::thread::sleep(Duration::from_millis(300));
    let packets = cap.stop()?;
    d.term()?;
    d.wait_exit(Duration::from_secs(10))?;
    let first = packets
        .iter()
        .find(|p| p.advert(VRID).is_some_and(|(src, _)| src == own))
        .ok_or_else(|| LabError::check("no advert from the node captured"))?;
    Ok(Start {
        first_advert_ms: (first.t - t0) * 1e3,
        ready_ms: (ready - t0) * 1e3,
    })
}

/// The check's finished runs.
fn runs_of(d: &Daemon, check: &str) -> Result<u64> {
    Ok(checks(d)?
        .into_iter()
        .find(|c| c.0 == check)
        .map_or(0, |c| c.2))
}

/// Capture the bridge while `during` runs; the node's inter-advert gaps: `(gaps, late,
/// largest ms)`, late meaning above `advert_int` + 1 ms.
fn late_adverts(
    lab: &Lab,
    own: IpAddr,
    during: impl FnOnce() -> Result<()>,
) -> Result<(usize, usize, f64)> {
    let cap = lab.capture_bridge(&format!("adverts-{}", now_epoch()))?;
    let t0 = now_epoch();
    during()?;
    let t1 = now_epoch();
    let packets = cap.stop()?;
    let times: Vec<f64> = packets
        .iter()
        .filter(|p| p.advert(VRID).is_some_and(|(src, _)| src == own))
        .map(|p| p.t)
        .filter(|t| (t0..=t1).contains(t))
        .collect();
    let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) * 1e3).collect();
    let limit = PROTO.advert_interval().as_secs_f64() * 1e3 + 1.0;
    let late = gaps.iter().filter(|g| **g > limit).count();
    let max = gaps.iter().copied().fold(0.0, f64::max);
    Ok((gaps.len(), late, max))
}

/// Rename `bytes` into place and time until the new version has run.
fn reload_once(d: &Daemon, file: &Path, bytes: &[u8]) -> Result<f64> {
    let before = runner_of(d, RELOADED)?;
    let t = Instant::now();
    install(file, bytes)?;
    wait_for(
        "the new version's first run",
        BOUND,
        Duration::from_millis(1),
        || Ok(runner_of(d, RELOADED)? != before),
        || d.proc.log_tail(20),
    )?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

fn summary(label: &str, v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{label}: median {:.1} ms (min–max {min:.1}–{max:.1}, {} runs)",
        median(v).unwrap_or(f64::NAN),
        v.len()
    )
}

fn bench(o: &Opts) -> Result<()> {
    let mut lab = Lab::new("reloadbench")?;
    lab.add_node(NODES[0], "192.0.2.1/24", "2001:db8::1/64")?;
    let own: IpAddr = "192.0.2.1"
        .parse()
        .map_err(|_| LabError::check("node address"))?;
    let plugin_dir: PathBuf = lab.dir().join("plugins");
    fs::create_dir_all(&plugin_dir).map_err(|e| LabError::io("creating the plugin dir", e))?;
    let stock = fs::read(plugin_path("tcp")?).map_err(|e| LabError::io("reading tcp", e))?;
    let file = plugin_dir.join("tcp.wasm");
    install(&file, &stock)?;
    let conf = config(&lab, &plugin_dir)?;

    for cold in [true, false] {
        let mut adverts = Vec::new();
        let mut ready = Vec::new();
        for _ in 0..o.starts {
            let s = start_once(&lab, &conf, own, cold)?;
            adverts.push(s.first_advert_ms);
            ready.push(s.ready_ms);
        }
        let which = if cold { "cold cache" } else { "warm cache" };
        println!("start-up, {which}:");
        println!("  {}", summary("spawn → first advert", &adverts));
        println!("  {}", summary("spawn → every check has run", &ready));
    }

    let d = lab.start_daemon_env(Impl::Wasmalived, NODES[0], &conf, &[("RUST_LOG", "info")])?;
    lab.wait_state(&d, INSTANCE, "MASTER", BOUND)?;
    wait_for(
        "the reloaded check's first run",
        BOUND,
        POLL,
        || Ok(!runner_of(&d, RELOADED)?.is_empty()),
        || d.proc.log_tail(20),
    )?;
    // Two versions, both loaded once (compiled and cached) before the measured reloads.
    let versions = [variant(&stock, 0), variant(&stock, 1)];
    for v in &versions {
        reload_once(&d, &file, v)?;
    }
    let mut cached = Vec::new();
    for i in 0..o.reloads {
        cached.push(reload_once(&d, &file, &versions[i % 2])?);
    }
    let mut cold = Vec::new();
    for i in 0..o.cold_reloads {
        cold.push(reload_once(&d, &file, &variant(&stock, 1000 + i as u32))?);
    }
    println!("hot reload (renamed into place → the new digest's first run in status):");
    println!("  {}", summary("cached", &cached));
    println!("  {}", summary("cold (JIT)", &cold));

    // Advert timing: a quiet window, then the same length with a cached reload every
    // RELOAD_PACE (no status polling in either: it would load the daemon too).
    let window = RELOAD_PACE * u32::try_from(o.reloads).unwrap_or(u32::MAX);
    let quiet = late_adverts(&lab, own, || {
        std::thread::sleep(window);
        Ok(())
    })?;
    let runs_before = runs_of(&d, RELOADED)?;
    let reloading = late_adverts(&lab, own, || {
        for i in 0..o.reloads {
            install(&file, &versions[i % 2])?;
            std::thread::sleep(RELOAD_PACE);
        }
        Ok(())
    })?;
    let runs = runs_of(&d, RELOADED)? - runs_before;
    let limit = PROTO.advert_interval().as_secs_f64() * 1e3 + 1.0;
    for (label, (gaps, late, max)) in [("quiet", quiet), ("reloading", reloading)] {
        println!(
            "adverts, {label} ({:.1} s): {gaps} gaps, {late} late (> {limit:.0} ms), max gap {max:.2} ms",
            window.as_secs_f64()
        );
    }
    println!(
        "  {} reloads, one every {} ms: {runs} runs of the reloaded check",
        o.reloads,
        RELOAD_PACE.as_millis()
    );
    d.term()?;
    d.wait_exit(Duration::from_secs(10))?;
    lab.pass()
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match bench(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reload_bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}
