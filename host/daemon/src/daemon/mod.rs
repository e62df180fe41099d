//! The daemon: who owns what, which messages flow where, and how it reloads and shuts down.
//!
//! ```text
//!                 SIGHUP / config file change / control `reload`
//!                                 │
//!   SIGTERM ──► run() ── apply(config) ───────┬──────────────────┬────────────────┐
//!                 │                           ▼                  ▼                ▼
//!                 │                  CheckSet: one task    Sockets: one raw   LinkMonitor:
//!                 │                  per vrrp_script       socket + rx task   netlink link
//!                 │                  (script or plugin)    per (iface, af)    events
//!                 │                          │ watch<CheckUpdate>  │ Datagram       │ watch<links>
//!                 │                          ▼                     ▼ (own queue)    ▼
//!                 └── Command (upsert, ──► driver task: owns the sans-IO Router (every instance,
//!                     retain, sync groups,  demux, tracking, sync groups, split brain, GARP
//!                     checks, shutdown)     pacing, reload diffs) and one timer; performs its
//!                                           outputs: adverts out, VIPs via netlink, GARP/NA,
//!                                           notify queues, status board
//! ```
//!
//! Every protocol decision is the router's (`wasmalived_proto::router`); the driver
//! ([`driver`]) is a thin executor and the only writer of VRRP state and of the instances'
//! status entries. Plugin runs happen on the plugin runtime's own executor threads — a plugin
//! check's task (and an LVS plugin probe's loop) lives there and runs its plugin inline, so a
//! run costs no thread hand-off — and a slow or stuck check can only make its own verdict
//! late; it never delays an advert (STYLE principle 7). `vrrp_rt_priority`,
//! `vrrp_cpu_affinity` and `vrrp_no_swap` apply to the protocol threads only
//! ([`crate::protocol_threads`]). Shutdown (SIGTERM/SIGINT): every instance sends priority 0 and removes its
//! VIPs, runs `notify_stop`, bounded by [`SHUTDOWN_GRACE`]; then the LVS director runs its
//! `omega` scripts and removes its tables; then the static addresses, routes and rules
//! ([`statics`], installed by `apply`) are removed; then all tasks are cancelled.
//!
//! keepalived's other signals are answered in the same loop: SIGUSR1, SIGUSR2, `STATS_CLEAR`
//! and `JSON` write the dump files ([`crate::dumps`]) from a copy of the status board, on
//! the blocking pool. The operator's maintenance (control socket) is recorded in the state
//! directory ([`maintenance`]) and applied by the router, which keeps it by instance name
//! across reloads.
//! Under systemd ([`crate::systemd`]): `READY=1` once the first configuration is applied,
//! `RELOADING=1` … `READY=1` around each reload, `STOPPING=1` when shutdown begins; the
//! driver sends the watchdog pings from its loop and is the only writer of the status line.
//! The Prometheus endpoint ([`crate::metrics`], `metrics_listen`) reads the status board and
//! the plugin registry's counters at each scrape; it sends nobody anything.
//!
//! The LVS director ([`crate::lvs`]) runs beside the router while the configuration has
//! `virtual_server`s: its own task, probe tasks and data-path applier; it learns which VIPs
//! this node holds from the driver (a `watch`, for `ha_suspend`) and never sends it anything.
//! The connection sync ([`crate::lvs::sync`], `lvs_sync_daemon`) follows one instance's
//! state the same way (a `watch` of [`driver::InstanceStates`]) and drives conntrackd; it
//! stops with the director at shutdown, after the VIPs are released.
//!
//! The process monitor ([`crate::procs`]) is the one process-event source: it feeds the
//! driver (`vrrp_track_process` quorums, a `watch`) and the plugin runtime's process-name
//! index ([`crate::procs::index_feed`]), which plugin runs read for `processes.by-name`.

pub mod admission;
pub mod checks;
pub mod driver;
pub mod links;
pub mod maintenance;
mod memory;
pub mod plan;
pub(crate) mod precise_timer;
pub mod sockets;
pub mod startup;
pub mod track_files;

pub use self::startup::Startup;
pub mod statics;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use self::checks::{CheckContext, CheckSet};
use self::driver::{Command, DriverHandle};
use self::maintenance::MaintenanceStore;
use self::plan::{InstanceIo, PathSocket};
use crate::alerts::Alerts;
use crate::control::{self, ControlRequest, StatusBoard};
use crate::dumps::signals::DaemonSignal;
use crate::dumps::{Dump, Dumper};
use crate::lvs::probe::ProbeContext;
use crate::lvs::sync::{ConnectionSync, SyncContext};
use crate::lvs::{Director, DirectorContext};
use crate::metrics::MetricsServer;
use crate::net::firewall::{Firewall, SharedFirewall};
use crate::net::netlink::Netlink;
use crate::net::vmac::Vmacs;
use crate::notify::NotifyScripts;
use crate::procs::{self, ProcessMonitor};
use crate::protocol_threads::ProtocolThreads;
use crate::systemd::ServiceManager;
use wasmalived_config::route::VirtualEntry;
use wasmalived_config::vip::VipSpec;
use wasmalived_config::{self as config, Config, LoadOptions, VrrpInstance, VrrpScript};
use wasmalived_plugin_host::reload::PluginRegistry;
use wasmalived_plugin_host::{PluginWatcher, PoolLimits, Runtime};
use wasmalived_proto::router::sync_group::SyncGroupSpec;
use wasmalived_proto::router::{InstanceKey, InstanceSpec, PathId, TrackedItem};

/// How long shutdown waits for instances to release (priority 0, VIPs removed, notify_stop).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often instances that could not start (missing interface, ...) are retried.
const PENDING_RETRY: Duration = Duration::from_secs(2);

/// How long a config file must stay unchanged before a change triggers a reload.
const CONFIG_SETTLE: Duration = Duration::from_millis(500);

/// How the daemon was started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Configuration file.
    pub config: PathBuf,
    /// State directory: pid file, control socket, compiled-plugin cache.
    pub state_dir: PathBuf,
    /// Unknown keywords are errors.
    pub strict: bool,
    /// keepalived's `-i`/`--config-id` for `@ID` configuration lines (`None`: the host name).
    pub config_id: Option<String>,
    /// Pid file (default `<state-dir>/wasmalived.pid`).
    pub pid_file: Option<PathBuf>,
    /// Where the dump files go (keepalived's: `$TMPDIR` or `/tmp`, see
    /// [`crate::dumps::default_dir`]).
    pub dump_dir: PathBuf,
    /// The service manager to notify (systemd's `NOTIFY_SOCKET`; the default notifies nobody).
    pub service: ServiceManager,
    /// The threads `vrrp_rt_priority`, `vrrp_cpu_affinity` and `vrrp_no_swap` apply to.
    pub protocol_threads: Arc<ProtocolThreads>,
    /// The log writer: its drop count is shown in `status`; shutdown makes it patient.
    pub logger: crate::logging::Logger,
}

