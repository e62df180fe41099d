//! VRRP protocol core: packet codec and sans-IO state machine. No clock, no sockets.
//!
//! The advert codec itself is [`crate::wire::vrrp`].
//!
//! - [`types`]: protocol value types (VRID, priority, intervals in their wire units).
//! - [`timing`]: skew time and master-down interval, in one function.
//! - [`timer`]: the per-instance timer table.
//! - [`validate`]: receive checks, drop reasons and counters.
//! - [`instance`]: the Initialize/Backup/Master/Fault state machine.
//!
//! The I/O layer owns sockets and the clock: it feeds [`Instance::handle_packet`] /
//! [`Instance::handle_timeout`] / [`Instance::set_priority`] / [`Instance::set_fault`] /
//! [`Instance::shutdown`] with the current time, performs every [`Action`] from
//! [`Instance::poll_action`] in order, and sleeps until [`Instance::poll_timeout`].

pub mod instance;
pub mod timer;
pub mod timing;
pub mod types;
pub mod validate;

#[cfg(test)]
mod golden;
#[cfg(test)]
pub(crate) mod sim;

pub use crate::wire::vrrp::{
    decode, encode, Advert, AuthType, ChecksumForm, DecodeError, Decoded, V2Auth,
};
pub use instance::{
    Action, ConfigError, ConfigWarning, GarpConfig, InitialState, Instance, InstanceConfig, Notice,
    Reason, State,
};
pub use timer::{Timer, TimerTable};
pub use timing::{timing, Timing};
pub use types::{
    AdvertInterval, Centiseconds, Family, IntervalError, Priority, Seconds, Version, Vrid,
};
pub use validate::{Counters, DropReason, RxDrop};
