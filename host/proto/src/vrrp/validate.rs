//! Receive validation (RFC 3768 §7.1, RFC 5798 §7.1): every rejection is an [`RxDrop`]
//! whose [`DropReason`] maps 1:1 onto a counter in [`Counters`].
//!
//! Checks that only log in keepalived (address list mismatch, a VRRPv3 interval that
//! differs from ours) do not drop: they bump a counter and surface as a
//! [`super::Notice`], and the advert is processed.

use std::fmt;
use std::net::IpAddr;

use super::instance::InstanceConfig;
use super::types::{AdvertInterval, Family, Priority, Version};
use crate::wire::vrrp::{Advert, AuthType, ChecksumForm, DecodeError, V2Auth};

/// Why a received advert was discarded. [`RxDrop::reason`] gives its counter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RxDrop {
    /// The bytes are not a well-formed advert (length, version, type, checksum, ...).
    #[error("malformed advert: {0}")]
    Decode(#[from] DecodeError),
    /// RFC 5798 §7.1 / RFC 3768 §7.1: the TTL / hop limit MUST be 255.
    #[error("TTL/hop limit {ttl}, expected 255")]
    Ttl {
        /// The TTL / hop limit received.
        ttl: u8,
    },
    /// An advert of the other address family than the instance.
    #[error("{got} advert on a {expected} instance")]
    AddressFamily {
        /// Family of the sender.
        got: Family,
        /// Family of the instance.
        expected: Family,
    },
    /// RFC 5798 §7.1 / RFC 3768 §7.1: the VRRP version MUST match.
    #[error("{got} advert on a {expected} instance")]
    WrongVersion {
        /// The advert's version.
        got: Version,
        /// The instance's version.
        expected: Version,
    },
    /// RFC 5798 §7.1: the VRID MUST be configured on the receiving interface. Demultiplexing
    /// is the caller's; this is the reason to count when no instance matches.
    #[error("VRID {vrid} is not configured here")]
    VridNotConfigured {
        /// The VRID received.
        vrid: u8,
    },
    /// RFC 2338 §7.1 (kept by keepalived for RFC 3768): the auth type MUST match ours.
    #[error("auth type {got} received, {expected} configured")]
    AuthTypeMismatch {
        /// Auth type received.
        got: u8,
        /// Auth type configured.
        expected: u8,
    },
    /// RFC 2338 §5.3.6.1: the PASS authentication data did not match.
    #[error("authentication password mismatch")]
    AuthFailure,
    /// RFC 3768 §7.1: a VRRPv2 advert interval MUST equal the configured one, else discard.
    #[error("advert interval {got} received, {expected} configured (VRRPv2 requires equal)")]
    IntervalMismatch {
        /// Interval received.
        got: AdvertInterval,
        /// Interval configured.
        expected: AdvertInterval,
    },
    /// RFC 5798 §7.1: "the local router is not the IPvX address owner" — only with
    /// keepalived's `owner_ignore_adverts`; by default an owner processes adverts to resolve
    /// a second owner (keepalived's behaviour).
    #[error("address owner ignores adverts (owner_ignore_adverts)")]
    OwnerIgnoresAdverts,
    /// Our own advert looped back (same source address as our primary address).
    #[error("advert from our own address {addr}")]
    OwnAddress {
        /// The source address.
        addr: IpAddr,
    },
    /// Adverts are not processed in the Initialize and Fault states (keepalived).
    #[error("instance is not running (Initialize or Fault)")]
    NotRunning,
    /// keepalived: with `unicast_peer`s configured, adverts from any other address are
    /// ignored (and so are adverts a peer sent to a multicast group).
    #[error("advert from {src}, which is not a unicast peer sending to us")]
    NotUnicastPeer {
        /// The source address.
        src: IpAddr,
    },
    /// The I/O layer's queue towards the router was full — or half full and the datagram's
    /// source had spent its share (fair admission against a flooding host) — so the datagram
    /// was dropped unread; counted on the path it arrived on.
    #[error("receive queue full")]
    QueueFull,
    /// The IP datagram around the advert was unusable: a malformed IPv4 header, a datagram
    /// larger than the receive buffer, missing IPv6 ancillary data.
    #[error("unusable IP datagram: {0}")]
    IpLayer(String),
}

