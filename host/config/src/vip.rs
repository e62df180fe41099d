//! A virtual address as keepalived's `virtual_ipaddress` block describes it.
//!
//! Shared by the config (which parses it) and the netlink edge (which installs it).

use std::net::{IpAddr, Ipv4Addr};

/// Address scope, as `ip addr add ... scope` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `global` (the default).
    Global,
    /// `site`.
    Site,
    /// `link`.
    Link,
    /// `host`.
    Host,
    /// `nowhere`.
    Nowhere,
}

/// One virtual address: `<IP>[/<prefix>] [brd <IP>] [dev <STRING>] [scope <SCOPE>]
/// [label <LABEL>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VipSpec {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length; keepalived's default is /32 (IPv4) or /128 (IPv6).
    pub prefix_len: u8,
    /// Interface to install it on; `None` = the instance's interface.
    pub dev: Option<String>,
    /// IPv4 broadcast address (`brd`).
    pub brd: Option<Ipv4Addr>,
    /// Scope; `None` = kernel default (global).
    pub scope: Option<Scope>,
    /// IPv4 address label (`label eth0:1`).
    pub label: Option<String>,
}

impl VipSpec {
    /// A host address (/32 or /128) with no options.
    pub fn host(addr: IpAddr) -> Self {
        let prefix_len = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            addr,
            prefix_len,
            dev: None,
            brd: None,
            scope: None,
            label: None,
        }
    }
}
