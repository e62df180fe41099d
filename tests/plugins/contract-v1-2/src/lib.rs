//! Fixture: built against `wit/` in this crate, a frozen copy of the contract at 1.2.0 (`wake`
//! has `on-exit` only). It asks to be woken by its own process's exit, so its `@1.2.0` `wake`
//! import must be satisfied by the 1.3.0 host; without `allow_processes` the host refuses the
//! watch, and the verdict says so. Proves a plugin built against the previous minor version
//! keeps loading and calling what it knew.
wit_bindgen::generate!({ path: "wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::log::{log, Level};
use wasmalived::plugin::types::{Params, Status, Verdict};
use wasmalived::plugin::wake;

struct Contract;

impl Guest for Contract {
    fn check(_params: Params) -> Verdict {
        log(Level::Info, concat!(env!("CARGO_PKG_NAME"), " ran"));
        let status = match wake::on_exit(&[1]) {
            Ok(()) => Status::Ok,
            Err(e) => Status::Fail(e),
        };
        Verdict {
            status,
            message: Some("contract-v1-2".into()),
            measurements: Vec::new(),
        }
    }
}

export!(Contract);
