//! Golden tests against real keepalived 2.2.7 captures (`testdata/`, copied from
//! ../shared/fixtures/pcap): every captured advert decodes to the fields tshark reported
//! (`fields.txt`) and re-encodes byte for byte, priority-0 adverts included; and our state
//! machine, fed the captured Master's adverts, takes over like keepalived's Backup did and
//! sends the very bytes keepalived sent.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::instance::{Action, Instance, InstanceConfig, State};
use super::types::{AdvertInterval, Centiseconds, Priority, Seconds, Version, Vrid};
use crate::wire::{
    ipv4,
    vrrp::{self as packet, AuthType, ChecksumForm, V2Auth, IP_PROTO_VRRP},
};

const V2: &[u8] = include_bytes!("testdata/keepalived-vrrpv2.pcap");
const V2_2VIPS: &[u8] = include_bytes!("testdata/keepalived-vrrpv2-2vips.pcap");
const V3: &[u8] = include_bytes!("testdata/keepalived-vrrpv3.pcap");
const V3_IPV6: &[u8] = include_bytes!("testdata/keepalived-vrrpv3-ipv6.pcap");
const FIELDS: &str = include_str!("testdata/fields.txt");

const CAPTURES: [(&str, &[u8]); 4] = [
    ("keepalived-vrrpv2.pcap", V2),
    ("keepalived-vrrpv2-2vips.pcap", V2_2VIPS),
    ("keepalived-vrrpv3.pcap", V3),
    ("keepalived-vrrpv3-ipv6.pcap", V3_IPV6),
];

/// One record of a classic libpcap file.
struct Frame<'a> {
    /// 1-based frame number, as tshark counts.
    number: usize,
    /// Capture time relative to the first frame.
    time: Duration,
    data: &'a [u8],
}

/// A minimal libpcap reader: little-endian microsecond files with Ethernet link type (1),
/// which is what tcpdump wrote for the fixtures.
fn pcap_frames(file: &[u8]) -> Vec<Frame<'_>> {
    let u32le = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    assert_eq!(u32le(file, 0), 0xa1b2_c3d4, "little-endian µs pcap");
    assert_eq!(u32le(file, 20), 1, "link type Ethernet");
    let mut frames = Vec::new();
    let mut at = 24;
    let mut first = None;
    while at + 16 <= file.len() {
        let ts = Duration::from_secs(u32le(file, at).into())
            + Duration::from_micros(u32le(file, at + 4).into());
        let len = u32le(file, at + 8) as usize;
        let first = *first.get_or_insert(ts);
        frames.push(Frame {
            number: frames.len() + 1,
            time: ts - first,
            data: &file[at + 16..at + 16 + len],
        });
        at += 16 + len;
    }
    assert_eq!(at, file.len(), "no trailing bytes");
    frames
}

/// A VRRP packet pulled out of an Ethernet frame.
struct Captured<'a> {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    tos: u8,
    payload: &'a [u8],
}

fn vrrp_of<'a>(frame: &Frame<'a>) -> Option<Captured<'a>> {
    let ethertype = u16::from_be_bytes([frame.data[12], frame.data[13]]);
    let ip = &frame.data[14..];
    match ethertype {
        0x0800 => {
            let (h, payload) = ipv4::parse(ip).unwrap();
            (h.protocol == IP_PROTO_VRRP).then_some(Captured {
                src: h.src.into(),
                dst: h.dst.into(),
                ttl: h.ttl,
                tos: h.tos,
                payload,
            })
        }
        0x86dd => {
            let next = ip[6];
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let addr = |at: usize| {
                IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(&ip[at..at + 16]).unwrap(),
                ))
            };
            let tclass = ((ip[0] & 0x0f) << 4) | (ip[1] >> 4);
            (next == IP_PROTO_VRRP).then(|| Captured {
                src: addr(8),
                dst: addr(24),
                ttl: ip[7],
                tos: tclass,
                payload: &ip[40..40 + plen],
            })
        }
        _ => None,
    }
}

/// One line of fields.txt.
#[derive(Debug)]
struct Expected {
    frame: usize,
    time: f64,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    tos: u8,
    version: u8,
    vrid: u8,
    priority: u8,
    count: usize,
    auth_type: Option<u8>,
    interval: u16,
    checksum: u16,
    addrs: Vec<IpAddr>,
    auth: Option<String>,
}

