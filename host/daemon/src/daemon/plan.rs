//! Turning one configured `vrrp_instance` into what its task needs: the protocol
//! configuration for the sans-IO core plus the I/O facts (interface index, MAC, source
//! address, destinations) looked up once through netlink.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::net::garp::Announcer;
use crate::net::netlink::Netlink;
use crate::net::socket::VrrpSocket;
use crate::notify::NotifyScripts;
use wasmalived_config::vip::VipSpec;
use wasmalived_config::{GlobalDefs, VrrpInstance};
use wasmalived_proto::vrrp::{self, Family, GarpConfig, InitialState, InstanceConfig};

/// Identity of an instance across reloads, as keepalived matches them: VRID, family,
/// interface, and unicast vs multicast.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceKey {
    /// `virtual_router_id`.
    pub vrid: u8,
    /// Address family.
    pub family: Family,
    /// `interface`.
    pub interface: String,
    /// Unicast peers configured.
    pub unicast: bool,
}

impl InstanceKey {
    /// The key of a configured instance.
    pub fn of(cfg: &VrrpInstance) -> Self {
        Self {
            vrid: cfg.vrid.get(),
            family: cfg.family,
            interface: cfg.interface.clone(),
            unicast: cfg.is_unicast(),
        }
    }
}

/// Everything an instance task needs, resolved.
#[derive(Debug, Clone)]
pub struct InstancePlan {
    /// `vrrp_instance` name.
    pub name: String,
    /// Interface name.
    pub interface: String,
    /// Interface index.
    pub ifindex: u32,
    /// Interface MAC (sender of GARP/NA).
    pub mac: [u8; 6],
    /// Protocol configuration for the core.
    pub vrrp: InstanceConfig,
    /// Advertised VIPs.
    pub vips: Vec<VipSpec>,
    /// `virtual_ipaddress_excluded`: installed, not advertised.
    pub excluded: Vec<VipSpec>,
    /// Our source address for adverts.
    pub src: IpAddr,
    /// Where adverts go: the multicast group, or each unicast peer.
    pub destinations: Vec<IpAddr>,
    /// Unicast peers (adverts from anyone else are ignored); empty = multicast.
    pub peers: Vec<IpAddr>,
    /// Notify hooks.
    pub notify: NotifyScripts,
    /// Spacing between gratuitous ARPs / NAs of one burst.
    pub garp_interval: Duration,
    /// The socket shared by every instance on this (interface, family).
    pub socket: Arc<VrrpSocket>,
    /// Sends gratuitous ARPs / unsolicited NAs.
    pub announcer: Announcer,
    /// Extra heartbeat paths (`heartbeat_interface`): adverts also go out, and are also
    /// received, on these.
    pub heartbeat_paths: Vec<HeartbeatPath>,
}

/// One extra heartbeat path of an instance.
#[derive(Debug, Clone)]
pub struct HeartbeatPath {
    /// Interface name.
    pub interface: String,
    /// Interface index.
    pub ifindex: u32,
    /// The VRRP socket on it.
    pub socket: Arc<VrrpSocket>,
}

impl InstancePlan {
    /// Every VIP this instance installs (advertised, then excluded).
    pub fn all_vips(&self) -> impl Iterator<Item = &VipSpec> {
        self.vips.iter().chain(self.excluded.iter())
    }
}

/// Why an instance could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Netlink lookup failed (interface missing, ...).
    #[error("instance {instance}: interface {interface}: {source}")]
    Interface {
        /// Instance name.
        instance: String,
        /// Interface name.
        interface: String,
        /// Cause.
        source: Box<crate::net::netlink::NetlinkError>,
    },
    /// The interface has no address of the instance's family to send from.
    #[error("instance {instance}: interface {interface} has no {what} to send adverts from")]
    NoSource {
        /// Instance name.
        instance: String,
        /// Interface name.
        interface: String,
        /// What is missing.
        what: &'static str,
    },
    /// The interface has no Ethernet MAC.
    #[error("instance {instance}: interface {interface} has no MAC address")]
    NoMac {
        /// Instance name.
        instance: String,
        /// Interface name.
        interface: String,
    },
    /// The protocol core refused the configuration.
    #[error("instance {instance}: {source}")]
    Protocol {
        /// Instance name.
        instance: String,
        /// Cause.
        source: vrrp::ConfigError,
    },
}

/// Interface facts needed by [`build`].
#[derive(Debug, Clone)]
pub struct LinkFacts {
    /// Interface index.
    pub ifindex: u32,
    /// MAC.
    pub mac: [u8; 6],
    /// Source address of the instance's family.
    pub src: IpAddr,
}

