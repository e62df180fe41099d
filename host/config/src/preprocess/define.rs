//! Parameters: `$NAME=VALUE` definitions and `$NAME` / `${NAME}` substitution, as
//! keepalived 2.2.7 does them (`check_definition`, `find_definition`, `replace_param`).
//!
//! - A definition is a line `$NAME=VALUE` with no space before `=`; NAME is letters, digits
//!   and `_`, not starting with a digit. Blanks after `=` are skipped; an empty value is
//!   allowed. Defining a name again replaces its value (also for the predefined names).
//! - A value ending in `\` continues on the next lines (a *multi-line* definition); the
//!   lines are collected by [`super::Preprocessor`]. A multi-line value is substituted only
//!   where its reference ends the line; its first line replaces the reference and the
//!   others follow as lines of their own.
//! - `$NAME` is replaced when followed by a blank, `,`, `)` or the end of the line;
//!   `${NAME}` anywhere. An undefined name stays as written.
//! - Replacement is recursive and happens at use time: the value's own references are
//!   replaced in turn (`$A=10.2.${B}` uses the value `B` has where `A` is used).
//! - Predefined: `${_PWD}` (directory of the file being read), `${_INSTANCE}` (the
//!   configuration id), `${_RANDOM [MIN [MAX]]}` (0..=32767 by default), `${_HASH}` (`#`),
//!   `${_BANG}` (`!`).
//!
//! Substituted text is placed at its reference (the `$`), the lines of a multi-line value
//! too (keepalived reports them on the line of the reference, the line it is reading).

use std::path::Path;

use crate::diag::Span;
use crate::source::MappedLine;

/// Most substitutions in one line (a definition that refers to itself never ends).
const MAX_SUBSTITUTIONS: usize = 1000;
/// Longest line a substitution may produce, in characters.
const MAX_LINE: usize = 64 * 1024;
/// `${_RANDOM}`'s default maximum (the C library's `RAND_MAX` for `random()` is larger,
/// keepalived's documented default is this).
const RANDOM_MAX: u64 = 32_767;

/// A predefined parameter whose value is computed where it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Pwd,
    Instance,
    Random,
}

#[derive(Debug, Clone)]
enum Value {
    /// Written text: one line, or the lines of a multi-line definition.
    Text {
        lines: Vec<MappedLine>,
        multiline: bool,
    },
    Builtin(Builtin),
}

#[derive(Debug, Clone)]
struct Definition {
    name: String,
    value: Value,
}

/// A `$NAME=VALUE` line, parsed.
#[derive(Debug, Clone)]
pub(crate) struct DefinitionLine {
    /// NAME.
    pub(crate) name: String,
    /// The value on the definition line itself (continuation `\` removed).
    pub(crate) first: MappedLine,
    /// Whether the value continues on the next lines.
    pub(crate) continued: bool,
}

/// What substitution made of a line.
#[derive(Debug, Clone)]
pub(crate) struct Substituted {
    /// The line with its references replaced.
    pub(crate) line: MappedLine,
    /// The further lines of multi-line values, in the order they are to be read.
    pub(crate) following: Vec<MappedLine>,
    /// Whether any reference was replaced.
    pub(crate) changed: bool,
}

/// Why a substitution stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubstitutionError {
    /// The line kept growing: a definition refers to itself.
    #[error("parameter substitution does not end (a definition refers to itself?): stopped after {0} substitutions")]
    Endless(usize),
}

/// The parameters defined so far.
#[derive(Debug, Clone)]
pub(crate) struct Definitions {
    defs: Vec<Definition>,
    random_state: u64,
}

impl Default for Definitions {
    fn default() -> Self {
        Self::new()
    }
}

