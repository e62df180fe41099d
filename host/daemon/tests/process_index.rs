//! The plugin runtime's process-name index, kept from the kernel's process connector by the
//! daemon's process monitor (`procs::index_feed`), as a daemon in the initial network
//! namespace runs it: a process started after the index went live, then renamed by
//! `PR_SET_NAME` (a write to its own `/proc/self/comm`), is found by its new name through the
//! index alone (its old name no longer finds it), and is gone once it exits.
//!
//! Needs root (subscribing to the connector needs `CAP_NET_ADMIN`) and the initial network
//! namespace.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmalived::procs::index_feed;
use wasmalived_plugin_host::ProcessIndex;

/// How long a process event may take to reach the index on a loaded 2-core machine: the
/// connector delivers at once; this only bounds a broken test.
const EVENT_BOUND: Duration = Duration::from_secs(10);

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < EVENT_BOUND,
            "not within {EVENT_BOUND:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the child on every path out of the test.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_process_started_and_renamed_after_start_up_is_found_by_its_new_name_until_it_exits() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let index = Arc::new(ProcessIndex::new());
    // No tracked process: only the plugins' lookups want the events.
    let _monitor = rt.block_on(index_feed::follow_processes(
        Arc::clone(&index),
        cancel.clone(),
        &tracker,
    ));
    wait_until("the index goes live (connector subscribed)", || {
        index.is_live()
    });

    // Unique per run: tests of other binaries may run at the same time. At most 15 bytes.
    let name = format!("waidx{}", std::process::id());
    // `sh` (a fork and an exec: indexed as `sh`) waits for a line on its stdin, renames
    // itself (a `comm` event: only that event can give the index the new name), then blocks
    // on its stdin, a pipe the test holds open, until killed.
    let script = format!("read go; printf %s {name} > /proc/$$/comm; read stop");
    let child = Command::new("/bin/sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut child = Reaped(child);
    let pid = child.0.id();
    wait_until(&format!("pid {pid} indexed as sh"), || {
        index
            .candidates("sh")
            .is_some_and(|pids| pids.contains(&pid))
    });
    let stdin = child.0.stdin.as_mut().expect("piped stdin");
    stdin.write_all(b"go\n").expect("write to sh");
    wait_until(&format!("pid {pid} indexed as {name}"), || {
        index
            .candidates(&name)
            .is_some_and(|pids| pids.contains(&pid))
    });
    assert!(
        !index.candidates("sh").unwrap_or_default().contains(&pid),
        "its old name no longer names it"
    );
    let on_disk = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
    assert_eq!(on_disk.trim_end(), name);

    drop(child);
    wait_until(&format!("pid {pid} gone from the index"), || {
        index
            .candidates(&name)
            .is_some_and(|pids| !pids.contains(&pid))
    });
    cancel.cancel();
    tracker.close();
    rt.block_on(tracker.wait());
}
