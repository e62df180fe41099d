//! Connection sync on the nftables backend: Debian's `conntrackd` in FT-FW mode over the
//! `lvs_sync_daemon` interface, started and stopped by the daemon through the one
//! child-process runner, its role switched as conntrack-tools' `primary-backup.sh` does.
//!
//! The NAT director's connections are the kernel's connection-tracking entries (with their
//! NAT bindings). conntrackd sends every change of them to the peer by multicast; the peer
//! writes them straight into its own kernel table (`DisableExternalCache On`), as IPVS's
//! backup sync daemon writes IPVS's table. So when the Backup takes over, the next segment of
//! an established connection finds its entry and is translated to the same real server —
//! there is no commit to race with the client's retransmission.
//!
//! Role changes (client commands on conntrackd's control socket):
//! - Master: `-c` (commit what an external cache holds: nothing with the cache disabled,
//!   kept for operators who enable it), `-f` (flush the caches), `-R` (take the kernel table
//!   into the internal cache — the entries received while Backup are now ours to send),
//!   `-B` (send them all to the peer);
//! - Backup: `-n` (ask the Master for a full resync).
//!
//! Its files (configuration, lock, control socket) are in `<state dir>/conntrackd/`. A
//! conntrackd left running by a killed daemon is stopped (`-k`) before a new one starts.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use wasmalived_config::lvs::LvsSyncDaemon;
use wasmalived_sys::process::{resolve_program, ChildCommand, Exit};

use super::{Role, SyncEngine, SyncError};
use crate::net::netlink::Netlink;

/// The sync group when `lvs_sync_daemon` sets none (IPVS's default, as keepalived's).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The sync port when `lvs_sync_daemon` sets none (IPVS's default).
pub const DEFAULT_PORT: u16 = 8848;
/// How long a client command (`conntrackd -c`, …) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a started conntrackd has to open its control socket.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// What is kept of conntrackd's own output, for the log when it dies.
const OUTPUT_LIMIT: usize = 4096;

/// The client commands for `role`, in order (conntrack-tools' `primary-backup.sh`).
pub fn role_commands(role: Role) -> &'static [&'static str] {
    match role {
        Role::Master => &["-c", "-f", "-R", "-B"],
        Role::Backup => &["-n"],
    }
}

/// The `lvs_sync_daemon` options set that only IPVS's sync daemon has (conntrackd ignores
/// them; the daemon says so).
pub fn ipvs_only_options(sync: &LvsSyncDaemon) -> Vec<&'static str> {
    [
        ("id", sync.sync_id.is_some()),
        ("maxlen", sync.maxlen.is_some()),
        ("ttl", sync.ttl.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// Where conntrackd's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The generated configuration.
    pub config: PathBuf,
    /// conntrackd's lock file.
    pub lock: PathBuf,
    /// conntrackd's control socket.
    pub socket: PathBuf,
}

impl Paths {
    /// The files in `dir`.
    pub fn in_dir(dir: &Path) -> Paths {
        Paths {
            config: dir.join("conntrackd.conf"),
            lock: dir.join("conntrackd.lock"),
            socket: dir.join("conntrackd.ctl"),
        }
    }
}

/// The configuration for `sync`, sending from `local` (the sync interface's IPv4 address).
/// Errors name what `lvs_sync_daemon` asks that conntrackd cannot do.
pub fn render(sync: &LvsSyncDaemon, local: Ipv4Addr, paths: &Paths) -> Result<String, SyncError> {
    let group = match sync.group {
        None => DEFAULT_GROUP,
        Some(IpAddr::V4(group)) => group,
        Some(IpAddr::V6(group)) => {
            return Err(SyncError(format!(
                "lvs_sync_daemon group {group}: an IPv6 sync group is not supported with conntrackd; use an IPv4 group"
            )))
        }
    };
    let port = sync.port.unwrap_or(DEFAULT_PORT);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Written by wasmalived for `lvs_sync_daemon {} {}`; rewritten at every start.",
        sync.interface, sync.instance
    );
    let _ = write!(
        s,
        "\
Sync {{
    Mode FTFW {{
        DisableExternalCache On
    }}
    Multicast {{
        IPv4_address {group}
        Group {port}
        IPv4_interface {local}
        Interface {iface}
        Checksum on
    }}
}}
General {{
    HashSize 32768
    HashLimit 131072
    LogFile off
    Syslog off
    LockFile {lock}
    UNIX {{
        Path {socket}
    }}
    Filter From Kernelspace {{
        Protocol Accept {{
            TCP
            UDP
        }}
        Address Ignore {{
            IPv4_address 127.0.0.1
            IPv6_address ::1
            IPv4_address {local}
        }}
    }}
}}
",
        iface = sync.interface,
        lock = sync_path(&paths.lock)?,
        socket = sync_path(&paths.socket)?,
    );
    Ok(s)
}

