//! The plugin runtime against real components (fixtures in `tests/plugins/`, built by
//! `make plugins`): verdicts, the code cache, contract and grant refusals, file security,
//! and every misbehaving fixture failing safely while the host carries on.

mod plugin_support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use plugin_support::{dir_grants, fixture, runtime, TempDir};
use wasmalived_config::grants::{Grants, ProcessGrant, TcpGrant, UdpGrant};
use wasmalived_plugin_host::cache::CacheOutcome;
use wasmalived_plugin_host::{CheckPlugin, PluginError, RunFailure, RunOutcome, Runtime, Verdict};

const T: Duration = Duration::from_secs(5);

fn p(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn trivial_plugin_is_ok_with_identity() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("c", &fixture("trivial"), &Grants::default())
        .expect("load");
    let id = plugin.identity().to_string();
    let (name, digest) = id.split_once('@').expect("name@digest");
    assert_eq!(name, "plugin_trivial");
    assert_eq!(digest.len(), 12);
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
    let out = plugin.run(&[], T).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
    assert_eq!(out.identity, id);
    assert!(out.wall > Duration::ZERO);
    assert_eq!(out.cpu, None, "the daemon's path does not meter CPU");
    let metered = plugin.run_metered(&[], T).await;
    assert_eq!(metered.result, Ok(Verdict::Ok), "{metered:?}");
    assert!(
        metered.cpu.is_some_and(|cpu| cpu > Duration::ZERO),
        "{metered:?}"
    );
}

#[test]
fn cache_hit_on_second_load_and_corrupt_entry_recompiled() {
    let cache = TempDir::new("cache-hit");
    let dir = cache.path().join("plugin-cache");
    let f = fixture("trivial");
    let t = Instant::now();
    let first = Runtime::new(&dir).expect("rt").load_file(&f).expect("load");
    let jit = t.elapsed();
    assert_eq!(first.cache, CacheOutcome::Miss);
    // A new runtime (a daemon restart) deserializes instead of compiling.
    let rt2 = Runtime::new(&dir).expect("rt");
    let t = Instant::now();
    let second = rt2.load_file(&f).expect("load");
    let cached = t.elapsed();
    assert_eq!(second.cache, CacheOutcome::Hit);
    eprintln!("JIT load {jit:?}, cached load {cached:?}");
    // Corrupt the entry: it is recompiled, never trusted.
    let entry = rt2.cache().entry_path(&first.sha256);
    std::fs::write(&entry, b"definitely not a compiled component").expect("corrupt");
    let rt3 = Runtime::new(&dir).expect("rt");
    let third = rt3.load_file(&f).expect("recompiled");
    assert_eq!(third.cache, CacheOutcome::Recompiled);
    let rt4 = Runtime::new(&dir).expect("rt");
    assert_eq!(rt4.load_file(&f).expect("load").cache, CacheOutcome::Hit);
}

#[test]
fn other_major_contract_refused_naming_version() {
    let (rt, _d) = runtime();
    let err = rt
        .load_check("c", &fixture("contract-v2"), &Grants::default())
        .expect_err("v2 must be refused");
    assert!(matches!(err, PluginError::Contract { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("wasmalived:plugin@2.0.0"), "{msg}");
}

#[tokio::test]
async fn older_minor_contract_still_loads_and_runs() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("c", &fixture("contract-v1-0"), &Grants::default())
        .expect("1.0 plugin loads on a 1.3 host");
    let out = plugin.run(&[], T).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
}

#[tokio::test]
async fn previous_minor_contract_still_loads_with_its_scratch() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("c", &fixture("contract-v1-1"), &Grants::default())
        .expect("1.1 plugin loads on a 1.3 host");
    for run in 1..=2 {
        let out = plugin.run(&[], T).await;
        assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
        assert_eq!(out.measurements, vec![("runs".to_string(), f64::from(run))]);
        assert!(out.wake.is_empty());
    }
}

