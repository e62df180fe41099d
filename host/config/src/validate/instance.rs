//! `vrrp_instance NAME { … }`: collect the keywords, then resolve family, version, advert
//! interval, authentication and strict mode.

use std::net::IpAddr;
use std::time::Duration;

use super::addresses::{peers, vip_block};
use super::protocol::{advert_int, auth, auth_block, family, Addresses};
use super::track::{notify, track_interfaces, track_scripts};
use super::values::{flag, int, no_args, one_arg, seconds, uint};
use super::{section_name, unknown, Places};
use crate::defaults as def;
use crate::diag::{Diags, Span};
use crate::lexer::Word;
use crate::model::{GlobalDefs, InitialState, Notify, Origin, Vmac, VrrpInstance};
use crate::parser::Node;
use crate::vip::VipSpec;
use wasmalived_proto::vrrp::types::{Family, Priority, Version, Vrid};

/// keepalived instance keywords this daemon accepts and ignores (with a warning).
const IGNORED: &[&str] = &[
    "vmac_xmit_base",
    "use_vmac_addr",
    "use_ipvlan",
    "native_ipv6",
    "track_src_ip",
    "check_unicast_src",
    "unicast_fault_no_peer",
    "unicast_ttl",
    "old_unicast_checksum",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "garp_extra_if",
    "down_timer_adverts",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "skip_check_adv_addr",
    "debug",
    "notify_master_rx_lower_pri",
    "notify_priority_changes",
    "notify_deleted",
    "kernel_rx_buf_size",
    "linkbeat_use_polling",
    "promote_secondaries",
    "mcast_dst_ip",
    "vrf",
    "lvs_sync_daemon_interface",
];

/// Everything an instance block said, before resolution.
#[derive(Default)]
struct Draft<'n> {
    state: Option<InitialState>,
    interface: Option<String>,
    vrid: Option<Vrid>,
    priority: Option<Priority>,
    advert_int: Option<&'n Word>,
    version: Option<(Version, Span)>,
    nopreempt: bool,
    preempt_delay: Option<(Duration, Span)>,
    auth: Option<(Option<&'n Word>, Option<&'n Word>, Span)>,
    vips: Vec<(VipSpec, Span)>,
    excluded: Vec<(VipSpec, Span)>,
    mcast_src_ip: Option<(IpAddr, Span)>,
    unicast_src_ip: Option<(IpAddr, Span)>,
    peers: Vec<(IpAddr, Span)>,
    notify: Notify,
    use_vmac: Option<Vmac>,
    accept: Option<(bool, Span)>,
    strict: Option<bool>,
    garp_delay: Option<Duration>,
    garp_repeat: Option<u32>,
    garp_refresh: Option<Duration>,
    garp_refresh_repeat: Option<u32>,
}

