//! `wasmalived:plugin/remediation`: run one of the commands the config declares, by id.
//!
//! Never a shell and never an argument from the plugin: the plugin names an id, the host runs
//! that id's argv. The child gets its own process group, null stdio, and the command's
//! timeout; on timeout (or if the run itself is abandoned) the whole group is killed with
//! SIGKILL. Runs as a tokio child process, so the plugin's task awaits without blocking the
//! reactor.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::wasmalived::plugin::remediation as wit;
use crate::state::HostState;
use crate::sys;
use wasmalived_config::grants::RemediationCommand;

/// The capability for one run: the declared commands.
#[derive(Debug, Default, Clone)]
pub struct RemediationCap {
    commands: Arc<Vec<RemediationCommand>>,
}

impl RemediationCap {
    /// Bind to the check's declared commands.
    pub fn new(commands: Arc<Vec<RemediationCommand>>) -> Self {
        Self { commands }
    }
}

/// Kills the child's process group when dropped, unless disarmed (the child was reaped).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            sys::kill_process_group(pgid);
        }
    }
}

/// Run `cmd` and return its exit status (128 + signal if killed by a signal).
pub async fn run_command(cmd: &RemediationCommand) -> Result<i32, String> {
    let (program, args) = cmd
        .argv
        .split_first()
        .ok_or_else(|| format!("remediation `{}` has an empty command", cmd.id))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("remediation `{}`: cannot start {program}: {e}", cmd.id))?;
    let mut guard = GroupGuard(child.id());
    tracing::info!(id = %cmd.id, argv = ?cmd.argv, "running remediation");
    match tokio::time::timeout(cmd.timeout, child.wait()).await {
        Ok(Ok(status)) => {
            guard.0 = None; // reaped: the pgid may be reused, do not signal it
            use std::os::unix::process::ExitStatusExt;
            let code = status
                .code()
                .or_else(|| status.signal().map(|s| 128 + s))
                .unwrap_or(-1);
            tracing::info!(id = %cmd.id, code, "remediation finished");
            Ok(code)
        }
        Ok(Err(e)) => Err(format!("remediation `{}`: wait failed: {e}", cmd.id)),
        Err(_) => {
            drop(guard); // SIGKILL the whole group
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            tracing::warn!(id = %cmd.id, timeout = ?cmd.timeout, "remediation timed out, process group killed");
            Err(format!(
                "remediation `{}` timed out after {:?}; its process group was killed",
                cmd.id, cmd.timeout
            ))
        }
    }
}

impl wit::Host for RemediationCap {
    async fn run(&mut self, id: String) -> Result<i32, String> {
        let Some(cmd) = self.commands.iter().find(|c| c.id == id).cloned() else {
            return Err(format!(
                "remediation id `{id}` is not granted to this check"
            ));
        };
        run_command(&cmd).await
    }
}

/// Link `remediation` (always; with no grant its command table is empty and every id is refused).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<RemediationCap>>(linker, |s| &mut s.remediation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit::Host;

    fn cmd(id: &str, argv: &[&str], timeout: Duration) -> RemediationCommand {
        RemediationCommand {
            id: id.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout,
        }
    }

    #[tokio::test]
    async fn exit_status_returned_and_ids_enforced() {
        let mut cap = RemediationCap::new(Arc::new(vec![
            cmd("ok", &["/bin/true"], Duration::from_secs(5)),
            cmd(
                "three",
                &["/bin/sh", "-c", "exit 3"],
                Duration::from_secs(5),
            ),
        ]));
        assert_eq!(cap.run("ok".into()).await, Ok(0));
        assert_eq!(cap.run("three".into()).await, Ok(3));
        let e = cap.run("rm -rf /".into()).await.expect_err("unknown id");
        assert!(e.contains("not granted"), "{e}");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let marker = std::env::temp_dir().join(format!("wasmalived-rem-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        // A grandchild that would create the marker after 1.5 s unless killed with its group.
        let script = format!("(sleep 1.5; touch {}) & sleep 30", marker.display());
        let c = cmd(
            "slow",
            &["/bin/sh", "-c", &script],
            Duration::from_millis(300),
        );
        let started = std::time::Instant::now();
        let e = run_command(&c).await.expect_err("times out");
        assert!(e.contains("timed out"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!marker.exists(), "grandchild survived the group kill");
    }
}
