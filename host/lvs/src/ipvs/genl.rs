//! The generic netlink transport: one blocking `NETLINK_GENERIC` socket, the `IPVS` family's
//! id resolved through the controller (`nlctrl`), and a request's answer gathered — an
//! acknowledgement (`NLMSG_ERROR` with code 0) or an error for a command, the messages up to
//! `NLMSG_DONE` for a dump. The backend is called from a blocking thread, so nothing here is
//! async; a receive timeout bounds a kernel that never answers.

use std::io;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK,
    NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_sys::{protocols::NETLINK_GENERIC, Socket};

use super::codec::{IpvsMessage, Reply, Request, FAMILY_NAME};

/// How long a request waits for the kernel's answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Linux errno values the backend tells apart.
pub mod errno {
    /// `EPERM`.
    pub const EPERM: i32 = 1;
    /// `ENOENT`: no such destination; on `NEW_SERVICE`, no such scheduler module.
    pub const ENOENT: i32 = 2;
    /// `ESRCH`: no such service.
    pub const ESRCH: i32 = 3;
    /// `EEXIST`.
    pub const EEXIST: i32 = 17;
    /// `EINVAL`.
    pub const EINVAL: i32 = 22;
    /// `ENOPROTOOPT`: no IPVS behind the socket option interface.
    pub const ENOPROTOOPT: i32 = 92;
    /// `EAFNOSUPPORT`: IPv6 service on a kernel built without `CONFIG_IP_VS_IPV6`.
    pub const EAFNOSUPPORT: i32 = 97;
}

/// Why talking to IPVS failed.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The kernel has no `IPVS` generic netlink family.
    #[error("this kernel has no IPVS: the generic netlink family \"IPVS\" is not registered (module ip_vs not loaded, or not built)")]
    NoIpvs,
    /// The kernel refused a request.
    #[error("{what}: {}", explain(*errno, what))]
    Kernel {
        /// What was asked (`add service TCP 192.0.2.10:80 (wlc)`).
        what: String,
        /// The errno.
        errno: i32,
    },
    /// The socket failed.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// The kernel's answer did not decode.
    #[error("{what}: undecodable reply: {message}")]
    Decode {
        /// What was asked.
        what: String,
        /// Why.
        message: String,
    },
}

impl IpvsError {
    /// The kernel's errno, if the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

fn explain(code: i32, what: &str) -> String {
    let base = io::Error::from_raw_os_error(code).to_string();
    let hint = match code {
        errno::EPERM => " (IPVS needs CAP_NET_ADMIN)",
        errno::ENOENT if what.starts_with("add service") || what.starts_with("edit service") => {
            " (the kernel has no module for this scheduler: ip_vs_<name>)"
        }
        errno::EAFNOSUPPORT => " (this kernel's IPVS has no IPv6)",
        _ => "",
    };
    format!("{base}{hint}")
}

/// A netlink socket talking to IPVS.
pub struct Genl {
    socket: Socket,
    family: u16,
    seq: u32,
}

impl std::fmt::Debug for Genl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Genl")
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

fn open_socket() -> Result<Socket, IpvsError> {
    let mut socket = Socket::new(NETLINK_GENERIC)?;
    socket.bind_auto()?;
    socket2::SockRef::from(&socket).set_read_timeout(Some(REPLY_TIMEOUT))?;
    Ok(socket)
}

impl Genl {
    /// Open a socket and resolve the `IPVS` family ([`IpvsError::NoIpvs`] without it).
    pub fn open() -> Result<Genl, IpvsError> {
        let socket = open_socket()?;
        let family = resolve(&socket, 1)?;
        Ok(Genl {
            socket,
            family,
            seq: 1,
        })
    }

    /// The resolved family id.
    pub fn family(&self) -> u16 {
        self.family
    }

    /// Send `request`; its replies (none for a plain command: the acknowledgement).
    pub fn execute(&mut self, request: &Request) -> Result<Vec<Reply>, IpvsError> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let what = request.describe();
        let frame = request.frame(self.family, self.seq);
        let mut replies = Vec::new();
        exchange::<GenlMessage<IpvsMessage>>(&self.socket, &frame, self.seq, &what, |genl| {
            Reply::decode(&genl.payload, request)
                .map(|r| replies.push(r))
                .map_err(|e| e.to_string())
        })?;
        Ok(replies)
    }
}

