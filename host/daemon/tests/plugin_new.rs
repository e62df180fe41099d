//! `wasmalived plugin new NAME --lang rust|python|js|c`: each language's project, generated
//! into a temporary directory, builds with the one command its README gives and passes
//! `wasmalived plugin run` as written (verdict ok), then fails as its parameter says.
//!
//! Needs the toolchains `scripts/setup.sh` installs (`make test` runs it), hence the
//! `lab-tests` feature; a missing toolchain fails the build step with its output. The Rust
//! project builds into `target/plugin-new-rust/` (kept between runs, so only the first run
//! compiles the SDK's dependencies) with the workspace's `Cargo.lock`.

mod cli_support;
mod toolchains;

use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::{args, run, Run, CLI};
use toolchains::{build, componentize_py, target_dir, wit_c, workspace};

/// A fresh project directory for `name` (in a directory of its own, removed on drop).
struct Project {
    dir: PathBuf,
    root: PathBuf,
}

impl Project {
    /// `wasmalived plugin new NAME --lang LANG --dir DIR`, checked to succeed.
    fn new(name: &str, lang: &str) -> Project {
        let root = std::env::temp_dir().join(format!(
            "wasmalived-plugin-new-{lang}-{}",
            std::process::id()
        ));
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&root);
        let mut cmd = Command::new(CLI);
        cmd.args(["plugin", "new", name, "--lang", lang, "--dir"])
            .arg(&dir);
        build(cmd, &format!("plugin new {name} --lang {lang}"));
        assert!(
            dir.join("README.md").is_file(),
            "no README in {}",
            dir.display()
        );
        Project { dir, root }
    }

    /// The project's build command: `program args...` run in the project directory.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(&self.dir);
        cmd
    }

    /// The README gives `command` as the one build command.
    fn documents(&self, command: &str) {
        let readme = std::fs::read_to_string(self.dir.join("README.md")).expect("README");
        assert!(
            readme.contains(&format!("```sh\n{command}\n```")),
            "README does not give `{command}` as the build command:\n{readme}"
        );
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // A failed test keeps the project, to be looked at.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// `wasmalived plugin run WASM [--param ...] --json`, twice in one process.
fn plugin_run(wasm: &Path, params: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(CLI);
    cmd.args(["plugin", "run"])
        .arg(wasm)
        .args(args(params, &["--repeat", "2"]))
        .arg("--json");
    run(cmd)
}

/// The generated check: ok and counting its runs in scratch; fails once it ran `fail_after`
/// times; a bad parameter is a `fail` naming it.
fn passes_plugin_run(wasm: &Path) {
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    let r = plugin_run(wasm, &[]);
    r.expect(0, "ok", "");
    assert_eq!(
        r.measurement("runs"),
        2.0,
        "the scratch store kept the count; {r}"
    );
    assert_eq!(r.message(), "run 2", "{r}");
    plugin_run(wasm, &[("fail_after", "2")]).expect(1, "fail", "ran 2 times (fail_after=2)");
    plugin_run(wasm, &[("fail_after", "0")]).expect(1, "fail", "fail_after");
}

#[test]
fn rust_project_builds_and_passes_plugin_run() {
    let p = Project::new("new-rust-check", "rust");
    p.documents("cargo build --release --target wasm32-wasip2");
    // The workspace's lock: the same dependency versions as the SDK is tested with.
    std::fs::copy(workspace().join("Cargo.lock"), p.dir.join("Cargo.lock")).expect("lock");
    let target = target_dir().join("plugin-new-rust");
    let mut cmd = p.command(
        env!("CARGO"),
        &["build", "--release", "--target", "wasm32-wasip2"],
    );
    cmd.env("CARGO_TARGET_DIR", &target);
    build(cmd, "cargo build of the Rust project");
    passes_plugin_run(&target.join("wasm32-wasip2/release/new_rust_check.wasm"));
    // Its own native tests (against the SDK's fakes) pass too.
    let mut cmd = p.command(env!("CARGO"), &["test"]);
    cmd.env("CARGO_TARGET_DIR", &target);
    build(cmd, "cargo test of the Rust project");
}

#[test]
fn python_project_builds_and_passes_plugin_run() {
    let p = Project::new("new-python-check", "python");
    p.documents("make");
    let mut cmd = p.command("make", &[]);
    cmd.arg(format!("COMPONENTIZE_PY={}", componentize_py().display()));
    build(cmd, "make of the Python project");
    passes_plugin_run(&p.dir.join("new-python-check.wasm"));
}

#[test]
fn js_project_builds_and_passes_plugin_run() {
    let p = Project::new("new-js-check", "js");
    p.documents("make");
    build(p.command("make", &[]), "make of the JavaScript project");
    passes_plugin_run(&p.dir.join("new-js-check.wasm"));
}

#[test]
fn c_project_builds_and_passes_plugin_run() {
    let p = Project::new("new-c-check", "c");
    p.documents("make");
    let mut cmd = p.command("make", &[]);
    cmd.arg(format!("WIT_C={}", wit_c().display()));
    build(cmd, "make of the C project");
    passes_plugin_run(&p.dir.join("new-c-check.wasm"));
}
