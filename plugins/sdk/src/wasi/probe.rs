//! TCP connect batches through the host's `probe` interface (contract 1.5.0): one host call
//! opens every connection of a batch and closes each as it opens, where a batch over
//! `wasi:sockets` (`super::tcp`) takes about fifteen calls per address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use wasi::clocks::monotonic_clock;

use crate::bindings::wasmalived::plugin::probe::{self, TcpError as Wit, TcpTarget};
use crate::net::{NetError, TcpClose, TcpError};

/// Targets the host takes in one call (`probe.tcp-connect`).
const MAX_TARGETS: usize = 64;

/// Connect to every address (from `from` if given) within `timeout`, closing each
/// connection as it opens as `close` says.
pub fn connect_all(
    from: Option<IpAddr>,
    addrs: &[SocketAddr],
    timeout: Duration,
    close: TcpClose,
) -> Vec<Result<(), NetError>> {
    let close = match close {
        TcpClose::Fin => probe::TcpClose::Fin,
        TcpClose::Reset => probe::TcpClose::Reset,
    };
    let bind = from.map(|ip| ip.to_string());
    let started = monotonic_clock::now();
    let mut outcomes = Vec::with_capacity(addrs.len());
    for batch in addrs.chunks(MAX_TARGETS) {
        let targets: Vec<TcpTarget> = batch
            .iter()
            .map(|a| TcpTarget {
                address: a.to_string(),
                bind: bind.clone(),
            })
            .collect();
        let spent = Duration::from_nanos(monotonic_clock::now().saturating_sub(started));
        let left = timeout.saturating_sub(spent);
        let replies = probe::tcp_connect(&targets, whole_millis(left), close);
        outcomes.extend(
            replies
                .into_iter()
                .map(|r| r.map(drop).map_err(|e| error(e, timeout))),
        );
    }
    outcomes
}

/// `d` in milliseconds, rounded up (a sub-millisecond timeout is not none), saturating.
fn whole_millis(d: Duration) -> u32 {
    u32::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u32::MAX)
}

/// The host's reason, as the SDK names it ([`TcpError`]).
fn error(e: Wit, timeout: Duration) -> NetError {
    NetError::Tcp(match e {
        Wit::Deadline => return NetError::Deadline(timeout),
        Wit::Refused => TcpError::Refused,
        Wit::Unreachable => TcpError::Unreachable,
        Wit::Timeout => TcpError::Timeout,
        Wit::Denied(_) => TcpError::Denied,
        Wit::Other(reason) => TcpError::Other(reason),
    })
}
