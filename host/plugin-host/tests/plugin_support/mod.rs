//! Shared helpers of the plugin integration tests.
#![allow(dead_code)]

pub use wasmalived_testkit::{fixture, TempDir};

use wasmalived_plugin_host::Runtime;

/// A runtime with its cache in a fresh temp dir (kept alive by the returned guard).
pub fn runtime() -> (Runtime, TempDir) {
    let d = TempDir::new("cache");
    let rt = Runtime::new(&d.path().join("plugin-cache")).expect("runtime");
    (rt, d)
}
