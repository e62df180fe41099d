//! `UDP_CHECK`: one datagram to the real server; keepalived's rules decide what the
//! silence, the ICMP errors and the reply mean.
//!
//! # keepalived's semantics (2.2.7, unchanged in 2.4)
//! - `udp_bind_connect` (`keepalived/core/layer4.c`): a `SOCK_DGRAM` socket with
//!   `IP_RECVERR` / `IPV6_RECVERR` set (so every ICMP error is reported, not only the
//!   "hard" ones: a host whose ARP / neighbour discovery fails yields the local stack's own
//!   "host unreachable"), bound to `bindto` if configured, `connect`ed to the real server,
//!   then one `send` of the `payload` — or, without one, 32 bytes of
//!   "keepalived check - " repeated (`set_buf`, `UDP_BUFSIZE`).
//! - `udp_socket_state` (`layer4.c`), called by `udp_check_thread` (`check/check_udp.c`)
//!   after waiting `connect_timeout` for the socket to become readable:
//!   - timeout: success, unless `require_reply` is set;
//!   - an error event (`EPOLLERR`): `udp_socket_error` reads the error queue and fails on an
//!     ICMP destination unreachable (any code; ICMPv6 type 1 likewise), else succeeds;
//!   - readable: `recv` failing fails the check; a datagram succeeds.
//! - `check_udp_reply` (`check_udp.c`), only when `require_reply` has a hex string: the
//!   reply (read into a `max_reply_length` + 1 buffer, so longer ones count as too long)
//!   fails if its length is below `min_reply_length` (default 0) or above
//!   `max_reply_length` (default 255), or if its first min(reply length, hex length)
//!   bytes differ from the hex string. A reply *shorter* than the hex string therefore
//!   passes when its bytes are a prefix of it. `require_reply` without a hex string checks
//!   nothing about the reply, not even its length (the man page says lengths are checked
//!   whenever `require_reply` is set; the code compares only with reply data).
//!
//! Here, one deliberate difference: an ICMP error that is not a destination unreachable
//! (time exceeded, parameter problem, packet too big) is logged and the probe keeps
//! waiting, where keepalived ends the wait with "success" (and then, with `require_reply`
//! and a hex string, compares an unread buffer). Without `require_reply` both give success;
//! with it, keepalived 2.2.7's outcome depends on stale memory.
//!
//! Wildcard nibbles (`X`) in `require_reply` match any value: the config layer reads them
//! into `require_reply_mask`, and those bits are not compared (keepalived's `reply_mask`).

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use wasmalived_config::lvs::UdpCheck;

use super::{check_family, setup, sys, ProbeError, Unreachable};

/// keepalived's `max_reply_length` default (`udp_check_handler`: `UINT8_MAX`).
pub const DEFAULT_MAX_REPLY_LEN: usize = 255;
/// Length of keepalived's payload when none is configured (`UDP_BUFSIZE`).
const DEFAULT_PAYLOAD_LEN: usize = 32;
/// The text keepalived repeats to fill a default payload (`set_buf`).
const DEFAULT_PAYLOAD_TEXT: &[u8] = b"keepalived check - ";

/// A passed `UDP_CHECK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpOk {
    /// A datagram came back (and passed the `require_reply` rules, if any).
    Replied {
        /// Time from sending the payload to the reply.
        rtt: Duration,
    },
    /// No reply and no ICMP destination unreachable within the timeout (a pass unless
    /// `require_reply` is set, as in keepalived).
    NoError {
        /// How long the probe waited (its timeout).
        waited: Duration,
    },
}

impl UdpOk {
    /// The round-trip time, when a reply came.
    pub fn rtt(&self) -> Option<Duration> {
        match self {
            UdpOk::Replied { rtt } => Some(*rtt),
            UdpOk::NoError { .. } => None,
        }
    }
}

impl fmt::Display for UdpOk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UdpOk::Replied { rtt } => write!(f, "reply in {rtt:?}"),
            UdpOk::NoError { waited } => write!(f, "no ICMP error within {waited:?}"),
        }
    }
}

