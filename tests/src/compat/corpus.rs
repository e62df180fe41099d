//! The keepalived-compatibility corpus (`tests/keepalived-corpus/`): which files, how to run
//! them, which interfaces they need, and where their blocks are.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};

/// The corpus directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keepalived-corpus")
}

/// The configuration files directly in `root()/sub` (files in subdirectories are what they
/// include), sorted.
pub fn files(sub: &str) -> Result<Vec<PathBuf>> {
    let dir = root().join(sub);
    let entries =
        fs::read_dir(&dir).map_err(|e| LabError::io(format!("listing {}", dir.display()), e))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            name.ends_with(".conf") || name.starts_with("keepalived.conf.")
        })
        .collect();
    out.sort();
    Ok(out)
}

/// How a corpus file is run: from `! compat: KEY=VALUE` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// `config-id=ID`: both daemons run with `-i ID`.
    pub config_id: Option<String>,
    /// `interfaces=A,B`: interfaces the file needs that a plain reading does not show
    /// (names built from parameters).
    pub interfaces: Vec<String>,
}

/// Reads the directives of `text`.
pub fn directives(text: &str) -> Directives {
    let mut d = Directives::default();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("! compat:") else {
            continue;
        };
        for item in rest.split_whitespace() {
            if let Some(id) = item.strip_prefix("config-id=") {
                d.config_id = Some(id.to_owned());
            } else if let Some(list) = item.strip_prefix("interfaces=") {
                d.interfaces
                    .extend(list.split(',').filter(|n| !n.is_empty()).map(str::to_owned));
            }
        }
    }
    d
}

/// The interface names `text` mentions (`interface X`, `dev X`, the lines of
/// `track_interface` blocks, `lvs_sync_daemon_interface X`), so a namespace can have them
/// (keepalived's verdict depends on them existing).
pub fn interfaces(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_track = false;
    for raw in text.lines() {
        let line = strip_comment(raw);
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == '{' || c == '}')
            .filter(|w| !w.is_empty())
            .collect();
        if in_track {
            if let Some(first) = words.first() {
                out.insert((*first).to_owned());
            }
            if line.contains('}') {
                in_track = false;
            }
            continue;
        }
        for pair in words.windows(2) {
            if matches!(
                pair[0],
                "interface" | "dev" | "lvs_sync_daemon_interface" | "heartbeat_interface"
            ) && !pair[1].contains('$')
            {
                out.insert(pair[1].to_owned());
            }
        }
        if words.first() == Some(&"track_interface") {
            in_track = !line.contains('}');
            if let Some(first) = words.get(1) {
                out.insert((*first).to_owned());
            }
        }
    }
    out.retain(|n| n.len() <= 15 && !n.is_empty() && !n.contains(['/', ':']) && n.as_str() != "lo");
    out
}

/// `line` without its comment (`#` or `!` outside double quotes).
pub fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' | '!' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// A block of a configuration file: its keyword and its first and last lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRange {
    /// The word before `{` (the statement that opened it).
    pub keyword: String,
    /// The line of `{`'s statement, 1-based.
    pub start: u32,
    /// The line of `}` (or the last line).
    pub end: u32,
}

/// Every block of `text`, by brace matching (comments and quoted text skipped).
pub fn blocks(text: &str) -> Vec<BlockRange> {
    let mut out = Vec::new();
    let mut stack: Vec<(String, u32)> = Vec::new();
    let mut last_word = String::new();
    let mut last_line = 0u32;
    for (i, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = strip_comment(raw);
        let mut word = String::new();
        let mut first_word: Option<String> = None;
        for c in line.chars().chain([' ']) {
            match c {
                '{' | '}' => {
                    if !word.is_empty() {
                        first_word.get_or_insert(std::mem::take(&mut word));
                    }
                    if c == '{' {
                        match first_word.take() {
                            Some(w) => stack.push((w, line_no)),
                            None => stack.push((last_word.clone(), last_line)),
                        }
                    } else if let Some((keyword, start)) = stack.pop() {
                        out.push(BlockRange {
                            keyword,
                            start,
                            end: line_no,
                        });
                    }
                }
                c if c.is_whitespace() => {
                    if !word.is_empty() {
                        first_word.get_or_insert(std::mem::take(&mut word));
                        word.clear();
                    }
                }
                c => word.push(c),
            }
        }
        if let Some(w) = first_word {
            last_word = w;
            last_line = line_no;
        }
    }
    let last = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
    for (keyword, start) in stack {
        out.push(BlockRange {
            keyword,
            start,
            end: last,
        });
    }
    out
}

