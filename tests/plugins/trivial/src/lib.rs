//! The smallest possible check: always `ok`. Measures the runtime's fixed cost per run.
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::types::{Params, Status, Verdict};

struct Trivial;

impl Guest for Trivial {
    fn check(_params: Params) -> Verdict {
        Verdict {
            status: Status::Ok,
            message: None,
            measurements: Vec::new(),
        }
    }
}

export!(Trivial);
