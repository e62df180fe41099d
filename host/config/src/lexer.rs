//! Lexer for keepalived's configuration syntax.
//!
//! - Words are separated by whitespace (spaces, tabs, `\r`); a newline ends a statement.
//! - `{` and `}` are tokens of their own, with or without spaces around them (`VG_1{`).
//! - `!` and `#` start a comment to the end of the line anywhere outside double quotes
//!   (at the start of a line, at its end, right after a brace). Write a value containing
//!   `#` or `!` in double quotes.
//! - `"…"` is (part of) one word with the quotes removed, as in keepalived
//!   (`ab" c d "ef` is the single word `ab c d ef`); inside quotes `\"` is a quote and `\\` a
//!   backslash, other backslashes are kept as written (the script splitter reads them).
//!   Single quotes are ordinary characters here; the script splitter gives them meaning.

use std::path::Path;
use std::sync::Arc;

use super::diag::{Diags, Span};

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

/// Splits `text` (the contents of `file`) into tokens. Never fails: an unterminated quote is
/// reported and ends at the end of its line.
pub(crate) fn lex(text: &str, file: &Arc<Path>, diags: &mut Diags) -> Vec<Token> {
    let mut tokens = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
        lex_line(line, line_no, file, diags, &mut tokens);
        tokens.push(Token::Newline);
    }
    tokens
}

fn lex_line(line: &str, line_no: u32, file: &Arc<Path>, diags: &mut Diags, out: &mut Vec<Token>) {
    let chars: Vec<char> = line.chars().collect();
    let span_at = |i: usize| {
        Span::new(
            file.clone(),
            line_no,
            u32::try_from(i + 1).unwrap_or(u32::MAX),
        )
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '!' | '#' => return,
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
                        i = read_quoted(&chars, i, &mut text);
                        if i > chars.len() {
                            diags.error(
                                &span_at(start),
                                "unterminated quoted string (a closing \" is missing on this line)",
                            );
                            i = chars.len();
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

/// Outside quotes, a word ends at whitespace, a brace or a comment.
fn is_word_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | '}' | '!' | '#')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn lex_str(text: &str) -> (Vec<Token>, Diags) {
        let file: Arc<Path> = Arc::from(PathBuf::from("t.conf"));
        let mut diags = Diags::default();
        let tokens = lex(text, &file, &mut diags);
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
    fn comments_anywhere_outside_quotes() {
        assert_eq!(shape("! top\n# hash"), "; ;");
        assert_eq!(shape("a b # tail"), "a b ;");
        assert_eq!(shape("a {# after brace"), "a { ;");
        assert_eq!(shape("a{!x\n}"), "a { ; } ;");
        assert_eq!(shape("x \"a # b ! c\" # real"), "x \"a # b ! c\" ;");
    }

    #[test]
    fn braces_without_spaces_and_one_line_blocks() {
        assert_eq!(shape("VG_1{"), "VG_1 { ;");
        assert_eq!(shape("track_script { chk }"), "track_script { chk } ;");
        assert_eq!(shape("a}b"), "a } b ;");
    }

    #[test]
    fn tabs_crlf_and_no_final_newline() {
        assert_eq!(shape("\ta\tb\r\nc"), "a b ; c ;");
    }

    #[test]
    fn non_ascii_in_comments_and_words() {
        assert_eq!(shape("# Größe → ok\nname héllo"), "; name héllo ;");
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
        assert!(!diags.has_errors());
        match &tokens[1] {
            Token::Word(w) => assert_eq!(w.text, r#"a "b" \ c\n"#),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn quoted_segments_join_adjacent_text() {
        assert_eq!(shape("abcd\" efg h \"mnop x"), "\"abcd efg h mnop\" x ;");
    }

    #[test]
    fn unterminated_quote_is_an_error_with_place() {
        let (_, diags) = lex_str("a\n  script \"/bin/true");
        let d = diags.into_vec();
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_string(),
            "t.conf:2:10: error: unterminated quoted string (a closing \" is missing on this line)"
        );
    }
}
