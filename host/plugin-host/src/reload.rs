//! Hot reload: watch the plugin directories and swap new versions in for the next runs.
//!
//! - Checks hold a [`CheckHandle`], which always resolves to the current [`CheckPlugin`]
//!   (an `RwLock<CheckPlugin>` swapped atomically; a run in progress keeps the version it
//!   started with).
//! - A check's plugin has a [`PluginSource`]: a file, or a name looked up in the plugin
//!   search path. A change to `NAME.wasm` in any directory of the path looks the name up
//!   again, so a file dropped into the administrator's directory shadows the packaged one
//!   and removing it falls back to the packaged one.
//! - [`PluginWatcher::spawn`] watches the directories with `notify`. A `.wasm` renamed into
//!   place or closed after writing is a complete file and is reloaded at once; any other
//!   change (a file still being written, a backend that reports only modifications) is
//!   reloaded once its size and mtime have not changed for [`SETTLE`]. Either way it must
//!   pass the security check, compile and validate against each check's grants — on a
//!   blocking thread. Each check whose plugin was swapped is told ([`CheckHandle::swaps`]),
//!   so the new version runs at once instead of at the check's next interval. Anything that fails is refused with
//!   a warning and the previous version keeps running. A deleted file that leaves nothing to
//!   fall back on keeps its last loaded version running (removing a file must never flap a
//!   VIP), with a warning.
//! - [`reload_path`] does the same for one file on demand (SIGHUP, tests).
//! - The registry counts what happened ([`PluginCounts`]: loads, reloads, refusals), for the
//!   daemon's metrics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use ::notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use wasmalived_config::{PluginRef, PluginSearchPath};

use super::run::{CheckPlugin, RunOutcome, Runtime};
use super::PluginError;

/// A file must be unchanged this long before it is loaded.
pub const SETTLE: Duration = Duration::from_millis(300);
/// How often pending files are looked at (only while some are: an idle watcher never wakes).
const POLL: Duration = Duration::from_millis(100);

/// A check's handle to its plugin; always the current version. Cheap to clone.
#[derive(Clone)]
pub struct CheckHandle {
    current: Arc<RwLock<CheckPlugin>>,
    /// Bumped on every swap, so the check's scheduler can run the new version at once.
    swaps: Arc<watch::Sender<u64>>,
}

impl CheckHandle {
    /// Wrap a loaded plugin.
    pub fn new(plugin: CheckPlugin) -> Self {
        Self {
            current: Arc::new(RwLock::new(plugin)),
            swaps: Arc::new(watch::Sender::new(0)),
        }
    }

    /// A receiver that sees each swap of a new version in (`changed()` resolves), and
    /// closes once the last clone of this handle is gone (the check was removed).
    pub fn swaps(&self) -> watch::Receiver<u64> {
        self.swaps.subscribe()
    }

    /// The version the next run uses.
    pub fn current(&self) -> CheckPlugin {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `name@digest` of the current version.
    pub fn identity(&self) -> String {
        self.current().identity().to_string()
    }

    /// Run the current version once.
    pub fn run(
        &self,
        params: &[(String, String)],
        timeout: Duration,
    ) -> impl std::future::Future<Output = RunOutcome> + Send + 'static {
        self.current().run(params, timeout)
    }

    fn swap(&self, new: CheckPlugin) -> CheckPlugin {
        let old = {
            let mut g = self.current.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *g, new)
        };
        self.swaps.send_modify(|n| *n += 1);
        old
    }
}

/// Where a check's plugin comes from: what a change on disk is matched against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PluginSource {
    /// A file named by its path (`plugin PATH.wasm`): reloaded when that file changes.
    File(PathBuf),
    /// `plugin NAME`: `NAME.wasm` in the first directory of the search path holding one.
    /// Looked up again whenever a `NAME.wasm` in any of those directories changes, appears
    /// or disappears, so a file dropped into an earlier directory shadows a later one and
    /// removing it falls back.
    Search {
        /// The plugin name.
        name: String,
        /// The directories, in order.
        path: PluginSearchPath,
    },
}

impl PluginSource {
    /// The source of a configured plugin reference.
    pub fn of(plugin: &PluginRef, search: &PluginSearchPath) -> Self {
        match plugin {
            PluginRef::Name(name) => PluginSource::Search {
                name: name.clone(),
                path: search.clone(),
            },
            PluginRef::Path(path) => PluginSource::File(path.clone()),
        }
    }

    /// The file this source means now.
    pub fn locate(&self) -> Result<PathBuf, PluginError> {
        match self {
            PluginSource::File(path) => Ok(path.clone()),
            PluginSource::Search { name, path } => Ok(path.find(name)?),
        }
    }

