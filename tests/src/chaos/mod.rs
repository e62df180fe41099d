//! Chaos with measured availability (issue 15): a three-node VRRP lab, a seeded schedule of
//! faults, the protocol invariants after every round, and the client-visible outage each
//! fault cost (its MTTR).
//!
//! ```text
//!  schedule(seed) ──► for each round: resolve the target (Master / a Backup)
//!                                     inject + hold + recover   (trio.rs)
//!                                     wait ≤ bound for the invariants
//!                                     good checks still up
//!  client ping every 10 ms ──► outage per round window = MTTR  (probe.rs)
//!  records ──► MTTR per kind, availability at a fault rate, advert gaps  (report.rs)
//! ```
//!
//! Only invariants are asserted (a noisy machine makes any timing threshold flaky): within
//! the convergence bound exactly one node holds the VIP and it is MASTER, the others are
//! BACKUP, the client reaches the VIP, and every daemon runs.

pub mod director;
pub mod probe;
pub mod report;
pub mod schedule;
pub mod trio;

use std::thread;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::timing::now_epoch;

pub use probe::Prober;
pub use report::{advert_gaps, availability, kind_stats, Availability, KindStats};
pub use schedule::{schedule, seed_from_env, Fault, FaultKind, Rng, Target};
pub use trio::{Trio, CLIENT, NODES};

/// One round as it happened.
#[derive(Clone, Debug)]
pub struct Round {
    /// Its place in the schedule (from 0).
    pub index: usize,
    /// The fault.
    pub fault: Fault,
    /// The node it hit.
    pub node: usize,
    /// When the fault was injected (epoch seconds).
    pub injected: f64,
    /// When the trio satisfied the invariants again (epoch seconds).
    pub converged: f64,
    /// The Master afterwards.
    pub master_after: usize,
    /// How long the client went without a reply from the VIP between injection and
    /// convergence: this round's time to repair.
    pub outage: Duration,
}

/// A whole run.
#[derive(Clone, Debug)]
pub struct Run {
    /// The seed its schedule came from.
    pub seed: u64,
    /// Every round, in order.
    pub rounds: Vec<Round>,
    /// Windows (epoch seconds) with no fault in progress and the trio converged: where the
    /// adverts a peer receives are expected on schedule.
    pub quiet: Vec<(f64, f64)>,
}

/// Runs `faults` against `trio`: waits for the first convergence, probes the VIP from the
/// client throughout, and after each round waits for the invariants and the good checks.
/// `dwell` is the quiet time between rounds. Errors name the seed and the round.
pub fn run(trio: &mut Trio, seed: u64, faults: &[Fault], dwell: Duration) -> Result<Run> {
    let bound = trio.convergence_bound();
    let first = trio.wait_converged(trio::FIRST_START_BOUND)?;
    trio.expect_good_checks(bound)?;
    let prober = Prober::start(&trio.lab, CLIENT, trio.vip(), bound)?;
    let mut master = first.master;
    let mut rounds = Vec::new();
    let mut quiet = Vec::new();
    let mut quiet_from = now_epoch();
    for (index, fault) in faults.iter().enumerate() {
        thread::sleep(dwell);
        let node = fault.target.resolve(master, NODES.len());
        eprintln!(
            "chaos round {index}: {} on {} ({}), hold {:?}{}",
            fault.kind,
            NODES[node],
            if node == master { "Master" } else { "Backup" },
            fault.hold,
            if fault.loss_pct > 0 {
                format!(", {} % loss", fault.loss_pct)
            } else {
                String::new()
            }
        );
        let injected = now_epoch();
        quiet.push((quiet_from, injected));
        let context = |e: LabError| {
            LabError::check(format!(
                "CHAOS_SEED={seed} round {index} ({} on {}): {e}",
                fault.kind, NODES[node]
            ))
        };
        trio.inject(fault, node).map_err(context)?;
        let conv = trio.wait_converged(bound).map_err(context)?;
        trio.expect_good_checks(bound).map_err(context)?;
        let converged = now_epoch();
        quiet_from = converged;
        master = conv.master;
        rounds.push(Round {
            index,
            fault: *fault,
            node,
            injected,
            converged,
            master_after: master,
            outage: Duration::ZERO,
        });
    }
    thread::sleep(dwell);
    quiet.push((quiet_from, now_epoch()));
    let replies = prober.stop()?;
    for r in &mut rounds {
        r.outage = probe::outage(&replies, r.injected, r.converged);
        eprintln!(
            "chaos round {}: {} on {}: client outage {:.3} s, Master now {}",
            r.index,
            r.fault.kind,
            NODES[r.node],
            r.outage.as_secs_f64(),
            NODES[r.master_after]
        );
    }
    Ok(Run {
        seed,
        rounds,
        quiet,
    })
}
