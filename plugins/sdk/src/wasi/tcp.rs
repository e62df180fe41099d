//! A TCP connect over `wasi:sockets`, started now and finished when its pollable wakes, so
//! that many can be probed within one deadline (`super::net`). Nothing is ever sent: the
//! connection is closed as soon as it opens.

use std::net::{IpAddr, SocketAddr};

use wasi::io::poll::Pollable;
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasi::sockets::tcp::TcpSocket;
use wasi::sockets::tcp_create_socket::create_tcp_socket;

use crate::net::TcpError;

/// A non-blocking connect in progress.
pub struct Connecting {
    /// Field order is drop order: the pollable is a child of the socket.
    ready: Pollable,
    socket: TcpSocket,
}

impl Connecting {
    /// Start a non-blocking connect to `addr`, from `from` (port 0) if given.
    pub fn start(addr: SocketAddr, from: Option<IpAddr>) -> Result<Connecting, TcpError> {
        let (family, remote) = remote_address(addr);
        let socket = create_tcp_socket(family).map_err(describe)?;
        let network = instance_network();
        if let Some(from) = from {
            let (_, local) = remote_address(SocketAddr::new(from, 0));
            socket.start_bind(&network, local).map_err(describe)?;
            socket.finish_bind().map_err(describe)?;
        }
        socket.start_connect(&network, remote).map_err(describe)?;
        let ready = socket.subscribe();
        Ok(Connecting { ready, socket })
    }

    /// Ready when the connect may be finished ([`Connecting::finish`]).
    pub fn pollable(&self) -> &Pollable {
        &self.ready
    }

    /// The outcome if the connect finished; `None` while still pending.
    pub fn finish(&self) -> Option<Result<(), TcpError>> {
        match self.socket.finish_connect() {
            // Dropping the streams (and the socket) closes the connection; nothing is sent.
            Ok(_streams) => Some(Ok(())),
            Err(ErrorCode::WouldBlock) => None,
            Err(e) => Some(Err(describe(e))),
        }
    }
}

/// A socket error, briefly.
fn describe(e: ErrorCode) -> TcpError {
    match e {
        ErrorCode::ConnectionRefused => TcpError::Refused,
        ErrorCode::AccessDenied => TcpError::Denied,
        ErrorCode::RemoteUnreachable => TcpError::Unreachable,
        ErrorCode::Timeout => TcpError::Timeout,
        other => TcpError::Other(other.name().replace('-', " ")),
    }
}

/// `addr` as `wasi:sockets` wants it: the family to create the socket with, and the remote.
fn remote_address(addr: SocketAddr) -> (IpAddressFamily, IpSocketAddress) {
    match addr {
        SocketAddr::V4(a) => {
            let [a0, a1, a2, a3] = a.ip().octets();
            let v4 = Ipv4SocketAddress {
                port: a.port(),
                address: (a0, a1, a2, a3),
            };
            (IpAddressFamily::Ipv4, IpSocketAddress::Ipv4(v4))
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            let v6 = Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: a.scope_id(),
            };
            (IpAddressFamily::Ipv6, IpSocketAddress::Ipv6(v6))
        }
    }
}
