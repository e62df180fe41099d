//! The IPVS backend's connection sync: the kernel's own sync daemons (`IPVS_CMD_NEW_DAEMON`),
//! switched as keepalived switches them — the backup daemon (receive the peer's connection
//! table) while the followed instance is anything but Master, the master daemon (send ours)
//! while it is Master, never both.
//!
//! The daemons are kernel threads: they do not die on their own, so [`SyncEngine::died`]
//! never resolves. Every request is a blocking netlink round trip and runs on the blocking
//! pool.

use wasmalived_config::lvs::LvsSyncDaemon;
use wasmalived_lvs::ipvs::{Ipvs, IpvsError, SyncDaemon, SyncState};

use super::{Role, SyncEngine, SyncError};

/// Opens the kernel's IPVS (tests: an in-memory one).
pub type Opener = fn() -> Result<Ipvs, IpvsError>;

/// The kernel's sync daemons for `lvs_sync_daemon`.
pub struct IpvsSync {
    sync: LvsSyncDaemon,
    /// The sync id when `id` is not written: the instance's VRID, as keepalived.
    default_sync_id: u8,
    open: Opener,
    ipvs: Option<Ipvs>,
}

impl IpvsSync {
    /// An engine for `sync`, whose instance has VRID `vrid`, over the real kernel.
    pub fn new(sync: LvsSyncDaemon, vrid: u8) -> Self {
        Self::with_opener(sync, vrid, Ipvs::open)
    }

    /// An engine over the IPVS `open` returns.
    pub fn with_opener(sync: LvsSyncDaemon, vrid: u8, open: Opener) -> Self {
        IpvsSync {
            sync,
            default_sync_id: vrid,
            open,
            ipvs: None,
        }
    }

    /// The daemon `lvs_sync_daemon` asks for in `state`.
    fn daemon(&self, state: SyncState) -> SyncDaemon {
        SyncDaemon {
            state,
            interface: self.sync.interface.clone(),
            sync_id: u32::from(self.sync.sync_id.unwrap_or(self.default_sync_id)),
            max_len: self.sync.maxlen,
            group: self.sync.group,
            port: self.sync.port,
            ttl: self.sync.ttl,
        }
    }

    /// Run `f` on the open IPVS on the blocking pool.
    async fn with_ipvs(
        &mut self,
        f: impl FnOnce(&mut Ipvs) -> Result<(), IpvsError> + Send + 'static,
    ) -> Result<(), SyncError> {
        let Some(mut ipvs) = self.ipvs.take() else {
            return Err(SyncError("IPVS sync: not started".into()));
        };
        let (ipvs, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut ipvs);
            (ipvs, result)
        })
        .await
        .map_err(|e| SyncError(format!("IPVS sync: {e}")))?;
        self.ipvs = Some(ipvs);
        result.map_err(|e| SyncError(format!("IPVS sync on {}: {e}", self.sync.interface)))
    }
}

