//! keepalived's `checker_priority` (the nice value of its checker process), applied to the
//! plugin executor threads (`wasm-check-N`): every plugin run happens there — `vrrp_script`
//! plugin checks and the LVS director's checkers alike — so they take the checkers' setting
//! (keepalived runs its `vrrp_script`s from the VRRP process, but here a plugin run never
//! shares a thread with adverts). `vrrp_priority` is the protocol threads' nice value
//! ([`crate::protocol_threads`]).
//!
//! Without `checker_priority` the executor threads run [`CHECKER_NICE_ABOVE_VRRP`] nicer than
//! the protocol threads (nice 10 by default), so that under default scheduling an advert's
//! thread, woken by its timer, is not kept waiting behind a plugin that burns its whole
//! timeout: the scheduler weighs a nice-10 thread at about a tenth of a nice-0 one. Plugin
//! runs keep their share of an otherwise idle CPU (nice only matters when threads compete),
//! and their timeouts are wall-clock, so a demoted run can only take longer under contention.
//! The epoch ticker (`wasm-epoch`) is not demoted: it enforces the plugins' deadlines and
//! wakes once per tick. Set at start-up; a reload that changes it says so.

use tracing::{info, warn};
#[cfg(doc)]
use wasmalived_config::defaults::CHECKER_NICE_ABOVE_VRRP;
use wasmalived_config::model::GlobalDefs;
use wasmalived_sys::set_thread_nice;

/// Give the executor threads `tids` the nice value `global` asks for.
pub fn apply(tids: &[i32], global: &GlobalDefs) {
    let nice = global.checker_nice();
    let mut set = 0;
    for &tid in tids {
        match set_thread_nice(tid, nice) {
            Ok(()) => set += 1,
            Err(err) => warn!(
                tid,
                nice, "checker_priority: cannot set the plugin executor thread's nice value: {err}"
            ),
        }
    }
    let source = if global.checker_threads.nice.is_some() {
        "checker_priority"
    } else {
        "the default: vrrp_priority + 10"
    };
    info!(
        threads = set,
        nice, source, "plugin executor threads scheduled"
    );
}

/// A reload's setting: it takes effect at restart only; say so if it changed.
pub fn reloaded(before: &GlobalDefs, after: &GlobalDefs) {
    if before.checker_nice() != after.checker_nice() {
        warn!(
            before = before.checker_nice(),
            after = after.checker_nice(),
            "checker_priority changed: it takes effect when the daemon restarts"
        );
    }
}
