//! Protocol value types: units live in types (STYLE principle 3).
//!
//! These names are shared by the config, the daemon and the protocol core; extend them, keep
//! their meaning.

use std::fmt;
use std::time::Duration;

/// Virtual Router Identifier, 1..=255 (RFC 5798 §5.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vrid(u8);

impl Vrid {
    /// A VRID; `None` for 0, which the RFC does not allow.
    pub fn new(value: u8) -> Option<Self> {
        (value != 0).then_some(Self(value))
    }

    /// The wire value.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Vrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Vrid {
    /// The virtual router MAC address of this VRID in `family` (RFC 5798 §7.3):
    /// 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
    pub fn virtual_mac(self, family: Family) -> [u8; 6] {
        let kind = match family {
            Family::V4 => 0x01,
            Family::V6 => 0x02,
        };
        [0x00, 0x00, 0x5e, 0x00, kind, self.0]
    }
}

/// VRRP priority (RFC 5798 §5.2.4): 0 = the Master is releasing, 255 = address owner,
/// 1..=254 = backup routers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    /// Priority 0: "the current Master has stopped participating" (RFC 5798 §5.2.4).
    pub const RELEASE: Priority = Priority(0);
    /// Priority 255: the router owns the virtual addresses (RFC 5798 §5.2.4).
    pub const OWNER: Priority = Priority(255);
    /// The lowest priority a non-owner may run with.
    pub const MIN_BACKUP: Priority = Priority(1);
    /// The highest priority a non-owner may run with.
    pub const MAX_BACKUP: Priority = Priority(254);
    /// keepalived's default priority.
    pub const DEFAULT: Priority = Priority(100);

    /// Any wire value.
    pub const fn new(value: u8) -> Self {
        Self(value)
    }

    /// The wire value.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether this is the address owner's priority.
    pub fn is_owner(self) -> bool {
        self == Self::OWNER
    }

    /// The one clamp of a non-owner's priority: `total` (configured priority ± tracking
    /// weights, any value) into [`Priority::MIN_BACKUP`]..=[`Priority::MAX_BACKUP`], as
    /// keepalived's `vrrp_set_effective_priority` does (`< 1` → 1, `>= 255` → 254).
    pub fn backup(total: i64) -> Priority {
        let clamped = total.clamp(i64::from(Self::MIN_BACKUP.0), i64::from(Self::MAX_BACKUP.0));
        Priority(u8::try_from(clamped).unwrap_or(Self::MIN_BACKUP.0))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, advert interval in whole seconds, optional auth.
    V2,
    /// RFC 5798 / RFC 9568: IPv4 and IPv6, advert interval in centiseconds.
    V3,
}

/// Address family of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6 (VRRPv3 only).
    V6,
}

/// VRRPv2 advertisement interval: whole seconds on the wire, 1..=255 (RFC 3768 §5.3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds(u8);

impl Seconds {
    /// `None` for 0.
    pub fn new(value: u8) -> Option<Self> {
        (value != 0).then_some(Self(value))
    }

    /// The wire value.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// VRRPv3 advertisement interval: centiseconds on the wire, 12 bits, 1..=4095
/// (RFC 5798 §5.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Centiseconds(u16);

impl Centiseconds {
    /// The largest value the 12-bit field carries (40.95 s).
    pub const MAX: Centiseconds = Centiseconds(4095);

    /// `None` for 0 or values over 4095.
    pub fn new(value: u16) -> Option<Self> {
        (1..=4095).contains(&value).then_some(Self(value))
    }

    /// The wire value.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// An advertisement interval as configured and on the wire, in the unit of its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdvertInterval {
    /// VRRPv2: whole seconds.
    V2(Seconds),
    /// VRRPv3: centiseconds.
    V3(Centiseconds),
}

impl AdvertInterval {
    /// The interval as a `Duration`, the only unit used inside timers.
    pub fn duration(self) -> Duration {
        match self {
            AdvertInterval::V2(s) => Duration::from_secs(u64::from(s.get())),
            AdvertInterval::V3(cs) => Duration::from_millis(u64::from(cs.get()) * 10),
        }
    }
}

impl Version {
    /// The value of the 4-bit version field.
    pub const fn wire(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.wire())
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

impl Family {
    /// The family of an address.
    pub fn of(addr: std::net::IpAddr) -> Self {
        match addr {
            std::net::IpAddr::V4(_) => Family::V4,
            std::net::IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s", self.0)
    }
}

impl fmt::Display for Centiseconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02} s", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for AdvertInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdvertInterval::V2(s) => s.fmt(f),
            AdvertInterval::V3(cs) => cs.fmt(f),
        }
    }
}

