//! Command-line interfaces of the `wasmalived` binary besides the daemon itself.
//! - [`plugin`]: `wasmalived plugin run|inspect|new` for plugin authors.
//! - [`plugin_new`]: `wasmalived plugin new`, the project templates.
//! - [`config_test`]: `wasmalived -t -f FILE`.
//! - [`status`]: `wasmalived status` (talks to the control socket).
//! - [`man`]: `wasmalived man`, the manual page rendered from the CLI definition.

pub mod config_test;
pub mod man;
pub mod plugin;
pub mod plugin_new;
pub mod status;
