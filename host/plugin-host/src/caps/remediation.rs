//! `wasmalived:plugin/remediation`: run one of the commands the config declares, by id.
//!
//! Never a shell and never an argument from the plugin: the plugin names an id, the host runs
//! that id's argv. The child gets its own process group, null stdio, and the command's
//! timeout; on timeout (or if the run itself is abandoned) the whole group is killed with
//! SIGKILL. Runs as a tokio child process, so the plugin's task awaits without blocking the
//! reactor.

use std::sync::Arc;

use wasmalived_sys::process::{ChildCommand, RunError};
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::wasmalived::plugin::remediation as wit;
use crate::state::{Denials, HostState};
use wasmalived_config::grants::RemediationCommand;

/// The capability for one run: the declared commands.
#[derive(Debug, Default, Clone)]
pub struct RemediationCap {
    commands: Arc<Vec<RemediationCommand>>,
    denials: Denials,
}

impl RemediationCap {
    /// Bind to the check's declared commands; unknown ids are recorded in `denials`.
    pub fn new(commands: Arc<Vec<RemediationCommand>>, denials: Denials) -> Self {
        Self { commands, denials }
    }
}

/// Run `cmd` through the daemon's one child-process runner and return its exit status (128 +
/// signal if a signal killed it).
pub async fn run_command(cmd: &RemediationCommand) -> Result<i32, String> {
    let program = cmd
        .argv
        .first()
        .ok_or_else(|| format!("remediation `{}` has an empty command", cmd.id))?;
    tracing::info!(id = %cmd.id, argv = ?cmd.argv, "running remediation");
    let child = ChildCommand::new(program, cmd.argv.clone());
    match child.run(Some(cmd.timeout)).await {
        Ok(finished) => {
            let code = finished.exit.shell_code();
            tracing::info!(id = %cmd.id, code, "remediation finished");
            Ok(code)
        }
        Err(err @ RunError::TimedOut(_)) => {
            tracing::warn!(id = %cmd.id, timeout = ?cmd.timeout, "remediation timed out, process group killed");
            Err(format!("remediation `{}` {err}", cmd.id))
        }
        Err(err) => Err(format!("remediation `{}`: {err}", cmd.id)),
    }
}

impl wit::Host for RemediationCap {
    async fn run(&mut self, id: String) -> Result<i32, String> {
        let Some(cmd) = self.commands.iter().find(|c| c.id == id).cloned() else {
            self.denials
                .record(|| format!("remediation `{id}` (not declared)"));
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
    use std::time::Duration;
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
        let denials = Denials::default();
        let mut cap = RemediationCap::new(
            Arc::new(vec![
                cmd("ok", &["/bin/true"], Duration::from_secs(5)),
                cmd(
                    "three",
                    &["/bin/sh", "-c", "exit 3"],
                    Duration::from_secs(5),
                ),
            ]),
            denials.clone(),
        );
        assert_eq!(cap.run("ok".into()).await, Ok(0));
        assert_eq!(cap.run("three".into()).await, Ok(3));
        let e = cap.run("rm -rf /".into()).await.expect_err("unknown id");
        assert!(e.contains("not granted"), "{e}");
        assert_eq!(
            denials.take(),
            vec!["remediation `rm -rf /` (not declared)"]
        );
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
