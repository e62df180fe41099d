//! The daemon: who owns what, which messages flow where, and how it reloads and shuts down.
//!
//! ```text
//!                 SIGHUP / config file change / control `reload`
//!                                 │
//!   SIGTERM ──► run() ── apply(config) ──────────────┬───────────────┬──────────────┐
//!                 │                                  ▼               ▼              ▼
//!                 │                        CheckSet: one task   Sockets: one raw   LinkMonitor:
//!                 │                        per vrrp_script      socket + rx task   netlink link
//!                 │                        (script or plugin)   per (iface, af)    events
//!                 │                               │ watch<CheckUpdate>  │ Packet by VRID  │ watch<links>
//!                 │                               ▼                     │                 │
//!                 │                        tracking task per ◄──────────┼─────────────────┘
//!                 │                        instance: effective          │
//!                 │                        priority / Fault             │
//!                 │                               │ Tracking            │
//!                 │                               ▼                     ▼
//!                 └── Shutdown/Reconfigure ──► instance task (owns vrrp::Instance, the only
//!                                              writer of its state): adverts out, VIPs via
//!                                              netlink, GARP/NA, notify queue, status board
//!                                                   │ (name, state)
//!                                                   ▼
//!                                              sync-group task: members move together
//!                                              (Fault, hold/force MASTER and BACKUP)
//! ```
//!
//! Plugin runs happen on the plugin runtime's own executor threads, so a slow or stuck check
//! can only make its own verdict late; it never delays an advert (STYLE principle 7).
//! Shutdown (SIGTERM/SIGINT): every instance sends priority 0 and removes its VIPs, runs
//! `notify_stop`, bounded by [`SHUTDOWN_GRACE`]; then all tasks are cancelled.

pub mod checks;
pub mod instance;
pub mod links;
pub mod plan;
pub mod rx;
pub mod split_brain;
pub mod sync_group;
pub mod tracking;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use self::checks::{CheckContext, CheckSet};
use self::instance::{InstanceMsg, InstanceTask};
use self::plan::InstanceKey;
use self::tracking::{TrackedCheck, TrackedInterface, TrackingSpec};
use crate::checks::{CheckState, CheckUpdate, LastOutcome};
use crate::control::{self, ControlRequest, StatusBoard};
use crate::net::netlink::Netlink;
use wasmalived_config::{self as config, Config, LoadOptions, VrrpInstance, VrrpScript};
use wasmalived_plugin_host::reload::PluginRegistry;
use wasmalived_plugin_host::{PluginWatcher, Runtime};

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
    /// Pid file (default `<state-dir>/wasmalived.pid`).
    pub pid_file: Option<PathBuf>,
}

/// Run the daemon until SIGTERM/SIGINT (or a check with `on_fatal stop_daemon`).
pub async fn run(opts: Options) -> anyhow::Result<()> {
    prepare_state_dir(&opts.state_dir)?;
    let pid_file = opts
        .pid_file
        .clone()
        .unwrap_or_else(|| opts.state_dir.join("wasmalived.pid"));
    write_pid_file(&pid_file)?;
    let result = run_with_pid_file(&opts).await;
    let _ = std::fs::remove_file(&pid_file);
    result
}

