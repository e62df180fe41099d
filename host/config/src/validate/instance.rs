//! `vrrp_instance NAME { … }`: the keywords in order, as keepalived's handlers apply them
//! (`vrrp_parser.c`), then the resolution keepalived does when the instance is complete
//! (`vrrp_complete_instance`): address family, version, defaults that depend on each
//! other (priority and state), advert interval rounding, authentication, preemption and
//! strict-mode rules. Each adjustment keepalived makes is a warning saying what is used.

use std::net::IpAddr;
use std::time::Duration;

use super::addresses::{peer_line, source_address, vip_line};
use super::protocol::{advert_interval, auth, AuthDraft};
use super::routes::{route_line, rule_line, RulePreferences};
use super::track::{block_lines, notify, track_interfaces, track_processes, track_scripts};
use super::track_file::track_files;
use super::{section_name, unknown, Places};
use crate::compat::{
    self, boolean, flag_args, one_value, read_decimal, read_int, read_unsigned, take_number,
    OnReject,
};
use crate::defaults as def;
use crate::diag::{Diags, Span};
use crate::lexer::Word;
use crate::model::{GlobalDefs, InitialState, Notify, Origin, TrackFileDef, Vmac, VrrpInstance};
use crate::parser::Node;
use crate::vip::VipSpec;
use wasmalived_proto::vrrp::types::{Family, Priority, Version, Vrid};

/// keepalived instance keywords this daemon accepts and ignores (with a warning).
const IGNORED: &[&str] = &[
    "use_vmac_addr",
    "use_ipvlan",
    "track_src_ip",
    "check_unicast_src",
    "unicast_fault_no_peer",
    "unicast_ttl",
    "old_unicast_checksum",
    "garp_extra_if",
    "vmac_garp_intvl",
    "down_timer_adverts",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "skip_check_adv_addr",
    "debug",
    "notify_master_rx_lower_pri",
    "notify_deleted",
    "kernel_rx_buf_size",
    "linkbeat_use_polling",
    "promote_secondaries",
    "mcast_dst_ip",
    "vrf",
    "lvs_sync_daemon_interface",
    "track_bfd",
];

/// Longest interface name (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// keepalived's preempt_delay limit (TIMER_MAX_SEC), microseconds.
const MAX_PREEMPT_DELAY_US: u64 = 1_000 * 1_000_000;

/// Everything an instance block said, applied in order as keepalived does.
#[derive(Default)]
struct Draft<'n> {
    state: Option<InitialState>,
    interface: Option<String>,
    vrid: Option<Vrid>,
    rejected_vrid: Option<&'n Word>,
    priority: Option<Priority>,
    /// `advert_int` as read, in microseconds, with its place.
    advert_us: Option<(u64, Span)>,
    version: Option<(Version, Span)>,
    /// The family of the first address seen (keepalived fixes it there).
    family: Option<Family>,
    nopreempt: bool,
    preempt_delay: Option<(Duration, Span)>,
    auth: AuthDraft,
    vips: Vec<(VipSpec, Span)>,
    excluded: Vec<(VipSpec, Span)>,
    mcast_src_ip: Option<(IpAddr, Span)>,
    unicast_src_ip: Option<(IpAddr, Span)>,
    peers: Vec<(IpAddr, Span)>,
    /// A unicast keyword was given (keepalived then wants peers).
    unicast_keyword: Option<Span>,
    notify: Notify,
    /// `use_vmac [NAME]`: the name, if valid, and the keyword's place.
    use_vmac: Option<(Option<(String, Span)>, Span)>,
    /// `vmac_xmit_base` (its place).
    vmac_xmit_base: Option<Span>,
    accept: Option<(bool, Span)>,
    strict: Option<bool>,
    garp_delay: Option<Duration>,
    garp_repeat: Option<u32>,
    garp_refresh: Option<Duration>,
    garp_refresh_repeat: Option<u32>,
    garp_lower_prio_delay: Option<(Duration, Span)>,
    garp_lower_prio_repeat: Option<(u32, Span)>,
}

