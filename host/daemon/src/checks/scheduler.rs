//! The check scheduler: one tokio task per check, running it every `interval` with a
//! `timeout`, feeding results through [`CheckStatus`] and publishing [`CheckUpdate`]s on a
//! `watch` channel (principle 7: a slow check only makes its own verdict late).
//!
//! keepalived's schedule (`keepalived/vrrp/vrrp_scheduler.c`):
//! - `vrrp_init_script`: every script runs once at start-up (`thread_add_event`), then
//! - `vrrp_script_thread`: every `interval` the next tick is armed first; if the previous run
//!   is still going ("already running" / "being timed out") this run is **skipped**, not
//!   queued;
//! - `system_call_script(…, vscript->timeout ? vscript->timeout : vscript->interval, …)`: the
//!   timeout defaults to the interval; a timed-out run counts as a failure
//!   (`vrrp_script_child_thread`, "timed_out").
//!
//! Here a run that ends exactly when the next tick is due is finished first (result, then
//! tick), so `timeout == interval` never skips; keepalived additionally waits for the killed
//! script to be reaped, which makes that tick a skip there.
//!
//! The run itself is an injected [`Runner`], so `script` checks ([`super::script`]) and wasm
//! plugins plug in the same way; dropping a run's future must cancel it (the script runner
//! kills its process group). Each run reports a [`RunReport`]: a [`RunResult`] whose
//! [`Failure`] says by kind why a run failed (a script's exit, a plugin trap, timeout or
//! memory limit, a plugin `fail`, a denied capability), never a string to match.
//!
//! Each finished run is also counted by result kind and its latency recorded
//! ([`super::latency`]); both are monotone for the check's life (a reload keeps them) and
//! published with every update, for `status` and the metrics endpoint.
//!
//! Where the task lives ([`Home`]): a plugin check's task is placed on a plugin executor
//! thread, so its timer fires there and each run executes inline on that thread — no thread
//! hand-off per run. A script check's stays on the daemon's runtime (its runs are child
//! processes). Subscribers are woken only when the state changes (the VRRP driver follows
//! every check): the counters, latency and last report of every run are in the value for
//! whoever reads it (`status`, metrics), but a run that changes nothing wakes nobody.
//!
//! Event-driven runs ([`super::wake`]): a run may name processes whose exit should run the
//! check again at once ([`RunReport::wake_on_exit`]). The task holds their pidfds until the
//! next run ends; when one fires and no run is in flight, the check runs early — within the
//! early-run rate limit ([`super::wake::EarlyRuns`]) — and the interval restarts from that
//! run. Early runs are counted (`woken`). A run may likewise name paths whose change should
//! run it early ([`RunReport::wake_on_change`]); their inotify watch stays armed across runs
//! that name the same paths, so a change made while a run is in flight wakes it again after.
//! A run may name TCP servers too ([`RunReport::wake_on_disconnect`]): the task holds a
//! connection to each, kept across runs that name the same servers, and a connection the
//! server closes or resets runs the check early, within the same rate limit.
//!
//! Reload: [`CheckHandle::update`] replaces the schedule and runner in place; with
//! `same_command` the rise/fall state carries over ([`CheckStatus::carry_over`], keepalived
//! `clear_diff_script`), otherwise the check starts afresh (Init) and runs at once.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::latency::RunLatency;
use super::wake::{EarlyRuns, PathWatch, PidWatch, SocketWatch};
use wasmalived_plugin_host::{RunFailure, WatchedPath};
use wasmalived_proto::track::{CheckState, CheckStatus, CheckTransition, Outcome, StatusError};
use wasmalived_sys::process::Exit;

/// Why one run failed, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// A script exited non-zero, or a signal killed it.
    Exit(Exit),
    /// A script could not start.
    Spawn(String),
    /// The run passed the check's `timeout` (the scheduler's clock; a script's process group
    /// is killed, a plugin's run abandoned).
    Timeout(Duration),
    /// A plugin run ended without a verdict: trap, memory limit, stack overflow, its own
    /// timeout, a full instance pool.
    Aborted(RunFailure),
    /// The plugin's `fail` verdict.
    Verdict(String),
    /// The plugin's `fail` verdict after the host refused it a capability use: most likely a
    /// missing grant (`allow_http`, `allow_tcp`, `remediation`).
    Denied {
        /// The plugin's reason.
        reason: String,
        /// What was refused.
        denied: Vec<String>,
    },
}

impl Failure {
    /// A short stable name of the kind: `exit`, `spawn`, `timeout`, `trap`, `memory`,
    /// `stack_overflow`, `host_resources`, `pool_exhausted`, `host`, `fail`, `denied`.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Exit(_) => "exit",
            Failure::Spawn(_) => "spawn",
            Failure::Timeout(_) => "timeout",
            Failure::Aborted(failure) => failure.kind(),
            Failure::Verdict(_) => "fail",
            Failure::Denied { .. } => "denied",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Exit(exit) => exit.fmt(f),
            Failure::Spawn(why) => f.write_str(why),
            Failure::Timeout(after) => write!(f, "timed out after {after:?}"),
            Failure::Aborted(failure) => failure.fmt(f),
            Failure::Verdict(reason) => f.write_str(reason),
            Failure::Denied { reason, denied } => {
                write!(f, "{reason} (denied: {})", denied.join(", "))
            }
        }
    }
}

/// What one run of a check says about health.
#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    /// Exit 0 / verdict `ok`.
    Success,
    /// Unhealthy; counts towards `fall`.
    Failure(Failure),
    /// Verdict `fatal` (stop-self), with its reason.
    Fatal(String),
}

impl RunResult {
    /// A short stable name of the kind: `ok`, `fatal`, or the failure's
    /// ([`Failure::kind`]). What the results are counted by.
    pub fn kind(&self) -> &'static str {
        match self {
            RunResult::Success => "ok",
            RunResult::Failure(failure) => failure.kind(),
            RunResult::Fatal(_) => "fatal",
        }
    }
}

impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunResult::Success => f.write_str("ok"),
            RunResult::Failure(failure) => write!(f, "fail: {failure}"),
            RunResult::Fatal(reason) => write!(f, "fatal: {reason}"),
        }
    }
}

/// Everything one run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The verdict.
    pub result: RunResult,
    /// What ran: a plugin's `name@digest` (it changes with hot reload), a script's command.
    pub runner: Arc<str>,
    /// A plugin's short message.
    pub message: Option<String>,
    /// A plugin's named measurements.
    pub measurements: Vec<(String, f64)>,
    /// Processes whose exit should run the check again at once (a plugin's
    /// `wake.on-exit`); empty: the check runs at its interval only.
    pub wake_on_exit: Vec<u32>,
    /// Paths whose change should run the check again at once (a plugin's `wake.on-change`,
    /// inside its granted directories); empty: none.
    pub wake_on_change: Vec<WatchedPath>,
    /// TCP servers whose closing or resetting a connection the daemon holds to them should
    /// run the check again at once (a plugin's `wake.on-disconnect`, within its `allow_tcp`
    /// grants); empty: none.
    pub wake_on_disconnect: Vec<SocketAddr>,
}

impl RunReport {
    /// A report with only a result.
    pub fn new(runner: Arc<str>, result: RunResult) -> Self {
        RunReport {
            result,
            runner,
            message: None,
            measurements: Vec::new(),
            wake_on_exit: Vec::new(),
            wake_on_change: Vec::new(),
            wake_on_disconnect: Vec::new(),
        }
    }
}

/// One run of a check. Called once per run; dropping the returned future cancels the run.
pub type Runner = Arc<dyn Fn() -> BoxFuture<'static, RunReport> + Send + Sync>;

/// When and how a check runs, and its rise/fall parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSchedule {
    /// `vrrp_script` name.
    pub name: String,
    /// Time between run starts (keepalived default 1 s).
    pub interval: Duration,
    /// Time after which a run counts as failed; zero means "same as `interval`"
    /// (keepalived's default).
    pub timeout: Duration,
    /// Consecutive successes to come up.
    pub rise: u32,
    /// Consecutive failures to go down.
    pub fall: u32,
    /// Start down instead of Init.
    pub init_fail: bool,
}

impl CheckSchedule {
    /// The timeout in force: `timeout`, or `interval` when `timeout` is zero.
    pub fn effective_timeout(&self) -> Duration {
        if self.timeout.is_zero() {
            self.interval
        } else {
            self.timeout
        }
    }

    fn validate(&self) -> Result<CheckStatus, ScheduleError> {
        if self.interval.is_zero() {
            return Err(ScheduleError::ZeroInterval {
                check: self.name.clone(),
            });
        }
        CheckStatus::new(self.rise, self.fall, self.init_fail).map_err(|source| {
            ScheduleError::Status {
                check: self.name.clone(),
                source,
            }
        })
    }
}

/// Errors from the scheduler API.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// `interval 0`.
    #[error("check {check}: interval must be greater than zero")]
    ZeroInterval {
        /// Check name.
        check: String,
    },
    /// Bad rise/fall.
    #[error("check {check}: {source}")]
    Status {
        /// Check name.
        check: String,
        /// What is wrong.
        #[source]
        source: StatusError,
    },
    /// The check task has ended (cancelled).
    #[error("check {check}: its task has stopped")]
    Stopped {
        /// Check name.
        check: String,
    },
}

/// What a check publishes after each run (and after a reload that changes it).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckUpdate {
    /// Check name.
    pub check: Arc<str>,
    /// State after this run — what priorities are computed from.
    pub state: CheckState,
    /// Set when this run changed the state kind.
    pub transition: Option<CheckTransition>,
    /// The latest finished run (`None` before the first).
    pub last: Option<RunReport>,
    /// When this update was made.
    pub at: Instant,
    /// Runs finished since the task started.
    pub runs: u64,
    /// Ticks skipped because the previous run was still going.
    pub skipped: u64,
    /// Runs started early because a watched process exited or a watched path changed
    /// ([`super::wake`]).
    pub woken: u64,
    /// Runs finished, by [`RunResult::kind`].
    pub results: BTreeMap<&'static str, u64>,
    /// How long the runs took.
    pub latency: RunLatency,
    /// The latest run that did not succeed (`fail: …` or `fatal: …`, with the plugin's
    /// message), kept after later successes; `None` if none failed since the check (or its
    /// command) started.
    pub last_error: Option<String>,
}

enum Control {
    Update {
        schedule: CheckSchedule,
        status: Option<CheckStatus>,
        runner: Runner,
    },
    /// Run now (a new plugin version was swapped in), or as soon as the run in flight ends.
    RunNow,
}

/// The daemon's handle on one check task.
#[derive(Debug, Clone)]
pub struct CheckHandle {
    name: Arc<str>,
    control: mpsc::UnboundedSender<Control>,
    updates: watch::Receiver<CheckUpdate>,
    cancel: CancellationToken,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Control::Update { schedule, .. } => f
                .debug_struct("Update")
                .field("schedule", schedule)
                .finish_non_exhaustive(),
            Control::RunNow => f.write_str("RunNow"),
        }
    }
}

impl CheckHandle {
    /// Check name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A receiver of this check's updates: `borrow()` gives the current one, `changed()`
    /// waits for the next.
    pub fn subscribe(&self) -> watch::Receiver<CheckUpdate> {
        let mut rx = self.updates.clone();
        rx.mark_unchanged();
        rx
    }

    /// The latest update.
    pub fn current(&self) -> CheckUpdate {
        self.updates.borrow().clone()
    }

