//! `vrrp_sync_group`: members move together.
//!
//! - Fault: when one member's own tracking faults it, every other member is put in Fault too
//!   (keepalived: "if one instance of the group goes to fault, all go"), and they leave it
//!   together when no member's own tracking is faulted any more. Instances report whether
//!   their *own* tracking faults them, so a Fault the group caused never keeps the group in
//!   Fault.
//! - Group notify hooks (`notify_master`/`_backup`/`_fault`/`notify` inside the group, with
//!   `GROUP NAME STATE 0` for the generic one) run when the group as a whole changes state:
//!   FAULT as soon as one member is in Fault, MASTER / BACKUP once every member is.
//!
//! Not implemented (documented in the README): keepalived also forces the other members to
//! MASTER or BACKUP when one member changes role; here each member still runs its own
//! election, so members with mixed priorities can end up Master on different nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::instance::{GroupEvent, InstanceMsg, StateEvents};
use crate::notify::{Notifier, NotifyKind, NotifyScripts, NotifyState};
use crate::vrrp::State;

/// One group: its members' inboxes and its hooks.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// Member instance name → inbox.
    pub members: Vec<(String, mpsc::Sender<InstanceMsg>)>,
    /// The group's notify hooks.
    pub notify: NotifyScripts,
}

/// Group name → spec.
type Groups = HashMap<String, GroupSpec>;

/// The sync-group coordinator task.
pub struct SyncGroups {
    events: StateEvents,
    groups: Arc<Mutex<Groups>>,
    task: JoinHandle<()>,
}

impl Drop for SyncGroups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The state of a group as a whole, from its members' states: FAULT if any member is,
/// MASTER/BACKUP when all members agree, `None` while they are in transition.
pub fn group_state(states: &[Option<State>]) -> Option<NotifyState> {
    if states.iter().any(|s| *s == Some(State::Fault)) {
        return Some(NotifyState::Fault);
    }
    if !states.is_empty() && states.iter().all(|s| *s == Some(State::Master)) {
        return Some(NotifyState::Master);
    }
    if !states.is_empty() && states.iter().all(|s| *s == Some(State::Backup)) {
        return Some(NotifyState::Backup);
    }
    None
}

#[derive(Default)]
struct Coordinator {
    own_fault: HashMap<String, bool>,
    states: HashMap<String, State>,
    group_states: HashMap<String, NotifyState>,
    notifiers: HashMap<String, (NotifyScripts, Notifier)>,
}

impl Coordinator {
    fn handle(&mut self, event: GroupEvent, groups: &Groups) {
        if event == GroupEvent::Resync {
            for (group, spec) in groups {
                let faulted = spec
                    .members
                    .iter()
                    .any(|(name, _)| self.own_fault.get(name) == Some(&true));
                if let Some((first, _)) = spec.members.first() {
                    self.propagate_fault(group, spec, first, faulted);
                }
                self.notify_group(group, spec);
            }
            return;
        }
        let instance = match &event {
            GroupEvent::OwnFault { instance, faulted } => {
                self.own_fault.insert(instance.clone(), *faulted);
                instance
            }
            GroupEvent::State { instance, state } => {
                self.states.insert(instance.clone(), *state);
                instance
            }
            GroupEvent::Resync => return,
        };
        for (group, spec) in groups {
            if !spec.members.iter().any(|(name, _)| name == instance) {
                continue;
            }
            if let GroupEvent::OwnFault { faulted, .. } = event {
                self.propagate_fault(group, spec, instance, faulted);
            }
            self.notify_group(group, spec);
        }
    }

    fn propagate_fault(&self, group: &str, spec: &GroupSpec, instance: &str, faulted: bool) {
        let cause = spec
            .members
            .iter()
            .find(|(name, _)| self.own_fault.get(name) == Some(&true))
            .map(|(name, _)| format!("{group}: {name} is in Fault"));
        if faulted && cause.is_some() {
            info!(%group, %instance, "sync group member in Fault: the group follows");
        }
        for (name, inbox) in &spec.members {
            if inbox
                .try_send(InstanceMsg::GroupFault(cause.clone()))
                .is_err()
            {
                warn!(%group, member = %name, "sync group message dropped");
            }
        }
    }

    fn notify_group(&mut self, group: &str, spec: &GroupSpec) {
        let states: Vec<Option<State>> = spec
            .members
            .iter()
            .map(|(name, _)| self.states.get(name).copied())
            .collect();
        let Some(now) = group_state(&states) else {
            return;
        };
        if self.group_states.get(group) == Some(&now) {
            return;
        }
        self.group_states.insert(group.to_owned(), now);
        info!(%group, state = ?now, "sync group state");
        let entry = self.notifiers.entry(group.to_owned()).or_insert_with(|| {
            (
                spec.notify.clone(),
                Notifier::spawn(NotifyKind::Group, group.to_owned(), spec.notify.clone()),
            )
        });
        if entry.0 != spec.notify {
            *entry = (
                spec.notify.clone(),
                Notifier::spawn(NotifyKind::Group, group.to_owned(), spec.notify.clone()),
            );
        }
        entry.1.notify(now, 0);
    }
}

impl SyncGroups {
    /// Start the coordinator.
    pub fn start() -> Self {
        let (events, mut rx) = mpsc::unbounded_channel::<GroupEvent>();
        let groups: Arc<Mutex<Groups>> = Arc::default();
        let shared = Arc::clone(&groups);
        let task = tokio::spawn(async move {
            let mut coordinator = Coordinator::default();
            while let Some(event) = rx.recv().await {
                let groups = match shared.lock() {
                    Ok(g) => g.clone(),
                    Err(_) => continue,
                };
                coordinator.handle(event, &groups);
            }
        });
        Self {
            events,
            groups,
            task,
        }
    }

    /// Where instances report their state changes.
    pub fn events(&self) -> StateEvents {
        self.events.clone()
    }

    /// Replace the group membership (start-up and reload).
    pub fn set_groups(&self, groups: Groups) {
        if let Ok(mut g) = self.groups.lock() {
            *g = groups;
        }
        let _ = self.events.send(GroupEvent::Resync);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_state_is_fault_on_any_and_master_or_backup_when_all_agree() {
        let m = Some(State::Master);
        let b = Some(State::Backup);
        let f = Some(State::Fault);
        assert_eq!(group_state(&[m, m]), Some(NotifyState::Master));
        assert_eq!(group_state(&[b, b]), Some(NotifyState::Backup));
        assert_eq!(group_state(&[m, f]), Some(NotifyState::Fault));
        assert_eq!(group_state(&[m, b]), None);
        assert_eq!(group_state(&[m, None]), None);
        assert_eq!(group_state(&[]), None);
    }
}
