//! The fault schedule: a seeded PRNG, the fault kinds, and the list of faults a run applies.
//!
//! A schedule is a pure function of its seed and length, so `CHAOS_SEED=N` replays it. Its
//! targets are roles (the Master, or one of the two Backups), resolved against the lab when a
//! round starts: the same seed hits the same roles whichever node holds them at that moment.

use std::fmt;
use std::time::Duration;

/// The environment variable that fixes a run's seed.
pub const SEED_VAR: &str = "CHAOS_SEED";

/// xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators"):
/// small, fast and deterministic across platforms, which is all a fault schedule needs.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (0 is remapped: xorshift has no zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is negligible for the small `n` used here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
}

/// The seed of this run: `$CHAOS_SEED` (decimal or `0x` hex) when set, else one drawn from the
/// clock and the pid. Printed as `CHAOS_SEED=N` either way, so any run can be replayed.
pub fn seed_from_env() -> Result<u64, String> {
    let seed = match std::env::var(SEED_VAR) {
        Ok(text) => parse_seed(&text)?,
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            nanos ^ (u64::from(std::process::id()) << 32)
        }
    };
    eprintln!("{SEED_VAR}={seed}");
    Ok(seed)
}

fn parse_seed(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| format!("{SEED_VAR}={text:?} is not a decimal or 0x-hex u64"))
}

/// What a round does to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The machine dies (SIGKILL to the daemon's process group, its VIPs gone with it) and
    /// boots again: the daemon is started anew after the hold.
    Kill9Restart,
    /// A frozen VM: the daemon is stopped (SIGSTOP) and the node's network is cut, then both
    /// resume at once (heal, SIGCONT), timers long expired.
    Freeze,
    /// The cable is pulled: the bridge side of the node's veth goes down (carrier lost), then
    /// up again.
    LinkFlap,
    /// A lossy link: nftables `numgen random` drops a share of everything in and out of the
    /// node's `eth0` (this kernel has no netem).
    Loss,
    /// A partition: the node is isolated from everyone, then healed. Each side may have a
    /// Master meanwhile; the invariants are checked after the heal.
    Partition,
    /// A config reload (SIGHUP) with the same config: it must not move the VIP.
    Reload,
    /// A check's plugin (wasmalived) or script (keepalived) is replaced mid-run by one that
    /// fails (the `trap` fixture / `exit 1`), then restored: the node's priority drops by the
    /// check's weight while it is broken.
    PluginBroken,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Kill9Restart,
        FaultKind::Freeze,
        FaultKind::LinkFlap,
        FaultKind::Loss,
        FaultKind::Partition,
        FaultKind::Reload,
        FaultKind::PluginBroken,
    ];

    /// Short name for logs and tables.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill9Restart => "kill -9 + restart",
            FaultKind::Freeze => "SIGSTOP/SIGCONT (frozen VM)",
            FaultKind::LinkFlap => "link down/up",
            FaultKind::Loss => "loss on the link",
            FaultKind::Partition => "partition + heal",
            FaultKind::Reload => "config reload",
            FaultKind::PluginBroken => "plugin broken + restored",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which node a fault hits, by role at the start of its round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The node holding the VIP.
    Master,
    /// One of the two other nodes: the first or second in node order.
    Backup(u8),
}

impl Target {
    /// The node index (0..3) this target names when `master` holds the VIP.
    pub fn resolve(self, master: usize, nodes: usize) -> usize {
        match self {
            Target::Master => master,
            Target::Backup(k) => {
                let others: Vec<usize> = (0..nodes).filter(|&i| i != master).collect();
                others[usize::from(k) % others.len()]
            }
        }
    }
}

/// One round of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// To whom.
    pub target: Target,
    /// How long the fault lasts before its recovery action (zero for a reload).
    pub hold: Duration,
    /// For [`FaultKind::Loss`]: the share of packets dropped, in percent.
    pub loss_pct: u8,
}

