//! The IPVS backend: the virtual services live in the kernel's IPVS, programmed over generic
//! netlink as keepalived and ipvsadm do, so the operator's `ipvsadm -Ln` shows them.
//!
//! - [`codec`]: the messages (the UAPI layout, golden-tested byte for byte).
//! - [`genl`]: the socket, the family lookup, acknowledgements and dumps.
//! - [`sync`]: the kernel's connection-sync daemons (`lvs_sync_daemon`).
//!
//! Every apply compares the plans with what the kernel lists (a dump of the services, and of
//! the destinations of each service we want) and sends only the difference: services added,
//! edited (scheduler, persistence) or deleted; destinations added, edited (weight,
//! forwarding) or deleted. IPVS has no transactions, so an apply is a sequence of commands;
//! one that fails stops it, and the next apply (the director retries) starts again from the
//! kernel's state. A member at weight 0 (`inhibit_on_failure`, `sorry_server_inhibit`) stays
//! a destination at weight 0: its connections drain.
//!
//! Ownership: the backend deletes only the services it created or took over (a wanted
//! service that already existed, e.g. a killed run's, is taken over and made exactly the
//! plan), as keepalived removes only its own. IPVS itself is stateful, so every scheduler
//! (`wlc`, `lc`, `sed`, …) runs as configured and `lb_kind TUN` forwards by IP-in-IP: the
//! plans' stateless scheduling tables are not used here.

pub mod codec;
pub mod genl;
pub mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use wasmalived_config::lvs::{Forwarding, Protocol, ServiceAddr, VirtualServer};

use crate::backend::{Backend, BackendError, Review};
use crate::plan::{Forward, Match, ServicePlan};
use crate::select::BackendKind;
use codec::{
    Dest, DestEntry, Netmask, Reply, Request, Service, ServiceKey, FWD_DROUTE, FWD_MASQ,
    FWD_TUNNEL, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, SVC_F_HASHED, SVC_F_PERSISTENT,
};
pub use genl::{Genl, IpvsError};
pub use sync::{SyncDaemon, SyncState};

/// The backend's name.
pub const NAME: &str = "ipvs";

/// Most IPVS services one plan may expand to (a `virtual_server_group` range is one service
/// per address, as keepalived programs it).
pub const MAX_SERVICES_PER_PLAN: usize = 65_536;

/// What the backend needs of the kernel: one request, its replies. [`Genl`] is the real one;
/// the tests use an in-memory IPVS with the kernel's error semantics.
pub trait Kernel: Send {
    /// Send `request`; its decoded replies (none for a command: it was acknowledged).
    fn execute(&mut self, request: &Request) -> Result<Vec<Reply>, IpvsError>;
}

impl Kernel for Genl {
    fn execute(&mut self, request: &Request) -> Result<Vec<Reply>, IpvsError> {
        Genl::execute(self, request)
    }
}

/// One service as the plans want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The service.
    pub service: Service,
    /// Its destinations by address and port.
    pub dests: BTreeMap<(IpAddr, u16), Dest>,
}

fn protocol_number(p: Protocol) -> u16 {
    match p {
        Protocol::Tcp => IPPROTO_TCP,
        Protocol::Udp => IPPROTO_UDP,
        Protocol::Sctp => IPPROTO_SCTP,
    }
}

/// The addresses of a range, first to last (one address when equal).
fn expand(first: IpAddr, last: IpAddr) -> Result<Vec<IpAddr>, String> {
    let (a, b, v6) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            (u128::from(u32::from(a)), u128::from(u32::from(b)), false)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), true),
        _ => return Err(format!("address range {first}-{last} mixes IPv4 and IPv6")),
    };
    if b < a {
        return Err(format!(
            "address range {first}-{last} ends before it starts"
        ));
    }
    if b - a >= MAX_SERVICES_PER_PLAN as u128 {
        return Err(format!(
            "address range {first}-{last} has more than {MAX_SERVICES_PER_PLAN} addresses"
        ));
    }
    Ok((a..=b)
        .map(|n| {
            if v6 {
                IpAddr::V6(n.into())
            } else {
                // In range: a and b came from u32s.
                IpAddr::V4(u32::try_from(n).unwrap_or(u32::MAX).into())
            }
        })
        .collect())
}

