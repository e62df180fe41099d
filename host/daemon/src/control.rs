//! The control socket: `<state-dir>/control.sock`, a Unix stream socket (mode 0600) that answers
//! one line-oriented request per connection.
//!
//! Requests: `status` → one JSON document ([`Status`]); `reload` → re-read the config (same as
//! SIGHUP), answers `ok`; `maintenance on|off NAME` → put the instance in maintenance or take
//! it out, answers `ok: …` or `error: …` (an unknown instance, say). `wasmalived status`,
//! `reload` and `maintenance` are the clients.
//!
//! The socket's mode is not the only guard: every connection's peer credentials
//! (`SO_PEERCRED`) must be root or the daemon's own user, a request is one line of at most
//! [`MAX_REQUEST`] bytes, and it must arrive within [`REQUEST_TIMEOUT`] — a client that
//! sends an endless line or nothing is cut off, and never holds the daemon.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::checks::latency::RunLatency;
use crate::checks::{CheckState, CheckUpdate, RunResult};
use crate::logging::DroppedLines;
pub use crate::lvs::status::{CheckerStatus, RealServerStatus, VirtualServerStatus};

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 1024;
/// How long a client has to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// File name of the control socket inside the state directory.
pub const SOCKET_NAME: &str = "control.sock";

/// What one VRRP instance reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// `vrrp_instance` name.
    pub name: String,
    /// `INIT`, `BACKUP`, `MASTER` or `FAULT`.
    pub state: String,
    /// Interface the instance runs on.
    pub interface: String,
    /// Virtual router id.
    pub vrid: u8,
    /// VRRP version (2 or 3).
    pub version: u8,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Configured priority.
    pub priority: u8,
    /// Priority after tracking (what goes out in adverts).
    pub effective_priority: u8,
    /// Why the instance is in Fault, if it is.
    pub fault_reasons: Vec<String>,
    /// Whether another Master is seen for the same VRID right now.
    pub split_brain: bool,
    /// Whether the operator put it in maintenance (never Master until taken out).
    #[serde(default)]
    pub maintenance: bool,
    /// Receive/transmit counters by name (rejections by reason, checksum forms, adverts).
    pub counters: BTreeMap<String, u64>,
    /// State changes since the instance started, by from, to and reason.
    #[serde(default)]
    pub transitions: Vec<TransitionCount>,
}

/// How often an instance changed from one state to another for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionCount {
    /// The state left (`INIT`, `BACKUP`, `MASTER`, `FAULT`).
    pub from: String,
    /// The state entered.
    pub to: String,
    /// Why, by kind: `startup`, `owner_startup`, `master_down`, `master_released`,
    /// `higher_priority`, `fault`, `fault_cleared`, `shutdown`, `sync_group`.
    pub reason: String,
    /// How many times.
    pub count: u64,
}

/// What one check reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// `vrrp_script` name.
    pub name: String,
    /// `init`, `up`, `down` or `fatal`: the rise/fall state priorities are computed from.
    pub state: String,
    /// Plugin identity `name@digest`, or the script command.
    pub runner: String,
    /// The last run's result: `ok`, `fail: REASON` or `fatal: REASON`, plus the plugin's
    /// message in parentheses; empty before the first run.
    pub last: String,
    /// The kind of the last failure (`exit`, `spawn`, `timeout`, `trap`, `memory`,
    /// `stack_overflow`, `pool_exhausted`, `host`, `fail`, `denied`), if the last run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_kind: Option<String>,
    /// Runs finished, and ticks skipped because a run was still going.
    #[serde(default)]
    pub runs: u64,
    /// Ticks skipped because the previous run was still going.
    #[serde(default)]
    pub skipped: u64,
    /// Runs started early because a process the check watches exited, a path it watches
    /// changed or a server it watches dropped its connection (event-driven checks).
    #[serde(default)]
    pub woken: u64,
    /// Processes whose exit would run the check at once (what its last run asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wake_on_exit: Vec<u32>,
    /// Paths (as the plugin sees them) whose change would run the check at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wake_on_change: Vec<String>,
    /// TCP servers whose dropping the connection the daemon holds would run the check at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wake_on_disconnect: Vec<std::net::SocketAddr>,
    /// Measurements of the last plugin run.
    pub measurements: BTreeMap<String, f64>,
    /// Runs finished, by result kind: `ok`, `fatal`, or a failure kind as in `failure_kind`.
    #[serde(default)]
    pub results: BTreeMap<String, u64>,
    /// Median run time of the recent runs (see [`crate::checks::latency`]), milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile of the recent runs' time, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<f64>,
    /// The latest run that did not succeed, kept after later successes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Every run's latency since the check started: the histogram the metrics endpoint
    /// exports. Not part of the JSON document.
    #[serde(skip)]
    pub latency: RunLatency,
}

