//! keepalived's `script` check runner: run a command, exit status 0 is success.
//!
//! What keepalived does (`keepalived/core/notify.c`, `system_call_script`, `set_script_env`,
//! `check_script_secure`; `keepalived/vrrp/vrrp_scheduler.c`, `vrrp_script_child_thread`) and
//! what we do:
//!
//! - argv is executed directly, no shell (keepalived's `SC_EXECABLE` path, `execve`); a bare
//!   name is searched in `PATH` at preparation (`find_path`), argv\[0\] is kept as given.
//! - the child switches to the configured user/group with that user's supplementary groups,
//!   puts itself in its **own process group** (`setpgid(0, 0)`), gets stdin/stdout/stderr on
//!   `/dev/null` (`set_std_fd`), and has `IFS`, `LD_PRELOAD` and `LD_LIBRARY_PATH` removed
//!   from its environment.
//! - exit status 0 → success, any other status → failure, death by a signal → failure.
//! - timeout: keepalived sends SIGTERM to the group, then SIGKILL 2 s later. We send SIGKILL
//!   to the whole group at once (the check has already failed; a script ignoring SIGTERM
//!   would otherwise hold the next interval), then reap the leader.
//! - preparation refuses a missing file, a file that is not executable for the user it runs
//!   as (`is_executable`), and — with `enable_script_security` — a file or any parent
//!   directory that others can write to ([`super::security`]); without it, that is a warning,
//!   as in keepalived.
//!
//! Differences: keepalived counts a failed `execve` in the child as success (`exit(0)`,
//! "script errors aren't server errors"); a spawn error is a failure here. keepalived also sets
//! `PR_SET_PDEATHSIG`; we rely on killing the group when the run is dropped (daemon shutdown
//! cancels every check), because PDEATHSIG fires when the *spawning thread* exits, which tokio
//! worker threads may do.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use super::scheduler::{Failure, RunReport, RunResult, Runner};
use super::security::Insecure;
use super::user::RunAs;
use wasmalived_sys::process::{self, Environment, RunError};
use wasmalived_sys::program::{Program, Security};

/// A script that cannot be used (the daemon's program vetting).
pub use wasmalived_sys::program::ProgramError as ScriptError;

/// A validated script command, ready to run repeatedly.
#[derive(Debug, Clone)]
pub struct ScriptCommand {
    program: Program,
}

impl ScriptCommand {
    /// Validate `argv` (argv\[0\] a path or a bare name searched in `PATH`) to run as `run_as`
    /// (None: as the daemon). `script_security` is keepalived's `enable_script_security`.
    pub fn prepare(
        argv: Vec<String>,
        run_as: Option<RunAs>,
        script_security: bool,
    ) -> Result<ScriptCommand, ScriptError> {
        let security = if script_security {
            Security::Enforce
        } else {
            Security::Warn
        };
        let program = Program::prepare(argv, run_as, security, Environment::Inherit)?;
        Ok(ScriptCommand { program })
    }

    /// The path that is executed.
    pub fn exec_path(&self) -> &Path {
        self.program.command().program()
    }

    /// Why the script's permissions are unsafe, when `enable_script_security` is off.
    pub fn insecure(&self) -> Option<&Insecure> {
        self.program.insecure()
    }

    /// Run once to completion (the scheduler bounds it: dropping the future kills the
    /// script's process group).
    pub async fn run(&self) -> RunReport {
        self.report(self.program.command().run(None).await)
    }

    /// Run once, killing the process group after `timeout`.
    pub async fn run_with_timeout(&self, timeout: Duration) -> RunReport {
        self.report(self.program.command().run(Some(timeout)).await)
    }

    fn report(&self, run: Result<process::Finished, RunError>) -> RunReport {
        let result = match run {
            Ok(finished) if finished.exit.success() => RunResult::Success,
            Ok(finished) => RunResult::Failure(Failure::Exit(finished.exit)),
            Err(RunError::TimedOut(after)) => RunResult::Failure(Failure::Timeout(after)),
            Err(err) => RunResult::Failure(Failure::Spawn(err.to_string())),
        };
        RunReport::new(Arc::clone(self.program.label()), result)
    }

