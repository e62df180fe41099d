//! Rise/fall status of one check, exactly as keepalived keeps it (sans-IO: no clock, no tokio).
//!
//! keepalived keeps one counter per `vrrp_script`, `result`, in `[0, rise + fall − 1]`; the
//! script is OK iff `result >= rise`. The updates are *not* a plain ±1 saturating counter — they
//! snap to the ends of the range, which is what makes `rise`/`fall` count **consecutive**
//! results (keepalived `keepalived/vrrp/vrrp_scheduler.c`, `vrrp_script_child_thread`):
//!
//! - success: if `result < rise − 1` → `result += 1`; otherwise `result = rise + fall − 1`
//!   (the jump from `rise − 1` is the down→up transition, reported via
//!   `update_script_priorities(vscript, true)`);
//! - failure: if `result > rise` → `result −= 1`; otherwise `result = 0` (the jump from `rise`
//!   is the up→down transition, reported via `update_script_priorities(vscript, false)`).
//!
//! So an up check needs `fall` consecutive failures to go down (one success in between refills
//! it), and a down check needs `rise` consecutive successes to come up (one failure empties it).
//!
//! Initial state (`vrrp_scheduler.c`, `vrrp_init_script`): a script starts in
//! `SCRIPT_INIT_STATE_INIT` with `result = rise − 1` ("one success is enough"): its first
//! success makes it up whatever `rise` is, and — because the failure branch also reports while
//! `init_state` is INIT — its first failure makes it down at once whatever `fall` is. Until its
//! first result it is neither up nor down ([`CheckState::Init`]); trackers treat that as
//! "unknown" (see [`super::priority`]). With `init_fail` (`vrrp_parser.c`,
//! `init_state = SCRIPT_INIT_STATE_FAILED`) it starts at `result = 0`: down, needing `rise`
//! successes.
//!
//! Reload (`keepalived/vrrp/vrrp.c`, `clear_diff_script`): a script with the same name and the
//! same command keeps its state; the counter is remapped onto the new `rise`/`fall` keeping its
//! distance from the threshold — see [`CheckStatus::carry_over`].
//!
//! `fatal` (ours, issue 4 "stop-self"; keepalived has no such verdict): a fatal verdict empties
//! the counter like a failure that ends the `fall` count at once, and marks the check
//! [`CheckState::Fatal`] until it is up again, i.e. after `rise` consecutive successes.

use std::fmt;

/// The state of a check as trackers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckState {
    /// No result yet (keepalived `SCRIPT_INIT_STATE_INIT`): neither up nor down.
    Init,
    /// OK: `result >= rise`.
    Up,
    /// Not OK: `result < rise`.
    Down,
    /// A fatal verdict was reported and the check has not been up since; carries the reason.
    Fatal(String),
}

impl CheckState {
    /// True only for [`CheckState::Up`].
    pub fn is_up(&self) -> bool {
        matches!(self, CheckState::Up)
    }

    /// The state without its payload, for comparisons that ignore the fatal reason.
    pub fn kind(&self) -> StateKind {
        match self {
            CheckState::Init => StateKind::Init,
            CheckState::Up => StateKind::Up,
            CheckState::Down => StateKind::Down,
            CheckState::Fatal(_) => StateKind::Fatal,
        }
    }
}

impl fmt::Display for CheckState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckState::Init => f.write_str("init"),
            CheckState::Up => f.write_str("up"),
            CheckState::Down => f.write_str("down"),
            CheckState::Fatal(reason) => write!(f, "fatal ({reason})"),
        }
    }
}

/// [`CheckState`] without the fatal reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// See [`CheckState::Init`].
    Init,
    /// See [`CheckState::Up`].
    Up,
    /// See [`CheckState::Down`].
    Down,
    /// See [`CheckState::Fatal`].
    Fatal,
}

/// One check result fed to [`CheckStatus::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0 / plugin verdict `ok`.
    Success,
    /// Non-zero exit, timeout, trap, plugin verdict `fail`.
    Failure,
    /// Plugin verdict `fatal` (stop-self), with its reason.
    Fatal(String),
}

/// A change of [`StateKind`] caused by one result (what keepalived reports with
/// `update_script_priorities`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTransition {
    /// State before the result.
    pub from: CheckState,
    /// State after the result.
    pub to: CheckState,
}

impl CheckTransition {
    /// True if the check became up.
    pub fn up(&self) -> bool {
        self.to.is_up()
    }
}

/// Invalid rise/fall parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// keepalived accepts `rise` in 1..=INT_MAX (`vrrp_vscript_rise_handler`).
    #[error("rise must be at least 1, got {0}")]
    ZeroRise(u32),
    /// keepalived accepts `fall` in 1..=INT_MAX (`vrrp_vscript_fall_handler`).
    #[error("fall must be at least 1, got {0}")]
    ZeroFall(u32),
}

