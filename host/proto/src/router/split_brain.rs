//! Dual-Master ("split brain") detection for one instance, sans-IO.
//!
//! Evidence, from adverts the protocol core accepted (priority > 0):
//! - while **Master**: adverts from another router that did not make us step down — another
//!   Master of lower or equal priority keeps advertising (RFC 5798 §6.4.3 says it should have
//!   become Backup on our adverts; it did not, so it cannot hear us or is misconfigured);
//! - while **Backup**: adverts from two different sources — two Masters that cannot hear each
//!   other, seen from a third router.
//!
//! One stray advert is normal during a preemption (the old Master's last advert crosses the
//! new one's first), so the alarm is raised on [`EVIDENCE`] adverts within the window, and
//! cleared when the window passes without any.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::vrrp::{Priority, State};

/// Adverts of dual-Master evidence needed within the window to raise the alarm.
pub const EVIDENCE: usize = 3;

/// At most this many recent sources are remembered while Backup: two distinct ones are all
/// the two-sources rule needs, so a flood of adverts cannot grow the detector.
const MAX_BACKUP_SOURCES: usize = 8;

/// A change of the alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alarm {
    /// Another Master is advertising this VRID.
    Raised {
        /// Its address (while Master) or the second source (while Backup).
        other: IpAddr,
    },
    /// Only one Master is seen again.
    Cleared,
}

/// The detector of one instance.
#[derive(Debug)]
pub struct SplitBrainDetector {
    window: Duration,
    /// Evidence adverts (time, source).
    evidence: VecDeque<(Instant, IpAddr)>,
    /// Sources of adverts seen while Backup (time, source), for the two-sources rule.
    backup_sources: VecDeque<(Instant, IpAddr)>,
    raised: bool,
    /// How often the alarm was raised.
    pub raised_count: u64,
}

impl SplitBrainDetector {
    /// A detector whose window is three advert intervals (at least 300 ms).
    pub fn new(advert_int: Duration) -> Self {
        Self {
            window: (advert_int * 3).max(Duration::from_millis(300)),
            evidence: VecDeque::new(),
            backup_sources: VecDeque::new(),
            raised: false,
            raised_count: 0,
        }
    }

    /// Whether the alarm is up.
    pub fn is_raised(&self) -> bool {
        self.raised
    }

    /// An advert from `src` with `priority` was accepted; `state` is ours afterwards.
    pub fn observe(
        &mut self,
        now: Instant,
        state: State,
        src: IpAddr,
        priority: Priority,
    ) -> Option<Alarm> {
        if priority == Priority::RELEASE {
            return None;
        }
        match state {
            State::Master => self.push_evidence(now, src),
            State::Backup => {
                // Keep one entry per source (the newest), so the list stays small.
                self.backup_sources.retain(|(_, s)| *s != src);
                if self.backup_sources.len() >= MAX_BACKUP_SOURCES {
                    self.backup_sources.pop_front();
                }
                self.backup_sources.push_back((now, src));
                self.prune(now);
                if self.backup_sources.iter().any(|(_, s)| *s != src) {
                    self.push_evidence(now, src);
                }
            }
            State::Initialize | State::Fault => return None,
        }
        self.prune(now);
        if !self.raised && self.evidence.len() >= EVIDENCE {
            self.raised = true;
            self.raised_count += 1;
            return Some(Alarm::Raised { other: src });
        }
        None
    }

    /// Time passed; clears the alarm once the window holds no evidence.
    pub fn tick(&mut self, now: Instant) -> Option<Alarm> {
        self.prune(now);
        if self.raised && self.evidence.is_empty() {
            self.raised = false;
            return Some(Alarm::Cleared);
        }
        None
    }

