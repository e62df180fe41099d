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
//!
//! Text and JSON lines never block the thread that logs (a protocol thread must not wait for
//! a loaded disk): they go through a bounded queue to one writer thread ([`queue`]), which
//! drops and counts what does not fit ([`DroppedLines`], in `status` and the metrics) and
//! says so in a "log lines dropped" warning. The journal is written as before, from the
//! logging thread: `tracing-journald` sends one datagram per event on its own socket and
//! offers no hook to hand that send to another thread; journald reads its socket with an
//! 8 MiB receive buffer, so a send waits only when journald itself is stalled. Run with
//! `--log-format text` (the journal still gets the lines, through stderr, without the
//! structured fields) to have the queue there too.

mod queue;

use std::ffi::OsStr;
use std::io::Write;
use std::time::Instant;

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

use crate::fault::Fault;

pub use self::queue::{DroppedLines, LogGuard, LogQueue, NOTICE_EVERY, QUEUE_LINES};

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

/// The installed logger: the drop counter and the shutdown switch of its queue, if the sink
/// has one (the journal has not: its count stays 0).
#[derive(Debug, Clone, Default)]
pub struct Logger {
    queue: Option<LogQueue>,
}

impl Logger {
    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> DroppedLines {
        self.queue
            .as_ref()
            .map(LogQueue::dropped)
            .unwrap_or_default()
    }

    /// Shutdown has begun: from now on a line waits for room in the queue (for a bounded
    /// time) rather than being dropped, so the daemon's last lines are written.
    pub fn shutting_down(&self) {
        if let Some(queue) = &self.queue {
            queue.shutting_down();
        }
    }
}

/// The writer's warning when lines were dropped (on the writer thread, through the
/// subscriber: it is formatted as every other line).
fn dropped_lines_notice(dropped: u64, total: u64) {
    tracing::warn!(
        dropped,
        total,
        "{dropped} log lines dropped: the log writer could not keep up ({total} since start)"
    );
}

/// A writer thread over stderr with a queue of [`QUEUE_LINES`]; if no thread can be started,
/// `None` (and the caller writes to stderr directly).
fn stderr_queue() -> Option<(LogQueue, LogGuard)> {
    let sink: Box<dyn Write + Send> = match crate::fault::configured(Instant::now()) {
        Some(Fault::SlowLogAt(from)) => Box::new(SlowWrites {
            inner: std::io::stderr(),
            from,
        }),
        _ => Box::new(std::io::stderr()),
    };
    LogQueue::start(sink, QUEUE_LINES, Box::new(dropped_lines_notice)).ok()
}

/// The `slow-log` fault (test builds): from `from` on, each write takes
/// [`crate::fault::SLOW_LOG_WRITE`] longer, as on a loaded disk.
struct SlowWrites<W> {
    inner: W,
    from: Instant,
}

impl<W: Write> Write for SlowWrites<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if Instant::now() >= self.from {
            std::thread::sleep(crate::fault::SLOW_LOG_WRITE);
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Where formatted lines go: the queue, or stderr directly if its thread could not start.
fn line_writer(queue: Option<&LogQueue>) -> BoxMakeWriter {
    match queue {
        Some(queue) => BoxMakeWriter::new(queue.clone()),
        None => BoxMakeWriter::new(std::io::stderr),
    }
}

/// How lines reach stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Through the queue and its writer thread: never blocks the logging thread (the daemon).
    Queued,
    /// Written by the logging thread itself, in order with what it prints (the command-line
    /// tools: `-t`, `plugin …`).
    Direct,
}

/// Install the global subscriber: `filter` events to `sink`, delivered as `delivery` says.
/// If the journal cannot be reached, text on stderr is used and the reason logged there.
/// Keep the guard until the end of `main`: dropping it writes out what is queued.
pub fn init(sink: Sink, filter: EnvFilter, delivery: Delivery) -> (Logger, Option<LogGuard>) {
    let registry = tracing_subscriber::registry().with(filter);
    let journald = match sink {
        Sink::Journald => Some(tracing_journald::layer()),
        _ => None,
    };
    if let Some(Ok(journald)) = journald {
        registry
            .with(journald.with_syslog_identifier("wasmalived".to_owned()))
            .init();
        return (Logger::default(), None);
    }
    let (queue, guard) = match delivery {
        Delivery::Queued => stderr_queue().unzip(),
        Delivery::Direct => (None, None),
    };
    let writer = line_writer(queue.as_ref());
    match sink {
        Sink::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(writer),
            )
            .init(),
        Sink::Text { ansi } => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(writer),
            )
            .init(),
        Sink::Journald => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(writer),
            )
            .init(),
    }
    if let Some(Err(err)) = journald {
        tracing::warn!(error = %err, "cannot reach the systemd journal: logging text to stderr");
    }
    (Logger { queue }, guard)
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
