//! Parser: the logical lines of [`crate::preprocess`] → a spanned syntax tree of
//! statements.
//!
//! A statement is the words of one line, optionally followed by a block `{ … }` whose `{` is
//! on the same line or on the next one. As in keepalived, blocks may span files (an
//! `include` inside a block, a block closed in another file), a `}` with no block open is
//! ignored (with a warning) and a block still open at the end of the configuration ends
//! there (with a warning). A `{` with no keyword before it is kept as a statement whose
//! keyword is `{`, for [`crate::reflow`] to treat as keepalived does.

use std::path::Path;
use std::sync::Arc;

use super::diag::Span;
use super::lexer::{lex_line, Token, Word};
use super::preprocess::Preprocessor;

/// Blocks nested deeper than this are rejected (keepalived's configs use at most 4).
const MAX_BLOCK_DEPTH: usize = 32;

/// One statement: `keyword args… [{ block }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The first word (`{` for a block with no keyword before it).
    pub keyword: Word,
    /// The other words on its line.
    pub args: Vec<Word>,
    /// Its block, if it has one.
    pub block: Option<Block>,
}

impl Node {
    /// Where the statement starts.
    pub fn span(&self) -> &Span {
        &self.keyword.span
    }
}

/// The statements between `{` and `}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Where `{` is.
    pub open: Span,
    /// The statements inside.
    pub nodes: Vec<Node>,
    /// Where `}` is (`None` when the block runs to the end of the configuration).
    /// keepalived reports what it decides at the end of a block on this line.
    pub close: Option<Span>,
}

impl Block {
    /// Where the block ends: its `}`, else its `{`.
    pub fn end(&self) -> &Span {
        self.close.as_ref().unwrap_or(&self.open)
    }
}

/// Reads every logical line of `pre` and builds the tree. `top` names the configuration
/// (for messages that have no better place).
pub(crate) fn parse(pre: &mut Preprocessor<'_>, top: &Path) -> Vec<Node> {
    let tokens = tokens(pre, top);
    let mut pos = 0;
    Builder { pre }.nodes(&tokens, &mut pos, 0)
}

/// Lexes every line. `include_check` in `global_defs` takes effect for the includes that
/// follow it, so lines are lexed as they come and that one statement is looked at here.
fn tokens(pre: &mut Preprocessor<'_>, top: &Path) -> Vec<Token> {
    let fallback = Span::whole_file(Arc::from(top));
    let mut out = Vec::new();
    let mut blocks: Vec<Option<String>> = Vec::new();
    let mut last_keyword: Option<String> = None;
    while let Some(line) = pre.next_line() {
        let start = out.len();
        lex_line(&line, &fallback, pre.diags(), &mut out);
        let mut statement: Option<(String, Vec<Word>)> = None;
        for token in &out[start..] {
            match token {
                Token::Word(w) => match &mut statement {
                    Some((_, args)) => args.push(w.clone()),
                    None => statement = Some((w.text.clone(), Vec::new())),
                },
                Token::Open(_) => {
                    let owner = statement.take().map(|(k, _)| k).or(last_keyword.take());
                    blocks.push(owner);
                }
                Token::Close(_) => {
                    blocks.pop();
                    statement = None;
                }
                Token::Newline => {}
            }
        }
        if let Some((keyword, args)) = statement {
            if keyword == "include_check" && blocks == [Some("global_defs".to_owned())] {
                pre.set_include_check(&args);
            }
            last_keyword = Some(keyword);
        } else {
            last_keyword = None;
        }
    }
    out
}

struct Builder<'p, 'd> {
    pre: &'p mut Preprocessor<'d>,
}

impl Builder<'_, '_> {
    fn nodes(&mut self, tokens: &[Token], pos: &mut usize, depth: usize) -> Vec<Node> {
        let mut nodes = Vec::new();
        while let Some(token) = tokens.get(*pos) {
            match token {
                Token::Newline => *pos += 1,
                Token::Close(span) => {
                    if depth > 0 {
                        return nodes;
                    }
                    self.pre.diags().warn(
                        span,
                        "extra '}' (no block is open here); ignored, as keepalived does",
                    );
                    *pos += 1;
                }
                Token::Open(span) => {
                    let span = span.clone();
                    *pos += 1;
                    let block = self.block(tokens, pos, depth, span.clone());
                    nodes.push(Node {
                        keyword: Word {
                            text: "{".into(),
                            quoted: false,
                            span,
                        },
                        args: Vec::new(),
                        block: Some(block),
                    });
                }
                Token::Word(keyword) => {
                    *pos += 1;
                    let keyword = keyword.clone();
                    let mut args = Vec::new();
                    while let Some(Token::Word(w)) = tokens.get(*pos) {
                        args.push(w.clone());
                        *pos += 1;
                    }
                    let block = match open_brace_after(tokens, *pos) {
                        Some((open_at, span)) => {
                            *pos = open_at + 1;
                            Some(self.block(tokens, pos, depth, span))
                        }
                        None => None,
                    };
                    nodes.push(Node {
                        keyword,
                        args,
                        block,
                    });
                }
            }
        }
        nodes
    }

