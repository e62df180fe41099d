//! The IPVS backend's tests: golden bytes of every message kind, written out by hand from the
//! kernel's UAPI layout (`include/uapi/linux/ip_vs.h`, `ip_vs_genl_parse_service`/`_dest`),
//! decodes of dump replies laid out as `ip_vs_genl_fill_service`/`_dest` send them, the
//! transport's answer handling, and the diff against an in-memory IPVS with the kernel's
//! error semantics. Netlink integers are host-endian: the golden bytes are little-endian.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_MULTIPART};
use netlink_packet_generic::GenlMessage;
use wasmalived_config::lvs::{Protocol, Scheduler};

use super::codec::*;
use super::genl::{self, errno, IpvsError};
use super::*;
use crate::plan::{Persistence, ServicePlan};
use crate::schedule::{self, Fallback};
use crate::service::Member;

/// The family id the golden frames use (the kernel assigns one at module load).
const FAMILY: u16 = 0x24;

fn tcp_80() -> ServiceKey {
    ServiceKey::Addr {
        protocol: IPPROTO_TCP,
        addr: "192.0.2.10".parse().unwrap(),
        port: 80,
    }
}

fn service(key: ServiceKey, scheduler: &str) -> Service {
    Service {
        key,
        scheduler: scheduler.into(),
        flags: 0,
        timeout: 0,
        netmask: Netmask::host(key.ipv6()),
        pe_name: None,
    }
}

