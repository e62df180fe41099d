//! IPVS's schedulers as the stateless tables a packet filter can apply: each new connection
//! picks a slot — the next one in turn (`numgen inc`) or a hash of the client's address
//! (`jhash`, with a fixed seed so that two directors pick alike) — and the slot names a
//! member.
//!
//! | scheduler | table |
//! |---|---|
//! | `rr` | one slot per member with weight > 0, in turn |
//! | `wrr` | slots in proportion to the weights, interleaved, in turn |
//! | `sh` | 256 slots in proportion to the weights, by source-address hash (IPVS's `sh`) |
//! | `mh` | a Maglev table of [`MAGLEV_SLOTS`] slots, by source-address hash: a member that leaves takes only its own slots with it |
//! | `fo` | every connection to the highest-weight member (IPVS's weighted failover) |
//!
//! The connection-count schedulers (`lc`, `wlc`, `sed`, `nq`, `lblc`, `lblcr`), `dh`, `ovf`
//! and `twos` need state a packet filter does not keep: [`plan`] falls back to `wrr` and says
//! so ([`Fallback`]).

use wasmalived_config::lvs::Scheduler;

use crate::service::Member;

/// Slots of an `sh` table (IPVS uses 256 buckets).
pub const SH_SLOTS: usize = 256;
/// Slots of an `mh` table: a prime, large against the members of one service.
pub const MAGLEV_SLOTS: usize = 251;
/// Most slots a weighted table gets (weights are scaled down beyond).
pub const MAX_WEIGHTED_SLOTS: usize = 1024;

/// How a table is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The next slot in turn (`numgen inc mod N`).
    InTurn,
    /// A hash of the client's address (`jhash … mod N`).
    SourceHash,
}

/// A scheduling table: member indexes by slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// How a slot is picked.
    pub pick: Pick,
    /// The member (index into the pool) of each slot.
    pub slots: Vec<usize>,
}

/// A scheduler this data path cannot do, and the one used instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// Asked for.
    pub requested: Scheduler,
    /// Used.
    pub used: Scheduler,
}

/// The scheduler a stateless data path uses for `requested`.
pub fn effective(requested: Scheduler) -> (Scheduler, Option<Fallback>) {
    match requested {
        Scheduler::Rr | Scheduler::Wrr | Scheduler::Sh | Scheduler::Mh | Scheduler::Fo => {
            (requested, None)
        }
        other => (
            Scheduler::Wrr,
            Some(Fallback {
                requested: other,
                used: Scheduler::Wrr,
            }),
        ),
    }
}

/// The members that take new connections (weight above 0), as (index, weight).
fn live(members: &[Member]) -> Vec<(usize, u32)> {
    members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.weight > 0)
        .map(|(i, m)| (i, m.weight))
        .collect()
}

