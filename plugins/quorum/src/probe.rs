//! Probing all witnesses at once, within one deadline: TCP connects and HTTP GETs are all
//! started first, then polled together, so the run takes at most `timeout_ms` however many
//! witnesses there are.

use std::net::SocketAddr;

use wasi::clocks::monotonic_clock;
use wasi::http::types::Method;
use wasi::io::poll::{self, Pollable};
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasi::sockets::tcp::TcpSocket;
use wasi::sockets::tcp_create_socket::create_tcp_socket;

use crate::config::{NamedWitness, Witness};
use crate::http::{self, Pending};

/// One probe's state.
enum Probe {
    /// Connecting. Field order is drop order: the pollable is a child of the socket.
    Tcp { ready: Pollable, socket: TcpSocket },
    /// Waiting for the response head.
    Http(Pending),
    /// Finished: reached, or why not.
    Done(Result<(), String>),
}

impl Probe {
    fn pollable(&self) -> Option<&Pollable> {
        match self {
            Probe::Tcp { ready, .. } => Some(ready),
            Probe::Http(p) => Some(p.pollable()),
            Probe::Done(_) => None,
        }
    }

    /// The outcome if the probe finished; `None` while still pending.
    fn finish(&self) -> Option<Result<(), String>> {
        match self {
            Probe::Tcp { socket, .. } => match socket.finish_connect() {
                // Dropping the streams closes the connection; nothing is sent.
                Ok(_streams) => Some(Ok(())),
                Err(ErrorCode::WouldBlock) => None,
                Err(e) => Some(Err(describe(e))),
            },
            Probe::Http(p) => p.take().map(|r| {
                let status = r?.status();
                if (200..400).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("status {status}"))
                }
            }),
            Probe::Done(r) => Some(r.clone()),
        }
    }
}

/// Probe every witness; `Ok(())` for each one reached within `timeout_ms`.
pub fn probe_all(witnesses: &[NamedWitness], timeout_ms: u64) -> Vec<Result<(), String>> {
    let deadline = monotonic_clock::subscribe_duration(timeout_ms.saturating_mul(1_000_000));
    let mut probes: Vec<Probe> = witnesses
        .iter()
        .map(|w| match &w.witness {
            Witness::Tcp(addr) => match start_connect(*addr) {
                Ok((socket, ready)) => Probe::Tcp { ready, socket },
                Err(e) => Probe::Done(Err(e)),
            },
            Witness::Http(url) => match http::start(&Method::Get, url, None, None, timeout_ms) {
                Ok(p) => Probe::Http(p),
                Err(e) => Probe::Done(Err(e)),
            },
        })
        .collect();
    loop {
        let pending: Vec<(usize, &Pollable)> = probes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.pollable().map(|r| (i, r)))
            .collect();
        if pending.is_empty() {
            break;
        }
        let mut list: Vec<&Pollable> = pending.iter().map(|(_, p)| *p).collect();
        list.push(&deadline);
        let woke = poll::poll(&list);
        let timed_out = woke.contains(&(u32::try_from(pending.len()).unwrap_or(u32::MAX)));
        let ready: Vec<usize> = woke
            .iter()
            .filter_map(|&w| pending.get(w as usize).map(|(i, _)| *i))
            .collect();
        drop(list);
        drop(pending);
        for i in ready {
            if let Some(outcome) = probes[i].finish() {
                probes[i] = Probe::Done(outcome);
            }
        }
        if timed_out {
            for p in probes.iter_mut() {
                if !matches!(p, Probe::Done(_)) {
                    *p = Probe::Done(Err(format!("timeout after {timeout_ms}ms")));
                }
            }
        }
    }
    probes
        .into_iter()
        .map(|p| match p {
            Probe::Done(r) => r,
            _ => Err("not finished".into()),
        })
        .collect()
}

/// Start a non-blocking connect to `addr`.
fn start_connect(addr: SocketAddr) -> Result<(TcpSocket, Pollable), String> {
    let (family, remote) = match addr {
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
    };
    let socket = create_tcp_socket(family).map_err(describe)?;
    socket
        .start_connect(&instance_network(), remote)
        .map_err(describe)?;
    let ready = socket.subscribe();
    Ok((socket, ready))
}

/// A short reason for a socket error.
fn describe(e: ErrorCode) -> String {
    match e {
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::AccessDenied => "access denied (address not granted)".into(),
        ErrorCode::RemoteUnreachable => "remote unreachable".into(),
        ErrorCode::Timeout => "timeout".into(),
        other => other.name().replace('-', " "),
    }
}
