//! The timer table (STYLE principle 2): one optional deadline per timer kind. The I/O loop
//! sleeps until [`TimerTable::next`] and then calls `Instance::handle_timeout(now)`.
//! Model: quinn-proto's `connection/timer.rs`.

use std::time::Instant;

/// The timers of one VRRP instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Adver_Timer (Master): send the next advertisement (RFC 5798 §6.2).
    Advert,
    /// Master_Down_Timer (Backup): the Master is presumed dead (RFC 5798 §6.2).
    MasterDown,
    /// keepalived `garp_master_delay`: the second burst of gratuitous ARP / NA after becoming
    /// Master (default 5 s).
    GarpDelay,
    /// keepalived `garp_lower_prio_delay`: the second burst after answering a lower-priority
    /// advert as Master (default 5 s).
    GarpLowerPrio,
    /// keepalived `garp_master_refresh`: periodic gratuitous ARP / NA while Master.
    GarpRefresh,
}

impl Timer {
    /// Every kind, in the order ties are processed.
    pub const ALL: [Timer; 5] = [
        Timer::MasterDown,
        Timer::Advert,
        Timer::GarpDelay,
        Timer::GarpLowerPrio,
        Timer::GarpRefresh,
    ];

    fn index(self) -> usize {
        match self {
            Timer::MasterDown => 0,
            Timer::Advert => 1,
            Timer::GarpDelay => 2,
            Timer::GarpLowerPrio => 3,
            Timer::GarpRefresh => 4,
        }
    }
}

/// One deadline per [`Timer`] kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 5],
}

impl TimerTable {
    /// Arm `timer` to fire at `at`, replacing any earlier deadline.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarm `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// Disarm every timer.
    pub fn stop_all(&mut self) {
        self.deadlines = [None; 5];
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The earliest timer due at `now` (ties in [`Timer::ALL`] order), disarmed on return.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let due = Timer::ALL
            .into_iter()
            .filter_map(|t| self.get(t).filter(|d| *d <= now).map(|d| (d, t)))
            .min_by_key(|(d, t)| (*d, t.index()))?
            .1;
        self.stop(due);
        Some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_disarmed() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Advert, t0 + Duration::from_secs(2));
        t.set(Timer::GarpDelay, t0 + Duration::from_secs(1));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_expired(t0), None);
        assert_eq!(
            t.pop_expired(t0 + Duration::from_secs(5)),
            Some(Timer::GarpDelay)
        );
        assert_eq!(
            t.pop_expired(t0 + Duration::from_secs(5)),
            Some(Timer::Advert)
        );
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(5)), None);
        t.set(Timer::Advert, t0);
        t.set(Timer::MasterDown, t0);
        assert_eq!(t.pop_expired(t0), Some(Timer::MasterDown), "tie order");
        t.stop_all();
        assert_eq!(t.next(), None);
    }
}
