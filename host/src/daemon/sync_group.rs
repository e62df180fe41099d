//! `vrrp_sync_group`: members move together. When one member enters Fault, every other
//! member is put in Fault too (keepalived: "if one instance of the group goes to fault, all
//! go"), and they leave it together when no member's own tracking is faulted any more.
//! Instances report whether their *own* tracking faults them, so a Fault the group caused
//! never keeps the group in Fault.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::instance::{InstanceMsg, StateEvents};

/// Group name → (member name → inbox).
type Groups = HashMap<String, Vec<(String, mpsc::Sender<InstanceMsg>)>>;

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

impl SyncGroups {
    /// Start the coordinator.
    pub fn start() -> Self {
        let (events, mut rx) = mpsc::unbounded_channel::<(String, bool)>();
        let groups: Arc<Mutex<Groups>> = Arc::default();
        let shared = Arc::clone(&groups);
        let task = tokio::spawn(async move {
            // Members whose own tracking puts them in Fault.
            let mut own_fault: HashMap<String, bool> = HashMap::new();
            while let Some((instance, faulted)) = rx.recv().await {
                own_fault.insert(instance.clone(), faulted);
                let groups = match shared.lock() {
                    Ok(g) => g.clone(),
                    Err(_) => continue,
                };
                for (group, members) in &groups {
                    if !members.iter().any(|(name, _)| name == &instance) {
                        continue;
                    }
                    let cause = members
                        .iter()
                        .find(|(name, _)| own_fault.get(name) == Some(&true))
                        .map(|(name, _)| format!("{group}: {name} is in Fault"));
                    if faulted {
                        info!(%group, %instance, "sync group member in Fault: the group follows");
                    }
                    for (name, inbox) in members {
                        if inbox
                            .try_send(InstanceMsg::GroupFault(cause.clone()))
                            .is_err()
                        {
                            warn!(%group, member = %name, "sync group message dropped");
                        }
                    }
                }
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
    }
}
