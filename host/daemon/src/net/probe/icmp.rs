//! `PING_CHECK`: one ICMP / ICMPv6 echo request, success when its echo reply arrives in time.
//!
//! # keepalived's semantics (`keepalived/check/check_ping.c`, 2.2.7 and 2.4)
//! `icmp_connect_thread` opens an unprivileged "ping socket" (`SOCK_DGRAM`, `IPPROTO_ICMP`
//! / `IPPROTO_ICMPV6`, so the kernel picks the identifier and delivers only replies carrying
//! it); `ping_it` / `ping6_it` send one echo request (8-byte header, 128 bytes of
//! "keepalived check - " filler); `icmp_check_thread` fails on the read timeout
//! (`connect_timeout`) and otherwise takes the first packet read: success if it is at least
//! 8 bytes and an echo reply (`recv_it` / `recv6_it`; 2.4 also requires the sequence
//! number to be the one just sent). ICMP errors are not looked at: an unreachable target
//! fails by timeout. `bindto` is not used by the ping checker.
//!
//! Here: a raw socket per probe (the daemon runs as root; ping sockets need
//! `net.ipv4.ping_group_range`, which keepalived rewrites at start-up and we do not).
//! Success is an echo reply from the target whose identifier, sequence number and payload
//! (a 16-byte random nonce plus filler) are the request's; anything else the socket sees
//! is skipped, so concurrent probes cannot take each other's replies. Like keepalived,
//! ICMP errors do not end the probe early, except the hard errors the kernel reports on a
//! connected raw socket (below). `bind`, when given, is the source address.
//!
//! # Receive path
//! - The socket is `connect`ed to the target: the kernel then queues only packets from the
//!   target (and, once the route picked a source, to that source).
//! - `ICMP_FILTER` / `ICMP6_FILTER` let only echo replies through, so the socket does not
//!   wake for the host's other ICMP traffic (every raw ICMP socket otherwise gets a copy of
//!   every ICMP packet the host receives).
//! - IPv4 raw sockets deliver the IP header; it is parsed (options skipped) and the ICMP
//!   checksum verified here, as the kernel does not verify it for raw sockets. ICMPv6 raw
//!   sockets deliver the ICMPv6 message alone; the kernel computes the checksum of what we
//!   send and verifies the checksum of what it delivers (RFC 3542 §3.1).
//! - A receive error on the connected socket is a hard ICMP error the kernel matched to
//!   echo requests towards this target (protocol unreachable, parameter problem,
//!   communication administratively prohibited): the probe fails with it.
//!
//! # Packets (RFC 792 for IPv4, RFC 4443 §4.1/§4.2 for IPv6)
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Identifier          |        Sequence Number        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Data: 16-byte nonce, then "wasmalived PING_CHECK " filler  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Request type 8 (IPv4) / 128 (IPv6), reply type 0 / 129, code 0.
//!
//! IPv6 link-local targets are not supported (an `IpAddr` carries no zone).

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;
use wasmalived_proto::wire::ipv4::{self, Ipv4Error};
use wasmalived_proto::wire::Checksum;

use super::{check_family, random_u64, setup, sys, ProbeError};

/// ICMP echo request (RFC 792).
const ECHO_REQUEST_V4: u8 = 8;
/// ICMP echo reply (RFC 792).
const ECHO_REPLY_V4: u8 = 0;
/// ICMPv6 echo request (RFC 4443 §4.1).
const ECHO_REQUEST_V6: u8 = 128;
/// ICMPv6 echo reply (RFC 4443 §4.2).
const ECHO_REPLY_V6: u8 = 129;
/// IP protocol number of ICMP.
const IPPROTO_ICMP: u8 = 1;

/// Type, code, checksum, identifier, sequence number.
const HEADER_LEN: usize = 8;
/// Random bytes at the start of the data, checked in the reply.
const NONCE_LEN: usize = 16;
/// Bytes of data after the header (the customary 56, 64-byte messages).
const DATA_LEN: usize = 56;
/// Whole echo message.
const MESSAGE_LEN: usize = HEADER_LEN + DATA_LEN;
/// Fills the data after the nonce, so a capture shows who sent it.
const FILLER: &[u8] = b"wasmalived PING_CHECK ";
/// Receive buffer: a maximal IPv4 header (60) plus our message fits with room to spare; a
/// larger datagram is not our reply whatever its contents.
const RECV_BUF_LEN: usize = 1024;

