//! A UDP socket over `wasi:sockets`, bound to an ephemeral port and connected to one peer
//! ([`UdpConn`], for [`crate::Host::udp_connect`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use wasi::clocks::monotonic_clock;
use wasi::io::poll;
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::ErrorCode;
use wasi::sockets::udp::{
    IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket,
};
use wasi::sockets::udp_create_socket::create_udp_socket;

use super::nanos;
use super::tcp::remote_address;
use crate::net::{Datagrams, NetError, UdpError};

/// A connected UDP socket (field order is drop order: the streams are children of the
/// socket).
pub struct UdpConn {
    incoming: IncomingDatagramStream,
    outgoing: OutgoingDatagramStream,
    _socket: UdpSocket,
}

/// A socket bound to `from` (or the wildcard of `to`'s family), port 0, connected to `to`.
pub fn connect(from: Option<IpAddr>, to: SocketAddr) -> Result<UdpConn, NetError> {
    let (family, remote) = remote_address(to);
    let socket = create_udp_socket(family).map_err(describe)?;
    let local_ip = from.unwrap_or(match to {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let (_, local) = remote_address(SocketAddr::new(local_ip, 0));
    socket
        .start_bind(&instance_network(), local)
        .map_err(describe)?;
    let bound = socket.subscribe();
    loop {
        match socket.finish_bind() {
            Ok(()) => break,
            Err(ErrorCode::WouldBlock) => bound.block(),
            Err(e) => return Err(describe(e)),
        }
    }
    drop(bound);
    let (incoming, outgoing) = socket.stream(Some(remote)).map_err(describe)?;
    Ok(UdpConn {
        incoming,
        outgoing,
        _socket: socket,
    })
}

impl Datagrams for UdpConn {
    fn send(&mut self, datagram: &[u8]) -> Result<(), NetError> {
        let datagram = OutgoingDatagram {
            data: datagram.to_vec(),
            remote_address: None,
        };
        let ready = self.outgoing.subscribe();
        loop {
            if self.outgoing.check_send().map_err(describe)? > 0 {
                return match self.outgoing.send(std::slice::from_ref(&datagram)) {
                    Ok(1) => Ok(()),
                    Ok(_) => Err(NetError::Udp(UdpError::Other("datagram not sent".into()))),
                    Err(e) => Err(describe(e)),
                };
            }
            ready.block();
        }
    }

    fn recv(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, NetError> {
        let deadline = monotonic_clock::subscribe_duration(nanos(timeout));
        let ready = self.incoming.subscribe();
        loop {
            if let Some(mut datagram) = self.incoming.receive(1).map_err(describe)?.pop() {
                datagram.data.truncate(max);
                return Ok(datagram.data);
            }
            if !poll::poll(&[&ready, &deadline]).contains(&0) {
                return Err(NetError::Deadline(timeout));
            }
        }
    }
}

/// A socket error, briefly.
fn describe(e: ErrorCode) -> NetError {
    NetError::Udp(match e {
        ErrorCode::ConnectionRefused => UdpError::Refused,
        ErrorCode::AccessDenied => UdpError::Denied,
        ErrorCode::RemoteUnreachable => UdpError::Unreachable,
        other => UdpError::Other(other.name().replace('-', " ")),
    })
}