fn expected_for(file: &str) -> Vec<Expected> {
    let mut section = None;
    let mut out = Vec::new();
    for line in FIELDS.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            section = Some(name.trim());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() || section != Some(file) {
            continue;
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        let hex = |s: &str| u16::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        let version: u8 = t[6].parse().unwrap();
        assert_eq!(t[7], "1", "type advertisement");
        // v2 lines carry auth type and adver_int; v3 lines leave them empty.
        let (auth_type, interval, rest) = if version == 2 {
            (
                Some(t[11].parse().unwrap()),
                t[12].parse().unwrap(),
                &t[13..],
            )
        } else {
            (None, t[11].parse().unwrap(), &t[12..])
        };
        assert_eq!(rest[1], "1", "tshark checksum status good");
        out.push(Expected {
            frame: t[0].parse().unwrap(),
            time: t[1].parse().unwrap(),
            src: t[2].parse().unwrap(),
            dst: t[3].parse().unwrap(),
            ttl: t[4].parse().unwrap(),
            tos: u8::try_from(hex(t[5])).unwrap(),
            version,
            vrid: t[8].parse().unwrap(),
            priority: t[9].parse().unwrap(),
            count: t[10].parse().unwrap(),
            auth_type,
            interval,
            checksum: hex(rest[0]),
            addrs: rest[2].split(',').map(|a| a.parse().unwrap()).collect(),
            auth: rest.get(3).map(|s| s.to_string()),
        });
    }
    assert!(!out.is_empty(), "{file} has lines in fields.txt");
    out
}

#[test]
fn every_captured_advert_decodes_to_fields_and_reencodes_byte_for_byte() {
    for (name, file) in CAPTURES {
        let expected = expected_for(name);
        let frames = pcap_frames(file);
        let vrrp: Vec<_> = frames
            .iter()
            .filter_map(|f| vrrp_of(f).map(|c| (f, c)))
            .collect();
        assert_eq!(vrrp.len(), expected.len(), "{name}: VRRP frame count");
        let mut zero_seen = 0;
        for ((frame, cap), exp) in vrrp.iter().zip(&expected) {
            let ctx = format!("{name} frame {}", frame.number);
            assert_eq!(frame.number, exp.frame, "{ctx}");
            assert!(
                (frame.time.as_secs_f64() - exp.time).abs() < 1e-6,
                "{ctx}: time"
            );
            assert_eq!(
                (cap.src, cap.dst, cap.ttl, cap.tos),
                (exp.src, exp.dst, exp.ttl, exp.tos)
            );
            let d = packet::decode(cap.payload, cap.src, cap.dst)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let a = &d.advert;
            assert_eq!(a.version().wire(), exp.version, "{ctx}");
            assert_eq!(a.vrid.get(), exp.vrid, "{ctx}");
            assert_eq!(a.priority.get(), exp.priority, "{ctx}");
            assert_eq!(a.addresses.len(), exp.count, "{ctx}");
            assert_eq!(a.addresses, exp.addrs, "{ctx}");
            assert_eq!(a.checksum, exp.checksum, "{ctx}");
            match (a.interval, a.auth) {
                (AdvertInterval::V2(s), Some(auth)) => {
                    assert_eq!(u16::from(s.get()), exp.interval, "{ctx}");
                    assert_eq!(Some(auth.auth_type.0), exp.auth_type, "{ctx}");
                    let pass = exp.auth.as_deref().unwrap_or("");
                    let mut padded = [0u8; 8];
                    padded[..pass.len()].copy_from_slice(pass.as_bytes());
                    assert_eq!(auth.data, padded, "{ctx}");
                    assert_eq!(d.checksum_form, ChecksumForm::Plain, "{ctx}");
                }
                (AdvertInterval::V3(cs), None) => {
                    assert_eq!(cs.get(), exp.interval, "{ctx}");
                    // keepalived computes the VRRPv3 checksum with the pseudo-header, over
                    // IPv4 as well as IPv6.
                    assert_eq!(d.checksum_form, ChecksumForm::PseudoHeader, "{ctx}");
                }
                other => panic!("{ctx}: inconsistent version fields {other:?}"),
            }
            if a.priority == Priority::RELEASE {
                zero_seen += 1;
            }
            assert_eq!(
                packet::encode(a, cap.src, cap.dst),
                cap.payload,
                "{ctx}: re-encode"
            );
        }
        assert_eq!(
            zero_seen, 2,
            "{name}: both nodes' priority-0 adverts are covered"
        );
    }
}

