//! Check-load benchmark (issue 14, §3–4): CPU of one node at 1, 10, 100 and 1,000 checks per
//! second, and the advert timing its peer would see, for
//!
//! - `plugin`: wasmalived running N `trivial` plugin checks (`interval 1`);
//! - `script`: keepalived running N `/bin/true` `vrrp_script`s (`interval 1`), forked as
//!   keepalived forks every script;
//! - `hostile` (at the highest rate only): the `plugin` load plus one `busy_loop` (burns its
//!   whole `timeout 0.9` every second), one `memory_bomb` and one `log_flood` check;
//! - `hostile + rt`, `script + rt` (highest rate): the same with keepalived's knobs for the
//!   protocol path, `vrrp_rt_priority 50` and `vrrp_no_swap`, on both daemons.
//!
//! One node (n1, VRRPv3 `advert_int 0.1`, alone, so Master) per case; after a lead-in the CPU
//! of its process tree (daemon + reaped children, from `/proc/PID/stat`) is read over a
//! window while `tcpdump` on the bridge records its adverts: the inter-advert gaps are what a
//! peer sees. Output: a table (CPU % of one core, CPU per check, gap p50/p99/max) and a text
//! plot of CPU against the check rate (bars, one per case).
//!
//! For wasmalived, the `good failed` column counts the good (`trivial`) checks' runs that did
//! not pass by the end of the window (a timeout, a trap…): a hostile plugin must not make
//! them fail. `--global LINE` adds a `global_defs` line to every case (e.g.
//! `--global 'checker_priority 0'` to compare against the plugin executor at the protocol
//! threads' nice value).
//!
//! ```text
//! cargo run -p wasmalived-e2e --bin check_load_bench -- [--window-secs 10]
//!     [--rates 1,10,100,1000] [--global 'LINE']...
//! ```
//! Needs root, keepalived, `cargo build -p wasmalived` and `make plugins`.

use std::fmt::Write as _;
use std::fs;
use std::process::ExitCode;
use std::time::Duration;

use wasmalived_e2e::{
    hostile_checks, plugin_check, plugin_path, script_check, with_checks, with_global,
    BridgeCapture, CheckTiming, Impl, LabError, Pair, Proto, Result, HOSTILE, VRID,
};

/// The hostile plugins beside the good checks in the `hostile` variants (`--hostiles`).
const HOSTILES: [&str; 3] = ["busy_loop", "memory_bomb", "log_flood"];

/// keepalived's knobs for the protocol path, in the `+ rt` variants.
const RT_KNOBS: [&str; 2] = ["vrrp_rt_priority 50", "vrrp_no_swap"];

const PROTO: Proto = Proto::V3Ipv4;
/// `advert_int 0.1` (the protocol's configs): the gap a peer expects.
const ADVERT_INT: Duration = Duration::from_millis(100);
/// From start to the measured window: election (master-down ≈ 0.36 s) and every check's
/// first runs.
const LEAD_IN: Duration = Duration::from_secs(3);
/// A passing check that does not move the priority (weight 0: Fault only if it fails).
const QUIET: CheckTiming = CheckTiming {
    interval: 1,
    timeout: None,
    fall: 1,
    rise: 1,
    weight: 0,
};
/// A hostile check: it fails every run; weight -1 keeps the lone node Master. The daemon's
/// default timeout (`busy_loop` gets 0.9 s, [`hostile_checks`]).
const HOSTILE_TIMING: CheckTiming = CheckTiming {
    timeout: None,
    ..HOSTILE
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plugin,
    Script,
    Hostile,
    HostileRt,
    ScriptRt,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Plugin => "plugin (trivial)",
            Variant::Script => "keepalived script (/bin/true)",
            Variant::Hostile => "plugin + busy/memory/log hostiles",
            Variant::HostileRt => "plugin + hostiles, rt_priority+no_swap",
            Variant::ScriptRt => "keepalived script, rt_priority+no_swap",
        }
    }
    fn kind(self) -> Impl {
        match self {
            Variant::Script | Variant::ScriptRt => Impl::Keepalived,
            Variant::Plugin | Variant::Hostile | Variant::HostileRt => Impl::Wasmalived,
        }
    }
    fn hostile(self) -> bool {
        matches!(self, Variant::Hostile | Variant::HostileRt)
    }
    fn rt(self) -> bool {
        matches!(self, Variant::HostileRt | Variant::ScriptRt)
    }
    fn tag(self) -> char {
        match self {
            Variant::Plugin => 'p',
            Variant::Script => 's',
            Variant::Hostile => 'h',
            Variant::HostileRt => 'r',
            Variant::ScriptRt => 'k',
        }
    }
}

