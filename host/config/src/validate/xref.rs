//! Cross-references, settled as keepalived settles them: a name defined twice keeps its
//! first definition; `track_script` finds only a `vrrp_script` defined before it; sync
//! groups keep the members that exist and are in no other group, and go when none is
//! left; tracking weights are cleared in sync groups and for the address owner. VRID
//! clashes are errors (keepalived refuses them too).

use std::collections::{HashMap, HashSet};

use super::Places;
use crate::diag::{Diags, Span};
use crate::model::{
    TrackInterface, TrackProcess, TrackScript, VrrpInstance, VrrpScript, VrrpSyncGroup,
    VrrpTrackProcess, WeightOverride,
};

/// A `track_script` or `track_process` line, for the checks they share.
trait NamedTrack {
    /// What it names (`script`, `process`) and the section defining that (`vrrp_script`).
    const KIND: (&'static str, &'static str);
    fn name(&self) -> &str;
    fn weight_mut(&mut self) -> Option<&mut WeightOverride>;
}

impl NamedTrack for TrackScript {
    const KIND: (&'static str, &'static str) = ("script", "vrrp_script");
    fn name(&self) -> &str {
        &self.name
    }
    fn weight_mut(&mut self) -> Option<&mut WeightOverride> {
        self.weight.as_mut()
    }
}

impl NamedTrack for TrackProcess {
    const KIND: (&'static str, &'static str) = ("process", "vrrp_track_process");
    fn name(&self) -> &str {
        &self.name
    }
    fn weight_mut(&mut self) -> Option<&mut WeightOverride> {
        self.weight.as_mut()
    }
}

/// Resolves the references between the built items, dropping what keepalived drops.
pub(crate) fn resolve(
    scripts: &mut Vec<(VrrpScript, Places)>,
    processes: &mut Vec<(VrrpTrackProcess, Places)>,
    instances: &mut Vec<(VrrpInstance, Places)>,
    groups: &mut Vec<(VrrpSyncGroup, Places)>,
    d: &mut Diags,
) {
    first_definitions("vrrp_script", scripts, |s| &s.name, d);
    first_definitions("vrrp_track_process", processes, |p| &p.name, d);
    first_definitions("vrrp_instance", instances, |i| &i.name, d);
    first_definitions("vrrp_sync_group", groups, |g| &g.name, d);

    let script_at: HashMap<String, (usize, bool)> = scripts
        .iter()
        .map(|(s, p)| (s.name.clone(), (p.ordinal, s.weight_reverse)))
        .collect();
    let process_at: HashMap<String, (usize, bool)> = processes
        .iter()
        .map(|(p, places)| (p.name.clone(), (places.ordinal, p.weight_reverse)))
        .collect();
    for (inst, places) in instances.iter_mut() {
        let owner = format!("vrrp_instance {}", inst.name);
        let ordinal = places.ordinal;
        resolve_tracks(
            &owner,
            ordinal,
            &mut inst.track_scripts,
            &mut places.track_scripts,
            &script_at,
            d,
        );
        resolve_tracks(
            &owner,
            ordinal,
            &mut inst.track_processes,
            &mut places.track_processes,
            &process_at,
            d,
        );
    }
    for (group, places) in groups.iter_mut() {
        let owner = format!("vrrp_sync_group {}", group.name);
        let ordinal = places.ordinal;
        resolve_tracks(
            &owner,
            ordinal,
            &mut group.track_scripts,
            &mut places.track_scripts,
            &script_at,
            d,
        );
        resolve_tracks(
            &owner,
            ordinal,
            &mut group.track_processes,
            &mut places.track_processes,
            &process_at,
            d,
        );
    }

    resolve_members(groups, instances, d);
    tracking_weights(scripts, instances, groups, d);
    group_process_weights(processes, instances, groups, d);
    group_start_states(instances, groups, d);

    let tracked: HashSet<&str> = instances
        .iter()
        .flat_map(|(i, _)| &i.track_scripts)
        .chain(groups.iter().flat_map(|(g, _)| &g.track_scripts))
        .map(|t| t.name.as_str())
        .collect();
    for (s, p) in scripts.iter() {
        if !tracked.contains(s.name.as_str()) {
            d.warn(
                &p.name,
                format!("vrrp_script {} is not tracked by any instance or sync group; it is not run (keepalived removes it too)", s.name),
            );
        }
    }

    vrid_clashes(instances, d);
}

/// Keeps the first item of each name (keepalived skips later `vrrp_instance` and
/// `vrrp_sync_group` blocks of the same name; trackers find the first `vrrp_script`).
fn first_definitions<T>(
    kind: &str,
    items: &mut Vec<(T, Places)>,
    name: impl Fn(&T) -> &String,
    d: &mut Diags,
) {
    let mut seen: HashMap<String, Span> = HashMap::new();
    items.retain(|(item, places)| {
        let n = name(item);
        match seen.get(n) {
            Some(first) => {
                d.warn(
                    &places.name,
                    format!("{kind} {n} is defined twice (first at {first}); this definition is ignored, as keepalived does"),
                );
                false
            }
            None => {
                seen.insert(n.clone(), places.name.clone());
                true
            }
        }
    });
}

