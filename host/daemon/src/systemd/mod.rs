//! systemd integration (`Type=notify`): readiness, reload and stop notifications, a status
//! line, and the watchdog — the `sd_notify(3)` datagram protocol, spoken directly.
//!
//! The protocol is one `sendto` of `KEY=VALUE` lines on a Unix datagram socket whose address
//! systemd passes in `NOTIFY_SOCKET`: a path, or `@name` for the abstract namespace (which
//! the `sd-notify` crate cannot address, hence these few lines here). Without
//! `NOTIFY_SOCKET` every call is a no-op, so the daemon behaves the same outside systemd.
//!
//! Who sends what:
//! - `READY=1` — `daemon::run`, once the first configuration is applied (control socket
//!   bound, VRRP sockets open, plugins compiled and checks started); again after each reload.
//! - `RELOADING=1` + `MONOTONIC_USEC=` — `daemon::run`, before a reload (SIGHUP, control
//!   socket, config file change).
//! - `STOPPING=1` — `daemon::run`, when shutdown begins.
//! - `STATUS=` — the router driver alone, when an instance's state or a check's verdict
//!   changes ([`status::summary`]).
//! - `WATCHDOG=1` — the router driver, from its own loop ([`watchdog`]): the ping proves the
//!   protocol loop runs, so a hung loop gets the daemon restarted.

pub mod status;
pub mod watchdog;

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

/// The environment variable naming the notification socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The watchdog timeout in microseconds.
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The process the watchdog is meant for (absent: the main process, us).
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// Why `NOTIFY_SOCKET` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifySocketError {
    /// Neither an absolute path nor `@abstract`.
    #[error("{NOTIFY_SOCKET}={0:?}: neither an absolute path nor an @abstract name")]
    Unsupported(String),
    /// The address or socket could not be made.
    #[error("{NOTIFY_SOCKET}={addr:?}: {source}")]
    Io {
        /// The address as given.
        addr: String,
        /// Cause.
        source: io::Error,
    },
}

/// The service manager's notification socket, if the daemon runs under one. Cheap to clone;
/// the default talks to nobody.
#[derive(Debug, Clone, Default)]
pub struct ServiceManager {
    socket: Option<Arc<NotifySocket>>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct NotifySocket {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl ServiceManager {
    /// Read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`, then remove them from the
    /// environment so that check scripts (which inherit it) cannot speak for the daemon.
    /// Call it before any other thread starts (environment changes race with readers).
    pub fn from_env_unset() -> Self {
        let socket = std::env::var_os(NOTIFY_SOCKET);
        let usec = std::env::var(WATCHDOG_USEC).ok();
        let pid = std::env::var(WATCHDOG_PID).ok();
        for var in [NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID] {
            std::env::remove_var(var);
        }
        let manager = match socket.as_deref().map(Self::connect).transpose() {
            Ok(manager) => manager.unwrap_or_default(),
            Err(err) => {
                warn!("{err}; systemd notifications are off");
                Self::default()
            }
        };
        if manager.socket.is_none() {
            return manager;
        }
        Self {
            watchdog: watchdog_timeout(usec.as_deref(), pid.as_deref(), std::process::id()),
            ..manager
        }
    }

    /// A manager that notifies `addr` (a path, or `@name` in the abstract namespace).
    pub fn connect(addr: &OsStr) -> Result<Self, NotifySocketError> {
        let shown = addr.to_string_lossy().into_owned();
        let io_err = |source| NotifySocketError::Io {
            addr: shown.clone(),
            source,
        };
        let bytes = addr.as_bytes();
        let addr = match bytes.first() {
            Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..]).map_err(io_err)?,
            Some(b'/') => SocketAddr::from_pathname(addr).map_err(io_err)?,
            _ => return Err(NotifySocketError::Unsupported(shown)),
        };
        let socket = UnixDatagram::unbound().map_err(io_err)?;
        // A full receive queue at the manager must never block the protocol loop: a ping
        // that cannot be queued is dropped (the next one follows within half the timeout).
        socket.set_nonblocking(true).map_err(io_err)?;
        Ok(Self {
            socket: Some(Arc::new(NotifySocket { socket, addr })),
            watchdog: None,
        })
    }

    /// With the watchdog timeout `timeout` (`WATCHDOG_USEC`).
    pub fn with_watchdog(mut self, timeout: Option<Duration>) -> Self {
        self.watchdog = timeout;
        self
    }