/// Builds one `vrrp_instance`; `None` if it has errors.
pub(crate) fn build(
    node: &Node,
    global: &GlobalDefs,
    ordinal: usize,
    d: &mut Diags,
) -> Option<(VrrpInstance, Places)> {
    let name = section_name(node, d)?;
    let body = node.block.as_ref()?;
    let errors_before = d.error_count();
    let mut places = Places::new(ordinal, node.span().clone());
    let mut draft = Draft::default();
    let mut track_if = Vec::new();
    let mut track_sc = Vec::new();
    let mut dont_track_primary = false;
    let mut heartbeat_interfaces: Vec<String> = Vec::new();
    for child in &body.nodes {
        match child.keyword.text.as_str() {
            "track_script" => track_scripts(child, &mut track_sc, &mut places.track_scripts, d),
            "track_interface" => track_interfaces(child, &mut track_if, d),
            "dont_track_primary" => {
                no_args(child, d);
                dont_track_primary = true;
            }
            // wasmalived extension: extra heartbeat paths (see VrrpInstance::heartbeat_interfaces).
            "heartbeat_interface" => {
                if child.args.is_empty() {
                    d.error(
                        child.span(),
                        "heartbeat_interface needs at least one interface name",
                    );
                }
                for arg in &child.args {
                    if heartbeat_interfaces.contains(&arg.text) {
                        d.warn(
                            &arg.span,
                            format!("heartbeat_interface {} listed twice", arg.text),
                        );
                    } else {
                        heartbeat_interfaces.push(arg.text.clone());
                    }
                }
            }
            _ => apply(&mut draft, child, d),
        }
    }
    let Some(interface) = draft.interface.take() else {
        d.error(
            node.span(),
            format!("vrrp_instance {name} has no interface"),
        );
        return None;
    };
    let Some(vrid) = draft.vrid else {
        d.error(
            node.span(),
            format!("vrrp_instance {name} has no virtual_router_id"),
        );
        return None;
    };
    let addrs = Addresses {
        vips: &draft.vips,
        unicast_src_ip: &draft.unicast_src_ip,
        mcast_src_ip: &draft.mcast_src_ip,
        peers: &draft.peers,
    };
    let family = family(&addrs, name, d)?;
    if heartbeat_interfaces.contains(&interface) {
        d.error(
            node.span(),
            format!("vrrp_instance {name}: heartbeat_interface {interface} is the instance's own interface"),
        );
    }
    if !heartbeat_interfaces.is_empty() && (!draft.peers.is_empty() || family == Family::V6) {
        d.error(
            node.span(),
            format!("vrrp_instance {name}: heartbeat_interface is supported for IPv4 multicast instances only"),
        );
    }
    let version = match (draft.version.clone(), family) {
        (Some((Version::V2, at)), Family::V6) => {
            d.error(&at, "VRRPv2 is IPv4 only; IPv6 instances use version 3");
            return None;
        }
        (Some((v, _)), _) => v,
        (None, Family::V6) => Version::V3,
        (None, Family::V4) => global.vrrp_version,
    };
    let advert_int = advert_int(draft.advert_int, version, node.span(), d)?;
    let priority = draft.priority.unwrap_or(def::PRIORITY);
    let strict = draft.strict.unwrap_or(global.vrrp_strict);
    let mut state = draft.state.unwrap_or_default();
    let mut nopreempt = draft.nopreempt;
    if nopreempt && priority.is_owner() {
        d.warn(node.span(), format!("vrrp_instance {name}: nopreempt has no effect at priority 255 (the address owner always preempts); ignored"));
        nopreempt = false;
    } else if nopreempt && state == InitialState::Master {
        d.warn(node.span(), format!("vrrp_instance {name}: nopreempt needs state BACKUP; nopreempt ignored, as keepalived does"));
        nopreempt = false;
    }
    let mut auth_pass = auth(draft.auth.take(), version, d);
    let mut preempt_delay = draft
        .preempt_delay
        .as_ref()
        .map_or(Duration::ZERO, |(p, _)| *p);
    let mut accept = draft.accept.as_ref().map(|(a, _)| *a);
    if strict {
        if draft.vips.is_empty() {
            d.error(
                node.span(),
                format!("vrrp_instance {name}: strict mode needs at least one virtual_ipaddress"),
            );
        }
        if let Some((_, at)) = draft.peers.first() {
            d.error(
                at,
                format!("vrrp_instance {name}: strict mode does not allow unicast peers"),
            );
        }
        if auth_pass.take().is_some() {
            d.warn(
                node.span(),
                format!("vrrp_instance {name}: strict mode does not allow authentication; ignored"),
            );
        }
        if let Some((_, at)) = draft.preempt_delay.as_ref().filter(|(p, _)| !p.is_zero()) {
            d.warn(at, "strict mode does not allow preempt_delay; ignored");
            preempt_delay = Duration::ZERO;
        }
        if state == InitialState::Master && !priority.is_owner() {
            d.warn(node.span(), format!("vrrp_instance {name}: strict mode allows state MASTER only at priority 255; starting as BACKUP"));
            state = InitialState::Backup;
        }
        if let Some((true, at)) = &draft.accept {
            if version == Version::V2 {
                d.warn(at, "strict mode does not allow accept with VRRPv2; ignored");
                accept = Some(false);
            }
        }
    }
    let accept = accept.unwrap_or(!strict || priority.is_owner());
    if draft.use_vmac.is_some() {
        d.warn(node.span(), format!("vrrp_instance {name}: use_vmac is not supported yet; the VIPs go on {interface} itself"));
    }
    if d.error_count() > errors_before {
        return None;
    }
    let garp = crate::model::GarpSettings {
        master_delay: draft.garp_delay.unwrap_or(global.garp.master_delay),
        master_repeat: draft.garp_repeat.unwrap_or(global.garp.master_repeat),
        master_refresh: draft
            .garp_refresh
            .map_or(global.garp.master_refresh, |r| (!r.is_zero()).then_some(r)),
        master_refresh_repeat: draft
            .garp_refresh_repeat
            .unwrap_or(global.garp.master_refresh_repeat),
        ..global.garp
    };
    let inst = VrrpInstance {
        name: name.to_owned(),
        initial_state: state,
        interface,
        vrid,
        priority,
        version,
        family,
        advert_int,
        nopreempt,
        preempt_delay,
        auth_pass,
        vips: draft.vips.into_iter().map(|(v, _)| v).collect(),
        excluded_vips: draft.excluded.into_iter().map(|(v, _)| v).collect(),
        mcast_src_ip: draft.mcast_src_ip.map(|(a, _)| a),
        unicast_src_ip: draft.unicast_src_ip.map(|(a, _)| a),
        unicast_peers: draft.peers.into_iter().map(|(a, _)| a).collect(),
        track_interfaces: track_if,
        track_scripts: track_sc,
        garp,
        notify: draft.notify,
        use_vmac: draft.use_vmac,
        dont_track_primary,
        heartbeat_interfaces,
        accept,
        strict,
        origin: Origin(node.span().clone()),
    };
    Some((inst, places))
}