/// The IPVS services `plans` stand for (keepalived's mapping: the configured scheduler, the
/// forwarding method on every destination, persistence as a flag, a timeout and a netmask).
/// The second value lists services named twice (the first plan keeps them).
pub fn desired(
    plans: &[ServicePlan],
) -> Result<(BTreeMap<ServiceKey, Wanted>, Vec<String>), String> {
    let mut out: BTreeMap<ServiceKey, Wanted> = BTreeMap::new();
    let mut warnings = Vec::new();
    for p in plans {
        // IPVS keeps connection counts: the scheduler asked for runs, never a fallback.
        let scheduler = p.fallback.map_or(p.scheduler, |f| f.requested);
        let forward = match p.forward {
            Forward::Nat => FWD_MASQ,
            Forward::Dr { .. } => FWD_DROUTE,
            Forward::Tun => FWD_TUNNEL,
        };
        let mut dests = BTreeMap::new();
        for m in &p.members {
            dests
                .entry((m.addr.ip(), m.addr.port()))
                .or_insert_with(|| Dest {
                    addr: m.addr.ip(),
                    port: m.addr.port(),
                    forward,
                    // IPVS weights are ints.
                    weight: m.weight.min(i32::MAX as u32),
                    u_threshold: 0,
                    l_threshold: 0,
                });
        }
        let mut keys = Vec::new();
        for m in &p.matches {
            match m {
                Match::Fwmark(mark) => keys.push(ServiceKey::Fwmark {
                    ipv6: p.ipv6,
                    mark: *mark,
                }),
                Match::Addrs { first, last, port } => {
                    for addr in expand(*first, *last).map_err(|e| format!("{}: {e}", p.name))? {
                        keys.push(ServiceKey::Addr {
                            protocol: protocol_number(p.protocol),
                            addr,
                            port: *port,
                        });
                    }
                }
            }
        }
        if keys.len() > MAX_SERVICES_PER_PLAN {
            return Err(format!(
                "{}: more than {MAX_SERVICES_PER_PLAN} IPVS services",
                p.name
            ));
        }
        for key in keys {
            let ipv6 = key.ipv6();
            let (flags, timeout, netmask) = match p.persistence {
                Some(per) => (
                    SVC_F_PERSISTENT,
                    u32::try_from(per.timeout.as_secs().max(1)).unwrap_or(u32::MAX),
                    Netmask::of_prefix(ipv6, per.prefix),
                ),
                None => (0, 0, Netmask::host(ipv6)),
            };
            let wanted = Wanted {
                service: Service {
                    key,
                    scheduler: scheduler.name().to_owned(),
                    flags,
                    timeout,
                    netmask,
                    pe_name: None,
                },
                dests: dests.clone(),
            };
            if out.contains_key(&key) {
                warnings.push(format!(
                    "{}: IPVS service {key} is already programmed for another virtual server; kept as that one's",
                    p.name
                ));
                continue;
            }
            out.insert(key, wanted);
        }
    }
    Ok((out, warnings))
}

/// Whether the kernel's `current` service differs from `want` in what we set.
fn service_differs(current: &Service, want: &Service) -> bool {
    current.scheduler != want.scheduler
        || current.flags & !SVC_F_HASHED != want.flags
        || current.timeout != want.timeout
        || current.netmask != want.netmask
        || current.pe_name != want.pe_name
}

fn dest_differs(current: &Dest, want: &Dest) -> bool {
    current.forward != want.forward
        || current.weight != want.weight
        || current.u_threshold != want.u_threshold
        || current.l_threshold != want.l_threshold
}

fn is_errno(e: &IpvsError, codes: &[i32]) -> bool {
    e.errno().is_some_and(|c| codes.contains(&c))
}