fn dest(addr: &str, port: u16, forward: u32, weight: u32) -> Dest {
    Dest {
        addr: addr.parse().unwrap(),
        port,
        forward,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

// ---------------------------------------------------------------------------------------
// Golden bytes: requests.

/// The service part shared by the TCP 192.0.2.10:80 frames: AF, PROTOCOL, ADDR, PORT.
const TCP_80_ID: [u8; 44] = [
    6, 0, 1, 0, 2, 0, 0, 0, // SVC_ATTR_AF (len 6, type 1): AF_INET 2, 2 bytes padding
    6, 0, 2, 0, 6, 0, 0, 0, // SVC_ATTR_PROTOCOL (type 2): IPPROTO_TCP 6
    20, 0, 3, 0, // SVC_ATTR_ADDR (len 20, type 3): union nf_inet_addr, 16 bytes
    192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //   192.0.2.10, zeros after
    6, 0, 4, 0, 0, 80, 0, 0, // SVC_ATTR_PORT (type 4): 80 as __be16 (0x00 0x50)
];

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[cfg(target_endian = "little")]
#[test]
fn golden_new_service_tcp_wlc() {
    let frame = Request::NewService(service(tcp_80(), "wlc")).frame(FAMILY, 1);
    let expected = concat(&[
        &[
            104, 0, 0, 0, // nlmsg_len: 16 + 4 + 84
            0x24, 0, // nlmsg_type: the IPVS family id
            5, 0, // nlmsg_flags: NLM_F_REQUEST | NLM_F_ACK
            1, 0, 0, 0, // nlmsg_seq
            0, 0, 0, 0, // nlmsg_pid: the kernel fills it in
            1, 1, 0, 0, // genlmsghdr: cmd IPVS_CMD_NEW_SERVICE, version 1, reserved
            84, 0, 1, 0x80, // IPVS_CMD_ATTR_SERVICE (len 84, type 1 | NLA_F_NESTED)
        ],
        &TCP_80_ID,
        &[
            8, 0, 6, 0, b'w', b'l', b'c', 0, // SVC_ATTR_SCHED_NAME (type 6): "wlc\0"
            12, 0, 7, 0, // SVC_ATTR_FLAGS (len 12, type 7): struct ip_vs_flags
            0, 0, 0, 0, //   flags: none
            0xff, 0xff, 0xff, 0xff, //   mask: all (the service's flags become exactly ours)
            8, 0, 8, 0, 0, 0, 0, 0, // SVC_ATTR_TIMEOUT (type 8): 0 s (no persistence)
            8, 0, 9, 0, 0xff, 0xff, 0xff, 0xff, // SVC_ATTR_NETMASK (type 9): 255.255.255.255
        ],
    ]);
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_set_service_udp_persistent_with_a_24_bit_granularity() {
    let key = ServiceKey::Addr {
        protocol: IPPROTO_UDP,
        addr: "192.0.2.10".parse().unwrap(),
        port: 53,
    };
    let mut s = service(key, "rr");
    s.flags = SVC_F_PERSISTENT;
    s.timeout = 300;
    s.netmask = Netmask::of_prefix(false, 24);
    let frame = Request::SetService(s).frame(FAMILY, 7);
    let expected: Vec<u8> = vec![
        104, 0, 0, 0, // nlmsg_len
        0x24, 0, 5, 0, // type, flags REQUEST | ACK
        7, 0, 0, 0, 0, 0, 0, 0, // seq 7, pid 0
        2, 1, 0, 0, // cmd IPVS_CMD_SET_SERVICE, version 1
        84, 0, 1, 0x80, // IPVS_CMD_ATTR_SERVICE, nested
        6, 0, 1, 0, 2, 0, 0, 0, // AF_INET
        6, 0, 2, 0, 17, 0, 0, 0, // IPPROTO_UDP 17
        20, 0, 3, 0, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ADDR
        6, 0, 4, 0, 0, 53, 0, 0, // PORT 53 as __be16
        7, 0, 6, 0, b'r', b'r', 0, 0, // SCHED_NAME "rr\0" (len 7) + 1 byte padding
        12, 0, 7, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff,
        0xff, // FLAGS: IP_VS_SVC_F_PERSISTENT, mask all
        8, 0, 8, 0, 0x2c, 1, 0, 0, // TIMEOUT 300 s
        8, 0, 9, 0, 0xff, 0xff, 0xff,
        0, // NETMASK: __be32 255.255.255.0, bytes in network order
    ];
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_new_service_ipv6_fwmark_persistent_64() {
    let mut s = service(
        ServiceKey::Fwmark {
            ipv6: true,
            mark: 7,
        },
        "sh",
    );
    s.flags = SVC_F_PERSISTENT;
    s.timeout = 60;
    s.netmask = Netmask::of_prefix(true, 64);
    let frame = Request::NewService(s).frame(FAMILY, 2);
    let expected: Vec<u8> = vec![
        76, 0, 0, 0, 0x24, 0, 5, 0, 2, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr, len 16 + 4 + 56
        1, 1, 0, 0, // IPVS_CMD_NEW_SERVICE
        56, 0, 1, 0x80, // IPVS_CMD_ATTR_SERVICE, nested
        6, 0, 1, 0, 10, 0, 0, 0, // AF: AF_INET6 10
        8, 0, 5, 0, 7, 0, 0, 0, // SVC_ATTR_FWMARK (type 5): 7 (no protocol, address, port)
        7, 0, 6, 0, b's', b'h', 0, 0, // SCHED_NAME "sh\0"
        12, 0, 7, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // FLAGS: persistent
        8, 0, 8, 0, 60, 0, 0, 0, // TIMEOUT 60 s
        8, 0, 9, 0, 64, 0, 0, 0, // NETMASK: IPv6 takes the prefix length, a host u32
    ];
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_new_service_sctp_ipv6_address() {
    let key = ServiceKey::Addr {
        protocol: IPPROTO_SCTP,
        addr: "2001:db8::10".parse().unwrap(),
        port: 3868,
    };
    let frame = Request::NewService(service(key, "mh")).frame(FAMILY, 3);
    let expected: Vec<u8> = vec![
        104, 0, 0, 0, 0x24, 0, 5, 0, 3, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr
        1, 1, 0, 0, // IPVS_CMD_NEW_SERVICE
        84, 0, 1, 0x80, // IPVS_CMD_ATTR_SERVICE, nested
        6, 0, 1, 0, 10, 0, 0, 0, // AF_INET6
        6, 0, 2, 0, 132, 0, 0, 0, // IPPROTO_SCTP 132
        20, 0, 3, 0, // ADDR: the 16 bytes of 2001:db8::10
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, //
        6, 0, 4, 0, 0x0f, 0x1c, 0, 0, // PORT 3868 = 0x0f1c, network order
        7, 0, 6, 0, b'm', b'h', 0, 0, // SCHED_NAME "mh\0"
        12, 0, 7, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // FLAGS none, mask all
        8, 0, 8, 0, 0, 0, 0, 0, // TIMEOUT 0
        8, 0, 9, 0, 128, 0, 0, 0, // NETMASK: prefix 128 (the kernel refuses 0 for IPv6)
    ];
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_del_service_sends_only_what_identifies_it() {
    let frame = Request::DelService(tcp_80()).frame(FAMILY, 4);
    let expected = concat(&[
        &[
            68, 0, 0, 0, 0x24, 0, 5, 0, 4, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr, len 16 + 4 + 48
            3, 1, 0, 0, // IPVS_CMD_DEL_SERVICE
            48, 0, 1, 0x80, // IPVS_CMD_ATTR_SERVICE: AF, PROTOCOL, ADDR, PORT only
        ],
        &TCP_80_ID,
    ]);
    assert_eq!(frame, expected);
}

/// The destination attributes after the service of a `NEW_DEST`/`SET_DEST`.
fn dest_frame(cmd: u8, seq: u8, dest_attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + 48 + 4 + dest_attrs.len();
    concat(&[
        &[
            len as u8, 0, 0, 0, 0x24, 0, 5, 0, seq, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr
            cmd, 1, 0, 0, // genlmsghdr
            48, 0, 1, 0x80, // IPVS_CMD_ATTR_SERVICE (identifying attributes)
        ],
        &TCP_80_ID,
        &[(dest_attrs.len() + 4) as u8, 0, 2, 0x80], // IPVS_CMD_ATTR_DEST (type 2 | NLA_F_NESTED)
        dest_attrs,
    ])
}

#[cfg(target_endian = "little")]
#[test]
fn golden_new_dest_nat() {
    let frame = Request::NewDest(tcp_80(), dest("10.0.0.1", 8080, FWD_MASQ, 2)).frame(FAMILY, 5);
    let expected = dest_frame(
        5, // IPVS_CMD_NEW_DEST
        5,
        &[
            6, 0, 11, 0, 2, 0, 0, 0, // DEST_ATTR_ADDR_FAMILY (type 11): AF_INET
            20, 0, 1, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, // DEST_ATTR_ADDR 10.0.0.1
            6, 0, 2, 0, 0x1f, 0x90, 0, 0, // DEST_ATTR_PORT: 8080 = 0x1f90, network order
            8, 0, 3, 0, 0, 0, 0, 0, // DEST_ATTR_FWD_METHOD: IP_VS_CONN_F_MASQ 0
            8, 0, 4, 0, 2, 0, 0, 0, // DEST_ATTR_WEIGHT 2
            8, 0, 5, 0, 0, 0, 0, 0, // DEST_ATTR_U_THRESH 0 (none)
            8, 0, 6, 0, 0, 0, 0, 0, // DEST_ATTR_L_THRESH 0
        ],
    );
    assert_eq!(frame.len(), 140);
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_new_dest_tunnel_names_ipip() {
    let frame =
        Request::NewDest(tcp_80(), dest("198.51.100.1", 80, FWD_TUNNEL, 1)).frame(FAMILY, 6);
    let expected = dest_frame(
        5,
        6,
        &[
            6, 0, 11, 0, 2, 0, 0, 0, // ADDR_FAMILY AF_INET
            20, 0, 1, 0, 198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ADDR
            6, 0, 2, 0, 0, 80, 0, 0, // PORT 80
            8, 0, 3, 0, 2, 0, 0, 0, // FWD_METHOD: IP_VS_CONN_F_TUNNEL 2
            8, 0, 4, 0, 1, 0, 0, 0, // WEIGHT 1
            5, 0, 13, 0, 0, 0, 0,
            0, // DEST_ATTR_TUN_TYPE (u8, type 13): IPIP 0, 3 bytes padding
            8, 0, 5, 0, 0, 0, 0, 0, // U_THRESH
            8, 0, 6, 0, 0, 0, 0, 0, // L_THRESH
        ],
    );
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_set_dest_direct_routing_at_weight_zero() {
    let frame = Request::SetDest(tcp_80(), dest("10.0.0.2", 80, FWD_DROUTE, 0)).frame(FAMILY, 8);
    let expected = dest_frame(
        6, // IPVS_CMD_SET_DEST
        8,
        &[
            6, 0, 11, 0, 2, 0, 0, 0, // ADDR_FAMILY
            20, 0, 1, 0, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ADDR 10.0.0.2
            6, 0, 2, 0, 0, 80, 0, 0, // PORT 80
            8, 0, 3, 0, 3, 0, 0, 0, // FWD_METHOD: IP_VS_CONN_F_DROUTE 3
            8, 0, 4, 0, 0, 0, 0, 0, // WEIGHT 0: inhibited, its connections drain
            8, 0, 5, 0, 0, 0, 0, 0, // U_THRESH
            8, 0, 6, 0, 0, 0, 0, 0, // L_THRESH
        ],
    );
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_del_dest_ipv6_sends_only_what_identifies_it() {
    let key = ServiceKey::Addr {
        protocol: IPPROTO_TCP,
        addr: "2001:db8::10".parse().unwrap(),
        port: 80,
    };
    let frame = Request::DelDest(key, dest("2001:db8::11", 80, FWD_MASQ, 1)).frame(FAMILY, 9);
    let expected: Vec<u8> = vec![
        108, 0, 0, 0, 0x24, 0, 5, 0, 9, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr, len 16 + 4 + 48 + 40
        7, 1, 0, 0, // IPVS_CMD_DEL_DEST
        48, 0, 1, 0x80, // IPVS_CMD_ATTR_SERVICE
        6, 0, 1, 0, 10, 0, 0, 0, // AF_INET6
        6, 0, 2, 0, 6, 0, 0, 0, // TCP
        20, 0, 3, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x10, // 2001:db8::10
        6, 0, 4, 0, 0, 80, 0, 0, // PORT 80
        40, 0, 2, 0x80, // IPVS_CMD_ATTR_DEST: ADDR_FAMILY, ADDR, PORT only
        6, 0, 11, 0, 10, 0, 0, 0, // ADDR_FAMILY AF_INET6
        20, 0, 1, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x11, // 2001:db8::11
        6, 0, 2, 0, 0, 80, 0, 0, // PORT 80
    ];
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_dumps_and_info() {
    assert_eq!(
        Request::DumpServices.frame(FAMILY, 10),
        vec![
            20, 0, 0, 0, 0x24, 0, // len 20, IPVS family
            0x01, 0x03, // NLM_F_REQUEST | NLM_F_DUMP (NLM_F_ROOT | NLM_F_MATCH)
            10, 0, 0, 0, 0, 0, 0, 0, // seq, pid
            4, 1, 0, 0, // IPVS_CMD_GET_SERVICE, no attributes: every service
        ]
    );
    assert_eq!(
        Request::DumpDests(tcp_80()).frame(FAMILY, 11),
        concat(&[
            &[
                68, 0, 0, 0, 0x24, 0, 0x01, 0x03, 11, 0, 0, 0, 0, 0, 0, 0, // dump
                8, 1, 0, 0, // IPVS_CMD_GET_DEST
                48, 0, 1, 0x80, // the service whose destinations to list
            ],
            &TCP_80_ID,
        ])
    );
    assert_eq!(
        Request::GetInfo.frame(FAMILY, 12),
        vec![20, 0, 0, 0, 0x24, 0, 5, 0, 12, 0, 0, 0, 0, 0, 0, 0, 15, 1, 0, 0] // IPVS_CMD_GET_INFO
    );
}

// ---------------------------------------------------------------------------------------
// Decoding what the kernel sends.

/// A kernel reply frame: `NLM_F_MULTI` for dump parts, the IPVS family, genl version 1.
fn kernel_frame(cmd: u8, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + body.len();
    let mut out = Vec::new();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&FAMILY.to_le_bytes());
    out.extend_from_slice(&NLM_F_MULTIPART.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&4242u32.to_le_bytes()); // our port id
    out.extend_from_slice(&[cmd, 1, 0, 0]);
    out.extend_from_slice(body);
    out
}

/// A service as `ip_vs_genl_fill_service` lays it out: nested without NLA_F_NESTED (the
/// kernel's `nla_nest_start_noflag`), the HASHED flag set, statistics after.
#[cfg(target_endian = "little")]
const KERNEL_SERVICE: &[u8] = &[
    152, 0, 1, 0, // IPVS_CMD_ATTR_SERVICE, len 152, no NLA_F_NESTED
    6, 0, 1, 0, 2, 0, 0, 0, // AF_INET
    6, 0, 2, 0, 6, 0, 0, 0, // TCP
    20, 0, 3, 0, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 192.0.2.10
    6, 0, 4, 0, 0, 80, 0, 0, // port 80
    8, 0, 6, 0, b'w', b'l', b'c', 0, // "wlc"
    12, 0, 7, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // flags: IP_VS_SVC_F_HASHED, mask ~0
    8, 0, 8, 0, 0, 0, 0, 0, // timeout 0
    8, 0, 9, 0, 0xff, 0xff, 0xff, 0xff, // netmask
    68, 0, 10, 0, // IPVS_SVC_ATTR_STATS (nested, len 68)
    8, 0, 1, 0, 3, 0, 0, 0, //   CONNS 3
    8, 0, 2, 0, 9, 0, 0, 0, //   INPKTS 9
    8, 0, 3, 0, 7, 0, 0, 0, //   OUTPKTS 7
    12, 0, 4, 0, 0x10, 2, 0, 0, 0, 0, 0, 0, //   INBYTES (u64)
    12, 0, 5, 0, 0x20, 3, 0, 0, 0, 0, 0, 0, //   OUTBYTES (u64)
    8, 0, 6, 0, 0, 0, 0, 0, //   CPS
    8, 0, 7, 0, 0, 0, 0, 0, //   INPPS … (the rest left out)
];

#[cfg(target_endian = "little")]
#[test]
fn decode_a_service_dump_reply() {
    let frame = kernel_frame(cmd::NEW_SERVICE, 3, KERNEL_SERVICE);
    let reply = Reply::decode_frame(&frame, &Request::DumpServices).unwrap();
    assert_eq!(
        reply,
        Reply::Service(Service {
            key: tcp_80(),
            scheduler: "wlc".into(),
            flags: SVC_F_HASHED,
            timeout: 0,
            netmask: Netmask::host(false),
            pe_name: None,
        })
    );
}

#[cfg(target_endian = "little")]
#[test]
fn decode_an_ipv6_fwmark_service_with_persistence_and_a_persistence_engine() {
    let body: Vec<u8> = vec![
        64, 0, 1, 0x80, // IPVS_CMD_ATTR_SERVICE (a kernel that sets NLA_F_NESTED)
        6, 0, 1, 0, 10, 0, 0, 0, // AF_INET6
        8, 0, 5, 0, 9, 0, 0, 0, // FWMARK 9
        8, 0, 6, 0, b'l', b'c', 0, 0, // "lc" (len 7 would do; a longer one is tolerated)
        8, 0, 11, 0, b's', b'i', b'p', 0, // PE_NAME "sip"
        12, 0, 7, 0, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // PERSISTENT | HASHED
        8, 0, 8, 0, 0x58, 2, 0, 0, // timeout 600
        8, 0, 9, 0, 64, 0, 0, 0, // prefix 64
    ];
    let reply = Reply::decode_frame(&kernel_frame(1, 1, &body), &Request::DumpServices).unwrap();
    let Reply::Service(s) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        s.key,
        ServiceKey::Fwmark {
            ipv6: true,
            mark: 9
        }
    );
    assert_eq!(s.key.to_string(), "FWM 9 IPv6");
    assert_eq!(
        (
            s.scheduler.as_str(),
            s.flags,
            s.timeout,
            s.netmask,
            s.pe_name.as_deref()
        ),
        (
            "lc",
            SVC_F_PERSISTENT | SVC_F_HASHED,
            600,
            Netmask::V6(64),
            Some("sip")
        )
    );
}

#[cfg(target_endian = "little")]
#[test]
fn decode_a_destination_dump_reply_of_a_recent_kernel() {
    let body: Vec<u8> = vec![
        124, 0, 2, 0, // IPVS_CMD_ATTR_DEST
        20, 0, 1, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 10.0.0.1
        6, 0, 2, 0, 0x1f, 0x90, 0, 0, // port 8080
        8, 0, 3, 0, 3, 0, 0, 0, // DROUTE
        8, 0, 4, 0, 5, 0, 0, 0, // weight 5
        8, 0, 5, 0, 100, 0, 0, 0, // u_thresh 100
        8, 0, 6, 0, 10, 0, 0, 0, // l_thresh 10
        8, 0, 7, 0, 7, 0, 0, 0, // ACTIVE_CONNS 7
        8, 0, 8, 0, 2, 0, 0, 0, // INACT_CONNS 2
        8, 0, 9, 0, 1, 0, 0, 0, // PERSIST_CONNS 1
        12, 0, 10, 0, 8, 0, 1, 0, 3, 0, 0, 0, // STATS (nested, one CONNS)
        6, 0, 11, 0, 2, 0, 0, 0, // ADDR_FAMILY AF_INET
        16, 0, 12, 0, 12, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, // STATS64 (nested, one u64)
    ];
    let key = tcp_80();
    let reply = Reply::decode_frame(&kernel_frame(5, 2, &body), &Request::DumpDests(key)).unwrap();
    assert_eq!(
        reply,
        Reply::Dest(DestEntry {
            dest: Dest {
                addr: "10.0.0.1".parse().unwrap(),
                port: 8080,
                forward: FWD_DROUTE,
                weight: 5,
                u_threshold: 100,
                l_threshold: 10,
            },
            active_conns: 7,
            inactive_conns: 2,
            persistent_conns: 1,
        })
    );
}

#[cfg(target_endian = "little")]
#[test]
fn a_destination_without_address_family_is_of_its_service_family() {
    // Kernels before IPVS_DEST_ATTR_ADDR_FAMILY: the address is read in the service's family.
    let body: Vec<u8> = vec![
        64, 0, 2, 0, // DEST
        20, 0, 1, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x11, // 2001:db8::11
        6, 0, 2, 0, 0, 80, 0, 0, // port
        8, 0, 3, 0, 0, 0, 0, 0, // MASQ
        8, 0, 4, 0, 1, 0, 0, 0, // weight
        8, 0, 5, 0, 0, 0, 0, 0, 8, 0, 6, 0, 0, 0, 0, 0, // thresholds
    ];
    let v6 = ServiceKey::Addr {
        protocol: IPPROTO_TCP,
        addr: "2001:db8::10".parse().unwrap(),
        port: 80,
    };
    let Reply::Dest(d) =
        Reply::decode_frame(&kernel_frame(5, 2, &body), &Request::DumpDests(v6)).unwrap()
    else {
        panic!()
    };
    assert_eq!(d.dest.addr, "2001:db8::11".parse::<IpAddr>().unwrap());
}

#[cfg(target_endian = "little")]
#[test]
fn decode_info_and_refuse_malformed_replies() {
    let body: Vec<u8> = vec![
        8, 0, 1, 0, 0x01, 0x02, 0x01, 0, // IPVS_INFO_ATTR_VERSION 0x010201 (1.2.1)
        8, 0, 2, 0, 0, 0x10, 0, 0, // IPVS_INFO_ATTR_CONN_TAB_SIZE 4096
    ];
    assert_eq!(
        Reply::decode_frame(&kernel_frame(cmd::SET_INFO, 1, &body), &Request::GetInfo).unwrap(),
        Reply::Info {
            version: 0x010201,
            conn_tab_size: 4096
        }
    );
    // A service without a scheduler, a port attribute cut short, an attribute running past
    // the message: errors, never a panic or a made-up value.
    let no_sched: Vec<u8> = vec![
        12, 0, 1, 0, 6, 0, 1, 0, 2, 0, 0, 0, // SERVICE { AF }
    ];
    assert!(Reply::decode_frame(&kernel_frame(1, 1, &no_sched), &Request::DumpServices).is_err());
    let short_port: Vec<u8> = vec![
        12, 0, 1, 0, 5, 0, 4, 0, 0, 0, 0, 0, // SERVICE { PORT with 1 byte }
    ];
    assert!(Reply::decode_frame(&kernel_frame(1, 1, &short_port), &Request::DumpServices).is_err());
    let overrun: Vec<u8> = vec![200, 0, 1, 0, 6, 0, 1, 0];
    assert!(Reply::decode_frame(&kernel_frame(1, 1, &overrun), &Request::DumpServices).is_err());
}

#[test]
fn requests_round_trip_through_the_decoder() {
    // What we send decodes to what we meant (the same attribute code reads both ways).
    let mut s = service(tcp_80(), "wlc");
    s.flags = SVC_F_PERSISTENT;
    s.timeout = 50;
    s.netmask = Netmask::of_prefix(false, 16);
    let frame = Request::NewService(s.clone()).frame(FAMILY, 1);
    let msg = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&frame).unwrap();
    let NetlinkPayload::InnerMessage(genl) = msg.payload else {
        panic!()
    };
    let Some(IpvsAttr::Service(attrs)) = genl.payload.attrs.first() else {
        panic!()
    };
    assert_eq!(Service::from_attrs(attrs).unwrap(), s);
    for d in [
        dest("10.0.0.1", 80, FWD_MASQ, 3),
        dest("2001:db8::1", 443, FWD_TUNNEL, 65535),
    ] {
        let frame = Request::NewDest(tcp_80(), d.clone()).frame(FAMILY, 1);
        let msg = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&frame).unwrap();
        let NetlinkPayload::InnerMessage(genl) = msg.payload else {
            panic!()
        };
        let Some(IpvsAttr::Dest(attrs)) = genl.payload.attrs.get(1) else {
            panic!()
        };
        assert_eq!(DestEntry::from_attrs(attrs, false).unwrap().dest, d);
    }
}

// ---------------------------------------------------------------------------------------
// The transport's answer handling (acknowledgement, errors, dumps).

fn control_frame(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(payload);
    out
}

/// NLMSG_ERROR (type 2): the errno (0 = acknowledgement), then the request's header.
fn error_frame(seq: u32, code: i32) -> Vec<u8> {
    let mut payload = code.to_ne_bytes().to_vec();
    payload.extend_from_slice(&control_frame(FAMILY, seq, &[])[..16]);
    control_frame(2, seq, &payload)
}

fn absorb(buf: &[u8], seq: u32) -> (Result<bool, IpvsError>, Vec<Reply>) {
    let mut replies = Vec::new();
    let request = Request::DumpServices;
    let result = genl::absorb::<GenlMessage<IpvsMessage>>(buf, seq, "test", &mut |m| {
        replies.push(Reply::decode(&m.payload, &request).map_err(|e| e.to_string())?);
        Ok(())
    });
    (result, replies)
}

#[cfg(target_endian = "little")]
#[test]
fn acknowledgements_errors_and_dumps_end_a_request() {
    assert!(matches!(absorb(&error_frame(5, 0), 5).0, Ok(true)));
    let (err, _) = absorb(&error_frame(5, -errno::EEXIST), 5);
    let err = err.unwrap_err();
    assert_eq!(err.errno(), Some(errno::EEXIST));
    assert!(err.to_string().starts_with("test: File exists"), "{err}");
    // Another request's answer is not ours.
    assert!(matches!(
        absorb(&error_frame(4, -errno::EPERM), 5).0,
        Ok(false)
    ));
    let eperm = absorb(&error_frame(5, -errno::EPERM), 5).0.unwrap_err();
    assert!(eperm.to_string().contains("CAP_NET_ADMIN"), "{eperm}");
    // A dump: two services in one datagram, then NLMSG_DONE (type 3) in the next.
    let mut two = kernel_frame(1, 9, KERNEL_SERVICE);
    two.extend(kernel_frame(1, 9, KERNEL_SERVICE));
    let (done, replies) = absorb(&two, 9);
    assert!(matches!(done, Ok(false)));
    assert_eq!(replies.len(), 2);
    assert!(matches!(
        absorb(&control_frame(3, 9, &0i32.to_ne_bytes()), 9).0,
        Ok(true)
    ));
    let failed = absorb(&control_frame(3, 9, &(-errno::EPERM).to_ne_bytes()), 9).0;
    assert_eq!(failed.unwrap_err().errno(), Some(errno::EPERM));
}

#[test]
fn a_missing_scheduler_module_is_named() {
    let e = IpvsError::Kernel {
        what: Request::NewService(service(tcp_80(), "twos")).describe(),
        errno: errno::ENOENT,
    };
    assert_eq!(
        e.to_string(),
        format!(
            "add service TCP 192.0.2.10:80 (twos): {} (the kernel has no module for this scheduler: ip_vs_<name>)",
            std::io::Error::from_raw_os_error(errno::ENOENT)
        )
    );
}

// ---------------------------------------------------------------------------------------
// The backend against an in-memory IPVS.

type Table = BTreeMap<ServiceKey, (Service, BTreeMap<(IpAddr, u16), Dest>)>;

/// An in-memory IPVS with the kernel's answers (`ip_vs_genl_set_cmd`): EEXIST for a service
/// or destination that exists, ESRCH for a missing service, ENOENT for a missing destination
/// or scheduler; EEXIST for a sync daemon of a state that runs, ESRCH for stopping one that
/// does not. Dumps go through the decoder, as the kernel lays them out.
#[derive(Clone, Default)]
struct FakeIpvs {
    table: Arc<Mutex<Table>>,
    daemons: Arc<Mutex<Vec<SyncDaemon>>>,
    log: Arc<Mutex<Vec<Request>>>,
}

impl FakeIpvs {
    fn requests(&self) -> Vec<Request> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn changes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| !r.is_dump())
            .collect()
    }

    fn dests(&self, key: &ServiceKey) -> Vec<Dest> {
        self.table.lock().unwrap()[key]
            .1
            .values()
            .cloned()
            .collect()
    }

    fn service(&self, key: &ServiceKey) -> Option<Service> {
        self.table.lock().unwrap().get(key).map(|(s, _)| s.clone())
    }
}

fn kernel_err(errno: i32) -> IpvsError {
    IpvsError::Kernel {
        what: "fake".into(),
        errno,
    }
}

/// A dump reply as the kernel frames it, decoded by the real decoder.
fn through_decoder(request: &Request, cmd: u8, attr: IpvsAttr) -> Reply {
    let msg = IpvsMessage {
        cmd,
        attrs: vec![attr],
    };
    let mut genl = GenlMessage::from_payload(msg);
    genl.set_resolved_family_id(FAMILY);
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_MULTIPART;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    Reply::decode_frame(&buf, request).unwrap()
}

impl Kernel for FakeIpvs {
    fn execute(&mut self, request: &Request) -> Result<Vec<Reply>, IpvsError> {
        self.log.lock().unwrap().push(request.clone());
        let mut t = self.table.lock().unwrap();
        let svc = |t: &mut Table, k: &ServiceKey| -> Result<(), IpvsError> {
            t.contains_key(k)
                .then_some(())
                .ok_or(kernel_err(errno::ESRCH))
        };
        match request {
            Request::NewService(s) | Request::SetService(s) => {
                if Scheduler::from_name(&s.scheduler).is_none() {
                    return Err(kernel_err(errno::ENOENT));
                }
                let mut s = s.clone();
                s.flags |= SVC_F_HASHED;
                match (request, t.get_mut(&s.key)) {
                    (Request::NewService(_), Some(_)) => return Err(kernel_err(errno::EEXIST)),
                    (Request::NewService(_), None) => {
                        t.insert(s.key, (s, BTreeMap::new()));
                    }
                    (_, Some(entry)) => entry.0 = s,
                    (_, None) => return Err(kernel_err(errno::ESRCH)),
                }
                Ok(vec![])
            }
            Request::DelService(k) => t.remove(k).map(|_| vec![]).ok_or(kernel_err(errno::ESRCH)),
            Request::NewDest(k, d) | Request::SetDest(k, d) | Request::DelDest(k, d) => {
                svc(&mut t, k)?;
                let dests = &mut t.get_mut(k).unwrap().1;
                let id = (d.addr, d.port);
                match (request, dests.contains_key(&id)) {
                    (Request::NewDest(..), true) => Err(kernel_err(errno::EEXIST)),
                    (Request::NewDest(..), false) | (Request::SetDest(..), true) => {
                        dests.insert(id, d.clone());
                        Ok(vec![])
                    }
                    (Request::DelDest(..), true) => {
                        dests.remove(&id);
                        Ok(vec![])
                    }
                    _ => Err(kernel_err(errno::ENOENT)),
                }
            }
            Request::DumpServices => Ok(t
                .values()
                .map(|(s, _)| {
                    through_decoder(request, cmd::NEW_SERVICE, IpvsAttr::Service(s.attrs()))
                })
                .collect()),
            Request::DumpDests(k) => Ok(t
                .get(k)
                .map(|(_, d)| d.values().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
                .iter()
                .map(|d| through_decoder(request, cmd::NEW_DEST, IpvsAttr::Dest(d.attrs())))
                .collect()),
            Request::GetInfo => Ok(vec![Reply::Info {
                version: 0x010201,
                conn_tab_size: 4096,
            }]),
            Request::NewDaemon(d) => {
                let mut daemons = self.daemons.lock().unwrap();
                if daemons.iter().any(|r| r.state == d.state) {
                    return Err(kernel_err(errno::EEXIST));
                }
                daemons.push(d.clone());
                Ok(vec![])
            }
            Request::DelDaemon(state) => {
                let mut daemons = self.daemons.lock().unwrap();
                let before = daemons.len();
                daemons.retain(|d| d.state != *state);
                if daemons.len() == before {
                    return Err(kernel_err(errno::ESRCH));
                }
                Ok(vec![])
            }
            Request::DumpDaemons => Ok(self
                .daemons
                .lock()
                .unwrap()
                .iter()
                .map(|d| through_decoder(request, cmd::NEW_DAEMON, IpvsAttr::Daemon(d.attrs())))
                .collect()),
        }
    }
}

fn member(addr: &str, weight: u32) -> Member {
    Member {
        addr: addr.parse().unwrap(),
        weight,
    }
}

/// A NAT plan for TCP 192.0.2.10:80 as `service_plan` makes one for `lb_algo scheduler`
/// (with the stateless fallback recorded: IPVS must ignore it).
fn plan(scheduler: Scheduler, members: Vec<Member>) -> ServicePlan {
    let (used, fallback) = schedule::effective(scheduler);
    ServicePlan {
        name: "192.0.2.10:80/tcp".into(),
        matches: vec![Match::Addrs {
            first: "192.0.2.10".parse().unwrap(),
            last: "192.0.2.10".parse().unwrap(),
            port: 80,
        }],
        protocol: Protocol::Tcp,
        ipv6: false,
        forward: Forward::Nat,
        scheduler: used,
        fallback,
        persistence: None,
        table: schedule::plan(used, &members),
        anchor: members.clone(),
        members,
    }
}

fn backend() -> (Ipvs, FakeIpvs) {
    let fake = FakeIpvs::default();
    (Ipvs::with_kernel(Box::new(fake.clone())), fake)
}

#[test]
fn a_first_apply_adds_the_service_with_the_configured_scheduler_and_its_destinations() {
    let (mut ipvs, fake) = backend();
    let p = plan(
        Scheduler::Wlc,
        vec![member("10.0.0.1:8080", 2), member("10.0.0.2:80", 1)],
    );
    assert_eq!(
        p.fallback,
        Some(Fallback {
            requested: Scheduler::Wlc,
            used: Scheduler::Wrr
        })
    );
    ipvs.apply(std::slice::from_ref(&p)).unwrap();
    assert_eq!(
        fake.requests(),
        vec![
            Request::DumpServices,
            Request::NewService(service(tcp_80(), "wlc")),
            Request::NewDest(tcp_80(), dest("10.0.0.1", 8080, FWD_MASQ, 2)),
            Request::NewDest(tcp_80(), dest("10.0.0.2", 80, FWD_MASQ, 1)),
        ]
    );
    // The same plans again: the kernel is listed, nothing changes.
    ipvs.apply(std::slice::from_ref(&p)).unwrap();
    assert_eq!(
        fake.requests(),
        vec![Request::DumpServices, Request::DumpDests(tcp_80())]
    );
    assert_eq!(ipvs.owned().len(), 1);
}

#[test]
fn weights_inhibition_and_departures_are_destination_edits() {
    let (mut ipvs, fake) = backend();
    let three = vec![
        member("10.0.0.1:80", 1),
        member("10.0.0.2:80", 1),
        member("10.0.0.3:80", 1),
    ];
    ipvs.apply(&[plan(Scheduler::Rr, three)]).unwrap();
    fake.requests();
    // .1 weighs 5, .2 is inhibited (weight 0: it stays, its connections drain), .3 left.
    let next = vec![member("10.0.0.1:80", 5), member("10.0.0.2:80", 0)];
    ipvs.apply(&[plan(Scheduler::Rr, next)]).unwrap();
    assert_eq!(
        fake.changes(),
        vec![
            Request::DelDest(tcp_80(), dest("10.0.0.3", 80, FWD_MASQ, 1)),
            Request::SetDest(tcp_80(), dest("10.0.0.1", 80, FWD_MASQ, 5)),
            Request::SetDest(tcp_80(), dest("10.0.0.2", 80, FWD_MASQ, 0)),
        ]
    );
    assert_eq!(
        fake.dests(&tcp_80()),
        vec![
            dest("10.0.0.1", 80, FWD_MASQ, 5),
            dest("10.0.0.2", 80, FWD_MASQ, 0)
        ]
    );
}

#[test]
fn scheduler_and_persistence_changes_edit_the_service_in_place() {
    let (mut ipvs, fake) = backend();
    let members = vec![member("10.0.0.1:80", 1)];
    ipvs.apply(&[plan(Scheduler::Wlc, members.clone())])
        .unwrap();
    fake.requests();
    let mut p = plan(Scheduler::Sed, members);
    p.persistence = Some(Persistence {
        timeout: Duration::from_secs(300),
        prefix: 24,
    });
    ipvs.apply(&[p]).unwrap();
    let mut want = service(tcp_80(), "sed");
    want.flags = SVC_F_PERSISTENT;
    want.timeout = 300;
    want.netmask = Netmask::V4("255.255.255.0".parse().unwrap());
    assert_eq!(fake.changes(), vec![Request::SetService(want.clone())]);
    want.flags |= SVC_F_HASHED;
    assert_eq!(fake.service(&tcp_80()), Some(want));
}

#[test]
fn only_owned_services_are_deleted_and_cleared() {
    let (mut ipvs, fake) = backend();
    // The operator's own service, added with ipvsadm.
    let theirs = ServiceKey::Addr {
        protocol: IPPROTO_TCP,
        addr: "198.51.100.7".parse().unwrap(),
        port: 443,
    };
    fake.table
        .lock()
        .unwrap()
        .insert(theirs, (service(theirs, "rr"), BTreeMap::new()));
    ipvs.apply(&[plan(Scheduler::Rr, vec![member("10.0.0.1:80", 1)])])
        .unwrap();
    fake.requests();
    // Our service leaves the configuration: deleted; theirs stays.
    ipvs.apply(&[]).unwrap();
    assert_eq!(fake.changes(), vec![Request::DelService(tcp_80())]);
    assert!(fake.service(&theirs).is_some());
    ipvs.apply(&[plan(Scheduler::Rr, vec![member("10.0.0.1:80", 1)])])
        .unwrap();
    fake.requests();
    ipvs.clear().unwrap();
    assert_eq!(fake.changes(), vec![Request::DelService(tcp_80())]);
    assert_eq!(fake.table.lock().unwrap().len(), 1, "theirs stays");
    assert!(ipvs.owned().is_empty());
    // Clearing twice, or a service someone else removed, is not an error.
    ipvs.clear().unwrap();
}

#[test]
fn a_wanted_service_that_exists_is_taken_over_and_made_exactly_the_plan() {
    let (mut ipvs, fake) = backend();
    // Left by a killed run: another scheduler, a stale destination.
    let mut stale = BTreeMap::new();
    let old = dest("10.0.0.9", 80, FWD_MASQ, 1);
    stale.insert((old.addr, old.port), old.clone());
    fake.table
        .lock()
        .unwrap()
        .insert(tcp_80(), (service(tcp_80(), "rr"), stale));
    ipvs.apply(&[plan(Scheduler::Wlc, vec![member("10.0.0.1:80", 1)])])
        .unwrap();
    assert_eq!(
        fake.changes(),
        vec![
            Request::SetService(service(tcp_80(), "wlc")),
            Request::DelDest(tcp_80(), old),
            Request::NewDest(tcp_80(), dest("10.0.0.1", 80, FWD_MASQ, 1)),
        ]
    );
    ipvs.clear().unwrap();
    assert!(fake.table.lock().unwrap().is_empty());
}

#[test]
fn forwarding_methods_fwmarks_ranges_and_protocols_map_as_keepalived_maps_them() {
    let (mut ipvs, fake) = backend();
    let mut dr = plan(Scheduler::Sh, vec![member("10.0.0.1:80", 1)]);
    dr.forward = Forward::Dr {
        ingress: String::new(),
        targets: vec![None],
    };
    let mut tun = plan(Scheduler::Lblc, vec![member("198.51.100.1:0", 3)]);
    tun.name = "fwmark 7/tcp".into();
    tun.forward = Forward::Tun;
    tun.ipv6 = true;
    tun.matches = vec![Match::Fwmark(7)];
    let mut group = plan(Scheduler::Twos, vec![member("10.0.0.5:53", 1)]);
    group.name = "group g/sctp".into();
    group.protocol = Protocol::Sctp;
    group.matches = vec![Match::Addrs {
        first: "192.0.2.20".parse().unwrap(),
        last: "192.0.2.22".parse().unwrap(),
        port: 53,
    }];
    ipvs.apply(&[dr, tun, group]).unwrap();
    let t = fake.table.lock().unwrap();
    assert_eq!(
        t.len(),
        5,
        "one service per address of the range, as keepalived"
    );
    assert_eq!(t[&tcp_80()].0.scheduler, "sh");
    assert_eq!(t[&tcp_80()].1.values().next().unwrap().forward, FWD_DROUTE);
    let fwm = ServiceKey::Fwmark {
        ipv6: true,
        mark: 7,
    };
    assert_eq!(t[&fwm].0.scheduler, "lblc");
    assert_eq!(t[&fwm].0.netmask, Netmask::V6(128));
    // A tunnel may cross families: an IPv4 real server behind an IPv6 fwmark service.
    assert_eq!(
        t[&fwm].1.values().next().unwrap(),
        &dest("198.51.100.1", 0, FWD_TUNNEL, 3)
    );
    for last in 20..=22 {
        let key = ServiceKey::Addr {
            protocol: IPPROTO_SCTP,
            addr: IpAddr::from([192, 0, 2, last]),
            port: 53,
        };
        assert_eq!(t[&key].0.scheduler, "twos");
    }
}

#[test]
fn a_service_added_between_the_dump_and_ours_is_taken_over() {
    let (_, fake) = backend();
    let p = plan(Scheduler::Rr, vec![member("10.0.0.1:80", 1)]);
    // Someone adds our service between the dump and our NEW_SERVICE: EEXIST, taken over.
    struct Racy(FakeIpvs);
    impl Kernel for Racy {
        fn execute(&mut self, r: &Request) -> Result<Vec<Reply>, IpvsError> {
            if let Request::NewService(s) = r {
                let mut other = s.clone();
                other.scheduler = "wrr".into();
                self.0
                    .table
                    .lock()
                    .unwrap()
                    .insert(s.key, (other, BTreeMap::new()));
            }
            self.0.execute(r)
        }
    }
    let mut racy = Ipvs::with_kernel(Box::new(Racy(fake.clone())));
    racy.apply(std::slice::from_ref(&p)).unwrap();
    assert_eq!(fake.service(&tcp_80()).unwrap().scheduler, "rr");
    assert_eq!(
        fake.dests(&tcp_80()),
        vec![dest("10.0.0.1", 80, FWD_MASQ, 1)]
    );
    assert!(racy.owned().contains(&tcp_80()));
}

#[test]
fn the_unknown_scheduler_error_reaches_the_caller_with_the_service() {
    struct NoModule;
    impl Kernel for NoModule {
        fn execute(&mut self, r: &Request) -> Result<Vec<Reply>, IpvsError> {
            match r {
                Request::NewService(_) => Err(IpvsError::Kernel {
                    what: r.describe(),
                    errno: errno::ENOENT,
                }),
                _ => Ok(vec![]),
            }
        }
    }
    let mut ipvs = Ipvs::with_kernel(Box::new(NoModule));
    let err = ipvs
        .apply(&[plan(Scheduler::Twos, vec![member("10.0.0.1:80", 1)])])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("ipvs: add service TCP 192.0.2.10:80 (twos): ")
            && err.contains("ip_vs_<name>"),
        "{err}"
    );
    assert!(ipvs.owned().is_empty(), "nothing was created");
}

#[test]
fn a_service_named_twice_is_kept_for_the_first_plan_with_a_warning() {
    let (mut ipvs, fake) = backend();
    let a = plan(Scheduler::Rr, vec![member("10.0.0.1:80", 1)]);
    let mut b = plan(Scheduler::Wrr, vec![member("10.0.0.2:80", 1)]);
    b.name = "group g/tcp".into();
    ipvs.apply(&[a, b]).unwrap();
    assert_eq!(fake.service(&tcp_80()).unwrap().scheduler, "rr");
    let w = ipvs.take_warnings();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("TCP 192.0.2.10:80"), "{w:?}");
}

#[test]
fn ranges_are_bounded_and_of_one_family() {
    assert_eq!(
        expand("10.0.0.254".parse().unwrap(), "10.0.1.1".parse().unwrap())
            .unwrap()
            .len(),
        4
    );
    assert!(expand("10.0.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()).is_err());
    assert!(expand("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap()).is_err());
    assert!(expand(
        "2001:db8::".parse().unwrap(),
        "2001:db8::1:0".parse().unwrap()
    )
    .is_err());
}

#[test]
fn netmasks_follow_the_family() {
    assert_eq!(
        Netmask::of_prefix(false, 24),
        Netmask::V4("255.255.255.0".parse().unwrap())
    );
    assert_eq!(Netmask::of_prefix(false, 0), Netmask::V4(0.into()));
    assert_eq!(Netmask::host(false), Netmask::V4(u32::MAX.into()));
    assert_eq!(Netmask::of_prefix(true, 48), Netmask::V6(48));
    assert_eq!(
        Netmask::of_prefix(true, 0),
        Netmask::V6(1),
        "the kernel refuses 0"
    );
}

// ---------------------------------------------------------------------------------------
// Sync daemons (`IPVS_CMD_*_DAEMON`, `IPVS_DAEMON_ATTR_*`).

fn master_on(interface: &str, sync_id: u32) -> SyncDaemon {
    SyncDaemon {
        state: SyncState::Master,
        interface: interface.into(),
        sync_id,
        max_len: None,
        group: None,
        port: None,
        ttl: None,
    }
}

#[cfg(target_endian = "little")]
#[test]
fn golden_new_daemon_sends_state_interface_and_sync_id() {
    let frame = Request::NewDaemon(master_on("wv0", 5)).frame(FAMILY, 13);
    let expected: Vec<u8> = vec![
        48, 0, 0, 0, 0x24, 0, 5, 0, 13, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr, len 16 + 4 + 28
        9, 1, 0, 0, // IPVS_CMD_NEW_DAEMON
        28, 0, 3, 0x80, // IPVS_CMD_ATTR_DAEMON (type 3 | NLA_F_NESTED)
        8, 0, 1, 0, 1, 0, 0, 0, // DAEMON_ATTR_STATE: IP_VS_STATE_MASTER 1
        8, 0, 2, 0, b'w', b'v', b'0', 0, // DAEMON_ATTR_MCAST_IFN "wv0\0"
        8, 0, 3, 0, 5, 0, 0, 0, // DAEMON_ATTR_SYNC_ID 5
    ];
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_new_daemon_with_every_option() {
    let mut d = master_on("wv0", 5);
    d.state = SyncState::Backup;
    d.max_len = Some(1472);
    d.group = Some("224.0.0.81".parse().unwrap());
    d.port = Some(8848);
    d.ttl = Some(1);
    let frame = Request::NewDaemon(d).frame(FAMILY, 14);
    let expected: Vec<u8> = vec![
        80, 0, 0, 0, 0x24, 0, 5, 0, 14, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr, len 16 + 4 + 60
        9, 1, 0, 0, // IPVS_CMD_NEW_DAEMON
        60, 0, 3, 0x80, // IPVS_CMD_ATTR_DAEMON
        8, 0, 1, 0, 2, 0, 0, 0, // STATE: IP_VS_STATE_BACKUP 2
        8, 0, 2, 0, b'w', b'v', b'0', 0, // MCAST_IFN
        8, 0, 3, 0, 5, 0, 0, 0, // SYNC_ID
        6, 0, 4, 0, 0xc0, 0x05, 0, 0, // SYNC_MAXLEN (u16) 1472 = 0x05c0, host order
        8, 0, 5, 0, 224, 0, 0, 81, // MCAST_GROUP: an in_addr, network order
        6, 0, 7, 0, 0x90, 0x22, 0, 0, // MCAST_PORT (u16) 8848 = 0x2290, host order
        5, 0, 8, 0, 1, 0, 0, 0, // MCAST_TTL (u8) 1, 3 bytes padding
    ];
    assert_eq!(frame, expected);
}

#[cfg(target_endian = "little")]
#[test]
fn golden_del_daemon_sends_only_the_state_and_dump_daemons_is_a_dump() {
    assert_eq!(
        Request::DelDaemon(SyncState::Backup).frame(FAMILY, 15),
        vec![
            32, 0, 0, 0, 0x24, 0, 5, 0, 15, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr
            10, 1, 0, 0, // IPVS_CMD_DEL_DAEMON
            12, 0, 3, 0x80, // IPVS_CMD_ATTR_DAEMON
            8, 0, 1, 0, 2, 0, 0, 0, // STATE: backup
        ]
    );
    assert_eq!(
        Request::DumpDaemons.frame(FAMILY, 16),
        vec![
            20, 0, 0, 0, 0x24, 0, 0x01, 0x03, 16, 0, 0, 0, 0, 0, 0, 0, // REQUEST | DUMP
            11, 1, 0, 0, // IPVS_CMD_GET_DAEMON
        ]
    );
}

#[cfg(target_endian = "little")]
#[test]
fn decode_a_daemon_dump_reply() {
    // As ip_vs_genl_fill_daemon lays it out: no NLA_F_NESTED, every attribute filled in.
    let body: Vec<u8> = vec![
        64, 0, 3, 0, // IPVS_CMD_ATTR_DAEMON
        8, 0, 1, 0, 1, 0, 0, 0, // STATE master
        9, 0, 2, 0, b'e', b't', b'h', b'0', 0, 0, 0, 0, // MCAST_IFN "eth0\0", padded
        8, 0, 3, 0, 7, 0, 0, 0, // SYNC_ID 7
        6, 0, 4, 0, 0xc0, 0x05, 0, 0, // SYNC_MAXLEN 1472
        6, 0, 7, 0, 0x90, 0x22, 0, 0, // MCAST_PORT 8848
        5, 0, 8, 0, 1, 0, 0, 0, // MCAST_TTL 1
        8, 0, 5, 0, 224, 0, 0, 81, // MCAST_GROUP 224.0.0.81
    ];
    let reply = Reply::decode_frame(
        &kernel_frame(cmd::NEW_DAEMON, 4, &body),
        &Request::DumpDaemons,
    )
    .unwrap();
    assert_eq!(
        reply,
        Reply::Daemon(SyncDaemon {
            state: SyncState::Master,
            interface: "eth0".into(),
            sync_id: 7,
            max_len: Some(1472),
            group: Some("224.0.0.81".parse().unwrap()),
            port: Some(8848),
            ttl: Some(1),
        })
    );
    // Without a state: an error, not a guess.
    let no_state: Vec<u8> = vec![12, 0, 3, 0, 8, 0, 3, 0, 7, 0, 0, 0];
    assert!(Reply::decode_frame(
        &kernel_frame(cmd::NEW_DAEMON, 4, &no_state),
        &Request::DumpDaemons
    )
    .is_err());
}

#[test]
fn sync_daemon_interface_names_are_bounded() {
    assert!(master_on("eth0", 1).check().is_ok());
    assert!(master_on("", 1).check().is_err());
    assert!(master_on("sixteen-bytes-ab", 1).check().is_err());
}

#[test]
fn a_sync_daemon_is_started_restarted_with_new_settings_and_stopped() {
    let (mut ipvs, fake) = backend();
    ipvs.start_sync_daemon(&master_on("eth0", 5)).unwrap();
    assert_eq!(ipvs.sync_daemons().unwrap(), vec![master_on("eth0", 5)]);
    // Another sync id: the running master is stopped first (the kernel refuses a second).
    fake.requests();
    ipvs.start_sync_daemon(&master_on("eth1", 6)).unwrap();
    assert_eq!(
        fake.changes(),
        vec![
            Request::DelDaemon(SyncState::Master),
            Request::NewDaemon(master_on("eth1", 6))
        ]
    );
    assert_eq!(ipvs.sync_daemons().unwrap(), vec![master_on("eth1", 6)]);
    ipvs.stop_sync_daemon(SyncState::Master).unwrap();
    assert!(ipvs.sync_daemons().unwrap().is_empty());
    // Stopping what does not run is done already.
    ipvs.stop_sync_daemon(SyncState::Backup).unwrap();
    // A name the kernel cannot hold is refused before anything is sent.
    fake.requests();
    let e = ipvs
        .start_sync_daemon(&master_on("an-interface-name", 1))
        .unwrap_err();
    assert!(e.to_string().contains("1 to 15 bytes"), "{e}");
    assert!(fake.requests().is_empty());
}
