//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) for a new Master,
//! built byte for byte like keepalived 2.2.7's (pinned by the captures in
//! `../shared/fixtures/pcap/`) and sent as whole Ethernet frames on an `AF_PACKET` socket.
//!
//! Hand-built rather than with a packet crate: two fixed-size frames, each fully described by
//! the diagram above its builder, do not justify a dependency.
//!
//! The functions are synchronous and take microseconds: they write one frame on a send-only
//! `AF_PACKET` socket (protocol 0, so it never queues received frames) that is opened once
//! and kept for the life of the process. Not one socket per frame: closing a packet socket
//! waits for an RCU grace period in the kernel (`packet_release` → `synchronize_net`, about
//! 10 ms), which stalled the instance task ~50 ms per GARP burst and delayed, e.g., the
//! priority-0 advert of a SIGTERM arriving just after becoming Master.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use socket2::{Domain, Socket, Type};

use super::sys;

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// Length of a gratuitous ARP frame (no padding: the NIC pads to 60 bytes).
pub const GARP_FRAME_LEN: usize = 42;
/// Length of an unsolicited NA frame.
pub const NA_FRAME_LEN: usize = 86;

/// The all-nodes multicast address, destination of unsolicited NAs (RFC 4861 §7.2.6).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Ethernet address of ff02::1 (RFC 2464 §7: 33:33 + low 32 bits).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
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

/// A frame could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// Opening the `AF_PACKET` socket failed.
    #[error("opening packet socket for {what} of {addr}: {source}")]
    Socket {
        /// `"gratuitous ARP"` or `"unsolicited NA"`.
        what: &'static str,
        /// The announced address.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `sendto` failed.
    #[error("sending {what} of {addr} on ifindex {ifindex}: {source}")]
    Send {
        /// `"gratuitous ARP"` or `"unsolicited NA"`.
        what: &'static str,
        /// The announced address.
        addr: String,
        /// The interface.
        ifindex: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

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
    let sum = icmpv6_checksum(ip, ALL_NODES, &f[54..]);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

/// ICMPv6 checksum (RFC 4443 §2.3) over the IPv6 pseudo-header (RFC 8200 §8.1) and `msg`
/// (whose checksum field must be zero).
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let hi = chunk[0];
            let lo = chunk.get(1).copied().unwrap_or(0);
            sum += u32::from(u16::from_be_bytes([hi, lo]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&len.to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 16 significant bits.
    !(sum as u16)
}

fn send(
    socket: &Socket,
    what: &'static str,
    addr: String,
    ifindex: u32,
    ethertype: u16,
    dst_mac: [u8; 6],
    frame: &[u8],
) -> Result<(), AnnounceError> {
    let send_err = |source| AnnounceError::Send {
        what,
        addr: addr.clone(),
        ifindex,
        source,
    };
    let sent =
        sys::send_frame(socket.as_fd(), ifindex, ethertype, dst_mac, frame).map_err(send_err)?;
    if sent != frame.len() {
        return Err(send_err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short frame write",
        )));
    }
    tracing::trace!(what, %addr, ifindex, "sent");
    Ok(())
}

/// The send-only packet socket of the calling thread's network namespace, opened on first
/// use (see the module docs for why it is never closed). A packet socket belongs to the
/// namespace it was created in and `ifindex` is only meaningful there, so the cache is keyed
/// by namespace: the daemon has one, tests run several labs in one process.
/// `sendto` on one fd from several threads is safe.
fn packet_socket() -> io::Result<Arc<Socket>> {
    static SOCKETS: OnceLock<Mutex<HashMap<PathBuf, Arc<Socket>>>> = OnceLock::new();
    let netns = std::fs::read_link("/proc/thread-self/ns/net")?;
    let sockets = SOCKETS.get_or_init(Mutex::default);
    let mut sockets = sockets.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(socket) = sockets.get(&netns) {
        return Ok(Arc::clone(socket));
    }
    let socket = Arc::new(Socket::new(Domain::PACKET, Type::RAW.cloexec(), None)?);
    sockets.insert(netns, Arc::clone(&socket));
    Ok(socket)
}

/// A send-only packet socket of the network namespace it was opened in. The daemon opens one
/// per instance when it plans it, so an announcement on the takeover path is one `sendto`,
/// with no namespace lookup.
#[derive(Debug, Clone)]
pub struct Announcer {
    socket: Arc<Socket>,
}

impl Announcer {
    /// The packet socket of the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            socket: packet_socket()?,
        })
    }

    /// Sends one gratuitous ARP for `ip` out of `ifindex` with sender MAC `mac`.
    pub fn send_garp(&self, ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> Result<(), AnnounceError> {
        let frame = garp_frame(mac, ip);
        send(
            &self.socket,
            "gratuitous ARP",
            ip.to_string(),
            ifindex,
            ETH_P_ARP,
            BROADCAST_MAC,
            &frame,
        )
    }

    /// Sends one unsolicited neighbour advertisement for `ip` out of `ifindex` with target
    /// link-layer address `mac`.
    pub fn send_unsolicited_na(
        &self,
        ifindex: u32,
        mac: [u8; 6],
        ip: Ipv6Addr,
    ) -> Result<(), AnnounceError> {
        let frame = na_frame(mac, ip);
        send(
            &self.socket,
            "unsolicited NA",
            ip.to_string(),
            ifindex,
            ETH_P_IPV6,
            ALL_NODES_MAC,
            &frame,
        )
    }
}

fn announcer_for(what: &'static str, addr: String) -> Result<Announcer, AnnounceError> {
    Announcer::open().map_err(|source| AnnounceError::Socket { what, addr, source })
}

/// Sends one gratuitous ARP for `ip` out of `ifindex` with sender MAC `mac`, on the packet
/// socket of the calling thread's network namespace.
pub fn send_garp(ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> Result<(), AnnounceError> {
    announcer_for("gratuitous ARP", ip.to_string())?.send_garp(ifindex, mac, ip)
}

/// Sends one unsolicited neighbour advertisement for `ip` out of `ifindex` with target
/// link-layer address `mac`, on the packet socket of the calling thread's network namespace.
pub fn send_unsolicited_na(ifindex: u32, mac: [u8; 6], ip: Ipv6Addr) -> Result<(), AnnounceError> {
    announcer_for("unsolicited NA", ip.to_string())?.send_unsolicited_na(ifindex, mac, ip)
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
    fn garp_matches_keepalived_capture() {
        assert_eq!(
            garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 200)),
            KEEPALIVED_GARP
        );
    }

    #[test]
    fn na_matches_keepalived_capture_including_checksum() {
        let ip: Ipv6Addr = "2001:db8:0:1::200".parse().unwrap();
        assert_eq!(na_frame(MAC, ip), KEEPALIVED_NA);
    }

    #[test]
    fn checksum_of_message_with_checksum_verifies_to_zero() {
        let ip: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let f = na_frame([2, 0, 0, 0, 0, 7], ip);
        assert_eq!(icmpv6_checksum(ip, ALL_NODES, &f[54..]), 0);
    }
}
