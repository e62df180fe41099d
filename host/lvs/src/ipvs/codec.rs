//! IPVS's generic netlink messages, as the kernel's UAPI (`include/uapi/linux/ip_vs.h`) lays
//! them out and `net/netfilter/ipvs/ip_vs_ctl.c` reads them.
//!
//! A message is a netlink header, the generic netlink header `{cmd, version 1, reserved}` and
//! attributes (each `{u16 len, u16 type}` then the value, padded to 4 bytes):
//!
//! ```text
//! IPVS_CMD_ATTR_SERVICE (nested)          IPVS_CMD_ATTR_DEST (nested)
//!   AF          u16  AF_INET / AF_INET6     ADDR_FAMILY u16
//!   FWMARK      u32                         ADDR        16 bytes (union nf_inet_addr)
//!   | PROTOCOL  u16  IPPROTO_*              PORT        u16 holding a __be16
//!     ADDR      16 bytes (nf_inet_addr)     FWD_METHOD  u32 IP_VS_CONN_F_{MASQ,TUNNEL,DROUTE}
//!     PORT      u16 holding a __be16        WEIGHT      u32 (an int >= 0)
//!   SCHED_NAME  NUL-terminated, < 16        TUN_TYPE    u8 (tunnels only: IPIP)
//!   FLAGS       struct ip_vs_flags          U_THRESH    u32
//!               {u32 flags, u32 mask}       L_THRESH    u32
//!   TIMEOUT     u32 seconds
//!   NETMASK     u32: IPv4, a __be32 mask; IPv6, the prefix length
//! ```
//!
//! Integers are in host byte order, as netlink's are, except the ports and the IPv4 netmask,
//! which the kernel copies into `__be16`/`__be32` fields unchanged. Identifying a service
//! (deleting it, dumping or changing its destinations) needs only AF and FWMARK or
//! PROTOCOL/ADDR/PORT; adding or editing one needs the rest too (`ip_vs_genl_parse_service`).
//! The FLAGS mask is all ones, as ipvsadm and keepalived send it: the service's flags become
//! exactly ours.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla,
    NlaBuffer, NlasIterator, Parseable, ParseableParametrized, NLA_F_NESTED, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};

use super::sync::{DaemonAttr, SyncDaemon, SyncState};

/// The generic netlink family name (`IPVS_GENL_NAME`).
pub const FAMILY_NAME: &str = "IPVS";
/// The family's version (`IPVS_GENL_VERSION`).
pub const FAMILY_VERSION: u8 = 1;

/// `IPVS_CMD_*`.
pub mod cmd {
    /// Add a service (also the command of service dump replies).
    pub const NEW_SERVICE: u8 = 1;
    /// Edit a service.
    pub const SET_SERVICE: u8 = 2;
    /// Delete a service (and its destinations).
    pub const DEL_SERVICE: u8 = 3;
    /// Get one service, or dump them all.
    pub const GET_SERVICE: u8 = 4;
    /// Add a destination (also the command of destination dump replies).
    pub const NEW_DEST: u8 = 5;
    /// Edit a destination.
    pub const SET_DEST: u8 = 6;
    /// Delete a destination.
    pub const DEL_DEST: u8 = 7;
    /// Dump a service's destinations.
    pub const GET_DEST: u8 = 8;
    /// Start a sync daemon (also the command of daemon dump replies).
    pub const NEW_DAEMON: u8 = 9;
    /// Stop a sync daemon.
    pub const DEL_DAEMON: u8 = 10;
    /// Dump the sync daemons.
    pub const GET_DAEMON: u8 = 11;
    /// The reply to `GET_INFO`.
    pub const SET_INFO: u8 = 14;
    /// IPVS's version and connection table size.
    pub const GET_INFO: u8 = 15;
}

/// `IPVS_CMD_ATTR_SERVICE`.
const CMD_ATTR_SERVICE: u16 = 1;
/// `IPVS_CMD_ATTR_DEST`.
const CMD_ATTR_DEST: u16 = 2;
/// `IPVS_CMD_ATTR_DAEMON`.
const CMD_ATTR_DAEMON: u16 = 3;
/// `IPVS_INFO_ATTR_VERSION` (top level of a `SET_INFO` reply).
const INFO_ATTR_VERSION: u16 = 1;
/// `IPVS_INFO_ATTR_CONN_TAB_SIZE`.
const INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

/// `IPVS_SVC_ATTR_*`.
mod svc {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const PE_NAME: u16 = 11;
}

/// `IPVS_DEST_ATTR_*`.
mod dest {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const ADDR_FAMILY: u16 = 11;
    pub const TUN_TYPE: u16 = 13;
}

/// `IP_VS_SVC_F_PERSISTENT`.
pub const SVC_F_PERSISTENT: u32 = 0x0001;
/// `IP_VS_SVC_F_HASHED`: set by the kernel on every listed service; not ours to compare.
pub const SVC_F_HASHED: u32 = 0x0002;

