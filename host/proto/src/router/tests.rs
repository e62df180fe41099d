//! The router in the simulated LAN ([`super::sim`]): directed scenarios for each thing the
//! router decides, then thousands of randomized runs with the invariants of
//! [`Lan`](super::sim::Lan) checked after every step.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::sim::{node_addr, route, spec, tracking_check, v2, v3, vip, Lan, Logged};
use super::{
    Event, HookState, InstanceSpec, Output, PathId, Router, SyncGroupSpec, TrackSource, TrackedItem,
};
use crate::track::CheckState;
use crate::vrrp::{AdvertInterval, DropReason, Family, RxDrop, State};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Master-down interval of `priority` at `interval` (RFC 5798 §6.1), plus a little latency.
fn master_down(priority: u8, interval: AdvertInterval) -> Duration {
    crate::vrrp::timing(crate::vrrp::Priority::new(priority), interval).master_down + ms(5)
}

/// Two nodes running VI_1 at 100 / 99.
fn pair(interval: AdvertInterval, seed: u64) -> Lan {
    let mut lan = Lan::new(2, 1, seed);
    lan.configure(0, vec![spec(0, 1, 100, interval)], vec![]);
    lan.configure(1, vec![spec(1, 1, 99, interval)], vec![]);
    lan
}

/// A unicast variant of `spec` sending to and accepting from `peers` (node numbers).
fn unicast(mut s: InstanceSpec<IpAddr, String>, peers: &[usize]) -> InstanceSpec<IpAddr, String> {
    s.peers = peers.iter().map(|p| node_addr(0, *p)).collect();
    s.destinations = s.peers.clone();
    s.key.unicast = true;
    s.protocol.unicast = true;
    s
}

#[test]
fn election_then_crash_failover_within_master_down_rfc5798_6_4_2() {
    let i = v3(100);
    let mut lan = pair(i, 1);
    lan.run_for(master_down(99, i) * 2);
    assert_eq!(lan.masters("VI_1"), vec![0]);
    lan.crash(0);
    let t = lan.now;
    lan.run_for(master_down(99, i));
    assert_eq!(lan.masters("VI_1"), vec![1]);
    let took = lan.nodes[1]
        .log
        .iter()
        .find(|(at, l)| {
            *at >= t
                && matches!(
                    l,
                    Logged::Changed {
                        to: State::Master,
                        ..
                    }
                )
        })
        .map(|(at, _)| *at - t)
        .expect("n1 took over");
    assert!(took <= master_down(99, i), "{took:?}");
    assert_eq!(lan.nodes[1].installed["VI_1"].len(), 1);
}

#[test]
fn sigterm_hands_over_after_the_skew_time_rfc5798_6_4_2() {
    let i = v2(1);
    let mut lan = pair(i, 2);
    lan.run_for(secs(5));
    lan.stop(0);
    let skew = crate::vrrp::timing(crate::vrrp::Priority::new(99), i).skew;
    lan.run_for(skew + ms(5));
    assert_eq!(lan.masters("VI_1"), vec![1]);
}

#[test]
fn unicast_instance_ignores_and_counts_non_peers() {
    let i = v3(100);
    let mut lan = Lan::new(3, 1, 3);
    lan.configure(0, vec![unicast(spec(0, 1, 100, i), &[1])], vec![]);
    lan.configure(1, vec![unicast(spec(1, 1, 99, i), &[0])], vec![]);
    // Node 2 is not a peer of anyone but sends unicast adverts at priority 200 to both.
    lan.configure(2, vec![unicast(spec(2, 1, 200, i), &[0, 1])], vec![]);
    lan.run_for(secs(20));
    assert_eq!(
        lan.masters("VI_1"),
        vec![0, 2],
        "node 2 is alone, 0 wins the pair"
    );
    for n in [0, 1] {
        let r = &lan.nodes[n].router;
        let v = r.instance(r.find_by_name("VI_1").unwrap()).unwrap();
        assert!(
            v.core.counters().dropped(DropReason::NotUnicastPeer) > 10,
            "node {n} counted node 2's adverts"
        );
    }
}

#[test]
fn a_unicast_and_a_multicast_instance_share_a_vrid_without_merging() {
    let i = v3(100);
    let mut lan = Lan::new(3, 1, 4);
    let uni = |n, prio, peers: &[usize]| {
        let mut s = unicast(spec(n, 7, prio, i), peers);
        s.name = "UNI".into();
        s
    };
    let mcast = |n, prio| {
        let mut s = spec(n, 7, prio, i);
        s.name = "MC".into();
        s
    };
    lan.configure(0, vec![mcast(0, 100), uni(0, 50, &[1])], vec![]);
    lan.configure(1, vec![uni(1, 60, &[0])], vec![]);
    lan.configure(2, vec![mcast(2, 90)], vec![]);
    lan.run_for(secs(6));
    assert_eq!(lan.masters("MC"), vec![0]);
    assert_eq!(lan.masters("UNI"), vec![1]);
    // The multicast Master keeps answering the multicast group only; the unicast pair never
    // sees node 2.
    let r = &lan.nodes[0].router;
    assert_eq!(r.instances().count(), 2);
}

