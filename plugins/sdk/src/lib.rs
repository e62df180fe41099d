//! Write wasmalived check plugins in Rust.
//!
//! A check plugin is a WebAssembly component that exports `check(params) -> verdict`
//! (`wit/plugin.wit`, `wasmalived:plugin@1.4.0`). With this crate a check is a type that
//! implements [`Check`] against a [`Host`]; [`export_check!`] turns it into the component's
//! export, and [`testing::FakeHost`] runs it natively in `cargo test`:
//!
//! ```
//! use wasmalived_plugin_sdk::{export_check, Check, Host, ParamError, Params, Verdict};
//!
//! /// Healthy while at least `min` processes named `name` run.
//! pub struct Running;
//!
//! impl Check for Running {
//!     fn check(host: &impl Host, params: &Params) -> Verdict {
//!         match run(host, params) {
//!             Ok(v) => v,
//!             Err(e) => Verdict::fail(e.to_string()),
//!         }
//!     }
//! }
//!
//! fn run(host: &impl Host, params: &Params) -> Result<Verdict, ParamError> {
//!     let name: String = params.value("name").required()?;
//!     let min: u32 = params.value("min").range(1..).default(1)?;
//!     let count = match host.processes_by_name(&name) {
//!         Ok(ps) => ps.len() as u32,
//!         Err(e) => return Ok(Verdict::fail(format!("cannot read the process table: {e}"))),
//!     };
//!     let verdict = if count >= min {
//!         Verdict::ok()
//!     } else {
//!         Verdict::fail(format!("{count} `{name}` running, want {min}"))
//!     };
//!     Ok(verdict.measure("count", f64::from(count)))
//! }
//!
//! export_check!(Running);
//!
//! // Natively, against fakes:
//! let host = wasmalived_plugin_sdk::testing::FakeHost::new();
//! host.spawn("nginx");
//! assert!(host.run::<Running>(&[("name", "nginx")]).is_ok());
//! assert_eq!(
//!     host.run::<Running>(&[("name", "nginx"), ("min", "0")]).reason(),
//!     Some("bad parameter min=`0`: at least 1")
//! );
//! ```
//!
//! The crate's parts:
//! - [`Params`]: typed parameters whose errors name the parameter.
//! - [`Verdict`]: `ok` / `fail` / `fatal` with a message and measurements.
//! - [`Host`]: the capabilities (log, processes, remediation, scratch, wake, clocks, random, TCP,
//!   UDP and HTTP via [`net`]); [`Wasi`] is the real one in the component (wasm32 only).
//! - [`testing`]: [`testing::FakeHost`], fake capabilities for native tests.
//! - [`Url`]: just enough URL parsing for a health-check target.
//!
//! Build the component with `cargo build --target wasm32-wasip2 --release` (the crate is a
//! `cdylib`); try it with `wasmalived plugin run`. `docs/writing-plugins.md` in the
//! repository tells the whole contract: grants, limits, hot reload, versioning.

pub mod host;
pub mod net;
pub mod params;
pub mod testing;
pub mod url;
pub mod verdict;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings;
#[cfg(target_arch = "wasm32")]
mod wasi;

pub use host::{Host, Level, Process};
pub use params::{FromParam, ParamError, Params};
pub use url::Url;
pub use verdict::{Measurement, Status, Verdict};
#[cfg(target_arch = "wasm32")]
pub use wasi::Wasi;

/// A health check: one run with the configured parameters gives one verdict.
///
/// The daemon gives every run a fresh instance, so nothing in memory survives between runs:
/// keep state in the scratch store ([`Host::scratch_set`]).
pub trait Check {
    /// Run the check once.
    fn check(host: &impl Host, params: &Params) -> Verdict;
}

/// Export a [`Check`] as the component's `wasmalived:plugin/check` (in the wasm32 build;
/// elsewhere it expands to nothing, so the same crate runs its native tests).
///
/// Use it once, in the plugin's `cdylib` crate: `export_check!(MyCheck);`.
#[macro_export]
macro_rules! export_check {
    ($check:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            struct __WasmalivedCheckExport;

            impl $crate::bindings::exports::wasmalived::plugin::check::Guest
                for __WasmalivedCheckExport
            {
                fn check(
                    params: $crate::bindings::wasmalived::plugin::types::Params,
                ) -> $crate::bindings::wasmalived::plugin::types::Verdict {
                    $crate::__private::run::<$check>(params)
                }
            }

            $crate::bindings::export_bindings!(
                __WasmalivedCheckExport with_types_in $crate::bindings
            );
        };
    };
}

/// What [`export_check!`] expands to calls; not part of the API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    use crate::bindings::wasmalived::plugin::types as wit;
    use crate::{Check, Params, Status, Wasi};

    /// Run `C` against the real host and convert its verdict to the WIT type.
    pub fn run<C: Check>(params: Vec<(String, String)>) -> wit::Verdict {
        let verdict = C::check(&Wasi, &Params::new(params));
        wit::Verdict {
            status: match verdict.status {
                Status::Ok => wit::Status::Ok,
                Status::Fail(r) => wit::Status::Fail(r),
                Status::Fatal(r) => wit::Status::Fatal(r),
            },
            message: verdict.message,
            measurements: verdict
                .measurements
                .into_iter()
                .map(|m| wit::Measurement {
                    name: m.name,
                    value: m.value,
                })
                .collect(),
        }
    }
}
