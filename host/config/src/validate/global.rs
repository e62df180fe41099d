//! `global_defs { … }` (all such blocks, merged in order).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::addresses::source_address;
use super::instance::{lower_prio_repeat_value, repeat_value, seconds_value};
use super::values::{no_block, one_arg, seconds, size};
use super::{track::run_as, unknown};
use crate::compat::{self, flag_args, one_value, read_decimal, read_int, take_number, OnReject};
use crate::defaults as def;
use crate::diag::Diags;
use crate::lvs::LvsBackendChoice;
use crate::model::{GlobalDefs, PluginSearchPath};
use crate::parser::Node;
use wasmalived_proto::vrrp::types::Version;

/// The global defaults, with every `global_defs` block applied.
pub(crate) fn build(blocks: &[&Node], d: &mut Diags) -> GlobalDefs {
    let mut g = GlobalDefs::default();
    for block in blocks {
        if !block.args.is_empty() {
            d.error(block.span(), "global_defs takes no name");
        }
        let Some(body) = &block.block else {
            d.error(block.span(), "global_defs needs a block { … }");
            continue;
        };
        for node in &body.nodes {
            apply(&mut g, node, d);
        }
    }
    if let Some(first) = blocks.first() {
        super::alerts::finish(&mut g, d, first.span());
    }
    g
}

fn apply(g: &mut GlobalDefs, node: &Node, d: &mut Diags) {
    let kw = node.keyword.text.as_str();
    match kw {
        "router_id" => {
            if let Some(w) = one_value(node, d) {
                g.router_id = Some(w.text.clone());
            }
        }
        "vrrp_version" => {
            if let Some(v) = one_value(node, d).and_then(|w| {
                take_number(read_int(&w.text, 2, 3, true), w, kw, OnReject::Ignore, d)
            }) {
                g.vrrp_version = if v == 2 { Version::V2 } else { Version::V3 };
            }
        }
        "vrrp_garp_master_delay" => {
            if let Some(v) = seconds_value(node, kw, OnReject::Ignore, d) {
                g.garp.master_delay = Duration::from_secs(v);
            }
        }
        "vrrp_garp_master_repeat" => {
            g.garp.master_repeat = repeat_value(node, kw, d).unwrap_or(g.garp.master_repeat)
        }
        "vrrp_garp_master_refresh" => {
            let v = seconds_value(node, kw, OnReject::Use("0 (off)"), d).unwrap_or(0);
            g.garp.master_refresh = (v != 0).then(|| Duration::from_secs(v));
        }
        "vrrp_garp_lower_prio_delay" => {
            if let Some(v) = seconds_value(node, kw, OnReject::Ignore, d) {
                g.garp.lower_prio_delay = Some(Duration::from_secs(v));
            }
        }
        "vrrp_garp_lower_prio_repeat" => {
            if let Some(v) = lower_prio_repeat_value(node, kw, d) {
                g.garp.lower_prio_repeat = Some(v);
            }
        }
        "vrrp_garp_master_refresh_repeat" => {
            g.garp.master_refresh_repeat =
                repeat_value(node, kw, d).unwrap_or(g.garp.master_refresh_repeat)
        }
        "vrrp_garp_interval" | "vrrp_gna_interval" => {
            let Some(w) = one_value(node, d) else { return };
            if let Some(us) = compat::take(
                read_decimal(&w.text, 1, u64::from(u32::MAX), 6, true),
                w,
                kw,
                OnReject::Ignore,
                compat::show_micros,
                d,
            ) {
                let v = Duration::from_micros(us);
                if kw == "vrrp_garp_interval" {
                    g.garp.interval = v;
                } else {
                    g.garp.gna_interval = v;
                }
            }
        }
        "vrrp_mcast_group4" | "vrrp_mcast_group6" => {
            let Some(w) = one_value(node, d) else { return };
            match source_address(w, kw, d) {
                Some(IpAddr::V4(a)) if kw == "vrrp_mcast_group4" && a.is_multicast() => {
                    g.mcast_group4 = a
                }
                Some(IpAddr::V6(a)) if kw == "vrrp_mcast_group6" && a.is_multicast() => {
                    g.mcast_group6 = a
                }
                Some(_) => d.warn(
                    &w.span,
                    format!("bad {kw} '{}': not a multicast address of its family; ignored, as keepalived does", w.text),
                ),
                None => {}
            }
        }
        "enable_script_security" => {
            flag_args(node, d);
            g.enable_script_security = true;
        }
        "vrrp_strict" => {
            flag_args(node, d);
            g.vrrp_strict = true;
        }
        "script_user" => g.script_user = run_as(node, &node.args, d),
        "plugin_dir" => {
            if let Some(path) = plugin_search_path(node, d) {
                g.plugin_path = path;
            }
        }
        "plugin_cache_dir" => {
            if let Some(p) = one_arg(node, d).and_then(|w| absolute_dir(w, d)) {
                g.plugin_cache_dir = Some(p);
            }
        }
        "plugin_memory_limit" => {
            if let Some(v) = one_arg(node, d).and_then(|w| {
                size(
                    w,
                    "plugin_memory_limit",
                    def::MIN_MEMORY_LIMIT,
                    def::MAX_MEMORY_LIMIT,
                    d,
                )
            }) {
                g.plugin_memory_limit = v;
            }
        }
        "plugin_timeout_default" => {
            if let Some(v) = one_arg(node, d)
                .and_then(|w| seconds(w, "plugin_timeout_default", def::MAX_SCRIPT_INTERVAL, d))
            {
                if v.is_zero() {
                    d.error(node.span(), "plugin_timeout_default must be more than 0");
                } else {
                    g.plugin_timeout_default = Some(v);
                }
            }
        }
        // Applied while the configuration is read (it governs the includes that follow).
        "include_check" => {}
        "lvs_backend" => {
            if let Some(w) = one_arg(node, d) {
                match w.text.as_str() {
                    "auto" => g.lvs_backend = LvsBackendChoice::Auto,
                    "ipvs" => g.lvs_backend = LvsBackendChoice::Ipvs,
                    "nftables" => g.lvs_backend = LvsBackendChoice::Nftables,
                    other => d.error(
                        &w.span,
                        format!("bad lvs_backend '{other}': expected auto, ipvs or nftables"),
                    ),
                }
            }
        }
        "lvs_sync_daemon" => super::lvs_sync::apply(node, &mut g.lvs_sync_daemon, d),
        "metrics_listen" => {
            if let Some(w) = one_arg(node, d) {
                g.metrics_listen = listen_address(w, d);
            }
        }
        "process_monitor_rcv_bufs" => {
            let Some(w) = node.args.first() else {
                d.warn(
                    node.span(),
                    "process_monitor_rcv_bufs size missing; ignored, as keepalived does",
                );
                return;
            };
            let size = take_number(
                compat::read_unsigned(&w.text, 0, u64::from(u32::MAX), false),
                w,
                kw,
                OnReject::Ignore,
                d,
            );
            // keepalived: 0 leaves the kernel's default.
            if let Some(size) = size.filter(|&s| s != 0) {
                g.process_monitor_rcv_bufs = u32::try_from(size).ok();
            }
        }
        "process_monitor_rcv_bufs_force" => {
            if let Some(on) = compat::boolean(node, d) {
                g.process_monitor_rcv_bufs_force = on;
            }
        }
        _ if super::alerts::apply(g, node, d) => {}
        _ if super::protocol_threads::apply(
            &mut g.protocol_threads,
            &mut g.checker_threads,
            node,
            d,
        ) => {}
        _ => unknown(node, "global_defs", d),
    }
}

