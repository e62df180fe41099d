//! A log writer that never blocks the thread that logs: each formatted line goes to a
//! bounded queue, and one thread (`log-writer`) writes what it takes from the queue to the
//! sink (stderr). When the queue is full — the sink is slow or stuck: a loaded disk, a pipe
//! nobody reads — the line is dropped and counted ([`DroppedLines`]), and the writer thread
//! reports the drops itself, at most every [`NOTICE_EVERY`], once it has room again.
//!
//! Why not `tracing-appender`'s `non_blocking`: at shutdown its lines are dropped as before
//! (it cannot switch to waiting), its guard waits a fixed 1.1 s and reports a failure on
//! stdout, and its queue holds 128,000 lines (preallocated). Here shutdown is its own mode
//! ([`LogQueue::shutting_down`]): from then on a full queue makes the caller wait for room,
//! up to a deadline, so the daemon's last lines are written even after a flood; and the
//! [`LogGuard`] drains the queue and flushes the sink on every exit path of `main` (normal
//! stop, SIGTERM, a fatal configuration error, a panic that unwinds `main`).
//!
//! ```text
//!   any thread ── fmt layer ── LogQueue::write ──try_send──► [ queue: N lines ] ──► log-writer ──► sink
//!                                   │ full                                           │
//!                                   └─► DroppedLines += 1 ◄── notice (drops since last) ┘
//! ```

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many lines the queue holds (each slot is a pointer-sized handle, preallocated: 4096
/// lines cost 128 KiB). A line that finds the queue full is dropped and counted.
pub const QUEUE_LINES: usize = 4096;

/// At most one "N log lines dropped" notice per this interval.
pub const NOTICE_EVERY: Duration = Duration::from_secs(10);

/// How long, once shutdown has begun, a caller waits for room in a full queue, and how long
/// the [`LogGuard`] waits for the writer to drain it.
pub const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(2);

/// How often a waiting caller looks for room again (shutdown only).
const RETRY: Duration = Duration::from_millis(1);

/// Bytes the writer gathers from the queue before one `write` to the sink.
const BATCH_BYTES: usize = 64 * 1024;

thread_local! {
    /// Set on the writer thread: it must never wait for room in its own queue.
    static ON_WRITER_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// The number of log lines dropped because the queue was full (or the writer gone). Cheap to
/// clone and to read; the metrics endpoint and `wasmalived status` show it.
#[derive(Debug, Clone, Default)]
pub struct DroppedLines(Arc<AtomicU64>);

impl DroppedLines {
    /// Lines dropped since start-up.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the writer thread is sent.
enum Message {
    Line(Vec<u8>),
    /// Write what is queued, report the drops, flush, acknowledge, exit.
    Stop(SyncSender<()>),
}

/// Reports drops from the writer thread: `(dropped since the last notice, total)`.
pub type Notice = Box<dyn FnMut(u64, u64) + Send>;

/// The writing side of the queue: a `MakeWriter` for `tracing_subscriber::fmt`. Cheap to
/// clone; every clone feeds the same writer thread.
#[derive(Clone)]
pub struct LogQueue {
    lines: SyncSender<Message>,
    dropped: DroppedLines,
    /// Set once shutdown begins: until then a full queue drops the line.
    patient_until: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for LogQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogQueue")
            .field("dropped", &self.dropped.count())
            .finish_non_exhaustive()
    }
}

/// Drains the queue and flushes the sink when dropped (the end of `main`).
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    queue: LogQueue,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard").finish_non_exhaustive()
    }
}

