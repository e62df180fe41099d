//! The only `unsafe` code of the daemon's network edge: a handful of libc calls that neither
//! `socket2` nor `tokio` expose.
//!
//! - `IP_MULTICAST_IF` by interface index (`struct ip_mreqn`; socket2 only takes an address),
//! - `sendmsg` with an `IP_PKTINFO` / `IPV6_PKTINFO` control message (per-packet source
//!   address without `bind()`, which would filter multicast out of a raw socket's receive path),
//! - `recvmsg` on an IPv6 raw socket, parsing the `IPV6_HOPLIMIT` and `IPV6_PKTINFO` control
//!   messages (the IPv6 header is not delivered to raw sockets),
//! - `sendto` with a `struct sockaddr_ll` on an `AF_PACKET` socket (gratuitous ARP / NA frames),
//! - `setns(2)` to move the calling thread into a network namespace.
//!
//! Every function takes safe Rust types in and out; each `unsafe` block states why it is sound.

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Size of the control buffer for [`recv_v6`]: room for `IPV6_HOPLIMIT` (an `int`) and
/// `IPV6_PKTINFO` (a `struct in6_pktinfo`) with alignment, plus slack for any other
/// ancillary data the kernel may add.
const CMSG_BUF_LEN: usize = 256;

/// `socklen_t` of a `T`; all the structures here are a few dozen bytes.
fn socklen_of<T>() -> libc::socklen_t {
    // The structures passed to the kernel here are all far below u32::MAX bytes.
    size_of::<T>() as libc::socklen_t
}

/// Converts a libc `-1` return into the thread's `errno` error.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same as [`check`] for `ssize_t`-returning calls; returns the byte count.
fn check_len(ret: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// `setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, ip_mreqn { imr_ifindex })`: send IPv4
/// multicast out of the interface with this index.
pub(crate) fn set_multicast_if_v4_index(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let ifindex = libc::c_int::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex,
    };
    // SAFETY: `fd` is a live socket (borrowed for the call); the option value points to a
    // fully initialised `ip_mreqn` on our stack whose exact size is passed as the length.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&raw const mreqn).cast(),
            socklen_of::<libc::ip_mreqn>(),
        )
    };
    check(ret).map(drop)
}

fn in_addr(addr: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from_ne_bytes(addr.octets()),
    }
}

fn in6_addr(addr: Ipv6Addr) -> libc::in6_addr {
    libc::in6_addr {
        s6_addr: addr.octets(),
    }
}

/// Control buffer with the alignment `cmsghdr` needs (the kernel's `CMSG_ALIGN` is
/// `size_of::<usize>()`).
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF_LEN]);