    /// Parses a block whose `{` (at `open`) was just consumed, through its `}`.
    fn block(&mut self, tokens: &[Token], pos: &mut usize, depth: usize, open: Span) -> Block {
        if depth + 1 >= MAX_BLOCK_DEPTH {
            self.pre.diags().error(
                &open,
                format!("blocks nested more than {MAX_BLOCK_DEPTH} deep; block skipped"),
            );
            skip_to_matching_close(tokens, pos);
            return Block {
                open,
                nodes: Vec::new(),
                close: None,
            };
        }
        let nodes = self.nodes(tokens, pos, depth + 1);
        let close = match tokens.get(*pos) {
            Some(Token::Close(span)) => {
                *pos += 1;
                Some(span.clone())
            }
            _ => {
                self.pre.diags().warn(
                    &open,
                    "unclosed '{' (no matching '}' before the end of the configuration); the block ends there, as keepalived does",
                );
                None
            }
        };
        Block { open, nodes, close }
    }
}

/// If the statement that ended at `pos` continues with `{` (possibly after newlines), the
/// index and place of that `{`.
fn open_brace_after(tokens: &[Token], pos: usize) -> Option<(usize, Span)> {
    let mut i = pos;
    loop {
        match tokens.get(i)? {
            Token::Newline => i += 1,
            Token::Open(span) => return Some((i, span.clone())),
            _ => return None,
        }
    }
}

/// Skips tokens through the `}` that closes an already-consumed `{`.
fn skip_to_matching_close(tokens: &[Token], pos: &mut usize) {
    let mut depth = 1usize;
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        match token {
            Token::Open(_) => depth += 1,
            Token::Close(_) => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::diag::Diags;

    fn parse_text(text: &str) -> (Vec<Node>, Vec<String>) {
        let mut diags = Diags::default();
        let nodes = {
            let mut pre = Preprocessor::new(&mut diags, "test");
            pre.open_text(text, Path::new("t.conf"));
            parse(&mut pre, Path::new("t.conf"))
        };
        (
            nodes,
            diags.into_vec().iter().map(ToString::to_string).collect(),
        )
    }

    /// `kw(args){…}` compactly (also for the reflow tests).
    pub(crate) fn shape(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| {
                let mut s = n.keyword.text.clone();
                for a in &n.args {
                    s.push(' ');
                    s.push_str(&a.text);
                }
                if let Some(b) = &n.block {
                    s.push_str(&format!("{{{}}}", shape(&b.nodes)));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn brace_on_same_line_next_line_and_without_space() {
        for text in [
            "vrrp_sync_group VG_1 {\n group {\n VI_1\n }\n}",
            "vrrp_sync_group VG_1\n{\n group\n {\n VI_1\n }\n}",
            "vrrp_sync_group VG_1{\ngroup{\nVI_1\n}\n}",
        ] {
            let (nodes, diags) = parse_text(text);
            assert!(diags.is_empty(), "{diags:?}");
            assert_eq!(shape(&nodes), "vrrp_sync_group VG_1{group{VI_1}}", "{text}");
        }
    }

    #[test]
    fn one_line_blocks() {
        let (nodes, diags) = parse_text("i { track_script { chk } priority 5 }\nnext");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(shape(&nodes), "i{track_script{chk};priority 5};next");
    }

    #[test]
    fn extra_close_is_a_warning_with_place() {
        let (nodes, diags) = parse_text("a {\n}\n  }\nb\n");
        assert_eq!(
            diags,
            ["t.conf:3:3: warning: extra '}' (no block is open here); ignored, as keepalived does"]
        );
        assert_eq!(shape(&nodes), "a{};b");
    }

    #[test]
    fn unclosed_open_ends_at_the_end_with_a_warning() {
        let (nodes, diags) = parse_text("vrrp_instance X {\n  state MASTER\n");
        assert_eq!(
            diags,
            ["t.conf:1:17: warning: unclosed '{' (no matching '}' before the end of the configuration); the block ends there, as keepalived does"]
        );
        assert_eq!(shape(&nodes), "vrrp_instance X{state MASTER}");
    }

    #[test]
    fn a_block_without_keyword_is_kept_for_reflow() {
        let (nodes, diags) = parse_text("{\n a\n}\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(shape(&nodes), "{{a}");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let text = "{".repeat(100_000);
        let (_, diags) = parse_text(&text);
        assert!(!diags.is_empty());
        let text = format!("a{}{}", "{".repeat(50), "}".repeat(50));
        let (_, diags) = parse_text(&text);
        assert!(
            diags.iter().any(|d| d.contains("nested more than")),
            "{diags:?}"
        );
    }
}
