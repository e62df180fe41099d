//! `wasmalived:plugin/probe` (contract 1.5.0): TCP connects the host makes for a check, only
//! to the addresses its `allow_tcp` grants reach, from the wildcard or its granted source
//! address (`bindto`).
//!
//! A connect check over `wasi:sockets` makes about fifteen host calls per target (create the
//! socket, take the network, start the connect, subscribe, a deadline, poll, finish, then drop
//! two streams, the socket, the network and two pollables), each a lift/lower, a resource-table
//! entry and, for the poll, a fiber switch; dropping the output stream also calls
//! `shutdown(SHUT_WR)` before the close. `tcp-connect` is one call for a whole batch: the
//! targets are connected concurrently on the run's own thread and each connection is closed
//! as it opens — with a FIN by a plain `close` (keepalived's `TCP_CHECK`), or with a reset
//! (`SO_LINGER` 0, HAProxy's checks: no FIN exchange, no `TIME_WAIT` on this host).
//!
//! Linked always; a target outside the grants is refused (and recorded as a denial of the
//! run) like a `wasi:sockets` connect the socket policy refuses (`sockets.rs`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpSocket;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::sockets::SocketAddrUse;

use super::sockets::{SocketGrants, TargetRefused};
use crate::bindings::wasmalived::plugin::probe::{self as wit, TcpClose, TcpError, TcpTarget};
use crate::state::{Denials, HostState};

/// Targets one `tcp-connect` call may name (the connects of a call run at once).
pub const MAX_TARGETS: usize = 64;

/// What a run's probes may reach: the check's TCP grants.
pub struct ProbeCap {
    sockets: Arc<SocketGrants>,
    denials: Denials,
}

/// A target the grants admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Admitted {
    to: SocketAddr,
    from: Option<IpAddr>,
}

impl ProbeCap {
    /// The probe capability of one run: `sockets` are the check's TCP grants; refused uses
    /// go to `denials`.
    pub fn new(sockets: Arc<SocketGrants>, denials: Denials) -> Self {
        Self { sockets, denials }
    }

    /// Check one target against the grants. A malformed address is the plugin's error, not a
    /// use of the capability: refused without a denial.
    fn admit(&self, target: &TcpTarget) -> Result<Admitted, TcpError> {
        let to = self
            .sockets
            .tcp_server(&target.address, "probe", &self.denials)
            .map_err(|refused| match refused {
                TargetRefused::Malformed(m) => TcpError::Other(m),
                TargetRefused::NotGranted(m) => {
                    tracing::warn!(address = %target.address, "plugin probe denied (not granted)");
                    TcpError::Denied(m)
                }
            })?;
        let from = match &target.bind {
            None => None,
            Some(bind) => {
                let ip: IpAddr = bind.trim().parse().map_err(|_| {
                    TcpError::Other(format!("bind `{bind}` is not a literal IP address"))
                })?;
                if !self
                    .sockets
                    .allowed(SocketAddr::new(ip, 0), SocketAddrUse::TcpBind)
                {
                    tracing::warn!(%ip, "plugin probe bind denied (not granted)");
                    self.denials
                        .record(|| format!("probe tcp bind {ip} (not the granted source)"));
                    return Err(TcpError::Denied(format!(
                        "`{ip}` is not a source address the check may bind (`bindto`)"
                    )));
                }
                Some(ip)
            }
        };
        Ok(Admitted { to, from })
    }

    /// Connect to every target at once within `timeout`; outcomes in the targets' order.
    pub async fn tcp_connect(
        &self,
        targets: &[TcpTarget],
        timeout: Duration,
        close: TcpClose,
    ) -> Vec<Result<u64, TcpError>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let probes = targets.iter().map(|target| async move {
            let admitted = self.admit(target)?;
            connect(admitted, close, deadline).await
        });
        futures::future::join_all(probes).await
    }
}

/// One connect: the time it took in nanoseconds, the connection closed as `close` says.
async fn connect(
    target: Admitted,
    close: TcpClose,
    deadline: tokio::time::Instant,
) -> Result<u64, TcpError> {
    let socket = match target.to {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| describe(&e))?;
    if let Some(ip) = target.from {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| TcpError::Other(format!("bind {ip}: {}", e.kind())))?;
    }
    let started = Instant::now();
    let stream = match tokio::time::timeout_at(deadline, socket.connect(target.to)).await {
        Err(_) => return Err(TcpError::Deadline),
        Ok(Err(e)) => return Err(describe(&e)),
        Ok(Ok(stream)) => stream,
    };
    let took = started.elapsed();
    if close == TcpClose::Reset {
        // `SO_LINGER` 0: the close below sends a reset and keeps no `TIME_WAIT`. Should it
        // fail, the close is an orderly one: the check's outcome does not depend on it.
        if let Err(e) = stream.set_zero_linger() {
            tracing::debug!(to = %target.to, error = %e, "SO_LINGER 0 not set");
        }
    }
    drop(stream);
    Ok(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX))
}

/// A failed connect, as the contract names it.
fn describe(e: &std::io::Error) -> TcpError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => TcpError::Refused,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => TcpError::Unreachable,
        ErrorKind::TimedOut => TcpError::Timeout,
        kind => TcpError::Other(kind.to_string()),
    }
}

