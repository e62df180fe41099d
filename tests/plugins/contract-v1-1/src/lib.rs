//! Fixture: built against `wit/` in this crate, a frozen copy of the contract at 1.1.0 (no
//! `wake`). It calls `log` and `scratch`, so its `@1.1.0` imports must be satisfied by a
//! later-minor host. Proves a plugin built against the previous minor version keeps loading.
wit_bindgen::generate!({ path: "wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::log::{log, Level};
use wasmalived::plugin::scratch;
use wasmalived::plugin::types::{Measurement, Params, Status, Verdict};

struct Contract;

impl Guest for Contract {
    fn check(_params: Params) -> Verdict {
        log(Level::Info, concat!(env!("CARGO_PKG_NAME"), " ran"));
        let runs = scratch::get("runs").map_or(0, |v| v.first().copied().unwrap_or(0)) + 1;
        let stored = scratch::set("runs", &[runs]);
        Verdict {
            status: match stored {
                Ok(()) => Status::Ok,
                Err(e) => Status::Fail(e),
            },
            message: Some("contract-v1-1".into()),
            measurements: vec![Measurement {
                name: "runs".into(),
                value: f64::from(runs),
            }],
        }
    }
}

export!(Contract);