/// Run the daemon until SIGTERM/SIGINT (or a check with `on_fatal stop_daemon`), with what
/// [`Startup::prepare`] did before the runtime.
pub async fn run(opts: Options, startup: Startup) -> anyhow::Result<()> {
    prepare_state_dir(&opts.state_dir)?;
    let pid_file = opts
        .pid_file
        .clone()
        .unwrap_or_else(|| opts.state_dir.join("wasmalived.pid"));
    write_pid_file(&pid_file)?;
    let result = run_with_pid_file(&opts, startup).await;
    let _ = std::fs::remove_file(&pid_file);
    result
}

async fn run_with_pid_file(opts: &Options, startup: Startup) -> anyhow::Result<()> {
    let load_opts = LoadOptions {
        strict: opts.strict,
        config_id: opts.config_id.clone(),
    };
    let Startup {
        loaded,
        connector,
        net_namespace,
    } = startup;
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let config = loaded.config;
    // Before the plugin runtime maps its instance pool (`vrrp_no_swap` must not lock it).
    opts.protocol_threads.apply(&config.global.protocol_threads);

    let cache_dir = config.global.plugin_cache_dir_in(&opts.state_dir);
    // The instance pool is sized from what this configuration runs (issue 14: no 0.5 TiB
    // reservation); a reload that needs more says so (`Daemon::load_and_apply`).
    let pool = PoolLimits::for_config(&config);
    info!(
        concurrent_runs = pool.concurrent_runs,
        max_memory_mib = pool.max_memory >> 20,
        "plugin instance pool"
    );
    let runtime = {
        let dir = cache_dir.clone();
        tokio::task::spawn_blocking(move || Runtime::with_limits(&dir, pool))
            .await
            .context("plugin runtime start-up task")?
            .with_context(|| format!("plugin runtime (cache {})", cache_dir.display()))?
    };
    crate::checker_threads::apply(&runtime.executor_thread_ids(), &config.global);
    let registry = PluginRegistry::new();
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let board = StatusBoard::new(&opts.config);
    board.count_log_drops(opts.logger.dropped());
    let (control_tx, mut control_rx) = mpsc::channel(4);
    let control_task =
        control::serve(&opts.state_dir, board.clone(), control_tx, cancel.clone())
            .with_context(|| format!("control socket in {}", opts.state_dir.display()))?;
    let metrics = match config.global.metrics_listen {
        Some(addr) => Some((addr, start_metrics(addr, &board, &registry).await?)),
        None => None,
    };
    let (stop_tx, mut stop_rx) = mpsc::channel::<String>(1);
    let netlink = Arc::new(Netlink::new().context("netlink")?);
    let links = links::LinkMonitor::start(Arc::clone(&netlink), None).context("link monitor")?;
    let firewall = Firewall::shared();
    // What a crash left: a stale no-accept set would drop traffic to VIPs held later.
    if let Err(err) = firewall.lock().await.clear().await {
        warn!("{err}");
    }
    let (datagram_tx, datagram_rx) = mpsc::channel(driver::DATAGRAM_QUEUE);
    let processes = ProcessMonitor::start(connector, cancel.clone(), &tracker);
    procs::index_feed::spawn(
        &processes,
        Arc::clone(runtime.process_index()),
        cancel.clone(),
        &tracker,
    );
    board.track_processes(processes.status());
    let (driver, mut driver_task) = driver::spawn(
        driver::Inputs {
            datagrams: datagram_rx,
            links: links.subscribe(),
            processes: processes.states(),
        },
        Arc::clone(&netlink),
        board.clone(),
        SHUTDOWN_GRACE,
        opts.service.clone(),
        Arc::clone(&firewall),
    );

    let director_ctx = DirectorContext {
        probes: ProbeContext {
            runtime: runtime.clone(),
            registry: registry.clone(),
        },
        board: board.clone(),
        netlink: Arc::clone(&netlink),
        held_vips: driver.held_vips.clone(),
        cancel: cancel.clone(),
        tracker: tracker.clone(),
    };
    let sync_ctx = SyncContext {
        states: driver.instance_states.clone(),
        netlink: Arc::clone(&netlink),
        state_dir: opts.state_dir.clone(),
    };
    let maintenance = MaintenanceStore::load(&opts.state_dir).context("maintenance set")?;
    let mut daemon = Daemon {
        maintenance,
        netlink,
        vmacs: Vmacs::default(),
        firewall,
        sockets: sockets::Sockets::new(datagram_tx),
        links,
        checks: CheckSet::default(),
        processes,
        net_namespace,
        check_ctx: CheckContext {
            runtime: runtime.clone(),
            registry: registry.clone(),
            board: board.clone(),
            stop_daemon: stop_tx,
            cancel: cancel.clone(),
            tracker: tracker.clone(),
        },
        driver,
        running: HashMap::new(),
        plugin_watch: None,
        config: None,
        director_ctx,
        director: None,
        sync_ctx,
        conn_sync: None,
        service: opts.service.clone(),
        metrics,
        alerts: None,
        file_watch: None,
    };
    daemon.remove_stale_vips(&config).await;
    // Before the first instance starts, so an instance in maintenance never takes over.
    for name in daemon
        .maintenance
        .names()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    {
        info!(instance = %name, "in maintenance (kept from an earlier run)");
        daemon.apply_maintenance(&name, true).await;
    }
    daemon.apply(config).await;
    // Ready: the control socket is bound, the VRRP sockets are open, the plugins compiled
    // and the checks started (an instance whose interface is missing waits, as keepalived's).
    opts.service.ready();
    // Start-up's transient allocations (plugin files, deserialised code) and the code only
    // start-up ran back to the kernel.
    memory::release_one_off_memory("start-up");

    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let dump_signal = |s: DaemonSignal| {
        signal(SignalKind::from_raw(s.number()))
            .with_context(|| format!("{} signal handler ({})", s.name(), s.number()))
    };
    let mut sig_data = dump_signal(DaemonSignal::Data)?;
    let mut sig_stats = dump_signal(DaemonSignal::Stats)?;
    let mut sig_stats_clear = dump_signal(DaemonSignal::StatsClear)?;
    let mut sig_json = dump_signal(DaemonSignal::Json)?;
    let mut dumper = Dumper::new(opts.dump_dir.clone());
    let mut dump = |kind: Dump, daemon: &Daemon| {
        info!(dir = %dumper.dir().display(), "{kind:?} dump requested");
        dumper.write(kind, board.snapshot(), daemon.config.as_ref());
    };
    let mut config_changes = watch_config_file(&opts.config);
    info!(config = %opts.config.display(), state_dir = %opts.state_dir.display(), "wasmalived running");
    let mut link_changes = daemon.links.subscribe();
    let mut outcome = Ok(());
    let mut retry = tokio::time::interval(PENDING_RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = retry.tick(), if daemon.has_pending() => daemon.retry_pending().await,
            Ok(()) = link_changes.changed() => daemon.replan_moved().await,
            _ = sigterm.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = sigint.recv() => { info!("SIGINT: shutting down"); break; }
            _ = sighup.recv() => { info!("SIGHUP: reloading"); daemon.reload(&opts.config, &load_opts).await; }
            _ = sig_data.recv() => dump(Dump::Data, &daemon),
            _ = sig_stats.recv() => dump(Dump::Stats, &daemon),
            _ = sig_stats_clear.recv() => dump(Dump::StatsClear, &daemon),
            _ = sig_json.recv() => dump(Dump::Json, &daemon),
            Some(request) = control_rx.recv() => match request {
                ControlRequest::Reload => {
                    info!("control socket: reloading");
                    daemon.reload(&opts.config, &load_opts).await;
                }
                ControlRequest::Maintenance { instance, on, reply } => {
                    let _ = reply.send(daemon.maintenance(&instance, on).await);
                }
            },
            Some(()) = config_changes.recv() => {
                info!("configuration file changed: reloading");
                daemon.reload(&opts.config, &load_opts).await;
            }
            Some(check) = stop_rx.recv() => {
                error!(%check, "check reported fatal with `on_fatal stop_daemon`: stopping the daemon");
                break;
            }
            ended = &mut driver_task => {
                let how = match ended {
                    Err(err) if err.is_panic() => "panicked",
                    _ => "stopped",
                };
                error!("the router driver {how}: releasing this node's VIPs, then exiting");
                daemon.emergency_release(&board).await;
                outcome = Err(anyhow::anyhow!(
                    "the router driver {how}; VIPs released (a supervisor such as systemd restarts the daemon)"
                ));
                break;
            }
        }
    }
    opts.service.stopping();
    // From here a full log queue makes the logging thread wait rather than drop: the
    // shutdown's lines (priority 0 sent, VIPs removed) must reach the log.
    opts.logger.shutting_down();
    if outcome.is_ok() {
        daemon.shutdown().await;
    }
    if let Some((_, metrics)) = daemon.metrics.take() {
        metrics.stop().await;
    }
    cancel.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tracker.wait()).await;
    let _ = control_task.await;
    info!("stopped");
    outcome
}

