//! IPVS connection synchronisation: the kernel's sync daemons (`ipvsadm --start-daemon`,
//! keepalived's `lvs_sync_daemon`), started and stopped over generic netlink. A master sends
//! its connection table to a multicast group on an interface; a backup with the same sync id
//! takes it in, so connections survive a director failover.
//!
//! ```text
//! IPVS_CMD_ATTR_DAEMON (nested)
//!   STATE        u32  IP_VS_STATE_MASTER 1 / IP_VS_STATE_BACKUP 2
//!   MCAST_IFN    NUL-terminated interface name, < 16
//!   SYNC_ID      u32  (keepalived: 0–255)
//!   SYNC_MAXLEN  u16  optional: the sync messages' UDP payload size
//!   MCAST_GROUP  4 bytes, an in_addr (network order)   optional, default 224.0.0.81
//!   MCAST_GROUP6 16 bytes, an in6_addr                 optional
//!   MCAST_PORT   u16, host order (the kernel applies htons)   optional, default 8848
//!   MCAST_TTL    u8   optional, default 1
//! ```
//!
//! `NEW_DAEMON` needs STATE, MCAST_IFN and SYNC_ID; `DEL_DAEMON` needs only STATE
//! (`ip_vs_genl_new_daemon`/`_del_daemon`). A `GET_DAEMON` dump answers one `NEW_DAEMON`
//! message per running daemon, every attribute filled in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{DecodeError, DefaultNla, Nla, NlaBuffer, Parseable};

/// `IPVS_DAEMON_ATTR_*`.
mod attr {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const SYNC_MAXLEN: u16 = 4;
    pub const MCAST_GROUP: u16 = 5;
    pub const MCAST_GROUP6: u16 = 6;
    pub const MCAST_PORT: u16 = 7;
    pub const MCAST_TTL: u16 = 8;
}

/// `IP_VS_IFNAME_MAXLEN` (with the NUL).
pub const IFNAME_MAXLEN: usize = 16;

/// Which side of the synchronisation a daemon is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncState {
    /// Sends the connection table (`IP_VS_STATE_MASTER`).
    Master,
    /// Receives it (`IP_VS_STATE_BACKUP`).
    Backup,
}

impl SyncState {
    /// The UAPI value.
    pub fn value(self) -> u32 {
        match self {
            SyncState::Master => 1,
            SyncState::Backup => 2,
        }
    }

    fn from_value(v: u32) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(SyncState::Master),
            2 => Ok(SyncState::Backup),
            other => Err(format!("IPVS sync daemon: unknown state {other}").into()),
        }
    }

    /// `master`, `backup`.
    pub fn name(self) -> &'static str {
        match self {
            SyncState::Master => "master",
            SyncState::Backup => "backup",
        }
    }
}

/// One sync daemon as `NEW_DAEMON` starts it (and a `GET_DAEMON` dump lists it). Options left
/// `None` take the kernel's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: SyncState,
    /// The interface the multicast goes out of, or comes in on.
    pub interface: String,
    /// Which directors sync with each other.
    pub sync_id: u32,
    /// The UDP payload size of a sync message.
    pub max_len: Option<u16>,
    /// The multicast group (IPv4 or IPv6).
    pub group: Option<IpAddr>,
    /// The UDP port.
    pub port: Option<u16>,
    /// The multicast TTL.
    pub ttl: Option<u8>,
}

/// One attribute inside `IPVS_CMD_ATTR_DAEMON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonAttr {
    /// `STATE`.
    State(u32),
    /// `MCAST_IFN`.
    McastIfn(String),
    /// `SYNC_ID`.
    SyncId(u32),
    /// `SYNC_MAXLEN`.
    SyncMaxlen(u16),
    /// `MCAST_GROUP`: the address's bytes in network order.
    McastGroup([u8; 4]),
    /// `MCAST_GROUP6`.
    McastGroup6([u8; 16]),
    /// `MCAST_PORT`, host order.
    McastPort(u16),
    /// `MCAST_TTL`.
    McastTtl(u8),
    /// Anything a later kernel adds.
    Other(DefaultNla),
}

impl Nla for DaemonAttr {
    fn value_len(&self) -> usize {
        match self {
            DaemonAttr::State(_) | DaemonAttr::SyncId(_) | DaemonAttr::McastGroup(_) => 4,
            DaemonAttr::McastIfn(s) => s.len() + 1,
            DaemonAttr::SyncMaxlen(_) | DaemonAttr::McastPort(_) => 2,
            DaemonAttr::McastGroup6(_) => 16,
            DaemonAttr::McastTtl(_) => 1,
            DaemonAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DaemonAttr::State(_) => attr::STATE,
            DaemonAttr::McastIfn(_) => attr::MCAST_IFN,
            DaemonAttr::SyncId(_) => attr::SYNC_ID,
            DaemonAttr::SyncMaxlen(_) => attr::SYNC_MAXLEN,
            DaemonAttr::McastGroup(_) => attr::MCAST_GROUP,
            DaemonAttr::McastGroup6(_) => attr::MCAST_GROUP6,
            DaemonAttr::McastPort(_) => attr::MCAST_PORT,
            DaemonAttr::McastTtl(_) => attr::MCAST_TTL,
            DaemonAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            DaemonAttr::State(v) | DaemonAttr::SyncId(v) => {
                buf[..4].copy_from_slice(&v.to_ne_bytes())
            }
            DaemonAttr::McastIfn(s) => {
                buf[..s.len()].copy_from_slice(s.as_bytes());
                buf[s.len()] = 0;
            }
            DaemonAttr::SyncMaxlen(v) | DaemonAttr::McastPort(v) => {
                buf[..2].copy_from_slice(&v.to_ne_bytes())
            }
            DaemonAttr::McastGroup(a) => buf[..4].copy_from_slice(a),
            DaemonAttr::McastGroup6(a) => buf[..16].copy_from_slice(a),
            DaemonAttr::McastTtl(t) => buf[0] = *t,
            DaemonAttr::Other(nla) => nla.emit_value(buf),
        }
    }
}