#[test]
fn a_heartbeat_path_keeps_the_pair_whole_when_the_primary_link_is_cut() {
    let i = v3(100);
    let mut lan = Lan::new(2, 2, 5);
    let with_hb = |n, prio| {
        let mut s = spec(n, 1, prio, i);
        s.heartbeat = vec![PathId(1)];
        s
    };
    lan.configure(0, vec![with_hb(0, 100)], vec![]);
    lan.configure(1, vec![with_hb(1, 99)], vec![]);
    lan.run_for(secs(5));
    lan.cuts.insert((0, 0, 1));
    lan.cuts.insert((0, 1, 0));
    lan.run_for(secs(10));
    assert_eq!(
        lan.masters("VI_1"),
        vec![0],
        "heard over the heartbeat path"
    );
    // Without the heartbeat path the same cut makes two Masters.
    let mut plain = pair(i, 5);
    plain.run_for(secs(5));
    plain.cuts.insert((0, 0, 1));
    plain.cuts.insert((0, 1, 0));
    plain.run_for(secs(10));
    assert_eq!(plain.masters("VI_1"), vec![0, 1]);
}

#[test]
fn split_brain_is_raised_by_a_one_way_cut_and_cleared_when_it_heals() {
    let i = v3(100);
    let mut lan = pair(i, 6);
    lan.run_for(secs(5));
    // Node 1 stops hearing node 0: it takes over while node 0 still hears it.
    lan.cuts.insert((0, 0, 1));
    let cut_at = lan.now;
    lan.run_for(secs(10));
    assert_eq!(lan.masters("VI_1"), vec![0, 1]);
    let raised = lan.log_since(0, cut_at).contains(&Logged::SplitBrain {
        name: "VI_1".into(),
        raised: true,
    });
    assert!(raised, "node 0 raised the alarm");
    assert!(lan.log_since(0, cut_at).contains(&Logged::Hook {
        target: "VI_1".into(),
        state: HookState::SplitBrain
    }));
    lan.cuts.clear();
    let healed = lan.now;
    // The alarm clears once a whole window (3 advert intervals) passes without evidence.
    lan.run_for(secs(5));
    assert_eq!(lan.masters("VI_1"), vec![0]);
    assert!(lan.log_since(0, healed).contains(&Logged::SplitBrain {
        name: "VI_1".into(),
        raised: false,
    }));
}

/// Node `n` with VI_1 and VI_2 in sync group G.
fn grouped(
    n: usize,
    p1: u8,
    p2: u8,
    i: AdvertInterval,
) -> (Vec<InstanceSpec<IpAddr, String>>, Vec<SyncGroupSpec>) {
    let mut a = spec(n, 1, p1, i);
    a.tracking.push(tracking_check("chk", 0));
    let b = spec(n, 2, p2, i);
    (
        vec![a, b],
        vec![SyncGroupSpec {
            name: "G".into(),
            members: vec!["VI_1".into(), "VI_2".into()],
        }],
    )
}

#[test]
fn sync_group_keeps_both_members_on_one_node_with_mixed_priorities_keepalived_vrrp_sync() {
    let i = v3(100);
    let mut lan = Lan::new(2, 1, 7);
    for n in 0..2 {
        lan.set_check(n, "chk", CheckState::Up);
    }
    let (s0, g0) = grouped(0, 100, 90, i);
    let (s1, g1) = grouped(1, 90, 100, i);
    lan.configure(0, s0, g0);
    // Started a little later, as real nodes are (with identical start times both nodes'
    // members time out at once, take both VRIDs, and give both up to each other).
    lan.run_for(ms(300));
    lan.configure(1, s1, g1);
    lan.run_for(secs(6));
    let m1 = lan.masters("VI_1");
    assert_eq!(m1.len(), 1);
    assert_eq!(lan.masters("VI_2"), m1, "both members on one node");
    // The Master node's VI_1 check fails (weight 0): the whole group faults there and the
    // other node takes both.
    let master = m1[0];
    lan.set_check(master, "chk", CheckState::Down);
    assert_eq!(lan.state(master, "VI_2"), Some(State::Fault));
    lan.run_for(secs(5));
    let other = 1 - master;
    assert_eq!(lan.masters("VI_1"), vec![other]);
    assert_eq!(lan.masters("VI_2"), vec![other]);
    assert!(lan.log_since(master, lan.t0).contains(&Logged::Hook {
        target: "group G".into(),
        state: HookState::Fault
    }));
    // Recovery: both come back as Backups together.
    lan.set_check(master, "chk", CheckState::Up);
    assert_eq!(lan.state(master, "VI_1"), Some(State::Backup));
    assert_eq!(lan.state(master, "VI_2"), Some(State::Backup));
}

