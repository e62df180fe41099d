//! `dns`: keepalived's `DNS_CHECK` — one DNS query over UDP to the server; keepalived's rule
//! decides what the answer means.
//!
//! # Parameters
//! | key          | default | meaning                                                    |
//! |--------------|---------|------------------------------------------------------------|
//! | `address`    | —       | the server's `IP:PORT` (`192.0.2.53:53`, `[2001:db8::53]:53`) |
//! | `name`       | —       | the name asked for (`www.example.com`, `.` for the root)   |
//! | `qtype`      | `SOA`   | the type asked for: `A`, `NS`, `CNAME`, `SOA`, `MX`, `TXT`, `AAAA`, `RRSIG`, `DNSKEY`, or a code 1–65535 |
//! | `timeout_ms` | `1000`  | how long to wait for the answer                            |
//! | `bind`       | —       | query from this local IP (`bindto`; the host must grant it) |
//!
//! # Grants
//! `udp IP:PORT` (the same address).
//!
//! # keepalived's semantics (2.2.7 `check/check_dns.c`)
//! - A UDP socket bound to `bind` if given, connected to the server.
//! - The query (`dns_make_query`): a random ID, flags with only RD set, one question
//!   `name`/`qtype`/class IN, no other records.
//! - The reply (`dns_recv_thread`), waited for up to the timeout: a datagram shorter than a
//!   header, with another ID, or that is not a response (QR clear) is ignored and the wait
//!   goes on; a response with a non-zero RCODE fails; any other response passes —
//!   keepalived checks neither the question echoed nor the answer count. A receive error
//!   (the port unreachable of a stopped server) or the timeout fails.
//!
//! The codec follows RFC 1035 §4.1: [`encode_query`] writes into an exactly sized buffer,
//! [`ReplyHeader::decode`] reads the fixed 12-byte header and never indexes unchecked.
//!
//! # Verdicts
//! - `ok` — the answer came; measurement `rtt_ms`.
//! - `fail` — `answer with RCODE 3`, `no reply within 1000ms`, `192.0.2.53:53: connection
//!   refused (port unreachable)`, or a bad parameter.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use wasmalived_plugin_sdk::net::NetError;
use wasmalived_plugin_sdk::{export_check, Check, Host, ParamError, Params, Verdict};

/// Default wait for the answer.
const DEFAULT_TIMEOUT_MS: u64 = 1000;
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
/// RFC 1035 §2.3.4: a label is at most 63 bytes, a name at most 255.
const LABEL_MAX: usize = 63;
const NAME_MAX: usize = 255;
/// The types keepalived names, with their QTYPE codes (RFC 1035 §3.2.2, RFC 3596, RFC 4034).
const TYPES: [(&str, u16); 9] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("RRSIG", 46),
    ("DNSKEY", 48),
];

/// The check.
pub struct Dns;

impl Check for Dns {
    fn check(host: &impl Host, params: &Params) -> Verdict {
        let config = match Config::from_params(params) {
            Ok(c) => c,
            Err(e) => return Verdict::fail(e),
        };
        let start = host.monotonic();
        match query(host, &config) {
            Ok(()) => {
                let ms = host.elapsed_since(start).as_nanos() as f64 / 1e6;
                Verdict::ok().measure("rtt_ms", ms)
            }
            Err(reason) => Verdict::fail(reason),
        }
    }
}

export_check!(Dns);

/// The question asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The labels of the name (none for the root).
    pub labels: Vec<String>,
    /// The QTYPE code.
    pub qtype: u16,
}

impl Question {
    /// `name` (a trailing dot is the same name; `.` is the root) and `qtype`; the name
    /// must follow RFC 1035 §2.3.4's limits.
    pub fn new(name: &str, qtype: u16) -> Result<Question, String> {
        let labels: Vec<String> = if name == "." {
            Vec::new()
        } else {
            name.strip_suffix('.')
                .unwrap_or(name)
                .split('.')
                .map(str::to_owned)
                .collect()
        };
        if labels.iter().any(|l| l.is_empty() || l.len() > LABEL_MAX) {
            return Err(format!(
                "expected labels of 1 to {LABEL_MAX} bytes separated by dots"
            ));
        }
        if labels.iter().map(|l| 1 + l.len()).sum::<usize>() + 1 > NAME_MAX {
            return Err(format!("longer than {NAME_MAX} bytes"));
        }
        Ok(Question { labels, qtype })
    }
}

