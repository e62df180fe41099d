//! Turning one configured `vrrp_instance` into what the router needs
//! ([`InstanceSpec`]: protocol configuration, paths, destinations, VIPs, virtual routes and
//! rules, tracking) and what
//! the driver needs to carry its outputs out ([`InstanceIo`]: sockets, MAC, announcer,
//! notify hooks). The interface facts are looked up once through netlink; [`build`] itself
//! is pure.

use std::net::IpAddr;
use std::sync::Arc;

use crate::net::garp::Announcer;
use crate::net::netlink::Netlink;
use crate::net::socket::VrrpSocket;
use crate::net::vmac::VmacRequest;
use crate::notify::NotifyScripts;
use wasmalived_config::route::VirtualEntry;
use wasmalived_config::vip::VipSpec;
use wasmalived_config::{Config, GlobalDefs, VrrpInstance};
use wasmalived_proto::router::{InstanceKey, InstanceSpec, PathId, TrackSource, TrackedItem};
use wasmalived_proto::vrrp::{Family, GarpConfig, InitialState, InstanceConfig};

/// The reload identity of a configured instance: VRID, family, interface and unicast, as
/// keepalived matches instances across reloads — plus its name when another instance of
/// `config` shares those four (two unicast instances with disjoint peers, which the validator
/// allows on one VRID): each stays its own instance, never merged into the other.
pub fn instance_key(cfg: &VrrpInstance, config: &Config) -> InstanceKey {
    let shared = config.instances.iter().any(|other| {
        other.name != cfg.name
            && other.vrid == cfg.vrid
            && other.family == cfg.family
            && other.interface == cfg.interface
            && other.is_unicast() == cfg.is_unicast()
    });
    InstanceKey {
        vrid: cfg.vrid,
        family: cfg.family,
        interface: cfg.interface.clone(),
        unicast: cfg.is_unicast(),
        shared_by: shared.then(|| cfg.name.clone()),
    }
}

/// One path's VRRP socket.
#[derive(Debug, Clone)]
pub struct PathSocket {
    /// Interface name (for logs).
    pub interface: String,
    /// The socket shared by every instance on this (interface, family).
    pub socket: Arc<VrrpSocket>,
}

/// The I/O side of one instance: what the driver uses to perform its outputs.
#[derive(Debug, Clone)]
pub struct InstanceIo {
    /// `vrrp_instance` name.
    pub name: String,
    /// Interface name.
    pub interface: String,
    /// Interface index where VIPs without a `dev` go and GARP/NA go out (the VMAC interface
    /// with `use_vmac`).
    pub ifindex: u32,
    /// Sender MAC of GARP/NA (the virtual MAC with `use_vmac`).
    pub mac: [u8; 6],
    /// RFC 5798 §6.1 Accept_Mode off on a non-owner (`no_accept`): while Master, traffic
    /// addressed to its VIPs is dropped ([`crate::net::firewall`]).
    pub no_accept: bool,
    /// Sends gratuitous ARPs / unsolicited NAs.
    pub announcer: Announcer,
    /// The socket of every path (primary and heartbeat) by [`PathId`].
    pub sockets: Vec<(PathId, PathSocket)>,
    /// Notify hooks.
    pub notify: NotifyScripts,
}

impl InstanceIo {
    /// The socket of `path`.
    pub fn socket(&self, path: PathId) -> Option<&PathSocket> {
        self.sockets
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, s)| s)
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
}

/// Interface facts needed by [`build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFacts {
    /// The interface adverts are sent and received on (the instance's primary path).
    pub ifindex: u32,
    /// The interface VIPs without a `dev` go on and GARP/NA go out of.
    pub vip_ifindex: u32,
    /// Sender MAC of GARP/NA.
    pub mac: [u8; 6],
    /// Source address of the instance's family.
    pub src: IpAddr,
}

impl LinkFacts {
    /// The facts once the instance's VMAC interface is `vmac_ifindex` (keepalived's
    /// `use_vmac`): the VIPs and announcements move there, with the virtual MAC; adverts
    /// too, unless `vmac_xmit_base` keeps them on the base interface. The source address
    /// stays the base interface's (the VMAC interface has none of its own; IPv6 gets the
    /// same link-local address, see [`vmac_request`]).
    pub fn on_vmac(self, cfg: &VrrpInstance, vmac_ifindex: u32) -> Self {
        let Some(vmac) = &cfg.use_vmac else {
            return self;
        };
        LinkFacts {
            ifindex: if vmac.xmit_base {
                self.ifindex
            } else {
                vmac_ifindex
            },
            vip_ifindex: vmac_ifindex,
            mac: cfg.vrid.virtual_mac(cfg.family),
            src: self.src,
        }
    }
}

