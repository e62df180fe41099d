//! Resolving keepalived's `user USERNAME [GROUPNAME]` (in `vrrp_script`, and `script_user` in
//! `global_defs`) to numeric ids.
//!
//! keepalived uses `getpwnam_r`/`getgrnam_r` (`core/notify.c`, `set_script_uid_gid`); the
//! group defaults to the user's primary group, and the script also gets the user's
//! supplementary groups. We read `/etc/passwd` and `/etc/group` directly instead of calling
//! into libc's NSS: it needs no `unsafe` and covers the local system users that run check
//! scripts. Users that exist only in LDAP/SSSD are **not** found (documented limitation).

use std::path::Path;

/// Default account databases.
pub const PASSWD_PATH: &str = "/etc/passwd";
/// Default group database.
pub const GROUP_PATH: &str = "/etc/group";

/// Numeric identity a script runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// User name as configured (for logs).
    pub user: String,
    /// User id.
    pub uid: u32,
    /// Group id (the configured group, else the user's primary group).
    pub gid: u32,
    /// Supplementary groups: every group listing the user as a member, plus `gid`.
    pub groups: Vec<u32>,
}

/// A user or group name that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The account database could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// No such user.
    #[error("unknown user {0:?} (looked in /etc/passwd)")]
    UnknownUser(String),
    /// No such group.
    #[error("unknown group {0:?} (looked in /etc/group)")]
    UnknownGroup(String),
}

impl RunAs {
    /// Resolve `user` and optional `group` from `/etc/passwd` and `/etc/group`.
    pub fn resolve(user: &str, group: Option<&str>) -> Result<RunAs, UserError> {
        let passwd = read(Path::new(PASSWD_PATH))?;
        let groups = read(Path::new(GROUP_PATH))?;
        RunAs::resolve_in(&passwd, &groups, user, group)
    }

    /// Resolve from the given file contents (`passwd(5)` and `group(5)` formats).
    pub fn resolve_in(
        passwd: &str,
        group_db: &str,
        user: &str,
        group: Option<&str>,
    ) -> Result<RunAs, UserError> {
        let (uid, primary_gid) = records(passwd)
            .find(|f| f.first() == Some(&user))
            .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
            .ok_or_else(|| UserError::UnknownUser(user.to_owned()))?;
        let gid = match group {
            None => primary_gid,
            Some(name) => records(group_db)
                .find(|f| f.first() == Some(&name))
                .and_then(|f| f.get(2)?.parse().ok())
                .ok_or_else(|| UserError::UnknownGroup(name.to_owned()))?,
        };
        let mut groups: Vec<u32> = records(group_db)
            .filter(|f| {
                f.get(3)
                    .is_some_and(|members| members.split(',').any(|m| m.trim() == user))
            })
            .filter_map(|f| f.get(2)?.parse().ok())
            .collect();
        groups.push(gid);
        groups.sort_unstable();
        groups.dedup();
        Ok(RunAs {
            user: user.to_owned(),
            uid,
            gid,
            groups,
        })
    }
}

fn read(path: &Path) -> Result<String, UserError> {
    std::fs::read_to_string(path).map_err(|source| UserError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Colon-separated records, skipping blank lines, comments and NIS `+`/`-` entries.
fn records(db: &str) -> impl Iterator<Item = Vec<&str>> {
    db.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(['+', '-']))
        .map(|l| l.split(':').collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        keepalived_script:x:998:997::/nonexistent:/usr/sbin/nologin\n\
        broken:x:notanumber:1::/:/bin/false\n";
    const GROUP: &str = "root:x:0:\nkeepalived_script:x:997:\nnginx:x:33:keepalived_script,www\n\
        adm:x:4:syslog, keepalived_script\n";

    #[test]
    fn user_gets_primary_and_supplementary_groups() {
        let r = RunAs::resolve_in(PASSWD, GROUP, "keepalived_script", None).unwrap();
        assert_eq!((r.uid, r.gid), (998, 997));
        assert_eq!(r.groups, vec![4, 33, 997]);
    }

    #[test]
    fn explicit_group_overrides_primary() {
        let r = RunAs::resolve_in(PASSWD, GROUP, "keepalived_script", Some("nginx")).unwrap();
        assert_eq!(r.gid, 33);
        assert_eq!(r.groups, vec![4, 33]);
    }

    #[test]
    fn unknown_names_and_broken_records_are_errors() {
        assert!(matches!(
            RunAs::resolve_in(PASSWD, GROUP, "nobody-here", None),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            RunAs::resolve_in(PASSWD, GROUP, "broken", None),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            RunAs::resolve_in(PASSWD, GROUP, "root", Some("wheel")),
            Err(UserError::UnknownGroup(_))
        ));
    }

    #[test]
    fn resolves_root_from_the_real_system() {
        let r = RunAs::resolve("root", None).unwrap();
        assert_eq!((r.uid, r.gid), (0, 0));
    }
}