/// One echo request: what its reply must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Echo {
    id: u16,
    seq: u16,
    data: [u8; DATA_LEN],
}

/// Why a received packet is not the reply to our request (logged at trace level, then
/// skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum NotOurs {
    #[error(transparent)]
    Ipv4(#[from] Ipv4Error),
    #[error("IP protocol {0}, not ICMP")]
    Protocol(u8),
    #[error("from {0}, not the target")]
    Source(IpAddr),
    #[error("{0} bytes, want {MESSAGE_LEN}")]
    Length(usize),
    #[error("bad ICMP checksum")]
    Checksum,
    #[error("ICMP type {0} code {1}, not an echo reply")]
    Type(u8, u8),
    #[error("identifier {0:#06x}")]
    Identifier(u16),
    #[error("sequence number {0}")]
    Sequence(u16),
    #[error("data differs from the request's")]
    Data,
}

/// The next ICMP identifier: a process-wide counter starting at a random value, so probes
/// of this process never share one unless 65,536 run at once.
fn next_identifier() -> u16 {
    static NEXT: OnceLock<AtomicU16> = OnceLock::new();
    NEXT.get_or_init(|| AtomicU16::new(random_u64() as u16))
        .fetch_add(1, Ordering::Relaxed)
}

impl Echo {
    /// A request with the next identifier, a random sequence number and a random nonce.
    fn new() -> Echo {
        let mut data = [0u8; DATA_LEN];
        let (nonce, filler) = data.split_at_mut(NONCE_LEN);
        for (chunk, word) in nonce.chunks_mut(8).zip([random_u64(), random_u64()]) {
            chunk.copy_from_slice(&word.to_be_bytes()[..chunk.len()]);
        }
        for (b, f) in filler.iter_mut().zip(FILLER.iter().cycle()) {
            *b = *f;
        }
        Echo {
            id: next_identifier(),
            seq: random_u64() as u16,
            data,
        }
    }

    /// The request message. IPv4: with its checksum; IPv6: checksum zero, as the kernel
    /// fills it in for raw ICMPv6 sockets (it covers the pseudo-header, which only the
    /// kernel knows once it has picked the source address).
    fn request(&self, v6: bool) -> [u8; MESSAGE_LEN] {
        let kind = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
        let mut msg = [0u8; MESSAGE_LEN];
        msg[0] = kind;
        msg[4..6].copy_from_slice(&self.id.to_be_bytes());
        msg[6..8].copy_from_slice(&self.seq.to_be_bytes());
        msg[HEADER_LEN..].copy_from_slice(&self.data);
        if !v6 {
            let sum = Checksum::new().of_message(&msg, 2);
            msg[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        msg
    }

    /// Checks an IPv4 datagram as a raw socket delivers it (IP header first) against our
    /// request to `target`.
    fn check_reply_v4(&self, target: Ipv4Addr, packet: &[u8]) -> Result<(), NotOurs> {
        let (header, icmp) = ipv4::parse(packet)?;
        if header.protocol != IPPROTO_ICMP {
            return Err(NotOurs::Protocol(header.protocol));
        }
        if header.src != target {
            return Err(NotOurs::Source(IpAddr::V4(header.src)));
        }
        if icmp.len() == MESSAGE_LEN && Checksum::new().add(icmp).finish() != 0 {
            return Err(NotOurs::Checksum);
        }
        self.check_message(ECHO_REPLY_V4, icmp)
    }

    /// Checks an ICMPv6 message from `src` (its checksum already verified by the kernel)
    /// against our request to `target`.
    fn check_reply_v6(&self, target: Ipv6Addr, src: Ipv6Addr, icmp: &[u8]) -> Result<(), NotOurs> {
        if src != target {
            return Err(NotOurs::Source(IpAddr::V6(src)));
        }
        self.check_message(ECHO_REPLY_V6, icmp)
    }

    /// Type, code, identifier, sequence number and data of an echo reply message.
    fn check_message(&self, reply_type: u8, msg: &[u8]) -> Result<(), NotOurs> {
        let Some((header, data)) = msg.split_first_chunk::<HEADER_LEN>() else {
            return Err(NotOurs::Length(msg.len()));
        };
        let [kind, code, _, _, id0, id1, seq0, seq1] = *header;
        if (kind, code) != (reply_type, 0) {
            return Err(NotOurs::Type(kind, code));
        }
        let id = u16::from_be_bytes([id0, id1]);
        if id != self.id {
            return Err(NotOurs::Identifier(id));
        }
        let seq = u16::from_be_bytes([seq0, seq1]);
        if seq != self.seq {
            return Err(NotOurs::Sequence(seq));
        }
        if data.len() != DATA_LEN {
            return Err(NotOurs::Length(msg.len()));
        }
        if data != self.data {
            return Err(NotOurs::Data);
        }
        Ok(())
    }
}

/// `PING_CHECK`: sends one ICMP (IPv4) or ICMPv6 echo request to `target`, from `bind` if
/// given, and returns the round-trip time when the matching echo reply arrives within
/// `timeout`. Must run inside a tokio runtime (the socket registers with its reactor).
pub async fn ping(
    target: IpAddr,
    bind: Option<IpAddr>,
    timeout: Duration,
) -> Result<Duration, ProbeError> {
    check_family(bind, target)?;
    let socket = open(target, bind)?;
    let echo = Echo::new();
    let request = echo.request(target.is_ipv6());
    let start = Instant::now();
    let exchange = async {
        send(&socket, &request).await?;
        wait_reply(&socket, &echo, target).await
    };
    match tokio::time::timeout_at(start + timeout, exchange).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ProbeError::NoEchoReply { timeout }),
    }
}

