//! Running helper commands (`ip`, `sysctl`, `kill`, ...) with errors that name the command.

use std::process::{Command, Output, Stdio};

use crate::error::{LabError, Result};

/// Runs `argv` to completion and returns its output, whatever the exit status.
pub fn output(argv: &[&str]) -> Result<Output> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| LabError::check("empty command line"))?;
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::io(format!("running `{}`", argv.join(" ")), e))
}

/// Runs `argv`, requires success and returns its stdout as text.
pub fn run(argv: &[&str]) -> Result<String> {
    let out = output(argv)?;
    if !out.status.success() {
        return Err(LabError::Command {
            argv: argv.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Sends `signal` (a name such as `KILL` or `TERM`) to a process, or to a process group when
/// `group` is set, with `/usr/bin/kill` (std has no `killpg`, and `unsafe` is denied).
pub fn kill(signal: &str, pid: u32, group: bool) -> Result<()> {
    let target = if group {
        format!("-{pid}")
    } else {
        pid.to_string()
    };
    run(&["kill", "-s", signal, "--", &target]).map(|_| ())
}
