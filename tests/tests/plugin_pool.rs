//! The plugin runtime's footprint and hot reload, end to end (issue 14): a daemon whose
//! address space is capped (`prlimit --as`, what `ulimit -v` sets) still starts and runs its
//! plugin check, because the instance pool is sized from the configuration; and a plugin
//! renamed into place runs at once, long before the check's next interval.
//!
//! Needs root, `cargo build -p wasmalived` and `make plugins`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use wasmalived_e2e::with_global;
use wasmalived_e2e::{
    plugin_check, plugin_path, wait_for, with_checks, CheckTiming, Daemon, Impl, LabError, Pair,
    Proto, Result,
};

const CHECK: &str = "chk_tcp";
/// Lab slack for a loaded machine (a JIT compile of a plugin included).
const SLACK: Duration = Duration::from_secs(20);
/// 2 GiB: a reasonable `ulimit -v` for a small daemon.
const ADDRESS_SPACE_LIMIT: &str = "--as=2147483648";

/// A `tcp` check of a closed local port, every `interval` seconds.
fn tcp_check(plugin: &Path, interval: u32) -> String {
    let timing = CheckTiming {
        interval,
        timeout: Some(1),
        fall: 1,
        rise: 1,
        weight: -5,
    };
    plugin_check(
        CHECK,
        plugin,
        &[("address", "127.0.0.1:9"), ("timeout_ms", "500")],
        &["allow_tcp 127.0.0.1:9"],
        &timing,
    )
}

/// The check's `(runner, runs)`: the identity (`name@digest`) of the plugin that ran last.
fn last_run(d: &Daemon) -> Result<(String, u64)> {
    let json = d.status_json()?;
    let v: serde_json::Value =
        serde_json::from_str(&json).map_err(|_| LabError::parse("status JSON", &json))?;
    let check = v
        .get("checks")
        .and_then(|c| c.as_array())
        .and_then(|a| a.iter().find(|c| c["name"] == CHECK))
        .ok_or_else(|| LabError::parse("status JSON without the check", &json))?;
    Ok((
        check["runner"].as_str().unwrap_or_default().to_string(),
        check["runs"].as_u64().unwrap_or(0),
    ))
}

fn wait_first_run(pair: &Pair, d: &Daemon, within: Duration) -> Result<String> {
    wait_for(
        "the plugin check's first run",
        within,
        Duration::from_millis(50),
        || Ok(last_run(d)?.1 > 0),
        || pair.lab.log_summary(30),
    )?;
    Ok(last_run(d)?.0)
}

#[test]
fn a_daemon_under_a_2_gib_address_space_limit_runs_its_plugin_check() -> Result<()> {
    let pair = Pair::new("poolas", Proto::V2Pass, [Impl::Wasmalived; 2])?;
    let conf = with_checks(
        &pair.confs[0].render(),
        &tcp_check(&plugin_path("tcp")?, 1),
        &[CHECK],
    )?;
    let d = pair.lab.start_daemon_wrapped(
        Impl::Wasmalived,
        "n1",
        &conf,
        &[],
        &["prlimit", ADDRESS_SPACE_LIMIT, "--"],
    )?;
    let runner = wait_first_run(&pair, &d, SLACK)?;
    assert!(runner.contains("tcp@"), "runner {runner:?}");
    assert!(
        d.proc.is_running(),
        "daemon exited\n{}",
        d.proc.log_tail(20)
    );
    pair.lab.pass()
}

/// `wasm` with a custom section appended: the same component, another digest.
fn variant(wasm: &[u8], tag: u8) -> Vec<u8> {
    let name = b"wasmalived-test";
    let payload = [&[name.len() as u8][..], name, &[tag]].concat();
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    out.push(payload.len() as u8);
    out.extend_from_slice(&payload);
    out
}

#[test]
fn a_plugin_renamed_into_place_runs_at_once_not_at_the_next_interval() -> Result<()> {
    let pair = Pair::new("poolrl", Proto::V2Pass, [Impl::Wasmalived; 2])?;
    let dir = pair.lab.dir().join("plugins");
    fs::create_dir_all(&dir).map_err(|e| LabError::io("creating the plugin dir", e))?;
    let stock = fs::read(plugin_path("tcp")?).map_err(|e| LabError::io("reading tcp.wasm", e))?;
    let file = dir.join("tcp.wasm");
    fs::write(&file, &stock).map_err(|e| LabError::io("writing tcp.wasm", e))?;
    // An interval far longer than the waits below: a run seen after the rename was caused
    // by the rename.
    const INTERVAL: u32 = 600;
    // The watched directories are the plugin search path.
    let conf = with_global(
        &with_checks(
            &pair.confs[0].render(),
            &tcp_check(&file, INTERVAL),
            &[CHECK],
        )?,
        &[&format!("plugin_dir {}", dir.display())],
    )?;
    let d = pair.lab.start_daemon(Impl::Wasmalived, "n1", &conf)?;
    let first = wait_first_run(&pair, &d, SLACK)?;

    let staged = dir.join("tcp.wasm.new");
    fs::write(&staged, variant(&stock, 1)).map_err(|e| LabError::io("staging", e))?;
    fs::rename(&staged, &file).map_err(|e| LabError::io("renaming into place", e))?;
    let took = wait_for(
        "the new version's first run",
        SLACK,
        Duration::from_millis(10),
        || Ok(last_run(&d)?.0 != first),
        || pair.lab.log_summary(30),
    )?;
    let (runner, runs) = last_run(&d)?;
    assert!(runner.contains("tcp@") && runner != first, "{runner}");
    assert_eq!(runs, 2, "one run at start, one for the reload");
    eprintln!("renamed in → new digest run after {took:?}");
    pair.lab.pass()
}
