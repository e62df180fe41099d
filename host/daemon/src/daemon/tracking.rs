//! Tracking: one small task per instance that turns the latest results of its tracked checks
//! and interfaces into an effective priority or a Fault (keepalived's rules, in
//! [`crate::checks::priority`]) and sends it to the instance only when it changes.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::select_all;
use futures::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::instance::{InstanceMsg, Tracking};
use crate::checks::{self, CheckState, CheckUpdate, Effective, Tracked};

/// Up/down of every interface by name (missing = down).
pub type LinkStates = watch::Receiver<Arc<HashMap<String, bool>>>;

/// One tracked check of an instance, with its weight for this instance.
#[derive(Debug)]
pub struct TrackedCheck {
    /// `vrrp_script` name.
    pub name: String,
    /// Weight (instance override or the script's).
    pub weight: i32,
    /// `reverse`.
    pub reverse: bool,
    /// The check's updates.
    pub updates: watch::Receiver<CheckUpdate>,
}

/// One tracked interface of an instance.
#[derive(Debug, Clone)]
pub struct TrackedInterface {
    /// Interface name.
    pub name: String,
    /// Weight; 0 = Fault while down.
    pub weight: i32,
    /// `reverse`.
    pub reverse: bool,
}

/// What an instance tracks.
#[derive(Debug)]
pub struct TrackingSpec {
    /// Configured priority.
    pub base_priority: u8,
    /// Checks.
    pub checks: Vec<TrackedCheck>,
    /// Interfaces (including the instance's own unless `dont_track_primary`).
    pub interfaces: Vec<TrackedInterface>,
}

impl TrackingSpec {
    /// The tracking result from the current check and link states.
    pub fn evaluate(&self, links: &HashMap<String, bool>) -> Tracking {
        let check_states: Vec<CheckState> = self
            .checks
            .iter()
            .map(|c| c.updates.borrow().state.clone())
            .collect();
        let link_states: Vec<CheckState> = self
            .interfaces
            .iter()
            .map(|i| {
                if links.get(&i.name).copied().unwrap_or(false) {
                    CheckState::Up
                } else {
                    CheckState::Down
                }
            })
            .collect();
        let link_names: Vec<String> = self
            .interfaces
            .iter()
            .map(|i| format!("interface {}", i.name))
            .collect();
        let mut tracked: Vec<Tracked<'_>> = Vec::new();
        for (check, state) in self.checks.iter().zip(&check_states) {
            tracked.push(Tracked {
                name: &check.name,
                weight: check.weight,
                reverse: check.reverse,
                state,
            });
        }
        for ((iface, state), name) in self.interfaces.iter().zip(&link_states).zip(&link_names) {
            tracked.push(Tracked {
                name,
                weight: iface.weight,
                reverse: iface.reverse,
                state,
            });
        }
        match checks::effective(self.base_priority, &tracked) {
            Effective::Priority(p) => Tracking::Priority(p),
            Effective::Fault(reasons) => Tracking::Fault(
                reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        }
    }
}

/// Run tracking for one instance until `cancel`, sending each change of the result to
/// `instance`. `assumed` is what the instance already runs with (`None`: unknown, so the
/// current result is sent at once).
pub fn spawn(
    mut spec: TrackingSpec,
    mut links: LinkStates,
    instance: mpsc::Sender<InstanceMsg>,
    cancel: CancellationToken,
    assumed: Option<Tracking>,
) -> JoinHandle<()> {
    for check in &mut spec.checks {
        check.updates.mark_unchanged();
    }
    tokio::spawn(async move {
        let mut last = assumed;
        loop {
            let now = spec.evaluate(&links.borrow_and_update());
            if last.as_ref() != Some(&now) {
                last = Some(now.clone());
                if instance.send(InstanceMsg::Tracking(now)).await.is_err() {
                    return;
                }
            }
            let mut waits: Vec<futures::future::BoxFuture<'_, bool>> = spec
                .checks
                .iter_mut()
                .map(|c| c.updates.changed().map(|r| r.is_ok()).boxed())
                .collect();
            waits.push(links.changed().map(|r| r.is_ok()).boxed());
            tokio::select! {
                _ = cancel.cancelled() => return,
                (alive, _, _) = select_all(waits) => {
                    if !alive {
                        return;
                    }
                }
            }
        }
    })
}
