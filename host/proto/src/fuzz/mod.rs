//! The bodies of the fuzz targets over the protocol crate, as plain functions: libFuzzer
//! runs them from `fuzz/` (`cargo +nightly fuzz run NAME`), and this crate's tests replay
//! every input kept in `fuzz/corpus/NAME` and `fuzz/regressions/NAME` through the same
//! function, so a crash once found stays a failing `#[test]` until fixed.
//!
//! Each function takes arbitrary bytes, never fails on bad input, and panics only when an
//! invariant of the code under test is broken.
//!
//! - [`vrrp_packet`]: a received datagram (an IPv4 packet with its header, or an IPv6
//!   payload with the addresses and hop limit a raw socket reports) through the header
//!   parser, the advert decoder and a router's receive validation.
//! - [`router_sim`]: a simulated LAN of 1–3 whole routers driven by an arbitrary schedule
//!   of events, the LAN's invariants checked after every step and convergence at the end.

pub mod packet;
pub mod router;

pub use packet::vrrp_packet;
pub use router::router_sim;
