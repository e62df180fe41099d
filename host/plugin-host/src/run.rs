//! The runtime the daemon uses: [`Runtime`] (engine + code cache + compiled plugins + scratch
//! stores + plugin executor) and [`CheckPlugin`] (a plugin bound to one check's grants).
//!
//! Every run:
//! - gets a fresh `Store` and instance from the cached `InstancePre` (a trapped instance is
//!   never re-entered; state across runs lives in `scratch`); only the host's WASI context,
//!   which holds no guest state, is handed from one run to the next (`run_context.rs`);
//! - is bounded: memory (the check's limit; growing past it traps), CPU (epoch deadline =
//!   the check's timeout; the plugin yields every epoch tick), wall (a tokio timeout around
//!   the call, since epochs do not interrupt host calls), log lines and captured output;
//! - runs on the *plugin executor* (`executor.rs`: dedicated `wasm-check-*` threads), via
//!   `call_async`: inline when called on one of its threads (a check loop placed there with
//!   [`Runtime::spawn_resident`]: no thread hand-off), else spawned onto one. A busy plugin
//!   therefore only competes with other plugins, never with the daemon's reactor (adverts,
//!   netlink), and it yields every epoch tick behind its thread's other ready tasks and
//!   timers, so plugins share the executor fairly.
//! - takes its instance from the engine's pool (`engine.rs`); more concurrent runs than
//!   pool slots fail at once with a `fail` verdict naming the limit.
//!
//! CPU time is measured on request ([`CheckPlugin::run_metered`]: `plugin run`, benchmarks)
//! as the sum of the thread CPU time of each poll of the run's future
//! (`CLOCK_THREAD_CPUTIME_ID` around every poll): exact even when the run migrates between
//! executor threads. Work done in other threads on its behalf (a remediation child, hyper's
//! connection task) is not included. The daemon's checks ([`CheckPlugin::run`]) do not use
//! the figure and do not pay for it: that thread clock is a real system call, not a vDSO read,
//! and two of them are ~6 % of a trivial run.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::Instrument;
use wasmtime::component::{Component, InstancePre, ResourceTable};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::wasmalived::plugin::types::{Status, Verdict as WitVerdict};
use super::bindings::CheckPluginPre;
use super::cache::{CacheOutcome, CodeCache};
use super::caps::http::{self, HttpPolicy};
use super::caps::http_send;
use super::caps::log::{self, LogCap};
use super::caps::probe::ProbeCap;
use super::caps::processes::{netns_of, ProcessesCap};
use super::caps::remediation::{self, RemediationCap};
use super::caps::scratch::{ScratchCap, SharedScratch};
use super::caps::stdio::Capture;
use super::caps::wake::{WakeCap, WakeSources};
use super::caps::{sockets, wasi};
use super::contract;
use super::engine::PluginEngine;
use super::executor::Executor;
use super::loader::{self, LoadedPlugin};
use super::pool::PoolLimits;
use super::process_index::ProcessIndex;
use super::ratelimit::SharedBucket;
use super::run_context::{RunContext, Spare};
use super::state::{Denials, HostState, MemLimiter};
use super::{sys, PluginError};
use wasmalived_config::grants::Grants;

/// Compiled components kept in memory (by sha256) so several checks sharing a file, and
/// reloads, compile once. Bounded: old versions fall out.
const COMPONENT_MEMO: usize = 32;
/// Bytes of a verdict message kept (before the `…` that marks a cut).
pub const MAX_MESSAGE: usize = 1024;
/// Measurements kept per verdict.
pub const MAX_MEASUREMENTS: usize = 64;
/// Slack of the outer safety-net timeout beyond the check's timeout.
const OUTER_SLACK: Duration = Duration::from_secs(1);
/// Host resources (streams, sockets, HTTP requests and header sets, pollables) one run may
/// hold at once: host memory a plugin makes the host allocate is bounded, not only its
/// linear memory.
pub const MAX_RESOURCES: usize = 1024;
/// Bytes of one HTTP header set (in its in-memory form) a plugin may build.
pub const MAX_HTTP_FIELDS_BYTES: usize = 16 * 1024;

