//! rtnetlink edge: virtual addresses (add/remove), interface facts (index, state, MAC,
//! addresses) and link up/down events for `track_interface`.
//!
//! Address operations are idempotent the way a VRRP daemon needs them: adding an address
//! that is already there and deleting one that is not are both success.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Stream, StreamExt, TryStreamExt};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::{Handle, MulticastGroup};
use tokio::task::JoinHandle;

use wasmalived_config::vip::{Scope, VipSpec};

/// Longest IPv4 address label the kernel accepts (`IFNAMSIZ` - 1).
const MAX_LABEL_LEN: usize = 15;

/// Errors of the netlink edge, each with the object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be opened.
    #[error("opening rtnetlink socket: {0}")]
    Connect(#[source] std::io::Error),
    /// No interface with this name.
    #[error("no interface named {name:?}")]
    NoSuchInterface {
        /// The name looked up.
        name: String,
    },
    /// No interface with this index.
    #[error("no interface with index {ifindex}")]
    NoSuchIfindex {
        /// The index looked up.
        ifindex: u32,
    },
    /// The interface has no Ethernet (6-byte) hardware address.
    #[error("interface {ifindex} has no Ethernet MAC address")]
    NoMac {
        /// The interface.
        ifindex: u32,
    },
    /// A label longer than the kernel allows.
    #[error("label {label:?} of {addr} is longer than {MAX_LABEL_LEN} bytes")]
    LabelTooLong {
        /// The label.
        label: String,
        /// The address it was for.
        addr: IpAddr,
    },
    /// A prefix length beyond the family's width.
    #[error("prefix length {prefix_len} is invalid for {addr}")]
    BadPrefix {
        /// The address.
        addr: IpAddr,
        /// The prefix length.
        prefix_len: u8,
    },
    /// The kernel refused a request.
    #[error("{op} {target}: {source}")]
    Request {
        /// What was asked (`"adding"`, `"deleting"`, `"listing links"`...).
        op: &'static str,
        /// Object of the request (address and interface).
        target: String,
        /// The rtnetlink error.
        #[source]
        source: rtnetlink::Error,
    },
}

/// Whether an rtnetlink error carries this errno.
pub(super) fn is_errno(err: &rtnetlink::Error, errno: i32) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(msg) if msg.raw_code() == -errno)
}

/// Interface facts from one link message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// Administratively up *and* running (carrier), as keepalived's `IF_FLAGS_UP`.
    pub up: bool,
    /// Ethernet MAC, if the link has one.
    pub mac: Option<[u8; 6]>,
}

impl LinkState {
    fn from_message(msg: &LinkMessage) -> Self {
        let mut name = String::new();
        let mut mac = None;
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => name.clone_from(n),
                LinkAttribute::Address(a) => mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                _ => {}
            }
        }
        let flags = msg.header.flags;
        Self {
            ifindex: msg.header.index,
            name,
            up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
            mac,
        }
    }
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddress {
    /// The (local) address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Kernel scope.
    pub scope: AddressScope,
    /// IPv4 secondary address (not the primary of its subnet).
    pub secondary: bool,
    /// IPv6 address still in duplicate address detection.
    pub tentative: bool,
}

impl IfAddress {
    fn from_message(msg: &AddressMessage) -> Option<Self> {
        let mut address = None;
        let mut local = None;
        let mut flags = AddressFlags::empty();
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Address(a) => address = Some(*a),
                AddressAttribute::Local(a) => local = Some(*a),
                AddressAttribute::Flags(f) => flags = *f,
                _ => {}
            }
        }
        let header_flags = msg.header.flags;
        Some(Self {
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
            // point-to-point links and equal to IFA_LOCAL elsewhere (IPv6 sends only it).
            addr: local.or(address)?,
            prefix_len: msg.header.prefix_len,
            scope: msg.header.scope,
            secondary: header_flags.contains(AddressHeaderFlags::Secondary)
                || flags.contains(AddressFlags::Secondary),
            tentative: header_flags.contains(AddressHeaderFlags::Tentative)
                || flags.contains(AddressFlags::Tentative),
        })
    }
}

