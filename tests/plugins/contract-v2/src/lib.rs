//! Fixture: built against `wit/` in this crate, the contract relabelled 2.0.0. Proves a plugin
//! built against another major version is refused with a message naming 2.0.0.
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
            message: Some("contract-v2".into()),
            measurements: Vec::new(),
        }
    }
}

export!(Contract);
