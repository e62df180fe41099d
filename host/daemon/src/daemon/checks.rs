//! The daemon's set of running checks: builds a runner for each `vrrp_script` (a keepalived
//! `script` or a wasm plugin), starts its scheduler task, and applies reloads keeping the
//! rise/fall counters of checks whose definition did not change.

use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::checks::{self, CheckSchedule, Failure, RunReport, RunResult, Runner, ScriptCommand};
use crate::control::StatusBoard;
use crate::daemon::ProgramSettings;
use crate::programs;
use wasmalived_config::{FatalAction, GlobalDefs, ScriptKind, VrrpScript};
use wasmalived_plugin_host::reload::{CheckHandle as PluginHandle, PluginRegistry, PluginSource};
use wasmalived_plugin_host::{self as plugins, Runtime, Verdict};

/// Why a check could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The script was refused (missing, unsafe permissions, unknown user, ...).
    #[error("vrrp_script {check}: {source}")]
    Script {
        /// Check name.
        check: String,
        /// Cause.
        source: checks::ScriptError,
    },
    /// The script's user could not be resolved.
    #[error("vrrp_script {check}: {source}")]
    User {
        /// Check name.
        check: String,
        /// Cause.
        source: programs::ProgramSetupError,
    },
    /// The plugin could not be found or loaded (file, contract, grants, compile).
    #[error("vrrp_script {check}: plugin {plugin}: {source}")]
    Plugin {
        /// Check name.
        check: String,
        /// The plugin file, or the name and the directories it is looked up in.
        plugin: PluginSource,
        /// Cause.
        source: plugins::PluginError,
    },
    /// The schedule is invalid.
    #[error("vrrp_script {check}: {source}")]
    Schedule {
        /// Check name.
        check: String,
        /// Cause.
        source: checks::ScheduleError,
    },
}

/// What checks need from the daemon.
#[derive(Clone)]
pub struct CheckContext {
    /// The plugin runtime.
    pub runtime: Runtime,
    /// Which checks use which plugin file (hot reload swaps them).
    pub registry: PluginRegistry,
    /// Status board for verdicts and measurements.
    pub board: StatusBoard,
    /// `on_fatal stop_daemon`: the name of the check asking the daemon to stop.
    pub stop_daemon: mpsc::Sender<String>,
    /// Cancels every check task.
    pub cancel: CancellationToken,
    /// Tracks check tasks for shutdown.
    pub tracker: TaskTracker,
}

struct Entry {
    def: VrrpScript,
    handle: checks::CheckHandle,
    /// The plugin handle registered for hot reload (released with the check).
    plugin: Option<PluginHandle>,
}

/// The running checks, by name.
#[derive(Default)]
pub struct CheckSet {
    entries: HashMap<String, Entry>,
    /// The settings the running scripts were vetted under.
    programs: Option<ProgramSettings>,
}

impl CheckSet {
    /// The update channel of check `name`, if it runs.
    pub fn subscribe(
        &self,
        name: &str,
    ) -> Option<tokio::sync::watch::Receiver<checks::CheckUpdate>> {
        self.entries.get(name).map(|e| e.handle.subscribe())
    }

