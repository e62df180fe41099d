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
//! - Roles move together, as keepalived's `vrrp_sync.c`. Every member of a group with two or
//!   more members is *held* ([`InstanceMsg::GroupHold`]): when its master-down timer fires it
//!   stays Backup and reports [`GroupEvent::WantMaster`] (keepalived `wantstate` MASTER).
//!   - `vrrp_sync_can_goto_master`: the group goes MASTER only if it already is, or every
//!     other member is Master or wants to be; then every member is sent
//!     [`InstanceMsg::ForceMaster`]. Otherwise the wish waits (the member re-times out and
//!     the decision is taken again when the last member wants MASTER). "Prefer backup state
//!     to avoid thrashing": with mixed priorities (VI_1 higher on node A, VI_2 higher on node
//!     B) the first node whose members all time out takes both; the other node's higher
//!     member keeps wanting MASTER but its sibling accepts the adverts and never does.
//!   - `vrrp_sync_master`: a member that becomes Master by itself (the address owner, or
//!     before the hold arrived) forces the others to MASTER.
//!   - `vrrp_sync_backup`: a Master that steps down for a higher-priority advert forces the
//!     other members to BACKUP (no priority-0 advert, as keepalived's
//!     `vrrp_state_leave_master(.., false)`).
//!
//!   The group's role (keepalived `sgroup->state`) guards both so a rule fires once per
//!   change, and transitions the coordinator caused (`forced`) never trigger a rule again.
//!   Force messages go to every member in order; the core ignores one that does not apply
//!   (ForceMaster to a non-Backup, ForceBackup to a non-Master), so a member's inbox always
//!   ends in the coordinator's latest decision even when its state reports lag.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::instance::{GroupEvent, InstanceMsg, StateEvents};
use crate::notify::{Notifier, NotifyKind, NotifyScripts, NotifyState};
use wasmalived_proto::vrrp::State;

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
    if states.contains(&Some(State::Fault)) {
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

/// keepalived's `sgroup->state`: the role the group was last synced to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Role {
    #[default]
    Backup,
    Master,
    Fault,
}

#[derive(Default)]
struct Coordinator {
    own_fault: HashMap<String, bool>,
    states: HashMap<String, State>,
    /// keepalived `wantstate == MASTER` of held Backups.
    wants: HashMap<String, bool>,
    roles: HashMap<String, Role>,
    /// Members currently held, with the inbox the hold went to.
    held: HashMap<String, mpsc::Sender<InstanceMsg>>,
    group_states: HashMap<String, NotifyState>,
    notifiers: HashMap<String, (NotifyScripts, Notifier)>,
}

fn send(group: &str, name: &str, inbox: &mpsc::Sender<InstanceMsg>, msg: InstanceMsg) {
    if inbox.try_send(msg).is_err() {
        warn!(%group, member = %name, "sync group message dropped");
    }
}

impl Coordinator {
    fn handle(&mut self, event: GroupEvent, groups: &Groups) {
        if event == GroupEvent::Resync {
            self.resync_holds(groups);
            for (group, spec) in groups {
                let faulted = spec
                    .members
                    .iter()
                    .any(|(name, _)| self.own_fault.get(name) == Some(&true));
                if let Some((first, _)) = spec.members.first() {
                    self.propagate_fault(group, spec, first, faulted);
                }
                self.notify_group(group, spec);
                if let Some((first, _)) = spec.members.first() {
                    self.try_master(group, spec, first);
                }
            }
            return;
        }
        let (instance, prev) = match &event {
            GroupEvent::OwnFault { instance, faulted } => {
                self.own_fault.insert(instance.clone(), *faulted);
                (instance, None)
            }
            GroupEvent::State {
                instance, state, ..
            } => (instance, self.states.insert(instance.clone(), *state)),
            GroupEvent::WantMaster { instance, want } => {
                self.wants.insert(instance.clone(), *want);
                (instance, None)
            }
            GroupEvent::Resync => return,
        };
        for (group, spec) in groups {
            if !spec.members.iter().any(|(name, _)| name == instance) {
                continue;
            }
            match event {
                GroupEvent::OwnFault { faulted, .. } => {
                    self.propagate_fault(group, spec, instance, faulted)
                }
                GroupEvent::WantMaster { want: true, .. } => self.try_master(group, spec, instance),
                GroupEvent::State {
                    state,
                    forced: false,
                    ..
                } => self.follow(group, spec, instance, prev, state),
                _ => {}
            }
            self.notify_group(group, spec);
        }
    }

