//! A simulated LAN of N nodes, each a whole [`Router`] (model: quinn-proto's
//! `tests/util.rs`): one or more segments (a node's path `k` is segment `k`), multicast and
//! unicast delivery through the real codec, latency, loss, one-way cuts, crashes, and every
//! router input the daemon has (checks, links, reloads, sync groups). After every step
//! [`Lan::drain`] asserts the invariants that must hold at all times, and
//! [`Lan::assert_converged`] those of a healed network. Used by the router's scenario tests
//! and by the `router_sim` fuzz target ([`crate::fuzz::router_sim`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::{
    Event, Hook, HookTarget, InstanceKey, InstanceSpec, Output, PathId, Router, SyncGroupSpec,
    TrackSource, TrackedItem,
};
use crate::rng::Rng;
use crate::track::CheckState;
use crate::vrrp::{
    AdvertInterval, Centiseconds, Family, InstanceConfig, Priority, Seconds, State, Timer, Vrid,
};
use crate::wire::vrrp::{MCAST_V4, VRRP_TTL};

/// The address of node `n` on segment `s` (one documentation range per segment).
pub(crate) fn node_addr(s: u32, n: usize) -> IpAddr {
    let host = u8::try_from(n + 1).expect("small lab");
    match s {
        0 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, host)),
        1 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, host)),
        _ => IpAddr::V4(Ipv4Addr::new(203, 0, 113, host)),
    }
}

/// VIP of VRID `vrid` (192.0.2.200 + vrid).
pub(crate) fn vip(vrid: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200u8.wrapping_add(vrid)))
}

pub(crate) fn v2(secs: u8) -> AdvertInterval {
    AdvertInterval::V2(Seconds::new(secs).expect("1..=255"))
}

pub(crate) fn v3(cs: u16) -> AdvertInterval {
    AdvertInterval::V3(Centiseconds::new(cs).expect("1..=4095"))
}

/// The virtual route of instance `VI_<vrid>` (the router only compares and hands it back).
pub(crate) fn route(vrid: u8) -> String {
    format!("198.51.100.{vrid}/32 via 192.0.2.254")
}

/// A multicast instance `VI_<vrid>` of node `n` on segment 0 with VIP [`vip`].
pub(crate) fn spec(
    n: usize,
    vrid: u8,
    priority: u8,
    interval: AdvertInterval,
) -> InstanceSpec<IpAddr, String> {
    let src = node_addr(0, n);
    let mut protocol = InstanceConfig::new(Vrid::new(vrid).expect("vrid"), interval, src);
    protocol.priority = Priority::new(priority);
    protocol.vips = vec![vip(vrid)];
    InstanceSpec {
        name: format!("VI_{vrid}"),
        key: InstanceKey {
            vrid: protocol.vrid,
            family: Family::V4,
            interface: "eth0".into(),
            unicast: false,
            shared_by: None,
        },
        protocol,
        primary: PathId(0),
        heartbeat: Vec::new(),
        destinations: vec![IpAddr::V4(MCAST_V4)],
        peers: Vec::new(),
        vips: vec![vip(vrid)],
        routes: vec![route(vrid)],
        announce_interval: Duration::ZERO,
        tracking: Vec::new(),
    }
}

/// What a node logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Logged {
    Changed {
        name: String,
        from: State,
        to: State,
    },
    Hook {
        target: String,
        state: super::HookState,
    },
    Announce {
        name: String,
        vips: Vec<IpAddr>,
    },
    Advert {
        name: String,
        path: PathId,
        priority: u8,
    },
    SplitBrain {
        name: String,
        raised: bool,
    },
}

pub(crate) struct Node {
    pub(crate) router: Router<IpAddr, String>,
    pub(crate) alive: bool,
    /// Segments this node is attached to.
    pub(crate) segments: BTreeSet<u32>,
    /// Installed addresses (what the kernel would hold), per instance name.
    pub(crate) installed: BTreeMap<String, HashSet<IpAddr>>,
    /// Installed virtual routes, per instance name.
    pub(crate) routes: BTreeMap<String, BTreeSet<String>>,
    /// What to start when the node restarts.
    pub(crate) specs: Vec<InstanceSpec<IpAddr, String>>,
    pub(crate) groups: Vec<SyncGroupSpec>,
    pub(crate) checks: BTreeMap<String, CheckState>,
    pub(crate) links: BTreeMap<String, bool>,
    /// Instances the operator put in maintenance (kept across restarts, as the daemon
    /// keeps them in its state directory).
    pub(crate) maintenance: BTreeSet<String>,
    pub(crate) log: Vec<(Instant, Logged)>,
}

