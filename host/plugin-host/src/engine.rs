//! The process's single `wasmtime::Engine` and its epoch ticker.
//!
//! Configuration: component model (async calls via `call_async` are always available in
//! wasmtime 48, so host capabilities can await I/O), epoch interruption (CPU-time deadlines), Cranelift with
//! parallel compilation. The ticker is one std thread that bumps the epoch every
//! [`EPOCH_TICK`] while a plugin run is in flight, and exits when the engine is dropped.
//!
//! The ticker parks while no run is in flight ([`PluginEngine::run_started`] counts them): an
//! epoch only matters to guest code that is running, and a daemon whose checks run every few
//! seconds (keepalived's default `delay_loop` is 60 s) would otherwise wake a thread 100 times
//! a second for nothing. The first run after an idle spell wakes it (one futex wake, only when
//! it is parked); it then ticks every [`EPOCH_TICK`] until it finds no run in flight after a
//! tick. A run's deadline is enforced as before: while a run is in flight the epoch advances
//! every tick, so its deadline callback runs at most one tick after the deadline, and a busy
//! plugin yields every tick.
//!
//! Instances come from wasmtime's *pooling allocator*: linear memories, tables, instance
//! records and fiber stacks for a number of concurrent runs are reserved once, at start, and
//! each run takes a slot and gives it back (reset: zeroed, the module's initial image
//! restored copy-on-write). A run therefore costs no `mmap`/`munmap` of a memory reservation
//! and a fiber stack, and no page-table teardown. The pool is sized from the configuration
//! ([`PoolLimits`](crate::pool::PoolLimits)): as many slots as the plugin checks can use at
//! once, each holding the largest memory a check is granted. Each check's own limit is
//! enforced per run by its `Store`'s limiter (`state::MemLimiter`). Reservation: address
//! space only (`PROT_NONE` until a slot is used), slots × (memory + [`MEMORY_GUARD`] +
//! tables + fiber stack) — for four checks at the default 64 MiB about 0.6 GiB, not the
//! 0.5 TiB a pool of 4 GiB slots reserves — no commit charge, and resident memory only for
//! the pages runs touch. When every slot is in use, instantiation fails at once with
//! wasmtime's "maximum concurrent limit … reached" error, which becomes that run's `fail`
//! verdict ("plugin instance pool exhausted") — never a wait.
//!
//! Bounds checks instead of a 4 GiB guard: with a 4 GiB reservation per memory, every 32-bit
//! address lands in the reservation and compiled code needs no bounds check at all (a stray
//! access faults in the `PROT_NONE` part). A reservation of the granted size plus a small
//! guard keeps the same safety — compiled code compares each address with the reservation
//! (offsets up to [`MEMORY_GUARD`] are covered by the guard) and traps outside — at the cost
//! of one compare-and-branch per memory access, which for a health check (instantiation
//! dominates a run) does not show in the per-run cost. The reservation is part of the
//! compiled code's key (`Engine::precompile_compatibility_hash`), so a config whose largest
//! grant changes recompiles once, then hits the code cache again.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::PluginError;
use crate::pool::PoolLimits;

/// Epoch granularity: deadlines are checked, and busy plugins yield, this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Native stack a plugin may use before it traps with "stack overflow".
const MAX_WASM_STACK: usize = 512 * 1024;
/// Fiber stack of one run: the wasm stack plus room for the host functions it calls.
const ASYNC_STACK: usize = 2 * 1024 * 1024;

/// Core instances one run may create: a Rust wasip2 component has a handful, a Python one
/// built by componentize-py ~40 (libc, libpython and the adapter shims, linked dynamically;
/// `tests/example_plugins.rs` runs one). A counter, not a reservation: the instances' metadata
/// is allocated per run.
const CORE_INSTANCES_PER_RUN: u32 = 64;
/// Linear memories and tables one run may use (component-wide). The pool holds one memory
/// per run (a Rust component has one); a plugin with two takes two slots.
const MEMORIES_PER_RUN: u32 = 2;
const TABLES_PER_RUN: u32 = 4;
/// Guard region after each linear memory: accesses with a constant offset below this need
/// no offset arithmetic in their bounds check. Address space only.
pub const MEMORY_GUARD: u64 = 64 * 1024;
/// Elements of one table (the same bound the store's limiter enforces on growth).
const MAX_TABLE_ELEMENTS: usize = crate::state::MAX_TABLE_ELEMENTS;
/// Bytes of a returned memory slot reset in place instead of with `madvise(DONTNEED)`:
/// covers the pages a typical plugin touches (stack + small heap), so a reused slot takes no
/// page faults and causes no TLB shootdown for them. With `PAGEMAP_SCAN` (Linux ≥ 6.7, used
/// when available) only the pages the run actually dirtied are reset; without it the whole
/// region would be `memset`, which for 1 MiB costs more than it saves, so then nothing is
/// kept resident. Measured (trivial plugin, CPU inside the run): 7 µs with the scan, 21 µs
/// memsetting 1 MiB, 13 µs with `madvise` only.
const KEEP_RESIDENT: usize = 1 << 20;
/// The same for tables.
const TABLE_KEEP_RESIDENT: usize = 64 * 1024;
/// Idle slots kept warm (affine to the module that last used them) before they are reused
/// for another module.
const WARM_SLOTS: u32 = 32;

