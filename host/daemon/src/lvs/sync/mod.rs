//! Connections that survive a director failover (keepalived's `lvs_sync_daemon`): the
//! director's connection state is copied to the other director over the sync interface, so
//! the new Master forwards an established connection exactly as the old one did.
//!
//! ```text
//!   router driver ── InstanceStates (watch) ──▶ sync task ──▶ SyncEngine
//!                                               (follows one     enter(Master|Backup)
//!                                                vrrp_instance)  restart if it dies
//! ```
//!
//! One task owns the engine. It reads the state of the `vrrp_instance` named by
//! `lvs_sync_daemon` and puts the engine in [`Role::Master`] (send our connections) while
//! that instance is Master, [`Role::Backup`] (receive the peer's) otherwise — as keepalived
//! starts IPVS's master or backup sync daemon on the instance's transitions.
//!
//! The engine depends on the data path: on nftables the connections are the kernel's
//! connection-tracking entries, synced by Debian's `conntrackd` ([`conntrackd`]); on IPVS
//! they are IPVS's connection table, synced by the kernel's own sync daemons ([`ipvs`]);
//! [`engine_for`] picks the one the host's backend needs.

pub mod conntrackd;
pub mod ipvs;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Instrument};
use wasmalived_config::lvs::{LvsBackendChoice, LvsSyncDaemon};
use wasmalived_config::Config;
use wasmalived_lvs::BackendKind;

use crate::daemon::driver::InstanceStates;
use crate::net::netlink::Netlink;
use crate::notify::NotifyState;

/// How long a dead engine waits before it is started again.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// The longest wait between failed starts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// How long stopping may take before the engine is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What the engine does for the followed instance's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The instance is Master: this director forwards, its connections are sent.
    Master,
    /// Anything else (Backup, Fault, stopped, not started yet): receive the peer's
    /// connections, ready for a takeover.
    Backup,
}

impl Role {
    /// The role for the instance's last reported state (`None`: not reported yet).
    pub fn of(state: Option<NotifyState>) -> Role {
        match state {
            Some(NotifyState::Master) => Role::Master,
            _ => Role::Backup,
        }
    }
}

/// Why an engine could not do something (the message says what and where).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SyncError(pub String);

