//! VRRP sockets: one raw socket per (interface, family), shared by every instance on it for
//! sending, with one receive task that routes each packet by its VRID to the owning
//! instance's inbox.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn, Instrument};

use super::instance::InstanceMsg;
use crate::net::socket::{SocketConfig, SocketError, VrrpSocket};
use wasmalived_proto::vrrp::Family;

type Routes = Arc<RwLock<HashMap<u8, mpsc::Sender<InstanceMsg>>>>;

struct Entry {
    socket: Arc<VrrpSocket>,
    routes: Routes,
    task: JoinHandle<()>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The daemon's VRRP sockets.
#[derive(Default)]
pub struct Sockets {
    by_key: HashMap<(u32, Family), Entry>,
}

impl Sockets {
    /// The socket for (`ifindex`, `family`), opened and its receive task started on first use.
    pub fn socket(
        &mut self,
        ifindex: u32,
        interface: &str,
        family: Family,
    ) -> Result<Arc<VrrpSocket>, SocketError> {
        if let Some(entry) = self.by_key.get(&(ifindex, family)) {
            return Ok(Arc::clone(&entry.socket));
        }
        let socket = Arc::new(VrrpSocket::open(&SocketConfig {
            ifindex,
            family,
            src: None,
            join_multicast: true,
        })?);
        let routes: Routes = Arc::default();
        let span = tracing::info_span!("rx", iface = %interface, af = ?family);
        let task = tokio::spawn(receive(Arc::clone(&socket), Arc::clone(&routes)).instrument(span));
        self.by_key.insert(
            (ifindex, family),
            Entry {
                socket: Arc::clone(&socket),
                routes,
                task,
            },
        );
        Ok(socket)
    }

    /// Route packets for `vrid` on (`ifindex`, `family`) to `inbox`.
    pub fn route(&self, ifindex: u32, family: Family, vrid: u8, inbox: mpsc::Sender<InstanceMsg>) {
        if let Some(entry) = self.by_key.get(&(ifindex, family)) {
            if let Ok(mut routes) = entry.routes.write() {
                routes.insert(vrid, inbox);
            }
        }
    }

    /// Stop routing `vrid`; close the socket when nothing uses it any more.
    pub fn unroute(&mut self, ifindex: u32, family: Family, vrid: u8) {
        let empty = match self.by_key.get(&(ifindex, family)) {
            Some(entry) => match entry.routes.write() {
                Ok(mut routes) => {
                    routes.remove(&vrid);
                    routes.is_empty()
                }
                Err(_) => false,
            },
            None => false,
        };
        if empty {
            self.by_key.remove(&(ifindex, family));
        }
    }
}

/// Receive loop: demultiplex by VRID (the second octet of every VRRP version).
async fn receive(socket: Arc<VrrpSocket>, routes: Routes) {
    let mut unknown_vrid: u64 = 0;
    loop {
        let packet = match socket.recv().await {
            Ok(packet) => packet,
            Err(err) if err.is_dropped_packet() => {
                debug!(error = %err, "malformed datagram dropped");
                continue;
            }
            Err(err) => {
                warn!(error = %err, "VRRP socket receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(&vrid) = packet.payload.get(1) else {
            continue;
        };
        let inbox = routes.read().ok().and_then(|r| r.get(&vrid).cloned());
        match inbox {
            // RFC 5798 §7.1: "MUST discard if the VRID is not configured on this interface".
            None => {
                unknown_vrid += 1;
                if unknown_vrid.is_power_of_two() {
                    debug!(vrid, src = %packet.src, count = unknown_vrid, "advert for a VRID not configured here");
                }
            }
            Some(inbox) => {
                if inbox.try_send(InstanceMsg::Packet(packet)).is_err() {
                    warn!(vrid, "instance inbox full; advert dropped");
                }
            }
        }
    }
}
