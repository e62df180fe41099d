//! Interface state for `track_interface`, the instances' own interfaces and re-planning: from
//! netlink link events (no polling), published as a `watch` of name → [`Link`].
//!
//! Events can be lost: when the kernel's socket buffer overflows it drops them and says so
//! (`ENOBUFS`, an overrun), and then the whole link table is read again; if the event stream
//! ends, it is opened again (after [`RESUBSCRIBE_AFTER`]) and the table re-read, so tracking
//! never freezes on a stale view. Deleted interfaces disappear from the map (missing = down).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::net::netlink::{self, LinkEvent, LinkUpdate, Netlink};

/// Wait before re-opening an event stream that ended.
pub const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// What the daemon knows of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Its index (a re-created interface has a new one).
    pub ifindex: u32,
    /// Up and running.
    pub up: bool,
}

/// Interfaces by name.
pub type Links = Arc<HashMap<String, Link>>;

/// The link monitor: its event task and the published states.
pub struct LinkMonitor {
    netlink: Arc<Netlink>,
    states: watch::Sender<Links>,
    /// Overruns and stream restarts resynchronised so far.
    resyncs: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for LinkMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LinkMonitor {
    /// Subscribe to link events and start publishing (`rcvbuf`: the event socket's receive
    /// buffer, `None` for the kernel default). `netlink` answers [`LinkMonitor::ensure`]; the
    /// resynchronising dumps use a connection of their own, so they never collide with a dump
    /// the daemon runs meanwhile.
    pub fn start(
        netlink: Arc<Netlink>,
        rcvbuf: Option<usize>,
    ) -> Result<Self, netlink::NetlinkError> {
        let events = netlink::link_events(rcvbuf)?;
        let dumps = Arc::new(Netlink::new()?);
        let (states, _) = watch::channel(Links::default());
        let resyncs = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(follow(
            events,
            rcvbuf,
            dumps,
            states.clone(),
            Arc::clone(&resyncs),
        ));
        Ok(Self {
            netlink,
            states,
            resyncs,
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
            match self.netlink.link_by_name(&name).await {
                Ok(link) => {
                    self.states.send_modify(|map| {
                        Arc::make_mut(map).entry(name).or_insert(Link {
                            ifindex: link.ifindex,
                            up: link.up,
                        });
                    });
                }
                Err(err) => {
                    warn!(interface = %name, error = %err, "interface not found: counted as down")
                }
            }
        }
    }

    /// A receiver of the states.
    pub fn subscribe(&self) -> watch::Receiver<Links> {
        self.states.subscribe()
    }

    /// How often the table was re-read after lost events.
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(Ordering::Relaxed)
    }
}

/// Follow the event stream for ever: apply events, resynchronise on overruns, re-open the
/// stream when it ends.
async fn follow(
    mut events: netlink::LinkEvents,
    rcvbuf: Option<usize>,
    netlink: Arc<Netlink>,
    states: watch::Sender<Links>,
    resyncs: Arc<AtomicU64>,
) {
    loop {
        while let Some(update) = events.next().await {
            match update {
                LinkUpdate::Link(event) => apply(&states, &event),
                LinkUpdate::Overrun => {
                    warn!("link events were lost (netlink overrun): re-reading every link");
                    resync(&netlink, &states, &resyncs).await;
                }
            }
        }
        warn!("link event stream ended: re-opening it");
        loop {
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            match netlink::link_events(rcvbuf) {
                Ok(fresh) => {
                    events = fresh;
                    break;
                }
                Err(err) => warn!(error = %err, "cannot re-open the link event stream"),
            }
        }
        // Whatever changed while no stream was open.
        resync(&netlink, &states, &resyncs).await;
    }
}

fn apply(states: &watch::Sender<Links>, event: &LinkEvent) {
    states.send_if_modified(|map| {
        let link = Link {
            ifindex: event.ifindex,
            up: event.up,
        };
        if event.deleted {
            // A delete of an old index after a re-creation must not remove the new one.
            if map.get(&event.name).is_some_and(|l| l.ifindex == event.ifindex) {
                info!(interface = %event.name, ifindex = event.ifindex, "interface deleted");
                Arc::make_mut(map).remove(&event.name);
                return true;
            }
            return false;
        }
        if map.get(&event.name) == Some(&link) {
            return false;
        }
        info!(interface = %event.name, ifindex = event.ifindex, up = event.up, "link state changed");
        Arc::make_mut(map).insert(event.name.clone(), link);
        true
    });
}

/// Attempts of one resynchronisation before giving up until the next overrun.
const RESYNC_ATTEMPTS: u32 = 20;

/// Replace the published states by a fresh dump of every link (retried: a dump fails while
/// another one runs on the same socket).
async fn resync(netlink: &Netlink, states: &watch::Sender<Links>, resyncs: &AtomicU64) {
    let mut dump = netlink.links().await;
    for _ in 1..RESYNC_ATTEMPTS {
        if dump.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        dump = netlink.links().await;
    }
    match dump {
        Ok(links) => {
            let fresh: HashMap<String, Link> = links
                .into_iter()
                .map(|l| {
                    (
                        l.name,
                        Link {
                            ifindex: l.ifindex,
                            up: l.up,
                        },
                    )
                })
                .collect();
            states.send_if_modified(|map| {
                if **map == fresh {
                    return false;
                }
                *map = Arc::new(fresh);
                true
            });
            resyncs.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) => warn!(error = %err, "cannot re-read the links"),
    }
}
