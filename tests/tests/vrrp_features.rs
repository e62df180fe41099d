//! The VRRP engine's features end to end (issue 3), each in its own namespace lab:
//! `track_interface` (Fault and weighted), the instance's own interface and
//! `dont_track_primary`, `vrrp_sync_group` driven by a `vrrp_script`, notify hooks with
//! keepalived's argument convention (checked against keepalived itself) and a slow hook that
//! must not delay a failover, GARP/NA bursts (`garp_master_repeat`, `garp_master_delay`,
//! `garp_master_refresh`), `virtual_ipaddress_excluded` (installed, not advertised),
//! `virtual_ipaddress` options (`label`, `brd`, `scope`), a bounded SIGTERM, and unicast with
//! three nodes.
//!
//! VRRPv3 with `advert_int` 0.1–0.5 s keeps them short. Timing assertions are only as tight
//! as the protocol makes them (priority 0 → the skew time, which is far below the
//! master-down interval); everything else waits generously, as CI machines are loaded.
//!
//! Needs the daemon: `cargo build -p wasmalived` (or `WASMALIVED_BIN`), root, keepalived.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use wasmalived_e2e::features::{
    add_link, conf, expect_priority_zero, instance, lab_with_nodes as lab, raw_status, script,
    set_link, skew, wait_state_prio, SETTLE,
};
use wasmalived_e2e::pcap::read_adverts;
use wasmalived_e2e::{now_epoch, wait_for, Impl, Lab, LabError, Packet, PacketKind, Result};

const W: Impl = Impl::Wasmalived;
const K: Impl = Impl::Keepalived;
const N1: &str = "n1";
const N2: &str = "n2";
const PAIR: [&str; 2] = [N1, N2];
const VIP: &str = "192.0.2.200";

// ---------------------------------------------------------------------------------------
// 1. track_interface
// ---------------------------------------------------------------------------------------