/// A link went up or down (or changed in another way; `up` may repeat the previous state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// Up and running; `false` also when the link was deleted.
    pub up: bool,
    /// The link was deleted.
    pub deleted: bool,
}

fn scope_of(scope: Scope) -> AddressScope {
    match scope {
        Scope::Global => AddressScope::Universe,
        Scope::Site => AddressScope::Site,
        Scope::Link => AddressScope::Link,
        Scope::Host => AddressScope::Host,
        Scope::Nowhere => AddressScope::Nowhere,
    }
}

/// The `RTM_NEWADDR`/`RTM_DELADDR` body for a VIP on interface `ifindex`, as
/// `ip addr add <addr>/<prefix> [brd B] [scope S] [label L] dev D` builds it. IPv6 VIPs get
/// `IFA_F_NODAD` as keepalived sets it, so they are usable at once. An IPv6 label is
/// ignored (the kernel has no IPv6 labels; keepalived ignores it too).
pub fn vip_message(vip: &VipSpec, ifindex: u32) -> Result<AddressMessage, NetlinkError> {
    let max_prefix = if vip.addr.is_ipv4() { 32 } else { 128 };
    if vip.prefix_len > max_prefix {
        return Err(NetlinkError::BadPrefix {
            addr: vip.addr,
            prefix_len: vip.prefix_len,
        });
    }
    let mut msg = AddressMessage::default();
    msg.header.index = ifindex;
    msg.header.prefix_len = vip.prefix_len;
    msg.header.scope = vip.scope.map_or(AddressScope::Universe, scope_of);
    msg.attributes.push(AddressAttribute::Local(vip.addr));
    msg.attributes.push(AddressAttribute::Address(vip.addr));
    match vip.addr {
        IpAddr::V4(_) => {
            msg.header.family = AddressFamily::Inet;
            if let Some(brd) = vip.brd {
                msg.attributes.push(AddressAttribute::Broadcast(brd));
            }
            if let Some(label) = &vip.label {
                if label.len() > MAX_LABEL_LEN {
                    return Err(NetlinkError::LabelTooLong {
                        label: label.clone(),
                        addr: vip.addr,
                    });
                }
                msg.attributes.push(AddressAttribute::Label(label.clone()));
            }
        }
        IpAddr::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
            if let Some(label) = &vip.label {
                tracing::warn!(addr = %vip.addr, label, "ignoring label on an IPv6 address");
            }
        }
    }
    Ok(msg)
}

