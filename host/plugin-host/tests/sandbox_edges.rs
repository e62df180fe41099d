//! The sandbox's edges: host memory a plugin can make the host allocate is bounded per run,
//! a granted directory is the directory opened at load (swapping its path afterwards changes
//! nothing), a wall clock the host injects (disk-lock stands down on time when the holder's
//! clock steps back during a storage outage), plugin files behind untrusted symlinks and
//! directories are refused. Needs `make plugins`; the ownership cases need root (`make test`).

mod plugin_support;

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plugin_support::{dir_grants, fixture, runtime, TempDir};
use wasmalived_plugin_host::{run::MAX_HTTP_FIELDS_BYTES, Grants};
use wasmalived_plugin_host::{PluginError, RunFailure, Runtime, Verdict};

const T: Duration = Duration::from_secs(10);

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn is_root() -> bool {
    wasmalived_sys::effective_ids().0 == 0
}

#[tokio::test]
async fn host_resources_a_plugin_creates_are_bounded_per_run() {
    let (rt, _d) = runtime();
    let plugin = rt
        .load_check("hog", &fixture("resource-hog"), &Grants::default())
        .expect("load");
    // A million pollables kept alive: stopped at the run's resource table limit.
    let out = plugin.run(&p(&[("what", "pollables")]), T).await;
    assert_eq!(
        out.result,
        Err(RunFailure::HostResources {
            limit: wasmalived_plugin_host::run::MAX_RESOURCES
        }),
        "a million pollables must be stopped: {out:?}"
    );
    // Headers appended to one set: stopped once the set reaches its byte limit (wasi-http
    // ends the run; a plugin that checks the append's error sees it refused instead).
    let out = plugin.run(&p(&[("what", "headers")]), T).await;
    match &out.result {
        Err(RunFailure::Host(why)) => assert!(why.contains("exceeds limit"), "{why}"),
        Ok(Verdict::Fail(reason)) => {
            let refused_at: usize = reason
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("count in the reason");
            assert!(
                refused_at * 1024 <= MAX_HTTP_FIELDS_BYTES,
                "{refused_at} accepted"
            );
        }
        other => panic!("the header set must be bounded, got {other:?}"),
    }
    // The next run is unaffected.
    let ok = rt
        .load_check("t", &fixture("trivial"), &Grants::default())
        .expect("load");
    assert_eq!(ok.run(&[], T).await.result, Ok(Verdict::Ok));
}

/// A disk-lock check of node `node` on `dir` (granted read-write as `/lock`).
fn disk_lock(rt: &Runtime, check: &str, dir: &Path) -> wasmalived_plugin_host::CheckPlugin {
    let grants = dir_grants(dir, "/lock", true);
    rt.load_check(check, &fixture("disk-lock"), &grants)
        .expect("load disk-lock")
}

fn lock_params(node: &str) -> Vec<(String, String)> {
    p(&[
        ("dir", "/lock"),
        ("node_id", node),
        ("lease_ms", "3000"),
        ("renew_margin_ms", "1500"),
    ])
}

#[tokio::test]
async fn disk_lock_stands_down_on_time_when_the_wall_clock_steps_back_in_an_outage() {
    let (rt, _d) = runtime();
    let shared = TempDir::new("lock");
    let plugin = disk_lock(&rt, "lock", shared.path());
    let offset_ms = Arc::new(AtomicI64::new(0));
    let offset = Arc::clone(&offset_ms);
    plugin.set_wall_clock(Arc::new(move || {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970");
        let shift = offset.load(Ordering::Relaxed);
        if shift < 0 {
            now.saturating_sub(Duration::from_millis(shift.unsigned_abs()))
        } else {
            now + Duration::from_millis(shift.unsigned_abs())
        }
    }));
    let params = lock_params("a");
    let out = plugin.run(&params, T).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");

    // Storage outage (the shared directory is gone), and the holder's clock steps back 60 s.
    std::fs::remove_dir_all(shared.path()).expect("remove the shared dir");
    offset_ms.store(-60_000, Ordering::Relaxed);
    let out = plugin.run(&params, T).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "margin still left: {out:?}");
    assert!(
        out.message
            .as_deref()
            .unwrap_or("")
            .contains("renewal failed"),
        "{out:?}"
    );
    // Past lease_ms − renew_margin_ms of real time: by the stepped wall clock the lease has a
    // minute left, but the others see it expire in under 1.5 s, so the holder stands down.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let out = plugin.run(&params, T).await;
    match &out.result {
        Ok(Verdict::Fatal(reason)) => assert!(reason.contains("standing down"), "{reason}"),
        other => panic!("the holder must stand down, got {other:?} ({out:?})"),
    }
}