/// `UDP_CHECK` with keepalived's semantics (see the module doc): sends `check.payload` (or
/// keepalived's default) to `target` from a socket bound to `bind`:0 if given, then waits
/// up to `timeout` for a reply or an ICMP error. Must run inside a tokio runtime.
pub async fn udp(
    target: SocketAddr,
    bind: Option<IpAddr>,
    check: &UdpCheck,
    timeout: Duration,
) -> Result<UdpOk, ProbeError> {
    check_family(bind, target.ip())?;
    let socket = open(target, bind)?;
    let payload = payload(check);
    let start = Instant::now();
    let exchange = async {
        send(&socket, &payload).await?;
        wait_reply(&socket, recv_buf_len(check)).await
    };
    match tokio::time::timeout_at(start + timeout, exchange).await {
        Ok(Ok(reply)) => {
            let rtt = start.elapsed();
            check_reply(check, &reply)?;
            Ok(UdpOk::Replied { rtt })
        }
        Ok(Err(e)) => Err(e),
        Err(_) if check.require_reply.is_some() => Err(ProbeError::NoReply { timeout }),
        Err(_) => Ok(UdpOk::NoError { waited: timeout }),
    }
}

/// The datagram to send: the configured payload, or keepalived's default one.
fn payload(check: &UdpCheck) -> Cow<'_, [u8]> {
    if check.payload.is_empty() {
        let text = DEFAULT_PAYLOAD_TEXT.iter().cycle();
        Cow::Owned(text.take(DEFAULT_PAYLOAD_LEN).copied().collect())
    } else {
        Cow::Borrowed(&check.payload)
    }
}

/// The reply data `require_reply` compares with, if any (keepalived's `reply_data`).
fn reply_data(check: &UdpCheck) -> Option<&[u8]> {
    check.require_reply.as_deref().filter(|d| !d.is_empty())
}

/// `max_reply_length`, or keepalived's default.
fn max_reply_len(check: &UdpCheck) -> usize {
    check.max_reply_length.unwrap_or(DEFAULT_MAX_REPLY_LEN)
}

/// Bytes to read of a reply: one more than the longest acceptable reply when the reply is
/// checked (so a longer one shows as too long), else one (any datagram passes).
fn recv_buf_len(check: &UdpCheck) -> usize {
    match reply_data(check) {
        Some(_) => max_reply_len(check).saturating_add(1),
        None => 1,
    }
}

/// keepalived's `check_udp_reply`, applied only when `require_reply` has data: the length
/// within `min_reply_length..=max_reply_length`, and the first min(reply, data) bytes
/// equal to the data, but for its wildcard nibbles.
fn check_reply(check: &UdpCheck, reply: &[u8]) -> Result<(), ProbeError> {
    let Some(want) = reply_data(check) else {
        return Ok(());
    };
    let (len, min, max) = (reply.len(), check.min_reply_length, max_reply_len(check));
    if len < min {
        return Err(ProbeError::ReplyTooShort { len, min });
    }
    if len > max {
        return Err(ProbeError::ReplyTooLong { max });
    }
    // Bits of a wildcard nibble (`X`) are not compared.
    let ignored = |offset: usize| check.require_reply_mask.get(offset).copied().unwrap_or(0);
    let mut pairs = reply.iter().zip(want).enumerate();
    match pairs.find(|(offset, (got, want))| (*got ^ *want) & !ignored(*offset) != 0) {
        Some((offset, (&got, &want))) => Err(ProbeError::ReplyMismatch { offset, got, want }),
        None => Ok(()),
    }
}

