//! `vrrp_sync_group`: members move together, by keepalived's rules (`vrrp_sync.c`,
//! `vrrp_scheduler.c`), applied synchronously to the member instances the [`Router`] owns —
//! no messages, so no member can miss a decision.
//!
//! - Fault: when one member's *own* tracking faults it, every other member is put in Fault
//!   too (keepalived: "if one instance of the group goes to fault, all go"), and they leave it
//!   together when no member's own tracking is faulted any more. A Fault the group caused
//!   never keeps the group in Fault.
//! - Group notify hooks (`notify_master`/`_backup`/`_fault`/`notify` inside the group) run when
//!   the group as a whole changes state ([`group_state`]): FAULT as soon as one member is in
//!   Fault, MASTER / BACKUP once every member is.
//! - Roles move together. Every member of a group with two or more running members is *held*
//!   ([`crate::vrrp::Instance::set_group_hold`]): when its master-down timer fires it stays
//!   Backup wanting MASTER (keepalived `wantstate`).
//!   - `vrrp_sync_can_goto_master`: the group goes MASTER only if it already is, or every
//!     other member is Master or wants to be; then every member is forced to MASTER.
//!     Otherwise the wish waits (the member re-times out, and the decision is taken again
//!     when the last member wants MASTER). "Prefer backup state to avoid thrashing": with
//!     mixed priorities (VI_1 higher on node A, VI_2 higher on node B) the first node whose
//!     members all time out takes both; the other node's higher member keeps wanting MASTER
//!     but its sibling accepts the adverts and never does.
//!   - `vrrp_sync_master`: a member that becomes Master by itself (the address owner, or
//!     before it was held) forces the others to MASTER.
//!   - `vrrp_sync_backup`: a Master that steps down for a higher-priority advert forces the
//!     other members to BACKUP (no priority-0 advert, as keepalived's
//!     `vrrp_state_leave_master(.., false)`).
//!
//!   The group's role (keepalived `sgroup->state`) guards both so a rule fires once per change;
//!   transitions a rule caused ([`Reason::SyncGroup`]) never trigger a rule again.
//! - Maintenance (the operator's, by instance name) of one member keeps the whole group out
//!   of MASTER: its siblings are blocked (`block_for_maintenance`), so an address owner
//!   does not take over by itself, and a group found MASTER when a member in maintenance
//!   joins it steps down (`resync`).

use std::time::Instant;

use super::{Event, Hook, HookState, HookTarget, InstanceId, Output, Router};
use crate::vrrp::{Priority, Reason, State};

/// A `vrrp_sync_group` as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupSpec {
    /// Group name.
    pub name: String,
    /// Member instance names, in configuration order.
    pub members: Vec<String>,
}

/// keepalived's `sgroup->state`: the role the group was last synced to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Role {
    #[default]
    Backup,
    Master,
    Fault,
}

/// A group and what the router remembers about it.
#[derive(Debug, Clone)]
pub(super) struct Group {
    spec: SyncGroupSpec,
    role: Role,
    /// The state its hooks last ran for.
    hook_state: Option<HookState>,
}

/// The state of a group as a whole, from its members' states: FAULT if any member is,
/// MASTER/BACKUP when all members agree, `None` while they are in transition.
pub fn group_state(states: &[Option<State>]) -> Option<HookState> {
    if states.contains(&Some(State::Fault)) {
        return Some(HookState::Fault);
    }
    if !states.is_empty() && states.iter().all(|s| *s == Some(State::Master)) {
        return Some(HookState::Master);
    }
    if !states.is_empty() && states.iter().all(|s| *s == Some(State::Backup)) {
        return Some(HookState::Backup);
    }
    None
}