/// What the daemon remembers of an instance the router runs, to diff the next reload.
struct Running {
    cfg: VrrpInstance,
    tracking: Vec<TrackedItem>,
    /// The global settings its hooks were vetted under.
    programs: ProgramSettings,
    /// The interfaces it was planned on, by name and index (its advert path first, then
    /// its heartbeat paths and its VMAC interface).
    planned: Vec<(String, u32)>,
    /// Where its VIPs without a `dev` go (its VMAC interface with `use_vmac`).
    vip_ifindex: u32,
}

/// The indexes of planned interfaces.
fn ifindexes(planned: &[(String, u32)]) -> Vec<u32> {
    planned.iter().map(|(_, ifindex)| *ifindex).collect()
}

/// The `global_defs` settings that decide how programs are vetted: a change re-vets every
/// hook and script (`enable_script_security` toggled on refuses the unsafe ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSettings {
    enable_script_security: bool,
    script_user: Option<config::RunAs>,
}

impl ProgramSettings {
    /// The settings of `global`.
    pub fn of(global: &config::GlobalDefs) -> Self {
        ProgramSettings {
            enable_script_security: global.enable_script_security,
            script_user: global.script_user.clone(),
        }
    }
}

struct Daemon {
    /// The operator's maintenance set, persisted in the state directory.
    maintenance: MaintenanceStore,
    netlink: Arc<Netlink>,
    /// The VMAC interfaces of the running instances (`use_vmac`).
    vmacs: Vmacs,
    /// The VRRP side's nftables table (shared with the driver, which holds accept mode).
    firewall: SharedFirewall,
    sockets: sockets::Sockets,
    links: links::LinkMonitor,
    checks: CheckSet,
    /// The process-event source and `vrrp_track_process` state.
    processes: ProcessMonitor,
    /// The network namespace entered at start-up (a reload cannot change it).
    net_namespace: Option<String>,
    check_ctx: CheckContext,
    driver: DriverHandle,
    /// The instances the router runs, by reload identity.
    running: HashMap<InstanceKey, Running>,
    /// The watched plugin directories (the existing ones of the search path) and their watcher.
    plugin_watch: Option<(Vec<PathBuf>, PluginWatcher)>,
    config: Option<Config>,
    /// What the LVS director is started with.
    director_ctx: DirectorContext,
    /// The LVS director, while the configuration has virtual servers.
    director: Option<Director>,
    /// What the connection sync is started with.
    sync_ctx: SyncContext,
    /// The connection sync, while `lvs_sync_daemon` is set.
    conn_sync: Option<ConnectionSync>,
    /// Notify FIFOs and alert mails of the running configuration.
    alerts: Option<Arc<Alerts>>,
    /// The watcher of the tracked files.
    file_watch: Option<track_files::FileWatch>,
    /// systemd, told about reloads.
    service: ServiceManager,
    /// The Prometheus endpoint and the address it was configured with, while one is.
    metrics: Option<(SocketAddr, MetricsServer)>,
}

/// Start the Prometheus endpoint on `addr`, serving `board` and `registry`'s counts.
async fn start_metrics(
    addr: SocketAddr,
    board: &StatusBoard,
    registry: &PluginRegistry,
) -> anyhow::Result<MetricsServer> {
    Ok(crate::metrics::serve(addr, board.clone(), registry.clone()).await?)
}

impl Daemon {
    /// Parse and validate the config again; apply it only if valid. systemd sees
    /// `RELOADING=1` until it is done, then `READY=1` (a refused reload keeps the running
    /// configuration, so the daemon is ready again either way).
    async fn reload(&mut self, path: &Path, opts: &LoadOptions) {
        self.service.reloading();
        self.load_and_apply(path, opts).await;
        self.service.ready();
    }

