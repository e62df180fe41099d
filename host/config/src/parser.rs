//! Parser: tokens → a spanned syntax tree of statements, with `include` expanded.
//!
//! A statement is the words of one line, optionally followed by a block `{ … }` whose `{` is
//! on the same line or on the next one. `include PATTERN` (and keepalived's variants
//! `includer`, `includem`, `includew`, `includeb`, `includea`) is replaced by the statements
//! of the files it names, at any depth. As in keepalived, a relative pattern is relative to
//! the directory of the file that contains the `include`; glob patterns (`*`, `?`, `[…]`)
//! are expanded in sorted order. A literal path that does not exist is an error; a pattern
//! that matches nothing is a warning. Each file must balance its own braces. Include cycles
//! are errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diag::{Diags, Span};
use super::lexer::{lex, Token, Word};

/// Blocks nested deeper than this are rejected (keepalived's configs use at most 4).
const MAX_BLOCK_DEPTH: usize = 32;
/// Includes nested deeper than this are rejected (a cycle through differing paths).
const MAX_INCLUDE_DEPTH: usize = 16;
/// At most this many files are read for one configuration.
const MAX_FILES: usize = 1000;
/// The keywords that include files.
const INCLUDE_KEYWORDS: [&str; 6] = [
    "include", "includer", "includem", "includew", "includeb", "includea",
];

/// One statement: `keyword args… [{ block }]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The first word.
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
}

/// Reads, lexes and parses files, following includes.
pub(crate) struct Parser<'d> {
    diags: &'d mut Diags,
    /// Canonical paths of the files being parsed, outermost first.
    stack: Vec<PathBuf>,
    files_read: usize,
}

impl<'d> Parser<'d> {
    pub(crate) fn new(diags: &'d mut Diags) -> Self {
        Self {
            diags,
            stack: Vec::new(),
            files_read: 0,
        }
    }

    /// Parses `text` as the contents of `path` (which need not exist; its directory anchors
    /// relative includes).
    pub(crate) fn parse_text(&mut self, text: &str, path: &Path) -> Vec<Node> {
        let file: Arc<Path> = Arc::from(path);
        self.stack.push(canonical(path));
        self.files_read += 1;
        let tokens = lex(text, &file, self.diags);
        let mut pos = 0;
        let nodes = self.parse_nodes(&tokens, &mut pos, 0, &file);
        self.stack.pop();
        nodes
    }

