//! The plugin executor: where every plugin run executes, away from the daemon's reactor.
//!
//! A few dedicated `wasm-check-N` threads, each driving its own single-threaded tokio runtime
//! (timers, I/O and child processes enabled: WASI streams, wasi:http and remediation need
//! them).
//!
//! Two ways onto a thread:
//! - [`Executor::spawn_resident`]: a long-lived task — a check's schedule loop — lives on the
//!   thread with the fewest residents. Its runs then execute *on that thread, inline*
//!   ([`Executor::is_current`]): the check's timer fires in the thread's own reactor, the run
//!   happens there and the verdict is recorded there. No thread hand-off on the common path.
//! - [`Executor::spawn`]: a one-off run from elsewhere (the CLI, a probe on the daemon's
//!   runtime) goes to the thread with the fewest runs in flight: one cross-thread wake to start
//!   it, one (the `JoinHandle`) to hand the result back.
//!
//! Why the hand-off matters: the two wake-ups cost ~5 µs together when both threads share a
//! CPU; when the kernel keeps them on different CPUs each is an inter-processor interrupt,
//! and on a VM without IPI virtualisation that traps to the hypervisor, ~24 µs of guest CPU
//! each (a bare eventfd ping-pong between two threads pinned to different vCPUs: 48 µs per
//! round trip). The trivial plugin's run itself is ~7 µs.
//!
//! Why not one multi-threaded runtime: a task spawned into it from outside wakes a parked
//! worker, which on finding the task may wake another to look for more work (measured: 20 µs
//! p50 / 70 µs p99 per trivial run, against 14 / 30 µs with these threads).
//!
//! Fairness: a busy plugin yields every epoch tick (`engine::EPOCH_TICK`) through
//! `tokio::task::yield_now`, which parks it behind every task that is ready *and* behind the
//! thread's timers and I/O (the runtime polls its driver before resuming deferred tasks). A
//! plugin burning its whole timeout therefore delays the other checks of its thread by at
//! most one tick, and never their timers. (A plain self-wake would requeue it at once; the
//! runtime then polls its driver only every 61 task polls — 0.6 s of 10 ms slices.)

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::PluginError;

/// Tells executors apart, so a thread knows whose it is.
static NEXT_EXECUTOR_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The id of the executor this thread belongs to (0: none).
    static CURRENT_EXECUTOR: Cell<u64> = const { Cell::new(0) };
}

/// One executor thread.
struct Worker {
    handle: Handle,
    /// The thread's kernel id (its scheduling is set by id: `checker_priority`).
    tid: i32,
    /// Runs spawned here and not yet finished or dropped.
    in_flight: Arc<AtomicUsize>,
    /// Resident tasks (check loops) living here.
    residents: Arc<AtomicUsize>,
    /// Dropping it lets the thread leave `block_on`, drop its runtime and exit.
    _stop: oneshot::Sender<()>,
}

/// The executor threads. Dropping it stops them without waiting: each drops the runs still
/// on it (their instances with them) and exits.
pub struct Executor {
    id: u64,
    workers: Vec<Worker>,
}

impl Executor {
    /// Start `threads` (at least one) executor threads.
    pub fn start(threads: usize) -> Result<Self, PluginError> {
        let id = NEXT_EXECUTOR_ID.fetch_add(1, Ordering::Relaxed);
        let workers = (0..threads.max(1))
            .map(|index| start_worker(id, index))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { id, workers })
    }

    /// True on one of this executor's threads: a run can execute right here, inline.
    pub fn is_current(&self) -> bool {
        CURRENT_EXECUTOR.with(Cell::get) == self.id
    }

    /// Run a long-lived task (a check's schedule loop) on the thread with the fewest such
    /// tasks, so that the runs it starts execute inline on that thread (module doc).
    pub fn spawn_resident<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_on_least(|w| &w.residents, fut)
    }

    /// Resident tasks per thread (tests, diagnostics).
    pub fn residents(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.residents.load(Ordering::Relaxed))
            .collect()
    }

    /// Run `fut` on the executor thread with the fewest runs in flight.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_on_least(|w| &w.in_flight, fut)
    }

    /// Run `fut` on the thread whose `count` is lowest, counting it there until it ends.
    fn spawn_on_least<F>(
        &self,
        count: impl Fn(&Worker) -> &Arc<AtomicUsize>,
        fut: F,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let worker = self
            .workers
            .iter()
            .min_by_key(|w| count(w).load(Ordering::Relaxed))
            .unwrap_or_else(|| &self.workers[0]);
        let guard = InFlight::enter(count(worker));
        worker.handle.spawn(async move {
            let _guard = guard;
            fut.await
        })
    }

    /// The executor threads' kernel ids, for the daemon to set how they are scheduled.
    pub fn thread_ids(&self) -> Vec<i32> {
        self.workers.iter().map(|w| w.tid).collect()
    }

    /// Runs in flight per thread (tests, diagnostics).
    pub fn in_flight(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.in_flight.load(Ordering::Relaxed))
            .collect()
    }
}

