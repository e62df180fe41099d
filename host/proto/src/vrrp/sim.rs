//! A simulated LAN of N routers with a virtual clock, packet loss and partitions (STYLE
//! principle 12; model: quinn-proto's `tests/util.rs`). Every advert goes through the real
//! codec: encoded by the sender, decoded and validated by each receiver.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::instance::{Action, GarpConfig, Instance, InstanceConfig, Reason, State};
use super::timer::Timer;
use super::types::{AdvertInterval, Centiseconds, Priority, Seconds, Version, Vrid};
use super::validate::DropReason;
use crate::wire::vrrp::{self as packet, MCAST_V4, MCAST_V6};

pub(crate) use crate::rng::Rng;

/// What the log records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    Changed {
        from: State,
        to: State,
        reason: Reason,
    },
    Advert {
        priority: Priority,
    },
    /// A gratuitous ARP / NA burst of this many messages per address.
    Garp(u32),
}

#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) at: Instant,
    pub(crate) node: usize,
    pub(crate) ev: Ev,
}

pub(crate) struct Node {
    pub(crate) inst: Instance,
    pub(crate) alive: bool,
    pub(crate) has_vips: bool,
    pub(crate) group: u8,
}

struct InFlight {
    at: Instant,
    seq: u64,
    to: usize,
    src: IpAddr,
    dst: IpAddr,
    bytes: Vec<u8>,
}

pub(crate) struct Sim {
    pub(crate) t0: Instant,
    pub(crate) now: Instant,
    pub(crate) nodes: Vec<Node>,
    queue: Vec<InFlight>,
    seq: u64,
    pub(crate) latency: Duration,
    pub(crate) loss_permille: u64,
    pub(crate) rng: Rng,
    pub(crate) events: Vec<Event>,
}

impl Sim {
    pub(crate) fn new(configs: Vec<InstanceConfig>, seed: u64) -> Self {
        let t0 = Instant::now();
        Sim {
            t0,
            now: t0,
            nodes: configs
                .into_iter()
                .map(|c| Node {
                    inst: Instance::new(c).expect("valid config"),
                    alive: true,
                    has_vips: false,
                    group: 0,
                })
                .collect(),
            queue: Vec::new(),
            seq: 0,
            latency: Duration::ZERO,
            loss_permille: 0,
            rng: Rng::new(seed),
            events: Vec::new(),
        }
    }

    pub(crate) fn start(&mut self, i: usize) {
        self.nodes[i].inst.start(self.now);
        self.drain(i);
    }

    pub(crate) fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// Kill a node without any goodbye (SIGKILL of the whole process group).
    pub(crate) fn crash(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.nodes[i].has_vips = false;
    }

    /// Bring a crashed node back with a fresh instance.
    pub(crate) fn restart(&mut self, i: usize) {
        let cfg = self.nodes[i].inst.config().clone();
        self.nodes[i].inst = Instance::new(cfg).expect("valid config");
        self.nodes[i].alive = true;
        self.start(i);
    }

    /// Run a closure against one instance at the current time, then perform its actions.
    pub(crate) fn with<R>(&mut self, i: usize, f: impl FnOnce(&mut Instance, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[i].inst, now);
        self.drain(i);
        r
    }

    /// Node `to` hears, now, node `from`'s advert at `priority`, sent from `src` to the
    /// IPv4 group outside the simulated LAN (e.g. a lower router's advert reaching the
    /// Master); its actions are drained.
    pub(crate) fn hear_advert(&mut self, to: usize, from: usize, src: IpAddr, priority: u8) {
        let advert = self.nodes[from].inst.advert(Priority::new(priority));
        let bytes = packet::encode(&advert, src, IpAddr::V4(MCAST_V4));
        self.with(to, |inst, now| {
            inst.handle_packet(now, src, IpAddr::V4(MCAST_V4), 255, &bytes)
                .expect("a valid advert")
        });
    }

