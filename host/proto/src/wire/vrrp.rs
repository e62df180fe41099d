//! VRRP advertisement codec (STYLE principle 4): a length-checked decoder into a plain
//! [`Advert`], an exactly sized encoder and the three checksum forms.
//!
//! VRRPv2 (RFC 3768 §5.1):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            .                                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (n)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (1)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (2)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! VRRPv3 (RFC 5798 §5.1, unchanged in RFC 9568):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IPvX Address(es)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Checksums (the standard Internet checksum, RFC 1071):
//! - VRRPv2: over the VRRP message only (RFC 3768 §5.3.8).
//! - VRRPv3 over IPv6: over the message plus the IPv6 pseudo-header (RFC 5798 §5.2.8,
//!   RFC 8200 §8.1).
//! - VRRPv3 over IPv4: RFC 5798 §5.2.8 includes the IPv4 pseudo-header and keepalived does
//!   so; RFC 9568 §5.2.8 computes it over the message only. We send the pseudo-header form
//!   (what keepalived accepts) and accept both, reporting which one matched
//!   ([`ChecksumForm`]) so the caller can count it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum::Checksum;
use crate::vrrp::types::{AdvertInterval, Centiseconds, Family, Priority, Seconds, Version, Vrid};

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const IP_PROTO_VRRP: u8 = 112;
/// The TTL / hop limit every advert is sent with and must arrive with (RFC 5798 §5.1.1.3,
/// §5.1.2.3).
pub const VRRP_TTL: u8 = 255;
/// IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (RFC 5798 §5.1.2.2).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TOS / traffic class of adverts: precedence "internetwork control", as keepalived sends
/// them (0xc0 in the captures of `../shared/fixtures/pcap/`).
pub const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
/// Length of the fixed VRRP header (both versions).
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data trailer (RFC 3768 §5.3.10).
pub const V2_AUTH_LEN: usize = 8;
/// The only packet type, ADVERTISEMENT (RFC 5798 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Offset of the checksum field in the VRRP header.
const CHECKSUM_OFFSET: usize = 6;

/// VRRPv2 authentication type (RFC 3768 §5.3.6; RFC 2338 defined 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthType(pub u8);

impl AuthType {
    /// No authentication.
    pub const NONE: AuthType = AuthType(0);
    /// Simple text password (RFC 2338 §5.3.6.1; keepalived `auth_type PASS`).
    pub const PASS: AuthType = AuthType(1);
    /// IPsec AH (RFC 2338 §5.3.6.2), not supported here.
    pub const AH: AuthType = AuthType(2);
}

/// The VRRPv2 authentication fields: type and the 8 bytes of authentication data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct V2Auth {
    /// The auth type octet.
    pub auth_type: AuthType,
    /// The authentication data; for PASS the password, zero padded to 8 bytes.
    pub data: [u8; V2_AUTH_LEN],
}

impl V2Auth {
    /// No authentication: type 0, data zero.
    pub const NONE: V2Auth = V2Auth {
        auth_type: AuthType::NONE,
        data: [0; V2_AUTH_LEN],
    };

    /// PASS authentication with an already padded password.
    pub fn pass(data: [u8; V2_AUTH_LEN]) -> Self {
        V2Auth {
            auth_type: AuthType::PASS,
            data,
        }
    }
}

/// A decoded VRRP advertisement, either version.
///
/// The version is the one of `interval` ([`AdvertInterval::V2`] seconds or
/// [`AdvertInterval::V3`] centiseconds), so a value of this type cannot mix the two units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Virtual Router Identifier.
    pub vrid: Vrid,
    /// Sender's priority; 0 = the Master is releasing.
    pub priority: Priority,
    /// Advertisement interval (v2 "Adver Int", v3 "Max Adver Int"), in the wire unit.
    pub interval: AdvertInterval,
    /// VRRPv2 authentication fields; `None` for VRRPv3 (which has none). Encoding a v2
    /// advert with `None` writes auth type 0 and zero data.
    pub auth: Option<V2Auth>,
    /// The virtual addresses, all of one family (the count field is their number).
    pub addresses: Vec<IpAddr>,
    /// The checksum as received (decode) — [`encode`] always computes it afresh.
    pub checksum: u16,
}

impl Advert {
    /// The protocol version of this advert.
    pub fn version(&self) -> Version {
        self.interval.version()
    }