    /// Whether a change to `file` can change what this source loads.
    fn affected_by(&self, file: &Path) -> bool {
        match self {
            PluginSource::File(path) => key(path) == key(file),
            PluginSource::Search { name, path } => {
                let matches_name = file
                    .file_name()
                    .is_some_and(|f| *f == *PluginSearchPath::file_name(name));
                matches_name && {
                    let dir = key(file).parent().map(Path::to_path_buf);
                    path.dirs()
                        .iter()
                        .any(|d| dir.as_deref() == Some(canonical(d).as_path()))
                }
            }
        }
    }

    /// The registry's key: a file path with its directory made canonical.
    fn normalized(&self) -> Self {
        match self {
            PluginSource::File(path) => PluginSource::File(key(path)),
            search => search.clone(),
        }
    }
}

impl std::fmt::Display for PluginSource {
    /// The file as written, or the name with the directories it is looked up in.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::File(path) => write!(f, "{}", path.display()),
            PluginSource::Search { name, path } => write!(f, "{name} (in {path})"),
        }
    }
}

/// Which checks use which plugin source. Cheap to clone; shared with the watcher.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    by_source: Arc<Mutex<HashMap<PluginSource, Vec<CheckHandle>>>>,
    counts: Arc<Counters>,
}

/// What the registry has done since the daemon started, counted per check (a file used by
/// three checks and reloaded once counts three reloads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginCounts {
    /// Plugins loaded for a check (start-up, a reload of the configuration).
    pub loads: u64,
    /// Loads refused: not found on the search path, unreadable, untrusted, not a valid
    /// component, grants not met.
    pub load_refusals: u64,
    /// New versions swapped in by hot reload.
    pub reloads: u64,
    /// New versions refused by hot reload (the previous version keeps running).
    pub reload_refusals: u64,
}

#[derive(Default)]
struct Counters {
    loads: AtomicU64,
    load_refusals: AtomicU64,
    reloads: AtomicU64,
    reload_refusals: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl PluginRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Load the plugin `source` means now for a check and register the handle for reloads.
    pub fn load(
        &self,
        runtime: &Runtime,
        check_name: &str,
        source: &PluginSource,
        grants: &super::Grants,
    ) -> Result<CheckHandle, PluginError> {
        let plugin = source
            .locate()
            .and_then(|path| runtime.load_check(check_name, &path, grants))
            .inspect_err(|_| Counters::add(&self.counts.load_refusals, 1))?;
        Counters::add(&self.counts.loads, 1);
        let handle = CheckHandle::new(plugin);
        self.register(source, handle.clone());
        Ok(handle)
    }

    /// Register an existing handle under `source`.
    pub fn register(&self, source: &PluginSource, handle: CheckHandle) {
        self.lock()
            .entry(source.normalized())
            .or_default()
            .push(handle);
    }

    /// Forget `handle` (its check was removed): reloads no longer swap it, and its plugin
    /// is freed with the last clone of the handle.
    pub fn release(&self, handle: &CheckHandle) {
        let mut map = self.lock();
        map.retain(|_, handles| {
            handles.retain(|h| !Arc::ptr_eq(&h.current, &handle.current));
            !handles.is_empty()
        });
    }

    /// How many handles are registered (all files).
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Whether no handle is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the registry has loaded, reloaded and refused so far.
    pub fn counts(&self) -> PluginCounts {
        let c = &self.counts;
        PluginCounts {
            loads: c.loads.load(Ordering::Relaxed),
            load_refusals: c.load_refusals.load(Ordering::Relaxed),
            reloads: c.reloads.load(Ordering::Relaxed),
            reload_refusals: c.reload_refusals.load(Ordering::Relaxed),
        }
    }