    /// When [`tick`](Self::tick) may change something.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.raised {
            return None;
        }
        self.evidence.back().map(|(at, _)| *at + self.window)
    }

    /// Our state changed in a way that ends our part in any dual-Master (we left Master or
    /// Backup): forget the evidence.
    pub fn reset(&mut self) -> Option<Alarm> {
        self.evidence.clear();
        self.backup_sources.clear();
        if self.raised {
            self.raised = false;
            return Some(Alarm::Cleared);
        }
        None
    }

    /// Record evidence; only the newest [`EVIDENCE`] entries matter for raising and the
    /// newest one for clearing, so older ones are dropped (bounded under a flood).
    fn push_evidence(&mut self, now: Instant, src: IpAddr) {
        if self.evidence.len() >= EVIDENCE {
            self.evidence.pop_front();
        }
        self.evidence.push_back((now, src));
    }

    fn prune(&mut self, now: Instant) {
        let horizon = now.checked_sub(self.window);
        // Evidence exactly one window old is stale: its deadline (`at + window`) is due.
        let old = |at: &Instant| horizon.is_some_and(|h| *at <= h);
        while self.evidence.front().is_some_and(|(at, _)| old(at)) {
            self.evidence.pop_front();
        }
        while self.backup_sources.front().is_some_and(|(at, _)| old(at)) {
            self.backup_sources.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn one_crossing_advert_during_preemption_is_not_split_brain() {
        let mut d = SplitBrainDetector::new(Duration::from_secs(1));
        let t = Instant::now();
        assert_eq!(d.observe(t, State::Master, ip(2), Priority::new(100)), None);
        assert!(!d.is_raised());
        assert_eq!(d.tick(t + Duration::from_secs(10)), None);
    }

    #[test]
    fn another_master_advertising_while_we_are_master_raises_then_clears() {
        let mut d = SplitBrainDetector::new(Duration::from_secs(1));
        let t = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(d.observe(t, State::Master, ip(2), Priority::new(99)), None);
        assert_eq!(
            d.observe(t + s, State::Master, ip(2), Priority::new(99)),
            None
        );
        assert_eq!(
            d.observe(t + 2 * s, State::Master, ip(2), Priority::new(99)),
            Some(Alarm::Raised { other: ip(2) })
        );
        assert_eq!(
            d.observe(t + 3 * s, State::Master, ip(2), Priority::new(99)),
            None,
            "raised once"
        );
        assert_eq!(d.raised_count, 1);
        assert_eq!(d.next_deadline(), Some(t + 6 * s));
        assert_eq!(d.tick(t + 5 * s), None, "evidence still in the window");
        assert_eq!(d.tick(t + 7 * s), Some(Alarm::Cleared));
    }

    #[test]
    fn a_backup_hearing_two_masters_raises() {
        let mut d = SplitBrainDetector::new(Duration::from_millis(100));
        let t = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(d.observe(t, State::Backup, ip(1), Priority::new(100)), None);
        assert_eq!(
            d.observe(t + ms(10), State::Backup, ip(2), Priority::new(99)),
            None
        );
        assert_eq!(
            d.observe(t + ms(100), State::Backup, ip(1), Priority::new(100)),
            None
        );
        assert!(matches!(
            d.observe(t + ms(110), State::Backup, ip(2), Priority::new(99)),
            Some(Alarm::Raised { .. })
        ));
    }

    #[test]
    fn a_backup_hearing_one_master_never_raises() {
        let mut d = SplitBrainDetector::new(Duration::from_millis(100));
        let t = Instant::now();
        for i in 0..100 {
            assert_eq!(
                d.observe(
                    t + Duration::from_millis(i * 100),
                    State::Backup,
                    ip(1),
                    Priority::new(100)
                ),
                None
            );
        }
    }

    #[test]
    fn priority_zero_and_fault_are_not_evidence() {
        let mut d = SplitBrainDetector::new(Duration::from_secs(1));
        let t = Instant::now();
        for _ in 0..5 {
            assert_eq!(d.observe(t, State::Master, ip(2), Priority::new(0)), None);
            assert_eq!(d.observe(t, State::Fault, ip(2), Priority::new(50)), None);
        }
        assert!(!d.is_raised());
    }

    #[test]
    fn a_flood_of_adverts_keeps_the_detector_bounded() {
        let mut d = SplitBrainDetector::new(Duration::from_secs(1));
        let t = Instant::now();
        for i in 0..10_000u32 {
            let src = IpAddr::from((0xc000_0200u32 + i).to_be_bytes());
            d.observe(t, State::Backup, src, Priority::new(100));
            d.observe(t, State::Master, src, Priority::new(100));
        }
        assert!(d.evidence.len() <= EVIDENCE);
        assert!(d.backup_sources.len() <= MAX_BACKUP_SOURCES);
        assert!(d.is_raised());
    }

    #[test]
    fn leaving_the_role_clears() {
        let mut d = SplitBrainDetector::new(Duration::from_secs(1));
        let t = Instant::now();
        for _ in 0..3 {
            d.observe(t, State::Master, ip(2), Priority::new(99));
        }
        assert!(d.is_raised());
        assert_eq!(d.reset(), Some(Alarm::Cleared));
        assert_eq!(d.reset(), None);
    }
}