/// Opens the probe's raw socket: echo-reply filter, optional bind, connected to `target`.
fn open(target: IpAddr, bind: Option<IpAddr>) -> Result<AsyncFd<Socket>, ProbeError> {
    let (domain, protocol) = match target {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let socket =
        Socket::new(domain, Type::RAW, Some(protocol)).map_err(setup("raw ICMP socket"))?;
    socket
        .set_nonblocking(true)
        .map_err(setup("non-blocking mode"))?;
    // Only echo replies reach the socket (see the module doc); a set bit blocks a type.
    let filtered = match target {
        IpAddr::V4(_) => sys::set_icmp_filter_v4(socket.as_fd(), !(1u32 << ECHO_REPLY_V4)),
        IpAddr::V6(_) => {
            let mut blocked = [u32::MAX; 8];
            blocked[usize::from(ECHO_REPLY_V6 >> 5)] &= !(1u32 << (ECHO_REPLY_V6 & 31));
            sys::set_icmp_filter_v6(socket.as_fd(), blocked)
        }
    };
    filtered.map_err(setup("ICMP filter"))?;
    if let Some(bind) = bind {
        socket
            .bind(&SocketAddr::new(bind, 0).into())
            .map_err(setup(format!("bind {bind}")))?;
    }
    socket
        .connect(&SocketAddr::new(target, 0).into())
        .map_err(setup(format!("connect {target}")))?;
    crate::net::sys::register_async(socket).map_err(setup("register with the runtime"))
}

/// Sends the request (a raw socket sends whole datagrams or fails).
async fn send(socket: &AsyncFd<Socket>, request: &[u8]) -> Result<(), ProbeError> {
    let sent = socket
        .async_io(Interest::WRITABLE, |s| s.send(request))
        .await
        .map_err(ProbeError::Send)?;
    if sent != request.len() {
        return Err(ProbeError::Send(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short send: {sent} of {} bytes", request.len()),
        )));
    }
    Ok(())
}

