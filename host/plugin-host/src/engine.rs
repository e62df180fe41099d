//! The process's single `wasmtime::Engine` and its epoch ticker.
//!
//! Configuration: component model (async calls via `call_async` are always available in
//! wasmtime 48, so host capabilities can await I/O), epoch interruption (CPU-time deadlines), Cranelift with
//! parallel compilation. The ticker is one std thread that bumps the epoch every
//! [`EPOCH_TICK`]; it holds only a weak reference and exits when the engine is dropped.
//!
//! Instances come from wasmtime's *pooling allocator*: linear memories, tables, instance
//! records and fiber stacks for [`MAX_CONCURRENT_RUNS`] runs are reserved once, at start, and
//! each run takes a slot and gives it back (reset: zeroed, the module's initial image
//! restored copy-on-write). A run therefore costs no `mmap`/`munmap` of a 4 GiB memory
//! reservation and a fiber stack, and no page-table teardown. The pool's per-memory maximum
//! is the largest limit a config may grant ([`MAX_MEMORY_SIZE`]); each check's own limit is
//! enforced per run by its `Store`'s limiter (`state::MemLimiter`). Reservation: address
//! space only (`PROT_NONE` until a slot is used): about `MAX_CONCURRENT_RUNS` × (4 GiB +
//! guard) ≈ 0.5 TiB of the 128 TiB user address space, no commit charge, and resident memory
//! only for the pages runs touch. When every slot is in use, instantiation fails at once
//! with wasmtime's "maximum concurrent limit … reached" error, which becomes that run's
//! `fail` verdict ("plugin instance pool exhausted") — never a wait.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::PluginError;

/// Epoch granularity: deadlines are checked, and busy plugins yield, this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Native stack a plugin may use before it traps with "stack overflow".
const MAX_WASM_STACK: usize = 512 * 1024;
/// Fiber stack of one run: the wasm stack plus room for the host functions it calls.
const ASYNC_STACK: usize = 2 * 1024 * 1024;

/// Runs that can be in flight at once (pool slots). More fail with a clear error.
pub const MAX_CONCURRENT_RUNS: u32 = 128;
/// Core instances one run may create: a Rust wasip2 component has a handful, a Python one
/// built by componentize-py ~40 (libc, libpython and the adapter shims, linked dynamically;
/// `tests/example_plugins.rs` runs one). A counter, not a reservation: the instances' metadata
/// is allocated per run.
const CORE_INSTANCES_PER_RUN: u32 = 64;
/// Linear memories and tables one run may use (component-wide). The pool holds one memory
/// per run (a Rust component has one); a plugin with two takes two slots.
const MEMORIES_PER_RUN: u32 = 2;
const TABLES_PER_RUN: u32 = 4;
/// Largest linear memory any check may be granted: a full 32-bit memory, the same bound as
/// the config's `memory_limit` (`config::defaults::MAX_MEMORY_LIMIT`). Per-check limits are
/// enforced below this by the store's limiter.
pub const MAX_MEMORY_SIZE: usize = 4 << 30;
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

/// The shared engine plus the guard that keeps its ticker thread alive.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    _ticker: Arc<TickerGuard>,
}

/// Dropping the last guard lets the ticker thread notice and exit.
struct TickerGuard;

impl PluginEngine {
    /// Create the engine and start the epoch ticker.
    pub fn new() -> Result<Self, PluginError> {
        Self::with_pool(MAX_CONCURRENT_RUNS)
    }

    /// Like [`PluginEngine::new`], with a pool of `slots` concurrent runs (tests use a small
    /// pool to exercise exhaustion).
    pub fn with_pool(slots: u32) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .async_stack_size(ASYNC_STACK)
            .parallel_compilation(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool(slots)));
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let guard = Arc::new(TickerGuard);
        let weak: Weak<TickerGuard> = Arc::downgrade(&guard);
        let ticking = engine.clone();
        thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while weak.strong_count() > 0 {
                    thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Engine(format!("cannot start epoch ticker: {e}")))?;
        Ok(Self {
            engine,
            _ticker: guard,
        })
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

/// The instance pool for `slots` concurrent runs (memory protection keys stay off: the
/// default, and not compiled in).
fn pool(slots: u32) -> PoolingAllocationConfig {
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
        .max_memory_size(MAX_MEMORY_SIZE)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto)
        .max_unused_warm_slots(WARM_SLOTS);
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

    #[test]
    fn engine_builds() {
        PluginEngine::new().expect("engine builds with our feature set");
    }

    /// `(module (memory 1))`.
    const MODULE_WITH_MEMORY: &[u8] = b"\0asm\x01\0\0\0\x05\x03\x01\x00\x01";

    #[test]
    fn exhausted_pool_fails_at_once_and_recovers() {
        use wasmtime::{Instance, Module, PoolConcurrencyLimitError, Store};
        let e = PluginEngine::with_pool(1).expect("engine");
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