/// The counter an [`RxDrop`] increments. Fieldless so it can index a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Truncated, too long, or inconsistent IP total length.
    Length,
    /// Unsupported or mismatched version (including VRRPv2 over IPv6).
    Version,
    /// Not an ADVERTISEMENT.
    Type,
    /// Checksum matched no accepted form.
    Checksum,
    /// Other malformed fields: VRID 0, interval 0, mixed families, bad IP header.
    Malformed,
    /// TTL / hop limit not 255.
    Ttl,
    /// Advert of the wrong address family.
    AddressFamily,
    /// VRID not configured.
    Vrid,
    /// VRRPv2 auth type mismatch.
    AuthType,
    /// VRRPv2 password mismatch.
    AuthFailure,
    /// VRRPv2 advert interval mismatch.
    Interval,
    /// Owner ignoring adverts.
    OwnerIgnore,
    /// Our own advert.
    OwnAddress,
    /// Instance in Initialize or Fault.
    NotRunning,
    /// Source is not one of the instance's unicast peers.
    NotUnicastPeer,
    /// Dropped before the router because its queue was full (or its source's share spent).
    QueueFull,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 16] = [
        DropReason::Length,
        DropReason::Version,
        DropReason::Type,
        DropReason::Checksum,
        DropReason::Malformed,
        DropReason::Ttl,
        DropReason::AddressFamily,
        DropReason::Vrid,
        DropReason::AuthType,
        DropReason::AuthFailure,
        DropReason::Interval,
        DropReason::OwnerIgnore,
        DropReason::OwnAddress,
        DropReason::NotRunning,
        DropReason::NotUnicastPeer,
        DropReason::QueueFull,
    ];

    /// A stable snake_case name for metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Length => "length",
            DropReason::Version => "version",
            DropReason::Type => "type",
            DropReason::Checksum => "checksum",
            DropReason::Malformed => "malformed",
            DropReason::Ttl => "ttl",
            DropReason::AddressFamily => "address_family",
            DropReason::Vrid => "vrid",
            DropReason::AuthType => "auth_type",
            DropReason::AuthFailure => "auth_failure",
            DropReason::Interval => "interval",
            DropReason::OwnerIgnore => "owner_ignore",
            DropReason::OwnAddress => "own_address",
            DropReason::NotRunning => "not_running",
            DropReason::NotUnicastPeer => "not_unicast_peer",
            DropReason::QueueFull => "queue_full",
        }
    }

    fn index(self) -> usize {
        DropReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl RxDrop {
    /// The counter this rejection increments.
    pub fn reason(&self) -> DropReason {
        match self {
            RxDrop::Decode(e) => match e {
                DecodeError::Truncated { .. } | DecodeError::TooLong { .. } => DropReason::Length,
                DecodeError::Version(_) | DecodeError::V2OverIpv6 => DropReason::Version,
                DecodeError::Type(_) => DropReason::Type,
                DecodeError::Checksum { .. } => DropReason::Checksum,
                DecodeError::ZeroVrid
                | DecodeError::ZeroInterval
                | DecodeError::MixedFamilies { .. } => DropReason::Malformed,
            },
            RxDrop::Ttl { .. } => DropReason::Ttl,
            RxDrop::AddressFamily { .. } => DropReason::AddressFamily,
            RxDrop::WrongVersion { .. } => DropReason::Version,
            RxDrop::VridNotConfigured { .. } => DropReason::Vrid,
            RxDrop::AuthTypeMismatch { .. } => DropReason::AuthType,
            RxDrop::AuthFailure => DropReason::AuthFailure,
            RxDrop::IntervalMismatch { .. } => DropReason::Interval,
            RxDrop::OwnerIgnoresAdverts => DropReason::OwnerIgnore,
            RxDrop::OwnAddress { .. } => DropReason::OwnAddress,
            RxDrop::NotRunning => DropReason::NotRunning,
            RxDrop::NotUnicastPeer { .. } => DropReason::NotUnicastPeer,
            RxDrop::QueueFull => DropReason::QueueFull,
            RxDrop::IpLayer(_) => DropReason::Malformed,
        }
    }
}

/// Per-instance statistics: one drop counter per [`DropReason`] plus what keepalived's
/// `vrrp_stats` keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Adverts that passed validation.
    pub adverts_received: u64,
    /// Adverts sent (including priority 0).
    pub adverts_sent: u64,
    /// Valid adverts with priority 0 received.
    pub priority_zero_received: u64,
    /// Priority-0 adverts sent (shutdown, Fault while Master).
    pub priority_zero_sent: u64,
    /// Decoded adverts whose checksum matched the pseudo-header form.
    pub checksum_pseudo_header: u64,
    /// Decoded adverts whose checksum matched the plain form (VRRPv2, or RFC 9568 VRRPv3).
    pub checksum_plain: u64,
    /// RFC 5798 §7.1 "MAY verify": address count or list differs from ours (not dropped).
    pub address_list_mismatch: u64,
    /// VRRPv3 adverts whose interval differs from ours (not dropped, keepalived logs it).
    pub interval_differs: u64,
    /// Owner adverts (priority 255) from another router while we are the owner.
    pub owner_conflict: u64,
    /// Transitions into Master.
    pub became_master: u64,
    /// Transitions out of Master.
    pub released_master: u64,
    drops: [u64; DropReason::ALL.len()],
}

