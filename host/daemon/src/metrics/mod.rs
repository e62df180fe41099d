//! The Prometheus endpoint (`global_defs { metrics_listen IP:PORT }`, off by default).
//!
//! ```text
//!   scrape ──► http (bounded HTTP/1 server) ──► render(Snapshot) ◄── StatusBoard::snapshot()
//!                                                                ◄── PluginRegistry::counts()
//! ```
//!
//! Everything exported is read at scrape time from the [`StatusBoard`] — the same document
//! `wasmalived status` shows — and from the plugin registry's counters; the endpoint keeps
//! no state of its own, so it cannot disagree with `status`. The counters the board did not
//! have before (state changes by reason, check results by kind, run-latency histograms) are
//! kept by their owners (the router driver, each check task) and published on the board.
//!
//! - [`labels`]: label values escaped and bounded; plugin measurement names sanitised and
//!   capped per check.
//! - [`render`]: the metric families (listed, with their labels, in `docs/metrics.md`).
//! - [`http`]: the listener and its limits.

pub mod http;
pub mod labels;
pub mod render;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

pub use http::{Limits, MetricsServer};

use crate::control::StatusBoard;
use wasmalived_plugin_host::reload::PluginRegistry;

/// The configured address cannot be listened on.
#[derive(Debug, thiserror::Error)]
#[error("metrics_listen {addr}: cannot listen")]
pub struct ListenError {
    /// The configured address.
    pub addr: SocketAddr,
    /// Why (in use, not an address of this host, ...).
    #[source]
    pub source: io::Error,
}

/// Serve the metrics of `board` and `plugins` on `addr` until [`MetricsServer::stop`].
pub async fn serve(
    addr: SocketAddr,
    board: StatusBoard,
    plugins: PluginRegistry,
) -> Result<MetricsServer, ListenError> {
    let render: http::Render = Arc::new(move |format| {
        let snapshot = render::Snapshot {
            status: board.snapshot(),
            plugins: plugins.counts(),
        };
        render::render(snapshot, format)
    });
    MetricsServer::bind(addr, render, Limits::default())
        .await
        .map_err(|source| ListenError { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_in_use_is_an_error_that_names_it() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let board = StatusBoard::new(std::path::Path::new("/etc/wasmalived/wasmalived.conf"));
        let err = serve(addr, board, PluginRegistry::new())
            .await
            .expect_err("the address is taken");
        let text = format!("{:#}", anyhow::Error::from(err));
        assert!(
            text.starts_with(&format!("metrics_listen {addr}: cannot listen: ")),
            "{text}"
        );
        assert!(text.contains("in use"), "{text}");
    }
}
