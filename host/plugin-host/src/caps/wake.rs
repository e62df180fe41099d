//! `wasmalived:plugin/wake`: what should run the check again before its next interval.
//!
//! A run declares its wake sources — PIDs whose exit should wake it (`on-exit`, 1.2.0),
//! paths whose change should (`on-change`, 1.3.0) and TCP servers whose dropping a connection
//! should (`on-disconnect`, 1.4.0); the host hands them to the check's scheduler with the
//! run's outcome ([`crate::RunOutcome::wake`]), which holds a pidfd per PID, an inotify watch
//! per path and a connection per server, and rate-limits the early runs. This module only
//! collects, bounds and authorises the declaration; it never touches a process, a file or a
//! socket.
//!
//! Least privilege: a wake tells the plugin something happened, so it may only name what the
//! check can see anyway. `on-exit` is refused (and recorded as a denial of the run) unless the
//! check is granted `processes`; `on-change` is refused unless the path, as the plugin sees
//! it, lies inside a directory the check is granted (`allow_dir`); `on-disconnect` is refused
//! unless the check may connect to the address (its `allow_tcp` grants, or those an LVS
//! checker derives) — the connection the host holds reaches nothing the plugin could not
//! reach itself. A granted path is resolved
//! to its open granted directory (the one the plugin's preopen is) and a relative path below
//! it with no `..`: the watch is later opened beneath that directory, never by host path.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::sockets::{SocketGrants, TargetRefused};
use super::wasi::GrantedDir;
use crate::bindings::wasmalived::plugin::wake as wit;
use crate::state::{Denials, HostState};

/// PIDs one run may ask to be woken by.
pub const MAX_WAKE_PIDS: usize = 64;
/// Paths one run may ask to be woken by.
pub const MAX_WAKE_PATHS: usize = 16;
/// TCP servers one run may ask to be woken by.
pub const MAX_WAKE_ADDRESSES: usize = 8;

/// What a run asked to be woken by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WakeSources {
    /// Wake when any of these processes exits (sorted, no duplicates, at most
    /// [`MAX_WAKE_PIDS`]).
    pub pids: Vec<u32>,
    /// Wake when any of these paths changes (sorted by guest path, no duplicates, at most
    /// [`MAX_WAKE_PATHS`]).
    pub paths: Vec<WatchedPath>,
    /// Wake when any of these TCP servers closes or resets the connection the host holds to
    /// it (sorted, no duplicates, at most [`MAX_WAKE_ADDRESSES`]).
    pub addresses: Vec<SocketAddr>,
}

impl WakeSources {
    /// Nothing to watch: the check runs at its interval only.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty() && self.paths.is_empty() && self.addresses.is_empty()
    }
}

/// A path a run asked to be woken by, resolved against the check's granted directories.
#[derive(Debug, Clone)]
pub struct WatchedPath {
    /// The path as the plugin named it (normalised: no `.`, no repeated `/`).
    pub guest_path: String,
    /// The granted directory it lies in, open (the same descriptor the plugin's preopen is).
    pub dir: Arc<OwnedFd>,
    /// The granted directory's host path (for messages only: the watch resolves beneath
    /// [`WatchedPath::dir`]).
    pub dir_host_path: PathBuf,
    /// The path below the granted directory, without `..`; empty for the directory itself.
    pub relative: PathBuf,
}

impl PartialEq for WatchedPath {
    /// The same path in the same open granted directory.
    fn eq(&self, other: &Self) -> bool {
        self.guest_path == other.guest_path
            && Arc::ptr_eq(&self.dir, &other.dir)
            && self.relative == other.relative
    }
}

impl Eq for WatchedPath {}

/// Resolve `guest` (a path as the plugin sees it) against the granted directories: the grant
/// whose guest path is the longest prefix of it, by whole components. `Err` says why not.
pub fn resolve_in_grants(guest: &str, dirs: &[GrantedDir]) -> Result<WatchedPath, String> {
    if !guest.starts_with('/') {
        return Err(format!(
            "`{guest}` is not absolute (name the path as the plugin sees it, e.g. `/data/file`)"
        ));
    }
    let mut parts = Vec::new();
    for c in Path::new(guest).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => parts.push(p),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("`{guest}`: `..` is not allowed in a watched path"))
            }
        }
    }
    let best = dirs
        .iter()
        .filter_map(|d| {
            let prefix: Vec<_> = Path::new(&d.guest_path)
                .components()
                .filter_map(|c| match c {
                    Component::Normal(p) => Some(p),
                    _ => None,
                })
                .collect();
            parts.starts_with(&prefix).then_some((prefix.len(), d))
        })
        .max_by_key(|(len, _)| *len);
    let Some((len, dir)) = best else {
        return Err(format!(
            "`{guest}` is not inside a directory the check is granted (`allow_dir`)"
        ));
    };
    let mut normalised = PathBuf::from("/");
    normalised.extend(&parts);
    Ok(WatchedPath {
        guest_path: normalised.to_string_lossy().into_owned(),
        dir: Arc::clone(dir.fd()),
        dir_host_path: dir.host_path.clone(),
        relative: parts[len..].iter().collect(),
    })
}