/// A route-netlink connection (its I/O task runs on the current tokio runtime and is
/// aborted when this value is dropped).
#[derive(Debug)]
pub struct Netlink {
    pub(super) handle: Handle,
    task: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace. Must run inside a tokio
    /// runtime.
    pub fn new() -> Result<Self, NetlinkError> {
        let (conn, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        let task = tokio::spawn(conn);
        Ok(Self { handle, task })
    }

    /// Interface index of `name`.
    pub async fn ifindex(&self, name: &str) -> Result<u32, NetlinkError> {
        Ok(self.link_by_name(name).await?.ifindex)
    }

    /// State, name and MAC of interface `name`.
    pub async fn link_by_name(&self, name: &str) -> Result<LinkState, NetlinkError> {
        match self.link_message(name).await? {
            Some(msg) => Ok(LinkState::from_message(&msg)),
            None => Err(NetlinkError::NoSuchInterface {
                name: name.to_owned(),
            }),
        }
    }

    /// The link message of interface `name`; `None` if there is none.
    async fn link_message(&self, name: &str) -> Result<Option<LinkMessage>, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(found) => Ok(found),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
            Err(source) => Err(NetlinkError::Request {
                op: "looking up",
                target: format!("link {name:?}"),
                source,
            }),
        }
    }

    /// Every link of the namespace (a dump: the resynchronisation after an overrun).
    pub async fn links(&self) -> Result<Vec<LinkState>, NetlinkError> {
        let mut dump = self.handle.link().get().execute();
        let mut links = Vec::new();
        loop {
            match dump.try_next().await {
                Ok(Some(msg)) => links.push(LinkState::from_message(&msg)),
                Ok(None) => return Ok(links),
                Err(source) => {
                    return Err(NetlinkError::Request {
                        op: "dumping",
                        target: "links".into(),
                        source,
                    })
                }
            }
        }
    }

    /// State, name and MAC of interface `ifindex`.
    pub async fn link(&self, ifindex: u32) -> Result<LinkState, NetlinkError> {
        let mut links = self.handle.link().get().match_index(ifindex).execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(LinkState::from_message(&msg)),
            Ok(None) => Err(NetlinkError::NoSuchIfindex { ifindex }),
            Err(e) if is_errno(&e, libc::ENODEV) => Err(NetlinkError::NoSuchIfindex { ifindex }),
            Err(source) => Err(NetlinkError::Request {
                op: "looking up",
                target: format!("link {ifindex}"),
                source,
            }),
        }
    }

    /// Whether interface `ifindex` is up and running.
    pub async fn link_is_up(&self, ifindex: u32) -> Result<bool, NetlinkError> {
        Ok(self.link(ifindex).await?.up)
    }

    /// Ethernet MAC of interface `ifindex` (source of gratuitous ARP / NA).
    pub async fn mac(&self, ifindex: u32) -> Result<[u8; 6], NetlinkError> {
        self.link(ifindex)
            .await?
            .mac
            .ok_or(NetlinkError::NoMac { ifindex })
    }

    /// All addresses of interface `ifindex`, in kernel order.
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<IfAddress>, NetlinkError> {
        self.handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_filter_map(|msg| futures::future::ready(Ok(IfAddress::from_message(&msg))))
            .try_collect()
            .await
            .map_err(|source| NetlinkError::Request {
                op: "listing addresses of",
                target: format!("ifindex {ifindex}"),
                source,
            })
    }

    /// Every address of the namespace with its interface index (a dump).
    pub async fn all_addresses(&self) -> Result<Vec<(u32, IfAddress)>, NetlinkError> {
        self.handle
            .address()
            .get()
            .execute()
            .try_filter_map(|msg| {
                let ifindex = msg.header.index;
                futures::future::ready(Ok(IfAddress::from_message(&msg).map(|a| (ifindex, a))))
            })
            .try_collect()
            .await
            .map_err(|source| NetlinkError::Request {
                op: "dumping",
                target: "addresses".into(),
                source,
            })
    }

    /// The link-layer address the neighbour table holds for `ip` on `ifindex`, if it is
    /// usable (resolved, or stale but known; not incomplete or failed).
    pub async fn neighbour_mac(
        &self,
        ifindex: u32,
        ip: IpAddr,
    ) -> Result<Option<[u8; 6]>, NetlinkError> {
        use netlink_packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourState,
        };
        let family = if ip.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let entries: Vec<_> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute()
            .try_collect()
            .await
            .map_err(|source| NetlinkError::Request {
                op: "dumping",
                target: "neighbours".into(),
                source,
            })?;
        for msg in entries {
            if msg.header.ifindex != ifindex
                || matches!(
                    msg.header.state,
                    NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
                )
            {
                continue;
            }
            let mut dst = None;
            let mut lladdr = None;
            for attr in &msg.attributes {
                match attr {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                        dst = Some(IpAddr::V4(*a));
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                        dst = Some(IpAddr::V6(*a));
                    }
                    NeighbourAttribute::LinkLayerAddress(l) => {
                        lladdr = <[u8; 6]>::try_from(l.as_slice()).ok()
                    }
                    _ => {}
                }
            }
            if dst == Some(ip) {
                return Ok(lladdr);
            }
        }
        Ok(None)
    }

    /// The primary IPv4 address of `ifindex` (first non-secondary), keepalived's default
    /// advert source.
    pub async fn primary_ipv4(&self, ifindex: u32) -> Result<Option<Ipv4Addr>, NetlinkError> {
        Ok(self
            .addresses(ifindex)
            .await?
            .into_iter()
            .find_map(|a| match a.addr {
                IpAddr::V4(v4) if !a.secondary => Some(v4),
                _ => None,
            }))
    }

    /// The (non-tentative) IPv6 link-local address of `ifindex`, the mandatory VRRPv3 IPv6
    /// source (RFC 5798 §5.1.2.1).
    pub async fn ipv6_link_local(&self, ifindex: u32) -> Result<Option<Ipv6Addr>, NetlinkError> {
        Ok(self
            .addresses(ifindex)
            .await?
            .into_iter()
            .find_map(|a| match a.addr {
                IpAddr::V6(v6) if v6.is_unicast_link_local() && !a.tentative => Some(v6),
                _ => None,
            }))
    }

    async fn vip_ifindex(&self, vip: &VipSpec, default_ifindex: u32) -> Result<u32, NetlinkError> {
        match &vip.dev {
            Some(dev) => self.ifindex(dev).await,
            None => Ok(default_ifindex),
        }
    }

    /// Installs a VIP (`dev` overrides `default_ifindex`). Already present: success.
    pub async fn add_vip(&self, vip: &VipSpec, default_ifindex: u32) -> Result<(), NetlinkError> {
        let ifindex = self.vip_ifindex(vip, default_ifindex).await?;
        let msg = vip_message(vip, ifindex)?;
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix_len);
        *req.message_mut() = msg;
        match req.execute().await {
            Ok(()) => {
                tracing::debug!(addr = %vip.addr, prefix = vip.prefix_len, ifindex, "VIP added");
                Ok(())
            }
            Err(e) if is_errno(&e, libc::EEXIST) => {
                tracing::debug!(addr = %vip.addr, ifindex, "VIP already present");
                Ok(())
            }
            Err(source) => Err(NetlinkError::Request {
                op: "adding",
                target: format!("{}/{} on ifindex {ifindex}", vip.addr, vip.prefix_len),
                source,
            }),
        }
    }

    /// Removes a VIP (`dev` overrides `default_ifindex`). Absent (or interface gone):
    /// success.
    pub async fn del_vip(&self, vip: &VipSpec, default_ifindex: u32) -> Result<(), NetlinkError> {
        let ifindex = match self.vip_ifindex(vip, default_ifindex).await {
            Ok(i) => i,
            Err(NetlinkError::NoSuchInterface { name }) => {
                tracing::debug!(addr = %vip.addr, dev = name, "VIP's interface gone");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let msg = vip_message(vip, ifindex)?;
        match self.handle.address().del(msg).execute().await {
            Ok(()) => {
                tracing::debug!(addr = %vip.addr, prefix = vip.prefix_len, ifindex, "VIP removed");
                Ok(())
            }
            Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) || is_errno(&e, libc::ENODEV) => {
                tracing::debug!(addr = %vip.addr, ifindex, "VIP already absent");
                Ok(())
            }
            Err(source) => Err(NetlinkError::Request {
                op: "deleting",
                target: format!("{}/{} on ifindex {ifindex}", vip.addr, vip.prefix_len),
                source,
            }),
        }
    }
}