    /// This command as a scheduler [`Runner`].
    pub fn runner(self: Arc<Self>) -> Runner {
        Arc::new(move || {
            let me = Arc::clone(&self);
            async move { me.run().await }.boxed()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use wasmalived_sys as sys;
    use wasmalived_sys::process::Exit;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn prepare(a: &[&str]) -> ScriptCommand {
        ScriptCommand::prepare(argv(a), None, true).unwrap()
    }

    /// A private directory (0755) for test scripts.
    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wasmalived-script-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn write_script(dir: &Path, body: &str, mode: u32) -> PathBuf {
        let f = dir.join("check.sh");
        std::fs::write(&f, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    fn alive(pid: i32) -> bool {
        // /proc/PID exists and is not a zombie.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn true_succeeds_and_false_fails() {
        assert_eq!(
            prepare(&["/bin/true"]).run().await.result,
            RunResult::Success
        );
        assert_eq!(
            prepare(&["/bin/false"]).run().await.result,
            RunResult::Failure(Failure::Exit(Exit::Code(1)))
        );
    }

    #[tokio::test]
    async fn bare_names_are_searched_in_path_and_args_are_passed_without_a_shell() {
        let cmd = prepare(&["sh", "-c", "exit 3"]);
        assert!(cmd.exec_path().is_absolute());
        assert_eq!(
            cmd.run().await.result,
            RunResult::Failure(Failure::Exit(Exit::Code(3)))
        );
        // No shell in between: a `;` is just an argument to `test`, which then fails.
        assert!(matches!(
            prepare(&["test", "a", "=", "a;", "true"])
                .run()
                .await
                .result,
            RunResult::Failure(_)
        ));
        assert_eq!(
            prepare(&["test", "a b", "=", "a b"]).run().await.result,
            RunResult::Success
        );
    }

    #[tokio::test]
    async fn stdio_is_dev_null_and_own_process_group() {
        let dir = scratch("stdio");
        let f = write_script(
            &dir,
            r#"[ "$(readlink /proc/self/fd/0)" = /dev/null ] || exit 10
[ "$(readlink /proc/$$/fd/1)" = /dev/null ] || exit 11
[ "$(readlink /proc/$$/fd/2)" = /dev/null ] || exit 12
pgid=$(cut -d' ' -f5 /proc/$$/stat); [ "$pgid" = "$$" ] || exit 13
[ -z "$LD_PRELOAD" ] || exit 14"#,
            0o755,
        );
        let cmd = ScriptCommand::prepare(argv(&[f.to_str().unwrap()]), None, true).unwrap();
        assert_eq!(cmd.run().await.result, RunResult::Success);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = scratch("group");
        let pidfile = dir.join("child.pid");
        let f = write_script(
            &dir,
            &format!("sleep 30 &\necho $! > {}\nwait", pidfile.display()),
            0o755,
        );
        let cmd = ScriptCommand::prepare(argv(&[f.to_str().unwrap()]), None, true).unwrap();
        let started = std::time::Instant::now();
        let result = cmd.run_with_timeout(Duration::from_millis(500)).await;
        assert!(
            matches!(&result.result, RunResult::Failure(Failure::Timeout(_))),
            "{:?}",
            result.result
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild is SIGKILLed with the group; give the kernel a moment to reap it.
        let mut gone = false;
        for _ in 0..50 {
            if !alive(child) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "child sleep {child} survived the timeout");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn sleep_is_killed_at_timeout() {
        let started = std::time::Instant::now();
        let r = prepare(&["sleep", "10"])
            .run_with_timeout(Duration::from_millis(200))
            .await;
        assert_eq!(
            r.result,
            RunResult::Failure(Failure::Timeout(Duration::from_millis(200)))
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn dropping_a_run_kills_the_group() {
        let dir = scratch("drop");
        let pidfile = dir.join("child.pid");
        let f = write_script(
            &dir,
            &format!("sleep 30 &\necho $! > {}\nwait", pidfile.display()),
            0o755,
        );
        let cmd = ScriptCommand::prepare(argv(&[f.to_str().unwrap()]), None, true).unwrap();
        let r = tokio::time::timeout(Duration::from_millis(500), cmd.run()).await;
        assert!(r.is_err());
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut gone = false;
        for _ in 0..50 {
            if !alive(child) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "child sleep {child} survived the dropped run");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn world_writable_script_is_refused_with_its_name() {
        let dir = scratch("ww");
        let f = write_script(&dir, "exit 0", 0o777);
        let err = ScriptCommand::prepare(argv(&[f.to_str().unwrap()]), None, true).unwrap_err();
        assert!(matches!(err, ScriptError::Insecure { .. }), "{err}");
        assert!(err.to_string().contains("check.sh"), "{err}");
        // Without enable_script_security it is only a warning, as in keepalived.
        let cmd = ScriptCommand::prepare(argv(&[f.to_str().unwrap()]), None, false).unwrap();
        assert!(cmd.insecure().is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn script_in_world_writable_directory_is_refused() {
        let dir = scratch("wwdir");
        let f = write_script(&dir, "exit 0", 0o755);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ScriptCommand::prepare(argv(&[f.to_str().unwrap()]), None, true).unwrap_err();
        assert!(err.to_string().contains(dir.to_str().unwrap()), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn root_script_owned_by_another_user_is_refused() {
        if sys::effective_ids().0 != 0 {
            // Only root can chown a file to someone else; as non-root the trusted-owner rule
            // is covered by security::tests::owner_must_be_root_or_trusted.
            return;
        }
        let dir = scratch("owner");
        let f = write_script(&dir, "exit 0", 0o755);
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let err = ScriptCommand::prepare(argv(&[f.to_str().unwrap()]), None, true).unwrap_err();
        assert!(
            matches!(
                &err,
                ScriptError::Insecure {
                    source: Insecure::Owner { uid: 65534, .. },
                    ..
                }
            ),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn non_executable_and_missing_scripts_are_refused() {
        let dir = scratch("noexec");
        let f = write_script(&dir, "exit 0", 0o644);
        assert!(matches!(
            ScriptCommand::prepare(argv(&[f.to_str().unwrap()]), None, true),
            Err(ScriptError::NotExecutable { .. })
        ));
        assert!(matches!(
            ScriptCommand::prepare(argv(&["/nonexistent/wasmalived-check"]), None, true),
            Err(ScriptError::NotFound { .. })
        ));
        assert!(matches!(
            ScriptCommand::prepare(argv(&["wasmalived-no-such-command"]), None, true),
            Err(ScriptError::NotFound { .. })
        ));
        assert!(matches!(
            ScriptCommand::prepare(argv(&[""]), None, true),
            Err(ScriptError::Empty)
        ));
        assert!(matches!(
            ScriptCommand::prepare(Vec::new(), None, true),
            Err(ScriptError::Empty)
        ));
        assert!(matches!(
            ScriptCommand::prepare(argv(&["/tmp"]), None, true),
            Err(ScriptError::NotAFile { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn runs_as_the_configured_user_with_its_groups() {
        let (our_uid, _) = sys::effective_ids();
        let Ok(nobody) = RunAs::resolve("nobody", None) else {
            // No `nobody` account in /etc/passwd: nothing to switch to on this system.
            return;
        };
        let want = format!(
            "[ \"$(id -u)\" = {} ] && [ \"$(id -g)\" = {} ]",
            nobody.uid, nobody.gid
        );
        let result = ScriptCommand::prepare(argv(&["/bin/sh", "-c", &want]), Some(nobody), true);
        if our_uid != 0 {
            assert!(matches!(result, Err(ScriptError::CannotSwitchUser { .. })));
            return;
        }
        assert_eq!(result.unwrap().run().await.result, RunResult::Success);
    }
}
