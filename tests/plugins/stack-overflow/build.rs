//! Give the fixture a 16 MiB shadow stack (Rust's stack in linear memory) so that the engine's
//! native wasm stack limit, not the shadow stack running off the bottom of linear memory
//! (which shows up as an out-of-bounds access), is what stops the recursion.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=16777216");
    }
}
