//! Raw IP protocol 112 sockets: one per (interface, address family), shared by every VRRP
//! instance on that interface.
//!
//! This layer moves bytes and addresses; it never parses VRRP.
//!
//! # Demultiplexing contract
//! A [`VrrpSocket`] delivers every protocol-112 packet that reaches its interface: multicast
//! to 224.0.0.18 / ff02::12 and unicast to any local address. The caller routes each
//! [`Received`] to its instance by the VRID in `payload[1]` (RFC 3768 §5.3.3, RFC 5798
//! §5.2.3), and in unicast mode drops sources that are not configured peers. It validates
//! `ttl_or_hop_limit == 255` (RFC 5798 §7.1) itself too: this layer reports the value as
//! received and never drops on it, so that the drop is counted where the counters live.
//!
//! # Source addresses
//! The source of each packet is set with an `IP_PKTINFO` / `IPV6_PKTINFO` control message, not
//! with `bind()`: a raw socket bound to a local address only receives packets sent *to*
//! that address, which would lose multicast adverts. For IPv6 the source must be the
//! interface's link-local address (RFC 5798 §5.1.2.1); pass it as [`SocketConfig::src`]
//! (see [`crate::net::netlink::Netlink::ipv6_link_local`]).
//!
//! The VRRP checksum is the core's job: the payload handed to [`VrrpSocket::send`] is sent as
//! is (no `IPV6_CHECKSUM`).
//!
//! # Another link's source (heartbeat paths)
//! A heartbeat path sends the instance's adverts with the primary link's source, so peers
//! see one router. IPv4 takes any local address as a source on any link; IPv6 refuses a
//! link-local source that is not the sending link's (`IPV6_PKTINFO` fails with `EINVAL`), so
//! [`VrrpSocket::send_with_header`] builds the IPv6 header itself on a send-only
//! `IPPROTO_RAW` socket bound to the same interface.

use std::io::{self, Read};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::os::fd::AsFd;

use std::net::{Ipv6Addr, SocketAddrV6};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::sys;
use wasmalived_proto::vrrp::Family;
use wasmalived_proto::wire::ipv4::{self, Ipv4Error};
use wasmalived_proto::wire::vrrp::{
    IP_PROTO_VRRP, MCAST_V4, MCAST_V6, TOS_INTERNETWORK_CONTROL, VRRP_TTL,
};

/// Large enough for any IP datagram, so a read never truncates.
const RECV_BUF_LEN: usize = 65_536;

/// The multicast group of a family.
pub fn vrrp_group(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(MCAST_V4),
        Family::V6 => IpAddr::V6(MCAST_V6),
    }
}

/// Join `group` on `ifindex` (the group must be of `family` and multicast).
fn join_group(socket: &Socket, family: Family, ifindex: u32, group: IpAddr) -> io::Result<()> {
    match (family, group) {
        (Family::V4, IpAddr::V4(g)) if g.is_multicast() => {
            socket.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(ifindex))
        }
        (Family::V6, IpAddr::V6(g)) if g.is_multicast() => socket.join_multicast_v6(&g, ifindex),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{group} is not a {family:?} multicast group"),
        )),
    }
}

/// How to open a [`VrrpSocket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    /// The interface to bind to (`SO_BINDTOIFINDEX`) and send from.
    pub ifindex: u32,
    /// IPv4 or IPv6.
    pub family: Family,
    /// Default source address (`mcast_src_ip` / `unicast_src_ip`, or the IPv6 link-local);
    /// `None` lets the kernel choose. Must be of `family` and assigned to this host.
    pub src: Option<IpAddr>,
    /// The multicast group to join on the interface (`vrrp_mcast_group4/6`, by default
    /// 224.0.0.18 / ff02::12); `None` for pure unicast.
    pub join: Option<IpAddr>,
}

/// One received VRRP packet with its IP-level facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// IP source address, exactly as received.
    pub src: IpAddr,
    /// IP destination address (the group or one of our unicast addresses).
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received (not validated here).
    pub ttl_or_hop_limit: u8,
    /// The VRRP part (after the IPv4 header and its options; the whole IPv6 payload).
    pub payload: Vec<u8>,
    /// Interface the packet arrived on.
    pub ifindex: u32,
}

/// Why a received datagram could not be handed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The IPv4 header is malformed.
    #[error(transparent)]
    Ipv4(#[from] Ipv4Error),
    /// The datagram did not fit the receive buffer.
    #[error("datagram truncated")]
    Truncated,
    /// No `IPV6_HOPLIMIT` control message.
    #[error("no hop limit control message")]
    MissingHopLimit,
    /// No `IPV6_PKTINFO` control message.
    #[error("no packet info control message")]
    MissingPktinfo,
}

