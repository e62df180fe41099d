//! keepalived-style notify hooks: `notify_master`, `notify_backup`, `notify_fault`,
//! `notify_stop` and the generic `notify`.
//!
//! keepalived's convention (keepalived.conf(5), "notify"): the state-specific script runs as
//! written; the generic `notify` script gets four extra arguments
//! `TYPE NAME STATE PRIORITY` — `TYPE` is `INSTANCE` or `GROUP`, `STATE` is `MASTER`,
//! `BACKUP`, `FAULT` or `STOP`. Scripts run without a shell.
//!
//! Each instance (or sync group) owns one [`Notifier`]: a queue drained by its own task, so hooks
//! run asynchronously, in order per instance, and never block the protocol. A hook that runs
//! longer than [`NOTIFY_TIMEOUT`] has its process group killed.
//!
//! Every hook is vetted when the configuration is applied ([`NotifyScripts::prepare`],
//! `crate::programs`): it runs as its configured user (else `script_user`, else
//! `keepalived_script`), with `enable_script_security` a hook whose path others can write is
//! refused (it would give them the daemon's root), and it gets a scrubbed environment.

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, warn, Instrument};
use wasmalived_config as config;
use wasmalived_sys::process::ChildCommand;
use wasmalived_sys::program::Program;

use crate::programs;

/// How long a notify hook may run before its process group is killed.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// Hooks queued but not yet started; beyond this, new events are dropped (and logged).
const QUEUE_DEPTH: usize = 64;

/// Whether the hooks belong to an instance or a sync group (the generic script's `$1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    /// A `vrrp_instance`.
    Instance,
    /// A `vrrp_sync_group`.
    Group,
}

impl NotifyKind {
    fn as_arg(self) -> &'static str {
        match self {
            NotifyKind::Instance => "INSTANCE",
            NotifyKind::Group => "GROUP",
        }
    }
}

/// The state a hook reports (the generic script's `$3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyState {
    /// Became Master.
    Master,
    /// Became Backup.
    Backup,
    /// Entered Fault.
    Fault,
    /// The instance stopped (daemon shutdown or instance removed).
    Stop,
    /// Another Master was detected for this VRID (wasmalived extension).
    SplitBrain,
    /// The dual-Master condition is over.
    SplitBrainCleared,
}

impl NotifyState {
    fn as_arg(self) -> &'static str {
        match self {
            NotifyState::Master => "MASTER",
            NotifyState::Backup => "BACKUP",
            NotifyState::Fault => "FAULT",
            NotifyState::Stop => "STOP",
            NotifyState::SplitBrain => "SPLIT_BRAIN",
            NotifyState::SplitBrainCleared => "SPLIT_BRAIN_CLEARED",
        }
    }
}

/// The hooks of one instance or group, each vetted (no shell, its user, scrubbed environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyScripts {
    /// `notify_master`.
    pub master: Option<Program>,
    /// `notify_backup`.
    pub backup: Option<Program>,
    /// `notify_fault`.
    pub fault: Option<Program>,
    /// `notify_stop`.
    pub stop: Option<Program>,
    /// `notify` (generic; gets `TYPE NAME STATE PRIORITY`).
    pub generic: Option<Program>,
    /// `notify_split_brain` (gets `TYPE NAME SPLIT_BRAIN|SPLIT_BRAIN_CLEARED PRIORITY`).
    pub split_brain: Option<Program>,
}

impl NotifyScripts {
    /// Vet the configured hooks of `owner` (an instance or group name, for messages). A hook
    /// that cannot run (unknown user, missing, unsafe under `enable_script_security`) is left
    /// out and its error returned, as keepalived disables an unsafe script; the others run.
    pub fn prepare(
        owner: &str,
        notify: &config::Notify,
        global: &config::GlobalDefs,
    ) -> (NotifyScripts, Vec<String>) {
        let mut errors = Vec::new();
        let mut vet = |keyword: &str, script: &Option<config::NotifyScript>| {
            let script = script.as_ref()?;
            match programs::hook(&script.argv, script.user.as_ref(), global) {
                Ok(program) => Some(program),
                Err(err) => {
                    errors.push(format!("{owner}: {keyword} not run: {err}"));
                    None
                }
            }
        };
        let scripts = NotifyScripts {
            master: vet("notify_master", &notify.master),
            backup: vet("notify_backup", &notify.backup),
            fault: vet("notify_fault", &notify.fault),
            stop: vet("notify_stop", &notify.stop),
            generic: vet("notify", &notify.any),
            split_brain: vet("notify_split_brain", &notify.split_brain),
        };
        (scripts, errors)
    }

    /// Whether no hook is configured.
    pub fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
            && self.generic.is_none()
            && self.split_brain.is_none()
    }

    /// The commands to run, in order, for a transition to `state`.
    pub fn commands_for(
        &self,
        kind: NotifyKind,
        name: &str,
        state: NotifyState,
        priority: u8,
    ) -> Vec<ChildCommand> {
        let with_args = |program: &Program| {
            program.command().clone().args([
                kind.as_arg().to_owned(),
                name.to_owned(),
                state.as_arg().to_owned(),
                priority.to_string(),
            ])
        };
        let specific = match state {
            NotifyState::Master => &self.master,
            NotifyState::Backup => &self.backup,
            NotifyState::Fault => &self.fault,
            NotifyState::Stop => &self.stop,
            NotifyState::SplitBrain | NotifyState::SplitBrainCleared => {
                // Only the dedicated hook hears about split brain (keepalived's generic
                // `notify` scripts do not expect these states).
                return self.split_brain.iter().map(with_args).collect();
            }
        };
        let mut out = Vec::new();
        if let Some(program) = specific {
            out.push(program.command().clone());
        }
        if let Some(program) = &self.generic {
            out.push(with_args(program));
        }
        out
    }
}

