//! What each side says about a configuration, and whether wasmalived says something
//! wherever keepalived does.
//!
//! keepalived (`-t`) reports `(FILE: Line N) text` (or `(Line N) text` when one file is
//! read, or no place at all for what it decides after reading). For each such line
//! wasmalived must have a diagnostic on the same line of the same file, and when keepalived
//! says it ignores, skips or removes something, or uses another value, the diagnostic must
//! say so too ("ignored", "skipped", "removed" / "using"); the value itself is compared in
//! the dumps, since `keepalived -t` rejects some values a running keepalived takes. A
//! message without a place must be matched by a diagnostic naming the same instance,
//! script or sync group.

use std::collections::BTreeSet;

use super::corpus::BlockRange;

/// One keepalived message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeepalivedMessage {
    /// File name as keepalived printed it (`None`: the top file).
    pub file: Option<String>,
    /// Line (`None`: no place).
    pub line: Option<u32>,
    pub text: String,
}

/// One wasmalived diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub text: String,
}

/// keepalived's `-t` stderr, deduplicated (each of its processes repeats some lines).
pub fn parse_keepalived(stderr: &str) -> Vec<KeepalivedMessage> {
    let mut out = BTreeSet::new();
    for raw in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parsed = raw.strip_prefix('(').and_then(|rest| {
            let (place, text) = rest.split_once(") ")?;
            let (file, line) = match place.rsplit_once(": Line ") {
                Some((f, n)) => (Some(f.to_owned()), n),
                None => (None, place.strip_prefix("Line ")?),
            };
            Some(KeepalivedMessage {
                file,
                line: Some(line.parse().ok()?),
                text: text.to_owned(),
            })
        });
        out.insert(parsed.unwrap_or_else(|| KeepalivedMessage {
            file: None,
            line: None,
            text: raw.to_owned(),
        }));
    }
    // "(Line N) x" and "(file: Line N) x" are the same message from two processes.
    let with_file: BTreeSet<(Option<u32>, String)> = out
        .iter()
        .filter(|m| m.file.is_some())
        .map(|m| (m.line, m.text.clone()))
        .collect();
    out.into_iter()
        .filter(|m| {
            m.file.is_some() || m.line.is_none() || !with_file.contains(&(m.line, m.text.clone()))
        })
        .collect()
}

/// wasmalived's diagnostics (`file:line:column: severity: text` lines).
pub fn parse_wasmalived(stderr: &str) -> Vec<Diagnostic> {
    stderr
        .lines()
        .filter_map(|l| {
            let (place, text) = l
                .split_once(": warning: ")
                .or_else(|| l.split_once(": error: "))?;
            let mut parts = place.rsplitn(3, ':');
            let _column = parts.next()?;
            let line: u32 = parts.next()?.parse().ok()?;
            let file = parts.next()?.to_owned();
            Some(Diagnostic {
                file,
                line,
                text: text.to_owned(),
            })
        })
        .collect()
}

/// keepalived messages that depend on this machine rather than on the configuration, and
/// why they are not compared.
const ENVIRONMENT: &[(&str, &str)] = &[(
    "SECURITY VIOLATION",
    "script security: wasmalived vets scripts itself when it runs them",
)];

/// The outcome for one keepalived message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// wasmalived says the same thing there.
    Matched,
    /// Not compared, and why.
    NotCompared(String),
    /// wasmalived says nothing (or nothing like it) there.
    Missing(String),
}

/// Judges each keepalived message against wasmalived's diagnostics for `top` (the file's
/// name as wasmalived prints it); `blocks` are the top file's blocks.
pub fn judge(
    keepalived: &[KeepalivedMessage],
    ours: &[Diagnostic],
    top: &str,
    blocks: &[BlockRange],
) -> Vec<(KeepalivedMessage, Verdict)> {
    let base = |f: &str| f.rsplit('/').next().unwrap_or(f).to_owned();
    let top_base = base(top);
    let unsupported: BTreeSet<String> = ours
        .iter()
        .filter_map(|d| {
            d.text
                .split_once(" is not supported by wasmalived")
                .map(|(kw, _)| kw.split_whitespace().next().unwrap_or("").to_owned())
        })
        .collect();
    keepalived
        .iter()
        .map(|m| {
            let verdict = if let Some((_, why)) =
                ENVIRONMENT.iter().find(|(p, _)| m.text.contains(p))
            {
                Verdict::NotCompared((*why).to_owned())
            } else if let Some(line) = m.line {
                let file = m.file.as_deref().map_or(top_base.clone(), base);
                let here: Vec<&Diagnostic> = ours
                    .iter()
                    .filter(|d| d.line == line && base(&d.file) == file)
                    .collect();
                let enclosing: Vec<&BlockRange> = if file == top_base {
                    blocks
                        .iter()
                        .filter(|b| b.start <= line && line <= b.end)
                        .collect()
                } else {
                    Vec::new()
                };
                // Messages inside `virtual_server` / `virtual_server_group` are compared like
                // any other: wasmalived reads the LVS sections.
                if let Some(b) = enclosing.iter().find(|b| unsupported.contains(&b.keyword)) {
                    Verdict::NotCompared(format!(
                        "inside {} (line {}), which wasmalived reports as not supported",
                        b.keyword, b.start
                    ))
                } else if here.is_empty() {
                    Verdict::Missing(format!("no wasmalived diagnostic on {file}:{line}"))
                } else {
                    let lenient = keepalived.iter().any(|o| {
                        o.line == m.line && o.file == m.file && o.text.starts_with("invalid number")
                    });
                    same_outcome(&m.text, &here, lenient)
                }
            } else {
                match subject(&m.text) {
                    Some(name) if ours.iter().any(|d| mentions(&d.text, &name)) => Verdict::Matched,
                    Some(name) => {
                        Verdict::Missing(format!("no wasmalived diagnostic names {name}"))
                    }
                    None => Verdict::NotCompared(
                        "no place and no instance, script or group named".into(),
                    ),
                }
            };
            (m.clone(), verdict)
        })
        .collect()
}

