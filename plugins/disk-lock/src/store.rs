//! The lease directory: one file per generation, `NAME.GENERATION`, each created exactly once.
//!
//! Writing generation `g` = write the whole record to a temp file with a unique name in the
//! same directory (`.NAME.tmp.NODE.RANDOM`), fsync it, then `link` it to `NAME.g`. `link`
//! fails if `NAME.g` exists, so of several nodes racing for the same generation exactly one
//! wins (an atomic compare-and-swap that works on local filesystems and NFS), and a reader
//! never sees a partly written lease: the name appears only when the content is complete.
//! The newest generation is the lease; older ones are removed after a win (a few are kept so
//! a slow racer cannot recreate a deleted generation unnoticed — the winner also re-lists to
//! confirm it is the newest).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::decide::Observed;
use crate::lease::Lease;

/// Generations older than the newest minus this are deleted by the winner of a round.
const KEEP_GENERATIONS: u64 = 8;
/// A lease file larger than this is unreadable (a lease is ~150 bytes).
const MAX_LEASE_BYTES: u64 = 4096;

/// The outcome of [`Store::publish`].
#[derive(Debug, PartialEq, Eq)]
pub enum Publish {
    /// Our file is the newest generation and reads back as ours.
    Won,
    /// Someone created that generation (or a newer one) first.
    Lost,
}

/// The lease files in one directory.
pub struct Store {
    dir: PathBuf,
    name: String,
}

impl Store {
    /// Leases named `name.*` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Store {
        Store {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    fn path(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("{}.{generation}", self.name))
    }

    fn temp_prefix(&self) -> String {
        format!(".{}.tmp.", self.name)
    }

