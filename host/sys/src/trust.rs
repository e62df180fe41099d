//! keepalived's `enable_script_security` path check (CVE-2018-19044..19046 lesson).
//!
//! keepalived (`core/notify.c`, `check_security`, called from `check_script_secure`) walks
//! every prefix of the script path — `/`, `/etc`, `/etc/keepalived`, … — with `lstat` (no
//! symlink following) and rejects the script if any element is
//! - not owned by root, or
//! - a directory *without* the sticky bit, or the file itself, that is group-writable with a
//!   non-root group, or world-writable;
//!
//! every element but the last must be a directory, the last a regular file or a symlink. It
//! checks both the configured path and the resolved (`realpath`) one. keepalived only applies
//! this to scripts that run with root privileges (uid 0, gid 0, or setuid/setgid-root files:
//! `need_script_protection`); with `enable_script_security` an unsafe script is disabled,
//! without it keepalived only logs "Unsafe permissions found".
//!
//! Ours (see [`super::script`]): the same walk, with two deliberate differences: a root-owned
//! symlink may appear anywhere in the configured path (keepalived rejects `/bin/true` on a
//! merged-/usr system because `/bin` is a symlink; the resolved path, which is what runs, is
//! walked too and has no symlinks), and for a script that runs as a non-root user we also trust
//! that user as an owner (principle 14: refuse files owned by another user).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const S_IWGRP: u32 = 0o020;
const S_IWOTH: u32 = 0o002;
const S_ISVTX: u32 = 0o1000;

/// Why a script path is unsafe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Insecure {
    /// An element cannot be `lstat`ed.
    #[error("{path}: cannot inspect: {reason}")]
    Unreadable {
        /// The element.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// Wrong file type (a non-directory inside the path, or a last element that is neither a
    /// file nor a symlink).
    #[error("{path}: wrong file type in script path")]
    WrongType {
        /// The element.
        path: PathBuf,
    },
    /// Owned by an untrusted user.
    #[error("{path}: owned by uid {uid}, not by root{}", trusted_hint(*.trusted))]
    Owner {
        /// The element.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// The extra trusted uid, if any.
        trusted: Option<u32>,
    },
    /// Writable by others.
    #[error("{path}: writable by {who} (mode {mode:o})")]
    Writable {
        /// The element.
        path: PathBuf,
        /// "group gid N" or "everyone".
        who: String,
        /// Its permission bits.
        mode: u32,
    },
}

fn trusted_hint(trusted: Option<u32>) -> String {
    trusted.map(|u| format!(" or uid {u}")).unwrap_or_default()
}

/// Check every element of `path` (absolute) as keepalived's `check_security` does; `trusted`
/// is an extra owner uid accepted besides root.
pub fn check_path(path: &Path, trusted: Option<u32>) -> Result<(), Insecure> {
    let mut prefixes: Vec<&Path> = path.ancestors().collect();
    prefixes.reverse();
    let last = prefixes.len().saturating_sub(1);
    for (i, element) in prefixes.into_iter().enumerate() {
        let meta = std::fs::symlink_metadata(element).map_err(|e| Insecure::Unreadable {
            path: element.to_owned(),
            reason: e.to_string(),
        })?;
        let ft = meta.file_type();
        let is_last = i == last;
        // Symlinks are accepted anywhere (keepalived only accepts them last): merged-/usr
        // systems have `/bin -> usr/bin`, and the resolved path is checked separately.
        if !(ft.is_dir() || ft.is_symlink() || (is_last && ft.is_file())) {
            return Err(Insecure::WrongType {
                path: element.to_owned(),
            });
        }
        let uid = meta.uid();
        if uid != 0 && Some(uid) != trusted {
            return Err(Insecure::Owner {
                path: element.to_owned(),
                uid,
                trusted,
            });
        }
        let mode = meta.mode() & 0o7777;
        let guarded = (ft.is_dir() && mode & S_ISVTX == 0) || ft.is_file();
        if guarded {
            if mode & S_IWOTH != 0 {
                return Err(Insecure::Writable {
                    path: element.to_owned(),
                    who: "everyone".into(),
                    mode,
                });
            }
            if meta.gid() != 0 && mode & S_IWGRP != 0 {
                return Err(Insecure::Writable {
                    path: element.to_owned(),
                    who: format!("group gid {}", meta.gid()),
                    mode,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wasmalived-sec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn file(dir: &Path, mode: u32) -> PathBuf {
        let f = dir.join("check.sh");
        std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    fn own_uid() -> u32 {
        std::fs::metadata(std::env::temp_dir().join("."))
            .map(|_| crate::effective_ids().0)
            .unwrap()
    }

    #[test]
    fn system_binaries_are_safe() {
        check_path(Path::new("/bin/sh"), None).unwrap();
    }

    #[test]
    fn world_writable_file_is_named() {
        let dir = scratch("ww");
        let f = file(&dir, 0o777);
        let trusted = Some(own_uid());
        let err = check_path(&f, trusted).unwrap_err();
        assert!(
            matches!(&err, Insecure::Writable { path, .. } if path == &f),
            "{err}"
        );
        assert!(err.to_string().contains("check.sh"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn world_writable_parent_without_sticky_bit_is_refused() {
        let dir = scratch("wd");
        let f = file(&dir, 0o755);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_path(&f, Some(own_uid())).unwrap_err();
        assert!(
            matches!(&err, Insecure::Writable { path, .. } if path == &dir),
            "{err}"
        );
        // With the sticky bit (like /tmp) the directory is accepted.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_path(&f, Some(own_uid())).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn owner_must_be_root_or_trusted() {
        // /tmp itself is root-owned; our scratch dir is owned by whoever runs the tests.
        let dir = scratch("own");
        let f = file(&dir, 0o755);
        let me = own_uid();
        if me == 0 {
            check_path(&f, None).unwrap();
        } else {
            assert!(matches!(
                check_path(&f, None),
                Err(Insecure::Owner { uid, .. }) if uid == me
            ));
            check_path(&f, Some(me)).unwrap();
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_in_the_middle_of_the_path_is_wrong_type() {
        assert!(matches!(
            check_path(Path::new("/bin/sh/x"), None),
            Err(Insecure::WrongType { .. } | Insecure::Unreadable { .. })
        ));
        assert!(matches!(
            check_path(Path::new("/nonexistent-wasmalived/x"), None),
            Err(Insecure::Unreadable { .. })
        ));
    }
}