impl CheckStatus {
    /// The entry of a check, from what its task published last.
    pub fn of(update: &CheckUpdate) -> Self {
        let state = match update.state {
            CheckState::Init => "init",
            CheckState::Up => "up",
            CheckState::Down => "down",
            CheckState::Fatal(_) => "fatal",
        };
        let last = update.last.as_ref();
        CheckStatus {
            name: update.check.to_string(),
            state: state.into(),
            runner: last.map(|l| l.runner.to_string()).unwrap_or_default(),
            last: last
                .map(|l| match &l.message {
                    Some(message) => format!("{} ({message})", l.result),
                    None => l.result.to_string(),
                })
                .unwrap_or_default(),
            failure_kind: last.and_then(|l| match &l.result {
                RunResult::Failure(failure) => Some(failure.kind().to_owned()),
                _ => None,
            }),
            runs: update.runs,
            skipped: update.skipped,
            woken: update.woken,
            wake_on_exit: last.map(|l| l.wake_on_exit.clone()).unwrap_or_default(),
            wake_on_change: last
                .map(|l| {
                    l.wake_on_change
                        .iter()
                        .map(|p| p.guest_path.clone())
                        .collect()
                })
                .unwrap_or_default(),
            wake_on_disconnect: last
                .map(|l| l.wake_on_disconnect.clone())
                .unwrap_or_default(),
            measurements: last
                .map(|l| l.measurements.iter().cloned().collect())
                .unwrap_or_default(),
            results: update
                .results
                .iter()
                .map(|(kind, n)| ((*kind).to_owned(), *n))
                .collect(),
            latency_p50_ms: update.latency.quantile(0.5).map(millis),
            latency_p99_ms: update.latency.quantile(0.99).map(millis),
            last_error: update.last_error.clone(),
            latency: update.latency.clone(),
        }
    }
}

/// A duration in milliseconds, to the microsecond.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// One `vrrp_track_process`: how many matching processes run and whether that is a quorum
/// (the state the instances tracking it see).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedProcessStatus {
    /// The `vrrp_track_process` name.
    pub name: String,
    /// Matching processes running now.
    pub count: u32,
    /// `quorum`: fewest processes that make a quorum.
    pub quorum: u32,
    /// `quorum_max`: most processes that make a quorum; absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_max: Option<u32>,
    /// Whether it has quorum, as the tracking instances see it (false before the first scan).
    pub up: bool,
    /// `up` or `down`: the state it changes to when its `fork_delay` / `terminate_delay`
    /// ends; absent when no change is waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// Drops counted on a receive path rather than an instance (a VRID nobody runs, a datagram
/// too short to name a VRID, an unusable IP header, a full receive queue).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathStatus {
    /// Interface name.
    pub interface: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// `rx_<reason>` → count (only reasons seen).
    pub counters: BTreeMap<String, u64>,
}

/// The daemon's own log writer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStatus {
    /// Lines dropped because the log writer could not keep up (its queue was full).
    pub dropped_lines: u64,
}

/// The daemon's status document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Daemon pid.
    pub pid: u32,
    /// Config file in use.
    pub config: String,
    /// VRRP instances by name.
    pub instances: Vec<InstanceStatus>,
    /// Checks by name.
    pub checks: Vec<CheckStatus>,
    /// Drops counted per receive path.
    #[serde(default)]
    pub paths: Vec<PathStatus>,
    /// The LVS director's virtual servers.
    #[serde(default)]
    pub virtual_servers: Vec<VirtualServerStatus>,
    /// `vrrp_track_process` blocks in use, by name.
    #[serde(default)]
    pub tracked_processes: Vec<TrackedProcessStatus>,
    /// The log writer.
    #[serde(default)]
    pub log: LogStatus,
}