/// The table of `members` under `scheduler` (already [`effective`]). Members of weight 0
/// get no slot; an empty table means nobody takes new connections.
pub fn plan(scheduler: Scheduler, members: &[Member]) -> Table {
    let live = live(members);
    match scheduler {
        Scheduler::Rr => Table {
            pick: Pick::InTurn,
            slots: live.iter().map(|(i, _)| *i).collect(),
        },
        Scheduler::Sh => Table {
            pick: Pick::SourceHash,
            slots: weighted_fill(&live, SH_SLOTS),
        },
        Scheduler::Mh => Table {
            pick: Pick::SourceHash,
            slots: maglev(members, &live, MAGLEV_SLOTS),
        },
        Scheduler::Fo => Table {
            pick: Pick::InTurn,
            slots: live
                .iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(i, _)| vec![*i])
                .unwrap_or_default(),
        },
        _ => Table {
            pick: Pick::InTurn,
            slots: weighted_round(&live),
        },
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Weights reduced by their common divisor and, when they still need more than
/// [`MAX_WEIGHTED_SLOTS`], scaled down (every live member keeps at least one slot).
fn reduced(live: &[(usize, u32)]) -> Vec<(usize, u64)> {
    let g = live.iter().fold(0, |g, (_, w)| gcd(g, *w)).max(1);
    let weights: Vec<(usize, u64)> = live.iter().map(|(i, w)| (*i, u64::from(*w / g))).collect();
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    let max = MAX_WEIGHTED_SLOTS as u64;
    if total <= max {
        return weights;
    }
    weights
        .into_iter()
        .map(|(i, w)| (i, (w * max / total).max(1)))
        .collect()
}

/// IPVS's interleaved weighted round robin over the reduced weights: each pass hands a slot
/// to every member whose weight is at least the current level.
fn weighted_round(live: &[(usize, u32)]) -> Vec<usize> {
    let weights = reduced(live);
    let max = weights.iter().map(|(_, w)| *w).max().unwrap_or(0);
    let mut slots = Vec::new();
    for level in (1..=max).rev() {
        for (i, w) in &weights {
            if *w >= level {
                slots.push(*i);
            }
        }
    }
    slots
}

/// `size` slots handed out in weighted round-robin order (IPVS's `sh` bucket fill).
fn weighted_fill(live: &[(usize, u32)], size: usize) -> Vec<usize> {
    let cycle = weighted_round(live);
    if cycle.is_empty() {
        return Vec::new();
    }
    cycle.iter().copied().cycle().take(size).collect()
}

/// A stable 64-bit hash (FNV-1a) of a member's address, so both directors build the same
/// Maglev table.
fn fnv1a(text: &str, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A Maglev lookup table (Eisenbud et al., NSDI 2016) of `size` slots (a prime) for the live
/// members, each member's share in proportion to its weight: every member walks its own
/// permutation of the slots, derived from its address alone.
fn maglev(members: &[Member], live: &[(usize, u32)], size: usize) -> Vec<usize> {
    if live.is_empty() {
        return Vec::new();
    }
    let mut table = vec![None; size];
    maglev_fill(members, live, &mut table);
    table.into_iter().map(|s| s.unwrap_or(0)).collect()
}

/// Fill the free slots of `table` by the Maglev walk of `live` (indexes into `members`).
fn maglev_fill(members: &[Member], live: &[(usize, u32)], table: &mut [Option<usize>]) {
    let size = table.len();
    let mut free = table.iter().filter(|s| s.is_none()).count();
    if live.is_empty() || free == 0 {
        return;
    }
    let weights = reduced(live);
    let perms: Vec<(u64, u64)> = weights
        .iter()
        .map(|(i, _)| {
            let name = members[*i].addr.to_string();
            let offset = fnv1a(&name, 0) % size as u64;
            let skip = fnv1a(&name, 0x9e37_79b9_7f4a_7c15) % (size as u64 - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; weights.len()];
    let max_weight = weights.iter().map(|(_, w)| *w).max().unwrap_or(1);
    'fill: loop {
        for level in (1..=max_weight).rev() {
            for (k, (i, w)) in weights.iter().enumerate() {
                if *w < level {
                    continue;
                }
                let (offset, skip) = perms[k];
                let mut c = ((offset + next[k] * skip) % size as u64) as usize;
                while table[c].is_some() {
                    next[k] += 1;
                    c = ((offset + next[k] * skip) % size as u64) as usize;
                }
                table[c] = Some(*i);
                next[k] += 1;
                free -= 1;
                if free == 0 {
                    break 'fill;
                }
            }
        }
    }
}

/// The Maglev table of `members` anchored on the configured pool `anchor`: the table of every
/// configured member (at its configured weight) is computed first, a slot of a member that is
/// usable now stays its, and only the slots of the others (failed, drained) are handed out
/// again among the usable members — so a failed real server moves only its own clients, and
/// its recovery gives exactly them back.
fn maglev_anchored(members: &[Member], anchor: &[Member], size: usize) -> Vec<usize> {
    let live = live(members);
    if live.is_empty() {
        return Vec::new();
    }
    let anchor_live: Vec<(usize, u32)> = anchor
        .iter()
        .enumerate()
        .filter(|(_, m)| m.weight > 0)
        .map(|(i, m)| (i, m.weight))
        .collect();
    let usable: Vec<Option<usize>> = anchor
        .iter()
        .map(|a| {
            members
                .iter()
                .position(|m| m.addr == a.addr && m.weight > 0)
        })
        .collect();
    let mut table: Vec<Option<usize>> = if anchor_live.is_empty() {
        vec![None; size]
    } else {
        maglev(anchor, &anchor_live, size)
            .into_iter()
            .map(|a| usable[a])
            .collect()
    };
    maglev_fill(members, &live, &mut table);
    table.into_iter().map(|s| s.unwrap_or(0)).collect()
}

/// [`plan`], with the configured pool `anchor` for the hash tables that keep clients where
/// they are when a member fails (`mh`).
pub fn plan_anchored(scheduler: Scheduler, members: &[Member], anchor: &[Member]) -> Table {
    match scheduler {
        Scheduler::Mh => Table {
            pick: Pick::SourceHash,
            slots: maglev_anchored(members, anchor, MAGLEV_SLOTS),
        },
        other => plan(other, members),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(weights: &[u32]) -> Vec<Member> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Member {
                addr: format!("10.0.0.{}:80", i + 1).parse().unwrap(),
                weight: *w,
            })
            .collect()
    }

    fn share(t: &Table, n: usize) -> Vec<usize> {
        (0..n)
            .map(|i| t.slots.iter().filter(|s| **s == i).count())
            .collect()
    }

    #[test]
    fn rr_ignores_weights_but_skips_zero() {
        let t = plan(Scheduler::Rr, &members(&[1, 5, 0, 2]));
        assert_eq!(t.pick, Pick::InTurn);
        assert_eq!(t.slots, [0, 1, 3]);
    }

    #[test]
    fn wrr_interleaves_in_proportion() {
        let t = plan(Scheduler::Wrr, &members(&[3, 1, 2]));
        assert_eq!(t.slots, [0, 0, 2, 0, 1, 2]);
        // Weights with a common divisor take no more slots than needed.
        assert_eq!(plan(Scheduler::Wrr, &members(&[100, 200])).slots, [1, 0, 1]);
        // Huge weights are scaled into the slot budget, keeping everyone.
        let t = plan(Scheduler::Wrr, &members(&[65_535, 1, 60_000]));
        assert!(t.slots.len() <= MAX_WEIGHTED_SLOTS + 3);
        assert!(share(&t, 3).iter().all(|n| *n > 0));
    }

    #[test]
    fn sh_fills_256_buckets_by_weight() {
        let t = plan(Scheduler::Sh, &members(&[1, 3]));
        assert_eq!((t.pick, t.slots.len()), (Pick::SourceHash, SH_SLOTS));
        assert_eq!(share(&t, 2), [64, 192]);
    }

    #[test]
    fn maglev_spreads_by_weight_and_moves_only_the_failed_members_slots() {
        let all = members(&[1, 1, 1, 1, 1]);
        let before = plan(Scheduler::Mh, &all);
        assert_eq!(before.slots.len(), MAGLEV_SLOTS);
        let counts = share(&before, 5);
        assert!(counts.iter().all(|c| (40..=61).contains(c)), "{counts:?}");
        // Member 2 fails (weight 0): its slots go elsewhere; the others' stay.
        let mut failed = all.clone();
        failed[2].weight = 0;
        let after = plan(Scheduler::Mh, &failed);
        let moved = before
            .slots
            .iter()
            .zip(&after.slots)
            .filter(|(b, a)| b != a)
            .count();
        let owned = counts[2];
        assert!(after.slots.iter().all(|s| *s != 2));
        // Maglev's bound: close to the failed share (a few extra with a small table).
        assert!(moved <= owned + owned / 2, "moved {moved}, owned {owned}");
        // Weights count.
        let weighted = plan(Scheduler::Mh, &members(&[1, 3]));
        let c = share(&weighted, 2);
        assert!(c[1] > 2 * c[0], "{c:?}");
        // Deterministic: both directors compute the same table.
        assert_eq!(plan(Scheduler::Mh, &all), before);
    }

    #[test]
    fn fo_sends_everything_to_the_heaviest() {
        assert_eq!(plan(Scheduler::Fo, &members(&[2, 5, 5])).slots, [1]);
    }

    #[test]
    fn stateful_schedulers_fall_back_to_wrr_visibly() {
        for s in [Scheduler::Lc, Scheduler::Wlc, Scheduler::Sed, Scheduler::Nq] {
            let (used, fallback) = effective(s);
            assert_eq!(used, Scheduler::Wrr);
            assert_eq!(fallback.map(|f| f.requested), Some(s));
        }
        assert_eq!(effective(Scheduler::Mh), (Scheduler::Mh, None));
    }

    #[test]
    fn nobody_takes_new_connections_when_all_weights_are_zero() {
        for s in [
            Scheduler::Rr,
            Scheduler::Wrr,
            Scheduler::Sh,
            Scheduler::Mh,
            Scheduler::Fo,
        ] {
            assert!(plan(s, &members(&[0, 0])).slots.is_empty(), "{s:?}");
        }
    }

    #[test]
    fn anchored_maglev_moves_exactly_the_failed_members_slots_and_gives_them_back() {
        let all = members(&[1, 1, 1, 1, 1]);
        let before = plan_anchored(Scheduler::Mh, &all, &all);
        assert_eq!(
            before,
            plan(Scheduler::Mh, &all),
            "nothing failed: plain Maglev"
        );
        // Member 2 fails: its slots go to the others, no other slot moves.
        let mut pool = all.clone();
        let failed = pool.remove(2);
        let after = plan_anchored(Scheduler::Mh, &pool, &all);
        assert_eq!(after.slots.len(), MAGLEV_SLOTS);
        for (slot, (b, a)) in before.slots.iter().zip(&after.slots).enumerate() {
            let was = all[*b].addr;
            let now = pool[*a].addr;
            if was != failed.addr {
                assert_eq!(was, now, "slot {slot} moved from a live member");
            }
        }
        // Every survivor got a share of the freed slots.
        assert_eq!(
            share(&after, pool.len())
                .iter()
                .filter(|n| **n > 45)
                .count(),
            4
        );
        // Inhibited (weight 0) counts as failed; recovery restores the original table.
        let mut inhibited = all.clone();
        inhibited[2].weight = 0;
        let t = plan_anchored(Scheduler::Mh, &inhibited, &all);
        assert!(!t.slots.contains(&2));
        assert_eq!(plan_anchored(Scheduler::Mh, &all, &all), before);
    }
}