    async fn load_and_apply(&mut self, path: &Path, opts: &LoadOptions) {
        match config::load(path, opts.clone()) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    warn!("{warning}");
                }
                // Before the "unchanged" test: a reload retries an endpoint that could not
                // listen last time.
                self.apply_metrics(loaded.config.global.metrics_listen)
                    .await;
                let wanted_ns = &loaded.config.global.net_namespace;
                if wanted_ns.is_some() && *wanted_ns != self.net_namespace {
                    warn!(
                        "net_namespace {} cannot change at a reload (the daemon runs in {}); restart the daemon to change it",
                        wanted_ns.as_deref().unwrap_or_default(),
                        self.net_namespace.as_deref().unwrap_or("the namespace it was started in")
                    );
                }
                if let Some(running) = &self.config {
                    ProtocolThreads::reloaded(
                        &running.global.protocol_threads,
                        &loaded.config.global.protocol_threads,
                    );
                    crate::checker_threads::reloaded(&running.global, &loaded.config.global);
                }
                if self.config.as_ref() == Some(&loaded.config) {
                    info!("reload: configuration unchanged");
                    return;
                }
                let pool = self.check_ctx.runtime.limits();
                if let Some(short) = pool.shortfall(&PoolLimits::for_config(&loaded.config)) {
                    warn!(
                        "reload: the plugin instance pool was sized at start-up and is too \
                         small for this configuration ({short}); runs beyond it fail until \
                         the daemon is restarted"
                    );
                }
                self.apply(loaded.config).await;
                memory::release_one_off_memory("reload");
            }
            Err(errs) => {
                error!("reload refused, keeping the running configuration:\n{errs}");
            }
        }
    }

    /// `maintenance on|off NAME` from the control socket: recorded in the state directory
    /// first (a restart keeps it), then applied by the router. The answer names what
    /// happened, or why nothing did (an instance the configuration does not have).
    async fn maintenance(&mut self, name: &str, on: bool) -> Result<String, String> {
        let configured: Vec<&str> = self
            .config
            .iter()
            .flat_map(|c| c.instances.iter().map(|i| i.name.as_str()))
            .collect();
        if !configured.contains(&name) {
            return Err(format!(
                "no vrrp_instance named {name:?} (configured: {})",
                if configured.is_empty() {
                    "none".to_owned()
                } else {
                    configured.join(", ")
                }
            ));
        }
        self.maintenance
            .set(name, on)
            .map_err(|e| format!("maintenance of {name} not recorded, nothing changed: {e}"))?;
        info!(instance = %name, on, "control socket: maintenance");
        let running = self.apply_maintenance(name, on).await;
        Ok(match (on, running) {
            (true, true) => format!("{name} in maintenance: it stands down and stays BACKUP"),
            (true, false) => {
                format!("{name} in maintenance (not running yet: it will start as BACKUP)")
            }
            (false, _) => format!("{name} out of maintenance"),
        })
    }

    /// Hand the router a maintenance change; whether an instance of that name runs.
    async fn apply_maintenance(&self, name: &str, on: bool) -> bool {
        let (reply, running) = oneshot::channel();
        self.command(Command::Maintenance {
            instance: name.to_owned(),
            on,
            reply,
        })
        .await;
        running.await.unwrap_or(false)
    }

    /// Forget the maintenance of instances the configuration no longer has (a later
    /// instance of the same name starts normally).
    async fn forget_unconfigured_maintenance(&mut self, config: &Config) {
        let gone: Vec<String> = self
            .maintenance
            .names()
            .filter(|n| !config.instances.iter().any(|i| i.name == *n))
            .map(str::to_owned)
            .collect();
        for name in gone {
            match self.maintenance.set(&name, false) {
                Ok(()) => {
                    warn!(instance = %name, "no such vrrp_instance any more: its maintenance is forgotten");
                    self.apply_maintenance(&name, false).await;
                }
                Err(err) => error!("forgetting the maintenance of {name}: {err}"),
            }
        }
    }

    /// Bring everything in line with `config` (start-up and reload): checks first (so a new
    /// instance is tracked with their current states), then removed instances released, the
    /// sync groups, and every new or changed instance started or reconfigured in place.
    async fn apply(&mut self, config: Config) {
        self.forget_unconfigured_maintenance(&config).await;
        self.watch_plugins(&config);
        self.links
            .ensure(interfaces_of(&config).into_iter().collect())
            .await;
        // Before any instance changes, so its first transitions reach the FIFOs and mails.
        let alerts = Arc::new(Alerts::prepare(&config, self.alerts.as_deref()));
        self.alerts = Some(Arc::clone(&alerts));
        self.command(Command::Alerts(alerts)).await;
        self.apply_track_files(&config).await;
        let installed = self
            .config
            .as_ref()
            .map(|c| c.statics.clone())
            .unwrap_or_default();
        statics::apply(&self.netlink, &installed, &config.statics).await;

        // Checks: only the scripts something tracks run, as in keepalived. A check that
        // could not start is not handed to the router, which counts it as down (and, with
        // weight 0, as a Fault) — never as silently healthy.
        let wanted = tracked_scripts(&config);
        for err in self
            .checks
            .apply(&wanted, &config.global, &self.check_ctx)
            .await
        {
            error!("{err}");
        }
        let running_checks = wanted
            .iter()
            .filter_map(|s| Some((s.name.clone(), self.checks.subscribe(&s.name)?)))
            .collect();
        self.command(Command::Checks(running_checks)).await;
        // Tracked processes: the first scan is published before instances (re)start.
        self.processes.apply(process_rules(&config)).await;

        // Instances, matched by (VRID, family, interface, unicast).
        let desired: HashSet<InstanceKey> = config
            .instances
            .iter()
            .map(|i| plan::instance_key(i, &config))
            .collect();
        // An instance whose VMAC interface changes restarts: it releases on the old one.
        let vmac_changed: HashSet<InstanceKey> = config
            .instances
            .iter()
            .filter_map(|i| {
                let key = plan::instance_key(i, &config);
                let running = self.running.get(&key)?;
                (running.cfg.use_vmac != i.use_vmac).then_some(key)
            })
            .collect();
        let removed: Vec<InstanceKey> = self
            .running
            .keys()
            .filter(|k| !desired.contains(*k) || vmac_changed.contains(*k))
            .cloned()
            .collect();
        if !removed.is_empty() {
            let (done, released) = oneshot::channel();
            self.command(Command::Retain {
                keep: desired
                    .into_iter()
                    .filter(|k| !vmac_changed.contains(k))
                    .collect(),
                done,
            })
            .await;
            if tokio::time::timeout(SHUTDOWN_GRACE, released)
                .await
                .is_err()
            {
                warn!("removed instances did not release within {SHUTDOWN_GRACE:?}");
            }
            for key in removed {
                if let Some(running) = self.running.remove(&key) {
                    if vmac_changed.contains(&key) {
                        info!(instance = %running.cfg.name, "use_vmac changed: the instance restarts");
                    } else {
                        info!(instance = %running.cfg.name, "instance removed by reload");
                    }
                }
                self.sockets.release(&key);
            }
            self.retain_vmacs(&config).await;
        }

        let groups = config
            .sync_groups
            .iter()
            .map(|g| SyncGroupSpec {
                name: g.name.clone(),
                members: g.instances.clone(),
            })
            .collect();
        let notify = config
            .sync_groups
            .iter()
            .map(|g| {
                let (scripts, errors) = NotifyScripts::prepare(&g.name, &g.notify, &config.global);
                for err in errors {
                    error!("vrrp_sync_group {err}");
                }
                (g.name.clone(), scripts)
            })
            .collect();
        self.command(Command::SyncGroups { groups, notify }).await;

        for inst in &config.instances {
            if let Err(err) = self.upsert(inst, &config, false).await {
                if self
                    .running
                    .contains_key(&plan::instance_key(inst, &config))
                {
                    error!("reload: {err:#}; instance keeps its old configuration");
                } else {
                    error!("{err:#}; instance not started, retried every {PENDING_RETRY:?}");
                }
            }
        }
        self.apply_director(&config).await;
        self.apply_connection_sync(&config).await;
        self.retain_vmacs(&config).await;
        self.config = Some(config);
    }

    /// Remove the VMAC interfaces no configured instance uses any more, and keep the
    /// firewall's list of them in line.
    async fn retain_vmacs(&mut self, config: &Config) {
        let wanted: HashSet<&str> = config
            .instances
            .iter()
            .filter_map(|i| i.use_vmac.as_ref().map(|v| v.ifname.as_str()))
            .collect();
        self.vmacs
            .retain(&self.netlink, |name| wanted.contains(name))
            .await;
        let names = self.vmacs.names().map(str::to_owned).collect();
        if let Err(err) = self.firewall.lock().await.set_vmacs(names).await {
            error!("{err}");
        }
    }

    /// Start, move or stop the Prometheus endpoint (reload). A new address that cannot be
    /// bound is an error in the log, and the endpoint stays off until a later reload.
    async fn apply_metrics(&mut self, wanted: Option<SocketAddr>) {
        if self.metrics.as_ref().map(|(addr, _)| *addr) == wanted {
            return;
        }
        if let Some((addr, old)) = self.metrics.take() {
            old.stop().await;
            info!(listen = %addr, "reload: Prometheus endpoint stopped");
        }
        if let Some(addr) = wanted {
            let ctx = &self.check_ctx;
            match start_metrics(addr, &ctx.board, &ctx.registry).await {
                Ok(server) => self.metrics = Some((addr, server)),
                Err(err) => error!("reload: {err:#}; the endpoint stays off"),
            }
        }
    }

    /// `track_file`: `init_file` written (not on a reload), the files watched, then each
    /// one's value handed to the router before any instance that tracks it starts.
    async fn apply_track_files(&mut self, config: &Config) {
        let reload = self.config.is_some();
        let files = track_files::tracked(config);
        for def in files.iter().chain(&track_files::checked_only(config)) {
            track_files::initialise(def, reload);
        }
        // Watch first, then read: a change in between is read twice, never missed.
        self.file_watch = None;
        self.file_watch = track_files::watch(
            files
                .iter()
                .map(|d| (d.name.clone(), d.path.clone()))
                .collect(),
            self.driver.commands.clone(),
        );
        for def in files {
            if let Some(value) = track_files::read_value(&def.path) {
                debug!(track_file = %def.name, value, "tracked file read");
                self.command(Command::TrackFile {
                    name: def.name.clone(),
                    value,
                })
                .await;
            }
        }
    }

    /// Start, reconfigure or stop the LVS director: it runs while there are virtual servers.
    async fn apply_director(&mut self, config: &Config) {
        if config.virtual_servers.is_empty() {
            if let Some(director) = self.director.take() {
                info!("no virtual server left: stopping the LVS director");
                director.shutdown().await;
            }
            return;
        }
        let alerts = self.alerts.clone().unwrap_or_default();
        let director = self.director.get_or_insert_with(|| {
            Director::spawn(self.director_ctx.clone(), config.global.lvs_backend)
        });
        director.apply(config, alerts).await;
    }

    /// Start, restart (its settings changed) or stop the connection sync
    /// (`lvs_sync_daemon`).
    async fn apply_connection_sync(&mut self, config: &Config) {
        let wanted = config.global.lvs_sync_daemon.as_ref();
        let backend = config.global.lvs_backend;
        if let (Some(running), Some(sync)) = (&self.conn_sync, wanted) {
            if running.runs(sync, backend) {
                return;
            }
        }
        if let Some(running) = self.conn_sync.take() {
            info!("lvs_sync_daemon changed: stopping the connection sync");
            running.shutdown().await;
        }
        let Some(sync) = wanted else { return };
        match crate::lvs::sync::engine_for(config, sync, &self.sync_ctx).await {
            Ok(engine) => {
                self.conn_sync = Some(ConnectionSync::spawn(
                    sync,
                    backend,
                    engine,
                    self.sync_ctx.states.clone(),
                ))
            }
            Err(err) => error!("{err}"),
        }
    }

    /// Stop the LVS director (its `omega` scripts, its tables), bounded in time, and the
    /// connection sync.
    async fn stop_director(&mut self) {
        if let Some(sync) = self.conn_sync.take() {
            sync.shutdown().await;
        }
        if let Some(director) = self.director.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE * 2, director.shutdown())
                .await
                .is_err()
            {
                warn!(
                    "the LVS director did not stop within {:?}",
                    SHUTDOWN_GRACE * 2
                );
            }
        }
    }

    /// Start `inst`, or reconfigure the running instance with its key when its definition,
    /// what it tracks or its interfaces (`replan`: re-created, new index) changed — the
    /// router keeps its protocol state and VIPs.
    async fn upsert(
        &mut self,
        inst: &VrrpInstance,
        config: &Config,
        replan: bool,
    ) -> anyhow::Result<()> {
        let key = plan::instance_key(inst, config);
        let tracking = plan::tracking(inst, config);
        let programs = ProgramSettings::of(&config.global);
        let same_definition = match self.running.get(&key) {
            Some(running)
                if running.cfg.same_definition(inst) && running.programs == programs && !replan =>
            {
                if running.tracking == tracking {
                    return Ok(());
                }
                true
            }
            _ => false,
        };
        let (spec, io, planned, io_vip_ifindex) =
            self.prepare(inst, config, &key, !same_definition).await?;
        let (reply, answer) = oneshot::channel();
        self.command(Command::Upsert {
            spec: Box::new(spec),
            io: io.map(Box::new),
            reply,
        })
        .await;
        let result = answer
            .await
            .context("router driver stopped")?
            .with_context(|| format!("instance {}", inst.name));
        if let Err(err) = result {
            // Close the sockets only this attempt opened.
            match self.running.get(&key) {
                Some(_) if same_definition => {}
                Some(running) => {
                    let paths = ifindexes(&running.planned);
                    self.sockets.set_paths(&key, &paths);
                }
                None => self.sockets.release(&key),
            }
            return Err(err);
        }
        if !same_definition {
            self.sockets.set_paths(&key, &ifindexes(&planned));
        }
        if !self.running.contains_key(&key) {
            info!(instance = %inst.name, "instance started");
        }
        let vip_ifindex = io_vip_ifindex;
        self.running.insert(
            key,
            Running {
                cfg: inst.clone(),
                tracking,
                programs,
                planned,
                vip_ifindex,
            },
        );
        Ok(())
    }

    /// Re-plan the running instances whose interface (or a heartbeat path) now has another
    /// index than the one they were planned on — deleted and re-created: new socket, MAC,
    /// source address. Until that succeeds the instance tracks the interface as down.
    async fn replan_moved(&mut self) {
        let Some(config) = self.config.take() else {
            return;
        };
        for inst in &config.instances {
            let key = plan::instance_key(inst, &config);
            if !self.running.get(&key).is_some_and(|r| self.moved(r)) {
                continue;
            }
            info!(instance = %inst.name, "interface re-created: planning the instance again");
            if let Err(err) = self.upsert(inst, &config, true).await {
                debug!("{err:#}; re-planning retried every {PENDING_RETRY:?}");
            }
        }
        self.config = Some(config);
    }

    /// Whether an interface `running` uses exists now under another index, or its VMAC
    /// interface is gone (re-planning creates it again).
    fn moved(&self, running: &Running) -> bool {
        let links = self.links.subscribe().borrow().clone();
        let vmac = running.cfg.use_vmac.as_ref().map(|v| v.ifname.as_str());
        running
            .planned
            .iter()
            .any(|(name, ifindex)| match links.get(name) {
                Some(link) => link.ifindex != *ifindex,
                None => Some(name.as_str()) == vmac,
            })
    }

    /// The router's view of `inst` and, with `with_io`, the sockets, MAC, announcer and
    /// hooks the driver performs its outputs with.
    async fn prepare(
        &mut self,
        inst: &VrrpInstance,
        config: &Config,
        key: &InstanceKey,
        with_io: bool,
    ) -> anyhow::Result<(
        InstanceSpec<VipSpec, VirtualEntry>,
        Option<InstanceIo>,
        Vec<(String, u32)>,
        u32,
    )> {
        let base = plan::link_facts(&self.netlink, inst).await?;
        let (facts, vmac) = match plan::vmac_request(inst, &base) {
            None => (base, None),
            Some(req) => {
                // Before the interface exists: its membership reports must never leave it.
                let mut names: std::collections::BTreeSet<String> =
                    self.vmacs.names().map(str::to_owned).collect();
                names.insert(req.name.clone());
                if let Err(err) = self.firewall.lock().await.set_vmacs(names).await {
                    error!("{err}");
                }
                let ifindex = self
                    .vmacs
                    .ensure(&self.netlink, &req)
                    .await
                    .with_context(|| format!("instance {}", inst.name))?;
                self.links.ensure(HashSet::from([req.name.clone()])).await;
                (base.on_vmac(inst, ifindex), Some((req.name, ifindex)))
            }
        };
        let path_name = match &vmac {
            Some((name, ifindex)) if *ifindex == facts.ifindex => name.clone(),
            _ => inst.interface.clone(),
        };
        let mut heartbeat = Vec::new();
        for name in &inst.heartbeat_interfaces {
            let ifindex =
                self.netlink.ifindex(name).await.with_context(|| {
                    format!("instance {}: heartbeat_interface {name}", inst.name)
                })?;
            heartbeat.push((name.clone(), ifindex));
        }
        let spec = plan::build(
            inst,
            config,
            &facts,
            heartbeat.iter().map(|(_, i)| PathId(*i)).collect(),
        );
        let planned: Vec<(String, u32)> = std::iter::once((path_name.clone(), facts.ifindex))
            .chain(heartbeat.iter().cloned())
            .chain(vmac.filter(|(_, ifindex)| *ifindex != facts.ifindex))
            .collect();
        if !with_io {
            return Ok((spec, None, planned, facts.vip_ifindex));
        }
        let mut sockets = Vec::new();
        let group =
            (!inst.is_unicast()).then(|| plan::multicast_group(&config.global, inst.family));
        for (interface, ifindex) in std::iter::once((path_name, facts.ifindex)).chain(heartbeat) {
            let socket = self
                .sockets
                .acquire(ifindex, &interface, inst.family, group, key)
                .with_context(|| format!("instance {}: VRRP socket on {interface}", inst.name))?;
            sockets.push((PathId(ifindex), PathSocket { interface, socket }));
        }
        let announcer = crate::net::garp::Announcer::open()
            .with_context(|| format!("instance {}: packet socket for GARP/NA", inst.name))?;
        let io = InstanceIo {
            name: inst.name.clone(),
            interface: inst.interface.clone(),
            ifindex: facts.vip_ifindex,
            mac: facts.mac,
            no_accept: !inst.accept && !inst.priority.is_owner(),
            announcer,
            sockets,
            notify: {
                let (scripts, errors) =
                    NotifyScripts::prepare(&inst.name, &inst.notify, &config.global);
                for err in errors {
                    error!("vrrp_instance {err}");
                }
                scripts
            },
        };
        Ok((spec, Some(io), planned, facts.vip_ifindex))
    }

    /// Send a command to the router driver (it only stops after [`Daemon::shutdown`]).
    async fn command(&self, command: Command) {
        if self.driver.commands.send(command).await.is_err() {
            error!("router driver stopped: command lost");
        }
    }

    /// Whether some configured instance could not start (e.g. its interface does not exist
    /// yet) or could not be re-planned on a re-created interface.
    fn has_pending(&self) -> bool {
        self.config.as_ref().is_some_and(|c| {
            c.instances
                .iter()
                .any(|i| !self.running.contains_key(&plan::instance_key(i, c)))
        }) || self.running.values().any(|r| self.moved(r))
    }

    /// Try again to start the instances that could not start (an interface that appears
    /// later, as keepalived waits for it).
    async fn retry_pending(&mut self) {
        let Some(config) = self.config.take() else {
            return;
        };
        for inst in &config.instances {
            if self
                .running
                .contains_key(&plan::instance_key(inst, &config))
            {
                continue;
            }
            if let Err(err) = self.upsert(inst, &config, false).await {
                debug!("{err:#}; still not started");
            }
        }
        self.config = Some(config);
        self.replan_moved().await;
    }

    /// Watch every existing directory of the plugin search path for hot reload (a directory
    /// created later is watched from the next reload on).
    fn watch_plugins(&mut self, config: &Config) {
        let search = &config.global.plugin_path;
        let dirs: Vec<PathBuf> = search
            .dirs()
            .iter()
            .filter(|d| d.is_dir())
            .cloned()
            .collect();
        if self.plugin_watch.as_ref().is_some_and(|(d, _)| *d == dirs) {
            return;
        }
        self.plugin_watch = None;
        if dirs.is_empty() {
            if uses_plugins(config) {
                warn!(search_path = %search, "no plugin directory exists: hot reload is off");
            }
            return;
        }
        match PluginWatcher::spawn(
            &dirs,
            self.check_ctx.runtime.clone(),
            self.check_ctx.registry.clone(),
        ) {
            Ok(w) => self.plugin_watch = Some((dirs, w)),
            Err(err) => {
                warn!(error = %err, "cannot watch the plugin directories: hot reload is off")
            }
        }
    }

    /// At start-up (never on reload), remove the configured VIPs that are already on their
    /// interfaces, as keepalived does: after kill -9, an abort or a watchdog restart they are
    /// left over, and a node coming back as Backup must not hold the VIP the peer holds now.
    /// The address owner's (priority 255) addresses are its own and stay.
    async fn remove_stale_vips(&self, config: &Config) {
        for inst in config.instances.iter().filter(|i| !i.priority.is_owner()) {
            // With use_vmac they were on the VMAC interface, if it survived.
            let home = inst
                .use_vmac
                .as_ref()
                .map_or(inst.interface.as_str(), |v| v.ifname.as_str());
            let Ok(ifindex) = self.netlink.ifindex(home).await else {
                continue;
            };
            for vip in inst.vips.iter().chain(&inst.excluded_vips) {
                let on = match &vip.dev {
                    Some(dev) => match self.netlink.ifindex(dev).await {
                        Ok(i) => i,
                        Err(_) => continue,
                    },
                    None => ifindex,
                };
                let present = self
                    .netlink
                    .addresses(on)
                    .await
                    .is_ok_and(|addrs| addrs.iter().any(|a| a.addr == vip.addr));
                if !present {
                    continue;
                }
                match self.netlink.del_vip(vip, ifindex).await {
                    Ok(()) => warn!(
                        instance = %inst.name, vip = %vip.addr,
                        "removed a VIP left on the interface by an earlier run (start-up as keepalived does)"
                    ),
                    Err(err) => {
                        error!(instance = %inst.name, vip = %vip.addr, error = %err, "cannot remove a stale VIP")
                    }
                }
            }
        }
    }

    /// The router driver died: nothing owns the protocol state any more. Panic supervision is
    /// release-then-exit (restarting the driver in place could not trust its state): every
    /// configured VIP is removed, and every instance the status board last showed as MASTER
    /// sends a priority-0 advert, so a peer takes over after its skew time rather than a
    /// master-down interval. The caller then exits with an error for the supervisor to
    /// restart it. Bounded in time; best effort throughout.
    async fn emergency_release(&mut self, board: &StatusBoard) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let masters: HashSet<String> = board
            .snapshot()
            .instances
            .into_iter()
            .filter(|i| i.state == "MASTER")
            .map(|i| i.name)
            .collect();
        let release = async {
            for inst in &config.instances {
                let key = plan::instance_key(inst, &config);
                let Some(running) = self.running.get(&key) else {
                    continue;
                };
                let Some(&(_, ifindex)) = running.planned.first() else {
                    continue;
                };
                let vip_ifindex = running.vip_ifindex;
                if inst.priority.is_owner() {
                    continue;
                }
                for vip in inst.vips.iter().chain(&inst.excluded_vips) {
                    if let Err(err) = self.netlink.del_vip(vip, vip_ifindex).await {
                        warn!(vip = %vip.addr, error = %err, "emergency release: removing VIP failed");
                    }
                }
                if masters.contains(&inst.name) {
                    self.send_release_advert(inst, &config, &key, ifindex).await;
                }
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, release).await.is_err() {
            warn!("emergency release did not finish within {SHUTDOWN_GRACE:?}");
        }
        self.remove_vrrp_plumbing().await;
        self.stop_director().await;
    }

    /// Remove what the VRRP side added besides addresses: the VMAC interfaces (restoring
    /// their base interfaces' ARP settings) and the nftables table.
    async fn remove_vrrp_plumbing(&mut self) {
        self.vmacs.remove_all(&self.netlink).await;
        if let Err(err) = self.firewall.lock().await.clear().await {
            warn!("{err}");
        }
    }

    /// One priority-0 advert of `inst` on its interface.
    async fn send_release_advert(
        &mut self,
        inst: &VrrpInstance,
        config: &Config,
        key: &InstanceKey,
        ifindex: u32,
    ) {
        let Ok(facts) = plan::link_facts(&self.netlink, inst).await else {
            return;
        };
        let spec = plan::build(inst, config, &facts, Vec::new());
        let Ok(core) = wasmalived_proto::vrrp::Instance::new(spec.protocol.clone()) else {
            return;
        };
        let advert = core.advert(wasmalived_proto::vrrp::Priority::RELEASE);
        let Ok(socket) = self
            .sockets
            .acquire(ifindex, &inst.interface, inst.family, None, key)
        else {
            return;
        };
        for dst in &spec.destinations {
            let payload = wasmalived_proto::wire::vrrp::encode(&advert, facts.src, *dst);
            match socket.send_from(&payload, Some(facts.src), *dst).await {
                Ok(_) => {
                    info!(instance = %inst.name, %dst, "emergency release: priority-0 advert sent")
                }
                Err(err) => {
                    warn!(instance = %inst.name, error = %err, "emergency release: advert not sent")
                }
            }
        }
    }

    /// Release every instance (priority 0, VIPs removed, notify_stop), bounded in time.
    async fn shutdown(&mut self) {
        let (ack, released) = oneshot::channel();
        self.command(Command::Shutdown(ack)).await;
        // The driver bounds notify_stop by the grace period itself; this bounds the rest.
        if tokio::time::timeout(SHUTDOWN_GRACE * 2, released)
            .await
            .is_err()
        {
            warn!("instances did not release within {:?}", SHUTDOWN_GRACE * 2);
        }
        self.running.clear();
        self.remove_vrrp_plumbing().await;
        // The VIPs are gone first, so no client reaches a director whose pools are removed.
        self.stop_director().await;
        if let Some(config) = &self.config {
            statics::remove(&self.netlink, &config.statics).await;
        }
    }
}