impl Counters {
    /// How many adverts were dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops.get(reason.index()).copied().unwrap_or(0)
    }

    /// All drop counters, in [`DropReason::ALL`] order.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.into_iter().zip(self.drops.iter().copied())
    }

    /// Sum of all drop counters.
    pub fn total_dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Count one rejection.
    pub fn record_drop(&mut self, reason: DropReason) {
        self.record_drops(reason, 1);
    }

    /// Count `n` rejections of one reason.
    pub fn record_drops(&mut self, reason: DropReason, n: u64) {
        if let Some(c) = self.drops.get_mut(reason.index()) {
            *c += n;
        }
    }

    /// Count the checksum form of a decoded advert.
    pub fn record_checksum(&mut self, form: ChecksumForm) {
        match form {
            ChecksumForm::Plain => self.checksum_plain += 1,
            ChecksumForm::PseudoHeader => self.checksum_pseudo_header += 1,
        }
    }
}

/// Findings of a validation that passed: things keepalived logs without dropping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Findings {
    /// The address count or list differs from the configured VIPs.
    pub address_list_mismatch: bool,
    /// VRRPv3: the interval differs from ours.
    pub interval_differs: bool,
}

/// Validate a decoded advert for the instance configured by `cfg`, currently at
/// `effective` priority (RFC 3768 §7.1, RFC 5798 §7.1, in keepalived's order).
pub fn validate(
    cfg: &InstanceConfig,
    effective: Priority,
    src: IpAddr,
    ttl: u8,
    advert: &Advert,
) -> Result<Findings, RxDrop> {
    // RFC 5798 §7.1 / RFC 3768 §7.1: "MUST verify that the IP TTL is 255". keepalived skips
    // it for unicast peers (routed unicast adverts may arrive with a lower TTL).
    if !cfg.unicast && ttl != crate::wire::vrrp::VRRP_TTL {
        return Err(RxDrop::Ttl { ttl });
    }
    let got = Family::of(src);
    if got != cfg.family {
        return Err(RxDrop::AddressFamily {
            got,
            expected: cfg.family,
        });
    }
    // RFC 5798 §7.1: "MUST verify the VRRP version is 3" (RFC 3768 §7.1: 2).
    if advert.version() != cfg.version {
        return Err(RxDrop::WrongVersion {
            got: advert.version(),
            expected: cfg.version,
        });
    }
    // RFC 5798 §7.1: "MUST verify that the VRID is configured on the receiving interface".
    if advert.vrid != cfg.vrid {
        return Err(RxDrop::VridNotConfigured {
            vrid: advert.vrid.get(),
        });
    }
    if src == cfg.primary_addr {
        return Err(RxDrop::OwnAddress { addr: src });
    }
    if cfg.version == Version::V2 {
        check_v2_auth(cfg, advert)?;
        // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as
        // the locally configured for this virtual router" — else discard.
        if advert.interval != cfg.advert_int {
            return Err(RxDrop::IntervalMismatch {
                got: advert.interval,
                expected: cfg.advert_int,
            });
        }
    }
    // RFC 5798 §7.1: "... and the local router is not the IPvX address owner" — opt-in, see
    // `RxDrop::OwnerIgnoresAdverts`.
    if cfg.owner_ignore_adverts && effective.is_owner() {
        return Err(RxDrop::OwnerIgnoresAdverts);
    }
    Ok(Findings {
        // RFC 5798 §7.1 / RFC 3768 §7.1: "MAY verify that the IP Address Count and the list
        // of IP Address(es) match ... SHOULD log ... and continue processing".
        address_list_mismatch: !same_addresses(&advert.addresses, &cfg.vips),
        interval_differs: cfg.version == Version::V3 && advert.interval != cfg.advert_int,
    })
}