/// `IP_VS_CONN_F_MASQ`: NAT.
pub const FWD_MASQ: u32 = 0;
/// `IP_VS_CONN_F_TUNNEL`: IP-in-IP.
pub const FWD_TUNNEL: u32 = 2;
/// `IP_VS_CONN_F_DROUTE`: direct routing.
pub const FWD_DROUTE: u32 = 3;
/// `IP_VS_CONN_F_FWD_MASK`.
pub const FWD_MASK: u32 = 0x0007;
/// `IP_VS_CONN_F_TUNNEL_TYPE_IPIP`.
pub const TUNNEL_TYPE_IPIP: u8 = 0;

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u16 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u16 = 17;
/// `IPPROTO_SCTP`.
pub const IPPROTO_SCTP: u16 = 132;

/// `IP_VS_SCHEDNAME_MAXLEN` (with the NUL).
pub const SCHEDNAME_MAXLEN: usize = 16;

/// The 16 bytes of a `union nf_inet_addr` (an IPv4 address in the first 4, zeros after).
fn inet_addr(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = [0; 16];
            out[..4].copy_from_slice(&v4.octets());
            out
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn from_inet_addr(bytes: [u8; 16], ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

fn af_of(ipv6: bool) -> u16 {
    if ipv6 {
        AF_INET6
    } else {
        AF_INET
    }
}

fn value<const N: usize>(nla: &NlaBuffer<&[u8]>, what: &str) -> Result<[u8; N], DecodeError> {
    nla.value()
        .get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            DecodeError::from(format!(
                "IPVS attribute {what}: {} bytes, expected {N}",
                nla.value().len()
            ))
        })
}

fn nul_string(nla: &NlaBuffer<&[u8]>) -> String {
    let v = nla.value();
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// One attribute inside `IPVS_CMD_ATTR_SERVICE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvcAttr {
    /// `AF`.
    Af(u16),
    /// `PROTOCOL` (`IPPROTO_*`).
    Protocol(u16),
    /// `ADDR` (`union nf_inet_addr`).
    Addr([u8; 16]),
    /// `PORT`, host order here, network order on the wire.
    Port(u16),
    /// `FWMARK`.
    Fwmark(u32),
    /// `SCHED_NAME`.
    SchedName(String),
    /// `FLAGS` (`struct ip_vs_flags`).
    Flags {
        /// `IP_VS_SVC_F_*`.
        flags: u32,
        /// Which flags to set.
        mask: u32,
    },
    /// `TIMEOUT` (persistence, seconds).
    Timeout(u32),
    /// `NETMASK`, the attribute's 4 bytes as they are on the wire.
    Netmask([u8; 4]),
    /// `PE_NAME` (persistence engine, e.g. `sip`).
    PeName(String),
    /// Anything else (statistics …), kept as is.
    Other(DefaultNla),
}

impl Nla for SvcAttr {
    fn value_len(&self) -> usize {
        match self {
            SvcAttr::Af(_) | SvcAttr::Protocol(_) | SvcAttr::Port(_) => 2,
            SvcAttr::Addr(_) => 16,
            SvcAttr::Fwmark(_) | SvcAttr::Timeout(_) | SvcAttr::Netmask(_) => 4,
            SvcAttr::SchedName(s) | SvcAttr::PeName(s) => s.len() + 1,
            SvcAttr::Flags { .. } => 8,
            SvcAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            SvcAttr::Af(_) => svc::AF,
            SvcAttr::Protocol(_) => svc::PROTOCOL,
            SvcAttr::Addr(_) => svc::ADDR,
            SvcAttr::Port(_) => svc::PORT,
            SvcAttr::Fwmark(_) => svc::FWMARK,
            SvcAttr::SchedName(_) => svc::SCHED_NAME,
            SvcAttr::Flags { .. } => svc::FLAGS,
            SvcAttr::Timeout(_) => svc::TIMEOUT,
            SvcAttr::Netmask(_) => svc::NETMASK,
            SvcAttr::PeName(_) => svc::PE_NAME,
            SvcAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            SvcAttr::Af(v) | SvcAttr::Protocol(v) => buf[..2].copy_from_slice(&v.to_ne_bytes()),
            SvcAttr::Port(p) => buf[..2].copy_from_slice(&p.to_be_bytes()),
            SvcAttr::Addr(a) => buf[..16].copy_from_slice(a),
            SvcAttr::Fwmark(v) | SvcAttr::Timeout(v) => buf[..4].copy_from_slice(&v.to_ne_bytes()),
            SvcAttr::Netmask(m) => buf[..4].copy_from_slice(m),
            SvcAttr::SchedName(s) | SvcAttr::PeName(s) => {
                buf[..s.len()].copy_from_slice(s.as_bytes());
                buf[s.len()] = 0;
            }
            SvcAttr::Flags { flags, mask } => {
                buf[..4].copy_from_slice(&flags.to_ne_bytes());
                buf[4..8].copy_from_slice(&mask.to_ne_bytes());
            }
            SvcAttr::Other(nla) => nla.emit_value(buf),
        }
    }
}

