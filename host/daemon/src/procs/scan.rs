//! What `/proc` says about processes: one process (after an `exec` event) or all of them
//! (start-up, after lost events, and the polling fallback).

use std::fs;

use wasmalived_proto::track::process::ProcessInfo;

/// Which files the rules need read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// `/proc/PID/comm` (or the name in `/proc/PID/stat`).
    pub comm: bool,
    /// `/proc/PID/cmdline`.
    pub cmdline: bool,
}

/// What `/proc/PID` says now; `None` when the process is gone (or a zombie).
pub fn process(pid: u32, needs: Needs) -> Option<ProcessInfo> {
    let comm = if needs.comm {
        let (comm, zombie) = stat(pid)?;
        if zombie {
            return None;
        }
        Some(comm)
    } else {
        None
    };
    let cmdline = if needs.cmdline {
        Some(fs::read(format!("/proc/{pid}/cmdline")).ok()?)
    } else {
        None
    };
    Some(ProcessInfo { comm, cmdline })
}

/// Every process (thread-group leaders: `/proc`'s numeric entries).
pub fn all(needs: Needs) -> Vec<(u32, ProcessInfo)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        Some((pid, process(pid, needs)?))
    })
    .collect()
}

/// The name and whether it is a zombie, from `/proc/PID/stat` (`PID (NAME) STATE …`; the
/// name may hold spaces and parentheses, so it ends at the last `)`).
fn stat(pid: u32) -> Option<(String, bool)> {
    let text = fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &[u8]) -> Option<(String, bool)> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let name = String::from_utf8_lossy(&text[open + 1..close]).into_owned();
    let state = text.get(close + 2).copied();
    Some((name, state == Some(b'Z')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_names_may_hold_parentheses_and_spaces() {
        assert_eq!(
            parse_stat(b"42 (nginx) S 1 42 42 0 -1"),
            Some(("nginx".into(), false))
        );
        assert_eq!(
            parse_stat(b"43 (a (b) c) Z 1 43"),
            Some(("a (b) c".into(), true))
        );
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn this_process_is_found() {
        let me = std::process::id();
        let needs = Needs {
            comm: true,
            cmdline: true,
        };
        let info = process(me, needs).expect("our own /proc entry");
        assert!(!info.cmdline.expect("read").is_empty());
        assert!(all(needs).iter().any(|(pid, _)| *pid == me));
        let nothing = Needs {
            comm: false,
            cmdline: false,
        };
        assert_eq!(process(me, nothing), Some(ProcessInfo::default()));
    }
}
