//! Raw VRRP sockets between two namespaces: multicast and unicast, IPv4 and IPv6, with the
//! TTL / hop limit, source and destination the receiver sees (RFC 5798 §5.1.1, §5.1.2).

mod net_lab;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc;
use std::time::Duration;

use net_lab::{block_on, join, Lab};
use socket2::{Domain, Protocol, Socket, Type};
use wasmalived::net::netlink::Netlink;
use wasmalived::net::socket::{Received, SocketConfig, VrrpSocket};
use wasmalived_proto::vrrp::types::Family;
use wasmalived_proto::wire::{IP_PROTO_VRRP, MCAST_V4 as VRRP_GROUP_V4, MCAST_V6 as VRRP_GROUP_V6};

/// Receives `n` datagrams (5 s each at most) on `vethB` after signalling readiness.
fn receive_on_b(
    lab: &Lab,
    family: Family,
    n: usize,
    ready: mpsc::Sender<()>,
) -> std::thread::JoinHandle<(u32, Vec<Received>)> {
    lab.spawn_in(&lab.b, move || {
        block_on(async move {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.ifindex("vethB").await.unwrap();
            let socket = VrrpSocket::open(&SocketConfig {
                ifindex,
                family,
                src: None,
                join: Some(wasmalived::net::socket::vrrp_group(family)),
            })
            .unwrap();
            ready.send(()).unwrap();
            let mut got = Vec::new();
            for _ in 0..n {
                let r = tokio::time::timeout(Duration::from_secs(5), socket.recv())
                    .await
                    .expect("no datagram within 5 s")
                    .unwrap();
                got.push(r);
            }
            (ifindex, got)
        })
    })
}