struct InFlight {
    at: Instant,
    seq: u64,
    to: usize,
    path: PathId,
    src: IpAddr,
    dst: IpAddr,
    bytes: Vec<u8>,
}

pub(crate) struct Lan {
    pub(crate) t0: Instant,
    pub(crate) now: Instant,
    pub(crate) nodes: Vec<Node>,
    queue: Vec<InFlight>,
    seq: u64,
    pub(crate) latency: Duration,
    /// Extra random delay per datagram, 0..jitter (real LANs and hosts are never in
    /// lockstep; without it mirrored sync groups can time out at the very same instant
    /// forever).
    pub(crate) jitter: Duration,
    pub(crate) loss_permille: u64,
    /// (segment, from, to) that drop everything: one-way cuts.
    pub(crate) cuts: HashSet<(u32, usize, usize)>,
    pub(crate) rng: Rng,
}

impl Lan {
    /// `n` nodes on segment 0 (and `segments - 1` more), none started.
    pub(crate) fn new(n: usize, segments: u32, seed: u64) -> Self {
        let t0 = Instant::now();
        Lan {
            t0,
            now: t0,
            nodes: (0..n)
                .map(|_| Node {
                    router: Router::new(),
                    alive: true,
                    segments: (0..segments).collect(),
                    installed: BTreeMap::new(),
                    routes: BTreeMap::new(),
                    specs: Vec::new(),
                    groups: Vec::new(),
                    checks: BTreeMap::new(),
                    links: BTreeMap::new(),
                    maintenance: BTreeSet::new(),
                    log: Vec::new(),
                })
                .collect(),
            queue: Vec::new(),
            seq: 0,
            latency: Duration::from_micros(200),
            jitter: Duration::from_micros(300),
            loss_permille: 0,
            cuts: HashSet::new(),
            rng: Rng::new(seed),
        }
    }

    /// Configure node `n` (start-up or reload): checks, links and groups first, then the
    /// instances, in the daemon's order.
    pub(crate) fn configure(
        &mut self,
        n: usize,
        specs: Vec<InstanceSpec<IpAddr, String>>,
        groups: Vec<SyncGroupSpec>,
    ) {
        let now = self.now;
        let node = &mut self.nodes[n];
        node.specs = specs.clone();
        node.groups = groups.clone();
        if !node.alive {
            return;
        }
        for (name, state) in &node.checks {
            node.router.set_check(now, name, state.clone());
        }
        for (name, up) in &node.links {
            node.router.set_link(now, name, *up);
        }
        for name in &node.maintenance {
            node.router.set_maintenance(now, name, true);
        }
        // Groups first, so members are held before they start (the daemon's order too).
        node.router.set_sync_groups(now, groups);
        let keys: Vec<InstanceKey> = specs.iter().map(|s| s.key.clone()).collect();
        for s in specs {
            node.router.upsert(now, s).expect("valid spec");
        }
        node.router.retain(now, |k| keys.contains(k));
        self.drain(n);
    }

    pub(crate) fn set_check(&mut self, n: usize, name: &str, state: CheckState) {
        let now = self.now;
        self.nodes[n].checks.insert(name.into(), state.clone());
        if self.nodes[n].alive {
            self.nodes[n].router.set_check(now, name, state);
            self.drain(n);
        }
    }

    pub(crate) fn set_link(&mut self, n: usize, name: &str, up: bool) {
        let now = self.now;
        self.nodes[n].links.insert(name.into(), up);
        if self.nodes[n].alive {
            self.nodes[n].router.set_link(now, name, up);
            self.drain(n);
        }
    }

    /// The operator's `maintenance on|off NAME` on node `n`.
    pub(crate) fn set_maintenance(&mut self, n: usize, name: &str, on: bool) {
        let now = self.now;
        let node = &mut self.nodes[n];
        if on {
            node.maintenance.insert(name.into());
        } else {
            node.maintenance.remove(name);
        }
        if node.alive {
            node.router.set_maintenance(now, name, on);
            self.drain(n);
        }
    }

