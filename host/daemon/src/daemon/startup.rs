//! What happens before the async runtime exists: the configuration is read, and with
//! `net_namespace NAME` the process connector is opened and the daemon enters
//! `/run/netns/NAME` (keepalived's order in `main.c`: `open_track_processes`, then
//! `set_namespaces`).
//!
//! `setns(2)` moves only the calling thread; threads it creates afterwards inherit the
//! namespace. So this runs in `main` before the multi-threaded runtime is built: every
//! runtime worker, blocking-pool and plugin thread is created later, inside the namespace.
//! Unlike keepalived, the daemon does not bind-mount a per-namespace pid directory: its pid
//! file and control socket are where `--state-dir`/`--pid` say (give each daemon its own).

use std::fs::File;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use tracing::{info, warn};
use wasmalived_config::{self as config, LoadOptions, Loaded};

use crate::procs::connector::Connector;

/// Where `ip netns` keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// The start-up work done before the runtime, handed to [`super::run`].
#[derive(Debug)]
pub struct Startup {
    /// The configuration as first read.
    pub loaded: Loaded,
    /// The process connector, opened before entering `net_namespace` (`None`: not opened;
    /// the process monitor opens it when rules need it, where it can).
    pub connector: Option<Connector>,
    /// The network namespace the daemon entered.
    pub net_namespace: Option<String>,
}

impl Startup {
    /// Reads `config_file` and, when a namespace is named (`namespace_override`, else the
    /// configuration's `net_namespace`), opens the process connector and enters it. Call on
    /// the only thread of the process.
    pub fn prepare(
        config_file: &Path,
        load: LoadOptions,
        namespace_override: Option<&str>,
    ) -> anyhow::Result<Startup> {
        let loaded = config::load(config_file, load).map_err(|errs| {
            anyhow::anyhow!("{}: configuration invalid:\n{errs}", config_file.display())
        })?;
        let configured = loaded.config.global.net_namespace.as_deref();
        if let (Some(cli), Some(conf)) = (namespace_override, configured) {
            if cli != conf {
                warn!("net_namespace {conf} of the configuration overridden by --namespace {cli}");
            }
        }
        let Some(name) = namespace_override.or(configured).map(str::to_owned) else {
            return Ok(Startup {
                loaded,
                connector: None,
                net_namespace: None,
            });
        };
        // The connector exists only in the initial network namespace: open it first.
        let g = &loaded.config.global;
        let connector =
            match Connector::open(g.process_monitor_rcv_bufs, g.process_monitor_rcv_bufs_force) {
                Ok(c) => Some(c),
                Err(err) => {
                    warn!(
                        "process connector not opened before entering net_namespace {name}: {err}"
                    );
                    None
                }
            };
        enter(&name)?;
        info!(net_namespace = %name, "running in network namespace {name}");
        Ok(Startup {
            loaded,
            connector,
            net_namespace: Some(name),
        })
    }
}

/// Moves the calling thread into the network namespace `/run/netns/NAME`.
fn enter(name: &str) -> anyhow::Result<()> {
    let path: PathBuf = Path::new(NETNS_DIR).join(name);
    let ns = File::open(&path)
        .with_context(|| format!("net_namespace {name}: opening {}", path.display()))?;
    move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
        .with_context(|| format!("net_namespace {name}: entering {} (setns)", path.display()))?;
    Ok(())
}
