//! Stability benchmark at the protocol minimum (issue 14, §4): a pair at VRRPv3
//! `advert_int 0.01` (master-down ≈ 36 ms) under check load, with keepalived's knobs for the
//! protocol path on both nodes — `vrrp_rt_priority` (SCHED_RR), `vrrp_no_swap` (mlockall) and
//! `vrrp_cpu_affinity` (n1's protocol path on CPU 0, n2's on CPU 1) — for `--minutes N`:
//!
//! - wasmalived ×2, each node with `--checks` `trivial` plugin checks at `interval 1` (1,000
//!   checks/s by default) and the hostile `busy_loop` (burns `timeout 0.9` every second),
//!   `memory_bomb` and `log_flood` plugins beside them;
//! - keepalived ×2 configured the same way, with `--scripts` `/bin/true` `vrrp_script`s at
//!   `interval 1` and `vrrp_rlimit_rttime` raised to `--rlimit-rttime` µs (its default kills
//!   the SCHED_RR VRRP process that forks the scripts, see `check_load_bench`). 10 a second by
//!   default: at 100 a second its VRRP process still exceeded 100 ms of RT CPU under a loaded
//!   machine, was killed, and its scripts timed out (Fault); 1,000 a second saturates two
//!   cores on its own.
//!
//! Per daemon, from a capture on the bridge (kernel timestamps): the Master's inter-advert
//! gaps (p50/p99/p99.9/max, how many exceed `advert_int` + 1 ms and the master-down
//! interval) and the spurious takeovers (the Backup advertising while the Master runs); from
//! the logs: the Backup's transitions to Master, failed good checks, keepalived's VRRP
//! process killed by RLIMIT_RTTIME. Then `--failovers` times: the Master crashes (SIGKILL to
//! its process group, its VIP removed, as `failover_bench` does) and the time from its last
//! advert to the Backup's first advert and to the VIP on the Backup is compared with the
//! bound, 3 × `advert_int` + the Backup's skew time (RFC 5798 §6.1); n1 is restarted and
//! preempts between failovers. Both daemons run one after the other in the same invocation
//! and are reported side by side.
//!
//! ```text
//! cargo run -p wasmalived-e2e --bin stability_bench -- [--minutes 10]
//!     [--impl wasmalived,keepalived] [--failovers 5] [--checks 1000] [--scripts 10]
//!     [--rlimit-rttime 100000]
//! ```
//! Needs root, keepalived, tcpdump, a wasmalived build (`WASMALIVED_BIN`, a release build for
//! figures worth keeping) and `make plugins`.

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use wasmalived_e2e::{
    hostile_checks, median, plugin_check, plugin_path, script_check, wasmalived_bin, with_checks,
    with_global, BridgeCapture, CheckTiming, Impl, LabError, Packet, PacketKind, Pair, Proto,
    Result, HOSTILE, NODES, VRID,
};

/// `advert_int` as written: one centisecond, the smallest VRRPv3 interval.
const ADVERT_INT_CONF: &str = "0.01";
/// The same as a duration.
const ADVERT_INT: Duration = Duration::from_millis(10);
/// n1's priority: above n2's (99) even when each hostile check (`weight -1`) has taken its
/// point, so a takeover is never a legitimate preemption.
const MASTER_PRIORITY: u8 = 150;
/// An advert is late when its gap exceeds `advert_int` by more than this.
const LATE: Duration = Duration::from_millis(1);
/// From election to the measured window: every check's first runs.
const LEAD_IN: Duration = Duration::from_secs(3);
/// Start → n1 Master: wasmalived loads its 1,000 checks before VRRP starts (about 5 s on a
/// loaded 2-core VM), then an election (master-down ≈ 36 ms).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// After the takeover, before the capture stops: tcpdump on a loaded machine drops what it
/// has not printed when it is stopped.
const CAPTURE_TAIL: Duration = Duration::from_millis(500);
/// The SCHED_RR priority both daemons give their protocol path.
const RT_PRIORITY: u8 = 50;
/// The hostile plugins beside the good checks on each wasmalived node.
const HOSTILES: [&str; 3] = ["busy_loop", "memory_bomb", "log_flood"];
/// A good check: it passes; were it to fail (a run held up past its timeout), the instance
/// would go to Fault (`weight 0`) and the failure would show as a takeover.
const GOOD: CheckTiming = CheckTiming {
    interval: 1,
    timeout: None,
    fall: 1,
    rise: 1,
    weight: 0,
};
/// A hostile check: it fails (or burns its timeout) every run; `weight -1` leaves n1 above n2.
/// The daemon's default timeout (`busy_loop` gets 0.9 s, [`hostile_checks`]).
const HOSTILE_TIMING: CheckTiming = CheckTiming {
    timeout: None,
    ..HOSTILE
};
/// `RUST_LOG` for wasmalived: info, not the lab's debug, for 1,000 checks a second.
const LOG_ENV: [(&str, &str); 1] = [("RUST_LOG", "info")];

