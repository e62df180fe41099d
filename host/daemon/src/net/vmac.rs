//! VMAC interfaces (`use_vmac`): a macvlan interface in mode private on top of the
//! instance's interface, with the RFC 5798 §7.3 virtual router MAC, as keepalived 2.2.7 makes
//! them (`vrrp_vmac.c`, `vrrp_if_config.c`):
//!
//! - mode private: a frame whose source MAC is the interface's own (the peer's adverts, sent
//!   from its own VMAC interface with the same virtual MAC) is delivered to the VMAC
//!   interface only, so the receive path sees each advert once;
//! - IPv4: on the VMAC interface `arp_ignore=1` (answer ARP only for its own addresses, the
//!   VIPs), `accept_local=1`, `rp_filter=0` (it receives with no address of the peer's
//!   subnet), `promote_secondaries=1`, and IPv6 off; on the base interface `arp_ignore=1`
//!   and `arp_filter=1` (never answer for the VIPs with the base MAC), restored when its last
//!   VMAC interface goes; and, beyond keepalived, `arp_announce=2` there too: otherwise the
//!   base interface names a VIP as the sender of its own ARP requests (when a reply from the
//!   VIP goes out through it) and clients learn the base MAC for the VIP, which a failover
//!   then has to correct;
//! - IPv6: `arp_ignore=1` too (keepalived leaves it, and the interface then answers ARP
//!   for the base's IPv4 addresses with the IPv6 virtual MAC); no address generated from the (shared) virtual MAC (`addr_gen_mode` none); the
//!   base interface's link-local address is added instead, without DAD, so adverts keep
//!   their usual source;
//! - created down, configured, then brought up; an existing macvlan of the right base and
//!   MAC is reused, one that does not match is replaced, and a link of that name that is
//!   not a macvlan is never touched (the instance does not start);
//! - removed when the instance goes (reload) and at shutdown.
//!
//! The sysctls are written under `/proc/sys/net`, which shows the daemon's own network
//! namespace.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;
use std::path::PathBuf;

use tracing::{info, warn};

use super::netlink::{Netlink, NetlinkError};
use wasmalived_proto::vrrp::Family;

/// What one instance needs of its VMAC interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmacRequest {
    /// The VMAC interface's name.
    pub name: String,
    /// The base interface (`interface`).
    pub base: String,
    /// Its index.
    pub base_ifindex: u32,
    /// The virtual router MAC.
    pub mac: [u8; 6],
    /// The instance's family.
    pub family: Family,
    /// IPv6: the link-local address adverts are sent from (the base interface's).
    pub link_local: Option<Ipv6Addr>,
}

