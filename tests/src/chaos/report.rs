//! From rounds to figures: MTTR per fault kind, the availability MTTF / (MTTF + MTTR) and
//! yearly downtime at a stated fault rate against the 99.9 / 99.99 / 99.999 % levels, the
//! inter-advert gaps a peer saw while no fault was in progress, and markdown tables of it all.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::capture::Packet;
use crate::chaos::schedule::FaultKind;
use crate::chaos::Run;

/// A year (365.25 days), for downtime per year.
pub const YEAR: Duration = Duration::from_secs(31_557_600);
/// A month (a twelfth of [`YEAR`]).
pub const MONTH: Duration = Duration::from_secs(31_557_600 / 12);
/// The availability levels the seed asks about, in percent.
pub const LEVELS: [f64; 3] = [99.9, 99.99, 99.999];

/// MTTR figures of one fault kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KindStats {
    /// The kind.
    pub kind: FaultKind,
    /// Rounds of this kind.
    pub rounds: usize,
    /// Rounds in which the client saw an outage at all.
    pub interrupted: usize,
    /// Median outage.
    pub median: Duration,
    /// Longest outage.
    pub max: Duration,
    /// Mean outage (what the expected downtime uses).
    pub mean: Duration,
}

/// MTTR per fault kind present in `run`, in [`FaultKind::ALL`] order.
pub fn kind_stats(run: &Run) -> Vec<KindStats> {
    FaultKind::ALL
        .iter()
        .filter_map(|&kind| {
            let mut v: Vec<f64> = run
                .rounds
                .iter()
                .filter(|r| r.fault.kind == kind)
                .map(|r| r.outage.as_secs_f64())
                .collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let median = if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            };
            Some(KindStats {
                kind,
                rounds: n,
                interrupted: v.iter().filter(|&&x| x > 0.0).count(),
                median: Duration::from_secs_f64(median),
                max: Duration::from_secs_f64(v[n - 1]),
                mean: Duration::from_secs_f64(v.iter().sum::<f64>() / n as f64),
            })
        })
        .collect()
}

/// Availability at a fault rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Availability {
    /// Faults of each kind per month.
    pub per_kind_per_month: f64,
    /// Mean time between faults (of any kind): the MTTF.
    pub mttf: Duration,
    /// Mean time to repair over all faults, each kind weighted by its rate (equal rates:
    /// the mean of the kinds' means).
    pub mttr: Duration,
    /// MTTF / (MTTF + MTTR), as a fraction.
    pub availability: f64,
    /// Expected client-visible downtime per year.
    pub downtime_per_year: Duration,
}

/// Availability when each kind in `stats` strikes `per_kind_per_month` times a month.
pub fn availability(stats: &[KindStats], per_kind_per_month: f64) -> Option<Availability> {
    if stats.is_empty() || per_kind_per_month <= 0.0 {
        return None;
    }
    let faults_per_month = per_kind_per_month * stats.len() as f64;
    let mttf = MONTH.as_secs_f64() / faults_per_month;
    let mttr = stats.iter().map(|s| s.mean.as_secs_f64()).sum::<f64>() / stats.len() as f64;
    let a = mttf / (mttf + mttr);
    Some(Availability {
        per_kind_per_month,
        mttf: Duration::from_secs_f64(mttf),
        mttr: Duration::from_secs_f64(mttr),
        availability: a,
        downtime_per_year: Duration::from_secs_f64((1.0 - a) * YEAR.as_secs_f64()),
    })
}

/// The yearly downtime an availability `level` (percent) allows.
pub fn budget(level: f64) -> Duration {
    Duration::from_secs_f64((1.0 - level / 100.0) * YEAR.as_secs_f64())
}