    pub(crate) fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }

    fn next_time(&self) -> Option<Instant> {
        let packets = self.queue.iter().map(|p| p.at);
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.inst.poll_timeout());
        packets.chain(timers).min()
    }

    /// Advance the virtual clock by `d`, processing every delivery and timer on the way.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        let mut steps = 0u32;
        while let Some(next) = self.next_time().filter(|t| *t <= until) {
            steps += 1;
            assert!(steps < 1_000_000, "livelock at {:?}", self.now - self.t0);
            self.now = next.max(self.now);
            self.deliver_due();
            for i in 0..self.nodes.len() {
                let due = self.nodes[i].alive
                    && self.nodes[i]
                        .inst
                        .poll_timeout()
                        .is_some_and(|t| t <= self.now);
                if due {
                    let now = self.now;
                    self.nodes[i].inst.handle_timeout(now);
                    self.drain(i);
                }
            }
        }
        self.now = until;
    }

    fn deliver_due(&mut self) {
        for _ in 0..1_000_000 {
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
            // Drops are counted by the instance; the tests read the counters.
            let _ =
                self.nodes[p.to]
                    .inst
                    .handle_packet(now, p.src, p.dst, packet::VRRP_TTL, &p.bytes);
            self.drain(p.to);
        }
        panic!(
            "livelock: packets keep arriving at {:?}",
            self.now - self.t0
        );
    }

    fn drain(&mut self, i: usize) {
        while let Some(action) = self.nodes[i].inst.poll_action() {
            if !self.nodes[i].alive {
                continue;
            }
            let ev = match action {
                Action::SendAdvert(advert) => {
                    let src = self.nodes[i].inst.config().primary_addr;
                    let dst = if src.is_ipv4() {
                        IpAddr::V4(MCAST_V4)
                    } else {
                        IpAddr::V6(MCAST_V6)
                    };
                    let bytes = packet::encode(&advert, src, dst);
                    for to in 0..self.nodes.len() {
                        if to == i || self.nodes[to].group != self.nodes[i].group {
                            continue;
                        }
                        if self.rng.chance(self.loss_permille) {
                            continue;
                        }
                        self.seq += 1;
                        self.queue.push(InFlight {
                            at: self.now + self.latency,
                            seq: self.seq,
                            to,
                            src,
                            dst,
                            bytes: bytes.clone(),
                        });
                    }
                    Ev::Advert {
                        priority: advert.priority,
                    }
                }
                Action::AddVips => {
                    self.nodes[i].has_vips = true;
                    continue;
                }
                Action::DelVips => {
                    self.nodes[i].has_vips = false;
                    continue;
                }
                Action::SendGarp { repeat } => Ev::Garp(repeat),
                Action::StateChanged { from, to, reason } => Ev::Changed { from, to, reason },
                Action::Notice(_) | Action::WantMaster(_) => continue,
            };
            self.events.push(Event {
                at: self.now,
                node: i,
                ev,
            });
        }
    }

    /// Live nodes in Master.
    pub(crate) fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].alive && self.nodes[*i].inst.state() == State::Master)
            .collect()
    }

    pub(crate) fn state(&self, i: usize) -> State {
        self.nodes[i].inst.state()
    }

    /// When `node` last entered `to`.
    pub(crate) fn entered(&self, node: usize, to: State) -> Option<Instant> {
        self.events
            .iter()
            .rev()
            .find(|e| e.node == node && matches!(&e.ev, Ev::Changed { to: t, .. } if *t == to))
            .map(|e| e.at)
    }

    /// Times `node` sent an advert (of any priority), oldest first.
    pub(crate) fn adverts_of(&self, node: usize) -> Vec<(Instant, Priority)> {
        self.events
            .iter()
            .filter(|e| e.node == node)
            .filter_map(|e| match e.ev {
                Ev::Advert { priority } => Some((e.at, priority)),
                _ => None,
            })
            .collect()
    }
}

pub(crate) fn v2(secs: u8) -> AdvertInterval {
    AdvertInterval::V2(Seconds::new(secs).expect("1..=255"))
}

pub(crate) fn v3(cs: u16) -> AdvertInterval {
    AdvertInterval::V3(Centiseconds::new(cs).expect("1..=4095"))
}

