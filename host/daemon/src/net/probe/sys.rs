//! The only `unsafe` code of the probes: socket options and one `recvmsg` flag that neither
//! `socket2` nor `tokio` expose.
//!
//! - `ICMP_FILTER` (IPv4 raw ICMP) and `ICMP6_FILTER` (raw ICMPv6): which ICMP types the
//!   kernel queues on a raw socket at all,
//! - `IP_RECVERR` / `IPV6_RECVERR`: report every ICMP error for a UDP socket's datagrams
//!   (not only the "hard" ones) and queue them on the socket's error queue,
//! - `recvmsg(MSG_ERRQUEUE)`: read one queued error (the `sock_extended_err` control
//!   message); its bytes are parsed by safe code in `udp.rs`.
//!
//! Every function takes safe Rust types in and out; each `unsafe` block states why it is sound.

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, BorrowedFd};

/// `ICMP_FILTER` (linux/icmp.h), at level `SOL_RAW`.
const ICMP_FILTER: libc::c_int = 1;
/// `ICMPV6_FILTER` (linux/icmpv6.h), at level `IPPROTO_ICMPV6`.
const ICMPV6_FILTER: libc::c_int = 1;

/// Bytes of control data kept from one error-queue message: a `sock_extended_err` (16) and
/// the offender's `sockaddr_in6` (28), with room to spare.
pub(crate) const ERR_DATA_LEN: usize = 64;

/// Control buffer of [`recv_error_queue`]: room for one `IP_RECVERR` message (header,
/// `sock_extended_err`, offender address) with alignment, plus slack.
const CMSG_BUF_LEN: usize = 256;

/// Control buffer with the alignment `cmsghdr` needs (`size_of::<usize>()` on Linux).
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF_LEN]);

/// `socklen_t` of a `T`; every structure here is a few dozen bytes.
fn socklen_of<T>() -> libc::socklen_t {
    // Far below u32::MAX for the types used here.
    size_of::<T>() as libc::socklen_t
}

/// `setsockopt(fd, level, name, &value, sizeof value)` for a plain-data `value`.
fn setsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: T,
) -> io::Result<()> {
    // SAFETY: `fd` is a live socket (borrowed for the call); the option value points to a
    // fully initialised `T` on our stack (`Copy` plain data: an integer or an array of them)
    // and its exact size is passed as the length; the kernel only reads it.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            socklen_of::<T>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `ICMP_FILTER` on an IPv4 raw ICMP socket: `blocked` has bit `1 << type` set for each
/// ICMP type (0..31) the kernel must not queue on this socket (`struct icmp_filter`).
pub(crate) fn set_icmp_filter_v4(fd: BorrowedFd<'_>, blocked: u32) -> io::Result<()> {
    setsockopt(fd, libc::SOL_RAW, ICMP_FILTER, blocked)
}

/// `ICMP6_FILTER` on a raw ICMPv6 socket: `blocked[type >> 5]` has bit `1 << (type & 31)`
/// set for each ICMPv6 type the kernel must not queue (`struct icmp6_filter`; a set bit
/// blocks, as glibc's `ICMP6_FILTER_SETBLOCK` writes it).
pub(crate) fn set_icmp_filter_v6(fd: BorrowedFd<'_>, blocked: [u32; 8]) -> io::Result<()> {
    setsockopt(fd, libc::IPPROTO_ICMPV6, ICMPV6_FILTER, blocked)
}

/// `IP_RECVERR` (IPv4) or `IPV6_RECVERR` (IPv6) = 1.
pub(crate) fn set_recv_err(fd: BorrowedFd<'_>, v6: bool) -> io::Result<()> {
    let on: libc::c_int = 1;
    if v6 {
        setsockopt(fd, libc::SOL_IPV6, libc::IPV6_RECVERR, on)
    } else {
        setsockopt(fd, libc::SOL_IP, libc::IP_RECVERR, on)
    }
}

/// One message of a socket's error queue: the first `IP_RECVERR` / `IPV6_RECVERR` control
/// message, as bytes (a `sock_extended_err` followed by the offender's address).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueuedError {
    /// The control data (the first `len` bytes are valid).
    pub data: [u8; ERR_DATA_LEN],
    /// Valid bytes in `data`.
    pub len: usize,
}

/// `recvmsg(fd, MSG_ERRQUEUE | MSG_DONTWAIT)`: dequeues one error. `Ok(None)` when the
/// message carried no error control message; `Err(WouldBlock)` when the queue is empty.
/// The quoted datagram itself is not read (a zero-length buffer: the kernel truncates it).
pub(crate) fn recv_error_queue(fd: BorrowedFd<'_>) -> io::Result<Option<QueuedError>> {
    let mut cbuf = CmsgBuf([0; CMSG_BUF_LEN]);
    // SAFETY: all-zero bytes are a valid `msghdr` (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_BUF_LEN;
    // SAFETY: `msg` has no name and no iovec; its control pointer refers to `cbuf` with its
    // true length, which the kernel writes at most.
    let ret = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &raw mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after a successful recvmsg, msg_control/msg_controllen describe the control
    // messages the kernel wrote into `cbuf`; CMSG_FIRSTHDR/CMSG_NXTHDR stay within that
    // range and return null at its end, so `data` points into `cbuf` (the same allocation,
    // which `offset_from` requires). The data is copied out with a length bounded by
    // cmsg_len minus the header, by the room left in `cbuf` and by ERR_DATA_LEN.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let (level, kind) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            if (level, kind) == (libc::SOL_IP, libc::IP_RECVERR)
                || (level, kind) == (libc::SOL_IPV6, libc::IPV6_RECVERR)
            {
                let data = libc::CMSG_DATA(cmsg);
                let data_len =
                    ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                // Never past the end of `cbuf`, whatever cmsg_len says.
                let room = CMSG_BUF_LEN.saturating_sub(data.offset_from(cbuf.0.as_ptr()) as usize);
                let len = data_len.min(room).min(ERR_DATA_LEN);
                let mut out = QueuedError {
                    data: [0; ERR_DATA_LEN],
                    len,
                };
                std::ptr::copy_nonoverlapping(data, out.data.as_mut_ptr(), len);
                return Ok(Some(out));
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok(None)
}
