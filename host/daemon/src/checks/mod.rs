//! Health checks: keepalived's `vrrp_script` semantics, the scheduler and the script runner.
//!
//! ```text
//!  CheckSchedule + Runner ──spawn_check──▶ check task (one per check, scheduler.rs)
//!       (script.rs / plugins)                 │ every interval, run with timeout,
//!                                             │ skip if the previous run is still going
//!                                             ▼
//!                                       CheckStatus (status.rs: rise/fall counter)
//!                                             │ watch::Sender<CheckUpdate>
//!                                             ▼
//!                     instance task: priority::effective(base, tracked) → Priority(p) | Fault
//! ```
//!
//! - [`status`]: keepalived's rise/fall counter and Init/Up/Down (+ our Fatal) state, sans-IO.
//! - [`priority`]: effective priority from tracked checks/interfaces (weight, reverse, weight 0,
//!   owner, clamp), a pure function.
//! - [`latency`]: each check's run-latency histogram and recent quantiles.
//! - [`scheduler`]: the per-check tokio task, [`scheduler::CheckHandle`] for subscriptions and
//!   reloads.
//! - [`wake`]: event-driven checks — the pidfds of the processes a run asked to be woken by,
//!   the inotify watches on its paths, the connections held to its servers, and the rate
//!   limit on early runs.
//! - [`script`]: running a keepalived `script` (no shell, own process group, `/dev/null` stdio,
//!   group kill on timeout) and [`security`]: `enable_script_security` path checks; [`user`]:
//!   `user NAME [GROUP]` resolution.
//!
//! The keepalived rules implemented are cited, with the keepalived file and function they were
//! read from (keepalived master, commit 9cbce3e), in each module's docs. One keepalived
//! oddity is *not* reproduced: in that source `alloc_track_script` (`vrrp_track.c`) sets
//! `init_state = SCRIPT_INIT_STATE_INIT` for every tracked script after the parser set
//! `SCRIPT_INIT_STATE_FAILED` for `init_fail`, which appears to make `init_fail` ineffective
//! for tracked scripts; we implement the documented meaning ("assume script initially is in
//! failed state").

pub mod latency;
pub mod scheduler;
pub mod script;
pub mod wake;

pub use scheduler::{
    spawn_check, CheckHandle, CheckSchedule, CheckUpdate, Failure, Home, RunReport, RunResult,
    Runner, ScheduleError,
};
pub use script::{ScriptCommand, ScriptError};
pub use wasmalived_proto::track::{
    effective, CheckState, CheckStatus, CheckTransition, Effective, FaultReason, Outcome, Tracked,
};
pub use wasmalived_sys::trust as security;
pub use wasmalived_sys::user::{self, RunAs};
