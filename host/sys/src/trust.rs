//! The one file-trust policy (keepalived's `enable_script_security`, CVE-2018-19044..19046):
//! who may own, and who may write, a file the daemon runs or loads and every directory above it.
//!
//! Two mechanisms share the rule for one path element ([`check_element`]):
//! - [`check_path`]: keepalived's walk over a path *by name*, for programs the kernel will
//!   `exec` by name (scripts, hooks, remediation commands);
//! - [`open_trusted`] / [`open_trusted_dir`]: a walk that *opens* every element once from `/`
//!   (`openat` with `O_NOFOLLOW`, symlinks resolved by hand under the policy), checks each open
//!   element, and hands back the descriptor of the last one, so what is checked is what is read
//!   (plugin files, granted directories): nothing can be swapped between check and use.
//!
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

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

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
    /// A symbolic link where the policy refuses them.
    #[error("{path}: is a symbolic link (refused here)")]
    Symlink {
        /// The element.
        path: PathBuf,
    },
    /// The element changed between two looks (someone is swapping it).
    #[error("{path}: replaced while being opened")]
    Replaced {
        /// The element.
        path: PathBuf,
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

/// What kind of path element [`check_element`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementKind {
    /// A directory on the path.
    Directory,
    /// A symbolic link (only its owner matters: its mode is meaningless).
    Symlink,
    /// The file itself.
    File,
}

/// The rule for one element: owned by root or `trusted`; a file, or a directory without the
/// sticky bit, is neither world-writable nor writable by a group other than root's.
pub fn check_element(
    path: &Path,
    kind: ElementKind,
    uid: u32,
    gid: u32,
    mode: u32,
    trusted: Option<u32>,
) -> Result<(), Insecure> {
    if uid != 0 && Some(uid) != trusted {
        return Err(Insecure::Owner {
            path: path.to_owned(),
            uid,
            trusted,
        });
    }
    let mode = mode & 0o7777;
    let guarded = match kind {
        ElementKind::Directory => mode & S_ISVTX == 0,
        ElementKind::File => true,
        ElementKind::Symlink => false,
    };
    if guarded {
        if mode & S_IWOTH != 0 {
            return Err(Insecure::Writable {
                path: path.to_owned(),
                who: "everyone".into(),
                mode,
            });
        }
        if gid != 0 && mode & S_IWGRP != 0 {
            return Err(Insecure::Writable {
                path: path.to_owned(),
                who: format!("group gid {gid}"),
                mode,
            });
        }
    }
    Ok(())
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
        let kind = if ft.is_dir() {
            ElementKind::Directory
        } else if ft.is_symlink() {
            ElementKind::Symlink
        } else if is_last && ft.is_file() {
            ElementKind::File
        } else {
            return Err(Insecure::WrongType {
                path: element.to_owned(),
            });
        };
        check_element(element, kind, meta.uid(), meta.gid(), meta.mode(), trusted)?;
    }
    Ok(())
}

/// How [`open_trusted`] treats symbolic links on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlinks {
    /// Any symlink is refused.
    Refuse,
    /// A symlink owned by root or the trusted user is followed, and its target walked under
    /// the same rule (merged-/usr systems have `/lib -> usr/lib`).
    FollowTrusted,
}

/// Symlinks followed in one walk before giving up (the kernel's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// A file opened by [`open_trusted`].
#[derive(Debug)]
pub struct TrustedFile {
    /// Open for reading: the very file that was checked.
    pub file: File,
    /// The path it was reached by, symlinks resolved.
    pub resolved: PathBuf,
}

/// Open `path` for reading through a checked walk (see the module docs): every directory from
/// `/` down, every followed symlink and the file itself pass [`check_element`] on the open
/// descriptor; the file must be a regular file. `trusted` is an owner accepted besides root.
pub fn open_trusted(
    path: &Path,
    trusted: Option<u32>,
    symlinks: Symlinks,
) -> Result<TrustedFile, Insecure> {
    let (fd, resolved) = walk(path, trusted, symlinks, Want::File)?;
    Ok(TrustedFile {
        file: File::from(fd),
        resolved,
    })
}

