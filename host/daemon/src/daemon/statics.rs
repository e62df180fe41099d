//! The global `static_ipaddress`, `static_routes` and `static_rules`: installed when a
//! configuration is applied, whatever the VRRP state, and removed at shutdown — what
//! keepalived does in `start_vrrp` / `stop_vrrp`. A reload first removes what the old
//! configuration had and the new one lacks (keepalived's `clear_diff_static_*`), then
//! installs the new set (adding what is present already is a no-op).
//!
//! Addresses go first and come out last, so a static route may use a static address as its
//! source or gateway interface; rules come after the routes they select.

use tracing::{error, info};

use crate::net::netlink::Netlink;
use wasmalived_config::route::StaticEntries;

/// Interface index given for addresses that always carry their `dev` (unused).
const NO_DEFAULT_IFINDEX: u32 = 0;

/// Remove what `installed` has and `wanted` lacks, then install `wanted`. Failures are
/// logged per entry; the rest carries on.
pub async fn apply(netlink: &Netlink, installed: &StaticEntries, wanted: &StaticEntries) {
    let stale = StaticEntries {
        addresses: missing(&installed.addresses, &wanted.addresses),
        routes: missing(&installed.routes, &wanted.routes),
        rules: missing(&installed.rules, &wanted.rules),
    };
    remove(netlink, &stale).await;
    for address in &wanted.addresses {
        if let Err(err) = netlink.add_vip(address, NO_DEFAULT_IFINDEX).await {
            error!(address = %address.addr, error = %err, "static_ipaddress: adding failed");
        }
    }
    for route in &wanted.routes {
        if let Err(err) = netlink.add_route(route).await {
            error!(%route, error = %err, "static_routes: adding failed");
        }
    }
    for rule in &wanted.rules {
        if let Err(err) = netlink.add_rule(rule).await {
            error!(%rule, error = %err, "static_rules: adding failed");
        }
    }
    if !wanted.is_empty() {
        info!(
            addresses = wanted.addresses.len(),
            routes = wanted.routes.len(),
            rules = wanted.rules.len(),
            "static entries installed"
        );
    }
}

/// Remove `entries`: rules, then routes, then addresses.
pub async fn remove(netlink: &Netlink, entries: &StaticEntries) {
    for rule in &entries.rules {
        if let Err(err) = netlink.del_rule(rule).await {
            error!(%rule, error = %err, "static_rules: removing failed");
        }
    }
    for route in &entries.routes {
        if let Err(err) = netlink.del_route(route).await {
            error!(%route, error = %err, "static_routes: removing failed");
        }
    }
    for address in &entries.addresses {
        if let Err(err) = netlink.del_vip(address, NO_DEFAULT_IFINDEX).await {
            error!(address = %address.addr, error = %err, "static_ipaddress: removing failed");
        }
    }
}

/// The items of `old` that `new` lacks.
fn missing<T: Clone + PartialEq>(old: &[T], new: &[T]) -> Vec<T> {
    old.iter().filter(|x| !new.contains(x)).cloned().collect()
}