fn start_worker(executor: u64, index: usize) -> Result<Worker, PluginError> {
    let err = |e: std::io::Error| PluginError::Engine(format!("cannot start plugin executor: {e}"));
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    // The runtime is built and dropped on its own thread, so neither can happen inside the
    // caller's async context (tokio forbids dropping a runtime there).
    std::thread::Builder::new()
        .name(format!("wasm-check-{index}"))
        .spawn(move || {
            CURRENT_EXECUTOR.with(|c| c.set(executor));
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let started = (rt.handle().clone(), wasmalived_sys::current_tid());
            if ready_tx.send(Ok(started)).is_err() {
                return;
            }
            rt.block_on(async {
                let _ = stop_rx.await;
            });
            // Do not wait for blocking-pool work (a WASI file read) of abandoned runs.
            rt.shutdown_background();
        })
        .map_err(err)?;
    let (handle, tid) = ready_rx
        .recv()
        .map_err(|_| PluginError::Engine("plugin executor thread exited at start".into()))?
        .map_err(err)?;
    Ok(Worker {
        handle,
        tid,
        in_flight: Arc::new(AtomicUsize::new(0)),
        residents: Arc::new(AtomicUsize::new(0)),
        _stop: stop_tx,
    })
}

/// Counts a run (or a resident task) on its thread until it finishes or is dropped (aborted,
/// executor stopped).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn runs_off_the_caller_thread_and_balances() {
        let ex = Executor::start(2).expect("start");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let caller = std::thread::current().id();
            let (tx, rx) = oneshot::channel::<()>();
            // A long run occupies one thread; the next run must go to the other.
            let long = ex.spawn(async move {
                let _ = rx.await;
                std::thread::current().name().map(str::to_string)
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(ex.in_flight().iter().sum::<usize>(), 1);
            let short = ex
                .spawn(async move {
                    assert_ne!(std::thread::current().id(), caller);
                    std::thread::current().name().map(str::to_string)
                })
                .await
                .expect("short run");
            let _ = tx.send(());
            let long = long.await.expect("long run");
            assert!(short
                .as_deref()
                .is_some_and(|n| n.starts_with("wasm-check-")));
            assert_ne!(short, long, "second run went to the idle thread");
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(ex.in_flight(), vec![0, 0]);
        });
    }

    #[test]
    fn residents_spread_over_threads_and_know_they_are_home() {
        let ex = Arc::new(Executor::start(2).expect("start"));
        assert!(
            !ex.is_current(),
            "the caller's thread is not an executor thread"
        );
        let other = Executor::start(1).expect("second executor");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let (tx, rx) = oneshot::channel::<()>();
            let (ex1, ex2) = (ex.clone(), ex.clone());
            let first = ex.spawn_resident(async move {
                let _ = rx.await;
                ex1.is_current()
            });
            let second = ex.spawn_resident(async move { ex2.is_current() });
            assert!(second.await.expect("second resident"), "inline on its home");
            assert_eq!(ex.residents().iter().sum::<usize>(), 1);
            let _ = tx.send(());
            assert!(first.await.expect("first resident"));
            let foreign = ex.clone();
            let on_other = other
                .spawn(async move { foreign.is_current() })
                .await
                .expect("run on the other executor");
            assert!(!on_other, "another executor's thread is not home");
            assert_eq!(ex.residents(), vec![0, 0]);
        });
    }

    #[test]
    fn thread_ids_are_the_threads_runs_execute_on() {
        let ex = Executor::start(2).expect("start");
        let ids = ex.thread_ids();
        assert_eq!(ids.len(), 2);
        assert!(!ids.contains(&wasmalived_sys::current_tid()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt");
        let ran_on = rt
            .block_on(ex.spawn(async { wasmalived_sys::current_tid() }))
            .expect("run");
        assert!(ids.contains(&ran_on), "{ran_on} not in {ids:?}");
    }

    #[test]
    fn abort_and_drop_release_the_slot_and_threads() {
        let ex = Executor::start(1).expect("start");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let stuck = ex.spawn(std::future::pending::<()>());
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(ex.in_flight(), vec![1]);
            stuck.abort();
            assert!(stuck.await.is_err_and(|e| e.is_cancelled()));
            assert_eq!(ex.in_flight(), vec![0]);
            let pending = ex.spawn(std::future::pending::<()>());
            drop(ex);
            // The stopped executor drops the run: its JoinHandle resolves as cancelled.
            let r = tokio::time::timeout(Duration::from_secs(5), pending).await;
            assert!(matches!(r, Ok(Err(e)) if e.is_cancelled()));
        });
    }
}
