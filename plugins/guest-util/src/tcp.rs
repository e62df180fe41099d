//! TCP connects over `wasi:sockets`: [`Connecting`] starts one and finishes it when its
//! pollable wakes (for probing many addresses within one deadline), [`connect`] does one
//! with a timeout. Nothing is ever sent: the connection is closed as soon as it opens.

use std::net::SocketAddr;

use wasi::clocks::monotonic_clock;
use wasi::io::poll::{self, Pollable};
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasi::sockets::tcp::TcpSocket;
use wasi::sockets::tcp_create_socket::create_tcp_socket;

/// A non-blocking connect in progress.
pub struct Connecting {
    /// Field order is drop order: the pollable is a child of the socket.
    ready: Pollable,
    socket: TcpSocket,
}

impl Connecting {
    /// Start a non-blocking connect to `addr`; `Err` is a short reason ([`describe`]).
    pub fn start(addr: SocketAddr) -> Result<Connecting, String> {
        let (family, remote) = remote_address(addr);
        let socket = create_tcp_socket(family).map_err(describe)?;
        socket
            .start_connect(&instance_network(), remote)
            .map_err(describe)?;
        let ready = socket.subscribe();
        Ok(Connecting { ready, socket })
    }

    /// Ready when the connect may be finished ([`Connecting::finish`]).
    pub fn pollable(&self) -> &Pollable {
        &self.ready
    }

    /// The outcome if the connect finished; `None` while still pending.
    pub fn finish(&self) -> Option<Result<(), String>> {
        match self.socket.finish_connect() {
            // Dropping the streams (and the socket) closes the connection; nothing is sent.
            Ok(_streams) => Some(Ok(())),
            Err(ErrorCode::WouldBlock) => None,
            Err(e) => Some(Err(describe(e))),
        }
    }
}

/// Open a connection to `addr` within `timeout_ms`, then drop it. `Err` is a short reason:
/// `timeout after 500ms`, or one of [`describe`]'s.
pub fn connect(addr: SocketAddr, timeout_ms: u64) -> Result<(), String> {
    let connecting = Connecting::start(addr)?;
    let deadline = monotonic_clock::subscribe_duration(timeout_ms.saturating_mul(1_000_000));
    loop {
        let woke = poll::poll(&[connecting.pollable(), &deadline]);
        if woke.contains(&0) {
            match connecting.finish() {
                Some(outcome) => return outcome,
                None => continue,
            }
        }
        return Err(format!("timeout after {timeout_ms}ms"));
    }
}

/// A short reason for a socket error.
pub fn describe(e: ErrorCode) -> String {
    match e {
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::AccessDenied => "access denied (address not granted)".into(),
        ErrorCode::RemoteUnreachable => "remote unreachable".into(),
        ErrorCode::Timeout => "timeout".into(),
        other => other.name().replace('-', " "),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_v4_address() {
        let (family, remote) = remote_address("192.0.2.7:8080".parse().expect("addr"));
        assert_eq!(family, IpAddressFamily::Ipv4);
        match remote {
            IpSocketAddress::Ipv4(a) => assert_eq!((a.port, a.address), (8080, (192, 0, 2, 7))),
            IpSocketAddress::Ipv6(_) => panic!("expected IPv4"),
        }
    }

    #[test]
    fn converts_v6_address_with_scope() {
        let (family, remote) = remote_address("[2001:db8::1%3]:443".parse().expect("addr"));
        assert_eq!(family, IpAddressFamily::Ipv6);
        match remote {
            IpSocketAddress::Ipv6(a) => {
                assert_eq!((a.port, a.scope_id), (443, 3));
                assert_eq!(a.address, (0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
            }
            IpSocketAddress::Ipv4(_) => panic!("expected IPv6"),
        }
    }

    #[test]
    fn describes_errors_briefly() {
        assert_eq!(describe(ErrorCode::ConnectionRefused), "connection refused");
        assert_eq!(
            describe(ErrorCode::AccessDenied),
            "access denied (address not granted)"
        );
        assert_eq!(describe(ErrorCode::RemoteUnreachable), "remote unreachable");
        assert_eq!(describe(ErrorCode::ConnectionReset), "connection reset");
    }
}