/// Whether the check has reported since it started (keepalived's `init_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `SCRIPT_INIT_STATE_INIT`: no result yet.
    Init,
    /// `SCRIPT_INIT_STATE_DONE` (and `SCRIPT_INIT_STATE_FAILED`, which behaves the same with
    /// `result = 0`).
    Done,
}

/// keepalived's rise/fall counter for one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStatus {
    rise: u64,
    fall: u64,
    /// keepalived's `vscript->result`, in `[0, rise + fall − 1]`.
    result: u64,
    phase: Phase,
    fatal: Option<String>,
}

impl CheckStatus {
    /// A fresh status: [`CheckState::Init`] at `rise − 1`, or with `init_fail` down at 0.
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Result<Self, StatusError> {
        if rise == 0 {
            return Err(StatusError::ZeroRise(rise));
        }
        if fall == 0 {
            return Err(StatusError::ZeroFall(fall));
        }
        let (rise, fall) = (u64::from(rise), u64::from(fall));
        Ok(if init_fail {
            CheckStatus {
                rise,
                fall,
                result: 0,
                phase: Phase::Done,
                fatal: None,
            }
        } else {
            CheckStatus {
                rise,
                fall,
                result: rise - 1,
                phase: Phase::Init,
                fatal: None,
            }
        })
    }

    fn top(&self) -> u64 {
        self.rise + self.fall - 1
    }

    /// The current state.
    pub fn state(&self) -> CheckState {
        match (&self.phase, &self.fatal) {
            (Phase::Init, _) => CheckState::Init,
            (Phase::Done, Some(reason)) => CheckState::Fatal(reason.clone()),
            (Phase::Done, None) if self.result >= self.rise => CheckState::Up,
            (Phase::Done, None) => CheckState::Down,
        }
    }

    /// keepalived's raw counter (for logs and the control socket).
    pub fn counter(&self) -> u64 {
        self.result
    }

    /// Configured `rise`.
    pub fn rise(&self) -> u32 {
        u32::try_from(self.rise).unwrap_or(u32::MAX)
    }

    /// Configured `fall`.
    pub fn fall(&self) -> u32 {
        u32::try_from(self.fall).unwrap_or(u32::MAX)
    }

    /// Apply one result; returns the transition if the state kind changed.
    pub fn record(&mut self, outcome: Outcome) -> Option<CheckTransition> {
        let before = self.state();
        match outcome {
            Outcome::Success => {
                if self.result + 1 < self.rise {
                    self.result += 1;
                } else {
                    self.result = self.top();
                    // Up again: a pending fatal is over (issue 4: "leaves Fault when the check
                    // is OK again (rise)").
                    self.fatal = None;
                }
            }
            Outcome::Failure => {
                if self.result > self.rise {
                    self.result -= 1;
                } else {
                    self.result = 0;
                }
            }
            Outcome::Fatal(reason) => {
                self.result = 0;
                self.fatal = Some(reason);
            }
        }
        self.phase = Phase::Done;
        let after = self.state();
        (before.kind() != after.kind()).then_some(CheckTransition {
            from: before,
            to: after,
        })
    }

