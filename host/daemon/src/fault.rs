//! Fault injection for the end-to-end tests (cargo feature `fault-injection`, which `make
//! test` builds and shipped builds do not): `WASMALIVED_FAULT=panic-router-after-ms=N` makes
//! the router driver panic N ms after it starts, so the tests can prove what the daemon
//! does when its protocol loop dies (see `daemon::supervise`).

use std::time::{Duration, Instant};

/// The environment variable read at start-up.
pub const ENV: &str = "WASMALIVED_FAULT";

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The router driver panics at this time.
    PanicRouterAt(Instant),
}

/// The fault configured in the environment, if any (and if this build injects faults).
pub fn from_env(now: Instant) -> Option<Fault> {
    if !cfg!(feature = "fault-injection") {
        return None;
    }
    let spec = std::env::var(ENV).ok()?;
    let ms: u64 = spec.strip_prefix("panic-router-after-ms=")?.parse().ok()?;
    tracing::warn!(fault = %spec, "fault injection armed (test build)");
    Some(Fault::PanicRouterAt(now + Duration::from_millis(ms)))
}