/// Why a VMAC interface could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VmacError {
    /// A netlink request failed.
    #[error("VMAC interface {name}: {source}")]
    Netlink {
        /// The VMAC interface.
        name: String,
        /// Cause (boxed: the error stays small).
        #[source]
        source: Box<NetlinkError>,
    },
    /// The name belongs to an interface that is not a macvlan (never deleted).
    #[error("VMAC interface {name}: an interface of that name exists and is not a macvlan; not touched (use_vmac NAME chooses another name)")]
    NotMacvlan {
        /// The name.
        name: String,
    },
    /// A per-interface setting could not be written.
    #[error("VMAC interface {name}: writing {}: {source}", path.display())]
    Sysctl {
        /// The VMAC interface.
        name: String,
        /// The sysctl file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A VMAC interface this daemon set up.
#[derive(Debug, Clone)]
struct Made {
    ifindex: u32,
    base: String,
    /// It holds the base interface's ARP settings (IPv4).
    holds_arp: bool,
}

/// A base interface's ARP settings before its first VMAC interface, and how many of its
/// VMAC interfaces exist now.
#[derive(Debug, Clone)]
struct SavedArp {
    /// `(key, value)` of each setting changed.
    values: Vec<(&'static str, String)>,
    users: usize,
}

/// The base interface's ARP settings while it has VMAC interfaces (see the module comment).
const BASE_ARP: [(&str, &str); 3] = [
    ("arp_ignore", "1"),
    ("arp_filter", "1"),
    ("arp_announce", "2"),
];

/// The VMAC interfaces of the running instances, by name.
#[derive(Debug, Default)]
pub struct Vmacs {
    made: BTreeMap<String, Made>,
    bases: HashMap<String, SavedArp>,
}

fn conf_path(family: &str, ifname: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/{family}/conf/{ifname}/{key}"))
}

fn write_conf(
    vmac: &str,
    family: &str,
    ifname: &str,
    key: &str,
    value: &str,
) -> Result<(), VmacError> {
    let path = conf_path(family, ifname, key);
    std::fs::write(&path, value).map_err(|source| VmacError::Sysctl {
        name: vmac.to_owned(),
        path,
        source,
    })
}

fn read_conf(ifname: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(conf_path("ipv4", ifname, key))
        .ok()
        .map(|v| v.trim().to_owned())
}

impl Vmacs {
    /// The VMAC interfaces set up, by name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.made.keys().map(String::as_str)
    }

    /// Make `req`'s VMAC interface exist, configured and up; its index.
    pub async fn ensure(&mut self, netlink: &Netlink, req: &VmacRequest) -> Result<u32, VmacError> {
        let nl_err = |source| VmacError::Netlink {
            name: req.name.clone(),
            source: Box::new(source),
        };
        let existing = netlink.link_kind(&req.name).await.map_err(nl_err)?;
        let reusable = match &existing {
            None => None,
            Some(k) if !k.macvlan => {
                return Err(VmacError::NotMacvlan {
                    name: req.name.clone(),
                })
            }
            Some(k)
                if k.private
                    && k.lower == Some(req.base_ifindex)
                    && k.state.mac == Some(req.mac) =>
            {
                Some(k.state.ifindex)
            }
            Some(k) => {
                info!(vmac = %req.name, "removing a macvlan of that name with another base, mode or MAC");
                netlink.del_link(k.state.ifindex).await.map_err(nl_err)?;
                None
            }
        };
        let ifindex = match reusable {
            Some(ifindex) => ifindex,
            None => {
                let ifindex = netlink
                    .add_private_macvlan(&req.name, req.base_ifindex, req.mac)
                    .await
                    .map_err(nl_err)?;
                info!(vmac = %req.name, base = %req.base, "VMAC interface created");
                ifindex
            }
        };
        self.configure(req)?;
        netlink.set_link_up(ifindex).await.map_err(nl_err)?;
        if let Some(ll) = req.link_local {
            netlink.add_link_local(ifindex, ll).await.map_err(nl_err)?;
        }
        if !self.made.contains_key(&req.name) {
            if req.family == Family::V4 {
                self.hold_base_arp(&req.name, &req.base)?;
            }
            self.made.insert(
                req.name.clone(),
                Made {
                    ifindex,
                    base: req.base.clone(),
                    holds_arp: req.family == Family::V4,
                },
            );
        }
        Ok(ifindex)
    }

    /// keepalived's per-interface settings of a VMAC interface (see the module comment).
    fn configure(&self, req: &VmacRequest) -> Result<(), VmacError> {
        let name = req.name.as_str();
        // Both families: never answer ARP for an address of another interface (an IPv6
        // instance's VMAC interface has no IPv4 address, so it answers none).
        write_conf(name, "ipv4", name, "arp_ignore", "1")?;
        match req.family {
            Family::V4 => {
                for (key, value) in [
                    ("accept_local", "1"),
                    ("rp_filter", "0"),
                    ("promote_secondaries", "1"),
                ] {
                    write_conf(name, "ipv4", name, key, value)?;
                }
                write_conf(name, "ipv6", name, "disable_ipv6", "1")
            }
            Family::V6 => {
                write_conf(name, "ipv6", name, "disable_ipv6", "0")?;
                // RFC 5798 §7.4 via keepalived: no link-local address from the virtual MAC,
                // which every router of the VRID shares (IN6_ADDR_GEN_MODE_NONE).
                write_conf(name, "ipv6", name, "addr_gen_mode", "1")
            }
        }
    }

    /// The base interface must not answer ARP for the VIPs on its VMAC interfaces: its
    /// settings are saved by its first VMAC interface and restored after its last.
    fn hold_base_arp(&mut self, vmac: &str, base: &str) -> Result<(), VmacError> {
        if let Some(saved) = self.bases.get_mut(base) {
            saved.users += 1;
            return Ok(());
        }
        let mut saved = SavedArp {
            values: Vec::new(),
            users: 1,
        };
        for (key, value) in BASE_ARP {
            if let Some(old) = read_conf(base, key) {
                saved.values.push((key, old));
            }
            write_conf(vmac, "ipv4", base, key, value)?;
        }
        self.bases.insert(base.to_owned(), saved);
        Ok(())
    }

    fn release_base_arp(&mut self, base: &str) {
        let Some(saved) = self.bases.get_mut(base) else {
            return;
        };
        saved.users -= 1;
        if saved.users > 0 {
            return;
        }
        let values = self
            .bases
            .remove(base)
            .map(|s| s.values)
            .unwrap_or_default();
        for (key, value) in values {
            if let Err(err) = std::fs::write(conf_path("ipv4", base, key), &value) {
                warn!(interface = %base, key, error = %err, "restoring an ARP setting failed");
            }
        }
    }

    /// Remove every VMAC interface whose name `keep` does not accept.
    pub async fn retain(&mut self, netlink: &Netlink, keep: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self
            .names()
            .filter(|n| !keep(n))
            .map(str::to_owned)
            .collect();
        for name in gone {
            let Some(made) = self.made.remove(&name) else {
                continue;
            };
            match netlink.del_link(made.ifindex).await {
                Ok(()) => info!(vmac = %name, "VMAC interface removed"),
                Err(err) => warn!(vmac = %name, error = %err, "removing the VMAC interface failed"),
            }
            if made.holds_arp {
                self.release_base_arp(&made.base);
            }
        }
    }

    /// Remove every VMAC interface (shutdown).
    pub async fn remove_all(&mut self, netlink: &Netlink) {
        self.retain(netlink, |_| false).await;
    }
}