/// Gaps (ms) between consecutive adverts of `vrid` (priority > 0) from the same source in
/// `sources`, both inside one of the `quiet` windows: the schedule a peer receives while no
/// fault is in progress. Only the Master advertises, so consecutive adverts in the capture
/// are consecutive adverts of one Master unless the source changed.
pub fn advert_gaps(
    packets: &[Packet],
    vrid: u8,
    sources: &[IpAddr],
    quiet: &[(f64, f64)],
) -> Vec<f64> {
    let adverts: Vec<(f64, IpAddr)> = packets
        .iter()
        .filter_map(|p| match p.advert(vrid) {
            Some((src, prio)) if prio > 0 => Some((p.t, src)),
            _ => None,
        })
        .collect();
    let window = |t: f64| quiet.iter().position(|&(a, b)| t >= a && t <= b);
    adverts
        .windows(2)
        .filter(|w| w[0].1 == w[1].1 && sources.contains(&w[0].1))
        .filter(|w| window(w[0].0).is_some() && window(w[0].0) == window(w[1].0))
        .map(|w| (w[1].0 - w[0].0) * 1e3)
        .collect()
}

/// The `p`-th percentile (nearest rank) of `v`; `None` when empty.
pub fn percentile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// `1 h 02 min 03 s`-style duration for downtime figures.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 3600.0 {
        format!(
            "{} h {:02} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    } else if s >= 60.0 {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1} s")
    }
}

/// The MTTR table: one row per fault kind, `median / max` seconds for each trio.
pub fn mttr_table(trios: &[(&str, &[KindStats])]) -> String {
    let mut s = String::from("| fault |");
    for (name, _) in trios {
        let _ = write!(
            s,
            " {name}: rounds (interrupted) | MTTR median s | MTTR max s |"
        );
    }
    s.push_str("\n|---|");
    for _ in trios {
        s.push_str("---:|---:|---:|");
    }
    s.push('\n');
    for kind in FaultKind::ALL {
        let _ = write!(s, "| {kind} |");
        for (_, stats) in trios {
            match stats.iter().find(|k| k.kind == kind) {
                Some(k) => {
                    let _ = write!(
                        s,
                        " {} ({}) | {} | {} |",
                        k.rounds,
                        k.interrupted,
                        secs(k.median),
                        secs(k.max)
                    );
                }
                None => s.push_str(" 0 | – | – |"),
            }
        }
        s.push('\n');
    }
    s
}

/// The availability table: MTTF, MTTR, availability and yearly downtime per trio, and which
/// of the 99.9 / 99.99 / 99.999 % levels it meets.
pub fn availability_table(trios: &[(&str, Option<Availability>)]) -> String {
    let mut s = String::from("| |");
    for (name, _) in trios {
        let _ = write!(s, " {name} |");
    }
    s.push_str("\n|---|");
    for _ in trios {
        s.push_str("---:|");
    }
    s.push('\n');
    let row = |s: &mut String, label: &str, f: &dyn Fn(&Availability) -> String| {
        let _ = write!(s, "| {label} |");
        for (_, a) in trios {
            let _ = write!(s, " {} |", a.as_ref().map(f).unwrap_or_else(|| "–".into()));
        }
        s.push('\n');
    };
    row(&mut s, "faults of each kind per month", &|a| {
        format!("{}", a.per_kind_per_month)
    });
    row(&mut s, "MTTF (any fault)", &|a| human(a.mttf));
    row(&mut s, "MTTR (mean over kinds)", &|a| {
        format!("{} s", secs(a.mttr))
    });
    row(&mut s, "availability MTTF/(MTTF+MTTR)", &|a| {
        format!("{:.5} %", a.availability * 100.0)
    });
    row(&mut s, "downtime per year", &|a| human(a.downtime_per_year));
    for level in LEVELS {
        let label = format!("{level} % (≤ {} a year)", human(budget(level)));
        row(&mut s, &label, &move |a| {
            if a.availability * 100.0 >= level {
                "met".into()
            } else {
                "not met".into()
            }
        });
    }
    s
}