/// A connection-sync mechanism, driven by the sync task: [`conntrackd`] (nftables) or
/// [`ipvs`] (the kernel's IPVS sync daemons, `IPVS_CMD_NEW_DAEMON` master/backup on the sync
/// interface, with `lvs_sync_daemon`'s id, maxlen, port, ttl and group).
pub trait SyncEngine: Send + 'static {
    /// What it is called in logs.
    fn name(&self) -> &'static str;

    /// Start syncing (in no role yet); `Err` when it cannot run at all.
    fn start(&mut self) -> impl std::future::Future<Output = Result<(), SyncError>> + Send;

    /// Take `role` (called on every change, and again after a restart).
    fn enter(
        &mut self,
        role: Role,
    ) -> impl std::future::Future<Output = Result<(), SyncError>> + Send;

    /// Resolves when the engine stopped by itself (a crashed helper), with why.
    fn died(&mut self) -> impl std::future::Future<Output = String> + Send;

    /// Stop syncing and release what `start` took.
    fn stop(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// The running sync: the daemon starts it when `lvs_sync_daemon` is set and replaces it when
/// the setting changes.
pub struct ConnectionSync {
    settings: LvsSyncDaemon,
    backend: LvsBackendChoice,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// What the sync task needs from the daemon.
#[derive(Clone)]
pub struct SyncContext {
    /// The instances' states, from the router driver.
    pub states: watch::Receiver<InstanceStates>,
    /// Netlink (the sync interface's address).
    pub netlink: Arc<Netlink>,
    /// The daemon's state directory (the engine's files go below it).
    pub state_dir: PathBuf,
}

/// The engine for the data path this host gives `config` (IPVS: the kernel's sync daemons;
/// nftables: conntrackd), or why there is none.
pub async fn engine_for(
    config: &Config,
    sync: &LvsSyncDaemon,
    ctx: &SyncContext,
) -> Result<Engine, SyncError> {
    let choice = config.global.lvs_backend;
    // Detection may run `modprobe -n`: off the runtime's threads.
    let kind = tokio::task::spawn_blocking(move || wasmalived_lvs::detect(choice))
        .await
        .map_err(|e| SyncError(format!("lvs_sync_daemon: {e}")))?
        .map_err(|e| SyncError(format!("lvs_sync_daemon: {e}")))?;
    match kind {
        BackendKind::Ipvs => {
            let vrid = config
                .instances
                .iter()
                .find(|i| i.name == sync.instance)
                .map(|i| i.vrid.get())
                .ok_or_else(|| {
                    SyncError(format!(
                        "lvs_sync_daemon: vrrp_instance {} is not defined",
                        sync.instance
                    ))
                })?;
            Ok(Engine::Ipvs(ipvs::IpvsSync::new(sync.clone(), vrid)))
        }
        BackendKind::Nftables => Ok(Engine::Conntrackd(conntrackd::Conntrackd::new(
            sync.clone(),
            ctx.state_dir.join("conntrackd"),
            Arc::clone(&ctx.netlink),
        ))),
    }
}

/// The engine of one data path ([`SyncEngine`] returns futures, so it is not a trait object).
pub enum Engine {
    /// nftables: conntrackd.
    Conntrackd(conntrackd::Conntrackd),
    /// IPVS: the kernel's sync daemons.
    Ipvs(ipvs::IpvsSync),
}

impl SyncEngine for Engine {
    fn name(&self) -> &'static str {
        match self {
            Engine::Conntrackd(e) => e.name(),
            Engine::Ipvs(e) => e.name(),
        }
    }

    async fn start(&mut self) -> Result<(), SyncError> {
        match self {
            Engine::Conntrackd(e) => e.start().await,
            Engine::Ipvs(e) => e.start().await,
        }
    }

    async fn enter(&mut self, role: Role) -> Result<(), SyncError> {
        match self {
            Engine::Conntrackd(e) => e.enter(role).await,
            Engine::Ipvs(e) => e.enter(role).await,
        }
    }

    async fn died(&mut self) -> String {
        match self {
            Engine::Conntrackd(e) => e.died().await,
            Engine::Ipvs(e) => e.died().await,
        }
    }

    async fn stop(&mut self) {
        match self {
            Engine::Conntrackd(e) => e.stop().await,
            Engine::Ipvs(e) => e.stop().await,
        }
    }
}

impl ConnectionSync {
    /// Start following `sync.instance` with `engine`.
    pub fn spawn<E: SyncEngine>(
        sync: &LvsSyncDaemon,
        backend: LvsBackendChoice,
        engine: E,
        states: watch::Receiver<InstanceStates>,
    ) -> Self {
        let cancel = CancellationToken::new();
        let span = tracing::info_span!(
            "conn_sync",
            engine = engine.name(),
            iface = %sync.interface,
            instance = %sync.instance
        );
        let task = tokio::spawn(
            follow(engine, sync.instance.clone(), states, cancel.clone()).instrument(span),
        );
        ConnectionSync {
            settings: sync.clone(),
            backend,
            cancel,
            task,
        }
    }

    /// Whether it runs with these settings (a reload with the same ones keeps it).
    pub fn runs(&self, sync: &LvsSyncDaemon, backend: LvsBackendChoice) -> bool {
        self.settings == *sync && self.backend == backend
    }

    /// Stop the engine (bounded) and the task.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if tokio::time::timeout(STOP_GRACE * 2, self.task)
            .await
            .is_err()
        {
            warn!("connection sync did not stop in time");
        }
    }
}