/// Keeps the `track_script` (`track_process`) lines keepalived keeps: the script (process
/// block) exists and was defined earlier, and the line is not a repeat. A weight given
/// without `reverse` takes the definition's reverse flag. `defined_at`: each definition's
/// ordinal and reverse flag; `ordinal`: the owner's.
fn resolve_tracks<T: NamedTrack>(
    owner: &str,
    ordinal: usize,
    tracks: &mut Vec<T>,
    places: &mut Vec<super::track::TrackPlace>,
    defined_at: &HashMap<String, (usize, bool)>,
    d: &mut Diags,
) {
    let (kind, section) = T::KIND;
    let mut kept: Vec<T> = Vec::new();
    let mut kept_places = Vec::new();
    for (mut t, place) in tracks.drain(..).zip(places.drain(..)) {
        let name = t.name().to_owned();
        match defined_at.get(&name) {
            None => {
                d.warn(
                    &place.span,
                    format!("{owner} tracks {kind} '{name}', which is not defined; ignored, as keepalived does"),
                );
                continue;
            }
            Some(&(defined, _)) if defined > ordinal => {
                d.warn(
                    &place.span,
                    format!("{section} {name} is defined after {owner}; keepalived does not track it, and neither does wasmalived (move the {section} above {owner})"),
                );
                continue;
            }
            Some(&(_, reverse)) => {
                if let (Some(w), false) = (t.weight_mut(), place.reverse_given) {
                    w.reverse = reverse;
                }
            }
        }
        if kept.iter().any(|k| k.name() == name) {
            d.warn(
                &place.span,
                format!(
                    "{owner} tracks {kind} '{name}' twice; this line is ignored, as keepalived does"
                ),
            );
            continue;
        }
        kept.push(t);
        kept_places.push(place);
    }
    *tracks = kept;
    *places = kept_places;
}

/// keepalived's `sync_group_tracking_init`: a group with an address-owner member tracks its
/// processes with weight 0. (Weighted `track_process` lines of instances stay, in groups
/// and at priority 255 too — keepalived does not clear them; the priority rules ignore
/// weights at 255.)
fn group_process_weights(
    processes: &[(VrrpTrackProcess, Places)],
    instances: &[(VrrpInstance, Places)],
    groups: &mut [(VrrpSyncGroup, Places)],
    d: &mut Diags,
) {
    for (g, places) in groups.iter_mut() {
        let has_owner = instances
            .iter()
            .any(|(i, _)| i.priority.is_owner() && g.instances.contains(&i.name));
        if !has_owner {
            continue;
        }
        for t in &mut g.track_processes {
            let weight = processes
                .iter()
                .find(|(p, _)| p.name == t.name)
                .map_or(0, |(p, _)| t.effective_weight(p).0);
            if weight != 0 {
                d.warn(&places.name, format!("vrrp_sync_group {}: a member has priority 255, so the weight of track_process {} is cleared, as keepalived does", g.name, t.name));
                t.weight = Some(WeightOverride {
                    weight: 0,
                    reverse: false,
                });
            }
        }
    }
}

/// Keeps the members that exist and are in no earlier group; removes groups left empty.
fn resolve_members(
    groups: &mut Vec<(VrrpSyncGroup, Places)>,
    instances: &[(VrrpInstance, Places)],
    d: &mut Diags,
) {
    let mut member_of: HashMap<String, String> = HashMap::new();
    groups.retain_mut(|(g, places)| {
        let mut kept = Vec::new();
        for (member, at) in g.instances.iter().zip(&places.members) {
            if !instances.iter().any(|(i, _)| &i.name == member) {
                d.warn(
                    at,
                    format!("vrrp_sync_group {} names instance '{member}', which is not defined; ignored, as keepalived does", g.name),
                );
            } else if let Some(other) = member_of.get(member) {
                d.warn(at, format!("instance {member} is already in vrrp_sync_group {other}; an instance can be in one group only, so it is ignored here, as keepalived does"));
            } else {
                member_of.insert(member.clone(), g.name.clone());
                kept.push(member.clone());
            }
        }
        g.instances = kept;
        match g.instances.len() {
            0 => {
                d.warn(
                    &places.name,
                    format!("vrrp_sync_group {} has no instances; removed, as keepalived does", g.name),
                );
                false
            }
            1 => {
                d.warn(
                    &places.name,
                    format!("vrrp_sync_group {} has only one instance", g.name),
                );
                true
            }
            _ => true,
        }
    });
}