/// The advert-gap table: p50 / p99 / max of each trio's gaps, and how many.
pub fn gap_table(advert_int_ms: f64, trios: &[(&str, &[f64])]) -> String {
    let mut s = format!(
        "| adverts received (advert_int {advert_int_ms} ms, quiet windows) | gaps | p50 ms | p99 ms | max ms | p99 − advert_int ms |\n|---|---:|---:|---:|---:|---:|\n"
    );
    for (name, gaps) in trios {
        let p = |q| percentile(gaps, q).map_or("–".into(), |v| format!("{v:.2}"));
        let over =
            percentile(gaps, 99.0).map_or("–".into(), |v| format!("{:.2}", v - advert_int_ms));
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {over} |",
            gaps.len(),
            p(50.0),
            p(99.0),
            p(100.0)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::PacketKind;
    use crate::chaos::schedule::{Fault, Target};
    use crate::chaos::Round;

    fn round(kind: FaultKind, outage_ms: u64) -> Round {
        Round {
            index: 0,
            fault: Fault {
                kind,
                target: Target::Master,
                hold: Duration::ZERO,
                loss_pct: 0,
            },
            node: 0,
            injected: 0.0,
            converged: 1.0,
            master_after: 0,
            outage: Duration::from_millis(outage_ms),
        }
    }

    #[test]
    fn stats_per_kind_with_median_max_mean() {
        let run = Run {
            seed: 1,
            rounds: vec![
                round(FaultKind::Partition, 400),
                round(FaultKind::Partition, 0),
                round(FaultKind::Partition, 600),
                round(FaultKind::Reload, 0),
            ],
            quiet: vec![],
        };
        let s = kind_stats(&run);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, FaultKind::Partition);
        assert_eq!(s[0].rounds, 3);
        assert_eq!(s[0].interrupted, 2);
        assert_eq!(s[0].median, Duration::from_millis(400));
        assert_eq!(s[0].max, Duration::from_millis(600));
        assert!((s[0].mean.as_secs_f64() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(s[1].interrupted, 0);
        let table = mttr_table(&[("w", &s)]);
        assert!(
            table.contains("| partition + heal | 3 (2) | 0.400 | 0.600 |"),
            "{table}"
        );
        assert!(table.contains("| link down/up | 0 | – | – |"));
    }

    #[test]
    fn availability_from_mttf_and_mttr() {
        // One kind, once a month, 1 s to repair: 1 - 1/2_629_800 ≈ 99.99996 %, 12 s a year.
        let stats = [KindStats {
            kind: FaultKind::Kill9Restart,
            rounds: 1,
            interrupted: 1,
            median: Duration::from_secs(1),
            max: Duration::from_secs(1),
            mean: Duration::from_secs(1),
        }];
        let a = availability(&stats, 1.0).unwrap();
        assert_eq!(a.mttf, MONTH);
        assert!((a.downtime_per_year.as_secs_f64() - 12.0).abs() < 0.01);
        assert!(a.availability * 100.0 > 99.999);
        assert!(availability(&[], 1.0).is_none());
        let t = availability_table(&[("w", Some(a))]);
        assert!(
            t.contains("| 99.999 % (≤ 5 min 15 s a year) | met |"),
            "{t}"
        );
        // 99.9 % allows 8 h 45 min a year.
        assert_eq!(human(budget(99.9)), "8 h 45 min");
    }

    #[test]
    fn gaps_only_within_one_quiet_window_and_one_source() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let adv = |t: f64, src: IpAddr, prio: u8| Packet {
            t,
            src_mac: String::new(),
            kind: PacketKind::Advert {
                version: 3,
                src,
                dst: "224.0.0.18".parse().unwrap(),
                vrid: 55,
                prio,
            },
        };
        let packets = [
            adv(0.0, a, 100),
            adv(0.1, a, 100),
            adv(0.2, b, 90), // source change: no gap across it
            adv(0.3, b, 90),
            adv(0.4, b, 0), // priority 0: not a scheduled advert
            adv(5.0, a, 100),
            adv(5.1, a, 100), // second window
            adv(9.0, a, 100), // outside every window
        ];
        let gaps = advert_gaps(&packets, 55, &[a, b], &[(0.0, 1.0), (5.0, 6.0)]);
        let rounded: Vec<u64> = gaps.iter().map(|g| g.round() as u64).collect();
        assert_eq!(rounded, [100, 100, 100]);
        assert!(advert_gaps(&packets, 55, &[a], &[(0.0, 1.0)]).len() == 1);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[], 99.0), None);
    }
}