#[tokio::test]
async fn previous_minor_contract_1_2_still_loads_and_its_wake_is_served() {
    let (rt, _d) = runtime();
    let out = run_older_contract(&rt, "contract-v1-2", &Grants::default()).await;
    match &out.result {
        Ok(Verdict::Fail(reason)) => assert!(reason.contains("`processes`"), "{reason}"),
        other => panic!("on-exit without the grant must be refused: {other:?}"),
    }
    assert_eq!(out.denied, vec!["wake on-exit (needs `allow_processes`)"]);
    let granted = Grants {
        processes: Some(ProcessGrant { netns_only: false }),
        ..Grants::default()
    };
    let out = run_older_contract(&rt, "contract-v1-2", &granted).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
    assert_eq!(out.wake.pids, vec![1]);
}

/// Load `name`, a fixture built against an older minor version of the contract (it must load
/// on this host), with `grants`, and run it once.
async fn run_older_contract(rt: &Runtime, name: &str, grants: &Grants) -> RunOutcome {
    rt.load_check("c", &fixture(name), grants)
        .unwrap_or_else(|e| panic!("{name} must load on this host: {e}"))
        .run(&[], T)
        .await
}

#[tokio::test]
async fn previous_minor_contract_1_3_still_loads_and_its_wake_is_served() {
    let (rt, _d) = runtime();
    let out = run_older_contract(&rt, "contract-v1-3", &Grants::default()).await;
    match &out.result {
        Ok(Verdict::Fail(reason)) => assert!(reason.contains("`/data/flag`"), "{reason}"),
        other => panic!("on-change outside any grant must be refused: {other:?}"),
    }
    assert_eq!(out.denied.len(), 1, "{:?}", out.denied);
    let dir = TempDir::new("contract-v1-3");
    let granted = dir_grants(dir.path(), "/data", false);
    let out = run_older_contract(&rt, "contract-v1-3", &granted).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
    let named = woken_paths(&out);
    assert_eq!(named, ["/data/flag"]);
}

/// The paths (as the plugin sees them) whose change wakes the run's check early.
fn woken_paths(out: &RunOutcome) -> Vec<&str> {
    out.wake
        .paths
        .iter()
        .map(|w| w.guest_path.as_str())
        .collect()
}

/// The stock `tcp` check granted `allow_tcp` on `server` only.
fn tcp_check(rt: &Runtime, server: std::net::SocketAddr) -> CheckPlugin {
    let grants = Grants {
        tcp: vec![TcpGrant(server.to_string())],
        ..Grants::default()
    };
    stock_check(rt, "tcp", &grants)
}

#[tokio::test]
async fn a_tcp_run_that_connected_names_its_server_to_be_woken_by() {
    let (rt, _d) = runtime();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let server = listener.local_addr().expect("addr");
    let plugin = tcp_check(&rt, server);
    let params = [
        ("address", server.to_string()),
        ("wake_on_disconnect", "true".into()),
    ];
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = plugin.run(&p(&params), T).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
    assert_eq!(out.wake.addresses, vec![server]);
    // Without the parameter, nothing is held.
    let out = plugin.run(&p(&[("address", &server.to_string())]), T).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
    assert!(out.wake.is_empty(), "{out:?}");
    // Down: the run names nothing (its verdict already says so).
    drop(listener);
    let out = plugin.run(&p(&params), T).await;
    assert!(matches!(out.result, Ok(Verdict::Fail(_))), "{out:?}");
    assert!(out.wake.is_empty(), "{out:?}");
}

/// The stock `file` check on `dir`, seen by the plugin as `/flags`.
fn file_check(rt: &Runtime, dir: &TempDir) -> CheckPlugin {
    let grants = dir_grants(dir.path(), "/flags", false);
    stock_check(rt, "file", &grants)
}

