//! Places and diagnostics: every token carries a [`Span`], every message a place.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A place in a configuration file: path, 1-based line and 1-based column (in characters).
///
/// Line 0 means "the file as a whole" (e.g. it could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file, as it was named (the top file as given, included files as resolved).
    pub file: Arc<Path>,
    /// 1-based line; 0 for the whole file.
    pub line: u32,
    /// 1-based column in characters (a tab counts as one).
    pub column: u32,
}

impl Span {
    /// A place in `file`.
    pub fn new(file: Arc<Path>, line: u32, column: u32) -> Self {
        Self { file, line, column }
    }

    /// The file as a whole.
    pub fn whole_file(file: Arc<Path>) -> Self {
        Self {
            file,
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The configuration loads; something was ignored or adjusted (an error in strict mode).
    Warning,
    /// The configuration does not load.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One message about the configuration, with its place.
///
/// Displays as `file:line:column: severity: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Warning or error.
    pub severity: Severity,
    /// Where.
    pub span: Span,
    /// What, in words an operator understands.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.span, self.severity, self.message)
    }
}

/// Collects diagnostics during lexing, parsing and validation.
#[derive(Debug, Default)]
pub(crate) struct Diags {
    list: Vec<Diagnostic>,
    reported_once: HashSet<String>,
}

impl Diags {
    /// Records a warning.
    pub(crate) fn warn(&mut self, span: &Span, message: impl Into<String>) {
        self.push(Severity::Warning, span, message.into());
    }

    /// Records an error.
    pub(crate) fn error(&mut self, span: &Span, message: impl Into<String>) {
        self.push(Severity::Error, span, message.into());
    }

    /// Records a warning only the first time `key` is seen (e.g. one per unsupported section
    /// kind). Returns whether it was recorded.
    pub(crate) fn warn_once(&mut self, key: &str, span: &Span, message: impl Into<String>) -> bool {
        if self.reported_once.insert(key.to_owned()) {
            self.warn(span, message);
            true
        } else {
            false
        }
    }

    fn push(&mut self, severity: Severity, span: &Span, message: String) {
        self.list.push(Diagnostic {
            severity,
            span: span.clone(),
            message,
        });
    }

    /// Whether any error was recorded so far.
    #[cfg(test)]
    pub(crate) fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// How many errors were recorded so far.
    pub(crate) fn error_count(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// All diagnostics in the order they were found.
    pub(crate) fn into_vec(self) -> Vec<Diagnostic> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file() -> Arc<Path> {
        Arc::from(PathBuf::from("/etc/k.conf"))
    }

    #[test]
    fn diagnostic_prints_file_line_column() {
        let d = Diagnostic {
            severity: Severity::Error,
            span: Span::new(file(), 3, 7),
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "/etc/k.conf:3:7: error: bad");
    }

    #[test]
    fn whole_file_span_prints_path_only() {
        assert_eq!(Span::whole_file(file()).to_string(), "/etc/k.conf");
    }

    #[test]
    fn warn_once_reports_each_key_once() {
        let mut d = Diags::default();
        let s = Span::new(file(), 1, 1);
        assert!(d.warn_once("virtual_server", &s, "x"));
        assert!(!d.warn_once("virtual_server", &s, "x"));
        assert!(d.warn_once("bfd_instance", &s, "y"));
        assert_eq!(d.into_vec().len(), 2);
    }
}
