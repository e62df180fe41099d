//! The one child-process runner: every program the daemon starts — `vrrp_script` scripts,
//! notify hooks, remediation commands, LVS `MISC_CHECK`s — starts here, with the same rules:
//!
//! - never a shell: `argv` is executed as given (`argv[0]` is what the program sees);
//! - its own process group, so the whole group (the script *and its children*) is killed
//!   with SIGKILL on timeout and when the run is abandoned (the future dropped), as keepalived
//!   does with `kill(-pid, …)`; a reaped leader's group is never signalled (the id may have
//!   been reused);
//! - `/dev/null` on stdin, and stdout/stderr either to `/dev/null` or captured up to a bound
//!   ([`ChildCommand::capture_output`]), the rest drained and discarded so a chatty child
//!   never blocks on a full pipe;
//! - optionally switched to another user with that user's supplementary groups
//!   ([`ChildCommand::run_as`]);
//! - an environment chosen by [`Environment`].
//!
//! What a caller decides is *whether* a program may run (the file-trust policy in
//! [`crate::trust`], which user); this module decides *how* it runs.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::user::RunAs;

/// `PATH` given to children with a scrubbed environment, and searched for a bare program
/// name when the daemon has no `PATH` (keepalived's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables removed even from an inherited environment: they change how the dynamic loader
/// or a shell reads the program (keepalived's script environment has none of them).
pub const UNSAFE_ENV: [&str; 3] = ["IFS", "LD_PRELOAD", "LD_LIBRARY_PATH"];

/// How long captured pipes are still read after the child exited (a daemonized grandchild
/// may keep them open for ever).
const PIPE_GRACE: Duration = Duration::from_millis(50);

/// The environment a child gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    /// The daemon's environment without [`UNSAFE_ENV`].
    #[default]
    Inherit,
    /// Only `PATH` ([`DEFAULT_PATH`]), `HOME=/` and, when switching user, `USER`/`LOGNAME`,
    /// plus what [`ChildCommand::env`] adds: nothing of the daemon's own environment leaks.
    Scrubbed,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// Exit status 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// The shell's convention: the status, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signal) => 128 + signal,
        }
    }

    fn of(status: std::process::ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Code(-1),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with status {code}"),
            Exit::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub exit: Exit,
    /// stdout then stderr, up to the capture limit (empty without capture).
    pub output: Vec<u8>,
    /// More output was produced than kept.
    pub truncated: bool,
}

/// Why a run did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `fork`/`exec` failed (missing program, credentials refused, ...).
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// It ran past its time; its process group was killed.
    #[error("timed out after {0:?}; its process group was killed")]
    TimedOut(Duration),
    /// Waiting for it failed.
    #[error("cannot wait for {}: {source}", program.display())]
    Wait {
        /// The program.
        program: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

/// A program to run, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCommand {
    program: PathBuf,
    argv: Vec<String>,
    run_as: Option<RunAs>,
    environment: Environment,
    extra_env: Vec<(String, String)>,
    output_limit: usize,
    nice: Option<i8>,
}

impl ChildCommand {
    /// Run `program` with `argv` (`argv[0]` is what the program sees as its name; the rest
    /// are its arguments). Defaults: the daemon's user, [`Environment::Inherit`], no output
    /// captured.
    pub fn new(program: impl Into<PathBuf>, argv: Vec<String>) -> Self {
        ChildCommand {
            program: program.into(),
            argv,
            run_as: None,
            environment: Environment::Inherit,
            extra_env: Vec::new(),
            output_limit: 0,
            nice: None,
        }
    }

    /// Switch to this user (uid, gid, supplementary groups) before `exec`; `None` keeps the
    /// daemon's. Switching needs root: `exec` fails otherwise.
    pub fn run_as(mut self, run_as: Option<RunAs>) -> Self {
        self.run_as = run_as;
        self
    }

    /// Choose the environment.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// Append arguments.
    pub fn args(mut self, extra: impl IntoIterator<Item = String>) -> Self {
        self.argv.extend(extra);
        self
    }