/// The stock plugin `name` as a check with `grants`.
fn stock_check(rt: &Runtime, name: &str, grants: &Grants) -> CheckPlugin {
    rt.load_check(name, &fixture(name), grants)
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

#[tokio::test]
async fn a_run_names_the_file_whose_change_wakes_it() {
    let (rt, _d) = runtime();
    let dir = TempDir::new("wake-file");
    let plugin = file_check(&rt, &dir);
    let out = plugin.run(&p(&[("path", "/flags/maint")]), T).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
    let named = woken_paths(&out);
    assert_eq!(named, ["/flags/maint"]);
    assert_eq!(out.wake.paths[0].relative, std::path::Path::new("maint"));
    assert_eq!(out.wake.paths[0].dir_host_path, dir.path());
    std::fs::write(dir.path().join("maint"), "").expect("touch");
    let out = plugin.run(&p(&[("path", "/flags/maint")]), T).await;
    assert_eq!(
        out.result,
        Ok(Verdict::Fail("`/flags/maint` is present".into()))
    );
}

#[tokio::test]
async fn a_path_outside_the_granted_directories_is_refused_naming_it() {
    let (rt, _d) = runtime();
    let dir = TempDir::new("wake-denied");
    let plugin = file_check(&rt, &dir);
    for path in ["/etc/maint", "/flags/../etc/maint"] {
        let out = plugin.run(&p(&[("path", path)]), T).await;
        let Ok(Verdict::Fail(reason)) = &out.result else {
            panic!("watching {path} must be refused: {out:?}");
        };
        assert!(
            reason.contains(&format!("cannot watch `{path}`")),
            "{reason}"
        );
        assert_eq!(out.denied.len(), 1, "{:?}", out.denied);
        assert!(
            out.denied[0].starts_with("wake on-change `"),
            "{:?}",
            out.denied
        );
        assert!(out.wake.is_empty());
    }
}

#[tokio::test]
async fn a_run_names_the_processes_whose_exit_wakes_it() {
    // nginx-process counting this test binary's own processes: it asks to be woken by them.
    let (rt, _d) = runtime();
    let me = std::process::id();
    let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
    let granted = Grants {
        processes: Some(ProcessGrant { netns_only: false }),
        ..Grants::default()
    };
    let plugin = rt
        .load_check("c", &fixture("nginx-process"), &granted)
        .expect("load");
    let out = plugin.run(&p(&[("process", comm.trim_end())]), T).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
    assert!(out.wake.pids.contains(&me), "{:?}", out.wake);
    assert!(out.denied.is_empty(), "{:?}", out.denied);
    // None running: nothing to watch, and `fatal_when_none` stands down at once.
    let out = plugin
        .run(
            &p(&[("process", "wasmalived-none"), ("fatal_when_none", "true")]),
            T,
        )
        .await;
    assert!(matches!(out.result, Ok(Verdict::Fatal(_))), "{out:?}");
    assert!(out.wake.is_empty());
}

#[tokio::test]
async fn ungranted_import_refused_naming_import_and_grant() {
    let (rt, _d) = runtime();
    let err = rt
        .load_check("c", &fixture("bad-import"), &Grants::default())
        .expect_err("refused");
    let msg = err.to_string();
    assert!(matches!(err, PluginError::NotGranted { .. }), "{msg}");
    assert!(msg.contains("wasmalived:plugin/processes@"), "{msg}");
    assert!(msg.contains("`processes`"), "{msg}");
    // Granted, the same plugin loads and its call reaches the host.
    let granted = Grants {
        processes: Some(ProcessGrant { netns_only: true }),
        ..Grants::default()
    };
    let plugin = rt
        .load_check("c", &fixture("bad-import"), &granted)
        .expect("granted");
    let out = plugin.run(&[], T).await;
    assert!(matches!(out.result, Ok(Verdict::Fail(_))), "{out:?}");
}

/// The `denied-tcp` fixture granted only 127.0.0.1:1, and a listening address outside that
/// grant (the listener lives as long as the caller keeps it).
fn denied_tcp_granted_elsewhere(
    rt: &Runtime,
) -> (
    std::net::TcpListener,
    std::net::SocketAddr,
    wasmalived_plugin_host::CheckPlugin,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let open = listener.local_addr().expect("addr");
    let grants = Grants {
        tcp: vec![TcpGrant("127.0.0.1:1".into())],
        ..Grants::default()
    };
    let plugin = rt
        .load_check("c", &fixture("denied-tcp"), &grants)
        .expect("load");
    (listener, open, plugin)
}

#[tokio::test]
async fn tcp_outside_allowlist_denied() {
    let (rt, _d) = runtime();
    let (_listener, open, plugin) = denied_tcp_granted_elsewhere(&rt);
    let out = plugin.run(&p(&[("address", &open.to_string())]), T).await;
    match &out.result {
        Ok(Verdict::Fail(r)) => assert!(r.contains("access-denied"), "{out:?}"),
        v => panic!("connect outside the allowlist must be denied, got {v:?}"),
    }
    // The host says what it refused, so the daemon reports the failure as a denial.
    assert_eq!(out.denied.len(), 1, "{out:?}");
    assert!(
        out.denied[0].contains(&open.to_string()) && out.denied[0].contains("not granted"),
        "{out:?}"
    );
    // Not granted at all: wasi:sockets is linked with TCP off, so the plugin loads and every
    // connect is denied.
    let plugin = rt
        .load_check("c", &fixture("denied-tcp"), &Grants::default())
        .expect("loads: sockets are linked deny-all");
    let out = plugin.run(&p(&[("address", &open.to_string())]), T).await;
    match &out.result {
        Ok(Verdict::Fail(r)) => assert!(
            r.contains("denied") || r.contains("not-supported") || r.contains("access"),
            "{out:?}"
        ),
        v => panic!("connect without a tcp grant must be denied, got {v:?}"),
    }
}

/// The WASI context is handed from one run to the next (`run_context.rs`): what a run was
/// refused is its own, never reported again by the next run.
#[tokio::test]
async fn each_run_reports_only_its_own_denials() {
    let (rt, _d) = runtime();
    let (_listener, open, plugin) = denied_tcp_granted_elsewhere(&rt);
    for run in 1..=3 {
        let out = plugin.run(&p(&[("address", &open.to_string())]), T).await;
        assert!(
            matches!(&out.result, Ok(Verdict::Fail(r)) if r.contains("access-denied")),
            "run {run}: {out:?}"
        );
        assert_eq!(out.denied.len(), 1, "run {run}: {out:?}");
    }
}

#[tokio::test]
async fn udp_to_an_ungranted_peer_is_denied_and_recorded() {
    let (rt, _d) = runtime();
    // A real peer, so that a leak would be a delivered datagram, not a silent loss.
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let open = peer.local_addr().expect("addr");
    let grants = Grants {
        udp: vec![UdpGrant("127.0.0.1:1".into())],
        ..Grants::default()
    };
    let plugin = rt
        .load_check("c", &fixture("denied-udp"), &grants)
        .expect("load");
    let out = plugin.run(&p(&[("address", &open.to_string())]), T).await;
    match &out.result {
        Ok(Verdict::Fail(r)) => assert!(r.contains("access-denied"), "{out:?}"),
        v => panic!("a datagram outside the allowlist must be denied, got {v:?}"),
    }
    assert_eq!(out.denied.len(), 1, "{out:?}");
    assert!(
        out.denied[0].starts_with("udp ")
            && out.denied[0].contains(&open.to_string())
            && out.denied[0].contains("not granted"),
        "{out:?}"
    );
    peer.set_nonblocking(true).expect("nonblocking");
    assert!(
        peer.recv_from(&mut [0u8; 16]).is_err(),
        "nothing reached the peer"
    );
    // Granted the peer, the same plugin sends.
    let granted = Grants {
        udp: vec![UdpGrant(open.to_string())],
        ..Grants::default()
    };
    let plugin = rt
        .load_check("c", &fixture("denied-udp"), &granted)
        .expect("load");
    let out = plugin.run(&p(&[("address", &open.to_string())]), T).await;
    assert!(matches!(out.result, Ok(Verdict::Ok)), "{out:?}");
    // Not granted at all: wasi:sockets/udp is not linked, so the plugin does not load and the
    // refusal names the import and the grant.
    let err = rt
        .load_check("c", &fixture("denied-udp"), &Grants::default())
        .expect_err("refused");
    let msg = err.to_string();
    assert!(matches!(err, PluginError::NotGranted { .. }), "{msg}");
    assert!(
        msg.contains("wasi:sockets/udp") && msg.contains("`udp`"),
        "{msg}"
    );
}

#[test]
fn world_writable_plugin_file_refused() {
    let (rt, _d) = runtime();
    let dir = TempDir::new("ww");
    let f = dir.install("trivial", "ww.wasm");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let err = rt
        .load_check("c", &f, &Grants::default())
        .expect_err("refused");
    let msg = err.to_string();
    assert!(matches!(err, PluginError::Insecure { .. }), "{msg}");
    assert!(
        msg.contains("ww.wasm") && msg.contains("writable by everyone"),
        "{msg}"
    );
}

#[test]
fn garbage_and_core_module_refused() {
    let (rt, _d) = runtime();
    let dir = TempDir::new("bad");
    let f = dir.path().join("garbage.wasm");
    std::fs::write(&f, b"\0asm\x0d\0\x01\0 half a component").expect("write");
    let err = rt.load_check("c", &f, &Grants::default()).expect_err("bad");
    assert!(matches!(err, PluginError::Invalid { .. }), "{err}");
    std::fs::write(&f, b"\0asm\x01\0\0\0").expect("write");
    let err = rt
        .load_check("c", &f, &Grants::default())
        .expect_err("core");
    assert!(err.to_string().contains("core wasm module"), "{err}");
}

#[tokio::test]
async fn busy_loop_stopped_by_deadline() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("c", &fixture("busy-loop"), &Grants::default())
        .expect("load");
    let timeout = Duration::from_millis(500);
    let t = Instant::now();
    let out = plugin.run(&[], timeout).await;
    let took = t.elapsed();
    match &out.result {
        Err(failure @ RunFailure::Timeout { after, .. }) => {
            assert_eq!(*after, timeout);
            assert_eq!(failure.to_string(), "timeout after 500ms");
        }
        v => panic!("{v:?}"),
    }
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn busy_loop_does_not_block_other_tasks() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("c", &fixture("busy-loop"), &Grants::default())
        .expect("load");
    let run = tokio::spawn(plugin.run(&[], Duration::from_secs(1)));
    // This current-thread test runtime keeps ticking while the plugin spins.
    let t = Instant::now();
    let mut ticks = 0;
    while t.elapsed() < Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        ticks += 1;
    }
    assert!(ticks >= 20, "reactor starved: {ticks} ticks in 500ms");
    let out = run.await.expect("join");
    assert!(
        matches!(out.result, Err(RunFailure::Timeout { .. })),
        "{out:?}"
    );
}

