//! Effective priority of a VRRP instance from the states of what it tracks (sans-IO, pure).
//!
//! keepalived applies tracker changes incrementally to `vrrp->total_priority`
//! (`keepalived/vrrp/vrrp_track.c`: `process_script_update_priority`,
//! `initialise_track_script_state`, `initialise_interface_tracking_priorities`,
//! `process_update_track_process_status`) and clamps in `vrrp_set_effective_priority`. This
//! module computes the same result from scratch, so it cannot drift:
//!
//! - weighted tracker, multiplier `m = −1` with `reverse`, else `1`: it contributes `weight × m`
//!   while it is **up** if `weight > 0`, while it is **down** if `weight < 0`, and nothing
//!   otherwise (`process_update_track_process_status`: `(weight > 0) == now_up` adds
//!   `weight × m`). So `reverse` flips the *sign* of the adjustment, not *when* it applies:
//!   `weight 10 reverse` subtracts 10 while up, `weight -10 reverse` adds 10 while down (man
//!   keepalived.conf: "a positive weight decreases the priority when the script is up").
//! - a tracker that has not reported yet ([`CheckState::Init`]) contributes nothing
//!   (`process_script_update_priority` in INIT state only applies the half of the update that
//!   the first result implies).
//! - weight 0: the instance is in Fault while the tracker is down — with `reverse`, while it is
//!   up (`script_ok != (multiplier == 1)` → `down_instance`); and it cannot come up until every
//!   weight‑0 tracker has reported once (`num_script_init`, `try_up_instance` only when it is 0).
//! - `fatal` (ours, issue 4): any tracker in [`CheckState::Fatal`] puts the instance in Fault,
//!   whatever its weight and `reverse`.
//! - `effective = clamp(base + Σ contributions, 1, 254)` (`vrrp_set_effective_priority`: `< 1`
//!   → 1, `>= 255` → 254); the address owner (base 255) is never changed — weighted trackers are
//!   ignored for it (`if (vrrp->base_priority == VRRP_PRIO_OWNER) return;`), but weight‑0 and
//!   fatal trackers still fault it (`down_instance` does not look at the priority).
//!
//! Tracked interfaces use the same rule (`initialise_interface_tracking_priorities`): pass them
//! as [`Tracked`] with [`CheckState::Up`]/[`CheckState::Down`]. For a `vrrp_sync_group`'s
//! `track_script`, pass the group's trackers along with the instance's own.
//!
//! Tracked files ([`TrackedFile`], keepalived's `track_file.c`,
//! `process_update_vrrp_track_file_status`): the file's integer value `v` with weight `w` and
//! multiplier `m`:
//! - `w ≠ 0`: the status is `v × w × m`; at −254 or below the instance is in Fault, else it
//!   contributes the status, capped at 253.
//! - `w = 0`: Fault while `v ≠ 0` (with `reverse`: while `v = 0`), else nothing.

use super::rise_fall::CheckState;
use crate::vrrp::Priority;

/// One tracked object (script, plugin check or interface) of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked<'a> {
    /// Name for fault reasons (`vrrp_script` name or interface name).
    pub name: &'a str,
    /// keepalived `weight` (−253..=253 after config validation; any value is handled).
    pub weight: i32,
    /// keepalived `reverse`.
    pub reverse: bool,
    /// Current state.
    pub state: &'a CheckState,
}

/// One tracked file of an instance: its current integer value with the weight in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedFile<'a> {
    /// The `track_file` name, for fault reasons.
    pub name: &'a str,
    /// keepalived `weight` (−254..=254 after config validation; any value is handled).
    pub weight: i32,
    /// keepalived `reverse`.
    pub reverse: bool,
    /// The file's value (a missing or unreadable file reads 0).
    pub value: i64,
}

/// keepalived's "fault" status of a tracked file.
const FILE_FAULT: i64 = -254;
/// Largest contribution of one tracked file.
const FILE_MAX: i64 = 253;

impl TrackedFile<'_> {
    /// The contribution to the priority, or `None` when the file puts the instance in Fault.
    fn status(&self) -> Option<i64> {
        if self.weight == 0 {
            let faulted = (self.value != 0) != self.reverse;
            return (!faulted).then_some(0);
        }
        let multiplier: i64 = if self.reverse { -1 } else { 1 };
        let status = self
            .value
            .saturating_mul(i64::from(self.weight))
            .saturating_mul(multiplier);
        (status > FILE_FAULT).then_some(status.min(FILE_MAX))
    }
}