    /// Add one variable (after the environment policy is applied).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_env.push((key.into(), value.into()));
        self
    }

    /// Keep up to `limit` bytes of stdout and stderr (0: both go to `/dev/null`).
    pub fn capture_output(mut self, limit: usize) -> Self {
        self.output_limit = limit;
        self
    }

    /// Run the child at this nice value (-20 strongest … 19 weakest) instead of the spawning
    /// thread's, as keepalived's checker process's children run at its `checker_priority`.
    /// Best effort: a value the daemon may not set (a lower one without `CAP_SYS_NICE`) leaves
    /// the child at the inherited value rather than failing the run.
    pub fn nice(mut self, nice: Option<i8>) -> Self {
        self.nice = nice;
        self
    }

    /// Its argv (`argv[0]` first).
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The program run.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The user switched to, if any.
    pub fn user(&self) -> Option<&RunAs> {
        self.run_as.as_ref()
    }

    /// Run to completion, or until `timeout` (then the process group is killed). Dropping the
    /// returned future also kills the group.
    pub async fn run(&self, timeout: Option<Duration>) -> Result<Finished, RunError> {
        let mut child = self.spawn()?;
        let stdout = child.child.stdout.take();
        let stderr = child.child.stderr.take();
        let limit = self.output_limit;
        let mut out = Capture::new(limit);
        let mut err = Capture::new(limit);
        let waited = {
            // Drain the pipes while waiting: a child writing more than a pipe holds would
            // otherwise block for ever.
            let wait = async {
                let mut drain = std::pin::pin!(async {
                    tokio::join!(out.drain(stdout), err.drain(stderr));
                });
                let mut drained = false;
                let status = loop {
                    tokio::select! {
                        status = child.wait() => break status,
                        () = &mut drain, if !drained => drained = true,
                    }
                };
                if !drained {
                    // Whatever the pipes still hold, shortly.
                    let _ = tokio::time::timeout(PIPE_GRACE, drain).await;
                }
                status
            };
            match timeout {
                Some(limit) => tokio::time::timeout(limit, wait).await.ok(),
                None => Some(wait.await),
            }
        };
        let Some(status) = waited else {
            child.kill_group();
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            return Err(RunError::TimedOut(timeout.unwrap_or_default()));
        };
        let status = status.map_err(|source| RunError::Wait {
            program: self.program.clone(),
            source,
        })?;
        let mut output = out.bytes;
        let truncated = out.truncated || err.truncated || output.len() + err.bytes.len() > limit;
        output.extend(err.bytes);
        output.truncate(limit);
        Ok(Finished {
            exit: Exit::of(status),
            output,
            truncated,
        })
    }

    fn spawn(&self) -> Result<Running, RunError> {
        let mut cmd = tokio::process::Command::new(&self.program);
        if let Some(arg0) = self.argv.first() {
            cmd.arg0(arg0);
        }
        let pipe = || {
            if self.output_limit > 0 {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        cmd.args(self.argv.iter().skip(1))
            .stdin(Stdio::null())
            .stdout(pipe())
            .stderr(pipe())
            .process_group(0)
            .kill_on_drop(false);
        match self.environment {
            Environment::Inherit => {
                for var in UNSAFE_ENV {
                    cmd.env_remove(var);
                }
            }
            Environment::Scrubbed => {
                cmd.env_clear().env("PATH", DEFAULT_PATH).env("HOME", "/");
                if let Some(user) = &self.run_as {
                    cmd.env("USER", &user.user).env("LOGNAME", &user.user);
                }
            }
        }
        for (key, value) in &self.extra_env {
            cmd.env(key, value);
        }
        if let Some(nice) = self.nice {
            // Before the credentials: a lower value needs the daemon's privileges.
            crate::set_child_nice(&mut cmd, nice);
        }
        if let Some(user) = &self.run_as {
            crate::set_credentials(&mut cmd, user.uid, user.gid, user.groups.clone());
        }
        let child = cmd.spawn().map_err(|source| RunError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let pgid = child.id();
        Ok(Running {
            child,
            pgid,
            reaped: false,
        })
    }
}

/// A running child whose process group is killed when dropped unreaped.
struct Running {
    child: tokio::process::Child,
    pgid: Option<u32>,
    reaped: bool,
}

impl Running {
    async fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        let status = self.child.wait().await;
        if status.is_ok() {
            self.reaped = true;
        }
        status
    }

    /// SIGKILL the group, unless the leader was reaped (its id may belong to someone else).
    fn kill_group(&self) {
        if self.reaped {
            return;
        }
        if let Some(pgid) = self.pgid {
            if let Err(err) = crate::kill_process_group(pgid, libc::SIGKILL) {
                if err.raw_os_error() != Some(libc::ESRCH) {
                    tracing::warn!(pgid, "cannot kill process group: {err}");
                }
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Output kept up to a bound; the rest read and discarded.
struct Capture {
    limit: usize,
    bytes: Vec<u8>,
    truncated: bool,
}

impl Capture {
    fn new(limit: usize) -> Self {
        Capture {
            limit,
            bytes: Vec::new(),
            truncated: false,
        }
    }

    async fn drain(&mut self, pipe: Option<impl AsyncRead + Unpin>) {
        let Some(mut pipe) = pipe else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let room = self.limit.saturating_sub(self.bytes.len());
                    let kept = n.min(room);
                    self.bytes.extend_from_slice(&buf[..kept]);
                    self.truncated |= kept < n;
                }
            }
        }
    }
}

/// Where a program name runs from: a name with a `/` is made absolute (relative to the
/// daemon's directory), a bare name is searched in `PATH` (or [`DEFAULT_PATH`]) for a regular
/// file executable by `uid`/`gid`, as keepalived does (`find_path`).
pub fn resolve_program(name: &str, uid: u32, gid: u32) -> io::Result<PathBuf> {
    if name.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty program name",
        ));
    }
    if name.contains('/') {
        return std::path::absolute(name);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && executable_by(&m, uid, gid))
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no executable of that name in PATH",
            )
        })
}

