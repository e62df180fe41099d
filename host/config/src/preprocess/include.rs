//! `include` and its variants, as keepalived 2.2.7 resolves them (`check_include`,
//! `open_and_check_glob`, `check_glob_file`).
//!
//! The pattern is the rest of the line. A relative pattern is relative to the directory of
//! the file that contains the `include`. csh-style braces expand first (`{a,b/{c,d}}`, in
//! order); each alternative is then a glob (`*`, `?`, `[...]`, matches in sorted order) or a
//! plain path.
//!
//! What counts as a problem is decided by *checks*; which checks make a problem an error
//! (the configuration is refused, as keepalived refuses to start) rather than a warning
//! depends on the keyword and on `global_defs { include_check ... }`:
//!
//! | keyword    | checks added                              |
//! |------------|-------------------------------------------|
//! | `include`  | none (problems are warnings)              |
//! | `includer` | readable                                  |
//! | `includem` | readable, match                           |
//! | `includew` | readable, match, wildcard_match           |
//! | `includeb` | readable, brace_match                     |
//! | `includea` | all                                       |
//!
//! - *readable*: a match that is a directory, not a regular file, executable or unreadable
//!   (it is skipped either way);
//! - *match*: a plain path (or a directory in a pattern) does not exist;
//! - *wildcard_match*: a wildcard pattern matches nothing;
//! - *brace_match*: one alternative of a brace expression does not exist (with this check
//!   the whole include is skipped).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A set of include checks (keepalived's `include_t` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Checks(u8);

impl Checks {
    /// No check.
    pub(crate) const NONE: Checks = Checks(0);
    /// `readable`.
    pub(crate) const READABLE: Checks = Checks(1);
    /// `match`.
    pub(crate) const MATCH: Checks = Checks(2);
    /// `wildcard_match`.
    pub(crate) const WILDCARD: Checks = Checks(4);
    /// `brace_match`.
    pub(crate) const BRACE: Checks = Checks(8);
    /// Every check.
    pub(crate) const ALL: Checks = Checks(15);

    /// Both sets.
    pub(crate) fn with(self, other: Checks) -> Checks {
        Checks(self.0 | other.0)
    }

    /// This set without `other`.
    pub(crate) fn without(self, other: Checks) -> Checks {
        Checks(self.0 & !other.0)
    }

    /// Whether any check of `other` is in this set.
    pub(crate) fn has(self, other: Checks) -> bool {
        self.0 & other.0 != 0
    }

    /// The check named as in `include_check` (`readable`, `match`, `wildcard_match`,
    /// `brace_match`).
    pub(crate) fn named(name: &str) -> Option<Checks> {
        match name {
            "read" | "readable" => Some(Checks::READABLE),
            "match" => Some(Checks::MATCH),
            "wildcard_match" => Some(Checks::WILDCARD),
            "brace_match" => Some(Checks::BRACE),
            _ => None,
        }
    }
}

/// If `line` is an include line, its checks and pattern.
pub(crate) fn include_line(line: &str) -> Option<(Checks, &str)> {
    let rest = line.strip_prefix("include")?;
    let mut chars = rest.chars();
    let first = chars.next()?;
    let (checks, pattern) = if first == ' ' || first == '\t' {
        (Checks::NONE, &rest[1..])
    } else {
        let second = chars.next()?;
        if second != ' ' && second != '\t' {
            return None;
        }
        let checks = match first {
            'r' => Checks::READABLE,
            'm' => Checks::READABLE.with(Checks::MATCH),
            'w' => Checks::READABLE.with(Checks::MATCH).with(Checks::WILDCARD),
            'b' => Checks::READABLE.with(Checks::BRACE),
            'a' => Checks::ALL,
            _ => return None,
        };
        (checks, &rest[2..])
    };
    Some((checks, pattern.trim_start_matches([' ', '\t'])))
}

/// A problem found while resolving a pattern, and the check that makes it an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The check that turns this problem into an error.
    pub(crate) check: Checks,
    /// What happened.
    pub(crate) message: String,
}

/// The files a pattern names, and what was wrong on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolution {
    /// Files to read, in order.
    pub(crate) files: Vec<PathBuf>,
    /// Problems, each with its check.
    pub(crate) problems: Vec<Problem>,
}

