//! Writing a root-owned file in a directory others can write to (`/tmp`), safely.
//!
//! keepalived's CVE-2018-19044 (and 19045/19046): it wrote `/tmp/keepalived.data` with a
//! plain `fopen(.., "w")`, so a local user who planted a symlink there made root overwrite
//! any file, or read what it wrote. keepalived 2.2.7's `fopen_safe` writes a fresh temporary
//! file and renames it into place; [`write_private`] does the same, plus a policy check:
//!
//! 1. what is at the path now must be nothing, or a regular file owned by the daemon's user:
//!    a symlink, a directory, a FIFO or another user's file is refused (and left alone);
//! 2. the contents go to a new file in the same directory, created with
//!    `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600 — never an existing file, never through a
//!    link — so no other user can open it;
//! 3. that file is renamed over the path. `rename(2)` replaces the directory entry itself and
//!    never follows a symlink, so even a link planted between the check and the rename is
//!    replaced, not written through; and there is no moment when the path is missing or
//!    half-written.

use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why [`write_private`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SafeFileError {
    /// The path is a symbolic link (planted, or left by someone): never followed.
    #[error("{}: is a symbolic link; refusing to write through it", path.display())]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// The path is a directory, FIFO, socket or device.
    #[error("{}: not a regular file; refusing to replace it", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// The path is another user's file.
    #[error("{}: owned by uid {uid}, not by the daemon's user (uid {ours}); refusing to replace it", path.display())]
    NotOurs {
        /// The path.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// The daemon's effective uid.
        ours: u32,
    },
    /// A system call failed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file the call was about.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// How many temporary names are tried before giving up (each taken one was planted by
/// someone else, or left by a crash).
const TEMP_ATTEMPTS: u64 = 16;

/// Tells apart the temporary files of one process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Replace the file at `path` with `contents` (mode 0600, owned by the daemon's user), or
/// refuse; see the module documentation for the rules.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), SafeFileError> {
    check_replaceable(path)?;
    let (temp, mut file) = create_temp(path)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_data())
        .map_err(|source| SafeFileError::Io {
            path: temp.clone(),
            what: "writing",
            source,
        })
        .and_then(|()| {
            std::fs::rename(&temp, path).map_err(|source| SafeFileError::Io {
                path: path.to_path_buf(),
                what: "renaming the new file into place",
                source,
            })
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Nothing at `path`, or a regular file of ours.
fn check_replaceable(path: &Path) -> Result<(), SafeFileError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SafeFileError::Io {
                path: path.to_path_buf(),
                what: "reading what is there",
                source,
            })
        }
    };
    let path = path.to_path_buf();
    if meta.file_type().is_symlink() {
        return Err(SafeFileError::Symlink { path });
    }
    if !meta.file_type().is_file() {
        return Err(SafeFileError::NotRegular { path });
    }
    let ours = wasmalived_sys::effective_ids().0;
    if meta.uid() != ours {
        return Err(SafeFileError::NotOurs {
            path,
            uid: meta.uid(),
            ours,
        });
    }
    Ok(())
}

/// A new file beside `path`, created exclusively (never an existing file, never a link)
/// with mode 0600.
fn create_temp(path: &Path) -> Result<(PathBuf, std::fs::File), SafeFileError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let temp = path.with_file_name(format!(".{name}.{}.{seq}.tmp", std::process::id()));
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp);
        match opened {
            Ok(file) => {
                // The umask may only have narrowed 0600; make it exact anyway.
                use std::os::unix::fs::PermissionsExt;
                let exact = file.set_permissions(std::fs::Permissions::from_mode(0o600));
                return match exact {
                    Ok(()) => Ok((temp, file)),
                    Err(source) => {
                        let _ = std::fs::remove_file(&temp);
                        Err(SafeFileError::Io {
                            path: temp,
                            what: "setting mode 0600",
                            source,
                        })
                    }
                };
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last = Some(err),
            Err(source) => {
                return Err(SafeFileError::Io {
                    path: temp,
                    what: "creating",
                    source,
                })
            }
        }
    }
    Err(SafeFileError::Io {
        path: path.to_path_buf(),
        what: "creating a temporary file beside it (every name tried is taken)",
        source: last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wa-safe-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_a_new_file_and_replaces_its_own_with_mode_0600() {
        let dir = scratch("new");
        let path = dir.join("keepalived.data");
        write_private(&path, b"one\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(entries(&dir), vec!["keepalived.data"], "no temporary left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_symlink_is_refused_and_its_target_untouched_cve_2018_19044() {
        let dir = scratch("link");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.join("keepalived.data");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = write_private(&path, b"dump\n").unwrap_err();
        assert!(matches!(err, SafeFileError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        // A dangling link (to a file that would be created) is refused as well.
        let dangling = dir.join("keepalived.stats");
        std::os::unix::fs::symlink(dir.join("created"), &dangling).unwrap();
        assert!(write_private(&dangling, b"x").is_err());
        assert!(!dir.join("created").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_or_a_fifo_is_not_replaced() {
        let dir = scratch("kinds");
        let sub = dir.join("keepalived.json");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(
            write_private(&sub, b"x"),
            Err(SafeFileError::NotRegular { .. })
        ));
        assert!(sub.is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_users_file_is_not_replaced() {
        let dir = scratch("owner");
        let path = dir.join("keepalived.stats");
        std::fs::write(&path, "theirs\n").unwrap();
        let ours = wasmalived_sys::effective_ids().0;
        // As root the file can be given away; as another user this test has no one to
        // give it to, and checks the rule through its error type only.
        if ours == 0 {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let err = write_private(&path, b"x").unwrap_err();
            assert!(
                matches!(err, SafeFileError::NotOurs { uid: 65534, .. }),
                "{err}"
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "theirs\n");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