impl Definitions {
    /// The predefined parameters only.
    pub(crate) fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        let fixed = |name: &str, text: &str| Definition {
            name: name.into(),
            value: Value::Text {
                lines: vec![MappedLine::substituted(
                    text,
                    Span::whole_file(std::sync::Arc::from(Path::new("<predefined>"))),
                )],
                multiline: false,
            },
        };
        Self {
            defs: vec![
                Definition {
                    name: "_PWD".into(),
                    value: Value::Builtin(Builtin::Pwd),
                },
                Definition {
                    name: "_INSTANCE".into(),
                    value: Value::Builtin(Builtin::Instance),
                },
                Definition {
                    name: "_RANDOM".into(),
                    value: Value::Builtin(Builtin::Random),
                },
                fixed("_HASH", "#"),
                fixed("_BANG", "!"),
            ],
            random_state: seed,
        }
    }

    /// Sets `name` to the single-line `value` (a `~SEQ`/`~LST` variable, a definition).
    pub(crate) fn set(&mut self, name: &str, value: MappedLine) {
        self.set_lines(name, vec![value], false);
    }

    /// Sets `name` to `lines`; `multiline` for a definition that continued.
    pub(crate) fn set_lines(&mut self, name: &str, lines: Vec<MappedLine>, multiline: bool) {
        let value = Value::Text { lines, multiline };
        match self.defs.iter_mut().find(|d| d.name == name) {
            Some(d) => d.value = value,
            None => self.defs.push(Definition {
                name: name.into(),
                value,
            }),
        }
    }

    /// Replaces the references in `line`. `pwd` is the directory of the file being read,
    /// `config_id` the value of `${_INSTANCE}`.
    pub(crate) fn substitute(
        &mut self,
        line: &MappedLine,
        pwd: &Path,
        config_id: &str,
    ) -> Result<Substituted, (Substituted, SubstitutionError)> {
        let mut out = Substituted {
            line: line.clone(),
            following: Vec::new(),
            changed: false,
        };
        let mut count = 0usize;
        let mut cur = 0usize;
        while let Some(dollar) = out.line.find_from(cur, '$') {
            if dollar + 1 >= out.line.len() {
                break;
            }
            let Some(reference) = self.lookup(out.line.chars(), dollar) else {
                cur = dollar + 1;
                continue;
            };
            count += 1;
            if count > MAX_SUBSTITUTIONS || out.line.len() > MAX_LINE {
                return Err((out, SubstitutionError::Endless(count - 1)));
            }
            let at = out
                .line
                .span_at(dollar, &Span::whole_file(Path::new("").into()));
            let (replacement, rest) = match &self.defs[reference.def].value {
                Value::Builtin(b) => {
                    let text = self.builtin(*b, reference.params, pwd, config_id);
                    (MappedLine::substituted(&text, at), Vec::new())
                }
                Value::Text {
                    lines,
                    multiline: false,
                } => (
                    MappedLine::substituted(
                        &lines.first().map(MappedLine::text).unwrap_or_default(),
                        at,
                    ),
                    Vec::new(),
                ),
                Value::Text {
                    lines,
                    multiline: true,
                } => {
                    // Like keepalived, which counts the lines of the file it reads, every
                    // line of the expansion is placed at the reference.
                    let mut all = lines
                        .iter()
                        .map(|l| MappedLine::substituted(&l.text(), at.clone()));
                    (all.next().unwrap_or_default(), all.collect())
                }
            };
            let starts_generator = replacement
                .text()
                .trim_start_matches([' ', '\t'])
                .starts_with('~');
            out.line = out.line.replaced(dollar..reference.end, &replacement);
            out.changed = true;
            if !rest.is_empty() {
                // A newer multi-line expansion is read before the rest of an older one.
                let older = std::mem::take(&mut out.following);
                out.following = rest;
                out.following.extend(older);
            }
            if starts_generator {
                break;
            }
            cur = dollar;
        }
        Ok(out)
    }

    /// The definition a reference at `chars[dollar] == '$'` names, if any.
    fn lookup(&self, chars: &[char], dollar: usize) -> Option<Reference> {
        let braces = chars.get(dollar + 1) == Some(&'{');
        let name_start = dollar + 1 + usize::from(braces);
        let first = *chars.get(name_start)?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let name_end = chars[name_start..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(chars.len(), |i| i + name_start);
        let name: String = chars[name_start..name_end].iter().collect();
        let mut params = None;
        let end = if braces {
            // `${_RANDOM 1 10}`: spaces and digits between the name and `}`.
            let mut p = name_end;
            let (mut first_param, mut last_param) = (None, None);
            while let Some(c) = chars.get(p).filter(|c| **c == ' ' || c.is_ascii_digit()) {
                if *c != ' ' {
                    first_param.get_or_insert(p);
                    last_param = Some(p);
                }
                p += 1;
            }
            if let Some(last) = last_param {
                if last + 1 != p {
                    return None;
                }
            }
            if chars.get(p) != Some(&'}') {
                return None;
            }
            if let (Some(a), Some(b)) = (first_param, last_param) {
                params = Some(chars[a..=b].iter().collect::<String>());
            }
            p + 1
        } else {
            match chars.get(name_end) {
                None | Some(' ' | '\t' | ',' | ')') => name_end,
                Some(_) => return None,
            }
        };
        let at_line_end = end == chars.len();
        let def = self.defs.iter().position(|d| {
            d.name == name
                && match &d.value {
                    Value::Text { multiline, .. } => !*multiline || at_line_end,
                    Value::Builtin(_) => true,
                }
        })?;
        if params.is_some() && !matches!(self.defs[def].value, Value::Builtin(Builtin::Random)) {
            return None;
        }
        Some(Reference { def, end, params })
    }

    fn builtin(
        &mut self,
        b: Builtin,
        params: Option<String>,
        pwd: &Path,
        config_id: &str,
    ) -> String {
        match b {
            Builtin::Pwd => pwd.display().to_string(),
            Builtin::Instance => config_id.to_owned(),
            Builtin::Random => {
                let mut nums = params
                    .as_deref()
                    .unwrap_or("")
                    .split_whitespace()
                    .filter_map(|n| n.parse::<u64>().ok());
                let min = nums.next().unwrap_or(0);
                let max = nums.next().unwrap_or(RANDOM_MAX).max(min);
                // xorshift64: good enough for keepalived's "random value in a range".
                let mut x = self.random_state;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.random_state = x;
                (min + x % (max - min + 1)).to_string()
            }
        }
    }
}

