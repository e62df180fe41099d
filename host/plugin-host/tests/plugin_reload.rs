//! Hot reload through the real directory watcher: replace → new digest; corrupt → refused,
//! old version keeps answering; delete → keeps running; 100 rapid replacements → bounded RSS
//! and never a half-written file loaded; a plugin found by name in a search path is shadowed
//! by a file dropped into an earlier directory and falls back when it is removed.

mod plugin_support;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use plugin_support::{fixture, runtime, TempDir};
use wasmalived_config::grants::Grants;
use wasmalived_config::PluginSearchPath;
use wasmalived_plugin_host::reload::{reload_path, PluginRegistry, ReloadResult};
use wasmalived_plugin_host::{CheckHandle, PluginSource, PluginWatcher, Verdict};
use wasmalived_testkit::rss_kib;

const T: Duration = Duration::from_secs(5);

/// Replace `dst` atomically with `src`'s bytes (write a temp file, rename over).
fn replace_atomically(src: &Path, dst: &Path) {
    let tmp = dst.with_extension("tmp");
    std::fs::copy(src, &tmp).expect("copy");
    std::fs::rename(&tmp, dst).expect("rename");
}

async fn wait_for_identity(h: &CheckHandle, want_prefix: &str, within: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        if h.identity().starts_with(want_prefix) || h.identity().ends_with(want_prefix) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn digest_of(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read");
    wasmalived_plugin_host::loader::sha256_hex(&bytes)[..12].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_corrupt_delete() {
    let (rt, _c) = runtime();
    let dir = TempDir::new("reload");
    let file = dir.install("trivial", "check.wasm");
    let reg = PluginRegistry::new();
    let source = PluginSource::File(file.clone());
    let h = reg
        .load(&rt, "c", &source, &Grants::default())
        .expect("load");
    let _w =
        PluginWatcher::spawn(&[dir.path().to_path_buf()], rt.clone(), reg.clone()).expect("watch");
    let old = h.identity();

    // Replace: the next run reports the new digest.
    let new_src = fixture("scratch-counter");
    let new_digest = digest_of(&new_src);
    replace_atomically(&new_src, &file);
    assert!(
        wait_for_identity(&h, &new_digest, Duration::from_secs(10)).await,
        "not reloaded: still {}",
        h.identity()
    );
    let out = h.run(&[], T).await;
    assert_eq!(out.result, Ok(Verdict::Ok));
    assert!(
        out.identity.ends_with(&new_digest),
        "{} vs {old}",
        out.identity
    );

    // Corrupt: refused, the running version keeps answering.
    std::fs::write(&file, b"\0asm\x0d\0\x01\0 garbage").expect("corrupt");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(h.identity().ends_with(&new_digest));
    assert_eq!(h.run(&[], T).await.result, Ok(Verdict::Ok));
    let watcher_refusals = reg.counts().reload_refusals;
    assert!(watcher_refusals >= 1, "{:?}", reg.counts());
    let rt2 = rt.clone();
    let (reg2, file2) = (reg.clone(), file.clone());
    let direct = tokio::task::spawn_blocking(move || reload_path(&rt2, &reg2, &file2))
        .await
        .expect("join");
    assert!(matches!(direct, ReloadResult::Refused(_)), "{direct:?}");
    // Counted: one load, one reload, the watcher's refusals and the direct one.
    let counts = reg.counts();
    assert_eq!((counts.loads, counts.load_refusals), (1, 0), "{counts:?}");
    assert_eq!(counts.reloads, 1, "{counts:?}");
    assert_eq!(counts.reload_refusals, watcher_refusals + 1, "{counts:?}");
    let missing = dir.path().join("missing.wasm");
    let missing = PluginSource::File(missing);
    assert!(reg.load(&rt, "m", &missing, &Grants::default()).is_err());
    assert_eq!(reg.counts().load_refusals, 1);

    // Delete: keeps running.
    std::fs::remove_file(&file).expect("rm");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(h.identity().ends_with(&new_digest));
    assert_eq!(h.run(&[], T).await.result, Ok(Verdict::Ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_rapid_replacements_bounded_and_never_half_written() {
    let (rt, _c) = runtime();
    let dir = TempDir::new("rapid");
    let file = dir.install("trivial", "rapid.wasm");
    let a = std::fs::read(fixture("trivial")).expect("a");
    let b = std::fs::read(fixture("scratch-counter")).expect("b");
    let valid = [
        digest_of(&fixture("trivial")),
        digest_of(&fixture("scratch-counter")),
    ];
    let reg = PluginRegistry::new();
    let source = PluginSource::File(file.clone());
    let h = reg
        .load(&rt, "c", &source, &Grants::default())
        .expect("load");
    let _w =
        PluginWatcher::spawn(&[dir.path().to_path_buf()], rt.clone(), reg.clone()).expect("watch");
    // Warm up both versions once so their compiled code is in the cache and memo.
    for bytes in [&b, &a] {
        std::fs::write(&file, bytes).expect("write");
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    let rss_before = rss_kib();
    for i in 0..100 {
        let bytes = if i % 2 == 0 { &b } else { &a };
        // Written in place in two halves with a pause: a watcher that loaded early would see
        // a half-written file.
        let mut f = std::fs::File::create(&file).expect("create");
        let half = bytes.len() / 2;
        f.write_all(&bytes[..half]).expect("write");
        f.flush().expect("flush");
        tokio::time::sleep(Duration::from_millis(5)).await;
        f.write_all(&bytes[half..]).expect("write");
        drop(f);
        let out = h.run(&[], T).await;
        assert_eq!(out.result, Ok(Verdict::Ok), "run {i}: {out:?}");
        let id = out.identity;
        assert!(
            valid.iter().any(|d| id.ends_with(d.as_str())),
            "run {i}: {id}"
        );
    }
    // Let the last write settle and load; then measure.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..20 {
        assert_eq!(h.run(&[], T).await.result, Ok(Verdict::Ok));
    }
    let rss_after = rss_kib();
    eprintln!("RSS before {rss_before} KiB, after {rss_after} KiB");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert!(
        h.identity().ends_with(valid[0].as_str()),
        "last write (i = 99) was `a`: {}",
        h.identity()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_in_an_earlier_directory_shadows_and_its_removal_falls_back() {
    let (rt, _c) = runtime();
    let (admin, packaged) = (TempDir::new("admin"), TempDir::new("packaged"));
    let stock = packaged.install("trivial", "probe.wasm");
    let search = PluginSearchPath::new(vec![
        admin.path().to_path_buf(),
        packaged.path().to_path_buf(),
    ])
    .expect("non-empty");
    let source = PluginSource::Search {
        name: "probe".into(),
        path: search.clone(),
    };
    let reg = PluginRegistry::new();
    let h = reg
        .load(&rt, "c", &source, &Grants::default())
        .expect("load");
    let _w = PluginWatcher::spawn(search.dirs(), rt.clone(), reg.clone()).expect("watch");
    let stock_digest = digest_of(&stock);
    assert!(h.identity().ends_with(&stock_digest), "{}", h.identity());

    // Dropped into the administrator's directory: it shadows the packaged file.
    let mine_src = fixture("scratch-counter");
    let mine_digest = digest_of(&mine_src);
    let mine = admin.path().join("probe.wasm");
    replace_atomically(&mine_src, &mine);
    assert!(
        wait_for_identity(&h, &mine_digest, Duration::from_secs(10)).await,
        "not shadowed: still {}",
        h.identity()
    );
    assert_eq!(h.run(&[], T).await.result, Ok(Verdict::Ok));

    // A change to the shadowed packaged file changes nothing.
    let direct = {
        let (rt, reg, stock) = (rt.clone(), reg.clone(), stock.clone());
        tokio::task::spawn_blocking(move || reload_path(&rt, &reg, &stock))
            .await
            .expect("join")
    };
    assert_eq!(direct, ReloadResult::Unchanged);
    assert!(h.identity().ends_with(&mine_digest), "{}", h.identity());

    // Removed: the packaged file runs again.
    std::fs::remove_file(&mine).expect("rm");
    assert!(
        wait_for_identity(&h, &stock_digest, Duration::from_secs(10)).await,
        "no fallback: still {}",
        h.identity()
    );
    assert_eq!(h.run(&[], T).await.result, Ok(Verdict::Ok));

    // Nothing left anywhere: the loaded version keeps running.
    std::fs::remove_file(&stock).expect("rm");
    let gone = {
        let (rt, reg) = (rt.clone(), reg.clone());
        tokio::task::spawn_blocking(move || reload_path(&rt, &reg, &mine))
            .await
            .expect("join")
    };
    assert_eq!(gone, ReloadResult::Deleted);
    assert_eq!(h.run(&[], T).await.result, Ok(Verdict::Ok));
}

#[test]
fn a_named_plugin_missing_from_every_directory_is_refused_naming_them() {
    let (rt, _c) = runtime();
    let (a, b) = (TempDir::new("empty-a"), TempDir::new("empty-b"));
    let source = PluginSource::Search {
        name: "absent".into(),
        path: PluginSearchPath::new(vec![a.path().to_path_buf(), b.path().to_path_buf()])
            .expect("non-empty"),
    };
    let err = PluginRegistry::new()
        .load(&rt, "c", &source, &Grants::default())
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("no absent.wasm")
            && text.contains(&a.path().display().to_string())
            && text.contains(&b.path().display().to_string()),
        "{text}"
    );
}