/// Replace the configured groups, keeping the role and hook state of groups that stay.
pub(super) fn replace<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    specs: Vec<SyncGroupSpec>,
) {
    let old = std::mem::take(&mut router.groups);
    router.groups = specs
        .into_iter()
        .map(|spec| {
            let kept = old.iter().find(|g| g.spec.name == spec.name);
            Group {
                role: kept.map(|g| g.role).unwrap_or_default(),
                hook_state: kept.and_then(|g| g.hook_state),
                spec,
            }
        })
        .collect();
}

/// The running members of group `g`, in configuration order.
fn members<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &Router<V, R>,
    g: usize,
) -> Vec<InstanceId> {
    router
        .groups
        .get(g)
        .map(|group| {
            group
                .spec
                .members
                .iter()
                .filter_map(|name| router.find_by_name(name))
                .collect()
        })
        .unwrap_or_default()
}

/// The group instance `id` belongs to (keepalived allows one).
fn group_of<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &Router<V, R>,
    id: InstanceId,
) -> Option<usize> {
    let name = &router.slot(id)?.spec.name;
    router
        .groups
        .iter()
        .position(|g| g.spec.members.contains(name))
}

/// Membership changed (start-up, reload, an instance started or stopped): hold the members
/// of groups with two or more running members (keepalived drops groups of one), release the
/// others, and re-apply the Fault, hook and MASTER rules of every group.
pub(super) fn resync<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
) {
    let mut held: Vec<InstanceId> = Vec::new();
    for g in 0..router.groups.len() {
        let m = members(router, g);
        if m.len() >= 2 {
            held.extend(m);
        }
    }
    let ids: Vec<InstanceId> = router.ids().collect();
    for id in ids {
        let hold = held.contains(&id);
        if let Some(slot) = router.slot_mut(id) {
            if slot.held != hold {
                slot.held = hold;
                slot.core.set_group_hold(hold);
            }
        }
    }
    block_for_maintenance(router);
    for g in 0..router.groups.len() {
        let m = members(router, g);
        apply_group_fault(router, now, g);
        // `vrrp_sync_master` for a member that is Master already (an address owner that
        // started before its sibling, a group the reload created): the others follow —
        // unless a member is in maintenance (it joined later, or was renamed into the
        // group): then the group cannot be MASTER and its Masters step down.
        if let Some(master) = m.iter().copied().find(|id| is_master(router, *id)) {
            if m.len() >= 2 && m.iter().any(|id| !is_master(router, *id)) {
                if in_maintenance(router, &m) {
                    sync_backup(router, now, g, master);
                } else {
                    sync_master(router, now, g, master);
                }
            }
        }
        notify_group(router, g);
        if let Some(first) = m.first() {
            try_master(router, now, g, *first);
        }
    }
}

/// Maintenance of one member keeps the whole group out of MASTER: every other member of a
/// group with two or more running members, one of which the operator put in maintenance
/// (by name: it may start later), is blocked ([`crate::vrrp::Instance::set_group_blocked`]).
pub(super) fn block_for_maintenance<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
) {
    let mut blocked: Vec<InstanceId> = Vec::new();
    for g in 0..router.groups.len() {
        let m = members(router, g);
        if m.len() < 2 {
            continue;
        }
        for id in &m {
            let sibling_in_maintenance = m.iter().any(|other| {
                other != id
                    && router
                        .slot(*other)
                        .is_some_and(|s| router.maintenance.contains(&s.spec.name))
            });
            if sibling_in_maintenance {
                blocked.push(*id);
            }
        }
    }
    let ids: Vec<InstanceId> = router.ids().collect();
    for id in ids {
        let block = blocked.contains(&id);
        if let Some(slot) = router.slot_mut(id) {
            slot.core.set_group_blocked(block);
        }
    }
}

/// Whether any of `members` is in the operator's maintenance (by name).
fn in_maintenance<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &Router<V, R>,
    members: &[InstanceId],
) -> bool {
    members.iter().any(|id| {
        router
            .slot(*id)
            .is_some_and(|s| router.maintenance.contains(&s.spec.name))
    })
}