/// Shared, cheaply updated view of the daemon's state, read by the control socket.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    inner: Arc<Mutex<BoardInner>>,
}

#[derive(Debug, Default)]
struct BoardInner {
    pid: u32,
    config: String,
    /// Written by the router driver only.
    instances: BTreeMap<String, InstanceStatus>,
    /// Written by the router driver only.
    paths: Vec<PathStatus>,
    /// Each check's own published state (its task is the only writer).
    checks: BTreeMap<String, watch::Receiver<CheckUpdate>>,
    /// Written by the LVS director only.
    virtual_servers: Vec<VirtualServerStatus>,
    /// What the process monitor publishes (its task is the only writer).
    tracked_processes: Option<watch::Receiver<Vec<TrackedProcessStatus>>>,
    /// The log writer's drop counter.
    log_drops: DroppedLines,
}

impl StatusBoard {
    /// A board for this process and config file.
    pub fn new(config: &Path) -> Self {
        let board = Self::default();
        if let Ok(mut inner) = board.inner.lock() {
            inner.pid = std::process::id();
            inner.config = config.display().to_string();
        }
        board
    }

    /// Replace one instance's entry.
    pub fn set_instance(&self, status: InstanceStatus) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.instances.insert(status.name.clone(), status);
        }
    }

    /// Forget an instance (removed by a reload).
    pub fn remove_instance(&self, name: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.instances.remove(name);
        }
    }

    /// Replace the per-path drop counters.
    pub fn set_paths(&self, paths: Vec<PathStatus>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.paths = paths;
        }
    }

    /// Replace the director's view.
    pub fn set_virtual_servers(&self, virtual_servers: Vec<VirtualServerStatus>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.virtual_servers = virtual_servers;
        }
    }

    /// Show check `name` from what its task publishes.
    pub fn track_check(&self, name: &str, updates: watch::Receiver<CheckUpdate>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.checks.insert(name.to_owned(), updates);
        }
    }

    /// Show the `vrrp_track_process` blocks from what the process monitor publishes.
    pub fn track_processes(&self, updates: watch::Receiver<Vec<TrackedProcessStatus>>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.tracked_processes = Some(updates);
        }
    }

    /// Show the log writer's drop count.
    pub fn count_log_drops(&self, dropped: DroppedLines) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.log_drops = dropped;
        }
    }

    /// Forget a check (removed by a reload).
    pub fn untrack_check(&self, name: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.checks.remove(name);
        }
    }

    /// A consistent copy of everything.
    pub fn snapshot(&self) -> Status {
        match self.inner.lock() {
            Ok(inner) => Status {
                pid: inner.pid,
                config: inner.config.clone(),
                instances: inner.instances.values().cloned().collect(),
                checks: inner
                    .checks
                    .values()
                    .map(|updates| CheckStatus::of(&updates.borrow()))
                    .collect(),
                paths: inner.paths.clone(),
                virtual_servers: inner.virtual_servers.clone(),
                tracked_processes: inner
                    .tracked_processes
                    .as_ref()
                    .map(|updates| updates.borrow().clone())
                    .unwrap_or_default(),
                log: LogStatus {
                    dropped_lines: inner.log_drops.count(),
                },
            },
            Err(_) => Status::default(),
        }
    }
}