    /// The status to keep across a reload that keeps this check (same name and command) with
    /// possibly new `rise`/`fall` — keepalived `vrrp.c` `clear_diff_script`:
    /// - never reported: start again from the new `rise − 1` (still [`CheckState::Init`]);
    /// - down (`result < rise`): 0 stays 0, otherwise `new_rise − (old_rise − result)`, at
    ///   least 0;
    /// - up: the top stays the top, otherwise `new_rise + (result − old_rise)`, at most the new
    ///   top.
    ///
    /// The new `init_fail` is ignored for a check that has already reported (keepalived sets
    /// `init_state = DONE`). A fatal mark is kept while the check stays down.
    pub fn carry_over(&self, rise: u32, fall: u32) -> Result<CheckStatus, StatusError> {
        let mut next = CheckStatus::new(rise, fall, false)?;
        if self.phase == Phase::Init {
            return Ok(next);
        }
        next.phase = Phase::Done;
        next.result = if self.result < self.rise {
            if self.result == 0 {
                0
            } else {
                next.rise.saturating_sub(self.rise - self.result)
            }
        } else if self.result == self.top() {
            next.top()
        } else {
            (next.rise + (self.result - self.rise)).min(next.top())
        };
        if next.result < next.rise {
            next.fatal = self.fatal.clone();
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Outcome {
        Outcome::Success
    }
    fn ko() -> Outcome {
        Outcome::Failure
    }

    /// Feeds outcomes, returns the state kind after each one.
    fn run(status: &mut CheckStatus, outcomes: &[Outcome]) -> Vec<StateKind> {
        outcomes
            .iter()
            .map(|o| {
                status.record(o.clone());
                status.state().kind()
            })
            .collect()
    }

    #[test]
    fn zero_rise_or_fall_is_rejected() {
        // keepalived vrrp_parser.c: rise and fall are read with a minimum of 1.
        assert_eq!(CheckStatus::new(0, 1, false), Err(StatusError::ZeroRise(0)));
        assert_eq!(CheckStatus::new(1, 0, false), Err(StatusError::ZeroFall(0)));
    }

    #[test]
    fn starts_in_init_at_rise_minus_one() {
        // vrrp_init_script: result = rise - 1, init_state INIT.
        let s = CheckStatus::new(3, 2, false).unwrap();
        assert_eq!(s.state(), CheckState::Init);
        assert_eq!(s.counter(), 2);
    }

    #[test]
    fn first_success_is_enough_whatever_rise() {
        // vrrp_init_script comment "one success is enough": result = rise-1, then the success
        // branch jumps to rise+fall-1 and reports up.
        let mut s = CheckStatus::new(5, 3, false).unwrap();
        let t = s.record(ok()).unwrap();
        assert!(t.up());
        assert_eq!((t.from, t.to), (CheckState::Init, CheckState::Up));
        assert_eq!(s.counter(), 7);
    }

    #[test]
    fn first_failure_is_down_at_once_whatever_fall() {
        // vrrp_script_child_thread: failure while init_state == INIT reports down, result = 0.
        let mut s = CheckStatus::new(2, 5, false).unwrap();
        let t = s.record(ko()).unwrap();
        assert_eq!((t.from, t.to), (CheckState::Init, CheckState::Down));
        assert_eq!(s.counter(), 0);
        // Now it needs `rise` consecutive successes.
        assert_eq!(run(&mut s, &[ok(), ok()]), [StateKind::Down, StateKind::Up]);
    }

    #[test]
    fn init_fail_starts_down_at_zero_and_needs_rise_successes() {
        // vrrp_parser.c init_fail: init_state FAILED; vrrp_init_script: result = 0.
        let mut s = CheckStatus::new(3, 2, true).unwrap();
        assert_eq!(s.state(), CheckState::Down);
        assert_eq!(s.counter(), 0);
        // A failure while FAILED (not INIT) is no transition.
        assert_eq!(s.record(ko()), None);
        assert_eq!(
            run(&mut s, &[ok(), ok(), ok()]),
            [StateKind::Down, StateKind::Down, StateKind::Up]
        );
    }

    #[test]
    fn init_fail_with_rise_one_comes_up_on_first_success() {
        let mut s = CheckStatus::new(1, 1, true).unwrap();
        let t = s.record(ok()).unwrap();
        assert_eq!((t.from, t.to), (CheckState::Down, CheckState::Up));
    }

    #[test]
    fn fall_counts_consecutive_failures() {
        // Failure branch: result > rise → result--; result == rise → report down, result = 0.
        let mut s = CheckStatus::new(2, 3, false).unwrap();
        s.record(ok());
        assert_eq!(s.counter(), 4);
        assert_eq!(
            run(&mut s, &[ko(), ko(), ko()]),
            [StateKind::Up, StateKind::Up, StateKind::Down]
        );
    }

    #[test]
    fn one_success_refills_the_fall_budget() {
        // Success branch: result >= rise - 1 and != top → result = rise + fall - 1 (no ±1).
        let mut s = CheckStatus::new(2, 3, false).unwrap();
        s.record(ok());
        run(&mut s, &[ko(), ko()]);
        assert_eq!(s.counter(), 2);
        assert_eq!(s.record(ok()), None);
        assert_eq!(s.counter(), 4);
        // So two more failures are not enough…
        assert_eq!(run(&mut s, &[ko(), ko()]), [StateKind::Up, StateKind::Up]);
        // …the third is.
        assert!(!s.record(ko()).unwrap().up());
    }

    #[test]
    fn rise_counts_consecutive_successes() {
        let mut s = CheckStatus::new(3, 1, true).unwrap();
        // ok ok ko: the failure empties the counter (result <= rise → result = 0).
        assert_eq!(
            run(&mut s, &[ok(), ok(), ko()]),
            [StateKind::Down, StateKind::Down, StateKind::Down]
        );
        assert_eq!(s.counter(), 0);
        assert_eq!(
            run(&mut s, &[ok(), ok(), ok()]),
            [StateKind::Down, StateKind::Down, StateKind::Up]
        );
    }

    #[test]
    fn counter_stays_in_range_under_long_runs() {
        let mut s = CheckStatus::new(2, 3, false).unwrap();
        for _ in 0..10 {
            s.record(ok());
            assert!(s.counter() <= 4);
        }
        for _ in 0..10 {
            s.record(ko());
        }
        assert_eq!(s.counter(), 0);
    }

    #[test]
    fn transitions_only_on_kind_change() {
        let mut s = CheckStatus::new(1, 2, false).unwrap();
        assert!(s.record(ok()).is_some());
        assert!(s.record(ok()).is_none());
        assert!(s.record(ko()).is_none());
        assert!(s.record(ko()).is_some());
        assert!(s.record(ko()).is_none());
    }

    #[test]
    fn fatal_goes_down_at_once_and_stays_fatal_until_rise_successes() {
        let mut s = CheckStatus::new(2, 3, false).unwrap();
        s.record(ok());
        let t = s.record(Outcome::Fatal("nginx gone".into())).unwrap();
        assert_eq!(t.from, CheckState::Up);
        assert_eq!(t.to, CheckState::Fatal("nginx gone".into()));
        // A failure keeps it fatal; one success is not enough with rise 2.
        assert_eq!(s.record(ko()), None);
        assert_eq!(s.record(ok()), None);
        assert!(matches!(s.state(), CheckState::Fatal(_)));
        let t = s.record(ok()).unwrap();
        assert_eq!(t.to, CheckState::Up);
    }

    #[test]
    fn fatal_from_init_and_repeated_fatal_is_not_a_new_transition() {
        let mut s = CheckStatus::new(1, 1, false).unwrap();
        assert_eq!(
            s.record(Outcome::Fatal("a".into())).unwrap().from,
            CheckState::Init
        );
        assert_eq!(s.record(Outcome::Fatal("b".into())), None);
        assert_eq!(s.state(), CheckState::Fatal("b".into()));
    }

    #[test]
    fn fatal_from_down_is_a_transition() {
        let mut s = CheckStatus::new(1, 1, true).unwrap();
        let t = s.record(Outcome::Fatal("x".into())).unwrap();
        assert_eq!(t.from, CheckState::Down);
    }

    #[test]
    fn carry_over_keeps_init_and_restarts_at_new_rise_minus_one() {
        // clear_diff_script: old INIT → new INIT with result = new rise - 1.
        let s = CheckStatus::new(2, 2, false).unwrap();
        let n = s.carry_over(4, 1).unwrap();
        assert_eq!(n.state(), CheckState::Init);
        assert_eq!(n.counter(), 3);
    }

    #[test]
    fn carry_over_keeps_distance_from_threshold() {
        // clear_diff_script, down side: new = new_rise - (old_rise - old_result), >= 0.
        let mut s = CheckStatus::new(3, 2, true).unwrap();
        s.record(ok()); // result 1, two short of rise 3
        let n = s.carry_over(5, 2).unwrap();
        assert_eq!((n.state(), n.counter()), (CheckState::Down, 3));
        let n = s.carry_over(1, 2).unwrap();
        assert_eq!((n.state(), n.counter()), (CheckState::Down, 0));
        // result 0 stays 0.
        let z = CheckStatus::new(3, 2, true).unwrap();
        assert_eq!(z.carry_over(1, 1).unwrap().counter(), 0);

        // Up side: top stays top; otherwise new_rise + (result - old_rise), <= new top.
        let mut u = CheckStatus::new(2, 4, false).unwrap();
        u.record(ok()); // top = 5
        assert_eq!(u.carry_over(3, 3).unwrap().counter(), 5);
        u.record(ko()); // 4 = rise + 2
        let n = u.carry_over(3, 10).unwrap();
        assert_eq!((n.state(), n.counter()), (CheckState::Up, 5));
        let n = u.carry_over(3, 2).unwrap();
        assert_eq!((n.state(), n.counter()), (CheckState::Up, 4));
    }

    #[test]
    fn carry_over_ignores_new_init_fail_and_keeps_fatal_while_down() {
        let mut s = CheckStatus::new(2, 2, false).unwrap();
        s.record(Outcome::Fatal("boom".into()));
        let n = s.carry_over(2, 2).unwrap();
        assert_eq!(n.state(), CheckState::Fatal("boom".into()));
        assert_eq!(
            CheckStatus::new(1, 1, false)
                .unwrap()
                .carry_over(0, 1)
                .unwrap_err(),
            StatusError::ZeroRise(0)
        );
    }

    #[test]
    fn extreme_rise_and_fall_do_not_overflow() {
        let mut s = CheckStatus::new(u32::MAX, u32::MAX, false).unwrap();
        assert!(s.record(ok()).unwrap().up());
        assert_eq!(s.counter(), 2 * u64::from(u32::MAX) - 1);
        assert_eq!(s.record(ko()), None);
    }
}
