//! `global_defs { … }` (all such blocks, merged in order).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::values::{flag, int, one_arg, seconds, size, uint};
use super::{track::run_as, unknown};
use crate::defaults as def;
use crate::diag::Diags;
use crate::lvs::LvsBackendChoice;
use crate::model::GlobalDefs;
use crate::parser::Node;
use wasmalived_proto::vrrp::types::Version;

/// Largest GARP delay/refresh accepted (keepalived's timer limit).
const MAX_GARP_DELAY: Duration = Duration::from_secs(86_400);

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
    g
}

fn apply(g: &mut GlobalDefs, node: &Node, d: &mut Diags) {
    match node.keyword.text.as_str() {
        "router_id" => {
            if let Some(w) = one_arg(node, d) {
                g.router_id = Some(w.text.clone());
            }
        }
        "vrrp_version" => {
            if let Some(v) = one_arg(node, d).and_then(|w| int(w, "vrrp_version", 2, 3, d)) {
                g.vrrp_version = if v == 2 { Version::V2 } else { Version::V3 };
            }
        }
        "vrrp_garp_master_delay" => set_secs(&mut g.garp.master_delay, node, d),
        "vrrp_garp_master_repeat" => set_uint(&mut g.garp.master_repeat, node, 1, d),
        "vrrp_garp_master_refresh" => {
            if let Some(v) = one_arg(node, d)
                .and_then(|w| seconds(w, "vrrp_garp_master_refresh", MAX_GARP_DELAY, d))
            {
                g.garp.master_refresh = (!v.is_zero()).then_some(v);
            }
        }
        "vrrp_garp_master_refresh_repeat" => {
            set_uint(&mut g.garp.master_refresh_repeat, node, 1, d)
        }
        "vrrp_garp_interval" => set_secs(&mut g.garp.interval, node, d),
        "vrrp_gna_interval" => set_secs(&mut g.garp.gna_interval, node, d),
        "vrrp_mcast_group4" => {
            if let Some(w) = one_arg(node, d) {
                match w.text.parse::<IpAddr>() {
                    Ok(IpAddr::V4(a)) if a.is_multicast() => g.mcast_group4 = a,
                    _ => d.error(
                        &w.span,
                        format!(
                            "bad vrrp_mcast_group4 '{}': not an IPv4 multicast address",
                            w.text
                        ),
                    ),
                }
            }
        }
        "vrrp_mcast_group6" => {
            if let Some(w) = one_arg(node, d) {
                match w.text.parse::<IpAddr>() {
                    Ok(IpAddr::V6(a)) if a.is_multicast() => g.mcast_group6 = a,
                    _ => d.error(
                        &w.span,
                        format!(
                            "bad vrrp_mcast_group6 '{}': not an IPv6 multicast address",
                            w.text
                        ),
                    ),
                }
            }
        }
        "enable_script_security" => {
            if let Some(v) = flag(node, d) {
                g.enable_script_security = v;
            }
        }
        "vrrp_strict" => {
            if let Some(v) = flag(node, d) {
                g.vrrp_strict = v;
            }
        }
        "script_user" => g.script_user = run_as(node, &node.args, d),
        "plugin_dir" => {
            if let Some(p) = one_arg(node, d).and_then(|w| absolute_dir(w, d)) {
                g.plugin_dir = p;
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
        _ => unknown(node, "global_defs", d),
    }
}

fn set_secs(target: &mut Duration, node: &Node, d: &mut Diags) {
    if let Some(v) =
        one_arg(node, d).and_then(|w| seconds(w, &node.keyword.text, MAX_GARP_DELAY, d))
    {
        *target = v;
    }
}

fn set_uint(target: &mut u32, node: &Node, min: u32, d: &mut Diags) {
    if let Some(v) = one_arg(node, d).and_then(|w| uint(w, &node.keyword.text, min, 10_000, d)) {
        *target = v;
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