/// Per-check fairness on one executor thread: while a busy loop spins there for its whole
/// timeout, the checks living on the same thread keep their timers and run to `ok` — long
/// before the busy run ends. (A busy run that merely requeued itself would let the thread poll
/// its timers only every 61 slices of 10 ms: ten ticks would outlast the busy run.)
#[tokio::test]
async fn busy_loop_does_not_hold_up_checks_on_its_thread() {
    let (rt, _d) = runtime();
    let busy = rt
        .load_check("busy", &fixture("busy-loop"), &Grants::default())
        .expect("load busy");
    let trivial = rt
        .load_check("trivial", &fixture("trivial"), &Grants::default())
        .expect("load trivial");
    let home = rt.spawn_resident(async move {
        // Spawned from a resident task: the same thread, its runs inline.
        let spinning = tokio::spawn(busy.run(&[], Duration::from_secs(3)));
        tokio::task::yield_now().await;
        let mut verdicts = Vec::new();
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            verdicts.push(trivial.run(&[], Duration::from_secs(1)).await.result);
        }
        let busy_still_running = !spinning.is_finished();
        let busy = spinning.await.expect("busy run");
        (verdicts, busy_still_running, busy.result)
    });
    let (verdicts, busy_still_running, busy) = home.await.expect("resident task");
    assert!(
        verdicts.iter().all(|v| *v == Ok(Verdict::Ok)),
        "{verdicts:?}"
    );
    assert!(
        busy_still_running,
        "the checks waited for the busy loop to end"
    );
    assert!(matches!(busy, Err(RunFailure::Timeout { .. })), "{busy:?}");
}

