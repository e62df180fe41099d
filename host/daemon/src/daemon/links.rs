//! Interface up/down for `track_interface` and the instances' own interfaces, from netlink
//! link events (no polling), published as a `watch` of name → up.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::net::netlink::{self, Netlink};

/// The link monitor: its event task and the published states.
pub struct LinkMonitor {
    netlink: Arc<Netlink>,
    states: watch::Sender<Arc<HashMap<String, bool>>>,
    task: JoinHandle<()>,
}

impl Drop for LinkMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LinkMonitor {
    /// Subscribe to link events and start publishing.
    pub fn start(netlink: Arc<Netlink>) -> Result<Self, netlink::NetlinkError> {
        let mut events = netlink::link_events()?;
        let (states, _) = watch::channel(Arc::new(HashMap::new()));
        let publisher = states.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                publisher.send_if_modified(|map| {
                    if map.get(&event.name) == Some(&event.up) {
                        return false;
                    }
                    info!(interface = %event.name, up = event.up, "link state changed");
                    Arc::make_mut(map).insert(event.name.clone(), event.up);
                    true
                });
            }
            warn!("link event stream ended");
        });
        Ok(Self {
            netlink,
            states,
            task,
        })
    }

    /// Make sure the current state of every interface in `names` is known (read after the
    /// subscription, so no change falls in between). A missing interface counts as down.
    pub async fn ensure(&self, names: HashSet<String>) {
        for name in names {
            if self.states.borrow().contains_key(&name) {
                continue;
            }
            let up = match self.netlink.link_by_name(&name).await {
                Ok(link) => link.up,
                Err(err) => {
                    warn!(interface = %name, error = %err, "interface not found: counted as down");
                    false
                }
            };
            self.states.send_modify(|map| {
                Arc::make_mut(map).entry(name).or_insert(up);
            });
        }
    }

    /// A receiver of the states.
    pub fn subscribe(&self) -> watch::Receiver<Arc<HashMap<String, bool>>> {
        self.states.subscribe()
    }
}
