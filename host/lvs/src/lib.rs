//! wasmalived's LVS director core (keepalived's check module): what keepalived's checkers
//! and pool rules decide, sans-IO, and the data paths that apply it.
//!
//! - [`checker`]: one checker's state (retry, delay_before_retry, alpha).
//! - [`service`]: one virtual server's state — real servers alive, quorum, sorry server —
//!   and the pool that follows ([`service::ServiceState::pool`]).
//! - [`schedule`]: IPVS's schedulers as stateless slot tables (`rr`, `wrr`, `sh`, Maglev
//!   `mh`, `fo`; the connection-count ones fall back to `wrr`, visibly).
//! - [`plan`]: what the data path must program for one service ([`plan::ServicePlan`]).
//! - [`backend`]: the backend trait, a stand-in for a missing backend, a recording fake.
//! - [`nft`]: the nftables backend (NAT and direct routing in wasmalived's own tables).
//! - [`ipvs`]: the IPVS backend (generic netlink; every scheduler, NAT, DR and TUN).
//! - [`select`]: `lvs_backend auto|ipvs|nftables` — which backend runs here.
//!
//! Nothing here runs a timer or reads a clock: the daemon feeds check results in and applies
//! the plans out.

pub mod backend;
pub mod checker;
pub mod ipvs;
pub mod nft;
pub mod plan;
pub mod schedule;
pub mod select;
pub mod service;

pub use backend::{Backend, BackendError, Recording, Review, Unavailable};
pub use plan::{service_plan, ServicePlan};
pub use select::{choose_backend, detect, BackendKind, SelectError};
pub use service::{Event, Member, ServiceState, WeightReport};
