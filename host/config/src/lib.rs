//! keepalived-syntax configuration: lexer/parser with spans → one validation pass → typed
//! [`Config`] (STYLE principle 9).
//!
//! Layers: `preprocess` (keepalived's line language: comments, `include`, `@id`
//! conditional lines, `$NAME` parameters, `~SEQ`/`~LST` generators; every character keeps
//! its `file:line:column`), [`lexer`] (words and braces), [`parser`] (statements and
//! blocks), `reflow` (keepalived's block structure), `validate` (everything about meaning:
//! keywords, values, defaults from [`defaults`], cross-references, keepalived's fallbacks
//! from `compat`), [`model`] (the result).
//!
//! # Compatibility
//! A keepalived.conf is read as keepalived 2.2.7 reads it: its line language (parameters,
//! `@id` lines, generators, include variants, see `preprocess`), its block structure
//! (`reflow`) and, keyword by keyword, its handlers' fallbacks (`compat`, the validators):
//! where keepalived takes a doubtful value and carries on, the same value is used and a
//! warning names the place and what was used instead. keepalived's `global_defs`,
//! `vrrp_script`, `vrrp_instance`, `vrrp_sync_group`, `virtual_server` and
//! `virtual_server_group` keywords keep their meaning ([`lvs`] for the check module, with
//! keepalived's defaults and corrections; its numbers and addresses are read strictly, a
//! bad one is an error). Keywords this daemon does not use are warnings naming their place;
//! sections it does not implement (`bfd_instance`, `garp_group`, …) are reported once
//! per kind and skipped. [`LoadOptions::strict`] turns every warning into an error.
//!
//! The remaining differences are deliberate (the main README lists them with their
//! reasons): an explicit VRRPv2 on an IPv6 instance is an error; a script weight beyond ±253
//! is stored as ±253 (the same effect); include cycles are errors; a `script` check keeps
//! keepalived's whole-second timing while the plugin form takes decimals.
//!
//! # The plugin form of `vrrp_script`
//! ```text
//! vrrp_script chk_nginx {
//!     plugin nginx-process          # NAME (-> NAME.wasm in the plugin search path) or a path ending in .wasm
//!     param process nginx           # repeatable, ordered KEY VALUE passed to the plugin
//!     allow_processes [netns]       # grant: process table (netns: own network namespace only)
//!     remediation restart "/usr/sbin/nginx -g 'daemon on;'" [timeout 10]
//!                                   # grant: the plugin may run this command by its id
//!     allow_http http://127.0.0.1/health   # grant: wasi:http to this URL prefix or host
//!     allow_tcp 127.0.0.1:80        # grant: TCP connect to host:port (port * = any)
//!     allow_udp 192.0.2.53:53       # grant: UDP to and from this peer (port * = any)
//!     allow_dir /var/lib/x [rw] [as /data] # grant: a directory (read-only unless rw)
//!     memory_limit 64M              # default: global plugin_memory_limit
//!     on_fatal fault|stop_daemon    # what a `fatal` verdict does (default fault)
//!     interval 2  timeout 1  weight -5  fall 3  rise 2   # as for scripts
//! }
//! ```
//! `script` and `plugin` in one block is an error; so is neither. The `allow_*`,
//! `remediation`, `param`, `memory_limit` and `on_fatal` keywords only apply to plugins.
//!
//! Our `global_defs` keys: `plugin_dir DIR...` (the plugin search path, see
//! [`PluginSearchPath`]), `plugin_cache_dir PATH`,
//! `plugin_memory_limit SIZE`, `plugin_timeout_default SECONDS`.

mod compat;
pub mod defaults;
pub mod diag;
mod dump;
pub mod fuzz;
pub mod grants;
pub mod lexer;
pub mod lvs;
pub mod model;
pub mod parser;
mod plugin_path;
mod preprocess;
mod reflow;
pub mod route;
mod source;
mod validate;
pub mod vip;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

