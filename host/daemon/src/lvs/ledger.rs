//! What a probe's task keeps about its runs for the director, and which results the
//! director must see.
//!
//! A check that keeps passing changes nothing in the director: keepalived's checker state
//! (`wasmalived_lvs::checker`) records a success after a success as a no-op, and so does
//! every real server naming the probe. Handing each such result to the director task
//! cost a cross-thread wake-up per check (the probe runs on a plugin executor thread, the
//! director on the daemon's runtime) — at `delay_loop 1` with 100 real servers, 100
//! wake-ups a second for nothing. So the probe's task counts its runs and keeps its last
//! outcome here, where the status document reads them, and delivers a result to the
//! director only when it can matter ([`Delivery::decide`]): a failure (each one counts
//! towards `retry`), a change, a weight report, the first result, and the first result
//! after the director changed the probe's subscribers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use wasmalived_lvs::WeightReport;

use super::probe::Outcome;

/// A probe's runs as its task reports them; shared by the task and the director.
#[derive(Debug, Default)]
pub struct ProbeLedger {
    runs: AtomicU64,
    last: Mutex<Option<Outcome>>,
    /// The director changed who the probe's results go to: deliver the next one whatever
    /// it is (a new subscriber has not seen a result yet).
    resync: AtomicBool,
    /// Runs happened that the status document does not show yet.
    unseen: AtomicBool,
}

impl ProbeLedger {
    /// Record one run (the probe's task).
    pub fn note(&self, outcome: &Outcome) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome.clone());
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.unseen.store(true, Ordering::Release);
    }

    /// Runs so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// The last run's outcome.
    pub fn last(&self) -> Option<Outcome> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether runs happened since the last call (the status document's refresh).
    pub fn take_unseen(&self) -> bool {
        self.unseen.swap(false, Ordering::Acquire)
    }

    /// The director changed the probe's subscribers: its next result must reach them.
    pub fn resync(&self) {
        self.resync.store(true, Ordering::Release);
    }

    fn take_resync(&self) -> bool {
        self.resync.swap(false, Ordering::Acquire)
    }
}

/// What the director last saw from a probe: its task decides with it whether a new result
/// must be delivered.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Success and weight of the last result delivered (`None`: none yet).
    last: Option<(bool, Option<WeightReport>)>,
}

impl Delivery {
    /// Whether `outcome` must reach the director: anything but a plain success following a
    /// delivered plain success — unless the subscribers changed since ([`ProbeLedger::resync`]).
    /// Records it as delivered when it must.
    pub fn decide(&mut self, ledger: &ProbeLedger, outcome: &Outcome) -> bool {
        let now = (outcome.success, outcome.weight);
        let quiet = now == (true, None) && self.last == Some((true, None));
        // Always consume the flag, so a resync is one delivery, not a skipped one later.
        let resync = ledger.take_resync();
        if quiet && !resync {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ok() -> Outcome {
        Outcome::ok("tcp@1234", Duration::from_millis(1))
    }

    fn failed(why: &str) -> Outcome {
        Outcome::failed("tcp@1234", why, Duration::from_millis(1))
    }

    #[test]
    fn only_a_success_after_a_delivered_success_stays_with_the_probe() {
        let ledger = ProbeLedger::default();
        let mut d = Delivery::default();
        assert!(
            d.decide(&ledger, &ok()),
            "the first result decides the initial state"
        );
        assert!(
            !d.decide(&ledger, &ok()),
            "a success after a success changes nothing"
        );
        assert!(!d.decide(&ledger, &ok()));
        assert!(
            d.decide(&ledger, &failed("refused")),
            "a failure counts towards retry"
        );
        assert!(
            d.decide(&ledger, &failed("refused")),
            "so does every one after it"
        );
        assert!(
            d.decide(&ledger, &ok()),
            "a success after a failure can bring it up"
        );
        assert!(!d.decide(&ledger, &ok()));
    }

    #[test]
    fn weight_reports_always_reach_the_director() {
        let ledger = ProbeLedger::default();
        let mut d = Delivery::default();
        let weighted = Outcome {
            weight: Some(WeightReport::Set(3)),
            ..ok()
        };
        assert!(d.decide(&ledger, &weighted));
        assert!(d.decide(&ledger, &weighted));
        assert!(
            d.decide(&ledger, &ok()),
            "a plain success after a weight restores it"
        );
        assert!(!d.decide(&ledger, &ok()));
    }

    #[test]
    fn new_subscribers_get_the_next_result_once() {
        let ledger = ProbeLedger::default();
        let mut d = Delivery::default();
        assert!(d.decide(&ledger, &ok()));
        assert!(!d.decide(&ledger, &ok()));
        ledger.resync();
        assert!(d.decide(&ledger, &ok()), "a reload added a subscriber");
        assert!(!d.decide(&ledger, &ok()), "one delivery per resync");
    }

    #[test]
    fn the_ledger_counts_every_run_for_the_status_document() {
        let ledger = ProbeLedger::default();
        assert!(!ledger.take_unseen());
        ledger.note(&ok());
        ledger.note(&failed("timeout"));
        assert_eq!(ledger.runs(), 2);
        assert_eq!(ledger.last().map(|o| o.detail), Some("timeout".into()));
        assert!(ledger.take_unseen());
        assert!(!ledger.take_unseen(), "seen until the next run");
    }
}
