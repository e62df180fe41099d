//! After a burst of one-off work (start-up, a reload), hand back what only that work needed:
//! the allocator's freed pages and the pages of the daemon's own code and read-only data it
//! touched (the config parser, the CLI, plugin loading). Issue 14: the steady state of a node
//! with four plugin checks holds a fraction of what its start-up mapped.

use std::time::Instant;

use tracing::{debug, warn};

/// Trim the heap and unmap the program's start-up pages; `after` names the burst in the log.
/// On the blocking pool: reading `/proc/self/smaps` and trimming take milliseconds, which a
/// protocol thread must not spend between two adverts (a reload must not make one late).
pub(super) fn release_one_off_memory(after: &'static str) {
    drop(tokio::task::spawn_blocking(move || release_now(after)));
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