pub use diag::{Diagnostic, Severity, Span};
pub use dump::ConfigDump;
pub use grants::Grants;
pub use model::*;
pub use vip::{Scope, VipSpec};

use diag::Diags;
use preprocess::Preprocessor;

/// How to load a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Treat every warning as an error.
    pub strict: bool,
    /// The configuration id for `@ID` / `@^ID` lines and `${_INSTANCE}` (keepalived's
    /// `-i`/`--config-id`); `None` = [`default_config_id`].
    pub config_id: Option<String>,
}

impl LoadOptions {
    fn config_id(&self) -> String {
        self.config_id.clone().unwrap_or_else(default_config_id)
    }
}

/// keepalived's default configuration id: the host name up to its first `.`.
pub fn default_config_id() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    name.split('.').next().unwrap_or(name).to_owned()
}

/// A configuration that loaded, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Warnings (ignored keywords, unsupported sections, adjustments), in file order.
    pub warnings: Vec<Diagnostic>,
}

/// A configuration that did not load: every error (and the warnings), each with its place.
/// `Display` prints the errors one per line.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors {
    /// The errors, in file order. Never empty.
    pub errors: Vec<Diagnostic>,
    /// The warnings found as well.
    pub warnings: Vec<Diagnostic>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Loads, validates and types the configuration file at `path` and everything it includes.
pub fn load(path: &Path, opts: LoadOptions) -> Result<Loaded, ConfigErrors> {
    let mut diags = Diags::default();
    let nodes = {
        let mut pre = Preprocessor::new(&mut diags, &opts.config_id());
        if pre.open(path) {
            parser::parse(&mut pre, path)
        } else {
            Vec::new()
        }
    };
    finish(nodes, path, &opts, diags)
}

/// As [`load`], for `text` given as the contents of `virtual_path` (whose directory anchors
/// relative includes and plugin paths; it need not exist). For tests and `--config-test` of
/// generated text.
pub fn parse_str(
    text: &str,
    virtual_path: &Path,
    opts: LoadOptions,
) -> Result<Loaded, ConfigErrors> {
    let mut diags = Diags::default();
    let nodes = {
        let mut pre = Preprocessor::new(&mut diags, &opts.config_id());
        pre.open_text(text, virtual_path);
        parser::parse(&mut pre, virtual_path)
    };
    finish(nodes, virtual_path, &opts, diags)
}

/// Sorts diagnostics by place: files in the order they were first reported, then line and
/// column (validation reports some things when a section ends, after what follows it).
fn in_file_order(all: &mut [Diagnostic]) {
    let mut files: Vec<std::sync::Arc<Path>> = Vec::new();
    for d in all.iter() {
        if !files.contains(&d.span.file) {
            files.push(d.span.file.clone());
        }
    }
    all.sort_by_key(|d| {
        let file = files.iter().position(|f| *f == d.span.file).unwrap_or(0);
        (file, d.span.line, d.span.column)
    });
}

fn finish(
    nodes: Vec<parser::Node>,
    path: &Path,
    opts: &LoadOptions,
    mut diags: Diags,
) -> Result<Loaded, ConfigErrors> {
    let nodes = reflow::reflow(nodes, &mut diags);
    let config = validate::validate(&nodes, &mut diags);
    let mut all = diags.into_vec();
    in_file_order(&mut all);
    if opts.strict {
        for d in &mut all {
            d.severity = Severity::Error;
        }
    }
    let (errors, warnings): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|d| d.severity == Severity::Error);
    match config {
        Some(config) if errors.is_empty() => Ok(Loaded { config, warnings }),
        _ => {
            let errors = if errors.is_empty() {
                vec![Diagnostic {
                    severity: Severity::Error,
                    span: Span::whole_file(std::sync::Arc::from(path)),
                    message: "configuration is not valid".into(),
                }]
            } else {
                errors
            };
            Err(ConfigErrors { errors, warnings })
        }
    }
}