/// Set the group's role to BACKUP because of `id` and force every Master member there
/// (keepalived `vrrp_sync_backup`, no priority-0 advert).
fn sync_backup<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
    g: usize,
    id: InstanceId,
) {
    let Some(group) = router.groups.get(g) else {
        return;
    };
    let name = group.spec.name.clone();
    set_role(router, g, Role::Backup);
    router.outputs.push_back(Output::Event(Event::GroupSynced {
        group: name,
        instance: id,
        to: State::Backup,
    }));
    for member in members(router, g) {
        if let Some(slot) = router.slot_mut(member) {
            slot.core.force_backup(now);
        }
    }
}

fn is_master<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &Router<V, R>,
    id: InstanceId,
) -> bool {
    router
        .slot(id)
        .is_some_and(|s| s.core.state() == State::Master)
}

/// Set the group's role to MASTER because of `id` and force every other member there.
fn sync_master<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
    g: usize,
    id: InstanceId,
) {
    let Some(group) = router.groups.get(g) else {
        return;
    };
    let name = group.spec.name.clone();
    set_role(router, g, Role::Master);
    router.outputs.push_back(Output::Event(Event::GroupSynced {
        group: name,
        instance: id,
        to: State::Master,
    }));
    for member in members(router, g) {
        if let Some(slot) = router.slot_mut(member) {
            slot.core.force_master(now);
        }
    }
}

/// Instance `id`'s own Fault changed: the group follows.
pub(super) fn propagate_fault<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
    id: InstanceId,
) {
    if let Some(g) = group_of(router, id) {
        apply_group_fault(router, now, g);
    }
}

/// Give every member of group `g` the group's Fault cause: the first member whose own
/// tracking faults it.
fn apply_group_fault<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
    g: usize,
) {
    let m = members(router, g);
    let Some(group) = router.groups.get(g) else {
        return;
    };
    let name = group.spec.name.clone();
    let cause = m.iter().find_map(|id| {
        let slot = router.slot(*id)?;
        slot.tracking_fault
            .as_ref()
            .map(|_| format!("{name}: {} is in Fault", slot.spec.name))
    });
    for id in m {
        let changed = router.slot_mut(id).is_some_and(|slot| {
            let changed = slot.group_fault != cause;
            slot.group_fault = cause.clone();
            changed
        });
        if changed {
            router.sync_fault(now, id);
        }
    }
}

/// A member's state change was reported: keepalived's transition table for a member's own
/// (not forced) change, then the group hooks.
pub(super) fn on_state_changed<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
    id: InstanceId,
    from: State,
    to: State,
    reason: &Reason,
) {
    let Some(g) = group_of(router, id) else {
        return;
    };
    if *reason != Reason::SyncGroup {
        follow(router, now, g, id, from, to);
    }
    notify_group(router, g);
}

/// Member `id`, as Master, heard a lower-priority advert: its other members announce their
/// VIPs again too (keepalived `vrrp_state_master_rx`). The lower node had taken over (a
/// partition, a stall); its members yield together on this member's answer, so this node
/// never hears the others' adverts — yet hosts' neighbour caches point at the lower node
/// for their addresses as well.
pub(super) fn on_lower_priority_advert<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
    id: InstanceId,
) {
    let Some(g) = group_of(router, id) else {
        return;
    };
    let m = members(router, g);
    if m.len() < 2 {
        return;
    }
    for other in m.into_iter().filter(|other| *other != id) {
        if let Some(slot) = router.slot_mut(other) {
            slot.core.reannounce_after_lower_priority(now);
        }
    }
}

/// A held Backup's master-down timer fired.
pub(super) fn on_want_master<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
    id: InstanceId,
) {
    if let Some(g) = group_of(router, id) {
        try_master(router, now, g, id);
    }
}