    /// The encoded length in bytes when sent from an address of `family`.
    pub fn encoded_len(&self, family: Family) -> usize {
        let (alen, trailer) = match (self.version(), family) {
            (Version::V2, _) => (4, V2_AUTH_LEN),
            (Version::V3, Family::V4) => (4, 0),
            (Version::V3, Family::V6) => (16, 0),
        };
        HEADER_LEN + alen * self.count_for(family) + trailer
    }

    /// How many addresses [`encode`] writes: those of the wire family, at most 255.
    fn count_for(&self, family: Family) -> usize {
        let family = match self.version() {
            Version::V2 => Family::V4,
            Version::V3 => family,
        };
        self.addresses
            .iter()
            .filter(|a| Family::of(**a) == family)
            .take(usize::from(u8::MAX))
            .count()
    }
}

/// Which checksum computation a received advert matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    /// Over the VRRP message only: VRRPv2, or VRRPv3/IPv4 as RFC 9568 §5.2.8 computes it.
    Plain,
    /// Including the IP pseudo-header: VRRPv3/IPv6, or VRRPv3/IPv4 as RFC 5798 §5.2.8 and
    /// keepalived compute it.
    PseudoHeader,
}

/// A successfully decoded advert and the checksum form it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The advert.
    pub advert: Advert,
    /// Which checksum form matched.
    pub checksum_form: ChecksumForm,
}

/// Why bytes could not be decoded as a VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header or the count field require (RFC 5798 §7.1: "MUST verify
    /// that the received packet contains the complete VRRP packet").
    #[error("truncated {what}: needs {needed} bytes, got {got}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes required.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// More bytes than the count field accounts for.
    #[error("VRRP message is {got} bytes but its address count makes it {expected}")]
    TooLong {
        /// Length implied by the count field.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// A version nibble other than 2 or 3.
    #[error("unsupported VRRP version {0}")]
    Version(u8),
    /// A packet type other than ADVERTISEMENT (1).
    #[error("VRRP packet type {0} is not ADVERTISEMENT (1)")]
    Type(u8),
    /// VRID 0 (RFC 5798 §5.2.3 allows 1..=255).
    #[error("VRID 0 is invalid")]
    ZeroVrid,
    /// An advertisement interval of 0.
    #[error("advertisement interval 0 is invalid")]
    ZeroInterval,
    /// VRRPv2 exists only for IPv4 (RFC 3768).
    #[error("VRRPv2 advert over IPv6")]
    V2OverIpv6,
    /// Source and destination of different families.
    #[error("source {src} and destination {dst} are of different address families")]
    MixedFamilies {
        /// IP source.
        src: IpAddr,
        /// IP destination.
        dst: IpAddr,
    },
    /// No accepted checksum form matched.
    #[error("checksum {got:#06x} is wrong, expected {expected:#06x}")]
    Checksum {
        /// The checksum field received.
        got: u16,
        /// What we compute (pseudo-header form where it applies).
        expected: u16,
    },
}