fn apply<'n>(s: &mut Draft<'n>, node: &'n Node, d: &mut Diags) {
    let kw = node.keyword.text.as_str();
    match kw {
        "state" => match one_arg(node, d).map(|w| (w, w.text.as_str())) {
            Some((_, "MASTER")) => s.state = Some(InitialState::Master),
            Some((_, "BACKUP")) => s.state = Some(InitialState::Backup),
            Some((w, other)) => d.error(
                &w.span,
                format!("bad state '{other}': expected MASTER or BACKUP"),
            ),
            None => {}
        },
        "interface" => {
            s.interface = one_arg(node, d)
                .map(|w| w.text.clone())
                .or(s.interface.take())
        }
        "virtual_router_id" => {
            if let Some(v) = one_arg(node, d).and_then(|w| int(w, "virtual_router_id", 1, 255, d)) {
                s.vrid = u8::try_from(v).ok().and_then(Vrid::new);
            }
        }
        "priority" => {
            if let Some(v) = one_arg(node, d).and_then(|w| int(w, "priority", 1, 255, d)) {
                s.priority = u8::try_from(v).ok().map(Priority::new);
            }
        }
        "advert_int" => s.advert_int = one_arg(node, d).or(s.advert_int),
        "version" => {
            if let Some(w) = one_arg(node, d) {
                if let Some(v) = int(w, "version", 2, 3, d) {
                    s.version = Some((
                        if v == 2 { Version::V2 } else { Version::V3 },
                        w.span.clone(),
                    ));
                }
            }
        }
        "nopreempt" => {
            no_args(node, d);
            s.nopreempt = true;
        }
        "preempt" => {
            no_args(node, d);
            s.nopreempt = false;
        }
        "preempt_delay" => {
            if let Some(v) = one_arg(node, d)
                .and_then(|w| seconds(w, "preempt_delay", def::MAX_PREEMPT_DELAY, d))
            {
                s.preempt_delay = Some((v, node.span().clone()));
            }
        }
        "authentication" => s.auth = Some(auth_block(node, d)),
        "virtual_ipaddress" => s.vips.extend(vip_block(node, d)),
        "virtual_ipaddress_excluded" => s.excluded.extend(vip_block(node, d)),
        "mcast_src_ip" => {
            s.mcast_src_ip = one_arg(node, d)
                .and_then(|w| super::values::ip(w, kw, d))
                .map(|a| (a, node.span().clone()))
        }
        "unicast_src_ip" => {
            s.unicast_src_ip = one_arg(node, d)
                .and_then(|w| super::values::ip(w, kw, d))
                .map(|a| (a, node.span().clone()))
        }
        "unicast_peer" => s.peers.extend(peers(node, d)),
        "garp_master_delay" => {
            s.garp_delay =
                one_arg(node, d).and_then(|w| seconds(w, kw, def::MAX_SCRIPT_INTERVAL, d))
        }
        "garp_master_refresh" => {
            s.garp_refresh =
                one_arg(node, d).and_then(|w| seconds(w, kw, def::MAX_SCRIPT_INTERVAL, d))
        }
        "garp_master_repeat" => {
            s.garp_repeat = one_arg(node, d).and_then(|w| uint(w, kw, 1, 10_000, d))
        }
        "garp_master_refresh_repeat" => {
            s.garp_refresh_repeat = one_arg(node, d).and_then(|w| uint(w, kw, 1, 10_000, d))
        }
        "use_vmac" => {
            s.use_vmac = Some(Vmac {
                ifname: node.args.first().map(|w| w.text.clone()),
            })
        }
        "accept" => {
            no_args(node, d);
            s.accept = Some((true, node.span().clone()));
        }
        "no_accept" => {
            no_args(node, d);
            s.accept = Some((false, node.span().clone()));
        }
        "strict_mode" => s.strict = flag(node, d).or(s.strict),
        "smtp_alert" => d.warn(
            node.span(),
            "smtp_alert is not supported by wasmalived; ignored",
        ),
        k if IGNORED.contains(&k) => d.warn(
            node.span(),
            format!("{k} is not supported by wasmalived; ignored"),
        ),
        _ if notify(&mut s.notify, node, d) => {}
        _ => unknown(node, "vrrp_instance", d),
    }
}
