//! wasmalived: a VRRP (RFC 3768 / RFC 5798) high-availability daemon whose health checks are
//! sandboxed WebAssembly components.
//!
//! Module map (see `../shared/STYLE.md`):
//! - [`vrrp`]: packet codec and sans-IO state machine (no clock, no sockets).
//! - [`net`]: raw VRRP sockets, netlink (VIPs, link events), gratuitous ARP / unsolicited NA.
//! - [`checks`]: check scheduling (interval, timeout, rise/fall, weight) and the script runner.
//! - [`plugins`]: the wasmtime engine, plugin loading, hot reload, host capabilities.
//! - [`config`]: keepalived-syntax parser with spans, validated into a typed `Config`.

pub mod checks;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod net;
pub mod notify;
pub mod plugins;
pub mod vrrp;