/// Decode a VRRP message (the IP payload, without IP header) received from `src` to `dst`.
///
/// `src`/`dst` are needed for the VRRPv3 pseudo-header checksum and decide the address
/// family of a VRRPv3 advert. The length must be exact: [`super::ipv4::parse`] already trims
/// link-layer padding using the IPv4 total length, and IPv6 raw sockets deliver the payload
/// alone.
pub fn decode(payload: &[u8], src: IpAddr, dst: IpAddr) -> Result<Decoded, DecodeError> {
    let family = Family::of(src);
    if family != Family::of(dst) {
        return Err(DecodeError::MixedFamilies { src, dst });
    }
    let Some((hdr, rest)) = payload.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::Truncated {
            what: "VRRP header",
            needed: HEADER_LEN,
            got: payload.len(),
        });
    };
    let [vers_type, vrid, priority, count, b4, b5, c0, c1] = *hdr;
    let version = match vers_type >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        other => return Err(DecodeError::Version(other)),
    };
    if version == Version::V2 && family == Family::V6 {
        return Err(DecodeError::V2OverIpv6);
    }
    let ptype = vers_type & 0x0f;
    if ptype != TYPE_ADVERTISEMENT {
        return Err(DecodeError::Type(ptype));
    }
    let vrid = Vrid::new(vrid).ok_or(DecodeError::ZeroVrid)?;
    let alen = match family {
        Family::V4 => 4,
        Family::V6 => 16,
    };
    let trailer = match version {
        Version::V2 => V2_AUTH_LEN,
        Version::V3 => 0,
    };
    let expected = HEADER_LEN + alen * usize::from(count) + trailer;
    if payload.len() < expected {
        return Err(DecodeError::Truncated {
            what: "VRRP addresses",
            needed: expected,
            got: payload.len(),
        });
    }
    if payload.len() > expected {
        return Err(DecodeError::TooLong {
            expected,
            got: payload.len(),
        });
    }
    let (addr_bytes, auth_bytes) = rest.split_at(alen * usize::from(count));
    let addresses = addr_bytes
        .chunks_exact(alen)
        .filter_map(|c| match family {
            Family::V4 => <[u8; 4]>::try_from(c).ok().map(IpAddr::from),
            Family::V6 => <[u8; 16]>::try_from(c).ok().map(IpAddr::from),
        })
        .collect();
    let (interval, auth) = match version {
        Version::V2 => {
            let secs = Seconds::new(b5).ok_or(DecodeError::ZeroInterval)?;
            let data =
                <[u8; V2_AUTH_LEN]>::try_from(auth_bytes).map_err(|_| DecodeError::Truncated {
                    what: "VRRPv2 authentication data",
                    needed: V2_AUTH_LEN,
                    got: auth_bytes.len(),
                })?;
            let auth = V2Auth {
                auth_type: AuthType(b4),
                data,
            };
            (AdvertInterval::V2(secs), Some(auth))
        }
        Version::V3 => {
            // RFC 5798 §5.2.6: the 4 reserved bits are ignored on receive.
            let raw = u16::from_be_bytes([b4, b5]) & 0x0fff;
            let cs = Centiseconds::new(raw).ok_or(DecodeError::ZeroInterval)?;
            (AdvertInterval::V3(cs), None)
        }
    };
    let got = u16::from_be_bytes([c0, c1]);
    let checksum_form = verify_checksum(version, payload, src, dst, got)?;
    Ok(Decoded {
        advert: Advert {
            vrid,
            priority: Priority::new(priority),
            interval,
            auth,
            addresses,
            checksum: got,
        },
        checksum_form,
    })
}

/// Check `got` against every form accepted for this version and family.
fn verify_checksum(
    version: Version,
    msg: &[u8],
    src: IpAddr,
    dst: IpAddr,
    got: u16,
) -> Result<ChecksumForm, DecodeError> {
    let plain = checksum(msg, src, dst, false);
    match (version, src) {
        (Version::V2, _) => {
            if plain == got {
                Ok(ChecksumForm::Plain)
            } else {
                Err(DecodeError::Checksum {
                    got,
                    expected: plain,
                })
            }
        }
        (Version::V3, _) => {
            let pseudo = checksum(msg, src, dst, true);
            if pseudo == got {
                Ok(ChecksumForm::PseudoHeader)
            } else if src.is_ipv4() && plain == got {
                // RFC 9568 §5.2.8: VRRPv3 over IPv4 without the pseudo-header.
                Ok(ChecksumForm::Plain)
            } else {
                Err(DecodeError::Checksum {
                    got,
                    expected: pseudo,
                })
            }
        }
    }
}

/// Encode `advert` as sent from `src` to `dst`, with the checksum form we send
/// ([`ChecksumForm::PseudoHeader`] for VRRPv3, the only form for VRRPv2).
///
/// The buffer is exactly [`Advert::encoded_len`] bytes. The checksum field of `advert` is
/// ignored and computed afresh. Addresses of another family than the wire family are
/// skipped and at most 255 are written; [`crate::vrrp::Instance`] never builds such adverts.
pub fn encode(advert: &Advert, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    encode_with(advert, src, dst, ChecksumForm::PseudoHeader)
}

