//! The process-name index (issue 14 §3) end to end: wasmalived started from the initial
//! network namespace with `net_namespace` (so the kernel's process connector works, as in
//! track_process.rs) keeps its plugins' process index from process events, and an
//! `nginx-process` check (`allow_processes netns`) looks its process up there instead of
//! reading all of `/proc`.
//!
//! The process the check counts is started *after* the daemon, in the node's namespace, and
//! renamed by itself (`PR_SET_NAME` through `/proc/self/comm`: a `comm` event; its `exec`
//! named it `sh`). The index must follow both events for the check to come up; killing the
//! process (an `exit` event, and the check's wake) brings it down again.
//!
//! Needs root and `cargo build -p wasmalived`, `make plugins`.

use std::time::Duration;

use wasmalived_e2e::{
    plugin_check, plugin_path, wait_for, wasmalived_bin, with_checks, CheckTiming, Impl, Pair,
    Proto, Result, NODES,
};

const CHECK: &str = "chk_renamed";
const TIMING: CheckTiming = CheckTiming {
    interval: 1,
    timeout: Some(1),
    fall: 1,
    rise: 1,
    weight: -10,
};
/// Slack on top of the check interval: the CI machine has 2 busy cores.
const MARGIN: Duration = Duration::from_secs(3);
/// The daemon's rescan after lost process events (`procs::RESYNC_SETTLE`).
const RESYNC_SETTLE: Duration = Duration::from_secs(1);
/// What the daemon logs when the index goes live (`procs::index_feed::LIVE_MESSAGE`).
const INDEX_LIVE: &str = "process index built from process events";

#[test]
fn a_process_started_and_renamed_after_start_up_is_counted_through_the_index() -> Result<()> {
    wasmalived_bin()?;
    let plugin = plugin_path("nginx_process")?;
    let mut pair = Pair::new("procidx", Proto::V3Ipv4, [Impl::Wasmalived; 2])?;
    // A name no other test's process has (comm holds 15 bytes).
    let name = format!("waidx{}", std::process::id());
    let block = plugin_check(
        CHECK,
        &plugin,
        &[("process", &name)],
        &["allow_processes netns"],
        &TIMING,
    );
    let text = with_checks(&pair.confs[0].render(), &block, &[CHECK])?;
    pair.start_net_namespace_with(0, &text)?;
    let bound = TIMING.interval() * 2 + MARGIN;
    let d = pair.daemon(0)?;
    pair.lab.wait_check(d, CHECK, "down", bound)?;
    // Live once the kernel confirmed the subscription; after lost events (the connector is
    // opened before the runtime starts, and events may pile up meanwhile), once the monitor
    // has rescanned, a second later (`procs::RESYNC_SETTLE`).
    wait_for(
        "the process index to go live",
        RESYNC_SETTLE + MARGIN,
        Duration::from_millis(50),
        || {
            let log = std::fs::read_to_string(d.proc.log_path()).unwrap_or_default();
            Ok(log.contains(INDEX_LIVE))
        },
        || d.proc.log_tail(30),
    )?;

    // Started after the daemon; renamed by itself a second later, when the daemon has long
    // seen its exec (as `sh`), so only the `comm` event can give the index the new name;
    // then looping on `sleep 1` until killed (its forked children carry the name only until
    // their exec).
    let script = format!("sleep 1; printf %s {name} > /proc/$$/comm; while :; do sleep 1; done");
    let renamed = pair
        .lab
        .spawn(NODES[0], &["sh", "-c", &script], "renamed.log")?;
    pair.lab.wait_check(d, CHECK, "up", bound)?;

    renamed.kill9_group()?;
    pair.lab.wait_check(d, CHECK, "down", bound)?;
    pair.pass()
}
