//! File security for plugin files, as keepalived's `enable_script_security` does
//! (CVE-2018-19044..19046): a plugin runs with the daemon's privileges over the host's
//! process table and remediation commands, so whoever can write the file controls them.
//!
//! Refused: a plugin that is not a regular file, is group/world-writable, or is owned by
//! someone other than root or the daemon's user; and any directory on its path that is
//! world-writable without the sticky bit or owned by another user (so nobody else can swap it).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::PluginError;

const WORLD_WRITABLE: u32 = 0o002;
const GROUP_WRITABLE: u32 = 0o020;
const STICKY: u32 = 0o1000;

/// The daemon's effective uid (owner of `/proc/self`).
pub fn daemon_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

/// Check the plugin file and its directories; `Ok` means it is safe to read and run.
pub fn check_plugin_file(path: &Path) -> Result<(), PluginError> {
    let me = daemon_uid();
    let refuse = |p: &Path, reason: String| PluginError::Insecure {
        path: p.to_path_buf(),
        reason,
    };
    // The file itself (follow a symlink: what matters is what is run).
    let meta = std::fs::metadata(path).map_err(|source| PluginError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(refuse(path, "not a regular file".into()));
    }
    check_owner_mode(meta.uid(), meta.mode(), me, false).map_err(|r| refuse(path, r))?;
    // Every directory up to the root, on the canonical path.
    let canonical = path.canonicalize().map_err(|source| PluginError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut dir = canonical.parent();
    while let Some(d) = dir {
        let m = std::fs::metadata(d).map_err(|source| PluginError::Read {
            path: d.to_path_buf(),
            source,
        })?;
        check_owner_mode(m.uid(), m.mode(), me, true)
            .map_err(|r| refuse(path, format!("its directory {} {r}", d.display())))?;
        dir = d.parent();
    }
    Ok(())
}

/// The rule for one path element; `Err` carries the reason.
fn check_owner_mode(uid: u32, mode: u32, me: u32, is_dir: bool) -> Result<(), String> {
    if uid != 0 && uid != me {
        return Err(format!(
            "is owned by uid {uid}, not root or the daemon's user (uid {me})"
        ));
    }
    if is_dir {
        if mode & WORLD_WRITABLE != 0 && mode & STICKY == 0 {
            return Err(format!("is world-writable (mode {:o})", mode & 0o7777));
        }
    } else {
        if mode & WORLD_WRITABLE != 0 {
            return Err(format!("is world-writable (mode {:o})", mode & 0o7777));
        }
        if mode & GROUP_WRITABLE != 0 {
            return Err(format!("is group-writable (mode {:o})", mode & 0o7777));
        }
    }
    Ok(())
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
    fn owner_mode_rules() {
        assert!(check_owner_mode(0, 0o644, 1000, false).is_ok());
        assert!(check_owner_mode(1000, 0o600, 1000, false).is_ok());
        assert!(check_owner_mode(1001, 0o600, 1000, false).is_err());
        assert!(check_owner_mode(0, 0o646, 1000, false).is_err());
        assert!(check_owner_mode(0, 0o664, 1000, false).is_err());
        assert!(
            check_owner_mode(0, 0o1777, 1000, true).is_ok(),
            "sticky /tmp is fine"
        );
        assert!(check_owner_mode(0, 0o777, 1000, true).is_err());
        assert!(check_owner_mode(0, 0o775, 1000, true).is_ok());
    }

    #[test]
    fn world_writable_file_refused_with_its_name() {
        let d = tmpdir("ww");
        let f = d.join("p.wasm");
        std::fs::write(&f, b"x").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let err = check_plugin_file(&f).expect_err("must refuse").to_string();
        assert!(
            err.contains("p.wasm") && err.contains("world-writable"),
            "{err}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        check_plugin_file(&f).expect("0644 accepted");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn world_writable_directory_refused() {
        let d = tmpdir("wwdir");
        let f = d.join("p.wasm");
        std::fs::write(&f, b"x").expect("write");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = check_plugin_file(&f).expect_err("must refuse").to_string();
        assert!(
            err.contains("directory") && err.contains("world-writable"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
