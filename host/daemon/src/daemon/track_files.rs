//! `track_file`: the integer in a file, watched with inotify (the `notify` crate), fed to the
//! router as [`Command::TrackFile`] (keepalived's `trackers/track_file.c`).
//!
//! keepalived's rules, kept here: the file is read as C's `strtol(…, 0)` reads it (leading
//! blanks, a sign, `0x` hex or `0` octal, text after the number ignored; no number = 0); a
//! missing or empty file is 0; a value outside the 32-bit range is logged and ignored. The
//! file is re-read when it is closed after writing or moved in, and reads 0 when deleted or
//! moved away; its directory is what is watched, so a file created later is seen.
//! `init_file` writes its value at start-up if the file is missing (or always, with
//! `overwrite`, except on a reload).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use wasmalived_config::{Config, TrackFileDef};

use super::driver::Command;

/// At most this much of a file is read (keepalived reads 127 bytes).
const READ_LIMIT: u64 = 127;

/// The watcher of every tracked file. Dropping it stops watching.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The files `config` tracks (defined and tracked by an instance or a sync group), by name.
pub fn tracked(config: &Config) -> Vec<&TrackFileDef> {
    config
        .track_files
        .iter()
        .filter(|def| {
            config
                .instances
                .iter()
                .flat_map(|i| &i.track_files)
                .chain(config.sync_groups.iter().flat_map(|g| &g.track_files))
                .any(|t| t.name == def.name)
        })
        .collect()
}

/// The files only `FILE_CHECK`s follow (no instance or sync group tracks them): their
/// `init_file` is written here too, and the LVS director watches them.
pub fn checked_only(config: &Config) -> Vec<&TrackFileDef> {
    let vrrp = tracked(config);
    config
        .track_files
        .iter()
        .filter(|def| !vrrp.iter().any(|v| v.name == def.name))
        .filter(|def| {
            config
                .virtual_servers
                .iter()
                .flat_map(|vs| &vs.real_servers)
                .flat_map(|rs| &rs.checkers)
                .any(|c| matches!(&c.kind, wasmalived_config::lvs::CheckerKind::File(f) if f.track_file == def.name))
        })
        .collect()
}

/// `init_file`: write the initial value (only if missing, or always with `overwrite` —
/// never on a reload, and never over something that is not a regular file).
pub fn initialise(def: &TrackFileDef, reload: bool) {
    let Some(init) = def.init else { return };
    match std::fs::symlink_metadata(&def.path) {
        Ok(_) if !init.overwrite || reload => return,
        Ok(meta) if !meta.file_type().is_file() => {
            warn!(track_file = %def.name, path = %def.path.display(), "cannot initialise: not a regular file");
            return;
        }
        _ => {}
    }
    if let Err(err) =
        crate::safe_file::write_private(&def.path, format!("{}\n", init.value).as_bytes())
    {
        warn!(track_file = %def.name, path = %def.path.display(), error = %err, "cannot initialise the tracked file");
    }
}

/// The value of the file at `path` as keepalived reads it; `None`: out of range, ignored.
pub fn read_value(path: &Path) -> Option<i64> {
    let mut text = Vec::new();
    match std::fs::File::open(path) {
        Ok(file) => {
            if let Err(err) = file.take(READ_LIMIT).read_to_end(&mut text) {
                debug!(path = %path.display(), error = %err, "tracked file unreadable: 0");
                return Some(0);
            }
        }
        Err(_) => return Some(0),
    }
    let value = strtol_any_base(&String::from_utf8_lossy(&text));
    if value < i128::from(i32::MIN) || value > i128::from(i32::MAX) + 1 {
        warn!(path = %path.display(), %value, "invalid number in the tracked file; ignored, as keepalived does");
        return None;
    }
    i64::try_from(value).ok()
}

