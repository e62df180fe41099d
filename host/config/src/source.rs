//! Text whose every character knows where it was written.
//!
//! keepalived rewrites its configuration lines before it parses them: comments are cut,
//! `$NAME` is replaced by a value, `~SEQ` lines are generated from a template, `@id `
//! prefixes are removed. A [`MappedLine`] is such a rewritten line together with the place
//! of each of its characters in the original files, so that a diagnostic about a generated
//! or substituted word still names the `file:line:column` an operator can open.
//!
//! Two kinds of pieces make up a line:
//! - *verbatim* text, copied from a file: character `i` of the piece is at the piece's
//!   origin plus `i` columns;
//! - *substituted* text (the value of a parameter): every character is placed at the
//!   reference that produced it (the `$` of `$NAME`).

use std::ops::Range;

use crate::diag::Span;

/// One run of characters that share an origin rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    /// Index (in characters) of the first character of the run in the line.
    at: usize,
    /// Where the first character of the run was written.
    origin: Span,
    /// Verbatim (columns advance with each character) or substituted (all at `origin`).
    verbatim: bool,
}

/// A line of configuration text with the original place of every character.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct MappedLine {
    chars: Vec<char>,
    /// Sorted by `at`; the first starts at 0 whenever the line is not empty.
    pieces: Vec<Piece>,
}

impl MappedLine {
    /// `text` as written at `origin` (the place of its first character).
    pub(crate) fn verbatim(text: &str, origin: Span) -> Self {
        Self::piece(text, origin, true)
    }

    /// `text` produced by the reference at `origin`: every character is placed there.
    pub(crate) fn substituted(text: &str, origin: Span) -> Self {
        Self::piece(text, origin, false)
    }