impl Draft<'_> {
    /// keepalived's rule for an address: the first one fixes the instance's family; one of
    /// the other family is ignored. `true` if `addr` fits.
    fn fits_family(
        &mut self,
        addr: &IpAddr,
        what: &str,
        name: &str,
        at: &Span,
        d: &mut Diags,
    ) -> bool {
        let fam = if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        match self.family {
            None => {
                self.family = Some(fam);
                true
            }
            Some(f) if f == fam => true,
            Some(f) => {
                d.warn(
                    at,
                    format!(
                        "vrrp_instance {name}: this {what} is {} but the instance is {} (from its first address); ignored, as keepalived does",
                        family_name(fam),
                        family_name(f)
                    ),
                );
                false
            }
        }
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// Builds one `vrrp_instance`; `None` if it has errors or keepalived would skip it.
pub(crate) fn build(
    node: &Node,
    global: &GlobalDefs,
    track_file_defs: &[TrackFileDef],
    ordinal: usize,
    rule_preferences: &mut RulePreferences,
    d: &mut Diags,
) -> Option<(VrrpInstance, Places)> {
    let name = section_name(node, d)?;
    let body = node.block.as_ref()?;
    let errors_before = d.error_count();
    let mut places = Places::new(ordinal, node.span().clone());
    let mut draft = Draft::default();
    let mut track_if = Vec::new();
    let mut track_sc = Vec::new();
    let mut track_fl = Vec::new();
    let mut notify_priority_changes = None;
    let mut smtp_alert = None;
    let mut track_proc = Vec::new();
    let mut dont_track_primary = false;
    let mut heartbeat_interfaces: Vec<String> = Vec::new();
    let mut virtual_routes = Vec::new();
    let mut virtual_rules = Vec::new();
    for child in &body.nodes {
        match child.keyword.text.as_str() {
            "virtual_routes" => virtual_routes.extend(
                block_lines(child, d)
                    .iter()
                    .filter_map(|line| route_line(line, "virtual route", d)),
            ),
            "virtual_rules" => {
                for line in block_lines(child, d) {
                    virtual_rules.extend(rule_line(line, "virtual rule", rule_preferences, d));
                }
            }
            "track_script" => track_scripts(child, &mut track_sc, &mut places.track_scripts, d),
            "track_process" => {
                track_processes(child, &mut track_proc, &mut places.track_processes, d)
            }
            "track_interface" => track_interfaces(child, name, &mut track_if, d),
            "track_file" => {
                let owner = format!("vrrp_instance {name}");
                track_files(child, &owner, track_file_defs, &mut track_fl, d)
            }
            "notify_priority_changes" => {
                notify_priority_changes = boolean(child, d).or(notify_priority_changes)
            }
            "smtp_alert" => smtp_alert = boolean(child, d).or(smtp_alert),
            "dont_track_primary" => {
                flag_args(child, d);
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
            _ => apply(&mut draft, child, name, d),
        }
    }
    let Some(interface) = draft.interface.take() else {
        d.error(
            node.span(),
            format!("vrrp_instance {name} has no interface (keepalived refuses it too)"),
        );
        return None;
    };
    let Some(vrid) = draft.vrid else {
        match draft.rejected_vrid {
            Some(w) => d.error(
                &w.span,
                format!("bad virtual_router_id '{}': expected an integer 1..=255 (keepalived ignores it, then refuses vrrp_instance {name}, which has no virtual_router_id)", w.text),
            ),
            None => d.error(
                node.span(),
                format!("vrrp_instance {name} has no virtual_router_id (keepalived refuses it too)"),
            ),
        }
        return None;
    };
    let family = draft.family.unwrap_or(Family::V4);
    if heartbeat_interfaces.contains(&interface) {
        d.error(
            node.span(),
            format!("vrrp_instance {name}: heartbeat_interface {interface} is the instance's own interface"),
        );
    }
    let strict = draft.strict.unwrap_or(global.vrrp_strict);
    let version = match (draft.version.clone(), family) {
        (Some((Version::V2, at)), Family::V6) => {
            if strict {
                d.warn(&at, format!("vrrp_instance {name}: IPv6 cannot use VRRP version 2; using version 3, as keepalived does in strict mode"));
                Version::V3
            } else {
                d.error(&at, "VRRPv2 is IPv4 only; IPv6 instances use version 3");
                return None;
            }
        }
        (Some((v, _)), _) => v,
        (None, Family::V6) => Version::V3,
        (None, Family::V4) => global.vrrp_version,
    };
    if draft.vips.is_empty() {
        if version == Version::V3 || strict {
            d.error(
                node.span(),
                format!("vrrp_instance {name} has no virtual_ipaddress; VRRPv3 and strict mode need one (keepalived refuses it too)"),
            );
        } else {
            d.warn(
                node.span(),
                format!("vrrp_instance {name} has no virtual_ipaddress; it runs without VIPs, as keepalived does"),
            );
        }
    }
    let unicast = !draft.peers.is_empty();
    if !heartbeat_interfaces.is_empty() && family == Family::V6 && unicast {
        // An IPv6 peer's address is only resolved (neighbour discovery) on its own link.
        d.error(
            node.span(),
            format!("vrrp_instance {name}: heartbeat_interface with IPv6 unicast peers is not supported: a peer's address is only reachable on its own link (use multicast for IPv6 heartbeat paths)"),
        );
    }
    if let (Some(at), false) = (&draft.unicast_keyword, unicast) {
        d.warn(at, format!("vrrp_instance {name}: a unicast keyword without unicast peers; using multicast, as keepalived does"));
    }

    // keepalived: an unset priority follows the state, an unset state the priority.
    let priority = draft.priority.unwrap_or(match draft.state {
        Some(InitialState::Master) => Priority::OWNER,
        _ => def::PRIORITY,
    });
    let mut state = draft.state.unwrap_or(if priority.is_owner() {
        InitialState::Master
    } else {
        InitialState::Backup
    });
    if draft.priority.is_none() && draft.state == Some(InitialState::Master) {
        d.warn(
            node.span(),
            format!("vrrp_instance {name}: state MASTER without a priority; using priority 255 (address owner), as keepalived does"),
        );
    }
    if strict && (state == InitialState::Master) != priority.is_owner() {
        let fixed = if priority.is_owner() {
            InitialState::Master
        } else {
            InitialState::Backup
        };
        d.warn(node.span(), format!("vrrp_instance {name}: in strict mode the initial state follows priority 255 (address owner); starting as {fixed:?}, as keepalived does"));
        state = fixed;
    }
    let (auth_pass, ah_backup) = auth(
        draft.auth.clone(),
        version,
        family,
        strict,
        state,
        priority,
        name,
        d,
    );
    if ah_backup {
        state = InitialState::Backup;
    }
    if unicast && strict {
        let at = &draft.peers[0].1;
        d.error(
            at,
            format!("vrrp_instance {name}: strict mode does not allow unicast peers (keepalived refuses it too)"),
        );
    }
    let mut nopreempt = draft.nopreempt;
    if nopreempt && priority.is_owner() {
        d.warn(node.span(), format!("vrrp_instance {name}: nopreempt has no effect at priority 255 (the address owner always preempts); ignored, as keepalived does"));
        nopreempt = false;
    }
    let mut preempt_delay = draft
        .preempt_delay
        .as_ref()
        .map_or(Duration::ZERO, |(p, _)| *p);
    if state == InitialState::Master {
        if nopreempt {
            d.warn(node.span(), format!("vrrp_instance {name}: nopreempt needs state BACKUP; nopreempt ignored, as keepalived does"));
            nopreempt = false;
        }
        if !preempt_delay.is_zero() {
            d.warn(node.span(), format!("vrrp_instance {name}: preempt_delay needs state BACKUP; preempt_delay ignored, as keepalived does"));
            preempt_delay = Duration::ZERO;
        }
    }
    if let Some((_, at)) = draft
        .preempt_delay
        .as_ref()
        .filter(|_| !preempt_delay.is_zero())
    {
        if strict {
            d.warn(
                at,
                "strict mode does not allow preempt_delay; ignored, as keepalived does",
            );
            preempt_delay = Duration::ZERO;
        } else if nopreempt {
            d.warn(
                at,
                "preempt_delay has no effect with nopreempt; ignored, as keepalived does",
            );
            preempt_delay = Duration::ZERO;
        }
    }
    let mut accept = draft
        .accept
        .as_ref()
        .map_or(priority.is_owner() || !strict, |(a, _)| *a);
    if accept && !priority.is_owner() && strict && version == Version::V2 {
        if let Some((_, at)) = &draft.accept {
            d.warn(at, "strict mode does not allow accept with VRRPv2 (RFC 3768); ignored, as keepalived does");
        }
        accept = false;
    }
    let advert_int = advert_interval(draft.advert_us.clone(), version, name, node.span(), d);
    let end = body.close.as_ref().unwrap_or(node.span());
    let use_vmac = vmac(&draft, end, vrid, unicast, name, &mut places, d);
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
        lower_prio_delay: lower_prio_garp(
            draft.garp_lower_prio_delay.clone(),
            global.garp.lower_prio_delay,
            Duration::ZERO,
            strict,
            name,
            "garp_lower_prio_delay",
            d,
        ),
        lower_prio_repeat: lower_prio_garp(
            draft.garp_lower_prio_repeat.clone(),
            global.garp.lower_prio_repeat,
            0,
            strict,
            name,
            "garp_lower_prio_repeat",
            d,
        ),
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
        track_files: track_fl,
        notify_priority_changes,
        smtp_alert,
        track_processes: track_proc,
        garp,
        notify: draft.notify,
        use_vmac,
        dont_track_primary,
        heartbeat_interfaces,
        virtual_routes,
        virtual_rules,
        accept,
        strict,
        origin: Origin(node.span().clone()),
    };
    Some((inst, places))
}

/// `use_vmac` / `vmac_xmit_base` as keepalived completes them: the interface named, or
/// keepalived's default `vrrp.VRID` (a clash between instances is resolved across the
/// configuration by [`resolve_vmac_names`]); unicast adverts need the base interface.
fn vmac(
    draft: &Draft<'_>,
    end: &Span,
    vrid: Vrid,
    unicast: bool,
    name: &str,
    places: &mut Places,
    d: &mut Diags,
) -> Option<Vmac> {
    let Some((named, _)) = &draft.use_vmac else {
        if let Some(at) = &draft.vmac_xmit_base {
            d.warn(
                at,
                format!(
                    "vrrp_instance {name}: vmac_xmit_base has no effect without use_vmac; ignored"
                ),
            );
        }
        return None;
    };
    let mut xmit_base = draft.vmac_xmit_base.is_some();
    if unicast && !xmit_base {
        // keepalived decides it when the block ends (vrrp_end_handler), and says so there.
        d.warn(
            end,
            format!("vrrp_instance {name}: unicast with use_vmac needs vmac_xmit_base; using vmac_xmit_base, as keepalived does"),
        );
        xmit_base = true;
    }
    places.vmac_name = named.as_ref().map(|(_, at)| at.clone());
    Some(Vmac {
        ifname: named
            .as_ref()
            .map_or_else(|| Vmac::default_name(vrid), |(n, _)| n.clone()),
        named: named.is_some(),
        xmit_base,
    })
}

/// keepalived's `dev_name_valid`: what the kernel accepts as an interface name.
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// Gives every VMAC interface its own name, as keepalived does: a name another instance
/// already uses is ignored (with a warning) in favour of the default; a default name that is
/// taken becomes the next free one of keepalived's sequence (`vrrp1.VRID`, `vrrp2.VRID`…;
/// IPv6 instances try `vrrp6.VRID` first).
pub(crate) fn resolve_vmac_names(instances: &mut [(VrrpInstance, Places)], d: &mut Diags) {
    let mut taken: Vec<String> = Vec::new();
    for (inst, places) in instances.iter_mut() {
        let Some(vmac) = inst.use_vmac.as_mut().filter(|v| v.named) else {
            continue;
        };
        if taken.contains(&vmac.ifname) {
            let at = places.vmac_name.as_ref().unwrap_or(&places.name);
            d.warn(
                at,
                format!(
                    "vrrp_instance {}: another instance already uses VMAC interface {}; name ignored (the default name is used), as keepalived does",
                    inst.name, vmac.ifname
                ),
            );
            vmac.named = false;
            vmac.ifname = Vmac::default_name(inst.vrid);
        } else {
            taken.push(vmac.ifname.clone());
        }
    }
    for (inst, _) in instances.iter_mut() {
        let (vrid, family) = (inst.vrid, inst.family);
        let Some(vmac) = inst.use_vmac.as_mut().filter(|v| !v.named) else {
            continue;
        };
        let mut num: u16 = 0;
        let mut candidate = Vmac::default_name(vrid);
        while taken.contains(&candidate) {
            num = match (family, num) {
                (Family::V6, 0) => 6,
                (Family::V6, 6) => 1,
                (Family::V6, 5) => 7,
                (_, n) => n + 1,
            };
            candidate = format!("vrrp{num}.{vrid}");
        }
        vmac.ifname = candidate.clone();
        taken.push(candidate);
    }
}

/// Applies one keyword as keepalived's handler does.
fn apply<'n>(s: &mut Draft<'n>, node: &'n Node, name: &str, d: &mut Diags) {
    let kw = node.keyword.text.as_str();
    match kw {
        "state" => {
            let Some(w) = one_value(node, d) else { return };
            match w.text.as_str() {
                "MASTER" => s.state = Some(InitialState::Master),
                "BACKUP" if s.state == Some(InitialState::Master) => d.warn(
                    &w.span,
                    "state was already set to MASTER; BACKUP ignored, as keepalived does",
                ),
                "BACKUP" => s.state = Some(InitialState::Backup),
                other => {
                    d.warn(
                        &w.span,
                        format!("bad state '{other}' (expected MASTER or BACKUP); using BACKUP, as keepalived does"),
                    );
                    s.state = Some(InitialState::Backup);
                }
            }
        }
        "interface" => {
            let Some(w) = one_value(node, d) else { return };
            if w.text.chars().count() > MAX_IFNAME {
                d.warn(&w.span, format!("interface name '{}' is longer than {MAX_IFNAME} characters; ignored, as keepalived does", w.text));
            } else if w.text == "lo" {
                d.warn(
                    &w.span,
                    "a loopback interface cannot carry VRRP; ignored, as keepalived does",
                );
            } else {
                s.interface = Some(w.text.clone());
            }
        }
        "virtual_router_id" => {
            let Some(w) = one_value(node, d) else { return };
            match read_unsigned(&w.text, 1, 255, false).value() {
                Some(v) => s.vrid = u8::try_from(v).ok().and_then(Vrid::new),
                None if s.vrid.is_some() => d.warn(
                    &w.span,
                    format!("bad virtual_router_id '{}': expected an integer 1..=255; ignored, as keepalived does", w.text),
                ),
                None => s.rejected_vrid = Some(w),
            }
        }
        "priority" => {
            let Some(w) = one_value(node, d) else { return };
            let v = take_number(
                read_unsigned(&w.text, 1, 255, false),
                w,
                "priority",
                OnReject::Use("the default 100"),
                d,
            );
            let v = v.unwrap_or(u64::from(def::PRIORITY.get()));
            s.priority = u8::try_from(v).ok().map(Priority::new);
        }
        "advert_int" => {
            let Some(w) = one_value(node, d) else { return };
            if let Some(us) = compat::take(
                read_decimal(&w.text, 10_000, 255_000_000, 6, true),
                w,
                "advert_int",
                OnReject::Ignore,
                compat::show_micros,
                d,
            ) {
                s.advert_us = Some((us, w.span.clone()));
            }
        }
        "version" => {
            let Some(w) = one_value(node, d) else { return };
            let Some(v) = take_number(
                read_int(&w.text, 2, 3, true),
                w,
                "version",
                OnReject::Ignore,
                d,
            ) else {
                return;
            };
            let v = if v == 2 { Version::V2 } else { Version::V3 };
            let conflict = s.version.as_ref().is_some_and(|(old, _)| *old != v)
                || (v == Version::V2 && s.family == Some(Family::V6));
            if conflict {
                d.warn(
                    &w.span,
                    format!("version {} conflicts with the version already set or implied by IPv6; ignored, as keepalived does", w.text),
                );
            } else {
                s.version = Some((v, w.span.clone()));
            }
        }
        "native_ipv6" => {
            flag_args(node, d);
            if s.family == Some(Family::V4) {
                d.warn(node.span(), format!("vrrp_instance {name}: native_ipv6 with IPv4 addresses; ignored, as keepalived does"));
            } else {
                s.family = Some(Family::V6);
                s.version = Some((Version::V3, node.span().clone()));
            }
        }
        "nopreempt" => {
            flag_args(node, d);
            s.nopreempt = true;
        }
        "preempt" => {
            flag_args(node, d);
            s.nopreempt = false;
        }
        "preempt_delay" => {
            let Some(w) = one_value(node, d) else { return };
            let us = compat::take(
                read_decimal(&w.text, 0, MAX_PREEMPT_DELAY_US, 6, true),
                w,
                "preempt_delay",
                OnReject::Use("0 (no delay)"),
                compat::show_micros,
                d,
            )
            .unwrap_or(0);
            s.preempt_delay = Some((Duration::from_micros(us), node.span().clone()));
        }
        "authentication" => s.auth.apply(node, d),
        "virtual_ipaddress" => {
            for line in block_lines(node, d) {
                if let Some(vip) = vip_line(line, d) {
                    if s.fits_family(&vip.addr, "virtual address", name, line.span(), d) {
                        s.vips.push((vip, line.span().clone()));
                    }
                }
            }
        }
        "virtual_ipaddress_excluded" => {
            for line in block_lines(node, d) {
                if let Some(vip) = vip_line(line, d) {
                    s.excluded.push((vip, line.span().clone()));
                }
            }
        }
        "mcast_src_ip" | "unicast_src_ip" => {
            if kw == "unicast_src_ip" {
                s.unicast_keyword.get_or_insert_with(|| node.span().clone());
            }
            let Some(w) = one_value(node, d) else { return };
            let Some(addr) = source_address(w, kw, d) else {
                return;
            };
            if !s.fits_family(&addr, kw, name, &w.span, d) {
                return;
            }
            let slot = if kw == "mcast_src_ip" {
                &mut s.mcast_src_ip
            } else {
                &mut s.unicast_src_ip
            };
            *slot = Some((addr, node.span().clone()));
        }
        "unicast_peer" => {
            s.unicast_keyword.get_or_insert_with(|| node.span().clone());
            for line in block_lines(node, d) {
                if let Some(addr) = peer_line(line, d) {
                    if s.fits_family(&addr, "unicast peer", name, line.span(), d) {
                        s.peers.push((addr, line.span().clone()));
                    }
                }
            }
        }
        "garp_master_delay" => {
            s.garp_delay = seconds_value(node, kw, OnReject::Ignore, d)
                .map(Duration::from_secs)
                .or(s.garp_delay);
        }
        "garp_master_refresh" => {
            if let Some(v) = seconds_value(node, kw, OnReject::Use("0 (off)"), d).or(Some(0)) {
                s.garp_refresh = Some(Duration::from_secs(v));
            }
        }
        "garp_master_repeat" => s.garp_repeat = repeat_value(node, kw, d).or(s.garp_repeat),
        "garp_lower_prio_delay" => {
            if let Some(v) = seconds_value(node, kw, OnReject::Ignore, d) {
                s.garp_lower_prio_delay = Some((Duration::from_secs(v), node.span().clone()));
            }
        }
        "garp_lower_prio_repeat" => {
            if let Some(v) = lower_prio_repeat_value(node, kw, d) {
                s.garp_lower_prio_repeat = Some((v, node.span().clone()));
            }
        }
        "garp_master_refresh_repeat" => {
            s.garp_refresh_repeat = repeat_value(node, kw, d).or(s.garp_refresh_repeat)
        }
        "use_vmac" => {
            let named = node.args.first().and_then(|w| {
                if valid_ifname(&w.text) {
                    Some((w.text.clone(), w.span.clone()))
                } else {
                    d.warn(&w.span, format!("VMAC interface name '{}' is too long or has invalid characters; ignored (the default name is used), as keepalived does", w.text));
                    None
                }
            });
            s.use_vmac = Some((named, node.span().clone()));
        }
        "vmac_xmit_base" => {
            flag_args(node, d);
            s.vmac_xmit_base = Some(node.span().clone());
        }
        "accept" => {
            flag_args(node, d);
            s.accept = Some((true, node.span().clone()));
        }
        "no_accept" => {
            flag_args(node, d);
            s.accept = Some((false, node.span().clone()));
        }
        "strict_mode" => s.strict = boolean(node, d).or(s.strict),
        k if IGNORED.contains(&k) => {
            if k == "unicast_ttl"
                || k == "check_unicast_src"
                || k == "unicast_fault_no_peer"
                || k == "old_unicast_checksum"
            {
                s.unicast_keyword.get_or_insert_with(|| node.span().clone());
            }
            d.warn(
                node.span(),
                format!("{k} is not supported by wasmalived; ignored"),
            );
        }
        _ if notify(&mut s.notify, node, d) => {}
        _ => unknown(node, "vrrp_instance", d),
    }
}