/// One queued transition.
#[derive(Debug)]
struct Event {
    state: NotifyState,
    priority: u8,
    /// Signalled once this event's hooks have run.
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The per-instance hook queue. Dropping it lets queued hooks finish, then the task ends.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Event>>,
    scripts: NotifyScripts,
}

impl Notifier {
    /// Start the queue task for `name`'s hooks. With no hooks configured nothing is spawned.
    pub fn spawn(kind: NotifyKind, name: String, scripts: NotifyScripts) -> Self {
        if scripts.is_empty() {
            return Self { tx: None, scripts };
        }
        let kept = scripts.clone();
        let (tx, mut rx) = mpsc::channel::<Event>(QUEUE_DEPTH);
        let span = tracing::info_span!("notify", name = %name);
        tokio::spawn(
            async move {
                while let Some(event) = rx.recv().await {
                    for command in scripts.commands_for(kind, &name, event.state, event.priority) {
                        run_hook(&command).await;
                    }
                    if let Some(done) = event.done {
                        let _ = done.send(());
                    }
                }
            }
            .instrument(span),
        );
        Self {
            tx: Some(tx),
            scripts: kept,
        }
    }

    /// The hooks this queue runs.
    pub fn scripts(&self) -> &NotifyScripts {
        &self.scripts
    }

    /// Queue the hooks for a transition to `state`. Never waits.
    pub fn notify(&self, state: NotifyState, priority: u8) {
        if let Some(tx) = &self.tx {
            let event = Event {
                state,
                priority,
                done: None,
            };
            if tx.try_send(event).is_err() {
                warn!(?state, "notify queue full; hook dropped");
            }
        }
    }

    /// Queue `state` and wait until every queued hook has run (used for `notify_stop` at
    /// shutdown, bounded by the caller).
    pub async fn notify_and_drain(&self, state: NotifyState, priority: u8) {
        if let Some(tx) = &self.tx {
            let (done, finished) = tokio::sync::oneshot::channel();
            let event = Event {
                state,
                priority,
                done: Some(done),
            };
            if tx.send(event).await.is_ok() {
                let _ = finished.await;
            }
        }
    }
}

/// Run one hook through the daemon's child-process runner: no shell, own process group,
/// stdio to /dev/null, the group killed after [`NOTIFY_TIMEOUT`].
async fn run_hook(command: &ChildCommand) {
    let program = command.program().display();
    match command.run(Some(NOTIFY_TIMEOUT)).await {
        Ok(finished) if finished.exit.success() => debug!(%program, "notify hook done"),
        Ok(finished) => warn!(%program, status = %finished.exit, "notify hook failed"),
        Err(err) => warn!(%program, error = %err, "notify hook did not finish"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global() -> config::GlobalDefs {
        config::GlobalDefs::default()
    }

    /// A vetted hook running `s` (program and arguments split on spaces).
    fn argv(s: &str) -> Option<Program> {
        let argv: Vec<String> = s.split(' ').map(str::to_owned).collect();
        Some(programs::hook(&argv, None, &global()).expect("vetted"))
    }

    fn argvs(commands: &[ChildCommand]) -> Vec<Vec<String>> {
        commands
            .iter()
            .map(ChildCommand::argv)
            .map(<[String]>::to_vec)
            .collect()
    }

    #[test]
    fn generic_hook_gets_keepalived_arguments_after_the_specific_one() {
        let scripts = NotifyScripts {
            master: argv("/bin/true"),
            generic: argv("/bin/echo x"),
            ..Default::default()
        };
        let cmds =
            argvs(&scripts.commands_for(NotifyKind::Instance, "VI_1", NotifyState::Master, 100));
        assert_eq!(cmds[0], vec!["/bin/true"]);
        assert_eq!(
            cmds[1],
            vec!["/bin/echo", "x", "INSTANCE", "VI_1", "MASTER", "100"]
        );
    }

    #[test]
    fn only_the_matching_specific_hook_runs() {
        let scripts = NotifyScripts {
            master: argv("/bin/true"),
            fault: argv("/bin/false"),
            ..Default::default()
        };
        let cmds = argvs(&scripts.commands_for(NotifyKind::Group, "G", NotifyState::Fault, 0));
        assert_eq!(cmds, vec![vec!["/bin/false".to_owned()]]);
        assert!(scripts
            .commands_for(NotifyKind::Group, "G", NotifyState::Backup, 0)
            .is_empty());
    }

    #[tokio::test]
    async fn hooks_run_in_order_per_instance() {
        let dir = std::env::temp_dir().join(format!("wa-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let script = dir.join("hook.sh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$3 $4\" >> {}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let scripts = NotifyScripts {
            generic: argv(&script.display().to_string()),
            ..Default::default()
        };
        let notifier = Notifier::spawn(NotifyKind::Instance, "VI_1".into(), scripts);
        notifier.notify(NotifyState::Backup, 100);
        notifier.notify(NotifyState::Master, 100);
        notifier.notify_and_drain(NotifyState::Stop, 0).await;
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text, "BACKUP 100\nMASTER 100\nSTOP 0\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
