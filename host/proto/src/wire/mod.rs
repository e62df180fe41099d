//! Wire formats, smoltcp-style: each module is a length-checked view or an exactly sized
//! builder of one format, with its diagram above the type, and never indexes unchecked.
//!
//! - [`checksum`]: the Internet checksum and the IPv4/IPv6 pseudo-headers (one implementation).
//! - [`ipv4`]: the IPv4 header a raw socket delivers (one parser).
//! - [`vrrp`]: VRRPv2/v3 advertisements, with the protocol's constants.
//! - [`arp`], [`ndisc`]: gratuitous ARP and unsolicited neighbour advertisement frames.

pub mod arp;
pub mod checksum;
pub mod ipv4;
pub mod ndisc;
pub mod vrrp;

pub use checksum::Checksum;
pub use ipv4::{Ipv4Error, Ipv4Header};
pub use vrrp::{
    decode, encode, encode_with, Advert, AuthType, ChecksumForm, DecodeError, Decoded, V2Auth,
    IP_PROTO_VRRP, MCAST_V4, MCAST_V6, VRRP_TTL,
};