    /// Replace schedule and runner (config reload). With `same_command` (same name and same
    /// command/plugin definition, as the daemon decides) the rise/fall state carries over onto
    /// the new `rise`/`fall`; otherwise the check restarts in its initial state and runs at
    /// once.
    pub fn update(
        &self,
        schedule: CheckSchedule,
        runner: Runner,
        same_command: bool,
    ) -> Result<(), ScheduleError> {
        let fresh = schedule.validate()?;
        let status = (!same_command).then_some(fresh);
        self.control
            .send(Control::Update {
                schedule,
                status,
                runner,
            })
            .map_err(|_| ScheduleError::Stopped {
                check: self.name.to_string(),
            })
    }

    /// Run the check now instead of at its next tick (a new plugin version was swapped in);
    /// if a run is in flight, as soon as it ends. The interval restarts from that run.
    pub fn run_now(&self) -> Result<(), ScheduleError> {
        self.control
            .send(Control::RunNow)
            .map_err(|_| ScheduleError::Stopped {
                check: self.name.to_string(),
            })
    }

    /// Stop this check (its running script, if any, is killed).
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

/// Where a check's task runs.
#[derive(Clone, Default)]
pub enum Home {
    /// On the caller's runtime (script checks: their runs are child processes).
    #[default]
    Reactor,
    /// On a plugin executor thread, so that each plugin run executes inline there.
    PluginExecutor(wasmalived_plugin_host::Runtime),
}

impl fmt::Debug for Home {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Home::Reactor => "Reactor",
            Home::PluginExecutor(_) => "PluginExecutor",
        })
    }
}