/// keepalived ignores tracking weights where they would break a sync group or the address
/// owner: in a member of a group without `sync_group_tracking_weight`, weighted scripts
/// are dropped and interface weights cleared; at priority 255 weighted scripts and
/// interfaces are dropped; a group with an owner member clears its own weights.
fn tracking_weights(
    scripts: &[(VrrpScript, Places)],
    instances: &mut [(VrrpInstance, Places)],
    groups: &mut [(VrrpSyncGroup, Places)],
    d: &mut Diags,
) {
    let script_weight = |t: &TrackScript| {
        scripts
            .iter()
            .find(|(s, _)| s.name == t.name)
            .map_or(0, |(s, _)| t.effective_weight(s).0)
    };
    for (inst, places) in instances.iter_mut() {
        let group = groups
            .iter()
            .find(|(g, _)| g.instances.contains(&inst.name));
        let sync = group.is_some_and(|(g, _)| !g.tracking_weight);
        let owner = inst.priority.is_owner();
        if !sync && !owner {
            continue;
        }
        let why = if sync {
            format!(
                "it is in vrrp_sync_group {}",
                group.map_or("", |(g, _)| g.name.as_str())
            )
        } else {
            "it has priority 255 (address owner)".to_owned()
        };
        let at = places.name.clone();
        let mut kept: Vec<TrackInterface> = Vec::new();
        for mut t in inst.track_interfaces.drain(..) {
            if t.weight == 0 {
                kept.push(t);
            } else if sync {
                d.warn(&at, format!("vrrp_instance {}: the weight of track_interface {} is ignored because {why}; using weight 0, as keepalived does", inst.name, t.name));
                t.weight = 0;
                kept.push(t);
            } else {
                d.warn(&at, format!("vrrp_instance {}: track_interface {} with a weight is ignored because {why}, as keepalived does", inst.name, t.name));
            }
        }
        inst.track_interfaces = kept;
        // keepalived: a file tracked with the default weight 1 becomes unweighted; any
        // other weight drops the line.
        let files = std::mem::take(&mut inst.track_files);
        for mut t in files {
            if t.weight == crate::defaults::TRACK_FILE_WEIGHT {
                d.warn(&at, format!("vrrp_instance {}: the weight of track_file {} is ignored because {why}; using weight 0, as keepalived does (write weight 0 to say so)", inst.name, t.name));
                t.weight = 0;
                inst.track_files.push(t);
            } else if t.weight != 0 {
                d.warn(&at, format!("vrrp_instance {}: track_file {} with weight {} is ignored because {why}, as keepalived does", inst.name, t.name, t.weight));
            } else {
                inst.track_files.push(t);
            }
        }
        let before = std::mem::take(&mut inst.track_scripts);
        for t in before {
            if script_weight(&t) != 0 {
                d.warn(&at, format!("vrrp_instance {}: track_script {} with a weight is ignored because {why}, as keepalived does", inst.name, t.name));
            } else {
                inst.track_scripts.push(t);
            }
        }
    }
    for (g, places) in groups.iter_mut() {
        let has_owner = instances
            .iter()
            .any(|(i, _)| i.priority.is_owner() && g.instances.contains(&i.name));
        if !has_owner {
            continue;
        }
        for t in &mut g.track_scripts {
            if script_weight(t) != 0 {
                d.warn(&places.name, format!("vrrp_sync_group {}: a member has priority 255, so the weight of track_script {} is cleared, as keepalived does", g.name, t.name));
                t.weight = Some(WeightOverride {
                    weight: 0,
                    reverse: false,
                });
            }
        }
        for t in &mut g.track_files {
            if t.weight != 0 {
                d.warn(&places.name, format!("vrrp_sync_group {}: a member has priority 255, so the weight of track_file {} is cleared, as keepalived does", g.name, t.name));
                t.weight = 0;
            }
        }
        for t in &mut g.track_interfaces {
            if t.weight != 0 {
                d.warn(&places.name, format!("vrrp_sync_group {}: a member has priority 255, so the weight of track_interface {} is cleared, as keepalived does", g.name, t.name));
                t.weight = 0;
            }
        }
    }
}

/// keepalived starts the members of a sync group as MASTER only if every member is an
/// address owner wanting MASTER: otherwise members wanting MASTER start as BACKUP.
fn group_start_states(
    instances: &mut [(VrrpInstance, Places)],
    groups: &[(VrrpSyncGroup, Places)],
    d: &mut Diags,
) {
    use crate::model::InitialState;
    for (g, places) in groups {
        let members: Vec<usize> = instances
            .iter()
            .enumerate()
            .filter(|(_, (i, _))| g.instances.contains(&i.name))
            .map(|(n, _)| n)
            .collect();
        let want_master = members
            .iter()
            .any(|&n| instances[n].0.initial_state == InitialState::Master);
        let not_all_owners = members.iter().any(|&n| {
            let i = &instances[n].0;
            i.initial_state == InitialState::Backup || !i.priority.is_owner()
        });
        if !(want_master && not_all_owners) {
            continue;
        }
        for &n in &members {
            let i = &mut instances[n].0;
            if i.initial_state == InitialState::Master {
                d.warn(
                    &places.name,
                    format!("vrrp_sync_group {}: not every member is an address owner starting as MASTER, so vrrp_instance {} starts as BACKUP, as keepalived does", g.name, i.name),
                );
                i.initial_state = InitialState::Backup;
            }
        }
    }
}

fn vrid_clashes(instances: &[(VrrpInstance, Places)], d: &mut Diags) {
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
                        "vrrp_instance {} uses interface {}, VRID {} and {:?} like vrrp_instance {} ({}); they would receive each other's adverts (keepalived refuses this too)",
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
