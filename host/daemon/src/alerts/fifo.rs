//! keepalived's notify FIFO (`notify_fifo`, `vrrp_notify_fifo`): one line per event,
//!
//! ```text
//! INSTANCE "VI_1" MASTER 100
//! GROUP "VG_1" BACKUP 0
//! INSTANCE "VI_1" MASTER_PRIORITY 90      (notify_priority_changes)
//! ```
//!
//! As keepalived does (`lib/notify.c` `fifo_open`, `keepalived/vrrp/vrrp_notify.c`): the FIFO
//! is created (mode 0644) when missing and removed at exit only if the daemon created it; it
//! is opened read-write and non-blocking, so opening never waits for a reader and a write
//! never blocks. A line the pipe has no room for (no reader, or a slow one) is dropped and
//! counted: the pipe buffer is the only queue, so a reader can never delay VRRP. Lines are
//! far shorter than `PIPE_BUF`, so each arrives whole. The `*_script` reader, if any, is
//! started with the FIFO's path as its last argument and runs until the daemon stops.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::task::JoinHandle;
use tracing::{info, warn};
use wasmalived_sys::program::Program;

/// One open notify FIFO (and its reader script). Dropping it stops the script and removes a
/// FIFO the daemon created.
#[derive(Debug)]
pub struct FifoSink {
    path: PathBuf,
    file: Mutex<File>,
    created: bool,
    dropped: AtomicU64,
    script: Option<JoinHandle<()>>,
}

/// Why a FIFO could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FifoError {
    /// `mkfifo` failed (other than: it exists).
    #[error("cannot create notify FIFO {path}: {source}")]
    Create {
        /// The FIFO.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// The path exists and is not a FIFO.
    #[error("notify FIFO {path} exists and is not a FIFO")]
    NotAFifo {
        /// The path.
        path: PathBuf,
    },
    /// Opening failed (a symlink is refused).
    #[error("cannot open notify FIFO {path}: {source}")]
    Open {
        /// The FIFO.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

impl FifoSink {
    /// Create `path` if missing (owned by `owner`, uid and gid, when given), start `script`
    /// with the path appended, then open the FIFO.
    pub fn open(
        path: &Path,
        owner: Option<(u32, u32)>,
        script: Option<&Program>,
    ) -> Result<Self, FifoError> {
        let created = match rustix::fs::mkfifoat(
            rustix::fs::CWD,
            path,
            rustix::fs::Mode::from_raw_mode(0o644),
        ) {
            Ok(()) => true,
            Err(rustix::io::Errno::EXIST) => false,
            Err(err) => {
                return Err(FifoError::Create {
                    path: path.to_owned(),
                    source: err.into(),
                })
            }
        };
        if !created {
            let meta = std::fs::symlink_metadata(path).map_err(|source| FifoError::Open {
                path: path.to_owned(),
                source,
            })?;
            if !meta.file_type().is_fifo() {
                return Err(FifoError::NotAFifo {
                    path: path.to_owned(),
                });
            }
        }
        if let (true, Some((uid, gid))) = (created, owner) {
            if let Err(err) = std::os::unix::fs::chown(path, Some(uid), Some(gid)) {
                warn!(fifo = %path.display(), error = %err, "cannot set the notify FIFO's owner");
            }
        }
        let script = script.map(|program| spawn_reader(program, path));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| {
                if created {
                    let _ = std::fs::remove_file(path);
                }
                FifoError::Open {
                    path: path.to_owned(),
                    source,
                }
            })?;
        info!(fifo = %path.display(), created, "notify FIFO open");
        Ok(FifoSink {
            path: path.to_owned(),
            file: Mutex::new(file),
            created,
            dropped: AtomicU64::new(0),
            script,
        })
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines dropped so far because the pipe was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Write one line (with its newline) without waiting; a full pipe drops it.
    pub fn write_line(&self, line: &str) {
        let written = match self.file.lock() {
            Ok(mut file) => file.write(line.as_bytes()),
            Err(poisoned) => poisoned.into_inner().write(line.as_bytes()),
        };
        match written {
            Ok(n) if n == line.len() => {}
            Ok(_) | Err(_) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Rate-limited: the first drop and every power of two.
                if dropped.is_power_of_two() {
                    warn!(fifo = %self.path.display(), dropped, "notify FIFO full (no reader, or a slow one): line dropped");
                }
            }
        }
    }
}

impl Drop for FifoSink {
    fn drop(&mut self) {
        // Unlink first, so a reader that reopens in a loop cannot reopen this FIFO.
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Some(script) = self.script.take() {
            // Dropping the run kills the reader's process group.
            script.abort();
        }
    }
}

/// Run the FIFO's reader script until it exits or the sink is dropped.
fn spawn_reader(program: &Program, path: &Path) -> JoinHandle<()> {
    let command = program.command().clone().args([path.display().to_string()]);
    let fifo = path.display().to_string();
    tokio::spawn(async move {
        match command.run(None).await {
            Ok(finished) => {
                warn!(%fifo, status = %finished.exit, "notify FIFO script exited")
            }
            Err(err) => warn!(%fifo, error = %err, "notify FIFO script did not run"),
        }
    })
}

/// keepalived's line for a state change: `INSTANCE "NAME" STATE PRIO` / `GROUP "NAME" STATE 0`.
pub fn state_line(kind: &str, name: &str, state: &str, priority: u8) -> String {
    format!("{kind} \"{name}\" {state} {priority}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wa-fifo-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lines_have_keepalived_format() {
        assert_eq!(
            state_line("INSTANCE", "VI_1", "MASTER", 100),
            "INSTANCE \"VI_1\" MASTER 100\n"
        );
        assert_eq!(
            state_line("GROUP", "G", "BACKUP", 0),
            "GROUP \"G\" BACKUP 0\n"
        );
    }

    #[tokio::test]
    async fn creates_writes_without_reader_drops_when_full_and_removes() {
        let dir = temp_dir("full");
        let path = dir.join("notify.fifo");
        let sink = FifoSink::open(&path, None, None).expect("open");
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_fifo());
        // A reader sees whole lines.
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        sink.write_line("INSTANCE \"VI_1\" BACKUP 100\n");
        let mut got = String::new();
        reader.read_to_string(&mut got).ok();
        assert_eq!(got, "INSTANCE \"VI_1\" BACKUP 100\n");
        // Nobody reads: the pipe fills, then lines are dropped without blocking.
        let line = "INSTANCE \"VI_1\" MASTER 100\n";
        for _ in 0..(1 << 20) / line.len() {
            sink.write_line(line);
        }
        assert!(sink.dropped() > 0);
        drop(sink);
        assert!(!path.exists(), "a FIFO the daemon created is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_existing_fifo_is_kept_and_a_regular_file_refused() {
        let dir = temp_dir("existing");
        let path = dir.join("mine.fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        drop(FifoSink::open(&path, None, None).expect("open"));
        assert!(path.exists(), "a FIFO the daemon did not create stays");
        let file = dir.join("plain");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(
            FifoSink::open(&file, None, None),
            Err(FifoError::NotAFifo { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