/// The query for `question` with identifier `id` (RFC 1035 §4.1.1–§4.1.2):
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
pub fn encode_query(question: &Question, id: u16) -> Vec<u8> {
    let qname_len: usize = question.labels.iter().map(|l| 1 + l.len()).sum::<usize>() + 1;
    let mut out = Vec::with_capacity(HEADER_LEN + qname_len + 4);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    for count in [1u16, 0, 0, 0] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    for label in &question.labels {
        // Checked by `Question::new`: at most 63 bytes.
        out.push(u8::try_from(label.len()).unwrap_or(LABEL_MAX as u8));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&question.qtype.to_be_bytes());
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
        let header: &[u8; HEADER_LEN] = datagram.get(..HEADER_LEN)?.try_into().ok()?;
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

/// The check's parameters, parsed.
struct Config {
    addr: SocketAddr,
    question: Question,
    timeout: Duration,
    bind: Option<IpAddr>,
}

impl Config {
    fn from_params(params: &Params) -> Result<Config, ParamError> {
        let addr = params
            .value::<SocketAddr>("address")
            .hint("expected IP:PORT")
            .required()?;
        let name: String = params.value("name").no_hint().required()?;
        let qtype = match params.get("qtype") {
            None => 6,
            Some(t) => qtype_code(t).ok_or_else(|| {
                ParamError::invalid("qtype", t, Some("expected a type name or a code 1-65535"))
            })?,
        };
        let question = Question::new(&name, qtype)
            .map_err(|e| ParamError::invalid("name", &name, Some(&e)))?;
        let timeout_ms = params
            .value("timeout_ms")
            .no_hint()
            .default(DEFAULT_TIMEOUT_MS)?;
        let bind = params
            .value::<IpAddr>("bind")
            .hint("expected a literal IP")
            .optional()?;
        Ok(Config {
            addr,
            question,
            timeout: Duration::from_millis(timeout_ms),
            bind,
        })
    }
}

/// A type by keepalived's name (case-insensitively) or by its code.
fn qtype_code(text: &str) -> Option<u16> {
    TYPES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, code)| *code)
        .or_else(|| text.parse::<u16>().ok().filter(|c| *c > 0))
}