/// [`encode`] with a chosen checksum form for VRRPv3 over IPv4 (`Plain` = RFC 9568).
/// VRRPv2 always uses the plain form and VRRPv3 over IPv6 always the pseudo-header.
pub fn encode_with(advert: &Advert, src: IpAddr, dst: IpAddr, form: ChecksumForm) -> Vec<u8> {
    let family = match advert.version() {
        Version::V2 => Family::V4,
        Version::V3 => Family::of(src),
    };
    let count = advert.count_for(family);
    let mut buf = Vec::with_capacity(advert.encoded_len(family));
    buf.push((advert.version().wire() << 4) | TYPE_ADVERTISEMENT);
    buf.push(advert.vrid.get());
    buf.push(advert.priority.get());
    // `count_for` caps at 255, so this never saturates.
    buf.push(u8::try_from(count).unwrap_or(u8::MAX));
    match advert.interval {
        AdvertInterval::V2(secs) => {
            let auth = advert.auth.unwrap_or(V2Auth::NONE);
            buf.push(auth.auth_type.0);
            buf.push(secs.get());
        }
        AdvertInterval::V3(cs) => buf.extend_from_slice(&(cs.get() & 0x0fff).to_be_bytes()),
    }
    buf.extend_from_slice(&[0, 0]);
    for addr in advert
        .addresses
        .iter()
        .filter(|a| Family::of(**a) == family)
        .take(count)
    {
        match addr {
            IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
        }
    }
    if advert.version() == Version::V2 {
        buf.extend_from_slice(&advert.auth.unwrap_or(V2Auth::NONE).data);
    }
    let pseudo = match (advert.version(), family, form) {
        (Version::V2, _, _) | (Version::V3, Family::V4, ChecksumForm::Plain) => false,
        (Version::V3, _, _) => true,
    };
    let sum = checksum(&buf, src, dst, pseudo);
    if let Some(field) = buf.get_mut(CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2) {
        field.copy_from_slice(&sum.to_be_bytes());
    }
    buf
}

