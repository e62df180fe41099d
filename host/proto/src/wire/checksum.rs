//! The Internet checksum (RFC 1071) and the IPv4 / IPv6 pseudo-headers it covers for upper-layer
//! protocols (RFC 791, RFC 8200 §8.1) — the one implementation the VRRP codec and the
//! neighbour-advertisement builder share.

use std::net::{IpAddr, Ipv6Addr};

/// A running one's-complement sum of big-endian 16-bit words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u32,
}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum { sum: 0 }
    }

    /// The pseudo-header of an upper-layer message of `len` bytes with protocol number
    /// `protocol` from `src` to `dst`: the IPv4 form (RFC 791: addresses, zero, protocol,
    /// 16-bit length) when both are IPv4, else the IPv6 form (RFC 8200 §8.1: addresses,
    /// 32-bit length, three zero octets, next header).
    pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> Self {
        let mut sum = Checksum::new();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum.add(&s.octets());
                sum.add(&d.octets());
                sum.add(&[0, protocol]);
                sum.add(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
            }
            _ => {
                sum.add(&to_v6(src).octets());
                sum.add(&to_v6(dst).octets());
                sum.add(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
                sum.add(&[0, 0, 0, protocol]);
            }
        }
        sum
    }

    /// Add `bytes` as big-endian words; an odd tail is padded with a zero octet. Only the last
    /// slice added may have odd length.
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        let mut chunks = bytes.chunks_exact(2);
        for w in &mut chunks {
            if let [hi, lo] = *w {
                self.sum = self
                    .sum
                    .wrapping_add(u32::from(u16::from_be_bytes([hi, lo])));
            }
        }
        if let [last] = *chunks.remainder() {
            self.sum = self
                .sum
                .wrapping_add(u32::from(u16::from_be_bytes([last, 0])));
        }
        // Fold as we go so the accumulator can never wrap for any realistic length.
        self.sum = (self.sum & 0xffff) + (self.sum >> 16);
        self
    }

    /// The checksum: the folded sum, complemented.
    pub fn finish(&self) -> u16 {
        let mut sum = self.sum;
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(u16::try_from(sum).unwrap_or(u16::MAX))
    }

    /// The checksum of `msg` with its 2-byte checksum field at `field` taken as zero, on top
    /// of this (pseudo-header) sum.
    pub fn of_message(mut self, msg: &[u8], field: usize) -> u16 {
        self.add(msg.get(..field).unwrap_or(msg));
        self.add(msg.get(field + 2..).unwrap_or(&[]));
        self.finish()
    }
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement 220d).
        let mut c = Checksum::new();
        c.add(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(c.finish(), !0xddf2);
    }

    #[test]
    fn a_message_carrying_its_checksum_sums_to_zero() {
        let mut msg = vec![0x45, 0x00, 0x00, 0x1c, 0xab, 0xcd, 0x00, 0x00, 0x12];
        let sum = Checksum::new().of_message(&msg, 6);
        msg[6..8].copy_from_slice(&sum.to_be_bytes());
        let mut c = Checksum::new();
        c.add(&msg);
        assert_eq!(c.finish(), 0);
    }
}