/// The sync task: start the engine, keep it in the instance's role, restart it if it dies.
async fn follow<E: SyncEngine>(
    mut engine: E,
    instance: String,
    mut states: watch::Receiver<InstanceStates>,
    cancel: CancellationToken,
) {
    // Doubles after each failed start (a missing conntrackd is not retried every second).
    let mut retry = RESTART_DELAY;
    'run: loop {
        if let Err(err) = engine.start().await {
            error!("{err}; retrying in {retry:?}");
            engine.stop().await;
            tokio::select! {
                () = cancel.cancelled() => break 'run,
                () = tokio::time::sleep(retry) => {
                    retry = (retry * 2).min(MAX_RETRY_DELAY);
                    continue 'run
                }
            }
        }
        retry = RESTART_DELAY;
        info!("connection sync started");
        let mut role = None;
        loop {
            let want = Role::of(states.borrow_and_update().get(&instance).copied());
            if role != Some(want) {
                info!(?want, "connection sync role");
                if let Err(err) = engine.enter(want).await {
                    warn!(role = ?want, "{err}");
                }
                role = Some(want);
            }
            tokio::select! {
                () = cancel.cancelled() => break 'run,
                changed = states.changed() => if changed.is_err() { break 'run },
                why = engine.died() => {
                    warn!("{why}; restarting in {RESTART_DELAY:?}");
                    engine.stop().await;
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(RESTART_DELAY) => continue 'run,
                    }
                }
            }
        }
    }
    engine.stop().await;
    info!("connection sync stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    #[test]
    fn only_master_sends_everything_else_receives() {
        assert_eq!(Role::of(Some(NotifyState::Master)), Role::Master);
        for other in [
            None,
            Some(NotifyState::Backup),
            Some(NotifyState::Fault),
            Some(NotifyState::Stop),
        ] {
            assert_eq!(Role::of(other), Role::Backup, "{other:?}");
        }
    }

    /// An engine that records its calls; it dies once if `dies` is set, and fails its
    /// first `failed_starts` starts.
    #[derive(Clone, Default)]
    struct Recorder {
        calls: Arc<Mutex<Vec<String>>>,
        dies: Arc<Mutex<bool>>,
        failed_starts: Arc<Mutex<u32>>,
    }

    impl Recorder {
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl SyncEngine for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        async fn start(&mut self) -> Result<(), SyncError> {
            self.calls.lock().unwrap().push("start".into());
            let mut failing = self.failed_starts.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err(SyncError("no conntrackd".into()));
            }
            Ok(())
        }
        async fn enter(&mut self, role: Role) -> Result<(), SyncError> {
            self.calls.lock().unwrap().push(format!("{role:?}"));
            Ok(())
        }
        async fn died(&mut self) -> String {
            if std::mem::take(&mut *self.dies.lock().unwrap()) {
                return "crashed".into();
            }
            std::future::pending().await
        }
        async fn stop(&mut self) {
            self.calls.lock().unwrap().push("stop".into());
        }
    }

    fn settings() -> LvsSyncDaemon {
        crate::lvs::test_config(
            "global_defs {\n lvs_sync_daemon eth1 VI_1\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
        )
        .global
        .lvs_sync_daemon
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_engine_is_restarted_and_put_back_in_its_role() {
        let (tx, rx) = watch::channel(BTreeMap::new());
        tx.send_modify(|s| {
            s.insert("VI_1".to_owned(), NotifyState::Master);
        });
        let calls = Recorder::default();
        *calls.dies.lock().unwrap() = true;
        let sync = ConnectionSync::spawn(&settings(), LvsBackendChoice::Auto, calls.clone(), rx);
        // Past the restart delay (virtual time).
        tokio::time::sleep(RESTART_DELAY * 2).await;
        settle().await;
        sync.shutdown().await;
        assert_eq!(
            calls.calls(),
            ["start", "Master", "stop", "start", "Master", "stop"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_starts_are_retried_ever_more_slowly() {
        let (_tx, rx) = watch::channel(BTreeMap::new());
        let calls = Recorder::default();
        *calls.failed_starts.lock().unwrap() = 3;
        let sync = ConnectionSync::spawn(&settings(), LvsBackendChoice::Auto, calls.clone(), rx);
        // 1 s, then 2 s: the third start comes after 3 s, the fourth only after 7 s.
        tokio::time::sleep(RESTART_DELAY * 3 + Duration::from_millis(500)).await;
        settle().await;
        assert_eq!(calls.calls().iter().filter(|c| *c == "start").count(), 3);
        tokio::time::sleep(RESTART_DELAY * 4).await;
        settle().await;
        sync.shutdown().await;
        assert_eq!(
            calls.calls(),
            ["start", "stop", "start", "stop", "start", "stop", "start", "Backup", "stop"]
        );
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_engine_follows_its_instance_and_ignores_the_others() {
        let (tx, rx) = watch::channel(BTreeMap::new());
        let calls = Recorder::default();
        let sync = ConnectionSync::spawn(&settings(), LvsBackendChoice::Auto, calls.clone(), rx);
        settle().await;
        tx.send_modify(|s| {
            s.insert("VI_2".to_owned(), NotifyState::Master);
        });
        settle().await;
        tx.send_modify(|s| {
            s.insert("VI_1".to_owned(), NotifyState::Master);
        });
        settle().await;
        tx.send_modify(|s| {
            s.insert("VI_1".to_owned(), NotifyState::Fault);
        });
        settle().await;
        sync.shutdown().await;
        assert_eq!(
            calls.calls(),
            ["start", "Backup", "Master", "Backup", "stop"]
        );
    }
}
