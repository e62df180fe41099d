//! `DNS_CHECK`: one DNS query over UDP to the real server; keepalived's rule decides what
//! the answer means.
//!
//! # keepalived's semantics (2.2.7 `check/check_dns.c`)
//! - A `SOCK_DGRAM` socket bound to `bindto` if configured, `connect`ed to the real server
//!   (`connect_ip`/`connect_port`, else the real server's address and port).
//! - The query (`dns_make_query`): a random ID, flags with only RD set, one question
//!   `name`/`type`/class IN, no other records.
//! - The reply (`dns_recv_thread`), waited for up to `connect_timeout`: a datagram shorter
//!   than a header, with another ID, or that is not a response (QR clear) is ignored and
//!   the wait goes on; a response with a non-zero RCODE fails; any other response passes —
//!   keepalived checks neither the question echoed nor the answer count. A receive error
//!   (the ICMP port unreachable of a stopped server, reported as "connection refused") or
//!   the timeout fails.
//!
//! The codec follows RFC 1035 §4.1: [`encode_query`] writes into an exactly sized buffer,
//! [`ReplyHeader::decode`] reads the fixed 12-byte header and never indexes unchecked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;
use wasmalived_config::lvs::DnsCheck;

use super::{check_family, random_u64, setup, ProbeError};

/// RFC 1035 §4.1.1: the header is 12 bytes.
const HEADER_LEN: usize = 12;
/// keepalived's receive buffer (`DNS_BUFFER_SIZE`); a longer reply is truncated, which is
/// harmless since only its header is read.
const RECV_LEN: usize = 768;
/// RFC 1035 §3.2.4: class IN.
const CLASS_IN: u16 = 1;
/// RFC 1035 §4.1.1: the RD (recursion desired) bit of the flags.
const FLAG_RD: u16 = 0x0100;
/// RFC 1035 §4.1.1: the QR (response) bit of the flags.
const FLAG_QR: u16 = 0x8000;

/// A passed `DNS_CHECK`: how long the answer took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsOk {
    /// Time from sending the query to the answer.
    pub rtt: Duration,
}

/// The query for `check` with identifier `id` (RFC 1035 §4.1.1–§4.1.2):
///
/// ```text
///  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
/// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
/// |                      ID                       |
/// |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
/// |                    QDCOUNT = 1                |
/// |          ANCOUNT = NSCOUNT = ARCOUNT = 0      |
/// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
/// |  QNAME (length-prefixed labels, 0)  | QTYPE | QCLASS |
/// ```
///
/// The name was validated by the configuration (no empty label, labels of at most 63
/// bytes); the root is `.`.
pub fn encode_query(check: &DnsCheck, id: u16) -> Vec<u8> {
    let labels: Vec<&str> = check
        .name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .collect();
    let qname_len: usize = labels.iter().map(|l| 1 + l.len()).sum::<usize>() + 1;
    let mut out = Vec::with_capacity(HEADER_LEN + qname_len + 4);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    for count in [1u16, 0, 0, 0] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    for label in labels {
        // Validated: at most 63 bytes.
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&check.qtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// The fields of a reply's header the check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The identifier (must be the query's).
    pub id: u16,
    /// QR: a response, not a query.
    pub response: bool,
    /// RCODE (0: no error).
    pub rcode: u8,
}

impl ReplyHeader {
    /// Reads the header; `None` if the datagram is shorter than one.
    pub fn decode(datagram: &[u8]) -> Option<ReplyHeader> {
        let header = datagram.get(..HEADER_LEN)?;
        let id = u16::from_be_bytes([header[0], header[1]]);
        let flags = u16::from_be_bytes([header[2], header[3]]);
        Some(ReplyHeader {
            id,
            response: flags & FLAG_QR != 0,
            rcode: (flags & 0x000f) as u8,
        })
    }
}

/// What one received datagram means for the query `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Not an answer to this query: keep waiting.
    Ignore,
    /// The answer, without error.
    Answer,
    /// The answer, with this RCODE.
    Error(u8),
}

fn read_reply(datagram: &[u8], id: u16) -> Reading {
    match ReplyHeader::decode(datagram) {
        Some(h) if h.id == id && h.response => match h.rcode {
            0 => Reading::Answer,
            rcode => Reading::Error(rcode),
        },
        _ => Reading::Ignore,
    }
}