impl SvcAttr {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            svc::AF => SvcAttr::Af(u16::from_ne_bytes(value(nla, "AF")?)),
            svc::PROTOCOL => SvcAttr::Protocol(u16::from_ne_bytes(value(nla, "PROTOCOL")?)),
            svc::ADDR => SvcAttr::Addr(value(nla, "ADDR")?),
            svc::PORT => SvcAttr::Port(u16::from_be_bytes(value(nla, "PORT")?)),
            svc::FWMARK => SvcAttr::Fwmark(u32::from_ne_bytes(value(nla, "FWMARK")?)),
            svc::SCHED_NAME => SvcAttr::SchedName(nul_string(nla)),
            svc::FLAGS => {
                let raw: [u8; 8] = value(nla, "FLAGS")?;
                SvcAttr::Flags {
                    flags: u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]),
                    mask: u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]),
                }
            }
            svc::TIMEOUT => SvcAttr::Timeout(u32::from_ne_bytes(value(nla, "TIMEOUT")?)),
            svc::NETMASK => SvcAttr::Netmask(value(nla, "NETMASK")?),
            svc::PE_NAME => SvcAttr::PeName(nul_string(nla)),
            _ => SvcAttr::Other(DefaultNla::parse(nla)?),
        })
    }
}

/// One attribute inside `IPVS_CMD_ATTR_DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestAttr {
    /// `ADDR_FAMILY`.
    AddrFamily(u16),
    /// `ADDR`.
    Addr([u8; 16]),
    /// `PORT`, host order here, network order on the wire.
    Port(u16),
    /// `FWD_METHOD`.
    FwdMethod(u32),
    /// `WEIGHT`.
    Weight(u32),
    /// `U_THRESH`.
    UThresh(u32),
    /// `L_THRESH`.
    LThresh(u32),
    /// `ACTIVE_CONNS` (dump replies).
    ActiveConns(u32),
    /// `INACT_CONNS` (dump replies).
    InactConns(u32),
    /// `PERSIST_CONNS` (dump replies).
    PersistConns(u32),
    /// `TUN_TYPE`.
    TunType(u8),
    /// Anything else (statistics, tunnel port and flags …), kept as is.
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        match self {
            DestAttr::AddrFamily(_) | DestAttr::Port(_) => 2,
            DestAttr::Addr(_) => 16,
            DestAttr::TunType(_) => 1,
            DestAttr::Other(nla) => nla.value_len(),
            _ => 4,
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DestAttr::AddrFamily(_) => dest::ADDR_FAMILY,
            DestAttr::Addr(_) => dest::ADDR,
            DestAttr::Port(_) => dest::PORT,
            DestAttr::FwdMethod(_) => dest::FWD_METHOD,
            DestAttr::Weight(_) => dest::WEIGHT,
            DestAttr::UThresh(_) => dest::U_THRESH,
            DestAttr::LThresh(_) => dest::L_THRESH,
            DestAttr::ActiveConns(_) => dest::ACTIVE_CONNS,
            DestAttr::InactConns(_) => dest::INACT_CONNS,
            DestAttr::PersistConns(_) => dest::PERSIST_CONNS,
            DestAttr::TunType(_) => dest::TUN_TYPE,
            DestAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            DestAttr::AddrFamily(v) => buf[..2].copy_from_slice(&v.to_ne_bytes()),
            DestAttr::Port(p) => buf[..2].copy_from_slice(&p.to_be_bytes()),
            DestAttr::Addr(a) => buf[..16].copy_from_slice(a),
            DestAttr::TunType(t) => buf[0] = *t,
            DestAttr::FwdMethod(v)
            | DestAttr::Weight(v)
            | DestAttr::UThresh(v)
            | DestAttr::LThresh(v)
            | DestAttr::ActiveConns(v)
            | DestAttr::InactConns(v)
            | DestAttr::PersistConns(v) => buf[..4].copy_from_slice(&v.to_ne_bytes()),
            DestAttr::Other(nla) => nla.emit_value(buf),
        }
    }
}