pub(crate) fn addr(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

/// A router `192.0.2.<last>` with VRID 55 and VIP 192.0.2.200.
pub(crate) fn router(last: u8, priority: u8, interval: AdvertInterval) -> InstanceConfig {
    let mut c = InstanceConfig::new(Vrid::new(55).expect("55"), interval, addr(last));
    c.priority = Priority::new(priority);
    c.vips = vec![addr(200)];
    if c.version == Version::V2 {
        c.auth = Some(*b"1111\0\0\0\0");
    }
    c
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Exactly one live Master, holding the VIPs, and nobody else holds them.
fn assert_single_master(sim: &Sim) -> usize {
    let m = sim.masters();
    assert_eq!(m.len(), 1, "masters: {m:?}");
    for (i, n) in sim.nodes.iter().enumerate() {
        assert_eq!(n.alive && n.has_vips, i == m[0], "VIPs on node {i}");
    }
    m[0]
}

#[test]
fn election_highest_priority_wins_at_its_master_down_interval_rfc5798_6_4_1() {
    let mut sim = Sim::new(
        vec![
            router(11, 100, v2(1)),
            router(12, 150, v2(1)),
            router(13, 50, v2(1)),
        ],
        1,
    );
    sim.start_all();
    assert!(sim.masters().is_empty(), "non-owners start as Backup");
    sim.run_for(secs(10));
    assert_eq!(assert_single_master(&sim), 1);
    let md = sim.nodes[1].inst.timing().master_down;
    assert_eq!(sim.entered(1, State::Master), Some(sim.at(md)));
    assert_eq!(
        sim.nodes[0].inst.master(),
        Some((addr(12), Priority::new(150)))
    );
}

#[test]
fn crash_backup_takes_over_exactly_master_down_after_last_advert_rfc5798_6_4_2() {
    for (interval, crash_at) in [
        (v2(1), ms(9_500)),
        (v3(10), ms(2_345)),
        (v3(4095), secs(400)),
    ] {
        let mut sim = Sim::new(vec![router(11, 100, interval), router(12, 99, interval)], 2);
        sim.start_all();
        sim.run_for(crash_at);
        assert_eq!(assert_single_master(&sim), 0);
        let last = sim.adverts_of(0).last().unwrap().0;
        sim.crash(0);
        sim.run_for(secs(300));
        let md = sim.nodes[1].inst.timing().master_down;
        assert_eq!(
            sim.entered(1, State::Master),
            Some(last + md),
            "{interval:?}"
        );
        assert_eq!(assert_single_master(&sim), 1);
    }
}

#[test]
fn lab_figures_crash_takeover_bound() {
    // ../shared/lab/NOTES.md: keepalived took 3.614 s (v2, 1 s) and 0.361 s (v3, 0.1 s)
    // from the last advert to takeover; the protocol bound is 3.613 s / 0.361 s.
    let mut sim = Sim::new(vec![router(11, 100, v2(1)), router(12, 99, v2(1))], 3);
    sim.start_all();
    sim.run_for(secs(5));
    let last = sim.adverts_of(0).last().unwrap().0;
    sim.crash(0);
    sim.run_for(secs(5));
    let took = sim.entered(1, State::Master).unwrap() - last;
    assert_eq!(took, Duration::from_micros(3_613_281));
}

#[test]
fn priority_zero_handover_after_skew_time_rfc5798_6_4_2() {
    for interval in [v2(1), v3(10)] {
        let mut sim = Sim::new(vec![router(11, 100, interval), router(12, 99, interval)], 4);
        sim.start_all();
        sim.run_for(ms(7_777));
        assert_eq!(assert_single_master(&sim), 0);
        let t = sim.now;
        sim.with(0, |i, now| i.shutdown(now));
        assert_eq!(sim.state(0), State::Initialize);
        assert!(!sim.nodes[0].has_vips, "VIPs removed on shutdown");
        assert_eq!(sim.adverts_of(0).last().unwrap(), &(t, Priority::RELEASE));
        sim.run_for(secs(10));
        let skew = sim.nodes[1].inst.timing().skew;
        assert_eq!(sim.entered(1, State::Master), Some(t + skew));
        let Some(Event {
            ev: Ev::Changed { reason, .. },
            ..
        }) = sim
            .events
            .iter()
            .rev()
            .find(|e| e.node == 1 && matches!(e.ev, Ev::Changed { .. }))
        else {
            panic!("no state change")
        };
        assert_eq!(reason, &Reason::MasterReleased);
        assert_eq!(assert_single_master(&sim), 1);
        assert_eq!(sim.nodes[1].inst.counters().priority_zero_received, 1);
    }
}

#[test]
fn master_answers_priority_zero_with_an_advert_rfc5798_6_4_3() {
    // Three routers: the Backup with the lower priority (.13) releases via shutdown while
    // never having been Master — a forged priority 0 is the same on the wire.
    let mut sim = Sim::new(vec![router(11, 100, v3(100)), router(12, 50, v3(100))], 5);
    sim.start_all();
    sim.run_for(secs(5));
    let before = sim.adverts_of(0).len();
    let zero = sim.nodes[1].inst.advert(Priority::RELEASE);
    let bytes = packet::encode(&zero, addr(12), IpAddr::V4(MCAST_V4));
    let t = sim.now;
    sim.nodes[0]
        .inst
        .handle_packet(t, addr(12), IpAddr::V4(MCAST_V4), 255, &bytes)
        .unwrap();
    assert_eq!(
        sim.nodes[0].inst.timer(Timer::Advert),
        Some(t + secs(1)),
        "timer reset"
    );
    sim.with(0, |_, _| ());
    assert_eq!(sim.adverts_of(0).len(), before + 1);
    assert_eq!(sim.state(0), State::Master);
}

#[test]
fn preemption_higher_priority_takes_over_after_master_down_rfc5798_6_4_2() {
    let mut sim = Sim::new(vec![router(11, 100, v2(1)), router(12, 200, v2(1))], 6);
    sim.start(0);
    sim.run_for(secs(10));
    assert_eq!(assert_single_master(&sim), 0);
    let t = sim.now;
    sim.start(1);
    sim.run_for(secs(10));
    let md = sim.nodes[1].inst.timing().master_down;
    assert_eq!(sim.entered(1, State::Master), Some(t + md));
    assert_eq!(assert_single_master(&sim), 1);
    assert_eq!(sim.state(0), State::Backup);
}

#[test]
fn nopreempt_lower_master_keeps_the_role_rfc5798_6_4_2() {
    let mut b = router(12, 200, v2(1));
    b.preempt = false;
    let mut sim = Sim::new(vec![router(11, 100, v2(1)), b], 7);
    sim.start(0);
    sim.run_for(secs(10));
    sim.start(1);
    sim.run_for(secs(60));
    assert_eq!(assert_single_master(&sim), 0);
    // But when the Master dies, the nopreempt Backup takes over as usual.
    sim.crash(0);
    sim.run_for(secs(10));
    assert_eq!(assert_single_master(&sim), 1);
}

#[test]
fn preempt_delay_holds_then_takes_over_one_master_down_after_last_accepted() {
    let mut b = router(12, 200, v2(1));
    b.preempt_delay = secs(5);
    let mut sim = Sim::new(vec![router(11, 100, v2(1)), b], 8);
    sim.start(0);
    sim.run_for(ms(10_500));
    sim.start(1);
    let started = sim.now;
    sim.run_for(secs(30));
    // A advertises at 3.6 s + k; B accepts the first at 10.6 s, which starts the 5 s delay,
    // accepts the ones before 15.6 s, then discards.
    let a_adverts: Vec<_> = sim.adverts_of(0).into_iter().map(|(t, _)| t).collect();
    let first = *a_adverts.iter().find(|t| **t >= started).unwrap();
    let hold_until = first + secs(5);
    let last_accepted = *a_adverts.iter().rev().find(|t| **t < hold_until).unwrap();
    let md = sim.nodes[1].inst.timing().master_down;
    assert_eq!(sim.entered(1, State::Master), Some(last_accepted + md));
    assert_eq!(assert_single_master(&sim), 1);
}

#[test]
fn priority_change_goes_out_with_the_next_advert_and_peer_preempts() {
    let mut sim = Sim::new(vec![router(11, 150, v2(1)), router(12, 100, v2(1))], 9);
    sim.start_all();
    sim.run_for(ms(10_300));
    assert_eq!(assert_single_master(&sim), 0);
    let n = sim.adverts_of(0).len();
    sim.with(0, |i, now| i.set_priority(now, Priority::new(50)));
    assert_eq!(
        sim.adverts_of(0).len(),
        n,
        "no immediate advert (keepalived)"
    );
    assert_eq!(sim.nodes[0].inst.priority(), Priority::new(50));
    sim.run_for(secs(1));
    let (_, p) = *sim.adverts_of(0).last().unwrap();
    assert_eq!(p, Priority::new(50), "next regular advert carries it");
    // The last advert B accepted was the last one at priority 150.
    let last150 = sim
        .adverts_of(0)
        .iter()
        .rev()
        .find(|(_, p)| *p == Priority::new(150))
        .unwrap()
        .0;
    sim.run_for(secs(10));
    let md = sim.nodes[1].inst.timing().master_down;
    assert_eq!(sim.entered(1, State::Master), Some(last150 + md));
    assert_eq!(assert_single_master(&sim), 1);
    assert_eq!(sim.state(0), State::Backup);
}

#[test]
fn effective_priority_is_clamped_and_owner_fixed() {
    let mut sim = Sim::new(vec![router(11, 100, v2(1)), router(12, 255, v2(1))], 10);
    sim.with(0, |i, now| i.set_priority(now, Priority::new(0)));
    assert_eq!(sim.nodes[0].inst.priority(), Priority::MIN_BACKUP);
    sim.with(0, |i, now| i.set_priority(now, Priority::OWNER));
    assert_eq!(sim.nodes[0].inst.priority(), Priority::MAX_BACKUP);
    sim.with(1, |i, now| i.set_priority(now, Priority::new(10)));
    assert_eq!(sim.nodes[1].inst.priority(), Priority::OWNER);
}

#[test]
fn v3_backup_adopts_master_interval_rfc5798_6_4_2() {
    let mut sim = Sim::new(vec![router(11, 200, v3(100)), router(12, 100, v3(10))], 11);
    sim.start_all();
    sim.run_for(secs(20));
    // With its own 0.1 s interval B would time out within 0.4 s between A's 1 s adverts.
    assert_eq!(assert_single_master(&sim), 0);
    assert_eq!(sim.nodes[1].inst.master_adver_int(), v3(100));
    assert!(sim.nodes[1].inst.counters().interval_differs > 0);
    let last = sim.adverts_of(0).last().unwrap().0;
    sim.crash(0);
    sim.run_for(secs(10));
    // Master_Down_Interval from the adopted 1 s: 3 s + (156 * 100 cs / 256).
    assert_eq!(
        sim.entered(1, State::Master),
        Some(last + secs(3) + Duration::from_micros(609_375))
    );
    // As Master it advertises its own configured interval again.
    assert_eq!(sim.nodes[1].inst.master_adver_int(), v3(10));
}

#[test]
fn v2_interval_mismatch_is_dropped_and_counted_rfc3768_7_1() {
    let mut sim = Sim::new(vec![router(11, 200, v2(1)), router(12, 100, v2(2))], 12);
    sim.start_all();
    sim.run_for(secs(20));
    let c = sim.nodes[1].inst.counters();
    assert!(c.dropped(DropReason::Interval) > 0);
    assert_eq!(c.adverts_received, 0);
    // Both claim Master: the misconfiguration the RFC's MUST-discard leaves visible.
    assert_eq!(sim.masters(), vec![0, 1]);
}

#[test]
fn auth_mismatch_is_dropped_and_counted_rfc2338_7_1() {
    let mut wrong_pass = router(12, 100, v2(1));
    wrong_pass.auth = Some(*b"2222\0\0\0\0");
    let mut no_auth = router(13, 90, v2(1));
    no_auth.auth = None;
    let mut sim = Sim::new(vec![router(11, 200, v2(1)), wrong_pass, no_auth], 13);
    sim.start_all();
    sim.run_for(secs(10));
    let c1 = sim.nodes[1].inst.counters();
    assert!(c1.dropped(DropReason::AuthFailure) > 0);
    assert!(
        c1.dropped(DropReason::AuthType) > 0,
        "from the no-auth router"
    );
    let c2 = sim.nodes[2].inst.counters();
    assert!(c2.dropped(DropReason::AuthType) > 0);
    assert_eq!(c2.adverts_received, 0);
    assert_eq!(sim.masters().len(), 3, "nobody hears anybody");
}

#[test]
fn equal_priority_tie_broken_by_higher_primary_address_rfc5798_6_4_3() {
    for interval in [v2(1), v3(10)] {
        let mut sim = Sim::new(
            vec![
                router(12, 100, interval),
                router(11, 100, interval),
                router(13, 100, interval),
            ],
            14,
        );
        sim.start_all();
        sim.run_for(secs(10));
        // All three time out together and become Master; the adverts sort it out.
        assert_eq!(assert_single_master(&sim), 2, "192.0.2.13 wins");
    }
}

#[test]
fn owner_255_becomes_master_at_once_and_preempts_rfc5798_6_4_1() {
    let mut sim = Sim::new(vec![router(11, 254, v3(100)), router(12, 255, v3(100))], 15);
    sim.start(0);
    sim.run_for(secs(10));
    assert_eq!(assert_single_master(&sim), 0);
    let t = sim.now;
    sim.start(1);
    assert_eq!(sim.entered(1, State::Master), Some(t));
    assert_eq!(sim.adverts_of(1).first().map(|a| a.0), Some(t));
    sim.run_for(secs(1));
    assert_eq!(assert_single_master(&sim), 1);
    assert_eq!(
        sim.entered(0, State::Backup),
        Some(t),
        "old Master yields at once"
    );
}

#[test]
fn two_owners_conflict_is_counted_and_resolved_by_address() {
    let mut sim = Sim::new(vec![router(11, 255, v3(100)), router(12, 255, v3(100))], 16);
    sim.start_all();
    sim.run_for(secs(5));
    assert_eq!(assert_single_master(&sim), 1);
    assert!(sim.nodes[0].inst.counters().owner_conflict > 0);
}

#[test]
fn owner_ignore_adverts_drops_everything_rfc5798_7_1() {
    let mut owner = router(12, 255, v3(100));
    owner.owner_ignore_adverts = true;
    let mut sim = Sim::new(vec![router(11, 100, v3(100)), owner], 17);
    sim.start_all();
    sim.run_for(secs(5));
    assert_eq!(assert_single_master(&sim), 1);
    // The non-owner's one advert (if it was ever Master) or none: the owner accepts none.
    assert_eq!(sim.nodes[1].inst.counters().adverts_received, 0);
}

#[test]
fn fault_master_releases_and_recovers_as_backup_then_preempts() {
    let mut sim = Sim::new(vec![router(11, 200, v2(1)), router(12, 100, v2(1))], 18);
    sim.start_all();
    sim.run_for(ms(8_200));
    assert_eq!(assert_single_master(&sim), 0);
    let t = sim.now;
    sim.with(0, |i, now| i.set_fault(now, true, "eth0 down"));
    assert_eq!(sim.state(0), State::Fault);
    assert!(!sim.nodes[0].has_vips);
    assert_eq!(sim.adverts_of(0).last(), Some(&(t, Priority::RELEASE)));
    assert_eq!(
        sim.nodes[0].inst.poll_timeout(),
        None,
        "Fault has no timers"
    );
    sim.run_for(secs(5));
    assert_eq!(
        sim.entered(1, State::Master),
        Some(t + sim.nodes[1].inst.timing().skew)
    );
    assert_eq!(assert_single_master(&sim), 1);
    // In Fault adverts are ignored and counted as such.
    assert!(sim.nodes[0].inst.counters().dropped(DropReason::NotRunning) > 0);
    let t2 = sim.now;
    sim.with(0, |i, now| i.set_fault(now, false, ""));
    assert_eq!(sim.state(0), State::Backup);
    sim.run_for(secs(10));
    let md = sim.nodes[0].inst.timing().master_down;
    assert_eq!(
        sim.entered(0, State::Master),
        Some(t2 + md),
        "preempts back"
    );
    assert_eq!(assert_single_master(&sim), 0);
}

#[test]
fn fault_before_start_and_backup_fault() {
    let mut sim = Sim::new(vec![router(11, 100, v2(1)), router(12, 50, v2(1))], 19);
    sim.with(0, |i, now| i.set_fault(now, true, "link down at startup"));
    sim.start_all();
    assert_eq!(sim.state(0), State::Fault);
    sim.run_for(secs(10));
    assert_eq!(assert_single_master(&sim), 1);
    sim.with(1, |i, now| i.set_fault(now, true, "check failed"));
    assert!(sim.masters().is_empty());
    sim.with(0, |i, now| i.set_fault(now, false, ""));
    sim.run_for(secs(10));
    assert_eq!(assert_single_master(&sim), 0);
}

#[test]
fn initial_state_master_still_waits_master_down() {
    let mut c = router(11, 100, v2(1));
    c.initial_state = super::instance::InitialState::Master;
    c.preempt = false;
    let mut sim = Sim::new(vec![c], 20);
    assert_eq!(sim.nodes[0].inst.config_warnings().len(), 1);
    assert!(sim.nodes[0].inst.config().preempt, "nopreempt cleared");
    sim.start(0);
    assert_eq!(sim.state(0), State::Backup);
    sim.run_for(secs(5));
    let md = sim.nodes[0].inst.timing().master_down;
    assert_eq!(sim.entered(0, State::Master), Some(sim.t0 + md));
}

#[test]
fn lower_priority_master_after_partition_yields_when_healed() {
    let mut sim = Sim::new(vec![router(11, 200, v3(10)), router(12, 100, v3(10))], 21);
    sim.start_all();
    sim.run_for(secs(2));
    assert_eq!(assert_single_master(&sim), 0);
    sim.nodes[1].group = 1;
    sim.run_for(secs(2));
    assert_eq!(sim.masters(), vec![0, 1], "split brain while partitioned");
    sim.nodes[1].group = 0;
    let healed = sim.now;
    sim.run_for(ms(150));
    assert_eq!(assert_single_master(&sim), 0);
    let yielded = sim.entered(1, State::Backup).unwrap();
    assert!(yielded - healed <= ms(100), "within one advert interval");
}

#[test]
fn master_answers_lower_priority_at_once_unless_lower_prio_no_advert() {
    for quiet in [false, true] {
        let mut a = router(11, 200, v2(1));
        a.lower_prio_no_advert = quiet;
        let mut sim = Sim::new(vec![a, router(12, 100, v2(1))], 22);
        sim.start(0);
        sim.run_for(ms(5_500));
        let n = sim.adverts_of(0).len();
        sim.hear_advert(0, 1, addr(12), 100);
        assert_eq!(sim.adverts_of(0).len(), if quiet { n } else { n + 1 });
    }
}

/// A lower router that took over (a partition, a frozen Master's peer) announced the VIPs
/// with its gratuitous ARP; when its advert reaches the Master, the Master announces them
/// again, so hosts do not keep sending to a router about to drop them (keepalived
/// `vrrp_state_master_rx`, `garp_lower_prio_repeat`). Found by the chaos test: without it
/// the client lost the VIP until its neighbour entry expired.
#[test]
fn master_reannounces_the_vips_on_a_lower_priority_advert() {
    let mut sim = Sim::new(vec![router(11, 200, v2(1)), router(12, 100, v2(1))], 25);
    sim.start(0);
    sim.run_for(ms(5_500));
    let garps = |sim: &Sim| {
        sim.events
            .iter()
            .filter(|e| e.node == 0 && matches!(e.ev, Ev::Garp(_)))
            .count()
    };
    let before = garps(&sim);
    sim.hear_advert(0, 1, addr(12), 100);
    assert_eq!(
        garps(&sim),
        before + 1,
        "the Master did not re-announce its VIPs"
    );
    assert_eq!(sim.masters(), vec![0]);
}

#[test]
fn garp_bursts_on_master_then_after_delay_and_refresh() {
    let mut c = router(11, 100, v2(1));
    c.garp.master_refresh = Some(secs(60));
    let mut sim = Sim::new(vec![c], 23);
    sim.start(0);
    sim.run_for(secs(200));
    let became = sim.entered(0, State::Master).unwrap();
    let garps: Vec<_> = sim
        .events
        .iter()
        .filter(|e| matches!(e.ev, Ev::Garp(_)))
        .map(|e| e.at - became)
        .collect();
    assert_eq!(
        garps,
        vec![secs(0), secs(5), secs(65), secs(125), secs(185)]
    );
}

#[test]
fn lossy_lan_keeps_a_single_master_most_of_the_time() {
    // 10 % loss: a Backup only takes over after three consecutive losses (0.1 %).
    let mut sim = Sim::new(vec![router(11, 200, v3(10)), router(12, 100, v3(10))], 24);
    sim.loss_permille = 100;
    sim.start_all();
    sim.run_for(secs(600));
    let flaps = sim.nodes[1].inst.counters().became_master;
    assert!(flaps < 10, "{flaps} takeovers in 6000 adverts");
    sim.loss_permille = 0;
    sim.run_for(secs(1));
    assert_eq!(assert_single_master(&sim), 0);
}

#[test]
fn randomized_elections_converge_to_one_master() {
    let mut rng = Rng::new(0x5eed);
    for run in 0..2000u64 {
        let n = 2 + rng.below(4) as usize;
        let version_v2 = rng.chance(400);
        let interval = if version_v2 {
            v2(1)
        } else {
            v3(1 + rng.below(100) as u16)
        };
        let all_preempt = rng.chance(700);
        let mut configs = Vec::new();
        for i in 0..n {
            let prio = if rng.chance(100) {
                255
            } else {
                1 + rng.below(254) as u8
            };
            let mut c = router(10 + i as u8, prio, interval);
            c.preempt = all_preempt || rng.chance(500) || prio == 255;
            configs.push(c);
        }
        let owners = configs.iter().filter(|c| c.priority.is_owner()).count();
        let mut sim = Sim::new(configs, run);
        sim.latency = Duration::from_micros(rng.below(2_000));
        sim.loss_permille = rng.below(300);
        // Staggered starts, random crashes and restarts under loss, partitions.
        for i in 0..n {
            if rng.chance(500) {
                sim.start(i);
            }
        }
        let step = interval.duration();
        for _ in 0..20 {
            sim.run_for(step * (1 + rng.below(5) as u32));
            let i = rng.below(n as u64) as usize;
            match rng.below(6) {
                0 if sim.nodes[i].alive => sim.crash(i),
                1 if !sim.nodes[i].alive => sim.restart(i),
                2 => sim.nodes[i].group = rng.below(2) as u8,
                3 => sim.with(i, |inst, now| {
                    inst.set_priority(now, Priority::new(1 + rng.below(254) as u8))
                }),
                _ => sim.start(i),
            }
        }
        // Heal: everyone alive, connected, loss-free; allow plenty of master-down intervals.
        for i in 0..n {
            sim.nodes[i].group = 0;
            if !sim.nodes[i].alive {
                sim.restart(i);
            }
            sim.start(i);
        }
        sim.loss_permille = 0;
        sim.run_for(step * 12 + secs(2));
        let masters = sim.masters();
        assert_eq!(
            masters.len(),
            1,
            "run {run}: masters {masters:?}, owners {owners}"
        );
        assert_single_master(&sim);
        // With preemption everywhere and distinct priorities, the best router wins.
        let prios: Vec<_> = sim.nodes.iter().map(|n| n.inst.priority()).collect();
        let best = (0..n)
            .max_by_key(|i| (prios[*i], addr(10 + *i as u8)))
            .unwrap();
        let distinct = (0..n).all(|i| (0..n).all(|j| i == j || prios[i] != prios[j]));
        if all_preempt && distinct {
            assert_eq!(masters[0], best, "run {run}: prios {prios:?}");
        }
    }
}

/// The Master hears a lower-priority advert at `at` after its start (node 1's, never started,
/// so nothing else moves) and the simulation runs 10 s more: when its gratuitous ARP bursts
/// came, relative to the advert, and their repeat counts.
fn garps_after_lower_priority_advert(garp: GarpConfig) -> Vec<(Duration, u32)> {
    let mut a = router(11, 200, v2(1));
    a.garp = garp;
    let mut sim = Sim::new(vec![a, router(12, 100, v2(1))], 26);
    sim.start(0);
    // Past the election (master-down) and the master burst's second set (5 s after it).
    sim.run_for(secs(10));
    let heard = sim.now;
    sim.hear_advert(0, 1, addr(12), 100);
    sim.run_for(secs(10));
    sim.events
        .iter()
        .filter(|e| e.node == 0 && e.at >= heard)
        .filter_map(|e| match e.ev {
            Ev::Garp(repeat) => Some((e.at - heard, repeat)),
            _ => None,
        })
        .collect()
}

/// keepalived's `garp_lower_prio_delay` / `garp_lower_prio_repeat`: a burst at once and a
/// second set after the delay (by default the `garp_master_*` values), because a host drops
/// a neighbour update that arrives within its `locktime` of the lower router's own
/// announcement; 0 repeats sends none, no delay no second set.
#[test]
fn lower_priority_advert_gets_a_garp_burst_and_a_second_set_after_the_delay() {
    let defaults = GarpConfig::default();
    assert_eq!(
        garps_after_lower_priority_advert(defaults),
        vec![(secs(0), 5), (secs(5), 5)]
    );
    let tuned = GarpConfig {
        lower_prio_delay: Some(ms(1_500)),
        lower_prio_repeat: 2,
        ..defaults
    };
    assert_eq!(
        garps_after_lower_priority_advert(tuned),
        vec![(secs(0), 2), (ms(1_500), 2)]
    );
    let once = GarpConfig {
        lower_prio_delay: None,
        ..defaults
    };
    assert_eq!(garps_after_lower_priority_advert(once), vec![(secs(0), 5)]);
    let none = GarpConfig {
        lower_prio_repeat: 0,
        ..defaults
    };
    assert_eq!(garps_after_lower_priority_advert(none), vec![]);
}

/// A Master stalled longer than a Backup waits (a frozen VM: SIGSTOP, the network cut) whose
/// advert makes the Backup yield before the Backup's own advert reaches it would never hear
/// a lower-priority advert, so never announce the VIPs again while the hosts keep the
/// Backup's MAC. Found by the chaos test (a 23 s outage after a frozen Master resumed): the
/// Master now announces them when its advert goes out later than 2 × the interval; a
/// stall shorter than that (no Backup can have taken over) sends nothing extra.
#[test]
fn master_reannounces_the_vips_after_a_stall_longer_than_a_backup_waits() {
    for (stall, reannounced) in [(ms(2_500), true), (ms(1_500), false)] {
        let mut sim = Sim::new(vec![router(11, 200, v2(1))], 27);
        sim.start(0);
        sim.run_for(secs(10));
        let due = sim.nodes[0]
            .inst
            .timer(Timer::Advert)
            .expect("Master's advert timer");
        let resumed = due + stall;
        sim.now = resumed;
        sim.nodes[0].inst.handle_timeout(resumed);
        sim.with(0, |_, _| ());
        let garps: Vec<(Duration, u32)> = sim
            .events
            .iter()
            .filter(|e| e.node == 0 && e.at >= due)
            .filter_map(|e| match e.ev {
                Ev::Garp(repeat) => Some((e.at - due, repeat)),
                _ => None,
            })
            .collect();
        let expected = if reannounced {
            vec![(stall, 5)]
        } else {
            vec![]
        };
        assert_eq!(garps, expected, "stall {stall:?}");
    }
}
