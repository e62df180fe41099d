//! keepalived-syntax configuration: lexer/parser with spans → one validation pass → typed
//! [`Config`] (STYLE principle 9).
//!
//! Layers: [`lexer`] (tokens with `file:line:column`), [`parser`] (statements and blocks,
//! `include` expanded), `validate` (everything about meaning: keywords, values, defaults
//! from [`defaults`], cross-references), [`model`] (the result).
//!
//! # Compatibility
//! keepalived's `global_defs`, `vrrp_script`, `vrrp_instance`, `vrrp_sync_group`,
//! `virtual_server` and `virtual_server_group` keywords keep their meaning ([`lvs`] for the
//! check module). Keywords this daemon does not use are warnings naming their place;
//! sections it does not implement (`bfd_instance`, `static_routes`, …) are reported once per
//! kind and skipped. [`LoadOptions::strict`] turns warnings into errors.
//!
//! Decisions where keepalived is loose:
//! - A `vrrp_script` may be defined after the instance that tracks it (keepalived ignores
//!   such a script); we accept it and warn, since keepalived would not track it.
//! - An unknown `track_script` name, a duplicate name, an unknown sync-group member are
//!   errors (keepalived logs and drops the item).
//! - `vrrp_strict`: no unicast peers and at least one VIP are errors; authentication,
//!   `preempt_delay`, `state MASTER` below priority 255 and `accept` with VRRPv2 are
//!   warnings and ignored, as keepalived does.
//! - An `advert_int` with decimals under VRRPv2 is an error (keepalived rounds silently).
//!
//! # The plugin form of `vrrp_script`
//! ```text
//! vrrp_script chk_nginx {
//!     plugin nginx-process          # NAME (-> plugin_dir/NAME.wasm) or a path ending in .wasm
//!     param process nginx           # repeatable, ordered KEY VALUE passed to the plugin
//!     allow_processes [netns]       # grant: process table (netns: own network namespace only)
//!     remediation restart "/usr/sbin/nginx -g 'daemon on;'" [timeout 10]
//!                                   # grant: the plugin may run this command by its id
//!     allow_http http://127.0.0.1/health   # grant: wasi:http to this URL prefix or host
//!     allow_tcp 127.0.0.1:80        # grant: TCP connect to host:port (port * = any)
//!     allow_dir /var/lib/x [rw] [as /data] # grant: a directory (read-only unless rw)
//!     memory_limit 64M              # default: global plugin_memory_limit
//!     on_fatal fault|stop_daemon    # what a `fatal` verdict does (default fault)
//!     interval 2  timeout 1  weight -5  fall 3  rise 2   # as for scripts
//! }
//! ```
//! `script` and `plugin` in one block is an error; so is neither. The `allow_*`,
//! `remediation`, `param`, `memory_limit` and `on_fatal` keywords only apply to plugins.
//!
//! Our `global_defs` keys: `plugin_dir PATH`, `plugin_cache_dir PATH`,
//! `plugin_memory_limit SIZE`, `plugin_timeout_default SECONDS`.

pub mod defaults;
pub mod diag;
pub mod grants;
pub mod lexer;
pub mod lvs;
pub mod model;
pub mod parser;
mod validate;
pub mod vip;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

pub use diag::{Diagnostic, Severity, Span};
pub use grants::Grants;
pub use model::*;
pub use vip::{Scope, VipSpec};

use diag::Diags;
use parser::Parser;

/// How to load a configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Treat every warning as an error.
    pub strict: bool,
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
    let nodes =
        Parser::new(&mut diags).parse_file(path, &Span::whole_file(std::sync::Arc::from(path)));
    finish(nodes.unwrap_or_default(), path, opts, diags)
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
    let nodes = Parser::new(&mut diags).parse_text(text, virtual_path);
    finish(nodes, virtual_path, opts, diags)
}

fn finish(
    nodes: Vec<parser::Node>,
    path: &Path,
    opts: LoadOptions,
    mut diags: Diags,
) -> Result<Loaded, ConfigErrors> {
    let config = validate::validate(&nodes, &mut diags);
    let mut all = diags.into_vec();
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