struct Opts {
    impls: Vec<Impl>,
    window: Duration,
    failovers: usize,
    checks: u32,
    scripts: u32,
    rlimit_rttime_us: u32,
}

impl Opts {
    /// What each node of `kind` runs beside VRRP, for the table.
    fn load(&self, kind: Impl) -> String {
        match kind {
            Impl::Keepalived => format!("{} /bin/true scripts/s", self.scripts),
            _ => format!(
                "{} trivial plugin checks/s + {}",
                self.checks,
                HOSTILES.join(", ")
            ),
        }
    }
}

fn parse_args() -> std::result::Result<Opts, String> {
    let mut o = Opts {
        impls: vec![Impl::Wasmalived, Impl::Keepalived],
        window: Duration::from_secs(600),
        failovers: 5,
        checks: 1000,
        scripts: 10,
        rlimit_rttime_us: 100_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let number = |v: String| -> std::result::Result<u32, String> {
            v.parse()
                .map_err(|_| format!("{a} takes a number, not {v:?}"))
        };
        match a.as_str() {
            "--minutes" => {
                let m: f64 = val()?
                    .parse()
                    .ok()
                    .filter(|m: &f64| *m > 0.0 && m.is_finite())
                    .ok_or("--minutes takes a positive number")?;
                o.window = Duration::from_secs_f64(m * 60.0);
            }
            "--impl" => o.impls = Impl::parse_list(&val()?)?,
            "--failovers" => o.failovers = number(val()?)? as usize,
            "--checks" => o.checks = number(val()?)?,
            "--scripts" => o.scripts = number(val()?)?,
            "--rlimit-rttime" => o.rlimit_rttime_us = number(val()?)?,
            "-h" | "--help" => {
                return Err(
                    "usage: stability_bench [--minutes 10] [--impl wasmalived,keepalived] \
                            [--failovers 5] [--checks 1000] [--scripts 10] \
                            [--rlimit-rttime 100000]"
                        .into(),
                )
            }
            x => return Err(format!("unknown argument {x:?} (try --help)")),
        }
    }
    Ok(o)
}

/// Skew time of a Backup with `priority` (RFC 5798 §6.1: ((256 − priority) ×
/// Master_Adver_Interval) / 256).
fn skew(advert_int: Duration, priority: u8) -> Duration {
    advert_int * (256 - u32::from(priority)) / 256
}

/// Master-down interval (RFC 5798 §6.1: 3 × Master_Adver_Interval + skew): the failover bound.
fn master_down(advert_int: Duration, priority: u8) -> Duration {
    advert_int * 3 + skew(advert_int, priority)
}

/// The `q` quantile (0 < q ≤ 1) of ascending `sorted`, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Starts of the Backup's advertising episodes: a takeover is a Backup advert with none of
/// its own in the `quiet` before it (one spurious Master period sends many adverts).
fn takeovers(backup_adverts: &[f64], quiet: f64) -> Vec<f64> {
    let mut starts = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for &t in backup_adverts {
        if t - last > quiet {
            starts.push(t);
        }
        last = t;
    }
    starts
}