/// keepalived's exchange (see the crate doc).
fn query(host: &impl Host, config: &Config) -> Result<(), String> {
    let addr = config.addr;
    let mut socket = host
        .udp_connect(config.bind, addr)
        .map_err(|e| format!("{addr}: {e}"))?;
    let id = (host.random_u64() & 0xffff) as u16;
    socket
        .send(&encode_query(&config.question, id))
        .map_err(|e| format!("{addr}: {e}"))?;
    let start = host.monotonic();
    let no_reply = || format!("no reply within {}ms", config.timeout.as_millis());
    loop {
        let left = config.timeout.saturating_sub(host.elapsed_since(start));
        if left.is_zero() {
            return Err(no_reply());
        }
        match socket.recv(RECV_LEN, left) {
            Ok(datagram) => match read_reply(&datagram, id) {
                Reading::Ignore => continue,
                Reading::Answer => return Ok(()),
                Reading::Error(rcode) => return Err(format!("answer with RCODE {rcode}")),
            },
            Err(NetError::Deadline(_)) => return Err(no_reply()),
            Err(e) => return Err(format!("{addr}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use wasmalived_plugin_sdk::net::UdpError;
    use wasmalived_plugin_sdk::testing::{FakeHost, FakeReply};

    use super::*;

    const NS: &str = "192.0.2.53:53";

    fn ns() -> SocketAddr {
        NS.parse().expect("addr")
    }

    fn question(name: &str, qtype: u16) -> Question {
        Question::new(name, qtype).expect("question")
    }

    #[test]
    fn the_query_is_keepalived_s_rfc_1035_layout() {
        // RFC 1035 §4.1: ID 0x1234, RD, QDCOUNT 1; www.example.com A IN.
        let q = encode_query(&question("www.example.com", 1), 0x1234);
        let want: Vec<u8> = [
            &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0][..],
            b"\x03www\x07example\x03com\x00",
            &[0, 1, 0, 1],
        ]
        .concat();
        assert_eq!(q, want);
        // A trailing dot is the same name; the root is one zero byte; SOA is 6.
        assert_eq!(encode_query(&question("www.example.com.", 1), 0x1234), want);
        let root = encode_query(&question(".", 6), 7);
        assert_eq!(&root[HEADER_LEN..], &[0, 0, 6, 0, 1]);
        assert_eq!(root.len(), HEADER_LEN + 5);
    }

    #[test]
    fn replies_are_judged_by_id_qr_and_rcode_only() {
        let id = 0xbeef;
        let mut reply = encode_query(&question(".", 6), id);
        // Our own query echoed back (QR clear) is not an answer.
        assert_eq!(read_reply(&reply, id), Reading::Ignore);
        reply[2] |= 0x80; // QR
        assert_eq!(read_reply(&reply, id), Reading::Answer);
        assert_eq!(read_reply(&reply, id ^ 1), Reading::Ignore, "another ID");
        assert_eq!(read_reply(&reply[..11], id), Reading::Ignore, "too short");
        reply[3] |= 3; // NXDOMAIN
        assert_eq!(read_reply(&reply, id), Reading::Error(3));
        // No answer record is still a pass, as keepalived (ANCOUNT is not read).
        assert_eq!(
            ReplyHeader::decode(&reply),
            Some(ReplyHeader {
                id,
                response: true,
                rcode: 3
            })
        );
    }

    #[test]
    fn names_and_types_follow_rfc_1035_limits() {
        assert!(Question::new(&"a".repeat(64), 1).is_err(), "label > 63");
        assert!(Question::new("a..b", 1).is_err(), "empty label");
        let long = vec!["a".repeat(63); 4].join(".");
        assert!(Question::new(&long, 1).is_err(), "name > 255");
        assert_eq!(qtype_code("aaaa"), Some(28));
        assert_eq!(qtype_code("65"), Some(65));
        assert_eq!(qtype_code("0"), None);
        assert_eq!(qtype_code("ANY"), None);
    }

    /// A server that answers each query with a stray response (another ID) first, then the
    /// query echoed as a response with `rcode`.
    fn server(rcode: u8) -> impl Fn(&[u8]) -> Vec<FakeReply<Vec<u8>>> {
        move |query: &[u8]| {
            let mut stray = query.to_vec();
            stray[0] ^= 0xff;
            stray[2] |= 0x80;
            let mut answer = query.to_vec();
            answer[2] |= 0x80;
            answer[3] |= rcode;
            vec![FakeReply::Answer(stray), FakeReply::Answer(answer)]
        }
    }

    #[test]
    fn an_answer_passes_after_strays_and_an_rcode_fails() {
        let host = FakeHost::new();
        host.udp_peer(ns(), server(0));
        let v = host.run::<Dns>(&[
            ("address", NS),
            ("name", "www.example.test"),
            ("qtype", "A"),
        ]);
        assert!(v.is_ok(), "{v:?}");
        let sent = host.udp_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(&sent[0].data[HEADER_LEN..][..4], b"\x03www");
        assert_eq!(&sent[0].data[sent[0].data.len() - 4..], &[0, 1, 0, 1]);
        host.udp_peer(ns(), server(3));
        let v = host.run::<Dns>(&[("address", NS), ("name", ".")]);
        assert_eq!(v.reason(), Some("answer with RCODE 3"));
    }

    #[test]
    fn silence_a_closed_port_or_a_denial_fails() {
        let host = FakeHost::new();
        let v = host.run::<Dns>(&[("address", NS), ("name", ".")]);
        assert_eq!(
            v.reason(),
            Some("192.0.2.53:53: connection refused (port unreachable)")
        );
        host.udp_peer(ns(), |_| vec![FakeReply::Hang]);
        let v = host.run::<Dns>(&[("address", NS), ("name", "."), ("timeout_ms", "300")]);
        assert_eq!(v.reason(), Some("no reply within 300ms"));
        host.udp_peer(ns(), |_| {
            vec![FakeReply::Error(NetError::Udp(UdpError::Denied))]
        });
        let v = host.run::<Dns>(&[("address", NS), ("name", ".")]);
        assert_eq!(
            v.reason(),
            Some("192.0.2.53:53: access denied (address not granted)")
        );
    }

    #[test]
    fn bind_queries_from_the_given_address() {
        let host = FakeHost::new();
        host.udp_peer(ns(), server(0));
        let v = host.run::<Dns>(&[("address", NS), ("name", "."), ("bind", "192.0.2.5")]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(
            host.udp_sent()[0].from,
            Some("192.0.2.5".parse().expect("ip"))
        );
        let v = host.run::<Dns>(&[("address", NS), ("name", "."), ("qtype", "ANY")]);
        assert_eq!(
            v.reason(),
            Some("bad parameter qtype=`ANY`: expected a type name or a code 1-65535")
        );
    }
}
