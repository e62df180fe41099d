//! Which user, and which security rule, the programs the daemon starts run under — check
//! scripts, notify hooks, remediation commands — decided from the configuration in one place.
//! The mechanisms (vetting, running) are `wasmalived_sys::program` and `::process`.
//!
//! keepalived's rule, for scripts, hooks and remediation alike: the user a program names
//! (`user USER [GROUP]`, `notify_* "CMD" USER [GROUP]`); else `script_user` from
//! `global_defs`; else the `keepalived_script` user if the system has one; else root.
//! `enable_script_security` refuses a program whose path others can write; without it that
//! is a warning (hooks and scripts; remediation commands are always refused, as a plugin
//! asks for them).

use wasmalived_config::{GlobalDefs, RunAs as UserName};
use wasmalived_sys::process::Environment;
use wasmalived_sys::program::{Program, ProgramError, Security};
use wasmalived_sys::user::{RunAs, UserError};

/// The user keepalived falls back to when `script_user` is not set.
pub const KEEPALIVED_SCRIPT_USER: &str = "keepalived_script";

/// Why a program cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ProgramSetupError {
    /// Its user (or group) does not exist.
    #[error("user {user}: {source}")]
    User {
        /// The configured user.
        user: String,
        /// Cause.
        source: UserError,
    },
    /// The program was refused.
    #[error(transparent)]
    Program(#[from] ProgramError),
}

/// The user a program runs as: `named`, else `script_user`, else `keepalived_script` if it
/// exists, else `None` (the daemon's own user, normally root).
pub fn run_as(
    named: Option<&UserName>,
    global: &GlobalDefs,
) -> Result<Option<RunAs>, ProgramSetupError> {
    if let Some(user) = named.or(global.script_user.as_ref()) {
        return RunAs::resolve(&user.user, user.group.as_deref())
            .map(Some)
            .map_err(|source| ProgramSetupError::User {
                user: user.user.clone(),
                source,
            });
    }
    Ok(RunAs::resolve(KEEPALIVED_SCRIPT_USER, None).ok())
}

/// The default user as configuration data: `script_user`, else `keepalived_script` if it
/// exists (for layers that resolve names themselves, e.g. remediation commands).
pub fn default_user_name(global: &GlobalDefs) -> Option<UserName> {
    global.script_user.clone().or_else(|| {
        RunAs::resolve(KEEPALIVED_SCRIPT_USER, None)
            .ok()
            .map(|_| UserName {
                user: KEEPALIVED_SCRIPT_USER.into(),
                group: None,
            })
    })
}

/// `enable_script_security` as a rule.
pub fn security(global: &GlobalDefs) -> Security {
    if global.enable_script_security {
        Security::Enforce
    } else {
        Security::Warn
    }
}

/// Vet a notify hook: its user, the script-security rule, a scrubbed environment.
pub fn hook(
    argv: &[String],
    named: Option<&UserName>,
    global: &GlobalDefs,
) -> Result<Program, ProgramSetupError> {
    let user = run_as(named, global)?;
    Ok(Program::prepare(
        argv.to_vec(),
        user,
        security(global),
        Environment::Scrubbed,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(script_user: Option<&str>, security: bool) -> GlobalDefs {
        GlobalDefs {
            script_user: script_user.map(|u| UserName {
                user: u.into(),
                group: None,
            }),
            enable_script_security: security,
            ..GlobalDefs::default()
        }
    }

    #[test]
    fn named_user_wins_then_script_user() {
        let g = global(Some("root"), false);
        let nobody = UserName {
            user: "nobody".into(),
            group: None,
        };
        assert_eq!(run_as(Some(&nobody), &g).unwrap().unwrap().user, "nobody");
        assert_eq!(run_as(None, &g).unwrap().unwrap().uid, 0);
        let missing = UserName {
            user: "wasmalived-no-such-user".into(),
            group: None,
        };
        let err = run_as(Some(&missing), &g).unwrap_err().to_string();
        assert!(err.contains("wasmalived-no-such-user"), "{err}");
    }

    #[test]
    fn without_script_user_keepalived_script_is_used_if_it_exists() {
        let g = global(None, false);
        let exists = RunAs::resolve(KEEPALIVED_SCRIPT_USER, None).is_ok();
        assert_eq!(run_as(None, &g).unwrap().is_some(), exists);
        assert_eq!(default_user_name(&g).is_some(), exists);
    }

    #[test]
    fn hooks_get_a_scrubbed_environment_and_the_security_rule() {
        let g = global(None, true);
        let program = hook(&["/bin/true".into()], None, &g).unwrap();
        assert_eq!(program.label().as_ref(), "/bin/true");
        let dir = std::env::temp_dir().join(format!("wasmalived-hook-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let script = dir.join("hook.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        let argv = vec![script.display().to_string()];
        let err = hook(&argv, None, &g).unwrap_err().to_string();
        assert!(err.contains("hook.sh") && err.contains("everyone"), "{err}");
        // Without enable_script_security it runs, with a warning.
        assert!(hook(&argv, None, &global(None, false)).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
