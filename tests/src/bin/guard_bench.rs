//! Split-brain guard benchmark (issue 5): for each guard (none, disk-lock, quorum with
//! witnesses, quorum with etcd) on a wasmalived pair (VRRPv3, advert_int 0.3, check interval
//! 1 s, `weight 0`), in the namespace lab:
//!
//! (a) the total time the VIP is on both nodes during a two-way VRRP partition (nftables drop
//!     of IP protocol 112 in both nodes; everything else flows) and its heal, sampled every
//!     10 ms — the target for a guard is zero;
//! (b) the failover time on a clean crash of the Master (SIGKILL to the daemon's process
//!     group, its stale VIP removed) until the VIP is on the other node, median of `--runs`
//!     runs, and the extra time the guard adds over the unguarded pair.
//!
//! ```text
//! cargo run -p wasmalived-e2e --bin guard_bench -- [--guards none,disk-lock,quorum-witness,quorum-etcd]
//!     [--partition-secs 30] [--runs 10]
//! ```
//! Prints a markdown table. Needs root, nft, python3, curl, Debian's etcd,
//! `cargo build -p wasmalived` and `make plugins`.

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use wasmalived_e2e::guards::{master_down, Guard, GuardedPair};
use wasmalived_e2e::partition::{cut, heal, Cut};
use wasmalived_e2e::sampler::Timeline;
use wasmalived_e2e::{median, now_epoch, LabError, Result, NODES};

struct Opts {
    guards: Vec<Guard>,
    partition: Duration,
    runs: usize,
}

fn parse_args() -> std::result::Result<Opts, String> {
    let mut o = Opts {
        guards: Guard::ALL.to_vec(),
        partition: Duration::from_secs(30),
        runs: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--guards" => {
                o.guards = val()?
                    .split(',')
                    .map(|s| Guard::parse(s).ok_or_else(|| format!("unknown guard {s:?}")))
                    .collect::<std::result::Result<_, _>>()?
            }
            "--partition-secs" => {
                let s: f64 = val()?
                    .parse()
                    .map_err(|_| "--partition-secs takes seconds".to_string())?;
                if !(s.is_finite() && s > 0.0) {
                    return Err("--partition-secs takes a positive number".into());
                }
                o.partition = Duration::from_secs_f64(s);
            }
            "--runs" => {
                o.runs = val()?
                    .parse()
                    .map_err(|_| "--runs takes a positive number".to_string())?;
                if o.runs == 0 {
                    return Err("--runs takes a positive number".into());
                }
            }
            "-h" | "--help" => {
                return Err(
                    "usage: guard_bench [--guards none,disk-lock,quorum-witness,\
                            quorum-etcd] [--partition-secs S] [--runs N]"
                        .into(),
                )
            }
            x => return Err(format!("unknown argument {x:?} (try --help)")),
        }
    }
    Ok(o)
}

/// Seconds during which both nodes held the VIP, from `from` on: each sample that saw both
/// counts until the next sample.
fn dual_time(tl: &Timeline, from: f64) -> f64 {
    tl.samples
        .windows(2)
        .filter(|w| w[0].t >= from && w[0].present.iter().all(|p| *p == Some(true)))
        .map(|w| w[1].t - w[0].t)
        .fold(0.0, |a, b| a + b)
}

/// Result of (a).
struct Partition {
    dual_s: f64,
    heal_to_one_s: f64,
    samples: usize,
    /// Mean time between sample rounds (each round runs `ip` in both namespaces).
    mean_gap_ms: f64,
}

/// (a): a two-way VRRP partition of `len` on the settled pair, then the heal.
fn partition(gp: &GuardedPair, len: Duration) -> Result<Partition> {
    let sampler = gp
        .pair
        .lab
        .sample_vip(&NODES, gp.pair.vip(), Duration::from_millis(10))?;
    thread::sleep(Duration::from_millis(500));
    let t_cut = now_epoch();
    for n in NODES {
        cut(&gp.pair.lab, n, &Cut::VrrpIn)?;
    }
    thread::sleep(len);
    for n in NODES {
        heal(&gp.pair.lab, n)?;
    }
    let healed = Instant::now();
    gp.wait_one_master(master_down(99) + Duration::from_secs(10))?;
    let heal_to_one_s = healed.elapsed().as_secs_f64();
    thread::sleep(Duration::from_secs(1));
    let tl = sampler.stop()?;
    let span = match (tl.samples.first(), tl.samples.last()) {
        (Some(a), Some(b)) => b.t - a.t,
        _ => 0.0,
    };
    Ok(Partition {
        dual_s: dual_time(&tl, t_cut),
        heal_to_one_s,
        samples: tl.samples.len(),
        mean_gap_ms: 1000.0 * span / (tl.samples.len().max(2) - 1) as f64,
    })
}