/// Reads until the reply to `echo` arrives, skipping everything else.
async fn wait_reply(
    socket: &AsyncFd<Socket>,
    echo: &Echo,
    target: IpAddr,
) -> Result<(), ProbeError> {
    let mut buf = vec![0u8; RECV_BUF_LEN];
    loop {
        let verdict = match target {
            IpAddr::V4(target) => {
                let len = socket
                    .async_io(Interest::READABLE, |mut s| s.read(&mut buf))
                    .await
                    .map_err(ProbeError::Recv)?;
                echo.check_reply_v4(target, buf.get(..len).unwrap_or_default())
            }
            IpAddr::V6(target) => {
                let got = socket
                    .async_io(Interest::READABLE, |s| {
                        crate::net::sys::recv_v6(s.as_fd(), &mut buf)
                    })
                    .await
                    .map_err(ProbeError::Recv)?;
                if got.truncated {
                    Err(NotOurs::Length(got.len))
                } else {
                    let msg = buf.get(..got.len).unwrap_or_default();
                    echo.check_reply_v6(target, got.src, msg)
                }
            }
        };
        match verdict {
            Ok(()) => return Ok(()),
            Err(why) => tracing::trace!(%target, %why, "ping probe skipped a packet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const TARGET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    fn echo() -> Echo {
        let mut data = [0u8; DATA_LEN];
        for (i, b) in data.iter_mut().enumerate() {
            *b = i as u8;
        }
        Echo {
            id: 0x1234,
            seq: 7,
            data,
        }
    }

    /// The reply a host sends to `request`: type changed, checksum recomputed (IPv4).
    fn reply_to(request: &[u8], v6: bool) -> Vec<u8> {
        let mut msg = request.to_vec();
        msg[0] = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
        msg[2..4].fill(0);
        if !v6 {
            let sum = Checksum::new().of_message(&msg, 2);
            msg[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        msg
    }

    /// An IPv4 datagram from `src` carrying `payload`, with `options` (a multiple of 4).
    fn ipv4_packet(src: Ipv4Addr, protocol: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let ihl = 5 + options.len() / 4;
        let total = u16::try_from(ihl * 4 + payload.len()).unwrap();
        let mut p = vec![0x40 | ihl as u8, 0, 0, 0, 0, 1, 0, 0, 64, protocol, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&[192, 0, 2, 1]);
        p.extend_from_slice(options);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn rfc1071_golden_echo_request_checksum() {
        // Type 8, id 0x1234, seq 1, data "abcd": words 0800+1234+0001+6162+6364 = defb,
        // complemented 2104.
        let msg = [8, 0, 0, 0, 0x12, 0x34, 0, 1, b'a', b'b', b'c', b'd'];
        assert_eq!(Checksum::new().of_message(&msg, 2), 0x2104);
    }

    #[test]
    fn ipv4_request_carries_a_valid_checksum_and_the_echo_fields() {
        let e = echo();
        let msg = e.request(false);
        assert_eq!(msg.len(), 64);
        assert_eq!((msg[0], msg[1]), (ECHO_REQUEST_V4, 0));
        assert_eq!(&msg[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(&msg[8..], &e.data);
        assert_eq!(Checksum::new().add(&msg).finish(), 0, "checksum verifies");
    }

    #[test]
    fn ipv6_request_leaves_the_checksum_to_the_kernel() {
        let msg = echo().request(true);
        assert_eq!((msg[0], msg[1]), (ECHO_REQUEST_V6, 0));
        assert_eq!(&msg[2..4], &[0, 0]);
    }

    #[test]
    fn new_requests_carry_a_nonce_and_the_filler() {
        let (a, b) = (Echo::new(), Echo::new());
        assert_ne!(a.data[..NONCE_LEN], b.data[..NONCE_LEN]);
        assert_ne!(a.id, b.id, "consecutive probes get distinct identifiers");
        assert!(a.data[NONCE_LEN..].starts_with(FILLER));
    }

    #[test]
    fn ipv4_reply_matches_after_the_ip_header_with_or_without_options() {
        let e = echo();
        let reply = reply_to(&e.request(false), false);
        let plain = ipv4_packet(TARGET, IPPROTO_ICMP, &[], &reply);
        assert_eq!(e.check_reply_v4(TARGET, &plain), Ok(()));
        // Router Alert option: IHL 6, the ICMP message starts at byte 24.
        let with_options = ipv4_packet(TARGET, IPPROTO_ICMP, &[0x94, 0x04, 0, 0], &reply);
        assert_eq!(e.check_reply_v4(TARGET, &with_options), Ok(()));
    }

    #[test]
    fn ipv4_replies_that_are_not_ours_are_told_apart() {
        let e = echo();
        let reply = reply_to(&e.request(false), false);
        let other = Ipv4Addr::new(192, 0, 2, 3);
        let check = |packet: Vec<u8>| e.check_reply_v4(TARGET, &packet);

        assert_eq!(
            check(ipv4_packet(other, IPPROTO_ICMP, &[], &reply)),
            Err(NotOurs::Source(IpAddr::V4(other)))
        );
        assert_eq!(
            check(ipv4_packet(TARGET, 17, &[], &reply)),
            Err(NotOurs::Protocol(17))
        );
        let mut bad_sum = reply.clone();
        bad_sum[2] ^= 0xff;
        assert_eq!(
            check(ipv4_packet(TARGET, IPPROTO_ICMP, &[], &bad_sum)),
            Err(NotOurs::Checksum)
        );
        // Our own request (pinging a local address loops it back): wrong type.
        assert_eq!(
            check(ipv4_packet(TARGET, IPPROTO_ICMP, &[], &e.request(false))),
            Err(NotOurs::Type(ECHO_REQUEST_V4, 0))
        );
        let mut other_probe = e.clone();
        other_probe.id = 0x1235;
        let theirs = reply_to(&other_probe.request(false), false);
        assert_eq!(
            check(ipv4_packet(TARGET, IPPROTO_ICMP, &[], &theirs)),
            Err(NotOurs::Identifier(0x1235))
        );
        let mut stale = e.clone();
        stale.seq = 6;
        let stale = reply_to(&stale.request(false), false);
        assert_eq!(
            check(ipv4_packet(TARGET, IPPROTO_ICMP, &[], &stale)),
            Err(NotOurs::Sequence(6))
        );
        let mut forged = e.clone();
        forged.data[0] ^= 1;
        let forged = reply_to(&forged.request(false), false);
        assert_eq!(
            check(ipv4_packet(TARGET, IPPROTO_ICMP, &[], &forged)),
            Err(NotOurs::Data)
        );
    }

    #[test]
    fn ipv6_reply_matches_on_source_type_identifier_sequence_and_data() {
        let e = echo();
        let reply = reply_to(&e.request(true), true);
        assert_eq!(e.check_reply_v6(TARGET6, TARGET6, &reply), Ok(()));
        let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3);
        assert_eq!(
            e.check_reply_v6(TARGET6, other, &reply),
            Err(NotOurs::Source(IpAddr::V6(other)))
        );
        // An IPv4 echo reply type is not an ICMPv6 echo reply.
        assert_eq!(
            e.check_reply_v6(TARGET6, TARGET6, &reply_to(&e.request(true), false)),
            Err(NotOurs::Type(ECHO_REPLY_V4, 0))
        );
        assert_eq!(
            e.check_reply_v6(TARGET6, TARGET6, &reply[..40]),
            Err(NotOurs::Length(40))
        );
    }

    #[test]
    fn truncated_and_garbage_packets_are_skipped_never_a_panic() {
        let e = echo();
        let reply = reply_to(&e.request(false), false);
        let packet = ipv4_packet(TARGET, IPPROTO_ICMP, &[], &reply);
        for n in 0..packet.len() {
            assert!(
                e.check_reply_v4(TARGET, &packet[..n]).is_err(),
                "prefix {n}"
            );
        }
        let reply6 = reply_to(&e.request(true), true);
        for n in 0..reply6.len() {
            assert!(e.check_reply_v6(TARGET6, TARGET6, &reply6[..n]).is_err());
        }
        // Deterministic pseudo-random garbage, with a plausible first byte half the time.
        let mut x: u32 = 0x9e37_79b9;
        for round in 0..2000 {
            let len = (round % 140) as usize;
            let mut junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if round % 2 == 0 {
                if let Some(first) = junk.first_mut() {
                    *first = 0x45;
                }
            }
            assert!(e.check_reply_v4(TARGET, &junk).is_err());
            assert!(e.check_reply_v6(TARGET6, TARGET6, &junk).is_err());
        }
    }

    #[tokio::test]
    async fn a_source_of_the_other_family_fails_before_any_socket() {
        let err = ping(
            IpAddr::V4(TARGET),
            Some(IpAddr::V6(TARGET6)),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProbeError::FamilyMismatch { .. }), "{err}");
    }
}