/// The health verdict of one run.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Healthy.
    Ok,
    /// Unhealthy; counts towards `fall`.
    Fail(String),
    /// Stand down now.
    Fatal(String),
}

impl Verdict {
    /// `ok` / `fail` / `fatal`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Fail(_) => "fail",
            Verdict::Fatal(_) => "fatal",
        }
    }

    /// The reason, if not ok.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Ok => None,
            Verdict::Fail(r) | Verdict::Fatal(r) => Some(r),
        }
    }
}

/// Why a run ended without a verdict from the plugin. Each kind is its own variant, so
/// nothing downstream matches on message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunFailure {
    /// The run passed the check's timeout.
    #[error("timeout after {after:?}{}", site.suffix())]
    Timeout {
        /// The check's timeout.
        after: Duration,
        /// Where the deadline caught it.
        site: TimeoutSite,
    },
    /// Linear memory (or an allocation) passed `memory_limit`.
    #[error("memory limit {} exceeded", mib(*limit))]
    Memory {
        /// The limit in bytes.
        limit: usize,
    },
    /// The guest's stack ran out.
    #[error("stack overflow")]
    StackOverflow,
    /// The run held more host resources (streams, pollables, sockets, requests) than allowed.
    #[error("host resource limit exceeded ({limit} at once)")]
    HostResources {
        /// The limit.
        limit: usize,
    },
    /// Any other trap (`unreachable` — a panic in the plugin —, out-of-bounds access, ...).
    #[error("trap: {0}")]
    Trap(String),
    /// Every pooled instance slot is busy.
    #[error("plugin instance pool exhausted: too many runs in flight")]
    PoolExhausted,
    /// The host could not set the run up or lost it (WASI context, executor task).
    #[error("{0}")]
    Host(String),
}

/// Where a [`RunFailure::Timeout`] caught the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutSite {
    /// The epoch deadline interrupted guest code.
    Guest,
    /// The run was awaiting a host call (an epoch cannot interrupt those).
    HostCall,
    /// The executor thread did not answer (the outer safety net).
    Executor,
}

impl TimeoutSite {
    fn suffix(self) -> &'static str {
        match self {
            TimeoutSite::Guest => "",
            TimeoutSite::HostCall => " (in a host call)",
            TimeoutSite::Executor => " (plugin executor unresponsive)",
        }
    }
}

impl RunFailure {
    /// A short stable name of the kind (`timeout`, `memory`, `stack_overflow`, `trap`,
    /// `pool_exhausted`, `host`), for status and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RunFailure::Timeout { .. } => "timeout",
            RunFailure::Memory { .. } => "memory",
            RunFailure::StackOverflow => "stack_overflow",
            RunFailure::HostResources { .. } => "host_resources",
            RunFailure::Trap(_) => "trap",
            RunFailure::PoolExhausted => "pool_exhausted",
            RunFailure::Host(_) => "host",
        }
    }
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// What the plugin said, or why it said nothing.
    pub result: Result<Verdict, RunFailure>,
    /// Capability uses the host refused during the run (bounded), e.g. a request to a URL
    /// that no grant matches: a `fail` that follows one was most likely caused by it.
    pub denied: Vec<String>,
    /// Log lines dropped by the per-run bound or the check's rate limit.
    pub log_dropped: u64,
    /// Bytes of stdout/stderr dropped beyond the capture bound.
    pub output_dropped: u64,
    /// The plugin's short message.
    pub message: Option<String>,
    /// Named measurements.
    pub measurements: Vec<(String, f64)>,
    /// Wall time of the run (instantiate + call).
    pub wall: Duration,
    /// CPU time of the run (see the module doc), if it was metered
    /// ([`CheckPlugin::run_metered`]).
    pub cpu: Option<Duration>,
    /// `name@digest` of the plugin version that ran.
    pub identity: String,
    /// What the run asked to be woken by (`wake`); empty for a run that gave no verdict.
    pub wake: WakeSources,
}

