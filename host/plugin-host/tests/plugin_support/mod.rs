//! Shared helpers of the plugin integration tests.
#![allow(dead_code)]

pub use wasmalived_testkit::{fixture, TempDir};

use std::path::Path;

use wasmalived_config::grants::{DirGrant, Grants};
use wasmalived_plugin_host::Runtime;

/// A runtime with its cache in a fresh temp dir (kept alive by the returned guard).
pub fn runtime() -> (Runtime, TempDir) {
    let d = TempDir::new("cache");
    let rt = Runtime::new(&d.path().join("plugin-cache")).expect("runtime");
    (rt, d)
}

/// Grants of one directory: `host` on disk, seen by the plugin at `guest`.
pub fn dir_grants(host: &Path, guest: &str, writable: bool) -> Grants {
    Grants {
        dirs: vec![DirGrant {
            host_path: host.to_path_buf(),
            guest_path: guest.into(),
            writable,
        }],
        ..Grants::default()
    }
}
