//! Host-side network probes for the LVS director: keepalived's `PING_CHECK` ([`ping`]) and
//! `UDP_CHECK` ([`udp`]). A WebAssembly guest cannot send ICMP or read a socket's ICMP
//! errors (which `UDP_CHECK` judges by), so these run in the host, one short-lived socket
//! per probe. (`DNS_CHECK` and `SMTP_CHECK` run sandboxed, as the stock plugins `dns` and
//! `smtp`: `crate::lvs::probe`.)
//!
//! - [`icmp`]: one ICMP / ICMPv6 echo request on a raw socket; success is the matching echo
//!   reply within the timeout (keepalived 2.2.7/2.4 `check_ping.c`).
//! - [`udp`]: one datagram on a connected UDP socket; failure is an ICMP destination
//!   unreachable, a missing reply when one is required, or a reply that breaks
//!   keepalived's length and content rules (`check_udp.c`, `layer4.c`).
//! - `sys`: the few socket options and the error-queue read that need libc (the only
//!   `unsafe` code here).
//!
//! Both probes are plain async functions: no task, no shared socket, no global state but two
//! counters (ICMP identifiers, random draws). Many can run at once on any tokio runtime; each
//! filters what its socket receives (source address, identifier, sequence, nonce), so
//! concurrent probes, other ping programs and stray packets never confuse one another.
//! Nothing received is indexed unchecked and every buffer has a fixed bound.

pub mod icmp;
mod sys;
pub mod udp;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

pub use icmp::ping;
pub use udp::{udp, UdpOk};

/// Why a probe failed. `Display` is a short reason for the operator's log line, e.g.
/// "no echo reply within 5s", "port unreachable (ICMP from 192.0.2.2)",
/// "reply too short: 3 bytes < 8".
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// `bind` and the target are of different address families.
    #[error("source {bind} and target {target} are of different address families")]
    FamilyMismatch {
        /// The requested source address.
        bind: IpAddr,
        /// The target.
        target: IpAddr,
    },
    /// Setting up the socket failed (`step` says which call: "socket", "bind 192.0.2.1", …).
    #[error("{step}: {source}")]
    Socket {
        /// What was being done.
        step: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Sending the request failed (no route, for example).
    #[error("send failed: {0}")]
    Send(#[source] io::Error),
    /// Receiving failed with an error the socket's error queue does not explain.
    #[error("receive failed: {0}")]
    Recv(#[source] io::Error),
    /// PING_CHECK: no matching echo reply arrived in time.
    #[error("no echo reply within {timeout:?}")]
    NoEchoReply {
        /// The probe's timeout.
        timeout: Duration,
    },
    /// UDP_CHECK with `require_reply`: no datagram arrived in time.
    #[error("no reply within {timeout:?}")]
    NoReply {
        /// The probe's timeout.
        timeout: Duration,
    },
    /// UDP_CHECK: an ICMP / ICMPv6 destination unreachable for our datagram.
    #[error("{kind} (ICMP{})", from.map(|a| format!(" from {a}")).unwrap_or_default())]
    Unreachable {
        /// Which kind (from the ICMP code).
        kind: Unreachable,
        /// The address that sent the ICMP error, when the kernel reports it.
        from: Option<IpAddr>,
    },
    /// UDP_CHECK: the reply is shorter than `min_reply_length`.
    #[error("reply too short: {len} bytes < {min}")]
    ReplyTooShort {
        /// Reply length.
        len: usize,
        /// `min_reply_length`.
        min: usize,
    },
    /// UDP_CHECK: the reply is longer than `max_reply_length` (the probe reads at most
    /// one byte more than that, so the true length may be larger).
    #[error("reply too long: more than {max} bytes")]
    ReplyTooLong {
        /// `max_reply_length` (255 unless configured).
        max: usize,
    },
    /// UDP_CHECK: the reply differs from `require_reply`.
    #[error("reply differs from require_reply at byte {offset}: got {got:#04x}, want {want:#04x}")]
    ReplyMismatch {
        /// Offset of the first differing byte.
        offset: usize,
        /// The byte received.
        got: u8,
        /// The byte expected.
        want: u8,
    },
}

/// The kind of an ICMP destination unreachable (ICMP type 3 codes, RFC 792 / RFC 1812;
/// ICMPv6 type 1 codes, RFC 4443 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// Net unreachable / unknown / prohibited-by-TOS; ICMPv6 "no route".
    Network,
    /// Host unreachable (including the local stack's own report when ARP / neighbour
    /// discovery gets no answer); ICMPv6 "address unreachable".
    Host,
    /// Protocol unreachable.
    Protocol,
    /// Port unreachable: nothing listens on the port.
    Port,
    /// Communication administratively prohibited (a firewall's reject); ICMPv6 also
    /// "source address failed policy" and "reject route".
    Prohibited,
    /// Any other code (fragmentation needed, source route failed, beyond scope, …).
    Other {
        /// The ICMP code.
        code: u8,
    },
}

impl Unreachable {
    /// The kind of an IPv4 ICMP destination unreachable (type 3) with this code.
    pub fn from_icmp_v4(code: u8) -> Unreachable {
        match code {
            0 | 6 | 11 => Unreachable::Network,
            1 | 7 | 12 => Unreachable::Host,
            2 => Unreachable::Protocol,
            3 => Unreachable::Port,
            9 | 10 | 13 => Unreachable::Prohibited,
            code => Unreachable::Other { code },
        }
    }

    /// The kind of an ICMPv6 destination unreachable (type 1) with this code.
    pub fn from_icmp_v6(code: u8) -> Unreachable {
        match code {
            0 => Unreachable::Network,
            3 => Unreachable::Host,
            4 => Unreachable::Port,
            1 | 5 | 6 => Unreachable::Prohibited,
            code => Unreachable::Other { code },
        }
    }
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreachable::Network => f.write_str("network unreachable"),
            Unreachable::Host => f.write_str("host unreachable"),
            Unreachable::Protocol => f.write_str("protocol unreachable"),
            Unreachable::Port => f.write_str("port unreachable"),
            Unreachable::Prohibited => f.write_str("administratively prohibited"),
            Unreachable::Other { code } => write!(f, "destination unreachable (code {code})"),
        }
    }
}

