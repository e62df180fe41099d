//! Plugin files under the daemon's one file-trust policy (`wasmalived_sys::trust`, keepalived's
//! `enable_script_security` rule, CVE-2018-19044..19046): a plugin runs with the daemon's
//! privileges over the host's process table and remediation commands, so whoever can write the
//! file — or swap it, or a directory above it — controls them.
//!
//! The file is opened once, by a walk from `/` that checks every directory, every symlink
//! followed (only links owned by root or the daemon's user are followed) and the file itself on
//! the open descriptor, and the bytes are read from that descriptor: nothing can be swapped
//! between the check and the read. Refused: an owner other than root or the daemon's user, a
//! file writable by a group other than root's or by everyone, and a directory on the path
//! writable by a group other than root's or by everyone (unless sticky, like `/tmp`).

use std::io::Read;
use std::path::Path;

use wasmalived_sys::trust::{self, Insecure, Symlinks};

use super::PluginError;

/// The daemon's effective uid: an owner trusted besides root.
pub fn daemon_uid() -> u32 {
    wasmalived_sys::effective_ids().0
}

/// Open `path` under the policy and read it whole from the checked descriptor.
pub fn read_plugin_file(path: &Path) -> Result<Vec<u8>, PluginError> {
    let me = daemon_uid();
    let trusted = (me != 0).then_some(me);
    let opened =
        trust::open_trusted(path, trusted, Symlinks::FollowTrusted).map_err(|insecure| {
            match insecure {
                Insecure::Unreadable { path: at, reason } if at == path => PluginError::Read {
                    path: path.to_path_buf(),
                    source: std::io::Error::other(reason),
                },
                other => PluginError::Insecure {
                    path: path.to_path_buf(),
                    reason: other.to_string(),
                },
            }
        })?;
    let mut bytes = Vec::new();
    (&opened.file)
        .read_to_end(&mut bytes)
        .map_err(|source| PluginError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("wasmalived-sec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        d
    }

    #[test]
    fn world_writable_file_refused_with_its_name() {
        let d = tmpdir("ww");
        let f = d.join("p.wasm");
        std::fs::write(&f, b"x").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let err = read_plugin_file(&f).expect_err("must refuse").to_string();
        assert!(err.contains("p.wasm") && err.contains("everyone"), "{err}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(read_plugin_file(&f).expect("0644 accepted"), b"x");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn world_writable_directory_refused() {
        let d = tmpdir("wwdir");
        let f = d.join("p.wasm");
        std::fs::write(&f, b"x").expect("write");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = read_plugin_file(&f).expect_err("must refuse").to_string();
        assert!(err.contains("wwdir") && err.contains("everyone"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn group_writable_directory_of_a_non_root_group_refused() {
        let d = tmpdir("gwdir");
        let f = d.join("p.wasm");
        std::fs::write(&f, b"x").expect("write");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o775)).expect("chmod");
        // As root the group can be made someone else's; otherwise it is ours, never root's
        // unless we are root.
        std::os::unix::fs::chown(&d, None, Some(65534)).ok();
        let gid = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&d).unwrap());
        assert_ne!(gid, 0, "the test needs a non-root group on its directory");
        let err = read_plugin_file(&f).expect_err("must refuse").to_string();
        assert!(err.contains("gwdir") && err.contains("group gid"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let err = read_plugin_file(Path::new("/nonexistent-wasmalived/p.wasm")).unwrap_err();
        assert!(matches!(
            err,
            PluginError::Insecure { .. } | PluginError::Read { .. }
        ));
    }
}
