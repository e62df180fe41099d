//! Gratuitous ARP / unsolicited NA pacing (keepalived `vrrp_garp_interval` /
//! `vrrp_gna_interval`), sans-IO: a burst of `repeat` announcements of a VIP set, the first at
//! once and the rest `interval` apart. With no interval the whole burst is due at once.
//!
//! One instance can have several bursts in flight: the one its last state change started
//! (a newer one replaces it) and those a reload started for VIPs it added in place.

use std::time::{Duration, Instant};

/// Where a burst comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurstKind {
    /// Becoming Master, `garp_master_delay`, `garp_master_refresh`: a newer one replaces it.
    State,
    /// VIPs added by a reload while Master: runs to the end beside the others.
    Reload,
}

/// One paced burst.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Burst<V> {
    kind: BurstKind,
    vips: Vec<V>,
    remaining: u32,
    next: Instant,
}

/// The bursts of one instance.
#[derive(Debug, Clone)]
pub struct Announcements<V> {
    bursts: Vec<Burst<V>>,
}

impl<V> Default for Announcements<V> {
    fn default() -> Self {
        Self { bursts: Vec::new() }
    }
}

impl<V: Clone> Announcements<V> {
    /// Start a burst of `repeat` announcements of `vips` spaced by `interval`; returns how
    /// many are due now (all of them without an interval, else one).
    pub fn start(
        &mut self,
        now: Instant,
        kind: BurstKind,
        vips: Vec<V>,
        repeat: u32,
        interval: Duration,
    ) -> u32 {
        if kind == BurstKind::State {
            self.bursts.retain(|b| b.kind != BurstKind::State);
        }
        if repeat == 0 {
            return 0;
        }
        if interval.is_zero() {
            return repeat;
        }
        if repeat > 1 {
            self.bursts.push(Burst {
                kind,
                vips,
                remaining: repeat - 1,
                next: now + interval,
            });
        }
        1
    }

    /// The VIP sets due at `now`, one entry per announcement, each burst re-armed
    /// `interval` later.
    pub fn due(&mut self, now: Instant, interval: Duration) -> Vec<Vec<V>> {
        let mut out = Vec::new();
        for burst in &mut self.bursts {
            while burst.remaining > 0 && burst.next <= now {
                out.push(burst.vips.clone());
                burst.remaining -= 1;
                burst.next += interval.max(Duration::from_millis(1));
            }
        }
        self.bursts.retain(|b| b.remaining > 0);
        out
    }

    /// The next announcement's time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.bursts.iter().map(|b| b.next).min()
    }

    /// Forget every pending announcement (the instance left Master).
    pub fn clear(&mut self) {
        self.bursts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_interval_the_whole_burst_is_due_at_once() {
        let mut a = Announcements::<u8>::default();
        let now = Instant::now();
        assert_eq!(
            a.start(now, BurstKind::State, vec![1], 5, Duration::ZERO),
            5
        );
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn paced_burst_spreads_the_rest_and_a_new_state_burst_replaces_it() {
        let mut a = Announcements::default();
        let now = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(a.start(now, BurstKind::State, vec![1u8], 3, ms(100)), 1);
        assert_eq!(a.start(now, BurstKind::Reload, vec![2u8], 2, ms(100)), 1);
        assert_eq!(a.next_deadline(), Some(now + ms(100)));
        assert_eq!(a.due(now + ms(100), ms(100)), vec![vec![1], vec![2]]);
        // A new state burst replaces the old one; the reload burst (done) is gone.
        assert_eq!(
            a.start(now + ms(150), BurstKind::State, vec![3], 2, ms(100)),
            1
        );
        assert_eq!(a.due(now + ms(250), ms(100)), vec![vec![3]]);
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn clear_forgets_everything() {
        let mut a = Announcements::default();
        let now = Instant::now();
        a.start(
            now,
            BurstKind::Reload,
            vec![1u8],
            4,
            Duration::from_millis(10),
        );
        a.clear();
        assert_eq!(a.next_deadline(), None);
        assert!(a
            .due(now + Duration::from_secs(1), Duration::ZERO)
            .is_empty());
    }
}
