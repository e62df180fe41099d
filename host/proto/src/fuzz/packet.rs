//! `vrrp_packet`: one received datagram, from the bytes a raw socket returns to the
//! router's counters.
//!
//! Input layout: byte 0 picks the family (bit 0: IPv6) and, for IPv4, the version of the
//! receiving instance (bit 1: VRRPv2). IPv4: the rest is the packet with its IP header, as
//! an IPv4 raw socket delivers it. IPv6: 16 bytes of source, 16 of destination, the hop
//! limit, then the VRRP payload (IPv6 raw sockets deliver no header; the daemon takes the
//! addresses and hop limit from `recvmsg`).

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::router::sim::spec;
use crate::router::{InstanceKey, PathId, Router};
use crate::vrrp::{AdvertInterval, Centiseconds, Family, Priority, Seconds, Vrid};
use crate::wire::ipv4;
use crate::wire::vrrp::{decode, encode_with, Decoded, MCAST_V6};

/// A datagram as the socket layer hands it to the router.
struct Received<'a> {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: &'a [u8],
}

/// Splits the input into a received datagram; `None` when the IP layer refuses it (the
/// daemon counts those as `IpLayer` drops before the router).
fn receive(data: &[u8]) -> Option<(u8, Received<'_>)> {
    let (&selector, rest) = data.split_first()?;
    if selector & 1 == 0 {
        let (header, payload) = ipv4::parse(rest).ok()?;
        assert!(
            payload.len() <= rest.len().saturating_sub(ipv4::MIN_HEADER_LEN),
            "IPv4 payload of {} bytes from a {}-byte packet",
            payload.len(),
            rest.len()
        );
        return Some((
            selector,
            Received {
                src: IpAddr::V4(header.src),
                dst: IpAddr::V4(header.dst),
                ttl: header.ttl,
                payload,
            },
        ));
    }
    let (src, rest) = rest.split_first_chunk::<16>()?;
    let (dst, rest) = rest.split_first_chunk::<16>()?;
    let (&hop_limit, payload) = rest.split_first()?;
    Some((
        selector,
        Received {
            src: IpAddr::V6(Ipv6Addr::from(*src)),
            dst: IpAddr::V6(Ipv6Addr::from(*dst)),
            ttl: hop_limit,
            payload,
        },
    ))
}

/// The decoder's contract: a decoded advert re-encodes (same checksum form) into bytes of
/// its announced length that decode to the same advert.
fn check_round_trip(decoded: &Decoded, rx: &Received<'_>) {
    let advert = &decoded.advert;
    let family = Family::of(rx.src);
    let bytes = encode_with(advert, rx.src, rx.dst, decoded.checksum_form);
    assert_eq!(
        bytes.len(),
        advert.encoded_len(family),
        "encoded length of {advert:?}"
    );
    let again = decode(&bytes, rx.src, rx.dst)
        .unwrap_or_else(|e| panic!("re-encoded {advert:?} does not decode: {e}"));
    let strip = |mut a: crate::wire::vrrp::Advert| {
        a.checksum = 0;
        a
    };
    assert_eq!(
        strip(again.advert),
        strip(advert.clone()),
        "advert changed through encode/decode"
    );
}

/// A router with one instance per family for `vrid` (IPv4 VRRPv2 or v3 as `v2` says,
/// IPv6 VRRPv3), started and settled in Backup.
fn router_for(vrid: u8, v2: bool, now: Instant) -> Router<IpAddr, String> {
    let mut router = Router::new();
    let interval = if v2 {
        AdvertInterval::V2(Seconds::new(1).expect("1 s"))
    } else {
        AdvertInterval::V3(Centiseconds::new(100).expect("1 s"))
    };
    let v4 = spec(0, vrid, 100, interval);
    let mut v6 = spec(
        0,
        vrid,
        100,
        AdvertInterval::V3(Centiseconds::new(100).expect("1 s")),
    );
    let own6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    v6.protocol = crate::vrrp::InstanceConfig::new(
        Vrid::new(vrid).expect("non-zero"),
        v6.protocol.advert_int,
        own6,
    );
    v6.protocol.priority = Priority::new(100);
    let vip6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(vrid)));
    v6.protocol.vips = vec![vip6];
    v6.vips = vec![vip6];
    v6.name = format!("VI6_{vrid}");
    v6.key = InstanceKey {
        family: Family::V6,
        ..v6.key.clone()
    };
    v6.destinations = vec![IpAddr::V6(MCAST_V6)];
    for s in [v4, v6] {
        router.upsert(now, s).expect("valid instance");
    }
    while router.poll_output().is_some() {}
    router
}

/// Every drop the router counted: on its paths and in its instances.
fn total_drops(router: &Router<IpAddr, String>) -> u64 {
    let paths: u64 = router.path_counters().map(|(_, c)| c.total_dropped()).sum();
    let instances: u64 = router
        .instances()
        .map(|v| v.core.counters().total_dropped())
        .sum();
    paths + instances
}

/// The `vrrp_packet` fuzz target (see the [module docs](self)).
pub fn vrrp_packet(data: &[u8]) {
    let Some((selector, rx)) = receive(data) else {
        return;
    };
    let decoded = decode(rx.payload, rx.src, rx.dst);
    if let Ok(d) = &decoded {
        check_round_trip(d, &rx);
    }
    // The router's receive path: demultiplexing, decode, RFC 5798 §7.1 validation, and the
    // state machine for whatever passes.
    let vrid = rx.payload.get(1).copied().filter(|v| *v != 0).unwrap_or(1);
    let t0 = Instant::now();
    let mut router = router_for(vrid, selector & 2 != 0, t0);
    let before = total_drops(&router);
    let now = t0 + Duration::from_millis(10);
    router.handle_datagram(now, PathId(0), rx.src, rx.dst, rx.ttl, rx.payload);
    while router.poll_output().is_some() {}
    if decoded.is_err() {
        // Every malformed datagram is counted exactly once (one instance per family and VRID).
        assert_eq!(
            total_drops(&router),
            before + 1,
            "malformed datagram ({:?}) not counted exactly once",
            decoded.err()
        );
    }
    router.handle_timeout(now + Duration::from_secs(4));
    while router.poll_output().is_some() {}
}
