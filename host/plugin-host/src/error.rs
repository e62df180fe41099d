//! Errors of the plugin runtime. Each variant names the plugin file (or check) and the stage
//! that failed, so one log line says what to fix.

use std::path::PathBuf;

/// Why a plugin could not be loaded (or the runtime could not start).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The engine or its epoch ticker could not be created.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// The code cache directory is unusable (wrong owner, permissions, I/O).
    #[error("plugin cache {path}: {reason}")]
    Cache {
        /// The cache directory or entry.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The plugin file failed the ownership/permission checks (keepalived's script security).
    #[error("plugin {path}: refused: {reason}")]
    Insecure {
        /// The offending file or directory.
        path: PathBuf,
        /// Which rule it breaks.
        reason: String,
    },
    /// No directory of the plugin search path holds the named plugin.
    #[error(transparent)]
    NotFound(#[from] wasmalived_config::PluginNotFound),
    /// The plugin file could not be read.
    #[error("plugin {path}: cannot read: {source}")]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid WebAssembly component (or failed to compile).
    #[error("plugin {path}: not a valid component: {reason}")]
    Invalid {
        /// The plugin file.
        path: PathBuf,
        /// The parser/compiler message.
        reason: String,
    },
    /// The plugin targets a contract version this host does not provide.
    #[error("plugin {path}: {reason}")]
    Contract {
        /// The plugin file.
        path: PathBuf,
        /// What it wants vs what the host provides.
        reason: String,
    },
    /// The plugin imports a capability its check was not granted (or that does not exist).
    #[error("plugin {path}: imports `{import}` but {reason}")]
    NotGranted {
        /// The plugin file.
        path: PathBuf,
        /// The import name, e.g. `wasmalived:plugin/processes@1.1.0`.
        import: String,
        /// The missing grant, e.g. "the check is not granted `processes`".
        reason: String,
    },
    /// Linking or pre-instantiation failed (a type mismatch in an import, for example).
    #[error("plugin {path}: cannot link: {reason}")]
    Link {
        /// The plugin file.
        path: PathBuf,
        /// The linker's message.
        reason: String,
    },
    /// A grant itself is unusable (a granted directory that does not exist, for example).
    #[error("check {check}: bad grant: {reason}")]
    Grant {
        /// The check name.
        check: String,
        /// What is wrong.
        reason: String,
    },
}