    /// Whether a service manager listens.
    pub fn is_active(&self) -> bool {
        self.socket.is_some()
    }

    /// The watchdog timeout the manager enforces, if any.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Start-up (or a reload) is complete.
    pub fn ready(&self) {
        self.send("READY=1\n");
    }

    /// A reload begins (`MONOTONIC_USEC` lets systemd ≥ 253 match it to `systemctl reload`).
    pub fn reloading(&self) {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let usec = u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000
            + u64::try_from(now.tv_nsec).unwrap_or(0) / 1_000;
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}\n"));
    }

    /// Shutdown begins.
    pub fn stopping(&self) {
        self.send("STOPPING=1\n");
    }

    /// Replace the status line (`systemctl status` shows it).
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}\n", one_line(status)));
    }

    /// One watchdog keep-alive.
    pub fn watchdog_ping(&self) {
        self.send("WATCHDOG=1\n");
    }

    fn send(&self, message: &str) {
        let Some(notify) = &self.socket else {
            return;
        };
        match notify.socket.send_to_addr(message.as_bytes(), &notify.addr) {
            Ok(_) => debug!(message = message.trim_end(), "sd_notify"),
            Err(err) => {
                warn!(error = %err, message = message.trim_end(), "sd_notify: not delivered")
            }
        }
    }
}

/// The watchdog timeout from `WATCHDOG_USEC`, when it applies to `our_pid` (`WATCHDOG_PID`
/// absent, or ours) and is a positive number of microseconds.
pub fn watchdog_timeout(usec: Option<&str>, pid: Option<&str>, our_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    match pid.map(|p| p.trim().parse::<u32>()) {
        None => {}
        Some(Ok(pid)) if pid == our_pid => {}
        Some(_) => return None,
    }
    Some(Duration::from_micros(usec))
}

/// A value for a `KEY=VALUE` line: newlines would start another assignment.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn the_watchdog_applies_only_to_its_pid_and_positive_timeouts() {
        let us = 4242;
        assert_eq!(
            watchdog_timeout(Some("4000000"), None, us),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            watchdog_timeout(Some("4000000"), Some("4242"), us),
            Some(Duration::from_secs(4))
        );
        assert_eq!(watchdog_timeout(Some("4000000"), Some("1"), us), None);
        assert_eq!(watchdog_timeout(Some("4000000"), Some("x"), us), None);
        assert_eq!(watchdog_timeout(Some("0"), None, us), None);
        assert_eq!(watchdog_timeout(Some("soon"), None, us), None);
        assert_eq!(watchdog_timeout(None, Some("4242"), us), None);
    }

    #[test]
    fn relative_and_unknown_socket_addresses_are_refused() {
        for addr in ["run/notify", "", "vsock:2:1234"] {
            let err = ServiceManager::connect(OsStr::new(addr)).unwrap_err();
            assert!(
                matches!(err, NotifySocketError::Unsupported(_)),
                "{addr}: {err}"
            );
        }
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn notifications_reach_an_abstract_socket() {
        let name = format!("wasmalived-sd-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let manager = ServiceManager::connect(OsStr::new(&format!("@{name}"))).unwrap();
        manager.ready();
        assert_eq!(receive(&listener), "READY=1\n");
        manager.status("VI_1 MASTER\nsecond line");
        assert_eq!(receive(&listener), "STATUS=VI_1 MASTER second line\n");
        manager.reloading();
        let reloading = receive(&listener);
        assert!(reloading.starts_with("RELOADING=1\n"), "{reloading}");
        let usec = reloading
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap();
        assert!(usec.parse::<u64>().unwrap() > 0, "{reloading}");
        manager.watchdog_ping();
        assert_eq!(receive(&listener), "WATCHDOG=1\n");
    }

    #[test]
    fn notifications_reach_a_path_socket_and_nobody_is_fine() {
        let dir = std::env::temp_dir().join(format!("wasmalived-sd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let manager = ServiceManager::connect(path.as_os_str()).unwrap();
        assert!(manager.is_active());
        manager.stopping();
        assert!(receive(&listener).starts_with("STOPPING=1\n"));
        drop(listener);
        // The manager went away: a warning, never an error or a block.
        manager.status("gone");
        let nobody = ServiceManager::default();
        assert!(!nobody.is_active());
        nobody.ready();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