/// Errors of a [`VrrpSocket`].
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// A step of opening the socket failed.
    #[error("opening {family:?} VRRP socket on ifindex {ifindex}: {step}: {source}")]
    Open {
        /// Address family.
        family: Family,
        /// Interface.
        ifindex: u32,
        /// What was being done (`"socket"`, `"join 224.0.0.18"`, ...).
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An address of the wrong family was passed.
    #[error("{what} {addr} is not an {family:?} address")]
    WrongFamily {
        /// Which address (`"source"`, `"destination"`).
        what: &'static str,
        /// The address.
        addr: IpAddr,
        /// The socket's family.
        family: Family,
    },
    /// `sendmsg` failed.
    #[error("sending {len} bytes to {dst} on ifindex {ifindex}: {source}")]
    Send {
        /// Destination.
        dst: IpAddr,
        /// Interface.
        ifindex: u32,
        /// Payload length.
        len: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Receiving failed at the OS level (the socket is probably unusable).
    #[error("receiving on {family:?} VRRP socket of ifindex {ifindex}: {source}")]
    Recv {
        /// Address family.
        family: Family,
        /// Interface.
        ifindex: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// One datagram was dropped; the socket is fine, keep receiving.
    #[error("dropped datagram on ifindex {ifindex}: {reason}")]
    Dropped {
        /// Interface.
        ifindex: u32,
        /// Why.
        reason: Malformed,
    },
}

impl SocketError {
    /// Whether only one datagram was lost (the receive loop should count it and go on).
    pub fn is_dropped_packet(&self) -> bool {
        matches!(self, SocketError::Dropped { .. })
    }
}

/// A raw protocol-112 socket bound to one interface, for one address family.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    /// IPv6 only: the send-only `IPPROTO_RAW` socket of [`VrrpSocket::send_with_header`].
    header_included: Option<AsyncFd<Socket>>,
    ifindex: u32,
    family: Family,
    src: Option<IpAddr>,
}

/// The fixed IPv6 header's length (RFC 8200 §3).
const IPV6_HEADER_LEN: usize = 40;

/// An IPv6 header (RFC 8200 §3) for a VRRP payload of `len` bytes: traffic class 0xc0 as the
/// kernel-built packets carry, no flow label, next header 112, hop limit 255.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// |Version| Traffic Class |           Flow Label                  |
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// |                   Source Address (128 bits)                   |
/// |                Destination Address (128 bits)                 |
/// ```
fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, len: u16) -> [u8; IPV6_HEADER_LEN] {
    let mut h = [0u8; IPV6_HEADER_LEN];
    let first = (6u32 << 28) | (u32::from(TOS_INTERNETWORK_CONTROL) << 20);
    h[0..4].copy_from_slice(&first.to_be_bytes());
    h[4..6].copy_from_slice(&len.to_be_bytes());
    h[6] = IP_PROTO_VRRP;
    h[7] = VRRP_TTL;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h
}

/// The send-only `IPPROTO_RAW` IPv6 socket bound to `index` (the kernel takes the IPv6
/// header from the caller on it, and delivers nothing to it).
fn open_header_included(index: NonZeroU32) -> io::Result<AsyncFd<Socket>> {
    let socket = Socket::new(
        Domain::IPV6,
        Type::RAW.cloexec(),
        Some(Protocol::from(libc::IPPROTO_RAW)),
    )?;
    socket.set_nonblocking(true)?;
    socket.bind_device_by_index_v6(Some(index))?;
    sys::register_async(socket)
}

fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

