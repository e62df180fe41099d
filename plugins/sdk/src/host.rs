//! [`Host`]: everything a check can ask of the daemon besides computing — the capabilities of
//! `wit/plugin.wit` (log, processes, remediation, scratch, wake) and the parts of WASI the stock
//! checks use (clocks, random, HTTP, TCP and UDP). A check is written against `&impl Host`:
//!
//! - in the component, the SDK passes [`crate::Wasi`], whose methods call the real imports;
//! - in a native `cargo test`, the test passes a [`crate::testing::FakeHost`].
//!
//! Checks take `&impl Host` (static dispatch), never `&dyn Host`: only the methods a check
//! actually calls are linked into its component, so it imports only the capabilities it uses
//! — and the daemon refuses a plugin that imports one its check was not granted. For the same
//! reason TCP-only and HTTP-only batches have their own methods ([`Host::connect_all`],
//! [`Host::fetch_all`]): a check that only fetches imports no `wasi:sockets`.
//!
//! The filesystem needs no method here: `std::fs` works both in the component (granted
//! directories, `allow_dir`) and natively (test against a temporary directory).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use crate::net::{
    Datagrams, HttpError, HttpRequest, HttpResponse, NetError, NetOp, NetReply, Stream, TcpClose,
    TcpError,
};

/// A log level (`wasmalived:plugin/log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal events.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something is wrong.
    Error,
}

/// One process, as the host's `processes` capability describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The process id.
    pub pid: u32,
    /// The short command name (`/proc/PID/comm`).
    pub name: String,
    /// The command line (`/proc/PID/cmdline`), split on NUL.
    pub cmdline: Vec<String>,
    /// Whether the process lives in the daemon's network namespace.
    pub same_netns: bool,
}

/// The daemon's side of a check run. See the module documentation.
pub trait Host {
    /// Log into the daemon's log under the plugin's span (always granted; rate-limited).
    fn log(&self, level: Level, message: &str);

    /// Processes whose short name equals `name` exactly (grant: `allow_processes`).
    fn processes_by_name(&self, name: &str) -> Result<Vec<Process>, String>;

    /// Processes whose command line, joined by spaces, contains `pattern`
    /// (grant: `allow_processes`).
    fn processes_by_cmdline(&self, pattern: &str) -> Result<Vec<Process>, String>;

    /// Run the remediation command the configuration declares under `id` and wait for it
    /// (grant: `remediation ID ...`). Its exit status, or why it did not run to the end.
    fn remediate(&self, id: &str) -> Result<i32, String>;

    /// The value stored under `key` in the check's scratch store (always granted; kept by
    /// the host across runs, traps and reloads, not across daemon restarts).
    fn scratch_get(&self, key: &str) -> Option<Vec<u8>>;

    /// Store `value` under `key`; fails when the check's scratch quota would be exceeded.
    fn scratch_set(&self, key: &str, value: &[u8]) -> Result<(), String>;

    /// Forget `key`.
    fn scratch_remove(&self, key: &str);

    /// Run this check again at once when any of these processes exits, instead of waiting
    /// for its next interval (contract 1.2.0, `wake.on-exit`; grant: `allow_processes`). The
    /// watch lasts until the end of the next run, so a check calls it on every run with the
    /// PIDs it counted. The daemon rate-limits early runs. At most 64 PIDs per run.
    fn wake_on_exit(&self, pids: &[u32]) -> Result<(), String>;

    /// Run this check again at once when `path` changes — written, created, removed,
    /// renamed; for a directory, anything directly in it — instead of waiting for its next
    /// interval (contract 1.3.0, `wake.on-change`). `path` is as the check sees it and must
    /// lie inside a directory it is granted (`allow_dir`); others are refused. Like
    /// [`Host::wake_on_exit`] it is declared on every run. Changes are seen through inotify:
    /// a file on NFS changed by another client wakes nothing (the interval still runs the
    /// check). At most 16 paths per run.
    fn wake_on_change(&self, path: &str) -> Result<(), String>;

    /// Run this check again at once when the TCP server at `address` closes or resets a
    /// connection the daemon holds to it, or cannot be reached — a server process that dies
    /// wakes the check — instead of waiting for its next interval (contract 1.4.0,
    /// `wake.on-disconnect`). `address` must be one the check may connect to (`allow_tcp`);
    /// others are refused. Like [`Host::wake_on_exit`] it is declared on every run, and only
    /// for a server the run just reached: one that refuses the daemon's connection wakes the
    /// check at once. At most 8 servers per run.
    fn wake_on_disconnect(&self, address: SocketAddr) -> Result<(), String>;

    /// The monotonic clock: time since an arbitrary origin that is the same for every run of
    /// the check (so it can be kept in scratch and compared in a later run).
    fn monotonic(&self) -> Duration;

    /// The wall clock.
    fn wall_clock(&self) -> SystemTime;

    /// Block for `duration`.
    fn sleep(&self, duration: Duration);

    /// A random number (for unique names; not for keys).
    fn random_u64(&self) -> u64;

