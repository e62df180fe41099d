//! The process connector's messages (`<linux/connector.h>`, `<linux/cn_proc.h>`): a length-
//! checked decoder of the events the kernel multicasts, and the subscription request.
//!
//! ```text
//!  0               4       6       8              12              16
//! +---------------+-------+-------+---------------+---------------+
//! | nlmsg_len     | type  | flags | nlmsg_seq     | nlmsg_pid     |  struct nlmsghdr
//! +---------------+-------+-------+---------------+---------------+
//! | id.idx (1)    | id.val (1)    | seq           | ack           |  struct cn_msg
//! +-------+-------+---------------+---------------+---------------+
//! | len   | flags | what          | cpu           | timestamp_ns  …  struct proc_event
//! +-------+-------+---------------+---------------+---------------+
//!   … timestamp_ns| event_data (the union, by `what`)              …
//! ```
//!
//! `struct proc_event` starts at byte 36 of the datagram: the kernel builds it at a 4-byte
//! offset so that the 8-byte-aligned `timestamp_ns` … is not (keepalived's
//! `handle_proc_ev` explains it). Decoding by byte offsets makes that irrelevant. All fields
//! are in host byte order; one datagram carries one message.

use thiserror::Error;

/// `CN_IDX_PROC`, `CN_VAL_PROC`: the process connector's id (and its multicast group).
pub const CN_IDX_PROC: u32 = 1;
/// See [`CN_IDX_PROC`].
pub const CN_VAL_PROC: u32 = 1;

const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
/// `what`, `cpu`, `timestamp_ns`.
const EVENT_HEADER_LEN: usize = 16;
const EVENT_DATA_AT: usize = NLMSG_HDRLEN + CN_MSG_LEN + EVENT_HEADER_LEN;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `TASK_COMM_LEN`.
const COMM_LEN: usize = 16;

/// `enum what` of `struct proc_event`.
mod what {
    pub const NONE: u32 = 0;
    pub const FORK: u32 = 0x0000_0001;
    pub const EXEC: u32 = 0x0000_0002;
    pub const COMM: u32 = 0x0000_0200;
    pub const EXIT: u32 = 0x8000_0000;
}

/// `enum proc_cn_mcast_op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McastOp {
    /// `PROC_CN_MCAST_LISTEN`: start sending events.
    Listen = 1,
    /// `PROC_CN_MCAST_IGNORE`: this listener stops.
    Ignore = 2,
}

/// One decoded process event. PIDs are the kernel's: `pid` is the thread id, `tgid` the
/// process id (they are equal for a process, not for a thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcEvent {
    /// The answer to a subscription (`PROC_EVENT_NONE` with `ack` set); `err` 0 is success.
    Ack {
        /// `cn_msg.ack`: the `ack` of the request it answers, plus one. The kernel
        /// multicasts every listener's acknowledgement to all of them; this tells them
        /// apart (it overwrites `seq` with its per-CPU counter).
        ack: u32,
        /// The kernel's error code.
        err: u32,
    },
    /// A process or thread was created.
    Fork {
        /// Thread id of the parent.
        parent_pid: u32,
        /// Process id of the parent.
        parent_tgid: u32,
        /// Thread id of the child.
        child_pid: u32,
        /// Process id of the child (≠ `child_pid` for a new thread).
        child_tgid: u32,
    },
    /// A thread executed a new program.
    Exec {
        /// Thread id.
        pid: u32,
        /// Process id.
        tgid: u32,
    },
    /// A thread changed its name (`prctl(PR_SET_NAME)`).
    Comm {
        /// Thread id.
        pid: u32,
        /// Process id.
        tgid: u32,
        /// The new name.
        comm: String,
    },
    /// A thread exited.
    Exit {
        /// Thread id.
        pid: u32,
        /// Process id.
        tgid: u32,
        /// The exit code, as `wait` reports it.
        exit_code: u32,
        /// The signal sent to the parent.
        exit_signal: u32,
    },
    /// An event kind nobody here uses (uid, gid, sid, ptrace, coredump, …).
    Other {
        /// Its `what`.
        what: u32,
    },
}

/// A process-connector message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The per-CPU sequence number (`cn_msg.seq`).
    pub seq: u32,
    /// The CPU that sent it.
    pub cpu: u32,
    /// The event.
    pub event: ProcEvent,
}

/// Why a datagram is not a process-connector message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Shorter than its headers or than `nlmsg_len` says.
    #[error("truncated: {have} bytes, {need} needed for {what}")]
    Truncated {
        /// The part that did not fit.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes there.
        have: usize,
    },
    /// A connector message of another connector.
    #[error("connector message of id {idx}:{val}, not the process connector's")]
    OtherConnector {
        /// `cn_msg.id.idx`.
        idx: u32,
        /// `cn_msg.id.val`.
        val: u32,
    },
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn need(b: &[u8], len: usize, what: &'static str) -> Result<(), DecodeError> {
    if b.len() < len {
        Err(DecodeError::Truncated {
            what,
            need: len,
            have: b.len(),
        })
    } else {
        Ok(())
    }
}