impl DestAttr {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let u32_of = |what| value(nla, what).map(u32::from_ne_bytes);
        Ok(match nla.kind() {
            dest::ADDR_FAMILY => {
                DestAttr::AddrFamily(u16::from_ne_bytes(value(nla, "ADDR_FAMILY")?))
            }
            dest::ADDR => DestAttr::Addr(value(nla, "ADDR")?),
            dest::PORT => DestAttr::Port(u16::from_be_bytes(value(nla, "PORT")?)),
            dest::FWD_METHOD => DestAttr::FwdMethod(u32_of("FWD_METHOD")?),
            dest::WEIGHT => DestAttr::Weight(u32_of("WEIGHT")?),
            dest::U_THRESH => DestAttr::UThresh(u32_of("U_THRESH")?),
            dest::L_THRESH => DestAttr::LThresh(u32_of("L_THRESH")?),
            dest::ACTIVE_CONNS => DestAttr::ActiveConns(u32_of("ACTIVE_CONNS")?),
            dest::INACT_CONNS => DestAttr::InactConns(u32_of("INACT_CONNS")?),
            dest::PERSIST_CONNS => DestAttr::PersistConns(u32_of("PERSIST_CONNS")?),
            dest::TUN_TYPE => DestAttr::TunType(value::<1>(nla, "TUN_TYPE")?[0]),
            _ => DestAttr::Other(DefaultNla::parse(nla)?),
        })
    }
}

/// A top-level attribute of an IPVS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsAttr {
    /// `IPVS_CMD_ATTR_SERVICE`.
    Service(Vec<SvcAttr>),
    /// `IPVS_CMD_ATTR_DEST`.
    Dest(Vec<DestAttr>),
    /// `IPVS_CMD_ATTR_DAEMON`.
    Daemon(Vec<DaemonAttr>),
    /// `IPVS_INFO_ATTR_VERSION` (a `SET_INFO` reply).
    InfoVersion(u32),
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE` (a `SET_INFO` reply).
    InfoConnTabSize(u32),
    /// Anything else.
    Other(DefaultNla),
}

impl Nla for IpvsAttr {
    fn value_len(&self) -> usize {
        match self {
            IpvsAttr::Service(attrs) => attrs.as_slice().buffer_len(),
            IpvsAttr::Dest(attrs) => attrs.as_slice().buffer_len(),
            IpvsAttr::Daemon(attrs) => attrs.as_slice().buffer_len(),
            IpvsAttr::InfoVersion(_) | IpvsAttr::InfoConnTabSize(_) => 4,
            IpvsAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            IpvsAttr::Service(_) => CMD_ATTR_SERVICE | NLA_F_NESTED,
            IpvsAttr::Dest(_) => CMD_ATTR_DEST | NLA_F_NESTED,
            IpvsAttr::Daemon(_) => CMD_ATTR_DAEMON | NLA_F_NESTED,
            IpvsAttr::InfoVersion(_) => INFO_ATTR_VERSION,
            IpvsAttr::InfoConnTabSize(_) => INFO_ATTR_CONN_TAB_SIZE,
            IpvsAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            IpvsAttr::Service(attrs) => attrs.as_slice().emit(buf),
            IpvsAttr::Dest(attrs) => attrs.as_slice().emit(buf),
            IpvsAttr::Daemon(attrs) => attrs.as_slice().emit(buf),
            IpvsAttr::InfoVersion(v) | IpvsAttr::InfoConnTabSize(v) => {
                buf[..4].copy_from_slice(&v.to_ne_bytes())
            }
            IpvsAttr::Other(nla) => nla.emit_value(buf),
        }
    }
}

fn parse_nested<T>(
    bytes: &[u8],
    parse: impl Fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    NlasIterator::new(bytes).map(|nla| parse(&nla?)).collect()
}

/// The payload of an IPVS generic netlink message: its command and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    /// `IPVS_CMD_*`.
    pub cmd: u8,
    /// Top-level attributes.
    pub attrs: Vec<IpvsAttr>,
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let attrs =
            NlasIterator::new(buf)
                .map(|nla| {
                    let nla = nla?;
                    let value = nla.value();
                    // A `SET_INFO` reply's top-level attributes reuse the numbers 1 and 2.
                    Ok(match (header.cmd, nla.kind()) {
                        (cmd::SET_INFO, INFO_ATTR_VERSION) => {
                            IpvsAttr::InfoVersion(u32::from_ne_bytes(
                                value.get(..4).and_then(|b| b.try_into().ok()).ok_or_else(
                                    || DecodeError::from("IPVS info version: short attribute"),
                                )?,
                            ))
                        }
                        (cmd::SET_INFO, INFO_ATTR_CONN_TAB_SIZE) => {
                            IpvsAttr::InfoConnTabSize(u32::from_ne_bytes(
                                value.get(..4).and_then(|b| b.try_into().ok()).ok_or_else(
                                    || DecodeError::from("IPVS info table size: short attribute"),
                                )?,
                            ))
                        }
                        (_, CMD_ATTR_SERVICE) => {
                            IpvsAttr::Service(parse_nested(value, SvcAttr::parse)?)
                        }
                        (_, CMD_ATTR_DEST) => IpvsAttr::Dest(parse_nested(value, DestAttr::parse)?),
                        (_, CMD_ATTR_DAEMON) => {
                            IpvsAttr::Daemon(parse_nested(value, DaemonAttr::parse)?)
                        }
                        _ => IpvsAttr::Other(DefaultNla::parse(&nla)?),
                    })
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
        Ok(IpvsMessage {
            cmd: header.cmd,
            attrs,
        })
    }
}

/// What identifies a virtual service in IPVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    /// Protocol, virtual address (its family is the service's) and port.
    Addr {
        /// `IPPROTO_*`.
        protocol: u16,
        /// Virtual address.
        addr: IpAddr,
        /// Port (0: every port).
        port: u16,
    },
    /// A firewall mark, in one address family.
    Fwmark {
        /// IPv6 (else IPv4).
        ipv6: bool,
        /// The mark.
        mark: u32,
    },
}

impl ServiceKey {
    /// Whether the service is IPv6.
    pub fn ipv6(&self) -> bool {
        match self {
            ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { ipv6, .. } => *ipv6,
        }
    }

    /// `AF` then the identifying attributes, in the order ipvsadm and keepalived send them.
    pub(crate) fn attrs(&self) -> Vec<SvcAttr> {
        let mut out = vec![SvcAttr::Af(af_of(self.ipv6()))];
        match self {
            ServiceKey::Fwmark { mark, .. } => out.push(SvcAttr::Fwmark(*mark)),
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                out.push(SvcAttr::Protocol(*protocol));
                out.push(SvcAttr::Addr(inet_addr(*addr)));
                out.push(SvcAttr::Port(*port));
            }
        }
        out
    }
}

fn protocol_name(protocol: u16) -> String {
    match protocol {
        IPPROTO_TCP => "TCP".into(),
        IPPROTO_UDP => "UDP".into(),
        IPPROTO_SCTP => "SCTP".into(),
        other => format!("proto {other}"),
    }
}

impl fmt::Display for ServiceKey {
    /// As `ipvsadm -Ln` names services: `TCP 192.0.2.10:80`, `FWM 7 IPv6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr: IpAddr::V6(a),
                port,
            } => write!(f, "{} [{a}]:{port}", protocol_name(*protocol)),
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "{} {addr}:{port}", protocol_name(*protocol)),
            ServiceKey::Fwmark { ipv6, mark } => {
                write!(f, "FWM {mark}{}", if *ipv6 { " IPv6" } else { "" })
            }
        }
    }
}

