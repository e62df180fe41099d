//! wasmalived's protocol layer: VRRP (RFC 3768 / RFC 5798) wire codecs and the sans-IO core.
//!
//! Nothing here reads a clock, sleeps, touches a socket or depends on an async runtime: every
//! entry point takes the current time and returns actions plus the next deadline (STYLE
//! principles 1–2), so the whole speaker is tested deterministically in a simulated LAN.
//!
//! - [`wire`]: wire formats — the VRRP advert codec, the IPv4 header, the Internet checksum,
//!   gratuitous ARP and unsolicited NA frames.
//! - [`vrrp`]: the per-instance state machine, its timers and receive checks.
//! - [`router`]: the node's whole VRRP speaker — every instance, demultiplexing, tracking, sync
//!   groups, split-brain detection, GARP/NA pacing, reloads — returning outputs and one deadline.
//! - [`track`]: keepalived's tracking rules — rise/fall counting of one check and the effective
//!   priority (or Fault) of an instance from what it tracks.
//! - [`fuzz`]: the bodies of the fuzz targets over this crate (`fuzz/` runs them under
//!   libFuzzer; this crate's tests replay their corpora).

pub mod fuzz;
mod rng;
pub mod router;
pub mod track;
pub mod vrrp;
pub mod wire;