/// The time scales a schedule's holds are drawn from, derived from the lab's protocol and
/// checks.
#[derive(Clone, Copy, Debug)]
pub struct Scales {
    /// The lowest-priority Backup's Master_Down_Interval.
    pub master_down: Duration,
    /// The interval of the check a [`FaultKind::PluginBroken`] breaks.
    pub check_interval: Duration,
}

/// A schedule of `rounds` faults for `seed`: every kind once first (shuffled, so that even a
/// short run covers them all), then kinds drawn uniformly. Two thirds of the faults hit the
/// Master, where they cost availability.
pub fn schedule(seed: u64, rounds: usize, scales: Scales) -> Vec<Fault> {
    let mut rng = Rng::new(seed);
    let mut kinds: Vec<FaultKind> = FaultKind::ALL.to_vec();
    // Fisher–Yates.
    for i in (1..kinds.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        kinds.swap(i, j);
    }
    (0..rounds)
        .map(|r| {
            let kind = match kinds.get(r) {
                Some(k) => *k,
                None => FaultKind::ALL[rng.below(FaultKind::ALL.len() as u64) as usize],
            };
            let target = if rng.below(3) < 2 {
                Target::Master
            } else {
                Target::Backup(rng.below(2) as u8)
            };
            let md = scales.master_down;
            let hold = match kind {
                FaultKind::Reload => Duration::ZERO,
                // Long enough for the lost adverts to cost a master-down now and then.
                FaultKind::Loss => md * rng.between(5, 10) as u32,
                // The check must run and fail at least once (fall 1) while broken.
                FaultKind::PluginBroken => scales.check_interval * rng.between(2, 3) as u32,
                _ => md * rng.between(2, 5) as u32,
            };
            let loss_pct = if kind == FaultKind::Loss {
                rng.between(20, 60) as u8
            } else {
                0
            };
            Fault {
                kind,
                target,
                hold,
                loss_pct,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCALES: Scales = Scales {
        master_down: Duration::from_millis(369),
        check_interval: Duration::from_secs(1),
    };

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let a = schedule(42, 30, SCALES);
        assert_eq!(a, schedule(42, 30, SCALES));
        assert_ne!(a, schedule(43, 30, SCALES));
    }

    #[test]
    fn a_short_schedule_covers_every_kind_once() {
        let s = schedule(7, FaultKind::ALL.len(), SCALES);
        let mut kinds: Vec<FaultKind> = s.iter().map(|f| f.kind).collect();
        kinds.sort();
        assert_eq!(kinds, FaultKind::ALL.to_vec());
    }

    #[test]
    fn holds_follow_the_kind() {
        for f in schedule(1, 200, SCALES) {
            match f.kind {
                FaultKind::Reload => assert_eq!(f.hold, Duration::ZERO),
                FaultKind::PluginBroken => assert!(f.hold >= SCALES.check_interval * 2),
                FaultKind::Loss => assert!((20..=60).contains(&f.loss_pct)),
                _ => assert!(f.hold >= SCALES.master_down * 2, "{f:?}"),
            }
            if f.kind != FaultKind::Loss {
                assert_eq!(f.loss_pct, 0);
            }
        }
    }

    #[test]
    fn targets_resolve_to_the_master_or_another_node() {
        assert_eq!(Target::Master.resolve(1, 3), 1);
        assert_eq!(Target::Backup(0).resolve(1, 3), 0);
        assert_eq!(Target::Backup(1).resolve(1, 3), 2);
        assert_eq!(Target::Backup(1).resolve(2, 3), 1);
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("12345"), Ok(12345));
        assert_eq!(parse_seed(" 0x10 "), Ok(16));
        assert!(parse_seed("soon").is_err());
    }

    #[test]
    fn rng_stays_in_range() {
        let mut r = Rng::new(0);
        for _ in 0..1000 {
            assert!(r.below(3) < 3);
            assert!((5..=10).contains(&r.between(5, 10)));
        }
    }
}