    /// Reads and parses the file at `path`; `None` (and an error) if it cannot be read.
    pub(crate) fn parse_file(&mut self, path: &Path, at: &Span) -> Option<Vec<Node>> {
        match std::fs::read(path) {
            Ok(bytes) => Some(self.parse_text(&String::from_utf8_lossy(&bytes), path)),
            Err(e) => {
                self.diags
                    .error(at, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    fn parse_nodes(
        &mut self,
        tokens: &[Token],
        pos: &mut usize,
        depth: usize,
        file: &Arc<Path>,
    ) -> Vec<Node> {
        let mut nodes = Vec::new();
        while let Some(token) = tokens.get(*pos) {
            match token {
                Token::Newline => *pos += 1,
                Token::Close(span) => {
                    if depth > 0 {
                        return nodes;
                    }
                    self.diags
                        .error(span, "unbalanced '}' (no block is open here)");
                    *pos += 1;
                }
                Token::Open(span) => {
                    self.diags
                        .error(span, "'{' without a keyword before it; block skipped");
                    let span = span.clone();
                    *pos += 1;
                    let _ = self.parse_block(tokens, pos, depth, span, file);
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
                            Some(self.parse_block(tokens, pos, depth, span, file))
                        }
                        None => None,
                    };
                    let node = Node {
                        keyword,
                        args,
                        block,
                    };
                    if INCLUDE_KEYWORDS.contains(&node.keyword.text.as_str()) {
                        self.expand_include(&node, file, &mut nodes);
                    } else {
                        nodes.push(node);
                    }
                }
            }
        }
        nodes
    }

    /// Parses a block whose `{` (at `open`) was just consumed, through its `}`.
    fn parse_block(
        &mut self,
        tokens: &[Token],
        pos: &mut usize,
        depth: usize,
        open: Span,
        file: &Arc<Path>,
    ) -> Block {
        if depth + 1 >= MAX_BLOCK_DEPTH {
            self.diags.error(
                &open,
                format!("blocks nested more than {MAX_BLOCK_DEPTH} deep; block skipped"),
            );
            skip_to_matching_close(tokens, pos);
            return Block {
                open,
                nodes: Vec::new(),
            };
        }
        let nodes = self.parse_nodes(tokens, pos, depth + 1, file);
        match tokens.get(*pos) {
            Some(Token::Close(_)) => *pos += 1,
            _ => self.diags.error(
                &open,
                "unclosed '{' (no matching '}' before the end of the file)",
            ),
        }
        Block { open, nodes }
    }

    fn expand_include(&mut self, node: &Node, file: &Arc<Path>, out: &mut Vec<Node>) {
        let span = node.span();
        let [pattern] = node.args.as_slice() else {
            self.diags.error(
                span,
                format!(
                    "{} takes exactly one file name or pattern",
                    node.keyword.text
                ),
            );
            return;
        };
        if node.block.is_some() {
            self.diags.error(span, "include does not take a block");
        }
        let base = file.parent().unwrap_or(Path::new(""));
        let paths = match resolve_include(base, &pattern.text) {
            Ok(paths) => paths,
            Err(message) => {
                self.diags.error(&pattern.span, message);
                return;
            }
        };
        if paths.is_empty() {
            self.diags.warn(
                &pattern.span,
                format!("include pattern {} matches no file", pattern.text),
            );
        }
        for path in paths {
            let key = canonical(&path);
            if let Some(first) = self.stack.iter().position(|p| *p == key) {
                let chain: Vec<String> = self.stack[first..]
                    .iter()
                    .chain([&key])
                    .map(|p| p.display().to_string())
                    .collect();
                self.diags.error(
                    &pattern.span,
                    format!("include cycle: {}", chain.join(" -> ")),
                );
                continue;
            }
            if self.stack.len() >= MAX_INCLUDE_DEPTH {
                self.diags.error(
                    &pattern.span,
                    format!("includes nested more than {MAX_INCLUDE_DEPTH} deep"),
                );
                return;
            }
            if self.files_read >= MAX_FILES {
                self.diags.error(
                    &pattern.span,
                    format!("more than {MAX_FILES} configuration files"),
                );
                return;
            }
            if let Some(nodes) = self.parse_file(&path, &pattern.span) {
                out.extend(nodes);
            }
        }
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

/// The files an include pattern names, relative to `base` when not absolute.
fn resolve_include(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let joined = if Path::new(pattern).is_absolute() {
        pattern.to_owned()
    } else {
        let base = base
            .to_str()
            .ok_or_else(|| format!("directory {} is not valid UTF-8", base.display()))?;
        if base.is_empty() {
            pattern.to_owned()
        } else {
            format!("{}/{pattern}", glob::Pattern::escape(base))
        }
    };
    if !pattern.contains(['*', '?', '[']) {
        let path = PathBuf::from(unescape_literal(&joined));
        return if path.is_file() {
            Ok(vec![path])
        } else {
            Err(format!("include file not found: {}", path.display()))
        };
    }
    let paths = glob::glob(&joined).map_err(|e| format!("bad include pattern {pattern}: {e}"))?;
    Ok(paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect())
}

/// Undoes `glob::Pattern::escape` for a pattern without metacharacters of its own.
fn unescape_literal(escaped: &str) -> String {
    escaped
        .replace("[[]", "[")
        .replace("[]]", "]")
        .replace("[*]", "*")
        .replace("[?]", "?")
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<Node>, Vec<String>) {
        let mut diags = Diags::default();
        let nodes = Parser::new(&mut diags).parse_text(text, Path::new("t.conf"));
        (
            nodes,
            diags.into_vec().iter().map(ToString::to_string).collect(),
        )
    }

    /// `kw(args){…}` compactly.
    fn shape(nodes: &[Node]) -> String {
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
            let (nodes, diags) = parse(text);
            assert!(diags.is_empty(), "{diags:?}");
            assert_eq!(shape(&nodes), "vrrp_sync_group VG_1{group{VI_1}}", "{text}");
        }
    }

    #[test]
    fn one_line_blocks() {
        let (nodes, diags) = parse("i { track_script { chk } priority 5 }\nnext");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(shape(&nodes), "i{track_script{chk};priority 5};next");
    }

    #[test]
    fn unbalanced_close_is_reported_with_place() {
        let (_, diags) = parse("a {\n}\n  }\n");
        assert_eq!(
            diags,
            ["t.conf:3:3: error: unbalanced '}' (no block is open here)"]
        );
    }

    #[test]
    fn unclosed_open_is_reported_at_the_brace() {
        let (_, diags) = parse("vrrp_instance X {\n  state MASTER\n");
        assert_eq!(
            diags,
            ["t.conf:1:17: error: unclosed '{' (no matching '}' before the end of the file)"]
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let text = "{".repeat(100_000);
        let (_, diags) = parse(&text);
        assert!(!diags.is_empty());
        let text = format!("a{}{}", "{".repeat(50), "}".repeat(50));
        let (_, diags) = parse(&text);
        assert!(
            diags.iter().any(|d| d.contains("nested more than")),
            "{diags:?}"
        );
    }
}
