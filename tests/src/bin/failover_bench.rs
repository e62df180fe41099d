//! Failover benchmark (issue 3): keepalived and wasmalived side by side in the namespace lab.
//!
//! For each implementation, protocol (VRRPv2 `advert_int 1`, VRRPv3 `advert_int 0.1`) and way
//! of stopping the Master (SIGKILL to its process group = crash, SIGTERM = graceful), runs N
//! failovers and reports medians from precise timestamps: a capture on the bridge (kernel
//! timestamps: the old Master's last advert or its priority-0 advert, the new Master's first
//! advert and GARP) and `ip -ts monitor address` in the Backup (the VIP's arrival).
//!
//! ```text
//! cargo run -p wasmalived-e2e --bin failover_bench -- [--impl keepalived,wasmalived]
//!     [--runs 10] [--proto v2,v3] [--stop kill,term]
//! ```
//! Needs root, iproute2, tcpdump and keepalived; wasmalived is skipped with a message when its
//! binary is missing.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use wasmalived_e2e::{
    median, wasmalived_bin, AddrEvent, Impl, LabError, Packet, PacketKind, Pair, Proto, Result,
    NODES, PRIORITIES, VRID,
};

/// How the Master is stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGKILL to the whole process group, stale VIP removed: a crash.
    Kill,
    /// SIGTERM: priority-0 advert, VIP released.
    Term,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Kill => "SIGKILL (group)",
            Stop::Term => "SIGTERM",
        }
    }
}

/// Timings of one failover, seconds.
#[derive(Debug, Default)]
struct Run {
    /// Signal sent → VIP added on the Backup.
    sig_to_vip: f64,
    /// Reference (last advert before a crash / priority-0 advert) → VIP added.
    ref_to_vip: f64,
    /// Reference → first advert of the new Master.
    ref_to_advert: f64,
    /// Spread of {VIP added, first GARP/NA, first advert} of the new Master.
    spread: f64,
}

struct Opts {
    impls: Vec<Impl>,
    runs: usize,
    protos: Vec<Proto>,
    stops: Vec<Stop>,
}

fn parse_args() -> std::result::Result<Opts, String> {
    let mut o = Opts {
        impls: vec![Impl::Keepalived, Impl::Wasmalived],
        runs: 10,
        protos: vec![Proto::V2Pass, Proto::V3Ipv4],
        stops: vec![Stop::Kill, Stop::Term],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--impl" => o.impls = Impl::parse_list(&val()?)?,
            "--runs" => {
                o.runs = val()?
                    .parse()
                    .map_err(|_| "--runs takes a positive number".to_string())?;
                if o.runs == 0 {
                    return Err("--runs takes a positive number".into());
                }
            }
            "--proto" => {
                o.protos = val()?
                    .split(',')
                    .map(|s| match s {
                        "v2" => Ok(Proto::V2Pass),
                        "v3" => Ok(Proto::V3Ipv4),
                        "v3-ipv6" => Ok(Proto::V3Ipv6),
                        x => Err(format!("unknown protocol {x:?} (v2, v3, v3-ipv6)")),
                    })
                    .collect::<std::result::Result<_, _>>()?
            }
            "--stop" => {
                o.stops = val()?
                    .split(',')
                    .map(|s| match s {
                        "kill" => Ok(Stop::Kill),
                        "term" => Ok(Stop::Term),
                        x => Err(format!("unknown stop {x:?} (kill, term)")),
                    })
                    .collect::<std::result::Result<_, _>>()?
            }
            "-h" | "--help" => {
                return Err(
                    "usage: failover_bench [--impl keepalived,wasmalived] [--runs N] \
                            [--proto v2,v3,v3-ipv6] [--stop kill,term]"
                        .into(),
                )
            }
            x => return Err(format!("unknown argument {x:?} (try --help)")),
        }
    }
    Ok(o)
}