#[test]
fn a_sync_group_member_hearing_a_lower_router_reannounces_every_member_keepalived_master_rx() {
    let i = v3(100);
    let mut lan = Lan::new(2, 1, 9);
    lan.set_check(0, "chk", CheckState::Up);
    let (s0, g0) = grouped(0, 100, 100, i);
    lan.configure(0, s0, g0);
    // Node 1 runs VI_1 alone, lower: it speaks only for VI_1.
    lan.configure(1, vec![spec(1, 1, 90, i)], vec![]);
    // Past node 0's takeover and its second burst (`garp_master_delay`, 5 s).
    lan.run_for(secs(10));
    assert_eq!(lan.masters("VI_1"), vec![0]);
    assert_eq!(lan.masters("VI_2"), vec![0]);
    // Node 1 stops hearing node 0 and takes VI_1 over: node 0 hears a lower router for
    // VI_1 only, and announces VI_2's addresses again as well.
    lan.cuts.insert((0, 0, 1));
    let cut_at = lan.now;
    lan.run_for(master_down(90, i) + secs(1));
    assert_eq!(lan.masters("VI_1"), vec![0, 1]);
    let announced = |name: &str| {
        lan.log_since(0, cut_at)
            .iter()
            .filter(|l| matches!(l, Logged::Announce { name: n, .. } if n == name))
            .count()
    };
    assert!(announced("VI_1") > 0, "VI_1 answers the lower router");
    assert!(
        announced("VI_2") > 0,
        "VI_2, in VI_1's sync group, announces with it"
    );
}

#[test]
fn reload_keeps_a_masters_vips_and_applies_only_the_difference() {
    let i = v3(100);
    let mut lan = pair(i, 8);
    lan.run_for(secs(5));
    let mut s = spec(0, 1, 100, i);
    let extra: IpAddr = "192.0.2.250".parse().unwrap();
    s.vips.push(extra);
    s.protocol.vips.push(extra);
    let now = lan.now;
    let id = lan.nodes[0].router.upsert(now, s).unwrap();
    let outs: Vec<Output<IpAddr, String>> =
        std::iter::from_fn(|| lan.nodes[0].router.poll_output()).collect();
    assert!(outs.contains(&Output::AddVips {
        instance: id,
        vips: vec![extra]
    }));
    assert!(!outs.iter().any(|o| matches!(o, Output::DelVips { .. })));
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Transmit(_))),
        "no extra advert"
    );
    let announced = outs
        .iter()
        .filter(|o| matches!(o, Output::Announce { vips, .. } if vips == &vec![extra]))
        .count();
    assert_eq!(announced, 5, "garp_master_repeat for the added address");
    assert_eq!(lan.masters("VI_1"), vec![0]);
    // Removing it again removes only it.
    let now = lan.now;
    lan.nodes[0].router.upsert(now, spec(0, 1, 100, i)).unwrap();
    let outs: Vec<Output<IpAddr, String>> =
        std::iter::from_fn(|| lan.nodes[0].router.poll_output()).collect();
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Output::DelVips { .. } | Output::AddVips { .. }))
            .collect::<Vec<_>>(),
        vec![&Output::DelVips {
            instance: id,
            vips: vec![extra]
        }]
    );
}

#[test]
fn reload_removing_an_instance_releases_it_with_priority_zero_then_stop_hook() {
    let i = v3(100);
    let mut lan = pair(i, 9);
    lan.run_for(secs(5));
    let now = lan.now;
    lan.nodes[0].router.retain(now, |_| false);
    let outs: Vec<Output<IpAddr, String>> =
        std::iter::from_fn(|| lan.nodes[0].router.poll_output()).collect();
    let zero = outs
        .iter()
        .position(|o| matches!(o, Output::Transmit(t) if t.payload.get(2) == Some(&0)));
    let del = outs
        .iter()
        .position(|o| matches!(o, Output::DelVips { .. }));
    let stop = outs
        .iter()
        .position(|o| matches!(o, Output::Hook(h) if h.state == HookState::Stop));
    let removed = outs
        .iter()
        .position(|o| matches!(o, Output::Event(super::Event::Removed { .. })));
    assert!(
        zero < del && del < stop && stop < removed && zero.is_some(),
        "{outs:?}"
    );
    assert_eq!(lan.nodes[0].router.instances().count(), 0);
}