struct Row {
    variant: Variant,
    rate: u32,
    cpu_pct: f64,
    per_check_us: f64,
    gaps_ms: Vec<f64>,
    /// Good checks' runs that did not pass (wasmalived only).
    good_failed: Option<u64>,
}

/// Runs of the good checks (all but `hostile_*`) whose result was not `ok`, from
/// `wasmalived status --json`.
fn good_check_failures(status_json: &str) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_str(status_json)
        .map_err(|_| LabError::parse("wasmalived status JSON", status_json))?;
    let checks = v
        .get("checks")
        .and_then(|c| c.as_array())
        .ok_or_else(|| LabError::parse("wasmalived status JSON (no checks)", status_json))?;
    Ok(checks
        .iter()
        .filter(|c| {
            c.get("name")
                .and_then(|n| n.as_str())
                .is_some_and(|n| !n.starts_with("hostile_"))
        })
        .filter_map(|c| c.get("results").and_then(|r| r.as_object()))
        .flat_map(|results| results.iter())
        .filter(|(kind, _)| kind.as_str() != "ok")
        .filter_map(|(_, n)| n.as_u64())
        .sum())
}

/// utime + stime + cutime + cstime of `pid` and its children, in seconds.
fn tree_cpu(pid: u32) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let one = |pid: &str| -> f64 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // After the command: state is field 3, utime 14 … cstime 17 (1-based).
        (11..15)
            .filter_map(|i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
            .sum::<f64>()
            / tick
    };
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    one(&pid.to_string()) + children.split_whitespace().map(one).sum::<f64>()
}

fn checks(variant: Variant, rate: u32, hostiles: &[String]) -> Result<(String, Vec<String>)> {
    let mut blocks = String::new();
    let mut names = Vec::new();
    let trivial = plugin_path("trivial")?;
    for i in 0..rate {
        let name = format!("chk_{i}");
        let block = match variant.kind() {
            Impl::Keepalived => script_check(&name, "/bin/true", &QUIET),
            _ => plugin_check(&name, &trivial, &[], &[], &QUIET),
        };
        blocks.push_str(&block);
        names.push(name);
    }
    if variant.hostile() {
        let plugins: Vec<&str> = hostiles.iter().map(String::as_str).collect();
        let (hostile_blocks, hostile_names) = hostile_checks(&plugins, &HOSTILE_TIMING)?;
        blocks.push_str(&hostile_blocks);
        names.extend(hostile_names);
    }
    Ok((blocks, names))
}

fn one_case(
    variant: Variant,
    rate: u32,
    window: Duration,
    hostiles: &[String],
    global: &[String],
) -> Result<Row> {
    let tag = format!("clb{}{rate}", variant.tag());
    let mut pair = Pair::new(&tag, PROTO, [variant.kind(), variant.kind()])?;
    let (blocks, names) = checks(variant, rate, hostiles)?;
    let tracked: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut text = with_checks(&pair.confs[0].render(), &blocks, &tracked)?;
    if variant.rt() {
        text = with_global(&text, &RT_KNOBS)?;
    }
    if !global.is_empty() {
        let lines: Vec<&str> = global.iter().map(String::as_str).collect();
        text = with_global(&text, &lines)?;
    }
    pair.start_with(0, &text)?;
    pair.expect_master(0, Duration::from_secs(10))?;
    std::thread::sleep(LEAD_IN);
    let pid = pair.daemon(0)?.proc.pid();
    let capture = BridgeCapture::start(&pair.lab, "adverts")?;
    let c0 = tree_cpu(pid);
    std::thread::sleep(window);
    let cpu = tree_cpu(pid) - c0;
    let packets = capture.stop()?;
    let node = pair.lab.node("n1")?.v4;
    let times: Vec<f64> = packets
        .iter()
        .filter(|p| p.advert(VRID).is_some_and(|(src, _)| src == node))
        .map(|p| p.t)
        .collect();
    let gaps_ms: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) * 1e3).collect();
    if gaps_ms.is_empty() {
        return Err(LabError::check("no adverts captured from n1"));
    }
    let good_failed = match variant.kind() {
        Impl::Wasmalived => Some(good_check_failures(&pair.daemon(0)?.status_json()?)?),
        Impl::Keepalived => None,
    };
    pair.pass()?;
    let secs = window.as_secs_f64();
    Ok(Row {
        variant,
        rate,
        cpu_pct: cpu / secs * 100.0,
        per_check_us: cpu / (f64::from(rate) * secs) * 1e6,
        gaps_ms,
        good_failed,
    })
}

fn pct(v: &[f64], p: usize) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((p * v.len()).div_ceil(100)).clamp(1, v.len()) - 1]
}