    /// Bring the running set in line with `wanted` (the scripts some instance or group
    /// tracks): start new ones, update changed ones (counters kept when the command is the
    /// same), stop removed ones. A check that cannot be (re)built is reported and, if it was
    /// running, keeps running with its old definition.
    pub async fn apply(
        &mut self,
        wanted: &[VrrpScript],
        global: &GlobalDefs,
        ctx: &CheckContext,
    ) -> Vec<CheckError> {
        let mut errors = Vec::new();
        let programs = ProgramSettings::of(global);
        let names: Vec<&str> = wanted.iter().map(|s| s.name.as_str()).collect();
        let removed: Vec<String> = self
            .entries
            .keys()
            .filter(|name| !names.contains(&name.as_str()))
            .cloned()
            .collect();
        for name in removed {
            if let Some(entry) = self.entries.remove(&name) {
                info!(check = %name, "check removed");
                entry.handle.stop();
                release(&entry.plugin, ctx);
                ctx.board.untrack_check(&name);
            }
        }
        for def in wanted {
            if let Some(entry) = self.entries.get(&def.name) {
                // A change of enable_script_security or script_user re-vets every script
                // (turning security on stops a running script that is now refused).
                let revet = self.programs.as_ref() != Some(&ProgramSettings::of(global))
                    && matches!(def.kind, ScriptKind::Exec { .. });
                if entry.def.same_definition(def) && !revet {
                    continue;
                }
            }
            let (runner, plugin) = match build_runner(def, global, ctx).await {
                Ok(built) => built,
                Err(err @ CheckError::Script { .. }) if self.entries.contains_key(&def.name) => {
                    // The script is refused now (e.g. enable_script_security turned on): it
                    // must not keep running under the old rule. Its trackers see it down.
                    if let Some(entry) = self.entries.remove(&def.name) {
                        entry.handle.stop();
                        release(&entry.plugin, ctx);
                        ctx.board.untrack_check(&def.name);
                    }
                    errors.push(err);
                    continue;
                }
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            let schedule = schedule_of(def);
            match self.entries.get_mut(&def.name) {
                Some(entry) => {
                    let same_command = entry.def.kind == def.kind && entry.def.user == def.user;
                    match entry.handle.update(schedule, runner, same_command) {
                        Ok(()) => {
                            info!(check = %def.name, same_command, "check updated");
                            run_on_swap(plugin.as_ref(), &entry.handle, ctx);
                            entry.def = def.clone();
                            release(&entry.plugin, ctx);
                            entry.plugin = plugin;
                        }
                        Err(source) => {
                            release(&plugin, ctx);
                            errors.push(CheckError::Schedule {
                                check: def.name.clone(),
                                source,
                            });
                        }
                    }
                }
                None => match checks::spawn_check(
                    schedule,
                    runner,
                    &home_of(def, ctx),
                    &ctx.cancel,
                    &ctx.tracker,
                ) {
                    Ok(handle) => {
                        ctx.board.track_check(&def.name, handle.subscribe());
                        run_on_swap(plugin.as_ref(), &handle, ctx);
                        self.entries.insert(
                            def.name.clone(),
                            Entry {
                                def: def.clone(),
                                handle,
                                plugin,
                            },
                        );
                    }
                    Err(source) => {
                        release(&plugin, ctx);
                        errors.push(CheckError::Schedule {
                            check: def.name.clone(),
                            source,
                        });
                    }
                },
            }
        }
        self.programs = Some(programs);
        errors
    }
}

/// Run the check at once whenever hot reload swaps a new version of its plugin in, instead
/// of at its next interval. The forwarding task ends when the plugin handle is dropped (the
/// check was removed or got another plugin) or the daemon stops.
fn run_on_swap(plugin: Option<&PluginHandle>, check: &checks::CheckHandle, ctx: &CheckContext) {
    let Some(plugin) = plugin else { return };
    let mut swaps = plugin.swaps();
    let (check, cancel) = (check.clone(), ctx.cancel.clone());
    ctx.tracker.spawn(async move {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                changed = swaps.changed() => {
                    if changed.is_err() || check.run_now().is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// Unregister a check's plugin handle from hot reload.
fn release(plugin: &Option<PluginHandle>, ctx: &CheckContext) {
    if let Some(handle) = plugin {
        ctx.registry.release(handle);
    }
}

/// Where a check's task lives: a plugin check's on a plugin executor thread, so its runs
/// execute inline there (`checks::scheduler`, [`checks::Home`]).
fn home_of(def: &VrrpScript, ctx: &CheckContext) -> checks::Home {
    match def.kind {
        ScriptKind::Plugin { .. } => checks::Home::PluginExecutor(ctx.runtime.clone()),
        ScriptKind::Exec { .. } => checks::Home::Reactor,
    }
}

fn schedule_of(def: &VrrpScript) -> CheckSchedule {
    CheckSchedule {
        name: def.name.clone(),
        interval: def.interval,
        timeout: def.timeout,
        rise: def.rise,
        fall: def.fall,
        init_fail: def.init_fail,
    }
}

/// Build the runner of one check: a keepalived script or a plugin (with the plugin's handle,
/// registered for hot reload).
pub async fn build_runner(
    def: &VrrpScript,
    global: &GlobalDefs,
    ctx: &CheckContext,
) -> Result<(Runner, Option<PluginHandle>), CheckError> {
    match &def.kind {
        ScriptKind::Exec { argv } => {
            let run_as =
                programs::run_as(def.user.as_ref(), global).map_err(|source| CheckError::User {
                    check: def.name.clone(),
                    source,
                })?;
            let cmd = ScriptCommand::prepare(argv.clone(), run_as, global.enable_script_security)
                .map_err(|source| CheckError::Script {
                check: def.name.clone(),
                source,
            })?;
            Ok((Arc::new(cmd).runner(), None))
        }
        ScriptKind::Plugin {
            plugin,
            params,
            grants,
            on_fatal,
        } => {
            let source = PluginSource::of(plugin, &global.plugin_path);
            let (runtime, registry) = (ctx.runtime.clone(), ctx.registry.clone());
            // Remediation commands run as the daemon's default script user unless they name
            // one (the plugin host resolves and vets them when it loads the check).
            let mut grants2 = grants.clone();
            let default_user = programs::default_user_name(global);
            for cmd in &mut grants2.remediation {
                if cmd.user.is_none() {
                    cmd.user.clone_from(&default_user);
                }
            }
            let (name, source2) = (def.name.clone(), source.clone());
            let handle = tokio::task::spawn_blocking(move || {
                registry.load(&runtime, &name, &source2, &grants2)
            })
            .await
            .map_err(|join| CheckError::Plugin {
                check: def.name.clone(),
                plugin: source.clone(),
                source: plugins::PluginError::Engine(format!("loader task failed: {join}")),
            })?
            .map_err(|err| CheckError::Plugin {
                check: def.name.clone(),
                plugin: source.clone(),
                source: err,
            })?;
            info!(check = %def.name, plugin = %handle.identity(), "plugin loaded");
            let params = Arc::new(params.clone());
            let timeout = def.timeout;
            let stop = (*on_fatal == FatalAction::StopDaemon).then(|| ctx.stop_daemon.clone());
            let name = def.name.clone();
            let registered = handle.clone();
            let runner: Runner = Arc::new(move || {
                let run = handle.run(&params, timeout);
                let stop = stop.clone();
                let name = name.clone();
                async move {
                    let outcome = run.await;
                    let report = report_of(outcome);
                    match &report.result {
                        RunResult::Fatal(reason) => {
                            error!(check = %name, plugin = %report.runner, %reason, "fatal verdict: standing down");
                            if let Some(stop) = &stop {
                                let _ = stop.try_send(name.clone());
                            }
                        }
                        RunResult::Failure(failure) => {
                            warn!(check = %name, plugin = %report.runner, kind = failure.kind(), reason = %failure, "check failed");
                        }
                        RunResult::Success => {}
                    }
                    report
                }
                .boxed()
            });
            Ok((runner, Some(registered)))
        }
    }
}

/// A plugin run's outcome as the scheduler's typed report.
fn report_of(outcome: plugins::RunOutcome) -> RunReport {
    let result = match outcome.result {
        Ok(Verdict::Ok) => RunResult::Success,
        Ok(Verdict::Fatal(reason)) => RunResult::Fatal(reason),
        Ok(Verdict::Fail(reason)) if outcome.denied.is_empty() => {
            RunResult::Failure(Failure::Verdict(reason))
        }
        Ok(Verdict::Fail(reason)) => RunResult::Failure(Failure::Denied {
            reason,
            denied: outcome.denied,
        }),
        Err(aborted) => RunResult::Failure(Failure::Aborted(aborted)),
    };
    RunReport {
        result,
        runner: Arc::from(outcome.identity),
        message: outcome.message,
        measurements: outcome.measurements,
        wake_on_exit: outcome.wake.pids,
        wake_on_change: outcome.wake.paths,
        wake_on_disconnect: outcome.wake.addresses,
    }
}