/// Requests the control socket forwards to the daemon.
#[derive(Debug)]
pub enum ControlRequest {
    /// Re-read the configuration.
    Reload,
    /// `maintenance on|off NAME`.
    Maintenance {
        /// The `vrrp_instance` name.
        instance: String,
        /// On or off.
        on: bool,
        /// The answer for the client: what was done, or why not.
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// `maintenance on|off NAME` parsed; `None` if `line` is not a maintenance request, an
/// error text if it is a malformed one.
fn parse_maintenance(line: &str) -> Option<Result<(bool, String), String>> {
    let mut words = line.split_whitespace();
    if words.next() != Some("maintenance") {
        return None;
    }
    let usage = "usage: maintenance on|off INSTANCE".to_owned();
    let on = match words.next() {
        Some("on") => true,
        Some("off") => false,
        _ => return Some(Err(usage)),
    };
    match (words.next(), words.next()) {
        (Some(name), None) => Some(Ok((on, name.to_owned()))),
        _ => Some(Err(usage)),
    }
}

/// Forward a maintenance request to the daemon and wait for its answer.
async fn maintenance(
    requests: &mpsc::Sender<ControlRequest>,
    on: bool,
    instance: String,
) -> String {
    let (reply, answer) = oneshot::channel();
    let request = ControlRequest::Maintenance {
        instance,
        on,
        reply,
    };
    if requests.send(request).await.is_err() {
        return "error: daemon is shutting down".to_owned();
    }
    match answer.await {
        Ok(Ok(done)) => format!("ok: {done}"),
        Ok(Err(why)) => format!("error: {why}"),
        Err(_) => "error: daemon is shutting down".to_owned(),
    }
}

/// Path of the control socket in `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// Bind the control socket (replacing a stale one) and serve it until `cancel`.
pub fn serve(
    state_dir: &Path,
    board: StatusBoard,
    requests: mpsc::Sender<ControlRequest>,
    cancel: CancellationToken,
) -> io::Result<tokio::task::JoinHandle<()>> {
    let path = socket_path(state_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let board = board.clone();
                        let requests = requests.clone();
                        tokio::spawn(async move {
                            if let Err(err) = answer(stream, &board, &requests).await {
                                debug!(error = %err, "control connection ended with an error");
                            }
                        });
                    }
                    Err(err) => warn!(error = %err, "control socket accept failed"),
                },
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

/// Whether a peer may use the socket: root or the daemon's own user.
fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("cannot read peer credentials: {e}"))?;
    let me = wasmalived_sys::effective_ids().0;
    if cred.uid() == 0 || cred.uid() == me {
        Ok(())
    } else {
        Err(format!(
            "refused: uid {} (pid {}) is neither root nor the daemon's user",
            cred.uid(),
            cred.pid().map_or_else(|| "?".to_owned(), |p| p.to_string())
        ))
    }
}

/// Answer `error: WHY` without serving the request. What the client sent is read and
/// dropped (bounded), so closing does not reset the connection before it reads the answer.
async fn refuse(stream: UnixStream, why: &str) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("error: {why}\n").as_bytes())
        .await?;
    write.shutdown().await?;
    let mut unread = tokio::io::AsyncReadExt::take(read, MAX_REQUEST as u64);
    let _ = tokio::time::timeout(
        Duration::from_millis(200),
        tokio::io::copy(&mut unread, &mut tokio::io::sink()),
    )
    .await;
    Ok(())
}

/// Read one request line, bounded in size and time.
async fn read_request(read: tokio::net::unix::OwnedReadHalf) -> Result<String, String> {
    let mut line = Vec::new();
    let limited = tokio::io::AsyncReadExt::take(read, MAX_REQUEST as u64 + 1);
    let mut reader = BufReader::new(limited);
    let read = reader.read_until(b'\n', &mut line);
    match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Err(_) => Err(format!("no request within {REQUEST_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(_)) if line.len() > MAX_REQUEST => {
            Err(format!("request longer than {MAX_REQUEST} bytes"))
        }
        Ok(Ok(_)) => String::from_utf8(line).map_err(|_| "request is not UTF-8".to_owned()),
    }
}

async fn answer(
    stream: UnixStream,
    board: &StatusBoard,
    requests: &mpsc::Sender<ControlRequest>,
) -> io::Result<()> {
    if let Err(why) = peer_allowed(&stream) {
        warn!("control socket: {why}");
        return refuse(stream, &why).await;
    }
    let (read, mut write) = stream.into_split();
    let line = match read_request(read).await {
        Ok(line) => line,
        Err(why) => {
            warn!("control socket: {why}");
            write
                .write_all(format!("error: {why}\n").as_bytes())
                .await?;
            return write.shutdown().await;
        }
    };
    let line = line.trim();
    let reply = match line {
        // A snapshot of a large configuration and its JSON take milliseconds: on the
        // blocking pool, not on the protocol threads that send the adverts.
        "status" => {
            let board = board.clone();
            tokio::task::spawn_blocking(move || serde_json::to_string_pretty(&board.snapshot()))
                .await
                .map_err(io::Error::other)?
                .map_err(io::Error::other)?
        }
        "reload" => match requests.send(ControlRequest::Reload).await {
            Ok(()) => "ok".to_owned(),
            Err(_) => "error: daemon is shutting down".to_owned(),
        },
        other => match parse_maintenance(other) {
            Some(Ok((on, instance))) => maintenance(requests, on, instance).await,
            Some(Err(usage)) => format!("error: {usage}"),
            None => format!(
                "error: unknown request {other:?} (expected `status`, `reload` or `maintenance on|off INSTANCE`)"
            ),
        },
    };
    write.write_all(reply.as_bytes()).await?;
    write.write_all(b"\n").await?;
    write.shutdown().await
}