/// Spawn the task running one check at `home`, tracked by `tracker`; it stops when `cancel` (or
/// [`CheckHandle::stop`]) fires. Returns the handle with which the daemon subscribes to
/// updates and applies reloads.
pub fn spawn_check(
    schedule: CheckSchedule,
    runner: Runner,
    home: &Home,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<CheckHandle, ScheduleError> {
    let status = schedule.validate()?;
    let name: Arc<str> = Arc::from(schedule.name.as_str());
    let (tx, rx) = watch::channel(CheckUpdate {
        check: Arc::clone(&name),
        state: status.state(),
        transition: None,
        last: None,
        at: Instant::now(),
        runs: 0,
        skipped: 0,
        woken: 0,
        results: BTreeMap::new(),
        latency: RunLatency::default(),
        last_error: None,
    });
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let cancel = cancel.child_token();
    let task = CheckTask {
        name: Arc::clone(&name),
        schedule,
        runner,
        status,
        tx: Arc::new(tx),
        runs: 0,
        skipped: 0,
        woken: 0,
        last: None,
        results: BTreeMap::new(),
        latency: RunLatency::default(),
        last_error: None,
    };
    let span = tracing::info_span!("check", name = %name);
    // A panic in the check task (a bug; runners never panic on a failing check) must not
    // freeze the check's last state: it is published as down, with the panic as the reason,
    // and the check's trackers react as to any failure.
    let last_words = Arc::clone(&task.tx);
    let run = std::panic::AssertUnwindSafe(task.run(control_rx, cancel.clone()))
        .catch_unwind()
        .map(move |ended| {
            if ended.is_err() {
                tracing::error!("check task panicked: the check counts as down");
                last_words.send_modify(|u| {
                    u.state = CheckState::Down;
                    u.transition = None;
                    u.last = Some(RunReport::new(
                        Arc::clone(&u.check),
                        RunResult::Failure(Failure::Spawn("check task panicked".into())),
                    ));
                });
            }
        });
    let run = tracker.track_future(run.instrument(span));
    match home {
        Home::Reactor => drop(tokio::spawn(run)),
        Home::PluginExecutor(runtime) => drop(runtime.spawn_resident(run)),
    }
    Ok(CheckHandle {
        name,
        control: control_tx,
        updates: rx,
        cancel,
    })
}

type RunFuture =
    Pin<Box<dyn Future<Output = Result<RunReport, tokio::time::error::Elapsed>> + Send>>;

/// The run in flight: its future, its timeout and when it started.
struct Running {
    run: RunFuture,
    timeout: Duration,
    started: Instant,
}

/// An early run is asked for now: bring `next_tick` forward to when the rate limit lets it
/// start, unless the interval's tick comes first (then `early_due` stays as it was). Returns
/// how long the early run waits (for the log).
fn bring_forward(early: &mut EarlyRuns, next_tick: &mut Instant, early_due: &mut bool) -> Duration {
    let now = Instant::now();
    let at = early.earliest(now);
    if at < *next_tick {
        *next_tick = at;
        *early_due = true;
    }
    at.saturating_duration_since(now)
}

struct CheckTask {
    name: Arc<str>,
    schedule: CheckSchedule,
    runner: Runner,
    status: CheckStatus,
    tx: Arc<watch::Sender<CheckUpdate>>,
    runs: u64,
    skipped: u64,
    woken: u64,
    last: Option<RunReport>,
    results: BTreeMap<&'static str, u64>,
    latency: RunLatency,
    last_error: Option<String>,
}

impl CheckTask {
    async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        cancel: CancellationToken,
    ) {
        // First run at once (keepalived vrrp_init_script: thread_add_event).
        let mut next_tick = Instant::now();
        let mut running: Option<Running> = None;
        // A `RunNow` that arrived while a run was in flight.
        let mut run_after = false;
        let mut control_open = true;
        // The processes the last run asked to be woken by, and the early-run rate limit.
        let mut watch = PidWatch::default();
        // The paths the last runs asked to be woken by (kept while they name the same ones).
        let mut paths = PathWatch::default();
        // The servers the last runs asked to be woken by (kept while they name the same ones).
        let mut servers = SocketWatch::default();
        let mut early = EarlyRuns::new(self.schedule.interval, Instant::now());
        // The next tick is an early run (a watched process exited).
        let mut early_due = false;
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                msg = control.recv(), if control_open => match msg {
                    Some(Control::Update { schedule, status, runner }) => {
                        if status.is_some() {
                            // Another command: what the old one watched means nothing now.
                            watch = PidWatch::default();
                            paths = PathWatch::default();
                            servers = SocketWatch::default();
                        }
                        if schedule.interval != self.schedule.interval {
                            early = EarlyRuns::new(schedule.interval, Instant::now());
                        }
                        self.reconfigure(schedule, status, runner, &mut running, &mut next_tick);
                    }
                    Some(Control::RunNow) if running.is_some() => run_after = true,
                    Some(Control::RunNow) => next_tick = Instant::now(),
                    None => control_open = false,
                },
                result = poll_run(&mut running) => {
                    if let Some(finished) = running.take() {
                        self.record(result, finished.timeout, finished.started.elapsed());
                        // Each run says afresh what should wake it.
                        let pids = self.last.as_ref().map_or(&[][..], |r| &r.wake_on_exit[..]);
                        if pids != watch.pids() {
                            watch = PidWatch::arm(pids);
                        }
                        let changes = self.last.as_ref().map_or(&[][..], |r| &r.wake_on_change[..]);
                        if !paths.is_current(changes) {
                            paths = PathWatch::arm(changes);
                        }
                        let addresses = self.last.as_ref().map_or(&[][..], |r| &r.wake_on_disconnect[..]);
                        if !servers.is_current(addresses) {
                            servers = SocketWatch::arm(addresses);
                        }
                    }
                    if std::mem::take(&mut run_after) {
                        next_tick = Instant::now();
                    }
                }
                pid = watch.fired(), if running.is_none() && !early_due => {
                    // Disarmed until the early run says again what to watch.
                    watch = PidWatch::default();
                    let delay = bring_forward(&mut early, &mut next_tick, &mut early_due);
                    tracing::debug!(pid, ?delay, "watched process exited: running the check early");
                }
                path = paths.fired(), if running.is_none() && !early_due => {
                    // Stays armed: a change while the early run is in flight wakes it again.
                    let delay = bring_forward(&mut early, &mut next_tick, &mut early_due);
                    tracing::debug!(path, ?delay, "watched path changed: running the check early");
                }
                gone = servers.fired(), if running.is_none() && !early_due => {
                    // The other servers stay watched; this one is connected to again once a
                    // run names it.
                    let delay = bring_forward(&mut early, &mut next_tick, &mut early_due);
                    tracing::debug!(server = %gone.address, reason = %gone.reason, ?delay,
                        "watched server dropped its connection: running the check early");
                }
                () = tokio::time::sleep_until(next_tick) => {
                    // keepalived vrrp_script_thread: arm the next tick before anything else.
                    next_tick = Instant::now() + self.schedule.interval;
                    if std::mem::take(&mut early_due) {
                        early.take(Instant::now());
                        self.woken += 1;
                    }
                    if running.is_some() {
                        self.skipped += 1;
                        tracing::warn!(skipped = self.skipped, "previous run still going, skipping this run");
                    } else {
                        let timeout = self.schedule.effective_timeout();
                        let fut = (self.runner)();
                        running = Some(Running {
                            run: Box::pin(tokio::time::timeout(timeout, fut)),
                            timeout,
                            started: Instant::now(),
                        });
                    }
                }
            }
        }
        // Dropping `running` here cancels (kills) an in-flight run.
        tracing::debug!("check stopped");
    }

    fn record(
        &mut self,
        result: Result<RunReport, tokio::time::error::Elapsed>,
        timeout: Duration,
        took: Duration,
    ) {
        let report = result.unwrap_or_else(|_| {
            let runner = self
                .last
                .as_ref()
                .map_or_else(|| Arc::clone(&self.name), |r| Arc::clone(&r.runner));
            RunReport::new(runner, RunResult::Failure(Failure::Timeout(timeout)))
        });
        let outcome = match &report.result {
            RunResult::Success => Outcome::Success,
            RunResult::Failure(_) => Outcome::Failure,
            RunResult::Fatal(reason) => Outcome::Fatal(reason.clone()),
        };
        if self.last.as_ref().map(|l| &l.result) != Some(&report.result) {
            tracing::debug!(result = %report.result, "check result changed");
        }
        self.runs += 1;
        *self.results.entry(report.result.kind()).or_default() += 1;
        self.latency.record(took);
        if report.result != RunResult::Success {
            self.last_error = Some(match &report.message {
                Some(message) => format!("{} ({message})", report.result),
                None => report.result.to_string(),
            });
        }
        let transition = self.status.record(outcome);
        if let Some(t) = &transition {
            tracing::info!(from = %t.from, to = %t.to, reason = %report.result, "check state changed");
        }
        self.last = Some(report);
        self.publish(transition);
    }

    fn reconfigure(
        &mut self,
        schedule: CheckSchedule,
        status: Option<CheckStatus>,
        runner: Runner,
        running: &mut Option<Running>,
        next_tick: &mut Instant,
    ) {
        let before = self.status.state();
        match status {
            Some(fresh) => {
                // A different check under the same name: drop (kill) the old run, start over.
                *running = None;
                self.status = fresh;
                self.last = None;
                self.last_error = None;
                *next_tick = Instant::now();
            }
            None => {
                match self.status.carry_over(schedule.rise, schedule.fall) {
                    Ok(carried) => self.status = carried,
                    Err(e) => {
                        // Unreachable: `update` validated rise/fall.
                        tracing::error!("cannot carry check state over: {e}");
                    }
                }
                if schedule.interval != self.schedule.interval {
                    *next_tick = Instant::now() + schedule.interval;
                }
            }
        }
        tracing::info!(interval = ?schedule.interval, timeout = ?schedule.effective_timeout(),
            rise = schedule.rise, fall = schedule.fall, "check reconfigured");
        self.schedule = schedule;
        self.runner = runner;
        let after = self.status.state();
        let transition = (before.kind() != after.kind()).then_some(CheckTransition {
            from: before,
            to: after,
        });
        self.publish(transition);
    }

    /// Publish the check's update; wake the subscribers only if the state changed.
    fn publish(&self, transition: Option<CheckTransition>) {
        let update = CheckUpdate {
            check: Arc::clone(&self.name),
            state: self.status.state(),
            transition,
            last: self.last.clone(),
            at: Instant::now(),
            runs: self.runs,
            skipped: self.skipped,
            woken: self.woken,
            results: self.results.clone(),
            latency: self.latency.clone(),
            last_error: self.last_error.clone(),
        };
        self.tx.send_if_modified(|current| {
            let wake = update.transition.is_some() || current.state != update.state;
            *current = update;
            wake
        });
    }
}

