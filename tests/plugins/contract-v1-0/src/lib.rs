//! Fixture: built against `wit/` in this crate, a frozen copy of the contract at 1.0.0 (no
//! `scratch`). It calls `log`, so its `wasmalived:plugin/log@1.0.0` import must be satisfied by
//! the 1.1.0 host. Proves a plugin built against an older minor version keeps loading.
wit_bindgen::generate!({ path: "wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::log::{log, Level};
use wasmalived::plugin::types::{Params, Status, Verdict};

struct Contract;

impl Guest for Contract {
    fn check(_params: Params) -> Verdict {
        log(Level::Info, concat!(env!("CARGO_PKG_NAME"), " ran"));
        Verdict {
            status: Status::Ok,
            message: Some("contract-v1-0".into()),
            measurements: Vec::new(),
        }
    }
}

export!(Contract);