    /// SIGKILL of the whole node: no goodbye, its addresses vanish with the machine.
    pub(crate) fn crash(&mut self, n: usize) {
        self.nodes[n].alive = false;
        self.nodes[n].installed.clear();
        self.nodes[n].routes.clear();
        self.nodes[n].router = Router::new();
    }

    /// A node comes back with its configuration.
    pub(crate) fn restart(&mut self, n: usize) {
        self.nodes[n].alive = true;
        let (specs, groups) = (self.nodes[n].specs.clone(), self.nodes[n].groups.clone());
        self.configure(n, specs, groups);
    }

    /// SIGTERM: release, then gone.
    pub(crate) fn stop(&mut self, n: usize) {
        let now = self.now;
        self.nodes[n].router.shutdown(now);
        self.drain(n);
        self.crash(n);
    }

    /// A datagram from outside the simulation (a foreign or forged sender) reaches node `n`
    /// on `path` now.
    pub(crate) fn inject(
        &mut self,
        n: usize,
        path: PathId,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        bytes: &[u8],
    ) {
        if !self.nodes[n].alive {
            return;
        }
        let now = self.now;
        self.nodes[n]
            .router
            .handle_datagram(now, path, src, dst, ttl, bytes);
        self.drain(n);
    }

    fn next_time(&self) -> Option<Instant> {
        let packets = self.queue.iter().map(|p| p.at);
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.router.poll_timeout());
        packets.chain(timers).min()
    }

    /// Advance the virtual clock by `d`, processing every delivery and timer, and checking
    /// the invariants after each step.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        let mut steps = 0u32;
        while let Some(next) = self.next_time().filter(|t| *t <= until) {
            steps += 1;
            assert!(steps < 2_000_000, "livelock at {:?}", self.now - self.t0);
            self.now = next.max(self.now);
            self.deliver_due();
            for n in 0..self.nodes.len() {
                let due = self.nodes[n].alive
                    && self.nodes[n]
                        .router
                        .poll_timeout()
                        .is_some_and(|t| t <= self.now);
                if due {
                    let now = self.now;
                    self.nodes[n].router.handle_timeout(now);
                    self.drain(n);
                }
            }
        }
        self.now = until;
    }

    fn deliver_due(&mut self) {
        loop {
            let Some(pos) = self
                .queue
                .iter()
                .enumerate()
                .filter(|(_, p)| p.at <= self.now)
                .min_by_key(|(_, p)| (p.at, p.seq))
                .map(|(i, _)| i)
            else {
                return;
            };
            let p = self.queue.swap_remove(pos);
            if !self.nodes[p.to].alive {
                continue;
            }
            let now = self.now;
            self.nodes[p.to]
                .router
                .handle_datagram(now, p.path, p.src, p.dst, VRRP_TTL, &p.bytes);
            self.drain(p.to);
        }
    }

    /// Perform node `n`'s outputs, then check the invariants.
    pub(crate) fn drain(&mut self, n: usize) {
        while let Some(out) = self.nodes[n].router.poll_output() {
            let name = |node: &Node, id| {
                node.router
                    .instance(id)
                    .map(|v| v.spec.name.clone())
                    .unwrap_or_default()
            };
            match out {
                Output::Transmit(t) => {
                    let segment = t.path.0;
                    let priority = t.payload.get(2).copied().unwrap_or(0);
                    let who = name(&self.nodes[n], t.instance);
                    self.nodes[n].log.push((
                        self.now,
                        Logged::Advert {
                            name: who,
                            path: t.path,
                            priority,
                        },
                    ));
                    for to in 0..self.nodes.len() {
                        let reaches = to != n
                            && self.nodes[to].segments.contains(&segment)
                            && (t.dst.is_multicast() || node_addr(segment, to) == t.dst)
                            && !self.cuts.contains(&(segment, n, to));
                        if !reaches || self.rng.chance(self.loss_permille) {
                            continue;
                        }
                        self.seq += 1;
                        let jitter_us = u64::try_from(self.jitter.as_micros()).unwrap_or(0);
                        let jitter = Duration::from_micros(self.rng.below(jitter_us.max(1)));
                        self.queue.push(InFlight {
                            at: self.now + self.latency + jitter,
                            seq: self.seq,
                            to,
                            path: t.path,
                            src: t.src,
                            dst: t.dst,
                            bytes: t.payload.clone(),
                        });
                    }
                }
                Output::AddVips { instance, vips } => {
                    let who = name(&self.nodes[n], instance);
                    self.nodes[n].installed.entry(who).or_default().extend(vips);
                }
                Output::AddRoutes { instance, routes } => {
                    let who = name(&self.nodes[n], instance);
                    assert!(
                        self.nodes[n]
                            .installed
                            .get(&who)
                            .is_some_and(|a| !a.is_empty()),
                        "node {n} {who}: routes installed before the addresses"
                    );
                    self.nodes[n].routes.entry(who).or_default().extend(routes);
                }
                Output::DelRoutes { instance, routes } => {
                    let who = name(&self.nodes[n], instance);
                    if let Some(set) = self.nodes[n].routes.get_mut(&who) {
                        for r in &routes {
                            set.remove(r);
                        }
                    }
                }
                Output::DelVips { instance, vips } => {
                    let who = name(&self.nodes[n], instance);
                    if let Some(set) = self.nodes[n].installed.get_mut(&who) {
                        for v in vips {
                            set.remove(&v);
                        }
                        // Leaving Master: the routes went first.
                        assert!(
                            !set.is_empty()
                                || self.nodes[n]
                                    .routes
                                    .get(&who)
                                    .is_none_or(BTreeSet::is_empty),
                            "node {n} {who}: addresses removed before the routes"
                        );
                    }
                }
                Output::Announce { instance, vips } => {
                    let who = name(&self.nodes[n], instance);
                    self.nodes[n]
                        .log
                        .push((self.now, Logged::Announce { name: who, vips }));
                }
                Output::Hook(Hook { target, state, .. }) => {
                    let target = match target {
                        HookTarget::Instance(id) => name(&self.nodes[n], id),
                        HookTarget::Group(g) => format!("group {g}"),
                    };
                    self.nodes[n]
                        .log
                        .push((self.now, Logged::Hook { target, state }));
                }
                Output::Event(Event::StateChanged {
                    instance, from, to, ..
                }) => {
                    let who = name(&self.nodes[n], instance);
                    self.nodes[n].log.push((
                        self.now,
                        Logged::Changed {
                            name: who,
                            from,
                            to,
                        },
                    ));
                }
                Output::Event(Event::SplitBrain { instance, alarm }) => {
                    let who = name(&self.nodes[n], instance);
                    let raised = matches!(alarm, super::split_brain::Alarm::Raised { .. });
                    self.nodes[n]
                        .log
                        .push((self.now, Logged::SplitBrain { name: who, raised }));
                }
                Output::Event(Event::Removed { name, .. }) => {
                    self.nodes[n].installed.remove(&name);
                    self.nodes[n].routes.remove(&name);
                }
                Output::Event(_) => {}
            }
        }
        self.check_node(n);
    }

    /// Invariants that hold after every step of every node.
    fn check_node(&self, n: usize) {
        let node = &self.nodes[n];
        if !node.alive {
            return;
        }
        for v in node.router.instances() {
            let core = v.core;
            let p = core.priority();
            assert!(
                p.is_owner() || (Priority::MIN_BACKUP..=Priority::MAX_BACKUP).contains(&p),
                "node {n} {}: priority {p} out of range",
                v.spec.name
            );
            assert!(
                !(v.maintenance && core.state() == State::Master),
                "node {n} {}: Master in maintenance",
                v.spec.name
            );
            match core.state() {
                State::Master => assert!(
                    core.timer(Timer::Advert).is_some(),
                    "node {n} {}: Master without an advert deadline",
                    v.spec.name
                ),
                State::Backup => assert!(
                    core.timer(Timer::MasterDown).is_some(),
                    "node {n} {}: Backup without a master-down deadline",
                    v.spec.name
                ),
                State::Initialize | State::Fault => {}
            }
            let installed: HashSet<IpAddr> = node
                .installed
                .get(&v.spec.name)
                .cloned()
                .unwrap_or_default();
            let expected: HashSet<IpAddr> = if core.state() == State::Master {
                v.spec.vips.iter().copied().collect()
            } else {
                HashSet::new()
            };
            assert_eq!(
                installed,
                expected,
                "node {n} {}: installed addresses in state {}",
                v.spec.name,
                core.state()
            );
            let routes = node.routes.get(&v.spec.name).cloned().unwrap_or_default();
            let expected: BTreeSet<String> = if core.state() == State::Master {
                v.spec.routes.iter().cloned().collect()
            } else {
                BTreeSet::new()
            };
            assert_eq!(
                routes,
                expected,
                "node {n} {}: installed routes in state {}",
                v.spec.name,
                core.state()
            );
        }
        if node
            .router
            .instances()
            .any(|v| matches!(v.core.state(), State::Master | State::Backup))
        {
            assert!(
                node.router.poll_timeout().is_some(),
                "node {n}: running instances but no deadline"
            );
        }
        for g in &node.groups {
            let states: Vec<State> = g
                .members
                .iter()
                .filter_map(|m| node.router.find_by_name(m))
                .filter_map(|id| node.router.instance(id))
                .map(|v| v.core.state())
                .collect();
            if states.len() >= 2 {
                assert!(
                    !(states.contains(&State::Master) && states.contains(&State::Backup)),
                    "node {n}: sync group {} split between MASTER and BACKUP: {states:?}\n{}",
                    g.name,
                    self.recent(n, 30)
                );
            }
        }
    }

    /// The last `count` log lines of node `n`, for failure messages.
    pub(crate) fn recent(&self, n: usize, count: usize) -> String {
        let log = &self.nodes[n].log;
        log[log.len().saturating_sub(count)..]
            .iter()
            .filter(|(_, l)| !matches!(l, Logged::Advert { .. }))
            .map(|(t, l)| format!("  {:>9.3}s {l:?}", (*t - self.t0).as_secs_f64()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Nodes in Master for instance `name`, alive ones only.
    pub(crate) fn masters(&self, name: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|n| self.nodes[*n].alive)
            .filter(|n| {
                let r = &self.nodes[*n].router;
                r.find_by_name(name)
                    .and_then(|id| r.instance(id))
                    .is_some_and(|v| v.core.state() == State::Master)
            })
            .collect()
    }

    pub(crate) fn state(&self, n: usize, name: &str) -> Option<State> {
        let r = &self.nodes[n].router;
        r.find_by_name(name)
            .and_then(|id| r.instance(id))
            .map(|v| v.core.state())
    }

    /// Everything node `n` logged at or after `since`.
    pub(crate) fn log_since(&self, n: usize, since: Instant) -> Vec<Logged> {
        self.nodes[n]
            .log
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, l)| l.clone())
            .collect()
    }
}
/// A check tracked with `weight` by every instance of `spec`.
pub(crate) fn tracking_check(name: &str, weight: i32) -> TrackedItem {
    TrackedItem {
        source: TrackSource::Check(name.into()),
        weight,
        reverse: false,
    }
}