fn uses_plugins(config: &Config) -> bool {
    config
        .scripts
        .iter()
        .any(|s| matches!(s.kind, config::ScriptKind::Plugin { .. }))
}

/// The process-tracking rules of `config`: its tracked `vrrp_track_process` blocks.
fn process_rules(config: &Config) -> procs::Rules {
    let g = &config.global;
    procs::Rules {
        rules: config.tracked_processes().map(|p| p.rule()).collect(),
        receive_buffer: g
            .process_monitor_rcv_bufs
            .map(|size| (size, g.process_monitor_rcv_bufs_force)),
        process_events: plugins_see_processes(config),
    }
}

/// Whether a plugin check or an LVS plugin probe is granted `allow_processes`: its lookups
/// use the process index kept from the connector's events ([`procs::index_feed`]).
fn plugins_see_processes(config: &Config) -> bool {
    let checks = config.scripts.iter().filter_map(|s| match &s.kind {
        config::ScriptKind::Plugin { grants, .. } => Some(&**grants),
        _ => None,
    });
    let probes = config
        .virtual_servers
        .iter()
        .flat_map(|vs| vs.real_servers.iter())
        .flat_map(|rs| rs.checkers.iter())
        .filter_map(|c| match &c.kind {
            config::lvs::CheckerKind::Plugin(plugin) => Some(&plugin.grants),
            _ => None,
        });
    checks.chain(probes).any(|g| g.processes.is_some())
}

