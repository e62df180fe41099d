//! A root daemon on a hostile LAN, end to end (the hardening issue): a packet flood while a
//! sync group fails over, unicast adverts from a non-peer, two instances on one VRID, a
//! custom multicast group with keepalived as the peer, an interface re-created under a
//! running instance, a panicking protocol loop, stale VIPs after kill -9, and
//! `enable_script_security` switched on by a reload.
//!
//! Timing margins come from the protocol: a failover is bounded by the Backup's master-down
//! interval (3 × advert_int + skew), a handover after priority 0 by the skew time; every
//! wait adds the lab's generous slack for a loaded machine.
//!
//! Needs the daemon built with `--features fault-injection` (`make test` does), root,
//! keepalived, python3.

use std::time::Duration;

use wasmalived_e2e::features::{conf, instance, lab_with_nodes as lab, raw_status, SETTLE};
use wasmalived_e2e::{
    now_epoch, wait_for, wasmalived_bin, Impl, Lab, LabError, PacketKind, Pair, Proto, Result,
    INSTANCE, NODES, VRID,
};

const W: Impl = Impl::Wasmalived;
const K: Impl = Impl::Keepalived;
const N1: &str = "n1";
const N2: &str = "n2";
const PAIR: [&str; 2] = [N1, N2];

/// Starts a flood of VRRP datagrams in `node` towards 224.0.0.18: 2-byte payloads with
/// random VRIDs (too short to be an advert), as fast as one python process can send.
fn start_flood(lab: &Lab, node: &str) -> Result<wasmalived_e2e::Proc> {
    let script = "import os, socket\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)\n\
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)\n\
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'eth0')\n\
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton('192.0.2.100'))\n\
        while True:\n    s.sendto(bytes([0x31, os.urandom(1)[0]]), ('224.0.0.18', 0))\n";
    lab.spawn(
        node,
        &["/usr/bin/python3", "-c", script],
        lab.dir().join(format!("{node}-flood.log")),
    )
}

/// A counter of `d`'s status summed over its instances and receive paths.
fn total_counter(d: &wasmalived_e2e::Daemon, name: &str) -> Result<u64> {
    let out = d.status_json()?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|_| LabError::parse("status JSON", &out))?;
    let sum = |key: &str| -> u64 {
        v.get(key)
            .and_then(|l| l.as_array())
            .map(|l| {
                l.iter()
                    .filter_map(|i| i.get("counters")?.get(name)?.as_u64())
                    .sum()
            })
            .unwrap_or(0)
    };
    Ok(sum("instances") + sum("paths"))
}

#[test]
fn a_flood_while_a_sync_group_fails_over_leaves_no_member_behind() -> Result<()> {
    let mut lab = lab("hdflood", 2)?;
    lab.add_client("client", "192.0.2.100/24", "2001:db8::100/64")?;
    let (v1, v2) = ("192.0.2.201", "192.0.2.202");
    let group = "vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n";
    let node_conf = |id: &str, state: &str, prio: u8| {
        conf(
            id,
            &[
                group.to_string(),
                instance("VI_1", 51, state, prio, "0.3", &[v1], ""),
                instance("VI_2", 52, state, prio, "0.3", &[v2], ""),
            ],
        )
    };
    let d1 = lab.start_daemon(W, N1, &node_conf(N1, "MASTER", 100))?;
    let d2 = lab.start_daemon(W, N2, &node_conf(N2, "BACKUP", 99))?;
    lab.wait_sole_holder(&PAIR, v1, N1, SETTLE)?;
    lab.wait_sole_holder(&PAIR, v2, N1, SETTLE)?;

    let flood = start_flood(&lab, "client")?;
    // The flood reaches both daemons and is counted; the Master keeps both VIPs meanwhile.
    wait_for(
        "the flood to be counted on n2",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || Ok(total_counter(&d2, "rx_length")? + total_counter(&d2, "rx_vrid")? > 1000),
        || format!("n2 status: {:?}", d2.status_json().ok()),
    )?;
    lab.expect_sole_holder_for(&PAIR, v1, N1, Duration::from_secs(2))?;

    // n1 dies under the flood: both members move to n2 together, within the master-down
    // interval (3 × 0.3 s + skew) plus the lab's slack.
    lab.crash(&d1, &[v1, v2])?;
    lab.wait_sole_holder(&PAIR, v1, N2, Duration::from_secs(5))?;
    lab.wait_sole_holder(&PAIR, v2, N2, Duration::from_secs(5))?;
    for member in ["VI_1", "VI_2"] {
        lab.wait_state(&d2, member, "MASTER", Duration::from_secs(3))?;
    }
    // ...and stay together while the flood goes on.
    std::thread::sleep(Duration::from_secs(2));
    for member in ["VI_1", "VI_2"] {
        lab.wait_state(&d2, member, "MASTER", Duration::from_millis(100))?;
    }
    flood.kill9_group()?;
    lab.pass()
}

