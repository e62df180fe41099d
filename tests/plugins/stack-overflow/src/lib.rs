//! Fixture: recurses without bound until the wasm stack is exhausted. Proves stack exhaustion
//! is a trap (verdict fail, "stack overflow"), not a host crash. `build.rs` enlarges Rust's
//! shadow stack so the engine's wasm stack limit is reached first.
wit_bindgen::generate!({ path: "../../../wit", world: "check-plugin" });

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::types::{Params, Verdict};

struct StackOverflow;

/// Not a tail call: each level waits for the next.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    recurse(std::hint::black_box(depth + 1)).wrapping_add(depth)
}

impl Guest for StackOverflow {
    fn check(_params: Params) -> Verdict {
        recurse(0);
        unreachable!("recursion returned")
    }
}

export!(StackOverflow);
