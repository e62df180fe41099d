//! `wasi:sockets`, only to the addresses granted: TCP (`tcp HOST:PORT`) and UDP
//! (`udp HOST:PORT`). TCP is linked always and off unless granted; UDP is linked only when
//! granted (a plugin importing it without the grant does not load). Name lookup is
//! disabled: grants are literal addresses. The check runs on every bind, connect, send and
//! receive:
//! - TCP: outgoing connects must match a TCP grant; listen/accept are refused;
//! - UDP: sends must go to a UDP grant, and datagrams from anyone else are dropped before
//!   the plugin sees them;
//! - binds: only an ephemeral port (0), on the wildcard address or on the granted source
//!   address (an LVS checker's `bindto`).
//!
//! A refused use is logged and recorded in the run's denials.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi::p2::bindings::sockets;
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSockets, WasiSocketsView};
use wasmtime_wasi::WasiCtxBuilder;

use crate::state::{Denials, HostState};

/// One parsed grant: an address and a port (`None` = any port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketTarget {
    /// The literal IP.
    pub ip: IpAddr,
    /// The port, or any.
    pub port: Option<u16>,
}

impl SocketTarget {
    fn matches(&self, addr: SocketAddr) -> bool {
        self.ip == addr.ip() && self.port.is_none_or(|p| p == addr.port())
    }
}

/// Parse a `kind` (`tcp`, `udp`) grant: `1.2.3.4:80`, `[2001:db8::1]:443`, `127.0.0.1:*`.
pub fn parse_target(kind: &str, grant: &str) -> Result<SocketTarget, String> {
    let s = grant.trim();
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{kind} grant `{s}`: expected HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("{kind} grant `{s}`: `{host}` is not a literal IP address"))?;
    let port = if port == "*" {
        None
    } else {
        Some(
            port.parse()
                .map_err(|_| format!("{kind} grant `{s}`: bad port `{port}`"))?,
        )
    };
    Ok(SocketTarget { ip, port })
}

/// What a check may reach over `wasi:sockets`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketGrants {
    /// TCP connect targets.
    pub tcp: Vec<SocketTarget>,
    /// UDP peers.
    pub udp: Vec<SocketTarget>,
    /// The source address a socket may bind (with port 0), besides the wildcard.
    pub source: Option<IpAddr>,
}

impl SocketGrants {
    /// Whether `use_` of `addr` is allowed.
    pub fn allowed(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        match use_ {
            SocketAddrUse::TcpConnect => self.tcp.iter().any(|t| t.matches(addr)),
            SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                self.udp.iter().any(|t| t.matches(addr))
            }
            // The implicit bind before a connect or send uses the wildcard address and port
            // 0; an explicit one may pick the granted source address (an ephemeral port
            // still).
            SocketAddrUse::TcpBind => !self.tcp.is_empty() && self.ephemeral_bind(addr),
            SocketAddrUse::UdpBind => !self.udp.is_empty() && self.ephemeral_bind(addr),
            _ => false,
        }
    }

    fn ephemeral_bind(&self, addr: SocketAddr) -> bool {
        addr.port() == 0 && (addr.ip().is_unspecified() || Some(addr.ip()) == self.source)
    }

    /// A TCP server a plugin names for a capability other than `wasi:sockets` (`use_`:
    /// `probe`, `wake on-disconnect`): a literal `IP:PORT` (`[v6]:PORT`), as in `allow_tcp`,
    /// that these grants let it connect to. A malformed address is the plugin's error and is
    /// not recorded; one outside the grants is recorded in `denials`.
    pub fn tcp_server(
        &self,
        address: &str,
        use_: &str,
        denials: &Denials,
    ) -> Result<SocketAddr, TargetRefused> {
        let addr: SocketAddr = address.trim().parse().map_err(|_| {
            TargetRefused::Malformed(format!(
                "`{address}` is not a literal IP:PORT (e.g. `192.0.2.1:80`, `[2001:db8::1]:443`)"
            ))
        })?;
        if !self.allowed(addr, SocketAddrUse::TcpConnect) {
            denials.record(|| format!("{use_} tcp {addr} (not granted: `allow_tcp`)"));
            return Err(TargetRefused::NotGranted(format!(
                "`{addr}` is not an address the check may connect to (`allow_tcp`)"
            )));
        }
        Ok(addr)
    }
}

/// Why [`SocketGrants::tcp_server`] refused an address; each carries its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRefused {
    /// Not a literal `IP:PORT`.
    Malformed(String),
    /// Outside the TCP grants (recorded as a denial).
    NotGranted(String),
}

impl TargetRefused {
    /// The message for the plugin.
    pub fn into_message(self) -> String {
        match self {
            TargetRefused::Malformed(m) | TargetRefused::NotGranted(m) => m,
        }
    }
}

