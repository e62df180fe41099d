//! `wasi:sockets` TCP, only to the addresses granted (`tcp HOST:PORT`). Linked only when
//! `tcp` is granted; UDP is never linked and is disabled in the context as well. Name lookup
//! is disabled: grants are literal addresses. The check runs on every bind/connect: outgoing
//! connects must match a grant; only the implicit wildcard bind of a connect is allowed;
//! listen/accept are refused.

use std::net::{IpAddr, SocketAddr};

use wasmtime::component::Linker;
use wasmtime_wasi::p2::bindings::sockets;
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSockets, WasiSocketsView};
use wasmtime_wasi::WasiCtxBuilder;

use crate::state::{Denials, HostState};
use wasmalived_config::grants::TcpGrant;

/// One parsed grant: an address and a port (`None` = any port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTarget {
    /// The literal IP.
    pub ip: IpAddr,
    /// The port, or any.
    pub port: Option<u16>,
}

/// Parse `1.2.3.4:80`, `[2001:db8::1]:443`, `127.0.0.1:*`.
pub fn parse_target(grant: &TcpGrant) -> Result<TcpTarget, String> {
    let s = grant.0.trim();
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("tcp grant `{s}`: expected HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("tcp grant `{s}`: `{host}` is not a literal IP address"))?;
    let port = if port == "*" {
        None
    } else {
        Some(
            port.parse()
                .map_err(|_| format!("tcp grant `{s}`: bad port `{port}`"))?,
        )
    };
    Ok(TcpTarget { ip, port })
}

/// Whether `use_` of `addr` is allowed by `targets` (and the granted `source` address).
pub fn allowed(
    targets: &[TcpTarget],
    source: Option<IpAddr>,
    addr: SocketAddr,
    use_: SocketAddrUse,
) -> bool {
    match use_ {
        SocketAddrUse::TcpConnect => targets
            .iter()
            .any(|t| t.ip == addr.ip() && t.port.is_none_or(|p| p == addr.port())),
        // The implicit bind before a connect uses the wildcard address and port 0; an
        // explicit one may pick the granted source address (an ephemeral port still).
        SocketAddrUse::TcpBind => {
            addr.port() == 0 && (addr.ip().is_unspecified() || Some(addr.ip()) == source)
        }
        _ => false,
    }
}

/// Configure the run's WASI context: TCP only to `targets` (from `source` if bound), no UDP,
/// no name lookup.
pub fn configure(
    builder: &mut WasiCtxBuilder,
    targets: Vec<TcpTarget>,
    source: Option<IpAddr>,
    denials: Denials,
) {
    builder.allow_udp(false).allow_ip_name_lookup(false);
    if targets.is_empty() {
        builder.allow_tcp(false);
        return;
    }
    builder
        .allow_tcp(true)
        .socket_addr_check(move |addr, use_| {
            let ok = allowed(&targets, source, addr, use_);
            if !ok {
                tracing::warn!(%addr, ?use_, "plugin socket use denied (not granted)");
                denials.record(|| format!("tcp {addr} {use_:?} (not granted)"));
            }
            Box::pin(async move { ok })
        });
}

/// Link the TCP interfaces (only when `tcp` is granted).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let t = |s: &str| parse_target(&TcpGrant(s.into()));
        let a = t("127.0.0.1:8080").expect("v4");
        let b = t("[2001:db8::1]:*").expect("v6 any port");
        assert!(t("localhost:80").is_err());
        assert!(t("127.0.0.1").is_err());
        let targets = [a, b];
        let sa = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert!(allowed(
            &targets,
            None,
            sa("127.0.0.1:8080"),
            SocketAddrUse::TcpConnect
        ));
        assert!(!allowed(
            &targets,
            None,
            sa("127.0.0.1:8081"),
            SocketAddrUse::TcpConnect
        ));
        assert!(allowed(
            &targets,
            None,
            sa("[2001:db8::1]:22"),
            SocketAddrUse::TcpConnect
        ));
        assert!(!allowed(
            &targets,
            None,
            sa("127.0.0.1:8080"),
            SocketAddrUse::TcpListen
        ));
        assert!(allowed(
            &targets,
            None,
            sa("0.0.0.0:0"),
            SocketAddrUse::TcpBind
        ));
        assert!(!allowed(
            &targets,
            None,
            sa("0.0.0.0:80"),
            SocketAddrUse::TcpBind
        ));
        // bindto: the granted source address, ephemeral port only; no other address.
        let src = Some("192.0.2.5".parse().expect("ip"));
        assert!(allowed(
            &targets,
            src,
            sa("192.0.2.5:0"),
            SocketAddrUse::TcpBind
        ));
        assert!(!allowed(
            &targets,
            src,
            sa("192.0.2.5:22"),
            SocketAddrUse::TcpBind
        ));
        assert!(!allowed(
            &targets,
            src,
            sa("192.0.2.6:0"),
            SocketAddrUse::TcpBind
        ));
        assert!(!allowed(
            &targets,
            None,
            sa("192.0.2.5:0"),
            SocketAddrUse::TcpBind
        ));
        assert!(!allowed(
            &targets,
            None,
            sa("127.0.0.1:8080"),
            SocketAddrUse::UdpBind
        ));
    }
}
