//! Fault injection for the end-to-end tests (cargo feature `fault-injection`, which `make
//! test` builds and shipped builds do not), set in `WASMALIVED_FAULT`:
//! - `panic-router-after-ms=N`: the router driver panics N ms after it starts, so the tests
//!   can prove what the daemon does when its protocol loop dies (release, then exit).
//! - `stall-router-after-ms=N`: N ms after it starts, the router driver stops: it awaits
//!   something that never completes, as a loop hung on a lost reply would. The process
//!   lives on; the tests prove the systemd watchdog pings stop with it.
//! - `block-router-after-ms=N`: N ms after it starts, the router driver blocks its thread for
//!   [`BLOCK_FOR`], once, as a write to a log on a stalled disk would; the socket readers run on
//!   meanwhile. The tests prove a Backup then reads the adverts queued meanwhile before acting
//!   on its expired master-down timer.
//! - `slow-log-after-ms=N`: from N ms after start, every write of the log writer thread to
//!   stderr takes [`SLOW_LOG_WRITE`] longer, as on a loaded disk. The tests prove that the
//!   lines still queued when the daemon stops are written out before it exits.

use std::time::{Duration, Instant};

/// The environment variable read at start-up.
pub const ENV: &str = "WASMALIVED_FAULT";

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The router driver panics at this time.
    PanicRouterAt(Instant),
    /// The router driver stops making progress at this time.
    StallRouterAt(Instant),
    /// The router driver blocks its thread for [`BLOCK_FOR`] at this time, once.
    BlockRouterAt(Instant),
    /// From this time, each write to the log sink takes [`SLOW_LOG_WRITE`] longer.
    SlowLogAt(Instant),
}

/// How much longer each log write takes with `slow-log`.
pub const SLOW_LOG_WRITE: Duration = Duration::from_millis(300);

/// How long `block-router` blocks the driver's thread.
pub const BLOCK_FOR: Duration = Duration::from_secs(1);

impl Fault {
    /// The fault `spec` names (`KIND-after-ms=N`), timed from `now`.
    pub fn parse(spec: &str, now: Instant) -> Option<Fault> {
        let (kind, ms) = spec.split_once("-after-ms=")?;
        let at = now + Duration::from_millis(ms.trim().parse().ok()?);
        match kind {
            "panic-router" => Some(Fault::PanicRouterAt(at)),
            "stall-router" => Some(Fault::StallRouterAt(at)),
            "block-router" => Some(Fault::BlockRouterAt(at)),
            "slow-log" => Some(Fault::SlowLogAt(at)),
            _ => None,
        }
    }
}

/// The fault configured in the environment, if any (and if this build injects faults),
/// without logging it (for the logger itself, before it exists).
pub fn configured(now: Instant) -> Option<Fault> {
    if !cfg!(feature = "fault-injection") {
        return None;
    }
    Fault::parse(&std::env::var(ENV).ok()?, now)
}

/// The fault configured in the environment, if any (and if this build injects faults).
pub fn from_env(now: Instant) -> Option<Fault> {
    if !cfg!(feature = "fault-injection") {
        return None;
    }
    let spec = std::env::var(ENV).ok()?;
    let fault = Fault::parse(&spec, now);
    match fault {
        Some(_) => tracing::warn!(fault = %spec, "fault injection armed (test build)"),
        None => tracing::error!(fault = %spec, "{ENV}: unknown fault; nothing injected"),
    }
    fault
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_parsed_with_their_time() {
        let now = Instant::now();
        assert_eq!(
            Fault::parse("panic-router-after-ms=9000", now),
            Some(Fault::PanicRouterAt(now + Duration::from_secs(9)))
        );
        assert_eq!(
            Fault::parse("stall-router-after-ms=250", now),
            Some(Fault::StallRouterAt(now + Duration::from_millis(250)))
        );
        assert_eq!(
            Fault::parse("block-router-after-ms=10", now),
            Some(Fault::BlockRouterAt(now + Duration::from_millis(10)))
        );
        assert_eq!(
            Fault::parse("slow-log-after-ms=0", now),
            Some(Fault::SlowLogAt(now))
        );
        assert_eq!(Fault::parse("stall-router-after-ms=soon", now), None);
        assert_eq!(Fault::parse("melt-router-after-ms=1", now), None);
        assert_eq!(Fault::parse("stall-router", now), None);
    }
}