#[tokio::test]
async fn memory_bomb_stopped_at_limit() {
    let (rt, _d) = runtime();
    let grants = Grants {
        memory_limit: 16 << 20,
        ..Grants::default()
    };
    let plugin = rt
        .load_check("c", &fixture("memory-bomb"), &grants)
        .expect("load");
    let out = plugin.run(&[], T).await;
    match &out.result {
        Err(failure @ RunFailure::Memory { limit }) => {
            assert_eq!(*limit, 16 << 20);
            assert_eq!(failure.to_string(), "memory limit 16 MiB exceeded");
        }
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn trap_is_a_fail_and_next_run_is_fresh() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("c", &fixture("trap"), &Grants::default())
        .expect("load");
    for how in ["panic", "unreachable"] {
        let out = plugin.run(&p(&[("how", how)]), T).await;
        match &out.result {
            Err(RunFailure::Trap(r)) => assert!(r.contains("unreachable"), "{how}: {r}"),
            v => panic!("{how}: {v:?}"),
        }
    }
}

#[tokio::test]
async fn stack_overflow_is_a_fail() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("c", &fixture("stack-overflow"), &Grants::default())
        .expect("load");
    let out = plugin.run(&[], T).await;
    assert_eq!(out.result, Err(RunFailure::StackOverflow), "{out:?}");
}

