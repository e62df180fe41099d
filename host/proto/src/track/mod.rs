//! keepalived's tracking rules, sans-IO: how check results become a check state
//! ([`rise_fall`]) and how the states an instance tracks become its effective priority or a
//! Fault ([`priority`]); how running processes become a quorum state ([`process`]).

pub mod priority;
pub mod process;
pub mod rise_fall;

pub use priority::{effective, effective_with_files, Effective, FaultReason, Tracked, TrackedFile};
pub use rise_fall::{CheckState, CheckStatus, CheckTransition, Outcome, StateKind, StatusError};
