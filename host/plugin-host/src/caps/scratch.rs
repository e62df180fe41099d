//! `wasmalived:plugin/scratch`: a small per-check key/value store kept by the host.
//!
//! Why a host store and not instance reuse: every run gets a *fresh* instance from a cached
//! `InstancePre` (20–35 µs here), so "a trapped instance is never re-entered" holds by
//! construction and a memory leak in a plugin cannot accumulate across runs. State a plugin
//! needs across runs (a lease it holds, a failure counter) is explicit: it lives here, keyed
//! by check name, and survives runs, traps and plugin reloads (not daemon restarts).
//! Bounded by [`QUOTA_BYTES`] (keys + values) per check.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::wasmalived::plugin::scratch as wit;
use crate::state::HostState;

/// Bytes (keys + values) one check may keep.
pub const QUOTA_BYTES: usize = 64 * 1024;

/// One check's store; shared by all its runs and plugin versions.
#[derive(Debug, Default)]
pub struct ScratchStore {
    map: BTreeMap<String, Vec<u8>>,
    used: usize,
}

impl ScratchStore {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.map.get(key).cloned()
    }

    /// Store `value` under `key` unless the quota would be exceeded.
    pub fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        let old = self.map.get(&key).map_or(0, |v| key.len() + v.len());
        let new_used = self.used - old + key.len() + value.len();
        if new_used > QUOTA_BYTES {
            return Err(format!(
                "scratch quota exceeded: {new_used} > {QUOTA_BYTES} bytes"
            ));
        }
        self.used = new_used;
        self.map.insert(key, value);
        Ok(())
    }

    /// Forget `key`.
    pub fn remove(&mut self, key: &str) {
        if let Some(v) = self.map.remove(key) {
            self.used -= key.len() + v.len();
        }
    }

    /// Bytes in use.
    pub fn used(&self) -> usize {
        self.used
    }
}

/// Shared handle to one check's store.
pub type SharedScratch = Arc<Mutex<ScratchStore>>;

/// The capability as seen by one run.
#[derive(Debug, Default)]
pub struct ScratchCap {
    store: SharedScratch,
}

impl ScratchCap {
    /// Bind a run to its check's store.
    pub fn new(store: SharedScratch) -> Self {
        Self { store }
    }

    fn lock(&self) -> MutexGuard<'_, ScratchStore> {
        // A poisoned lock only means another run panicked mid-update of plain data.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl wit::Host for ScratchCap {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.lock().get(&key))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(self.lock().set(key, value))
    }

    fn remove(&mut self, key: String) -> wasmtime::Result<()> {
        self.lock().remove(&key);
        Ok(())
    }
}

/// Link `scratch` (always).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasSelf<ScratchCap>>(linker, |s| &mut s.scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_enforced_and_accounted() {
        let mut s = ScratchStore::default();
        s.set("a".into(), vec![0; 1000]).expect("fits");
        assert_eq!(s.used(), 1001);
        s.set("a".into(), vec![0; 10]).expect("replace shrinks");
        assert_eq!(s.used(), 11);
        assert!(s.set("b".into(), vec![0; QUOTA_BYTES]).is_err());
        assert_eq!(s.get("b"), None);
        s.remove("a");
        assert_eq!(s.used(), 0);
        s.set("b".into(), vec![0; QUOTA_BYTES - 1])
            .expect("exactly the quota");
    }
}