#[tokio::test]
async fn log_flood_bounded_and_host_survives() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("c", &fixture("log-flood"), &Grants::default())
        .expect("load");
    for to in ["log", "stdout", "stderr"] {
        let t = Instant::now();
        let out = plugin
            .run_metered(&p(&[("to", to)]), Duration::from_secs(60))
            .await;
        eprintln!(
            "log flood to {to}: {:?} wall, {:?} cpu",
            t.elapsed(),
            out.cpu
        );
        assert_eq!(out.result, Ok(Verdict::Ok), "{to}: {out:?}");
        // The bound holds: at most MAX_LINES lines of the million got through, the rest
        // were counted; stdout/stderr keep at most the capture bound.
        match to {
            "log" => assert!(
                out.log_dropped
                    >= 1_000_000 - u64::from(wasmalived_plugin_host::caps::log::MAX_LINES),
                "{to}: only {} lines dropped",
                out.log_dropped
            ),
            _ => assert!(
                out.output_dropped
                    >= 1_000_000 - wasmalived_plugin_host::caps::stdio::CAPTURE_BYTES as u64,
                "{to}: only {} bytes dropped",
                out.output_dropped
            ),
        }
    }
    // The host is unharmed: a trivial plugin still answers.
    let ok = rt
        .load_check("t", &fixture("trivial"), &Grants::default())
        .expect("load");
    assert_eq!(ok.run(&[], T).await.result, Ok(Verdict::Ok));
}

#[tokio::test]
async fn scratch_survives_runs_and_traps() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("counter", &fixture("scratch-counter"), &Grants::default())
        .expect("load");
    let count = |o: &RunOutcome| {
        o.measurements
            .iter()
            .find(|(k, _)| k == "count")
            .map(|(_, v)| *v)
    };
    assert_eq!(count(&plugin.run(&[], T).await), Some(1.0));
    assert_eq!(count(&plugin.run(&[], T).await), Some(2.0));
    let trapped = plugin.run(&p(&[("trap_at", "3")]), T).await;
    assert!(
        matches!(trapped.result, Err(RunFailure::Trap(_))),
        "{trapped:?}"
    );
    assert_eq!(count(&plugin.run(&[], T).await), Some(4.0));
    // Another check has its own store.
    let other = rt
        .load_check("other", &fixture("scratch-counter"), &Grants::default())
        .expect("load");
    assert_eq!(count(&other.run(&[], T).await), Some(1.0));
}
