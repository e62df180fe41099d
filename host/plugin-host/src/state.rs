//! The per-run store data (`Store<HostState>`): the WASI context, the capability states, and
//! the resource limiter. Built for every run and dropped with the run's `Store`, except the
//! WASI context with its output capture and denial list, which the check's next run reuses
//! (`run_context.rs`).

use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::caps::http::HttpPolicy;
use super::caps::log::LogCap;
use super::caps::probe::ProbeCap;
use super::caps::processes::ProcessesCap;
use super::caps::remediation::RemediationCap;
use super::caps::scratch::ScratchCap;
use super::caps::stdio::Capture;
use super::caps::wake::WakeCap;

/// Instances a plugin may create (a Rust component has a handful of core instances).
const MAX_INSTANCES: usize = 64;
/// Tables and memories per store.
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;
/// Elements per table.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Everything one run's `Store` owns.
pub struct HostState {
    /// WASI context (baseline, preopens, socket policy).
    pub wasi: WasiCtx,
    /// Resources handed to the guest (streams, sockets, requests).
    pub table: ResourceTable,
    /// wasi:http context.
    pub http_ctx: WasiHttpCtx,
    /// wasi:http allowlist.
    pub http_policy: HttpPolicy,
    /// `log` budget.
    pub log: LogCap,
    /// `scratch` store handle.
    pub scratch: ScratchCap,
    /// `processes` (refuses every call if not granted).
    pub processes: ProcessesCap,
    /// `remediation` (empty if not granted).
    pub remediation: RemediationCap,
    /// `wake`: what the run asked to be woken by.
    pub wake: WakeCap,
    /// `probe`: connects to the TCP grants' targets.
    pub probe: ProbeCap,
    /// Captured stdout/stderr.
    pub capture: Capture,
    /// Memory/table/instance limits; records when the memory limit was hit.
    pub limiter: MemLimiter,
    /// Capability uses refused during this run.
    pub denials: Denials,
    /// `wasi:random/insecure-seed` of this run, drawn on first use (`caps::wasi`).
    pub insecure_seed: Option<(u64, u64)>,
}

/// Denials kept per run; more are counted in the last entry.
const MAX_DENIALS: usize = 8;

/// The capability uses the host refused during one run (a URL no grant matches, a TCP
/// address not granted, an unknown remediation id), shared by the capabilities of one store
/// so the run's outcome can say what was denied.
#[derive(Debug, Default, Clone)]
pub struct Denials(Arc<Mutex<(Vec<String>, usize)>>);

impl Denials {
    /// Record one refused use (`what` names the capability and the target).
    pub fn record(&self, what: impl FnOnce() -> String) {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (kept, extra) = &mut *guard;
        if kept.len() < MAX_DENIALS {
            kept.push(what());
        } else {
            *extra += 1;
        }
    }

    /// Everything recorded, emptied.
    pub fn take(&self) -> Vec<String> {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut kept, extra) = std::mem::take(&mut *guard);
        if extra > 0 {
            kept.push(format!("... and {extra} more"));
        }
        kept
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}

/// The store's resource limiter. `memory_limit` bounds the sum of every linear memory of the
/// instance (a component has several core instances, each may have memories); growing past
/// it fails with a trap, and is remembered so the verdict can say "memory limit exceeded"
/// rather than a generic trap.
#[derive(Debug)]
pub struct MemLimiter {
    memory_limit: usize,
    /// Bytes of linear memory across all memories of the store.
    total: usize,
    hit: Option<usize>,
}

impl MemLimiter {
    /// A limiter with this per-memory byte limit.
    pub fn new(memory_limit: u64) -> Self {
        Self {
            memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
            total: 0,
            hit: None,
        }
    }

    /// The size a plugin tried to grow to past the limit, if it did.
    pub fn exceeded(&self) -> Option<usize> {
        self.hit
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.memory_limit
    }
}

impl ResourceLimiter for MemLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.memory_limit {
            self.hit = Some(total);
            wasmtime::bail!(
                "memory limit {} exceeded (all memories growing to {total} bytes)",
                self.memory_limit
            );
        }
        self.total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!("table limit {MAX_TABLE_ELEMENTS} elements exceeded");
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_bounded() {
        let d = Denials::default();
        for i in 0..20 {
            d.record(|| format!("tcp 192.0.2.{i}:80"));
        }
        let all = d.take();
        assert_eq!(all.len(), MAX_DENIALS + 1);
        assert_eq!(all.last().unwrap(), "... and 12 more");
        assert!(d.take().is_empty());
    }

    #[test]
    fn limiter_refuses_and_records() {
        let mut l = MemLimiter::new(1 << 20);
        assert!(l.memory_growing(0, 1 << 19, None).expect("below"));
        assert!(l.memory_growing(1 << 19, 2 << 20, None).is_err());
        assert_eq!(l.exceeded(), Some(2 << 20));
    }

    #[test]
    fn the_limit_covers_every_memory_of_the_instance() {
        let mut l = MemLimiter::new(1 << 20);
        // Three memories of 300 KiB fit; a fourth does not, though alone it would.
        for _ in 0..3 {
            assert!(l.memory_growing(0, 300 << 10, None).expect("fits"));
        }
        assert!(l.memory_growing(0, 300 << 10, None).is_err());
        // Growing one of them is charged only the difference.
        let mut l = MemLimiter::new(1 << 20);
        assert!(l.memory_growing(0, 512 << 10, None).expect("fits"));
        assert!(l.memory_growing(512 << 10, 1 << 20, None).expect("fits"));
        assert!(l.memory_growing(0, 64 << 10, None).is_err());
    }
}