/// The capability for one run.
#[derive(Debug, Default)]
pub struct WakeCap {
    /// Whether PIDs may be watched (the check is granted `processes`).
    pids_allowed: bool,
    /// The check's granted directories (shared by its runs): paths inside them may be
    /// watched.
    dirs: Arc<[GrantedDir]>,
    /// The check's socket grants: servers it may connect to may be watched.
    sockets: Arc<SocketGrants>,
    sources: WakeSources,
    denials: Denials,
}

impl WakeCap {
    /// Bind to the check's grants: `pids_allowed` when it is granted `processes`; paths may be
    /// watched inside `dirs`, servers the check may connect to by `sockets`.
    pub fn new(
        pids_allowed: bool,
        dirs: Arc<[GrantedDir]>,
        sockets: Arc<SocketGrants>,
        denials: Denials,
    ) -> Self {
        Self {
            pids_allowed,
            dirs,
            sockets,
            sources: WakeSources::default(),
            denials,
        }
    }

    /// What the run declared, emptied.
    pub fn take(&mut self) -> WakeSources {
        std::mem::take(&mut self.sources)
    }

    fn on_exit(&mut self, pids: &[u32]) -> Result<(), String> {
        if !self.pids_allowed {
            self.denials
                .record(|| "wake on-exit (needs `allow_processes`)".to_string());
            return Err("watching processes needs the `processes` grant".into());
        }
        if let Some(bad) = pids
            .iter()
            .find(|p| **p == 0 || i32::try_from(**p).is_err())
        {
            return Err(format!("{bad} is not a process id"));
        }
        let mut merged = self.sources.pids.clone();
        merged.extend_from_slice(pids);
        merged.sort_unstable();
        merged.dedup();
        if merged.len() > MAX_WAKE_PIDS {
            return Err(format!(
                "at most {MAX_WAKE_PIDS} processes can be watched per run, asked for {}",
                merged.len()
            ));
        }
        self.sources.pids = merged;
        Ok(())
    }

    fn on_change(&mut self, path: &str) -> Result<(), String> {
        let watched = match resolve_in_grants(path, &self.dirs) {
            Ok(w) => w,
            Err(reason) => {
                self.denials.record(|| format!("wake on-change {reason}"));
                return Err(reason);
            }
        };
        if self.sources.paths.contains(&watched) {
            return Ok(());
        }
        if self.sources.paths.len() >= MAX_WAKE_PATHS {
            return Err(format!(
                "at most {MAX_WAKE_PATHS} paths can be watched per run; `{path}` is one more"
            ));
        }
        let at = self
            .sources
            .paths
            .partition_point(|p| p.guest_path < watched.guest_path);
        self.sources.paths.insert(at, watched);
        Ok(())
    }

    fn on_disconnect(&mut self, address: &str) -> Result<(), String> {
        let addr = self
            .sockets
            .tcp_server(address, "wake on-disconnect", &self.denials)
            .map_err(TargetRefused::into_message)?;
        let Err(at) = self.sources.addresses.binary_search(&addr) else {
            return Ok(());
        };
        if self.sources.addresses.len() >= MAX_WAKE_ADDRESSES {
            return Err(format!(
                "at most {MAX_WAKE_ADDRESSES} servers can be watched per run; `{addr}` is one more"
            ));
        }
        self.sources.addresses.insert(at, addr);
        Ok(())
    }
}

impl wit::Host for WakeCap {
    fn on_exit(&mut self, pids: Vec<u32>) -> wasmtime::Result<Result<(), String>> {
        Ok(WakeCap::on_exit(self, &pids))
    }

    fn on_change(&mut self, path: String) -> wasmtime::Result<Result<(), String>> {
        Ok(WakeCap::on_change(self, &path))
    }

    fn on_disconnect(&mut self, address: String) -> wasmtime::Result<Result<(), String>> {
        Ok(WakeCap::on_disconnect(self, &address))
    }
}

