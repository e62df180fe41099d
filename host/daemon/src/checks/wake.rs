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
//!
//! A run may also name paths whose change should run it again at once
//! (`wasmalived:plugin/wake.on-change`, [`super::scheduler::RunReport::wake_on_change`]),
//! already checked to lie inside a directory the check is granted (plugin host,
//! `caps/wake.rs`). The task holds a [`PathWatch`]: one inotify instance watching each path's
//! directory, filtered on the path's name — so a file that does not exist yet, is replaced by
//! a rename or is removed is seen as well as one written in place; a path that is a directory
//! when the run names it is watched itself, for any entry in it. Directories are opened
//! *beneath* the granted directory's descriptor (`openat2(RESOLVE_BENEATH)`): a symlink or
//! `..` that leads out of the grant is refused, never followed. Unlike a pidfd watch, a path
//! watch stays armed across runs that name the same paths, so a change made while a run is in
//! flight (after the plugin read the file) wakes the check again once the run ends; only the
//! first run that names a path can miss a change made between its read and the watch being
//! armed (microseconds), and the next interval sees it. inotify sees changes made through
//! this host's kernel only: another NFS client's writes wake nothing (the interval still
//! runs the check).
//!
//! A run may also name TCP servers whose dropping a connection should run it again at once
//! (`wasmalived:plugin/wake.on-disconnect`): the task holds a [`SocketWatch`], one connection
//! per server (`wake/socket.rs`).

use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use rustix::fs::inotify::{self, ReadFlags, WatchFlags};
use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;
use wasmalived_plugin_host::WatchedPath;

mod socket;
pub use socket::{Disconnect, SocketWatch};

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

/// What a change to a path is: written (in place or closed after writing), created, removed,
/// renamed in or out, its attributes changed; for the watched directory itself, removed or
/// renamed.
const CHANGES: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::MODIFY)
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF);

/// The directory itself went away (removed, renamed, its filesystem unmounted): its watch is
/// gone too.
const DIR_GONE: ReadFlags = ReadFlags::DELETE_SELF
    .union(ReadFlags::MOVE_SELF)
    .union(ReadFlags::IGNORED)
    .union(ReadFlags::UNMOUNT);

/// One watched path: the inotify watch on its directory and its name there, or (a directory)
/// the watch on itself, for any entry in it.
#[derive(Debug)]
struct PathTarget {
    wd: i32,
    name: Option<OsString>,
    guest_path: String,
}

/// The inotify watches on the paths one run asked to be woken by.
#[derive(Debug, Default)]
pub struct PathWatch {
    inotify: Option<AsyncFd<OwnedFd>>,
    targets: Vec<PathTarget>,
    paths: Vec<WatchedPath>,
    /// A path is not watched (its directory was missing, or went away since): arm again after
    /// the next run even if it names the same paths.
    incomplete: bool,
}