async fn run_with_pid_file(opts: &Options) -> anyhow::Result<()> {
    let load_opts = LoadOptions {
        strict: opts.strict,
    };
    let loaded = config::load(&opts.config, load_opts).map_err(|errs| {
        anyhow::anyhow!("{}: configuration invalid:\n{errs}", opts.config.display())
    })?;
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let config = loaded.config;

    let cache_dir = config
        .global
        .plugin_cache_dir
        .clone()
        .unwrap_or_else(|| opts.state_dir.join("plugin-cache"));
    let runtime = {
        let dir = cache_dir.clone();
        tokio::task::spawn_blocking(move || Runtime::new(&dir))
            .await
            .context("plugin runtime start-up task")?
            .with_context(|| format!("plugin runtime (cache {})", cache_dir.display()))?
    };
    let registry = PluginRegistry::new();
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let board = StatusBoard::new(&opts.config);
    let (control_tx, mut control_rx) = mpsc::channel(4);
    let control_task =
        control::serve(&opts.state_dir, board.clone(), control_tx, cancel.clone())
            .with_context(|| format!("control socket in {}", opts.state_dir.display()))?;
    let (stop_tx, mut stop_rx) = mpsc::channel::<String>(1);
    let netlink = Arc::new(Netlink::new().context("netlink")?);

    let mut daemon = Daemon {
        netlink: Arc::clone(&netlink),
        sockets: rx::Sockets::default(),
        links: links::LinkMonitor::start(Arc::clone(&netlink)).context("link monitor")?,
        checks: CheckSet::default(),
        check_ctx: CheckContext {
            runtime: runtime.clone(),
            registry: registry.clone(),
            board: board.clone(),
            stop_daemon: stop_tx,
            cancel: cancel.clone(),
            tracker: tracker.clone(),
        },
        instances: HashMap::new(),
        missing_checks: Vec::new(),
        tracking_cancel: CancellationToken::new(),
        groups: sync_group::SyncGroups::start(),
        board: board.clone(),
        plugin_watch: None,
        config: None,
    };
    daemon.apply(config).await;

    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut config_changes = watch_config_file(&opts.config);
    info!(config = %opts.config.display(), state_dir = %opts.state_dir.display(), "wasmalived running");
    let mut retry = tokio::time::interval(PENDING_RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = retry.tick(), if daemon.has_pending() => daemon.retry_pending().await,
            _ = sigterm.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = sigint.recv() => { info!("SIGINT: shutting down"); break; }
            _ = sighup.recv() => { info!("SIGHUP: reloading"); daemon.reload(&opts.config, load_opts).await; }
            Some(ControlRequest::Reload) = control_rx.recv() => {
                info!("control socket: reloading");
                daemon.reload(&opts.config, load_opts).await;
            }
            Some(()) = config_changes.recv() => {
                info!("configuration file changed: reloading");
                daemon.reload(&opts.config, load_opts).await;
            }
            Some(check) = stop_rx.recv() => {
                error!(%check, "check reported fatal with `on_fatal stop_daemon`: stopping the daemon");
                break;
            }
        }
    }
    daemon.shutdown().await;
    cancel.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tracker.wait()).await;
    let _ = control_task.await;
    info!("stopped");
    Ok(())
}

struct RunningInstance {
    cfg: VrrpInstance,
    /// Interfaces whose socket routes this instance's VRID to it (its own + heartbeat paths).
    routed: Vec<u32>,
    task: InstanceTask,
}

struct Daemon {
    netlink: Arc<Netlink>,
    sockets: rx::Sockets,
    links: links::LinkMonitor,
    checks: CheckSet,
    check_ctx: CheckContext,
    instances: HashMap<InstanceKey, RunningInstance>,
    /// Senders of the permanently-down updates standing in for checks that could not start.
    missing_checks: Vec<watch::Sender<CheckUpdate>>,
    tracking_cancel: CancellationToken,
    groups: sync_group::SyncGroups,
    board: StatusBoard,
    plugin_watch: Option<(PathBuf, PluginWatcher)>,
    config: Option<Config>,
}

