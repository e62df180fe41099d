//! The lab's error type: every failure says what was attempted and where to look.

use std::fmt;
use std::time::Duration;

/// Result alias used throughout the lab.
pub type Result<T> = std::result::Result<T, LabError>;

/// Why a lab operation or a check failed.
///
/// `Debug` prints the same text as `Display`, so a test returning `Err` shows a readable
/// message (with log paths) instead of a struct dump.
pub enum LabError {
    /// A file or process operation failed.
    Io {
        /// What was being done (including paths).
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A helper command (`ip`, `sysctl`, `kill`, ...) exited unsuccessfully.
    Command {
        /// The command line.
        argv: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A condition did not become true in time.
    Timeout {
        /// The condition that was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
        /// Observed state and log excerpts.
        detail: String,
    },
    /// An end-to-end expectation did not hold.
    Check(String),
    /// Output of a tool or daemon could not be understood.
    Parse {
        /// What was being parsed.
        what: String,
        /// The offending input (truncated).
        input: String,
    },
    /// A prerequisite (binary, tool) is missing.
    Missing(String),
}

impl LabError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }

    /// A failed expectation.
    pub fn check(msg: impl Into<String>) -> Self {
        LabError::Check(msg.into())
    }

    /// Unparseable output; the input is truncated to keep messages readable.
    pub fn parse(what: impl Into<String>, input: &str) -> Self {
        let mut input = input.to_string();
        if input.len() > 2000 {
            let mut cut = 2000;
            while !input.is_char_boundary(cut) {
                cut -= 1;
            }
            input.truncate(cut);
            input.push_str("...");
        }
        LabError::Parse {
            what: what.into(),
            input,
        }
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Io { context, source } => write!(f, "{context}: {source}"),
            LabError::Command {
                argv,
                status,
                stderr,
            } => write!(f, "command `{argv}` failed ({status}): {}", stderr.trim()),
            LabError::Timeout {
                what,
                after,
                detail,
            } => write!(
                f,
                "timed out after {after:.2?} waiting for {what}\n{detail}"
            ),
            LabError::Check(msg) => write!(f, "check failed: {msg}"),
            LabError::Parse { what, input } => write!(f, "cannot parse {what}: {input:?}"),
            LabError::Missing(msg) => write!(f, "{msg}"),
        }
    }
}

impl fmt::Debug for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for LabError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LabError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