/// The persistence netmask of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Netmask {
    /// IPv4: a mask (255.255.255.255: one client address).
    V4(Ipv4Addr),
    /// IPv6: a prefix length (128: one client address).
    V6(u32),
}

impl Netmask {
    /// The netmask of a `prefix` (an IPv4 mask length or an IPv6 prefix length).
    pub fn of_prefix(ipv6: bool, prefix: u8) -> Netmask {
        if ipv6 {
            Netmask::V6(u32::from(prefix.clamp(1, 128)))
        } else {
            let bits = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            Netmask::V4(Ipv4Addr::from(bits))
        }
    }

    /// One client address per persistence entry (ipvsadm's and keepalived's default).
    pub fn host(ipv6: bool) -> Netmask {
        Netmask::of_prefix(ipv6, if ipv6 { 128 } else { 32 })
    }

    fn wire(self) -> [u8; 4] {
        match self {
            // A __be32 copied as is: the mask's bytes in network order.
            Netmask::V4(mask) => mask.octets(),
            Netmask::V6(prefix) => prefix.to_ne_bytes(),
        }
    }

    fn from_wire(raw: [u8; 4], ipv6: bool) -> Netmask {
        if ipv6 {
            Netmask::V6(u32::from_ne_bytes(raw))
        } else {
            Netmask::V4(Ipv4Addr::from(raw))
        }
    }
}