/// One failover on a running, converged pair (n1 Master). Leaves both nodes stopped.
///
/// The signal lands at phase `(k + 0.5) / runs` of the advert interval after a sleep that
/// starts right after the first advert: a crash's signal→VIP time depends on where in the
/// interval it hits (master-down interval minus that phase), so the runs sample the phases
/// evenly instead of always hitting the same one.
fn one_run(pair: &mut Pair, stop: Stop, k: usize, runs: usize) -> Result<Run> {
    let vip: IpAddr = wasmalived_e2e::lab::parse_ip(pair.vip())?;
    let mac = |i: usize| -> Result<String> { Ok(pair.lab.node(NODES[i])?.mac.clone()) };
    let (old_mac, new_mac) = (mac(0)?, mac(1)?);
    let cap = pair.lab.capture_bridge(&format!("run{k}"))?;
    let mon = pair
        .lab
        .monitor_addresses(NODES[1], &format!("run{k}-n2-addr"))?;
    // Let a few adverts pass so the capture holds the old Master's last ones, then move to
    // this run's phase.
    let adv = pair.proto.advert_interval();
    let phase = (k as f64 + 0.5) / runs as f64;
    std::thread::sleep(adv * 2 + adv.mul_f64(phase));
    let t_sig = match stop {
        Stop::Kill => pair.crash(0)?,
        Stop::Term => pair.term(0)?,
    };
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[1], pair.failover_timeout())?;
    std::thread::sleep(Duration::from_millis(150));
    let packets = cap.stop()?;
    let events = mon.stop()?;
    pair.term(1)?;
    analyse(&packets, &events, vip, &old_mac, &new_mac, t_sig, stop)
}

fn analyse(
    packets: &[Packet],
    events: &[AddrEvent],
    vip: IpAddr,
    old_mac: &str,
    new_mac: &str,
    t_sig: f64,
    stop: Stop,
) -> Result<Run> {
    let vip_add = events
        .iter()
        .find(|e| e.added && e.ip == vip && e.t >= t_sig - 0.05)
        .map(|e| e.t)
        .ok_or_else(|| LabError::check("no VIP addition in the Backup's `ip monitor` output"))?;
    let advert_prio = |p: &Packet| match p.kind {
        PacketKind::Advert { vrid, prio, .. } if vrid == VRID => Some(prio),
        _ => None,
    };
    let reference = match stop {
        Stop::Kill => packets
            .iter()
            .filter(|p| {
                p.src_mac == old_mac && p.t < vip_add && advert_prio(p).is_some_and(|x| x > 0)
            })
            .map(|p| p.t)
            .next_back(),
        Stop::Term => packets
            .iter()
            .find(|p| p.src_mac == old_mac && p.t >= t_sig - 0.05 && advert_prio(p) == Some(0))
            .map(|p| p.t),
    }
    .ok_or_else(|| {
        LabError::check(match stop {
            Stop::Kill => "no advert from the old Master in the capture",
            Stop::Term => "no priority-0 advert from the old Master in the capture",
        })
    })?;
    let first_advert = packets
        .iter()
        .find(|p| p.src_mac == new_mac && p.t >= reference && advert_prio(p).is_some_and(|x| x > 0))
        .map(|p| p.t)
        .ok_or_else(|| LabError::check("no advert from the new Master in the capture"))?;
    let garp = packets
        .iter()
        .find(|p| {
            p.src_mac == new_mac
                && p.t >= reference
                && matches!(p.kind, PacketKind::Garp(a) | PacketKind::NeighborAdvert(a) if a == vip)
        })
        .map(|p| p.t)
        .ok_or_else(|| LabError::check("no GARP/NA for the VIP from the new Master"))?;
    let times = [vip_add, first_advert, garp];
    let hi = times.iter().copied().fold(f64::MIN, f64::max);
    let lo = times.iter().copied().fold(f64::MAX, f64::min);
    Ok(Run {
        sig_to_vip: vip_add - t_sig,
        ref_to_vip: vip_add - reference,
        ref_to_advert: first_advert - reference,
        spread: hi - lo,
    })
}