/// Configure the run's WASI context: TCP and UDP only as `grants` say, no name lookup.
pub fn configure(builder: &mut WasiCtxBuilder, grants: Arc<SocketGrants>, denials: Denials) {
    builder
        .allow_ip_name_lookup(false)
        .allow_tcp(!grants.tcp.is_empty())
        .allow_udp(!grants.udp.is_empty());
    if grants.tcp.is_empty() && grants.udp.is_empty() {
        return;
    }
    builder.socket_addr_check(move |addr, use_| {
        let ok = grants.allowed(addr, use_);
        if !ok {
            let proto = match use_ {
                SocketAddrUse::UdpBind | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                    "udp"
                }
                _ => "tcp",
            };
            tracing::warn!(%addr, ?use_, "plugin socket use denied (not granted)");
            denials.record(|| format!("{proto} {addr} {use_:?} (not granted)"));
        }
        Box::pin(async move { ok })
    });
}

/// Link the TCP interfaces (always; connects are refused unless `tcp` is granted).
pub fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    sockets::tcp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::instance_network::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::network::add_to_linker::<HostState, WasiSockets>(
        l,
        &sockets::network::LinkOptions::default(),
        HostState::sockets,
    )?;
    sockets::ip_name_lookup::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    Ok(())
}

/// Link the UDP interfaces (only when `udp` is granted; `network` and `instance-network`
/// come with the TCP unit, which is always linked).
pub fn add_udp_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    sockets::udp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::udp_create_socket::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn parse_and_match() {
        let t = |s: &str| parse_target("tcp", s);
        let a = t("127.0.0.1:8080").expect("v4");
        let b = t("[2001:db8::1]:*").expect("v6 any port");
        assert!(t("localhost:80").is_err());
        assert_eq!(
            parse_target("udp", "192.0.2.53").expect_err("no port"),
            "udp grant `192.0.2.53`: expected HOST:PORT"
        );
        let grants = SocketGrants {
            tcp: vec![a, b],
            ..SocketGrants::default()
        };
        let ok = |g: &SocketGrants, s: &str, use_| g.allowed(sa(s), use_);
        assert!(ok(&grants, "127.0.0.1:8080", SocketAddrUse::TcpConnect));
        assert!(!ok(&grants, "127.0.0.1:8081", SocketAddrUse::TcpConnect));
        assert!(ok(&grants, "[2001:db8::1]:22", SocketAddrUse::TcpConnect));
        assert!(!ok(&grants, "127.0.0.1:8080", SocketAddrUse::TcpListen));
        assert!(ok(&grants, "0.0.0.0:0", SocketAddrUse::TcpBind));
        assert!(!ok(&grants, "0.0.0.0:80", SocketAddrUse::TcpBind));
        // bindto: the granted source address, ephemeral port only; no other address.
        let bound = SocketGrants {
            source: Some("192.0.2.5".parse().expect("ip")),
            ..grants.clone()
        };
        assert!(ok(&bound, "192.0.2.5:0", SocketAddrUse::TcpBind));
        assert!(!ok(&bound, "192.0.2.5:22", SocketAddrUse::TcpBind));
        assert!(!ok(&bound, "192.0.2.6:0", SocketAddrUse::TcpBind));
        assert!(!ok(&grants, "192.0.2.5:0", SocketAddrUse::TcpBind));
        // A TCP grant is no UDP grant.
        assert!(!ok(&grants, "0.0.0.0:0", SocketAddrUse::UdpBind));
        assert!(!ok(&grants, "127.0.0.1:8080", SocketAddrUse::UdpSend));
    }

    #[test]
    fn udp_reaches_only_its_granted_peers() {
        let grants = SocketGrants {
            udp: vec![parse_target("udp", "192.0.2.53:53").expect("grant")],
            source: Some("192.0.2.5".parse().expect("ip")),
            ..SocketGrants::default()
        };
        let ok = |s: &str, use_| grants.allowed(sa(s), use_);
        assert!(ok("192.0.2.53:53", SocketAddrUse::UdpSend));
        assert!(ok("192.0.2.53:53", SocketAddrUse::UdpReceive));
        assert!(!ok("192.0.2.53:5353", SocketAddrUse::UdpSend));
        assert!(
            !ok("192.0.2.54:53", SocketAddrUse::UdpReceive),
            "a stranger"
        );
        assert!(ok("0.0.0.0:0", SocketAddrUse::UdpBind));
        assert!(ok("192.0.2.5:0", SocketAddrUse::UdpBind));
        assert!(!ok("0.0.0.0:53", SocketAddrUse::UdpBind), "no fixed port");
        assert!(!ok("192.0.2.53:53", SocketAddrUse::TcpConnect));
    }
}