/// Whether our diagnostics on a line tell the same outcome as keepalived's message.
/// `lenient`: keepalived also said "invalid number" there, i.e. the word is a number
/// followed by text, which `keepalived -t` rejects and a running keepalived reads (its
/// readers test the config-test flag): then "using" the number is the running outcome.
fn same_outcome(text: &str, here: &[&Diagnostic], lenient: bool) -> Verdict {
    let lower = text.to_ascii_lowercase();
    let says = |words: &[&str]| {
        here.iter().any(|d| {
            words
                .iter()
                .any(|w| d.text.to_ascii_lowercase().contains(w))
        })
    };
    let drops = ["ignor", "skipp", "remov"]
        .iter()
        .any(|w| lower.contains(w));
    let replaces = [
        "default",
        "setting to",
        "using",
        "rounding",
        "clearing",
        "resetting",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if lenient && says(&["using"]) {
        return Verdict::Matched;
    }
    if drops && !replaces && !says(&["ignored", "skipped", "removed", "not track", "not run"]) {
        return Verdict::Missing(
            "keepalived drops something; wasmalived does not say it does".into(),
        );
    }
    if replaces && !says(&["using", "rounded", "ignored", "removed", "is set"]) {
        return Verdict::Missing(
            "keepalived uses another value; wasmalived does not say which".into(),
        );
    }
    Verdict::Matched
}

/// The instance, script or group a message without a place is about.
fn subject(text: &str) -> Option<String> {
    if let Some(rest) = text.strip_prefix('(') {
        return rest.split_once(')').map(|(n, _)| n.to_owned());
    }
    for prefix in [
        "Sync group ",
        "Virtual router ",
        "Warning - script ",
        "script ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let name = rest.split([' ', ',']).next().unwrap_or("");
            return (!name.is_empty()).then(|| name.to_owned());
        }
    }
    if let Some((a, _)) = text
        .split_once(" and ")
        .filter(|_| text.contains("both use VRID"))
    {
        return Some(a.to_owned());
    }
    None
}

fn mentions(text: &str, name: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || "_-.".contains(c)))
        .any(|w| w == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_lines_with_and_without_places() {
        let m = parse_keepalived("(Line 10) Extra '}' found\n(/a/b.conf: Line 10) Extra '}' found\nSync group G has no virtual router(s). removing\n\n");
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m[0].line, None);
        assert_eq!(m[1].file.as_deref(), Some("/a/b.conf"));
        assert_eq!(m[1].line, Some(10));
    }

    #[test]
    fn judging() {
        let ours = parse_wasmalived("/a/b.conf:5:14: warning: bad priority '150;'; using the default 100, as keepalived does\n/a/b.conf:9:1: warning: vrrp_sync_group G has no instances; removed, as keepalived does\n");
        let k = parse_keepalived("(/a/b.conf: Line 5) (VI_1) Priority not valid! must be between 1 & 255. Using default 100\n(/a/b.conf: Line 6) Unknown keyword 'x'\nSync group G has no virtual router(s). removing\n");
        let v = judge(&k, &ours, "/a/b.conf", &[]);
        let verdicts: Vec<&Verdict> = v.iter().map(|(_, v)| v).collect();
        assert!(matches!(verdicts[0], Verdict::Matched), "{verdicts:?}");
        assert!(matches!(verdicts[1], Verdict::Matched), "{verdicts:?}");
        assert!(matches!(verdicts[2], Verdict::Missing(_)), "{verdicts:?}");
    }

    #[test]
    fn a_running_keepalived_reads_a_number_followed_by_text() {
        let ours = parse_wasmalived("/a/b.conf:4:14: warning: interval '2;': text after the number: ';'; using 2, as keepalived does\n");
        let k = parse_keepalived("(/a/b.conf: Line 4) (chk): vrrp script interval '2;' must be between 1 and 4294 - ignoring\n(/a/b.conf: Line 4) invalid number '2;'\n");
        let v = judge(&k, &ours, "/a/b.conf", &[]);
        assert!(v.iter().all(|(_, v)| *v == Verdict::Matched), "{v:?}");
        let k = parse_keepalived("(/a/b.conf: Line 4) (chk): vrrp script interval '2;' must be between 1 and 4294 - ignoring\n");
        assert!(matches!(
            judge(&k, &ours, "/a/b.conf", &[])[0].1,
            Verdict::Missing(_)
        ));
    }
}
