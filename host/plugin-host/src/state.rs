//! The per-run store data (`Store<HostState>`): the WASI context, the capability states, and
//! the resource limiter. Built fresh for every run and dropped with the run's `Store`.

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::caps::http::HttpPolicy;
use super::caps::log::LogCap;
use super::caps::processes::ProcessesCap;
use super::caps::remediation::RemediationCap;
use super::caps::scratch::ScratchCap;
use super::caps::stdio::Capture;

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
    /// Captured stdout/stderr.
    pub capture: Capture,
    /// Memory/table/instance limits; records when the memory limit was hit.
    pub limiter: MemLimiter,
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

/// The store's resource limiter. Growing linear memory past `memory_limit` fails with a trap
/// (and is remembered, so the verdict can say "memory limit exceeded" rather than a generic
/// trap).
#[derive(Debug)]
pub struct MemLimiter {
    memory_limit: usize,
    hit: Option<usize>,
}

impl MemLimiter {
    /// A limiter with this per-memory byte limit.
    pub fn new(memory_limit: u64) -> Self {
        Self {
            memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
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
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.hit = Some(desired);
            wasmtime::bail!(
                "memory limit {} exceeded (growing to {desired} bytes)",
                self.memory_limit
            );
        }
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
    fn limiter_refuses_and_records() {
        let mut l = MemLimiter::new(1 << 20);
        assert!(l.memory_growing(0, 1 << 19, None).expect("below"));
        assert!(l.memory_growing(0, 2 << 20, None).is_err());
        assert_eq!(l.exceeded(), Some(2 << 20));
    }
}