/// What IPVS cannot run as configured, or runs differently from keepalived (nothing, for the
/// most part: keepalived itself drives IPVS).
pub fn review(vs: &VirtualServer) -> Vec<Review> {
    let mut out = Vec::new();
    if let ServiceAddr::Socket(s) = &vs.addr {
        if vs.forwarding != Forwarding::Tun {
            for rs in &vs.real_servers {
                if rs.addr.is_ipv6() != s.is_ipv6() {
                    out.push(Review::Refused(format!(
                        "real_server {} is of another address family than the virtual server: IPVS forwards across families only with lb_kind TUN",
                        rs.addr
                    )));
                }
            }
        }
        if s.port() == 0 && vs.persistence_timeout.is_none() {
            out.push(Review::Differs(
                "a port-0 (every port) service is scheduled by IPVS only with persistence: add persistence_timeout, or new connections find no real server".into(),
            ));
        }
    }
    out
}

/// The IPVS backend.
pub struct Ipvs {
    kernel: Box<dyn Kernel>,
    /// The services this backend created or took over: the only ones it deletes.
    owned: BTreeSet<ServiceKey>,
    warnings: Vec<String>,
    version: Option<u32>,
}

impl std::fmt::Debug for Ipvs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipvs")
            .field("owned", &self.owned)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Ipvs {
    /// Open the kernel's IPVS ([`IpvsError::NoIpvs`] without it) and check that it answers
    /// (`GET_INFO`, as keepalived does at start).
    pub fn open() -> Result<Ipvs, IpvsError> {
        let mut ipvs = Ipvs::with_kernel(Box::new(Genl::open()?));
        for reply in ipvs.kernel.execute(&Request::GetInfo)? {
            if let Reply::Info { version, .. } = reply {
                ipvs.version = Some(version);
            }
        }
        Ok(ipvs)
    }

    /// A backend over `kernel` (tests: an in-memory IPVS).
    pub fn with_kernel(kernel: Box<dyn Kernel>) -> Ipvs {
        Ipvs {
            kernel,
            owned: BTreeSet::new(),
            warnings: Vec::new(),
            version: None,
        }
    }

    /// IPVS's version (`1.2.1`), once opened.
    pub fn version(&self) -> Option<String> {
        self.version
            .map(|v| format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff))
    }

    /// The services this backend owns.
    pub fn owned(&self) -> &BTreeSet<ServiceKey> {
        &self.owned
    }

    /// Every service the kernel lists.
    pub fn services(&mut self) -> Result<Vec<Service>, IpvsError> {
        Ok(self
            .kernel
            .execute(&Request::DumpServices)?
            .into_iter()
            .filter_map(|r| match r {
                Reply::Service(s) => Some(s),
                _ => None,
            })
            .collect())
    }

    /// The destinations the kernel lists for `key` (none if it has no such service).
    pub fn dests(&mut self, key: &ServiceKey) -> Result<Vec<DestEntry>, IpvsError> {
        Ok(self
            .kernel
            .execute(&Request::DumpDests(*key))?
            .into_iter()
            .filter_map(|r| match r {
                Reply::Dest(d) => Some(d),
                _ => None,
            })
            .collect())
    }

    /// Start the kernel's sync daemon `daemon` (a running one of the same state is stopped
    /// first, so a changed interface or sync id takes effect).
    pub fn start_sync_daemon(&mut self, daemon: &SyncDaemon) -> Result<(), IpvsError> {
        daemon.check().map_err(|message| IpvsError::Decode {
            what: Request::NewDaemon(daemon.clone()).describe(),
            message,
        })?;
        if self.sync_daemons()?.iter().any(|d| d.state == daemon.state) {
            self.stop_sync_daemon(daemon.state)?;
        }
        self.run(Request::NewDaemon(daemon.clone()))
    }

    /// Stop the `state` sync daemon; stopping one that is not running is not an error.
    pub fn stop_sync_daemon(&mut self, state: SyncState) -> Result<(), IpvsError> {
        match self.run(Request::DelDaemon(state)) {
            // The kernel answers ESRCH when that daemon is not running.
            Err(e) if is_errno(&e, &[genl::errno::ESRCH]) => Ok(()),
            other => other,
        }
    }

    /// The running sync daemons.
    pub fn sync_daemons(&mut self) -> Result<Vec<SyncDaemon>, IpvsError> {
        Ok(self
            .kernel
            .execute(&Request::DumpDaemons)?
            .into_iter()
            .filter_map(|r| match r {
                Reply::Daemon(d) => Some(d),
                _ => None,
            })
            .collect())
    }

    fn run(&mut self, request: Request) -> Result<(), IpvsError> {
        self.kernel.execute(&request).map(|_| ())
    }

    /// Make the kernel's services `want` (and delete the owned ones not wanted).
    fn converge(&mut self, want: &BTreeMap<ServiceKey, Wanted>) -> Result<(), IpvsError> {
        let present: BTreeMap<ServiceKey, Service> =
            self.services()?.into_iter().map(|s| (s.key, s)).collect();
        let gone: Vec<ServiceKey> = self
            .owned
            .iter()
            .filter(|k| !want.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            if present.contains_key(&key) {
                match self.run(Request::DelService(key)) {
                    Err(e) if !is_errno(&e, &[genl::errno::ESRCH]) => return Err(e),
                    _ => {}
                }
            }
            self.owned.remove(&key);
        }
        for (key, w) in want {
            let current = match present.get(key) {
                None => match self.run(Request::NewService(w.service.clone())) {
                    Ok(()) => {
                        self.owned.insert(*key);
                        // New: add every destination.
                        for d in w.dests.values() {
                            self.add_dest(key, d)?;
                        }
                        continue;
                    }
                    // Someone added it since the dump: take it over below.
                    Err(e) if is_errno(&e, &[genl::errno::EEXIST]) => None,
                    Err(e) => return Err(e),
                },
                Some(s) => Some(s),
            };
            self.owned.insert(*key);
            if current.is_none_or(|c| service_differs(c, &w.service)) {
                self.run(Request::SetService(w.service.clone()))?;
            }
            let have: BTreeMap<(IpAddr, u16), Dest> = self
                .dests(key)?
                .into_iter()
                .map(|e| ((e.dest.addr, e.dest.port), e.dest))
                .collect();
            for (id, d) in &have {
                if !w.dests.contains_key(id) {
                    match self.run(Request::DelDest(*key, d.clone())) {
                        Err(e) if !is_errno(&e, &[genl::errno::ENOENT]) => return Err(e),
                        _ => {}
                    }
                }
            }
            for (id, d) in &w.dests {
                match have.get(id) {
                    None => self.add_dest(key, d)?,
                    Some(c) if dest_differs(c, d) => {
                        match self.run(Request::SetDest(*key, d.clone())) {
                            Err(e) if is_errno(&e, &[genl::errno::ENOENT]) => {
                                self.add_dest(key, d)?
                            }
                            other => other?,
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// `NEW_DEST`, or `SET_DEST` if it exists already (keepalived's way round a race).
    fn add_dest(&mut self, key: &ServiceKey, d: &Dest) -> Result<(), IpvsError> {
        match self.run(Request::NewDest(*key, d.clone())) {
            Err(e) if is_errno(&e, &[genl::errno::EEXIST]) => {
                self.run(Request::SetDest(*key, d.clone()))
            }
            other => other,
        }
    }
}

fn rejected(e: impl std::fmt::Display) -> BackendError {
    BackendError::Rejected {
        backend: NAME,
        message: e.to_string(),
    }
}

impl Backend for Ipvs {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Ipvs
    }

    fn review(&self, vs: &VirtualServer) -> Vec<Review> {
        review(vs)
    }

    fn apply(&mut self, services: &[ServicePlan]) -> Result<(), BackendError> {
        let (want, warnings) = desired(services).map_err(rejected)?;
        self.warnings = warnings;
        self.converge(&want).map_err(rejected)
    }

    fn clear(&mut self) -> Result<(), BackendError> {
        let mut first_error = None;
        for key in std::mem::take(&mut self.owned) {
            match self.run(Request::DelService(key)) {
                Ok(()) => {}
                Err(e) if is_errno(&e, &[genl::errno::ESRCH]) => {}
                Err(e) => {
                    self.owned.insert(key);
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), |e| Err(rejected(e)))
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

#[cfg(test)]
mod tests;