impl Daemon {
    /// Parse and validate the config again; apply it only if valid.
    async fn reload(&mut self, path: &Path, opts: LoadOptions) {
        match config::load(path, opts) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    warn!("{warning}");
                }
                if self.config.as_ref() == Some(&loaded.config) {
                    info!("reload: configuration unchanged");
                    return;
                }
                self.apply(loaded.config).await;
            }
            Err(errs) => {
                error!("reload refused, keeping the running configuration:\n{errs}");
            }
        }
    }

    /// Bring everything in line with `config` (start-up and reload).
    async fn apply(&mut self, config: Config) {
        self.watch_plugins(&config);
        self.links
            .ensure(interfaces_of(&config).into_iter().collect())
            .await;

        // Checks: only the scripts something tracks run, as in keepalived.
        let wanted = tracked_scripts(&config);
        for err in self
            .checks
            .apply(&wanted, &config.global, &self.check_ctx)
            .await
        {
            error!("{err}");
        }

        // Instances, matched by (VRID, family, interface, unicast).
        let desired: HashMap<InstanceKey, &VrrpInstance> = config
            .instances
            .iter()
            .map(|i| (InstanceKey::of(i), i))
            .collect();
        let removed: Vec<InstanceKey> = self
            .instances
            .keys()
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect();
        for key in removed {
            if let Some(running) = self.instances.remove(&key) {
                info!(instance = %running.cfg.name, "instance removed by reload");
                stop_instance(&running.task, SHUTDOWN_GRACE).await;
                for ifindex in running.routed {
                    self.sockets.unroute(ifindex, key.family, key.vrid);
                }
            }
        }

        // Tracking is rebuilt for every instance: cheap, and it picks up weight changes.
        self.tracking_cancel.cancel();
        self.tracking_cancel = CancellationToken::new();
        self.missing_checks.clear();

        for inst in &config.instances {
            let key = InstanceKey::of(inst);
            let spec = self.tracking_spec(inst, &config);
            if self.instances.contains_key(&key) {
                let changed = self
                    .instances
                    .get(&key)
                    .is_some_and(|r| !r.cfg.same_definition(inst));
                if changed {
                    match self.plan(inst, &config).await {
                        Ok(plan) => {
                            if let Some(running) = self.instances.get_mut(&key) {
                                let routed = plan_routes(&plan);
                                for ifindex in &routed {
                                    self.sockets.route(
                                        *ifindex,
                                        key.family,
                                        key.vrid,
                                        running.task.tx.clone(),
                                    );
                                }
                                for old in running.routed.iter().filter(|i| !routed.contains(i)) {
                                    self.sockets.unroute(*old, key.family, key.vrid);
                                }
                                running.routed = routed;
                                let _ = running
                                    .task
                                    .tx
                                    .send(InstanceMsg::Reconfigure(Box::new(plan)))
                                    .await;
                                running.cfg = inst.clone();
                            }
                        }
                        Err(err) => error!("reload: {err}; instance keeps its old configuration"),
                    }
                }
                let Some(tx) = self.instances.get(&key).map(|r| r.task.tx.clone()) else {
                    continue;
                };
                tracking::spawn(
                    spec,
                    self.links.subscribe(),
                    tx,
                    self.tracking_cancel.clone(),
                    None,
                );
                continue;
            }
            if let Err(err) = self.start_instance(inst, &config, spec).await {
                error!("{err:#}; instance not started, retried every {PENDING_RETRY:?}");
            }
        }
        self.sync_group_membership(&config);
        self.config = Some(config);
    }

    /// Plan, spawn and route one new instance with its tracking.
    async fn start_instance(
        &mut self,
        inst: &VrrpInstance,
        config: &Config,
        spec: TrackingSpec,
    ) -> anyhow::Result<()> {
        let key = InstanceKey::of(inst);
        let plan = self.plan(inst, config).await?;
        let initial = spec.evaluate(&self.links.subscribe().borrow());
        let routed = plan_routes(&plan);
        let task = instance::spawn(
            plan,
            initial.clone(),
            Arc::clone(&self.netlink),
            self.board.clone(),
            self.groups.events(),
        );
        for ifindex in &routed {
            self.sockets
                .route(*ifindex, key.family, key.vrid, task.tx.clone());
        }
        tracking::spawn(
            spec,
            self.links.subscribe(),
            task.tx.clone(),
            self.tracking_cancel.clone(),
            Some(initial),
        );
        info!(instance = %inst.name, "instance started");
        self.instances.insert(
            key,
            RunningInstance {
                cfg: inst.clone(),
                routed,
                task,
            },
        );
        Ok(())
    }

    /// Whether some configured instance could not start (e.g. its interface does not exist
    /// yet).
    fn has_pending(&self) -> bool {
        self.config.as_ref().is_some_and(|c| {
            c.instances
                .iter()
                .any(|i| !self.instances.contains_key(&InstanceKey::of(i)))
        })
    }

    /// Try again to start the instances that could not start (an interface that appears
    /// later, as keepalived waits for it).
    async fn retry_pending(&mut self) {
        let Some(config) = self.config.take() else {
            return;
        };
        let mut started = false;
        for inst in &config.instances {
            if self.instances.contains_key(&InstanceKey::of(inst)) {
                continue;
            }
            let spec = self.tracking_spec(inst, &config);
            match self.start_instance(inst, &config, spec).await {
                Ok(()) => started = true,
                Err(err) => debug!("{err:#}; still not started"),
            }
        }
        if started {
            self.sync_group_membership(&config);
        }
        self.config = Some(config);
    }

    /// Tell the sync-group coordinator which running instances form which group.
    fn sync_group_membership(&self, config: &Config) {
        let members = config
            .sync_groups
            .iter()
            .map(|g| {
                let inboxes = g
                    .instances
                    .iter()
                    .filter_map(|name| {
                        self.instances
                            .values()
                            .find(|r| &r.cfg.name == name)
                            .map(|r| (name.clone(), r.task.tx.clone()))
                    })
                    .collect();
                (
                    g.name.clone(),
                    sync_group::GroupSpec {
                        members: inboxes,
                        notify: plan::notify_scripts(&g.notify),
                    },
                )
            })
            .collect();
        self.groups.set_groups(members);
    }

    async fn plan(
        &mut self,
        inst: &VrrpInstance,
        config: &Config,
    ) -> anyhow::Result<plan::InstancePlan> {
        let facts = plan::link_facts(&self.netlink, inst).await?;
        let socket = self
            .sockets
            .socket(facts.ifindex, &inst.interface, inst.family)
            .with_context(|| {
                format!("instance {}: VRRP socket on {}", inst.name, inst.interface)
            })?;
        let mut paths = Vec::new();
        for name in &inst.heartbeat_interfaces {
            let ifindex =
                self.netlink.ifindex(name).await.with_context(|| {
                    format!("instance {}: heartbeat_interface {name}", inst.name)
                })?;
            let socket = self
                .sockets
                .socket(ifindex, name, inst.family)
                .with_context(|| format!("instance {}: VRRP socket on {name}", inst.name))?;
            paths.push(plan::HeartbeatPath {
                interface: name.clone(),
                ifindex,
                socket,
            });
        }
        let announcer = crate::net::garp::Announcer::open()
            .with_context(|| format!("instance {}: packet socket for GARP/NA", inst.name))?;
        Ok(plan::build(
            inst,
            &config.global,
            &facts,
            socket,
            announcer,
            paths,
        )?)
    }

    /// What `inst` tracks: its own and its sync group's scripts, its tracked interfaces and
    /// (unless `dont_track_primary`) its own interface.
    fn tracking_spec(&mut self, inst: &VrrpInstance, config: &Config) -> TrackingSpec {
        let mut checks = Vec::new();
        let group = config.sync_group_of(&inst.name);
        let group_scripts = group
            .map(|g| g.track_scripts.as_slice())
            .unwrap_or_default();
        for track in inst.track_scripts.iter().chain(group_scripts) {
            let Some(script) = config.script(&track.name) else {
                continue;
            };
            let (weight, reverse) = track.effective_weight(script);
            let updates = match self.checks.subscribe(&track.name) {
                Some(rx) => rx,
                None => {
                    // The check could not start: it counts as down (and, with weight 0, as
                    // a Fault), never as silently healthy.
                    let (tx, rx) = watch::channel(CheckUpdate {
                        check: Arc::from(track.name.as_str()),
                        state: CheckState::Down,
                        transition: None,
                        last_outcome: LastOutcome::Failure("check could not start".into()),
                        at: tokio::time::Instant::now(),
                        runs: 0,
                        skipped: 0,
                    });
                    self.missing_checks.push(tx);
                    rx
                }
            };
            checks.push(TrackedCheck {
                name: track.name.clone(),
                weight,
                reverse,
                updates,
            });
        }
        let mut interfaces: Vec<TrackedInterface> = inst
            .track_interfaces
            .iter()
            .chain(
                group
                    .map(|g| g.track_interfaces.as_slice())
                    .unwrap_or_default(),
            )
            .map(|t| TrackedInterface {
                name: t.name.clone(),
                weight: t.weight,
                reverse: t.reverse,
            })
            .collect();
        if !inst.dont_track_primary && !interfaces.iter().any(|i| i.name == inst.interface) {
            interfaces.push(TrackedInterface {
                name: inst.interface.clone(),
                weight: 0,
                reverse: false,
            });
        }
        TrackingSpec {
            base_priority: inst.priority.get(),
            checks,
            interfaces,
        }
    }

    fn watch_plugins(&mut self, config: &Config) {
        let dir = &config.global.plugin_dir;
        if self.plugin_watch.as_ref().is_some_and(|(d, _)| d == dir) {
            return;
        }
        self.plugin_watch = None;
        if !dir.is_dir() {
            if uses_plugins(config) {
                warn!(dir = %dir.display(), "plugin directory missing: hot reload is off");
            }
            return;
        }
        match PluginWatcher::spawn(
            dir,
            self.check_ctx.runtime.clone(),
            self.check_ctx.registry.clone(),
        ) {
            Ok(w) => self.plugin_watch = Some((dir.clone(), w)),
            Err(err) => warn!(error = %err, "cannot watch the plugin directory: hot reload is off"),
        }
    }

    /// Release every instance (priority 0, VIPs removed, notify_stop), bounded in time.
    async fn shutdown(&mut self) {
        self.tracking_cancel.cancel();
        let stops = self
            .instances
            .values()
            .map(|r| stop_instance(&r.task, SHUTDOWN_GRACE));
        futures::future::join_all(stops).await;
        self.instances.clear();
    }
}