#[test]
fn a_unicast_instance_ignores_and_counts_adverts_from_a_non_peer() -> Result<()> {
    let lab = lab("hdnonpeer", 3)?;
    let vip = "192.0.2.210";
    let unicast = |src: &str, peers: &[&str]| {
        let peers: String = peers.iter().map(|p| format!("        {p}\n")).collect();
        format!("    unicast_src_ip {src}\n    unicast_peer {{\n{peers}    }}")
    };
    let d1 = lab.start_daemon(
        W,
        N1,
        &conf(
            N1,
            &[instance(
                "VI_1",
                61,
                "MASTER",
                100,
                "0.3",
                &[vip],
                &unicast("192.0.2.1", &["192.0.2.2"]),
            )],
        ),
    )?;
    let d2 = lab.start_daemon(
        W,
        N2,
        &conf(
            N2,
            &[instance(
                "VI_1",
                61,
                "BACKUP",
                99,
                "0.3",
                &[vip],
                &unicast("192.0.2.2", &["192.0.2.1"]),
            )],
        ),
    )?;
    lab.wait_sole_holder(&PAIR, vip, N1, SETTLE)?;
    // n3 is no one's peer but sends priority-200 adverts for the VRID to both.
    let _d3 = lab.start_daemon(
        W,
        "n3",
        &conf(
            "n3",
            &[instance(
                "VI_X",
                61,
                "MASTER",
                200,
                "0.3",
                &["192.0.2.211"],
                &unicast("192.0.2.3", &["192.0.2.1", "192.0.2.2"]),
            )],
        ),
    )?;
    for d in [&d1, &d2] {
        lab.wait_for_counter(d, "VI_1", "rx_not_unicast_peer", 5, SETTLE)?;
    }
    // Neither stepped down nor took over for it.
    lab.expect_sole_holder_for(&PAIR, vip, N1, Duration::from_secs(2))?;
    lab.wait_state(&d1, "VI_1", "MASTER", Duration::from_millis(100))?;
    lab.wait_state(&d2, "VI_1", "BACKUP", Duration::from_millis(100))?;
    lab.pass()
}

#[test]
fn a_multicast_and_a_unicast_instance_share_a_vrid_without_merging() -> Result<()> {
    let lab = lab("hdsharedvrid", 2)?;
    let (vm, vu) = ("192.0.2.220", "192.0.2.221");
    let node_conf = |id: &str, state: &str, prio: u8, src: &str, peer: &str| {
        conf(
            id,
            &[
                instance("VI_M", 70, state, prio, "0.3", &[vm], ""),
                instance(
                    "VI_U",
                    70,
                    state,
                    prio,
                    "0.3",
                    &[vu],
                    &format!(
                        "    unicast_src_ip {src}\n    unicast_peer {{\n        {peer}\n    }}"
                    ),
                ),
            ],
        )
    };
    let d1 = lab.start_daemon(
        W,
        N1,
        &node_conf(N1, "MASTER", 100, "192.0.2.1", "192.0.2.2"),
    )?;
    let d2 = lab.start_daemon(
        W,
        N2,
        &node_conf(N2, "BACKUP", 99, "192.0.2.2", "192.0.2.1"),
    )?;
    for vip in [vm, vu] {
        lab.wait_sole_holder(&PAIR, vip, N1, SETTLE)?;
    }
    for name in ["VI_M", "VI_U"] {
        lab.wait_state(&d1, name, "MASTER", Duration::from_secs(2))?;
        lab.wait_state(&d2, name, "BACKUP", Duration::from_secs(2))?;
        // Each hears its own channel: adverts received, none merged into the other.
        let s = raw_status(&d2, name)?;
        let rx = s["counters"]["rx_adverts"].as_u64().unwrap_or(0);
        if rx == 0 {
            return Err(LabError::check(format!(
                "{name} on n2 received no adverts: {s}"
            )));
        }
    }
    lab.crash(&d1, &[vm, vu])?;
    for vip in [vm, vu] {
        lab.wait_sole_holder(&PAIR, vip, N2, Duration::from_secs(5))?;
    }
    lab.pass()
}