/// Why a configured advertisement interval was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    /// VRRPv2 carries whole seconds, 1..=255 (RFC 3768 §5.3.7).
    #[error("VRRPv2 advert_int must be a whole number of seconds in 1..=255, got {0:?}")]
    V2OutOfRange(Duration),
    /// VRRPv3 carries centiseconds, 1..=4095, i.e. 0.01..=40.95 s (RFC 5798 §5.2.7).
    #[error("VRRPv3 advert_int must be a multiple of 0.01 s in 0.01..=40.95 s, got {0:?}")]
    V3OutOfRange(Duration),
}

impl AdvertInterval {
    /// The interval for `version` from a configured duration (keepalived's `advert_int`):
    /// 1..=255 whole seconds for VRRPv2, 0.01..=40.95 s in 0.01 s steps for VRRPv3.
    /// Anything else is rejected, never rounded.
    pub fn from_duration(version: Version, d: Duration) -> Result<Self, IntervalError> {
        match version {
            Version::V2 => {
                let whole = d.subsec_nanos() == 0;
                match u8::try_from(d.as_secs()).ok().and_then(Seconds::new) {
                    Some(s) if whole => Ok(AdvertInterval::V2(s)),
                    _ => Err(IntervalError::V2OutOfRange(d)),
                }
            }
            Version::V3 => {
                let exact = d.as_nanos().is_multiple_of(10_000_000);
                let cs = d.as_nanos() / 10_000_000;
                match u16::try_from(cs).ok().and_then(Centiseconds::new) {
                    Some(cs) if exact => Ok(AdvertInterval::V3(cs)),
                    _ => Err(IntervalError::V3OutOfRange(d)),
                }
            }
        }
    }

    /// The protocol version whose wire unit this interval is in.
    pub fn version(self) -> Version {
        match self {
            AdvertInterval::V2(_) => Version::V2,
            AdvertInterval::V3(_) => Version::V3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_mac_rfc5798_7_3() {
        let vrid = Vrid::new(0x33).unwrap();
        assert_eq!(vrid.virtual_mac(Family::V4), [0, 0, 0x5e, 0, 1, 0x33]);
        assert_eq!(vrid.virtual_mac(Family::V6), [0, 0, 0x5e, 0, 2, 0x33]);
        assert_eq!(Vrid::new(255).unwrap().virtual_mac(Family::V4)[5], 255);
    }

    #[test]
    fn advert_int_v2_range_rfc3768_5_3_7() {
        let ok = |s| AdvertInterval::from_duration(Version::V2, Duration::from_secs(s));
        assert_eq!(ok(1), Ok(AdvertInterval::V2(Seconds(1))));
        assert_eq!(ok(255), Ok(AdvertInterval::V2(Seconds(255))));
        assert!(ok(0).is_err());
        assert!(ok(256).is_err());
        assert!(AdvertInterval::from_duration(Version::V2, Duration::from_millis(1500)).is_err());
    }

    #[test]
    fn advert_int_v3_range_rfc5798_5_2_7() {
        let f = |ms| AdvertInterval::from_duration(Version::V3, Duration::from_millis(ms));
        assert_eq!(f(10), Ok(AdvertInterval::V3(Centiseconds(1))));
        assert_eq!(f(100), Ok(AdvertInterval::V3(Centiseconds(10))));
        assert_eq!(f(40_950), Ok(AdvertInterval::V3(Centiseconds::MAX)));
        assert!(f(0).is_err());
        assert!(f(5).is_err());
        assert!(f(40_960).is_err());
        assert!(f(15).is_err(), "not a multiple of 10 ms");
    }

    #[test]
    fn interval_durations_and_display() {
        assert_eq!(
            AdvertInterval::V3(Centiseconds(10)).duration(),
            Duration::from_millis(100)
        );
        assert_eq!(
            AdvertInterval::V2(Seconds(3)).duration(),
            Duration::from_secs(3)
        );
        assert_eq!(Centiseconds(4095).to_string(), "40.95 s");
        assert_eq!(Centiseconds(5).to_string(), "0.05 s");
    }
}
