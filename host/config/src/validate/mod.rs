//! The validation pass: syntax tree → typed [`Config`], defaults applied, cross-references
//! checked. One file per section kind; value parsers in `values`.

mod addresses;
mod alerts;
mod global;
mod instance;
mod lvs;
mod lvs_sync;
mod process;
mod protocol;
mod protocol_threads;
mod routes;
mod script;
mod track;
mod track_file;
mod values;
mod xref;

use super::diag::{Diags, Span};
use super::model::{Config, GlobalDefs};
use super::parser::Node;
use super::route::StaticEntries;

/// Top-level sections keepalived has and this daemon does not implement: reported once per
/// kind as not supported, and skipped.
const UNSUPPORTED_SECTIONS: &[&str] = &[
    "real_server",
    "bfd_instance",
    "static_track_group",
    "linkbeat_interfaces",
    "garp_group",
    "SSL",
];

/// Where a built item and its references were written, for cross-reference messages.
pub(crate) struct Places {
    /// Position among top-level definitions (to tell "defined after").
    pub(crate) ordinal: usize,
    /// The item's name.
    pub(crate) name: Span,
    /// One per `track_script` line, aligned with the item's `track_scripts`.
    pub(crate) track_scripts: Vec<track::TrackPlace>,
    /// One per `track_process` line, aligned with the item's `track_processes`.
    pub(crate) track_processes: Vec<track::TrackPlace>,
    /// One per sync-group member, aligned with `instances`.
    pub(crate) members: Vec<Span>,
    /// The interface name of `use_vmac NAME`, if one was given.
    pub(crate) vmac_name: Option<Span>,
}

impl Places {
    fn new(ordinal: usize, name: Span) -> Self {
        Self {
            ordinal,
            name,
            track_scripts: Vec::new(),
            track_processes: Vec::new(),
            members: Vec::new(),
            vmac_name: None,
        }
    }
}

/// Validates the whole tree. Items with errors are left out (the errors are in `d`).
pub(crate) fn validate(nodes: &[Node], d: &mut Diags) -> Option<Config> {
    let global_nodes: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.keyword.text == "global_defs")
        .collect();
    let global = global::build(&global_nodes, d);

    let mut scripts = Vec::new();
    let mut processes = Vec::new();
    let mut net_namespace: Option<String> = None;
    let mut instances = Vec::new();
    let mut groups = Vec::new();
    let mut virtual_servers = Vec::new();
    let mut virtual_server_groups = Vec::new();
    let mut track_files: Vec<crate::model::TrackFileDef> = Vec::new();
    let mut statics = StaticEntries::default();
    let mut rule_preferences = routes::RulePreferences::default();
    for (ordinal, node) in nodes.iter().enumerate() {
        match node.keyword.text.as_str() {
            "global_defs" => {}
            "virtual_server" => virtual_servers.extend(lvs::build(node, &global, &track_files, d)),
            "virtual_server_group" => virtual_server_groups.extend(lvs::build_group(node, d)),
            "vrrp_script" => scripts.extend(script::build(node, &global, ordinal, d)),
            "vrrp_track_process" => processes.extend(process::build(node, ordinal, d)),
            "net_namespace" => global::net_namespace(node, &mut net_namespace, d),
            // keepalived's ipsets in the namespace: wasmalived uses no ipsets.
            "namespace_with_ipsets" => {}
            "vrrp_instance" => instances.extend(instance::build(
                node,
                &global,
                &track_files,
                ordinal,
                &mut rule_preferences,
                d,
            )),
            "static_ipaddress" => statics.addresses.extend(
                track::block_lines(node, d)
                    .iter()
                    .filter_map(|line| addresses::static_address_line(line, d)),
            ),
            "static_routes" => statics.routes.extend(
                track::block_lines(node, d)
                    .iter()
                    .filter_map(|line| routes::route_line(line, "static route", d)),
            ),
            "static_rules" => {
                for line in track::block_lines(node, d) {
                    statics.rules.extend(routes::rule_line(
                        line,
                        "static rule",
                        &mut rule_preferences,
                        d,
                    ));
                }
            }
            "vrrp_sync_group" => {
                groups.extend(track::build_sync_group(node, &track_files, ordinal, d))
            }
            "track_file" | "vrrp_track_file" => {
                if let Some(def) = track_file::build_def(node, d) {
                    if track_files.iter().any(|t| t.name == def.name) {
                        d.warn(
                            node.span(),
                            format!("track_file {} defined twice; the first definition is used, as keepalived does", def.name),
                        );
                    } else {
                        track_files.push(def);
                    }
                }
            }
            kw if UNSUPPORTED_SECTIONS.contains(&kw) => {
                d.warn_once(kw, node.span(), format!("{kw} is not supported by wasmalived; section skipped (further {kw} sections are skipped silently)"));
            }
            kw => d.warn(
                node.span(),
                format!("unknown or unsupported top-level keyword '{kw}'; ignored"),
            ),
        }
    }
    instance::resolve_vmac_names(&mut instances, d);
    xref::resolve(&mut scripts, &mut processes, &mut instances, &mut groups, d);
    lvs_sync::check_instance(global.lvs_sync_daemon.as_ref(), &instances, d);
    lvs::check_groups(&virtual_servers, &virtual_server_groups, d);
    Some(Config {
        global: GlobalDefs {
            net_namespace,
            ..global
        },
        scripts: scripts.into_iter().map(|(s, _)| s).collect(),
        track_processes: processes.into_iter().map(|(p, _)| p).collect(),
        instances: instances.into_iter().map(|(i, _)| i).collect(),
        sync_groups: groups.into_iter().map(|(g, _)| g).collect(),
        virtual_servers,
        virtual_server_groups,
        track_files,
        statics,
    })
}

/// The name of a named section (`vrrp_script NAME {`), as keepalived reads it (see
/// [`crate::compat::section_name`]).
pub(crate) fn section_name<'n>(node: &'n Node, d: &mut Diags) -> Option<&'n str> {
    crate::compat::section_name(node, d)
}

/// Warns about an unknown or unsupported keyword inside `section`.
pub(crate) fn unknown(node: &Node, section: &str, d: &mut Diags) {
    let kw = &node.keyword.text;
    if node.block.is_some() {
        d.warn_once(
            &format!("{section}/{kw}"),
            node.span(),
            format!("{kw} in {section} is not supported by wasmalived; block skipped"),
        );
    } else {
        d.warn(
            node.span(),
            format!("unknown or unsupported keyword '{kw}' in {section}; ignored"),
        );
    }
}