fn report(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<40} {:>6} {:>9} {:>12} {:>9} {:>9} {:>9} {:>6} {:>11}",
        "variant",
        "chk/s",
        "CPU %",
        "CPU/check µs",
        "gap p50",
        "gap p99",
        "gap max",
        "gaps",
        "good failed"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<40} {:>6} {:>9.2} {:>12.1} {:>9.2} {:>9.2} {:>9.2} {:>6} {:>11}",
            r.variant.name(),
            r.rate,
            r.cpu_pct,
            r.per_check_us,
            pct(&r.gaps_ms, 50),
            pct(&r.gaps_ms, 99),
            pct(&r.gaps_ms, 100),
            r.gaps_ms.len(),
            r.good_failed
                .map_or_else(|| "-".to_string(), |n| n.to_string())
        );
    }
    let _ = writeln!(
        s,
        "\n(gaps in ms; advert_int {} ms)\n\nCPU % of one core by check rate (text plot, one # = 2 %):",
        ADVERT_INT.as_millis()
    );
    for r in rows {
        let bar = "#".repeat((r.cpu_pct / 2.0).round() as usize);
        let _ = writeln!(
            s,
            "{:>5}/s {:<40} |{bar} {:.1}",
            r.rate,
            r.variant.name(),
            r.cpu_pct
        );
    }
    s
}

fn parse_list(v: &str) -> std::result::Result<Vec<u32>, String> {
    v.split(',')
        .map(|x| x.trim().parse().map_err(|_| format!("bad rate {x:?}")))
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut window = Duration::from_secs(10);
    let mut rates = vec![1, 10, 100, 1000];
    let mut hostiles: Vec<String> = HOSTILES.iter().map(|h| h.to_string()).collect();
    let mut only: Option<Vec<String>> = None;
    let mut global: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let r = match a.as_str() {
            "--window-secs" => it
                .next()
                .and_then(|v| v.parse().ok())
                .map(|s| window = Duration::from_secs(s))
                .ok_or_else(|| "--window-secs needs seconds".to_string()),
            "--rates" => it
                .next()
                .ok_or_else(|| "--rates needs a list".to_string())
                .and_then(|v| parse_list(v))
                .map(|v| rates = v),
            "--hostiles" => it
                .next()
                .map(|v| hostiles = v.split(',').map(str::to_string).collect())
                .ok_or_else(|| "--hostiles needs a list of plugin names".to_string()),
            "--only" => it
                .next()
                .map(|v| only = Some(v.split(',').map(str::to_string).collect()))
                .ok_or_else(|| "--only needs a list of variant tags (p,s,h,r,k)".to_string()),
            "--global" => it
                .next()
                .map(|v| global.push(v.clone()))
                .ok_or_else(|| "--global needs a global_defs line".to_string()),
            "--help" | "-h" => {
                println!(
                    "check_load_bench [--window-secs N] [--rates 1,10,100,1000] \
                     [--hostiles busy_loop,memory_bomb,log_flood] [--only p,s,h,r,k] \
                     [--global 'LINE']..."
                );
                return ExitCode::SUCCESS;
            }
            x => Err(format!("unknown argument {x:?} (try --help)")),
        };
        if let Err(e) = r {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    let mut rows = Vec::new();
    let top = rates.iter().copied().max().unwrap_or(1);
    let mut cases: Vec<(Variant, u32)> = rates
        .iter()
        .flat_map(|&r| [(Variant::Plugin, r), (Variant::Script, r)])
        .collect();
    cases.extend([
        (Variant::Hostile, top),
        (Variant::HostileRt, top),
        (Variant::ScriptRt, top),
    ]);
    if let Some(only) = &only {
        cases.retain(|(v, _)| only.iter().any(|t| t.starts_with(v.tag())));
    }
    let mut failed = false;
    let mut outcomes = Vec::new();
    for (variant, rate) in cases {
        eprintln!("== {} at {rate} checks/s", variant.name());
        match one_case(variant, rate, window, &hostiles, &global) {
            Ok(row) => rows.push(row),
            // keepalived's real-time VRRP process forking the scripts exceeds its
            // `vrrp_rlimit_rtime`, is killed and respawned, and never holds Master for a window:
            // that is this row's result, not a failure of the benchmark.
            Err(e) if variant == Variant::ScriptRt => outcomes.push(format!(
                "{} at {rate} checks/s: no row — {e} (keepalived's log says whether its VRRP \
                 process was killed for exceeding RLIMIT_RTTIME)",
                variant.name()
            )),
            Err(e) => {
                eprintln!("   failed: {e}");
                failed = true;
            }
        }
    }
    println!("{}", report(&rows));
    for outcome in outcomes {
        println!("{outcome}");
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