/// Open directory `path` (for reading its entries, or as a `openat` base) through the same
/// checked walk as [`open_trusted`].
pub fn open_trusted_dir(
    path: &Path,
    trusted: Option<u32>,
    symlinks: Symlinks,
) -> Result<(OwnedFd, PathBuf), Insecure> {
    walk(path, trusted, symlinks, Want::Directory)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    File,
    Directory,
}

fn walk(
    path: &Path,
    trusted: Option<u32>,
    symlinks: Symlinks,
    want: Want,
) -> Result<(OwnedFd, PathBuf), Insecure> {
    let io_err = |at: &Path, e: rustix::io::Errno| Insecure::Unreadable {
        path: at.to_owned(),
        reason: std::io::Error::from(e).to_string(),
    };
    let absolute = std::path::absolute(path).map_err(|e| Insecure::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let root = Path::new("/");
    let open_root = || -> Result<OwnedFd, Insecure> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(root, e))?;
        check_fd(&fd, root, ElementKind::Directory, trusted)?;
        Ok(fd)
    };
    // The directories walked so far (root first), each open and checked.
    let mut dirs: Vec<(OwnedFd, PathBuf)> = vec![(open_root()?, root.to_owned())];
    let mut pending: VecDeque<Vec<u8>> = components(&absolute);
    let mut followed = 0;
    while let Some(name) = pending.pop_front() {
        let (dir, dir_path) = dirs.last().expect("the root is never popped");
        if name == b".." {
            if dirs.len() > 1 {
                dirs.pop();
            }
            continue;
        }
        let here = dir_path.join(OsStr::from_bytes(&name));
        let is_last = pending.is_empty();
        let fd = rustix::fs::openat(
            dir,
            name.as_slice(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(&here, e))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_err(&here, e))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                check_element(
                    &here,
                    ElementKind::Symlink,
                    stat.st_uid,
                    stat.st_gid,
                    stat.st_mode,
                    trusted,
                )?;
                if symlinks == Symlinks::Refuse {
                    return Err(Insecure::Symlink { path: here });
                }
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(Insecure::Unreadable {
                        path: here,
                        reason: "too many levels of symbolic links".into(),
                    });
                }
                let target = rustix::fs::readlinkat(dir, name.as_slice(), Vec::new())
                    .map_err(|e| io_err(&here, e))?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    dirs.truncate(1);
                }
                for component in components(&target).into_iter().rev() {
                    pending.push_front(component);
                }
            }
            FileType::Directory if !is_last || want == Want::Directory => {
                check_element(
                    &here,
                    ElementKind::Directory,
                    stat.st_uid,
                    stat.st_gid,
                    stat.st_mode,
                    trusted,
                )?;
                if is_last {
                    // Reopen it for reading, through the checked parent, and make sure it is
                    // the same directory.
                    let opened = rustix::fs::openat(
                        dir,
                        name.as_slice(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| io_err(&here, e))?;
                    same_inode(&opened, &stat, &here)?;
                    return Ok((opened, here));
                }
                dirs.push((fd, here));
            }
            FileType::RegularFile if is_last && want == Want::File => {
                let opened = rustix::fs::openat(
                    dir,
                    name.as_slice(),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err(&here, e))?;
                same_inode(&opened, &stat, &here)?;
                check_fd(&opened, &here, ElementKind::File, trusted)?;
                return Ok((opened, here));
            }
            _ => return Err(Insecure::WrongType { path: here }),
        }
    }
    // The path named a directory (or `/`) where a file was wanted.
    let (_, last) = dirs.pop().expect("the root is never popped");
    Err(Insecure::WrongType { path: last })
}

