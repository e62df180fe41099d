//! Where the daemon's log goes, and in which form.
//!
//! - **text** (the default off systemd): one human line per event on stderr, with colour
//!   escapes only when stderr is a terminal — a log file or a pipe gets plain text;
//! - **json**: one JSON object per line (`timestamp`, `level`, `fields` with the `message`,
//!   `target`, the current `span` and the list of enclosing `spans` with their fields:
//!   `instance`, `iface`, `vrid` of a `vrrp` span, `name`, `digest`, `check` of a `plugin`
//!   span…), for log shippers;
//! - **journald**: under systemd, when stderr *is* the journal's stream, events go to the
//!   journal natively: levels become priorities (error 3, warn 4, info 5, debug 6, trace 7),
//!   and event and span fields become journal fields (upper-cased, prefixed `F_`:
//!   `journalctl F_INSTANCE=VI_1`).
//!
//! `auto` picks journald when systemd's `JOURNAL_STREAM` names stderr's device and inode —
//! the detection systemd documents (systemd.exec(5)) — and text otherwise.

use std::ffi::OsStr;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// journald when stderr is the journal's stream, else text.
    Auto,
    /// Human-readable lines (colour only on a terminal).
    Text,
    /// JSON lines.
    Json,
    /// The systemd journal's native protocol.
    Journald,
}

/// The sink [`init`] sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Text on stderr, with colour escapes or without.
    Text {
        /// Colour escapes (stderr is a terminal).
        ansi: bool,
    },
    /// JSON lines on stderr.
    Json,
    /// The journal.
    Journald,
}

/// Whether systemd's `JOURNAL_STREAM` (`DEVICE:INODE`, decimal) names the file whose device
/// and inode are `stderr` — i.e. stderr is connected to the journal, not redirected since.
pub fn is_journal_stream(journal_stream: Option<&OsStr>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(value), Some((dev, ino))) = (journal_stream.and_then(OsStr::to_str), stderr) else {
        return false;
    };
    let Some((d, i)) = value.split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// Device and inode of the process's stderr, if it is open.
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The sink for `format` in this process's environment.
pub fn choose(format: LogFormat) -> Sink {
    use std::io::IsTerminal;
    let text = Sink::Text {
        ansi: std::io::stderr().is_terminal(),
    };
    match format {
        LogFormat::Text => text,
        LogFormat::Json => Sink::Json,
        LogFormat::Journald => Sink::Journald,
        LogFormat::Auto => {
            let stream = std::env::var_os("JOURNAL_STREAM");
            if is_journal_stream(stream.as_deref(), stderr_identity()) {
                Sink::Journald
            } else {
                text
            }
        }
    }
}

/// Install the global subscriber: `filter` events to `sink`. If the journal cannot be
/// reached, text on stderr is used and the reason logged there.
pub fn init(sink: Sink, filter: EnvFilter) {
    let registry = tracing_subscriber::registry().with(filter);
    match sink {
        Sink::Text { ansi } => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            )
            .init(),
        Sink::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(std::io::stderr),
            )
            .init(),
        Sink::Journald => match tracing_journald::layer() {
            Ok(journald) => registry
                .with(journald.with_syslog_identifier("wasmalived".to_owned()))
                .init(),
            Err(err) => {
                registry
                    .with(
                        tracing_subscriber::fmt::layer()
                            .with_writer(std::io::stderr)
                            .with_ansi(false),
                    )
                    .init();
                tracing::warn!(error = %err, "cannot reach the systemd journal: logging text to stderr");
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_detected_by_stderr_s_device_and_inode_only() {
        let stream = |s: &str| Some(OsStr::new(s).to_owned());
        assert!(is_journal_stream(
            stream("8:1234").as_deref(),
            Some((8, 1234))
        ));
        // Redirected since systemd started us (`2>/var/log/x`): another inode.
        assert!(!is_journal_stream(
            stream("8:1234").as_deref(),
            Some((8, 99))
        ));
        assert!(!is_journal_stream(
            stream("9:1234").as_deref(),
            Some((8, 1234))
        ));
        // Not under systemd, stderr closed, or garbage.
        assert!(!is_journal_stream(None, Some((8, 1234))));
        assert!(!is_journal_stream(stream("8:1234").as_deref(), None));
        for bad in ["", "8", "8:", ":1234", "x:1234", "8:1234:5", "8:-1"] {
            assert!(
                !is_journal_stream(stream(bad).as_deref(), Some((8, 1234))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn explicit_formats_are_taken_as_asked() {
        assert_eq!(choose(LogFormat::Json), Sink::Json);
        assert_eq!(choose(LogFormat::Journald), Sink::Journald);
        assert!(matches!(choose(LogFormat::Text), Sink::Text { .. }));
    }
}