/// Opens the probe's socket: `IP_RECVERR`, optional bind, connected to `target`.
fn open(target: SocketAddr, bind: Option<IpAddr>) -> Result<UdpSocket, ProbeError> {
    let domain = Domain::for_address(target);
    let socket =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(setup("UDP socket"))?;
    socket
        .set_nonblocking(true)
        .map_err(setup("non-blocking mode"))?;
    sys::set_recv_err(socket.as_fd(), target.is_ipv6()).map_err(setup("IP_RECVERR"))?;
    if let Some(bind) = bind {
        socket
            .bind(&SocketAddr::new(bind, 0).into())
            .map_err(setup(format!("bind {bind}")))?;
    }
    socket
        .connect(&target.into())
        .map_err(setup(format!("connect {target}")))?;
    // `from_std` panics outside a runtime; fail instead.
    tokio::runtime::Handle::try_current()
        .map_err(|e| io::Error::other(e.to_string()))
        .map_err(setup("register with the runtime"))?;
    UdpSocket::from_std(socket.into()).map_err(setup("register with the runtime"))
}

/// Sends the payload (UDP sends whole datagrams or fails).
async fn send(socket: &UdpSocket, payload: &[u8]) -> Result<(), ProbeError> {
    let sent = socket.send(payload).await.map_err(ProbeError::Send)?;
    if sent != payload.len() {
        return Err(ProbeError::Send(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short send: {sent} of {} bytes", payload.len()),
        )));
    }
    Ok(())
}

/// Waits for the first datagram (at most `buf_len` bytes of it are kept) or an ICMP
/// destination unreachable; other ICMP errors are skipped.
async fn wait_reply(socket: &UdpSocket, buf_len: usize) -> Result<Vec<u8>, ProbeError> {
    let mut buf = vec![0u8; buf_len];
    loop {
        let ready = socket
            .ready(Interest::READABLE | Interest::ERROR)
            .await
            .map_err(ProbeError::Recv)?;
        if ready.is_error() {
            // Through `try_io`, so that tokio clears the error readiness once the queue
            // is empty.
            drain_errors(|| {
                socket.try_io(Interest::ERROR, || sys::recv_error_queue(socket.as_fd()))
            })?;
        }
        if !ready.is_readable() {
            continue;
        }
        match socket.try_recv(&mut buf) {
            Ok(len) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                // `recv` returns (and clears) the socket error of an ICMP message that is
                // still queued: read the queue now; an error it does not explain fails
                // the check, as a failed `recv` does in keepalived.
                let explained = drain_errors(|| sys::recv_error_queue(socket.as_fd()))?;
                if explained == 0 {
                    return Err(ProbeError::Recv(e));
                }
            }
        }
    }
}

/// Reads the error queue until it is empty. A destination unreachable ends the probe;
/// returns how many other errors were skipped.
fn drain_errors(
    mut next: impl FnMut() -> io::Result<Option<sys::QueuedError>>,
) -> Result<usize, ProbeError> {
    let mut skipped = 0;
    loop {
        match next() {
            Ok(Some(queued)) => {
                let Some(err) = ExtendedErr::parse(&queued.data[..queued.len]) else {
                    skipped += 1;
                    continue;
                };
                if let Some(kind) = err.unreachable() {
                    return Err(ProbeError::Unreachable {
                        kind,
                        from: err.offender,
                    });
                }
                tracing::debug!(
                    errno = err.errno,
                    origin = err.origin,
                    icmp_type = err.icmp_type,
                    code = err.code,
                    from = ?err.offender,
                    "UDP probe skipped an ICMP error that is not a destination unreachable"
                );
                skipped += 1;
            }
            Ok(None) => skipped += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(skipped),
            Err(e) => return Err(ProbeError::Recv(e)),
        }
    }
}

/// A `struct sock_extended_err` (linux/errqueue.h) and the offender address after it.
///
/// ```text
/// u32 ee_errno | u8 ee_origin | u8 ee_type | u8 ee_code | u8 ee_pad | u32 ee_info |
/// u32 ee_data  | struct sockaddr_in / sockaddr_in6 offender (SO_EE_OFFENDER)
/// ```
/// Native byte order for the integers; network order inside the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExtendedErr {
    errno: u32,
    origin: u8,
    icmp_type: u8,
    code: u8,
    offender: Option<IpAddr>,
}

