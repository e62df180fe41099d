//! keepalived's `decomment()`: what is left of a line once comments are cut.
//!
//! - Leading spaces and tabs go.
//! - `!` or `#` outside double quotes starts a comment that runs to the end of the line
//!   (anywhere: after a word, after a brace, glued to a number as in `priority 100#x`).
//! - Outside quotes, `\#` and `\!` are meant as a literal `#` and `!`; but keepalived 2.2.7
//!   reads its configuration twice (the parent writes the comment-free lines to a copy that
//!   the VRRP process reads again), so in the running VRRP process the `#` that the first
//!   reading left starts a comment after all. This follows the running keepalived: the line
//!   ends there, and [`Decommented::escaped_comment`] says so for a warning.
//! - Any other backslash escapes the next character for the purpose of this scan (so `\"`
//!   neither opens nor closes a quote) and stays in the text.
//! - A backslash that is the last character of the line (even inside a comment) marks a
//!   continuation: it is kept, right after the remaining text, with the blanks before it
//!   removed. Only parameter definitions continue on the next line (see [`super`]).
//! - Trailing spaces and tabs go.

use crate::source::MappedLine;

/// A line after comment removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decommented {
    /// The remaining text, a trailing continuation `\` included.
    pub(crate) line: MappedLine,
    /// Whether the line ended with a continuation backslash.
    pub(crate) continued: bool,
    /// Where (in the result) a `\#` or `\!` outside quotes cut the line, if one did.
    pub(crate) escaped_comment: Option<crate::diag::Span>,
}

/// Cuts comments from `line` as keepalived 2.2.7 does.
pub(crate) fn decomment(line: &MappedLine) -> Decommented {
    let blank = |c: char| c == ' ' || c == '\t';
    let start = line
        .chars()
        .iter()
        .position(|&c| !blank(c))
        .unwrap_or(line.len());
    let mut line = line.slice(start..line.len());
    let mut quote = false;
    let mut comment_at: Option<usize> = None;
    let mut escaped_comment = None;
    let mut continuation: Option<MappedLine> = None;
    let mut p = 0;
    while p < line.len() {
        match line.chars()[p] {
            '"' => {
                if comment_at.is_none() {
                    quote = !quote;
                }
                p += 1;
            }
            '\\' if p + 1 < line.len() => {
                let next = line.chars()[p + 1];
                if !quote && (next == '#' || next == '!') {
                    line = line.removed(p);
                    if comment_at.is_none() {
                        // The second reading (see the module docs) cuts here.
                        comment_at = Some(p);
                        escaped_comment = Some(line.span_at(
                            p,
                            &crate::diag::Span::whole_file(std::path::Path::new("").into()),
                        ));
                    }
                    p += 1;
                } else {
                    p += 2;
                }
            }
            '\\' => {
                continuation = Some(line.slice(p..p + 1));
                line = line.slice(0..p);
                break;
            }
            '!' | '#' if !quote && comment_at.is_none() => {
                comment_at = Some(p);
                p += 1;
            }
            _ => p += 1,
        }
    }
    if let Some(at) = comment_at {
        line = line.slice(0..at);
    }
    let end = line
        .chars()
        .iter()
        .rposition(|&c| !blank(c))
        .map_or(0, |i| i + 1);
    let mut line = line.slice(0..end);
    let continued = continuation.is_some();
    if let Some(backslash) = continuation {
        line.push_line(&backslash);
    }
    Decommented {
        line,
        continued,
        escaped_comment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn dec(text: &str) -> (String, bool) {
        let file: Arc<Path> = Arc::from(PathBuf::from("t"));
        let d = decomment(&MappedLine::verbatim(text, Span::new(file, 1, 1)));
        (d.line.text(), d.continued)
    }

    #[test]
    fn comments_anywhere_outside_quotes() {
        assert_eq!(dec("  priority 100 # main"), ("priority 100".into(), false));
        assert_eq!(dec("priority 100#backup"), ("priority 100".into(), false));
        assert_eq!(dec("! whole line"), (String::new(), false));
        assert_eq!(
            dec("vrrp_instance X {# c"),
            ("vrrp_instance X {".into(), false)
        );
        assert_eq!(
            dec(r#"script "/bin/x '#no' !no" # yes"#),
            (r#"script "/bin/x '#no' !no""#.into(), false)
        );
    }

    #[test]
    fn escaped_comment_characters_cut_the_line_as_in_the_running_keepalived() {
        assert_eq!(dec(r"auth_pass ab\#cd"), ("auth_pass ab".into(), false));
        assert_eq!(dec(r"priority 1\!50"), ("priority 1".into(), false));
        assert_eq!(
            dec(r#"x "a\#b""#),
            (r#"x "a\#b""#.into(), false),
            "inside quotes: kept"
        );
        assert_eq!(dec(r##"x \"# c"##), (r#"x \""#.into(), false));
    }

    #[test]
    fn trailing_backslash_is_a_continuation() {
        assert_eq!(dec("$A= \\"), ("$A=\\".into(), true));
        assert_eq!(dec("  value  \\"), ("value\\".into(), true));
        assert_eq!(dec("x # note \\"), ("x\\".into(), true));
        assert_eq!(dec("\\"), ("\\".into(), true));
        assert_eq!(dec("a\\b"), ("a\\b".into(), false));
    }

    #[test]
    fn places_survive_the_cut() {
        let file: Arc<Path> = Arc::from(PathBuf::from("t"));
        let d = decomment(&MappedLine::verbatim(
            "\t  ab c\\#d",
            Span::new(file.clone(), 4, 1),
        ));
        assert_eq!(d.line.text(), "ab c");
        let fallback = Span::whole_file(file);
        assert_eq!(d.line.span_at(0, &fallback).column, 4);
        assert_eq!(d.line.span_at(3, &fallback).column, 7);
        assert_eq!(
            d.escaped_comment.map(|s| s.column),
            Some(9),
            "at the # after the escape"
        );
    }
}