impl wit::Host for ProbeCap {
    async fn tcp_connect(
        &mut self,
        targets: Vec<TcpTarget>,
        timeout_ms: u32,
        close: TcpClose,
    ) -> wasmtime::Result<Vec<Result<u64, TcpError>>> {
        if targets.len() > MAX_TARGETS {
            wasmtime::bail!(
                "probe.tcp-connect: {} targets in one call, at most {MAX_TARGETS}",
                targets.len()
            );
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        Ok(ProbeCap::tcp_connect(self, &targets, timeout, close).await)
    }
}

/// Link `probe` (always; every target is checked against the TCP grants at call time).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<ProbeCap>>(linker, |s| &mut s.probe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::sockets::parse_target;

    fn cap(tcp: &[&str], source: Option<&str>, denials: &Denials) -> ProbeCap {
        let grants = SocketGrants {
            tcp: tcp
                .iter()
                .map(|g| parse_target("tcp", g).expect("grant"))
                .collect(),
            source: source.map(|s| s.parse().expect("ip")),
            ..SocketGrants::default()
        };
        ProbeCap::new(Arc::new(grants), denials.clone())
    }

    fn target(address: &str, bind: Option<&str>) -> TcpTarget {
        TcpTarget {
            address: address.into(),
            bind: bind.map(Into::into),
        }
    }

    async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let addr = l.local_addr().expect("addr");
        (l, addr)
    }

    #[tokio::test]
    async fn connects_to_granted_targets_and_names_each_outcome_in_order() {
        let (_open, up) = listener().await;
        let (closed, down) = listener().await;
        drop(closed);
        let denials = Denials::default();
        let cap = cap(&["127.0.0.1:*"], None, &denials);
        let targets = [
            target(&up.to_string(), None),
            target(&down.to_string(), None),
        ];
        let out = cap
            .tcp_connect(&targets, Duration::from_secs(5), TcpClose::Fin)
            .await;
        assert_eq!(out.len(), 2);
        let took = out[0].as_ref().expect("the listener answers");
        assert!(*took > 0 && *took < 5_000_000_000, "{took} ns");
        assert!(matches!(out[1], Err(TcpError::Refused)), "{:?}", out[1]);
        assert!(denials.take().is_empty());
    }

    #[tokio::test]
    async fn a_reset_close_resets_the_servers_side_and_a_fin_closes_it() {
        use tokio::io::AsyncReadExt;
        let (l, addr) = listener().await;
        let cap = cap(&["127.0.0.1:*"], None, &Denials::default());
        let one = [target(&addr.to_string(), None)];
        for (close, reset) in [(TcpClose::Reset, true), (TcpClose::Fin, false)] {
            let out = cap.tcp_connect(&one, Duration::from_secs(5), close).await;
            assert!(out[0].is_ok(), "{close:?}: {:?}", out[0]);
            let (mut accepted, _) = l.accept().await.expect("accept");
            let mut buf = [0u8; 1];
            let read = accepted.read(&mut buf).await;
            match read {
                Ok(0) => assert!(!reset, "{close:?}: an orderly end of stream"),
                Err(e) => {
                    assert!(reset, "{close:?}: {e}");
                    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
                }
                Ok(n) => panic!("{close:?}: the probe sent {n} bytes"),
            }
        }
    }

    #[tokio::test]
    async fn targets_outside_the_grants_are_denied_and_recorded() {
        let (_l, up) = listener().await;
        let denials = Denials::default();
        let cap = cap(&[&up.to_string()], Some("127.0.0.2"), &denials);
        let other_port = SocketAddr::new(up.ip(), up.port().wrapping_add(1));
        let targets = [
            target(&other_port.to_string(), None),
            target(&up.to_string(), Some("127.0.0.3")),
            target("localhost:80", None),
            target(&up.to_string(), Some("127.0.0.2")),
        ];
        let out = cap
            .tcp_connect(&targets, Duration::from_secs(5), TcpClose::Fin)
            .await;
        assert!(
            matches!(&out[0], Err(TcpError::Denied(r)) if r.contains("(`allow_tcp`)")),
            "{:?}",
            out[0]
        );
        assert!(
            matches!(&out[1], Err(TcpError::Denied(r)) if r.contains("`127.0.0.3`")),
            "{:?}",
            out[1]
        );
        assert!(
            matches!(&out[2], Err(TcpError::Other(r)) if r.contains("not a literal IP:PORT")),
            "{:?}",
            out[2]
        );
        assert!(out[3].is_ok(), "the granted source: {:?}", out[3]);
        assert_eq!(
            denials.take(),
            vec![
                format!("probe tcp {other_port} (not granted: `allow_tcp`)"),
                "probe tcp bind 127.0.0.3 (not the granted source)".to_string(),
            ]
        );
    }

    #[tokio::test]
    async fn a_target_that_does_not_answer_is_a_deadline() {
        // A listener whose accept queue is full drops the next SYN: that connect hangs.
        let full = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        full.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind");
        full.listen(0).expect("listen");
        let addr = full.local_addr().expect("addr").as_socket().expect("inet");
        let _queued = std::net::TcpStream::connect(addr).expect("fills the queue");
        let cap = cap(&["127.0.0.1:*"], None, &Denials::default());
        let out = cap
            .tcp_connect(
                &[target(&addr.to_string(), None)],
                Duration::from_millis(300),
                TcpClose::Fin,
            )
            .await;
        assert!(matches!(out[0], Err(TcpError::Deadline)), "{:?}", out[0]);
    }
}