/// Would `id` go MASTER if it could (keepalived `wantstate == VRRP_STATE_MAST`)?
fn wants_master<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &Router<V, R>,
    id: InstanceId,
) -> bool {
    router.slot(id).is_some_and(|slot| match slot.core.state() {
        State::Master => true,
        State::Backup => slot.core.wants_master(),
        State::Initialize | State::Fault => false,
    })
}

/// keepalived `vrrp_sync_can_goto_master` + `vrrp_sync_master` for a held Backup whose
/// master-down timer fired: the group goes MASTER if it already is, or if every other
/// member is Master or wants to be.
fn try_master<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
    g: usize,
    id: InstanceId,
) {
    if !wants_master(router, id) {
        return;
    }
    let m = members(router, g);
    let Some(group) = router.groups.get(g) else {
        return;
    };
    let all_want = m
        .iter()
        .all(|other| *other == id || wants_master(router, *other));
    if group.role != Role::Master && !all_want {
        return;
    }
    sync_master(router, now, g, id);
}

/// keepalived's `VRRP_TSM` rules for a member's own state change.
fn follow<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    now: Instant,
    g: usize,
    id: InstanceId,
    from: State,
    to: State,
) {
    let Some(group) = router.groups.get(g) else {
        return;
    };
    let (role, name) = (group.role, group.spec.name.clone());
    let others: Vec<InstanceId> = members(router, g)
        .into_iter()
        .filter(|m| *m != id)
        .collect();
    match (from, to) {
        // `vrrp_sync_master`: a member became Master by itself (address owner, or not held
        // yet): the others follow.
        (from, State::Master) if from != State::Master && role != Role::Master => {
            sync_master(router, now, g, id);
        }
        // `vrrp_sync_backup`: a Master stepped down for a higher priority: the others follow,
        // without a priority-0 advert.
        (State::Master, State::Backup) => {
            if role == Role::Backup {
                return;
            }
            set_role(router, g, Role::Backup);
            router.outputs.push_back(Output::Event(Event::GroupSynced {
                group: name,
                instance: id,
                to: State::Backup,
            }));
            for other in others {
                if let Some(slot) = router.slot_mut(other) {
                    slot.core.force_backup(now);
                }
            }
        }
        // Fault moves the whole group (above); when it clears the members come back as
        // Backups and go MASTER together through `try_master`.
        (_, State::Fault) => set_role(router, g, Role::Fault),
        _ => {}
    }
}

fn set_role<V: Clone + PartialEq, R: Clone + PartialEq>(
    router: &mut Router<V, R>,
    g: usize,
    role: Role,
) {
    if let Some(group) = router.groups.get_mut(g) {
        group.role = role;
    }
}

/// Run the group's hooks when its overall state (from its members' reported states)
/// changed.
fn notify_group<V: Clone + PartialEq, R: Clone + PartialEq>(router: &mut Router<V, R>, g: usize) {
    let states: Vec<Option<State>> = members(router, g)
        .into_iter()
        .map(|id| router.slot(id).map(|s| s.reported))
        .collect();
    let Some(now_state) = group_state(&states) else {
        return;
    };
    let Some(group) = router.groups.get_mut(g) else {
        return;
    };
    if group.hook_state == Some(now_state) {
        return;
    }
    group.hook_state = Some(now_state);
    let name = group.spec.name.clone();
    router.outputs.push_back(Output::Hook(Hook {
        target: HookTarget::Group(name),
        state: now_state,
        priority: Priority::RELEASE,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_state_is_fault_on_any_and_master_or_backup_when_all_agree() {
        let m = Some(State::Master);
        let b = Some(State::Backup);
        let f = Some(State::Fault);
        assert_eq!(group_state(&[m, m]), Some(HookState::Master));
        assert_eq!(group_state(&[b, b]), Some(HookState::Backup));
        assert_eq!(group_state(&[m, f]), Some(HookState::Fault));
        assert_eq!(group_state(&[m, b]), None);
        assert_eq!(group_state(&[m, None]), None);
        assert_eq!(group_state(&[]), None);
    }
}
