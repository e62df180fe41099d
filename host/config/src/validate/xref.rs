//! Cross-references: duplicate names, tracked scripts, sync-group members, VRID clashes.

use std::collections::HashMap;

use super::Places;
use crate::diag::{Diags, Span};
use crate::model::{VrrpInstance, VrrpScript, VrrpSyncGroup};

/// Checks references between the built items; reports with the places of the references.
pub(crate) fn check(
    scripts: &[(VrrpScript, Places)],
    instances: &[(VrrpInstance, Places)],
    groups: &[(VrrpSyncGroup, Places)],
    d: &mut Diags,
) {
    duplicates(
        "vrrp_script",
        scripts.iter().map(|(s, p)| (s.name.as_str(), &p.name)),
        d,
    );
    duplicates(
        "vrrp_instance",
        instances.iter().map(|(i, p)| (i.name.as_str(), &p.name)),
        d,
    );
    duplicates(
        "vrrp_sync_group",
        groups.iter().map(|(g, p)| (g.name.as_str(), &p.name)),
        d,
    );

    let script_at: HashMap<&str, usize> = scripts
        .iter()
        .map(|(s, p)| (s.name.as_str(), p.ordinal))
        .collect();
    let tracking = instances
        .iter()
        .map(|(i, p)| (&i.track_scripts, p, "vrrp_instance", i.name.as_str()))
        .chain(
            groups
                .iter()
                .map(|(g, p)| (&g.track_scripts, p, "vrrp_sync_group", g.name.as_str())),
        );
    for (tracks, places, kind, owner) in tracking {
        for (t, at) in tracks.iter().zip(&places.track_scripts) {
            match script_at.get(t.name.as_str()) {
                None => d.error(at, format!("{kind} {owner} tracks script '{}', which is not defined (vrrp_script {} {{ … }})", t.name, t.name)),
                Some(&ordinal) if ordinal > places.ordinal => d.warn(
                    at,
                    format!("vrrp_script {} is defined after {kind} {owner}; wasmalived tracks it, keepalived would ignore it", t.name),
                ),
                Some(_) => {}
            }
        }
    }

    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for (g, places) in groups {
        if g.instances.len() == 1 {
            d.warn(
                &places.name,
                format!("vrrp_sync_group {} has only one instance", g.name),
            );
        }
        for (member, at) in g.instances.iter().zip(&places.members) {
            if !instances.iter().any(|(i, _)| &i.name == member) {
                d.error(
                    at,
                    format!(
                        "vrrp_sync_group {} names instance '{member}', which is not defined",
                        g.name
                    ),
                );
            } else if let Some(other) = member_of.insert(member, &g.name) {
                d.error(at, format!("instance {member} is already in vrrp_sync_group {other}; an instance can be in one group only"));
            }
        }
    }

    for (n, (a, pa)) in instances.iter().enumerate() {
        for (b, pb) in &instances[..n] {
            if a.interface == b.interface
                && a.vrid == b.vrid
                && a.family == b.family
                && same_channel(a, b)
            {
                d.error(
                    &pa.name,
                    format!(
                        "vrrp_instance {} uses interface {}, VRID {} and {:?} like vrrp_instance {} ({}); they would receive each other's adverts",
                        a.name, a.interface, a.vrid, a.family, b.name, pb.name
                    ),
                );
            }
        }
    }
}

/// Whether two instances would share adverts: both multicast, or overlapping unicast peers.
fn same_channel(a: &VrrpInstance, b: &VrrpInstance) -> bool {
    match (a.is_unicast(), b.is_unicast()) {
        (false, false) => true,
        (true, true) => a.unicast_peers.iter().any(|p| b.unicast_peers.contains(p)),
        _ => false,
    }
}

fn duplicates<'a>(kind: &str, items: impl Iterator<Item = (&'a str, &'a Span)>, d: &mut Diags) {
    let mut seen: HashMap<&str, &Span> = HashMap::new();
    for (name, at) in items {
        if let Some(first) = seen.get(name) {
            d.error(
                at,
                format!("{kind} {name} is defined twice (first at {first})"),
            );
        } else {
            seen.insert(name, at);
        }
    }
}