/// What the peer saw during the stable window.
struct Window {
    /// Inter-advert gaps of the Master, ms, ascending.
    gaps_ms: Vec<f64>,
    /// When the Backup started advertising (spurious takeovers), seconds since the epoch.
    takeovers: Vec<f64>,
    /// Priority-0 adverts (either node).
    releases: usize,
}

fn analyse_window(packets: &[Packet], master: IpAddr, backup: IpAddr) -> Window {
    let from = |who: IpAddr| -> Vec<f64> {
        packets
            .iter()
            .filter(|p| {
                p.advert(VRID)
                    .is_some_and(|(src, prio)| src == who && prio > 0)
            })
            .map(|p| p.t)
            .collect()
    };
    let mut gaps_ms: Vec<f64> = from(master)
        .windows(2)
        .map(|w| (w[1] - w[0]) * 1e3)
        .collect();
    gaps_ms.sort_by(f64::total_cmp);
    Window {
        gaps_ms,
        takeovers: takeovers(&from(backup), 1.0),
        releases: packets
            .iter()
            .filter(|p| p.advert(VRID).is_some_and(|(_, prio)| prio == 0))
            .count(),
    }
}

/// One crash of the Master and the Backup's takeover.
struct Failover {
    /// Master's last advert → Backup's first advert, seconds.
    to_advert: f64,
    /// Master's last advert → VIP added on the Backup (`ip -ts monitor`, a SCHED_OTHER
    /// process: its timestamp is late when the CPUs are busy), seconds.
    to_vip: f64,
    /// Master's last advert → the Backup's first gratuitous ARP for the VIP (sent once the
    /// VIP is added; kernel timestamp), seconds.
    to_garp: f64,
    /// 3 × advert_int + skew for the priority the Backup advertised.
    bound: f64,
}

/// What the daemons' logs say over the stable window.
#[derive(Default)]
struct LogCounts {
    /// The Backup entering Master.
    backup_to_master: usize,
    /// Good checks failing (`chk_*`), both nodes.
    good_check_failures: usize,
    /// Instances entering Fault (a tracked check down), both nodes.
    faults: usize,
    /// keepalived's VRRP process killed (RLIMIT_RTTIME), both nodes.
    rt_kills: usize,
}

fn count_log_lines(kind: Impl, logs: [&str; 2]) -> LogCounts {
    let lines = |i: usize| logs[i].lines();
    match kind {
        Impl::Keepalived => LogCounts {
            backup_to_master: lines(1)
                .filter(|l| l.contains("Entering MASTER STATE"))
                .count(),
            good_check_failures: (0..2)
                .flat_map(lines)
                .filter(|l| {
                    l.contains("VRRP_Script(chk_")
                        && (l.contains("failed") || l.contains("timed_out"))
                })
                .count(),
            faults: (0..2)
                .flat_map(lines)
                .filter(|l| l.contains("Entering FAULT STATE"))
                .count(),
            rt_kills: (0..2)
                .flat_map(lines)
                .filter(|l| l.contains("has rlimit_rttime been exceeded"))
                .count(),
        },
        _ => LogCounts {
            backup_to_master: lines(1)
                .filter(|l| {
                    l.contains("state change") && l.to_ascii_lowercase().contains("to=master")
                })
                .count(),
            good_check_failures: (0..2)
                .flat_map(lines)
                .filter(|l| l.contains("check failed") && l.contains("check=chk_"))
                .count(),
            faults: (0..2)
                .flat_map(lines)
                .filter(|l| {
                    l.contains("state change") && l.to_ascii_lowercase().contains("to=fault")
                })
                .count(),
            rt_kills: 0,
        },
    }
}