    /// Run network operations — TCP connects (grant: `allow_tcp`) and HTTP requests (grant:
    /// `allow_http`) — all at once, within one `timeout` for the lot; one result per
    /// operation, in order. An operation still unfinished at the deadline is
    /// [`NetError::Deadline`]. See [`crate::net`] for one-operation helpers.
    fn network(&self, ops: &[NetOp], timeout: Duration) -> Vec<Result<NetReply, NetError>>;

    /// TCP connects only, as [`Host::network`] does them. [`crate::Wasi`] overrides this: the
    /// daemon makes the whole batch in one host call (`probe.tcp-connect`), and a check that
    /// only connects imports no `wasi:http` and no `wasi:sockets`.
    fn connect_all(&self, addrs: &[SocketAddr], timeout: Duration) -> Vec<Result<(), NetError>> {
        let ops: Vec<NetOp> = addrs.iter().map(|a| NetOp::Tcp(*a)).collect();
        connected(self.network(&ops, timeout))
    }

    /// TCP connects from the local address `from`, as [`Host::network`] does them
    /// ([`NetOp::TcpFrom`]). [`crate::Wasi`] overrides this so that it imports no `wasi:http`.
    fn connect_all_from(
        &self,
        from: IpAddr,
        addrs: &[SocketAddr],
        timeout: Duration,
    ) -> Vec<Result<(), NetError>> {
        let ops: Vec<NetOp> = addrs
            .iter()
            .map(|a| NetOp::TcpFrom { from, to: *a })
            .collect();
        connected(self.network(&ops, timeout))
    }

    /// [`Host::connect_all`] (from `from`, if given) with each connection closed as `close`
    /// says. [`crate::Wasi`] does that; a host without the choice (this default, a test's
    /// fake) closes with a FIN.
    fn connect_all_closing(
        &self,
        from: Option<IpAddr>,
        addrs: &[SocketAddr],
        timeout: Duration,
        close: TcpClose,
    ) -> Vec<Result<(), NetError>> {
        let _ = close;
        connect_all_from_any(self, from, addrs, timeout)
    }

    /// Open a TCP connection to `to` (from the local address `from`, an ephemeral port, if
    /// given) within `timeout`, for a dialogue over it (grant: `allow_tcp`; a bound source
    /// must be the one granted). An SMTP or other line-protocol check talks over it.
    fn tcp_stream(
        &self,
        from: Option<IpAddr>,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<Box<dyn Stream + '_>, NetError>;

    /// A UDP socket bound to `from` (or the wildcard) with an ephemeral port and connected
    /// to `to` (grant: `allow_udp`; a bound source must be the one granted).
    fn udp_connect(
        &self,
        from: Option<IpAddr>,
        to: SocketAddr,
    ) -> Result<Box<dyn Datagrams + '_>, NetError>;

    /// HTTP requests only, as [`Host::network`] does them. [`crate::Wasi`] overrides this so
    /// that a check which only fetches imports no `wasi:sockets`.
    fn fetch_all(
        &self,
        requests: &[HttpRequest],
        timeout: Duration,
    ) -> Vec<Result<HttpResponse, NetError>> {
        let ops: Vec<NetOp> = requests.iter().cloned().map(NetOp::Http).collect();
        self.network(&ops, timeout)
            .into_iter()
            .map(|r| match r? {
                NetReply::Http(response) => Ok(response),
                NetReply::Connected => Err(NetError::Http(HttpError::Request(
                    "the host answered an HTTP request with a TCP connect".into(),
                ))),
            })
            .collect()
    }

    /// [`Host::log`] at [`Level::Info`].
    fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    /// [`Host::log`] at [`Level::Warn`].
    fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    /// [`Host::log`] at [`Level::Error`].
    fn error(&self, message: &str) {
        self.log(Level::Error, message);
    }

    /// A scratch value as UTF-8 text; `None` when absent or not text.
    fn scratch_get_str(&self, key: &str) -> Option<String> {
        self.scratch_get(key)
            .and_then(|bytes| String::from_utf8(bytes).ok())
    }

    /// Time elapsed on the monotonic clock since `start` (a [`Host::monotonic`] reading).
    fn elapsed_since(&self, start: Duration) -> Duration {
        self.monotonic().saturating_sub(start)
    }
}

/// The replies to TCP connects: a connect either succeeded or failed; an HTTP reply to one
/// is a host error.
/// [`Host::connect_all_from`] when there is a source address, else [`Host::connect_all`].
pub(crate) fn connect_all_from_any<H: Host + ?Sized>(
    host: &H,
    from: Option<IpAddr>,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Vec<Result<(), NetError>> {
    match from {
        Some(from) => host.connect_all_from(from, addrs, timeout),
        None => host.connect_all(addrs, timeout),
    }
}

fn connected(replies: Vec<Result<NetReply, NetError>>) -> Vec<Result<(), NetError>> {
    replies
        .into_iter()
        .map(|r| match r? {
            NetReply::Connected => Ok(()),
            NetReply::Http(_) => Err(NetError::Tcp(TcpError::Other(
                "the host answered a TCP connect with an HTTP response".into(),
            ))),
        })
        .collect()
}