/// Decodes one received datagram; `Ok(None)` for netlink no-op and error messages (which
/// keepalived skips too).
pub fn decode(datagram: &[u8]) -> Result<Option<Message>, DecodeError> {
    need(datagram, NLMSG_HDRLEN, "struct nlmsghdr")?;
    let len = u32_at(datagram, 0) as usize;
    need(datagram, len, "nlmsg_len")?;
    let b = &datagram[..len.max(NLMSG_HDRLEN)];
    let kind = u16_at(b, 4);
    if kind == NLMSG_NOOP || kind == NLMSG_ERROR {
        return Ok(None);
    }
    need(b, NLMSG_HDRLEN + CN_MSG_LEN, "struct cn_msg")?;
    let cn = NLMSG_HDRLEN;
    let (idx, val) = (u32_at(b, cn), u32_at(b, cn + 4));
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC) {
        return Err(DecodeError::OtherConnector { idx, val });
    }
    let seq = u32_at(b, cn + 8);
    let ack = u32_at(b, cn + 12);
    need(b, EVENT_DATA_AT, "struct proc_event")?;
    let ev = NLMSG_HDRLEN + CN_MSG_LEN;
    let what = u32_at(b, ev);
    let cpu = u32_at(b, ev + 4);
    let data = EVENT_DATA_AT;
    let event = match what {
        what::NONE if ack != 0 => {
            need(b, data + 4, "ack event")?;
            ProcEvent::Ack {
                ack,
                err: u32_at(b, data),
            }
        }
        what::FORK => {
            need(b, data + 16, "fork event")?;
            ProcEvent::Fork {
                parent_pid: u32_at(b, data),
                parent_tgid: u32_at(b, data + 4),
                child_pid: u32_at(b, data + 8),
                child_tgid: u32_at(b, data + 12),
            }
        }
        what::EXEC => {
            need(b, data + 8, "exec event")?;
            ProcEvent::Exec {
                pid: u32_at(b, data),
                tgid: u32_at(b, data + 4),
            }
        }
        what::COMM => {
            need(b, data + 8 + COMM_LEN, "comm event")?;
            let raw = &b[data + 8..data + 8 + COMM_LEN];
            let end = raw.iter().position(|&c| c == 0).unwrap_or(COMM_LEN);
            ProcEvent::Comm {
                pid: u32_at(b, data),
                tgid: u32_at(b, data + 4),
                comm: String::from_utf8_lossy(&raw[..end]).into_owned(),
            }
        }
        what::EXIT => {
            need(b, data + 16, "exit event")?;
            ProcEvent::Exit {
                pid: u32_at(b, data),
                tgid: u32_at(b, data + 4),
                exit_code: u32_at(b, data + 8),
                exit_signal: u32_at(b, data + 12),
            }
        }
        other => ProcEvent::Other { what: other },
    };
    Ok(Some(Message { seq, cpu, event }))
}