/// Client side: send `request` to the daemon using `state_dir` and return its answer.
pub fn request(state_dir: &Path, request: &str) -> io::Result<String> {
    use std::io::{Read, Write};
    let path = socket_path(state_dir);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot reach the daemon at {}: {err}", path.display()),
        )
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    stream.write_all(b"\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_and_reload_round_trip_over_the_socket() {
        let dir = std::env::temp_dir().join(format!("wa-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let board = StatusBoard::new(Path::new("/etc/x.conf"));
        board.set_instance(InstanceStatus {
            name: "VI_1".into(),
            state: "MASTER".into(),
            ..Default::default()
        });
        let nginx = TrackedProcessStatus {
            name: "nginx".into(),
            count: 0,
            quorum: 1,
            quorum_max: None,
            up: true,
            pending: Some("down".into()),
        };
        let (_processes_tx, processes) = watch::channel(vec![nginx.clone()]);
        board.track_processes(processes);
        let (tx, mut rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let task = serve(&dir, board, tx, cancel.clone()).unwrap();

        let dir2 = dir.clone();
        let text = tokio::task::spawn_blocking(move || request(&dir2, "status"))
            .await
            .unwrap()
            .unwrap();
        let status: Status = serde_json::from_str(&text).unwrap();
        assert_eq!(status.instances[0].state, "MASTER");
        assert_eq!(status.config, "/etc/x.conf");
        assert_eq!(status.tracked_processes, [nginx]);
        assert!(
            !text.contains("quorum_max"),
            "unlimited is left out: {text}"
        );

        let dir2 = dir.clone();
        let text = tokio::task::spawn_blocking(move || request(&dir2, "reload"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text.trim(), "ok");
        assert!(matches!(rx.recv().await, Some(ControlRequest::Reload)));

        // Maintenance: forwarded with its reply channel; the daemon's answer goes back.
        let dir2 = dir.clone();
        let client =
            tokio::task::spawn_blocking(move || request(&dir2, "maintenance on VI_9").unwrap());
        match rx.recv().await {
            Some(ControlRequest::Maintenance {
                instance,
                on,
                reply,
            }) => {
                assert_eq!((instance.as_str(), on), ("VI_9", true));
                reply
                    .send(Err("no vrrp_instance named VI_9".into()))
                    .unwrap();
            }
            other => panic!("expected a maintenance request, got {other:?}"),
        }
        assert_eq!(
            client.await.unwrap().trim(),
            "error: no vrrp_instance named VI_9"
        );
        let dir2 = dir.clone();
        let text = tokio::task::spawn_blocking(move || request(&dir2, "maintenance maybe VI_1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text.trim(), "error: usage: maintenance on|off INSTANCE");

        // An endless line is cut off at the bound, and the daemon answers the next client.
        let dir2 = dir.clone();
        let text = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::os::unix::net::UnixStream::connect(socket_path(&dir2)).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            // Write until the daemon closes its end (a broken pipe), or 1 MiB.
            let chunk = [b'x'; 4096];
            for _ in 0..256 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            answer
        })
        .await
        .unwrap();
        assert!(text.contains("longer than 1024 bytes"), "{text:?}");
        // A client that sends nothing is cut off after the timeout.
        let dir2 = dir.clone();
        let text = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut s = std::os::unix::net::UnixStream::connect(socket_path(&dir2)).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            answer
        })
        .await
        .unwrap();
        assert!(text.contains("no request within"), "{text:?}");
        let dir2 = dir.clone();
        let text = tokio::task::spawn_blocking(move || request(&dir2, "status"))
            .await
            .unwrap()
            .unwrap();
        assert!(text.contains("VI_1"));

        cancel.cancel();
        task.await.unwrap();
        assert!(!socket_path(&dir).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
