//! Fixture: imports `processes`. Loaded for a check that is NOT granted `processes`, it must be
//! refused at load time with an error naming the import and the missing grant.
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::processes;
use wasmalived::plugin::types::{Params, Status, Verdict};

struct BadImport;

impl Guest for BadImport {
    fn check(_params: Params) -> Verdict {
        let status = match processes::by_name("init") {
            Ok(ps) => Status::Fail(format!("was allowed to list {} processes", ps.len())),
            Err(e) => Status::Fail(e),
        };
        Verdict {
            status,
            message: None,
            measurements: Vec::new(),
        }
    }
}

export!(BadImport);