#[test]
fn a_custom_multicast_group_is_joined_and_keepalived_is_heard_on_it() -> Result<()> {
    wasmalived_bin()?;
    let mut pair = Pair::new("hdmcast", Proto::V3Ipv4, [K, W])?;
    let group = |text: String| {
        text.replacen(
            "global_defs {\n",
            "global_defs {\n    vrrp_mcast_group4 224.0.0.99\n",
            1,
        )
    };
    let (c1, c2) = (group(pair.confs[0].render()), group(pair.confs[1].render()));
    let cap = pair.lab.capture_bridge("bridge")?;
    pair.start_with(0, &c1)?;
    pair.start_with(1, &c2)?;
    // Hearing keepalived on 224.0.0.99, wasmalived stays Backup: one Master.
    pair.expect_master(0, pair.election_timeout())?;
    pair.lab
        .expect_sole_holder_for(&NODES, pair.vip(), NODES[0], Duration::from_secs(2))?;
    // Crash keepalived: wasmalived takes over and sends to the custom group too.
    pair.crash(0)?;
    pair.expect_master(1, pair.failover_timeout())?;
    std::thread::sleep(Duration::from_millis(500));
    let packets = cap.stop()?;
    let ours = pair.lab.node(NODES[1])?.mac.clone();
    let to_group = packets.iter().any(|p| {
        p.src_mac == ours
            && matches!(&p.kind, PacketKind::Advert { dst, vrid, .. }
                if *vrid == VRID && dst.to_string() == "224.0.0.99")
    });
    if !to_group {
        return Err(LabError::check(
            "wasmalived's adverts did not go to 224.0.0.99".to_string(),
        ));
    }
    pair.pass()
}

#[test]
fn an_interface_re_created_under_a_running_instance_is_planned_again() -> Result<()> {
    wasmalived_bin()?;
    let mut pair = Pair::new("hdrecreate", Proto::V3Ipv4, [W, W])?;
    pair.start_both()?;
    pair.expect_master(0, pair.election_timeout())?;
    // n1's eth0 disappears (its instance faults, n2 takes over) and comes back as a new
    // interface: new index, new MAC.
    let mac = pair
        .lab
        .recreate_eth0(NODES[0], Duration::from_millis(500))?;
    // n1 (priority 100) preempts back over its new interface: VIP there, adverts from the
    // new MAC, and the client's neighbour entry follows the new MAC's gratuitous ARP.
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[0], pair.election_timeout())?;
    pair.lab
        .wait_state(pair.daemon(0)?, INSTANCE, "MASTER", Duration::from_secs(2))?;
    pair.lab
        .expect_ping("client", pair.vip(), Duration::from_secs(3))?;
    let neigh = pair.lab.neigh_mac("client", pair.vip())?;
    if neigh.as_deref() != Some(mac.as_str()) {
        return Err(LabError::check(format!(
            "the client's neighbour entry for the VIP is {neigh:?}, expected n1's new MAC {mac}\n{}",
            pair.lab.log_summary(30)
        )));
    }
    pair.pass()
}