/// The datagram that subscribes (or unsubscribes) this socket to process events: a
/// `NLMSG_DONE` netlink message from `port`, carrying a `cn_msg` with the operation. `ack`
/// tells its acknowledgement from other listeners' (the kernel answers with `ack` + 1).
pub fn mcast_request(op: McastOp, port: u32, ack: u32) -> [u8; NLMSG_HDRLEN + CN_MSG_LEN + 4] {
    let mut b = [0u8; NLMSG_HDRLEN + CN_MSG_LEN + 4];
    let total = b.len() as u32;
    b[0..4].copy_from_slice(&total.to_ne_bytes());
    b[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
    b[12..16].copy_from_slice(&port.to_ne_bytes());
    let cn = NLMSG_HDRLEN;
    b[cn..cn + 4].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
    b[cn + 4..cn + 8].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
    b[cn + 12..cn + 16].copy_from_slice(&ack.to_ne_bytes());
    b[cn + 16..cn + 18].copy_from_slice(&4u16.to_ne_bytes());
    b[cn + 20..cn + 24].copy_from_slice(&(op as u32).to_ne_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram laid out as the kernel's `cn_proc.c` sends it: nlmsghdr, cn_msg, then
    /// `proc_event` { what, cpu, timestamp_ns, event_data }.
    fn datagram(what: u32, ack: u32, data: &[u32], comm: Option<&[u8]>) -> Vec<u8> {
        let mut event = Vec::new();
        event.extend_from_slice(&what.to_ne_bytes());
        event.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        event.extend_from_slice(&123_456_789u64.to_ne_bytes()); // timestamp_ns
        for d in data {
            event.extend_from_slice(&d.to_ne_bytes());
        }
        if let Some(c) = comm {
            let mut field = [0u8; 16];
            field[..c.len()].copy_from_slice(c);
            event.extend_from_slice(&field);
        }
        // The union is 24 bytes (`exit`); the kernel sends the whole struct.
        while event.len() < 16 + 24 {
            event.push(0);
        }
        let mut cn = Vec::new();
        cn.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        cn.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        cn.extend_from_slice(&77u32.to_ne_bytes()); // seq
        cn.extend_from_slice(&ack.to_ne_bytes());
        cn.extend_from_slice(&(event.len() as u16).to_ne_bytes());
        cn.extend_from_slice(&0u16.to_ne_bytes());
        let total = 16 + cn.len() + event.len();
        let mut b = Vec::new();
        b.extend_from_slice(&(total as u32).to_ne_bytes());
        b.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend(cn);
        b.extend(event);
        b
    }

    fn event(b: &[u8]) -> ProcEvent {
        let m = decode(b).expect("decodes").expect("a message");
        assert_eq!((m.seq, m.cpu), (77, 1));
        m.event
    }

    #[test]
    fn fork_exec_comm_exit_and_ack() {
        assert_eq!(
            event(&datagram(what::FORK, 0, &[100, 100, 101, 101], None)),
            ProcEvent::Fork {
                parent_pid: 100,
                parent_tgid: 100,
                child_pid: 101,
                child_tgid: 101
            }
        );
        assert_eq!(
            event(&datagram(what::EXEC, 0, &[200, 200], None)),
            ProcEvent::Exec {
                pid: 200,
                tgid: 200
            }
        );
        assert_eq!(
            event(&datagram(what::COMM, 0, &[300, 299], Some(b"nginx"))),
            ProcEvent::Comm {
                pid: 300,
                tgid: 299,
                comm: "nginx".into()
            }
        );
        assert_eq!(
            event(&datagram(what::EXIT, 0, &[400, 400, 9, 17], None)),
            ProcEvent::Exit {
                pid: 400,
                tgid: 400,
                exit_code: 9,
                exit_signal: 17
            }
        );
        assert_eq!(
            event(&datagram(what::NONE, 1, &[0], None)),
            ProcEvent::Ack { ack: 1, err: 0 }
        );
        assert_eq!(
            event(&datagram(0x40, 0, &[1, 1, 0, 0], None)),
            ProcEvent::Other { what: 0x40 }
        );
    }

    #[test]
    fn a_full_length_comm_has_no_nul() {
        assert_eq!(
            event(&datagram(what::COMM, 0, &[1, 1], Some(b"0123456789abcdef"))),
            ProcEvent::Comm {
                pid: 1,
                tgid: 1,
                comm: "0123456789abcdef".into()
            }
        );
    }

    #[test]
    fn short_datagrams_are_errors_never_panics() {
        let full = datagram(what::FORK, 0, &[1, 2, 3, 4], None);
        for len in 0..full.len() {
            let mut cut = full[..len].to_vec();
            if len >= 4 {
                // A consistent nlmsg_len, so each header's own check is reached.
                cut[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
            }
            let got = decode(&cut);
            if len < 16 + 20 + 16 + 16 {
                assert!(
                    matches!(got, Err(DecodeError::Truncated { .. })),
                    "{len}: {got:?}"
                );
            }
        }
        // nlmsg_len beyond the datagram.
        let mut long = full.clone();
        long[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(matches!(
            decode(&long),
            Err(DecodeError::Truncated {
                what: "nlmsg_len",
                ..
            })
        ));
    }

    #[test]
    fn other_connectors_and_netlink_noops() {
        let mut b = datagram(what::EXEC, 0, &[1, 1], None);
        b[16..20].copy_from_slice(&5u32.to_ne_bytes());
        assert_eq!(
            decode(&b),
            Err(DecodeError::OtherConnector { idx: 5, val: 1 })
        );
        let mut noop = datagram(what::EXEC, 0, &[1, 1], None);
        noop[4..6].copy_from_slice(&NLMSG_NOOP.to_ne_bytes());
        assert_eq!(decode(&noop), Ok(None));
    }

    /// keepalived's `set_proc_ev_listen`: nlmsghdr (len 40, NLMSG_DONE, our port), cn_msg
    /// (CN_IDX_PROC/CN_VAL_PROC, len 4), then the operation.
    #[test]
    fn the_subscription_request() {
        let b = mcast_request(McastOp::Listen, 4242, 0xabcd);
        assert_eq!(b.len(), 40);
        assert_eq!(u32_at(&b, 0), 40);
        assert_eq!(u16_at(&b, 4), NLMSG_DONE);
        assert_eq!(u32_at(&b, 12), 4242);
        assert_eq!((u32_at(&b, 16), u32_at(&b, 20)), (1, 1));
        assert_eq!((u32_at(&b, 24), u32_at(&b, 28)), (0, 0xabcd), "seq, ack");
        assert_eq!(u16_at(&b, 32), 4);
        assert_eq!(u32_at(&b, 36), 1);
        assert_eq!(u32_at(&mcast_request(McastOp::Ignore, 0, 1), 36), 2);
    }
}