/// Sends `payload` to `dst` on a raw IP socket bound to interface `ifindex`. With `src`,
/// an `IP_PKTINFO` / `IPV6_PKTINFO` control message selects the source address (it must be
/// an address of this host, as with `bind()`). IPv6 destinations get `sin6_scope_id =
/// ifindex` so link-local peers and `ff02::12` resolve on the right link.
pub(crate) fn send_raw_ip(
    fd: BorrowedFd<'_>,
    payload: &[u8],
    src: Option<IpAddr>,
    dst: IpAddr,
    ifindex: u32,
) -> io::Result<usize> {
    let c_ifindex = libc::c_int::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    // SAFETY: all-zero bytes are a valid value for these plain C structs.
    let mut sin: libc::sockaddr_in = unsafe { zeroed() };
    // SAFETY: as above.
    let mut sin6: libc::sockaddr_in6 = unsafe { zeroed() };
    let (name, namelen): (*mut libc::c_void, libc::socklen_t) = match dst {
        IpAddr::V4(d) => {
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr = in_addr(d);
            ((&raw mut sin).cast(), socklen_of::<libc::sockaddr_in>())
        }
        IpAddr::V6(d) => {
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr = in6_addr(d);
            sin6.sin6_scope_id = ifindex;
            ((&raw mut sin6).cast(), socklen_of::<libc::sockaddr_in6>())
        }
    };
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    let mut cbuf = CmsgBuf([0; CMSG_BUF_LEN]);
    // SAFETY: all-zero bytes are a valid `msghdr` (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = name;
    msg.msg_namelen = namelen;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    if let Some(src) = src {
        let (level, kind, data_len) = match src {
            IpAddr::V4(_) => (
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                size_of::<libc::in_pktinfo>(),
            ),
            IpAddr::V6(_) => (
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                size_of::<libc::in6_pktinfo>(),
            ),
        };
        let data_len = u32::try_from(data_len).unwrap_or(u32::MAX);
        // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic on the length.
        let (space, len) = unsafe { (libc::CMSG_SPACE(data_len), libc::CMSG_LEN(data_len)) };
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = space as usize;
        // SAFETY: msg_control points to `cbuf` (CMSG_BUF_LEN bytes, 8-aligned, zeroed) and
        // msg_controllen = CMSG_SPACE(data) <= CMSG_BUF_LEN, so CMSG_FIRSTHDR returns a
        // non-null, aligned pointer into `cbuf` with room for the header and the data that
        // we write below (write_unaligned for the payload struct, whatever its alignment).
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            if cmsg.is_null() {
                return Err(io::Error::other("control buffer too small"));
            }
            (*cmsg).cmsg_level = level;
            (*cmsg).cmsg_type = kind;
            (*cmsg).cmsg_len = len as usize;
            let data = libc::CMSG_DATA(cmsg);
            match src {
                IpAddr::V4(s) => {
                    let info = libc::in_pktinfo {
                        ipi_ifindex: c_ifindex,
                        ipi_spec_dst: in_addr(s),
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    data.cast::<libc::in_pktinfo>().write_unaligned(info);
                }
                IpAddr::V6(s) => {
                    let info = libc::in6_pktinfo {
                        ipi6_addr: in6_addr(s),
                        ipi6_ifindex: ifindex,
                    };
                    data.cast::<libc::in6_pktinfo>().write_unaligned(info);
                }
            }
        }
    }
    // SAFETY: `msg` points to live locals (address, one iovec over `payload`, optional control
    // buffer) that outlive the call; the kernel only reads them.
    let ret = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, 0) };
    check_len(ret)
}

/// What [`recv_v6`] learnt about one datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecvV6 {
    /// Bytes written to the buffer.
    pub len: usize,
    /// The datagram did not fit the buffer.
    pub truncated: bool,
    /// Source address (from the socket address).
    pub src: Ipv6Addr,
    /// From `IPV6_HOPLIMIT`, if the kernel delivered it.
    pub hop_limit: Option<u8>,
    /// Destination address and arrival interface from `IPV6_PKTINFO`.
    pub pktinfo: Option<(Ipv6Addr, u32)>,
}

/// `recvmsg` on an IPv6 raw socket with `IPV6_RECVHOPLIMIT` and `IPV6_RECVPKTINFO` enabled.
pub(crate) fn recv_v6(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<RecvV6> {
    // SAFETY: all-zero bytes are a valid `sockaddr_in6`.
    let mut from: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = CmsgBuf([0; CMSG_BUF_LEN]);
    // SAFETY: all-zero bytes are a valid `msghdr`.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut from).cast();
    msg.msg_namelen = socklen_of::<libc::sockaddr_in6>();
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_BUF_LEN;
    // SAFETY: every pointer in `msg` refers to a live local or to `buf`, with its true length;
    // the kernel writes at most those many bytes into each.
    let ret = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, 0) };
    let len = check_len(ret)?;
    let mut out = RecvV6 {
        len,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        src: Ipv6Addr::from(from.sin6_addr.s6_addr),
        hop_limit: None,
        pktinfo: None,
    };
    // SAFETY: after a successful recvmsg, msg_control/msg_controllen describe the control
    // messages the kernel wrote into `cbuf`; CMSG_FIRSTHDR/CMSG_NXTHDR stay within that range
    // and return null at its end. Each payload is read with read_unaligned after checking
    // that cmsg_len covers it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            let data_len = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                    if data_len >= size_of::<libc::c_int>() =>
                {
                    let hl = data.cast::<libc::c_int>().read_unaligned();
                    out.hop_limit = u8::try_from(hl).ok();
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if data_len >= size_of::<libc::in6_pktinfo>() =>
                {
                    let info = data.cast::<libc::in6_pktinfo>().read_unaligned();
                    out.pktinfo = Some((Ipv6Addr::from(info.ipi6_addr.s6_addr), info.ipi6_ifindex));
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok(out)
}

/// Sends one complete Ethernet frame out of interface `ifindex` on an `AF_PACKET`/`SOCK_RAW`
/// socket (`sendto` with a `sockaddr_ll`; the frame carries its own Ethernet header).
pub(crate) fn send_frame(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    ethertype: u16,
    dst_mac: [u8; 6],
    frame: &[u8],
) -> io::Result<usize> {
    let ifindex = libc::c_int::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    // SAFETY: all-zero bytes are a valid `sockaddr_ll`.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = ethertype.to_be();
    sll.sll_ifindex = ifindex;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&dst_mac);
    // SAFETY: `frame` is a live slice of `frame.len()` bytes and `sll` a fully initialised
    // `sockaddr_ll` whose exact size is passed; the kernel only reads both.
    let ret = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const sll).cast(),
            socklen_of::<libc::sockaddr_ll>(),
        )
    };
    check_len(ret)
}

