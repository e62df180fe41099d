//! Release builds link the daemon with its steady state's functions side by side.
//!
//! `link/hot-symbols.txt` lists the functions a settled node runs (adverts, check runs,
//! timers), hottest first; it is generated from a `perf` profile by `make hot-symbols`
//! (`tests/src/bin/hot_symbols.rs`) and passed to the linker as lld's
//! `--symbol-ordering-file`, which puts those functions first in `.text`. The kernel maps
//! 64 KiB of cached neighbours around each code page the daemon faults in (fault-around):
//! with the hot functions packed, the neighbours are hot too, and the binary's resident
//! share shrinks to about what the steady state runs (issue 14 §2; README "Memory vs
//! keepalived"). A name the build no longer has is skipped (`--no-warn-symbol-ordering`):
//! a stale file costs locality, never a build.
//!
//! Only for release builds of the `wasmalived` binary on x86_64 Linux, where rustc links
//! with its own lld. A build that picks another linker in its `RUSTFLAGS` (`-fuse-ld=bfd`,
//! `gold`, …: they do not know the option) or sets `WASMALIVED_SYMBOL_ORDERING=0` links
//! without the ordering.
use std::env;
use std::path::Path;

fn main() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot-symbols.txt");
    println!("cargo:rerun-if-changed={}", file.display());
    println!("cargo:rerun-if-env-changed=WASMALIVED_SYMBOL_ORDERING");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let rust_lld_target = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let opted_out = env::var("WASMALIVED_SYMBOL_ORDERING").is_ok_and(|v| v == "0");
    if !release || !rust_lld_target || opted_out || !file.is_file() {
        return;
    }
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let other_linker = [
        "fuse-ld=",
        "linker-features=-lld",
        "link-self-contained=-linker",
        "linker=",
    ]
    .iter()
    .find(|flag| rustflags.contains(*flag));
    if let Some(flag) = other_linker {
        println!(
            "cargo:warning=RUSTFLAGS choose the linker ({flag}…): linking wasmalived without \
             its hot-symbol ordering (a larger resident set; host/daemon/build.rs)"
        );
        return;
    }
    for arg in [
        format!("-Wl,--symbol-ordering-file={}", file.display()),
        "-Wl,--no-warn-symbol-ordering".to_owned(),
    ] {
        println!("cargo:rustc-link-arg-bin=wasmalived={arg}");
    }
}