/// A path as conntrackd's configuration takes it (one word).
fn sync_path(path: &Path) -> Result<&str, SyncError> {
    path.to_str()
        .filter(|p| !p.chars().any(|c| c.is_whitespace() || c == '"' || c == '#'))
        .ok_or_else(|| {
            SyncError(format!(
                "conntrackd cannot use the path {} (the state directory's name)",
                path.display()
            ))
        })
}

/// The conntrackd engine.
pub struct Conntrackd {
    sync: LvsSyncDaemon,
    dir: PathBuf,
    paths: Paths,
    netlink: Arc<Netlink>,
    running: Option<Running>,
}

/// The conntrackd process: the task waiting on it, and its end.
struct Running {
    program: PathBuf,
    task: JoinHandle<()>,
    ended: oneshot::Receiver<String>,
}

impl Conntrackd {
    /// An engine for `sync`, keeping its files in `dir`.
    pub fn new(sync: LvsSyncDaemon, dir: PathBuf, netlink: Arc<Netlink>) -> Self {
        Conntrackd {
            paths: Paths::in_dir(&dir),
            sync,
            dir,
            netlink,
            running: None,
        }
    }

    fn client(&self, program: &Path, command: &str) -> ChildCommand {
        ChildCommand::new(
            program,
            vec![
                "conntrackd".into(),
                "-C".into(),
                self.paths.config.display().to_string(),
                command.into(),
            ],
        )
        .capture_output(OUTPUT_LIMIT)
    }

    /// The sync interface's IPv4 address (conntrackd's multicast needs one).
    async fn local_address(&self) -> Result<Ipv4Addr, SyncError> {
        let iface = &self.sync.interface;
        let ifindex = self
            .netlink
            .ifindex(iface)
            .await
            .map_err(|e| SyncError(format!("lvs_sync_daemon interface {iface}: {e}")))?;
        self.netlink
            .primary_ipv4(ifindex)
            .await
            .map_err(|e| SyncError(format!("lvs_sync_daemon interface {iface}: {e}")))?
            .ok_or_else(|| {
                SyncError(format!(
                    "lvs_sync_daemon interface {iface} has no IPv4 address to sync from"
                ))
            })
    }

    /// Stop a conntrackd a killed daemon left on our files, then remove them.
    async fn clear_leftovers(&self, program: &Path) {
        if self.paths.lock.exists() {
            match self.client(program, "-k").run(Some(COMMAND_TIMEOUT)).await {
                Ok(f) if f.exit.success() => info!("stopped a conntrackd left by an earlier run"),
                _ => debug!("no conntrackd left running"),
            }
        }
        for file in [&self.paths.lock, &self.paths.socket] {
            let _ = std::fs::remove_file(file);
        }
    }