/// The normal components of a path as bytes (`.` dropped, `..` kept for the walker).
fn components(path: &Path) -> VecDeque<Vec<u8>> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.as_bytes().to_vec()),
            Component::ParentDir => Some(b"..".to_vec()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

fn check_fd(
    fd: &OwnedFd,
    path: &Path,
    kind: ElementKind,
    trusted: Option<u32>,
) -> Result<(), Insecure> {
    let stat = rustix::fs::fstat(fd).map_err(|e| Insecure::Unreadable {
        path: path.to_owned(),
        reason: std::io::Error::from(e).to_string(),
    })?;
    check_element(path, kind, stat.st_uid, stat.st_gid, stat.st_mode, trusted)
}

fn same_inode(fd: &OwnedFd, expected: &rustix::fs::Stat, path: &Path) -> Result<(), Insecure> {
    let stat = rustix::fs::fstat(fd).map_err(|e| Insecure::Unreadable {
        path: path.to_owned(),
        reason: std::io::Error::from(e).to_string(),
    })?;
    if (stat.st_dev, stat.st_ino) != (expected.st_dev, expected.st_ino) {
        return Err(Insecure::Replaced {
            path: path.to_owned(),
        });
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

    /// The owner the tests' own files pass with: root needs none, anyone else trusts itself.
    fn trusted_self() -> Option<u32> {
        let me = crate::effective_ids().0;
        (me != 0).then_some(me)
    }

    #[test]
    fn open_trusted_reads_the_checked_file() {
        let dir = scratch("open");
        let f = file(&dir, 0o644);
        let opened = open_trusted(&f, trusted_self(), Symlinks::Refuse).unwrap();
        assert_eq!(opened.resolved, f);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut &opened.file, &mut text).unwrap();
        assert_eq!(text, "#!/bin/sh\nexit 0\n");
        // `..` and `.` are walked, not passed to the kernel as a path.
        let roundabout = dir
            .join("..")
            .join(dir.file_name().unwrap())
            .join(".")
            .join("check.sh");
        assert_eq!(
            open_trusted(&roundabout, trusted_self(), Symlinks::Refuse)
                .unwrap()
                .resolved,
            f
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn open_trusted_refuses_or_follows_symlinks_by_policy() {
        let dir = scratch("link");
        let f = file(&dir, 0o644);
        let link = dir.join("link.wasm");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let err = open_trusted(&link, trusted_self(), Symlinks::Refuse).unwrap_err();
        assert!(
            matches!(&err, Insecure::Symlink { path } if path == &link),
            "{err}"
        );
        let followed = open_trusted(&link, trusted_self(), Symlinks::FollowTrusted).unwrap();
        assert_eq!(followed.resolved, f);
        if crate::effective_ids().0 == 0 {
            // A link someone else owns is never followed.
            std::process::Command::new("chown")
                .args(["-h", "65534", link.to_str().unwrap()])
                .status()
                .unwrap();
            let err = open_trusted(&link, None, Symlinks::FollowTrusted).unwrap_err();
            assert!(matches!(&err, Insecure::Owner { uid: 65534, .. }), "{err}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn open_trusted_checks_every_parent_directory() {
        let dir = scratch("parents");
        let sub = dir.join("plugins");
        std::fs::create_dir(&sub).unwrap();
        let f = file(&sub, 0o644);
        open_trusted(&f, trusted_self(), Symlinks::Refuse).unwrap();
        // Group-writable by a group other than root's: refused, naming the directory.
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o775)).unwrap();
        std::os::unix::fs::chown(&sub, None, Some(65534)).ok();
        let gid = std::fs::metadata(&sub).unwrap().gid();
        let result = open_trusted(&f, trusted_self(), Symlinks::Refuse);
        if gid != 0 {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, Insecure::Writable { path, .. } if path == &sub),
                "{err}"
            );
            assert!(err.to_string().contains("group gid"), "{err}");
        }
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = open_trusted(&f, trusted_self(), Symlinks::Refuse).unwrap_err();
        assert!(
            matches!(&err, Insecure::Writable { who, .. } if who == "everyone"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn open_trusted_refuses_an_untrusted_owner_and_wrong_types() {
        let dir = scratch("owner");
        let f = file(&dir, 0o644);
        if crate::effective_ids().0 == 0 {
            std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        }
        // Nobody but root is trusted: the scratch file is someone else's either way.
        let err = open_trusted(&f, None, Symlinks::Refuse).unwrap_err();
        assert!(matches!(&err, Insecure::Owner { .. }), "{err}");
        // A directory where a file is wanted, a file where a directory is wanted.
        assert!(matches!(
            open_trusted(&dir, trusted_self(), Symlinks::Refuse),
            Err(Insecure::WrongType { .. } | Insecure::Owner { .. })
        ));
        assert!(matches!(
            open_trusted_dir(Path::new("/etc/passwd"), None, Symlinks::Refuse),
            Err(Insecure::WrongType { .. })
        ));
        let (_fd, resolved) = open_trusted_dir(Path::new("/etc"), None, Symlinks::Refuse).unwrap();
        assert_eq!(resolved, Path::new("/etc"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
