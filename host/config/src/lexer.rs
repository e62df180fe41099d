//! Lexer: one logical line (see [`crate::preprocess`]) → words and braces.
//!
//! - Words are separated by whitespace (spaces, tabs, `\r`); a line ends a statement.
//! - `{` and `}` are tokens of their own, with or without spaces around them (`VG_1{`).
//! - Comments are already gone (the preprocessor cuts them as keepalived does).
//! - `"…"` is (part of) one word with the quotes removed (`ab" c d "ef` is the single word
//!   `ab c d ef`); inside quotes `\"` is a quote and `\\` a backslash, other backslashes
//!   are kept as written (the script splitter reads them). Single quotes are ordinary
//!   characters here; the script splitter gives them meaning.
//! - A quote that is not closed on its line ends the line: keepalived drops the unmatched
//!   text and goes on, and so do we, with a warning.

use crate::diag::{Diags, Span};
use crate::source::MappedLine;

/// One word of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text, quotes removed.
    pub text: String,
    /// Whether it was written in double quotes.
    pub quoted: bool,
    /// Where it starts.
    pub span: Span,
}

/// A lexical token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A word or quoted string.
    Word(Word),
    /// `{`.
    Open(Span),
    /// `}`.
    Close(Span),
    /// End of a line (statements are line-oriented).
    Newline,
}

/// Appends the tokens of `line` to `out`, then a [`Token::Newline`]. `fallback` places an
/// empty line (it has no characters to take a place from).
pub(crate) fn lex_line(
    line: &MappedLine,
    fallback: &Span,
    diags: &mut Diags,
    out: &mut Vec<Token>,
) {
    let chars = line.chars();
    let span_at = |i: usize| line.span_at(i, fallback);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' => {
                out.push(Token::Open(span_at(i)));
                i += 1;
            }
            '}' => {
                out.push(Token::Close(span_at(i)));
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                let start = i;
                let mut text = String::new();
                let mut quoted = false;
                while i < chars.len() && !is_word_end(chars[i]) {
                    if chars[i] == '"' {
                        quoted = true;
                        i = read_quoted(chars, i, &mut text);
                        if i > chars.len() {
                            diags.warn(
                                &span_at(start),
                                "unterminated quoted string (a closing \" is missing on this line); the rest of the line is ignored, as keepalived does",
                            );
                            out.push(Token::Newline);
                            return;
                        }
                    } else {
                        text.push(chars[i]);
                        i += 1;
                    }
                }
                out.push(Token::Word(Word {
                    text,
                    quoted,
                    span: span_at(start),
                }));
            }
        }
    }
    out.push(Token::Newline);
}

/// Reads the quoted segment starting at `chars[open] == '"'` into `text`; returns the index
/// after the closing quote, or `chars.len() + 1` when the quote is not closed.
fn read_quoted(chars: &[char], open: usize, text: &mut String) -> usize {
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return i + 1,
            '\\' if matches!(chars.get(i + 1), Some('"') | Some('\\')) => {
                text.push(chars[i + 1]);
                i += 2;
            }
            other => {
                text.push(other);
                i += 1;
            }
        }
    }
    chars.len() + 1
}

/// Outside quotes, a word ends at whitespace or a brace.
fn is_word_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | '}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn lex_str(text: &str) -> (Vec<Token>, Diags) {
        let file: Arc<Path> = Arc::from(PathBuf::from("t.conf"));
        let mut diags = Diags::default();
        let mut tokens = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let at = Span::new(file.clone(), i as u32 + 1, 1);
            lex_line(
                &MappedLine::verbatim(line, at.clone()),
                &at,
                &mut diags,
                &mut tokens,
            );
        }
        (tokens, diags)
    }

    /// Words and braces as short strings, newlines as `;`.
    fn shape(text: &str) -> String {
        lex_str(text)
            .0
            .iter()
            .map(|t| match t {
                Token::Word(w) if w.quoted => format!("\"{}\"", w.text),
                Token::Word(w) => w.text.clone(),
                Token::Open(_) => "{".into(),
                Token::Close(_) => "}".into(),
                Token::Newline => ";".into(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn braces_without_spaces_and_one_line_blocks() {
        assert_eq!(shape("VG_1{"), "VG_1 { ;");
        assert_eq!(shape("track_script { chk }"), "track_script { chk } ;");
        assert_eq!(shape("a}b"), "a } b ;");
    }

    #[test]
    fn tabs_and_carriage_returns() {
        assert_eq!(shape("\ta\tb\r\nc"), "a b ; c ;");
    }

    #[test]
    fn non_ascii_words() {
        assert_eq!(shape("name héllo"), "name héllo ;");
    }

    #[test]
    fn columns_count_characters() {
        let (tokens, _) = lex_str("é\tword");
        match &tokens[1] {
            Token::Word(w) => assert_eq!((w.span.line, w.span.column), (1, 3)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn quoted_string_escapes() {
        let (tokens, diags) = lex_str(r#"s "a \"b\" \\ c\n""#);
        assert!(diags.into_vec().is_empty());
        match &tokens[1] {
            Token::Word(w) => assert_eq!(w.text, r#"a "b" \ c\n"#),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn quoted_segments_join_adjacent_text() {
        assert_eq!(shape("abcd\" efg h \"mnop x"), "\"abcd efg h mnop\" x ;");
        assert_eq!(shape("x \"a # b ! c\""), "x \"a # b ! c\" ;");
    }

    #[test]
    fn unterminated_quote_drops_the_rest_of_the_line_with_a_warning() {
        let (tokens, diags) = lex_str("a\n  script \"/bin/true x\nb");
        let d = diags.into_vec();
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_string(),
            "t.conf:2:10: warning: unterminated quoted string (a closing \" is missing on this line); the rest of the line is ignored, as keepalived does"
        );
        assert_eq!(
            tokens
                .iter()
                .filter(|t| matches!(t, Token::Word(_)))
                .count(),
            3,
            "a, script, b"
        );
    }
}
