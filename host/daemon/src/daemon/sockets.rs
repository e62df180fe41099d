//! VRRP sockets: one raw socket per (interface, family), shared by every instance on it.
//! Each socket's receive task hands every datagram to the router driver unchanged (the
//! router demultiplexes by path, family, VRID and unicast peer). A datagram whose IP layer is
//! unusable goes to the router as that drop; when the driver's queue is full the datagram is
//! dropped here and the count rides on the next datagram that gets through, so the router
//! counts every drop ([`RxDrop::QueueFull`]).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn, Instrument};

use super::admission::{Admission, QueueLoad};
use super::driver::Datagram;
use crate::net::socket::{SocketConfig, SocketError, VrrpSocket};
use wasmalived_proto::router::{InstanceKey, PathId};
use wasmalived_proto::vrrp::{Family, RxDrop};

struct Entry {
    socket: Arc<VrrpSocket>,
    users: HashSet<InstanceKey>,
    /// Multicast groups joined on it.
    joined: Vec<IpAddr>,
    task: JoinHandle<()>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The daemon's VRRP sockets, by (interface index, family), with the instances using each.
pub struct Sockets {
    by_key: HashMap<(u32, Family), Entry>,
    driver: mpsc::Sender<Datagram>,
}

impl Sockets {
    /// No sockets yet; receive tasks will feed `driver`.
    pub fn new(driver: mpsc::Sender<Datagram>) -> Self {
        Self {
            by_key: HashMap::new(),
            driver,
        }
    }

    /// The socket for (`ifindex`, `family`), opened and its receive task started on first
    /// use, with `group` joined (the configured `vrrp_mcast_group4/6`; `None` for a unicast
    /// instance); `user` is recorded as using it.
    pub fn acquire(
        &mut self,
        ifindex: u32,
        interface: &str,
        family: Family,
        group: Option<IpAddr>,
        user: &InstanceKey,
    ) -> Result<Arc<VrrpSocket>, SocketError> {
        if let Some(entry) = self.by_key.get_mut(&(ifindex, family)) {
            if let Some(group) = group.filter(|g| !entry.joined.contains(g)) {
                entry.socket.join(group)?;
                entry.joined.push(group);
            }
            entry.users.insert(user.clone());
            return Ok(Arc::clone(&entry.socket));
        }
        let socket = Arc::new(VrrpSocket::open(&SocketConfig {
            ifindex,
            family,
            src: None,
            join: group,
        })?);
        let span = tracing::info_span!("rx", iface = %interface, af = ?family);
        let task = tokio::spawn(
            receive(
                Arc::clone(&socket),
                PathId(ifindex),
                family,
                self.driver.clone(),
            )
            .instrument(span),
        );
        self.by_key.insert(
            (ifindex, family),
            Entry {
                socket: Arc::clone(&socket),
                users: HashSet::from([user.clone()]),
                joined: group.into_iter().collect(),
                task,
            },
        );
        Ok(socket)
    }

    /// `user` uses exactly `paths` now: close sockets nothing uses any more.
    pub fn set_paths(&mut self, user: &InstanceKey, paths: &[u32]) {
        self.by_key.retain(|(ifindex, family), entry| {
            if *family == user.family && !paths.contains(ifindex) {
                entry.users.remove(user);
            }
            !entry.users.is_empty()
        });
    }

    /// `user` is gone.
    pub fn release(&mut self, user: &InstanceKey) {
        self.set_paths(user, &[]);
    }
}

/// Receive loop of one socket.
async fn receive(
    socket: Arc<VrrpSocket>,
    path: PathId,
    family: Family,
    driver: mpsc::Sender<Datagram>,
) {
    // Datagrams dropped because the driver's queue was full (or their source had its share of
    // it under pressure), not yet reported.
    let mut queue_full: u64 = 0;
    let mut admission = Admission::default();
    let capacity = driver.max_capacity();
    loop {
        let packet = match socket.recv().await {
            Ok(packet) => Ok(packet),
            Err(err) if err.is_dropped_packet() => {
                debug!(error = %err, "malformed datagram dropped");
                Err(RxDrop::IpLayer(err.to_string()))
            }
            Err(err) => {
                warn!(error = %err, "VRRP socket receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Ok(received) = &packet {
            let load = QueueLoad::of(driver.capacity(), capacity);
            if !admission.admit(received.src, load, std::time::Instant::now()) {
                queue_full += 1;
                continue;
            }
        }
        let datagram = Datagram {
            path,
            family,
            packet,
            queue_full_before: queue_full,
        };
        match driver.try_send(datagram) {
            Ok(()) => queue_full = 0,
            Err(mpsc::error::TrySendError::Full(_)) => queue_full += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