    /// Hold every member of a group with two or more members (keepalived drops sync groups
    /// of one); release members that left their group.
    fn resync_holds(&mut self, groups: &Groups) {
        let mut now_held: HashMap<String, mpsc::Sender<InstanceMsg>> = HashMap::new();
        for (group, spec) in groups {
            if spec.members.len() < 2 {
                continue;
            }
            for (name, inbox) in &spec.members {
                send(group, name, inbox, InstanceMsg::GroupHold(true));
                now_held.insert(name.clone(), inbox.clone());
            }
        }
        for (name, inbox) in &self.held {
            if !now_held.contains_key(name) {
                send("-", name, inbox, InstanceMsg::GroupHold(false));
                self.wants.remove(name);
            }
        }
        self.held = now_held;
    }

    /// Would `name` go MASTER if it could (keepalived `wantstate == VRRP_STATE_MAST`)?
    fn wants_master(&self, name: &str) -> bool {
        match self.states.get(name) {
            Some(State::Master) => true,
            Some(State::Backup) => self.wants.get(name) == Some(&true),
            _ => false,
        }
    }

    /// keepalived `vrrp_sync_can_goto_master` + `vrrp_sync_master` for a held Backup whose
    /// master-down timer fired: the group goes MASTER if it already is, or if every other
    /// member is Master or wants to be.
    fn try_master(&mut self, group: &str, spec: &GroupSpec, instance: &str) {
        if !self.wants_master(instance) {
            return;
        }
        let role = self.roles.get(group).copied().unwrap_or_default();
        let all_want = spec
            .members
            .iter()
            .all(|(name, _)| name == instance || self.wants_master(name));
        if role != Role::Master && !all_want {
            debug!(%group, %instance, "wants MASTER; waiting for the other members");
            return;
        }
        info!(%group, %instance, "syncing instances to MASTER state");
        self.roles.insert(group.to_owned(), Role::Master);
        for (name, inbox) in &spec.members {
            if self.states.get(name) != Some(&State::Master) {
                send(group, name, inbox, InstanceMsg::ForceMaster);
            }
        }
    }