/// Why an instance must be in Fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultReason {
    /// A weight‑0 tracker has not reported yet.
    AwaitingFirstResult {
        /// Tracker name.
        name: String,
    },
    /// A weight‑0 tracker is down (or up, with `reverse`).
    TrackerFailed {
        /// Tracker name.
        name: String,
        /// True when the fault is caused by the tracker being *up* (`weight 0 reverse`).
        reverse: bool,
    },
    /// A tracked file's value puts the instance in Fault (status −254, or weight 0 with a
    /// non-zero value).
    FileFault {
        /// `track_file` name.
        name: String,
        /// The file's value.
        value: i64,
    },
    /// A tracker reported a fatal verdict (stop-self) and has not been up since.
    Fatal {
        /// Tracker name.
        name: String,
        /// The verdict's reason.
        reason: String,
    },
}

impl std::fmt::Display for FaultReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultReason::AwaitingFirstResult { name } => {
                write!(f, "waiting for the first result of {name}")
            }
            FaultReason::TrackerFailed {
                name,
                reverse: false,
            } => write!(f, "{name} is down"),
            FaultReason::TrackerFailed {
                name,
                reverse: true,
            } => write!(f, "{name} is up (weight 0 reverse)"),
            FaultReason::Fatal { name, reason } => write!(f, "{name} reported fatal: {reason}"),
            FaultReason::FileFault { name, value } => {
                write!(f, "track_file {name} reads {value} (fault)")
            }
        }
    }
}

/// What an instance should run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effective {
    /// Run with this priority.
    Priority(Priority),
    /// Enter (or stay in) Fault for these reasons (never empty).
    Fault(Vec<FaultReason>),
}

/// The contribution of one weighted tracker to `total_priority`.
fn contribution(t: &Tracked<'_>) -> i64 {
    let multiplier: i64 = if t.reverse { -1 } else { 1 };
    let weight = i64::from(t.weight);
    let applies = match t.state {
        CheckState::Init => false,
        CheckState::Up => weight > 0,
        CheckState::Down | CheckState::Fatal(_) => weight < 0,
    };
    if applies {
        weight * multiplier
    } else {
        0
    }
}

/// The fault reason one tracker imposes, if any.
fn fault(t: &Tracked<'_>) -> Option<FaultReason> {
    if let CheckState::Fatal(reason) = t.state {
        return Some(FaultReason::Fatal {
            name: t.name.to_owned(),
            reason: reason.clone(),
        });
    }
    if t.weight != 0 {
        return None;
    }
    match t.state {
        CheckState::Init => Some(FaultReason::AwaitingFirstResult {
            name: t.name.to_owned(),
        }),
        state if state.is_up() == t.reverse => Some(FaultReason::TrackerFailed {
            name: t.name.to_owned(),
            reverse: t.reverse,
        }),
        _ => None,
    }
}

