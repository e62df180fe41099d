//! The kernel's process connector (`NETLINK_CONNECTOR`, group `CN_IDX_PROC`): a netlink
//! socket that receives every fork, exec, name change and exit on the machine.
//!
//! It exists only in the initial network namespace (elsewhere `socket()` fails with
//! `EPROTONOSUPPORT`), and subscribing needs `CAP_NET_ADMIN`. A socket opened there keeps
//! working after the process moves to another network namespace, which is why
//! `net_namespace` opens it first ([`crate::daemon::Startup`]).

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use netlink_sys::{protocols::NETLINK_CONNECTOR, Socket, SocketAddr};
use tokio::io::unix::AsyncFd;

use super::codec::{self, McastOp, Message};

/// Largest datagram the connector sends (`proc_event` is well under 100 bytes).
const RECV_BUF: usize = 256;
/// Datagrams dropped at most before subscribing (a full default buffer holds a few
/// thousand; the bound only keeps an event storm from holding start-up).
const MAX_DISCARDED: usize = 100_000;

/// What one receive gave.
#[derive(Debug)]
pub enum Received {
    /// A process-connector message.
    Message(Message),
    /// The socket's buffer overflowed (`ENOBUFS`): events were lost.
    Overrun,
    /// A datagram that is not for us (not from the kernel, another connector, a no-op).
    Skipped(String),
}

/// An open, bound connector socket (not yet subscribed).
#[derive(Debug)]
pub struct Connector {
    socket: Socket,
}

impl Connector {
    /// Opens the socket and joins the process-event group. `rcvbuf`: `SO_RCVBUF` (with
    /// `force`, `SO_RCVBUFFORCE`, beyond `net.core.rmem_max`).
    pub fn open(rcvbuf: Option<u32>, force: bool) -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_CONNECTOR)?;
        socket.bind(&SocketAddr::new(0, codec::CN_IDX_PROC))?;
        socket.set_non_blocking(true)?;
        if let Some(size) = rcvbuf {
            set_receive_buffer(&socket, size as usize, force)?;
        }
        Ok(Connector { socket })
    }

    /// Subscribes and registers the socket with the tokio reactor. The kernel answers the
    /// subscription with a [`codec::ProcEvent::Ack`] carrying
    /// our request's `ack` + 1 (see [`AsyncConnector::acknowledges_us`]).
    pub fn subscribe(self) -> io::Result<AsyncConnector> {
        self.discard_queued();
        let request = request_id();
        mcast(&self.socket, McastOp::Listen, request)?;
        Ok(AsyncConnector {
            fd: crate::net::sys::register_netlink(self.socket)?,
            request,
        })
    }
}