/// What a link is, as far as a VMAC interface cares: a macvlan (and on which interface, in
/// which mode) or something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkKind {
    /// The link's state, name and MAC.
    pub state: LinkState,
    /// `IFLA_INFO_KIND` is `macvlan`.
    pub macvlan: bool,
    /// Its lower interface (`IFLA_LINK`), for a stacked link.
    pub lower: Option<u32>,
    /// The macvlan mode is `private`.
    pub private: bool,
}

impl LinkKind {
    fn from_message(msg: &LinkMessage) -> Self {
        use netlink_packet_route::link::{InfoData, InfoKind, InfoMacVlan, LinkInfo, MacVlanMode};
        let mut kind = LinkKind {
            state: LinkState::from_message(msg),
            macvlan: false,
            lower: None,
            private: false,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::Link(index) => kind.lower = Some(*index),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(InfoKind::MacVlan) => kind.macvlan = true,
                            LinkInfo::Data(InfoData::MacVlan(data)) => {
                                kind.private |=
                                    data.contains(&InfoMacVlan::Mode(MacVlanMode::Private));
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        kind
    }
}

impl Netlink {
    /// What link `name` is; `None` if there is none.
    pub async fn link_kind(&self, name: &str) -> Result<Option<LinkKind>, NetlinkError> {
        Ok(self
            .link_message(name)
            .await?
            .map(|msg| LinkKind::from_message(&msg)))
    }

    /// Creates macvlan `name` in mode private on `lower` with MAC `mac`, down (so its
    /// per-interface settings can be made before it comes up); its index.
    pub async fn add_private_macvlan(
        &self,
        name: &str,
        lower: u32,
        mac: [u8; 6],
    ) -> Result<u32, NetlinkError> {
        use netlink_packet_route::link::MacVlanMode;
        let msg = rtnetlink::LinkMacVlan::new(name, lower, MacVlanMode::Private)
            .address(mac.to_vec())
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|source| NetlinkError::Request {
                op: "creating",
                target: format!("macvlan {name:?} on ifindex {lower}"),
                source,
            })?;
        self.ifindex(name).await
    }

    /// Sets link `ifindex` administratively up.
    pub async fn set_link_up(&self, ifindex: u32) -> Result<(), NetlinkError> {
        self.handle
            .link()
            .set(rtnetlink::LinkUnspec::new_with_index(ifindex).up().build())
            .execute()
            .await
            .map_err(|source| NetlinkError::Request {
                op: "setting up",
                target: format!("link {ifindex}"),
                source,
            })
    }

    /// Deletes link `ifindex`. Already gone: success.
    pub async fn del_link(&self, ifindex: u32) -> Result<(), NetlinkError> {
        match self.handle.link().del(ifindex).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(()),
            Err(source) => Err(NetlinkError::Request {
                op: "deleting",
                target: format!("link {ifindex}"),
                source,
            }),
        }
    }