impl Lan {
    /// After a healed network has had time to converge: one Master per instance `VI_1` ..
    /// `VI_<vrids>` among the nodes running it, every sync group's members on one node
    /// together. `context` (a seed, a fuzz input) starts every failure message.
    pub(crate) fn assert_converged(&self, vrids: u8, context: &str) {
        for vrid in 1..=vrids {
            let name = format!("VI_{vrid}");
            let running: Vec<usize> = (0..self.nodes.len())
                .filter(|n| {
                    self.nodes[*n].alive
                        && matches!(self.state(*n, &name), Some(State::Master | State::Backup))
                })
                .collect();
            let masters = self.masters(&name);
            if running.is_empty() {
                assert!(masters.is_empty(), "{context}: {name} Masters {masters:?}");
                continue;
            }
            assert_eq!(
                masters.len(),
                1,
                "{context}: {name} has Masters {masters:?} among running {running:?}\n{}",
                (0..self.nodes.len())
                    .map(|n| format!("node {n}:\n{}", self.recent(n, 40)))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        for n in 0..self.nodes.len() {
            for g in &self.nodes[n].groups {
                let states: Vec<Option<State>> =
                    g.members.iter().map(|m| self.state(n, m)).collect();
                let masters = states.iter().filter(|s| **s == Some(State::Master)).count();
                assert!(
                    masters == 0 || masters == states.len(),
                    "{context}: node {n} group {} split: {states:?}",
                    g.name
                );
            }
        }
    }
}