/// The programs a running keepalived would execute for `text` (`script`, `notify*`,
/// `misc_path` commands): the test runs keepalived only when each is harmless here.
pub fn check_programs_are_harmless(text: &str, file: &Path) -> Result<()> {
    for raw in text.lines() {
        let line = strip_comment(raw).trim();
        let mut words = line.splitn(2, char::is_whitespace);
        let keyword = words.next().unwrap_or("");
        // `notify_priority_changes` is a flag and `notify_fifo` a path, not programs.
        let is_notify_program = (keyword.starts_with("notify")
            && keyword != "notify_priority_changes"
            && keyword != "notify_fifo")
            || keyword.ends_with("notify_fifo_script");
        let is_command = keyword == "script"
            || keyword == "misc_path"
            || is_notify_program
            || keyword == "quorum_up"
            || keyword == "quorum_down";
        if !is_command {
            continue;
        }
        let command = words.next().unwrap_or("").trim().trim_matches(['"', '\'']);
        let program = command.split_whitespace().next().unwrap_or("");
        let harmless = matches!(
            program,
            "/bin/true" | "/bin/false" | "/usr/bin/true" | "/usr/bin/false"
        ) || (program == "killall" && command.contains(" -0 "))
            || program.starts_with("</dev/tcp/")
            || program.is_empty()
            || (program.starts_with('/') && !Path::new(program).exists())
            || program.contains('$');
        if !harmless {
            return Err(LabError::check(format!(
                "{}: `{line}` would run {program} as root in the comparison; corpus commands must be /bin/true, /bin/false, killall -0, </dev/tcp/… or a path that does not exist here",
                file.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_named_by_a_config() {
        let text = "vrrp_instance A {\n interface eth0 # main\n virtual_ipaddress {\n  192.0.2.1 dev eth2\n }\n track_interface {\n  eth3 weight 2\n  bond0\n }\n track_interface { eth5 }\n}\n";
        let got: Vec<String> = interfaces(text).into_iter().collect();
        assert_eq!(got, ["bond0", "eth0", "eth2", "eth3", "eth5"]);
    }

    #[test]
    fn blocks_with_their_lines() {
        let text = "a {\n b {\n }\n}\nc\n{\n d { e }\n}\n";
        let b = blocks(text);
        assert!(b.contains(&BlockRange {
            keyword: "b".into(),
            start: 2,
            end: 3
        }));
        assert!(b.contains(&BlockRange {
            keyword: "a".into(),
            start: 1,
            end: 4
        }));
        assert!(b.contains(&BlockRange {
            keyword: "c".into(),
            start: 5,
            end: 8
        }));
        assert!(b.contains(&BlockRange {
            keyword: "d".into(),
            start: 7,
            end: 7
        }));
    }

    #[test]
    fn directives_and_programs() {
        assert_eq!(
            directives("! compat: config-id=main\nx\n")
                .config_id
                .as_deref(),
            Some("main")
        );
        let f = Path::new("f");
        assert!(check_programs_are_harmless(
            "script \"/bin/true\"\nnotify_master \"/usr/local/bin/nope x\"\n",
            f
        )
        .is_ok());
        assert!(check_programs_are_harmless("script \"/bin/rm -rf /tmp/x\"\n", f).is_err());
    }
}