#[tokio::test]
async fn a_granted_directory_swapped_for_a_symlink_after_load_is_not_followed() {
    let (rt, _d) = runtime();
    let ours = TempDir::new("ours");
    let theirs = TempDir::new("theirs");
    let a = disk_lock(&rt, "a", ours.path());
    let b = disk_lock(&rt, "b", theirs.path());
    assert_eq!(a.run(&lock_params("a"), T).await.result, Ok(Verdict::Ok));
    assert_eq!(b.run(&lock_params("b"), T).await.result, Ok(Verdict::Ok));
    // Node a's granted path now leads to node b's lease directory.
    let moved = ours.path().with_extension("moved");
    std::fs::rename(ours.path(), &moved).expect("rename");
    std::os::unix::fs::symlink(theirs.path(), ours.path()).expect("symlink");
    // Following the path, a would find b's lease and stand down; it renews its own.
    let out = a.run(&lock_params("a"), T).await;
    assert_eq!(out.result, Ok(Verdict::Ok), "{out:?}");
    let leases = std::fs::read_dir(&moved).expect("ours").count();
    assert!(
        leases >= 1,
        "a kept renewing in the directory it was granted"
    );
    let _ = std::fs::remove_file(ours.path());
    let _ = std::fs::remove_dir_all(&moved);
}

#[test]
fn a_granted_directory_others_can_write_is_refused() {
    let (rt, _d) = runtime();
    let dir = TempDir::new("open");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let grants = dir_grants(dir.path(), "/lock", true);
    let err = rt
        .load_check("c", &fixture("disk-lock"), &grants)
        .expect_err("refused");
    assert!(matches!(err, PluginError::Grant { .. }), "{err}");
    assert!(err.to_string().contains("everyone"), "{err}");
}

#[test]
fn plugin_files_behind_untrusted_symlinks_or_directories_are_refused() {
    assert!(
        is_root(),
        "this test changes file owners: run it as root (make test)"
    );
    let (rt, _d) = runtime();
    let dir = TempDir::new("plugins");
    let real = dir.install("trivial", "real.wasm");
    // A symlink owned by another user is never followed.
    let link = dir.path().join("link.wasm");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    std::process::Command::new("chown")
        .args(["-h", "65534", link.to_str().unwrap()])
        .status()
        .expect("chown");
    let err = rt
        .load_check("c", &link, &Grants::default())
        .expect_err("refused");
    assert!(matches!(err, PluginError::Insecure { .. }), "{err}");
    assert!(err.to_string().contains("65534"), "{err}");
    // A root-owned symlink in a directory another user owns (who could swap it): refused.
    let user_dir = dir.path().join("user");
    std::fs::create_dir(&user_dir).unwrap();
    let inner = user_dir.join("p.wasm");
    std::os::unix::fs::symlink(&real, &inner).unwrap();
    std::os::unix::fs::chown(&user_dir, Some(65534), None).unwrap();
    let err = rt
        .load_check("c", &inner, &Grants::default())
        .expect_err("refused");
    assert!(err.to_string().contains("user"), "{err}");
    // A root-owned symlink in root-owned directories is followed.
    let trusted = dir.path().join("trusted.wasm");
    std::os::unix::fs::symlink(&real, &trusted).unwrap();
    rt.load_check("c", &trusted, &Grants::default())
        .expect("trusted symlink followed");
}
