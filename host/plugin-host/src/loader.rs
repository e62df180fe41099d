//! Loading a plugin file: security check, read, digest, compile (through the code cache),
//! contract version, import inventory. Binding to a check's grants happens in `run.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::cache::{CacheOutcome, CodeCache};
use super::contract::{self, Capability, Version};
use super::{security, PluginError};

/// Length of the short digest in identities (`name@0123456789ab`).
pub const SHORT_DIGEST: usize = 12;

/// A compiled plugin file, not yet bound to a check.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// Plugin name: the file stem.
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Full sha256 of the bytes, hex.
    pub sha256: String,
    /// The compiled component.
    pub component: Component,
    /// Contract version it targets.
    pub contract: Version,
    /// Import names.
    pub imports: Vec<String>,
    /// Export names.
    pub exports: Vec<String>,
    /// Whether the code cache was hit.
    pub cache: CacheOutcome,
    /// Time to compile or deserialize.
    pub load_time: Duration,
}

impl LoadedPlugin {
    /// Short digest (12 hex chars).
    pub fn digest(&self) -> &str {
        &self.sha256[..SHORT_DIGEST.min(self.sha256.len())]
    }

    /// `name@digest`.
    pub fn identity(&self) -> String {
        format!("{}@{}", self.name, self.digest())
    }

    /// Each import with the capability (grant) it needs, or why no grant provides it.
    pub fn capabilities(&self) -> Vec<(String, Result<Capability, String>)> {
        self.imports
            .iter()
            .map(|i| (i.clone(), contract::capability_of(i)))
            .collect()
    }
}

/// sha256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read and vet a plugin file (security check + digest), without compiling it.
pub fn read_file(path: &Path) -> Result<(Vec<u8>, String), PluginError> {
    let bytes = security::read_plugin_file(path)?;
    let sha = sha256_hex(&bytes);
    Ok((bytes, sha))
}

/// Compile `bytes` (via the cache) and check the contract.
pub fn compile(
    engine: &Engine,
    cache: &CodeCache,
    path: &Path,
    bytes: &[u8],
    sha256: String,
) -> Result<LoadedPlugin, PluginError> {
    if !looks_like_component(bytes) {
        return Err(PluginError::Invalid {
            path: path.to_path_buf(),
            reason: if bytes.starts_with(b"\0asm") {
                "a core wasm module, not a component (build for wasm32-wasip2)".into()
            } else {
                "not a WebAssembly file".into()
            },
        });
    }
    let t = Instant::now();
    let (component, outcome) = cache.load(engine, path, &sha256, bytes)?;
    let load_time = t.elapsed();
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let contract_err = |reason: String| PluginError::Contract {
        path: path.to_path_buf(),
        reason,
    };
    let version =
        contract::check_export_version(exports.iter().map(String::as_str)).map_err(contract_err)?;
    contract::check_compatible(&version).map_err(contract_err)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    Ok(LoadedPlugin {
        name,
        path: path.to_path_buf(),
        sha256,
        component,
        contract: version,
        imports,
        exports,
        cache: outcome,
        load_time,
    })
}

/// A component starts with `\0asm` and layer 1 (a core module has layer 0).
fn looks_like_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn component_header() {
        assert!(looks_like_component(b"\0asm\x0d\0\x01\0rest"));
        assert!(!looks_like_component(b"\0asm\x01\0\0\0"));
        assert!(!looks_like_component(b"garbage!"));
    }
}
