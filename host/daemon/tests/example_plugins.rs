//! The example plugins in other languages (`examples/plugins/`: Python with componentize-py,
//! JavaScript with componentize-js, C with clang + wasi-libc + `wasmalived-wit-c`), each
//! built by `scripts/build-example-plugins.sh` with its pinned toolchain and run through the
//! daemon's runtime (`wasmalived plugin run --json`) with the grants it needs.
//!
//! Needs the toolchains `scripts/setup.sh` installs (`make test` runs it), hence the
//! `lab-tests` feature; a missing toolchain fails the build step with its output.

mod cli_support;
mod toolchains;

use std::path::PathBuf;
use std::process::Command;

use cli_support::{args, run, Run, CLI};
use toolchains::{build, own_comm, wit_c, workspace};

/// Build example `lang` (`python`, `js` or `c`); the component's path.
fn build_example(lang: &str, file: &str) -> PathBuf {
    let mut cmd = Command::new(workspace().join("scripts/build-example-plugins.sh"));
    cmd.args(["--only", lang]).env("WIT_C", wit_c());
    build(cmd, &format!("building the {lang} example"));
    let wasm = workspace().join("target/example-plugins").join(file);
    assert!(wasm.is_file(), "{} was not written", wasm.display());
    wasm
}

/// `wasmalived plugin run WASM ARGS... --json`.
fn plugin_run(wasm: &PathBuf, args: &[String]) -> Run {
    let mut cmd = Command::new(CLI);
    cmd.args(["plugin", "run"])
        .arg(wasm)
        .args(args)
        .arg("--json");
    run(cmd)
}

#[test]
fn python_example_counts_processes() {
    let wasm = build_example("python", "python-process-check.wasm");
    let me = own_comm();
    let r = plugin_run(&wasm, &args(&[("name", &me)], &["--processes"]));
    r.expect(0, "ok", "");
    assert!(r.measurement("count") >= 1.0, "{r}");
    let r = plugin_run(&wasm, &args(&[("name", "no-such-proc")], &["--processes"]));
    r.expect(
        1,
        "fail",
        "0 no-such-proc process(es) running, want at least 1",
    );
    // Not granted the process table: the plugin does not load.
    plugin_run(&wasm, &args(&[("name", &me)], &[])).expect(3, "", "");
}

#[test]
fn js_example_counts_processes_and_keeps_state() {
    let wasm = build_example("js", "js-check.wasm");
    let me = own_comm();
    let r = plugin_run(
        &wasm,
        &args(&[("name", &me)], &["--processes", "--repeat", "2"]),
    );
    r.expect(0, "ok", "");
    assert!(r.measurement("count") >= 1.0, "{r}");
    assert_eq!(
        r.measurement("restarts"),
        0.0,
        "the same pids in both runs; {r}"
    );
    plugin_run(
        &wasm,
        &args(&[("name", &me), ("hold", "x")], &["--processes"]),
    )
    .expect(1, "fail", "hold");
}

#[test]
fn c_example_counts_processes_and_remediates() {
    let wasm = build_example("c", "c-check.wasm");
    let me = own_comm();
    let grants = ["--processes", "--remediation", "restart=/bin/true"];
    let r = plugin_run(&wasm, &args(&[("name", &me)], &grants));
    r.expect(0, "ok", "");
    assert!(r.measurement("count") >= 1.0, "{r}");
    // Nothing runs; the remediation runs (and exits 0) but brings nothing back.
    let r = plugin_run(
        &wasm,
        &args(
            &[("name", "no-such-proc"), ("remediate", "restart")],
            &grants,
        ),
    );
    r.expect(1, "fail", "still none running");
    assert_eq!(r.measurement("remediation_exit"), 0.0, "{r}");
}