/// RFC 2338 §7.1 / §5.3.6 (VRRPv2 authentication, as keepalived implements it).
fn check_v2_auth(cfg: &InstanceConfig, advert: &Advert) -> Result<(), RxDrop> {
    let got = advert.auth.unwrap_or(V2Auth::NONE);
    let expected = match cfg.auth {
        Some(_) => AuthType::PASS,
        None => AuthType::NONE,
    };
    if got.auth_type != expected {
        return Err(RxDrop::AuthTypeMismatch {
            got: got.auth_type.0,
            expected: expected.0,
        });
    }
    if let Some(password) = cfg.auth {
        // Compare all 8 bytes without an early exit.
        let diff = password
            .iter()
            .zip(got.data.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(RxDrop::AuthFailure);
        }
    }
    Ok(())
}

/// Same addresses as a set (the order on the wire is the sender's).
fn same_addresses(received: &[IpAddr], configured: &[IpAddr]) -> bool {
    received.len() == configured.len() && configured.iter().all(|a| received.contains(a))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Instant;

    use super::*;
    use crate::vrrp::instance::{Action, Instance, Notice, State};
    use crate::vrrp::sim::{addr, router, v2, v3};
    use crate::vrrp::types::Vrid;
    use crate::wire::vrrp::{encode, MCAST_V4};

    const DST: IpAddr = IpAddr::V4(MCAST_V4);

    /// A started VRRPv2 Backup at 192.0.2.12, priority 100, PASS "1111".
    fn backup_v2() -> (Instance, Instant) {
        let mut i = Instance::new(router(12, 100, v2(1))).unwrap();
        let now = Instant::now();
        i.start(now);
        while i.poll_action().is_some() {}
        (i, now)
    }

    fn peer_advert(i: &Instance, prio: u8) -> Advert {
        i.advert(Priority::new(prio))
    }

    #[test]
    fn ttl_must_be_255_rfc5798_7_1_rfc3768_7_1() {
        let (mut i, now) = backup_v2();
        let a = peer_advert(&i, 200);
        assert_eq!(
            i.handle_advert(now, addr(11), 254, &a),
            Err(RxDrop::Ttl { ttl: 254 })
        );
        assert_eq!(i.counters().dropped(DropReason::Ttl), 1);
        assert_eq!(i.handle_advert(now, addr(11), 255, &a), Ok(()));
        assert_eq!(i.counters().adverts_received, 1);
    }

    #[test]
    fn unicast_skips_ttl_check_like_keepalived() {
        let mut cfg = router(12, 100, v2(1));
        cfg.unicast = true;
        let mut i = Instance::new(cfg).unwrap();
        let now = Instant::now();
        i.start(now);
        let a = peer_advert(&i, 200);
        assert_eq!(i.handle_advert(now, addr(11), 64, &a), Ok(()));
    }

    #[test]
    fn version_vrid_family_own_address_rfc5798_7_1() {
        let (mut i, now) = backup_v2();
        let mut a = peer_advert(&i, 200);
        a.interval = v3(100);
        a.auth = None;
        assert_eq!(
            i.handle_advert(now, addr(11), 255, &a)
                .map_err(|e| e.reason()),
            Err(DropReason::Version)
        );
        let mut a = peer_advert(&i, 200);
        a.vrid = Vrid::new(56).unwrap();
        assert_eq!(
            i.handle_advert(now, addr(11), 255, &a),
            Err(RxDrop::VridNotConfigured { vrid: 56 })
        );
        let a = peer_advert(&i, 200);
        assert_eq!(
            i.handle_advert(now, "fe80::1".parse().unwrap(), 255, &a)
                .map_err(|e| e.reason()),
            Err(DropReason::AddressFamily)
        );
        assert_eq!(
            i.handle_advert(now, addr(12), 255, &a),
            Err(RxDrop::OwnAddress { addr: addr(12) })
        );
        assert_eq!(i.counters().total_dropped(), 4);
        assert_eq!(i.counters().adverts_received, 0);
    }

    #[test]
    fn v2_auth_type_and_password_rfc2338_7_1() {
        let (mut i, now) = backup_v2();
        let mut a = peer_advert(&i, 200);
        a.auth = Some(V2Auth::NONE);
        assert_eq!(
            i.handle_advert(now, addr(11), 255, &a),
            Err(RxDrop::AuthTypeMismatch {
                got: 0,
                expected: 1
            })
        );
        a.auth = Some(V2Auth {
            auth_type: AuthType::AH,
            data: [0; 8],
        });
        assert_eq!(
            i.handle_advert(now, addr(11), 255, &a)
                .map_err(|e| e.reason()),
            Err(DropReason::AuthType)
        );
        a.auth = Some(V2Auth::pass(*b"1112\0\0\0\0"));
        assert_eq!(
            i.handle_advert(now, addr(11), 255, &a),
            Err(RxDrop::AuthFailure)
        );
        // The whole 8 bytes count, not just the C string.
        a.auth = Some(V2Auth::pass(*b"1111\0\0\0x"));
        assert_eq!(
            i.handle_advert(now, addr(11), 255, &a),
            Err(RxDrop::AuthFailure)
        );
        assert_eq!(i.counters().dropped(DropReason::AuthType), 2);
        assert_eq!(i.counters().dropped(DropReason::AuthFailure), 2);
    }

    #[test]
    fn v2_interval_mismatch_dropped_rfc3768_7_1() {
        let (mut i, now) = backup_v2();
        let mut a = peer_advert(&i, 200);
        a.interval = v2(2);
        assert_eq!(
            i.handle_advert(now, addr(11), 255, &a),
            Err(RxDrop::IntervalMismatch {
                got: v2(2),
                expected: v2(1)
            })
        );
    }

    #[test]
    fn address_list_mismatch_counted_not_dropped_rfc5798_7_1() {
        let (mut i, now) = backup_v2();
        let mut a = peer_advert(&i, 200);
        a.addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 201))];
        assert_eq!(i.handle_advert(now, addr(11), 255, &a), Ok(()));
        a.addresses.clear();
        assert_eq!(i.handle_advert(now, addr(11), 255, &a), Ok(()));
        assert_eq!(i.counters().address_list_mismatch, 2);
        assert_eq!(i.counters().adverts_received, 2);
        assert_eq!(
            i.poll_action(),
            Some(Action::Notice(Notice::AddressListMismatch {
                from: addr(11)
            }))
        );
        assert_eq!(
            i.master(),
            Some((addr(11), Priority::new(200))),
            "still processed"
        );
    }

    #[test]
    fn malformed_bytes_counted_by_reason() {
        let (mut i, now) = backup_v2();
        let good = encode(&peer_advert(&i, 200), addr(11), DST);
        assert!(i
            .handle_packet(now, addr(11), DST, 255, &good[..10])
            .is_err());
        let mut bad = good.clone();
        bad[7] ^= 1;
        assert!(i.handle_packet(now, addr(11), DST, 255, &bad).is_err());
        let mut bad = good.clone();
        bad[0] = 0x22;
        assert!(i.handle_packet(now, addr(11), DST, 255, &bad).is_err());
        let c = i.counters();
        assert_eq!(c.dropped(DropReason::Length), 1);
        assert_eq!(c.dropped(DropReason::Checksum), 1);
        assert_eq!(c.dropped(DropReason::Type), 1);
        assert_eq!(
            i.handle_packet(now, addr(11), DST, 255, &good),
            Ok(Priority::new(200))
        );
        assert_eq!(i.counters().checksum_plain, 1);
    }

    #[test]
    fn not_running_in_initialize_and_fault() {
        let mut i = Instance::new(router(12, 100, v2(1))).unwrap();
        let now = Instant::now();
        let a = peer_advert(&i, 200);
        assert_eq!(
            i.handle_advert(now, addr(11), 255, &a),
            Err(RxDrop::NotRunning)
        );
        i.start(now);
        i.set_fault(now, true, "test");
        assert_eq!(i.state(), State::Fault);
        assert_eq!(
            i.handle_advert(now, addr(11), 255, &a),
            Err(RxDrop::NotRunning)
        );
        assert_eq!(i.counters().dropped(DropReason::NotRunning), 2);
    }

    #[test]
    fn v3_ipv4_checksum_forms_are_counted() {
        let mut i = Instance::new(router(12, 100, v3(100))).unwrap();
        let now = Instant::now();
        i.start(now);
        let a = i.advert(Priority::new(200));
        let pseudo = encode(&a, addr(11), DST);
        let plain =
            crate::wire::vrrp::encode_with(&a, addr(11), DST, crate::vrrp::ChecksumForm::Plain);
        i.handle_packet(now, addr(11), DST, 255, &pseudo).unwrap();
        i.handle_packet(now, addr(11), DST, 255, &plain).unwrap();
        i.handle_packet(now, addr(11), DST, 255, &plain).unwrap();
        assert_eq!(i.counters().checksum_pseudo_header, 1);
        assert_eq!(i.counters().checksum_plain, 2);
    }

    #[test]
    fn every_reason_has_a_distinct_counter_and_name() {
        let mut c = Counters::default();
        for (n, r) in DropReason::ALL.into_iter().enumerate() {
            for _ in 0..=n {
                c.record_drop(r);
            }
        }
        for (n, (r, count)) in c.drops().enumerate() {
            assert_eq!(count, n as u64 + 1, "{r}");
            assert_eq!(c.dropped(r), count);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }
}
