//! `PING_CHECK` and `UDP_CHECK` probes between two namespaces (run as root): the probe runs
//! in `A`, the real server is `B` (see `net_lab`). Every packet stays inside the lab.
//!
//! Timeouts: a probe that must succeed gets 5 s (it returns as soon as the reply or the ICMP
//! error arrives, in milliseconds); a probe that must fail *by* timeout gets 300 ms and the
//! test only checks that it did not end sooner.

mod net_lab;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use net_lab::{block_on, join, run, Lab};
use wasmalived::net::probe::{self, ProbeError, UdpOk, Unreachable};
use wasmalived_config::lvs::UdpCheck;

/// For probes that must succeed or fail on an ICMP error.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// For probes that must fail by timeout.
const SHORT: Duration = Duration::from_millis(300);

const A4: &str = "192.0.2.1";
const A4_SECOND: &str = "192.0.2.11";
const B4: &str = "192.0.2.2";
const A6: &str = "2001:db8::1";
/// In its own prefix: the kernel caps source selection's longest-match rule (RFC 6724
/// rule 8) at the prefix length, so a second address in the lab's /64 would tie with the
/// first and might be chosen for unbound probes.
const A6_SECOND: &str = "2001:db8:1::11";
const B6: &str = "2001:db8::2";
/// In the lab's subnets, held by nobody.
const NOBODY4: &str = "192.0.2.99";
const NOBODY6: &str = "2001:db8::99";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(ip_text: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(ip_text), port)
}

/// Runs `f` in namespace A on its own thread and runtime; returns its output.
fn in_a<R, Fut>(lab: &Lab, f: impl FnOnce() -> Fut + Send + 'static) -> R
where
    R: Send + 'static,
    Fut: Future<Output = R>,
{
    join(lab.spawn_in(&lab.a, move || block_on(f())))
}

/// Gives A its second IPv6 address (`A6_SECOND`) and B an on-link route to it.
fn add_second_v6(lab: &Lab) {
    lab.ip(
        &lab.a,
        &["addr", "add", "2001:db8:1::11/64", "dev", "vethA", "nodad"],
    );
    lab.ip(
        &lab.b,
        &["-6", "route", "add", "2001:db8:1::/64", "dev", "vethB"],
    );
}

/// `sysctl -qw` in a namespace.
fn sysctl(ns: &str, settings: &[&str]) {
    let mut args = vec!["netns", "exec", ns, "sysctl", "-qw"];
    args.extend_from_slice(settings);
    run("ip", &args);
}

fn ping_from_a(lab: &Lab, target: &str, bind: Option<&str>, timeout: Duration) -> PingResult {
    let (target, bind) = (ip(target), bind.map(ip));
    in_a(lab, move || async move {
        let start = Instant::now();
        let result = probe::ping(target, bind, timeout).await;
        (result, start.elapsed())
    })
}

type PingResult = (Result<Duration, ProbeError>, Duration);
type UdpResult = (Result<UdpOk, ProbeError>, Duration);

fn udp_from_a(
    lab: &Lab,
    target: SocketAddr,
    bind: Option<&str>,
    check: UdpCheck,
    timeout: Duration,
) -> UdpResult {
    let bind = bind.map(ip);
    in_a(lab, move || async move {
        let start = Instant::now();
        let result = probe::udp(target, bind, &check, timeout).await;
        (result, start.elapsed())
    })
}

fn udp_check(payload: &[u8], require_reply: Option<&[u8]>) -> UdpCheck {
    UdpCheck {
        payload: payload.to_vec(),
        require_reply: require_reply.map(<[u8]>::to_vec),
        require_reply_mask: Vec::new(),
        min_reply_length: 0,
        max_reply_length: None,
    }
}

/// Each datagram a test UDP server got, with its sender.
type Seen = Vec<(Vec<u8>, SocketAddr)>;

/// What a test UDP server answers to a request (`None`: stay silent).
type Answer = fn(&[u8]) -> Option<Vec<u8>>;

/// A UDP server in namespace B that records what it receives. Stopped (within ~20 ms) by
/// [`UdpServer::stop`] or on drop, and after 60 s in any case.
struct UdpServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Seen>>,
}