/// Resolves `pattern` relative to `base`. `checks` is in force (for the brace rule, which
/// skips the whole include).
pub(crate) fn resolve(base: &Path, pattern: &str, checks: Checks) -> Resolution {
    let mut res = Resolution::default();
    let alternatives = expand_braces(pattern);
    let has_brace = alternatives.len() > 1 || has_unescaped_brace(pattern);
    let mut missing = 0usize;
    let mut wildcards = false;
    let mut candidates = Vec::new();
    for alt in &alternatives {
        let path = if Path::new(alt).is_absolute() || base.as_os_str().is_empty() {
            PathBuf::from(alt)
        } else {
            base.join(alt)
        };
        if has_wildcard(alt) {
            wildcards = true;
            let literal_dir = literal_prefix_dir(&path);
            if !literal_dir.as_os_str().is_empty() && !literal_dir.is_dir() {
                missing += 1;
                continue;
            }
            let glob_pattern = to_glob_pattern(&path);
            match glob::glob(&glob_pattern) {
                Ok(paths) => candidates.extend(paths.filter_map(Result::ok)),
                Err(e) => res.problems.push(Problem {
                    check: Checks::READABLE,
                    message: format!("bad include pattern '{pattern}': {e}"),
                }),
            }
        } else {
            let path = PathBuf::from(unescape(&path.to_string_lossy()));
            if path.symlink_metadata().is_ok() {
                candidates.push(path);
            } else {
                missing += 1;
            }
        }
    }
    if candidates.is_empty() {
        if missing > 0 {
            res.problems.push(Problem {
                check: if has_brace {
                    Checks::BRACE
                } else {
                    Checks::MATCH
                },
                message: format!("config files missing '{pattern}'"),
            });
        } else if wildcards {
            res.problems.push(Problem {
                check: Checks::WILDCARD,
                message: format!("no config files matched '{pattern}'"),
            });
        }
        return res;
    }
    if missing > 0 {
        res.problems.push(Problem {
            check: Checks::BRACE,
            message: format!("some config files missing: '{pattern}'"),
        });
        if checks.has(Checks::BRACE) {
            return res;
        }
    }
    for path in candidates {
        match readable_config(&path) {
            Ok(()) => res.files.push(path),
            Err(why) => res.problems.push(Problem {
                check: Checks::READABLE,
                message: format!("configuration file '{}' {why} - skipped", path.display()),
            }),
        }
    }
    res
}

/// keepalived reads only regular, non-executable files it can open.
pub(crate) fn readable_config(path: &Path) -> Result<(), &'static str> {
    let meta = std::fs::metadata(path).map_err(|_| "cannot be read")?;
    if meta.is_dir() {
        return Err("is a directory");
    }
    if !meta.is_file() || meta.permissions().mode() & 0o111 != 0 {
        return Err("is not a regular non-executable file");
    }
    std::fs::File::open(path).map_err(|_| "cannot be opened")?;
    Ok(())
}

/// csh-style brace expansion, in order: `a{b,c{d,e}}f` → `abf`, `acdf`, `acef`. A `\`
/// escapes the next character; braces without a matching `}` are literal.
pub(crate) fn expand_braces(pattern: &str) -> Vec<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let Some((open, close, commas)) = first_brace_group(&chars) else {
        return vec![pattern.to_owned()];
    };
    let prefix: String = chars[..open].iter().collect();
    let suffix: String = chars[close + 1..].iter().collect();
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt: String = chars[w[0] + 1..w[1]].iter().collect();
        out.extend(expand_braces(&format!("{prefix}{alt}{suffix}")));
    }
    out
}

/// The first `{`, its matching `}` and the top-level commas between them.
fn first_brace_group(chars: &[char]) -> Option<(usize, usize, Vec<usize>)> {
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '{' => {
                let mut depth = 0usize;
                let mut commas = Vec::new();
                let mut j = i + 1;
                while j < chars.len() {
                    match chars[j] {
                        '\\' => j += 1,
                        '{' => depth += 1,
                        ',' if depth == 0 => commas.push(j),
                        '}' if depth == 0 => return Some((i, j, commas)),
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                return None;
            }
            _ => i += 1,
        }
    }
    None
}

fn has_unescaped_brace(pattern: &str) -> bool {
    first_brace_group(&pattern.chars().collect::<Vec<_>>()).is_some()
}