/// A resolved reference: which definition, where the reference ends (exclusive), and the
/// parameters of `${_RANDOM MIN MAX}`.
struct Reference {
    def: usize,
    end: usize,
    params: Option<String>,
}

/// Parses `line` as a definition `$NAME=VALUE`; `None` if it is not one.
pub(crate) fn parse_definition(line: &MappedLine) -> Option<DefinitionLine> {
    let chars = line.chars();
    if chars.first() != Some(&'$') {
        return None;
    }
    let first = *chars.get(1)?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let eq = chars[1..]
        .iter()
        .position(|c| *c == '=' || !(c.is_ascii_alphanumeric() || *c == '_'))
        .map(|i| i + 1)?;
    if chars[eq] != '=' {
        return None;
    }
    let name: String = chars[1..eq].iter().collect();
    let blank = |c: &char| *c == ' ' || *c == '\t';
    let start = chars[eq + 1..]
        .iter()
        .position(|c| !blank(c))
        .map_or(chars.len(), |i| i + eq + 1);
    let mut value = line.slice(start..line.len());
    let continued = value.chars().last() == Some(&'\\');
    if continued {
        let end = value.chars()[..value.len() - 1]
            .iter()
            .rposition(|c| !blank(c))
            .map_or(0, |i| i + 1);
        value = value.slice(0..end);
    }
    Some(DefinitionLine {
        name,
        first: value,
        continued,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;

    fn line(text: &str, line_no: u32) -> MappedLine {
        let file: Arc<Path> = Arc::from(PathBuf::from("t.conf"));
        MappedLine::verbatim(text, Span::new(file, line_no, 1))
    }

    fn define(defs: &mut Definitions, text: &str) {
        let d = parse_definition(&line(text, 1)).expect("a definition");
        defs.set(&d.name, d.first);
    }

    fn subst(defs: &mut Definitions, text: &str) -> String {
        match defs.substitute(&line(text, 1), Path::new("/etc/keepalived"), "n1") {
            Ok(s) => s.line.text(),
            Err((_, e)) => format!("error: {e}"),
        }
    }

    #[test]
    fn definitions_parse_like_keepalived() {
        let d = parse_definition(&line("$PRIO=  150", 1)).expect("def");
        assert_eq!(
            (d.name.as_str(), d.first.text(), d.continued),
            ("PRIO", "150".into(), false)
        );
        let d = parse_definition(&line("$EMPTY=", 1)).expect("def");
        assert!(d.first.is_empty());
        let d = parse_definition(&line("$M= \\", 1)).expect("def");
        assert!(d.continued && d.first.is_empty());
        let d = parse_definition(&line("$M=first  \\", 1)).expect("def");
        assert_eq!((d.first.text(), d.continued), ("first".into(), true));
        for not_def in ["$1X=a", "$A =b", "A=b", "$A-B=c", "$A"] {
            assert!(parse_definition(&line(not_def, 1)).is_none(), "{not_def}");
        }
    }

    #[test]
    fn references_with_and_without_braces() {
        let mut defs = Definitions::new();
        define(&mut defs, "$IF=eth0");
        assert_eq!(subst(&mut defs, "interface $IF"), "interface eth0");
        assert_eq!(subst(&mut defs, "dev $IF, x"), "dev eth0, x");
        assert_eq!(subst(&mut defs, "a${IF}b"), "aeth0b");
        assert_eq!(
            subst(&mut defs, "a$IFb"),
            "a$IFb",
            "no brace, not followed by a blank"
        );
        assert_eq!(subst(&mut defs, "${UNDEFINED} $X"), "${UNDEFINED} $X");
        assert_eq!(subst(&mut defs, "cost $"), "cost $");
    }

    #[test]
    fn replacement_is_recursive_at_use_time() {
        // keepalived.conf(5), "Parameter substitution".
        let mut defs = Definitions::new();
        define(&mut defs, "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}");
        define(&mut defs, "$ADDRESS_BASE_SUB=0");
        assert_eq!(subst(&mut defs, "${ADDRESS_BASE}.100/32"), "10.2.0.100/32");
        define(&mut defs, "$ADDRESS_BASE_SUB=10");
        assert_eq!(subst(&mut defs, "${ADDRESS_BASE}.100/32"), "10.2.10.100/32");
    }

    #[test]
    fn predefined_parameters() {
        let mut defs = Definitions::new();
        assert_eq!(subst(&mut defs, "${_PWD}/x"), "/etc/keepalived/x");
        assert_eq!(subst(&mut defs, "id ${_INSTANCE}"), "id n1");
        assert_eq!(subst(&mut defs, "\"${_HASH}${_BANG}\""), "\"#!\"");
        for _ in 0..50 {
            let n: u64 = subst(&mut defs, "${_RANDOM 5 7}").parse().expect("number");
            assert!((5..=7).contains(&n), "{n}");
        }
        let n: u64 = subst(&mut defs, "${_RANDOM}").parse().expect("number");
        assert!(n <= RANDOM_MAX);
        assert_eq!(
            subst(&mut defs, "${_RANDOM 5 }"),
            "${_RANDOM 5 }",
            "trailing space"
        );
        assert_eq!(
            subst(&mut defs, "${_PWD 1}"),
            "${_PWD 1}",
            "_PWD takes no parameters"
        );
        define(&mut defs, "$_HASH=hash");
        assert_eq!(
            subst(&mut defs, "${_HASH}"),
            "hash",
            "predefined names can be redefined"
        );
    }

    #[test]
    fn a_self_reference_is_reported_not_looped() {
        let mut defs = Definitions::new();
        define(&mut defs, "$A=x${A}");
        assert!(subst(&mut defs, "${A}").starts_with("error: parameter substitution does not end"));
    }

    #[test]
    fn substituted_text_points_at_its_reference() {
        let mut defs = Definitions::new();
        define(&mut defs, "$PRIO=150");
        let s = defs
            .substitute(&line("  priority $PRIO", 7), Path::new("/"), "n1")
            .expect("ok");
        let fallback = Span::whole_file(Arc::from(PathBuf::from("none")));
        assert_eq!(s.line.text(), "  priority 150");
        assert_eq!(
            (
                s.line.span_at(11, &fallback).line,
                s.line.span_at(11, &fallback).column
            ),
            (7, 12)
        );
        assert_eq!(s.line.span_at(13, &fallback).column, 12);
    }

    #[test]
    fn multiline_values_expand_only_at_the_end_of_a_line() {
        let mut defs = Definitions::new();
        defs.set_lines(
            "BLOCK",
            vec![line("vrrp_instance VI_${N} {", 2), line("}", 3)],
            true,
        );
        define(&mut defs, "$N=4");
        let s = defs
            .substitute(&line("$BLOCK", 9), Path::new("/"), "n1")
            .expect("ok");
        assert_eq!(s.line.text(), "vrrp_instance VI_4 {");
        assert_eq!(
            s.following.iter().map(MappedLine::text).collect::<Vec<_>>(),
            ["}"]
        );
        let fallback = Span::whole_file(Arc::from(PathBuf::from("none")));
        assert_eq!(
            (
                s.line.span_at(0, &fallback).line,
                s.following[0].span_at(0, &fallback).line
            ),
            (9, 9),
            "every line of the expansion is placed at the reference"
        );
        assert_eq!(subst(&mut defs, "x $BLOCK y"), "x $BLOCK y");
    }
}