impl RunOutcome {
    /// `ok`, `fail` (a `fail` verdict or a failed run) or `fatal`.
    pub fn kind(&self) -> &'static str {
        match &self.result {
            Ok(verdict) => verdict.kind(),
            Err(_) => "fail",
        }
    }

    /// Why it is not ok: the plugin's reason, or the run's failure.
    pub fn reason(&self) -> Option<String> {
        match &self.result {
            Ok(verdict) => verdict.reason().map(str::to_owned),
            Err(failure) => Some(failure.to_string()),
        }
    }

    fn failed(identity: &str, failure: RunFailure, wall: Duration, cpu: Option<Duration>) -> Self {
        Self {
            result: Err(failure),
            denied: Vec::new(),
            log_dropped: 0,
            output_dropped: 0,
            message: None,
            measurements: Vec::new(),
            wall,
            cpu,
            identity: identity.to_string(),
            wake: WakeSources::default(),
        }
    }
}

struct Memo {
    map: HashMap<String, LoadedPlugin>,
    order: VecDeque<String>,
}

struct RuntimeInner {
    engine: PluginEngine,
    cache: CodeCache,
    memo: Mutex<Memo>,
    scratch: Mutex<HashMap<String, SharedScratch>>,
    own_netns: Option<Arc<str>>,
    /// Process names → PIDs for `processes.by-name`, kept by whoever has process events (the
    /// daemon); not live otherwise, and then `by-name` scans.
    process_index: Arc<ProcessIndex>,
    executor: Executor,
    /// The origin of `wasi:clocks/monotonic-clock` for every run, so monotonic times a
    /// plugin keeps in `scratch` compare across runs.
    clock_origin: Instant,
    /// The instance pool's size.
    limits: PoolLimits,
}