#[test]
fn paced_gratuitous_arps_follow_the_interval_and_stop_when_leaving_master() {
    let i = v3(100);
    let mut lan = Lan::new(2, 1, 10);
    let mut s = spec(0, 1, 255, i);
    s.announce_interval = ms(100);
    lan.configure(0, vec![s], vec![]);
    let start = lan.now;
    lan.run_for(ms(450));
    let times: Vec<Duration> = lan.nodes[0]
        .log
        .iter()
        .filter(|(_, l)| matches!(l, Logged::Announce { .. }))
        .map(|(t, _)| *t - start)
        .collect();
    assert_eq!(times, vec![ms(0), ms(100), ms(200), ms(300), ms(400)]);
    // A burst cut short by leaving Master (a weight-0 check fails) sends nothing more.
    let mut lan = Lan::new(2, 1, 10);
    let mut s = spec(0, 1, 255, i);
    s.announce_interval = ms(100);
    s.tracking = vec![tracking_check("chk", 0)];
    lan.set_check(0, "chk", CheckState::Up);
    lan.configure(0, vec![s], vec![]);
    lan.run_for(ms(150));
    lan.set_check(0, "chk", CheckState::Down);
    assert_eq!(lan.state(0, "VI_1"), Some(State::Fault));
    let fault_at = lan.now;
    lan.run_for(secs(1));
    assert!(
        !lan.log_since(0, fault_at)
            .iter()
            .any(|l| matches!(l, Logged::Announce { .. })),
        "no announcement after leaving Master"
    );
}

#[test]
fn datagrams_no_instance_takes_are_counted_on_the_path_rfc5798_7_1() {
    let mut r: Router<IpAddr, String> = Router::new();
    let now = Instant::now();
    r.upsert(now, spec(0, 1, 100, v3(100))).unwrap();
    let src = node_addr(0, 1);
    let dst: IpAddr = "224.0.0.18".parse().unwrap();
    r.handle_datagram(now, PathId(0), src, dst, 255, &[0x31]);
    r.handle_datagram(now, PathId(0), src, dst, 255, &[0x31, 9, 100, 0]);
    r.handle_datagram(now, PathId(3), src, dst, 255, &[0x31, 1, 100, 0]);
    let counters: Vec<_> = r.path_counters().collect();
    let on = |path| {
        counters
            .iter()
            .find(|((p, _), _)| *p == PathId(path))
            .map(|(_, c)| (*c).clone())
            .unwrap_or_default()
    };
    assert_eq!(on(0).dropped(DropReason::Length), 1);
    assert_eq!(on(0).dropped(DropReason::Vrid), 1);
    assert_eq!(
        on(3).dropped(DropReason::Vrid),
        1,
        "VRID 1 is not on path 3"
    );
}

#[test]
fn drops_before_the_router_are_counted_on_the_path_and_logged_at_powers_of_two() {
    let mut r: Router<IpAddr, String> = Router::new();
    r.handle_io_drops(PathId(2), Family::V4, RxDrop::QueueFull, 0);
    assert_eq!(
        r.path_counters().count(),
        0,
        "nothing dropped, nothing counted"
    );
    r.handle_io_drops(PathId(2), Family::V4, RxDrop::QueueFull, 1);
    r.handle_io_drops(PathId(2), Family::V4, RxDrop::QueueFull, 2);
    r.handle_io_drops(PathId(2), Family::V4, RxDrop::QueueFull, 2);
    r.handle_io_drops(PathId(2), Family::V4, RxDrop::IpLayer("bad IHL".into()), 1);
    let (_, counters) = r.path_counters().next().expect("counted on path 2");
    assert_eq!(counters.dropped(DropReason::QueueFull), 5);
    assert_eq!(counters.dropped(DropReason::Malformed), 1);
    // Totals 1, 3 (crosses 2), 5 (crosses 4): three lines for the queue, one for the header.
    let mut logged = Vec::new();
    while let Some(output) = r.poll_output() {
        if let Output::Event(Event::Dropped {
            drop, count, src, ..
        }) = output
        {
            assert_eq!(src, None);
            logged.push((drop.reason(), count));
        }
    }
    assert_eq!(
        logged,
        [
            (DropReason::QueueFull, 1),
            (DropReason::QueueFull, 3),
            (DropReason::QueueFull, 5),
            (DropReason::Malformed, 1)
        ]
    );
}