    /// Adds IPv6 link-local `addr`/64 to `ifindex` without duplicate address detection, so
    /// it is usable as a source at once. Already present: success.
    pub async fn add_link_local(&self, ifindex: u32, addr: Ipv6Addr) -> Result<(), NetlinkError> {
        let vip = VipSpec {
            prefix_len: 64,
            scope: Some(Scope::Link),
            ..VipSpec::host(IpAddr::V6(addr))
        };
        self.add_vip(&vip, ifindex).await
    }
}

/// Link events from the kernel's `RTNLGRP_LINK` multicast group (no polling). Owns its
/// netlink socket; dropping it closes the subscription.
#[derive(Debug)]
pub struct LinkEvents {
    messages: UnboundedReceiver<(
        NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
    task: JoinHandle<()>,
}

impl Drop for LinkEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Subscribes to link changes in the calling thread's network namespace. Must run inside a
/// tokio runtime. Read the initial state with [`Netlink::link_is_up`] *after* subscribing so
/// no change falls in between. `rcvbuf` sets the socket's receive buffer (bytes; `None`:
/// the kernel default) — when events arrive faster than they are read, the kernel drops them
/// and the stream yields [`LinkUpdate::Overrun`]: the reader must re-read the link table.
pub fn link_events(rcvbuf: Option<usize>) -> Result<LinkEvents, NetlinkError> {
    let (mut conn, _handle, messages) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
            .map_err(NetlinkError::Connect)?;
    if let Some(bytes) = rcvbuf {
        use rtnetlink::sys::AsyncSocket;
        conn.socket_mut()
            .socket_mut()
            .set_rx_buf_sz(bytes)
            .map_err(NetlinkError::Connect)?;
    }
    let task = tokio::spawn(conn);
    Ok(LinkEvents { messages, task })
}

/// One item of the link event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkUpdate {
    /// A link appeared, changed or was deleted.
    Link(LinkEvent),
    /// The kernel dropped events (`ENOBUFS`): the link table must be read again.
    Overrun,
}

