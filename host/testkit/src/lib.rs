//! Helpers shared by wasmalived's integration tests: private temp dirs and the paths of the
//! plugins `make plugins` built.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/wasm32-wasip2/debug/plugin_<name>.wasm` for plugin or fixture crate `plugin-<name>`
/// (`$CARGO_TARGET_DIR` honoured); panics with the command to run when it is missing.
pub fn fixture(name: &str) -> PathBuf {
    let file = format!("plugin_{}.wasm", name.replace('-', "_"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let p = target.join("wasm32-wasip2/debug").join(&file);
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
    /// A new directory named after `tag`, this process and a sequence number.
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

    /// The directory.
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

/// VmRSS of this process in KiB.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Replays every input kept for fuzz target `target` — `fuzz/corpus/<target>/` (the
/// minimised corpus) and `fuzz/regressions/<target>/` (inputs that once crashed) — through
/// `body`, the target's function. Each input runs on its own, so one failure does not hide
/// the others; panics naming every failing file. Also panics when there is nothing to
/// replay (a moved corpus must not turn the test into one that cannot fail).
pub fn replay_fuzz_corpus(target: &str, body: fn(&[u8])) {
    let root = workspace_root().join("fuzz");
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        files.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file()),
        );
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no inputs in fuzz/corpus/{target} or fuzz/regressions/{target}"
    );
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("read fuzz input");
            std::panic::catch_unwind(|| body(&data)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs fail (replay one: cargo +nightly fuzz run {target} FILE):\n  {}",
        failed.len(),
        files.len(),
        failed.join("\n  ")
    );
}
