//! Gratuitous ARP (RFC 5227 §3 "ARP Announcement") as a new VRRP Master sends it (RFC 5798
//! §6.4.2), byte for byte like keepalived 2.2.7's (pinned by `../shared/fixtures/pcap/`).
//!
//! Hand-built rather than with a packet crate: one fixed-size frame, fully described by the
//! diagram above its builder, does not justify a dependency.

use std::net::Ipv4Addr;

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// Length of a gratuitous ARP frame (no padding: the NIC pads to 60 bytes).
pub const GARP_FRAME_LEN: usize = 42;

/// Gratuitous ARP request for `ip` (RFC 5227 §3 "ARP Announcement", RFC 5798 §6.4.2):
///
/// ```text
///  0                 6                 12    14
/// +-----------------+-----------------+-----+
/// | ff:ff:ff:ff:ff:ff| sender MAC      |0806 |               Ethernet
/// +-----------------+-----------------+-----+
/// 14 htype 0001 | ptype 0800 | hlen 06 | plen 04 | oper 0001 (request)
/// 22 sender MAC (6) | 28 sender IP = ip (4)
/// 32 target MAC ff:ff:ff:ff:ff:ff (6, as keepalived) | 38 target IP = ip (4)
/// ```
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; GARP_FRAME_LEN] {
    let mut f = [0u8; GARP_FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    f[32..38].copy_from_slice(&BROADCAST_MAC);
    f[38..42].copy_from_slice(&ip.octets());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x4b, 0x4c, 0x00, 0x00, 0x0b];

    /// keepalived 2.2.7's gratuitous ARP for 192.0.2.200 (`keepalived-vrrpv2.pcap`).
    const KEEPALIVED_GARP: [u8; GARP_FRAME_LEN] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x4b, 0x4c, 0x00, 0x00, 0x0b, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x4b, 0x4c, 0x00, 0x00, 0x0b, 0xc0, 0x00,
        0x02, 0xc8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0, 0x00, 0x02, 0xc8,
    ];

    #[test]
    fn garp_matches_keepalived_capture() {
        assert_eq!(
            garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 200)),
            KEEPALIVED_GARP
        );
    }
}