impl LogQueue {
    /// Start the writer thread over `sink` with a queue of `capacity` lines; `notice` is
    /// called on that thread when lines were dropped (at most every [`NOTICE_EVERY`], and
    /// once more at stop).
    pub fn start(
        sink: Box<dyn Write + Send>,
        capacity: usize,
        notice: Notice,
    ) -> io::Result<(LogQueue, LogGuard)> {
        let (lines, queued) = mpsc::sync_channel(capacity);
        let dropped = DroppedLines::default();
        let writer = Writer {
            queued,
            sink,
            notice,
            dropped: dropped.clone(),
            reported: 0,
            last_notice: None,
        };
        let handle = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || writer.run())?;
        let queue = LogQueue {
            lines,
            dropped,
            patient_until: Arc::new(Mutex::new(None)),
        };
        let guard = LogGuard {
            queue: queue.clone(),
            writer: Some(handle),
        };
        Ok((queue, guard))
    }

    /// The drop counter.
    pub fn dropped(&self) -> DroppedLines {
        self.dropped.clone()
    }

    /// Shutdown has begun: from now on a full queue makes the logging thread wait for room
    /// (up to [`SHUTDOWN_PATIENCE`] from now) rather than drop its line.
    pub fn shutting_down(&self) {
        let mut until = lock(&self.patient_until);
        if until.is_none() {
            *until = Some(Instant::now() + SHUTDOWN_PATIENCE);
        }
    }

    fn patience(&self) -> Option<Instant> {
        if ON_WRITER_THREAD.with(Cell::get) {
            return None;
        }
        *lock(&self.patient_until)
    }

    /// Queue one formatted line; never blocks unless shutdown has begun.
    fn enqueue(&self, line: Vec<u8>) {
        let mut message = Message::Line(line);
        loop {
            match self.lines.try_send(message) {
                Ok(()) => return,
                Err(TrySendError::Full(back)) => match self.patience() {
                    Some(deadline) if Instant::now() < deadline => {
                        message = back;
                        std::thread::sleep(RETRY);
                    }
                    _ => break,
                },
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
        self.dropped.add_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Write for &LogQueue {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.enqueue(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogQueue {
    type Writer = &'a LogQueue;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl LogGuard {
    /// Write everything queued so far and stop the writer, waiting at most
    /// [`SHUTDOWN_PATIENCE`] (a sink stuck for longer loses what is still queued).
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        self.queue.shutting_down();
        let deadline = Instant::now() + SHUTDOWN_PATIENCE;
        let (ack, acked) = mpsc::sync_channel(1);
        let mut stop = Message::Stop(ack);
        loop {
            match self.queue.lines.try_send(stop) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    stop = back;
                    std::thread::sleep(RETRY);
                }
                Err(_) => return,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if acked.recv_timeout(left).is_ok() {
            let _ = writer.join();
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread's state.
struct Writer {
    queued: Receiver<Message>,
    sink: Box<dyn Write + Send>,
    notice: Notice,
    dropped: DroppedLines,
    /// The drop count at the last notice.
    reported: u64,
    last_notice: Option<Instant>,
}

impl Writer {
    fn run(mut self) {
        ON_WRITER_THREAD.with(|on| on.set(true));
        let mut batch = Vec::with_capacity(BATCH_BYTES);
        loop {
            let first = match self.queued.recv_timeout(NOTICE_EVERY) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if let Some(Message::Stop(ack)) = self.write_from(first, &mut batch) {
                self.report_drops(true);
                // The final notice, queued by `report_drops` through the subscriber.
                let _ = self.write_from(None, &mut batch);
                let _ = self.sink.flush();
                let _ = ack.send(());
                return;
            }
            self.report_drops(false);
        }
    }

    /// Write `first` and whatever else is queued, in batches; return a stop request if one
    /// was among them (after the lines queued before it).
    fn write_from(&mut self, first: Option<Message>, batch: &mut Vec<u8>) -> Option<Message> {
        let mut next = first;
        let mut stop = None;
        loop {
            match next.take().or_else(|| self.queued.try_recv().ok()) {
                Some(Message::Line(line)) => {
                    batch.extend_from_slice(&line);
                    if batch.len() >= BATCH_BYTES {
                        self.write_batch(batch);
                    }
                }
                Some(stop_request @ Message::Stop(_)) => {
                    stop = Some(stop_request);
                    break;
                }
                None => break,
            }
        }
        self.write_batch(batch);
        stop
    }

    fn write_batch(&mut self, batch: &mut Vec<u8>) {
        if batch.is_empty() {
            return;
        }
        // A failed write (stderr closed) loses the batch: there is nowhere else to say so.
        let _ = self.sink.write_all(batch);
        let _ = self.sink.flush();
        batch.clear();
    }

    /// Call the notice for drops not yet reported: now if `force`, else if none was given
    /// in the last [`NOTICE_EVERY`].
    fn report_drops(&mut self, force: bool) {
        let total = self.dropped.count();
        if total <= self.reported {
            return;
        }
        let due = self
            .last_notice
            .is_none_or(|at| at.elapsed() >= NOTICE_EVERY);
        if force || due {
            (self.notice)(total - self.reported, total);
            self.reported = total;
            self.last_notice = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::sync::mpsc::channel;

    /// A line of `len` bytes ending in a newline, numbered.
    fn line(n: usize, len: usize) -> Vec<u8> {
        let mut text = format!("line {n:06} ").into_bytes();
        text.resize(len - 1, b'.');
        text.push(b'\n');
        text
    }

    fn recording_notice() -> (Notice, Receiver<(u64, u64)>) {
        let (tx, rx) = channel();
        let notice: Notice = Box::new(move |n, total| {
            let _ = tx.send((n, total));
        });
        (notice, rx)
    }

    #[test]
    fn a_sink_nobody_reads_never_blocks_the_caller_and_every_line_is_written_or_counted() {
        // A pipe holds 64 KiB: with nobody reading it, the writer blocks in `write` after
        // ~650 of these lines, then the queue fills. The caller must still get through all
        // of them (if it blocked, this test would hang: the reader starts only afterwards).
        let (mut reader, pipe) = std::io::pipe().expect("pipe");
        let (notice, notices) = recording_notice();
        let (queue, guard) = LogQueue::start(Box::new(pipe), 64, notice).expect("writer");
        const LINES: usize = 20_000;
        for n in 0..LINES {
            (&queue).write_all(&line(n, 100)).expect("never fails");
        }
        let dropped = queue.dropped().count();
        // At most the queue, the writer's batch and the pipe's 64 KiB (~650 lines) get through.
        assert!(
            dropped > (LINES / 2) as u64,
            "a stuck sink must make the queue drop lines: {dropped} dropped"
        );
        let read = std::thread::spawn(move || {
            let mut text = String::new();
            reader.read_to_string(&mut text).expect("utf-8 lines");
            text
        });
        guard.finish();
        drop(queue);
        let text = read.join().expect("reader");
        let written = text.lines().count() as u64;
        assert_eq!(
            written + dropped,
            LINES as u64,
            "every line is written or counted"
        );
        // The lines that were written are in order, from the first.
        assert!(text.starts_with("line 000000 "), "{:?}", text.get(..40));
        let numbers: Vec<usize> = text
            .lines()
            .map(|l| l[5..11].parse().expect("number"))
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        // The stop reports the drops not yet reported: all of them, in one or two notices.
        let reported: Vec<(u64, u64)> = notices.try_iter().collect();
        assert_eq!(reported.last().map(|r| r.1), Some(dropped), "{reported:?}");
        assert_eq!(reported.iter().map(|r| r.0).sum::<u64>(), dropped);
    }

    /// A sink that blocks every write until the test lets it through (`gate` is a
    /// rendezvous channel: one `send` lets one write through).
    struct GatedSink {
        gate: Receiver<()>,
        out: std::sync::mpsc::Sender<Vec<u8>>,
    }

    impl Write for GatedSink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.gate.recv();
            let _ = self.out.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn once_shutdown_has_begun_a_full_queue_waits_for_room_instead_of_dropping() {
        let (open, gate) = mpsc::sync_channel(0);
        let (out, written) = channel();
        let (queue, guard) =
            LogQueue::start(Box::new(GatedSink { gate, out }), 4, Box::new(|_, _| {}))
                .expect("writer");
        // Fill the queue (and the writer's one line in hand) while the sink is stuck.
        for n in 0..20 {
            (&queue).write_all(&line(n, 20)).unwrap();
        }
        let dropped_before = queue.dropped().count();
        assert!(
            dropped_before > 0,
            "the stuck sink made the queue drop lines"
        );
        queue.shutting_down();
        // The sink unblocks while the last line waits for room: that line is not dropped.
        let opener = std::thread::spawn(move || while open.send(()).is_ok() {});
        (&queue).write_all(b"the last line\n").unwrap();
        guard.finish();
        let text: Vec<u8> = written.try_iter().flatten().collect();
        let text = String::from_utf8(text).unwrap();
        assert!(text.ends_with("the last line\n"), "{text}");
        assert_eq!(queue.dropped().count(), dropped_before);
        drop(queue);
        let _ = opener.join();
    }

    #[test]
    fn drops_are_reported_when_the_writer_has_room_again() {
        let (open, gate) = mpsc::sync_channel(0);
        let (out, _written) = channel();
        let (notice, notices) = recording_notice();
        let (queue, guard) =
            LogQueue::start(Box::new(GatedSink { gate, out }), 2, notice).expect("writer");
        for n in 0..10 {
            (&queue).write_all(&line(n, 20)).unwrap();
        }
        let dropped = queue.dropped().count();
        assert!(dropped > 0);
        // Let the writer through: the first notice comes without waiting for an interval.
        let opener = std::thread::spawn(move || while open.send(()).is_ok() {});
        let (n, total) = notices.recv().expect("a notice once the sink moves");
        assert_eq!((n, total), (dropped, dropped));
        guard.finish();
        drop(queue);
        let _ = opener.join();
    }
}
