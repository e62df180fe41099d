//! The plugin runtime: one wasmtime engine, plugin loading and hot reload, host capabilities.
//!
//! Layout (one job per module):
//! - [`engine`]: the process's single `Engine` and its epoch ticker.
//! - [`pool`]: how large its instance pool is, from the configuration.
//! - [`cache`]: compiled-code cache in a daemon-owned directory.
//! - [`security`]: keepalived-style file ownership/permission checks.
//! - [`contract`]: contract version and import → capability rules (pure).
//! - [`loader`]: read + digest + compile + contract check of one file.
//! - [`linker`], [`state`], [`caps`]: what a run is linked with and owns.
//! - [`process_index`]: process names → PIDs kept from process events, for `processes`.
//! - [`run`]: [`Runtime`] and [`CheckPlugin::run`] — the bounded per-run path.
//! - [`run_context`]: the WASI context a check's runs hand on to each other.
//! - [`executor`]: the dedicated threads plugin runs execute on.
//! - [`reload`]: plugin sources (a file, or a name in the search path), watching the plugin
//!   directories and swapping versions in.
//! - [`grants`]: what one check may use (from the config or the CLI).

pub mod bindings;
pub mod cache;
pub mod caps;
pub mod contract;
pub mod engine;
mod error;
pub mod executor;
pub mod fuzz;

pub mod linker;
pub mod loader;
pub mod pool;
pub mod process_index;
pub mod ratelimit;
pub mod reload;
pub mod run;
pub mod run_context;
pub mod security;
pub mod state;
mod sys;

pub use caps::wake::{WakeSources, WatchedPath};
pub use error::PluginError;
pub use pool::PoolLimits;
pub use process_index::ProcessIndex;
pub use reload::{CheckHandle, PluginSource, PluginWatcher};
pub use run::{CheckPlugin, RunFailure, RunOutcome, Runtime, TimeoutSite, Verdict, WallClock};
pub use sys::{children_cpu_time, process_cpu_time, thread_cpu_time};
pub use wasmalived_config::grants::{self, Grants};
