//! The LVS director (keepalived's check module): `virtual_server`s whose real servers are
//! checked by sandboxed plugins (and keepalived's host-side checkers), with the pools
//! programmed into the kernel by a [`wasmalived_lvs::Backend`] (IPVS or nftables,
//! [`wasmalived_lvs::choose_backend`]).
//!
//! - [`manager`]: the director task — services, probes, applier, scripts, status.
//! - [`probe`]: what one checker runs (stock plugins for keepalived's checkers).
//! - [`ledger`]: a probe's runs as its task counts them, and which results the director sees.
//! - [`batch`]: probes due close together run on one timer wake-up.
//! - [`review`]: what the backend cannot do, said with file:line:column (`-t` too).
//! - [`dr`]: direct routing's next hops (interface and MAC of each real server).
//! - [`hooks`]: the director's scripts, vetted and queued.
//!
//! Its FIFO lines and alert mails are [`crate::alerts::lvs`]'s.
//! - [`status`]: the status document's `virtual_servers`.
//! - [`sync`]: connections that survive a director failover (`lvs_sync_daemon`).
//!
//! The director runs only while the configuration has virtual servers; it clears its tables
//! at start (left-overs of a killed run) and at shutdown.

pub mod batch;
pub mod dr;
pub mod file_check;
pub mod hooks;
pub mod ledger;
pub mod manager;
pub mod probe;
pub mod review;
pub mod status;
pub mod sync;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};
use wasmalived_config::lvs::LvsBackendChoice;
use wasmalived_config::Config;
use wasmalived_lvs::{Backend, BackendKind, Unavailable};

use crate::alerts::Alerts;
use crate::control::StatusBoard;
use crate::net::netlink::Netlink;
use manager::Command;
use probe::ProbeContext;

/// What the director needs from the daemon.
#[derive(Clone)]
pub struct DirectorContext {
    /// Plugin runtime and hot-reload registry.
    pub probes: ProbeContext,
    /// Status board.
    pub board: StatusBoard,
    /// Netlink (direct-routing next hops).
    pub netlink: Arc<Netlink>,
    /// The VIPs this node holds now (`ha_suspend`).
    pub held_vips: watch::Receiver<BTreeSet<IpAddr>>,
    /// Cancels every probe.
    pub cancel: CancellationToken,
    /// Tracks probe tasks for shutdown.
    pub tracker: TaskTracker,
}

/// The daemon's handle on the director task.
pub struct Director {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl Director {
    /// Start the director with the backend `choice` selects on this host (read once: a
    /// reload that changes `lvs_backend` takes effect at the next start).
    pub fn spawn(ctx: DirectorContext, choice: LvsBackendChoice) -> Self {
        let (commands, rx) = mpsc::channel(4);
        let task = tokio::spawn(
            async move {
                let backend = select_backend(choice).await;
                manager::run(ctx, backend, rx).await
            }
            .instrument(tracing::info_span!("lvs")),
        );
        Director { commands, task }
    }

    /// Apply `config` (start-up and reload); `alerts` are its notify FIFOs and mailer.
    pub async fn apply(&self, config: &Config, alerts: Arc<Alerts>) {
        if self
            .commands
            .send(Command::Apply(Box::new(config.clone()), alerts))
            .await
            .is_err()
        {
            warn!("the LVS director stopped: configuration not applied");
        }
    }

    /// Run the `omega` scripts, remove the tables, stop (bounded by the caller).
    pub async fn shutdown(self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).await.is_ok() {
            let _ = stopped.await;
        }
        let _ = self.task.await;
    }
}

/// A configuration from `text` that must be valid (for the director's tests).
#[cfg(test)]
pub(crate) fn test_config(text: &str) -> wasmalived_config::Config {
    wasmalived_config::parse_str(text, std::path::Path::new("t.conf"), Default::default())
        .expect("valid")
        .config
}

/// The backend for `choice` (netlink and maybe `modprobe ip_vs`: on a blocking thread). A
/// configured backend the kernel lacks becomes [`Unavailable`]: the review refuses every
/// virtual server with the reason.
async fn select_backend(choice: LvsBackendChoice) -> Box<dyn Backend> {
    let chosen = tokio::task::spawn_blocking(move || wasmalived_lvs::choose_backend(choice))
        .await
        .unwrap_or_else(|join| Err(wasmalived_lvs::SelectError::NoIpvs(join.to_string())));
    match chosen {
        Ok(backend) => {
            info!(backend = backend.name(), "LVS data path selected");
            backend
        }
        Err(e) => {
            error!("{e}");
            Box::new(Unavailable::new(BackendKind::Ipvs, e.to_string()))
        }
    }
}