fn link_update(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkUpdate> {
    match msg.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
            let state = LinkState::from_message(&link);
            Some(LinkUpdate::Link(LinkEvent {
                ifindex: state.ifindex,
                name: state.name,
                up: state.up,
                deleted: false,
            }))
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
            let state = LinkState::from_message(&link);
            Some(LinkUpdate::Link(LinkEvent {
                ifindex: state.ifindex,
                name: state.name,
                up: false,
                deleted: true,
            }))
        }
        NetlinkPayload::Overrun(_) => Some(LinkUpdate::Overrun),
        _ => None,
    }
}

impl Stream for LinkEvents {
    type Item = LinkUpdate;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LinkUpdate>> {
        loop {
            match self.messages.poll_next_unpin(cx) {
                Poll::Ready(Some((msg, _))) => {
                    if let Some(update) = link_update(msg) {
                        return Poll::Ready(Some(update));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(addr: &str) -> VipSpec {
        VipSpec::host(addr.parse().unwrap())
    }

    #[test]
    fn ipv4_vip_message_carries_prefix_scope_brd_label() {
        let vip = VipSpec {
            prefix_len: 24,
            brd: Some(Ipv4Addr::new(192, 0, 2, 255)),
            scope: Some(Scope::Link),
            label: Some("eth0:vip".into()),
            ..spec("192.0.2.10")
        };
        let msg = vip_message(&vip, 7).unwrap();
        assert_eq!(msg.header.family, AddressFamily::Inet);
        assert_eq!(msg.header.index, 7);
        assert_eq!(msg.header.prefix_len, 24);
        assert_eq!(msg.header.scope, AddressScope::Link);
        assert!(msg
            .attributes
            .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(192, 0, 2, 255))));
        assert!(msg
            .attributes
            .contains(&AddressAttribute::Label("eth0:vip".into())));
        assert!(msg.attributes.contains(&AddressAttribute::Local(vip.addr)));
    }

    /// keepalived (like `ip addr add`) sets no broadcast unless `brd` is given.
    #[test]
    fn ipv4_vip_without_brd_has_no_broadcast() {
        let vip = VipSpec {
            prefix_len: 24,
            ..spec("192.0.2.10")
        };
        let msg = vip_message(&vip, 1).unwrap();
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Broadcast(_))));
        assert_eq!(msg.header.scope, AddressScope::Universe);
    }

    #[test]
    fn ipv6_vip_is_nodad_and_label_ignored() {
        let vip = VipSpec {
            label: Some("x".into()),
            ..spec("2001:db8::10")
        };
        let msg = vip_message(&vip, 3).unwrap();
        assert_eq!(msg.header.family, AddressFamily::Inet6);
        assert_eq!(msg.header.prefix_len, 128);
        assert!(msg
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Label(_))));
    }

    #[test]
    fn bad_label_and_prefix_are_errors() {
        let vip = VipSpec {
            label: Some("a-very-long-label".into()),
            ..spec("192.0.2.1")
        };
        assert!(matches!(
            vip_message(&vip, 1),
            Err(NetlinkError::LabelTooLong { .. })
        ));
        let vip = VipSpec {
            prefix_len: 33,
            ..spec("192.0.2.1")
        };
        assert!(matches!(
            vip_message(&vip, 1),
            Err(NetlinkError::BadPrefix { prefix_len: 33, .. })
        ));
    }

    #[test]
    fn link_up_needs_up_and_running() {
        let mut msg = LinkMessage::default();
        msg.header.index = 4;
        msg.header.flags = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName("eth0".into()));
        msg.attributes
            .push(LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]));
        let state = LinkState::from_message(&msg);
        assert_eq!(state.name, "eth0");
        assert_eq!(state.mac, Some([2, 0, 0, 0, 0, 1]));
        assert!(!state.up, "no carrier");
        msg.header.flags = LinkFlags::Up | LinkFlags::Running;
        assert!(LinkState::from_message(&msg).up);
    }
}