    /// keepalived's transition table (`vrrp_scheduler.c` `VRRP_TSM`) for a member's own
    /// (not forced) state change.
    fn follow(
        &mut self,
        group: &str,
        spec: &GroupSpec,
        instance: &str,
        prev: Option<State>,
        state: State,
    ) {
        let role = self.roles.get(group).copied().unwrap_or_default();
        match (prev, state) {
            // `vrrp_sync_master`: a member became Master by itself (address owner, or
            // not held yet): the others follow.
            (p, State::Master) if p != Some(State::Master) => {
                if role == Role::Master {
                    return;
                }
                info!(%group, %instance, "syncing instances to MASTER state");
                self.roles.insert(group.to_owned(), Role::Master);
                for (name, inbox) in &spec.members {
                    if name != instance {
                        send(group, name, inbox, InstanceMsg::ForceMaster);
                    }
                }
            }
            // `vrrp_sync_backup`: a Master stepped down for a higher priority: the others
            // follow, without a priority-0 advert.
            (Some(State::Master), State::Backup) => {
                if role == Role::Backup {
                    return;
                }
                info!(%group, %instance, "syncing instances to BACKUP state");
                self.roles.insert(group.to_owned(), Role::Backup);
                for (name, inbox) in &spec.members {
                    if name != instance {
                        send(group, name, inbox, InstanceMsg::ForceBackup);
                    }
                }
            }
            // Fault moves the whole group (above); when it clears the members come back as
            // Backups and go MASTER together through `try_master`.
            (_, State::Fault) => {
                self.roles.insert(group.to_owned(), Role::Fault);
            }
            _ => {}
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
            send(group, name, inbox, InstanceMsg::GroupFault(cause.clone()));
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

    fn state(instance: &str, state: State, forced: bool) -> GroupEvent {
        GroupEvent::State {
            instance: instance.into(),
            state,
            forced,
        }
    }

    fn want(instance: &str, want: bool) -> GroupEvent {
        GroupEvent::WantMaster {
            instance: instance.into(),
            want,
        }
    }

    fn received(rx: &mut mpsc::Receiver<InstanceMsg>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| match m {
                InstanceMsg::ForceMaster => "master".to_owned(),
                InstanceMsg::ForceBackup => "backup".to_owned(),
                InstanceMsg::GroupHold(h) => format!("hold {h}"),
                InstanceMsg::GroupFault(f) => format!("fault {}", f.is_some()),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn pair() -> (
        Groups,
        mpsc::Receiver<InstanceMsg>,
        mpsc::Receiver<InstanceMsg>,
    ) {
        let (ta, ra) = mpsc::channel(16);
        let (tb, rb) = mpsc::channel(16);
        let spec = GroupSpec {
            members: vec![("VI_1".into(), ta), ("VI_2".into(), tb)],
            notify: NotifyScripts::default(),
        };
        (HashMap::from([("G1".to_owned(), spec)]), ra, rb)
    }

    #[tokio::test]
    async fn group_goes_master_only_when_every_member_wants_to_keepalived_sync_can_goto_master() {
        let (groups, mut a, mut b) = pair();
        let mut c = Coordinator::default();
        c.handle(GroupEvent::Resync, &groups);
        assert_eq!(received(&mut a), ["hold true", "fault false"]);
        assert_eq!(received(&mut b), ["hold true", "fault false"]);
        c.handle(state("VI_1", State::Backup, false), &groups);
        c.handle(state("VI_2", State::Backup, false), &groups);
        c.handle(want("VI_1", true), &groups);
        assert!(received(&mut a).is_empty() && received(&mut b).is_empty());
        // VI_2 accepted a Master's advert meanwhile: still no.
        c.handle(want("VI_2", false), &groups);
        assert!(received(&mut a).is_empty() && received(&mut b).is_empty());
        c.handle(want("VI_2", true), &groups);
        assert_eq!(received(&mut a), ["master"]);
        assert_eq!(received(&mut b), ["master"]);
        // The forced transitions trigger nothing more.
        c.handle(state("VI_1", State::Master, true), &groups);
        c.handle(state("VI_2", State::Master, true), &groups);
        assert!(received(&mut a).is_empty() && received(&mut b).is_empty());
    }

    #[tokio::test]
    async fn a_master_stepping_down_takes_the_group_to_backup_once_keepalived_sync_backup() {
        let (groups, mut a, mut b) = pair();
        let mut c = Coordinator::default();
        c.handle(state("VI_1", State::Backup, false), &groups);
        c.handle(state("VI_2", State::Backup, false), &groups);
        c.handle(want("VI_1", true), &groups);
        c.handle(want("VI_2", true), &groups);
        c.handle(state("VI_1", State::Master, true), &groups);
        c.handle(state("VI_2", State::Master, true), &groups);
        received(&mut a);
        received(&mut b);
        // VI_1 meets a higher priority: VI_2 follows, without VI_1 being told anything.
        c.handle(state("VI_1", State::Backup, false), &groups);
        assert!(received(&mut a).is_empty());
        assert_eq!(received(&mut b), ["backup"]);
        c.handle(state("VI_2", State::Backup, true), &groups);
        assert!(received(&mut a).is_empty() && received(&mut b).is_empty());
    }

    #[tokio::test]
    async fn a_member_becoming_master_by_itself_pulls_the_others_keepalived_sync_master() {
        let (groups, mut a, mut b) = pair();
        let mut c = Coordinator::default();
        c.handle(state("VI_2", State::Backup, false), &groups);
        // The address owner starts as Master.
        c.handle(state("VI_1", State::Master, false), &groups);
        assert!(received(&mut a).is_empty());
        assert_eq!(received(&mut b), ["master"]);
        // While the group is MASTER a member that wants MASTER gets it at once.
        c.handle(state("VI_2", State::Master, true), &groups);
        c.handle(state("VI_2", State::Backup, true), &groups);
        c.handle(want("VI_2", true), &groups);
        assert_eq!(received(&mut b), ["master"]);
    }

    #[tokio::test]
    async fn a_single_member_group_is_not_held_and_a_removed_member_is_released() {
        let (mut groups, mut a, mut b) = pair();
        let mut c = Coordinator::default();
        c.handle(GroupEvent::Resync, &groups);
        received(&mut a);
        received(&mut b);
        if let Some(spec) = groups.get_mut("G1") {
            spec.members.truncate(1);
        }
        c.handle(GroupEvent::Resync, &groups);
        assert!(!received(&mut a).contains(&"hold true".to_owned()));
        assert_eq!(received(&mut b), ["hold false"]);
    }
}
