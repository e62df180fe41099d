//! The watchdog keep-alive, driven by the protocol loop itself.
//!
//! systemd restarts a service that sends no `WATCHDOG=1` within `WatchdogSec`. A timer task
//! of its own would keep pinging while the loop that matters is stuck, so there is none: the
//! router driver polls [`Watchdog::due`] as one more input of its `select!` and pings from
//! there. A driver blocked in a handler, or awaiting something that never completes, stops
//! polling — no ping, and systemd restarts the daemon (whose start-up removes the VIPs the
//! hung run left behind).

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::ServiceManager;

/// Pings are sent this many times per watchdog timeout (`sd_watchdog_enabled(3)` advises
/// half the timeout).
pub const PINGS_PER_TIMEOUT: u32 = 2;

/// The keep-alive schedule of one loop.
#[derive(Debug)]
pub struct Watchdog {
    manager: ServiceManager,
    every: Option<Interval>,
}

impl Watchdog {
    /// Pings `manager` every half of its watchdog timeout; never if it has none.
    pub fn new(manager: ServiceManager) -> Self {
        let every = manager.watchdog_timeout().map(|timeout| {
            let period = (timeout / PINGS_PER_TIMEOUT).max(Duration::from_millis(1));
            let mut interval = tokio::time::interval_at(Instant::now(), period);
            // After a late tick, the next one is a whole period later (no burst to catch up).
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self { manager, every }
    }

    /// The ping period, if the watchdog is on.
    pub fn period(&self) -> Option<Duration> {
        self.every.as_ref().map(Interval::period)
    }

    /// Resolves when the next ping is due; never when the watchdog is off.
    pub async fn due(&mut self) {
        match &mut self.every {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Send the keep-alive: call it from the loop that [`Watchdog::due`] resolved in.
    pub fn ping(&self) {
        self.manager.watchdog_ping();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pings_are_due_every_half_timeout() {
        let manager = ServiceManager::default().with_watchdog(Some(Duration::from_secs(4)));
        let mut watchdog = Watchdog::new(manager);
        assert_eq!(watchdog.period(), Some(Duration::from_secs(2)));
        let start = Instant::now();
        watchdog.due().await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the first ping is due at once"
        );
        watchdog.due().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_timeout_no_ping_is_ever_due() {
        let mut watchdog = Watchdog::new(ServiceManager::default());
        assert_eq!(watchdog.period(), None);
        let due = tokio::time::timeout(Duration::from_secs(3600), watchdog.due()).await;
        assert!(due.is_err());
    }
}
