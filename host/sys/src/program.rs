//! Vetting a program before the daemon runs it: keepalived's rules for `script`s, applied to
//! every program the daemon starts (check scripts, notify hooks, remediation commands, LVS
//! `MISC_CHECK`s) — found on `PATH` if bare, a regular file executable by the user it runs as,
//! and (with script security) every element of its path, given and resolved, safe under the
//! file-trust policy ([`crate::trust::check_path`]). The result is a [`Program`]: a
//! [`ChildCommand`] ready to run, and the user it switches to.
//!
//! keepalived's `need_script_protection`: a program that runs with root privileges (as uid 0
//! or gid 0, or setuid/setgid root) trusts only root as an owner; one that runs as another
//! user also trusts that user.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::process::{self, ChildCommand, Environment};
use crate::trust::{self, Insecure};
use crate::user::RunAs;

/// What an unsafe path does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Refuse the program (keepalived's `enable_script_security`).
    Enforce,
    /// Log a warning and run it anyway (keepalived without `enable_script_security`).
    Warn,
}

/// A script that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// `script ""`.
    #[error("empty script command")]
    Empty,
    /// Not found (or not accessible).
    #[error("script {script}: not found: {reason}")]
    NotFound {
        /// argv\[0\].
        script: String,
        /// Why.
        reason: String,
    },
    /// Not a regular file.
    #[error("script {}: not a regular file", path.display())]
    NotAFile {
        /// Resolved path.
        path: PathBuf,
    },
    /// Not executable for the user it runs as.
    #[error("script {}: not executable for uid {uid} gid {gid}", path.display())]
    NotExecutable {
        /// Resolved path.
        path: PathBuf,
        /// Run-as uid.
        uid: u32,
        /// Run-as gid.
        gid: u32,
    },
    /// Refused by `enable_script_security`.
    #[error("script {script}: unsafe permissions, refused by enable_script_security: {source}")]
    Insecure {
        /// argv\[0\].
        script: String,
        /// The offending path element.
        #[source]
        source: Insecure,
    },
    /// A `user` is configured but the daemon cannot switch to it.
    #[error("script {script}: cannot run as user {user}: the daemon is not running as root")]
    CannotSwitchUser {
        /// argv\[0\].
        script: String,
        /// Configured user.
        user: String,
    },
}

/// A vetted program, ready to run repeatedly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    child: ChildCommand,
    label: Arc<str>,
    insecure: Option<Insecure>,
}

impl Program {
    /// Vet `argv` (argv\[0\] a path or a bare name searched in `PATH`) to run as `run_as`
    /// (`None`: as the daemon) with `environment`.
    pub fn prepare(
        argv: Vec<String>,
        run_as: Option<RunAs>,
        security: Security,
        environment: Environment,
    ) -> Result<Program, ProgramError> {
        let Some(first) = argv.first().filter(|a| !a.is_empty()) else {
            return Err(ProgramError::Empty);
        };
        let script = first.clone();
        let (our_uid, our_gid) = crate::effective_ids();
        let (uid, gid) = run_as
            .as_ref()
            .map_or((our_uid, our_gid), |r| (r.uid, r.gid));

        let given =
            process::resolve_program(&script, uid, gid).map_err(|e| ProgramError::NotFound {
                script: script.clone(),
                reason: e.to_string(),
            })?;
        let real = std::fs::canonicalize(&given).map_err(|e| ProgramError::NotFound {
            script: script.clone(),
            reason: e.to_string(),
        })?;
        let meta = std::fs::metadata(&real).map_err(|e| ProgramError::NotFound {
            script: script.clone(),
            reason: e.to_string(),
        })?;
        if !meta.is_file() {
            return Err(ProgramError::NotAFile { path: real });
        }
        if !process::executable_by(&meta, uid, gid) {
            return Err(ProgramError::NotExecutable {
                path: real,
                uid,
                gid,
            });
        }

        let mode = meta.mode();
        let privileged = uid == 0
            || gid == 0
            || (meta.uid() == 0 && mode & 0o4100 == 0o4100)
            || (meta.gid() == 0 && mode & 0o2010 == 0o2010);
        let trusted = (!privileged).then_some(uid);
        let insecure = trust::check_path(&given, trusted)
            .and_then(|()| trust::check_path(&real, trusted))
            .err();
        let insecure = match (insecure, security) {
            (Some(source), Security::Enforce) => {
                return Err(ProgramError::Insecure { script, source });
            }
            (Some(source), Security::Warn) => {
                tracing::warn!(script = %script, "unsafe permissions for script: {source}");
                Some(source)
            }
            (None, _) => None,
        };

        let switch_to = match run_as {
            Some(r) if (r.uid, r.gid) != (our_uid, our_gid) || our_uid == 0 => {
                if our_uid != 0 {
                    return Err(ProgramError::CannotSwitchUser {
                        script,
                        user: r.user,
                    });
                }
                Some(r)
            }
            _ => None,
        };
        let label = Arc::from(argv.join(" "));
        let child = ChildCommand::new(&given, argv)
            .run_as(switch_to)
            .environment(environment);
        Ok(Program {
            child,
            label,
            insecure,
        })
    }

    /// Run it at nice value `nice` rather than the spawning thread's
    /// ([`ChildCommand::nice`]).
    pub fn at_nice(mut self, nice: i8) -> Self {
        self.child = self.child.nice(Some(nice));
        self
    }

    /// The command, ready to run (clone it to add arguments or output capture).
    pub fn command(&self) -> &ChildCommand {
        &self.child
    }

    /// The command as configured, for status and logs.
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }

    /// Why the path is unsafe, when it runs anyway ([`Security::Warn`]).
    pub fn insecure(&self) -> Option<&Insecure> {
        self.insecure.as_ref()
    }
}
