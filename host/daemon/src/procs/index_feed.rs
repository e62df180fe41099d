//! Keeps the plugin runtime's process-name index ([`ProcessIndex`]) from the monitor's
//! process events, so `processes.by-name` in a plugin reads only the processes with that
//! name instead of every `/proc/PID/comm` (issue 14 §3).
//!
//! One event source: this subscribes to the [`ProcessMonitor`]; it never opens a connector.
//! The index is live only while events flow from the connector ([`ProcessMonitor::connected`]);
//! under the polling fallback, after lost events (until the rescan) and before the first
//! rebuild it is not, and plugins scan `/proc` as before.
//!
//! No event may fall between a scan and the events applied on top of it: the feed subscribes
//! first and scans second. Events queued before a rebuild predate its scan and are dropped
//! (the scan has their outcome); those received after it are applied to it, in order
//! (applying an event whose effect the scan already shows changes nothing, since `exec`
//! re-reads the name).

use std::path::Path;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, info_span, warn, Instrument as _};
use wasmalived_plugin_host::caps::processes::{comm_of, user_process_names};
use wasmalived_plugin_host::process_index::{ProcessIndex, Task};

use super::codec::ProcEvent;
use super::{ProcessMonitor, ProcessSignal};

/// Where the feed reads process names.
const PROC: &str = "/proc";
/// Logged when the index goes live (start-up, after a loss of events).
pub const LIVE_MESSAGE: &str =
    "process index built from process events: plugins' processes.by-name reads only the matching processes";