/// `DNS_CHECK` with keepalived's semantics (see the module doc): queries `target` from
/// `bind`:0 if given, then waits up to `timeout` for the answer. Must run inside a tokio
/// runtime.
pub async fn dns(
    target: SocketAddr,
    bind: Option<IpAddr>,
    check: &DnsCheck,
    timeout: Duration,
) -> Result<DnsOk, ProbeError> {
    check_family(bind, target.ip())?;
    let local = match (bind, target) {
        (Some(ip), _) => SocketAddr::new(ip, 0),
        (None, SocketAddr::V4(_)) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        (None, SocketAddr::V6(_)) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(setup(format!("bind {local}")))?;
    socket
        .connect(target)
        .await
        .map_err(setup(format!("connect {target}")))?;
    let id = (random_u64() & 0xffff) as u16;
    let query = encode_query(check, id);
    let start = Instant::now();
    let exchange = async {
        socket.send(&query).await.map_err(ProbeError::Send)?;
        let mut buf = [0u8; RECV_LEN];
        loop {
            // "Connection refused": the ICMP port unreachable of a server that does not
            // listen (the socket is connected, so the kernel reports it here).
            let len = socket.recv(&mut buf).await.map_err(ProbeError::Recv)?;
            match read_reply(buf.get(..len).unwrap_or_default(), id) {
                Reading::Ignore => continue,
                Reading::Answer => return Ok(()),
                Reading::Error(rcode) => return Err(ProbeError::DnsRcode { rcode }),
            }
        }
    };
    match tokio::time::timeout_at(start + timeout, exchange).await {
        Ok(Ok(())) => Ok(DnsOk {
            rtt: start.elapsed(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ProbeError::NoReply { timeout }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmalived_config::lvs::DnsType;

    fn check(qtype: DnsType, name: &str) -> DnsCheck {
        DnsCheck {
            qtype,
            name: name.into(),
        }
    }

    #[test]
    fn the_query_is_keepalived_s_rfc_1035_layout() {
        // RFC 1035 §4.1: ID 0x1234, RD, QDCOUNT 1; www.example.com A IN.
        let q = encode_query(&check(DnsType::A, "www.example.com"), 0x1234);
        let want: Vec<u8> = [
            &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0][..],
            b"\x03www\x07example\x03com\x00",
            &[0, 1, 0, 1],
        ]
        .concat();
        assert_eq!(q, want);
        // A trailing dot is the same name; the root is one zero byte; SOA is 6.
        assert_eq!(
            encode_query(&check(DnsType::A, "www.example.com."), 0x1234),
            want
        );
        let root = encode_query(&check(DnsType::Soa, "."), 7);
        assert_eq!(&root[HEADER_LEN..], &[0, 0, 6, 0, 1]);
        assert_eq!(root.len(), HEADER_LEN + 5);
    }

    #[test]
    fn replies_are_judged_by_id_qr_and_rcode_only() {
        let id = 0xbeef;
        let mut reply = encode_query(&check(DnsType::Soa, "."), id);
        // Our own query echoed back (QR clear) is not an answer.
        assert_eq!(read_reply(&reply, id), Reading::Ignore);
        reply[2] |= 0x80; // QR
        assert_eq!(read_reply(&reply, id), Reading::Answer);
        assert_eq!(read_reply(&reply, id ^ 1), Reading::Ignore, "another ID");
        assert_eq!(read_reply(&reply[..11], id), Reading::Ignore, "too short");
        reply[3] |= 3; // NXDOMAIN
        assert_eq!(read_reply(&reply, id), Reading::Error(3));
        // No answer record is still a pass, as keepalived (ANCOUNT is not read).
        let header = ReplyHeader::decode(&reply).expect("header");
        assert_eq!(
            header,
            ReplyHeader {
                id,
                response: true,
                rcode: 3
            }
        );
    }

    #[tokio::test]
    async fn a_local_server_answers_and_a_closed_port_fails() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let answer = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (len, from) = server.recv_from(&mut buf).await.expect("query");
            // A stray response with another ID first (ignored), then the answer.
            let mut stray = buf[..len].to_vec();
            stray[0] ^= 0xff;
            stray[2] |= 0x80;
            server.send_to(&stray, from).await.expect("stray");
            buf[2] |= 0x80;
            server.send_to(&buf[..len], from).await.expect("answer");
            server
        });
        let c = check(DnsType::Soa, ".");
        let ok = dns(addr, None, &c, Duration::from_secs(5)).await;
        assert!(ok.is_ok(), "{ok:?}");
        drop(answer.await.expect("server"));
        // The server is gone: the port unreachable is a receive error.
        let err = dns(addr, None, &c, Duration::from_secs(5))
            .await
            .expect_err("closed port");
        assert!(err.to_string().contains("refused"), "closed port: {err}");
    }
}