/// Whether `uid`/`gid` may execute the file (root: any execute bit).
pub fn executable_by(meta: &std::fs::Metadata, uid: u32, gid: u32) -> bool {
    let mode = meta.mode();
    (uid == 0 && mode & 0o111 != 0)
        || (uid == meta.uid() && mode & 0o100 != 0)
        || (uid != meta.uid()
            && ((gid == meta.gid() && mode & 0o010 != 0)
                || (gid != meta.gid() && mode & 0o001 != 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ChildCommand {
        ChildCommand::new("/bin/sh", vec!["sh".into(), "-c".into(), script.to_owned()])
    }

    fn marker(tag: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("wasmalived-proc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[tokio::test]
    async fn exit_codes_and_signals_are_reported() {
        let ok = sh("exit 0").run(None).await.unwrap();
        assert!(ok.exit.success());
        let three = sh("exit 3").run(None).await.unwrap();
        assert_eq!(three.exit, Exit::Code(3));
        assert_eq!(three.exit.to_string(), "exited with status 3");
        let killed = sh("kill -9 $$").run(None).await.unwrap();
        assert_eq!(killed.exit, Exit::Signal(9));
        assert_eq!(killed.exit.shell_code(), 137);
    }

    #[tokio::test]
    async fn a_child_runs_at_the_nice_value_asked_for_else_the_spawning_thread_s() {
        let niceness = |cmd: ChildCommand| async move {
            let done = cmd.capture_output(64).run(None).await.unwrap();
            String::from_utf8(done.output).unwrap().trim().to_owned()
        };
        let inherited = crate::thread_nice(0).unwrap();
        assert_eq!(niceness(sh("nice")).await, inherited.to_string());
        // Raising the nice value needs no privilege.
        let weaker = (inherited + 7).min(19);
        assert_eq!(
            niceness(sh("nice").nice(Some(weaker))).await,
            weaker.to_string()
        );
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error_naming_it() {
        let err = ChildCommand::new("/nonexistent/wasmalived-x", vec!["x".into()])
            .run(None)
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }));
        assert!(
            err.to_string().contains("/nonexistent/wasmalived-x"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let flag = marker("grandchild");
        // A grandchild that would create the marker after 1.5 s unless killed with its group.
        let script = format!("(sleep 1.5; touch {}) & sleep 30", flag.display());
        let started = std::time::Instant::now();
        let err = sh(&script)
            .run(Some(Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::TimedOut(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!flag.exists(), "grandchild survived the group kill");
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_group() {
        let flag = marker("dropped");
        let script = format!("(sleep 1; touch {}) & sleep 30", flag.display());
        let cmd = sh(&script);
        let abandoned = tokio::time::timeout(Duration::from_millis(300), cmd.run(None)).await;
        assert!(abandoned.is_err());
        tokio::time::sleep(Duration::from_millis(1800)).await;
        assert!(!flag.exists(), "abandoned run left its group running");
    }

    #[tokio::test]
    async fn output_is_captured_up_to_the_bound_and_the_rest_drained() {
        // 1 MiB of output: far beyond a pipe's buffer, so an undrained pipe would block.
        let finished = sh("head -c 1048576 /dev/zero; echo done >&2")
            .capture_output(100)
            .run(Some(Duration::from_secs(10)))
            .await
            .unwrap();
        assert!(finished.exit.success());
        assert_eq!(finished.output.len(), 100);
        assert!(finished.truncated);
        let small = sh("echo out; echo err >&2")
            .capture_output(100)
            .run(None)
            .await
            .unwrap();
        assert_eq!(small.output, b"out\nerr\n");
        assert!(!small.truncated);
    }

    #[tokio::test]
    async fn without_capture_nothing_is_kept() {
        let finished = sh("echo hello").run(None).await.unwrap();
        assert!(finished.output.is_empty());
    }

    #[tokio::test]
    async fn scrubbed_environment_keeps_nothing_of_the_daemons() {
        let finished = sh("env")
            .environment(Environment::Scrubbed)
            .env("WASMALIVED_TEST", "1")
            .capture_output(4096)
            .run(None)
            .await
            .unwrap();
        let text = String::from_utf8(finished.output).unwrap();
        let mut names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split('=').next())
            .filter(|n| *n != "PWD" && *n != "SHLVL" && *n != "_")
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["HOME", "PATH", "WASMALIVED_TEST"], "{text}");
        assert!(text.contains(&format!("PATH={DEFAULT_PATH}")));
    }

    #[test]
    fn bare_names_are_found_in_path_and_paths_made_absolute() {
        let sh = resolve_program("sh", 0, 0).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert!(resolve_program("wasmalived-no-such-program", 0, 0).is_err());
        assert!(resolve_program("./x", 0, 0).unwrap().is_absolute());
        assert!(resolve_program("", 0, 0).is_err());
    }
}
