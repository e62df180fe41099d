//! The IPv4 header (RFC 791 §3.1) as a raw IPv4 socket delivers it in front of every VRRP
//! datagram: the one parser the receive path uses.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! (IPv6 raw sockets deliver the payload alone, with the hop limit and destination in
//! control messages, so there is no IPv6 header to parse on receive.)

use std::net::Ipv4Addr;

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// The fields of an IPv4 header that VRRP receive processing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live (must be 255 for VRRP, RFC 5798 §7.1).
    pub ttl: u8,
    /// Protocol number (112 for VRRP, 51 for AH).
    pub protocol: u8,
    /// Type of service / DSCP+ECN octet.
    pub tos: u8,
    /// Header length in 32-bit words (5 without options).
    pub ihl: u8,
    /// Bytes of IP options (`ihl * 4 - 20`); skipped, never interpreted.
    pub options_len: usize,
    /// The total length field.
    pub total_len: u16,
}

/// Why bytes are not an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ipv4Error {
    /// Fewer bytes than a minimal header.
    #[error("IPv4 packet of {len} bytes is shorter than a header")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The version nibble is not 4.
    #[error("not an IPv4 header: version {0}")]
    Version(u8),
    /// IHL below 5 words.
    #[error("IPv4 header length {0} words is below the minimum of 5")]
    Ihl(u8),
    /// Total length inconsistent with the header length or the bytes read.
    #[error("IPv4 total length {total} is inconsistent (header {header} bytes, {got} bytes read)")]
    TotalLength {
        /// The total length field.
        total: u16,
        /// Header length in bytes.
        header: usize,
        /// Bytes read.
        got: usize,
    },
}

/// Parse the IPv4 header at the start of `packet` and return it with the payload, trimmed to
/// the header's total length (which drops any link-layer padding). Options (IHL > 5) are
/// skipped. The header checksum is not verified: the kernel drops packets with a bad one
/// before raw delivery.
pub fn parse(packet: &[u8]) -> Result<(Ipv4Header, &[u8]), Ipv4Error> {
    let Some((fixed, _)) = packet.split_first_chunk::<MIN_HEADER_LEN>() else {
        return Err(Ipv4Error::Truncated { len: packet.len() });
    };
    let [vihl, tos, tl0, tl1, _, _, _, _, ttl, protocol, _, _, s0, s1, s2, s3, d0, d1, d2, d3] =
        *fixed;
    if vihl >> 4 != 4 {
        return Err(Ipv4Error::Version(vihl >> 4));
    }
    let ihl = vihl & 0x0f;
    if ihl < 5 {
        return Err(Ipv4Error::Ihl(ihl));
    }
    let header = usize::from(ihl) * 4;
    let total_len = u16::from_be_bytes([tl0, tl1]);
    let bad_total = Ipv4Error::TotalLength {
        total: total_len,
        header,
        got: packet.len(),
    };
    let total = usize::from(total_len);
    if total < header {
        return Err(bad_total);
    }
    let payload = packet.get(header..total).ok_or(bad_total)?;
    Ok((
        Ipv4Header {
            src: Ipv4Addr::new(s0, s1, s2, s3),
            dst: Ipv4Addr::new(d0, d1, d2, d3),
            ttl,
            protocol,
            tos,
            ihl,
            options_len: header - MIN_HEADER_LEN,
            total_len,
        },
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame 1 of keepalived-vrrpv2.pcap, VRRP part.
    const V2_FRAME1: [u8; 20] = [
        0x21, 0x37, 0x64, 0x01, 0x01, 0x01, 0x54, 0x9b, 0xc0, 0x00, 0x02, 0xc8, 0x31, 0x31, 0x31,
        0x31, 0x00, 0x00, 0x00, 0x00,
    ];

    /// Frame 1 of `keepalived-vrrpv2.pcap` as a raw socket reads it (header + VRRPv2), TTL 255.
    const KEEPALIVED_V2: [u8; 40] = [
        0x45, 0xc0, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0x18, 0x87, 0xc0, 0x00, 0x02,
        0x0b, 0xe0, 0x00, 0x00, 0x12, // IPv4 header
        0x21, 0x37, 0x64, 0x01, 0x01, 0x01, 0x54, 0x9b, 0xc0, 0x00, 0x02, 0xc8, 0x31, 0x31, 0x31,
        0x31, 0x00, 0x00, 0x00, 0x00, // VRRP
    ];

    fn packet(options: &[u8], payload: &[u8], pad: usize) -> Vec<u8> {
        let ihl = 5 + options.len() / 4;
        let total = ihl * 4 + payload.len();
        let [t0, t1] = u16::try_from(total).unwrap().to_be_bytes();
        let mut p = vec![
            0x40 | u8::try_from(ihl).unwrap(),
            0xc0,
            t0,
            t1,
            0,
            1,
            0,
            0,
            255,
            112,
            0,
            0,
            192,
            0,
            2,
            11,
            224,
            0,
            0,
            18,
        ];
        p.extend_from_slice(options);
        p.extend_from_slice(payload);
        p.extend(std::iter::repeat_n(0, pad));
        p
    }

    #[test]
    fn keepalived_capture_header_fields_and_payload() {
        let (h, payload) = parse(&KEEPALIVED_V2).unwrap();
        assert_eq!(h.src, Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(h.dst, Ipv4Addr::new(224, 0, 0, 18));
        assert_eq!(
            (h.ttl, h.protocol, h.tos, h.total_len),
            (255, 112, 0xc0, 40)
        );
        assert_eq!(payload, &KEEPALIVED_V2[20..]);
    }

    #[test]
    fn options_skipped_and_link_padding_trimmed() {
        let p = packet(&[], &V2_FRAME1, 0);
        let (h, payload) = parse(&p).unwrap();
        assert_eq!((h.ihl, h.options_len, h.ttl, h.protocol), (5, 0, 255, 112));
        assert_eq!(payload, &V2_FRAME1);
        // Router Alert option (RFC 2113): IHL 6; also trailing link padding.
        let p = packet(&[0x94, 0x04, 0, 0], &V2_FRAME1, 6);
        let (h, payload) = parse(&p).unwrap();
        assert_eq!((h.ihl, h.options_len), (6, 4));
        assert_eq!(payload, &V2_FRAME1);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let p = packet(&[], &V2_FRAME1, 0);
        for n in 0..MIN_HEADER_LEN {
            assert_eq!(parse(&p[..n]), Err(Ipv4Error::Truncated { len: n }));
        }
        assert!(matches!(
            parse(&p[..p.len() - 1]),
            Err(Ipv4Error::TotalLength { .. })
        ));
        let mut bad = p.clone();
        bad[0] = 0x65;
        assert_eq!(parse(&bad), Err(Ipv4Error::Version(6)));
        bad[0] = 0x44;
        assert_eq!(parse(&bad), Err(Ipv4Error::Ihl(4)));
        let mut bad = p.clone();
        bad[0] = 0x4f; // IHL 15 = 60 bytes > total length 40
        assert!(matches!(parse(&bad), Err(Ipv4Error::TotalLength { .. })));
        let mut bad = p;
        bad[2..4].copy_from_slice(&10u16.to_be_bytes()); // total < header
        assert!(matches!(parse(&bad), Err(Ipv4Error::TotalLength { .. })));
        for n in 0..KEEPALIVED_V2.len() {
            let _ = parse(&KEEPALIVED_V2[..n]);
        }
    }
}