/// `bind` must be of the target's family.
fn check_family(bind: Option<IpAddr>, target: IpAddr) -> Result<(), ProbeError> {
    match bind {
        Some(b) if b.is_ipv4() != target.is_ipv4() => {
            Err(ProbeError::FamilyMismatch { bind: b, target })
        }
        _ => Ok(()),
    }
}

/// Wraps a setup error with the step that failed.
fn setup(step: impl Into<String>) -> impl FnOnce(io::Error) -> ProbeError {
    let step = step.into();
    move |source| ProbeError::Socket { step, source }
}

/// 64 unpredictable bits: SipHash with the process's random keys (std's `RandomState`,
/// seeded from the OS) over a counter and the wall clock. Enough to make each probe's
/// identifier and nonce unguessable by stray traffic; not for cryptography.
fn random_u64() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((n, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_short_operator_sentences() {
        let cases: [(ProbeError, &str); 7] = [
            (
                ProbeError::NoEchoReply {
                    timeout: Duration::from_secs(5),
                },
                "no echo reply within 5s",
            ),
            (
                ProbeError::NoReply {
                    timeout: Duration::from_millis(1500),
                },
                "no reply within 1.5s",
            ),
            (
                ProbeError::Unreachable {
                    kind: Unreachable::Port,
                    from: None,
                },
                "port unreachable (ICMP)",
            ),
            (
                ProbeError::Unreachable {
                    kind: Unreachable::Host,
                    from: Some("192.0.2.1".parse().unwrap()),
                },
                "host unreachable (ICMP from 192.0.2.1)",
            ),
            (
                ProbeError::ReplyTooShort { len: 3, min: 8 },
                "reply too short: 3 bytes < 8",
            ),
            (
                ProbeError::ReplyTooLong { max: 255 },
                "reply too long: more than 255 bytes",
            ),
            (
                ProbeError::ReplyMismatch {
                    offset: 2,
                    got: 0x41,
                    want: 0x0a,
                },
                "reply differs from require_reply at byte 2: got 0x41, want 0x0a",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }

    #[test]
    fn unreachable_codes_map_as_the_rfcs_name_them() {
        // RFC 792 / RFC 1812 §5.2.7.1 (IPv4 type 3).
        assert_eq!(Unreachable::from_icmp_v4(3), Unreachable::Port);
        assert_eq!(Unreachable::from_icmp_v4(1), Unreachable::Host);
        assert_eq!(Unreachable::from_icmp_v4(0), Unreachable::Network);
        assert_eq!(Unreachable::from_icmp_v4(2), Unreachable::Protocol);
        assert_eq!(Unreachable::from_icmp_v4(13), Unreachable::Prohibited);
        assert_eq!(Unreachable::from_icmp_v4(4), Unreachable::Other { code: 4 });
        // RFC 4443 §3.1 (IPv6 type 1).
        assert_eq!(Unreachable::from_icmp_v6(4), Unreachable::Port);
        assert_eq!(Unreachable::from_icmp_v6(3), Unreachable::Host);
        assert_eq!(Unreachable::from_icmp_v6(0), Unreachable::Network);
        assert_eq!(Unreachable::from_icmp_v6(1), Unreachable::Prohibited);
        assert_eq!(Unreachable::from_icmp_v6(2), Unreachable::Other { code: 2 });
    }

    #[test]
    fn bind_must_match_the_target_family() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(check_family(None, v4).is_ok());
        assert!(check_family(Some(v4), v4).is_ok());
        let err = check_family(Some(v6), v4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "source 2001:db8::1 and target 192.0.2.1 are of different address families"
        );
    }

    #[test]
    fn random_values_differ_between_calls() {
        let a: Vec<u64> = (0..64).map(|_| random_u64()).collect();
        let mut b = a.clone();
        b.sort_unstable();
        b.dedup();
        assert_eq!(a.len(), b.len());
    }
}
