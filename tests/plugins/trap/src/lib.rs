//! Fixture: traps. `how=panic` (default) panics (a Rust panic aborts to `unreachable`);
//! `how=unreachable` executes the `unreachable` instruction directly. Proves a trap becomes a
//! `fail` verdict naming the trap and the trapped instance is never entered again.
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::types::{Params, Verdict};

struct Trap;

impl Guest for Trap {
    fn check(params: Params) -> Verdict {
        #[cfg(target_arch = "wasm32")]
        if params.iter().any(|(k, v)| k == "how" && v == "unreachable") {
            core::arch::wasm32::unreachable()
        }
        let _ = params;
        panic!("trap fixture: deliberate panic")
    }
}

export!(Trap);
