//! `wasmalived:plugin/wake`: what should run the check again before its next interval.
//!
//! A run declares its wake sources (today: PIDs whose exit should wake it); the host hands
//! them to the check's scheduler with the run's outcome ([`crate::RunOutcome::wake`]), which
//! holds a pidfd per PID until the next run ends and rate-limits the early runs. This module
//! only collects and bounds the declaration; it never touches a process.
//!
//! Least privilege: watching a PID tells the plugin when that process ends, so `on-exit` is
//! refused (and recorded as a denial of the run) unless the check is granted `processes` —
//! the grant under which it can see PIDs at all.

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::wasmalived::plugin::wake as wit;
use crate::state::{Denials, HostState};

/// PIDs one run may ask to be woken by.
pub const MAX_WAKE_PIDS: usize = 64;

/// What a run asked to be woken by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WakeSources {
    /// Wake when any of these processes exits (sorted, no duplicates, at most
    /// [`MAX_WAKE_PIDS`]).
    pub pids: Vec<u32>,
}

impl WakeSources {
    /// Nothing to watch: the check runs at its interval only.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }
}

/// The capability for one run.
#[derive(Debug, Default)]
pub struct WakeCap {
    /// Whether PIDs may be watched (the check is granted `processes`).
    pids_allowed: bool,
    sources: WakeSources,
    denials: Denials,
}

impl WakeCap {
    /// Bind to the check's grants: `pids_allowed` when it is granted `processes`.
    pub fn new(pids_allowed: bool, denials: Denials) -> Self {
        Self {
            pids_allowed,
            sources: WakeSources::default(),
            denials,
        }
    }

    /// What the run declared, emptied.
    pub fn take(&mut self) -> WakeSources {
        std::mem::take(&mut self.sources)
    }

    fn on_exit(&mut self, pids: &[u32]) -> Result<(), String> {
        if !self.pids_allowed {
            self.denials
                .record(|| "wake on-exit (needs `allow_processes`)".to_string());
            return Err("watching processes needs the `processes` grant".into());
        }
        if let Some(bad) = pids
            .iter()
            .find(|p| **p == 0 || i32::try_from(**p).is_err())
        {
            return Err(format!("{bad} is not a process id"));
        }
        let mut merged = self.sources.pids.clone();
        merged.extend_from_slice(pids);
        merged.sort_unstable();
        merged.dedup();
        if merged.len() > MAX_WAKE_PIDS {
            return Err(format!(
                "at most {MAX_WAKE_PIDS} processes can be watched per run, asked for {}",
                merged.len()
            ));
        }
        self.sources.pids = merged;
        Ok(())
    }
}

impl wit::Host for WakeCap {
    fn on_exit(&mut self, pids: Vec<u32>) -> wasmtime::Result<Result<(), String>> {
        Ok(WakeCap::on_exit(self, &pids))
    }
}

/// Link `wake` (always; its uses are checked against the grants at call time).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<WakeCap>>(linker, |s| &mut s.wake)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_merged_sorted_and_bounded() {
        let mut cap = WakeCap::new(true, Denials::default());
        cap.on_exit(&[30, 10]).expect("fits");
        cap.on_exit(&[10, 20]).expect("fits");
        let too_many: Vec<u32> = (100..100 + u32::try_from(MAX_WAKE_PIDS).unwrap()).collect();
        let e = cap.on_exit(&too_many).expect_err("over the bound");
        assert!(e.contains("at most 64"), "{e}");
        assert_eq!(
            cap.take().pids,
            vec![10, 20, 30],
            "a refused call adds nothing"
        );
        assert!(cap.take().is_empty(), "take empties");
    }

    #[test]
    fn not_a_pid_is_refused() {
        let mut cap = WakeCap::new(true, Denials::default());
        assert!(cap.on_exit(&[0]).is_err());
        assert!(cap.on_exit(&[u32::MAX]).is_err());
        assert!(cap.take().is_empty());
    }

    #[test]
    fn without_the_processes_grant_watching_is_denied_and_recorded() {
        let denials = Denials::default();
        let mut cap = WakeCap::new(false, denials.clone());
        let e = cap.on_exit(&[1]).expect_err("denied");
        assert!(e.contains("`processes`"), "{e}");
        assert!(cap.take().is_empty());
        assert_eq!(
            denials.take(),
            vec!["wake on-exit (needs `allow_processes`)"]
        );
    }
}