/// What `cfg`'s VMAC interface must be, given its base interface's facts; `None` without
/// `use_vmac`.
pub fn vmac_request(cfg: &VrrpInstance, base: &LinkFacts) -> Option<VmacRequest> {
    let vmac = cfg.use_vmac.as_ref()?;
    Some(VmacRequest {
        name: vmac.ifname.clone(),
        base: cfg.interface.clone(),
        base_ifindex: base.ifindex,
        mac: cfg.vrid.virtual_mac(cfg.family),
        family: cfg.family,
        link_local: match base.src {
            IpAddr::V6(ll) if ll.is_unicast_link_local() => Some(ll),
            _ => None,
        },
    })
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
        vip_ifindex: link.ifindex,
        mac,
        src,
    })
}

/// The router's view of one instance (pure, given the link facts and the heartbeat paths).
/// The protocol core validates the configuration when the router starts it.
pub fn build(
    cfg: &VrrpInstance,
    config: &Config,
    facts: &LinkFacts,
    heartbeat: Vec<PathId>,
) -> InstanceSpec<VipSpec, VirtualEntry> {
    let global = &config.global;
    let mut protocol = InstanceConfig::new(cfg.vrid, cfg.advert_int, facts.src);
    protocol.version = cfg.version;
    protocol.family = cfg.family;
    protocol.priority = cfg.priority;
    protocol.preempt = !cfg.nopreempt;
    protocol.preempt_delay = cfg.preempt_delay;
    protocol.vips = cfg.vips.iter().map(|v| v.addr).collect();
    protocol.auth = cfg.auth_pass.as_ref().map(|p| {
        let mut data = [0u8; 8];
        for (slot, byte) in data.iter_mut().zip(p.0.bytes()) {
            *slot = byte;
        }
        data
    });
    protocol.initial_state = match cfg.initial_state {
        wasmalived_config::InitialState::Master => InitialState::Master,
        wasmalived_config::InitialState::Backup => InitialState::Backup,
    };
    protocol.unicast = cfg.is_unicast();
    protocol.garp = GarpConfig {
        master_delay: (!cfg.garp.master_delay.is_zero()).then_some(cfg.garp.master_delay),
        master_repeat: cfg.garp.master_repeat,
        master_refresh: cfg.garp.master_refresh,
        master_refresh_repeat: cfg.garp.master_refresh_repeat,
        lower_prio_delay: Some(cfg.garp.lower_prio_delay()).filter(|d| !d.is_zero()),
        lower_prio_repeat: cfg.garp.lower_prio_repeat(),
    };
    let destinations = if cfg.is_unicast() {
        cfg.unicast_peers.clone()
    } else {
        vec![multicast_group(global, cfg.family)]
    };
    let announce_interval = match cfg.family {
        Family::V4 => cfg.garp.interval,
        Family::V6 => cfg.garp.gna_interval,
    };
    InstanceSpec {
        name: cfg.name.clone(),
        key: instance_key(cfg, config),
        protocol,
        primary: PathId(facts.ifindex),
        heartbeat,
        destinations,
        peers: cfg.unicast_peers.clone(),
        vips: cfg
            .vips
            .iter()
            .chain(cfg.excluded_vips.iter())
            .cloned()
            .collect(),
        routes: cfg
            .virtual_routes
            .iter()
            .cloned()
            .map(VirtualEntry::Route)
            .chain(cfg.virtual_rules.iter().cloned().map(VirtualEntry::Rule))
            .collect(),
        announce_interval,
        tracking: tracking(cfg, config),
    }
}

/// The configured multicast group of a family (`vrrp_mcast_group4` / `vrrp_mcast_group6`).
pub fn multicast_group(global: &GlobalDefs, family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(global.mcast_group4),
        Family::V6 => IpAddr::V6(global.mcast_group6),
    }
}

