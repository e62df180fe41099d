//! What the data path must do: one [`ServicePlan`] per virtual server, a pure function of the
//! configuration and the services' states. Backends only apply plans.

use std::net::IpAddr;
use std::time::Duration;

use wasmalived_config::lvs::{
    Forwarding, GroupEntry, Protocol, Scheduler, ServiceAddr, VirtualServer, VirtualServerGroup,
};

use crate::schedule::{self, Fallback, Table};
use crate::service::{Member, ServiceState};

/// What traffic belongs to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Destination address range (one address: `first == last`) and port (0 = any).
    Addrs {
        /// First address.
        first: IpAddr,
        /// Last address.
        last: IpAddr,
        /// Port; 0 matches every port.
        port: u16,
    },
    /// A firewall mark set by the operator's rules.
    Fwmark(u32),
}

/// Client → real-server affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persistence {
    /// How long a client sticks after its last new connection.
    pub timeout: Duration,
    /// The client-address prefix that sticks together (32/128: one address).
    pub prefix: u8,
}

/// Where a direct-routing member's frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrTarget {
    /// The real server's MAC.
    pub mac: [u8; 6],
    /// The interface it is reached on.
    pub device: String,
    /// That interface's own MAC: forwarded frames leave with it as their source, as IPVS
    /// sends them (with the client's, a switch would learn the client behind the director).
    pub src_mac: [u8; 6],
}

/// How a service forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Destination NAT to the member.
    Nat,
    /// Direct routing: frames arriving on `ingress` are re-addressed to the member's MAC.
    Dr {
        /// The interface clients' traffic arrives on (where the VIP lives).
        ingress: String,
        /// Per member (aligned with [`ServicePlan::members`]); `None`: not resolved yet,
        /// the member gets no slots.
        targets: Vec<Option<DrTarget>>,
    },
    /// IP-in-IP tunnelling to the member (IPVS only).
    Tun,
}

/// One service as the data path must program it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    /// A stable name (`192.0.2.10:80/tcp`).
    pub name: String,
    /// Traffic that belongs to it.
    pub matches: Vec<Match>,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// IPv6 (else IPv4).
    pub ipv6: bool,
    /// How it forwards.
    pub forward: Forward,
    /// The scheduler in use on a stateless data path (after any fallback; IPVS runs
    /// `fallback.requested`).
    pub scheduler: Scheduler,
    /// The stateless data path's fallback, if any.
    pub fallback: Option<Fallback>,
    /// Affinity, if any.
    pub persistence: Option<Persistence>,
    /// The pool.
    pub members: Vec<Member>,
    /// The scheduling table over `members`.
    pub table: Table,
    /// The configured real servers at their configured weights: what the `mh` table is
    /// anchored on, so that a failure moves only the failed server's clients.
    pub anchor: Vec<Member>,
}

/// The plan of one virtual server in its current state. `groups` resolves `group NAME`.
pub fn service_plan(
    vs: &VirtualServer,
    state: &ServiceState,
    groups: &[VirtualServerGroup],
) -> ServicePlan {
    let matches = matches(&vs.addr, groups);
    let ipv6 = matches
        .iter()
        .any(|m| matches!(m, Match::Addrs { first, .. } if first.is_ipv6()))
        || vs.real_servers.first().is_some_and(|r| r.addr.is_ipv6());
    let members = state.pool(vs);
    let (scheduler, fallback) = schedule::effective(vs.scheduler);
    let anchor: Vec<Member> = vs
        .real_servers
        .iter()
        .map(|r| Member {
            addr: r.addr,
            weight: r.weight,
        })
        .collect();
    let table = schedule::plan_anchored(scheduler, &members, &anchor);
    let persistence = vs.persistence_timeout.map(|timeout| Persistence {
        timeout,
        prefix: vs
            .persistence_granularity
            .unwrap_or(if ipv6 { 128 } else { 32 }),
    });
    let forward = match vs.forwarding {
        Forwarding::Dr => Forward::Dr {
            ingress: String::new(),
            targets: vec![None; members.len()],
        },
        Forwarding::Nat => Forward::Nat,
        Forwarding::Tun => Forward::Tun,
    };
    ServicePlan {
        name: vs.label(),
        matches,
        protocol: vs.protocol,
        ipv6,
        forward,
        scheduler,
        fallback,
        persistence,
        members,
        table,
        anchor,
    }
}

/// The traffic a service address stands for.
pub fn matches(addr: &ServiceAddr, groups: &[VirtualServerGroup]) -> Vec<Match> {
    match addr {
        ServiceAddr::Socket(s) => vec![Match::Addrs {
            first: s.ip(),
            last: s.ip(),
            port: s.port(),
        }],
        ServiceAddr::Fwmark(m) => vec![Match::Fwmark(*m)],
        ServiceAddr::Group(name) => groups
            .iter()
            .find(|g| &g.name == name)
            .map(|g| {
                g.entries
                    .iter()
                    .map(|e| match e {
                        GroupEntry::Addrs { first, last, port } => Match::Addrs {
                            first: *first,
                            last: *last,
                            port: *port,
                        },
                        GroupEntry::Fwmark(m) => Match::Fwmark(*m),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl ServicePlan {
    /// The members that can take slots: weight > 0, and for direct routing a resolved MAC.
    pub fn usable(&self, member: usize) -> bool {
        self.members.get(member).is_some_and(|m| m.weight > 0)
            && match &self.forward {
                Forward::Nat | Forward::Tun => true,
                Forward::Dr { targets, .. } => targets.get(member).is_some_and(Option::is_some),
            }
    }

    /// Recompute the table after the direct-routing targets were filled in (members
    /// without a MAC get no slots).
    pub fn retable(&mut self) {
        let members: Vec<Member> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| Member {
                addr: m.addr,
                weight: if self.usable(i) { m.weight } else { 0 },
            })
            .collect();
        self.table = schedule::plan_anchored(self.scheduler, &members, &self.anchor);
    }
}
