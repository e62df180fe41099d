//! `router_sim`: a simulated LAN of 1–3 whole [`Router`](crate::router::Router)s driven by
//! an arbitrary schedule — time passing, crashes, SIGTERMs and restarts, one-way cuts and
//! loss, check and link flips (priority changes and Fault), reloads, maintenance, adverts
//! forged by a foreign sender and raw datagrams.
//!
//! After every step the LAN asserts its invariants (`router::sim`): priority in range, an
//! advert deadline on every Master and a master-down deadline on every Backup, a router
//! deadline whenever an instance runs, VIPs and routes exactly on Masters, sync-group
//! members never split between MASTER and BACKUP. At the end the network heals and, after
//! the longest protocol bound, at most one Master per VRID and whole sync groups.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use crate::router::sim::{spec, tracking_check, vip, Lan};
use crate::router::sync_group::SyncGroupSpec;
use crate::router::{InstanceSpec, PathId};
use crate::track::CheckState;
use crate::vrrp::{AdvertInterval, Centiseconds, Priority, Seconds, Vrid};
use crate::wire::vrrp::{encode, Advert, MCAST_V4, VRRP_TTL};

/// Steps of one schedule at most (each runs up to 40 advert intervals).
const MAX_STEPS: usize = 32;

/// The LAN's shape, fixed for a schedule.
#[derive(Debug, Arbitrary)]
struct Shape {
    nodes: u8,
    vrids: u8,
    /// 0: VRRPv3 0.2 s, 1: VRRPv3 1 s, 2: VRRPv2 1 s.
    interval: u8,
    /// VI_1 and VI_2 in one sync group.
    grouped: bool,
    /// Every instance also sends and receives on path 1.
    heartbeat: bool,
    /// The last VRID is unicast to the other nodes.
    unicast_last: bool,
    /// Configured priority of node n's VRID v: `priorities[n][v]`, 0 read as 255 (owner).
    priorities: [[u8; 3]; 3],
    latency_us: u16,
}

/// One step of the schedule. Node and VRID numbers are taken modulo the shape's.
#[derive(Debug, Arbitrary)]
enum Step {
    /// Let `1 + n % 40` advert intervals pass.
    Run(u8),
    /// Let `n` milliseconds pass.
    RunMillis(u16),
    Crash(u8),
    Restart(u8),
    Stop(u8),
    Cut {
        segment: bool,
        from: u8,
        to: u8,
    },
    Heal,
    /// Loss in permille, `n % 400`.
    Loss(u16),
    Check {
        node: u8,
        up: bool,
    },
    Link {
        node: u8,
        up: bool,
    },
    /// Reload node's configuration, with an extra VIP per instance and its priorities
    /// lowered by `lower`.
    Reload {
        node: u8,
        extra_vip: bool,
        lower: u8,
    },
    Maintenance {
        node: u8,
        vrid: u8,
        on: bool,
    },
    /// A well-formed advert from a foreign address (192.0.2.99) to node's VRID.
    Forged {
        node: u8,
        vrid: u8,
        priority: u8,
        heartbeat: bool,
    },
    /// Raw bytes from a foreign address.
    Datagram {
        node: u8,
        bytes: Vec<u8>,
    },
}

impl Shape {
    fn nodes(&self) -> usize {
        1 + usize::from(self.nodes % 3)
    }

    fn vrids(&self) -> u8 {
        1 + self.vrids % 3
    }

    fn interval(&self) -> AdvertInterval {
        match self.interval % 3 {
            0 => AdvertInterval::V3(Centiseconds::new(20).expect("0.2 s")),
            1 => AdvertInterval::V3(Centiseconds::new(100).expect("1 s")),
            _ => AdvertInterval::V2(Seconds::new(1).expect("1 s")),
        }
    }

    /// Node `n`'s configuration; `lower` subtracts from every backup priority.
    fn config(
        &self,
        n: usize,
        extra_vip: bool,
        lower: u8,
    ) -> (Vec<InstanceSpec<IpAddr, String>>, Vec<SyncGroupSpec>) {
        let mut specs = Vec::new();
        let vrids = self.vrids();
        for vrid in 1..=vrids {
            let configured = self.priorities[n][usize::from(vrid - 1)];
            let priority = match configured {
                0 => 255,
                p => p.saturating_sub(lower).clamp(1, 254),
            };
            let mut s = spec(n, vrid, priority, self.interval());
            if vrid == vrids && vrids > 1 && self.unicast_last {
                s.key.unicast = true;
                s.protocol.unicast = true;
                s.destinations = (0..self.nodes())
                    .filter(|p| *p != n)
                    .map(|p| crate::router::sim::node_addr(0, p))
                    .collect();
                s.peers = s.destinations.clone();
            }
            if self.heartbeat {
                s.heartbeat = vec![PathId(1)];
            }
            if vrid == 1 {
                s.tracking.push(tracking_check("chk", -30));
            }
            if vrid == 2 {
                // Weight 0: a failing check puts the instance in Fault.
                s.tracking.push(tracking_check("chk", 0));
            }
            if extra_vip {
                s.vips.push(vip(vrid + 20));
            }
            specs.push(s);
        }
        let groups = if self.grouped && vrids >= 2 {
            vec![SyncGroupSpec {
                name: "G".into(),
                members: vec!["VI_1".into(), "VI_2".into()],
            }]
        } else {
            Vec::new()
        };
        (specs, groups)
    }
}

