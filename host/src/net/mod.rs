//! I/O edges: raw VRRP sockets, netlink (VIPs, link events), gratuitous ARP / unsolicited NA.

pub mod vip;