/// n1 (Master, 100) tracks `eth1`: link down → FAULT with the reason in the status, a
/// priority-0 advert, and the VIP on n2 after about the skew time (well under the
/// master-down interval); link up → n1 leaves FAULT and preempts back.
#[test]
fn track_interface_down_faults_and_hands_over() -> Result<()> {
    let lab = lab("vftrack", 2)?;
    add_link(&lab, N1, "eth1")?;
    let adv = 0.5;
    let track = "    track_interface {\n        eth1\n    }";
    let c1 = conf(
        N1,
        &[instance("VI_1", 55, "MASTER", 100, "0.5", &[VIP], track)],
    );
    let c2 = conf(N2, &[instance("VI_1", 55, "BACKUP", 99, "0.5", &[VIP], "")]);
    let cap = lab.capture_bridge("bridge")?;
    let d1 = lab.start_daemon(W, N1, &c1)?;
    let d2 = lab.start_daemon(W, N2, &c2)?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", SETTLE)?;
    lab.wait_state(&d2, "VI_1", "BACKUP", SETTLE)?;

    let sampler = lab.sample_vip(&PAIR, VIP, Duration::from_millis(10))?;
    let t_down = now_epoch();
    set_link(&lab, N1, "eth1", false)?;
    lab.wait_state(&d1, "VI_1", "FAULT", Duration::from_secs(3))?;
    lab.wait_sole_holder(&PAIR, VIP, N2, Duration::from_secs(5))?;
    let st = raw_status(&d1, "VI_1")?;
    let reasons = st["fault_reasons"].to_string();
    if !reasons.contains("eth1") {
        return Err(LabError::check(format!(
            "n1's fault_reasons should name eth1: {st}"
        )));
    }
    let tl = sampler.stop()?;
    tl.expect_never_two()?;
    let took = tl.first_on(N2, t_down).map(|t| t - t_down);
    let master_down = 3.0 * adv + skew(99, adv);
    let limit = skew(99, adv) + 0.8;
    eprintln!(
        "eth1 down -> VIP on n2 after {took:?} s (skew {:.3} s, master-down {master_down:.3} s)",
        skew(99, adv)
    );
    if !matches!(took, Some(s) if s < limit) {
        return Err(LabError::check(format!(
            "n1's tracked link went down but the VIP reached n2 only after {took:?} s (limit \
             {limit:.3} s; without the priority-0 advert it takes {master_down:.3} s)\n{}",
            lab.log_summary(20)
        )));
    }

    // Link back: n1 leaves FAULT (→ BACKUP) and preempts n2 with its higher priority.
    set_link(&lab, N1, "eth1", true)?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", Duration::from_secs(3))?;
    lab.wait_state(&d2, "VI_1", "BACKUP", Duration::from_secs(3))?;
    let st = raw_status(&d1, "VI_1")?;
    if st["fault_reasons"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
    {
        return Err(LabError::check(format!(
            "n1 left FAULT but still reports reasons: {st}"
        )));
    }
    std::thread::sleep(Duration::from_millis(200));
    let packets = cap.stop()?;
    expect_priority_zero(&lab, &packets, N1, 55, t_down)?;
    lab.pass()
}

/// `track_interface { eth1 weight -20 }`: the link going down lowers n1's effective
/// priority to 80 (below n2's 99) instead of faulting it, so n2 preempts; link up → 100
/// again and n1 preempts back.
#[test]
fn track_interface_weight_lowers_priority_instead_of_fault() -> Result<()> {
    let lab = lab("vfweight", 2)?;
    add_link(&lab, N1, "eth1")?;
    let track = "    track_interface {\n        eth1 weight -20\n    }";
    let c1 = conf(
        N1,
        &[instance("VI_1", 55, "MASTER", 100, "0.1", &[VIP], track)],
    );
    let c2 = conf(N2, &[instance("VI_1", 55, "BACKUP", 99, "0.1", &[VIP], "")]);
    let d1 = lab.start_daemon(W, N1, &c1)?;
    let d2 = lab.start_daemon(W, N2, &c2)?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    wait_state_prio(&lab, &d1, "VI_1", "MASTER", 100)?;

    set_link(&lab, N1, "eth1", false)?;
    lab.wait_sole_holder(&PAIR, VIP, N2, SETTLE)?;
    wait_state_prio(&lab, &d1, "VI_1", "BACKUP", 80)?;
    lab.wait_state(&d2, "VI_1", "MASTER", Duration::from_secs(3))?;
    let st = d1.instance_status("VI_1")?;
    if st.priority != 100 {
        return Err(LabError::check(format!(
            "configured priority should stay 100, status says {st:?}"
        )));
    }
    // Stays that way: 80 < 99 and n1 is not in FAULT.
    lab.expect_sole_holder_for(&PAIR, VIP, N2, Duration::from_secs(1))?;
    wait_state_prio(&lab, &d1, "VI_1", "BACKUP", 80)?;

    set_link(&lab, N1, "eth1", true)?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    wait_state_prio(&lab, &d1, "VI_1", "MASTER", 100)?;
    lab.wait_state(&d2, "VI_1", "BACKUP", Duration::from_secs(3))?;
    lab.pass()
}

/// The instance's own interface is tracked implicitly: n1's `eth0` down → VI_1 FAULT (its
/// VIP removed, n2 takes over after the master-down interval); VI_2 has
/// `dont_track_primary` and stays MASTER. `eth0` up → n1 is Master of both again.
#[test]
fn own_interface_down_faults_unless_dont_track_primary() -> Result<()> {
    let lab = lab("vfprim", 2)?;
    let (v1, v2) = (VIP, "192.0.2.201");
    let c1 = conf(
        N1,
        &[
            instance("VI_1", 55, "MASTER", 100, "0.1", &[v1], ""),
            instance(
                "VI_2",
                56,
                "MASTER",
                100,
                "0.1",
                &[v2],
                "    dont_track_primary",
            ),
        ],
    );
    let c2 = conf(
        N2,
        &[
            instance("VI_1", 55, "BACKUP", 99, "0.1", &[v1], ""),
            instance("VI_2", 56, "BACKUP", 99, "0.1", &[v2], ""),
        ],
    );
    let d1 = lab.start_daemon(W, N1, &c1)?;
    let d2 = lab.start_daemon(W, N2, &c2)?;
    lab.wait_sole_holder(&PAIR, v1, N1, SETTLE)?;
    lab.wait_sole_holder(&PAIR, v2, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", SETTLE)?;
    lab.wait_state(&d1, "VI_2", "MASTER", SETTLE)?;

    set_link(&lab, N1, "eth0", false)?;
    lab.wait_state(&d1, "VI_1", "FAULT", Duration::from_secs(3))?;
    // n2 hears nothing from n1 any more and takes over both VRIDs.
    lab.wait_state(&d2, "VI_1", "MASTER", SETTLE)?;
    lab.wait_state(&d2, "VI_2", "MASTER", SETTLE)?;
    lab.wait_sole_holder(&PAIR, v1, N2, Duration::from_secs(3))?;
    let st = raw_status(&d1, "VI_1")?;
    if !st["fault_reasons"].to_string().contains("eth0") {
        return Err(LabError::check(format!(
            "VI_1's fault_reasons should name eth0: {st}"
        )));
    }
    // VI_2 does not track eth0: still Master (and still holding its VIP) on the dead link.
    std::thread::sleep(Duration::from_millis(500));
    let st = d1.instance_status("VI_2")?;
    if st.state != "MASTER" || !lab.has_addr(N1, v2)? {
        return Err(LabError::check(format!(
            "VI_2 has dont_track_primary and should stay MASTER with its VIP while eth0 is \
             down; status {st:?}, VIP on n1: {}\n{}",
            lab.has_addr(N1, v2)?,
            lab.log_summary(20)
        )));
    }

    set_link(&lab, N1, "eth0", true)?;
    lab.wait_sole_holder(&PAIR, v1, N1, SETTLE)?;
    lab.wait_sole_holder(&PAIR, v2, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", Duration::from_secs(3))?;
    lab.wait_state(&d2, "VI_1", "BACKUP", Duration::from_secs(3))?;
    lab.wait_state(&d2, "VI_2", "BACKUP", Duration::from_secs(3))?;
    lab.pass()
}

// ---------------------------------------------------------------------------------------
// 2. vrrp_sync_group
// ---------------------------------------------------------------------------------------

/// VI_1 (VRID 51) and VI_2 (VRID 52) form a sync group on both nodes; on n1 only VI_2
/// tracks a weight-0 `vrrp_script` that fails while a marker file exists. Marker created →
/// both of n1's instances go FAULT and both VIPs move to n2; removed → both come back.
#[test]
fn sync_group_member_fault_moves_the_whole_group() -> Result<()> {
    let lab = lab("vfsync", 2)?;
    let (v1, v2) = ("192.0.2.201", "192.0.2.202");
    let marker = lab.dir().join("fail-marker");
    let check = script(
        &lab,
        "check.sh",
        &format!("test ! -e '{}'", marker.display()),
    )?;
    let group_log = lab.dir().join("group-hooks.log");
    let group_hook = script(
        &lab,
        "group-hook.sh",
        &format!("echo \"$*\" >> '{}'", group_log.display()),
    )?;
    let group =
        "vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n".to_string();
    let group_n1 = format!(
        "vrrp_sync_group G1 {{\n    group {{\n        VI_1\n        VI_2\n    }}\n    notify \"{group_hook}\"\n}}\n"
    );
    let chk = format!(
        "vrrp_script chk_marker {{\n    script \"{check}\"\n    interval 0.2\n    timeout 2\n    \
         weight 0\n    fall 1\n    rise 1\n}}\n"
    );
    let c1 = conf(
        N1,
        &[
            chk,
            group_n1,
            instance("VI_1", 51, "MASTER", 100, "0.1", &[v1], ""),
            instance(
                "VI_2",
                52,
                "MASTER",
                100,
                "0.1",
                &[v2],
                "    track_script {\n        chk_marker\n    }",
            ),
        ],
    );
    let c2 = conf(
        N2,
        &[
            group,
            instance("VI_1", 51, "BACKUP", 99, "0.1", &[v1], ""),
            instance("VI_2", 52, "BACKUP", 99, "0.1", &[v2], ""),
        ],
    );
    let d1 = lab.start_daemon(W, N1, &c1)?;
    let d2 = lab.start_daemon(W, N2, &c2)?;
    lab.wait_sole_holder(&PAIR, v1, N1, SETTLE)?;
    lab.wait_sole_holder(&PAIR, v2, N1, SETTLE)?;

    std::fs::write(&marker, "fail\n").map_err(|e| LabError::io("creating the marker", e))?;
    lab.wait_state(&d1, "VI_2", "FAULT", Duration::from_secs(5))?;
    lab.wait_state(&d1, "VI_1", "FAULT", Duration::from_secs(3))?;
    lab.wait_sole_holder(&PAIR, v1, N2, Duration::from_secs(5))?;
    lab.wait_sole_holder(&PAIR, v2, N2, Duration::from_secs(5))?;
    lab.wait_state(&d2, "VI_1", "MASTER", Duration::from_secs(3))?;
    lab.wait_state(&d2, "VI_2", "MASTER", Duration::from_secs(3))?;
    let st = raw_status(&d1, "VI_1")?;
    if !st["fault_reasons"].to_string().contains("VI_2") {
        return Err(LabError::check(format!(
            "VI_1's fault should be attributed to the sync group member VI_2: {st}"
        )));
    }
    // The group stays down while the script fails.
    lab.expect_sole_holder_for(&PAIR, v1, N2, Duration::from_millis(600))?;

    std::fs::remove_file(&marker).map_err(|e| LabError::io("removing the marker", e))?;
    lab.wait_sole_holder(&PAIR, v1, N1, SETTLE)?;
    lab.wait_sole_holder(&PAIR, v2, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", Duration::from_secs(3))?;
    lab.wait_state(&d1, "VI_2", "MASTER", Duration::from_secs(3))?;
    lab.wait_state(&d2, "VI_1", "BACKUP", Duration::from_secs(3))?;
    lab.wait_state(&d2, "VI_2", "BACKUP", Duration::from_secs(3))?;
    // The group's own hook ran with keepalived's GROUP convention on each group transition.
    // (At start-up the weight-0 check has not reported yet, so the group begins in FAULT.)
    let want = [
        "GROUP G1 MASTER 0",
        "GROUP G1 FAULT 0",
        "GROUP G1 BACKUP 0",
        "GROUP G1 MASTER 0",
    ];
    wasmalived_e2e::wait_for(
        "the sync group's notify hook",
        Duration::from_secs(3),
        Duration::from_millis(50),
        || {
            let lines = hook_lines(&group_log);
            Ok(lines
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .windows(4)
                .any(|w| w == want))
        },
        || format!("group hook log: {:?}", hook_lines(&group_log)),
    )?;
    lab.pass()
}

// ---------------------------------------------------------------------------------------
// 3. notify hooks
// ---------------------------------------------------------------------------------------

/// The notify lines one node's hooks wrote, one per hook run.
fn hook_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until the hook log at `path` has `n` lines.
fn wait_hook_lines(lab: &Lab, path: &Path, n: usize) -> Result<()> {
    wait_for(
        &format!("{} to have {n} hook lines", path.display()),
        Duration::from_secs(8),
        Duration::from_millis(20),
        || Ok(hook_lines(path).len() >= n),
        || format!("lines now: {:?}\n{}", hook_lines(path), lab.log_summary(20)),
    )
    .map(|_| ())
}

/// The hook lines a transition to `state` writes: the specific hook's tag, then the generic
/// `notify` with keepalived's `TYPE NAME STATE PRIORITY`.
fn transition(state: &str, prio: u8) -> [String; 2] {
    [
        state.to_ascii_lowercase(),
        format!("generic INSTANCE VI_1 {state} {prio}"),
    ]
}

/// Election, Fault of n1 (tracked link), recovery and preemption, SIGTERM of n1 then n2,
/// with every notify hook configured on both nodes. Returns each node's hook log.
fn notify_scenario(test: &str, kind: Impl) -> Result<(Lab, [Vec<String>; 2])> {
    let lab = lab(test, 2)?;
    add_link(&lab, N1, "eth1")?;
    let hook = script(
        &lab,
        "hook.sh",
        "log=\"$1\"; shift; echo \"$*\" >> \"$log\"",
    )?;
    let logs = [
        lab.dir().join("n1-hooks.log"),
        lab.dir().join("n2-hooks.log"),
    ];
    let hooks = |log: &Path| -> String {
        let l = log.display();
        ["master", "backup", "fault", "stop"]
            .iter()
            .map(|s| format!("    notify_{s} \"{hook} {l} {s}\"\n"))
            .chain(std::iter::once(format!(
                "    notify \"{hook} {l} generic\"\n"
            )))
            .collect()
    };
    let track = format!(
        "{}    track_interface {{\n        eth1\n    }}",
        hooks(&logs[0])
    );
    let c1 = conf(
        N1,
        &[instance("VI_1", 55, "MASTER", 100, "0.1", &[VIP], &track)],
    );
    let c2 = conf(
        N2,
        &[instance(
            "VI_1",
            55,
            "BACKUP",
            99,
            "0.1",
            &[VIP],
            &hooks(&logs[1]),
        )],
    );
    // n1 first, so that the election has one possible outcome: started together, both wait
    // a master-down interval and n2 may briefly win before n1's first advert (a legitimate
    // but unordered BACKUP/MASTER/BACKUP flap in n2's hook log).
    let d1 = lab.start_daemon(kind, N1, &c1)?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", SETTLE)?;
    let d2 = lab.start_daemon(kind, N2, &c2)?;
    lab.wait_state(&d2, "VI_1", "BACKUP", SETTLE)?;
    wait_hook_lines(&lab, &logs[1], 2)?;

    set_link(&lab, N1, "eth1", false)?;
    lab.wait_state(&d1, "VI_1", "FAULT", Duration::from_secs(3))?;
    lab.wait_sole_holder(&PAIR, VIP, N2, SETTLE)?;
    lab.wait_state(&d2, "VI_1", "MASTER", SETTLE)?;

    set_link(&lab, N1, "eth1", true)?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", SETTLE)?;
    lab.wait_state(&d2, "VI_1", "BACKUP", SETTLE)?;
    // Let n2's BACKUP hooks land before n1 stops (they race n2's next MASTER otherwise
    // only in the log file, never in the per-instance order).
    wait_hook_lines(&lab, &logs[1], 6)?;

    d1.term()?;
    d1.wait_exit(Duration::from_secs(5))?;
    lab.wait_sole_holder(&PAIR, VIP, N2, SETTLE)?;
    lab.wait_state(&d2, "VI_1", "MASTER", SETTLE)?;
    wait_hook_lines(&lab, &logs[1], 8)?;
    d2.term()?;
    d2.wait_exit(Duration::from_secs(5))?;
    wait_hook_lines(&lab, &logs[1], 10)?;
    let lines = [hook_lines(&logs[0]), hook_lines(&logs[1])];
    Ok((lab, lines))
}

/// Sorts each transition's two lines when the implementation does not order the specific
/// hook before the generic one (keepalived forks both at once).
fn per_transition(lines: &[String], ordered: bool) -> Vec<String> {
    lines
        .chunks(2)
        .flat_map(|pair| {
            let mut pair = pair.to_vec();
            if !ordered {
                pair.sort();
            }
            pair
        })
        .collect()
}

/// Checks both nodes' hook logs against keepalived's convention, transitions in order (and,
/// when `ordered`, the specific hook before the generic one within a transition). n1 may log
/// an initial BACKUP (keepalived's `state MASTER` starts as Backup; see lab NOTES).
fn expect_notify_sequence(lab: &Lab, lines: &[Vec<String>; 2], ordered: bool) -> Result<()> {
    let mut n1: Vec<String> = Vec::new();
    for (s, p) in [
        ("MASTER", 100),
        ("FAULT", 100),
        ("BACKUP", 100),
        ("MASTER", 100),
        ("STOP", 100),
    ] {
        n1.extend(transition(s, p));
    }
    let mut n2: Vec<String> = Vec::new();
    for (s, p) in [
        ("BACKUP", 99),
        ("MASTER", 99),
        ("BACKUP", 99),
        ("MASTER", 99),
        ("STOP", 99),
    ] {
        n2.extend(transition(s, p));
    }
    let starts_as_backup = lines[0].len() >= 2
        && per_transition(&lines[0][..2], false)
            == per_transition(&transition("BACKUP", 100), false);
    let got1 = if starts_as_backup {
        &lines[0][2..]
    } else {
        &lines[0][..]
    };
    if per_transition(got1, ordered) != per_transition(&n1, ordered)
        || per_transition(&lines[1], ordered) != per_transition(&n2, ordered)
    {
        return Err(LabError::check(format!(
            "notify hooks ran in the wrong order or with the wrong arguments\n\
             n1 expected {n1:#?}\n n1 got {:#?}\n n2 expected {n2:#?}\n n2 got {:#?}\n{}",
            lines[0],
            lines[1],
            lab.log_summary(20)
        )));
    }
    Ok(())
}

/// Every notify hook, wasmalived on both nodes: keepalived's `TYPE NAME STATE PRIORITY`
/// convention, specific hook before the generic one, in transition order.
#[test]
fn notify_hooks_follow_keepalived_convention() -> Result<()> {
    let (lab, lines) = notify_scenario("vfnotify", W)?;
    expect_notify_sequence(&lab, &lines, true)?;
    lab.pass()
}

/// The same scenario with keepalived on both nodes: pins the expectations above to the
/// reference implementation (which forks a transition's two hooks at once, so only the
/// order of transitions is compared).
#[test]
fn notify_hooks_reference_keepalived() -> Result<()> {
    let (lab, lines) = notify_scenario("vfnotkl", K)?;
    expect_notify_sequence(&lab, &lines, false)?;
    lab.pass()
}

/// n2's `notify_backup` sleeps 5 s. While it still runs, n1 is stopped: n2 must take the
/// VIP after about its skew time, not after the hook; the hooks still run in order
/// (`notify_master` only after the slow `notify_backup` finished).
#[test]
fn slow_notify_hook_does_not_delay_failover() -> Result<()> {
    let lab = lab("vfslow", 2)?;
    let log = lab.dir().join("n2-hooks.log");
    let l = log.display();
    let slow = script(
        &lab,
        "slow.sh",
        &format!("echo start >> {l}; sleep 5; echo end >> {l}"),
    )?;
    let fast = script(&lab, "master.sh", &format!("echo master >> {l}"))?;
    let extra = format!("    notify_backup \"{slow}\"\n    notify_master \"{fast}\"");
    let c1 = conf(
        N1,
        &[instance("VI_1", 55, "MASTER", 100, "0.1", &[VIP], "")],
    );
    let c2 = conf(
        N2,
        &[instance("VI_1", 55, "BACKUP", 99, "0.1", &[VIP], &extra)],
    );
    let d1 = lab.start_daemon(W, N1, &c1)?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    let d2 = lab.start_daemon(W, N2, &c2)?;
    lab.wait_state(&d2, "VI_1", "BACKUP", SETTLE)?;
    wait_hook_lines(&lab, &log, 1)?;

    let start = std::time::Instant::now();
    d1.term()?;
    lab.wait_sole_holder(&PAIR, VIP, N2, Duration::from_secs(4))?;
    let took = Some(start.elapsed().as_secs_f64());
    let lines_at_takeover = hook_lines(&log);
    eprintln!("SIGTERM -> VIP on n2 after {took:?} s with a 5 s notify_backup running");
    if lines_at_takeover != ["start"] {
        return Err(LabError::check(format!(
            "the slow hook should still be running when n2 takes over; hook log: {lines_at_takeover:?}"
        )));
    }
    // Priority 0 → skew time 0.061 s; a blocked protocol would wait for the 5 s hook.
    if !matches!(took, Some(s) if s < 1.5) {
        return Err(LabError::check(format!(
            "with a slow notify_backup running, the VIP reached n2 after {took:?} s\n{}",
            lab.log_summary(20)
        )));
    }
    lab.wait_state(&d2, "VI_1", "MASTER", Duration::from_secs(2))?;
    wait_hook_lines(&lab, &log, 3)?;
    let lines = hook_lines(&log);
    if lines != ["start", "end", "master"] {
        return Err(LabError::check(format!(
            "hooks of one instance must run in order: {lines:?}"
        )));
    }
    lab.pass()
}

// ---------------------------------------------------------------------------------------
// 4. GARP / NA and virtual_ipaddress_excluded
// ---------------------------------------------------------------------------------------

/// The times of gratuitous ARPs (IPv4) or unsolicited NAs (IPv6) for `ip` from `mac`.
fn announcements(packets: &[Packet], mac: &str, ip: IpAddr) -> Vec<f64> {
    packets
        .iter()
        .filter(|p| p.src_mac == mac)
        .filter(|p| match p.kind {
            PacketKind::Garp(a) | PacketKind::NeighborAdvert(a) => a == ip,
            _ => false,
        })
        .map(|p| p.t)
        .collect()
}

/// Checks one address's announcements against `garp_master_repeat 5`,
/// `garp_master_delay 1`, `garp_master_refresh 1` relative to `t_master` (the first advert
/// as Master), up to `end`.
fn expect_garp_pattern(what: &str, times: &[f64], t_master: f64, end: f64) -> Result<()> {
    let rel: Vec<f64> = times.iter().map(|t| t - t_master).collect();
    let fail = |why: String| {
        Err(LabError::check(format!(
            "{what}: {why}; announcements at {:?} s after becoming Master",
            rel.iter()
                .map(|r| (r * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>()
        )))
    };
    let count = |from: f64, to: f64| rel.iter().filter(|r| **r >= from && **r < to).count();
    if count(f64::NEG_INFINITY, -0.05) != 0 {
        return fail("announced before becoming Master".into());
    }
    // The first burst goes out with the first advert (within 1 ms in practice).
    if count(-0.05, 0.4) != 5 {
        return fail(format!(
            "first burst should be 5 (garp_master_repeat), got {}",
            count(-0.05, 0.4)
        ));
    }
    // garp_master_delay 1: a second burst of 5 about 1 s later.
    if count(0.4, 0.7) != 0 || count(0.7, 1.5) != 5 {
        return fail("expected nothing until ~1 s, then a second burst of 5".into());
    }
    // garp_master_refresh 1: single announcements about every second afterwards.
    let refresh: Vec<f64> = rel.iter().copied().filter(|r| *r >= 1.5).collect();
    let span = end - t_master;
    let expected_min = ((span - 2.5).floor() as usize).max(1);
    if refresh.len() < expected_min {
        return fail(format!(
            "garp_master_refresh 1 should give ≥{expected_min} refreshes in {span:.1} s"
        ));
    }
    for w in refresh.windows(2) {
        let gap = w[1] - w[0];
        if !(0.6..=1.6).contains(&gap) {
            return fail(format!("refresh gap {gap:.3} s, expected ~1 s"));
        }
    }
    Ok(())
}

/// n1 alone becomes Master of an IPv4 (VRID 55) and an IPv6 (VRID 56) instance with
/// `garp_master_delay 1` and `garp_master_refresh 1`: a burst of 5 GARPs/NAs with the first
/// advert, a second burst of 5 one second later, then one per second. The
/// `virtual_ipaddress_excluded` addresses are installed but absent from the adverts'
/// address lists (decoded from the pcap), and everything is removed on SIGTERM.
#[test]
fn garp_na_bursts_refresh_and_excluded_vips() -> Result<()> {
    let lab = lab("vfgarp", 1)?;
    let garp = "    garp_master_delay 1\n    garp_master_refresh 1\n";
    let (ex4, ex6) = ("192.0.2.250", "2001:db8::250");
    let c1 = conf(
        N1,
        &[
            instance(
                "VI_4",
                55,
                "MASTER",
                100,
                "0.1",
                &[VIP],
                &format!("{garp}    virtual_ipaddress_excluded {{\n        {ex4}/32\n    }}"),
            ),
            instance(
                "VI_6",
                56,
                "MASTER",
                100,
                "0.1",
                &["2001:db8::200/64"],
                &format!("{garp}    virtual_ipaddress_excluded {{\n        {ex6}/64\n    }}"),
            ),
        ],
    );
    let cap = lab.capture_bridge("bridge")?;
    let pcap = cap.pcap.clone();
    let d1 = lab.start_daemon(W, N1, &c1)?;
    lab.wait_state(&d1, "VI_4", "MASTER", SETTLE)?;
    lab.wait_state(&d1, "VI_6", "MASTER", SETTLE)?;
    for a in [VIP, ex4, "2001:db8::200", ex6] {
        if !lab.has_addr(N1, a)? {
            return Err(LabError::check(format!(
                "Master n1 should hold {a}\n{}",
                lab.log_summary(20)
            )));
        }
    }
    // Long enough for both bursts and three refreshes.
    std::thread::sleep(Duration::from_millis(4300));
    let end = now_epoch();
    let t_term = now_epoch();
    d1.term()?;
    d1.wait_exit(Duration::from_secs(5))?;
    for a in [VIP, ex4, "2001:db8::200", ex6] {
        if lab.has_addr(N1, a)? {
            return Err(LabError::check(format!(
                "{a} left on n1 after SIGTERM\n{}",
                lab.log_summary(20)
            )));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let packets = cap.stop()?;
    expect_priority_zero(&lab, &packets, N1, 55, t_term)?;
    expect_priority_zero(&lab, &packets, N1, 56, t_term)?;

    let mac = lab.node(N1)?.mac.clone();
    let adverts = read_adverts(&pcap)?;
    for (vrid, vip, excluded) in [(55u8, VIP, ex4), (56, "2001:db8::200", ex6)] {
        let vip: IpAddr = vip.parse().map_err(|_| LabError::parse("IP", vip))?;
        let excluded: IpAddr = excluded
            .parse()
            .map_err(|_| LabError::parse("IP", excluded))?;
        let mine: Vec<_> = adverts
            .iter()
            .filter(|a| a.vrid == vrid && a.src_mac == mac && a.prio == 100)
            .collect();
        let first = mine.first().ok_or_else(|| {
            LabError::check(format!("no advert for VRID {vrid} in {}", pcap.display()))
        })?;
        if let Some(bad) = mine.iter().find(|a| a.addrs != [vip] || a.ttl != 255) {
            return Err(LabError::check(format!(
                "VRID {vrid}: adverts must carry exactly [{vip}] (the excluded {excluded} is \
                 not advertised) with TTL/hop limit 255; got {bad:?}"
            )));
        }
        let times = announcements(&packets, &mac, vip);
        expect_garp_pattern(
            &format!("VRID {vrid} announcements of {vip}"),
            &times,
            first.t,
            end,
        )?;
        // Excluded addresses are announced too (keepalived does), in the first burst.
        let ex_times = announcements(&packets, &mac, excluded);
        if !ex_times.iter().any(|t| (t - first.t).abs() < 0.4) {
            return Err(LabError::check(format!(
                "VRID {vrid}: no GARP/NA for the excluded {excluded} when becoming Master"
            )));
        }
    }
    lab.pass()
}

// ---------------------------------------------------------------------------------------
// 5. virtual_ipaddress options
// ---------------------------------------------------------------------------------------

/// `virtual_ipaddress` entries with `dev`, `label`, `scope` and `brd` are installed as
/// written on the Master (`ip -o addr`) and removed on SIGTERM.
#[test]
fn vip_options_label_brd_scope() -> Result<()> {
    let lab = lab("vfvipopt", 1)?;
    let c1 = conf(
        N1,
        &[instance(
            "VI_1",
            55,
            "MASTER",
            100,
            "0.1",
            &[
                "192.0.2.60/24 dev eth0 label eth0:vip scope global brd 192.0.2.255",
                "192.0.2.61/32 dev eth0 scope link label eth0:lnk",
            ],
            "",
        )],
    );
    let d1 = lab.start_daemon(W, N1, &c1)?;
    lab.wait_state(&d1, "VI_1", "MASTER", SETTLE)?;
    let line_of = |ip: &str| -> Result<String> {
        let text = lab.run(N1, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"])?;
        Ok(text
            .lines()
            .find(|l| l.contains(&format!("inet {ip}/")))
            .unwrap_or_default()
            .to_string())
    };
    wait_for(
        "both VIPs on n1",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || Ok(!line_of("192.0.2.60")?.is_empty() && !line_of("192.0.2.61")?.is_empty()),
        || lab.log_summary(20),
    )?;
    let l60 = line_of("192.0.2.60")?;
    for want in [
        "inet 192.0.2.60/24",
        "brd 192.0.2.255",
        "scope global",
        "eth0:vip",
    ] {
        if !l60.contains(want) {
            return Err(LabError::check(format!(
                "192.0.2.60 should show {want:?}: {l60}"
            )));
        }
    }
    let l61 = line_of("192.0.2.61")?;
    for want in ["inet 192.0.2.61/32", "scope link", "eth0:lnk"] {
        if !l61.contains(want) {
            return Err(LabError::check(format!(
                "192.0.2.61 should show {want:?}: {l61}"
            )));
        }
    }
    if l61.contains(" brd ") {
        return Err(LabError::check(format!(
            "192.0.2.61 has no brd configured: {l61}"
        )));
    }
    d1.term()?;
    d1.wait_exit(Duration::from_secs(5))?;
    if !line_of("192.0.2.60")?.is_empty() || !line_of("192.0.2.61")?.is_empty() {
        return Err(LabError::check(
            "VIPs with options left behind after SIGTERM",
        ));
    }
    lab.pass()
}

// ---------------------------------------------------------------------------------------
// 6. SIGTERM bounded
// ---------------------------------------------------------------------------------------

/// SIGTERM to the Master right after it took over (while its GARP bursts for 20 addresses
/// are going out): the priority-0 advert is on the wire within half a second, the process
/// exits within a second, its VIPs (advertised and excluded) are gone and n2 takes over.
///
/// Regression: GARPs used to open and close an `AF_PACKET` socket each, and every close
/// waits ~10 ms for an RCU grace period in the kernel, on the instance task; 100 GARPs held
/// the SIGTERM (and adverts) back for about a second.
#[test]
fn sigterm_exits_quickly_with_priority_zero() -> Result<()> {
    let lab = lab("vfterm", 2)?;
    let vips: Vec<String> = (200..210).map(|i| format!("192.0.2.{i}")).collect();
    let excluded: Vec<String> = (240..250).map(|i| format!("192.0.2.{i}")).collect();
    let vip_refs: Vec<&str> = vips.iter().map(String::as_str).collect();
    let excl: String = excluded.iter().map(|e| format!("        {e}\n")).collect();
    let excl = format!("    virtual_ipaddress_excluded {{\n{excl}    }}");
    let c1 = conf(
        N1,
        &[instance("VI_1", 55, "MASTER", 100, "0.1", &vip_refs, &excl)],
    );
    let c2 = conf(
        N2,
        &[instance("VI_1", 55, "BACKUP", 99, "0.1", &vip_refs, "")],
    );
    let cap = lab.capture_bridge("bridge")?;
    // n2 first: n1 then preempts it, and the SIGTERM lands just after n1 became Master.
    let d2 = lab.start_daemon(W, N2, &c2)?;
    lab.wait_state(&d2, "VI_1", "MASTER", SETTLE)?;
    let d1 = lab.start_daemon(W, N1, &c1)?;
    wait_for(
        "n1 to install its first VIP",
        SETTLE,
        Duration::from_millis(5),
        || lab.has_addr(N1, VIP),
        || lab.log_summary(20),
    )?;

    let t_term = now_epoch();
    let start = std::time::Instant::now();
    d1.term()?;
    d1.wait_exit(Duration::from_secs(5))?;
    let exit_after = start.elapsed();
    eprintln!("SIGTERM -> exit after {exit_after:?}");
    if exit_after > Duration::from_secs(1) {
        return Err(LabError::check(format!(
            "wasmalived took {exit_after:?} to exit after SIGTERM (expected a second at most)\n{}",
            d1.proc.log_tail(20)
        )));
    }
    for a in vips.iter().chain(&excluded) {
        if lab.has_addr(N1, a)? {
            return Err(LabError::check(format!("{a} left on n1 after SIGTERM")));
        }
    }
    lab.wait_sole_holder(&PAIR, VIP, N2, Duration::from_secs(3))?;
    std::thread::sleep(Duration::from_millis(200));
    let packets = cap.stop()?;
    let t0 = expect_priority_zero(&lab, &packets, N1, 55, t_term)?;
    let after = t0 - t_term;
    eprintln!("priority-0 advert {:.1} ms after SIGTERM", after * 1000.0);
    if after > 0.5 {
        return Err(LabError::check(format!(
            "n1's priority-0 advert left {after:.3} s after SIGTERM (expected well under 0.5 s)\n{}",
            d1.proc.log_tail(20)
        )));
    }
    lab.pass()
}

// ---------------------------------------------------------------------------------------
// 7. unicast, three nodes
// ---------------------------------------------------------------------------------------

/// Three nodes in unicast (`unicast_src_ip` + two `unicast_peer`s each, no multicast):
/// n1 (100) wins, then on its crash n2 (99) takes over and n3 (98) stays Backup; adverts go
/// to each peer's address, never to 224.0.0.18.
#[test]
fn unicast_three_nodes() -> Result<()> {
    let lab = lab("vfuni", 3)?;
    let nodes = ["n1", "n2", "n3"];
    let addr = |i: usize| format!("192.0.2.{}", i + 1);
    let mut daemons = Vec::new();
    let cap = lab.capture_bridge("bridge")?;
    for (i, n) in nodes.iter().enumerate() {
        let peers: String = (0..3)
            .filter(|j| *j != i)
            .map(|j| format!("        {}\n", addr(j)))
            .collect();
        let extra = format!(
            "    unicast_src_ip {}\n    unicast_peer {{\n{peers}    }}",
            addr(i)
        );
        let state = if i == 0 { "MASTER" } else { "BACKUP" };
        let prio = 100 - i as u8;
        let c = conf(
            n,
            &[instance("VI_1", 55, state, prio, "0.1", &[VIP], &extra)],
        );
        daemons.push(lab.start_daemon(W, n, &c)?);
    }
    lab.wait_sole_holder(&nodes, VIP, "n1", SETTLE)?;
    lab.wait_state(&daemons[1], "VI_1", "BACKUP", SETTLE)?;
    lab.wait_state(&daemons[2], "VI_1", "BACKUP", SETTLE)?;
    lab.expect_sole_holder_for(&nodes, VIP, "n1", Duration::from_millis(500))?;

    lab.crash(&daemons[0], &[VIP])?;
    lab.wait_sole_holder(&nodes, VIP, "n2", SETTLE)?;
    lab.wait_state(&daemons[1], "VI_1", "MASTER", Duration::from_secs(3))?;
    lab.expect_sole_holder_for(&nodes, VIP, "n2", Duration::from_millis(500))?;
    lab.wait_state(&daemons[2], "VI_1", "BACKUP", Duration::from_secs(1))?;
    let packets = cap.stop()?;
    let mut seen_dst = std::collections::BTreeSet::new();
    for p in &packets {
        if let PacketKind::Advert {
            src, dst, vrid: 55, ..
        } = p.kind
        {
            if dst.to_string() == "224.0.0.18" {
                return Err(LabError::check(format!(
                    "multicast advert from {src} in unicast mode"
                )));
            }
            seen_dst.insert((src.to_string(), dst.to_string()));
        }
    }
    for (from, to) in [("1", "2"), ("1", "3"), ("2", "1"), ("2", "3")] {
        let pair = (format!("192.0.2.{from}"), format!("192.0.2.{to}"));
        if !seen_dst.contains(&pair) {
            return Err(LabError::check(format!(
                "no unicast advert {} -> {} captured; seen {seen_dst:?}",
                pair.0, pair.1
            )));
        }
    }
    lab.pass()
}

/// keepalived's sync groups move members together in every state, not only into Fault:
/// n2 has the higher priority for VI_1 only (110 vs 100) and the lower one for VI_2 (99 vs
/// 100). With both instances in one group on each node, keepalived keeps both VIPs on one
/// node (whichever group went Master first: a member only goes Master when the whole group
/// can, and holds the others back otherwise), never one on each.
fn sync_group_members_stay_together(test: &str, kind: Impl) -> Result<()> {
    let lab = lab(test, 2)?;
    let (v1, v2) = ("192.0.2.201", "192.0.2.202");
    let group =
        "vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n".to_string();
    let c1 = conf(
        N1,
        &[
            group.clone(),
            instance("VI_1", 51, "BACKUP", 100, "0.1", &[v1], ""),
            instance("VI_2", 52, "BACKUP", 100, "0.1", &[v2], ""),
        ],
    );
    let c2 = conf(
        N2,
        &[
            group,
            instance("VI_1", 51, "BACKUP", 110, "0.1", &[v1], ""),
            instance("VI_2", 52, "BACKUP", 99, "0.1", &[v2], ""),
        ],
    );
    let _d1 = lab.start_daemon(kind, N1, &c1)?;
    let _d2 = lab.start_daemon(kind, N2, &c2)?;
    let one_holder = |ip: &str| -> Result<bool> { Ok(lab.holders(&PAIR, ip)?.len() == 1) };
    wait_for(
        "each VIP on exactly one node",
        SETTLE,
        Duration::from_millis(50),
        || Ok(one_holder(v1)? && one_holder(v2)?),
        || lab.log_summary(20),
    )?;
    // Settled: many master-down intervals later.
    std::thread::sleep(Duration::from_secs(2));
    let (h1, h2) = (lab.holders(&PAIR, v1)?, lab.holders(&PAIR, v2)?);
    eprintln!("{}: VI_1 on {h1:?}, VI_2 on {h2:?}", kind.name());
    if h1 != h2 || h1.len() != 1 {
        return Err(LabError::check(format!(
            "{}: sync group members should be Master on the same node; VI_1 on {h1:?}, \
             VI_2 on {h2:?}\n{}",
            kind.name(),
            lab.log_summary(20)
        )));
    }
    lab.pass()
}

/// Mixed priorities (VI_1 higher on n2, VI_2 higher on n1): the group stays on one node.
#[test]
fn sync_group_members_stay_together_wasmalived() -> Result<()> {
    sync_group_members_stay_together("vfsgw", W)
}

/// The reference behaviour, pinned against keepalived.
#[test]
fn sync_group_members_stay_together_reference_keepalived() -> Result<()> {
    sync_group_members_stay_together("vfsgk", K)
}

// ---------------------------------------------------------------------------------------
// 8. an interface that appears after start-up
// ---------------------------------------------------------------------------------------

/// An instance whose interface does not exist yet is not started (and says so); it starts by
/// itself once the interface appears, as keepalived waits for it.
#[test]
fn instance_starts_when_its_interface_appears() -> Result<()> {
    let lab = lab("vflate", 1)?;
    let vip = "198.51.100.99";
    let c1 = conf(
        N1,
        &[instance("VI_9", 59, "MASTER", 100, "0.1", &[vip], "")
            .replace("interface eth0", "interface eth9")],
    );
    let d1 = lab.start_daemon(W, N1, &c1)?;
    std::thread::sleep(Duration::from_millis(800));
    if lab.has_addr(N1, vip)? || raw_status(&d1, "VI_9").is_ok() {
        return Err(LabError::check(
            "VI_9 must not run while eth9 does not exist".to_string(),
        ));
    }
    add_link(&lab, N1, "eth9")?;
    lab.run(N1, &["ip", "addr", "add", "198.51.100.1/24", "dev", "eth9"])?;
    lab.wait_state(&d1, "VI_9", "MASTER", SETTLE)?;
    wasmalived_e2e::wait_for(
        "the VIP on the late interface",
        Duration::from_secs(3),
        Duration::from_millis(50),
        || lab.has_addr(N1, vip),
        || lab.log_summary(20),
    )?;
    lab.pass()
}
