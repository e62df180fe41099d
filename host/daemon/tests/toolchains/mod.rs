//! Shared helpers of the tests that build plugins with other languages' toolchains
//! (`example_plugins.rs`, `plugin_new.rs`): where the workspace and its tools are, and running
//! a build command so that a failure shows its output.
//!
//! The toolchains are installed by `scripts/setup.sh` (what `make test` runs first): Debian's
//! clang, lld, wasi-libc and libclang-rt-dev-wasm32; componentize-py in a venv under
//! `target/example-plugins/tools/`; componentize-js from npm; the `wasm32-wasip2` Rust target.
//! `wasmalived-wit-c` is built by `make test` next to the CLI. A missing one fails the test
//! with the command that installs it: nothing is skipped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli_support::CLI;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// The cargo target directory the CLI was built into.
pub fn target_dir() -> PathBuf {
    Path::new(CLI)
        .ancestors()
        .nth(2)
        .expect("target dir above the CLI binary")
        .to_path_buf()
}

/// `wasmalived-wit-c`, built next to the CLI; panics with the fix if it is missing.
pub fn wit_c() -> PathBuf {
    let tool = Path::new(CLI).with_file_name("wasmalived-wit-c");
    assert!(
        tool.is_file(),
        "{} is missing: run `cargo build -p wasmalived-wit-c` (`make test` does)",
        tool.display()
    );
    tool
}

/// componentize-py in the venv `scripts/setup.sh` makes; panics with the fix if missing.
pub fn componentize_py() -> PathBuf {
    let tool = workspace().join("target/example-plugins/tools/venv/bin/componentize-py");
    assert!(
        tool.is_file(),
        "{} is missing: run `scripts/build-example-plugins.sh --tools --only python` \
         (`scripts/setup.sh` does)",
        tool.display()
    );
    tool
}

/// Run `cmd` to completion; panics with its output if it fails.
pub fn build(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The short name (`/proc/self/comm`) of this test process: a process that surely runs.
pub fn own_comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .expect("/proc/self/comm")
        .trim()
        .to_string()
}