/// The plugin runtime: one per process. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl Runtime {
    /// Create the engine with a pool of the default size, open the code cache at
    /// `cache_dir`, start the plugin executor (one-off runs: the CLI, tests).
    pub fn new(cache_dir: &Path) -> Result<Self, PluginError> {
        Self::with_limits(cache_dir, PoolLimits::default())
    }

    /// Like [`Runtime::new`], with an instance pool sized to `limits` (the daemon's: from
    /// its configuration, [`PoolLimits::for_config`]).
    pub fn with_limits(cache_dir: &Path, limits: PoolLimits) -> Result<Self, PluginError> {
        let engine = PluginEngine::with_limits(limits)?;
        let cache = CodeCache::open(cache_dir, engine.engine())?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let executor = Executor::start(workers)?;
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                cache,
                memo: Mutex::new(Memo {
                    map: HashMap::new(),
                    order: VecDeque::new(),
                }),
                scratch: Mutex::new(HashMap::new()),
                own_netns: netns_of(Path::new("/proc"), "self").map(Arc::from),
                process_index: Arc::new(ProcessIndex::new()),
                executor,
                clock_origin: Instant::now(),
                limits,
            }),
        })
    }

    /// The instance pool's size, fixed when the runtime was created.
    pub fn limits(&self) -> PoolLimits {
        self.inner.limits
    }

    /// Run a long-lived task — a check's schedule loop — on a plugin executor thread, so the
    /// plugin runs it starts execute inline there, without a thread hand-off
    /// (`executor.rs`). It stops when it ends, when its `JoinHandle` is aborted, or when the
    /// runtime is dropped.
    pub fn spawn_resident<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.executor.spawn_resident(fut)
    }

    /// The kernel ids of the threads plugin runs execute on (`wasm-check-N`): the daemon
    /// sets their nice value (`checker_priority`).
    pub fn executor_thread_ids(&self) -> Vec<i32> {
        self.inner.executor.thread_ids()
    }

    /// The process-name index every run's `processes.by-name` consults. It starts not live
    /// (every call scans `/proc`); the daemon keeps it from the kernel's process events.
    pub fn process_index(&self) -> &Arc<ProcessIndex> {
        &self.inner.process_index
    }

    /// The code cache.
    pub fn cache(&self) -> &CodeCache {
        &self.inner.cache
    }

    /// Read, vet and compile a plugin file (through the in-memory memo and the code cache).
    /// Blocking (file I/O, maybe a JIT compile): call from a blocking thread in async code.
    pub fn load_file(&self, path: &Path) -> Result<LoadedPlugin, PluginError> {
        let (bytes, sha) = loader::read_file(path)?;
        if let Some(hit) = self.memo().map.get(&sha) {
            let mut p = hit.clone();
            p.path = path.to_path_buf();
            p.cache = CacheOutcome::Hit;
            return Ok(p);
        }
        let loaded = loader::compile(
            self.inner.engine.engine(),
            &self.inner.cache,
            path,
            &bytes,
            sha.clone(),
        )?;
        let mut memo = self.memo();
        if memo.map.insert(sha.clone(), loaded.clone()).is_none() {
            memo.order.push_back(sha);
        }
        while memo.order.len() > COMPONENT_MEMO {
            if let Some(old) = memo.order.pop_front() {
                memo.map.remove(&old);
            }
        }
        Ok(loaded)
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.inner.memo.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Load `path` for check `check_name` with its grants: vet the file, compile (cached),
    /// check the contract and every import against the grants, pre-instantiate.
    pub fn load_check(
        &self,
        check_name: &str,
        path: &Path,
        grants: &Grants,
    ) -> Result<CheckPlugin, PluginError> {
        let loaded = self.load_file(path)?;
        self.bind(check_name, loaded, grants)
    }

    /// Bind an already loaded plugin to a check's grants.
    pub fn bind(
        &self,
        check_name: &str,
        loaded: LoadedPlugin,
        grants: &Grants,
    ) -> Result<CheckPlugin, PluginError> {
        let path = loaded.path.clone();
        contract::check_imports(loaded.imports.iter().map(String::as_str), grants).map_err(
            |(import, reason)| PluginError::NotGranted {
                path: path.clone(),
                import,
                reason,
            },
        )?;
        let grant_err = |reason: String| PluginError::Grant {
            check: check_name.to_string(),
            reason,
        };
        let http_targets = grants
            .http
            .iter()
            .map(http::parse_target)
            .collect::<Result<Vec<_>, _>>()
            .map_err(grant_err)?;
        let http_sender =
            http_send::HttpSender::new(grants.http_pins.clone(), &grants.http_tls, grants.source)
                .map(Arc::new)
                .map_err(grant_err)?;
        let socket_grants = sockets::SocketGrants {
            tcp: grants
                .tcp
                .iter()
                .map(|g| sockets::parse_target("tcp", &g.0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(grant_err)?,
            udp: grants
                .udp
                .iter()
                .map(|g| sockets::parse_target("udp", &g.0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(grant_err)?,
            source: grants.source,
        };
        let dirs = grants
            .dirs
            .iter()
            .map(wasi::GrantedDir::open)
            .collect::<Result<Vec<_>, _>>()
            .map_err(grant_err)?;
        let remedies = grants
            .remediation
            .iter()
            .map(remediation::Remedy::prepare)
            .collect::<Result<Vec<_>, _>>()
            .map_err(grant_err)?;
        let linker = super::linker::build(self.inner.engine.engine(), grants).map_err(|e| {
            PluginError::Link {
                path: path.clone(),
                reason: format!("{e:#}"),
            }
        })?;
        let pre: InstancePre<HostState> =
            linker
                .instantiate_pre(&loaded.component)
                .map_err(|e| PluginError::Link {
                    path: path.clone(),
                    reason: format!("{e:#}"),
                })?;
        let pre = CheckPluginPre::new(pre).map_err(|e| PluginError::Contract {
            path: path.clone(),
            reason: format!("{e:#}"),
        })?;
        let scratch = self
            .inner
            .scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(check_name.to_string())
            .or_default()
            .clone();
        Ok(CheckPlugin {
            inner: Arc::new(CheckInner {
                check: check_name.to_string(),
                identity: loaded.identity(),
                name: loaded.name.clone(),
                digest: loaded.digest().to_string(),
                path,
                component: loaded.component.clone(),
                pre,
                grants: grants.clone(),
                http_targets: http_targets.into(),
                http_sender,
                socket_grants: Arc::new(socket_grants),
                dirs: dirs.into(),
                remedies: Arc::new(remedies),
                log_rate: log::check_bucket(),
                wall_clock: Mutex::new(None),
                clock_generation: AtomicU64::new(0),
                spare: Spare::default(),
                span: OnceLock::new(),
                scratch,
                runtime: self.inner.clone(),
            }),
        })
    }
}

struct CheckInner {
    check: String,
    identity: String,
    name: String,
    digest: String,
    path: PathBuf,
    component: Component,
    pre: CheckPluginPre<HostState>,
    grants: Grants,
    http_targets: Arc<[http::HttpTarget]>,
    /// Where and how the check's HTTP requests go (pins, TLS policy).
    http_sender: Arc<http_send::HttpSender>,
    /// Where the check's sockets may go.
    socket_grants: Arc<sockets::SocketGrants>,
    /// Granted directories, opened (and checked) once at load.
    dirs: Arc<[wasi::GrantedDir]>,
    /// Remediation commands, vetted at load, each with its rate limit.
    remedies: Arc<Vec<remediation::Remedy>>,
    /// The check's log rate across runs.
    log_rate: SharedBucket,
    /// A wall clock replacing the host's (tests of clock steps).
    wall_clock: Mutex<Option<WallClock>>,
    /// Bumped (under `wall_clock`'s lock) each time the wall clock is replaced: a spare WASI
    /// context built with an older one is not reused.
    clock_generation: AtomicU64,
    /// The WASI context the next run reuses (`run_context.rs`).
    spare: Spare,
    /// The `plugin` span of every run ([`CheckPlugin::span`]).
    span: OnceLock<tracing::Span>,
    scratch: SharedScratch,
    runtime: Arc<RuntimeInner>,
}

/// A wall clock the host hands a plugin instead of its own: time since the Unix epoch.
pub type WallClock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// `wasi:clocks/monotonic-clock` for plugins: nanoseconds since the runtime started, the same
/// clock in every run (wasmtime's default starts at each context's creation, which would make
/// a time kept across runs meaningless).
struct RuntimeMonotonicClock(Instant);

impl wasmtime_wasi::HostMonotonicClock for RuntimeMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Adapts a [`WallClock`] to WASI.
struct InjectedClock(WallClock);

impl wasmtime_wasi::HostWallClock for InjectedClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        (self.0)()
    }
}

/// A plugin bound to one check's grants. Cheap to clone.
#[derive(Clone)]
pub struct CheckPlugin {
    inner: Arc<CheckInner>,
}

impl std::fmt::Debug for CheckPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckPlugin")
            .field("check", &self.inner.check)
            .field("identity", &self.inner.identity)
            .finish()
    }
}

