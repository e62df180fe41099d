//! `wasmalived:plugin/processes`: a read-only view of the process table. The host reads
//! `/proc`; the plugin never sees it. With `netns_only`, only processes whose
//! `/proc/PID/ns/net` is the daemon's own are returned (PIDs are not separated by network
//! namespaces, and a host may run one nginx per namespace).

use std::path::Path;

use wasmtime::component::{HasSelf, Linker};

use crate::plugins::bindings::wasmalived::plugin::processes::{self as wit, Process};
use crate::plugins::grants::ProcessGrant;
use crate::plugins::state::HostState;

/// At most this many processes are returned per call.
pub const MAX_RESULTS: usize = 4096;
/// Bytes of a command line kept.
const MAX_CMDLINE: usize = 4096;

/// The capability for one run.
#[derive(Debug, Default)]
pub struct ProcessesCap {
    grant: Option<ProcessGrant>,
    own_netns: Option<String>,
}

impl ProcessesCap {
    /// Bind to a grant (`None`: every call is refused) and the daemon's network namespace.
    pub fn new(grant: Option<ProcessGrant>, own_netns: Option<String>) -> Self {
        Self { grant, own_netns }
    }

    fn scan(&self, filter: &Filter) -> Result<Vec<Process>, String> {
        let grant = self
            .grant
            .ok_or("`processes` is not granted to this check")?;
        scan_proc(
            Path::new("/proc"),
            self.own_netns.as_deref(),
            grant.netns_only,
            filter,
        )
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

/// Whether the process is a zombie (`Z`) or dead (`X`), from `/proc/PID/stat`'s state field
/// (the field after the parenthesised command, which may itself contain `)`). Unreadable =
/// gone, so dead too.
fn is_dead(dir: &Path) -> bool {
    let Ok(stat) = std::fs::read(dir.join("stat")) else {
        return true;
    };
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
pub fn scan_proc(
    proc_root: &Path,
    own_netns: Option<&str>,
    netns_only: bool,
    filter: &Filter,
) -> Result<Vec<Process>, String> {
    let entries =
        std::fs::read_dir(proc_root).map_err(|e| format!("cannot read process table: {e}"))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid_str) = file_name.to_str() else {
            continue;
        };
        let Ok(pid) = pid_str.parse::<u32>() else {
            continue;
        };
        let dir = entry.path();
        // A process may exit between readdir and read: skip it.
        let mut buf = [0u8; 64];
        let Some(comm) = read_comm(&dir.join("comm"), &mut buf) else {
            continue;
        };
        if !filter.by_comm(comm) {
            continue;
        }
        // A zombie (exited, not yet reaped by its parent) is not a running service: a
        // crashed nginx whose parent never waits for it must not count as healthy.
        if is_dead(&dir) {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline"))
            .map(|mut raw| {
                raw.truncate(MAX_CMDLINE);
                split_cmdline(&raw)
            })
            .unwrap_or_default();
        if !filter.by_cmdline(&cmdline) {
            continue;
        }
        let ns = netns_of(proc_root, pid_str);
        let same_netns = matches!((&ns, own_netns), (Some(a), Some(b)) if a == b);
        if netns_only && !same_netns {
            continue;
        }
        out.push(Process {
            pid,
            name: comm.to_string(),
            cmdline,
            same_netns,
        });
        if out.len() >= MAX_RESULTS {
            break;
        }
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

/// Read `/proc/PID/comm` (at most 16 bytes) with one open/read/close — this runs once per
/// process per scan, so it avoids `read_to_string`'s extra `statx` and second `read`.
fn read_comm<'a>(path: &Path, buf: &'a mut [u8; 64]) -> Option<&'a str> {
    use std::io::Read;
    let n = std::fs::File::open(path).ok()?.read(buf).ok()?;
    let s = std::str::from_utf8(buf.get(..n)?).ok()?;
    Some(s.trim_end_matches('\n'))
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

    #[test]
    fn cmdline_split() {
        assert_eq!(
            split_cmdline(b"nginx: master\0-g\0daemon off;\0"),
            vec!["nginx: master", "-g", "daemon off;"]
        );
        assert!(split_cmdline(b"").is_empty());
    }

    #[test]
    fn refused_without_grant() {
        let cap = ProcessesCap::new(None, None);
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