/// The shared engine plus the handle that keeps its ticker thread alive.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    ticker: Arc<TickerHandle>,
}

/// What the ticker thread and the runs share.
#[derive(Default)]
struct TickerShared {
    /// Plugin runs in flight ([`EpochRun`]s alive).
    runs: AtomicUsize,
    /// Epoch increments so far.
    ticks: AtomicU64,
    /// Whether the ticker waits on `wake`, and whether it should stop.
    state: Mutex<TickerState>,
    wake: Condvar,
}

#[derive(Default)]
struct TickerState {
    parked: bool,
    stopped: bool,
}

impl TickerShared {
    fn state(&self) -> MutexGuard<'_, TickerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Held by every [`PluginEngine`] clone; dropping the last one stops the ticker thread.
struct TickerHandle(Arc<TickerShared>);

impl Drop for TickerHandle {
    fn drop(&mut self) {
        self.0.state().stopped = true;
        self.0.wake.notify_one();
    }
}

/// One plugin run in flight: the epoch ticks while any is alive (module doc).
#[must_use = "the epoch ticks only while the run's guard is alive"]
pub struct EpochRun(Arc<TickerShared>);

impl Drop for EpochRun {
    fn drop(&mut self) {
        // No wake-up: the ticker parks by itself after its next tick.
        self.0.runs.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The ticker thread: park while no run is in flight, else bump `engine`'s epoch every
/// [`EPOCH_TICK`].
fn tick(engine: &Engine, shared: &TickerShared) {
    loop {
        {
            let mut state = shared.state();
            // `runs` is read under the lock that `run_started` takes before it wakes us, so a
            // run that starts after this read finds `parked` set and wakes the thread.
            while shared.runs.load(Ordering::SeqCst) == 0 && !state.stopped {
                state.parked = true;
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.parked = false;
            if state.stopped {
                return;
            }
        }
        thread::sleep(EPOCH_TICK);
        engine.increment_epoch();
        shared.ticks.fetch_add(1, Ordering::Relaxed);
    }
}

impl PluginEngine {
    /// Create the engine with a pool of the default size ([`PoolLimits::default`]) and start
    /// the epoch ticker.
    pub fn new() -> Result<Self, PluginError> {
        Self::with_limits(PoolLimits::default())
    }

    /// Create the engine with a pool sized to `limits` and start the epoch ticker.
    pub fn with_limits(limits: PoolLimits) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .async_stack_size(ASYNC_STACK)
            .parallel_compilation(true)
            // A memory never moves: its pool slot holds the largest size it may grow to, so
            // compiled code may keep its base address in a register across calls and loops.
            .memory_reservation(limits.max_memory)
            .memory_reservation_for_growth(0)
            .memory_may_move(false)
            .memory_guard_size(MEMORY_GUARD)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool(limits)));
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let shared = Arc::new(TickerShared::default());
        let (ticking, ticker_shared) = (engine.clone(), Arc::clone(&shared));
        thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || tick(&ticking, &ticker_shared))
            .map_err(|e| PluginError::Engine(format!("cannot start epoch ticker: {e}")))?;
        Ok(Self {
            engine,
            ticker: Arc::new(TickerHandle(shared)),
        })
    }

    /// A plugin run starts: the epoch ticks until the returned guard (and every other run's)
    /// is dropped. Take it before the run's guest code can execute, keep it until the run's
    /// store is gone.
    pub fn run_started(&self) -> EpochRun {
        let shared = &self.ticker.0;
        if shared.runs.fetch_add(1, Ordering::SeqCst) == 0 && shared.state().parked {
            shared.wake.notify_one();
        }
        EpochRun(Arc::clone(shared))
    }