impl SyncEngine for IpvsSync {
    fn name(&self) -> &'static str {
        "ipvs"
    }

    async fn start(&mut self) -> Result<(), SyncError> {
        let open = self.open;
        let ipvs = tokio::task::spawn_blocking(open)
            .await
            .map_err(|e| SyncError(format!("IPVS sync: {e}")))?
            .map_err(|e| SyncError(format!("IPVS sync: {e}")))?;
        self.ipvs = Some(ipvs);
        Ok(())
    }

    async fn enter(&mut self, role: Role) -> Result<(), SyncError> {
        let (stop, start) = match role {
            Role::Master => (SyncState::Backup, SyncState::Master),
            Role::Backup => (SyncState::Master, SyncState::Backup),
        };
        let daemon = self.daemon(start);
        self.with_ipvs(move |ipvs| {
            ipvs.stop_sync_daemon(stop)?;
            ipvs.start_sync_daemon(&daemon)
        })
        .await
    }

    async fn died(&mut self) -> String {
        std::future::pending().await
    }

    async fn stop(&mut self) {
        if self.ipvs.is_none() {
            return;
        }
        let stopped = self
            .with_ipvs(|ipvs| {
                ipvs.stop_sync_daemon(SyncState::Master)?;
                ipvs.stop_sync_daemon(SyncState::Backup)
            })
            .await;
        if let Err(err) = stopped {
            tracing::warn!("{err}");
        }
        self.ipvs = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use wasmalived_lvs::ipvs::codec::{Reply, Request};
    use wasmalived_lvs::ipvs::Kernel;

    /// The kernel's sync daemons, in memory: what `ipvsadm -L --daemon` would list.
    static RUNNING: Mutex<Vec<SyncDaemon>> = Mutex::new(Vec::new());

    struct FakeKernel;

    impl Kernel for FakeKernel {
        fn execute(&mut self, request: &Request) -> Result<Vec<Reply>, IpvsError> {
            let mut running = RUNNING.lock().unwrap();
            match request {
                Request::DumpDaemons => {
                    return Ok(running.iter().cloned().map(Reply::Daemon).collect())
                }
                Request::NewDaemon(d) => {
                    if running.iter().any(|r| r.state == d.state) {
                        return Err(IpvsError::Kernel {
                            what: request.describe(),
                            errno: 17, // EEXIST, as the kernel answers a second daemon
                        });
                    }
                    running.push(d.clone());
                }
                Request::DelDaemon(state) => {
                    let before = running.len();
                    running.retain(|d| d.state != *state);
                    if running.len() == before {
                        return Err(IpvsError::Kernel {
                            what: request.describe(),
                            errno: 3, // ESRCH: that daemon is not running
                        });
                    }
                }
                other => panic!("unexpected request {other:?}"),
            }
            Ok(Vec::new())
        }
    }

    fn fake() -> Result<Ipvs, IpvsError> {
        Ok(Ipvs::with_kernel(Box::new(FakeKernel)))
    }

    fn settings(line: &str) -> LvsSyncDaemon {
        crate::lvs::test_config(&format!(
            "global_defs {{\n {line}\n}}\nvrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {{\n  192.0.2.1\n }}\n}}\n"
        ))
        .global
        .lvs_sync_daemon
        .unwrap()
    }

    fn running() -> Vec<(SyncState, String, u32, Option<u16>)> {
        let mut list: Vec<_> = RUNNING
            .lock()
            .unwrap()
            .iter()
            .map(|d| (d.state, d.interface.clone(), d.sync_id, d.port))
            .collect();
        list.sort();
        list
    }

    /// One test drives the shared in-memory kernel through a whole life, so no two tests
    /// race on it.
    #[tokio::test]
    async fn the_kernel_daemons_follow_the_role_one_at_a_time_and_stop_with_the_engine() {
        RUNNING.lock().unwrap().clear();
        let mut engine = IpvsSync::with_opener(settings("lvs_sync_daemon eth1 VI_1"), 51, fake);
        assert!(engine.enter(Role::Backup).await.is_err(), "not started yet");
        engine.start().await.unwrap();

        engine.enter(Role::Backup).await.unwrap();
        // No `id`: the instance's VRID, as keepalived.
        assert_eq!(
            running(),
            [(SyncState::Backup, "eth1".to_string(), 51, None)]
        );

        engine.enter(Role::Master).await.unwrap();
        assert_eq!(
            running(),
            [(SyncState::Master, "eth1".to_string(), 51, None)]
        );

        // Back to Backup, and again (a restart re-enters the same role): still one daemon.
        engine.enter(Role::Backup).await.unwrap();
        engine.enter(Role::Backup).await.unwrap();
        assert_eq!(
            running(),
            [(SyncState::Backup, "eth1".to_string(), 51, None)]
        );

        engine.stop().await;
        assert!(running().is_empty());
        // Stopping twice is harmless.
        engine.stop().await;

        // The written options reach the kernel.
        let mut engine = IpvsSync::with_opener(
            settings("lvs_sync_daemon eth2 VI_1 id 7 port 8849"),
            51,
            fake,
        );
        engine.start().await.unwrap();
        engine.enter(Role::Master).await.unwrap();
        assert_eq!(
            running(),
            [(SyncState::Master, "eth2".to_string(), 7, Some(8849))]
        );
        engine.stop().await;
        assert!(running().is_empty());
    }
}