/// Effective priority of an instance with configured priority `base` tracking `tracked`.
pub fn effective(base: Priority, tracked: &[Tracked<'_>]) -> Effective {
    effective_with_files(base, tracked, &[])
}

/// Effective priority of an instance with configured priority `base` tracking `tracked`
/// and the files `files`.
pub fn effective_with_files(
    base: Priority,
    tracked: &[Tracked<'_>],
    files: &[TrackedFile<'_>],
) -> Effective {
    let mut faults: Vec<FaultReason> = tracked.iter().filter_map(fault).collect();
    faults.extend(
        files
            .iter()
            .filter(|f| f.status().is_none())
            .map(|f| FaultReason::FileFault {
                name: f.name.to_owned(),
                value: f.value,
            }),
    );
    if !faults.is_empty() {
        return Effective::Fault(faults);
    }
    if base.is_owner() {
        return Effective::Priority(base);
    }
    let files_total: i64 = files.iter().filter_map(TrackedFile::status).sum();
    let total = i64::from(base.get()) + tracked.iter().map(contribution).sum::<i64>() + files_total;
    Effective::Priority(Priority::backup(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: CheckState = CheckState::Up;
    const DOWN: CheckState = CheckState::Down;
    const INIT: CheckState = CheckState::Init;

    fn t<'a>(name: &'a str, weight: i32, reverse: bool, state: &'a CheckState) -> Tracked<'a> {
        Tracked {
            name,
            weight,
            reverse,
            state,
        }
    }

    fn prio(base: u8, tracked: &[Tracked<'_>]) -> u8 {
        match effective(Priority::new(base), tracked) {
            Effective::Priority(p) => p.get(),
            Effective::Fault(r) => panic!("unexpected fault {r:?}"),
        }
    }

    fn file(weight: i32, reverse: bool, value: i64) -> TrackedFile<'static> {
        TrackedFile {
            name: "f",
            weight,
            reverse,
            value,
        }
    }

    fn with_files(base: u8, files: &[TrackedFile<'_>]) -> Effective {
        effective_with_files(Priority::new(base), &[], files)
    }

    #[test]
    fn file_value_times_weight_adjusts_the_priority() {
        // process_update_vrrp_track_file_status: status = value × weight × multiplier.
        assert_eq!(
            with_files(100, &[file(2, false, 5)]),
            Effective::Priority(Priority::new(110))
        );
        assert_eq!(
            with_files(100, &[file(-1, false, 30)]),
            Effective::Priority(Priority::new(70))
        );
        assert_eq!(
            with_files(100, &[file(3, true, 4)]),
            Effective::Priority(Priority::new(88))
        );
        assert_eq!(
            with_files(100, &[file(1, false, 0)]),
            Effective::Priority(Priority::new(100))
        );
        // Capped at +253 per file, clamped to 254 overall.
        assert_eq!(
            with_files(1, &[file(254, false, 1000)]),
            Effective::Priority(Priority::new(254))
        );
    }

    #[test]
    fn file_status_at_minus_254_is_a_fault() {
        assert!(matches!(
            with_files(100, &[file(1, false, -254)]),
            Effective::Fault(_)
        ));
        assert!(matches!(
            with_files(100, &[file(-2, false, 127)]),
            Effective::Fault(_)
        ));
        assert_eq!(
            with_files(100, &[file(1, false, -253)]),
            Effective::Priority(Priority::new(1))
        );
        // Saturating, never wrapping.
        assert!(matches!(
            with_files(100, &[file(254, false, i64::MIN)]),
            Effective::Fault(_)
        ));
    }

    #[test]
    fn file_weight_zero_faults_on_non_zero_and_reverse_on_zero() {
        assert!(matches!(
            with_files(100, &[file(0, false, 3)]),
            Effective::Fault(_)
        ));
        assert_eq!(
            with_files(100, &[file(0, false, 0)]),
            Effective::Priority(Priority::new(100))
        );
        assert!(matches!(
            with_files(100, &[file(0, true, 0)]),
            Effective::Fault(_)
        ));
        assert_eq!(
            with_files(100, &[file(0, true, -9)]),
            Effective::Priority(Priority::new(100))
        );
    }

    #[test]
    fn owner_ignores_file_weights_but_not_file_faults() {
        assert_eq!(
            with_files(255, &[file(5, false, 10)]),
            Effective::Priority(Priority::OWNER)
        );
        assert!(matches!(
            with_files(255, &[file(0, false, 1)]),
            Effective::Fault(_)
        ));
    }

    #[test]
    fn no_trackers_keeps_base() {
        assert_eq!(prio(100, &[]), 100);
    }

    #[test]
    fn positive_weight_adds_while_up_only() {
        // process_script_update_priority: ok → += |w|, ko → -= |w|; init: ok && w > 0 → += w.
        assert_eq!(prio(100, &[t("c", 10, false, &UP)]), 110);
        assert_eq!(prio(100, &[t("c", 10, false, &DOWN)]), 100);
    }

    #[test]
    fn negative_weight_subtracts_while_down_only() {
        // init: !ok && w < 0 → += w; later ok → += |w| back to base.
        assert_eq!(prio(100, &[t("c", -5, false, &DOWN)]), 95);
        assert_eq!(prio(100, &[t("c", -5, false, &UP)]), 100);
    }

    #[test]
    fn reverse_flips_the_sign_not_the_timing() {
        // weight_multiplier = -1: (w > 0) == up → += w * m.
        assert_eq!(prio(100, &[t("c", 10, true, &UP)]), 90);
        assert_eq!(prio(100, &[t("c", 10, true, &DOWN)]), 100);
        assert_eq!(prio(100, &[t("c", -10, true, &DOWN)]), 110);
        assert_eq!(prio(100, &[t("c", -10, true, &UP)]), 100);
    }

    #[test]
    fn weighted_tracker_in_init_contributes_nothing() {
        // Before its first exit, a script has not adjusted total_priority (INIT branch).
        assert_eq!(prio(100, &[t("c", 10, false, &INIT)]), 100);
        assert_eq!(prio(100, &[t("c", -10, false, &INIT)]), 100);
        assert_eq!(prio(100, &[t("c", -10, true, &INIT)]), 100);
    }

    #[test]
    fn contributions_add_up() {
        let tracked = [
            t("a", 10, false, &UP),
            t("b", -20, false, &DOWN),
            t("eth1", -3, false, &DOWN),
            t("d", 7, false, &DOWN),
        ];
        assert_eq!(prio(100, &tracked), 87);
    }

    #[test]
    fn result_is_clamped_to_1_254() {
        // vrrp_set_effective_priority: < 1 → 1, >= 255 → 254.
        assert_eq!(prio(10, &[t("c", -253, false, &DOWN)]), 1);
        assert_eq!(prio(200, &[t("c", 253, false, &UP)]), 254);
        assert_eq!(prio(254, &[t("c", 1, false, &UP)]), 254);
        assert_eq!(prio(1, &[t("c", -1, false, &DOWN)]), 1);
        // Out-of-range weights and many trackers do not overflow.
        let many: Vec<_> = (0..1000).map(|_| t("c", i32::MAX, false, &UP)).collect();
        assert_eq!(prio(100, &many), 254);
        let many: Vec<_> = (0..1000).map(|_| t("c", i32::MIN, false, &DOWN)).collect();
        assert_eq!(prio(100, &many), 1);
    }

    #[test]
    fn owner_priority_is_never_changed_by_weights() {
        // vrrp_set_effective_priority: returns at once for base_priority == VRRP_PRIO_OWNER.
        assert_eq!(prio(255, &[t("c", -50, false, &DOWN)]), 255);
        assert_eq!(prio(255, &[t("c", 50, true, &UP)]), 255);
    }

    #[test]
    fn weight_zero_faults_while_down() {
        // process_script_update_priority: !weight && script_ok != (multiplier == 1) → down_instance.
        assert_eq!(
            effective(Priority::new(100), &[t("chk", 0, false, &DOWN)]),
            Effective::Fault(vec![FaultReason::TrackerFailed {
                name: "chk".into(),
                reverse: false
            }])
        );
        assert_eq!(prio(100, &[t("chk", 0, false, &UP)]), 100);
    }

    #[test]
    fn weight_zero_reverse_faults_while_up() {
        // man keepalived.conf: "'weight 0 reverse' will cause the vrrp instance to be down when
        // the script is up, and vice versa."
        assert_eq!(
            effective(Priority::new(100), &[t("chk", 0, true, &UP)]),
            Effective::Fault(vec![FaultReason::TrackerFailed {
                name: "chk".into(),
                reverse: true
            }])
        );
        assert_eq!(prio(100, &[t("chk", 0, true, &DOWN)]), 100);
    }

    #[test]
    fn weight_zero_waits_for_first_result() {
        // num_script_init: the instance cannot come up until every weight-0 script reported.
        let tracked = [t("a", 0, false, &UP), t("b", 0, false, &INIT)];
        assert_eq!(
            effective(Priority::new(100), &tracked),
            Effective::Fault(vec![FaultReason::AwaitingFirstResult { name: "b".into() }])
        );
        // Also with reverse.
        assert!(matches!(
            effective(Priority::new(100), &[t("b", 0, true, &INIT)]),
            Effective::Fault(_)
        ));
    }

    #[test]
    fn weight_zero_faults_the_owner_too() {
        // down_instance does not depend on the priority.
        assert!(matches!(
            effective(Priority::new(255), &[t("chk", 0, false, &DOWN)]),
            Effective::Fault(_)
        ));
    }

    #[test]
    fn fatal_faults_whatever_the_weight() {
        let fatal = CheckState::Fatal("nginx gone".into());
        for (w, rev) in [(0, false), (0, true), (-5, false), (5, false), (5, true)] {
            assert_eq!(
                effective(Priority::new(100), &[t("nginx", w, rev, &fatal)]),
                Effective::Fault(vec![FaultReason::Fatal {
                    name: "nginx".into(),
                    reason: "nginx gone".into()
                }]),
                "weight {w} reverse {rev}"
            );
        }
        assert!(matches!(
            effective(Priority::new(255), &[t("nginx", 0, false, &fatal)]),
            Effective::Fault(_)
        ));
    }

    #[test]
    fn all_fault_reasons_are_listed() {
        let fatal = CheckState::Fatal("x".into());
        let tracked = [
            t("a", 0, false, &DOWN),
            t("b", 10, false, &UP),
            t("c", -2, false, &fatal),
            t("d", 0, false, &INIT),
        ];
        match effective(Priority::new(100), &tracked) {
            Effective::Fault(reasons) => assert_eq!(reasons.len(), 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fault_reasons_read_well() {
        let r = FaultReason::TrackerFailed {
            name: "chk".into(),
            reverse: true,
        };
        assert_eq!(r.to_string(), "chk is up (weight 0 reverse)");
    }
}
