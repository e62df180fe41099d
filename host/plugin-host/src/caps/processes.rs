//! `wasmalived:plugin/processes`: a read-only view of the process table. The host reads
//! `/proc`; the plugin never sees it. With `netns_only`, only processes whose
//! `/proc/PID/ns/net` is the daemon's own are returned (PIDs are not separated by network
//! namespaces, and a host may run one nginx per namespace).
//!
//! `by-name` asks the runtime's [`ProcessIndex`] for the PIDs last seen with that name when
//! the index is live (kept from process events by the daemon), and reads only those
//! processes' files: its cost follows the number of matches, not the size of the process
//! table. Each candidate is verified exactly as a scan checks a process (still there, not a
//! zombie, not a kernel thread, `comm` still equal, network namespace, command line), so a
//! stale index entry never shows a process that is not there. While the index is not live,
//! and always for `by-cmdline` (a command line is rewritten by `setproctitle` without any
//! event), the whole table is scanned.
//!
//! Bounded per run: a command-line pattern must be at least [`MIN_PATTERN`] characters (an
//! empty pattern would hand the plugin every user's command line), a name must not be empty,
//! and a run may look up the table at most [`MAX_SCANS`] times, by index or by scan — a
//! plugin cannot loop on lookups for free (their time also counts against the run's
//! timeout, which bounds the whole call).

use std::ffi::CStr;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::wasmalived::plugin::processes::{self as wit, Process};
use crate::process_index::ProcessIndex;
use crate::state::HostState;
use crate::sys::DirFd;
use wasmalived_config::grants::ProcessGrant;

/// At most this many processes are returned per call.
pub const MAX_RESULTS: usize = 4096;
/// Bytes of a command line kept.
const MAX_CMDLINE: usize = 4096;

/// Shortest command-line pattern accepted.
pub const MIN_PATTERN: usize = 3;
/// Lookups of the process table (scans or index lookups) one run may make.
pub const MAX_SCANS: u32 = 16;

/// The capability for one run.
#[derive(Debug, Default)]
pub struct ProcessesCap {
    grant: Option<ProcessGrant>,
    own_netns: Option<Arc<str>>,
    index: Option<Arc<ProcessIndex>>,
    scans: u32,
}

impl ProcessesCap {
    /// Bind to a grant (`None`: every call is refused), the daemon's network namespace and
    /// the runtime's process index (`None`, or not live: every call scans `/proc`).
    pub fn new(
        grant: Option<ProcessGrant>,
        own_netns: Option<Arc<str>>,
        index: Option<Arc<ProcessIndex>>,
    ) -> Self {
        Self {
            grant,
            own_netns,
            index,
            scans: 0,
        }
    }

    fn scan(&mut self, filter: &Filter) -> Result<Vec<Process>, String> {
        let grant = self
            .grant
            .ok_or("`processes` is not granted to this check")?;
        match filter {
            Filter::Name(name) if name.is_empty() => {
                return Err("an empty process name matches nothing".into())
            }
            Filter::Cmdline(pattern) if pattern.chars().count() < MIN_PATTERN => {
                return Err(format!(
                    "a command-line pattern must have at least {MIN_PATTERN} characters"
                ))
            }
            _ => {}
        }
        if self.scans >= MAX_SCANS {
            return Err(format!("at most {MAX_SCANS} process-table scans per run"));
        }
        self.scans += 1;
        let proc_root = Path::new("/proc");
        let own_netns = self.own_netns.as_deref();
        let candidates = match (filter, &self.index) {
            (Filter::Name(name), Some(index)) => index.candidates(name),
            _ => None,
        };
        match candidates {
            Some(pids) => verify_pids(proc_root, &pids, own_netns, grant.netns_only, filter),
            None => scan_proc(proc_root, own_netns, grant.netns_only, filter),
        }
    }
}

/// Which processes a scan returns.
#[derive(Debug, Clone)]
pub enum Filter {
    /// `comm` equals this exactly.
    Name(String),
    /// The command line joined by spaces contains this.
    Cmdline(String),
    /// Every process (tests).
    All,
}