/// A foreign router's address on segment 0 (no simulated node has it).
const FOREIGN: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));

/// The `router_sim` fuzz target (see the [module docs](self)).
pub fn router_sim(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(shape) = Shape::arbitrary(&mut u) else {
        return;
    };
    let mut steps = Vec::new();
    while steps.len() < MAX_STEPS {
        match Step::arbitrary(&mut u) {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
    }
    let nodes = shape.nodes();
    let vrids = shape.vrids();
    let interval = shape.interval();
    let mut lan = Lan::new(nodes, 2, u64::from(shape.latency_us));
    lan.latency = Duration::from_micros(100 + u64::from(shape.latency_us % 2000));
    for n in 0..nodes {
        lan.set_check(n, "chk", CheckState::Up);
        let (specs, groups) = shape.config(n, false, 0);
        lan.configure(n, specs, groups);
        lan.run_for(Duration::from_millis(1 + 37 * n as u64));
    }
    let pick = |x: u8| usize::from(x) % nodes;
    let pick_vrid = |x: u8| 1 + x % vrids;
    let step_len = interval.duration();
    for step in &steps {
        match *step {
            Step::Run(k) => lan.run_for(step_len * (1 + u32::from(k % 40))),
            Step::RunMillis(ms) => lan.run_for(Duration::from_millis(u64::from(ms))),
            Step::Crash(n) => lan.crash(pick(n)),
            Step::Restart(n) if !lan.nodes[pick(n)].alive => lan.restart(pick(n)),
            Step::Restart(_) => {}
            Step::Stop(n) if lan.nodes[pick(n)].alive => lan.stop(pick(n)),
            Step::Stop(_) => {}
            Step::Cut { segment, from, to } => {
                let (from, to) = (pick(from), pick(to));
                if from != to {
                    lan.cuts.insert((u32::from(segment), from, to));
                }
            }
            Step::Heal => lan.cuts.clear(),
            Step::Loss(p) => lan.loss_permille = u64::from(p % 400),
            Step::Check { node, up } => {
                let state = if up { CheckState::Up } else { CheckState::Down };
                lan.set_check(pick(node), "chk", state);
            }
            Step::Link { node, up } => lan.set_link(pick(node), "eth0", up),
            Step::Reload {
                node,
                extra_vip,
                lower,
            } => {
                let n = pick(node);
                let (specs, groups) = shape.config(n, extra_vip, lower);
                lan.configure(n, specs, groups);
            }
            Step::Maintenance { node, vrid, on } => {
                lan.set_maintenance(pick(node), &format!("VI_{}", pick_vrid(vrid)), on);
            }
            Step::Forged {
                node,
                vrid,
                priority,
                heartbeat,
            } => {
                let vrid = pick_vrid(vrid);
                let advert = Advert {
                    vrid: Vrid::new(vrid).expect("1..=3"),
                    priority: Priority::new(priority),
                    interval,
                    auth: None,
                    addresses: vec![vip(vrid)],
                    checksum: 0,
                };
                let dst = IpAddr::V4(MCAST_V4);
                let bytes = encode(&advert, FOREIGN, dst);
                let path = PathId(u32::from(heartbeat));
                lan.inject(pick(node), path, FOREIGN, dst, VRRP_TTL, &bytes);
            }
            Step::Datagram { node, ref bytes } => {
                let dst = IpAddr::V4(MCAST_V4);
                lan.inject(pick(node), PathId(0), FOREIGN, dst, VRRP_TTL, bytes);
            }
        }
    }
    // Heal: every node up with its configuration, checks and links up, no maintenance, no
    // cuts or loss; then the longest bound — master-down at priority 1 is below 4
    // intervals, twice for a preemption, plus mirrored sync groups timing out together a
    // few times before the jitter separates them (as the seeded scenario test allows).
    lan.cuts.clear();
    lan.loss_permille = 0;
    for n in 0..nodes {
        if !lan.nodes[n].alive {
            lan.restart(n);
        }
        lan.set_check(n, "chk", CheckState::Up);
        lan.set_link(n, "eth0", true);
        for vrid in 1..=vrids {
            lan.set_maintenance(n, &format!("VI_{vrid}"), false);
        }
        lan.run_for(Duration::from_millis(1 + 53 * n as u64));
    }
    lan.run_for(step_len * 100);
    lan.assert_converged(vrids, "router_sim");
}
