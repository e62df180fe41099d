//! Probing all witnesses at once, within one deadline: TCP connects and HTTP GETs are all
//! started first, then polled together ([`Host::network`]), so the run takes at most
//! `timeout_ms` however many witnesses there are.

use std::time::Duration;

use wasmalived_plugin_sdk::net::{HttpRequest, NetOp, NetReply};
use wasmalived_plugin_sdk::Host;

use crate::config::{NamedWitness, Witness};

/// Probe every witness; `Ok(())` for each one reached within `timeout_ms`: a TCP connection
/// opened, or any 2xx/3xx answer to a GET.
pub fn probe_all(
    host: &impl Host,
    witnesses: &[NamedWitness],
    timeout_ms: u64,
) -> Vec<Result<(), String>> {
    let ops: Vec<NetOp> = witnesses
        .iter()
        .map(|w| match &w.witness {
            Witness::Tcp(addr) => NetOp::Tcp(*addr),
            Witness::Http(url) => NetOp::Http(HttpRequest::get(url.clone())),
        })
        .collect();
    host.network(&ops, Duration::from_millis(timeout_ms))
        .into_iter()
        .map(|outcome| match outcome {
            Ok(NetReply::Connected) => Ok(()),
            Ok(NetReply::Http(r)) if (200..400).contains(&r.status) => Ok(()),
            Ok(NetReply::Http(r)) => Err(format!("status {}", r.status)),
            Err(e) => Err(e.to_string()),
        })
        .collect()
}