/// Result of one daemon's run.
struct Outcome {
    kind: Impl,
    load: String,
    window: Window,
    logs: LogCounts,
    /// CPU of each node's process tree over the window, % of one core.
    cpu_pct: [f64; 2],
    load_avg: (String, String),
    /// Packets tcpdump reports "dropped by kernel" in the stable window (a gap it made).
    capture_drops: Option<u64>,
    failovers: Vec<Failover>,
    failover_errors: Vec<String>,
    /// n1's config, the check blocks after the first of each kind elided.
    config: String,
}

/// utime + stime + cutime + cstime of `pid` and its children, seconds.
fn tree_cpu(pid: u32) -> f64 {
    let one = |pid: &str| -> f64 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // After the command: state is field 3, utime 14 … cstime 17 (1-based); USER_HZ 100.
        (11..15)
            .filter_map(|i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
            .sum::<f64>()
            / 100.0
    };
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    one(&pid.to_string()) + children.split_whitespace().map(one).sum::<f64>()
}

/// tcpdump's closing "N packets dropped by kernel".
fn dropped_by_kernel(log: &str) -> Option<u64> {
    log.lines()
        .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
        .and_then(|n| n.trim().parse().ok())
}

fn load_avg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Node `i`'s config: the pair's base with `advert_int 0.01`, the check load, the knobs.
fn node_config(pair: &mut Pair, i: usize, opts: &Opts, checks: u32) -> Result<String> {
    let kind = pair.kinds[i];
    pair.confs[i].instance_mut().advert_int = ADVERT_INT_CONF.into();
    if i == 0 {
        pair.confs[0] = pair.confs[0].clone().priority(MASTER_PRIORITY);
    }
    let mut blocks = String::new();
    let mut names = Vec::new();
    for n in 0..checks {
        let name = format!("chk_{n}");
        blocks.push_str(&match kind {
            Impl::Keepalived => script_check(&name, "/bin/true", &GOOD),
            _ => plugin_check(&name, &plugin_path("trivial")?, &[], &[], &GOOD),
        });
        names.push(name);
    }
    if kind != Impl::Keepalived {
        let (hostile_blocks, hostile_names) = hostile_checks(&HOSTILES, &HOSTILE_TIMING)?;
        blocks.push_str(&hostile_blocks);
        names.extend(hostile_names);
    }
    let tracked: Vec<&str> = names.iter().map(String::as_str).collect();
    let text = with_checks(&pair.confs[i].render(), &blocks, &tracked)?;
    let rt = format!("vrrp_rt_priority {RT_PRIORITY}");
    let cpu = format!("vrrp_cpu_affinity {i}");
    let rlimit = format!("vrrp_rlimit_rttime {}", opts.rlimit_rttime_us);
    let mut knobs = vec![rt.as_str(), "vrrp_no_swap", cpu.as_str()];
    if kind == Impl::Keepalived {
        knobs.push(&rlimit);
    }
    with_global(&text, &knobs)
}