    /// The generations present, ascending.
    fn generations(&self) -> io::Result<Vec<u64>> {
        let prefix = format!("{}.", self.name);
        let mut gens: Vec<u64> = fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let digits = name.strip_prefix(&prefix)?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok()
            })
            .collect();
        gens.sort_unstable();
        Ok(gens)
    }

    /// Read the newest generation.
    pub fn observe(&self, now_ms: u64) -> io::Result<Observed> {
        // The newest file can vanish between listing and reading only when a newer one
        // exists (cleanup never removes the newest): list again, a bounded number of times.
        for _ in 0..3 {
            if let Some(observed) = self.observe_once(now_ms)? {
                return Ok(observed);
            }
        }
        Err(io::Error::other(
            "lease files keep vanishing while being read",
        ))
    }

    /// One listing and read; `None` if the newest file vanished meanwhile.
    fn observe_once(&self, now_ms: u64) -> io::Result<Option<Observed>> {
        let Some(&newest) = self.generations()?.last() else {
            return Ok(Some(Observed::Absent));
        };
        let path = self.path(newest);
        let unreadable = |reason: String| -> io::Result<Option<Observed>> {
            let age_ms = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .map(|t| now_ms.saturating_sub(epoch_ms(t)));
            Ok(Some(Observed::Unreadable {
                generation: newest,
                reason,
                age_ms,
            }))
        };
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            // Removed between the listing and now: a newer generation exists; look again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if meta.len() > MAX_LEASE_BYTES {
            return unreadable(format!("{} bytes", meta.len()));
        }
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return unreadable("not UTF-8".into());
        };
        match Lease::decode(&text) {
            Ok(lease) if lease.generation == newest => Ok(Some(Observed::Held(lease))),
            Ok(lease) => unreadable(format!(
                "file says generation {}, name says {newest}",
                lease.generation
            )),
            Err(reason) => unreadable(reason),
        }
    }

    /// Create `lease.generation` exclusively and confirm it is the newest and reads back as
    /// ours. `nonce` makes the temp file name unique.
    pub fn publish(&self, lease: &Lease, nonce: u64) -> io::Result<Publish> {
        let temp = self.dir.join(format!(
            "{}{}.{nonce:016x}",
            self.temp_prefix(),
            lease.holder
        ));
        let target = self.path(lease.generation);
        let linked = write_temp(&temp, lease.encode().as_bytes())
            .and_then(|()| fs::hard_link(&temp, &target));
        // The temp name is ours alone; remove it whatever happened.
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Publish::Lost),
            Err(e) => return Err(e),
        }
        sync_dir(&self.dir);
        // Confirm: still the newest generation, and it reads back as what we wrote.
        if self.generations()?.last() != Some(&lease.generation) {
            let _ = fs::remove_file(&target);
            return Ok(Publish::Lost);
        }
        match Lease::decode(&fs::read_to_string(&target)?) {
            Ok(back) if back == *lease => Ok(Publish::Won),
            _ => Ok(Publish::Lost),
        }
    }

    /// Remove generations older than `newest - KEEP_GENERATIONS`, and temp files of any node
    /// older than `stale_ms` (left by a writer that crashed between write and link).
    pub fn cleanup(&self, newest: u64, now_ms: u64, stale_ms: u64) {
        if let Ok(gens) = self.generations() {
            for g in gens
                .into_iter()
                .filter(|g| g.saturating_add(KEEP_GENERATIONS) < newest)
            {
                let _ = fs::remove_file(self.path(g));
            }
        }
        let prefix = self.temp_prefix();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.filter_map(Result::ok) {
            let is_temp = e
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix));
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now_ms.saturating_sub(epoch_ms(t)) > stale_ms);
            if is_temp && old {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Write `bytes` to a new file at `path` and fsync it.
fn write_temp(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Best effort: make the new directory entry durable (not every filesystem allows it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct Tmp(pub(crate) PathBuf);

    impl Tmp {
        pub(crate) fn new(tag: &str) -> Tmp {
            let d =
                std::env::temp_dir().join(format!("disk-lock-unit-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).expect("mkdir");
            Tmp(d)
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn lease(holder: &str, generation: u64) -> Lease {
        Lease {
            holder: holder.into(),
            generation,
            written_ms: 1000,
            expires_ms: 2000,
        }
    }

    #[test]
    fn one_winner_per_generation() {
        let t = Tmp::new("race");
        let s = Store::new(&t.0, "l");
        assert_eq!(s.observe(0).expect("observe"), Observed::Absent);
        assert_eq!(s.publish(&lease("a", 1), 1).expect("a"), Publish::Won);
        assert_eq!(s.publish(&lease("b", 1), 2).expect("b"), Publish::Lost);
        assert_eq!(
            s.observe(0).expect("observe"),
            Observed::Held(lease("a", 1))
        );
        // No temp files are left behind.
        let names: Vec<String> = fs::read_dir(&t.0)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["l.1".to_string()]);
    }

    #[test]
    fn a_stale_generation_below_the_newest_loses() {
        let t = Tmp::new("stale");
        let s = Store::new(&t.0, "l");
        assert_eq!(s.publish(&lease("a", 5), 1).expect("a"), Publish::Won);
        // b acts on an old listing and creates generation 3: it is not the newest.
        assert_eq!(s.publish(&lease("b", 3), 2).expect("b"), Publish::Lost);
        assert!(!t.0.join("l.3").exists(), "the loser removes its file");
    }

    #[test]
    fn garbled_newest_is_unreadable_with_an_age() {
        let t = Tmp::new("garbled");
        let s = Store::new(&t.0, "l");
        fs::write(t.0.join("l.4"), "wasmalived-lease 1\nholder a\n").expect("write");
        let now = epoch_ms(SystemTime::now());
        match s.observe(now).expect("observe") {
            Observed::Unreadable {
                generation: 4,
                age_ms: Some(age),
                ..
            } => assert!(age < 60_000, "{age}"),
            o => panic!("{o:?}"),
        }
        // A file whose content names another generation is unreadable too.
        fs::write(t.0.join("l.6"), lease("a", 7).encode()).expect("write");
        assert!(matches!(
            s.observe(now).expect("observe"),
            Observed::Unreadable { generation: 6, .. }
        ));
    }

    #[test]
    fn cleanup_keeps_recent_generations() {
        let t = Tmp::new("cleanup");
        let s = Store::new(&t.0, "l");
        for g in 1..=20 {
            fs::write(t.0.join(format!("l.{g}")), lease("a", g).encode()).expect("write");
        }
        fs::write(t.0.join(".l.tmp.a.0"), "x").expect("write");
        fs::write(t.0.join("unrelated"), "x").expect("write");
        let far_future = epoch_ms(SystemTime::now()) + 1_000_000;
        s.cleanup(20, far_future, 1000);
        let gens = s.generations().expect("ls");
        assert_eq!(gens, (12..=20).collect::<Vec<u64>>());
        assert!(!t.0.join(".l.tmp.a.0").exists());
        assert!(t.0.join("unrelated").exists());
    }
}