#[test]
fn tracking_weights_move_the_master_and_weight_zero_faults() {
    let i = v3(100);
    let mut lan = Lan::new(2, 1, 11);
    let mut s0 = spec(0, 1, 100, i);
    s0.tracking = vec![
        tracking_check("web", -20),
        TrackedItem {
            source: TrackSource::Interface("eth9".into()),
            weight: 0,
            reverse: false,
        },
    ];
    lan.set_check(0, "web", CheckState::Up);
    lan.set_link(0, "eth9", true);
    lan.configure(0, vec![s0], vec![]);
    lan.configure(1, vec![spec(1, 1, 90, i)], vec![]);
    lan.run_for(secs(5));
    assert_eq!(lan.masters("VI_1"), vec![0]);
    lan.set_check(0, "web", CheckState::Down);
    lan.run_for(secs(5));
    assert_eq!(lan.masters("VI_1"), vec![1], "80 < 90: the peer preempts");
    lan.set_check(0, "web", CheckState::Up);
    lan.run_for(secs(5));
    assert_eq!(lan.masters("VI_1"), vec![0]);
    lan.set_link(0, "eth9", false);
    assert_eq!(lan.state(0, "VI_1"), Some(State::Fault));
    lan.run_for(secs(5));
    assert_eq!(lan.masters("VI_1"), vec![1]);
    // A check that was never reported counts as down.
    let mut r: Router<IpAddr, String> = Router::new();
    let mut s = spec(0, 1, 100, i);
    s.tracking = vec![tracking_check("missing", 0)];
    let id = r.upsert(Instant::now(), s).unwrap();
    assert_eq!(r.instance(id).unwrap().core.state(), State::Fault);
}

