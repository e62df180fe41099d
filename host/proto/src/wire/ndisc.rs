//! Unsolicited neighbour advertisements (RFC 4861 §7.2.6) as a new VRRP Master sends them
//! (RFC 5798 §6.4.2), byte for byte like keepalived 2.2.7's (pinned by
//! `../shared/fixtures/pcap/`), checksummed with the shared [`Checksum`].

use std::net::{IpAddr, Ipv6Addr};

use super::checksum::Checksum;

/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// Length of an unsolicited NA frame.
pub const NA_FRAME_LEN: usize = 86;
/// The all-nodes multicast address, destination of unsolicited NAs (RFC 4861 §7.2.6).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Ethernet address of ff02::1 (RFC 2464 §7: 33:33 + low 32 bits).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// ICMPv6 next-header value.
const IPPROTO_ICMPV6: u8 = 58;
/// ICMPv6 type Neighbor Advertisement (RFC 4861 §4.4).
const ND_NEIGHBOR_ADVERT: u8 = 136;
/// NA flags byte with only O (override) set; keepalived sends neither R nor S.
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// ND option type Target Link-Layer Address (RFC 4861 §4.6.1).
const ND_OPT_TARGET_LL_ADDR: u8 = 2;
/// ICMPv6 NA length with one link-layer option.
const NA_ICMP_LEN: u16 = 32;
/// Offset of the ICMPv6 message in the frame.
const ICMP_AT: usize = 54;
/// Offset of the checksum field in the ICMPv6 message.
const ICMP_CHECKSUM_AT: usize = 2;

/// Unsolicited neighbour advertisement for `ip` to all nodes (RFC 4861 §7.2.6, RFC 5798
/// §6.4.2), source address `ip` itself as keepalived sends it:
///
/// ```text
///  0  dst 33:33:00:00:00:01 | 6 src MAC | 12 86dd                    Ethernet
/// 14  6000 0000 | payload len 0020 | next hdr 3a | hop limit ff      IPv6
/// 22  source = ip (16) | 38 destination = ff02::1 (16)
/// 54  type 88 | code 00 | checksum (2)                               ICMPv6 NA
/// 58  flags 20 (O) 00 00 00
/// 62  target address = ip (16)
/// 78  option type 02 | length 01 | MAC (6)                           target link-layer addr
/// ```
pub fn na_frame(mac: [u8; 6], ip: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let mut f = [0u8; NA_FRAME_LEN];
    f[0..6].copy_from_slice(&ALL_NODES_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    f[14] = 0x60;
    f[18..20].copy_from_slice(&NA_ICMP_LEN.to_be_bytes());
    f[20] = IPPROTO_ICMPV6;
    f[21] = 255;
    f[22..38].copy_from_slice(&ip.octets());
    f[38..54].copy_from_slice(&ALL_NODES.octets());
    f[54] = ND_NEIGHBOR_ADVERT;
    f[58] = NA_FLAG_OVERRIDE;
    f[62..78].copy_from_slice(&ip.octets());
    f[78] = ND_OPT_TARGET_LL_ADDR;
    f[79] = 1;
    f[80..86].copy_from_slice(&mac);
    let sum = Checksum::pseudo_header(
        IpAddr::V6(ip),
        IpAddr::V6(ALL_NODES),
        IPPROTO_ICMPV6,
        f.len() - ICMP_AT,
    )
    .of_message(&f[ICMP_AT..], ICMP_CHECKSUM_AT);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x4b, 0x4c, 0x00, 0x00, 0x0b];

    /// keepalived 2.2.7's unsolicited NA for 2001:db8:0:1::200 (`keepalived-vrrpv3-ipv6.pcap`).
    const KEEPALIVED_NA: [u8; NA_FRAME_LEN] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x02, 0x4b, 0x4c, 0x00, 0x00, 0x0b, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00, 0xa8, 0xd5, 0x20, 0x00,
        0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x02, 0x00, 0x02, 0x01, 0x02, 0x4b, 0x4c, 0x00, 0x00, 0x0b,
    ];

    #[test]
    fn na_matches_keepalived_capture_including_checksum() {
        let ip: Ipv6Addr = "2001:db8:0:1::200".parse().unwrap();
        assert_eq!(na_frame(MAC, ip), KEEPALIVED_NA);
    }

    #[test]
    fn na_checksum_verifies_to_zero() {
        let ip: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let f = na_frame([2, 0, 0, 0, 0, 7], ip);
        let mut c = Checksum::pseudo_header(
            IpAddr::V6(ip),
            IpAddr::V6(ALL_NODES),
            IPPROTO_ICMPV6,
            f.len() - ICMP_AT,
        );
        c.add(&f[ICMP_AT..]);
        assert_eq!(c.finish(), 0);
    }
}
