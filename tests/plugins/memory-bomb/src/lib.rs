//! Fixture: allocates and touches 1 MiB blocks until the host's memory limit stops it.
//! Proves a check cannot take more than its memory limit (verdict fail, host unharmed).
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::types::{Params, Verdict};

struct MemoryBomb;

impl Guest for MemoryBomb {
    fn check(_params: Params) -> Verdict {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Non-zero fill so every page is really written.
            hoard.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export!(MemoryBomb);