impl VrrpSocket {
    /// Opens and configures the socket (must run inside a tokio runtime).
    ///
    /// IPv4: `SO_BINDTOIFINDEX`, `IP_TOS` 0xc0, `IP_TTL` = `IP_MULTICAST_TTL` = 255,
    /// `IP_MULTICAST_LOOP` = 0,
    /// `IP_MULTICAST_IF` = the interface, join 224.0.0.18 there (`ip_mreqn` by index).
    /// IPv6: `SO_BINDTOIFINDEX`, traffic class 0xc0, unicast/multicast hops 255,
    /// `IPV6_MULTICAST_LOOP` = 0,
    /// `IPV6_MULTICAST_IF`, join ff02::12, `IPV6_RECVHOPLIMIT`, `IPV6_RECVPKTINFO`.
    pub fn open(config: &SocketConfig) -> Result<Self, SocketError> {
        let SocketConfig {
            ifindex,
            family,
            src,
            join,
        } = *config;
        if let Some(src) = src {
            if family_of(src) != family {
                return Err(SocketError::WrongFamily {
                    what: "source",
                    addr: src,
                    family,
                });
            }
        }
        let err = |step: &'static str| {
            move |source| SocketError::Open {
                family,
                ifindex,
                step,
                source,
            }
        };
        let index = NonZeroU32::new(ifindex)
            .ok_or_else(|| err("ifindex")(io::Error::from(io::ErrorKind::InvalidInput)))?;
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        let socket = Socket::new(
            domain,
            Type::RAW.cloexec(),
            Some(Protocol::from(i32::from(IP_PROTO_VRRP))),
        )
        .map_err(err("socket"))?;
        socket.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
        match family {
            Family::V4 => {
                socket
                    .bind_device_by_index_v4(Some(index))
                    .map_err(err("SO_BINDTOIFINDEX"))?;
                socket
                    .set_ttl_v4(u32::from(VRRP_TTL))
                    .map_err(err("IP_TTL"))?;
                socket
                    .set_tos_v4(u32::from(TOS_INTERNETWORK_CONTROL))
                    .map_err(err("IP_TOS"))?;
                socket
                    .set_multicast_ttl_v4(u32::from(VRRP_TTL))
                    .map_err(err("IP_MULTICAST_TTL"))?;
                socket
                    .set_multicast_loop_v4(false)
                    .map_err(err("IP_MULTICAST_LOOP"))?;
                sys::set_multicast_if_v4_index(socket.as_fd(), ifindex)
                    .map_err(err("IP_MULTICAST_IF"))?;
            }
            Family::V6 => {
                socket
                    .bind_device_by_index_v6(Some(index))
                    .map_err(err("SO_BINDTOIFINDEX"))?;
                socket
                    .set_unicast_hops_v6(u32::from(VRRP_TTL))
                    .map_err(err("IPV6_UNICAST_HOPS"))?;
                socket
                    .set_multicast_hops_v6(u32::from(VRRP_TTL))
                    .map_err(err("IPV6_MULTICAST_HOPS"))?;
                socket
                    .set_multicast_loop_v6(false)
                    .map_err(err("IPV6_MULTICAST_LOOP"))?;
                socket
                    .set_tclass_v6(u32::from(TOS_INTERNETWORK_CONTROL))
                    .map_err(err("IPV6_TCLASS"))?;
                socket
                    .set_multicast_if_v6(ifindex)
                    .map_err(err("IPV6_MULTICAST_IF"))?;
                socket
                    .set_recv_hoplimit_v6(true)
                    .map_err(err("IPV6_RECVHOPLIMIT"))?;
                sys::set_recv_pktinfo_v6(socket.as_fd()).map_err(err("IPV6_RECVPKTINFO"))?;
            }
        }
        if let Some(group) = join {
            join_group(&socket, family, ifindex, group).map_err(err("join multicast group"))?;
        }
        let fd = sys::register_async(socket).map_err(err("register with tokio"))?;
        let header_included = match family {
            Family::V4 => None,
            Family::V6 => Some(open_header_included(index).map_err(err("IPPROTO_RAW socket"))?),
        };
        tracing::debug!(ifindex, ?family, ?src, ?join, "VRRP socket open");
        Ok(Self {
            fd,
            header_included,
            ifindex,
            family,
            src,
        })
    }

    /// Join another multicast group on this socket's interface (a reload that changed
    /// `vrrp_mcast_group4/6`).
    pub fn join(&self, group: IpAddr) -> Result<(), SocketError> {
        join_group(self.fd.get_ref(), self.family, self.ifindex, group).map_err(|source| {
            SocketError::Open {
                family: self.family,
                ifindex: self.ifindex,
                step: "join multicast group",
                source,
            }
        })
    }

    /// The interface this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The socket's address family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The default source address.
    pub fn src(&self) -> Option<IpAddr> {
        self.src
    }

    /// Sends a finished VRRP packet (checksum included) to `dst` from the configured source.
    pub async fn send(&self, payload: &[u8], dst: IpAddr) -> Result<(), SocketError> {
        self.send_from(payload, self.src, dst).await
    }

    /// Like [`send`](Self::send) with an explicit source (`None`: the kernel chooses).
    pub async fn send_from(
        &self,
        payload: &[u8],
        src: Option<IpAddr>,
        dst: IpAddr,
    ) -> Result<(), SocketError> {
        let family = self.family;
        if family_of(dst) != family {
            return Err(SocketError::WrongFamily {
                what: "destination",
                addr: dst,
                family,
            });
        }
        if let Some(src) = src.filter(|s| family_of(*s) != family) {
            return Err(SocketError::WrongFamily {
                what: "source",
                addr: src,
                family,
            });
        }
        let ifindex = self.ifindex;
        let send_err = |source| SocketError::Send {
            dst,
            ifindex,
            len: payload.len(),
            source,
        };
        let sent = self
            .fd
            .async_io(Interest::WRITABLE, |s| {
                sys::send_raw_ip(s.as_fd(), payload, src, dst, ifindex)
            })
            .await
            .map_err(send_err)?;
        if sent != payload.len() {
            return Err(send_err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short send: {sent} of {} bytes", payload.len()),
            )));
        }
        Ok(())
    }

    /// Sends a finished VRRP packet from `src`, a source address of another link (a heartbeat
    /// path's adverts carry the primary link's): IPv4 as [`send_from`](Self::send_from)
    /// (any local address is a valid source), IPv6 with the header built here, which the
    /// kernel sends as is (see the module documentation).
    pub async fn send_with_header(
        &self,
        payload: &[u8],
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(), SocketError> {
        let (IpAddr::V6(src6), IpAddr::V6(dst6), Some(raw)) = (src, dst, &self.header_included)
        else {
            return self.send_from(payload, Some(src), dst).await;
        };
        let ifindex = self.ifindex;
        let send_err = |source| SocketError::Send {
            dst,
            ifindex,
            len: payload.len(),
            source,
        };
        let len = u16::try_from(payload.len()).map_err(|_| {
            send_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "payload longer than an IPv6 packet",
            ))
        })?;
        let mut packet = Vec::with_capacity(IPV6_HEADER_LEN + payload.len());
        packet.extend_from_slice(&ipv6_header(src6, dst6, len));
        packet.extend_from_slice(payload);
        let to = SockAddr::from(SocketAddrV6::new(dst6, 0, 0, ifindex));
        let sent = raw
            .async_io(Interest::WRITABLE, |s| s.send_to(&packet, &to))
            .await
            .map_err(send_err)?;
        if sent != packet.len() {
            return Err(send_err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short send: {sent} of {} bytes", packet.len()),
            )));
        }
        Ok(())
    }

    /// Waits for the next datagram. [`SocketError::Dropped`] means one bad datagram was
    /// skipped (count it, call again); other errors concern the socket itself.
    pub async fn recv(&self) -> Result<Received, SocketError> {
        let mut buf = vec![0u8; RECV_BUF_LEN];
        let (family, ifindex) = (self.family, self.ifindex);
        let recv_err = |source| SocketError::Recv {
            family,
            ifindex,
            source,
        };
        let dropped = |reason| SocketError::Dropped { ifindex, reason };
        match family {
            Family::V4 => {
                let len = self
                    .fd
                    .async_io(Interest::READABLE, |mut s| s.read(&mut buf))
                    .await
                    .map_err(recv_err)?;
                if len >= buf.len() {
                    return Err(dropped(Malformed::Truncated));
                }
                let (header, payload) =
                    ipv4::parse(&buf[..len]).map_err(|e| dropped(Malformed::Ipv4(e)))?;
                Ok(Received {
                    src: IpAddr::V4(header.src),
                    dst: IpAddr::V4(header.dst),
                    ttl_or_hop_limit: header.ttl,
                    payload: payload.to_vec(),
                    ifindex,
                })
            }
            Family::V6 => {
                let info = self
                    .fd
                    .async_io(Interest::READABLE, |s| sys::recv_v6(s.as_fd(), &mut buf))
                    .await
                    .map_err(recv_err)?;
                if info.truncated {
                    return Err(dropped(Malformed::Truncated));
                }
                let hop_limit = info.hop_limit.ok_or(dropped(Malformed::MissingHopLimit))?;
                let (dst, arrived_on) = info.pktinfo.ok_or(dropped(Malformed::MissingPktinfo))?;
                buf.truncate(info.len);
                Ok(Received {
                    src: IpAddr::V6(info.src),
                    dst: IpAddr::V6(dst),
                    ttl_or_hop_limit: hop_limit,
                    payload: buf,
                    ifindex: arrived_on,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ipv6_header_of_a_heartbeat_advert() {
        let src: Ipv6Addr = "fe80::a".parse().unwrap();
        let dst: Ipv6Addr = "ff02::12".parse().unwrap();
        let h = ipv6_header(src, dst, 24);
        // Version 6, traffic class 0xc0, flow label 0; 24 bytes; VRRP; hop limit 255.
        assert_eq!(h[..8], [0x6c, 0x00, 0x00, 0x00, 0x00, 24, 112, 255]);
        assert_eq!(h[8..24], src.octets());
        assert_eq!(h[24..], dst.octets());
    }
}