impl UdpServer {
    fn start(lab: &Lab, addr: SocketAddr, answer: Answer) -> UdpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stopped = Arc::clone(&stop);
        let handle = lab.spawn_in(&lab.b, move || {
            let socket = std::net::UdpSocket::bind(addr).expect("server bind");
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            ready_tx.send(()).unwrap();
            let started = Instant::now();
            let mut seen = Vec::new();
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                match socket.recv_from(&mut buf) {
                    Ok((len, peer)) => {
                        let request = &buf[..len];
                        if let Some(reply) = answer(request) {
                            socket.send_to(&reply, peer).expect("server send");
                        }
                        seen.push((request.to_vec(), peer));
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => panic!("server recv: {e}"),
                }
            }
            seen
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("UDP server not ready");
        UdpServer {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the server; returns each datagram it got with its sender.
    fn stop(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        join(self.handle.take().expect("running"))
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn echo(request: &[u8]) -> Option<Vec<u8>> {
    Some(request.to_vec())
}

fn silent(_: &[u8]) -> Option<Vec<u8>> {
    None
}

/// Answers by request: "wrong" → "NOPE", "short" → "PO", "long" → 300 × 'P', else "PONG".
fn scripted(request: &[u8]) -> Option<Vec<u8>> {
    Some(match request {
        b"wrong" => b"NOPE".to_vec(),
        b"short" => b"PO".to_vec(),
        b"long" => vec![b'P'; 300],
        _ => b"PONG".to_vec(),
    })
}

fn assert_no_echo_reply(result: PingResult, timeout: Duration, what: &str) {
    let (result, elapsed) = result;
    match result {
        Err(ProbeError::NoEchoReply { timeout: t }) => assert_eq!(t, timeout),
        other => panic!("{what}: want no echo reply, got {other:?}"),
    }
    assert!(
        elapsed >= timeout,
        "{what}: failed after {elapsed:?} < {timeout:?}"
    );
}

// ---- PING_CHECK ----

#[test]
fn ping_answered_over_ipv4() {
    let lab = Lab::new();
    let (result, _) = ping_from_a(&lab, B4, None, ANSWER_WITHIN);
    let rtt = result.expect("echo reply");
    assert!(rtt > Duration::ZERO && rtt < ANSWER_WITHIN, "{rtt:?}");
}

/// The peer only answers an echo request whose ICMPv6 checksum is right, and we leave that
/// checksum to the kernel: a reply proves the kernel filled it in.
#[test]
fn ping_answered_over_ipv6_with_the_kernel_s_checksum() {
    let lab = Lab::new();
    let (result, _) = ping_from_a(&lab, B6, None, ANSWER_WITHIN);
    let rtt = result.expect("echo reply");
    assert!(rtt > Duration::ZERO && rtt < ANSWER_WITHIN, "{rtt:?}");
}

#[test]
fn ping_to_an_address_nobody_holds_times_out() {
    let lab = Lab::new();
    for target in [NOBODY4, NOBODY6] {
        let result = ping_from_a(&lab, target, None, SHORT);
        let reason = result.0.as_ref().map_err(ToString::to_string).err();
        assert_no_echo_reply(result, SHORT, target);
        assert_eq!(reason.as_deref(), Some("no echo reply within 300ms"));
    }
}

#[test]
fn ping_times_out_when_the_peer_ignores_echo_requests() {
    let lab = Lab::new();
    // Answered first, so the failure below is the sysctl's doing.
    for target in [B4, B6] {
        ping_from_a(&lab, target, None, ANSWER_WITHIN)
            .0
            .expect(target);
    }
    sysctl(
        &lab.b,
        &[
            "net.ipv4.icmp_echo_ignore_all=1",
            "net.ipv6.icmp.echo_ignore_all=1",
        ],
    );
    for target in [B4, B6] {
        assert_no_echo_reply(ping_from_a(&lab, target, None, SHORT), SHORT, target);
    }
}

/// Many probes at once, to the same target and to a silent one: every raw socket sees the
/// other probes' replies and must pick its own (identifier, sequence number, nonce).
#[test]
fn concurrent_pings_each_take_their_own_reply() {
    let lab = Lab::new();
    let results = in_a(&lab, || async {
        let probes = (0..48).map(|i| {
            let (target, timeout) = match i % 4 {
                0 => (ip(B6), ANSWER_WITHIN),
                1 => (ip(NOBODY4), SHORT),
                _ => (ip(B4), ANSWER_WITHIN),
            };
            async move { (target, probe::ping(target, None, timeout).await) }
        });
        futures::future::join_all(probes).await
    });
    assert_eq!(results.len(), 48);
    for (target, result) in results {
        if target == ip(NOBODY4) {
            assert!(
                matches!(result, Err(ProbeError::NoEchoReply { .. })),
                "{target}: {result:?}"
            );
        } else {
            assert!(result.is_ok(), "{target}: {result:?}");
        }
    }
}

/// B drops everything it would send to A's first address, so only a probe that really
/// uses `bind` (A's second address) as its source gets a reply.
#[test]
fn ping_from_a_bound_source_address() {
    let lab = Lab::new();
    add_second_v6(&lab);
    lab.ip(&lab.b, &["route", "add", "blackhole", "192.0.2.1/32"]);
    lab.ip(
        &lab.b,
        &["-6", "route", "add", "blackhole", "2001:db8::1/128"],
    );
    for (target, first, second) in [(B4, A4, A4_SECOND), (B6, A6, A6_SECOND)] {
        let rtt = ping_from_a(&lab, target, Some(second), ANSWER_WITHIN).0;
        assert!(rtt.is_ok(), "from {second}: {rtt:?}");
        let unbound = ping_from_a(&lab, target, None, SHORT);
        assert_no_echo_reply(unbound, SHORT, &format!("{target} unbound (from {first})"));
        let bound_first = ping_from_a(&lab, target, Some(first), SHORT);
        assert_no_echo_reply(bound_first, SHORT, first);
    }
}

// ---- UDP_CHECK ----

#[test]
fn udp_to_a_closed_port_is_port_unreachable() {
    let lab = Lab::new();
    for target in [sa(B4, 9), sa(B6, 9)] {
        for check in [udp_check(b"", None), udp_check(b"", Some(b"x"))] {
            let (result, _) = udp_from_a(&lab, target, None, check, ANSWER_WITHIN);
            match result {
                Err(ProbeError::Unreachable {
                    kind: Unreachable::Port,
                    from,
                }) => assert_eq!(from, Some(target.ip())),
                other => panic!("{target}: want port unreachable, got {other:?}"),
            }
        }
    }
    let (result, _) = udp_from_a(&lab, sa(B4, 9), None, udp_check(b"", None), ANSWER_WITHIN);
    assert_eq!(
        result.unwrap_err().to_string(),
        "port unreachable (ICMP from 192.0.2.2)"
    );
}

/// A's stack reports "host unreachable" itself when ARP / neighbour discovery gets no
/// answer (keepalived relies on this via IP_RECVERR); one solicitation, 100 ms apart.
#[test]
fn udp_to_an_address_nobody_holds_is_host_unreachable() {
    let lab = Lab::new();
    sysctl(
        &lab.a,
        &[
            "net.ipv4.neigh.vethA.mcast_solicit=1",
            "net.ipv4.neigh.vethA.retrans_time_ms=100",
            "net.ipv6.neigh.vethA.mcast_solicit=1",
            "net.ipv6.neigh.vethA.retrans_time_ms=100",
        ],
    );
    for target in [sa(NOBODY4, 53), sa(NOBODY6, 53)] {
        let (result, _) = udp_from_a(&lab, target, None, udp_check(b"", None), ANSWER_WITHIN);
        assert!(
            matches!(
                result,
                Err(ProbeError::Unreachable {
                    kind: Unreachable::Host,
                    ..
                })
            ),
            "{target}: {result:?}"
        );
    }
}

#[test]
fn udp_echo_server_passes_with_and_without_require_reply() {
    let lab = Lab::new();
    let server = UdpServer::start(&lab, sa(B4, 7000), echo);
    let target = sa(B4, 7000);
    let cases = [
        // keepalived's default payload, no reply required: any reply passes.
        udp_check(b"", None),
        // require_reply without data: a reply is needed, its contents are not checked.
        udp_check(b"", Some(b"")),
        // Data is compared over the shorter of reply and data: a prefix of the echo.
        udp_check(b"", Some(b"keepalived check")),
        udp_check(b"\x01\x02hello", Some(b"\x01\x02hello")),
    ];
    for check in cases {
        let (result, _) = udp_from_a(&lab, target, None, check.clone(), ANSWER_WITHIN);
        match result {
            Ok(UdpOk::Replied { rtt }) => assert!(rtt < ANSWER_WITHIN),
            other => panic!("{check:?}: {other:?}"),
        }
    }
    let seen = server.stop();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        seen[0].0, b"keepalived check - keepalived ch",
        "default payload"
    );
    assert_eq!(seen[3].0, b"\x01\x02hello");
}

#[test]
fn udp_wrong_short_or_long_reply_fails_with_its_reason() {
    let lab = Lab::new();
    let _server = UdpServer::start(&lab, sa(B4, 7000), scripted);
    let target = sa(B4, 7000);
    let mut min4 = udp_check(b"short", Some(b"PONG"));
    min4.min_reply_length = 4;
    let cases = [
        (
            udp_check(b"wrong", Some(b"PONG")),
            "reply differs from require_reply at byte 0: got 0x4e, want 0x50",
        ),
        (min4, "reply too short: 2 bytes < 4"),
        (
            udp_check(b"long", Some(b"PONG")),
            "reply too long: more than 255 bytes",
        ),
    ];
    for (check, reason) in cases {
        let (result, _) = udp_from_a(&lab, target, None, check, ANSWER_WITHIN);
        assert_eq!(result.unwrap_err().to_string(), reason);
    }
    // The same replies pass when nothing is required of them (keepalived reads one byte).
    let (result, _) = udp_from_a(&lab, target, None, udp_check(b"wrong", None), ANSWER_WITHIN);
    assert!(matches!(result, Ok(UdpOk::Replied { .. })), "{result:?}");
}

/// A listening server that never answers: no ICMP error either, so keepalived's verdict
/// depends on `require_reply` alone.
#[test]
fn udp_silence_fails_only_when_a_reply_is_required() {
    let lab = Lab::new();
    let server = UdpServer::start(&lab, sa(B4, 7000), silent);
    let target = sa(B4, 7000);

    let (result, elapsed) = udp_from_a(&lab, target, None, udp_check(b"", Some(b"")), SHORT);
    match result {
        Err(e @ ProbeError::NoReply { .. }) => {
            assert_eq!(e.to_string(), "no reply within 300ms")
        }
        other => panic!("want no reply, got {other:?}"),
    }
    assert!(elapsed >= SHORT, "{elapsed:?}");

    let (result, elapsed) = udp_from_a(&lab, target, None, udp_check(b"", None), SHORT);
    assert_eq!(result.unwrap(), UdpOk::NoError { waited: SHORT });
    assert!(elapsed >= SHORT, "{elapsed:?}");

    assert_eq!(server.stop().len(), 2, "both datagrams reached the server");
}

#[test]
fn udp_from_a_bound_source_address_over_ipv4_and_ipv6() {
    let lab = Lab::new();
    add_second_v6(&lab);
    let server4 = UdpServer::start(&lab, sa(B4, 7000), echo);
    let server6 = UdpServer::start(&lab, sa(B6, 7000), echo);
    for (target, source) in [(sa(B4, 7000), A4_SECOND), (sa(B6, 7000), A6_SECOND)] {
        let check = udp_check(b"hi", Some(b"hi"));
        let (result, _) = udp_from_a(&lab, target, Some(source), check, ANSWER_WITHIN);
        assert!(matches!(result, Ok(UdpOk::Replied { .. })), "{result:?}");
    }
    let seen4 = server4.stop();
    let seen6 = server6.stop();
    assert_eq!(seen4.len(), 1);
    assert_eq!(seen4[0].1.ip(), ip(A4_SECOND));
    assert_eq!(seen6.len(), 1);
    assert_eq!(seen6[0].1.ip(), ip(A6_SECOND));
}
