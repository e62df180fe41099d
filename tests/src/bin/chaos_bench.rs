//! Chaos benchmark (issue 15): the same seeded fault schedule against a wasmalived trio (with
//! hostile plugins next to its good checks) and a keepalived trio, and from the client's
//! outages the MTTR per fault kind (median, max), the availability MTTF / (MTTF + MTTR) and
//! the yearly downtime at a stated fault rate against 99.9 / 99.99 / 99.999 %, side by side;
//! plus the inter-advert gaps a peer received while no fault was in progress (p50/p99/max).
//!
//! ```text
//! cargo run -p wasmalived-e2e --bin chaos_bench -- [--rounds 30] [--seed N]
//!     [--per-kind-per-month 1] [--dwell-ms 1000] [--trios wasmalived,keepalived,mixed]
//!     [--out FILE] [--rt]
//! ```
//! `--rt` gives every node, of both daemons, keepalived's protocol-path knobs
//! (`vrrp_rt_priority 50`, `vrrp_no_swap`): the configuration for advert timing under load.
//! `CHAOS_SEED=N` (or `--seed N`) replays a schedule; the seed is printed either way. Needs
//! root, keepalived, nginx, a built wasmalived and `make plugins`. Prints a markdown report
//! and writes it to `--out FILE` if given.

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use wasmalived_e2e::chaos::report::{self, availability_table, gap_table, mttr_table};
use wasmalived_e2e::chaos::{
    self, kind_stats, schedule::SEED_VAR, trio, Availability, KindStats, Trio,
};
use wasmalived_e2e::daemon::pin_binaries;
use wasmalived_e2e::{cmd, Impl, LabError, Result, VRID};

const W: Impl = Impl::Wasmalived;
const K: Impl = Impl::Keepalived;

/// The plugins the trios load, pinned for the whole run.
const PLUGINS: [&str; 6] = [
    "trivial",
    "trap",
    "tcp",
    "busy_loop",
    "memory_bomb",
    "log_flood",
];