/// A VRRPv2 PASS configuration like keepalived-vrrpv2-n2.conf (priority 99, Backup).
fn n2_config(name: &str) -> InstanceConfig {
    let primary: IpAddr;
    let mut cfg;
    match name {
        "keepalived-vrrpv2.pcap" | "keepalived-vrrpv2-2vips.pcap" => {
            primary = "192.0.2.12".parse().unwrap();
            cfg = InstanceConfig::new(
                Vrid::new(55).unwrap(),
                AdvertInterval::V2(Seconds::new(1).unwrap()),
                primary,
            );
            cfg.auth = Some(*b"1111\0\0\0\0");
            cfg.vips = vec!["192.0.2.200".parse().unwrap()];
            if name.contains("2vips") {
                cfg.vips.push("192.0.2.201".parse().unwrap());
            }
        }
        "keepalived-vrrpv3.pcap" => {
            primary = "192.0.2.12".parse().unwrap();
            cfg = InstanceConfig::new(
                Vrid::new(55).unwrap(),
                AdvertInterval::V3(Centiseconds::new(10).unwrap()),
                primary,
            );
            cfg.vips = vec!["192.0.2.200".parse().unwrap()];
        }
        _ => {
            primary = "fe80::4b:4cff:fe00:c".parse().unwrap();
            cfg = InstanceConfig::new(
                Vrid::new(55).unwrap(),
                AdvertInterval::V3(Centiseconds::new(100).unwrap()),
                primary,
            );
            cfg.vips = vec!["2001:db8:0:1::200".parse().unwrap()];
        }
    }
    cfg.priority = Priority::new(99);
    cfg
}

#[test]
fn backup_fed_the_capture_takes_over_like_keepalived_and_sends_its_bytes() {
    for (name, file) in CAPTURES {
        let cfg = n2_config(name);
        let me = cfg.primary_addr;
        let mut inst = Instance::new(cfg).unwrap();
        let t0 = Instant::now();
        inst.start(t0);
        assert_eq!(inst.state(), State::Backup);
        let frames = pcap_frames(file);
        let caps: Vec<_> = frames
            .iter()
            .filter_map(|f| vrrp_of(f).map(|c| (f.time, c)))
            .collect();
        // Feed the other node's adverts up to and including its priority-0 advert.
        let mut release_at = None;
        for (time, cap) in caps.iter().filter(|(_, c)| c.src != me) {
            inst.handle_packet(t0 + *time, cap.src, cap.dst, cap.ttl, cap.payload)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let prio = packet::decode(cap.payload, cap.src, cap.dst)
                .unwrap()
                .advert
                .priority;
            if prio == Priority::RELEASE {
                release_at = Some(*time);
                break;
            }
        }
        let release_at = release_at.expect("capture has a priority-0 advert");
        let skew = inst.timing().skew;
        assert_eq!(inst.poll_timeout(), Some(t0 + release_at + skew), "{name}");
        while inst.poll_action().is_some() {}
        inst.handle_timeout(t0 + release_at + skew);
        assert_eq!(inst.state(), State::Master, "{name}");
        // keepalived's first advert as the new Master.
        let (kp_time, kp) = caps.iter().find(|(_, c)| c.src == me).unwrap();
        let ours = release_at + skew;
        assert!(
            ours <= *kp_time && *kp_time - ours < Duration::from_millis(10),
            "{name}: we take over at {ours:?}, keepalived did at {kp_time:?}"
        );
        let advert = std::iter::from_fn(|| inst.poll_action())
            .find_map(|a| match a {
                Action::SendAdvert(a) => Some(a),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            packet::encode(&advert, kp.src, kp.dst),
            kp.payload,
            "{name}: our first advert equals keepalived's"
        );
        // And our shutdown advert equals keepalived's priority-0 advert.
        inst.shutdown(t0 + ours);
        let bye = std::iter::from_fn(|| inst.poll_action())
            .find_map(|a| match a {
                Action::SendAdvert(a) => Some(a),
                _ => None,
            })
            .unwrap();
        let kp_bye = caps
            .iter()
            .rev()
            .find(|(_, c)| c.src == me)
            .map(|(_, c)| c)
            .unwrap();
        assert_eq!(
            packet::encode(&bye, kp_bye.src, kp_bye.dst),
            kp_bye.payload,
            "{name}"
        );
        assert_eq!(inst.counters().total_dropped(), 0, "{name}");
    }
}

#[test]
fn v2_pass_auth_fields_match_keepalived() {
    let frames = pcap_frames(V2);
    let cap = vrrp_of(&frames[0]).unwrap();
    let d = packet::decode(cap.payload, cap.src, cap.dst).unwrap();
    assert_eq!(d.advert.auth, Some(V2Auth::pass(*b"1111\0\0\0\0")));
    assert_eq!(d.advert.auth.unwrap().auth_type, AuthType::PASS);
    assert_eq!(d.advert.version(), Version::V2);
}
