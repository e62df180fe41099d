//! The director's scripts — `notify_up`/`notify_down` of real servers, `quorum_up`/
//! `quorum_down` of virtual servers — vetted when the configuration is applied and run in
//! order by one queue task, so a slow script never holds a check or the pool. They run at the
//! checkers' nice value (`checker_priority`), as keepalived's checker process forks them.

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, warn, Instrument};
use wasmalived_config::{GlobalDefs, NotifyScript};
use wasmalived_sys::process::ChildCommand;
use wasmalived_sys::program::Program;

use crate::notify::NOTIFY_TIMEOUT;
use crate::programs;

/// Scripts queued but not started; beyond this, new ones are dropped (and logged).
const QUEUE_DEPTH: usize = 256;

/// Vet `script` for `what` (`virtual_server X quorum_up`); a refused one is logged and
/// skipped, never run unvetted.
pub fn prepare(script: Option<&NotifyScript>, what: &str, global: &GlobalDefs) -> Option<Program> {
    let script = script?;
    match programs::hook(&script.argv, script.user.as_ref(), global) {
        Ok(program) => Some(program.at_nice(global.checker_nice())),
        Err(err) => {
            error!("{what}: {err}; this script will not run");
            None
        }
    }
}

/// A queued script, and whom to tell when it finished.
type Queued = (ChildCommand, Option<oneshot::Sender<()>>);

/// The queue.
#[derive(Debug, Clone)]
pub struct HookQueue {
    tx: mpsc::Sender<Queued>,
}

impl HookQueue {
    /// Start the queue task.
    pub fn spawn() -> Self {
        let (tx, mut rx) = mpsc::channel::<Queued>(QUEUE_DEPTH);
        tokio::spawn(
            async move {
                while let Some((command, done)) = rx.recv().await {
                    run(&command).await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
            }
            .instrument(tracing::info_span!("lvs_hooks")),
        );
        HookQueue { tx }
    }

    /// Queue `program`. Never waits.
    pub fn run(&self, program: &Program) {
        if self.tx.try_send((program.command().clone(), None)).is_err() {
            warn!(program = %program.label(), "director script queue full; script dropped");
        }
    }

    /// Queue `program` and wait until it (and everything before it) ran.
    pub async fn run_and_wait(&self, program: &Program) {
        let (done, finished) = oneshot::channel();
        if self
            .tx
            .send((program.command().clone(), Some(done)))
            .await
            .is_ok()
        {
            let _ = finished.await;
        }
    }
}

async fn run(command: &ChildCommand) {
    let program = command.program().display();
    match command.run(Some(NOTIFY_TIMEOUT)).await {
        Ok(finished) if finished.exit.success() => debug!(%program, "director script done"),
        Ok(finished) => warn!(%program, status = %finished.exit, "director script failed"),
        Err(err) => warn!(%program, error = %err, "director script did not finish"),
    }
}