/// Marker error for the epoch deadline.
#[derive(Debug)]
struct DeadlineReached;

impl std::fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("check deadline reached")
    }
}

impl std::error::Error for DeadlineReached {}

impl CheckPlugin {
    /// Give this check's runs `clock` as `wasi:clocks/wall-clock` instead of the host's (the
    /// monotonic clock stays the host's). Used to test a plugin against clock steps, which
    /// cannot be made on one node of a namespace lab.
    pub fn set_wall_clock(&self, clock: WallClock) {
        let mut current = self
            .inner
            .wall_clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Some(clock);
        self.inner.clock_generation.fetch_add(1, Ordering::AcqRel);
        self.inner.spare.clear();
    }

    /// `name@digest`.
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// Plugin name (file stem).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Short digest.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The plugin file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The check this plugin is bound to.
    pub fn check_name(&self) -> &str {
        &self.inner.check
    }

    /// The grants it is bound with.
    pub fn grants(&self) -> &Grants {
        &self.inner.grants
    }

    /// The compiled component.
    pub fn component(&self) -> &Component {
        &self.inner.component
    }

    /// Run the check once. Never panics: every problem becomes a typed [`RunFailure`]. Runs on
    /// the plugin executor (see the module doc). The run's CPU time is not measured
    /// ([`RunOutcome::cpu`] is `None`): the daemon's path.
    pub fn run(
        &self,
        params: &[(String, String)],
        timeout: Duration,
    ) -> impl Future<Output = RunOutcome> + Send + 'static {
        self.start(params, timeout, Metering::Off)
    }

    /// [`CheckPlugin::run`], with the run's CPU time measured ([`RunOutcome::cpu`]; two thread
    /// clock reads per poll of the run).
    pub fn run_metered(
        &self,
        params: &[(String, String)],
        timeout: Duration,
    ) -> impl Future<Output = RunOutcome> + Send + 'static {
        self.start(params, timeout, Metering::ThreadCpu)
    }

    fn start(
        &self,
        params: &[(String, String)],
        timeout: Duration,
        metering: Metering,
    ) -> impl Future<Output = RunOutcome> + Send + 'static {
        let me = self.clone();
        let params = params.to_vec();
        async move {
            let started = Instant::now();
            let span = me.span();
            let metered =
                cpu_metered(me.clone().run_here(params, timeout), metering).instrument(span);
            let executor = &me.inner.runtime.executor;
            let finished = if executor.is_current() {
                // Already on an executor thread (a resident check loop): run right here. No
                // outer safety net: it would need this very thread to fire; the epoch
                // deadline and the host-call timeout inside the run bound it.
                Ok(Ok::<_, tokio::task::JoinError>(metered.await))
            } else {
                // Boxed: the task then holds a pointer, not the whole run's state.
                let task = executor.spawn(Box::pin(metered));
                let abort = task.abort_handle();
                let r = tokio::time::timeout(timeout + OUTER_SLACK, task).await;
                if r.is_err() {
                    abort.abort();
                }
                r
            };
            match finished {
                Ok(Ok((mut outcome, cpu))) => {
                    outcome.cpu = cpu;
                    outcome
                }
                Ok(Err(join)) => RunOutcome::failed(
                    &me.inner.identity,
                    RunFailure::Host(format!("plugin task failed: {join}")),
                    started.elapsed(),
                    None,
                ),
                Err(_) => RunOutcome::failed(
                    &me.inner.identity,
                    RunFailure::Timeout {
                        after: timeout,
                        site: TimeoutSite::Executor,
                    },
                    started.elapsed(),
                    None,
                ),
            }
        }
    }

    /// The span every run of this check is in: `plugin{name, digest, check}`, at ERROR level
    /// so it is enabled whenever any of its lines is (every log line of a run carries it,
    /// whatever the filter). Created on the check's first run, as a child of that run's
    /// span (the check's or probe's task), and shared by its later runs: a log layer formats
    /// a span's fields when the span is created, which per run was ~2.5 % of an LVS
    /// checker's CPU though most runs log nothing. A later run under another parent span
    /// still logs under the first run's parent.
    fn span(&self) -> tracing::Span {
        self.inner
            .span
            .get_or_init(|| {
                let inner = &self.inner;
                tracing::error_span!("plugin", name = %inner.name, digest = %inner.digest, check = %inner.check)
            })
            .clone()
    }

    /// The check's spare WASI context, or a new one (`run_context.rs`).
    fn run_context(&self) -> Result<RunContext, String> {
        let inner = &self.inner;
        let generation = inner.clock_generation.load(Ordering::Acquire);
        if let Some(ctx) = inner.spare.take(generation) {
            return Ok(ctx);
        }
        let capture = Capture::default();
        let denials = Denials::default();
        let mut b = wasi::builder(&capture, &inner.dirs)?;
        sockets::configure(&mut b, Arc::clone(&inner.socket_grants), denials.clone());
        b.monotonic_clock(RuntimeMonotonicClock(inner.runtime.clock_origin));
        // The generation is read with the clock, under its lock: a context is never tagged
        // newer than the clock it holds.
        let clock_generation = {
            let clock = inner
                .wall_clock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(clock) = clock.clone() {
                b.wall_clock(InjectedClock(clock));
            }
            inner.clock_generation.load(Ordering::Acquire)
        };
        Ok(RunContext {
            wasi: b.build(),
            capture,
            denials,
            clock_generation,
        })
    }

    /// The run's store data around `ctx`.
    fn new_state(&self, ctx: RunContext) -> HostState {
        let inner = &self.inner;
        let RunContext {
            wasi,
            capture,
            denials,
            clock_generation: _,
        } = ctx;
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut http_ctx = WasiHttpCtx::new();
        http_ctx.set_field_size_limit(MAX_HTTP_FIELDS_BYTES);
        HostState {
            wasi,
            table,
            http_ctx,
            http_policy: HttpPolicy::new(
                inner.http_targets.clone(),
                inner.http_sender.clone(),
                denials.clone(),
            ),
            log: LogCap::new(inner.log_rate.clone()),
            scratch: ScratchCap::new(inner.scratch.clone()),
            processes: ProcessesCap::new(
                inner.grants.processes,
                inner.runtime.own_netns.clone(),
                Some(Arc::clone(&inner.runtime.process_index)),
            ),
            remediation: RemediationCap::new(inner.remedies.clone(), denials.clone()),
            wake: WakeCap::new(
                inner.grants.processes.is_some(),
                inner.dirs.clone(),
                Arc::clone(&inner.socket_grants),
                denials.clone(),
            ),
            probe: ProbeCap::new(Arc::clone(&inner.socket_grants), denials.clone()),
            capture,
            limiter: MemLimiter::new(inner.grants.memory_limit),
            denials,
            insecure_seed: None,
        }
    }

    /// The run itself, on the current (executor) thread.
    async fn run_here(self, params: Vec<(String, String)>, timeout: Duration) -> RunOutcome {
        let started = Instant::now();
        // The epoch ticks while this is alive (`engine.rs`): until the store is gone.
        let _ticking = self.inner.runtime.engine.run_started();
        let ctx = match self.run_context() {
            Ok(ctx) => ctx,
            Err(e) => {
                return RunOutcome::failed(
                    &self.inner.identity,
                    RunFailure::Host(e),
                    started.elapsed(),
                    None,
                )
            }
        };
        let clock_generation = ctx.clock_generation;
        let mut store = Store::new(self.inner.runtime.engine.engine(), self.new_state(ctx));
        store.limiter(|s| &mut s.limiter);
        let deadline = started + timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineReached))
            } else {
                // Behind the thread's ready tasks and its timers, not just requeued
                // (`executor.rs`, fairness).
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        let call = async {
            let bindings = self.inner.pre.instantiate_async(&mut store).await?;
            bindings
                .wasmalived_plugin_check()
                .call_check(&mut store, &params)
                .await
        };
        let result = tokio::time::timeout(timeout, call).await;
        let wake = store.data_mut().wake.take();
        let data = store.data();
        data.log.finish();
        let log_dropped = data.log.dropped();
        let (out, output_dropped) = data.capture.contents();
        if !out.is_empty() {
            tracing::debug!(
                dropped_bytes = output_dropped,
                "plugin output: {}",
                log::sanitize(out.trim_end())
            );
        }
        let verdict = match result {
            Err(_) => Err(RunFailure::Timeout {
                after: timeout,
                site: TimeoutSite::HostCall,
            }),
            Ok(Err(e)) => Err(classify(&e, &data.limiter, timeout)),
            Ok(Ok(v)) => Ok(v),
        };
        let denied = data.denials.take();
        // Tearing the instance down is part of the run's cost.
        let state = store.into_data();
        self.inner.spare.give_back(RunContext {
            wasi: state.wasi,
            capture: state.capture,
            denials: state.denials,
            clock_generation,
        });
        let wall = started.elapsed();
        let identity = self.inner.identity.clone();
        match verdict {
            Err(failure) => {
                tracing::warn!(%failure, "check run failed");
                let mut outcome = RunOutcome::failed(&identity, failure, wall, None);
                outcome.denied = denied;
                outcome.log_dropped = log_dropped;
                outcome.output_dropped = output_dropped;
                outcome
            }
            Ok(v) => {
                let Accepted {
                    verdict,
                    message,
                    measurements,
                } = accept_verdict(v);
                RunOutcome {
                    result: Ok(verdict),
                    denied,
                    log_dropped,
                    output_dropped,
                    message,
                    measurements,
                    wall,
                    cpu: None,
                    identity,
                    wake,
                }
            }
        }
    }
}