/// Link `wake` (always; its uses are checked against the grants at call time).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<WakeCap>>(linker, |s| &mut s.wake)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_merged_sorted_and_bounded() {
        let mut cap = WakeCap::new(true, Arc::default(), no_sockets(), Denials::default());
        cap.on_exit(&[30, 10]).expect("fits");
        cap.on_exit(&[10, 20]).expect("fits");
        let too_many: Vec<u32> = (100..100 + u32::try_from(MAX_WAKE_PIDS).unwrap()).collect();
        let e = cap.on_exit(&too_many).expect_err("over the bound");
        assert!(e.contains("at most 64"), "{e}");
        assert_eq!(
            cap.take().pids,
            vec![10, 20, 30],
            "a refused call adds nothing"
        );
        assert!(cap.take().is_empty(), "take empties");
    }

    #[test]
    fn not_a_pid_is_refused() {
        let mut cap = WakeCap::new(true, Arc::default(), no_sockets(), Denials::default());
        assert!(cap.on_exit(&[0]).is_err());
        assert!(cap.on_exit(&[u32::MAX]).is_err());
        assert!(cap.take().is_empty());
    }

    #[test]
    fn without_the_processes_grant_watching_is_denied_and_recorded() {
        let denials = Denials::default();
        let mut cap = WakeCap::new(false, Arc::default(), no_sockets(), denials.clone());
        let e = cap.on_exit(&[1]).expect_err("denied");
        assert!(e.contains("`processes`"), "{e}");
        assert!(cap.take().is_empty());
        assert_eq!(
            denials.take(),
            vec!["wake on-exit (needs `allow_processes`)"]
        );
    }

    fn dirs() -> Vec<GrantedDir> {
        vec![
            GrantedDir::for_test("/data"),
            GrantedDir::for_test("/data/inner"),
            GrantedDir::for_test("/etc/nginx"),
        ]
    }

    #[test]
    fn a_path_resolves_in_the_longest_granted_prefix_by_whole_components() {
        let dirs = dirs();
        let w = resolve_in_grants("/data//./x/flag", &dirs).expect("inside /data");
        assert_eq!(w.guest_path, "/data/x/flag");
        assert_eq!(w.relative, PathBuf::from("x/flag"));
        assert!(Arc::ptr_eq(&w.dir, dirs[0].fd()));
        let w = resolve_in_grants("/data/inner/f", &dirs).expect("inside /data/inner");
        assert!(Arc::ptr_eq(&w.dir, dirs[1].fd()), "the longer grant wins");
        assert_eq!(w.relative, PathBuf::from("f"));
        let w = resolve_in_grants("/etc/nginx", &dirs).expect("the granted dir itself");
        assert_eq!(w.relative, PathBuf::new());
        // `/database` is not inside `/data`.
        let e = resolve_in_grants("/database/f", &dirs).expect_err("not a component prefix");
        assert!(e.contains("`/database/f` is not inside a directory"), "{e}");
    }

    #[test]
    fn escapes_and_relative_paths_are_refused() {
        let dirs = dirs();
        let e = resolve_in_grants("/data/../etc/shadow", &dirs).expect_err("..");
        assert!(e.contains("`..` is not allowed"), "{e}");
        let e = resolve_in_grants("data/flag", &dirs).expect_err("relative");
        assert!(e.contains("not absolute"), "{e}");
        let e = resolve_in_grants("/etc/passwd", &dirs).expect_err("outside");
        assert!(e.contains("(`allow_dir`)"), "{e}");
    }

    #[test]
    fn a_path_outside_the_grants_is_denied_and_recorded() {
        let denials = Denials::default();
        let mut cap = WakeCap::new(false, dirs().into(), no_sockets(), denials.clone());
        let e = cap.on_change("/etc/passwd").expect_err("denied");
        assert!(e.contains("`/etc/passwd`"), "{e}");
        assert!(cap.take().is_empty());
        assert_eq!(
            denials.take(),
            vec!["wake on-change `/etc/passwd` is not inside a directory the check is granted (`allow_dir`)"]
        );
        // Without any grant, every path is outside.
        let mut bare = WakeCap::new(true, Arc::default(), no_sockets(), denials.clone());
        assert!(bare.on_change("/data/flag").is_err());
        assert_eq!(denials.take().len(), 1);
    }

    #[test]
    fn paths_are_deduplicated_sorted_and_bounded() {
        let mut cap = WakeCap::new(false, dirs().into(), no_sockets(), Denials::default());
        cap.on_change("/data/b").expect("fits");
        cap.on_change("/data/a").expect("fits");
        cap.on_change("/data/./b").expect("the same path again");
        let sources = cap.take();
        let named: Vec<_> = sources
            .paths
            .iter()
            .map(|p| p.guest_path.as_str())
            .collect();
        assert_eq!(named, ["/data/a", "/data/b"]);
        for i in 0..MAX_WAKE_PATHS {
            cap.on_change(&format!("/data/{i}"))
                .expect("within the bound");
        }
        let e = cap.on_change("/data/one-more").expect_err("over the bound");
        assert!(e.contains("at most 16 paths"), "{e}");
        assert_eq!(cap.take().paths.len(), MAX_WAKE_PATHS);
    }

    fn no_sockets() -> Arc<SocketGrants> {
        Arc::default()
    }

    /// A check granted `allow_tcp 192.0.2.10:80 [2001:db8::10]:*`.
    fn tcp_grants() -> Arc<SocketGrants> {
        let target = |g| super::super::sockets::parse_target("tcp", g).expect("grant");
        Arc::new(SocketGrants {
            tcp: vec![target("192.0.2.10:80"), target("[2001:db8::10]:*")],
            ..SocketGrants::default()
        })
    }

    #[test]
    fn a_server_the_check_may_reach_is_watched_sorted_and_once() {
        let mut cap = WakeCap::new(false, Arc::default(), tcp_grants(), Denials::default());
        cap.on_disconnect("[2001:db8::10]:5432")
            .expect("any port of the v6 grant");
        cap.on_disconnect(" 192.0.2.10:80").expect("the v4 grant");
        cap.on_disconnect("192.0.2.10:80")
            .expect("the same server again");
        let sources = cap.take();
        let named: Vec<String> = sources.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(named, ["192.0.2.10:80", "[2001:db8::10]:5432"]);
        assert!(!sources.is_empty());
    }

    #[test]
    fn a_server_outside_the_tcp_grants_is_denied_and_recorded() {
        let denials = Denials::default();
        let mut cap = WakeCap::new(true, Arc::default(), tcp_grants(), denials.clone());
        let e = cap
            .on_disconnect("192.0.2.10:81")
            .expect_err("another port");
        assert!(e.contains("`192.0.2.10:81`"), "{e}");
        assert!(e.contains("(`allow_tcp`)"), "{e}");
        assert!(cap.take().is_empty());
        assert_eq!(
            denials.take(),
            vec!["wake on-disconnect tcp 192.0.2.10:81 (not granted: `allow_tcp`)"]
        );
        // Without any TCP grant, every server is outside.
        let mut bare = WakeCap::new(true, Arc::default(), no_sockets(), denials.clone());
        assert!(bare.on_disconnect("127.0.0.1:80").is_err());
        assert_eq!(denials.take().len(), 1);
    }

    #[test]
    fn a_server_not_named_by_a_literal_address_is_refused_without_a_denial() {
        let denials = Denials::default();
        let mut cap = WakeCap::new(false, Arc::default(), tcp_grants(), denials.clone());
        for bad in [
            "localhost:80",
            "192.0.2.10",
            "192.0.2.10:*",
            "2001:db8::10:80",
            "",
        ] {
            let e = cap.on_disconnect(bad).expect_err(bad);
            assert!(e.contains("is not a literal IP:PORT"), "{bad}: {e}");
        }
        assert!(
            denials.take().is_empty(),
            "a malformed address is no capability use"
        );
        assert!(cap.take().is_empty());
    }

    #[test]
    fn servers_are_bounded_per_run() {
        let grants = Arc::new(SocketGrants {
            tcp: vec![super::super::sockets::parse_target("tcp", "192.0.2.10:*").expect("grant")],
            ..SocketGrants::default()
        });
        let mut cap = WakeCap::new(false, Arc::default(), grants, Denials::default());
        for port in 1..=u16::try_from(MAX_WAKE_ADDRESSES).expect("small") {
            cap.on_disconnect(&format!("192.0.2.10:{port}"))
                .expect("within the bound");
        }
        cap.on_disconnect("192.0.2.10:1")
            .expect("already watched: no new one");
        let e = cap
            .on_disconnect("192.0.2.10:999")
            .expect_err("over the bound");
        assert!(e.contains("at most 8 servers"), "{e}");
        assert_eq!(cap.take().addresses.len(), MAX_WAKE_ADDRESSES);
    }
}