/// The interfaces whose sockets must route an instance's VRID to it.
fn plan_routes(plan: &plan::InstancePlan) -> Vec<u32> {
    std::iter::once(plan.ifindex)
        .chain(plan.heartbeat_paths.iter().map(|p| p.ifindex))
        .collect()
}

/// Ask an instance task to release and wait (bounded) for it.
async fn stop_instance(task: &InstanceTask, grace: Duration) {
    let (ack_tx, ack_rx) = oneshot::channel();
    if task.tx.send(InstanceMsg::Shutdown(ack_tx)).await.is_ok()
        && tokio::time::timeout(grace, ack_rx).await.is_err()
    {
        warn!("instance did not release within {grace:?}");
    }
}

fn uses_plugins(config: &Config) -> bool {
    config
        .scripts
        .iter()
        .any(|s| matches!(s.kind, config::ScriptKind::Plugin { .. }))
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

/// Create the state directory (mode 0700) if needed.
fn prepare_state_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("state directory {}", dir.display()))
}

/// Write our pid, refusing if a live wasmalived already holds the file (a stale one, e.g.
/// after a crash, is replaced).
fn write_pid_file(path: &Path) -> anyhow::Result<()> {
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(pid) = text.trim().parse::<u32>() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if pid != std::process::id() && comm.trim() == "wasmalived" {
                anyhow::bail!(
                    "{}: wasmalived is already running with pid {pid} (use another --state-dir)",
                    path.display()
                );
            }
        }
    }
    std::fs::write(path, format!("{}\n", std::process::id()))
        .with_context(|| format!("pid file {}", path.display()))
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