/// What the host keeps of the verdict record a plugin returned (see [`accept_verdict`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The status, its reason cleaned.
    pub verdict: Verdict,
    /// The short message, cleaned.
    pub message: Option<String>,
    /// The finite measurements, at most [`MAX_MEASUREMENTS`], names cleaned.
    pub measurements: Vec<(String, f64)>,
}

/// Takes a plugin's verdict record into the host's terms: every text it carries (reason,
/// message, measurement names) escaped and bounded as [`clean`] does, non-finite
/// measurements (NaN, ±inf) dropped, at most [`MAX_MEASUREMENTS`] kept in the plugin's
/// order. The record is plugin-supplied data: nothing in it is trusted.
pub fn accept_verdict(v: WitVerdict) -> Accepted {
    let verdict = match v.status {
        Status::Ok => Verdict::Ok,
        Status::Fail(r) => Verdict::Fail(clean(&r)),
        Status::Fatal(r) => Verdict::Fatal(clean(&r)),
    };
    let measurements = v
        .measurements
        .into_iter()
        .filter(|m| m.value.is_finite())
        .take(MAX_MEASUREMENTS)
        .map(|m| (clean(&m.name), m.value))
        .collect();
    Accepted {
        verdict,
        message: v.message.as_deref().map(clean),
        measurements,
    }
}