impl Filter {
    /// Decide on `comm` alone where possible (saves reading `cmdline` of every process).
    fn by_comm(&self, comm: &str) -> bool {
        match self {
            Filter::Name(n) => n == comm,
            Filter::Cmdline(_) | Filter::All => true,
        }
    }

    fn by_cmdline(&self, cmdline: &[String]) -> bool {
        match self {
            Filter::Cmdline(p) => !cmdline.is_empty() && cmdline.join(" ").contains(p.as_str()),
            Filter::Name(_) | Filter::All => true,
        }
    }
}

/// Whether a `/proc/PID/stat` line (or its start) says zombie (`Z`) or dead (`X`): the field
/// after the parenthesised command, which may itself contain `)`.
fn is_dead(stat: &[u8]) -> bool {
    let Some(close) = stat.iter().rposition(|b| *b == b')') else {
        return true;
    };
    matches!(stat.get(close + 2), Some(b'Z' | b'X' | b'x'))
}

/// The network namespace of a process (`net:[4026531840]`), if readable.
pub fn netns_of(proc_root: &Path, pid: &str) -> Option<String> {
    std::fs::read_link(proc_root.join(pid).join("ns/net"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Walk `proc_root`, returning the processes `filter` selects.
///
/// Cost: this reads the live process table each time (nothing is cached across calls). Per
/// process it does one `openat` of `PID/comm` relative to the open `/proc` directory, one
/// `read` and one `close`; the rest ([`inspect`]) only for processes whose name passes the
/// filter. Kernel threads — the children of `kthreadd`, listed by the kernel in one file —
/// are skipped without reading anything of them: they are not services a check watches (on
/// a small host they are over half of `/proc`).
pub fn scan_proc(
    proc_root: &Path,
    own_netns: Option<&str>,
    netns_only: bool,
    filter: &Filter,
) -> Result<Vec<Process>, String> {
    let proc_dir = open_proc(proc_root)?;
    let pids = user_pids(&proc_dir)?;
    Ok(select(&proc_dir, &pids, own_netns, netns_only, filter))
}

/// The processes among `candidates` (PIDs an index last saw with a matching name) that
/// `filter` selects now: each is read and checked exactly as [`scan_proc`] checks a process,
/// so a PID that exited, was reused or renamed is left out. Cost: the files of the
/// candidates only.
pub fn verify_pids(
    proc_root: &Path,
    candidates: &[u32],
    own_netns: Option<&str>,
    netns_only: bool,
    filter: &Filter,
) -> Result<Vec<Process>, String> {
    let proc_dir = open_proc(proc_root)?;
    Ok(select(&proc_dir, candidates, own_netns, netns_only, filter))
}

/// `(pid, comm)` of every user process (kernel threads skipped), to build an index from.
pub fn user_process_names(proc_root: &Path) -> Result<Vec<(u32, String)>, String> {
    let proc_dir = open_proc(proc_root)?;
    let pids = user_pids(&proc_dir)?;
    let mut path = PidPath::default();
    let mut buf = [0u8; 64];
    Ok(pids
        .into_iter()
        .filter_map(|pid| {
            Some((
                pid,
                read_comm(&proc_dir, &mut path, pid, &mut buf)?.to_owned(),
            ))
        })
        .collect())
}

/// `/proc/PID/comm` of one process, if it still exists (to index a process after `exec`).
pub fn comm_of(proc_root: &Path, pid: u32) -> Option<String> {
    let proc_dir = DirFd::open(proc_root).ok()?;
    let mut buf = [0u8; 64];
    read_comm(&proc_dir, &mut PidPath::default(), pid, &mut buf).map(str::to_owned)
}

fn open_proc(proc_root: &Path) -> Result<DirFd, String> {
    DirFd::open(proc_root).map_err(|e| format!("cannot read process table: {e}"))
}

/// The PIDs in `/proc`, kernel threads left out.
fn user_pids(proc_dir: &DirFd) -> Result<Vec<u32>, String> {
    let kthreads = kernel_threads(proc_dir);
    let mut pids = Vec::with_capacity(512);
    let mut dents = vec![0u8; DIRENT_BUF];
    proc_dir
        .for_each_entry(&mut dents, |name| {
            if let Some(pid) = parse_pid(name) {
                if kthreads.binary_search(&pid).is_err() {
                    pids.push(pid);
                }
            }
        })
        .map_err(|e| format!("cannot read process table: {e}"))?;
    Ok(pids)
}

/// `PID/comm` without its newline; `None` when the process is gone (or its name is not
/// UTF-8).
fn read_comm<'b>(
    proc_dir: &DirFd,
    path: &mut PidPath,
    pid: u32,
    buf: &'b mut [u8; 64],
) -> Option<&'b str> {
    let n = proc_dir.read_small(path.of(pid, "comm"), buf).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()
        .map(|c| c.trim_end_matches('\n'))
}

/// The processes among `pids` that `filter` selects, ascending, at most [`MAX_RESULTS`].
fn select(
    proc_dir: &DirFd,
    pids: &[u32],
    own_netns: Option<&str>,
    netns_only: bool,
    filter: &Filter,
) -> Vec<Process> {
    let mut out = Vec::new();
    let mut path = PidPath::default();
    for &pid in pids {
        if let Some(p) = inspect(proc_dir, &mut path, pid, own_netns, netns_only, filter) {
            out.push(p);
            if out.len() >= MAX_RESULTS {
                break;
            }
        }
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// One process as `filter` sees it now: `None` when it is gone, a zombie, a kernel thread,
/// not selected by name or command line, or (with `netns_only`) in another namespace.
fn inspect(
    proc_dir: &DirFd,
    path: &mut PidPath,
    pid: u32,
    own_netns: Option<&str>,
    netns_only: bool,
    filter: &Filter,
) -> Option<Process> {
    // A process may exit between readdir (or the index's event) and this read: skip it.
    let mut buf = [0u8; 64];
    let comm = read_comm(proc_dir, path, pid, &mut buf)?;
    if !filter.by_comm(comm) {
        return None;
    }
    // A zombie (exited, not yet reaped by its parent) is not a running service: a crashed
    // nginx whose parent never waits for it must not count as healthy. The state is near
    // the start of `stat`, so one short read is enough; unreadable = gone. A kernel thread
    // (`PF_KTHREAD`) is not one either: a scan skips them unread, an index never names one
    // on purpose, but a PID may be reused by one.
    let mut stat = [0u8; 512];
    let n = proc_dir.read_small(path.of(pid, "stat"), &mut stat).ok()?;
    let stat = &stat[..n];
    if is_dead(stat) || stat_flags(stat).is_some_and(|f| f & PF_KTHREAD != 0) {
        return None;
    }
    // One read returns up to MAX_CMDLINE bytes of the command line (the rest is dropped).
    let mut raw = vec![0u8; MAX_CMDLINE];
    let n = proc_dir
        .read_small(path.of(pid, "cmdline"), &mut raw)
        .unwrap_or(0);
    let cmdline = split_cmdline(&raw[..n]);
    if !filter.by_cmdline(&cmdline) {
        return None;
    }
    let mut link = [0u8; 64];
    let ns = proc_dir
        .read_link(path.of(pid, "ns/net"), &mut link)
        .ok()
        .and_then(|n| std::str::from_utf8(&link[..n]).ok());
    let same_netns = matches!((ns, own_netns), (Some(a), Some(b)) if a == b);
    if netns_only && !same_netns {
        return None;
    }
    Some(Process {
        pid,
        name: comm.to_string(),
        cmdline,
        same_netns,
    })
}

/// `getdents64` buffer for listing `/proc` (a few hundred entries per call).
const DIRENT_BUF: usize = 32 * 1024;
/// `PF_KTHREAD` in `/proc/PID/stat`'s `flags` field (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;
/// `kthreadd`, the parent of every kernel thread, is PID 2 in the initial PID namespace.
const KTHREADD: u32 = 2;
/// Bytes of `kthreadd`'s child list read at most (PIDs of ~100k kernel threads).
const MAX_CHILDREN_LIST: u64 = 1 << 20;

/// A decimal PID (`/proc` also holds `self`, `sys`, `1234`…).
fn parse_pid(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// `PID/file` as a NUL-terminated relative path, built in place (no allocation per process).
#[derive(Default)]
struct PidPath([u8; 32]);

impl PidPath {
    fn of(&mut self, pid: u32, file: &str) -> &CStr {
        use std::io::Write;
        let mut w = std::io::Cursor::new(&mut self.0[..]);
        // 10 digits + '/' + a short file name + NUL fit in 32 bytes; if not, the empty path
        // fails to open like a vanished process.
        let fits = write!(w, "{pid}/{file}\0").is_ok();
        let len = usize::try_from(w.position()).unwrap_or(0);
        let bytes = if fits { &self.0[..len] } else { &b"\0"[..] };
        CStr::from_bytes_with_nul(bytes).unwrap_or_default()
    }
}

/// PIDs of the kernel threads (sorted): the children of `kthreadd`, from
/// `/proc/2/task/2/children` — but only if PID 2 really is a kernel thread (`PF_KTHREAD` in
/// its `stat` flags): in a container's PID namespace PID 2 is an ordinary process and no
/// kernel thread is visible. Empty when unknown; nothing is skipped then.
fn kernel_threads(proc_dir: &DirFd) -> Vec<u32> {
    let mut path = PidPath::default();
    let mut stat = [0u8; 512];
    let Ok(n) = proc_dir.read_small(path.of(KTHREADD, "stat"), &mut stat) else {
        return Vec::new();
    };
    if stat_flags(&stat[..n]).is_none_or(|f| f & PF_KTHREAD == 0) {
        return Vec::new();
    }
    let mut list = Vec::with_capacity(1024);
    let read = proc_dir
        .open_file(c"2/task/2/children")
        .and_then(|f| f.take(MAX_CHILDREN_LIST).read_to_end(&mut list));
    if read.is_err() {
        return Vec::new();
    }
    let mut pids: Vec<u32> = list
        .split(|b| *b == b' ' || *b == b'\n')
        .filter_map(parse_pid)
        .collect();
    pids.push(KTHREADD);
    pids.sort_unstable();
    pids
}

/// The `flags` field (the 9th) of a `/proc/PID/stat` line. The command in parentheses may
/// contain spaces and `)`, so fields are counted after the last `)`.
fn stat_flags(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    // After ") ": state ppid pgrp session tty_nr tpgid flags.
    let field = stat
        .get(close + 1..)?
        .split(|b| *b == b' ')
        .filter(|f| !f.is_empty())
        .nth(6)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// `/proc/PID/cmdline` is NUL-separated with a trailing NUL.
fn split_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .skip_while(String::is_empty)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

impl wit::Host for ProcessesCap {
    fn by_name(&mut self, name: String) -> wasmtime::Result<Result<Vec<Process>, String>> {
        Ok(self.scan(&Filter::Name(name)))
    }

    fn by_cmdline(&mut self, pattern: String) -> wasmtime::Result<Result<Vec<Process>, String>> {
        Ok(self.scan(&Filter::Cmdline(pattern)))
    }
}

/// Link `processes` (only when granted).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<ProcessesCap>>(linker, |s| &mut s.processes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_short_patterns_are_refused_and_scans_are_capped() {
        use wit::Host;
        let mut cap = ProcessesCap::new(Some(ProcessGrant { netns_only: false }), None, None);
        let empty = cap.by_cmdline(String::new()).unwrap().unwrap_err();
        assert!(empty.contains("at least 3"), "{empty}");
        assert!(cap.by_cmdline("ng".into()).unwrap().is_err());
        assert!(cap.by_name(String::new()).unwrap().is_err());
        // Refused calls do not count; real scans do, up to the cap.
        for _ in 0..MAX_SCANS {
            assert!(cap.by_name("wasmalived-none".into()).unwrap().is_ok());
        }
        let capped = cap.by_name("wasmalived-none".into()).unwrap().unwrap_err();
        assert!(capped.contains("scans per run"), "{capped}");
    }

    #[test]
    fn zombies_are_not_counted_as_running() {
        let dir = std::env::temp_dir().join(format!("wa-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (pid, state) in [("10", "S"), ("11", "Z")] {
            let p = dir.join(pid);
            std::fs::create_dir_all(p.join("ns")).unwrap();
            std::fs::write(p.join("comm"), "nginx\n").unwrap();
            std::fs::write(p.join("cmdline"), "nginx: worker (x)\0").unwrap();
            std::fs::write(p.join("stat"), format!("{pid} (nginx) {state} 1 1 1")).unwrap();
        }
        let found = scan_proc(&dir, None, false, &Filter::Name("nginx".into())).unwrap();
        assert_eq!(found.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![10]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fake `/proc`: `kthreadd` (PID 2) with `flags`, its children 3 and 5, and 3, 5, 10
    /// all named `nginx`.
    fn fake_proc(tag: &str, kthreadd_flags: u64) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wa-kthr-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("2");
        std::fs::create_dir_all(p.join("task/2")).unwrap();
        std::fs::write(p.join("comm"), "kthreadd\n").unwrap();
        let stat = format!("2 (kthreadd) S 0 0 0 0 -1 {kthreadd_flags} 0 0 0");
        std::fs::write(p.join("stat"), stat).unwrap();
        std::fs::write(p.join("task/2/children"), "3 5 ").unwrap();
        for pid in ["3", "5", "10"] {
            let p = dir.join(pid);
            std::fs::create_dir_all(p.join("ns")).unwrap();
            std::fs::write(p.join("comm"), "nginx\n").unwrap();
            std::fs::write(p.join("cmdline"), "nginx\0").unwrap();
            std::fs::write(p.join("stat"), format!("{pid} (nginx) S 2 0 0 0 -1 0 0")).unwrap();
        }
        std::fs::create_dir_all(dir.join("self")).unwrap();
        dir
    }

    #[test]
    fn kernel_threads_skipped_only_when_pid_2_is_kthreadd() {
        let pids = |dir: &Path| {
            scan_proc(dir, None, false, &Filter::Name("nginx".into()))
                .unwrap()
                .iter()
                .map(|p| p.pid)
                .collect::<Vec<_>>()
        };
        // 0x208040: PF_KTHREAD set, as on a real kthreadd.
        let real = fake_proc("real", 0x0020_8040);
        assert_eq!(
            pids(&real),
            vec![10],
            "children of kthreadd are kernel threads"
        );
        // In a container's PID namespace PID 2 is an ordinary process: skip nothing.
        let container = fake_proc("ctr", 0x0040_0100);
        assert_eq!(pids(&container), vec![3, 5, 10]);
        // No PID 2 at all: nothing skipped either.
        std::fs::remove_dir_all(container.join("2")).unwrap();
        assert_eq!(pids(&container), vec![3, 5, 10]);
        std::fs::remove_dir_all(&real).unwrap();
        std::fs::remove_dir_all(&container).unwrap();
    }

    #[test]
    fn stat_flags_after_a_tricky_comm() {
        assert_eq!(
            stat_flags(b"7 (a) b) S 1 7 7 0 -1 4194560 12 0"),
            Some(4_194_560)
        );
        assert_eq!(stat_flags(b"7 (x) S 1"), None);
        assert_eq!(stat_flags(b"garbage"), None);
    }

    #[test]
    fn pid_names_and_paths() {
        assert_eq!(parse_pid(b"1234"), Some(1234));
        for bad in [&b"self"[..], b"", b"12a", b"99999999999"] {
            assert_eq!(parse_pid(bad), None);
        }
        let mut p = PidPath::default();
        assert_eq!(p.of(4_294_967_295, "comm").to_bytes(), b"4294967295/comm");
        assert_eq!(p.of(7, "stat").to_bytes(), b"7/stat");
    }

    #[test]
    fn real_kernel_threads_are_kthreadd_children() {
        // On a host (not in a PID namespace) kthreadd exists and every kernel thread has an
        // empty command line; in a container the list is empty.
        let dir = DirFd::open(Path::new("/proc")).expect("open /proc");
        for pid in kernel_threads(&dir) {
            if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                assert!(cmd.is_empty(), "kernel thread {pid} has a command line");
            }
        }
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(
            split_cmdline(b"nginx: master\0-g\0daemon off;\0"),
            vec!["nginx: master", "-g", "daemon off;"]
        );
        assert!(split_cmdline(b"").is_empty());
    }

    #[test]
    fn stale_index_entries_are_verified_away() {
        // What an index may still name after missed or raced events: 10 runs nginx; 11 was
        // renamed; 12 exited; 13 is a zombie; 14 is a kernel thread that reused a PID.
        let dir = std::env::temp_dir().join(format!("wa-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (pid, comm, state, flags) in [
            (10, "nginx", "S", 0x0040_0100),
            (11, "sshd", "S", 0x0040_0100),
            (13, "nginx", "Z", 0x0040_0100),
            (14, "nginx", "I", 0x0020_8040),
        ] {
            let p = dir.join(pid.to_string());
            std::fs::create_dir_all(p.join("ns")).unwrap();
            std::fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
            std::fs::write(p.join("cmdline"), format!("{comm}\0")).unwrap();
            let stat = format!("{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 {flags} 0 0");
            std::fs::write(p.join("stat"), stat).unwrap();
        }
        let name = Filter::Name("nginx".into());
        let found = verify_pids(&dir, &[10, 11, 12, 13, 14], None, false, &name).unwrap();
        assert_eq!(found.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![10]);
        // The record is the one a scan gives.
        let scanned = scan_proc(&dir, None, false, &name).unwrap();
        assert_eq!(format!("{found:?}"), format!("{scanned:?}"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_live_index_is_consulted_and_verified() {
        use wit::Host;
        let me = std::process::id();
        let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
        let comm = comm.trim_end().to_string();
        let grant = Some(ProcessGrant { netns_only: false });
        let pids = |cap: &mut ProcessesCap, name: &str| {
            let found = cap.by_name(name.into()).unwrap().expect("by-name");
            found.into_iter().map(|p| p.pid).collect::<Vec<_>>()
        };
        let index = Arc::new(ProcessIndex::new());
        // Not live: a scan, which finds this process.
        let mut cap = ProcessesCap::new(grant, None, Some(Arc::clone(&index)));
        assert!(pids(&mut cap, &comm).contains(&me));
        // Live and naming this process under its name: found, through the index.
        index.rebuild([(me, comm.clone()), (u32::MAX - 1, comm.clone())]);
        assert_eq!(
            pids(&mut cap, &comm),
            vec![me],
            "a PID that does not exist is dropped"
        );
        // Live and naming it under another name: the stale entry is verified away.
        index.rebuild([(me, "wa-ghost".to_string())]);
        assert!(pids(&mut cap, "wa-ghost").is_empty());
        // Lookups through the index count against the per-run cap like scans.
        let mut capped = 3;
        while cap.by_name("wa-ghost".into()).unwrap().is_ok() {
            capped += 1;
        }
        assert_eq!(capped, MAX_SCANS);
    }

    #[test]
    fn refused_without_grant() {
        let mut cap = ProcessesCap::new(None, None, None);
        assert!(cap.scan(&Filter::All).is_err());
    }

    #[test]
    fn finds_this_test_process_by_pid_and_netns() {
        let me = std::process::id();
        let own = netns_of(Path::new("/proc"), "self");
        let found =
            scan_proc(Path::new("/proc"), own.as_deref(), true, &Filter::All).expect("scan /proc");
        let p = found.iter().find(|p| p.pid == me).expect("self listed");
        assert!(p.same_netns);
        let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
        let by_name = scan_proc(
            Path::new("/proc"),
            own.as_deref(),
            false,
            &Filter::Name(comm.trim_end().to_string()),
        )
        .expect("scan");
        assert!(by_name.iter().any(|p| p.pid == me));
        assert!(by_name.iter().all(|p| p.name == comm.trim_end()));
        let exe = std::env::args().next().expect("argv0");
        let by_cmd =
            scan_proc(Path::new("/proc"), None, false, &Filter::Cmdline(exe)).expect("scan");
        assert!(by_cmd.iter().any(|p| p.pid == me));
    }

    #[test]
    fn other_netns_filtered() {
        let found =
            scan_proc(Path::new("/proc"), Some("net:[0]"), true, &Filter::All).expect("scan");
        assert!(found.is_empty(), "no process is in a fake namespace");
    }
}
