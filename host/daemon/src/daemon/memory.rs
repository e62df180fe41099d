//! After a burst of one-off work (start-up, a reload), hand back what only that work needed:
//! the allocator's freed pages and the pages of the daemon's own code and read-only data it
//! touched (the config parser, the CLI, plugin loading). Issue 14: the steady state of a node
//! with four plugin checks holds a fraction of what its start-up mapped.

use std::time::{Duration, Instant};

use tracing::{debug, warn};

/// How long a burst's tail goes on after the burst itself: the first run of every check (a
/// plugin's first instantiation), the first adverts, the replies to start-up's netlink
/// requests. Its code is as one-off as start-up's, and the steady state's code is packed
/// together at the front of `.text` (host/daemon/build.rs): what the tail faulted in among
/// it stays mapped until a second release after the tail (issue 14: a settled node's binary
/// share 6.9 → 3.2 MiB of code).
const BURST_TAIL: Duration = Duration::from_secs(5);

/// Trim the heap and unmap the program's start-up pages, now and again once the burst's tail
/// is over; `after` names the burst in the log. On the blocking pool: reading
/// `/proc/self/smaps` and trimming take milliseconds, which a protocol thread must not spend
/// between two adverts (a reload must not make one late).
pub(super) fn release_one_off_memory(after: &'static str) {
    drop(tokio::spawn(async move {
        let _ = tokio::task::spawn_blocking(move || release_now(after)).await;
        tokio::time::sleep(BURST_TAIL).await;
        let _ = tokio::task::spawn_blocking(move || release_now(after)).await;
    }));
}

fn release_now(after: &str) {
    let started = Instant::now();
    wasmalived_sys::allocator::release_free_memory();
    match wasmalived_sys::program_pages::release_program_pages() {
        Ok(released) => debug!(
            after,
            mappings = released.mappings,
            resident_kib = released.resident_bytes / 1024,
            took_us = started.elapsed().as_micros(),
            "program pages released (they fault back in from the page cache when run)"
        ),
        Err(e) => warn!(after, "releasing the program's start-up pages: {e}"),
    }
}