/// A plugin's text (verdict reason, message, measurement name) as the daemon shows it:
/// control characters escaped, so it cannot forge log lines or status output, and at most
/// `MAX_MESSAGE` bytes (on a char boundary).
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE));
    for c in text.chars() {
        let escaped: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        if out.len() + escaped.len() > MAX_MESSAGE {
            out.push('…');
            break;
        }
        out.push_str(&escaped);
    }
    out
}

fn mib(bytes: usize) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

/// Turn a run error into its typed kind.
fn classify(e: &wasmtime::Error, limiter: &MemLimiter, timeout: Duration) -> RunFailure {
    let memory = RunFailure::Memory {
        limit: limiter.limit(),
    };
    if limiter.exceeded().is_some() {
        return memory;
    }
    let timed_out = RunFailure::Timeout {
        after: timeout,
        site: TimeoutSite::Guest,
    };
    if e.downcast_ref::<DeadlineReached>().is_some() {
        return timed_out;
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::StackOverflow => RunFailure::StackOverflow,
            Trap::UnreachableCodeReached => {
                RunFailure::Trap("wasm `unreachable` (a panic in the plugin?)".into())
            }
            Trap::Interrupt => timed_out,
            Trap::AllocationTooLarge => memory,
            other => RunFailure::Trap(other.to_string()),
        };
    }
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return RunFailure::PoolExhausted;
    }
    if matches!(
        e.downcast_ref::<wasmtime::component::ResourceTableError>(),
        Some(wasmtime::component::ResourceTableError::Full)
    ) {
        return RunFailure::HostResources {
            limit: MAX_RESOURCES,
        };
    }
    let msg = format!("{e:#}");
    if msg.contains("memory limit") {
        return memory;
    }
    // The root cause says what happened; the outer layers say where.
    let cause = e.root_cause().to_string();
    RunFailure::Host(format!(
        "error: {}",
        cause.lines().next().unwrap_or("unknown")
    ))
}