    /// Epoch increments so far (diagnostics and tests: it stands still while no run is in
    /// flight).
    pub fn epoch_ticks(&self) -> u64 {
        self.ticker.0.ticks.load(Ordering::Relaxed)
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Ticks needed to cover `timeout` (at least one).
    pub fn ticks_for(timeout: Duration) -> u64 {
        let ticks = timeout.as_micros() / EPOCH_TICK.as_micros().max(1);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// The instance pool for `limits` (memory protection keys stay off: the default, and not
/// compiled in).
fn pool(limits: PoolLimits) -> PoolingAllocationConfig {
    let slots = limits.concurrent_runs;
    let max_memory = usize::try_from(limits.max_memory).unwrap_or(usize::MAX);
    let keep_resident = if PoolingAllocationConfig::is_pagemap_scan_available() {
        KEEP_RESIDENT
    } else {
        0
    };
    let mut p = PoolingAllocationConfig::new();
    p.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_RUN))
        .max_core_instances_per_component(CORE_INSTANCES_PER_RUN)
        .total_memories(slots)
        .max_memories_per_component(MEMORIES_PER_RUN)
        .total_tables(slots.saturating_mul(TABLES_PER_RUN))
        .max_tables_per_component(TABLES_PER_RUN)
        .table_elements(MAX_TABLE_ELEMENTS)
        .total_stacks(slots)
        .max_memory_size(max_memory)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto)
        .max_unused_warm_slots(WARM_SLOTS.min(slots));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_timeout() {
        assert_eq!(PluginEngine::ticks_for(Duration::from_secs(1)), 100);
        assert_eq!(PluginEngine::ticks_for(Duration::from_millis(1)), 1);
        assert_eq!(PluginEngine::ticks_for(Duration::ZERO), 1);
    }

    /// Wait up to `bound` for `cond`.
    fn eventually(bound: Duration, cond: impl Fn() -> bool) -> bool {
        let until = std::time::Instant::now() + bound;
        while std::time::Instant::now() < until {
            if cond() {
                return true;
            }
            thread::sleep(Duration::from_millis(1));
        }
        cond()
    }

    fn parked(e: &PluginEngine) -> bool {
        e.ticker.0.state().parked
    }

    #[test]
    fn ticker_ticks_only_while_a_run_is_in_flight() {
        let e = PluginEngine::new().expect("engine");
        // A generous bound for a loaded machine: the thread only has to start and park.
        let bound = Duration::from_secs(10);
        assert!(eventually(bound, || parked(&e)), "never parked");
        thread::sleep(EPOCH_TICK * 5);
        assert_eq!(e.epoch_ticks(), 0, "ticked with no run in flight");

        let first = e.run_started();
        let second = e.run_started();
        assert!(
            eventually(bound, || e.epoch_ticks() >= 2),
            "no ticks during a run"
        );
        drop(first);
        let before = e.epoch_ticks();
        assert!(
            eventually(bound, || e.epoch_ticks() >= before + 2),
            "stopped ticking while a run was still in flight"
        );
        drop(second);
        assert!(eventually(bound, || parked(&e)), "did not park when idle");
        let idle = e.epoch_ticks();
        thread::sleep(EPOCH_TICK * 5);
        assert_eq!(e.epoch_ticks(), idle, "ticked while parked");

        // Woken again by the next run.
        let third = e.run_started();
        assert!(eventually(bound, || e.epoch_ticks() > idle), "not woken");
        drop(third);
    }

    #[test]
    fn ticker_stops_with_the_engine() {
        let e = PluginEngine::new().expect("engine");
        let shared = Arc::clone(&e.ticker.0);
        let _run = e.run_started();
        drop(e);
        // Only the guard's reference is left once the thread has returned.
        assert!(
            eventually(Duration::from_secs(10), || Arc::strong_count(&shared) == 2),
            "ticker thread still running"
        );
    }

    #[test]
    fn engine_builds() {
        PluginEngine::new().expect("engine builds with our feature set");
    }

    /// `(module (memory 1))`.
    const MODULE_WITH_MEMORY: &[u8] = b"\0asm\x01\0\0\0\x05\x03\x01\x00\x01";

    #[test]
    fn exhausted_pool_fails_at_once_and_recovers() {
        use wasmtime::{Instance, Module, PoolConcurrencyLimitError, Store};
        let e = PluginEngine::with_limits(PoolLimits {
            concurrent_runs: 1,
            ..PoolLimits::default()
        })
        .expect("engine");
        let module = Module::new(e.engine(), MODULE_WITH_MEMORY).expect("module");
        let mut first = Store::new(e.engine(), ());
        Instance::new(&mut first, &module, &[]).expect("first run fits");
        let mut second = Store::new(e.engine(), ());
        let err = Instance::new(&mut second, &module, &[]).expect_err("pool of one is full");
        assert!(
            err.downcast_ref::<PoolConcurrencyLimitError>().is_some(),
            "{err:#}"
        );
        drop(first);
        Instance::new(&mut second, &module, &[]).expect("slot given back");
    }
}
