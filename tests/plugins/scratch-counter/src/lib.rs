//! Fixture: increments a counter kept in `scratch` on every run and reports it as the
//! measurement `count`. With `trap_at=N` it traps (panics) on the run that stores N, after
//! storing it. Proves scratch state survives runs, traps and reloads, while linear memory
//! does not.
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::scratch;
use wasmalived::plugin::types::{Measurement, Params, Status, Verdict};

/// The scratch key holding the counter (u64, little-endian).
const KEY: &str = "count";

struct ScratchCounter;

impl Guest for ScratchCounter {
    fn check(params: Params) -> Verdict {
        let previous = scratch::get(KEY)
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        let count = previous + 1;
        if let Err(e) = scratch::set(KEY, &count.to_le_bytes()) {
            return Verdict {
                status: Status::Fail(format!("scratch set: {e}")),
                message: None,
                measurements: Vec::new(),
            };
        }
        let trap_at = params
            .iter()
            .find(|(k, _)| k == "trap_at")
            .and_then(|(_, v)| v.parse::<u64>().ok());
        if trap_at == Some(count) {
            panic!("scratch-counter: trap_at={count}");
        }
        let measurements = vec![Measurement {
            name: "count".into(),
            value: count as f64,
        }];
        Verdict {
            status: Status::Ok,
            message: None,
            measurements,
        }
    }
}

export!(ScratchCounter);