/// Whether a run measures its CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metering {
    /// Not measured (the daemon's checks).
    Off,
    /// The executor thread's CPU clock read around each poll.
    ThreadCpu,
}

/// `fut`, with the calling thread's CPU time summed over each of its polls when `metering`
/// asks for it. The future is pinned in place (no allocation of its own).
async fn cpu_metered<F: Future>(fut: F, metering: Metering) -> (F::Output, Option<Duration>) {
    let mut fut = std::pin::pin!(fut);
    if metering == Metering::Off {
        return (fut.await, None);
    }
    let mut cpu = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let t0 = sys::thread_cpu_time();
        let r = fut.as_mut().poll(cx);
        cpu += sys::thread_cpu_time().saturating_sub(t0);
        r
    })
    .await;
    (output, Some(cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_is_clipped_on_a_char_boundary_and_cannot_forge_lines() {
        let s = clean(&"é".repeat(1000));
        assert!(s.len() <= MAX_MESSAGE + 3);
        assert!(s.ends_with('…'));
        assert_eq!(clean("short"), "short");
        assert_eq!(
            clean("down\n2026-12-06T00:00:00Z INFO forged\x1b[31m"),
            "down\\n2026-12-06T00:00:00Z INFO forged\\u{1b}[31m"
        );
    }

    #[test]
    fn mib_formatting() {
        assert_eq!(mib(64 * 1024 * 1024), "64 MiB");
        assert_eq!(mib(1000), "1000 bytes");
    }
}
