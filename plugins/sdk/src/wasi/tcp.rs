//! A TCP connect over `wasi:sockets`, started now and finished when its pollable wakes, so
//! that many can be probed within one deadline (`super::net`); a probe's connection is
//! closed as soon as it opens. [`open_stream`] keeps the connection for a dialogue
//! ([`TcpConn`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use wasi::clocks::monotonic_clock;
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::{InputStream, OutputStream, StreamError};
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasi::sockets::tcp::TcpSocket;
use wasi::sockets::tcp_create_socket::create_tcp_socket;

use super::nanos;
use crate::net::{NetError, Stream, TcpError};

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
        // Dropping the streams (and the socket) closes the connection; nothing is sent.
        self.finish_streams().map(|r| r.map(drop))
    }

    /// The connection's streams if the connect finished; `None` while still pending.
    fn finish_streams(&self) -> Option<Result<(InputStream, OutputStream), TcpError>> {
        match self.socket.finish_connect() {
            Ok(streams) => Some(Ok(streams)),
            Err(ErrorCode::WouldBlock) => None,
            Err(e) => Some(Err(describe(e))),
        }
    }
}

/// An open connection (field order is drop order: the streams are children of the socket).
pub struct TcpConn {
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
}

/// Connect to `to` (from `from` if given) within `timeout`, keeping the connection open.
pub fn open_stream(
    from: Option<IpAddr>,
    to: SocketAddr,
    timeout: Duration,
) -> Result<TcpConn, NetError> {
    let connecting = Connecting::start(to, from).map_err(NetError::Tcp)?;
    let deadline = monotonic_clock::subscribe_duration(nanos(timeout));
    loop {
        if let Some(done) = connecting.finish_streams() {
            let (input, output) = done.map_err(NetError::Tcp)?;
            let Connecting { ready, socket } = connecting;
            drop(ready);
            return Ok(TcpConn {
                input,
                output,
                _socket: socket,
            });
        }
        if wait(&connecting.ready, &deadline) == Woke::Deadline {
            return Err(NetError::Deadline(timeout));
        }
    }
}

/// What [`wait`] woke for.
#[derive(Debug, PartialEq, Eq)]
enum Woke {
    Ready,
    Deadline,
}

/// Block until `ready` or `deadline` fires (`ready` wins a tie).
fn wait(ready: &Pollable, deadline: &Pollable) -> Woke {
    if poll::poll(&[ready, deadline]).contains(&0) {
        Woke::Ready
    } else {
        Woke::Deadline
    }
}

/// A stream error, briefly.
fn stream_error(e: StreamError) -> NetError {
    match e {
        StreamError::Closed => NetError::Tcp(TcpError::Other("connection closed".into())),
        StreamError::LastOperationFailed(e) => NetError::Tcp(TcpError::Other(e.to_debug_string())),
    }
}

impl Stream for TcpConn {
    fn read(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, NetError> {
        let deadline = monotonic_clock::subscribe_duration(nanos(timeout));
        let ready = self.input.subscribe();
        loop {
            match self.input.read(max as u64) {
                Ok(bytes) if !bytes.is_empty() => return Ok(bytes),
                Ok(_) => {}
                Err(StreamError::Closed) => return Ok(Vec::new()),
                Err(e) => return Err(stream_error(e)),
            }
            if wait(&ready, &deadline) == Woke::Deadline {
                return Err(NetError::Deadline(timeout));
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), NetError> {
        let deadline = monotonic_clock::subscribe_duration(nanos(timeout));
        let ready = self.output.subscribe();
        let mut rest = bytes;
        loop {
            let room = self.output.check_write().map_err(stream_error)?;
            if room > 0 && !rest.is_empty() {
                let n = rest.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                self.output.write(&rest[..n]).map_err(stream_error)?;
                rest = &rest[n..];
                if rest.is_empty() {
                    self.output.flush().map_err(stream_error)?;
                }
                continue;
            }
            // Everything written and the flush done once `check_write` has room again.
            if rest.is_empty() && room > 0 {
                return Ok(());
            }
            if wait(&ready, &deadline) == Woke::Deadline {
                return Err(NetError::Deadline(timeout));
            }
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
pub(super) fn remote_address(addr: SocketAddr) -> (IpAddressFamily, IpSocketAddress) {
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