/// `setns(fd, CLONE_NEWNET)`: moves the calling thread (only it) into the network namespace
/// that `fd` (an open `/run/netns/<name>` or `/proc/<pid>/ns/net`) refers to.
pub(crate) fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns only reads the descriptor number; it changes this thread's namespace,
    // which affects sockets created afterwards by this thread and nothing memory-related.
    let ret = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    check(ret).map(drop)
}

/// `setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)`: deliver destination address and
/// arrival interface with each datagram.
pub(crate) fn set_recv_pktinfo_v6(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `fd` is a live socket; the option value is an `int` on our stack and its size
    // is passed as the length.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVPKTINFO,
            (&raw const on).cast(),
            socklen_of::<libc::c_int>(),
        )
    };
    check(ret).map(drop)
}

/// Registers an owned socket with the current tokio reactor (read and write interest).
/// Fails instead of panicking when called outside a runtime.
pub(crate) fn register_async(
    socket: socket2::Socket,
) -> io::Result<tokio::io::unix::AsyncFd<socket2::Socket>> {
    use tokio::io::Interest;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("not inside a tokio runtime"));
    }
    // SAFETY: `socket2::Socket` owns its descriptor: `as_raw_fd()` always returns the same
    // open fd, which is closed only when the `Socket` is dropped, i.e. when the `AsyncFd`
    // that takes ownership of it here is dropped (or gives it back with `into_inner`).
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(
            socket,
            Interest::READABLE | Interest::WRITABLE,
        )
    };
    fd.map_err(io::Error::from)
}

/// Registers a pidfd (an event-driven check's watch on a process, [`crate::checks::wake`])
/// with the current tokio reactor, for reading: it polls readable once the process exits.
pub(crate) fn register_pidfd(
    pidfd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    register_readable(pidfd)
}

/// Registers an inotify descriptor (an event-driven check's watch on paths,
/// [`crate::checks::wake`]) with the current tokio reactor, for reading: it polls readable
/// once an event is queued.
pub(crate) fn register_inotify(
    inotify: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    register_readable(inotify)
}

/// Registers a timerfd (the protocol timer, [`crate::daemon::precise_timer`]) with the
/// current tokio reactor, for reading: it polls readable once it expires.
pub(crate) fn register_timerfd(
    timerfd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    register_readable(timerfd)
}

fn register_readable(
    fd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use tokio::io::Interest;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("not inside a tokio runtime"));
    }
    // SAFETY: an `OwnedFd` owns its descriptor: `as_raw_fd()` always returns the same open
    // fd, closed only when the `OwnedFd` is dropped, i.e. with the `AsyncFd` that takes
    // ownership of it here.
    let fd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, Interest::READABLE) };
    fd.map_err(io::Error::from)
}

/// Registers an owned netlink socket (the process connector, [`crate::procs::connector`])
/// with the current tokio reactor, for reading.
pub(crate) fn register_netlink(
    socket: netlink_sys::Socket,
) -> io::Result<tokio::io::unix::AsyncFd<netlink_sys::Socket>> {
    use tokio::io::Interest;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("not inside a tokio runtime"));
    }
    // SAFETY: `netlink_sys::Socket` owns its descriptor: `as_raw_fd()` always returns the
    // same open fd, closed only when the `Socket` is dropped, i.e. with the `AsyncFd` that
    // takes ownership of it here.
    let fd =
        unsafe { tokio::io::unix::AsyncFd::register_with_interest(socket, Interest::READABLE) };
    fd.map_err(io::Error::from)
}