/// `text` with every `vrrp_script chk_N` block but the first and every `chk_N` line of
/// `track_script` but the first replaced by one comment: the config as a reader needs it.
fn condensed(text: &str, checks: u32) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let is_extra_block = line.starts_with("vrrp_script chk_") && line != "vrrp_script chk_0 {";
        if is_extra_block {
            if !skipping && line == "vrrp_script chk_1 {" {
                let _ = writeln!(out, "# … chk_1 … chk_{} alike", checks.saturating_sub(1));
            }
            skipping = true;
            continue;
        }
        if skipping {
            skipping = line != "}";
            continue;
        }
        let t = line.trim();
        if t.starts_with("chk_") && t != "chk_0" {
            if t == "chk_1" {
                let _ = writeln!(out, "        # … chk_1 … chk_{}", checks.saturating_sub(1));
            }
            continue;
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

fn start_node(pair: &mut Pair, i: usize, text: &str) -> Result<()> {
    let env: &[(&str, &str)] = if pair.kinds[i] == Impl::Keepalived {
        &[]
    } else {
        &LOG_ENV
    };
    pair.start_with_env(i, text, env)
}

fn log_text(pair: &Pair, i: usize) -> String {
    pair.daemon(i)
        .ok()
        .and_then(|d| fs::read_to_string(d.proc.log_path()).ok())
        .unwrap_or_default()
}

fn run(kind: Impl, opts: &Opts) -> Result<Outcome> {
    let tag = format!("stab{}", &kind.name()[..1]);
    let mut pair = Pair::new(&tag, Proto::V3Ipv4, [kind, kind])?;
    let checks = match kind {
        Impl::Keepalived => opts.scripts,
        _ => opts.checks,
    };
    let configs = [
        node_config(&mut pair, 0, opts, checks)?,
        node_config(&mut pair, 1, opts, checks)?,
    ];
    eprintln!(
        "== {} ×2, {} per node (lab dir {})",
        kind.name(),
        opts.load(kind),
        pair.lab.dir().display()
    );
    start_node(&mut pair, 0, &configs[0])?;
    start_node(&mut pair, 1, &configs[1])?;
    pair.expect_master(0, START_TIMEOUT)?;
    std::thread::sleep(LEAD_IN);
    pair.expect_master(0, Duration::from_secs(2))?;

    let (master, backup) = (pair.lab.node(NODES[0])?.v4, pair.lab.node(NODES[1])?.v4);
    let pids = [pair.daemon(0)?.proc.pid(), pair.daemon(1)?.proc.pid()];
    let logs_before = [log_text(&pair, 0).len(), log_text(&pair, 1).len()];
    let load_start = load_avg();
    let capture = BridgeCapture::start(&pair.lab, "stable")?;
    let cpu_start = pids.map(tree_cpu);
    let started = Instant::now();
    while started.elapsed() < opts.window {
        let left = opts.window.saturating_sub(started.elapsed());
        std::thread::sleep(left.min(Duration::from_secs(60)));
        eprintln!(
            "   {:.0} s of {:.0} s, load {}",
            started.elapsed().as_secs_f64(),
            opts.window.as_secs_f64(),
            load_avg()
        );
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_end = pids.map(tree_cpu);
    let packets = capture.stop()?;
    let load_end = load_avg();
    let capture_drops = fs::read_to_string(pair.lab.dir().join("stable.tcpdump.log"))
        .ok()
        .and_then(|log| dropped_by_kernel(&log));
    let window = analyse_window(&packets, master, backup);
    if window.gaps_ms.is_empty() {
        return Err(LabError::check("no adverts from n1 in the stable window"));
    }
    let logs = {
        let text = [log_text(&pair, 0), log_text(&pair, 1)];
        let since = |i: usize| text[i].get(logs_before[i]..).unwrap_or("");
        count_log_lines(kind, [since(0), since(1)])
    };
    let cpu_pct = [0, 1].map(|i| (cpu_end[i] - cpu_start[i]) / secs * 100.0);

    let mut failovers = Vec::new();
    let mut failover_errors = Vec::new();
    for k in 0..opts.failovers {
        let attempt = (|| {
            if k > 0 {
                start_node(&mut pair, 0, &configs[0])?;
                pair.expect_master(0, START_TIMEOUT)?;
                std::thread::sleep(LEAD_IN);
            }
            one_failover(&mut pair, k, opts.failovers, master, backup)
        })();
        match attempt {
            Ok(f) => {
                eprintln!(
                    "   failover {k}: last advert → Backup's advert {:.2} ms, → GARP {:.2} ms, → VIP {:.2} ms (bound {:.2} ms)",
                    f.to_advert * 1e3,
                    f.to_garp * 1e3,
                    f.to_vip * 1e3,
                    f.bound * 1e3
                );
                failovers.push(f);
            }
            Err(e) => {
                eprintln!("   failover {k} failed: {e}");
                failover_errors.push(e.to_string());
                // Back to a known state for the next attempt: n1 stopped, n2 Master.
                if let Ok(d) = pair.daemon(0) {
                    let _ = pair.lab.crash(d, &[pair.vip()]);
                }
            }
        }
    }
    let config = condensed(&configs[0], checks);
    // Logs and captures are kept (the lab directory) when anything needs investigating.
    if failover_errors.is_empty() && window.takeovers.is_empty() {
        pair.pass()?;
    }
    Ok(Outcome {
        kind,
        load: opts.load(kind),
        window,
        logs,
        cpu_pct,
        load_avg: (load_start, load_end),
        capture_drops,
        failovers,
        failover_errors,
        config,
    })
}

/// Crashes n1 at phase `(k + 0.5) / runs` of an advert interval and times n2's takeover.
fn one_failover(
    pair: &mut Pair,
    k: usize,
    runs: usize,
    master: IpAddr,
    backup: IpAddr,
) -> Result<Failover> {
    let vip: IpAddr = wasmalived_e2e::lab::parse_ip(pair.vip())?;
    let cap = pair.lab.capture_bridge(&format!("failover{k}"))?;
    let mon = pair
        .lab
        .monitor_addresses(NODES[1], &format!("failover{k}-n2-addr"))?;
    let phase = (k as f64 + 0.5) / runs.max(1) as f64;
    std::thread::sleep(ADVERT_INT * 5 + ADVERT_INT.mul_f64(phase));
    let t_sig = pair.crash(0)?;
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[1], pair.failover_timeout())?;
    std::thread::sleep(CAPTURE_TAIL);
    let packets = cap.stop()?;
    let events = mon.stop()?;
    let vip_add = events
        .iter()
        .find(|e| e.added && e.ip == vip && e.t >= t_sig - 0.05)
        .map(|e| e.t)
        .ok_or_else(|| LabError::check("no VIP addition in the Backup's `ip monitor` output"))?;
    let last = packets
        .iter()
        .filter(|p| {
            p.t < vip_add
                && p.advert(VRID)
                    .is_some_and(|(src, prio)| src == master && prio > 0)
        })
        .map(|p| p.t)
        .next_back()
        .ok_or_else(|| LabError::check("no advert from the old Master in the capture"))?;
    let (first, prio) = packets
        .iter()
        .find_map(|p| match p.advert(VRID) {
            Some((src, prio)) if src == backup && prio > 0 && p.t >= last => Some((p.t, prio)),
            _ => None,
        })
        .ok_or_else(|| LabError::check("no advert from the new Master in the capture"))?;
    let new_mac = pair.lab.node(NODES[1])?.mac.clone();
    let garp = packets
        .iter()
        .find(|p| p.src_mac == new_mac && p.t >= last && p.kind == PacketKind::Garp(vip))
        .map(|p| p.t)
        .ok_or_else(|| LabError::check("no gratuitous ARP for the VIP from the new Master"))?;
    Ok(Failover {
        to_advert: first - last,
        to_vip: vip_add - last,
        to_garp: garp - last,
        bound: master_down(ADVERT_INT, prio).as_secs_f64(),
    })
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn spread(values: &[f64]) -> String {
    let Some(m) = median(values) else {
        return "–".into();
    };
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2} ({:.2}–{:.2})", m * 1e3, lo * 1e3, hi * 1e3)
}

fn report(outcomes: &[Outcome], window: Duration) -> String {
    let mut s = String::new();
    let adv_ms = ADVERT_INT.as_secs_f64() * 1e3;
    let down_ms = master_down(ADVERT_INT, 99).as_secs_f64() * 1e3;
    let _ = write!(
        s,
        "| VRRPv3 advert_int {ADVERT_INT_CONF}, {:.1} min |",
        window.as_secs_f64() / 60.0
    );
    for o in outcomes {
        let _ = write!(s, " {} ×2 |", o.kind.name());
    }
    let _ = writeln!(s, "\n|---|{}", "---|".repeat(outcomes.len()));
    let mut row = |label: &str, cell: &dyn Fn(&Outcome) -> String| {
        let _ = write!(s, "| {label} |");
        for o in outcomes {
            let _ = write!(s, " {} |", cell(o));
        }
        s.push('\n');
    };
    row("check load per node", &|o| o.load.clone());
    row("Master's adverts seen", &|o| {
        (o.window.gaps_ms.len() + 1).to_string()
    });
    row("gap p50 / p99 / p99.9 / max (ms)", &|o| {
        let g = &o.window.gaps_ms;
        format!(
            "{} / {} / {} / {}",
            ms(quantile(g, 0.5)),
            ms(quantile(g, 0.99)),
            ms(quantile(g, 0.999)),
            ms(quantile(g, 1.0))
        )
    });
    row(
        &format!("gaps > advert_int + {} ms", LATE.as_millis()),
        &|o| {
            let late = adv_ms + LATE.as_secs_f64() * 1e3;
            o.window
                .gaps_ms
                .iter()
                .filter(|&&g| g > late)
                .count()
                .to_string()
        },
    );
    row(&format!("gaps > master-down ({down_ms:.2} ms)"), &|o| {
        o.window
            .gaps_ms
            .iter()
            .filter(|&&g| g > down_ms)
            .count()
            .to_string()
    });
    row("spurious takeovers (Backup advertising, capture)", &|o| {
        o.window.takeovers.len().to_string()
    });
    row("Backup → Master (Backup's log)", &|o| {
        o.logs.backup_to_master.to_string()
    });
    row("priority-0 adverts", &|o| o.window.releases.to_string());
    row("good checks failed (logs)", &|o| {
        o.logs.good_check_failures.to_string()
    });
    row("instance entered Fault (logs, both nodes)", &|o| {
        o.logs.faults.to_string()
    });
    row("VRRP process killed by RLIMIT_RTTIME", &|o| match o.kind {
        Impl::Keepalived => o.logs.rt_kills.to_string(),
        _ => "n/a".into(),
    });
    row("CPU n1 / n2 (% of one core)", &|o| {
        format!("{:.1} / {:.1}", o.cpu_pct[0], o.cpu_pct[1])
    });
    row("capture: packets dropped by kernel", &|o| {
        o.capture_drops.map_or("?".into(), |n| n.to_string())
    });
    row("load average, start → end of window", &|o| {
        format!("{} → {}", o.load_avg.0, o.load_avg.1)
    });
    row("failovers ok / failed", &|o| {
        format!("{} / {}", o.failovers.len(), o.failover_errors.len())
    });
    row(
        "last advert → Backup's first advert, ms (median, min–max)",
        &|o| spread(&o.failovers.iter().map(|f| f.to_advert).collect::<Vec<_>>()),
    );
    row(
        "last advert → Backup's first GARP, ms (median, min–max)",
        &|o| spread(&o.failovers.iter().map(|f| f.to_garp).collect::<Vec<_>>()),
    );
    row(
        "last advert → VIP on the Backup, ms (median, min–max)",
        &|o| spread(&o.failovers.iter().map(|f| f.to_vip).collect::<Vec<_>>()),
    );
    row("bound 3 × advert_int + skew, ms", &|o| {
        median(&o.failovers.iter().map(|f| f.bound).collect::<Vec<_>>())
            .map(|b| ms(b * 1e3))
            .unwrap_or_else(|| "–".into())
    });
    row("first advert − bound, ms (median)", &|o| {
        median(
            &o.failovers
                .iter()
                .map(|f| f.to_advert - f.bound)
                .collect::<Vec<_>>(),
        )
        .map(|d| format!("{:+.2}", d * 1e3))
        .unwrap_or_else(|| "–".into())
    });
    row(
        &format!(
            "takeovers within bound + {} ms (first advert)",
            LATE.as_millis()
        ),
        &|o| {
            let slack = LATE.as_secs_f64();
            let within = o
                .failovers
                .iter()
                .filter(|f| f.to_advert <= f.bound + slack)
                .count();
            format!("{within} / {}", o.failovers.len())
        },
    );
    let _ = writeln!(
        s,
        "\nGaps between n1's adverts from a bridge capture (kernel timestamps); a spurious \
         takeover is an advert from n2 (priority > 0) with none of its own in the second \
         before it. Failover: SIGKILL to n1's process group and its VIP removed; bound for the \
         priority n2 advertised (RFC 5798 §6.1); VIP from `ip -ts monitor address` in n2 \
         (its timestamp is taken when that SCHED_OTHER process runs)."
    );
    for o in outcomes {
        for e in &o.failover_errors {
            let _ = writeln!(s, "{} failover failed: {e}", o.kind.name());
        }
        for t in &o.window.takeovers {
            let _ = writeln!(s, "{} spurious takeover at {t:.3}", o.kind.name());
        }
        let _ = writeln!(s, "\n{} n1 config:\n```\n{}```", o.kind.name(), o.config);
    }
    s
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut outcomes = Vec::new();
    let mut failed = false;
    for &kind in &opts.impls {
        if kind == Impl::Wasmalived {
            if let Err(e) = wasmalived_bin() {
                eprintln!("skipping wasmalived: {e}");
                failed = true;
                continue;
            }
        }
        match run(kind, &opts) {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                eprintln!("{}: {e}", kind.name());
                failed = true;
            }
        }
    }
    print!("{}", report(&outcomes, opts.window));
    let unstable = outcomes
        .iter()
        .any(|o| !o.window.takeovers.is_empty() || !o.failover_errors.is_empty());
    if failed || unstable {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_at_one_centisecond() {
        // RFC 5798 §6.1: priority 99 at 10 ms → skew 6.13 ms, master-down 36.13 ms.
        assert_eq!(skew(ADVERT_INT, 99), Duration::from_nanos(6_132_812));
        assert_eq!(
            master_down(ADVERT_INT, 99),
            Duration::from_nanos(36_132_812)
        );
        assert_eq!(
            master_down(ADVERT_INT, 255),
            Duration::from_nanos(30_039_062)
        );
    }

    #[test]
    fn tcpdump_drops_are_read() {
        let log = "tcpdump: listening on br0\n17 packets captured\n29 packets received by filter\n3 packets dropped by kernel\n";
        assert_eq!(dropped_by_kernel(log), Some(3));
        assert_eq!(dropped_by_kernel("tcpdump: listening on br0\n"), None);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 500.0);
        assert_eq!(quantile(&v, 0.999), 999.0);
        assert_eq!(quantile(&v, 1.0), 1000.0);
        assert_eq!(quantile(&[7.0], 0.01), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn one_spurious_master_period_is_one_takeover() {
        let adverts = [10.00, 10.01, 10.02, 10.03, 50.0, 50.01];
        assert_eq!(takeovers(&adverts, 1.0), vec![10.00, 50.0]);
        assert!(takeovers(&[], 1.0).is_empty());
    }

    #[test]
    fn config_is_condensed_to_one_check_of_each_kind() {
        let text = "global_defs {\n}\nvrrp_script chk_0 {\n    interval 1\n}\n\
                    vrrp_script chk_1 {\n    interval 1\n}\nvrrp_script chk_2 {\n    interval 1\n}\n\
                    vrrp_script hostile_busy_loop {\n}\nvrrp_instance VI_1 {\n    track_script {\n\
                    \x20       chk_0\n        chk_1\n        chk_2\n        hostile_busy_loop\n    }\n}\n";
        let out = condensed(text, 3);
        assert!(out.contains("vrrp_script chk_0 {\n    interval 1\n}\n# … chk_1 … chk_2 alike\nvrrp_script hostile_busy_loop {"));
        assert!(
            out.contains("        chk_0\n        # … chk_1 … chk_2\n        hostile_busy_loop\n")
        );
        assert!(!out.contains("vrrp_script chk_1"));
    }
}