/// Look up the interface facts an instance needs.
pub async fn link_facts(netlink: &Netlink, cfg: &VrrpInstance) -> Result<LinkFacts, PlanError> {
    let iface_err = |source| PlanError::Interface {
        instance: cfg.name.clone(),
        interface: cfg.interface.clone(),
        source: Box::new(source),
    };
    let link = netlink
        .link_by_name(&cfg.interface)
        .await
        .map_err(iface_err)?;
    let mac = link.mac.ok_or_else(|| PlanError::NoMac {
        instance: cfg.name.clone(),
        interface: cfg.interface.clone(),
    })?;
    let configured = cfg.unicast_src_ip.or(cfg.mcast_src_ip);
    let src = match (configured, cfg.family) {
        (Some(ip), _) => ip,
        // RFC 5798 §5.1.2.1: IPv6 adverts come from the link-local address.
        (None, Family::V6) => netlink
            .ipv6_link_local(link.ifindex)
            .await
            .map_err(iface_err)?
            .map(IpAddr::V6)
            .ok_or_else(|| PlanError::NoSource {
                instance: cfg.name.clone(),
                interface: cfg.interface.clone(),
                what: "IPv6 link-local address",
            })?,
        (None, Family::V4) => netlink
            .primary_ipv4(link.ifindex)
            .await
            .map_err(iface_err)?
            .map(IpAddr::V4)
            .ok_or_else(|| PlanError::NoSource {
                instance: cfg.name.clone(),
                interface: cfg.interface.clone(),
                what: "IPv4 address",
            })?,
    };
    Ok(LinkFacts {
        ifindex: link.ifindex,
        mac,
        src,
    })
}

/// Build the plan of one instance (pure, given the link facts and its socket).
pub fn build(
    cfg: &VrrpInstance,
    global: &GlobalDefs,
    facts: &LinkFacts,
    socket: Arc<VrrpSocket>,
    announcer: Announcer,
    heartbeat_paths: Vec<HeartbeatPath>,
) -> Result<InstancePlan, PlanError> {
    let mut vrrp = InstanceConfig::new(cfg.vrid, cfg.advert_int, facts.src);
    vrrp.version = cfg.version;
    vrrp.family = cfg.family;
    vrrp.priority = cfg.priority;
    vrrp.preempt = !cfg.nopreempt;
    vrrp.preempt_delay = cfg.preempt_delay;
    vrrp.vips = cfg.vips.iter().map(|v| v.addr).collect();
    vrrp.auth = cfg.auth_pass.as_ref().map(|p| {
        let mut data = [0u8; 8];
        for (slot, byte) in data.iter_mut().zip(p.0.bytes()) {
            *slot = byte;
        }
        data
    });
    vrrp.initial_state = match cfg.initial_state {
        wasmalived_config::InitialState::Master => InitialState::Master,
        wasmalived_config::InitialState::Backup => InitialState::Backup,
    };
    vrrp.unicast = cfg.is_unicast();
    vrrp.garp = GarpConfig {
        master_delay: (!cfg.garp.master_delay.is_zero()).then_some(cfg.garp.master_delay),
        master_repeat: cfg.garp.master_repeat,
        master_refresh: cfg.garp.master_refresh,
        master_refresh_repeat: cfg.garp.master_refresh_repeat,
    };
    // Validate now so a bad instance is refused at (re)load, not inside its task.
    vrrp::Instance::new(vrrp.clone()).map_err(|source| PlanError::Protocol {
        instance: cfg.name.clone(),
        source,
    })?;
    let destinations = if cfg.is_unicast() {
        cfg.unicast_peers.clone()
    } else {
        vec![match cfg.family {
            Family::V4 => IpAddr::V4(global.mcast_group4),
            Family::V6 => IpAddr::V6(global.mcast_group6),
        }]
    };
    let garp_interval = match cfg.family {
        Family::V4 => cfg.garp.interval,
        Family::V6 => cfg.garp.gna_interval,
    };
    Ok(InstancePlan {
        name: cfg.name.clone(),
        interface: cfg.interface.clone(),
        ifindex: facts.ifindex,
        mac: facts.mac,
        vrrp,
        vips: cfg.vips.clone(),
        excluded: cfg.excluded_vips.clone(),
        src: facts.src,
        destinations,
        peers: cfg.unicast_peers.clone(),
        notify: notify_scripts(&cfg.notify),
        garp_interval,
        socket,
        announcer,
        heartbeat_paths,
    })
}

/// The notify hooks of an instance or group as argv lists.
pub fn notify_scripts(notify: &wasmalived_config::Notify) -> NotifyScripts {
    let argv = |s: &Option<wasmalived_config::NotifyScript>| s.as_ref().map(|s| s.argv.clone());
    NotifyScripts {
        master: argv(&notify.master),
        backup: argv(&notify.backup),
        fault: argv(&notify.fault),
        stop: argv(&notify.stop),
        generic: argv(&notify.any),
        split_brain: argv(&notify.split_brain),
    }
}