/// A process monitor of its own that wants process events (no tracked process) and keeps
/// `index` from them until `cancel`: what a program that is not the daemon (a benchmark, a
/// test) needs to have plugins' `processes.by-name` answered from the index.
pub async fn follow_processes(
    index: Arc<ProcessIndex>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> ProcessMonitor {
    let monitor = ProcessMonitor::start(None, cancel.clone(), tracker);
    spawn(&monitor, index, cancel, tracker);
    monitor
        .apply(super::Rules {
            process_events: true,
            ..super::Rules::default()
        })
        .await;
    monitor
}

/// Starts the task that keeps `index` from `monitor`'s events until `cancel`, or until the
/// monitor stops (the index is then left not live).
pub fn spawn(
    monitor: &ProcessMonitor,
    index: Arc<ProcessIndex>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) {
    // Subscribed here, before the task first scans.
    let signals = monitor.subscribe();
    let connected = monitor.connected();
    tracker.spawn(feed(signals, connected, index, cancel).instrument(info_span!("process_index")));
}

async fn feed(
    mut signals: broadcast::Receiver<ProcessSignal>,
    mut connected: tokio::sync::watch::Receiver<bool>,
    index: Arc<ProcessIndex>,
    cancel: CancellationToken,
) {
    loop {
        if *connected.borrow_and_update() {
            rebuild(&index, &mut signals);
        } else {
            index.set_not_live();
        }
        loop {
            tokio::select! {
                () = cancel.cancelled() => {
                    index.set_not_live();
                    return;
                }
                changed = connected.changed() => {
                    if changed.is_err() {
                        index.set_not_live();
                        return;
                    }
                    break;
                }
                signal = signals.recv() => match signal {
                    Ok(ProcessSignal::Event(event)) => apply(&index, &event),
                    Ok(ProcessSignal::Lost) => {
                        debug!("process events lost: index not live until the rescan");
                        index.set_not_live();
                    }
                    Ok(ProcessSignal::Resynced) => {
                        if *connected.borrow() {
                            rebuild(&index, &mut signals);
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        warn!(missed, "the process index fell behind the process events: rebuilding it from /proc");
                        if *connected.borrow() {
                            rebuild(&index, &mut signals);
                        } else {
                            index.set_not_live();
                        }
                    }
                    Err(RecvError::Closed) => {
                        index.set_not_live();
                        return;
                    }
                },
            }
        }
    }
}

/// Drops the events queued so far (the scan shows their outcome), then rebuilds from a full
/// scan; the events received from here on are applied on top of it.
fn rebuild(index: &ProcessIndex, signals: &mut broadcast::Receiver<ProcessSignal>) {
    while let Ok(_) | Err(TryRecvError::Lagged(_)) = signals.try_recv() {}
    let was_live = index.is_live();
    match user_process_names(Path::new(PROC)) {
        Ok(processes) => {
            index.rebuild(processes);
            let processes = index.len();
            if was_live {
                debug!(processes, "process index rebuilt from /proc");
            } else {
                info!(processes, "{LIVE_MESSAGE}");
            }
        }
        Err(err) => {
            warn!("process index not built ({err}): plugins' process lookups scan /proc");
            index.set_not_live();
        }
    }
}

/// One kernel event, applied to the index (the rules are the index's: threads ignored, a
/// fork inherits the name, exec and comm rename, the leader's exit removes).
pub fn apply(index: &ProcessIndex, event: &ProcEvent) {
    let read = |pid: u32| comm_of(Path::new(PROC), pid);
    match *event {
        ProcEvent::Fork {
            parent_pid,
            parent_tgid,
            child_pid,
            child_tgid,
        } => index.fork(
            Task {
                pid: parent_pid,
                tgid: parent_tgid,
            },
            Task {
                pid: child_pid,
                tgid: child_tgid,
            },
            read,
        ),
        ProcEvent::Exec { pid, tgid } => index.exec(Task { pid, tgid }, read),
        ProcEvent::Comm {
            pid,
            tgid,
            ref comm,
        } => index.comm(Task { pid, tgid }, comm),
        ProcEvent::Exit { pid, tgid, .. } => index.exit(Task { pid, tgid }),
        ProcEvent::Ack { .. } | ProcEvent::Other { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn follows_the_connection_rebuilds_after_losses_and_lag_and_drops_events_older_than_a_scan(
    ) {
        let (signals_tx, signals) = broadcast::channel(16);
        let (connected_tx, connected) = tokio::sync::watch::channel(false);
        let index = Arc::new(ProcessIndex::new());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(feed(signals, connected, Arc::clone(&index), cancel.clone()));
        let me = std::process::id();
        let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
        let comm = comm.trim_end();
        let settle = || async {
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
        };
        // An exit of this process queued before the connection: it predates the rebuild's
        // scan, so it must not remove what the scan found.
        signals_tx
            .send(ProcessSignal::Event(ProcEvent::Exit {
                pid: me,
                tgid: me,
                exit_code: 0,
                exit_signal: 17,
            }))
            .expect("subscribed");
        settle().await;
        assert!(!index.is_live());
        connected_tx.send_replace(true);
        settle().await;
        assert!(index.is_live());
        assert!(index.candidates(comm).expect("live").contains(&me));
        // Events after the rebuild are applied.
        let rename = ProcEvent::Comm {
            pid: me,
            tgid: me,
            comm: "wa-renamed".into(),
        };
        signals_tx.send(ProcessSignal::Event(rename)).expect("send");
        settle().await;
        assert_eq!(index.candidates("wa-renamed"), Some(vec![me]));
        // Lost events: not live until the rescan.
        signals_tx.send(ProcessSignal::Lost).expect("send");
        settle().await;
        assert!(!index.is_live());
        signals_tx.send(ProcessSignal::Resynced).expect("send");
        settle().await;
        assert!(index.candidates(comm).expect("live").contains(&me));
        // A feed that falls behind rebuilds: the rename is lost in the lag (the queue holds
        // 16), and the rebuild shows the real name.
        let lagged = ProcEvent::Comm {
            pid: me,
            tgid: me,
            comm: "wa-lagged".into(),
        };
        signals_tx.send(ProcessSignal::Event(lagged)).expect("send");
        for _ in 0..32 {
            let other = ProcessSignal::Event(ProcEvent::Other { what: 0 });
            signals_tx.send(other).expect("send");
        }
        settle().await;
        assert_eq!(index.candidates("wa-lagged"), Some(vec![]));
        assert!(index.candidates(comm).expect("live").contains(&me));
        // The fall-back to polling: not live.
        connected_tx.send_replace(false);
        settle().await;
        assert!(!index.is_live());
        cancel.cancel();
        task.await.expect("feed ends");
    }
}