/// Whether the running kernel has the `IPVS` family (a controller lookup: no privilege, no
/// side effect).
pub fn ipvs_registered() -> Result<bool, IpvsError> {
    let socket = open_socket()?;
    match resolve(&socket, 1) {
        Ok(_) => Ok(true),
        Err(IpvsError::NoIpvs) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `CTRL_CMD_GETFAMILY` for `IPVS`: its id.
fn resolve(socket: &Socket, seq: u32) -> Result<u16, IpvsError> {
    let mut genl = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(FAMILY_NAME.to_owned())],
    });
    genl.finalize();
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    msg.finalize();
    let mut frame = vec![0; msg.buffer_len()];
    msg.serialize(&mut frame);
    let mut id = None;
    let what = "resolve the IPVS generic netlink family";
    let result = exchange::<GenlMessage<GenlCtrl>>(socket, &frame, seq, what, |m| {
        for nla in &m.payload.nlas {
            if let GenlCtrlAttrs::FamilyId(v) = nla {
                id = Some(*v);
            }
        }
        Ok(())
    });
    match result {
        // The controller answers ENOENT for an unknown family.
        Err(IpvsError::Kernel { errno, .. }) if errno == errno::ENOENT => Err(IpvsError::NoIpvs),
        Err(e) => Err(e),
        Ok(()) => id.ok_or_else(|| IpvsError::Decode {
            what: what.into(),
            message: "no family id in the controller's answer".into(),
        }),
    }
}

/// Send `frame` and read until its answer is complete: the acknowledgement (or error) of a
/// command (sent with `NLM_F_ACK`), `NLMSG_DONE` (or an error) of a dump. `on_message` gets
/// each data message.
fn exchange<T>(
    socket: &Socket,
    frame: &[u8],
    seq: u32,
    what: &str,
    mut on_message: impl FnMut(T) -> Result<(), String>,
) -> Result<(), IpvsError>
where
    T: NetlinkDeserializable,
{
    socket.send(frame, 0)?;
    loop {
        let (buf, _) = socket.recv_from_full().map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what}: no answer from the kernel within {REPLY_TIMEOUT:?}"),
                )
            } else {
                e
            }
        })?;
        if absorb(&buf, seq, what, &mut on_message)? {
            return Ok(());
        }
    }
}

/// Take in one datagram of answers to request `seq` (messages of other sequence numbers are
/// skipped): `Ok(true)` when the answer is complete — an acknowledgement or `NLMSG_DONE` —,
/// the kernel's errno as [`IpvsError::Kernel`] when it refused.
pub fn absorb<T>(
    buf: &[u8],
    seq: u32,
    what: &str,
    on_message: &mut impl FnMut(T) -> Result<(), String>,
) -> Result<bool, IpvsError>
where
    T: NetlinkDeserializable,
{
    let decode = |message: String| IpvsError::Decode {
        what: what.into(),
        message,
    };
    let mut offset = 0;
    while offset < buf.len() {
        let len = NetlinkBuffer::new_checked(&buf[offset..])
            .map_err(|e| decode(e.to_string()))?
            .length() as usize;
        let msg = NetlinkMessage::<T>::deserialize(&buf[offset..offset + len])
            .map_err(|e| decode(e.to_string()))?;
        offset += (len + 3) & !3;
        if msg.header.sequence_number != seq {
            continue;
        }
        match msg.payload {
            NetlinkPayload::Error(e) => {
                return match e.code {
                    None => Ok(true),
                    Some(code) => Err(IpvsError::Kernel {
                        what: what.into(),
                        errno: -code.get(),
                    }),
                };
            }
            NetlinkPayload::Done(d) if d.code < 0 => {
                return Err(IpvsError::Kernel {
                    what: what.into(),
                    errno: -d.code,
                });
            }
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::InnerMessage(inner) => on_message(inner).map_err(decode)?,
            NetlinkPayload::Overrun(_) => {
                return Err(decode("the kernel reported an overrun".into()));
            }
            // NLMSG_NOOP, or a payload kind added later: not an answer.
            _ => {}
        }
    }
    Ok(false)
}
