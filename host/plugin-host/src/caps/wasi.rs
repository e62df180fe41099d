//! The WASI 0.2 baseline every plugin gets: io, clocks, random (harmless), and the
//! interfaces Rust's wasm32-wasip2 std imports by itself — cli (environment, exit, stdio,
//! terminal) and filesystem (types, preopens). Those are linked but inert: the environment
//! and arguments are empty, stdin is closed, stdout/stderr are captured (bounded), and there
//! is no preopened directory unless `dir` is granted (read-only unless granted writable).
//!
//! A granted directory is opened once, when the check loads, through the file-trust policy
//! (`wasmalived_sys::trust::open_trusted_dir`: owned by root or the daemon's user, nothing on
//! its path writable by others, symlinks only if trusted); every run's preopen is that same
//! open directory (through `/proc/self/fd`), so swapping the path for a symlink afterwards
//! changes nothing.
//! Sockets and HTTP are separate capabilities (`sockets.rs`, `http.rs`).

use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, filesystem, random};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use super::stdio::Capture;
use crate::state::HostState;
use wasmalived_config::grants::DirGrant;
use wasmalived_sys::trust::{self, Symlinks};

/// A granted directory, open.
#[derive(Debug, Clone)]
pub struct GrantedDir {
    fd: Arc<OwnedFd>,
    /// The path it was opened by (for messages).
    pub host_path: PathBuf,
    /// Where the plugin sees it.
    pub guest_path: String,
    /// `rw`.
    pub writable: bool,
}

impl GrantedDir {
    /// Open and check one grant.
    pub fn open(grant: &DirGrant) -> Result<GrantedDir, String> {
        let me = crate::security::daemon_uid();
        let trusted = (me != 0).then_some(me);
        let (fd, _) = trust::open_trusted_dir(&grant.host_path, trusted, Symlinks::FollowTrusted)
            .map_err(|e| format!("granted dir {}: {e}", grant.host_path.display()))?;
        Ok(GrantedDir {
            fd: Arc::new(fd),
            host_path: grant.host_path.clone(),
            guest_path: grant.guest_path.clone(),
            writable: grant.writable,
        })
    }

    /// A grant of `/` seen by the plugin at `guest_path` (unit tests of what is inside a
    /// grant; no file-trust check).
    #[cfg(test)]
    pub(crate) fn for_test(guest_path: &str) -> GrantedDir {
        let root = std::fs::File::open("/").expect("open /");
        GrantedDir {
            fd: Arc::new(OwnedFd::from(root)),
            host_path: PathBuf::from("/"),
            guest_path: guest_path.to_string(),
            writable: false,
        }
    }

    /// The open directory (what a wake watch on a path inside it resolves beneath,
    /// `caps/wake.rs`).
    pub fn fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    /// A path that reopens exactly this open directory, whatever its name points at now.
    fn reopen_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// Link the baseline (always).
pub fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // io (error, poll, streams), clocks, random.random and cli stdin/stdout/stderr.
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(l)?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, HostState::random)?;
    random::insecure_seed::add_to_linker::<HostState, HasSelf<HostState>>(l, |s| s)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    filesystem::types::add_to_linker::<HostState, WasiFilesystem>(l, HostState::filesystem)?;
    filesystem::preopens::add_to_linker::<HostState, WasiFilesystem>(l, HostState::filesystem)?;
    Ok(())
}

/// `wasi:random/insecure-seed`: drawn on the run's first call from the context's RNG, then
/// the same for the rest of the run. The context is reused by the check's next run
/// (`run_context.rs`), whose seed must not be this one: WASI's own keeps one seed for the
/// context's life.
impl random::insecure_seed::Host for HostState {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        if let Some(seed) = self.insecure_seed {
            return Ok(seed);
        }
        let rng = self.wasi.random();
        let seed = (
            random::random::Host::get_random_u64(rng)?,
            random::random::Host::get_random_u64(rng)?,
        );
        self.insecure_seed = Some(seed);
        Ok(seed)
    }
}

/// A context with no environment, no arguments, captured stdio and the granted preopens.
pub fn builder(capture: &Capture, dirs: &[GrantedDir]) -> Result<WasiCtxBuilder, String> {
    let mut b = WasiCtxBuilder::new();
    b.stdout(capture.clone()).stderr(capture.clone());
    for d in dirs {
        let perms = if d.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(d.reopen_path(), &d.guest_path, perms)
            .map_err(|e| format!("granted dir {}: {e:#}", d.host_path.display()))?;
    }
    Ok(b)
}