    fn piece(text: &str, origin: Span, verbatim: bool) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let pieces = if chars.is_empty() {
            Vec::new()
        } else {
            vec![Piece {
                at: 0,
                origin,
                verbatim,
            }]
        };
        Self { chars, pieces }
    }

    /// The characters.
    pub(crate) fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The text as a string.
    pub(crate) fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// Number of characters.
    pub(crate) fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the line has no characters.
    pub(crate) fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Where character `index` was written. Past the end: just after the last character
    /// (or `fallback` for an empty line).
    pub(crate) fn span_at(&self, index: usize, fallback: &Span) -> Span {
        if self.pieces.is_empty() {
            return fallback.clone();
        }
        let (index, past_end) = if index >= self.chars.len() {
            (self.chars.len() - 1, index + 1 - self.chars.len())
        } else {
            (index, 0)
        };
        let piece = match self.pieces.binary_search_by(|p| p.at.cmp(&index)) {
            Ok(i) => &self.pieces[i],
            Err(i) => &self.pieces[i.saturating_sub(1)],
        };
        let mut span = piece.origin.clone();
        if piece.verbatim {
            span.column = span
                .column
                .saturating_add(u32::try_from(index - piece.at + past_end).unwrap_or(u32::MAX));
        }
        span
    }

    /// Characters `range` as a line of their own, with their places.
    pub(crate) fn slice(&self, range: Range<usize>) -> Self {
        let start = range.start.min(self.chars.len());
        let end = range.end.clamp(start, self.chars.len());
        if start == end {
            return Self::default();
        }
        let mut pieces = Vec::new();
        for (i, p) in self.pieces.iter().enumerate() {
            let p_end = self.pieces.get(i + 1).map_or(self.chars.len(), |n| n.at);
            if p_end <= start || p.at >= end {
                continue;
            }
            let mut origin = p.origin.clone();
            let at = if p.at < start {
                if p.verbatim {
                    origin.column = origin
                        .column
                        .saturating_add(u32::try_from(start - p.at).unwrap_or(u32::MAX));
                }
                0
            } else {
                p.at - start
            };
            pieces.push(Piece {
                at,
                origin,
                verbatim: p.verbatim,
            });
        }
        Self {
            chars: self.chars[start..end].to_vec(),
            pieces,
        }
    }

    /// Appends `other` (with its places) to this line.
    pub(crate) fn push_line(&mut self, other: &MappedLine) {
        let offset = self.chars.len();
        self.chars.extend_from_slice(&other.chars);
        for p in &other.pieces {
            let piece = Piece {
                at: p.at + offset,
                origin: p.origin.clone(),
                verbatim: p.verbatim,
            };
            // Merge a verbatim piece that continues the previous one on the same line.
            if let Some(last) = self.pieces.last() {
                let last_len = piece.at - last.at;
                if last.verbatim
                    && piece.verbatim
                    && last.origin.file == piece.origin.file
                    && last.origin.line == piece.origin.line
                    && u64::from(last.origin.column) + last_len as u64
                        == u64::from(piece.origin.column)
                {
                    continue;
                }
            }
            self.pieces.push(piece);
        }
    }

    /// This line with characters `range` replaced by `with`.
    pub(crate) fn replaced(&self, range: Range<usize>, with: &MappedLine) -> Self {
        let mut out = self.slice(0..range.start);
        out.push_line(with);
        out.push_line(&self.slice(range.end..self.chars.len()));
        out
    }

    /// This line without character `index`.
    pub(crate) fn removed(&self, index: usize) -> Self {
        self.replaced(index..index + 1, &Self::default())
    }

    /// The index of the first character from `from` on that is `c`.
    pub(crate) fn find_from(&self, from: usize, c: char) -> Option<usize> {
        self.chars
            .get(from..)?
            .iter()
            .position(|&x| x == c)
            .map(|i| i + from)
    }

    /// Whether the text starts with `prefix`.
    pub(crate) fn starts_with(&self, prefix: &str) -> bool {
        let mut it = self.chars.iter();
        prefix.chars().all(|c| it.next() == Some(&c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn file(name: &str) -> Arc<Path> {
        Arc::from(PathBuf::from(name))
    }

    fn at(line: &MappedLine, i: usize) -> (String, u32, u32) {
        let s = line.span_at(i, &Span::whole_file(file("none")));
        (s.file.display().to_string(), s.line, s.column)
    }

    #[test]
    fn verbatim_columns_advance() {
        let l = MappedLine::verbatim("priority 100", Span::new(file("a.conf"), 3, 5));
        assert_eq!(at(&l, 0), ("a.conf".into(), 3, 5));
        assert_eq!(at(&l, 9), ("a.conf".into(), 3, 14));
        assert_eq!(at(&l, 12), ("a.conf".into(), 3, 17), "just past the end");
    }

    #[test]
    fn substitution_points_at_the_reference() {
        let line = MappedLine::verbatim("priority $PRIO x", Span::new(file("a.conf"), 7, 1));
        let value = MappedLine::substituted("150", Span::new(file("a.conf"), 7, 10));
        let out = line.replaced(9..14, &value);
        assert_eq!(out.text(), "priority 150 x");
        assert_eq!(at(&out, 9), ("a.conf".into(), 7, 10));
        assert_eq!(at(&out, 11), ("a.conf".into(), 7, 10));
        assert_eq!(
            at(&out, 13),
            ("a.conf".into(), 7, 16),
            "after the value: original column"
        );
    }

    #[test]
    fn removing_a_character_keeps_the_others_in_place() {
        let line = MappedLine::verbatim(r"a\#b", Span::new(file("f"), 1, 1));
        let out = line.removed(1);
        assert_eq!(out.text(), "a#b");
        assert_eq!(at(&out, 1).2, 3);
        assert_eq!(at(&out, 2).2, 4);
    }

    #[test]
    fn slices_and_concatenation_across_files() {
        let a = MappedLine::verbatim("abc", Span::new(file("x"), 1, 1));
        let b = MappedLine::verbatim("def", Span::new(file("y"), 9, 4));
        let mut ab = a.clone();
        ab.push_line(&b);
        let mid = ab.slice(2..5);
        assert_eq!(mid.text(), "cde");
        assert_eq!(at(&mid, 0), ("x".into(), 1, 3));
        assert_eq!(at(&mid, 1), ("y".into(), 9, 4));
        assert_eq!(at(&mid, 2), ("y".into(), 9, 5));
        let joined = {
            let mut j = a.slice(0..1);
            j.push_line(&a.slice(1..3));
            j
        };
        assert_eq!(joined.pieces.len(), 1, "adjacent verbatim pieces merge");
    }

    #[test]
    fn search() {
        let t = MappedLine::verbatim("key value", Span::new(file("f"), 2, 1));
        assert!(t.starts_with("key"));
        assert_eq!(t.find_from(0, ' '), Some(3));
        assert_eq!(t.find_from(4, ' '), None);
    }
}