    /// Wait until conntrackd answers on its control socket, or it ended.
    async fn wait_ready(&mut self, program: &Path) -> Result<(), SyncError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(running) = &mut self.running {
                if let Ok(why) = running.ended.try_recv() {
                    self.running = None;
                    return Err(SyncError(why));
                }
            }
            if self.paths.socket.exists() {
                // `-s runtime` asks for statistics: it answers once conntrackd serves.
                if let Ok(f) = self
                    .client(program, "-s")
                    .args(["runtime".to_owned()])
                    .run(Some(COMMAND_TIMEOUT))
                    .await
                {
                    if f.exit.success() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(SyncError(format!(
                    "conntrackd did not open {} within {READY_TIMEOUT:?}",
                    self.paths.socket.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl SyncEngine for Conntrackd {
    fn name(&self) -> &'static str {
        "conntrackd"
    }

    async fn start(&mut self) -> Result<(), SyncError> {
        let program = resolve_program("conntrackd", 0, 0).map_err(|e| {
            SyncError(format!(
                "lvs_sync_daemon needs conntrackd on the nftables backend (Debian package conntrackd): {e}"
            ))
        })?;
        let ignored = ipvs_only_options(&self.sync);
        if !ignored.is_empty() {
            warn!(
                "lvs_sync_daemon {}: IPVS sync options with no conntrackd equivalent; ignored",
                ignored.join(", ")
            );
        }
        let local = self.local_address().await?;
        let text = render(&self.sync, local, &self.paths)?;
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&self.paths.config, text))
            .map_err(|e| SyncError(format!("writing {}: {e}", self.paths.config.display())))?;
        self.clear_leftovers(&program).await;
        let daemon = ChildCommand::new(
            &program,
            vec![
                "conntrackd".into(),
                "-C".into(),
                self.paths.config.display().to_string(),
            ],
        )
        .capture_output(OUTPUT_LIMIT);
        let (end, ended) = oneshot::channel();
        let task = tokio::spawn(async move {
            let why = match daemon.run(None).await {
                Ok(f) => format!(
                    "conntrackd exited ({}): {}",
                    exit_text(f.exit),
                    String::from_utf8_lossy(&f.output).trim()
                ),
                Err(e) => format!("conntrackd: {e}"),
            };
            let _ = end.send(why);
        });
        self.running = Some(Running {
            program: program.clone(),
            task,
            ended,
        });
        self.wait_ready(&program).await?;
        info!(config = %self.paths.config.display(), %local, "conntrackd running");
        Ok(())
    }

    async fn enter(&mut self, role: Role) -> Result<(), SyncError> {
        let Some(running) = &self.running else {
            return Err(SyncError("conntrackd is not running".into()));
        };
        let program = running.program.clone();
        for command in role_commands(role) {
            let outcome = self
                .client(&program, command)
                .run(Some(COMMAND_TIMEOUT))
                .await;
            match outcome {
                Ok(f) if f.exit.success() => debug!(command, "conntrackd done"),
                Ok(f) => {
                    return Err(SyncError(format!(
                        "conntrackd {command} ({role:?}) failed ({}): {}",
                        exit_text(f.exit),
                        String::from_utf8_lossy(&f.output).trim()
                    )))
                }
                Err(e) => return Err(SyncError(format!("conntrackd {command} ({role:?}): {e}"))),
            }
        }
        Ok(())
    }

    async fn died(&mut self) -> String {
        match &mut self.running {
            Some(running) => (&mut running.ended)
                .await
                .unwrap_or_else(|_| "conntrackd's task ended".into()),
            None => std::future::pending().await,
        }
    }

    async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        // `-k` lets conntrackd remove its lock and socket; past the grace, the runner kills
        // its process group (the task's future is dropped).
        let _ = self
            .client(&running.program, "-k")
            .run(Some(COMMAND_TIMEOUT))
            .await;
        let mut task = running.task;
        if tokio::time::timeout(super::STOP_GRACE, &mut task)
            .await
            .is_err()
        {
            warn!("conntrackd did not stop on -k; killing it");
            task.abort();
            let _ = task.await;
        }
        for file in [&self.paths.lock, &self.paths.socket] {
            let _ = std::fs::remove_file(file);
        }
    }
}

fn exit_text(exit: Exit) -> String {
    match exit {
        Exit::Code(code) => format!("status {code}"),
        Exit::Signal(signal) => format!("signal {signal}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(line: &str) -> LvsSyncDaemon {
        crate::lvs::test_config(&format!(
            "global_defs {{\n {line}\n}}\nvrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {{\n  192.0.2.1\n }}\n}}\n"
        ))
        .global
        .lvs_sync_daemon
        .expect("set")
    }

    #[test]
    fn the_configuration_syncs_over_the_interface_into_the_kernel_table() {
        let paths = Paths::in_dir(Path::new("/run/wasmalived/conntrackd"));
        let text = render(
            &settings("lvs_sync_daemon eth1 VI_1"),
            "198.51.100.1".parse().unwrap(),
            &paths,
        )
        .unwrap();
        // IPVS's defaults for the channel; received entries go straight to the kernel.
        for line in [
            "Mode FTFW {\n        DisableExternalCache On\n    }",
            "IPv4_address 224.0.0.81\n        Group 8848\n        IPv4_interface 198.51.100.1\n        Interface eth1\n",
            "LockFile /run/wasmalived/conntrackd/conntrackd.lock\n",
            "Path /run/wasmalived/conntrackd/conntrackd.ctl\n",
            // Its own sync traffic is not synced.
            "IPv4_address 198.51.100.1\n        }",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        let text = render(
            &settings("lvs_sync_daemon eth1 VI_1 port 3780 group 239.0.0.5"),
            "198.51.100.1".parse().unwrap(),
            &paths,
        )
        .unwrap();
        assert!(text.contains("IPv4_address 239.0.0.5\n        Group 3780\n"));
    }

    #[test]
    fn what_conntrackd_cannot_do_is_refused_with_the_reason() {
        let err = render(
            &settings("lvs_sync_daemon eth1 VI_1 group ff02::81"),
            "198.51.100.1".parse().unwrap(),
            &Paths::in_dir(Path::new("/run/w")),
        )
        .unwrap_err();
        assert!(err.0.contains("IPv6 sync group"), "{err}");
        let err = render(
            &settings("lvs_sync_daemon eth1 VI_1"),
            "198.51.100.1".parse().unwrap(),
            &Paths::in_dir(Path::new("/run/my state")),
        )
        .unwrap_err();
        assert!(err.0.contains("cannot use the path"), "{err}");
    }

    #[test]
    fn ipvs_only_options_are_named() {
        assert!(ipvs_only_options(&settings("lvs_sync_daemon eth1 VI_1 port 9")).is_empty());
        assert_eq!(
            ipvs_only_options(&settings("lvs_sync_daemon eth1 VI_1 ttl 2 id 4")),
            ["id", "ttl"]
        );
    }

    #[test]
    fn roles_switch_as_primary_backup_sh_does() {
        assert_eq!(role_commands(Role::Master), ["-c", "-f", "-R", "-B"]);
        assert_eq!(role_commands(Role::Backup), ["-n"]);
    }
}
