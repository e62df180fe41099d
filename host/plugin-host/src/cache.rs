//! Compiled-code cache: restarts and reloads skip the JIT.
//!
//! Entries live in a daemon-owned directory (default `<state-dir>/plugin-cache`), created
//! with mode 0700; a directory that is group/world-writable or owned by another user is
//! refused, because `Component::deserialize` trusts its input (a crafted artifact is native
//! code). Nothing is ever deserialized from anywhere else — in particular never from the
//! plugins directory. The key is sha256(wasm bytes) + wasmtime version + the engine's
//! `precompile_compatibility_hash`, so a wasmtime upgrade or config change misses instead of
//! loading a stale artifact. Writes are atomic (temporary file + rename). A corrupt entry is
//! reported, removed and recompiled, never trusted.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::Component;
use wasmtime::Engine;

use super::security::daemon_uid;
use super::{sys, PluginError};

/// Where a component came from, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialized from the cache.
    Hit,
    /// Compiled (JIT) and stored.
    Miss,
    /// The entry was unreadable/corrupt: recompiled and replaced.
    Recompiled,
}

/// The compiled-code cache directory.
#[derive(Debug)]
pub struct CodeCache {
    dir: PathBuf,
    engine_key: String,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl CodeCache {
    /// Open (creating with mode 0700 if missing) and vet the cache directory.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, PluginError> {
        let err = |reason: String| PluginError::Cache {
            path: dir.to_path_buf(),
            reason,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(format!("cannot create: {e}")))?;
        let meta = std::fs::symlink_metadata(dir).map_err(|e| err(format!("cannot stat: {e}")))?;
        if !meta.is_dir() {
            return Err(err("is not a directory".into()));
        }
        let me = daemon_uid();
        if meta.uid() != me {
            return Err(err(format!(
                "is owned by uid {}, not the daemon's user (uid {me}); refusing to load code from it",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(err(format!(
                "is group/world-writable (mode {:o}); refusing to load code from it",
                meta.mode() & 0o7777
            )));
        }
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = format!("wasmtime{}-{:016x}", wasmtime_version(), h.finish());
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_key,
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry path for a component with this full sha256 hex digest.
    pub fn entry_path(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256_hex}-{}.cwasm", self.engine_key))
    }

    /// Load the compiled component for `bytes` (digest `sha256_hex`), compiling and storing
    /// it on a miss. `path` names the plugin in errors.
    pub fn load(
        &self,
        engine: &Engine,
        path: &Path,
        sha256_hex: &str,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), PluginError> {
        let entry = self.entry_path(sha256_hex);
        let mut outcome = CacheOutcome::Miss;
        if let Ok(meta) = std::fs::symlink_metadata(&entry) {
            if meta.is_file() && meta.uid() == daemon_uid() && meta.mode() & 0o022 == 0 {
                match sys::deserialize_cached_component(engine, &entry) {
                    Ok(c) => return Ok((c, CacheOutcome::Hit)),
                    Err(e) => {
                        tracing::warn!(entry = %entry.display(), "corrupt cache entry, recompiling: {e:#}");
                    }
                }
            } else {
                tracing::warn!(entry = %entry.display(), "cache entry has wrong owner/mode, recompiling");
            }
            let _ = std::fs::remove_file(&entry);
            outcome = CacheOutcome::Recompiled;
        }
        let component = Component::new(engine, bytes).map_err(|e| PluginError::Invalid {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        })?;
        match component.serialize() {
            Ok(art) => {
                if let Err(e) = self.store(&entry, &art) {
                    tracing::warn!(entry = %entry.display(), "cannot write cache entry: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize compiled component: {e:#}"),
        }
        Ok((component, outcome))
    }

    /// Write atomically: a 0600 temporary file in the same directory, fsync, rename.
    fn store(&self, entry: &Path, art: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(art)?;
            f.sync_all()?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&tmp, entry)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// The wasmtime version compiled in (part of the cache key), from `Cargo.lock` (build.rs);
/// the engine's compatibility hash covers the configuration.
fn wasmtime_version() -> &'static str {
    env!("WASMTIME_VERSION")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut c = wasmtime::Config::new();
        c.wasm_component_model(true);
        Engine::new(&c).expect("engine")
    }

    #[test]
    fn refuses_world_writable_cache_dir() {
        let d = std::env::temp_dir().join(format!("wasmalived-cache-ww-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = CodeCache::open(&d, &engine())
            .expect_err("refuse")
            .to_string();
        assert!(e.contains("world-writable"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        CodeCache::open(&d, &engine()).expect("0700 accepted");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn creates_private_dir() {
        let d = std::env::temp_dir().join(format!("wasmalived-cache-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let c = CodeCache::open(&d.join("plugin-cache"), &engine()).expect("open");
        let mode = std::fs::metadata(c.dir()).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
        let key = c.entry_path("ab").to_string_lossy().into_owned();
        assert!(
            key.contains(&format!("wasmtime{}", wasmtime_version())),
            "{key}"
        );
        assert_ne!(
            wasmtime_version(),
            "unknown",
            "build.rs read the version from Cargo.lock"
        );
        assert!(
            wasmtime_version()
                .split('.')
                .all(|n| n.parse::<u32>().is_ok()),
            "{}",
            wasmtime_version()
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