fn bench(kind: Impl, proto: Proto, stop: Stop, runs: usize) -> Result<(Vec<Run>, usize)> {
    let tag = format!(
        "bench{}{}{}",
        &kind.name()[..1],
        if proto == Proto::V2Pass { "2" } else { "3" },
        if stop == Stop::Kill { "k" } else { "t" }
    );
    let mut pair = Pair::new(&tag, proto, [kind, kind])?;
    eprintln!(
        "== {} / {} / {} (lab dir {})",
        kind.name(),
        proto.name(),
        stop.name(),
        pair.lab.dir().display()
    );
    let mut ok = Vec::new();
    let mut failures = 0;
    for k in 0..runs {
        let r = pair
            .start_both()
            .and_then(|_| pair.expect_master(0, pair.election_timeout()))
            .and_then(|_| one_run(&mut pair, stop, k, runs));
        match r {
            Ok(run) => {
                eprintln!(
                    "  run {k}: signal->VIP {:.3} s, ref->VIP {:.3} s, ref->advert {:.3} s, spread {:.2} ms",
                    run.sig_to_vip,
                    run.ref_to_vip,
                    run.ref_to_advert,
                    run.spread * 1000.0
                );
                ok.push(run);
            }
            Err(e) => {
                failures += 1;
                eprintln!("  run {k} failed: {e}");
                // Reset: stop whatever still runs before the next attempt.
                for (i, node) in NODES.iter().enumerate() {
                    if let Ok(d) = pair.daemon(i) {
                        let _ = d.crash();
                    }
                    let _ = pair.lab.del_addr(node, pair.vip());
                }
            }
        }
    }
    if failures == 0 {
        pair.pass()?;
    }
    Ok((ok, failures))
}

fn fmt_s(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3} s")).unwrap_or_else(|| "–".into())
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut rows = Vec::new();
    for &kind in &opts.impls {
        if kind == Impl::Wasmalived {
            if let Err(e) = wasmalived_bin() {
                eprintln!("skipping wasmalived: {e}");
                continue;
            }
        }
        for &proto in &opts.protos {
            for &stop in &opts.stops {
                match bench(kind, proto, stop, opts.runs) {
                    Ok((runs, failures)) => rows.push((kind, proto, stop, runs, failures)),
                    Err(e) => eprintln!(
                        "{} / {} / {}: lab failed: {e}",
                        kind.name(),
                        proto.name(),
                        stop.name()
                    ),
                }
            }
        }
    }
    println!(
        "| implementation | protocol | Master stopped by | runs ok/failed | signal → VIP (median, min–max) \
         | reference → VIP (median) | protocol bound | median − bound | reference → first advert \
         | VIP/GARP/advert spread (median) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (kind, proto, stop, runs, failures) in &rows {
        let col = |f: fn(&Run) -> f64| -> Vec<f64> { runs.iter().map(f).collect() };
        let sig = col(|r| r.sig_to_vip);
        let bound = match stop {
            Stop::Kill => proto.master_down(PRIORITIES[1]),
            Stop::Term => proto.skew(PRIORITIES[1]),
        }
        .as_secs_f64();
        let ref_vip = median(&col(|r| r.ref_to_vip));
        let min = sig.iter().copied().fold(f64::INFINITY, f64::min);
        let max = sig.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "| {} | {} | {} | {}/{} | {} ({}–{}) | {} | {:.3} s ({}) | {} | {} | {} |",
            kind.name(),
            proto.name(),
            stop.name(),
            runs.len(),
            failures,
            fmt_s(median(&sig)),
            if min.is_finite() {
                format!("{min:.3}")
            } else {
                "–".into()
            },
            if max.is_finite() {
                format!("{max:.3}")
            } else {
                "–".into()
            },
            fmt_s(ref_vip),
            bound,
            match stop {
                Stop::Kill => "master-down interval",
                Stop::Term => "skew time",
            },
            ref_vip
                .map(|r| format!("{:+.1} ms", (r - bound) * 1000.0))
                .unwrap_or_else(|| "–".into()),
            fmt_s(median(&col(|r| r.ref_to_advert))),
            median(&col(|r| r.spread))
                .map(|s| format!("{:.2} ms", s * 1000.0))
                .unwrap_or_else(|| "–".into()),
        );
    }
    println!(
        "\nReference: for SIGKILL the old Master's last advert before the takeover, for SIGTERM \
         its priority-0 advert (bridge capture, kernel timestamps). VIP time from `ip -ts \
         monitor address` in the Backup. Bounds for the Backup's priority {}.",
        PRIORITIES[1]
    );
    if rows.iter().any(|r| r.4 > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
