//! Direct routing's next hops: a real server must share a link with the director, so its
//! interface is the one whose subnet holds its address (whose own MAC forwarded frames
//! carry as their source), and its MAC comes from the neighbour table. An address not resolved yet is provoked with one empty datagram to its
//! discard port (9), which makes the kernel resolve it; the next round finds it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use tracing::debug;
use wasmalived_lvs::plan::DrTarget;

use crate::net::netlink::Netlink;

/// Resolve `addrs` to their interface and MAC; unresolved ones are missing from the map.
pub async fn resolve(netlink: &Netlink, addrs: &[IpAddr]) -> HashMap<IpAddr, DrTarget> {
    let mut out = HashMap::new();
    if addrs.is_empty() {
        return out;
    }
    let Ok(local) = netlink.all_addresses().await else {
        return out;
    };
    let mut links: HashMap<u32, (String, [u8; 6])> = HashMap::new();
    for ip in addrs {
        let Some(ifindex) = local
            .iter()
            .find(|(_, a)| same_subnet(a.addr, *ip, a.prefix_len) && a.addr != *ip)
            .map(|(i, _)| *i)
        else {
            debug!(%ip, "direct routing: no local subnet holds this real server");
            continue;
        };
        let (device, src_mac) = match links.get(&ifindex) {
            Some(l) => l.clone(),
            None => match netlink.link(ifindex).await {
                Ok(link) => {
                    let Some(own) = link.mac else {
                        debug!(%ip, device = %link.name, "direct routing: the interface has no MAC");
                        continue;
                    };
                    links.insert(ifindex, (link.name.clone(), own));
                    (link.name, own)
                }
                Err(_) => continue,
            },
        };
        match netlink.neighbour_mac(ifindex, *ip).await {
            Ok(Some(mac)) => {
                out.insert(
                    *ip,
                    DrTarget {
                        mac,
                        device,
                        src_mac,
                    },
                );
            }
            _ => provoke(*ip),
        }
    }
    out
}

/// Whether `a` and `b` share the first `prefix` bits.
fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Make the kernel resolve `ip`: one empty datagram to its discard port.
fn provoke(ip: IpAddr) {
    let bind: SocketAddr = if ip.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    if let Ok(socket) = UdpSocket::bind(bind) {
        let _ = socket.set_nonblocking(true);
        let _ = socket.send_to(&[], SocketAddr::new(ip, 9));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_match_on_the_prefix() {
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(same_subnet(a, "192.0.2.200".parse().expect("ip"), 24));
        assert!(!same_subnet(a, "192.0.3.1".parse().expect("ip"), 24));
        assert!(same_subnet(a, "10.0.0.1".parse().expect("ip"), 0));
        let b: IpAddr = "2001:db8::1".parse().expect("ip");
        assert!(same_subnet(b, "2001:db8::ff".parse().expect("ip"), 64));
        assert!(!same_subnet(b, "2001:db9::1".parse().expect("ip"), 64));
        assert!(!same_subnet(a, b, 0), "families never match");
    }
}