/// (b): one crash of the current Master; seconds until the VIP is on the other node. The
/// crashed node is restarted and the pair settles again before returning.
fn crash_once(gp: &mut GuardedPair, k: usize) -> Result<f64> {
    // Let the guard settle (lease renewals, keepalives) and spread the crash over the
    // phase of the check interval (1 s): 1.0 + k × 0.37 mod 1 s.
    let phase = (k as f64 * 0.37).fract();
    thread::sleep(Duration::from_secs_f64(1.0 + phase));
    let m = gp.wait_one_master(Duration::from_secs(30))?;
    let other = NODES[1 - m];
    let t0 = Instant::now();
    gp.pair.crash(m)?;
    let limit = Duration::from_secs(30);
    loop {
        if gp.pair.lab.has_addr(other, gp.pair.vip())? {
            break;
        }
        if t0.elapsed() > limit {
            return Err(LabError::check(format!(
                "run {k}: the VIP did not reach {other} within {limit:?} of the crash of {}\n{}",
                NODES[m],
                gp.summary(20)
            )));
        }
        thread::sleep(Duration::from_millis(3));
    }
    let took = t0.elapsed().as_secs_f64();
    gp.start(m)?;
    // The restarted node either preempts back (unguarded n1) or stands down behind the
    // guard: give it two master-down intervals and a check run to do so, then settle.
    thread::sleep(master_down(100) * 2 + Duration::from_secs(1));
    gp.wait_one_master(Duration::from_secs(30))?;
    Ok(took)
}

struct Row {
    guard: Guard,
    part: Partition,
    crash: Vec<f64>,
}

fn bench(guard: Guard, o: &Opts) -> Result<Row> {
    let tag = format!("gb{}", guard.name().replace('-', ""));
    let mut gp = GuardedPair::new(&tag, guard)?;
    gp.start_both()?;
    eprintln!("{}: partition of {:?}", guard.name(), o.partition);
    let part = partition(&gp, o.partition)?;
    eprintln!(
        "{}: two VIPs for {:.3} s, one Master {:.3} s after the heal",
        guard.name(),
        part.dual_s,
        part.heal_to_one_s
    );
    let mut crash = Vec::new();
    for k in 0..o.runs {
        let t = crash_once(&mut gp, k)?;
        eprintln!("{}: crash run {k}: {t:.3} s", guard.name());
        crash.push(t);
    }
    gp.pair.pass()?;
    Ok(Row { guard, part, crash })
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut rows = Vec::new();
    let mut failed = false;
    for g in &o.guards {
        match bench(*g, &o) {
            Ok(r) => rows.push(r),
            Err(e) => {
                eprintln!("{}: {e}", g.name());
                failed = true;
            }
        }
    }
    let base = rows
        .iter()
        .find(|r| r.guard == Guard::None)
        .and_then(|r| median(&r.crash));
    println!(
        "\nVRRPv3 advert_int 0.3 (master-down {:.3} s), guard check interval 1 s, weight 0; \
         {} partition; crash = SIGKILL to the Master's process group → VIP on the other node.\n",
        master_down(99).as_secs_f64(),
        format_args!("{:.0} s", o.partition.as_secs_f64())
    );
    println!(
        "| guard | two VIP holders during the partition | one Master after heal | \
         VIP sample rounds (mean gap) | crash → VIP (median, min–max, runs) | extra vs unguarded | guard's bound |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let med = median(&r.crash);
        let min = r.crash.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.crash.iter().copied().fold(0.0, f64::max);
        let extra = match (med, base) {
            (Some(m), Some(b)) if r.guard != Guard::None => format!("{:+.3} s", m - b),
            _ => "—".into(),
        };
        println!(
            "| {} | {:.3} s | {:.3} s | {} ({:.0} ms) | {} | {extra} | {:.1} s |",
            r.guard.name(),
            r.part.dual_s,
            r.part.heal_to_one_s,
            r.part.samples,
            r.part.mean_gap_ms,
            med.map(|m| format!("{m:.3} s ({min:.3}–{max:.3}, {})", r.crash.len()))
                .unwrap_or_else(|| "—".into()),
            r.guard.takeover_delay_bound().as_secs_f64(),
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmalived_e2e::sampler::Sample;

    #[test]
    fn dual_time_counts_only_rounds_with_both() {
        let s = |t: f64, a: bool, b: bool| Sample {
            t,
            present: vec![Some(a), Some(b)],
        };
        let tl = Timeline {
            nodes: vec!["n1".into(), "n2".into()],
            ip: "192.0.2.200".parse().unwrap(),
            samples: vec![
                s(0.0, true, true),
                s(1.0, true, false),
                s(2.0, true, true),
                s(2.5, true, true),
                s(3.0, false, true),
            ],
        };
        assert!((dual_time(&tl, 0.0) - 2.0).abs() < 1e-9);
        assert!((dual_time(&tl, 1.5) - 1.0).abs() < 1e-9);
    }
}