/// An unsigned whole number of seconds (keepalived's GARP timers), read leniently.
pub(crate) fn seconds_value(
    node: &Node,
    what: &str,
    on_reject: OnReject<'_>,
    d: &mut Diags,
) -> Option<u64> {
    let w = one_value(node, d)?;
    take_number(
        read_unsigned(&w.text, 0, u64::from(u32::MAX) / 1_000_000, true),
        w,
        what,
        on_reject,
        d,
    )
}

/// A repeat count (keepalived: 0 means 1).
/// `garp_lower_prio_repeat N` / `vrrp_garp_lower_prio_repeat N`: 0 (no burst) and up, as
/// keepalived reads it.
pub(crate) fn lower_prio_repeat_value(node: &Node, what: &str, d: &mut Diags) -> Option<u32> {
    let w = one_value(node, d)?;
    let v = take_number(
        read_unsigned(&w.text, 0, i32::MAX as u64, true),
        w,
        what,
        OnReject::Ignore,
        d,
    )?;
    u32::try_from(v).ok()
}

/// An instance's `garp_lower_prio_*` value: its own, else the global one (else `None`: as the
/// `garp_master_*` value). Strict mode wants no lower-priority bursts: unset there means
/// `off`, and a value set is reset to `off` with a warning, as keepalived does.
fn lower_prio_garp<T: PartialEq + Copy>(
    own: Option<(T, Span)>,
    global: Option<T>,
    off: T,
    strict: bool,
    name: &str,
    what: &str,
    d: &mut Diags,
) -> Option<T> {
    match own {
        Some((v, at)) if strict && v != off => {
            d.warn(
                &at,
                format!("vrrp_instance {name}: strict mode requires no {what}; using 0, as keepalived does"),
            );
            Some(off)
        }
        Some((v, _)) => Some(v),
        None if strict => Some(off),
        None => global,
    }
}

pub(crate) fn repeat_value(node: &Node, what: &str, d: &mut Diags) -> Option<u32> {
    let w = one_value(node, d)?;
    let v = take_number(
        read_unsigned(&w.text, 0, u64::from(u32::MAX), true),
        w,
        what,
        OnReject::Ignore,
        d,
    )?;
    if v == 0 {
        d.warn(
            &w.span,
            format!("{what} must be more than 0; using 1, as keepalived does"),
        );
        return Some(1);
    }
    u32::try_from(v).ok()
}