/// What `inst` tracks: its own and its sync group's scripts, its tracked interfaces and
/// (unless `dont_track_primary`) its own interface with weight 0 (down = Fault).
pub fn tracking(inst: &VrrpInstance, config: &Config) -> Vec<TrackedItem> {
    let group = config.sync_group_of(&inst.name);
    let group_scripts = group
        .map(|g| g.track_scripts.as_slice())
        .unwrap_or_default();
    let mut items: Vec<TrackedItem> = inst
        .track_scripts
        .iter()
        .chain(group_scripts)
        .filter_map(|track| {
            let script = config.script(&track.name)?;
            let (weight, reverse) = track.effective_weight(script);
            Some(TrackedItem {
                source: TrackSource::Check(track.name.clone()),
                weight,
                reverse,
            })
        })
        .collect();
    items.extend(process_tracking(inst, config));
    let group_interfaces = group
        .map(|g| g.track_interfaces.as_slice())
        .unwrap_or_default();
    items.extend(
        inst.track_interfaces
            .iter()
            .chain(group_interfaces)
            .map(|t| TrackedItem {
                source: TrackSource::Interface(t.name.clone()),
                weight: t.weight,
                reverse: t.reverse,
            }),
    );
    // Files: the instance's, then its group's; a file on both takes the group's weight
    // unless the instance's is 0 (keepalived's `add_obj_to_track_file`).
    let mut files: Vec<TrackedItem> = Vec::new();
    let group_files = group.map(|g| g.track_files.as_slice()).unwrap_or_default();
    for t in inst.track_files.iter().chain(group_files) {
        let source = TrackSource::File(t.name.clone());
        match files.iter_mut().find(|f| f.source == source) {
            Some(existing) if existing.weight != 0 => {
                existing.weight = t.weight;
                existing.reverse = t.reverse;
            }
            Some(_) => {}
            None => files.push(TrackedItem {
                source,
                weight: t.weight,
                reverse: t.reverse,
            }),
        }
    }
    items.extend(files);
    let primary = TrackSource::Interface(inst.interface.clone());
    if !inst.dont_track_primary && !items.iter().any(|i| i.source == primary) {
        items.push(TrackedItem {
            source: primary,
            weight: 0,
            reverse: false,
        });
    }
    items
}