/// The VRRP checksum of `msg` (its checksum field taken as zero), over the pseudo-header of
/// `src` → `dst` when `pseudo` is set.
fn checksum(msg: &[u8], src: IpAddr, dst: IpAddr, pseudo: bool) -> u16 {
    let initial = if pseudo {
        Checksum::pseudo_header(src, dst, IP_PROTO_VRRP, msg.len())
    } else {
        Checksum::new()
    };
    initial.of_message(msg, CHECKSUM_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    /// Frame 1 of keepalived-vrrpv2.pcap, VRRP part.
    const V2_FRAME1: [u8; 20] = [
        0x21, 0x37, 0x64, 0x01, 0x01, 0x01, 0x54, 0x9b, 0xc0, 0x00, 0x02, 0xc8, 0x31, 0x31, 0x31,
        0x31, 0x00, 0x00, 0x00, 0x00,
    ];

    fn v3_advert() -> Advert {
        Advert {
            vrid: Vrid::new(55).unwrap(),
            priority: Priority::new(100),
            interval: AdvertInterval::V3(Centiseconds::new(10).unwrap()),
            auth: None,
            addresses: vec![v4(192, 0, 2, 200)],
            checksum: 0,
        }
    }

    #[test]
    fn decodes_v2_pass_frame() {
        let src = v4(192, 0, 2, 11);
        let d = decode(&V2_FRAME1, src, IpAddr::V4(MCAST_V4)).unwrap();
        assert_eq!(d.checksum_form, ChecksumForm::Plain);
        assert_eq!(d.advert.vrid.get(), 55);
        assert_eq!(d.advert.priority.get(), 100);
        assert_eq!(d.advert.addresses, vec![v4(192, 0, 2, 200)]);
        assert_eq!(d.advert.auth, Some(V2Auth::pass(*b"1111\0\0\0\0")));
        assert_eq!(
            encode(&d.advert, src, IpAddr::V4(MCAST_V4)),
            V2_FRAME1.to_vec()
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        // RFC 5798 §7.1 / RFC 3768 §7.1: "MUST verify that the received packet contains the
        // complete VRRP packet".
        let src = v4(192, 0, 2, 11);
        for n in 0..V2_FRAME1.len() {
            let r = decode(&V2_FRAME1[..n], src, IpAddr::V4(MCAST_V4));
            assert!(
                matches!(r, Err(DecodeError::Truncated { .. })),
                "len {n}: {r:?}"
            );
        }
        let mut long = V2_FRAME1.to_vec();
        long.push(0);
        assert!(matches!(
            decode(&long, src, IpAddr::V4(MCAST_V4)),
            Err(DecodeError::TooLong {
                expected: 20,
                got: 21
            })
        ));
    }

    #[test]
    fn rejects_bad_version_type_vrid_interval_checksum() {
        let src = v4(192, 0, 2, 11);
        let dst = IpAddr::V4(MCAST_V4);
        let with = |i: usize, b: u8| {
            let mut p = V2_FRAME1;
            p[i] = b;
            decode(&p, src, dst)
        };
        assert_eq!(with(0, 0x41), Err(DecodeError::Version(4)));
        assert_eq!(with(0, 0x22), Err(DecodeError::Type(2)));
        assert_eq!(with(1, 0), Err(DecodeError::ZeroVrid));
        assert_eq!(with(5, 0), Err(DecodeError::ZeroInterval));
        assert!(matches!(
            with(7, 0),
            Err(DecodeError::Checksum { got: 0x5400, .. })
        ));
        assert!(matches!(with(12, 0x32), Err(DecodeError::Checksum { .. })));
    }

    #[test]
    fn v3_ipv4_checksum_both_forms_rfc5798_vs_rfc9568() {
        let (src, dst) = (v4(192, 0, 2, 11), IpAddr::V4(MCAST_V4));
        let pseudo = encode(&v3_advert(), src, dst);
        let plain = encode_with(&v3_advert(), src, dst, ChecksumForm::Plain);
        assert_ne!(pseudo, plain);
        // Golden: keepalived-vrrpv3.pcap frame 1 carries 0x055a (pseudo-header form).
        assert_eq!(&pseudo[6..8], &[0x05, 0x5a]);
        let d1 = decode(&pseudo, src, dst).unwrap();
        let d2 = decode(&plain, src, dst).unwrap();
        assert_eq!(d1.checksum_form, ChecksumForm::PseudoHeader);
        assert_eq!(d2.checksum_form, ChecksumForm::Plain);
        // The pseudo-header binds the addresses: another source fails the pseudo form.
        assert!(matches!(
            decode(&pseudo, v4(192, 0, 2, 12), dst),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn v3_ipv6_requires_pseudo_header() {
        let src: IpAddr = "fe80::1".parse().unwrap();
        let dst = IpAddr::V6(MCAST_V6);
        let mut a = v3_advert();
        a.addresses = vec!["2001:db8::200".parse().unwrap()];
        let bytes = encode(&a, src, dst);
        assert_eq!(bytes.len(), 8 + 16);
        assert_eq!(
            decode(&bytes, src, dst).unwrap().checksum_form,
            ChecksumForm::PseudoHeader
        );
        let plain = encode_with(&a, src, dst, ChecksumForm::Plain);
        assert_eq!(plain, bytes, "IPv6 always uses the pseudo-header");
    }

    #[test]
    fn v2_over_ipv6_and_mixed_families_rejected() {
        let src: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(
            decode(&V2_FRAME1, src, IpAddr::V6(MCAST_V6)),
            Err(DecodeError::V2OverIpv6)
        );
        assert!(matches!(
            decode(&V2_FRAME1, src, IpAddr::V4(MCAST_V4)),
            Err(DecodeError::MixedFamilies { .. })
        ));
    }

    #[test]
    fn encode_is_exactly_sized_and_skips_foreign_family() {
        let mut a = v3_advert();
        a.addresses.push("2001:db8::1".parse().unwrap());
        let bytes = encode(&a, v4(192, 0, 2, 1), IpAddr::V4(MCAST_V4));
        assert_eq!(bytes.len(), a.encoded_len(Family::V4));
        assert_eq!(bytes.len(), 12);
        assert_eq!(bytes[3], 1, "count");
    }

    #[test]
    fn reserved_bits_ignored_on_receive_rfc5798_5_2_6() {
        let (src, dst) = (v4(192, 0, 2, 11), IpAddr::V4(MCAST_V4));
        let mut bytes = encode_with(&v3_advert(), src, dst, ChecksumForm::Plain);
        bytes[4] |= 0xf0;
        // Recompute the plain checksum by hand over the modified message.
        let sum = checksum(&bytes, src, dst, false);
        bytes[6..8].copy_from_slice(&sum.to_be_bytes());
        let d = decode(&bytes, src, dst).unwrap();
        assert_eq!(
            d.advert.interval,
            AdvertInterval::V3(Centiseconds::new(10).unwrap())
        );
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes() {
        // A small deterministic fuzz: xorshift bytes of every length up to 64.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let (s4, d4) = (v4(192, 0, 2, 11), IpAddr::V4(MCAST_V4));
        let (s6, d6): (IpAddr, IpAddr) = ("fe80::1".parse().unwrap(), IpAddr::V6(MCAST_V6));
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 65) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
            // Mostly plausible version/type so the fuzz reaches the deeper checks.
            if let Some(first) = bytes.first_mut() {
                *first = [0x21, 0x31, *first][(x % 3) as usize];
            }
            let _ = decode(&bytes, s4, d4);
            let _ = decode(&bytes, s6, d6);
        }
    }
}