impl Connector {
    /// Drops what the socket received since [`Connector::open`]: it joined the event group
    /// then (before `net_namespace`, while the plugins compiled), and other listeners on the
    /// machine keep the kernel sending. Those events predate the start-up scan; a full
    /// buffer would also drop the kernel's acknowledgement of the subscription, which the
    /// monitor waits for.
    fn discard_queued(&self) {
        for _ in 0..MAX_DISCARDED {
            match try_recv(&self.socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

fn set_receive_buffer(socket: &Socket, size: usize, force: bool) -> io::Result<()> {
    if force {
        rustix::net::sockopt::set_socket_recv_buffer_size_force(socket, size)?;
    } else {
        rustix::net::sockopt::set_socket_recv_buffer_size(socket, size)?;
    }
    Ok(())
}

/// The `ack` of a subscription request, which no other listener's request carries (the
/// kernel multicasts every acknowledgement, `ack` + 1, to every listener): this process's
/// PID in the high bits, a per-process count (1..=1022, so never all ones) in the low ten.
/// Other listeners (keepalived, `ss`, other daemons) send 0 or their own numbers.
fn request_id() -> u32 {
    static REQUESTS: AtomicU32 = AtomicU32::new(0);
    let count = REQUESTS.fetch_add(1, Ordering::Relaxed) % 1022 + 1;
    ((std::process::id() & 0x3f_ffff) << 10) | count
}

/// Sends a subscription request.
fn mcast(socket: &Socket, op: McastOp, request: u32) -> io::Result<()> {
    let mut addr = SocketAddr::new(0, 0);
    socket.get_address(&mut addr)?;
    let datagram = codec::mcast_request(op, addr.port_number(), request);
    socket.send(&datagram, 0)?;
    Ok(())
}

/// One non-blocking receive.
fn try_recv(socket: &Socket) -> io::Result<Received> {
    let mut buf = Vec::with_capacity(RECV_BUF);
    let (_, from) = match socket.recv_from(&mut buf, 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Received::Overrun),
        other => other?,
    };
    if from.port_number() != 0 {
        return Ok(Received::Skipped(format!(
            "a datagram from port {}, not the kernel",
            from.port_number()
        )));
    }
    Ok(match codec::decode(&buf) {
        Ok(Some(m)) => Received::Message(m),
        Ok(None) => Received::Skipped("a netlink no-op".into()),
        Err(e) => Received::Skipped(e.to_string()),
    })
}

/// A subscribed [`Connector`], registered with the tokio reactor.
#[derive(Debug)]
pub struct AsyncConnector {
    fd: AsyncFd<Socket>,
    /// The `ack` of our subscription request.
    request: u32,
}

impl AsyncConnector {
    /// The next datagram.
    pub async fn recv(&self) -> io::Result<Received> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| try_recv(fd.get_ref())) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Doubles the receive buffer after an overrun, as keepalived does
    /// (`reinitialise_track_processes`); the size now in force.
    pub fn grow_receive_buffer(&self, force: bool) -> io::Result<usize> {
        let socket = self.fd.get_ref();
        let now = rustix::net::sockopt::socket_recv_buffer_size(socket)?;
        // The kernel doubles what it is given: asking for the current size doubles it.
        set_receive_buffer(socket, now, force)?;
        Ok(rustix::net::sockopt::socket_recv_buffer_size(socket)?)
    }

    /// Unsubscribes (the daemon stops).
    pub fn unsubscribe(&self) -> io::Result<()> {
        mcast(self.fd.get_ref(), McastOp::Ignore, request_id())
    }

    /// Whether an acknowledgement carrying `ack` answers our subscription rather than
    /// another listener's.
    pub fn acknowledges_us(&self, ack: u32) -> bool {
        ack == self.request.wrapping_add(1)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::procs::codec::ProcEvent;

    /// Against the kernel (the unit suite runs as root in the initial network namespace, as
    /// CI does): another listener's subscription is acknowledged to every listener, ours
    /// included; only the acknowledgement of our own request is recognised as ours.
    #[tokio::test]
    async fn only_the_acknowledgement_of_our_own_subscription_is_ours() {
        let ours = Connector::open(None, false)
            .and_then(Connector::subscribe)
            .expect("the process connector (root, initial network namespace)");
        let other = Connector::open(None, false).expect("a second connector socket");
        mcast(&other.socket, McastOp::Listen, 0).expect("the other listener subscribes");
        let (mut mine, mut theirs) = (0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while mine == 0 || theirs == 0 {
            let received = tokio::time::timeout_at(deadline, ours.recv())
                .await
                .unwrap_or_else(|_| panic!("acks: ours {mine}, another listener's {theirs}"))
                .expect("receive");
            if let Received::Message(m) = received {
                if let ProcEvent::Ack { ack, err } = m.event {
                    if ours.acknowledges_us(ack) {
                        assert_eq!(err, 0, "our subscription was refused");
                        mine += 1;
                    } else if ack == 1 {
                        theirs += 1;
                    }
                }
            }
        }
        assert_eq!(mine, 1);
        mcast(&other.socket, McastOp::Ignore, 0).expect("the other listener unsubscribes");
        ours.unsubscribe().expect("unsubscribe");
    }
}
