//! Processes started in a lab: each in its own process group, output to a log file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd;
use crate::error::{LabError, Result};

/// A process started with [`crate::Lab::spawn`]. Cheap to clone; the lab keeps a handle too
/// and kills the whole process group when it is dropped.
#[derive(Clone)]
pub struct Proc {
    inner: Arc<ProcInner>,
}

pub(crate) struct ProcInner {
    label: String,
    pid: u32,
    log: PathBuf,
    child: Mutex<Child>,
    /// Set once the leader has been reaped: from then on its pid (= process-group id) may be
    /// reused by an unrelated process, so the group must not be signalled any more.
    reaped: AtomicBool,
}

impl Proc {
    pub(crate) fn new(label: String, log: PathBuf, child: Child) -> Self {
        Proc {
            inner: Arc::new(ProcInner {
                label,
                pid: child.id(),
                log,
                child: Mutex::new(child),
                reaped: AtomicBool::new(false),
            }),
        }
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        // A poisoned lock only means another thread panicked while holding it; the Child
        // inside is still valid.
        self.inner
            .child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What this process is (e.g. `n1 keepalived #2`).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Its pid, which is also its process-group id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The file its stdout and stderr go to.
    pub fn log_path(&self) -> &Path {
        &self.inner.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.inner.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Its exit status if it has exited (reaping it), `None` while it runs.
    pub fn try_status(&self) -> Result<Option<ExitStatus>> {
        let status = self
            .child()
            .try_wait()
            .map_err(|e| LabError::io(format!("waiting for {}", self.label()), e))?;
        if status.is_some() {
            self.inner.reaped.store(true, Ordering::SeqCst);
        }
        Ok(status)
    }

    /// Whether the process (the group leader) is still running.
    pub fn is_running(&self) -> bool {
        matches!(self.try_status(), Ok(None))
    }

    /// Waits up to `timeout` for it to exit; `None` if it is still running.
    pub fn wait_exit(&self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_status()? {
                return Ok(Some(status));
            }
            if start.elapsed() >= timeout {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends a signal by name (`TERM`, `HUP`, ...) to the process itself (not its group).
    pub fn signal(&self, signal: &str) -> Result<()> {
        if !self.is_running() {
            return Err(LabError::check(format!(
                "cannot send SIG{signal} to {}: it already exited (log: {})",
                self.label(),
                self.log_path().display()
            )));
        }
        cmd::kill(signal, self.pid(), false)
    }

    /// SIGTERM to the process itself: the graceful stop.
    pub fn term(&self) -> Result<()> {
        self.signal("TERM")
    }

    /// SIGKILL to the whole process group, then reaps the leader: a real crash (keepalived's
    /// VRRP child dies with its parent instead of shutting down gracefully).
    pub fn kill9_group(&self) -> Result<()> {
        let mut sent = Ok(());
        if !self.inner.reaped.load(Ordering::SeqCst) {
            // Leader not reaped yet (running or zombie): the group id is still ours.
            sent = cmd::kill("KILL", self.pid(), true);
        }
        match self.wait_exit(EXIT_AFTER_SIGKILL)? {
            Some(_) => Ok(()),
            None => {
                sent?;
                Err(LabError::check(format!(
                    "{} (pid {}) survived SIGKILL for {} s",
                    self.label(),
                    self.pid(),
                    EXIT_AFTER_SIGKILL.as_secs()
                )))
            }
        }
    }

    /// Cleanup path used by the lab: SIGKILL to the group unless the leader was already
    /// reaped (a live or zombie leader keeps its pid reserved, so the group id is still ours),
    /// then reap, ignoring errors.
    pub(crate) fn cleanup(&self) {
        if !self.inner.reaped.load(Ordering::SeqCst) {
            let _ = cmd::kill("KILL", self.pid(), true);
        }
        let _ = self.wait_exit(EXIT_AFTER_SIGKILL);
    }
}

/// How long a SIGKILLed process may take to be gone. SIGKILL cannot be caught, but the exit
/// itself closes the daemon's sockets (multicast memberships, packet sockets: paths that can
/// wait for the RTNL lock, which namespace teardown elsewhere on the machine holds) and unmaps
/// its memory; on a loaded machine with other labs and benchmarks coming and going one daemon
/// took more than 5 s. Only an exit that never finishes fails this bound.
const EXIT_AFTER_SIGKILL: Duration = Duration::from_secs(30);