/// A virtual service as IPVS holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// What identifies it.
    pub key: ServiceKey,
    /// Scheduler name (`wlc`, `rr`, …: IPVS loads `ip_vs_<name>`).
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` (the kernel adds `SVC_F_HASHED` to every listed service).
    pub flags: u32,
    /// Persistence timeout in seconds (0 without persistence).
    pub timeout: u32,
    /// Persistence netmask.
    pub netmask: Netmask,
    /// Persistence engine, if any (we set none).
    pub pe_name: Option<String>,
}

impl Service {
    /// The full attribute set (`NEW_SERVICE`, `SET_SERVICE`), in ipvsadm's order.
    pub(crate) fn attrs(&self) -> Vec<SvcAttr> {
        let mut out = self.key.attrs();
        out.push(SvcAttr::SchedName(self.scheduler.clone()));
        if let Some(pe) = &self.pe_name {
            out.push(SvcAttr::PeName(pe.clone()));
        }
        out.push(SvcAttr::Flags {
            flags: self.flags,
            mask: u32::MAX,
        });
        out.push(SvcAttr::Timeout(self.timeout));
        out.push(SvcAttr::Netmask(self.netmask.wire()));
        out
    }

    /// A service from a dump reply's attributes (the kernel's `ip_vs_genl_fill_service`).
    pub fn from_attrs(attrs: &[SvcAttr]) -> Result<Service, DecodeError> {
        let mut af = None;
        let (mut protocol, mut addr, mut port, mut fwmark) = (None, None, None, None);
        let (mut sched, mut flags, mut timeout, mut netmask, mut pe) =
            (None, None, None, None, None);
        for a in attrs {
            match a {
                SvcAttr::Af(v) => af = Some(*v),
                SvcAttr::Protocol(v) => protocol = Some(*v),
                SvcAttr::Addr(v) => addr = Some(*v),
                SvcAttr::Port(v) => port = Some(*v),
                SvcAttr::Fwmark(v) => fwmark = Some(*v),
                SvcAttr::SchedName(v) => sched = Some(v.clone()),
                SvcAttr::Flags { flags: f, mask } => flags = Some(f & mask),
                SvcAttr::Timeout(v) => timeout = Some(*v),
                SvcAttr::Netmask(v) => netmask = Some(*v),
                SvcAttr::PeName(v) => pe = Some(v.clone()),
                SvcAttr::Other(_) => {}
            }
        }
        let ipv6 = match af {
            Some(AF_INET) => false,
            Some(AF_INET6) => true,
            other => return Err(format!("IPVS service: address family {other:?}").into()),
        };
        let key = match (fwmark, protocol, addr, port) {
            (Some(mark), ..) if mark != 0 => ServiceKey::Fwmark { ipv6, mark },
            (_, Some(protocol), Some(addr), Some(port)) => ServiceKey::Addr {
                protocol,
                addr: from_inet_addr(addr, ipv6),
                port,
            },
            _ => return Err("IPVS service: neither a fwmark nor protocol/address/port".into()),
        };
        Ok(Service {
            key,
            scheduler: sched.ok_or("IPVS service: no scheduler")?,
            flags: flags.ok_or("IPVS service: no flags")?,
            timeout: timeout.ok_or("IPVS service: no timeout")?,
            netmask: Netmask::from_wire(netmask.ok_or("IPVS service: no netmask")?, ipv6),
            pe_name: pe,
        })
    }
}

/// A destination (real server) of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    /// Address (its family may differ from the service's only for tunnels).
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// `FWD_MASQ`, `FWD_TUNNEL` or `FWD_DROUTE`.
    pub forward: u32,
    /// Weight (0: no new connections; existing ones go on).
    pub weight: u32,
    /// Upper connection threshold (0: none).
    pub u_threshold: u32,
    /// Lower connection threshold (0: none).
    pub l_threshold: u32,
}

impl Dest {
    /// `ADDR_FAMILY`, `ADDR`, `PORT`: what `DEL_DEST` needs.
    pub(crate) fn id_attrs(&self) -> Vec<DestAttr> {
        vec![
            DestAttr::AddrFamily(af_of(self.addr.is_ipv6())),
            DestAttr::Addr(inet_addr(self.addr)),
            DestAttr::Port(self.port),
        ]
    }

    /// The full attribute set (`NEW_DEST`, `SET_DEST`), in keepalived's order.
    pub(crate) fn attrs(&self) -> Vec<DestAttr> {
        let mut out = self.id_attrs();
        out.push(DestAttr::FwdMethod(self.forward & FWD_MASK));
        out.push(DestAttr::Weight(self.weight));
        if self.forward & FWD_MASK == FWD_TUNNEL {
            out.push(DestAttr::TunType(TUNNEL_TYPE_IPIP));
        }
        out.push(DestAttr::UThresh(self.u_threshold));
        out.push(DestAttr::LThresh(self.l_threshold));
        out
    }
}

/// A destination as a dump lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestEntry {
    /// Its settings.
    pub dest: Dest,
    /// Active connections.
    pub active_conns: u32,
    /// Inactive connections.
    pub inactive_conns: u32,
    /// Persistence templates.
    pub persistent_conns: u32,
}

impl DestEntry {
    /// A destination from a dump reply's attributes (the kernel's `ip_vs_genl_fill_dest`);
    /// without `ADDR_FAMILY` (kernels before 4.x) it is the service's.
    pub fn from_attrs(attrs: &[DestAttr], service_ipv6: bool) -> Result<DestEntry, DecodeError> {
        let mut ipv6 = service_ipv6;
        let (mut addr, mut port, mut fwd, mut weight) = (None, None, None, None);
        let (mut u, mut l, mut active, mut inactive, mut persist) = (0, 0, 0, 0, 0);
        for a in attrs {
            match a {
                DestAttr::AddrFamily(AF_INET6) => ipv6 = true,
                DestAttr::AddrFamily(AF_INET) => ipv6 = false,
                DestAttr::AddrFamily(other) => {
                    return Err(format!("IPVS destination: address family {other}").into())
                }
                DestAttr::Addr(v) => addr = Some(*v),
                DestAttr::Port(v) => port = Some(*v),
                DestAttr::FwdMethod(v) => fwd = Some(*v),
                DestAttr::Weight(v) => weight = Some(*v),
                DestAttr::UThresh(v) => u = *v,
                DestAttr::LThresh(v) => l = *v,
                DestAttr::ActiveConns(v) => active = *v,
                DestAttr::InactConns(v) => inactive = *v,
                DestAttr::PersistConns(v) => persist = *v,
                DestAttr::TunType(_) | DestAttr::Other(_) => {}
            }
        }
        Ok(DestEntry {
            dest: Dest {
                addr: from_inet_addr(addr.ok_or("IPVS destination: no address")?, ipv6),
                port: port.ok_or("IPVS destination: no port")?,
                forward: fwd.ok_or("IPVS destination: no forwarding method")? & FWD_MASK,
                weight: weight.ok_or("IPVS destination: no weight")?,
                u_threshold: u,
                l_threshold: l,
            },
            active_conns: active,
            inactive_conns: inactive,
            persistent_conns: persist,
        })
    }
}

/// What the backend asks of IPVS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `IPVS_CMD_NEW_SERVICE`.
    NewService(Service),
    /// `IPVS_CMD_SET_SERVICE`.
    SetService(Service),
    /// `IPVS_CMD_DEL_SERVICE` (its destinations go with it).
    DelService(ServiceKey),
    /// `IPVS_CMD_NEW_DEST`.
    NewDest(ServiceKey, Dest),
    /// `IPVS_CMD_SET_DEST`.
    SetDest(ServiceKey, Dest),
    /// `IPVS_CMD_DEL_DEST`.
    DelDest(ServiceKey, Dest),
    /// `IPVS_CMD_GET_SERVICE` with `NLM_F_DUMP`: every service.
    DumpServices,
    /// `IPVS_CMD_GET_DEST` with `NLM_F_DUMP`: one service's destinations.
    DumpDests(ServiceKey),
    /// `IPVS_CMD_GET_INFO`.
    GetInfo,
    /// `IPVS_CMD_NEW_DAEMON`: start a sync daemon.
    NewDaemon(SyncDaemon),
    /// `IPVS_CMD_DEL_DAEMON`: stop the master or the backup sync daemon.
    DelDaemon(SyncState),
    /// `IPVS_CMD_GET_DAEMON` with `NLM_F_DUMP`: the running sync daemons.
    DumpDaemons,
}

impl Request {
    /// Whether the kernel answers with a dump (a series of messages ending in `NLMSG_DONE`)
    /// rather than an acknowledgement.
    pub fn is_dump(&self) -> bool {
        matches!(
            self,
            Request::DumpServices | Request::DumpDests(_) | Request::DumpDaemons
        )
    }

    /// The netlink flags it is sent with.
    pub fn flags(&self) -> u16 {
        match self {
            _ if self.is_dump() => NLM_F_REQUEST | NLM_F_DUMP,
            _ => NLM_F_REQUEST | NLM_F_ACK,
        }
    }

    /// Its generic netlink payload.
    pub fn message(&self) -> IpvsMessage {
        let (cmd, attrs) = match self {
            Request::NewService(s) => (cmd::NEW_SERVICE, vec![IpvsAttr::Service(s.attrs())]),
            Request::SetService(s) => (cmd::SET_SERVICE, vec![IpvsAttr::Service(s.attrs())]),
            Request::DelService(k) => (cmd::DEL_SERVICE, vec![IpvsAttr::Service(k.attrs())]),
            Request::NewDest(k, d) => (
                cmd::NEW_DEST,
                vec![IpvsAttr::Service(k.attrs()), IpvsAttr::Dest(d.attrs())],
            ),
            Request::SetDest(k, d) => (
                cmd::SET_DEST,
                vec![IpvsAttr::Service(k.attrs()), IpvsAttr::Dest(d.attrs())],
            ),
            Request::DelDest(k, d) => (
                cmd::DEL_DEST,
                vec![IpvsAttr::Service(k.attrs()), IpvsAttr::Dest(d.id_attrs())],
            ),
            Request::DumpServices => (cmd::GET_SERVICE, vec![]),
            Request::DumpDests(k) => (cmd::GET_DEST, vec![IpvsAttr::Service(k.attrs())]),
            Request::GetInfo => (cmd::GET_INFO, vec![]),
            Request::NewDaemon(d) => (cmd::NEW_DAEMON, vec![IpvsAttr::Daemon(d.attrs())]),
            Request::DelDaemon(state) => (
                cmd::DEL_DAEMON,
                vec![IpvsAttr::Daemon(vec![DaemonAttr::State(state.value())])],
            ),
            Request::DumpDaemons => (cmd::GET_DAEMON, vec![]),
        };
        IpvsMessage { cmd, attrs }
    }

    /// The whole netlink message: `family` is the resolved id of the `IPVS` family.
    pub fn frame(&self, family: u16, seq: u32) -> Vec<u8> {
        let mut genl = GenlMessage::from_payload(self.message());
        genl.set_resolved_family_id(family);
        let mut header = NetlinkHeader::default();
        header.flags = self.flags();
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        buf
    }

    /// Short description for errors (`add service TCP 192.0.2.10:80`).
    pub fn describe(&self) -> String {
        match self {
            Request::NewService(s) => format!("add service {} ({})", s.key, s.scheduler),
            Request::SetService(s) => format!("edit service {} ({})", s.key, s.scheduler),
            Request::DelService(k) => format!("delete service {k}"),
            Request::NewDest(k, d) => format!("add {} to {k}", dest_name(d)),
            Request::SetDest(k, d) => format!("edit {} of {k}", dest_name(d)),
            Request::DelDest(k, d) => format!("delete {} from {k}", dest_name(d)),
            Request::DumpServices => "list services".into(),
            Request::DumpDests(k) => format!("list destinations of {k}"),
            Request::GetInfo => "get IPVS info".into(),
            Request::NewDaemon(d) => format!(
                "start the {} sync daemon (interface {}, sync id {})",
                d.state.name(),
                d.interface,
                d.sync_id
            ),
            Request::DelDaemon(state) => format!("stop the {} sync daemon", state.name()),
            Request::DumpDaemons => "list sync daemons".into(),
        }
    }
}

fn dest_name(d: &Dest) -> String {
    match d.addr {
        IpAddr::V6(a) => format!("[{a}]:{}", d.port),
        IpAddr::V4(a) => format!("{a}:{}", d.port),
    }
}

/// What IPVS answers, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A service (a `GET_SERVICE` dump).
    Service(Service),
    /// A destination (a `GET_DEST` dump).
    Dest(DestEntry),
    /// A running sync daemon (a `GET_DAEMON` dump).
    Daemon(SyncDaemon),
    /// `SET_INFO`.
    Info {
        /// `IP_VS_VERSION_CODE` (0x010201 = 1.2.1).
        version: u32,
        /// Connection hash table size.
        conn_tab_size: u32,
    },
}

impl Reply {
    /// Decode one reply message of `request`.
    pub fn decode(msg: &IpvsMessage, request: &Request) -> Result<Reply, DecodeError> {
        match msg.cmd {
            cmd::NEW_SERVICE => msg
                .attrs
                .iter()
                .find_map(|a| match a {
                    IpvsAttr::Service(s) => Some(Service::from_attrs(s)),
                    _ => None,
                })
                .unwrap_or_else(|| Err("IPVS service reply without a service".into()))
                .map(Reply::Service),
            cmd::NEW_DEST => {
                let ipv6 = match request {
                    Request::DumpDests(k) => k.ipv6(),
                    _ => false,
                };
                msg.attrs
                    .iter()
                    .find_map(|a| match a {
                        IpvsAttr::Dest(d) => Some(DestEntry::from_attrs(d, ipv6)),
                        _ => None,
                    })
                    .unwrap_or_else(|| Err("IPVS destination reply without a destination".into()))
                    .map(Reply::Dest)
            }
            cmd::NEW_DAEMON => msg
                .attrs
                .iter()
                .find_map(|a| match a {
                    IpvsAttr::Daemon(d) => Some(SyncDaemon::from_attrs(d)),
                    _ => None,
                })
                .unwrap_or_else(|| Err("IPVS sync daemon reply without a daemon".into()))
                .map(Reply::Daemon),
            cmd::SET_INFO => {
                let mut version = None;
                let mut size = None;
                for a in &msg.attrs {
                    match a {
                        IpvsAttr::InfoVersion(v) => version = Some(*v),
                        IpvsAttr::InfoConnTabSize(v) => size = Some(*v),
                        _ => {}
                    }
                }
                Ok(Reply::Info {
                    version: version.ok_or("IPVS info without a version")?,
                    conn_tab_size: size.unwrap_or(0),
                })
            }
            other => Err(format!("unexpected IPVS reply command {other}").into()),
        }
    }

    /// Decode a whole netlink message carrying an IPVS reply (tests and the transport).
    pub fn decode_frame(frame: &[u8], request: &Request) -> Result<Reply, DecodeError> {
        let msg = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(frame)?;
        match msg.payload {
            NetlinkPayload::InnerMessage(genl) => Reply::decode(&genl.payload, request),
            other => Err(format!("not an IPVS message: {other:?}").into()),
        }
    }
}