/// The scripts tracked by some instance or sync group.
fn tracked_scripts(config: &Config) -> Vec<VrrpScript> {
    let names: HashSet<&str> = config
        .instances
        .iter()
        .flat_map(|i| i.track_scripts.iter())
        .chain(
            config
                .sync_groups
                .iter()
                .flat_map(|g| g.track_scripts.iter()),
        )
        .map(|t| t.name.as_str())
        .collect();
    for s in &config.scripts {
        if !names.contains(s.name.as_str()) {
            warn!(script = %s.name, "vrrp_script is not tracked by any instance: not run");
        }
    }
    config
        .scripts
        .iter()
        .filter(|s| names.contains(s.name.as_str()))
        .cloned()
        .collect()
}

/// Every interface the config refers to (instances and tracking).
fn interfaces_of(config: &Config) -> HashSet<String> {
    config
        .instances
        .iter()
        .flat_map(|i| {
            std::iter::once(i.interface.clone())
                .chain(i.track_interfaces.iter().map(|t| t.name.clone()))
        })
        .chain(
            config
                .sync_groups
                .iter()
                .flat_map(|g| g.track_interfaces.iter().map(|t| t.name.clone())),
        )
        .collect()
}

/// Create the state directory (mode 0700) if needed; an existing one must be a real
/// directory (not a symlink), owned by root or the daemon's user and writable by nobody else
/// — it holds the control socket and the compiled-plugin cache, whose contents the daemon
/// trusts.
fn prepare_state_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    use wasmalived_sys::trust::{check_element, ElementKind};
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => {
            anyhow::ensure!(
                meta.is_dir(),
                "state directory {}: not a directory (a symlink is refused)",
                dir.display()
            );
            let me = wasmalived_sys::effective_ids().0;
            check_element(
                dir,
                ElementKind::Directory,
                meta.uid(),
                meta.gid(),
                meta.mode(),
                (me != 0).then_some(me),
            )
            .with_context(|| format!("state directory {}", dir.display()))?;
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("state directory {}", dir.display())),
        Err(err) => Err(err).with_context(|| format!("state directory {}", dir.display())),
    }
}

