//! Shared helpers of the plugin integration tests: fixture paths and private temp dirs.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use wasmalived::plugins::Runtime;

/// `target/wasm32-wasip2/debug/plugin_<name>.wasm` for fixture/plugin crate `name`.
pub fn fixture(name: &str) -> PathBuf {
    let file = format!("plugin_{}.wasm", name.replace('-', "_"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = root.join("target/wasm32-wasip2/debug").join(&file);
    assert!(
        p.exists(),
        "fixture {} missing: run `make plugins` first (cargo build --target wasm32-wasip2 -p plugin-{name})",
        p.display()
    );
    p
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh private (0700) directory; removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "wasmalived-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        Self(d)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path as a string (for parameters and grants).
    pub fn str(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }

    /// Copy fixture `name` into this dir as `as_name` (mode 0644).
    pub fn install(&self, name: &str, as_name: &str) -> PathBuf {
        let dst = self.0.join(as_name);
        std::fs::copy(fixture(name), &dst).expect("copy fixture");
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        dst
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A runtime with its cache in a fresh temp dir (kept alive by the returned guard).
pub fn runtime() -> (Runtime, TempDir) {
    let d = TempDir::new("cache");
    let rt = Runtime::new(&d.path().join("plugin-cache")).expect("runtime");
    (rt, d)
}

/// VmRSS of this process in KiB.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
