//! Event-driven checks: what wakes a check before its next interval, and how often it may.
//!
//! A plugin run names the processes whose exit should run it again at once
//! (`wasmalived:plugin/wake.on-exit`, carried in [`super::scheduler::RunReport::wake_on_exit`]).
//! The check's task holds a [`PidWatch`] — one pidfd per PID (`pidfd_open(2)`), readable
//! when the process exits — until the next run ends and replaces it. Pidfds name a process,
//! not a PID number, so a PID reused later never wakes the check; they work whatever network
//! namespace the process lives in (the kernel's process connector does not), and cost
//! nothing until the process exits.
//!
//! A process that is already gone when the watch is armed wakes the check at once. The gap
//! between the plugin reading the process table and the host opening the pidfd is one run's
//! end (microseconds): a PID that exits *and* is reused by another process within it would be
//! watched in its new incarnation — that process's exit, or the next interval, then runs the
//! check; nothing is missed for longer than an interval.
//!
//! [`EarlyRuns`] bounds the early runs: a token bucket of [`EARLY_BURST`] runs, refilled one
//! per `min(interval, 100 ms)` ([`MIN_EARLY_GAP`]). A burst lets the exits of one process group
//! (nginx's master and workers, killed together) each be seen at once; a flapping process
//! gets at most one early run per gap, on top of the interval's.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// The shortest sustained gap between early runs (a check whose interval is shorter uses its
/// interval).
pub const MIN_EARLY_GAP: Duration = Duration::from_millis(100);
/// Early runs allowed back to back before the gap applies.
pub const EARLY_BURST: u32 = 3;

/// The pidfds of the processes one run asked to be woken by.
#[derive(Debug, Default)]
pub struct PidWatch {
    fds: Vec<AsyncFd<OwnedFd>>,
    /// A watched process was already gone when the watch was armed.
    gone: Vec<u32>,
    pids: Vec<u32>,
}

impl PidWatch {
    /// Open a pidfd for each of `pids`. A PID that runs no process (exited since the run saw
    /// it) wakes at once; a pidfd that cannot be opened for another reason (no pidfd support,
    /// out of descriptors) is logged and that PID is not watched: the interval still runs the
    /// check.
    pub fn arm(pids: &[u32]) -> Self {
        let mut watch = PidWatch {
            pids: pids.to_vec(),
            ..PidWatch::default()
        };
        for &pid in pids {
            match open(pid) {
                Ok(fd) => watch.fds.push(fd),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => watch.gone.push(pid),
                Err(e) => tracing::warn!(pid, "cannot watch process exit (pidfd): {e}"),
            }
        }
        watch
    }

    /// The PIDs the watch was armed with.
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// Whether anything is watched (an empty watch never fires).
    pub fn is_armed(&self) -> bool {
        !self.fds.is_empty() || !self.gone.is_empty()
    }

    /// Wait until a watched process exits; returns its PID. Never resolves for an empty
    /// watch.
    pub async fn fired(&self) -> u32 {
        if let Some(pid) = self.gone.first() {
            return *pid;
        }
        if self.fds.is_empty() {
            return std::future::pending().await;
        }
        let exits = self.fds.iter().zip(&self.pids).map(|(fd, pid)| {
            Box::pin(async move {
                // A pidfd polls readable once the process has exited; an error (never seen
                // for a pidfd) is treated as an exit: waking once too many is harmless.
                let _ = fd.readable().await;
                *pid
            })
        });
        futures::future::select_all(exits).await.0
    }
}

/// `pidfd_open(pid)` registered with the current runtime.
fn open(pid: u32) -> io::Result<AsyncFd<OwnedFd>> {
    let raw = i32::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    let pid = Pid::from_raw(raw).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    let fd = pidfd_open(pid, PidfdFlags::empty())?;
    crate::net::sys::register_pidfd(fd)
}

/// The rate limit on early runs of one check (see the module doc).
#[derive(Debug, Clone)]
pub struct EarlyRuns {
    gap: Duration,
    tokens: u32,
    /// When the last token was credited.
    since: Instant,
}

impl EarlyRuns {
    /// A full bucket for a check running every `interval`.
    pub fn new(interval: Duration, now: Instant) -> Self {
        EarlyRuns {
            gap: interval.min(MIN_EARLY_GAP),
            tokens: EARLY_BURST,
            since: now,
        }
    }

    /// The sustained gap between early runs.
    pub fn gap(&self) -> Duration {
        self.gap
    }

    /// When an early run asked for at `now` may start: `now` if a token is left, else when
    /// the next one is credited.
    pub fn earliest(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens > 0 {
            now
        } else {
            self.since + self.gap
        }
    }

    /// Spend a token for an early run starting at `now` (after [`EarlyRuns::earliest`]).
    pub fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = self.tokens.saturating_sub(1);
    }

    fn refill(&mut self, now: Instant) {
        if self.gap.is_zero() {
            self.tokens = EARLY_BURST;
            return;
        }
        let periods = now.saturating_duration_since(self.since).as_nanos() / self.gap.as_nanos();
        let periods = u32::try_from(periods).unwrap_or(u32::MAX);
        if self.tokens.saturating_add(periods) >= EARLY_BURST {
            self.tokens = EARLY_BURST;
            self.since = now;
        } else if periods > 0 {
            self.tokens += periods;
            self.since += self.gap * periods;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[tokio::test]
    async fn an_exiting_child_fires_its_watch() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let watch = PidWatch::arm(&[pid]);
        assert!(watch.is_armed());
        // Not fired while it runs.
        let early = tokio::time::timeout(Duration::from_millis(50), watch.fired()).await;
        assert!(early.is_err(), "fired while the process runs");
        child.kill().expect("kill");
        // Fires on exit, before the child is reaped (a zombie has exited).
        let fired = tokio::time::timeout(Duration::from_secs(10), watch.fired()).await;
        assert_eq!(fired.ok(), Some(pid));
        child.wait().expect("reap");
    }

    #[tokio::test]
    async fn a_process_already_gone_fires_at_once_and_no_pids_never_fire() {
        let mut child = Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        child.wait().expect("reap");
        let watch = PidWatch::arm(&[pid]);
        assert_eq!(watch.fired().await, pid);
        let empty = PidWatch::arm(&[]);
        assert!(!empty.is_armed());
        let never = tokio::time::timeout(Duration::from_millis(20), empty.fired()).await;
        assert!(never.is_err());
    }

    #[test]
    fn a_burst_then_one_per_gap() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut limit = EarlyRuns::new(Duration::from_secs(10), t0);
        assert_eq!(limit.gap(), MIN_EARLY_GAP);
        for _ in 0..EARLY_BURST {
            assert_eq!(limit.earliest(t0), t0);
            limit.take(t0);
        }
        // The bucket is empty: the next early run waits one gap.
        assert_eq!(limit.earliest(t0 + ms(10)), t0 + ms(100));
        limit.take(t0 + ms(100));
        assert_eq!(limit.earliest(t0 + ms(150)), t0 + ms(200));
        // A quiet spell refills the burst, no more.
        let later = t0 + ms(5000);
        for _ in 0..EARLY_BURST {
            assert_eq!(limit.earliest(later), later);
            limit.take(later);
        }
        assert!(limit.earliest(later) > later);
    }

    #[test]
    fn a_short_interval_is_its_own_gap() {
        let t0 = Instant::now();
        let limit = EarlyRuns::new(Duration::from_millis(20), t0);
        assert_eq!(limit.gap(), Duration::from_millis(20));
    }
}
