//! One checker's state, as keepalived's check module keeps it (`check/check_tcp.c`
//! `tcp_epilog`, the same in every checker; `check/check_data.c` initial state).
//!
//! - An up checker goes down after `retry` + 1 consecutive failures, the retries spaced by
//!   `delay_before_retry`; a down checker comes back on one success. Every other check
//!   waits `delay_loop`.
//! - Initially (`retry_it` = `retry`) one failure is enough: the first result decides.
//! - With `alpha` the checker starts down (its real server waits for a first success);
//!   without, it starts up (its real server takes traffic before its first check).

use std::time::Duration;

use wasmalived_config::lvs::CheckerTiming;

/// When the next check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// After `delay_loop`.
    DelayLoop,
    /// After `delay_before_retry` (a failure with retries left).
    Retry,
}

/// What one result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The checker's new up/down state when it changed.
    pub changed: Option<bool>,
    /// The first result confirmed the initial state (keepalived notifies then too).
    pub first: bool,
    /// When to check again.
    pub next: Next,
}

/// A checker's up/down state and retry counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerState {
    up: bool,
    has_run: bool,
    retry_it: u32,
    retry: u32,
}

impl CheckerState {
    /// The initial state for `timing`.
    pub fn new(timing: &CheckerTiming) -> Self {
        CheckerState {
            up: !timing.alpha,
            has_run: false,
            retry_it: timing.retry,
            retry: timing.retry,
        }
    }

    /// Whether the checker is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether a result was recorded.
    pub fn has_run(&self) -> bool {
        self.has_run
    }

    /// Record one result.
    pub fn record(&mut self, success: bool) -> Step {
        let first = !self.has_run;
        let mut changed = None;
        let next = if success || self.retry_it >= self.retry {
            self.retry_it = 0;
            if success != self.up {
                self.up = success;
                changed = Some(success);
            }
            Next::DelayLoop
        } else {
            self.retry_it += 1;
            Next::Retry
        };
        self.has_run = true;
        Step {
            changed,
            first: first && changed.is_none() && next == Next::DelayLoop,
            next,
        }
    }

    /// The delay before the next check after `step`.
    pub fn delay(timing: &CheckerTiming, step: &Step) -> Duration {
        match step.next {
            Next::DelayLoop => timing.delay_loop,
            Next::Retry => timing.delay_before_retry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(retry: u32, alpha: bool) -> CheckerTiming {
        CheckerTiming {
            delay_loop: Duration::from_secs(6),
            retry,
            delay_before_retry: Duration::from_secs(1),
            warmup: Duration::ZERO,
            connect_timeout: Duration::from_secs(5),
            alpha,
        }
    }

    #[test]
    fn the_first_failure_takes_an_initially_up_checker_down() {
        let mut c = CheckerState::new(&timing(3, false));
        assert!(c.is_up());
        let s = c.record(false);
        assert_eq!((s.changed, s.next), (Some(false), Next::DelayLoop));
        assert!(!c.is_up());
    }

    #[test]
    fn an_up_checker_goes_down_after_retry_plus_one_failures() {
        let mut c = CheckerState::new(&timing(2, false));
        assert_eq!(c.record(true).changed, None);
        assert!(!c.record(true).first);
        // retry 2: two retries spaced by delay_before_retry, the third failure counts.
        assert_eq!(c.record(false).next, Next::Retry);
        assert_eq!(c.record(false).next, Next::Retry);
        let s = c.record(false);
        assert_eq!((s.changed, s.next), (Some(false), Next::DelayLoop));
        // A success in between resets the count.
        let mut c = CheckerState::new(&timing(1, false));
        c.record(true);
        assert_eq!(c.record(false).next, Next::Retry);
        assert_eq!(c.record(true).changed, None);
        assert_eq!(c.record(false).next, Next::Retry);
    }

    #[test]
    fn a_down_checker_comes_back_on_one_success() {
        let mut c = CheckerState::new(&timing(5, false));
        c.record(false);
        assert!(!c.is_up());
        assert_eq!(c.record(true).changed, Some(true));
        assert_eq!(c.record(false).next, Next::Retry, "up again: retries first");
    }

    #[test]
    fn alpha_starts_down_and_waits_for_a_success() {
        let mut c = CheckerState::new(&timing(1, true));
        assert!(!c.is_up());
        let s = c.record(false);
        assert_eq!((s.changed, s.first), (None, true));
        assert_eq!(c.record(true).changed, Some(true));
    }

    #[test]
    fn retry_zero_goes_down_on_every_failure() {
        let mut c = CheckerState::new(&timing(0, false));
        c.record(true);
        assert_eq!(c.record(false).changed, Some(false));
    }
}