/// Await the in-flight run, or never if there is none.
async fn poll_run(running: &mut Option<Running>) -> Result<RunReport, tokio::time::error::Elapsed> {
    match running {
        Some(Running { run, .. }) => run.await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// A fake check: each run takes the next planned (duration, result); records start times
    /// (ms since `t0`) and how many runs were dropped before finishing.
    struct Fake {
        t0: Instant,
        plan: Mutex<VecDeque<(u64, RunResult)>>,
        starts: Mutex<Vec<u64>>,
        dropped: AtomicU64,
    }

    struct DropProbe<'a>(&'a AtomicU64, bool);
    impl Drop for DropProbe<'_> {
        fn drop(&mut self) {
            if !self.1 {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    fn fake(plan: Vec<(u64, RunResult)>) -> (Arc<Fake>, Runner) {
        let f = Arc::new(Fake {
            t0: Instant::now(),
            plan: Mutex::new(plan.into()),
            starts: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
        });
        let f2 = Arc::clone(&f);
        let runner: Runner = Arc::new(move || {
            let f = Arc::clone(&f2);
            async move {
                let ms = u64::try_from(f.t0.elapsed().as_millis()).unwrap();
                f.starts.lock().unwrap().push(ms);
                let (dur, result) = f
                    .plan
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or((0, RunResult::Success));
                let mut probe = DropProbe(&f.dropped, false);
                tokio::time::sleep(Duration::from_millis(dur)).await;
                probe.1 = true;
                RunReport::new(Arc::from("fake"), result)
            }
            .boxed()
        });
        (f, runner)
    }

    fn schedule(interval_ms: u64, timeout_ms: u64, rise: u32, fall: u32) -> CheckSchedule {
        CheckSchedule {
            name: "chk".into(),
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            rise,
            fall,
            init_fail: false,
        }
    }

    fn ok() -> (u64, RunResult) {
        (0, RunResult::Success)
    }
    fn ko() -> (u64, RunResult) {
        (0, RunResult::Failure(Failure::Exit(Exit::Code(1))))
    }

    struct Env {
        cancel: CancellationToken,
        tracker: TaskTracker,
        t0: Instant,
    }

    impl Env {
        fn new() -> Env {
            Env {
                cancel: CancellationToken::new(),
                tracker: TaskTracker::new(),
                t0: Instant::now(),
            }
        }
        fn spawn(&self, s: CheckSchedule, r: Runner) -> CheckHandle {
            spawn_check(s, r, &Home::Reactor, &self.cancel, &self.tracker).unwrap()
        }
        /// Let virtual time run until `ms` after the start.
        async fn at(&self, ms: u64) {
            tokio::time::sleep_until(self.t0 + Duration::from_millis(ms)).await;
        }
        async fn shutdown(self) {
            self.cancel.cancel();
            self.tracker.close();
            self.tracker.wait().await;
        }
    }

    /// Samples the state kind half-way between runs.
    async fn states(env: &Env, h: &CheckHandle, interval_ms: u64, n: u64) -> Vec<StateKind> {
        let mut out = Vec::new();
        for i in 0..n {
            env.at(i * interval_ms + interval_ms / 2).await;
            out.push(h.current().state.kind());
        }
        out
    }

    use wasmalived_proto::track::StateKind::{self, Down, Fatal, Init, Up};

    #[tokio::test(start_paused = true)]
    async fn runs_at_start_then_every_interval() {
        let env = Env::new();
        let (f, r) = fake(vec![]);
        let h = env.spawn(schedule(1000, 0, 1, 1), r);
        assert_eq!(h.current().state, CheckState::Init);
        env.at(3500).await;
        assert_eq!(*f.starts.lock().unwrap(), vec![0, 1000, 2000, 3000]);
        let u = h.current();
        assert_eq!((u.runs, u.skipped, u.state), (4, 0, CheckState::Up));
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn results_are_counted_by_kind_with_latency_and_the_last_error() {
        let env = Env::new();
        // Runs of 10, 20, 30 ms; a failure; a run cut off by the 300 ms timeout; a success.
        let (_f, r) = fake(vec![
            (10, RunResult::Success),
            (20, RunResult::Success),
            (30, RunResult::Success),
            (5, RunResult::Failure(Failure::Exit(Exit::Code(1)))),
            (900, RunResult::Success),
            (40, RunResult::Success),
        ]);
        let h = env.spawn(schedule(1000, 300, 1, 3), r);
        env.at(5500).await;
        let u = h.current();
        assert_eq!(u.runs, 6);
        let results: Vec<(&str, u64)> = u.results.iter().map(|(k, n)| (*k, *n)).collect();
        assert_eq!(results, [("exit", 1), ("ok", 4), ("timeout", 1)]);
        assert_eq!(u.latency.count(), 6);
        // The paused clock makes run times exact: the timed-out run counts its timeout.
        assert_eq!(
            u.latency.sum(),
            Duration::from_millis(10 + 20 + 30 + 5 + 300 + 40)
        );
        assert_eq!(u.latency.quantile(0.5), Some(Duration::from_millis(20)));
        assert_eq!(u.latency.quantile(0.99), Some(Duration::from_millis(300)));
        // The latest failure stays after the success that followed it.
        assert_eq!(u.last_error.as_deref(), Some("fail: timed out after 300ms"));
        assert_eq!(u.last.map(|l| l.result), Some(RunResult::Success));
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_check_task_is_published_as_down() {
        let env = Env::new();
        let runner: Runner = Arc::new(|| async { panic!("bug in a runner") }.boxed());
        let h = env.spawn(schedule(1000, 0, 1, 1), runner);
        let mut rx = h.subscribe();
        rx.changed().await.expect("the last words are published");
        let u = rx.borrow().clone();
        assert_eq!(u.state, CheckState::Down);
        assert_eq!(
            u.last.map(|l| l.result),
            Some(RunResult::Failure(Failure::Spawn(
                "check task panicked".into()
            )))
        );
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_is_a_failure_and_cancels_the_run() {
        let env = Env::new();
        let (f, r) = fake(vec![(5000, RunResult::Success)]);
        let h = env.spawn(schedule(10_000, 2000, 1, 1), r);
        env.at(1999).await;
        assert_eq!(h.current().runs, 0);
        env.at(2001).await;
        let u = h.current();
        assert_eq!(
            u.last.map(|l| l.result),
            Some(RunResult::Failure(Failure::Timeout(Duration::from_secs(2))))
        );
        // Init + first failure → down at once (vrrp_script_child_thread, INIT branch).
        assert_eq!(u.state, CheckState::Down);
        assert_eq!(f.dropped.load(Ordering::SeqCst), 1);
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn zero_timeout_means_interval() {
        let env = Env::new();
        let (f, r) = fake(vec![(1500, RunResult::Success), (1500, RunResult::Success)]);
        let h = env.spawn(schedule(1000, 0, 1, 1), r);
        env.at(1001).await;
        let u = h.current();
        assert_eq!(
            u.last.map(|l| l.result),
            Some(RunResult::Failure(Failure::Timeout(Duration::from_secs(1))))
        );
        // The run ended exactly at the tick: result first, then a new run, no skip.
        assert_eq!((u.runs, u.skipped), (1, 0));
        assert_eq!(*f.starts.lock().unwrap(), vec![0, 1000]);
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_still_going_at_the_next_interval_is_skipped() {
        let env = Env::new();
        let (f, r) = fake(vec![(2500, RunResult::Success)]);
        let h = env.spawn(schedule(1000, 5000, 1, 1), r);
        env.at(2900).await;
        let u = h.current();
        assert_eq!((u.runs, u.skipped), (1, 2));
        env.at(3100).await;
        // Not queued: the next run starts at the next tick after the slow one ended.
        assert_eq!(*f.starts.lock().unwrap(), vec![0, 3000]);
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn rise_and_fall_follow_keepalived() {
        let env = Env::new();
        let (_f, r) = fake(vec![ok(), ko(), ko(), ko(), ok(), ok(), ko(), ok(), ok()]);
        let h = env.spawn(schedule(1000, 0, 2, 3), r);
        // ok: first success → up; three failures → down on the third; two successes → up;
        // one failure then success: still up (fall 3).
        assert_eq!(
            states(&env, &h, 1000, 9).await,
            vec![Up, Up, Up, Down, Down, Up, Up, Up, Up]
        );
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn transitions_are_published_with_the_update_that_caused_them() {
        let env = Env::new();
        let (_f, r) = fake(vec![ok(), ko()]);
        let h = env.spawn(schedule(1000, 0, 1, 1), r);
        let mut rx = h.subscribe();
        rx.changed().await.unwrap();
        let u = rx.borrow_and_update().clone();
        assert_eq!(
            u.transition.map(|t| (t.from, t.to)),
            Some((CheckState::Init, CheckState::Up))
        );
        rx.changed().await.unwrap();
        let u = rx.borrow_and_update().clone();
        assert_eq!(u.at - env.t0, Duration::from_secs(1));
        assert!(!u.transition.unwrap().up());
        let last = u.last.unwrap();
        assert_eq!(
            last.result,
            RunResult::Failure(Failure::Exit(Exit::Code(1)))
        );
        assert_eq!(last.result.to_string(), "fail: exited with status 1");
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn init_fail_starts_down_and_needs_rise_successes() {
        let env = Env::new();
        let (_f, r) = fake(vec![]);
        let mut s = schedule(1000, 0, 3, 1);
        s.init_fail = true;
        let h = env.spawn(s, r);
        assert_eq!(h.current().state, CheckState::Down);
        assert_eq!(states(&env, &h, 1000, 3).await, vec![Down, Down, Up]);
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn without_init_fail_one_success_is_enough() {
        let env = Env::new();
        let (_f, r) = fake(vec![]);
        let h = env.spawn(schedule(1000, 0, 3, 1), r);
        assert_eq!(states(&env, &h, 1000, 1).await, vec![Up]);
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_then_recovery_after_rise_successes() {
        let env = Env::new();
        let (_f, r) = fake(vec![
            ok(),
            (0, RunResult::Fatal("nginx gone".into())),
            ok(),
            ok(),
        ]);
        let h = env.spawn(schedule(1000, 0, 2, 5), r);
        assert_eq!(states(&env, &h, 1000, 4).await, vec![Up, Fatal, Fatal, Up]);
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn reload_with_same_command_keeps_counters() {
        let env = Env::new();
        let (_f, r) = fake(vec![ok(), ko(), ko()]);
        let h = env.spawn(schedule(1000, 0, 1, 3), r);
        env.at(2500).await;
        // ok, ko, ko: still up with one failure left (result = rise = 1).
        assert_eq!(h.current().state, CheckState::Up);
        let (f2, r2) = fake(vec![ko()]);
        h.update(schedule(1000, 0, 1, 3), r2, true).unwrap();
        env.at(3500).await;
        // The counter carried over: this one failure brings it down.
        assert_eq!(h.current().state, CheckState::Down);
        // (f2's clock starts at 2500.)
        assert_eq!(*f2.starts.lock().unwrap(), vec![500]);
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn reload_with_new_command_restarts_at_once() {
        let env = Env::new();
        let (f, r) = fake(vec![ok(), (5000, RunResult::Success)]);
        let h = env.spawn(schedule(1000, 10_000, 1, 3), r);
        env.at(1500).await; // second run in flight
        let (f2, r2) = fake(vec![ko()]);
        h.update(schedule(2000, 0, 1, 1), r2, false).unwrap();
        env.at(1600).await;
        // Old run dropped; back to Init, and the new command ran at once: its first failure
        // is the Init → Down transition.
        assert_eq!(f.dropped.load(Ordering::SeqCst), 1);
        let u = h.current();
        assert_eq!(
            u.transition.map(|t| (t.from, t.to)),
            Some((CheckState::Init, CheckState::Down))
        );
        env.at(5900).await;
        // (f2's clock starts at 1500.)
        assert_eq!(*f2.starts.lock().unwrap(), vec![0, 2000, 4000]);
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn run_now_runs_at_once_or_right_after_the_run_in_flight() {
        let env = Env::new();
        // The third run lasts 300 ms, the others none.
        let (f, r) = fake(vec![ok(), ok(), (300, RunResult::Success)]);
        let h = env.spawn(schedule(1000, 0, 1, 1), r);
        env.at(400).await;
        h.run_now().unwrap();
        env.at(1100).await; // the tick at 1000 is rearmed from the run at 400: due at 1400
        assert_eq!(*f.starts.lock().unwrap(), vec![0, 400]);
        env.at(1450).await; // the 1400 run lasts 300 ms: a RunNow now waits for its end
        h.run_now().unwrap();
        env.at(1800).await;
        assert_eq!(*f.starts.lock().unwrap(), vec![0, 400, 1400, 1700]);
        env.at(2750).await;
        assert_eq!(*f.starts.lock().unwrap(), vec![0, 400, 1400, 1700, 2700]);
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn reload_with_new_interval_rearms_the_tick() {
        let env = Env::new();
        let (f, r) = fake(vec![]);
        let h = env.spawn(schedule(1000, 0, 1, 1), r.clone());
        env.at(1500).await;
        h.update(schedule(3000, 0, 1, 1), r, true).unwrap();
        env.at(7000).await;
        assert_eq!(*f.starts.lock().unwrap(), vec![0, 1000, 4500]);
        assert_eq!(h.current().state, CheckState::Up);
        env.shutdown().await;
    }

    /// A runner whose every run succeeds and whose first `naming` runs ask to be woken when
    /// `pid` exits (as a plugin names a process while it sees it); counts runs.
    fn watching(pid: u32, naming: u64) -> (Arc<AtomicU64>, Runner) {
        let runs = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&runs);
        let runner: Runner = Arc::new(move || {
            let before = counter.fetch_add(1, Ordering::SeqCst);
            let mut report = RunReport::new(Arc::from("fake"), RunResult::Success);
            if before < naming {
                report.wake_on_exit = vec![pid];
            }
            async move { report }.boxed()
        });
        (runs, runner)
    }

    /// A PID that runs no process: a child that has exited and been reaped.
    fn gone_pid() -> u32 {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("reap");
        pid
    }

    #[tokio::test]
    async fn a_watched_process_exiting_runs_the_check_at_once() {
        let env = Env::new();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        // Named by the first run only: the run the exit wakes no longer sees the process.
        let (runs, runner) = watching(child.id(), 1);
        // An hour's interval: only the wake can bring a second run within the test.
        let h = env.spawn(schedule(3_600_000, 1000, 1, 1), runner);
        let mut rx = h.subscribe();
        while h.current().runs < 1 {
            rx.changed().await.unwrap();
        }
        assert_eq!(h.current().woken, 0);
        child.kill().expect("kill");
        let woken = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let u = h.current();
                if u.runs >= 2 {
                    return u;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the exit ran the check");
        assert_eq!(woken.woken, 1);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        child.wait().expect("reap");
        env.shutdown().await;
    }

    #[tokio::test]
    async fn a_watched_file_changing_runs_the_check_at_once_and_its_watch_outlives_the_run() {
        let env = Env::new();
        let dir = wasmalived_testkit::TempDir::new("sched-wake-file");
        let fd = std::fs::File::open(dir.path()).expect("open dir");
        let flag = WatchedPath {
            guest_path: "/data/flag".into(),
            dir: Arc::new(std::os::fd::OwnedFd::from(fd)),
            dir_host_path: dir.path().to_path_buf(),
            relative: "flag".into(),
        };
        let runs = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&runs);
        let runner: Runner = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut report = RunReport::new(Arc::from("fake"), RunResult::Success);
            report.wake_on_change = vec![flag.clone()];
            async move { report }.boxed()
        });
        // An hour's interval: only the wakes can bring more runs within the test.
        let h = env.spawn(schedule(3_600_000, 1000, 1, 1), runner);
        for (round, write) in ["maintenance", "again"].into_iter().enumerate() {
            let want = round as u64 + 1;
            runs_reach(&h, want).await;
            std::fs::write(dir.path().join("flag"), write).expect("write the flag");
            tokio::time::timeout(Duration::from_secs(30), runs_reach(&h, want + 1))
                .await
                .expect("the change ran the check");
            assert_eq!(h.current().woken, want, "round {round}");
        }
        env.shutdown().await;
    }

    /// A runner whose every run succeeds and names `server` (as the `tcp` plugin names the
    /// server it reached).
    fn naming_server(server: std::net::SocketAddr) -> Runner {
        Arc::new(move || {
            let mut report = RunReport::new(Arc::from("fake"), RunResult::Success);
            report.wake_on_disconnect = vec![server];
            async move { report }.boxed()
        })
    }

    /// Poll `h` until it has run `n` times (a run that changes no state publishes nothing).
    async fn runs_reach(h: &CheckHandle, n: u64) {
        while h.current().runs < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_watched_server_dropping_its_connection_runs_the_check_at_once() {
        let env = Env::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        // An hour's interval: only the wakes can bring more runs within the test.
        let h = env.spawn(
            schedule(3_600_000, 1000, 1, 1),
            naming_server(listener.local_addr().expect("addr")),
        );
        for round in 1..=2 {
            // The connection the watch holds (again, after the early run named the server).
            let (held, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
                .await
                .expect("the watch connects")
                .expect("accept");
            runs_reach(&h, round).await;
            assert_eq!(h.current().woken, round - 1);
            drop(held);
            tokio::time::timeout(Duration::from_secs(30), runs_reach(&h, round + 1))
                .await
                .expect("the close ran the check");
            assert_eq!(h.current().woken, round, "round {round}");
        }
        env.shutdown().await;
    }

    #[tokio::test]
    async fn a_server_dropping_every_connection_cannot_make_the_check_spin() {
        let env = Env::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let server = listener.local_addr().expect("addr");
        // Accepts and closes every connection at once: each held connection ends as it opens.
        let dropper = tokio::spawn(async move {
            while let Ok((accepted, _)) = listener.accept().await {
                drop(accepted);
            }
        });
        let started = Instant::now();
        let h = env.spawn(schedule(3_600_000, 1000, 1, 1), naming_server(server));
        let burst = u64::from(super::super::wake::EARLY_BURST);
        // It does wake, past the burst: the rate limit, not a missed event, bounds it.
        tokio::time::timeout(Duration::from_secs(30), runs_reach(&h, burst + 3))
            .await
            .expect("the closes ran the check");
        let u = h.current();
        let gap = super::super::wake::MIN_EARLY_GAP;
        let elapsed = started.elapsed();
        // The first run, the burst, then at most one early run per gap of the time elapsed.
        let bound = 1 + burst + 1 + (elapsed.as_millis() / gap.as_millis()) as u64;
        assert!(
            u.runs <= bound,
            "{} runs in {elapsed:?}, at most {bound}",
            u.runs
        );
        assert_eq!(u.woken, u.runs - 1, "every run after the first was early");
        dropper.abort();
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_flapping_process_cannot_make_the_check_spin() {
        // Every run names a process that is already gone: each would wake the check at once.
        let env = Env::new();
        let (runs, runner) = watching(gone_pid(), u64::MAX);
        let h = env.spawn(schedule(3_600_000, 1000, 1, 1), runner);
        env.at(1000).await;
        let u = h.current();
        // The first run, a burst of early runs, then one per gap (100 ms) for the second.
        let gap = super::super::wake::MIN_EARLY_GAP;
        let bound = 1 + u64::from(super::super::wake::EARLY_BURST) + 1000 / gap.as_millis() as u64;
        assert_eq!(runs.load(Ordering::SeqCst), u.runs);
        assert_eq!(u.woken, u.runs - 1, "every run after the first was early");
        assert!(u.runs <= bound, "{} runs in 1 s, at most {bound}", u.runs);
        assert!(
            u.runs >= bound - 1,
            "{} runs in 1 s, expected about {bound}",
            u.runs
        );
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_interval_bounds_early_runs_by_itself() {
        // interval 20 ms < 100 ms: early runs are limited to one per interval after the burst,
        // so a flapping process at most doubles the run rate.
        let env = Env::new();
        let (runs, runner) = watching(gone_pid(), u64::MAX);
        let h = env.spawn(schedule(20, 20, 1, 1), runner);
        env.at(1000).await;
        let u = h.current();
        assert!(u.woken > 0);
        assert!(
            runs.load(Ordering::SeqCst)
                <= 2 * (1000 / 20) + 2 + u64::from(super::super::wake::EARLY_BURST),
            "{} runs in 1 s at interval 20 ms",
            u.runs
        );
        env.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_stops_the_task_and_drops_the_run() {
        let env = Env::new();
        let (f, r) = fake(vec![(60_000, RunResult::Success)]);
        let h = env.spawn(schedule(1000, 100_000, 1, 1), r);
        env.at(500).await;
        h.stop();
        env.tracker.close();
        env.tracker.wait().await;
        assert_eq!(f.dropped.load(Ordering::SeqCst), 1);
        assert!(matches!(
            h.update(schedule(1000, 0, 1, 1), fake(vec![]).1, true),
            Err(ScheduleError::Stopped { .. })
        ));
        assert_eq!(h.current().state.kind(), Init);
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_schedules_are_rejected() {
        let env = Env::new();
        let (_f, r) = fake(vec![]);
        for s in [
            schedule(0, 0, 1, 1),
            schedule(1000, 0, 0, 1),
            schedule(1000, 0, 1, 0),
        ] {
            assert!(spawn_check(s, r.clone(), &Home::Reactor, &env.cancel, &env.tracker).is_err());
        }
        env.shutdown().await;
    }

    #[tokio::test]
    async fn script_runner_plugs_in() {
        // A real process through the scheduler, on the real clock (a paused clock would
        // auto-advance to the timeout while the process runs).
        let env = Env::new();
        let cmd = Arc::new(
            super::super::script::ScriptCommand::prepare(vec!["/bin/false".into()], None, true)
                .unwrap(),
        );
        let h = env.spawn(schedule(1000, 0, 1, 1), cmd.runner());
        let mut rx = h.subscribe();
        rx.changed().await.unwrap();
        let last = rx.borrow().last.clone().unwrap();
        assert_eq!(
            last.result,
            RunResult::Failure(Failure::Exit(Exit::Code(1)))
        );
        assert_eq!(&*last.runner, "/bin/false");
        env.shutdown().await;
    }
}
