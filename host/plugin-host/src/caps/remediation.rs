//! `wasmalived:plugin/remediation`: run one of the commands the config declares, by id.
//!
//! Never a shell and never an argument from the plugin: the plugin names an id, the host runs
//! that id's argv. Each command is vetted when the check loads, as a notify hook is
//! (`wasmalived_sys::program`): found and executable, its path safe under the file-trust
//! policy (always enforced — a remediation runs on a plugin's request), run as its `user`
//! (the daemon fills in `script_user` or `keepalived_script` when none is given) with a
//! scrubbed environment, in its own process group killed on timeout or when the run is
//! abandoned. Runs are rate-limited per command and check ([`BURST`], then one per
//! [`REFILL`]), so a plugin at a short interval cannot turn a restart into a restart loop.

use std::sync::Arc;
use std::time::Duration;

use wasmalived_sys::process::{Environment, RunError};
use wasmalived_sys::program::{Program, Security};
use wasmalived_sys::user::RunAs;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::wasmalived::plugin::remediation as wit;
use crate::ratelimit::{self, SharedBucket};
use crate::state::{Denials, HostState};
use wasmalived_config::grants::RemediationCommand;

/// Runs of one command a check may make in a burst.
pub const BURST: u32 = 3;
/// Then one per this.
pub const REFILL: Duration = Duration::from_secs(10);

/// One declared command, vetted.
#[derive(Debug)]
pub struct Remedy {
    id: String,
    program: Program,
    timeout: Duration,
    rate: SharedBucket,
}

impl Remedy {
    /// Vet a declared command (user resolved, path checked).
    pub fn prepare(cmd: &RemediationCommand) -> Result<Remedy, String> {
        let run_as = match &cmd.user {
            Some(user) => Some(
                RunAs::resolve(&user.user, user.group.as_deref())
                    .map_err(|e| format!("remediation `{}`: {e}", cmd.id))?,
            ),
            None => None,
        };
        let program = Program::prepare(
            cmd.argv.clone(),
            run_as,
            Security::Enforce,
            Environment::Scrubbed,
        )
        .map_err(|e| format!("remediation `{}`: {e}", cmd.id))?;
        Ok(Remedy {
            id: cmd.id.clone(),
            program,
            timeout: cmd.timeout,
            rate: ratelimit::shared(BURST, REFILL),
        })
    }

    /// Run it now (rate permitting) and return its exit status (128 + signal if a signal
    /// killed it).
    pub async fn run(&self) -> Result<i32, String> {
        if !ratelimit::try_take(&self.rate) {
            tracing::warn!(id = %self.id, "remediation rate-limited");
            return Err(format!(
                "remediation `{}` rate-limited: at most {BURST} runs, then one per {REFILL:?}",
                self.id
            ));
        }
        tracing::info!(id = %self.id, command = %self.program.label(), "running remediation");
        match self.program.command().run(Some(self.timeout)).await {
            Ok(finished) => {
                let code = finished.exit.shell_code();
                tracing::info!(id = %self.id, code, "remediation finished");
                Ok(code)
            }
            Err(err @ RunError::TimedOut(_)) => {
                tracing::warn!(id = %self.id, timeout = ?self.timeout, "remediation timed out, process group killed");
                Err(format!("remediation `{}` {err}", self.id))
            }
            Err(err) => Err(format!("remediation `{}`: {err}", self.id)),
        }
    }
}

/// The capability for one run: the declared commands.
#[derive(Debug, Default, Clone)]
pub struct RemediationCap {
    remedies: Arc<Vec<Remedy>>,
    denials: Denials,
}

impl RemediationCap {
    /// Bind to the check's vetted commands; unknown ids are recorded in `denials`.
    pub fn new(remedies: Arc<Vec<Remedy>>, denials: Denials) -> Self {
        Self { remedies, denials }
    }
}

impl wit::Host for RemediationCap {
    async fn run(&mut self, id: String) -> Result<i32, String> {
        let Some(remedy) = self.remedies.iter().find(|r| r.id == id) else {
            self.denials
                .record(|| format!("remediation `{id}` (not declared)"));
            return Err(format!(
                "remediation id `{id}` is not granted to this check"
            ));
        };
        remedy.run().await
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
            user: None,
        }
    }

    fn remedy(id: &str, argv: &[&str], timeout: Duration) -> Remedy {
        Remedy::prepare(&cmd(id, argv, timeout)).expect("vetted")
    }

    #[tokio::test]
    async fn exit_status_returned_and_ids_enforced() {
        let denials = Denials::default();
        let mut cap = RemediationCap::new(
            Arc::new(vec![
                remedy("ok", &["/bin/true"], Duration::from_secs(5)),
                remedy(
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
    async fn runs_are_rate_limited_per_command() {
        let r = remedy("ok", &["/bin/true"], Duration::from_secs(5));
        for _ in 0..BURST {
            assert_eq!(r.run().await, Ok(0));
        }
        let e = r.run().await.expect_err("limited");
        assert!(e.contains("rate-limited"), "{e}");
    }

    #[tokio::test]
    async fn the_environment_is_scrubbed() {
        let marker =
            std::env::temp_dir().join(format!("wasmalived-rem-env-{}", std::process::id()));
        let script = format!("env > {}", marker.display());
        std::env::set_var("WASMALIVED_SECRET", "leak");
        let r = remedy("env", &["/bin/sh", "-c", &script], Duration::from_secs(5));
        assert_eq!(r.run().await, Ok(0));
        let env = std::fs::read_to_string(&marker).expect("env written");
        assert!(!env.contains("WASMALIVED_SECRET"), "{env}");
        assert!(env.contains("PATH=/usr/local/sbin"), "{env}");
        let _ = std::fs::remove_file(&marker);
    }

    #[test]
    fn unsafe_or_missing_commands_are_refused_at_load() {
        let dir = std::env::temp_dir().join(format!("wasmalived-rem-ww-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let script = dir.join("restart.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Remedy::prepare(&cmd(
            "r",
            &[script.to_str().unwrap()],
            Duration::from_secs(1),
        ))
        .unwrap_err();
        assert!(
            err.contains("restart.sh") && err.contains("everyone"),
            "{err}"
        );
        let err =
            Remedy::prepare(&cmd("r", &["/nonexistent/x"], Duration::from_secs(1))).unwrap_err();
        assert!(err.contains("not found"), "{err}");
        let mut unknown = cmd("r", &["/bin/true"], Duration::from_secs(1));
        unknown.user = Some(wasmalived_config::RunAs {
            user: "wasmalived-no-such-user".into(),
            group: None,
        });
        let err = Remedy::prepare(&unknown).unwrap_err();
        assert!(err.contains("unknown user"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let marker = std::env::temp_dir().join(format!("wasmalived-rem-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        // A grandchild that would create the marker after 1.5 s unless killed with its group.
        let script = format!("(sleep 1.5; touch {}) & sleep 30", marker.display());
        let r = remedy(
            "slow",
            &["/bin/sh", "-c", &script],
            Duration::from_millis(300),
        );
        let started = std::time::Instant::now();
        let e = r.run().await.expect_err("times out");
        assert!(e.contains("timed out"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!marker.exists(), "grandchild survived the group kill");
    }
}
