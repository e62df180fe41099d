//! Sending gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) for a new
//! Master as whole Ethernet frames on an `AF_PACKET` socket. The frames themselves are built
//! in `wasmalived_proto::wire::{arp, ndisc}`, byte for byte like keepalived 2.2.7's.
//!
//! The functions are synchronous and take microseconds: they write one frame on a send-only
//! `AF_PACKET` socket (protocol 0, so it never queues received frames) that is opened once
//! and kept for the life of the process. Not one socket per frame: closing a packet socket
//! waits for an RCU grace period in the kernel (`packet_release` → `synchronize_net`, about
//! 10 ms), which stalled the instance task ~50 ms per GARP burst and delayed, e.g., the
//! priority-0 advert of a SIGTERM arriving just after becoming Master.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use socket2::{Domain, Socket, Type};

use super::sys;
use wasmalived_proto::wire::arp::{garp_frame, BROADCAST_MAC, ETH_P_ARP};
use wasmalived_proto::wire::ndisc::{na_frame, ALL_NODES_MAC, ETH_P_IPV6};

/// A frame could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// Opening the `AF_PACKET` socket failed.
    #[error("opening packet socket for {what} of {addr}: {source}")]
    Socket {
        /// `"gratuitous ARP"` or `"unsolicited NA"`.
        what: &'static str,
        /// The announced address.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `sendto` failed.
    #[error("sending {what} of {addr} on ifindex {ifindex}: {source}")]
    Send {
        /// `"gratuitous ARP"` or `"unsolicited NA"`.
        what: &'static str,
        /// The announced address.
        addr: String,
        /// The interface.
        ifindex: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn send(
    socket: &Socket,
    what: &'static str,
    addr: String,
    ifindex: u32,
    ethertype: u16,
    dst_mac: [u8; 6],
    frame: &[u8],
) -> Result<(), AnnounceError> {
    let send_err = |source| AnnounceError::Send {
        what,
        addr: addr.clone(),
        ifindex,
        source,
    };
    let sent =
        sys::send_frame(socket.as_fd(), ifindex, ethertype, dst_mac, frame).map_err(send_err)?;
    if sent != frame.len() {
        return Err(send_err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short frame write",
        )));
    }
    tracing::trace!(what, %addr, ifindex, "sent");
    Ok(())
}

/// The send-only packet socket of the calling thread's network namespace, opened on first
/// use (see the module docs for why it is never closed). A packet socket belongs to the
/// namespace it was created in and `ifindex` is only meaningful there, so the cache is keyed
/// by namespace: the daemon has one, tests run several labs in one process.
/// `sendto` on one fd from several threads is safe.
fn packet_socket() -> io::Result<Arc<Socket>> {
    static SOCKETS: OnceLock<Mutex<HashMap<PathBuf, Arc<Socket>>>> = OnceLock::new();
    let netns = std::fs::read_link("/proc/thread-self/ns/net")?;
    let sockets = SOCKETS.get_or_init(Mutex::default);
    let mut sockets = sockets.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(socket) = sockets.get(&netns) {
        return Ok(Arc::clone(socket));
    }
    let socket = Arc::new(Socket::new(Domain::PACKET, Type::RAW.cloexec(), None)?);
    sockets.insert(netns, Arc::clone(&socket));
    Ok(socket)
}

/// A send-only packet socket of the network namespace it was opened in. The daemon opens one
/// per instance when it plans it, so an announcement on the takeover path is one `sendto`,
/// with no namespace lookup.
#[derive(Debug, Clone)]
pub struct Announcer {
    socket: Arc<Socket>,
}

impl Announcer {
    /// The packet socket of the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            socket: packet_socket()?,
        })
    }

    /// Sends one gratuitous ARP for `ip` out of `ifindex` with sender MAC `mac`.
    pub fn send_garp(&self, ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> Result<(), AnnounceError> {
        let frame = garp_frame(mac, ip);
        send(
            &self.socket,
            "gratuitous ARP",
            ip.to_string(),
            ifindex,
            ETH_P_ARP,
            BROADCAST_MAC,
            &frame,
        )
    }

    /// Sends one unsolicited neighbour advertisement for `ip` out of `ifindex` with target
    /// link-layer address `mac`.
    pub fn send_unsolicited_na(
        &self,
        ifindex: u32,
        mac: [u8; 6],
        ip: Ipv6Addr,
    ) -> Result<(), AnnounceError> {
        let frame = na_frame(mac, ip);
        send(
            &self.socket,
            "unsolicited NA",
            ip.to_string(),
            ifindex,
            ETH_P_IPV6,
            ALL_NODES_MAC,
            &frame,
        )
    }
}

fn announcer_for(what: &'static str, addr: String) -> Result<Announcer, AnnounceError> {
    Announcer::open().map_err(|source| AnnounceError::Socket { what, addr, source })
}

/// Sends one gratuitous ARP for `ip` out of `ifindex` with sender MAC `mac`, on the packet
/// socket of the calling thread's network namespace.
pub fn send_garp(ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> Result<(), AnnounceError> {
    announcer_for("gratuitous ARP", ip.to_string())?.send_garp(ifindex, mac, ip)
}

/// Sends one unsolicited neighbour advertisement for `ip` out of `ifindex` with target
/// link-layer address `mac`, on the packet socket of the calling thread's network namespace.
pub fn send_unsolicited_na(ifindex: u32, mac: [u8; 6], ip: Ipv6Addr) -> Result<(), AnnounceError> {
    announcer_for("unsolicited NA", ip.to_string())?.send_unsolicited_na(ifindex, mac, ip)
}