/// C's `strtol(text, NULL, 0)`, saturated to a wide range: blanks, a sign, then `0x`/`0X`
/// hexadecimal, `0` octal or decimal digits; no digits = 0.
fn strtol_any_base(text: &str) -> i128 {
    let s = text.trim_start();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(rest) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
    {
        if rest.starts_with(|c: char| c.is_ascii_hexdigit()) {
            (16, rest)
        } else {
            (10, "0")
        }
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    let mut value: i128 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        value = value
            .saturating_mul(i128::from(radix))
            .saturating_add(i128::from(d));
        if value > i128::from(i64::MAX) {
            value = i128::from(i64::MAX) + 1;
            break;
        }
    }
    if negative {
        -value
    } else {
        value
    }
}

/// Watch `files` (name and path) and send each change to the driver. Each directory is
/// watched once; a directory that cannot be watched is logged (its files keep the value
/// read now).
pub fn watch(files: Vec<(String, PathBuf)>, commands: mpsc::Sender<Command>) -> Option<FileWatch> {
    if files.is_empty() {
        return None;
    }
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<notify::Event>();
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                let _ = raw_tx.send(event);
            }
        },
    ) {
        Ok(w) => w,
        Err(err) => {
            warn!(error = %err, "cannot watch tracked files; their values stay as read at start-up");
            return None;
        }
    };
    // By directory, then file name: what an event's path maps to.
    let mut by_place: HashMap<(PathBuf, OsString), Vec<(String, PathBuf)>> = HashMap::new();
    for (name, path) in files {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let Some(file) = path.file_name().map(|f| f.to_owned()) else {
            warn!(track_file = %name, path = %path.display(), "not a file path; not watched");
            continue;
        };
        by_place.entry((dir, file)).or_default().push((name, path));
    }
    let dirs: std::collections::BTreeSet<PathBuf> =
        by_place.keys().map(|(d, _)| d.clone()).collect();
    for dir in dirs {
        if let Err(err) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            warn!(dir = %dir.display(), error = %err, "cannot watch the tracked files' directory; keepalived drops such files too");
        }
    }
    let task = tokio::spawn(async move {
        while let Some(event) = raw_rx.recv().await {
            if !worth_reading(&event.kind) {
                continue;
            }
            for path in &event.paths {
                let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
                    continue;
                };
                let Some(owners) = by_place.get(&(dir.to_path_buf(), file.to_owned())) else {
                    continue;
                };
                for (name, path) in owners {
                    let Some(value) = read_value(path) else {
                        continue;
                    };
                    info!(track_file = %name, value, "tracked file changed");
                    let update = Command::TrackFile {
                        name: name.clone(),
                        value,
                    };
                    if commands.send(update).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Some(FileWatch {
        _watcher: watcher,
        task,
    })
}

/// keepalived's events: closed after writing, moved in or out, deleted (a file being
/// written is read when it is closed, never half-written).
pub(crate) fn worth_reading(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_strtol_base_0() {
        assert_eq!(strtol_any_base("12\n"), 12);
        assert_eq!(strtol_any_base("  -7 apples"), -7);
        assert_eq!(strtol_any_base("0x1f"), 31);
        assert_eq!(strtol_any_base("010"), 8);
        assert_eq!(strtol_any_base("0"), 0);
        assert_eq!(strtol_any_base("abc"), 0);
        assert_eq!(strtol_any_base(""), 0);
        assert_eq!(strtol_any_base("0xg"), 0);
        assert_eq!(strtol_any_base("+5"), 5);
    }

    #[test]
    fn files_read_missing_as_zero_and_ignore_out_of_range() {
        let dir = std::env::temp_dir().join(format!("wa-trackfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_value(&dir.join("missing")), Some(0));
        let f = dir.join("v");
        std::fs::write(&f, "42\n").unwrap();
        assert_eq!(read_value(&f), Some(42));
        std::fs::write(&f, "").unwrap();
        assert_eq!(read_value(&f), Some(0));
        std::fs::write(&f, "99999999999").unwrap();
        assert_eq!(read_value(&f), None);
        // keepalived accepts up to INT32_MAX + 1.
        std::fs::write(&f, "2147483648").unwrap();
        assert_eq!(read_value(&f), Some(2_147_483_648));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