#[test]
fn a_tracked_file_value_moves_the_priority_and_reports_it() {
    // keepalived track_file.c: status = value × weight × multiplier; -254 = Fault.
    let now = Instant::now();
    let mut r: Router<IpAddr, String> = Router::new();
    let mut s = spec(0, 1, 100, v3(100));
    s.tracking = vec![TrackedItem {
        source: TrackSource::File("prio".into()),
        weight: -2,
        reverse: false,
    }];
    let id = r.upsert(now, s).unwrap();
    while r.poll_output().is_some() {}
    r.set_file_value(now, "prio", 10);
    assert_eq!(r.instance(id).unwrap().core.priority().get(), 80);
    let changes: Vec<_> = std::iter::from_fn(|| r.poll_output())
        .filter_map(|o| match o {
            Output::Event(Event::PriorityChanged {
                from, to, state, ..
            }) => Some((from.get(), to.get(), state)),
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec![(100, 80, State::Backup)]);
    // The same value again changes nothing and reports nothing.
    r.set_file_value(now, "prio", 10);
    assert!(std::iter::from_fn(|| r.poll_output()).next().is_none());
    r.set_file_value(now, "prio", 127);
    assert_eq!(r.instance(id).unwrap().core.state(), State::Fault);
    r.set_file_value(now, "prio", 0);
    assert_ne!(r.instance(id).unwrap().core.state(), State::Fault);
    assert_eq!(r.instance(id).unwrap().core.priority().get(), 100);
}

/// keepalived `process_update_track_process_status`: a tracked process is a tracker like a
/// script; never reported yet (before the first /proc scan) it is neither up nor down.
#[test]
fn tracked_processes_weigh_like_checks_and_start_unreported() {
    let i = v3(100);
    let now = Instant::now();
    let process = |name: &str, weight: i32| TrackedItem {
        source: TrackSource::Process(name.into()),
        weight,
        reverse: false,
    };
    let mut r: Router<IpAddr, String> = Router::new();
    let mut s = spec(0, 1, 100, i);
    s.tracking = vec![process("nginx", 0), process("sshd", 10)];
    let id = r.upsert(now, s).unwrap();
    assert_eq!(r.instance(id).unwrap().core.state(), State::Fault);
    r.set_process(now, "nginx", true);
    assert_ne!(r.instance(id).unwrap().core.state(), State::Fault);
    assert_eq!(r.instance(id).unwrap().core.priority().get(), 100);
    r.set_process(now, "sshd", true);
    assert_eq!(r.instance(id).unwrap().core.priority().get(), 110);
    r.set_process(now, "nginx", false);
    assert_eq!(r.instance(id).unwrap().core.state(), State::Fault);
    r.remove_process(now, "nginx");
    assert_eq!(
        r.instance(id).unwrap().core.state(),
        State::Fault,
        "unreported again"
    );
    // A check of the same name is another tracker.
    r.set_check(now, "nginx", CheckState::Up);
    assert_eq!(r.instance(id).unwrap().core.state(), State::Fault);
}

// -------------------------------------------------------------------------------------------
// Randomized runs

/// The shape of one randomized run, the same for every node.
#[derive(Debug, Clone, Copy)]
struct Shape {
    nodes: usize,
    vrids: u8,
    interval: AdvertInterval,
    heartbeat: bool,
    grouped: bool,
}

/// One random node configuration: `vrids` instances (random priorities, some unicast, a
/// heartbeat path on some runs), VI_1 + VI_2 in a sync group on some runs.
fn random_config(
    lan: &mut Lan,
    n: usize,
    shape: Shape,
    reload_extra: bool,
) -> (Vec<InstanceSpec<IpAddr, String>>, Vec<SyncGroupSpec>) {
    let Shape {
        nodes,
        vrids,
        interval,
        heartbeat,
        grouped,
    } = shape;
    let mut specs = Vec::new();
    for vrid in 1..=vrids {
        // Distinct priorities per VRID so the expected Master is unambiguous; 255 sometimes.
        let base = 50 + u8::try_from(lan.rng.below(150)).unwrap_or(0);
        let prio = if lan.rng.chance(30) { 255 } else { base };
        let mut s = spec(n, vrid, prio, interval);
        if vrid == vrids && vrids > 2 {
            let peers: Vec<usize> = (0..nodes).filter(|p| *p != n).collect();
            s = unicast(s, &peers);
        }
        if heartbeat {
            s.heartbeat = vec![PathId(1)];
        }
        if vrid == 1 {
            s.tracking.push(tracking_check(
                "chk",
                if lan.rng.chance(500) { 0 } else { -30 },
            ));
        }
        if reload_extra {
            let extra = vip(vrid + 20);
            s.vips.push(extra);
        }
        specs.push(s);
    }
    let groups = if grouped && vrids >= 2 {
        vec![SyncGroupSpec {
            name: "G".into(),
            members: vec!["VI_1".into(), "VI_2".into()],
        }]
    } else {
        Vec::new()
    };
    (specs, groups)
}

fn randomized_run(seed: u64) {
    let mut lan = Lan::new(2, 2, seed);
    let nodes = 2 + usize::try_from(lan.rng.below(2)).unwrap_or(0);
    lan = Lan::new(nodes, 2, seed);
    let interval = if lan.rng.chance(500) { v3(100) } else { v3(20) };
    let vrids = 1 + u8::try_from(lan.rng.below(3)).unwrap_or(0);
    let heartbeat = lan.rng.chance(300);
    let grouped = lan.rng.chance(500);
    lan.latency = Duration::from_micros(100 + lan.rng.below(2000));
    let shape = Shape {
        nodes,
        vrids,
        interval,
        heartbeat,
        grouped,
    };
    for n in 0..nodes {
        lan.set_check(n, "chk", CheckState::Up);
        let (specs, groups) = random_config(&mut lan, n, shape, false);
        lan.configure(n, specs, groups);
        let stagger = Duration::from_millis(1 + lan.rng.below(500));
        lan.run_for(stagger);
    }
    let step = interval.duration();
    for _ in 0..(10 + lan.rng.below(30)) {
        let n = usize::try_from(lan.rng.below(u64::try_from(nodes).unwrap_or(1))).unwrap_or(0);
        match lan.rng.below(10) {
            0 => lan.crash(n),
            1 if !lan.nodes[n].alive => lan.restart(n),
            2 => lan.stop(n),
            3 => {
                let other = (n + 1) % nodes;
                let segment = u32::try_from(lan.rng.below(2)).unwrap_or(0);
                lan.cuts.insert((segment, n, other));
            }
            4 => lan.cuts.clear(),
            5 => lan.loss_permille = lan.rng.below(300),
            6 => {
                let state = if lan.rng.chance(500) {
                    CheckState::Down
                } else {
                    CheckState::Up
                };
                lan.set_check(n, "chk", state);
            }
            7 => {
                let extra = lan.rng.chance(500);
                let (specs, groups) = random_config(&mut lan, n, shape, extra);
                lan.configure(n, specs, groups);
            }
            8 => {
                let up = lan.rng.chance(500);
                lan.set_link(n, "eth0", up);
            }
            _ => {}
        }
        let rounds = u32::try_from(1 + lan.rng.below(40)).unwrap_or(1);
        lan.run_for(step * rounds);
    }
    // Heal everything and let it converge: the longest master-down (priority 1) is
    // 3 × interval + skew ≤ 4 intervals, twice for a preemption, plus sync groups whose
    // mirrored members may time out together a few times before jitter separates them.
    lan.cuts.clear();
    lan.loss_permille = 0;
    for n in 0..nodes {
        if !lan.nodes[n].alive {
            lan.restart(n);
        }
        lan.set_check(n, "chk", CheckState::Up);
        let stagger = Duration::from_millis(1 + lan.rng.below(300));
        lan.run_for(stagger);
    }
    lan.run_for(step * 100);
    lan.assert_converged(vrids, &format!("seed {seed}"));
}

/// Thousands of random schedules of crashes, SIGTERMs, restarts, one-way cuts, loss, check
/// flips, reloads and sync groups; the per-step invariants (priority in range, a deadline
/// whenever one is due, VIPs exactly on Masters, groups never split between MASTER and
/// BACKUP) are asserted by the LAN after every step, convergence at the end.
#[test]
fn randomized_lans_keep_the_invariants_and_converge_to_one_master_per_vrid() {
    if let Some(seed) = std::env::var("ROUTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return randomized_run(seed);
    }
    for seed in 0..2_000 {
        let run = std::panic::catch_unwind(|| randomized_run(seed));
        assert!(
            run.is_ok(),
            "randomized run with seed {seed} failed (replay: ROUTER_SEED={seed})"
        );
    }
}

#[test]
fn maintenance_hands_over_in_the_skew_time_and_never_takes_over_rfc5798_6_4_3() {
    let i = v3(100);
    let mut lan = pair(i, 7);
    lan.run_for(master_down(99, i) * 2);
    assert_eq!(lan.masters("VI_1"), vec![0]);
    // The Master stands down with priority 0: the Backup takes over after its skew time,
    // not a master-down interval.
    lan.set_maintenance(0, "VI_1", true);
    let skew = crate::vrrp::timing(crate::vrrp::Priority::new(99), i).skew;
    lan.run_for(skew + ms(5));
    assert_eq!(lan.masters("VI_1"), vec![1], "{}", lan.recent(0, 5));
    assert_eq!(lan.state(0, "VI_1"), Some(State::Backup));
    // A reload that keeps the instance, and reloads that remove it and add it again: still
    // in maintenance, by name.
    lan.configure(0, vec![spec(0, 1, 100, i)], vec![]);
    lan.configure(0, vec![], vec![]);
    lan.configure(0, vec![spec(0, 1, 100, i)], vec![]);
    lan.run_for(master_down(100, i) * 3);
    assert_eq!(lan.masters("VI_1"), vec![1]);
    // The peer dies: nobody is Master, the node in maintenance stays Backup.
    lan.crash(1);
    lan.run_for(master_down(100, i) * 5);
    assert_eq!(lan.masters("VI_1"), Vec::<usize>::new());
    assert_eq!(lan.state(0, "VI_1"), Some(State::Backup));
    // A restart keeps it (the daemon persists the set).
    lan.restart(0);
    lan.run_for(master_down(100, i) * 3);
    assert_eq!(lan.masters("VI_1"), Vec::<usize>::new());
    // Out of maintenance: Master within a master-down interval.
    lan.set_maintenance(0, "VI_1", false);
    lan.run_for(master_down(100, i));
    assert_eq!(lan.masters("VI_1"), vec![0]);
    // Back with the peer: the higher-priority node preempts as configured.
    lan.restart(1);
    lan.run_for(master_down(99, i) * 2);
    assert_eq!(lan.masters("VI_1"), vec![0]);
}

#[test]
fn maintenance_of_a_sync_group_member_keeps_the_whole_group_backup() {
    let i = v3(100);
    let mut lan = Lan::new(2, 1, 8);
    for n in [0, 1] {
        lan.set_check(n, "chk", CheckState::Up);
        let (specs, groups) = grouped(n, 100 - n as u8, 100 - n as u8, i);
        lan.configure(n, specs, groups);
    }
    lan.run_for(master_down(99, i) * 3);
    assert_eq!(lan.masters("VI_1"), vec![0]);
    assert_eq!(lan.masters("VI_2"), vec![0]);
    lan.set_maintenance(0, "VI_1", true);
    lan.run_for(master_down(99, i) * 3);
    assert_eq!(lan.masters("VI_1"), vec![1]);
    assert_eq!(lan.masters("VI_2"), vec![1], "the group follows its member");
    lan.crash(1);
    lan.run_for(master_down(100, i) * 5);
    assert_eq!(lan.masters("VI_1"), Vec::<usize>::new());
    assert_eq!(
        lan.masters("VI_2"),
        Vec::<usize>::new(),
        "the group waits for VI_1"
    );
    let now = lan.now;
    assert!(
        !lan.nodes[0].router.set_maintenance(now, "VI_9", true),
        "an unknown name runs nowhere"
    );
}

/// Found by the `router_sim` fuzz target: an address owner whose sync-group sibling is in
/// maintenance went Master at start-up (and when its Fault cleared) while the sibling could
/// not follow — the group split. Maintenance of one member keeps the whole group Backup.
#[test]
fn an_owner_does_not_take_over_alone_while_its_group_sibling_is_in_maintenance() {
    let i = v3(100);
    let mut lan = Lan::new(1, 1, 11);
    lan.set_check(0, "chk", CheckState::Up);
    lan.set_maintenance(0, "VI_1", true);
    let (specs, groups) = grouped(0, 100, 255, i);
    lan.configure(0, specs, groups);
    lan.run_for(master_down(100, i) * 3);
    assert_eq!(lan.state(0, "VI_1"), Some(State::Backup));
    assert_eq!(lan.state(0, "VI_2"), Some(State::Backup), "owner held back");
    // Fault and recovery: the owner's Fault-cleared shortcut is held back the same way.
    lan.set_link(0, "eth0", false);
    lan.run_for(i.duration());
    lan.set_link(0, "eth0", true);
    lan.run_for(master_down(100, i) * 3);
    assert_eq!(lan.masters("VI_2"), Vec::<usize>::new(), "owner held back");
    // Out of maintenance, the group goes MASTER together.
    lan.set_maintenance(0, "VI_1", false);
    lan.run_for(master_down(100, i) * 3);
    assert_eq!(lan.masters("VI_1"), vec![0]);
    assert_eq!(lan.masters("VI_2"), vec![0]);
}

/// Found by the `router_sim` fuzz target: the address owner, Master already, and a sibling
/// that joins the group (a restart's second instance, a reload) in maintenance — the owner
/// was told to pull the sibling up, which cannot follow. The group steps down instead.
#[test]
fn a_group_sibling_joining_in_maintenance_brings_the_owner_down() {
    let i = v3(100);
    let mut lan = Lan::new(1, 1, 12);
    lan.set_check(0, "chk", CheckState::Up);
    let (mut specs, groups) = grouped(0, 100, 255, i);
    let owner_only = vec![specs.remove(1)];
    lan.configure(0, owner_only, groups.clone());
    lan.run_for(i.duration());
    assert_eq!(
        lan.masters("VI_2"),
        vec![0],
        "the owner alone starts Master"
    );
    lan.set_maintenance(0, "VI_1", true);
    let (specs, groups) = grouped(0, 100, 255, i);
    lan.configure(0, specs, groups);
    lan.run_for(master_down(100, i) * 3);
    assert_eq!(lan.state(0, "VI_1"), Some(State::Backup));
    assert_eq!(
        lan.state(0, "VI_2"),
        Some(State::Backup),
        "the group steps down"
    );
}

/// keepalived's `vrrp_state_become_master` / `vrrp_restore_interface`: a Master installs its
/// virtual routes after its addresses and removes them before them (the simulation asserts
/// the order and, after every step, that only a Master holds them); they move with the
/// Master on a handover.
#[test]
fn virtual_routes_follow_the_master_after_the_addresses() {
    let i = v3(100);
    let mut lan = pair(i, 21);
    lan.run_for(secs(5));
    assert_eq!(lan.masters("VI_1"), vec![0]);
    assert_eq!(lan.nodes[0].routes["VI_1"].len(), 1);
    assert!(lan.nodes[0].routes["VI_1"].contains(&route(1)));
    assert!(lan.nodes[1].routes.get("VI_1").is_none_or(|r| r.is_empty()));
    lan.stop(0);
    assert!(lan.nodes[0].routes.get("VI_1").is_none_or(|r| r.is_empty()));
    lan.run_for(secs(5));
    assert_eq!(lan.masters("VI_1"), vec![1]);
    assert!(lan.nodes[1].routes["VI_1"].contains(&route(1)));
}

#[test]
fn reload_gives_a_master_only_the_route_difference() {
    let i = v3(100);
    let mut lan = pair(i, 22);
    lan.run_for(secs(5));
    let mut s = spec(0, 1, 100, i);
    let extra = "203.0.113.0/24 blackhole".to_owned();
    s.routes = vec![extra.clone()];
    let now = lan.now;
    let id = lan.nodes[0].router.upsert(now, s).unwrap();
    let outs: Vec<Output<IpAddr, String>> =
        std::iter::from_fn(|| lan.nodes[0].router.poll_output()).collect();
    let changes: Vec<&Output<IpAddr, String>> = outs
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::AddRoutes { .. }
                    | Output::DelRoutes { .. }
                    | Output::AddVips { .. }
                    | Output::DelVips { .. }
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            &Output::DelRoutes {
                instance: id,
                routes: vec![route(1)]
            },
            &Output::AddRoutes {
                instance: id,
                routes: vec![extra]
            },
        ]
    );
    assert_eq!(lan.masters("VI_1"), vec![0]);
}