#[test]
fn ipv4_multicast_and_unicast_arrive_with_ttl_255_and_exact_addresses() {
    let lab = Lab::new();
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = receive_on_b(&lab, Family::V4, 3, ready_tx);
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver not ready");

    let sender = lab.spawn_in(&lab.a, || {
        block_on(async {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.ifindex("vethA").await.unwrap();
            let primary = nl.primary_ipv4(ifindex).await.unwrap();
            assert_eq!(primary, Some(Ipv4Addr::new(192, 0, 2, 1)));
            let socket = VrrpSocket::open(&SocketConfig {
                ifindex,
                family: Family::V4,
                src: primary.map(IpAddr::V4),
                join: Some(wasmalived::net::socket::vrrp_group(Family::V4)),
            })
            .unwrap();
            // Multicast from the configured source (mcast_src_ip).
            socket
                .send(&[0x31, 1, 100, 1], IpAddr::V4(VRRP_GROUP_V4))
                .await
                .unwrap();
            // Unicast from another local address (unicast_src_ip) to a peer.
            socket
                .send_from(
                    &[0x31, 2, 100, 1],
                    Some("192.0.2.11".parse().unwrap()),
                    "192.0.2.2".parse().unwrap(),
                )
                .await
                .unwrap();
            // A plain raw socket with TTL 64: the receiver must report 64, not assume 255.
            let plain = Socket::new(
                Domain::IPV4,
                Type::RAW,
                Some(Protocol::from(i32::from(IP_PROTO_VRRP))),
            )
            .unwrap();
            plain.set_ttl_v4(64).unwrap();
            plain
                .send_to(
                    &[0x31, 3, 100, 1],
                    &"192.0.2.2:0"
                        .parse::<std::net::SocketAddr>()
                        .unwrap()
                        .into(),
                )
                .unwrap();
        })
    });
    join(sender);
    let (ifindex_b, got) = join(receiver);

    assert_eq!(got[0].src, "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!(got[0].dst, IpAddr::V4(VRRP_GROUP_V4));
    assert_eq!(got[0].ttl_or_hop_limit, 255);
    assert_eq!(got[0].payload, [0x31, 1, 100, 1]);
    assert_eq!(got[0].ifindex, ifindex_b);

    assert_eq!(got[1].src, "192.0.2.11".parse::<IpAddr>().unwrap());
    assert_eq!(got[1].dst, "192.0.2.2".parse::<IpAddr>().unwrap());
    assert_eq!(got[1].ttl_or_hop_limit, 255);
    assert_eq!(got[1].payload, [0x31, 2, 100, 1]);

    assert_eq!(got[2].ttl_or_hop_limit, 64);
    assert_eq!(got[2].payload, [0x31, 3, 100, 1]);
}

#[test]
fn ipv6_multicast_from_link_local_and_unicast_arrive_with_hop_limit_255() {
    let lab = Lab::new();
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = receive_on_b(&lab, Family::V6, 3, ready_tx);
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver not ready");

    let sender = lab.spawn_in(&lab.a, || {
        block_on(async {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.ifindex("vethA").await.unwrap();
            let link_local = nl
                .ipv6_link_local(ifindex)
                .await
                .unwrap()
                .expect("link-local");
            assert!(link_local.is_unicast_link_local());
            let socket = VrrpSocket::open(&SocketConfig {
                ifindex,
                family: Family::V6,
                src: Some(IpAddr::V6(link_local)),
                join: Some(wasmalived::net::socket::vrrp_group(Family::V6)),
            })
            .unwrap();
            socket
                .send(&[0x31, 1, 100, 1], IpAddr::V6(VRRP_GROUP_V6))
                .await
                .unwrap();
            socket
                .send_from(
                    &[0x31, 2, 100, 1],
                    Some("2001:db8::1".parse().unwrap()),
                    "2001:db8::2".parse().unwrap(),
                )
                .await
                .unwrap();
            let plain = Socket::new(
                Domain::IPV6,
                Type::RAW,
                Some(Protocol::from(i32::from(IP_PROTO_VRRP))),
            )
            .unwrap();
            plain.set_unicast_hops_v6(64).unwrap();
            plain
                .send_to(
                    &[0x31, 3, 100, 1],
                    &"[2001:db8::2]:0"
                        .parse::<std::net::SocketAddr>()
                        .unwrap()
                        .into(),
                )
                .unwrap();
            link_local
        })
    });
    let link_local_a: Ipv6Addr = join(sender);
    let (ifindex_b, got) = join(receiver);

    // RFC 5798 §5.1.2.1: the source of an IPv6 advert is the sender's link-local address.
    assert_eq!(got[0].src, IpAddr::V6(link_local_a));
    assert_eq!(got[0].dst, IpAddr::V6(VRRP_GROUP_V6));
    assert_eq!(got[0].ttl_or_hop_limit, 255);
    assert_eq!(got[0].payload, [0x31, 1, 100, 1]);
    assert_eq!(got[0].ifindex, ifindex_b);

    assert_eq!(got[1].src, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!(got[1].dst, "2001:db8::2".parse::<IpAddr>().unwrap());
    assert_eq!(got[1].ttl_or_hop_limit, 255);

    assert_eq!(got[2].ttl_or_hop_limit, 64);
    assert_eq!(got[2].payload, [0x31, 3, 100, 1]);
}

#[test]
fn wrong_family_addresses_are_refused() {
    let lab = Lab::new();
    let t = lab.spawn_in(&lab.a, || {
        block_on(async {
            let nl = Netlink::new().unwrap();
            let ifindex = nl.ifindex("vethA").await.unwrap();
            let bad_src = VrrpSocket::open(&SocketConfig {
                ifindex,
                family: Family::V6,
                src: Some("192.0.2.1".parse().unwrap()),
                join: None,
            });
            assert!(bad_src.is_err());
            let socket = VrrpSocket::open(&SocketConfig {
                ifindex,
                family: Family::V4,
                src: None,
                join: None,
            })
            .unwrap();
            let err = socket
                .send(&[1], IpAddr::V6(VRRP_GROUP_V6))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("ff02::12"), "{err}");
        })
    });
    join(t);
}