/// Write our pid, refusing if a live wasmalived already holds the file (a stale one, e.g.
/// after a crash, is replaced). A symlink at the pid file's path is refused, never followed
/// (keepalived's CVE-2018-19044 class); the file is written under a fresh name and renamed
/// into place, so nothing is ever written through a planted link.
fn write_pid_file(path: &Path) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        anyhow::bail!(
            "pid file {}: is a symbolic link; refusing to follow it",
            path.display()
        );
    }
    let mut text = String::new();
    let existing = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    if let Ok(file) = existing {
        let _ = file.take(64).read_to_string(&mut text);
    }
    if let Ok(pid) = text.trim().parse::<u32>() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if pid != std::process::id() && comm.trim() == "wasmalived" {
            anyhow::bail!(
                "{}: wasmalived is already running with pid {pid} (use another --state-dir)",
                path.display()
            );
        }
    }
    let tmp = path.with_extension(format!("pid.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .with_context(|| format!("pid file {}", tmp.display()))?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("pid file {}", path.display()))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

/// Debounced notifications that the config file changed (content written and settled).
fn watch_config_file(path: &Path) -> mpsc::Receiver<()> {
    use notify::{RecursiveMode, Watcher};
    let (tx, rx) = mpsc::channel(1);
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    let target = path.to_path_buf();
    let file_name = target.file_name().map(|f| f.to_owned());
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let ours = event
                .paths
                .iter()
                .any(|p| p.file_name().map(|f| f.to_owned()) == file_name);
            if ours && !event.kind.is_access() {
                let _ = raw_tx.send(());
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(err) => {
            warn!(error = %err, "cannot watch the config file; reload with SIGHUP");
            return rx;
        }
    };
    if let Err(err) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        warn!(error = %err, dir = %dir.display(), "cannot watch the config directory; reload with SIGHUP");
        return rx;
    }
    let _task: JoinHandle<()> = tokio::spawn(async move {
        let _watcher = watcher;
        while raw_rx.recv().await.is_some() {
            // Debounce: wait until no event arrived for CONFIG_SETTLE.
            loop {
                match tokio::time::timeout(CONFIG_SETTLE, raw_rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wasmalived-daemon-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn a_plugin_granted_processes_wants_process_events_without_tracked_processes() {
        let conf = |grant: &str| {
            crate::lvs::test_config(&format!(
                "vrrp_script chk {{\n    plugin nginx-process\n    {grant}\n}}\n"
            ))
        };
        let granted = process_rules(&conf("allow_processes netns"));
        assert!(granted.rules.is_empty());
        assert!(granted.process_events, "the index needs the connector");
        assert!(!process_rules(&conf("allow_tcp 192.0.2.1:80")).process_events);
    }

    #[test]
    fn a_pid_file_symlink_is_refused_and_its_target_untouched() {
        let dir = scratch("pidlink");
        let target = dir.join("victim");
        std::fs::write(&target, "precious\n").unwrap();
        let pid = dir.join("wasmalived.pid");
        std::os::unix::fs::symlink(&target, &pid).unwrap();
        let err = write_pid_file(&pid).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_pid_file_is_written_and_a_stale_one_replaced() {
        let dir = scratch("pid");
        let pid = dir.join("wasmalived.pid");
        std::fs::write(&pid, "999999999\n").unwrap();
        write_pid_file(&pid).unwrap();
        assert_eq!(
            std::fs::read_to_string(&pid).unwrap(),
            format!("{}\n", std::process::id())
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_state_directory_must_be_ours_and_private() {
        let dir = scratch("state");
        prepare_state_dir(&dir).unwrap();
        let fresh = dir.join("new/state");
        prepare_state_dir(&fresh).unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = format!("{:#}", prepare_state_dir(&dir).unwrap_err());
        assert!(err.contains("everyone"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        let err = format!("{:#}", prepare_state_dir(&link).unwrap_err());
        assert!(err.contains("symlink is refused"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