struct Options {
    rounds: usize,
    seed: Option<u64>,
    per_kind_per_month: f64,
    dwell: Duration,
    trios: Vec<(&'static str, [Impl; 3])>,
    out: Option<String>,
    /// `--rt`: every node runs [`RT_KNOBS`].
    rt: bool,
}

/// keepalived's knobs for the protocol path, on every node with `--rt`.
const RT_KNOBS: [&str; 2] = ["vrrp_rt_priority 50", "vrrp_no_swap"];

struct TrioResult {
    name: &'static str,
    stats: Vec<KindStats>,
    availability: Option<Availability>,
    gaps: Vec<f64>,
    wall: Duration,
}

fn one_trio(name: &'static str, kinds: [Impl; 3], seed: u64, o: &Options) -> Result<TrioResult> {
    let start = Instant::now();
    let hostile = kinds.contains(&W);
    let global: &[&str] = if o.rt { &RT_KNOBS } else { &[] };
    let mut t = Trio::start_with_global(
        &format!("cb{name}"),
        kinds,
        hostile,
        trio::BENCH_ADVERT_INT,
        global,
    )?;
    let faults = chaos::schedule(seed, o.rounds, t.scales());
    let capture = t.lab.capture_bridge("adverts")?;
    let run = chaos::run(&mut t, seed, &faults, o.dwell)?;
    let packets = capture.stop()?;
    // The gaps of the wasmalived nodes' adverts when there are any, else of every node's.
    let mut sources: Vec<IpAddr> = Vec::new();
    for (i, n) in trio::NODES.iter().enumerate() {
        if !hostile || kinds[i] == W {
            sources.push(t.lab.node(n)?.v4);
        }
    }
    let gaps = report::advert_gaps(&packets, VRID, &sources, &run.quiet);
    let stats = kind_stats(&run);
    let availability = chaos::availability(&stats, o.per_kind_per_month);
    t.lab.pass()?;
    Ok(TrioResult {
        name,
        stats,
        availability,
        gaps,
        wall: start.elapsed(),
    })
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = cmd::run(&["uname", "-r"]).unwrap_or_default();
    let keepalived = cmd::output(&["keepalived", "--version"])
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    format!("{cpus} CPUs, kernel {}, {keepalived}", kernel.trim())
}

fn markdown(seed: u64, o: &Options, results: &[TrioResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Chaos: {} rounds, {SEED_VAR}={seed}\n\n{}; VRRPv3 advert_int 0.1 s, priorities 100/90/80; \
         client ping every 10 ms; MTTR = client-visible outage from injection to convergence.{}\n",
        o.rounds,
        machine(),
        if o.rt {
            format!(" Every node, both daemons: `{}`.", RT_KNOBS.join("`, `"))
        } else {
            String::new()
        }
    );
    let mttr: Vec<(&str, &[KindStats])> = results
        .iter()
        .map(|r| (r.name, r.stats.as_slice()))
        .collect();
    s.push_str(&mttr_table(&mttr));
    let _ = writeln!(
        s,
        "\nAvailability at {} fault(s) of each kind per month:\n",
        o.per_kind_per_month
    );
    let avail: Vec<(&str, Option<Availability>)> =
        results.iter().map(|r| (r.name, r.availability)).collect();
    s.push_str(&availability_table(&avail));
    s.push('\n');
    let gaps: Vec<(&str, &[f64])> = results
        .iter()
        .map(|r| (r.name, r.gaps.as_slice()))
        .collect();
    s.push_str(&gap_table(100.0, &gaps));
    let _ = writeln!(
        s,
        "\nWall time: {}",
        results
            .iter()
            .map(|r| format!("{} {:.0} s", r.name, r.wall.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s
}

fn parse_args() -> std::result::Result<Options, String> {
    let mut o = Options {
        rounds: 30,
        seed: None,
        per_kind_per_month: 1.0,
        dwell: Duration::from_secs(1),
        trios: vec![("wasmalived", [W, W, W]), ("keepalived", [K, K, K])],
        out: None,
        rt: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rounds" => o.rounds = value()?.parse().map_err(|_| "bad --rounds")?,
            "--seed" => o.seed = Some(value()?.parse().map_err(|_| "bad --seed")?),
            "--per-kind-per-month" => {
                o.per_kind_per_month = value()?.parse().map_err(|_| "bad --per-kind-per-month")?
            }
            "--dwell-ms" => {
                o.dwell = Duration::from_millis(value()?.parse().map_err(|_| "bad --dwell-ms")?)
            }
            "--out" => o.out = Some(value()?),
            "--rt" => o.rt = true,
            "--trios" => {
                o.trios = value()?
                    .split(',')
                    .map(|t| match t.trim() {
                        "wasmalived" => Ok(("wasmalived", [W, W, W])),
                        "keepalived" => Ok(("keepalived", [K, K, K])),
                        "mixed" => Ok(("mixed", [W, W, K])),
                        other => Err(format!(
                            "unknown trio {other:?} (wasmalived, keepalived, mixed)"
                        )),
                    })
                    .collect::<std::result::Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chaos_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let run = || -> Result<String> {
        if let Some(seed) = o.seed {
            std::env::set_var(SEED_VAR, seed.to_string());
        }
        pin_binaries("chaos", &PLUGINS)?;
        let seed = chaos::seed_from_env().map_err(LabError::check)?;
        let mut results = Vec::new();
        for (name, kinds) in &o.trios {
            eprintln!("== {name} trio, {} rounds, {SEED_VAR}={seed}", o.rounds);
            results.push(one_trio(name, *kinds, seed, &o)?);
        }
        let text = markdown(seed, &o, &results);
        if let Some(path) = &o.out {
            fs::write(path, &text).map_err(|e| LabError::io(format!("writing {path}"), e))?;
        }
        Ok(text)
    };
    match run() {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chaos_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
