//! Fixture: spins forever without calling the host. Proves the epoch deadline stops a check
//! that never yields (verdict fail/timeout within the timeout plus a small margin).
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::types::{Params, Verdict};

struct BusyLoop;

impl Guest for BusyLoop {
    fn check(_params: Params) -> Verdict {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export!(BusyLoop);