/// Whether `s` has an unescaped glob metacharacter.
fn has_wildcard(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// The directory part of `path` before its first wildcard component.
fn literal_prefix_dir(path: &Path) -> PathBuf {
    let mut dir = PathBuf::new();
    for comp in path.components() {
        let s = comp.as_os_str().to_string_lossy();
        if has_wildcard(&s) {
            break;
        }
        dir.push(unescape(&s));
    }
    dir
}

/// A path with shell-style `\` escapes, as a `glob` crate pattern.
fn to_glob_pattern(path: &Path) -> String {
    let mut out = String::new();
    let mut chars = path
        .to_string_lossy()
        .into_owned()
        .chars()
        .collect::<Vec<_>>()
        .into_iter();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('*' | '?' | '[' | ']')) => {
                    out.push('[');
                    out.push(e);
                    out.push(']');
                }
                Some(e) => out.push(e),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// Removes shell-style `\` escapes.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(e) = chars.next() {
                out.push(e);
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TempDir;

    #[test]
    fn include_keywords() {
        assert_eq!(
            include_line("include a.conf"),
            Some((Checks::NONE, "a.conf"))
        );
        assert_eq!(
            include_line("include\t  /x y.conf"),
            Some((Checks::NONE, "/x y.conf"))
        );
        assert_eq!(
            include_line("includea *.conf"),
            Some((Checks::ALL, "*.conf"))
        );
        assert_eq!(
            include_line("includeb x").map(|c| c.0),
            Some(Checks::READABLE.with(Checks::BRACE))
        );
        assert_eq!(
            include_line("includew x").map(|c| c.0.has(Checks::WILDCARD)),
            Some(true)
        );
        assert_eq!(include_line("includex a"), None);
        assert_eq!(include_line("include_check match"), None);
        assert_eq!(include_line("includer"), None);
        assert_eq!(include_line("included x"), None);
    }

    #[test]
    fn braces_expand_in_order_and_nest() {
        assert_eq!(expand_braces("a{b,c}d"), ["abd", "acd"]);
        assert_eq!(
            expand_braces("{foo/{,cat,dog},bar}"),
            ["foo/", "foo/cat", "foo/dog", "bar"]
        );
        assert_eq!(expand_braces("x{y}z"), ["xyz"]);
        assert_eq!(expand_braces(r"a\{b,c}"), [r"a\{b,c}"]);
        assert_eq!(expand_braces("a{b,c"), ["a{b,c"]);
        assert_eq!(expand_braces("{1,2}-{a,b}"), ["1-a", "1-b", "2-a", "2-b"]);
    }

    #[test]
    fn resolution_and_its_problems() {
        let dir = TempDir::new("include-resolve");
        dir.write("conf.d/b.conf", "");
        dir.write("conf.d/a.conf", "");
        dir.write("c.conf", "");
        std::fs::create_dir_all(dir.path().join("conf.d/sub.conf")).expect("dir");
        let exe = dir.write("x.conf", "");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let base = dir.path();
        let names = |r: &Resolution| {
            r.files
                .iter()
                .map(|p| {
                    p.strip_prefix(base)
                        .expect("under base")
                        .display()
                        .to_string()
                })
                .collect::<Vec<_>>()
        };
        let r = resolve(base, "conf.d/*.conf", Checks::NONE);
        assert_eq!(names(&r), ["conf.d/a.conf", "conf.d/b.conf"]);
        assert_eq!(
            r.problems.len(),
            1,
            "the directory is skipped: {:?}",
            r.problems
        );
        assert_eq!(r.problems[0].check, Checks::READABLE);
        let r = resolve(base, "{c,conf.d/b,missing}.conf", Checks::NONE);
        assert_eq!(names(&r), ["c.conf", "conf.d/b.conf"]);
        assert_eq!(r.problems[0].check, Checks::BRACE);
        let r = resolve(base, "{c,missing}.conf", Checks::BRACE);
        assert!(r.files.is_empty(), "brace_match skips the whole include");
        assert_eq!(
            resolve(base, "missing.conf", Checks::NONE).problems[0].check,
            Checks::MATCH
        );
        assert_eq!(
            resolve(base, "none-*.conf", Checks::NONE).problems[0].check,
            Checks::WILDCARD
        );
        assert_eq!(
            resolve(base, "nodir/*.conf", Checks::NONE).problems[0].check,
            Checks::MATCH
        );
        let r = resolve(base, "x.conf", Checks::NONE);
        assert!(r.files.is_empty() && r.problems[0].message.contains("non-executable"));
    }
}