/// The `track_process` lines of `inst` and of its sync group. A process on both keeps one
/// tracker with the group's weight, unless the instance's is 0 (keepalived's
/// `add_vrrp_to_track_process`).
fn process_tracking(inst: &VrrpInstance, config: &Config) -> Vec<TrackedItem> {
    let mut items: Vec<TrackedItem> = Vec::new();
    let group = config
        .sync_group_of(&inst.name)
        .map(|g| g.track_processes.as_slice())
        .unwrap_or_default();
    for (from_group, track) in inst
        .track_processes
        .iter()
        .map(|t| (false, t))
        .chain(group.iter().map(|t| (true, t)))
    {
        let Some(process) = config.track_process(&track.name) else {
            continue;
        };
        let (weight, reverse) = track.effective_weight(process);
        let source = TrackSource::Process(track.name.clone());
        match items.iter_mut().find(|i| i.source == source) {
            Some(existing) if from_group => {
                if existing.weight != 0 {
                    existing.weight = weight;
                }
            }
            Some(_) => {}
            None => items.push(TrackedItem {
                source,
                weight,
                reverse,
            }),
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmalived_config::LoadOptions;

    fn config(text: &str) -> Config {
        wasmalived_config::parse_str(
            text,
            std::path::Path::new("test.conf"),
            LoadOptions::default(),
        )
        .expect("valid config")
        .config
    }

    const CONF: &str = r#"
vrrp_script chk_a {
    plugin tcp_connect
    weight -20
}
vrrp_script chk_b {
    plugin tcp_connect
    weight 0
}
vrrp_sync_group G {
    group { VI_1 }
    track_script { chk_b }
    track_interface { eth9 weight 5 }
    # Members keep their own tracking weights (keepalived drops weighted ones otherwise).
    sync_group_tracking_weight
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress { 192.0.2.10/24 }
    virtual_ipaddress_excluded { 192.0.2.11/24 }
    track_script { chk_a }
}
"#;

    fn facts() -> LinkFacts {
        LinkFacts {
            ifindex: 7,
            vip_ifindex: 7,
            mac: [2, 0, 0, 0, 0, 1],
            src: "192.0.2.1".parse().unwrap(),
        }
    }

    #[test]
    fn tracking_unites_the_instance_the_group_and_the_primary_interface() {
        let config = config(CONF);
        let items = tracking(&config.instances[0], &config);
        let sources: Vec<(&TrackSource, i32)> =
            items.iter().map(|i| (&i.source, i.weight)).collect();
        assert_eq!(
            sources,
            vec![
                (&TrackSource::Check("chk_a".into()), -20),
                (&TrackSource::Check("chk_b".into()), 0),
                (&TrackSource::Interface("eth9".into()), 5),
                (&TrackSource::Interface("eth0".into()), 0),
            ]
        );
    }

    /// keepalived `add_vrrp_to_track_process`: one tracker per process; the group's weight
    /// unless the instance tracks it unweighted.
    #[test]
    fn tracked_processes_of_the_instance_and_its_group_merge() {
        let c = config(
            "vrrp_track_process web {\n process nginx\n weight 5\n}\n\
             vrrp_track_process db {\n process postgres\n}\n\
             vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n track_process {\n  web weight 3\n  db\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n  192.0.2.2\n }\n}\n\
             vrrp_sync_group G {\n group {\n  A\n  B\n }\n track_process {\n  web weight 7\n  db weight 9\n }\n}\n",
        );
        let items = |name: &str| -> Vec<(String, i32)> {
            tracking(c.instance(name).unwrap(), &c)
                .into_iter()
                .filter_map(|t| match t.source {
                    TrackSource::Process(p) => Some((p, t.weight)),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(items("A"), [("web".to_owned(), 7), ("db".to_owned(), 0)]);
        assert_eq!(items("B"), [("web".to_owned(), 7), ("db".to_owned(), 9)]);
    }

    #[test]
    fn build_installs_advertised_then_excluded_addresses_and_sends_to_the_group() {
        let config = config(CONF);
        let spec = build(&config.instances[0], &config, &facts(), vec![PathId(9)]);
        assert_eq!(spec.primary, PathId(7));
        assert_eq!(spec.paths().collect::<Vec<_>>(), vec![PathId(7), PathId(9)]);
        assert_eq!(
            spec.protocol.vips.len(),
            1,
            "excluded addresses are not advertised"
        );
        let installed: Vec<String> = spec.vips.iter().map(|v| v.addr.to_string()).collect();
        assert_eq!(installed, ["192.0.2.10", "192.0.2.11"]);
        assert_eq!(
            spec.destinations,
            vec!["224.0.0.18".parse::<IpAddr>().unwrap()]
        );
        assert!(spec.peers.is_empty());
        assert!(!spec.key.unicast);
    }

    /// RFC 5798 §7.3 with keepalived's `use_vmac`: VIPs and announcements on the VMAC
    /// interface with the virtual MAC; adverts there too unless `vmac_xmit_base`.
    #[test]
    fn use_vmac_moves_vips_and_announcements_and_adverts_unless_xmit_base() {
        let text = CONF.replace("    track_script { chk_a }", "    use_vmac");
        let vmac_config = config(&text);
        let inst = &vmac_config.instances[0];
        let req = vmac_request(inst, &facts()).expect("use_vmac");
        assert_eq!(req.name, "vrrp.51");
        assert_eq!((req.base.as_str(), req.base_ifindex), ("eth0", 7));
        assert_eq!(req.mac, [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(req.link_local, None);
        let moved = facts().on_vmac(inst, 12);
        assert_eq!(
            moved,
            LinkFacts {
                ifindex: 12,
                vip_ifindex: 12,
                mac: [0, 0, 0x5e, 0, 1, 51],
                src: "192.0.2.1".parse().unwrap(),
            }
        );
        assert_eq!(
            build(inst, &vmac_config, &moved, vec![]).primary,
            PathId(12)
        );

        let base = config(&text.replace("    use_vmac", "    use_vmac\n    vmac_xmit_base"));
        let xmit_base = facts().on_vmac(&base.instances[0], 12);
        assert_eq!((xmit_base.ifindex, xmit_base.vip_ifindex), (7, 12));

        let plain = config(CONF);
        assert!(vmac_request(&plain.instances[0], &facts()).is_none());
        assert_eq!(facts().on_vmac(&plain.instances[0], 12), facts());
    }

    #[test]
    fn an_ipv6_vmac_gets_the_ipv6_virtual_mac_and_the_base_link_local() {
        let text = "vrrp_instance V6 {\n    interface eth0\n    virtual_router_id 9\n    use_vmac\n    virtual_ipaddress { 2001:db8::9 }\n}\n";
        let v6_config = config(text);
        let base = LinkFacts {
            src: "fe80::1".parse().unwrap(),
            ..facts()
        };
        let req = vmac_request(&v6_config.instances[0], &base).unwrap();
        assert_eq!(req.mac, [0, 0, 0x5e, 0, 2, 9]);
        assert_eq!(req.link_local, Some("fe80::1".parse().unwrap()));
    }
}
