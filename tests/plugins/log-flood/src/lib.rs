//! Fixture: writes 1,000,000 lines, then returns `ok`. `to=log` (default) uses the `log`
//! import; `to=stdout` / `to=stderr` print instead. Proves plugin output is bounded
//! (rate-limited / truncated) and the daemon survives it.
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use std::io::Write;

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::log::{log, Level};
use wasmalived::plugin::types::{Params, Status, Verdict};

/// How many lines to write.
const LINES: u32 = 1_000_000;

struct LogFlood;

impl Guest for LogFlood {
    fn check(params: Params) -> Verdict {
        let to = params
            .iter()
            .find(|(k, _)| k == "to")
            .map_or("log", |(_, v)| v.as_str());
        for i in 0..LINES {
            let line = format!("log-flood line {i}");
            // Write errors (a closed stream) are ignored: the point is to keep writing.
            match to {
                "stdout" => drop(writeln!(std::io::stdout(), "{line}")),
                "stderr" => drop(writeln!(std::io::stderr(), "{line}")),
                _ => log(Level::Info, &line),
            }
        }
        Verdict {
            status: Status::Ok,
            message: Some(format!("wrote {LINES} lines to {to}")),
            measurements: Vec::new(),
        }
    }
}

export!(LogFlood);