/// `net_namespace NAME` (a top-level keyword, as in keepalived): the first one counts.
pub(crate) fn net_namespace(node: &Node, out: &mut Option<String>, d: &mut Diags) {
    no_block(node, d);
    let Some(name) = node.args.first() else {
        d.warn(
            node.span(),
            "net_namespace name missing; ignored, as keepalived does",
        );
        return;
    };
    if out.is_some() {
        d.warn(
            node.span(),
            format!(
                "duplicate net_namespace definition '{}'; ignored, as keepalived does",
                name.text
            ),
        );
        return;
    }
    if name.text.contains('/') || name.text == "." || name.text == ".." {
        d.error(
            &name.span,
            format!(
                "bad net_namespace '{}': a name under /run/netns, not a path",
                name.text
            ),
        );
        return;
    }
    *out = Some(name.text.clone());
}

/// `plugin_dir DIR...`: the plugin search path, in order; every directory absolute. A
/// directory named twice is looked in once (a warning); any bad one refuses the line.
fn plugin_search_path(node: &Node, d: &mut Diags) -> Option<PluginSearchPath> {
    no_block(node, d);
    if node.args.is_empty() {
        d.error(
            node.span(),
            "plugin_dir needs at least one directory (absolute path)",
        );
        return None;
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut bad = false;
    for w in &node.args {
        match absolute_dir(w, d) {
            Some(p) if dirs.contains(&p) => d.warn(
                &w.span,
                format!("plugin_dir: '{}' named twice; looked in once", w.text),
            ),
            Some(p) => dirs.push(p),
            None => bad = true,
        }
    }
    if bad {
        return None;
    }
    PluginSearchPath::new(dirs)
}

/// `IP:PORT` (`127.0.0.1:9650`, `[::1]:9650`): a literal address and a port other than 0.
fn listen_address(w: &crate::lexer::Word, d: &mut Diags) -> Option<SocketAddr> {
    match w.text.parse::<SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Some(addr),
        Ok(_) => {
            d.error(&w.span, format!("bad metrics_listen '{}': port 0", w.text));
            None
        }
        Err(_) => {
            d.error(
                &w.span,
                format!(
                    "bad metrics_listen '{}': expected IP:PORT (127.0.0.1:9650, [::1]:9650)",
                    w.text
                ),
            );
            None
        }
    }
}

fn absolute_dir(w: &crate::lexer::Word, d: &mut Diags) -> Option<PathBuf> {
    let p = PathBuf::from(&w.text);
    if p.is_absolute() {
        Some(p)
    } else {
        d.error(&w.span, format!("'{}' must be an absolute path", w.text));
        None
    }
}
