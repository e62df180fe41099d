//! Decoding VRRP advertisements, with their address lists, from the bridge capture's pcap
//! file. tcpdump's one-line decode (what [`crate::capture`] parses) omits the addresses; the
//! tests that check what an advert *carries* (e.g. `virtual_ipaddress_excluded` must not be
//! in it) read the pcap instead. Classic libpcap format only (what `tcpdump -w` writes),
//! Ethernet link type, either byte order, micro- or nanosecond timestamps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::error::{LabError, Result};

/// One VRRP advertisement found in a capture.
#[derive(Clone, Debug, PartialEq)]
pub struct CapturedAdvert {
    /// Capture timestamp, seconds since the epoch.
    pub t: f64,
    /// Source MAC (`02:00:00:00:00:01`).
    pub src_mac: String,
    /// Source IP.
    pub src: IpAddr,
    /// Destination IP.
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// VRRP version (2 or 3).
    pub version: u8,
    /// Virtual router id.
    pub vrid: u8,
    /// Advertised priority.
    pub prio: u8,
    /// The advertised addresses, in packet order.
    pub addrs: Vec<IpAddr>,
}

/// Every VRRP advertisement in the pcap file at `path`.
pub fn read_adverts(path: &Path) -> Result<Vec<CapturedAdvert>> {
    let bytes = std::fs::read(path)
        .map_err(|e| LabError::io(format!("reading pcap {}", path.display()), e))?;
    parse_adverts(&bytes)
        .map_err(|why| LabError::check(format!("pcap {} is malformed: {why}", path.display())))
}

/// Parses a whole pcap file; frames that are not VRRP adverts are skipped, a truncated
/// trailing record (tcpdump still writing) ends the list.
pub fn parse_adverts(bytes: &[u8]) -> std::result::Result<Vec<CapturedAdvert>, String> {
    let header = bytes
        .get(..24)
        .ok_or("shorter than the 24-byte file header")?;
    let magic_le = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let (big_endian, frac_div) = match magic_le {
        0xa1b2_c3d4 => (false, 1e6),
        0xa1b2_3c4d => (false, 1e9),
        0xd4c3_b2a1 => (true, 1e6),
        0x4d3c_b2a1 => (true, 1e9),
        other => return Err(format!("unknown magic {other:#010x}")),
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        })
    };
    let linktype = u32_at(header, 20).ok_or("no link type")?;
    if linktype != 1 {
        return Err(format!("link type {linktype}, expected 1 (Ethernet)"));
    }
    let mut out = Vec::new();
    let mut at = 24;
    while let Some(rec) = bytes.get(at..at + 16) {
        let (Some(sec), Some(frac), Some(incl)) = (u32_at(rec, 0), u32_at(rec, 4), u32_at(rec, 8))
        else {
            break;
        };
        let start = at + 16;
        let Some(frame) = usize::try_from(incl)
            .ok()
            .and_then(|len| bytes.get(start..start.checked_add(len)?))
        else {
            break;
        };
        let t = f64::from(sec) + f64::from(frac) / frac_div;
        if let Some(advert) = decode_frame(t, frame) {
            out.push(advert);
        }
        at = start + frame.len();
    }
    Ok(out)
}

/// An Ethernet frame carrying a VRRP advert (IPv4 protocol / IPv6 next header 112).
fn decode_frame(t: f64, frame: &[u8]) -> Option<CapturedAdvert> {
    let src_mac = frame
        .get(6..12)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut l3 = 14;
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        l3 = 18;
    }
    let ip = frame.get(l3..)?;
    let (src, dst, ttl, payload) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if *ip.get(9)? != 112 || ihl < 20 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(src)),
                IpAddr::V4(Ipv4Addr::from(dst)),
                *ip.get(8)?,
                ip.get(ihl..total.max(ihl).min(ip.len()))?,
            )
        }
        0x86dd => {
            if *ip.get(6)? != 112 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
                *ip.get(7)?,
                ip.get(40..40 + len)?,
            )
        }
        _ => return None,
    };
    let version = payload.first()? >> 4;
    let vrid = *payload.get(1)?;
    let prio = *payload.get(2)?;
    let count = usize::from(*payload.get(3)?);
    let addr_len = if src.is_ipv4() { 4 } else { 16 };
    let mut addrs = Vec::with_capacity(count);
    for i in 0..count {
        let a = payload.get(8 + i * addr_len..8 + (i + 1) * addr_len)?;
        addrs.push(match addr_len {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(a).ok()?)),
            _ => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a).ok()?)),
        });
    }
    Some(CapturedAdvert {
        t,
        src_mac,
        src,
        dst,
        ttl,
        version,
        vrid,
        prio,
        addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VRRPv3 IPv4 advert (vrid 55, prio 100, 10 cs, addresses 192.0.2.200 and .201)
    /// in an Ethernet frame, wrapped in a little-endian microsecond pcap.
    fn sample_pcap() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        f.extend_from_slice(&[0x08, 0x00]);
        let vrrp = [
            0x31, 55, 100, 2, 0x00, 0x0a, 0x00, 0x00, 192, 0, 2, 200, 192, 0, 2, 201,
        ];
        let total = 20 + vrrp.len() as u16;
        f.extend_from_slice(&[0x45, 0xc0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18]);
        f.extend_from_slice(&vrrp);
        let mut p = Vec::new();
        p.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        p.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&65535u32.to_le_bytes());
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        p.extend_from_slice(&250_000u32.to_le_bytes());
        p.extend_from_slice(&(f.len() as u32).to_le_bytes());
        p.extend_from_slice(&(f.len() as u32).to_le_bytes());
        p.extend_from_slice(&f);
        p
    }

    #[test]
    fn advert_with_two_addresses_is_decoded() {
        let pcap = sample_pcap();
        let a = parse_adverts(&pcap).unwrap();
        assert_eq!(a.len(), 1);
        let a = &a[0];
        assert!((a.t - 1_700_000_000.25).abs() < 1e-6);
        assert_eq!(a.src_mac, "02:00:00:00:00:01");
        assert_eq!((a.version, a.vrid, a.prio, a.ttl), (3, 55, 100, 255));
        assert_eq!(a.dst, "224.0.0.18".parse::<IpAddr>().unwrap());
        assert_eq!(
            a.addrs,
            vec![
                "192.0.2.200".parse::<IpAddr>().unwrap(),
                "192.0.2.201".parse().unwrap()
            ]
        );
    }

    #[test]
    fn truncated_or_foreign_input_never_panics() {
        let pcap = sample_pcap();
        for cut in 0..pcap.len() {
            let _ = parse_adverts(&pcap[..cut]);
        }
        assert!(parse_adverts(b"not a pcap file at all!!").is_err());
        // The record cut short: no advert, no error.
        assert_eq!(parse_adverts(&pcap[..pcap.len() - 1]).unwrap(), vec![]);
    }
}
