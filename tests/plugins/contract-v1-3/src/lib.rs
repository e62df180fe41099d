//! Fixture: built against `wit/` in this crate, a frozen copy of the contract at 1.3.0 (`wake`
//! has `on-exit` and `on-change`, no `on-disconnect`). It asks to be woken when `/data/flag`
//! changes, so its `@1.3.0` `wake` import must be satisfied by the 1.4.0 host; without an
//! `allow_dir` grant for `/data` the host refuses the watch, and the verdict says so. Proves a
//! plugin built against the previous minor version keeps loading and calling what it knew.
wit_bindgen::generate!({ path: "wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::types::{Params, Status, Verdict};
use wasmalived::plugin::wake;

struct Contract;

impl Guest for Contract {
    fn check(_params: Params) -> Verdict {
        let status = match wake::on_change("/data/flag") {
            Ok(()) => Status::Ok,
            Err(e) => Status::Fail(e),
        };
        Verdict {
            status,
            message: Some("contract-v1-3".into()),
            measurements: Vec::new(),
        }
    }
}

export!(Contract);