#[test]
fn a_panicking_protocol_loop_releases_the_vip_and_exits() -> Result<()> {
    wasmalived_bin()?;
    let mut pair = Pair::new("hdpanic", Proto::V2Pass, [W, W])?;
    pair.start(1)?;
    let text = pair.confs[0].render();
    let d1 = pair.lab.start_daemon_env(
        W,
        NODES[0],
        &text,
        &[("WASMALIVED_FAULT", "panic-router-after-ms=9000")],
    )?;
    if !d1.proc.log_tail(50).contains("fault injection armed") {
        std::thread::sleep(Duration::from_millis(500));
    }
    if !d1.proc.log_tail(50).contains("fault injection armed") {
        return Err(LabError::check(
            "the daemon was built without --features fault-injection (make test builds it)"
                .to_string(),
        ));
    }
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[0], pair.election_timeout())?;
    let cap = pair.lab.capture_bridge("bridge")?;
    let status = d1.wait_exit(Duration::from_secs(15))?;
    let t_exit = now_epoch();
    if status.success() {
        return Err(LabError::check(
            "a daemon whose protocol loop panicked must exit with an error".to_string(),
        ));
    }
    // Released: no VIP left on n1, a priority-0 advert sent, so n2 takes over after its
    // skew time (0.61 s), far below its master-down interval (3.61 s).
    if pair.lab.has_addr(NODES[0], pair.vip())? {
        return Err(LabError::check(
            "the panicked daemon left its VIP".to_string(),
        ));
    }
    let took = pair
        .lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[1], Duration::from_secs(6))?;
    let packets = cap.stop()?;
    pair.expect_priority_zero_from(&packets, 0, t_exit - 10.0)?;
    eprintln!("panic → VIP on n2 in {took:?} (master-down 3.61 s)");
    pair.pass()
}

#[test]
fn stale_vips_are_removed_when_a_killed_daemon_restarts() -> Result<()> {
    wasmalived_bin()?;
    let mut pair = Pair::new("hdstale", Proto::V3Ipv4, [W, W])?;
    // n1 comes back with nopreempt: it must stay Backup, without the VIP n2 now holds.
    pair.start_both()?;
    pair.expect_master(0, pair.election_timeout())?;
    // kill -9 alone: the VIP stays configured on n1's interface (a dead process, a live kernel).
    pair.daemon(0)?.crash()?;
    pair.lab
        .wait_state(pair.daemon(1)?, INSTANCE, "MASTER", pair.failover_timeout())?;
    if !pair.lab.has_addr(NODES[0], pair.vip())? {
        return Err(LabError::check(
            "the lab expected kill -9 to leave the VIP on n1".to_string(),
        ));
    }
    pair.confs[0] = pair.confs[0].clone().nopreempt();
    pair.start(0)?;
    pair.lab
        .wait_state(pair.daemon(0)?, INSTANCE, "BACKUP", Duration::from_secs(5))?;
    pair.lab
        .expect_sole_holder_for(&NODES, pair.vip(), NODES[1], Duration::from_secs(2))?;
    let log = pair.daemon(0)?.proc.log_tail(200);
    if !log.contains("removed a VIP left on the interface by an earlier run") {
        return Err(LabError::check(format!(
            "no start-up removal logged:\n{log}"
        )));
    }
    pair.pass()
}

#[test]
fn enabling_script_security_by_reload_stops_an_unsafe_running_script() -> Result<()> {
    let lab = lab("hdsecurity", 1)?;
    // A world-writable script, tracked with weight 0: accepted (with a warning) while
    // script security is off.
    let script = lab.dir().join("check.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n")
        .map_err(|e| LabError::io("writing the script", e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| LabError::io("chmod", e))?;
    }
    let text = |security: bool| {
        let global = if security {
            "global_defs {\n    router_id n1\n    script_user root\n    vrrp_version 3\n    enable_script_security\n}\n"
        } else {
            "global_defs {\n    router_id n1\n    script_user root\n    vrrp_version 3\n}\n"
        };
        format!(
            "{global}vrrp_script chk {{\n    script \"{}\"\n    interval 0.2\n    weight 0\n}}\n{}",
            script.display(),
            instance(
                "VI_1",
                80,
                "MASTER",
                100,
                "0.3",
                &["192.0.2.230"],
                "    track_script {\n        chk\n    }"
            )
        )
    };
    let d = lab.start_daemon(W, N1, &text(false))?;
    lab.wait_state(&d, "VI_1", "MASTER", SETTLE)?;
    std::fs::write(&d.conf, text(true)).map_err(|e| LabError::io("rewriting the config", e))?;
    d.proc.signal("HUP")?;
    // The script is refused now: its tracker sees it down, weight 0 → FAULT, VIP released.
    lab.wait_state(&d, "VI_1", "FAULT", Duration::from_secs(5))?;
    if lab.has_addr(N1, "192.0.2.230")? {
        return Err(LabError::check("the VIP stayed after FAULT".to_string()));
    }
    lab.pass()
}