/// `SO_EE_ORIGIN_ICMP`.
const ORIGIN_ICMP: u8 = 2;
/// `SO_EE_ORIGIN_ICMP6`.
const ORIGIN_ICMP6: u8 = 3;
/// ICMP destination unreachable (RFC 792).
const ICMP_DEST_UNREACH: u8 = 3;
/// ICMPv6 destination unreachable (RFC 4443 §3.1).
const ICMP6_DEST_UNREACH: u8 = 1;
/// Size of `struct sock_extended_err`.
const EXTENDED_ERR_LEN: usize = 16;

impl ExtendedErr {
    /// Parses the control data of an `IP_RECVERR` / `IPV6_RECVERR` message; `None` if it is
    /// shorter than a `sock_extended_err`.
    fn parse(data: &[u8]) -> Option<ExtendedErr> {
        let (head, rest) = data.split_first_chunk::<EXTENDED_ERR_LEN>()?;
        let [e0, e1, e2, e3, origin, icmp_type, code, ..] = *head;
        Some(ExtendedErr {
            errno: u32::from_ne_bytes([e0, e1, e2, e3]),
            origin,
            icmp_type,
            code,
            offender: offender(rest),
        })
    }

    /// The destination-unreachable kind, if this is one (keepalived's `udp_socket_error`).
    fn unreachable(&self) -> Option<Unreachable> {
        match (self.origin, self.icmp_type) {
            (ORIGIN_ICMP, ICMP_DEST_UNREACH) => Some(Unreachable::from_icmp_v4(self.code)),
            (ORIGIN_ICMP6, ICMP6_DEST_UNREACH) => Some(Unreachable::from_icmp_v6(self.code)),
            _ => None,
        }
    }
}