    /// The sources a change to `file` can affect, with their handles.
    fn affected_by(&self, file: &Path) -> Vec<(PluginSource, Vec<CheckHandle>)> {
        self.lock()
            .iter()
            .filter(|(source, _)| source.affected_by(file))
            .map(|(source, handles)| (source.clone(), handles.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PluginSource, Vec<CheckHandle>>> {
        self.by_source.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `dir` made canonical when it exists (symlinks, `..`), as written otherwise.
fn canonical(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}

/// Registry key: canonical parent directory + file name (works for deleted files too).
fn key(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = canonical(parent);
    match path.file_name() {
        Some(f) => parent.join(f),
        None => parent,
    }
}

/// What happened to a reload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadResult {
    /// No check uses this file.
    Unused,
    /// Same content as the running version.
    Unchanged,
    /// Swapped in for this many checks.
    Swapped(usize),
    /// Refused; the previous version keeps running.
    Refused(String),
    /// The file is gone; the previous version keeps running.
    Deleted,
}

/// Reload, for every check whose plugin source `changed` can affect, what that source means
/// now: the file itself for a path, the first `NAME.wasm` of the search path for a name (so
/// a change in one directory can load the file of another). Blocking (compiles): call from
/// a blocking thread in async code.
pub fn reload_path(runtime: &Runtime, registry: &PluginRegistry, changed: &Path) -> ReloadResult {
    let mut result = ReloadResult::Unused;
    for (source, handles) in registry.affected_by(changed) {
        let one = reload_source(runtime, &registry.counts, &source, &handles);
        result = match (result, one) {
            (ReloadResult::Swapped(a), ReloadResult::Swapped(b)) => ReloadResult::Swapped(a + b),
            (s @ ReloadResult::Swapped(_), _) | (_, s @ ReloadResult::Swapped(_)) => s,
            (r @ ReloadResult::Refused(_), _) | (_, r @ ReloadResult::Refused(_)) => r,
            (ReloadResult::Deleted, _) | (_, ReloadResult::Deleted) => ReloadResult::Deleted,
            (_, other) => other,
        };
    }
    result
}

/// Load what `source` means now and swap it in for `handles`.
fn reload_source(
    runtime: &Runtime,
    counts: &Counters,
    source: &PluginSource,
    handles: &[CheckHandle],
) -> ReloadResult {
    let path = match source.locate() {
        Ok(path) if path.exists() => path,
        _ => {
            for h in handles {
                let cur = h.current();
                tracing::warn!(plugin = %cur.identity(), check = %cur.check_name(), source = %source,
                    "plugin file deleted; keeping the loaded version running");
            }
            return ReloadResult::Deleted;
        }
    };
    let loaded = match runtime.load_file(&path) {
        Ok(l) => l,
        Err(e) => {
            for h in handles {
                tracing::warn!(plugin = %h.identity(), "refused new plugin version: {e}; keeping the running one");
            }
            Counters::add(&counts.reload_refusals, handles.len());
            return ReloadResult::Refused(e.to_string());
        }
    };
    let mut swapped = 0;
    let mut refused = None;
    for h in handles {
        let cur = h.current();
        if cur.digest() == loaded.digest() {
            continue;
        }
        match runtime.bind(cur.check_name(), loaded.clone(), cur.grants()) {
            Ok(new) => {
                let span =
                    tracing::error_span!("plugin", name = %new.name(), digest = %new.digest());
                let _e = span.enter();
                let old = h.swap(new);
                tracing::info!(from = %old.identity(), check = %old.check_name(), file = %path.display(), cache = ?loaded.cache, "plugin reloaded");
                Counters::add(&counts.reloads, 1);
                swapped += 1;
            }
            Err(e) => {
                tracing::warn!(plugin = %cur.identity(), "refused new plugin version: {e}; keeping the running one");
                Counters::add(&counts.reload_refusals, 1);
                refused = Some(e.to_string());
            }
        }
    }
    match (swapped, refused) {
        (0, Some(r)) => ReloadResult::Refused(r),
        (0, None) => ReloadResult::Unchanged,
        (n, _) => ReloadResult::Swapped(n),
    }
}

/// Watches the plugin directories; stops when dropped.
pub struct PluginWatcher {
    _watcher: ::notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Stat = Option<(u64, SystemTime)>;

fn stat(path: &Path) -> Stat {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// What an event on a plugin file means for reloading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Nothing that can change its content: opened, read, closed after reading.
    None,
    /// The content may still be changing (created, written, chmod-ed, removed): reload once
    /// it has settled.
    Partial,
    /// A complete file: renamed into place, or closed after writing. Reload at once.
    Complete,
}

/// Whether an event can mean new content (or new permissions), and whether the file is
/// complete.
fn change_of(kind: &::notify::EventKind) -> Change {
    use ::notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
    match kind {
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => Change::Complete,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Change::Complete,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => Change::Partial,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => Change::None,
    }
}

impl PluginWatcher {
    /// Watch `dirs` (each non-recursively; typically the existing directories of the
    /// plugin search path) and reload what a changed `.wasm` file means for the checks of
    /// `registry`. Must be called within a tokio runtime.
    pub fn spawn(
        dirs: &[PathBuf],
        runtime: Runtime,
        registry: PluginRegistry,
    ) -> Result<Self, PluginError> {
        let err = |dir: &Path, reason: String| PluginError::Read {
            path: dir.to_path_buf(),
            source: std::io::Error::other(reason),
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<(PathBuf, Change)>();
        let mut watcher =
            ::notify::recommended_watcher(move |ev: ::notify::Result<::notify::Event>| match ev {
                // Only what can change a file's content or existence: reading a plugin (every
                // reload, every load) raises access events, which must not trigger a reload of
                // their own — that loop would never settle.
                Ok(ev) => {
                    let change = change_of(&ev.kind);
                    if change == Change::None {
                        return;
                    }
                    // A rename reports both names; only the new one can be a complete file.
                    let renamed_both = matches!(
                        ev.kind,
                        ::notify::EventKind::Modify(::notify::event::ModifyKind::Name(
                            ::notify::event::RenameMode::Both
                        ))
                    );
                    let last = ev.paths.len().saturating_sub(1);
                    for (i, p) in ev.paths.into_iter().enumerate() {
                        if p.extension().is_some_and(|e| e == "wasm") {
                            let change = if renamed_both && i < last {
                                Change::Partial
                            } else {
                                change
                            };
                            let _ = tx.send((p, change));
                        }
                    }
                }
                Err(e) => tracing::warn!("plugin directory watch error: {e}"),
            })
            .map_err(|e| err(Path::new("."), format!("cannot watch: {e}")))?;
        for dir in dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| err(dir, format!("cannot watch: {e}")))?;
            tracing::info!(dir = %dir.display(), "watching plugins directory");
        }
        let task = tokio::spawn(async move {
            let mut pending: HashMap<PathBuf, (Stat, Instant)> = HashMap::new();
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    ev = rx.recv() => match ev {
                        Some((p, Change::Complete)) => {
                            pending.remove(&p);
                            reload_now(&runtime, &registry, p).await;
                        }
                        Some((p, _)) => {
                            if pending.is_empty() {
                                // The first look is a full `POLL` from now, not a catch-up.
                                tick.reset();
                            }
                            let s = stat(&p);
                            pending.insert(p, (s, Instant::now()));
                        }
                        None => return,
                    },
                    // Ticks only while files are settling: the daemon's runtime is not woken
                    // ten times a second for nothing (README, "LVS director vs HAProxy").
                    _ = tick.tick(), if !pending.is_empty() => {
                        let now = Instant::now();
                        let mut ready = Vec::new();
                        for (p, (last, since)) in pending.iter_mut() {
                            let s = stat(p);
                            if s != *last {
                                *last = s;
                                *since = now;
                            } else if now.duration_since(*since) >= SETTLE {
                                ready.push(p.clone());
                            }
                        }
                        for p in ready {
                            pending.remove(&p);
                            reload_now(&runtime, &registry, p).await;
                        }
                    }
                }
            }
        });
        Ok(Self {
            _watcher: watcher,
            task,
        })
    }
}

/// [`reload_path`] on a blocking thread.
async fn reload_now(runtime: &Runtime, registry: &PluginRegistry, file: PathBuf) {
    let (rt, reg, path) = (runtime.clone(), registry.clone(), file.clone());
    let r = tokio::task::spawn_blocking(move || reload_path(&rt, &reg, &path)).await;
    tracing::debug!(file = %file.display(), result = ?r, "reload");
}

#[cfg(test)]
mod watch_tests {
    use super::{change_of, Change};
    use ::notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, EventKind, ModifyKind, RemoveKind,
        RenameMode,
    };

    #[test]
    fn reading_a_plugin_is_not_a_change_writing_it_is() {
        let none = |k| assert_eq!(change_of(&k), Change::None, "{k:?}");
        none(EventKind::Access(AccessKind::Open(AccessMode::Any)));
        none(EventKind::Access(AccessKind::Close(AccessMode::Read)));
        none(EventKind::Access(AccessKind::Read));
        let partial = |k| assert_eq!(change_of(&k), Change::Partial, "{k:?}");
        partial(EventKind::Create(CreateKind::File));
        partial(EventKind::Modify(ModifyKind::Data(DataChange::Any)));
        partial(EventKind::Remove(RemoveKind::File));
        partial(EventKind::Modify(ModifyKind::Name(RenameMode::From)));
    }

    #[test]
    fn a_rename_into_place_or_a_close_after_writing_is_a_complete_file() {
        let complete = |k| assert_eq!(change_of(&k), Change::Complete, "{k:?}");
        complete(EventKind::Access(AccessKind::Close(AccessMode::Write)));
        complete(EventKind::Modify(ModifyKind::Name(RenameMode::To)));
        complete(EventKind::Modify(ModifyKind::Name(RenameMode::Both)));
    }
}
