//! OS mechanisms shared by wasmalived's layers, each with one job:
//!
//! - [`program`]: vetting a program before it runs (`PATH`, executable, file trust, user).
//! - [`process`]: the one child-process runner (own process group, bounded time, group
//!   killed on timeout, bounded output, another user, environment policy).
//! - [`trust`]: the file-trust policy (owner, mode, every parent directory, symlinks) that
//!   scripts, hooks and plugin files are checked against.
//! - [`user`]: `user NAME [GROUP]` resolution from the passwd/group databases.
//! - [`allocator`]: glibc malloc arenas capped, its thresholds fixed, and trimmed (the
//!   daemon's resident memory).
//! - [`program_pages`]: the daemon's own code pages that start-up touched, unmapped after it.
//! - `libc_calls`: the few libc calls the above need.
//!
//! `libc_calls`, `allocator` and `program_pages` hold the only `unsafe` code here.

pub mod allocator;
mod libc_calls;
pub mod process;
pub mod program;
pub mod program_pages;
pub mod trust;
pub mod user;

pub use libc_calls::{
    cpu_affinity, current_tid, effective_ids, fair_slice, kill_process_group, lock_current_memory,
    set_child_nice, set_cpu_affinity, set_credentials, set_fair_slice, set_round_robin,
    set_thread_nice, thread_nice,
};
pub use process::{ChildCommand, Environment, Exit, Finished, RunError};
pub use user::{RunAs, UserError};