/// The `sockaddr_in` / `sockaddr_in6` the kernel appends (family `AF_UNSPEC` when none).
fn offender(sockaddr: &[u8]) -> Option<IpAddr> {
    let (family, _) = sockaddr.split_first_chunk::<2>()?;
    match libc::c_int::from(u16::from_ne_bytes(*family)) {
        libc::AF_INET => {
            // family (2), port (2), address (4)
            let addr: [u8; 4] = sockaddr.get(4..8)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(addr)))
        }
        libc::AF_INET6 => {
            // family (2), port (2), flow info (4), address (16)
            let addr: [u8; 16] = sockaddr.get(8..24)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(require_reply: Option<&[u8]>, min: usize, max: Option<usize>) -> UdpCheck {
        UdpCheck {
            payload: Vec::new(),
            require_reply: require_reply.map(<[u8]>::to_vec),
            require_reply_mask: Vec::new(),
            min_reply_length: min,
            max_reply_length: max,
        }
    }

    #[test]
    fn default_payload_is_keepalived_s_32_byte_filler() {
        assert_eq!(
            payload(&check(None, 0, None)).as_ref(),
            b"keepalived check - keepalived ch"
        );
        let mut c = check(None, 0, None);
        c.payload = vec![1, 2, 3];
        assert_eq!(payload(&c).as_ref(), &[1, 2, 3]);
    }

    #[test]
    fn without_reply_data_any_reply_passes_whatever_its_length() {
        // No require_reply, and require_reply without a hex string (keepalived compares
        // nothing then: `reply_data` is NULL, so not even min/max apply).
        for c in [check(None, 4, Some(8)), check(Some(&[]), 4, Some(8))] {
            for reply in [&b""[..], b"x", b"a much longer reply than eight bytes"] {
                assert!(check_reply(&c, reply).is_ok());
            }
            assert_eq!(recv_buf_len(&c), 1);
        }
    }

    #[test]
    fn reply_data_is_compared_over_the_shorter_of_reply_and_data() {
        let c = check(Some(b"PONG!"), 0, None);
        assert!(check_reply(&c, b"PONG!").is_ok());
        assert!(
            check_reply(&c, b"PONG! and more").is_ok(),
            "data is a prefix"
        );
        assert!(
            check_reply(&c, b"PON").is_ok(),
            "a shorter reply that is a prefix passes"
        );
        assert!(
            check_reply(&c, b"").is_ok(),
            "an empty reply passes with min 0"
        );
        let err = check_reply(&c, b"PING!").unwrap_err();
        assert_eq!(
            err.to_string(),
            "reply differs from require_reply at byte 1: got 0x49, want 0x4f"
        );
        assert!(matches!(
            check_reply(&c, b"pong!"),
            Err(ProbeError::ReplyMismatch { offset: 0, .. })
        ));
    }

    #[test]
    fn wildcard_nibbles_match_any_value() {
        // `require_reply 4X 0K`-like data: 0x40 with its low nibble free, then 0x4b.
        let mut c = check(Some(&[0x40, 0x4b]), 0, None);
        c.require_reply_mask = vec![0x0f, 0x00];
        for reply in [&[0x40, 0x4b][..], &[0x4f, 0x4b], &[0x41, 0x4b, 0xff]] {
            assert!(check_reply(&c, reply).is_ok(), "{reply:x?}");
        }
        // The high nibble of the wildcard octet and the whole second octet still count.
        assert!(matches!(
            check_reply(&c, &[0x50, 0x4b]),
            Err(ProbeError::ReplyMismatch { offset: 0, .. })
        ));
        assert!(matches!(
            check_reply(&c, &[0x41, 0x4c]),
            Err(ProbeError::ReplyMismatch { offset: 1, .. })
        ));
    }

    #[test]
    fn reply_length_must_lie_within_min_and_max() {
        let c = check(Some(b"OK"), 3, Some(6));
        assert_eq!(
            check_reply(&c, b"OK").unwrap_err().to_string(),
            "reply too short: 2 bytes < 3"
        );
        assert!(check_reply(&c, b"OK!").is_ok());
        assert!(check_reply(&c, b"OK!!!!").is_ok());
        assert_eq!(
            check_reply(&c, b"OK!!!!!").unwrap_err().to_string(),
            "reply too long: more than 6 bytes"
        );
        assert_eq!(recv_buf_len(&c), 7);
    }

    #[test]
    fn max_reply_length_defaults_to_255() {
        let c = check(Some(b"A"), 0, None);
        assert!(check_reply(&c, &[b'A'; 255]).is_ok());
        assert!(matches!(
            check_reply(&c, &[b'A'; 256]),
            Err(ProbeError::ReplyTooLong { max: 255 })
        ));
        assert_eq!(recv_buf_len(&c), 256);
    }

    #[test]
    fn min_above_max_always_fails() {
        // keepalived warns "will always fail" at config time and then does.
        let c = check(Some(b"A"), 10, Some(5));
        for n in 0..20 {
            assert!(check_reply(&c, &vec![b'A'; n]).is_err(), "{n} bytes");
        }
    }

    /// A `sock_extended_err` + `sockaddr_in` as the kernel writes it.
    fn extended_err_v4(origin: u8, icmp_type: u8, code: u8, from: [u8; 4]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&(libc::ECONNREFUSED as u32).to_ne_bytes());
        d.extend_from_slice(&[origin, icmp_type, code, 0]);
        d.extend_from_slice(&[0; 8]); // info, data
        d.extend_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        d.extend_from_slice(&[0, 0]); // port
        d.extend_from_slice(&from);
        d.extend_from_slice(&[0; 8]); // sin_zero
        d
    }

    fn extended_err_v6(icmp_type: u8, code: u8, from: Ipv6Addr) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&(libc::ECONNREFUSED as u32).to_ne_bytes());
        d.extend_from_slice(&[ORIGIN_ICMP6, icmp_type, code, 0]);
        d.extend_from_slice(&[0; 8]);
        d.extend_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        d.extend_from_slice(&[0; 6]); // port, flow info
        d.extend_from_slice(&from.octets());
        d.extend_from_slice(&[0; 4]); // scope id
        d
    }

    #[test]
    fn icmp_port_unreachable_parses_with_its_sender() {
        let d = extended_err_v4(ORIGIN_ICMP, ICMP_DEST_UNREACH, 3, [192, 0, 2, 2]);
        let err = ExtendedErr::parse(&d).unwrap();
        assert_eq!(err.errno, libc::ECONNREFUSED as u32);
        assert_eq!(err.unreachable(), Some(Unreachable::Port));
        assert_eq!(err.offender, Some("192.0.2.2".parse().unwrap()));

        let from: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let err = ExtendedErr::parse(&extended_err_v6(ICMP6_DEST_UNREACH, 4, from)).unwrap();
        assert_eq!(err.unreachable(), Some(Unreachable::Port));
        assert_eq!(err.offender, Some(IpAddr::V6(from)));
    }

    #[test]
    fn only_destination_unreachable_fails_the_check() {
        // Time exceeded (11) and parameter problem (12) are not unreachables.
        for icmp_type in [11, 12] {
            let d = extended_err_v4(ORIGIN_ICMP, icmp_type, 0, [192, 0, 2, 9]);
            assert_eq!(ExtendedErr::parse(&d).unwrap().unreachable(), None);
        }
        // ICMPv6 packet too big (2), time exceeded (3).
        for icmp_type in [2, 3] {
            let d = extended_err_v6(icmp_type, 0, Ipv6Addr::LOCALHOST);
            assert_eq!(ExtendedErr::parse(&d).unwrap().unreachable(), None);
        }
        // A local error (origin 1), e.g. EMSGSIZE, is not an ICMP message.
        let d = extended_err_v4(1, ICMP_DEST_UNREACH, 3, [0; 4]);
        assert_eq!(ExtendedErr::parse(&d).unwrap().unreachable(), None);
    }

    #[test]
    fn queued_errors_end_or_continue_the_wait() {
        let unreachable = sys::QueuedError {
            data: {
                let mut data = [0; sys::ERR_DATA_LEN];
                let d = extended_err_v4(ORIGIN_ICMP, ICMP_DEST_UNREACH, 1, [192, 0, 2, 1]);
                data[..d.len()].copy_from_slice(&d);
                data
            },
            len: 32,
        };
        let mut time_exceeded = unreachable;
        time_exceeded.data[5] = 11;
        let queue = |items: Vec<sys::QueuedError>| {
            let mut items = items.into_iter();
            move || {
                items
                    .next()
                    .map(Some)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))
            }
        };
        assert_eq!(drain_errors(queue(vec![])).unwrap(), 0);
        assert_eq!(drain_errors(queue(vec![time_exceeded])).unwrap(), 1);
        let err = drain_errors(queue(vec![time_exceeded, unreachable])).unwrap_err();
        assert_eq!(err.to_string(), "host unreachable (ICMP from 192.0.2.1)");
    }

    #[test]
    fn short_or_odd_control_data_is_never_a_panic() {
        let full = extended_err_v4(ORIGIN_ICMP, ICMP_DEST_UNREACH, 3, [192, 0, 2, 2]);
        for n in 0..full.len() {
            let parsed = ExtendedErr::parse(&full[..n]);
            assert_eq!(parsed.is_some(), n >= EXTENDED_ERR_LEN, "{n} bytes");
        }
        // Offender family AF_UNSPEC: no address.
        let mut unspec = full.clone();
        unspec[16..18].copy_from_slice(&0u16.to_ne_bytes());
        assert_eq!(ExtendedErr::parse(&unspec).unwrap().offender, None);
    }

    #[test]
    fn success_reads_as_a_short_sentence() {
        let ok = UdpOk::NoError {
            waited: Duration::from_secs(5),
        };
        assert_eq!(ok.to_string(), "no ICMP error within 5s");
        assert_eq!(ok.rtt(), None);
        let ok = UdpOk::Replied {
            rtt: Duration::from_millis(2),
        };
        assert_eq!(ok.to_string(), "reply in 2ms");
        assert_eq!(ok.rtt(), Some(Duration::from_millis(2)));
    }

    #[tokio::test]
    async fn a_source_of_the_other_family_fails_before_any_socket() {
        let err = udp(
            "192.0.2.2:53".parse().unwrap(),
            Some("2001:db8::1".parse().unwrap()),
            &check(None, 0, None),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProbeError::FamilyMismatch { .. }), "{err}");
    }
}
