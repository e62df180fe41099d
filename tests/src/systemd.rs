//! Standing in for systemd, which is not PID 1 on the lab machines: a notification socket
//! that records what the daemon sends (`READY=1`, `WATCHDOG=1`, ...), and the example unit's
//! capability set turned into a `setpriv` prefix, so the daemon runs with exactly the
//! privileges the unit grants.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::timing::wait_for;

/// The example unit, as shipped.
pub fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/systemd/wasmalived.service")
}

/// The unit's text.
pub fn unit_text() -> Result<String> {
    let path = unit_path();
    std::fs::read_to_string(&path)
        .map_err(|e| LabError::io(format!("reading {}", path.display()), e))
}

/// The values of every `KEY=` line of `unit` (comments skipped), in order.
pub fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .collect()
}

/// The capabilities of the unit's `CapabilityBoundingSet=` lines (`CAP_NET_ADMIN`, ...).
pub fn unit_capabilities(unit: &str) -> Result<Vec<String>> {
    let caps: Vec<String> = unit_values(unit, "CapabilityBoundingSet")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(str::to_owned)
        .collect();
    if caps.is_empty()
        || caps
            .iter()
            .any(|c| !c.starts_with("CAP_") || c.starts_with('~'))
    {
        return Err(LabError::check(format!(
            "the unit's CapabilityBoundingSet must list capabilities to keep, found {caps:?}"
        )));
    }
    Ok(caps)
}

/// `setpriv` arguments that start a program as the unit would as uid 0: the bounding set
/// reduced to the unit's capabilities (so exec grants exactly those), no inheritable
/// capabilities, and `--no-new-privs` when the unit sets `NoNewPrivileges=yes`.
pub fn setpriv_prefix(unit: &str) -> Result<Vec<String>> {
    let caps = unit_capabilities(unit)?;
    let keep: Vec<String> = caps
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let mut argv = vec![
        "setpriv".to_owned(),
        format!("--bounding-set=-all,{}", keep.join(",")),
        "--inh-caps=-all".to_owned(),
    ];
    if unit_values(unit, "NoNewPrivileges").contains(&"yes") {
        argv.push("--no-new-privs".to_owned());
    }
    argv.push("--".to_owned());
    Ok(argv)
}

/// One datagram the daemon sent, and when it arrived.
#[derive(Clone, Debug)]
pub struct Notification {
    /// Arrival time.
    pub at: Instant,
    /// The `KEY=VALUE` lines.
    pub text: String,
}

impl Notification {
    /// Whether it carries `line` (e.g. `READY=1`).
    pub fn has(&self, line: &str) -> bool {
        self.text.lines().any(|l| l == line)
    }

    /// The value of `KEY=` in it.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }
}

/// A `NOTIFY_SOCKET` recording every datagram (a thread reads it until dropped).
pub struct NotifySocket {
    path: PathBuf,
    received: Arc<Mutex<Vec<Notification>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl NotifySocket {
    /// Binds `path` (in the test's own directory) and starts recording.
    pub fn bind(path: &Path) -> Result<NotifySocket> {
        let _ = std::fs::remove_file(path);
        let socket = UnixDatagram::bind(path)
            .map_err(|e| LabError::io(format!("binding {}", path.display()), e))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| LabError::io("socket timeout", e))?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, stopped) = (Arc::clone(&received), Arc::clone(&stop));
        thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    log.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Notification {
                            at: Instant::now(),
                            text,
                        });
                }
            }
        });
        Ok(NotifySocket {
            path: path.to_path_buf(),
            received,
            stop,
        })
    }

    /// Its path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Notification> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Everything received so far that carries `line`.
    pub fn with_line(&self, line: &str) -> Vec<Notification> {
        self.received()
            .into_iter()
            .filter(|n| n.has(line))
            .collect()
    }

    /// Waits until some notification after the first `skip` satisfies `pred`; returns its
    /// index.
    pub fn wait(
        &self,
        what: &str,
        skip: usize,
        timeout: Duration,
        pred: impl Fn(&Notification) -> bool,
    ) -> Result<usize> {
        let mut found = None;
        wait_for(
            what,
            timeout,
            Duration::from_millis(10),
            || {
                found = self
                    .received()
                    .iter()
                    .enumerate()
                    .skip(skip)
                    .find(|(_, n)| pred(n))
                    .map(|(i, _)| i);
                Ok(found.is_some())
            },
            || format!("received: {:?}", self.summary()),
        )?;
        found.ok_or_else(|| LabError::check(format!("{what}: lost")))
    }

    /// What arrived, one entry per datagram with its newlines shown as `|`, for messages.
    pub fn summary(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|n| n.text.trim_end().replace('\n', "|"))
            .collect()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: &str = "[Service]\n# CapabilityBoundingSet=CAP_SYS_ADMIN\n\
        CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\nCapabilityBoundingSet=CAP_KILL\n\
        NoNewPrivileges=yes\n";

    #[test]
    fn the_capability_set_is_read_from_the_unit() {
        assert_eq!(
            unit_capabilities(UNIT).unwrap(),
            ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_KILL"]
        );
        assert_eq!(
            setpriv_prefix(UNIT).unwrap(),
            [
                "setpriv",
                "--bounding-set=-all,+net_admin,+net_raw,+kill",
                "--inh-caps=-all",
                "--no-new-privs",
                "--"
            ]
        );
        assert!(unit_capabilities("[Service]\nCapabilityBoundingSet=~CAP_SYS_ADMIN\n").is_err());
        assert!(unit_capabilities("[Service]\n").is_err());
    }

    #[test]
    fn the_shipped_unit_keeps_the_vrrp_capabilities() {
        let caps = unit_capabilities(&unit_text().unwrap()).unwrap();
        for needed in ["CAP_NET_ADMIN", "CAP_NET_RAW"] {
            assert!(caps.iter().any(|c| c == needed), "{caps:?}");
        }
    }
}
