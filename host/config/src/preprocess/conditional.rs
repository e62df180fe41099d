//! Conditional lines: `@ID rest` keeps `rest` only when ID is the configuration id,
//! `@^ID rest` only when it is not (keepalived's `-i`/`--config-id`, whose default is the
//! host name up to its first dot).
//!
//! As in keepalived, the id is the text right after `@` (or `@^`) up to the first space or
//! tab, and a conditional line with nothing after the id is dropped whatever the id.

use crate::source::MappedLine;

/// What a line's conditional prefix decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Conditional {
    /// The line does not start with `@`.
    Unconditional,
    /// The condition holds: the rest of the line, prefix removed.
    Keep(MappedLine),
    /// The condition does not hold (or nothing follows the id): the line is dropped.
    Drop,
}

/// Applies `@ID` / `@^ID` at the start of `line` for configuration id `config_id`.
pub(crate) fn apply(line: &MappedLine, config_id: &str) -> Conditional {
    let chars = line.chars();
    if chars.first() != Some(&'@') {
        return Conditional::Unconditional;
    }
    let (negate, id_start) = if chars.get(1) == Some(&'^') {
        (true, 2)
    } else {
        (false, 1)
    };
    let blank = |c: &char| *c == ' ' || *c == '\t';
    let Some(id_end) = chars[id_start..]
        .iter()
        .position(blank)
        .map(|i| i + id_start)
    else {
        return Conditional::Drop;
    };
    let id: String = chars[id_start..id_end].iter().collect();
    if (id == config_id) == negate {
        return Conditional::Drop;
    }
    let rest = chars[id_end..]
        .iter()
        .position(|c| !blank(c))
        .map_or(line.len(), |i| i + id_end);
    Conditional::Keep(line.slice(rest..line.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn cond(text: &str, id: &str) -> Option<String> {
        let file: Arc<Path> = Arc::from(PathBuf::from("t"));
        match apply(&MappedLine::verbatim(text, Span::new(file, 1, 1)), id) {
            Conditional::Unconditional => Some(format!("={text}")),
            Conditional::Keep(rest) => Some(rest.text()),
            Conditional::Drop => None,
        }
    }

    #[test]
    fn matching_and_negated_ids() {
        assert_eq!(
            cond("@main router_id a", "main"),
            Some("router_id a".into())
        );
        assert_eq!(cond("@main router_id a", "backup"), None);
        assert_eq!(cond("@^main\t 1.2.3.4", "main"), None);
        assert_eq!(cond("@^main\t 1.2.3.4", "backup"), Some("1.2.3.4".into()));
        assert_eq!(cond("@mainly x", "main"), None, "whole-word comparison");
    }

    #[test]
    fn edge_cases() {
        assert_eq!(cond("priority 1", "x"), Some("=priority 1".into()));
        assert_eq!(cond("@main", "main"), None, "nothing after the id");
        assert_eq!(
            cond("@ x", ""),
            Some("x".into()),
            "empty id matches an empty config id"
        );
    }

    #[test]
    fn the_kept_rest_keeps_its_columns() {
        let file: Arc<Path> = Arc::from(PathBuf::from("t"));
        let line = MappedLine::verbatim("@n1  priority 200", Span::new(file.clone(), 9, 5));
        let Conditional::Keep(rest) = apply(&line, "n1") else {
            panic!("kept")
        };
        assert_eq!(rest.span_at(0, &Span::whole_file(file)).column, 10);
    }
}
