//! Records the wasmtime version this crate is built against (from the workspace's
//! `Cargo.lock`) as `WASMTIME_VERSION`: part of the compiled-code cache key, so a wasmtime
//! upgrade can never load an artifact of another version — without a hand-kept constant.
fn main() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let version = text
        .split("[[package]]")
        .find(|pkg| pkg.contains("\nname = \"wasmtime\"\n"))
        .and_then(|pkg| {
            pkg.lines()
                .find_map(|l| l.strip_prefix("version = \""))
                .map(|v| v.trim_end_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=WASMTIME_VERSION={version}");
}
