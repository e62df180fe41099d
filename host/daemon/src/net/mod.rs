//! I/O edges: raw VRRP sockets, netlink (VIPs, link events), gratuitous ARP / unsolicited NA.
//!
//! - [`socket`]: raw IP protocol 112 sockets per (interface, family); bytes and addresses only.
//! - [`netlink`]: VIP add/remove, interface facts, `RTNLGRP_LINK` events.
//! - [`routes`]: virtual and static routes and policy-routing rules, add/remove.
//! - [`garp`]: gratuitous ARP and unsolicited neighbour advertisements.
//! - [`probe`]: the LVS director's `PING_CHECK` / `UDP_CHECK` probes (ICMP echo; UDP and its
//!   ICMP errors), which a WebAssembly guest cannot do; its own few libc calls in `probe::sys`.
//! - [`vmac`]: the macvlan interfaces of `use_vmac` (RFC 5798 §7.3 virtual MAC).
//! - [`firewall`]: the VRRP side's nftables table (accept mode, VMAC membership reports).
//! - `sys`: the few libc calls the above need (with `probe::sys`, the only `unsafe` code here).

pub mod firewall;
pub mod garp;
pub mod netlink;
pub mod probe;
pub mod routes;
pub mod socket;
pub(crate) mod sys;
pub mod vmac;

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// Moves the calling *thread* into the network namespace at `path` (e.g.
/// `/run/netns/<name>`). Sockets opened afterwards by this thread live in that namespace;
/// other threads are unaffected, so run a dedicated thread (with its own current-thread
/// runtime) per namespace.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    sys::setns_net(file.as_fd())
}