fn fixed<const N: usize>(nla: &NlaBuffer<&[u8]>, what: &str) -> Result<[u8; N], DecodeError> {
    nla.value()
        .get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            DecodeError::from(format!(
                "IPVS sync daemon attribute {what}: {} bytes, expected {N}",
                nla.value().len()
            ))
        })
}

impl DaemonAttr {
    pub(crate) fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        Ok(match nla.kind() {
            attr::STATE => DaemonAttr::State(u32::from_ne_bytes(fixed(nla, "STATE")?)),
            attr::MCAST_IFN => {
                let v = nla.value();
                let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
                DaemonAttr::McastIfn(String::from_utf8_lossy(&v[..end]).into_owned())
            }
            attr::SYNC_ID => DaemonAttr::SyncId(u32::from_ne_bytes(fixed(nla, "SYNC_ID")?)),
            attr::SYNC_MAXLEN => {
                DaemonAttr::SyncMaxlen(u16::from_ne_bytes(fixed(nla, "SYNC_MAXLEN")?))
            }
            attr::MCAST_GROUP => DaemonAttr::McastGroup(fixed(nla, "MCAST_GROUP")?),
            attr::MCAST_GROUP6 => DaemonAttr::McastGroup6(fixed(nla, "MCAST_GROUP6")?),
            attr::MCAST_PORT => {
                DaemonAttr::McastPort(u16::from_ne_bytes(fixed(nla, "MCAST_PORT")?))
            }
            attr::MCAST_TTL => DaemonAttr::McastTtl(fixed::<1>(nla, "MCAST_TTL")?[0]),
            _ => DaemonAttr::Other(DefaultNla::parse(nla)?),
        })
    }
}

impl SyncDaemon {
    /// The attributes `NEW_DAEMON` sends (required ones first, as ipvsadm sends them).
    pub(crate) fn attrs(&self) -> Vec<DaemonAttr> {
        let mut out = vec![
            DaemonAttr::State(self.state.value()),
            DaemonAttr::McastIfn(self.interface.clone()),
            DaemonAttr::SyncId(self.sync_id),
        ];
        if let Some(len) = self.max_len {
            out.push(DaemonAttr::SyncMaxlen(len));
        }
        match self.group {
            Some(IpAddr::V4(g)) => out.push(DaemonAttr::McastGroup(g.octets())),
            Some(IpAddr::V6(g)) => out.push(DaemonAttr::McastGroup6(g.octets())),
            None => {}
        }
        if let Some(port) = self.port {
            out.push(DaemonAttr::McastPort(port));
        }
        if let Some(ttl) = self.ttl {
            out.push(DaemonAttr::McastTtl(ttl));
        }
        out
    }

    /// A daemon from a dump reply's attributes.
    pub fn from_attrs(attrs: &[DaemonAttr]) -> Result<SyncDaemon, DecodeError> {
        let mut state = None;
        let mut interface = None;
        let mut sync_id = None;
        let mut d = SyncDaemon {
            state: SyncState::Master,
            interface: String::new(),
            sync_id: 0,
            max_len: None,
            group: None,
            port: None,
            ttl: None,
        };
        for a in attrs {
            match a {
                DaemonAttr::State(v) => state = Some(SyncState::from_value(*v)?),
                DaemonAttr::McastIfn(s) => interface = Some(s.clone()),
                DaemonAttr::SyncId(v) => sync_id = Some(*v),
                DaemonAttr::SyncMaxlen(v) => d.max_len = Some(*v),
                DaemonAttr::McastGroup(a) => d.group = Some(IpAddr::V4(Ipv4Addr::from(*a))),
                DaemonAttr::McastGroup6(a) => d.group = Some(IpAddr::V6(Ipv6Addr::from(*a))),
                DaemonAttr::McastPort(v) => d.port = Some(*v),
                DaemonAttr::McastTtl(v) => d.ttl = Some(*v),
                DaemonAttr::Other(_) => {}
            }
        }
        d.state = state.ok_or("IPVS sync daemon without a state")?;
        d.interface = interface.ok_or("IPVS sync daemon without an interface")?;
        d.sync_id = sync_id.ok_or("IPVS sync daemon without a sync id")?;
        Ok(d)
    }

    /// Whether the kernel can take it: an interface name it can hold.
    pub fn check(&self) -> Result<(), String> {
        if self.interface.is_empty() || self.interface.len() >= IFNAME_MAXLEN {
            return Err(format!(
                "IPVS sync daemon: interface name '{}' must be 1 to {} bytes",
                self.interface,
                IFNAME_MAXLEN - 1
            ));
        }
        Ok(())
    }
}
