//! Gratuitous ARP and unsolicited NA leave A as exact frames and move B's neighbour cache
//! entry for the VIP to A's MAC (RFC 5798 §6.4.2, RFC 4861 §7.2.6).

mod net_lab;

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use net_lab::{block_on, join, wait_until, Lab, MAC_A};
use socket2::{Domain, Protocol, Socket, Type};
use wasmalived::net::garp::{send_garp, send_unsolicited_na};
use wasmalived::net::netlink::Netlink;
use wasmalived_proto::wire::arp::{garp_frame, ETH_P_ARP, GARP_FRAME_LEN};
use wasmalived_proto::wire::ndisc::{na_frame, ETH_P_IPV6, NA_FRAME_LEN};

/// Captures frames of `ethertype` in B until `want` matches one (5 s at most).
fn capture_in_b(
    lab: &Lab,
    ethertype: u16,
    want: fn(&[u8]) -> bool,
    ready: mpsc::Sender<()>,
) -> std::thread::JoinHandle<Vec<u8>> {
    lab.spawn_in(&lab.b, move || {
        let proto = i32::from(ethertype.to_be());
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(proto))).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        ready.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            if let Ok(n) = (&socket).read(&mut buf) {
                if want(&buf[..n]) {
                    return buf[..n].to_vec();
                }
            }
        }
        panic!("no matching frame captured");
    })
}

fn ifindex_a(lab: &Lab) -> u32 {
    join(lab.spawn_in(&lab.a, || {
        block_on(async { Netlink::new().unwrap().ifindex("vethA").await.unwrap() })
    }))
}

#[test]
fn gratuitous_arp_is_exact_and_updates_the_peer_arp_cache() {
    let lab = Lab::new();
    let vip = Ipv4Addr::new(192, 0, 2, 100);
    lab.ip(
        &lab.b,
        &[
            "neigh",
            "replace",
            "192.0.2.100",
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            "vethB",
            "nud",
            "stale",
        ],
    );
    let ifindex = ifindex_a(&lab);
    let (ready_tx, ready_rx) = mpsc::channel();
    let capture = capture_in_b(
        &lab,
        ETH_P_ARP,
        |f| f.len() >= 42 && f[28..32] == [192, 0, 2, 100],
        ready_tx,
    );
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    join(lab.spawn_in(&lab.a, move || send_garp(ifindex, MAC_A, vip).unwrap()));

    let frame = join(capture);
    assert_eq!(frame[..GARP_FRAME_LEN], garp_frame(MAC_A, vip));
    let updated = wait_until(Duration::from_secs(3), || {
        lab.ip(&lab.b, &["neigh", "show", "192.0.2.100", "dev", "vethB"])
            .contains("02:00:00:00:00:01")
    });
    assert!(
        updated,
        "{}",
        lab.ip(&lab.b, &["neigh", "show", "dev", "vethB"])
    );
}

#[test]
fn unsolicited_na_is_exact_and_updates_the_peer_neighbour_cache() {
    let lab = Lab::new();
    let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
    lab.ip(
        &lab.b,
        &[
            "-6",
            "neigh",
            "replace",
            "2001:db8::100",
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            "vethB",
            "nud",
            "stale",
        ],
    );
    let ifindex = ifindex_a(&lab);
    let (ready_tx, ready_rx) = mpsc::channel();
    // ICMPv6 (next header 58) neighbour advertisement (type 136) for the VIP.
    let capture = capture_in_b(
        &lab,
        ETH_P_IPV6,
        |f| f.len() >= NA_FRAME_LEN && f[20] == 58 && f[54] == 136 && f[62..78] == vip_octets(),
        ready_tx,
    );
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    join(lab.spawn_in(&lab.a, move || {
        send_unsolicited_na(ifindex, MAC_A, vip).unwrap()
    }));

    let frame = join(capture);
    assert_eq!(frame[..NA_FRAME_LEN], na_frame(MAC_A, vip));
    assert_eq!(frame[21], 255, "hop limit");
    let updated = wait_until(Duration::from_secs(3), || {
        lab.ip(
            &lab.b,
            &["-6", "neigh", "show", "2001:db8::100", "dev", "vethB"],
        )
        .contains("02:00:00:00:00:01")
    });
    assert!(
        updated,
        "{}",
        lab.ip(&lab.b, &["-6", "neigh", "show", "dev", "vethB"])
    );
}

fn vip_octets() -> [u8; 16] {
    "2001:db8::100".parse::<Ipv6Addr>().unwrap().octets()
}
