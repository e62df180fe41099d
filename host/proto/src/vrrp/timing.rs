//! Skew time and master-down interval, computed in exactly one place (STYLE principle 3).
//!
//! - VRRPv2 (RFC 3768 §6.1): `Skew_Time = (256 - Priority) / 256` seconds — independent of
//!   the advertisement interval — and `Master_Down_Interval = 3 * Advertisement_Interval +
//!   Skew_Time`, the interval in whole [`Seconds`].
//! - VRRPv3 (RFC 5798 §6.1, RFC 9568 §6.1): `Skew_Time = ((256 - Priority) *
//!   Master_Adver_Interval) / 256` and `Master_Down_Interval = 3 * Master_Adver_Interval +
//!   Skew_Time`, the interval in [`Centiseconds`] as learned from the Master.
//!
//! Precision: the RFC divides in centiseconds; keepalived (`VRRP_TIMER_SKEW` in its
//! `vrrp.h`) keeps microseconds, which is up to 10 ms longer. We compute in microseconds
//! like keepalived, so a mixed pair agrees on who times out first and our takeover lands
//! where keepalived's would (the failover figures in ../shared/lab/NOTES.md).

use std::time::Duration;

use super::types::{AdvertInterval, Priority};

/// How many advertisement intervals make up the master-down interval.
pub const DOWN_TIMER_ADVERTS: u64 = 3;

/// The timer values derived from a priority and the Master's advertisement interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Skew_Time: how long a Backup waits after a priority-0 advert (RFC 5798 §6.4.2).
    pub skew: Duration,
    /// Master_Down_Interval: how long a Backup waits without adverts before taking over.
    pub master_down: Duration,
}

/// Skew time and master-down interval for a router of `priority` whose current Master
/// advertises every `master_adver_int` (VRRPv2: the configured interval, which must match;
/// VRRPv3: the interval learned from the Master's adverts, RFC 5798 §6.4.2).
///
/// `priority` is our own (effective) priority; 0 is treated as the extreme 256-0 = 256.
pub fn timing(priority: Priority, master_adver_int: AdvertInterval) -> Timing {
    let weight = 256 - u64::from(priority.get());
    let skew_us = match master_adver_int {
        // RFC 3768 §6.1: (256 - Priority) / 256 seconds.
        AdvertInterval::V2(_) => weight * 1_000_000 / 256,
        // RFC 5798 §6.1: ((256 - Priority) * Master_Adver_Interval) / 256, 1 cs = 10_000 µs.
        AdvertInterval::V3(cs) => weight * u64::from(cs.get()) * 10_000 / 256,
    };
    let skew = Duration::from_micros(skew_us);
    let interval = master_adver_int.duration();
    Timing {
        skew,
        master_down: interval * DOWN_TIMER_ADVERTS as u32 + skew,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::types::{Centiseconds, Seconds};

    fn v3(cs: u16) -> AdvertInterval {
        AdvertInterval::V3(Centiseconds::new(cs).unwrap())
    }
    fn v2(s: u8) -> AdvertInterval {
        AdvertInterval::V2(Seconds::new(s).unwrap())
    }

    #[test]
    fn v3_priority_1_with_40_95_s_rfc5798_6_1() {
        // (255 * 4095 cs) / 256 = 4079.0039 cs = 40.790039 s (µs precision, no overflow).
        let t = timing(Priority::MIN_BACKUP, v3(4095));
        assert_eq!(t.skew, Duration::from_micros(40_790_039));
        assert_eq!(
            t.master_down,
            Duration::from_micros(3 * 40_950_000 + 40_790_039)
        );
    }

    #[test]
    fn v3_priority_254_with_0_01_s_rfc5798_6_1() {
        // (2 * 1 cs) / 256 = 0.0078 cs = 78 µs.
        let t = timing(Priority::MAX_BACKUP, v3(1));
        assert_eq!(t.skew, Duration::from_micros(78));
        assert_eq!(t.master_down, Duration::from_micros(30_078));
    }

    #[test]
    fn v3_owner_and_lab_values() {
        // Lab: VRRPv3 0.1 s, Backup priority 99 -> skew 61.3 ms (keepalived: 0.062 s).
        let t = timing(Priority::new(99), v3(10));
        assert_eq!(t.skew, Duration::from_micros(61_328));
        assert_eq!(t.master_down, Duration::from_micros(361_328));
        let owner = timing(Priority::OWNER, v3(100));
        assert_eq!(owner.skew, Duration::from_micros(3_906));
    }

    #[test]
    fn v2_skew_ignores_interval_rfc3768_6_1() {
        // Lab: priority 99, advert_int 1 -> skew 0.613 s, master down 3.613 s.
        let t = timing(Priority::new(99), v2(1));
        assert_eq!(t.skew, Duration::from_micros(613_281));
        assert_eq!(t.master_down, Duration::from_micros(3_613_281));
        let slow = timing(Priority::new(99), v2(255));
        assert_eq!(slow.skew, t.skew);
        assert_eq!(slow.master_down, Duration::from_secs(765) + t.skew);
    }

    #[test]
    fn v2_extremes_rfc3768_6_1() {
        let t = timing(Priority::MIN_BACKUP, v2(255));
        assert_eq!(t.skew, Duration::from_micros(996_093));
        assert_eq!(t.master_down, Duration::from_micros(765_996_093));
        let t = timing(Priority::MAX_BACKUP, v2(1));
        assert_eq!(t.skew, Duration::from_micros(7_812));
    }

    #[test]
    fn lower_priority_always_waits_longer() {
        for iv in [v2(1), v2(255), v3(1), v3(10), v3(4095)] {
            for p in 1..=254u8 {
                let lo = timing(Priority::new(p), iv);
                let hi = timing(Priority::new(p + 1), iv);
                assert!(lo.master_down >= hi.master_down, "{iv:?} {p}");
            }
        }
    }
}
