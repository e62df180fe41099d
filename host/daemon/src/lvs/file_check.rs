//! `FILE_CHECK`: a real server follows the value of a `track_file` (keepalived 2.2.7's
//! `check/check_file.c` and `trackers/track_file.c`).
//!
//! The file is read as the VRRP side reads tracked files ([`track_files::read_value`]:
//! C's `strtol`, a missing file is 0, an out-of-range value is ignored) and watched the same
//! way (its directory, with inotify; re-read when closed after writing, moved or deleted).
//! keepalived reacts to the change at once: the probe's loop waits on [`FileProbe::changed`]
//! as well as on its `delay_loop`, which only re-reads the file as a safety net.
//! What a value does is [`FileCheck::effect`]: down, or an offset added to the real
//! server's configured weight.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::Notify;
use tracing::warn;
use wasmalived_config::lvs::{FileCheck, FileEffect};
use wasmalived_lvs::service::WeightReport;

use super::probe::Outcome;
use crate::daemon::track_files;

/// A `FILE_CHECK` ready to run: the file, what its value means, and its watcher.
pub struct FileProbe {
    check: FileCheck,
    changed: Arc<Notify>,
    /// Dropping it stops watching; `None` if the directory cannot be watched (then only
    /// `delay_loop` re-reads the file).
    _watcher: Option<notify::RecommendedWatcher>,
}

impl FileProbe {
    /// Starts watching `check`'s file.
    pub fn new(check: &FileCheck) -> FileProbe {
        let changed = Arc::new(Notify::new());
        let watcher = watch(&check.path, changed.clone());
        FileProbe {
            check: check.clone(),
            changed,
            _watcher: watcher,
        }
    }

    /// Reads the file once: up with a weight offset, or down.
    pub fn run(&self) -> Outcome {
        let started = Instant::now();
        let runner = format!("track_file {}", self.check.track_file);
        let Some(value) = track_files::read_value(&self.check.path) else {
            return Outcome::failed(
                runner,
                format!(
                    "{}: a number out of the 32-bit range",
                    self.check.path.display()
                ),
                started.elapsed(),
            );
        };
        match self.check.effect(value) {
            FileEffect::Down => Outcome::failed(
                runner,
                format!("{} reads {value}: fault", self.check.path.display()),
                started.elapsed(),
            ),
            FileEffect::Offset(offset) => Outcome {
                weight: Some(WeightReport::Offset(offset)),
                ..Outcome::ok(runner, started.elapsed())
            },
        }
    }

    /// Resolves when the file may have changed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Watches the directory of `path`, waking `changed` on the events the VRRP side reads on.
fn watch(path: &Path, changed: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path.file_name()?.to_owned();
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if track_files::worth_reading(&event.kind)
            && event
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str()))
        {
            changed.notify_one();
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(err) => {
            warn!(path = %path.display(), error = %err, "cannot watch the FILE_CHECK file; it is re-read every delay_loop");
            return None;
        }
    };
    if let Err(err) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        warn!(dir = %dir.display(), error = %err, "cannot watch the FILE_CHECK file's directory; it is re-read every delay_loop");
        return None;
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &Path, weight: i32, reverse: bool) -> FileCheck {
        FileCheck {
            track_file: "tf".into(),
            path: path.to_path_buf(),
            weight,
            reverse,
        }
    }

    #[tokio::test]
    async fn values_set_the_weight_or_take_the_server_down_and_changes_wake_the_probe() {
        let dir = std::env::temp_dir().join(format!("wa-filecheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("value");
        std::fs::write(&path, "3\n").expect("write");
        let probe = FileProbe::new(&check(&path, 2, false));
        let out = probe.run();
        assert!(out.success, "{out:?}");
        assert_eq!(out.weight, Some(WeightReport::Offset(6)));
        // Weight 0: a non-zero value is a fault; reverse: a zero one.
        let zero = FileProbe::new(&check(&path, 0, false)).run();
        assert!(
            !zero.success && zero.detail.ends_with("reads 3: fault"),
            "{zero:?}"
        );
        std::fs::write(&path, "0").expect("write");
        assert!(FileProbe::new(&check(&path, 0, false)).run().success);
        assert!(!FileProbe::new(&check(&path, 0, true)).run().success);
        // A write wakes the probe.
        std::fs::write(&path, "-1").expect("write");
        tokio::time::timeout(std::time::Duration::from_secs(10), probe.changed())
            .await
            .expect("a change is seen");
        assert_eq!(probe.run().weight, Some(WeightReport::Offset(-2)));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