impl PathWatch {
    /// Watch each of `paths`. A path whose directory cannot be opened beneath its grant
    /// (missing, or leading out of it) is not watched — logged, and retried after the next
    /// run; the interval still runs the check.
    pub fn arm(paths: &[WatchedPath]) -> Self {
        let mut watch = PathWatch {
            paths: paths.to_vec(),
            ..PathWatch::default()
        };
        if paths.is_empty() {
            return watch;
        }
        let inotify =
            match inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
                .map_err(io::Error::from)
                .and_then(crate::net::sys::register_inotify)
            {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::warn!("cannot watch files (inotify): {e}");
                    watch.incomplete = true;
                    return watch;
                }
            };
        for path in paths {
            match add_watch(inotify.get_ref(), path) {
                Ok(target) => watch.targets.push(target),
                Err(e) => {
                    watch.incomplete = true;
                    let dir = path.dir_host_path.display();
                    if e.kind() == io::ErrorKind::NotFound {
                        tracing::debug!(path = %path.guest_path, %dir, "not watched yet: its directory does not exist");
                    } else {
                        tracing::warn!(path = %path.guest_path, %dir, "cannot watch for changes: {e}");
                    }
                }
            }
        }
        watch.inotify = Some(inotify);
        watch
    }

    /// Whether this watch is what a run naming `paths` needs (the same paths, all watched):
    /// then it is kept, and what changed while the run was in flight still wakes the check.
    pub fn is_current(&self, paths: &[WatchedPath]) -> bool {
        self.paths == paths && !self.incomplete
    }

    /// Whether anything is watched (an empty watch never fires).
    pub fn is_armed(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Wait until a watched path changes; returns it (as the plugin named it). Every event
    /// queued by then is consumed with it: a burst of writes wakes the check once. Never
    /// resolves when nothing is watched.
    pub async fn fired(&mut self) -> String {
        let Some(inotify) = self.inotify.as_ref().filter(|_| !self.targets.is_empty()) else {
            return std::future::pending().await;
        };
        loop {
            let Ok(mut ready) = inotify.readable().await else {
                return std::future::pending().await;
            };
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut events = inotify::Reader::new(inotify.get_ref(), &mut buf);
            let mut changed = None;
            loop {
                match events.next() {
                    Ok(event) => {
                        let (hit, gone) = match_event(&self.targets, &event);
                        self.incomplete |= gone;
                        if changed.is_none() {
                            changed = hit;
                        }
                    }
                    Err(Errno::INTR) => {}
                    Err(Errno::AGAIN) => {
                        ready.clear_ready();
                        break;
                    }
                    Err(e) => {
                        // Never seen (the buffer holds any event): drop this batch, keep
                        // waiting; the interval still runs the check.
                        tracing::warn!("reading file watch events: {e}");
                        ready.clear_ready();
                        break;
                    }
                }
            }
            if let Some(path) = changed {
                return path;
            }
        }
    }
}

/// Which watched path `event` changes, and whether the watch it came from is gone.
fn match_event(targets: &[PathTarget], event: &inotify::Event<'_>) -> (Option<String>, bool) {
    let flags = event.events();
    if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
        // Events were lost: any path may have changed.
        return (targets.first().map(|t| t.guest_path.clone()), false);
    }
    let gone = flags.intersects(DIR_GONE);
    let name = event.file_name().map(|n| n.to_bytes());
    let hit = targets
        .iter()
        .filter(|t| t.wd == event.wd())
        .find(|t| match (&t.name, name) {
            // The directory itself: anything in it, or the directory going away.
            (None, _) => true,
            (Some(want), Some(got)) => want.as_bytes() == got,
            // An event on the directory itself: only its going away changes the path.
            (Some(_), None) => gone,
        })
        .map(|t| t.guest_path.clone());
    (hit, gone)
}

/// Watch `path`: itself if it is a directory now (anything directly inside it), else its
/// directory, filtered on its name. Both are opened beneath the granted directory.
fn add_watch(inotify: &OwnedFd, path: &WatchedPath) -> io::Result<PathTarget> {
    let whole = if path.relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &path.relative
    };
    let (opened, name) = match open_dir_beneath(path, whole) {
        Ok(dir) => (dir, None),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
        // Not a directory, or not there (yet): watch its name in its directory.
        Err(_) => {
            let parent = whole.parent().filter(|p| !p.as_os_str().is_empty());
            let name = whole.file_name().map(std::ffi::OsStr::to_os_string);
            (
                open_dir_beneath(path, parent.unwrap_or(Path::new(".")))?,
                name,
            )
        }
    };
    // The open directory, by its descriptor: nothing is resolved by name again.
    let wd = inotify::add_watch(
        inotify,
        format!("/proc/self/fd/{}", opened.as_raw_fd()),
        CHANGES | WatchFlags::ONLYDIR,
    )?;
    Ok(PathTarget {
        wd,
        name,
        guest_path: path.guest_path.clone(),
    })
}

/// Open `relative` (a directory) beneath `path`'s granted directory, for watching only
/// (`O_PATH`): no symlink or `..` may lead out of it.
fn open_dir_beneath(path: &WatchedPath, relative: &Path) -> io::Result<OwnedFd> {
    openat2(
        &*path.dir,
        relative,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| {
        if e == Errno::XDEV {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "it leads out of the granted directory",
            )
        } else {
            io::Error::from(e)
        }
    })
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

    /// `relative` below `dir`, watched as the plugin path `/data/<relative>`.
    fn watched(dir: &Path, relative: &str) -> WatchedPath {
        let fd = std::fs::File::open(dir).expect("open the granted dir");
        WatchedPath {
            guest_path: format!("/data/{relative}"),
            dir: std::sync::Arc::new(OwnedFd::from(fd)),
            dir_host_path: dir.to_path_buf(),
            relative: relative.into(),
        }
    }

    /// Whether `watch` fires within `within` (a bound for "it fired", never for "it did not").
    async fn fires(watch: &mut PathWatch, within: Duration) -> Option<String> {
        tokio::time::timeout(within, watch.fired()).await.ok()
    }

    /// Long enough for an event that was queued to be read; a watch that should stay quiet
    /// is given this long to misfire.
    const QUIET: Duration = Duration::from_millis(50);
    /// A generous bound for an inotify event to be delivered on a loaded machine.
    const DELIVERY: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_file_written_created_renamed_or_removed_fires_its_watch_and_a_sibling_does_not() {
        let dir = wasmalived_testkit::TempDir::new("wake-file");
        let flag = dir.path().join("flag");
        let paths = [watched(dir.path(), "flag")];
        let mut watch = PathWatch::arm(&paths);
        assert!(watch.is_armed());
        assert!(watch.is_current(&paths));
        // Created (it did not exist when the watch was armed).
        std::fs::write(&flag, "1").expect("write");
        assert_eq!(
            fires(&mut watch, DELIVERY).await.as_deref(),
            Some("/data/flag")
        );
        // A burst of events is consumed in one wake.
        assert_eq!(fires(&mut watch, QUIET).await, None, "one wake per burst");
        // A sibling wakes nothing.
        std::fs::write(dir.path().join("other"), "x").expect("write");
        assert_eq!(fires(&mut watch, QUIET).await, None, "a sibling changed");
        // Replaced by a rename (an atomic write), then removed.
        std::fs::rename(dir.path().join("other"), &flag).expect("rename");
        assert_eq!(
            fires(&mut watch, DELIVERY).await.as_deref(),
            Some("/data/flag")
        );
        std::fs::remove_file(&flag).expect("remove");
        assert_eq!(
            fires(&mut watch, DELIVERY).await.as_deref(),
            Some("/data/flag")
        );
        assert!(
            watch.is_current(&paths),
            "the file's removal leaves its directory watched"
        );
    }

    #[tokio::test]
    async fn a_watched_directory_fires_for_any_entry() {
        let dir = wasmalived_testkit::TempDir::new("wake-dir");
        std::fs::create_dir(dir.path().join("leases")).expect("mkdir");
        let mut watch = PathWatch::arm(&[watched(dir.path(), "leases")]);
        std::fs::write(dir.path().join("leases/lease.7"), "n2").expect("write");
        assert_eq!(
            fires(&mut watch, DELIVERY).await.as_deref(),
            Some("/data/leases")
        );
    }

    #[tokio::test]
    async fn a_path_leading_out_of_its_grant_or_missing_is_not_watched() {
        let dir = wasmalived_testkit::TempDir::new("wake-escape");
        let outside = wasmalived_testkit::TempDir::new("wake-outside");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).expect("symlink");
        let paths = [
            watched(dir.path(), "out/flag"),
            watched(dir.path(), "missing/flag"),
        ];
        let mut watch = PathWatch::arm(&paths);
        assert!(!watch.is_armed(), "neither path can be watched");
        assert!(!watch.is_current(&paths), "retried after the next run");
        std::fs::write(outside.path().join("flag"), "1").expect("write");
        assert_eq!(
            fires(&mut watch, QUIET).await,
            None,
            "followed a symlink out"
        );
        let e = add_watch(
            &inotify::init(inotify::CreateFlags::CLOEXEC).expect("inotify"),
            &paths[0],
        )
        .expect_err("escape");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
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
