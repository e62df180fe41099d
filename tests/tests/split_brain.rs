//! Split brain on real partitions (issue 5): two wasmalived nodes (VRRPv3, advert_int 0.3,
//! n1 priority 100, n2 99) whose VRRP traffic is cut with nftables in their namespaces while
//! everything else still flows.
//!
//! - No guard, one-way cut (n2 stops hearing n1): both hold the VIP; n1, which keeps hearing
//!   n2's adverts, raises the split-brain alarm (error log line, `split_brain` in status, the
//!   `split_brain_events` counter, the `notify_split_brain` hook), which clears after the heal.
//! - No guard, two-way cut: both hold the VIP; after the heal n1 alone is Master.
//! - `disk-lock` on a directory both namespaces see: a 10 s two-way cut and its heal, the VIP
//!   sampled every 5 ms on both nodes: never on both.
//! - `quorum` with witnesses (a TCP and an HTTP witness served by python3 on the client): n1
//!   isolated from everyone loses quorum and drops the VIP, n2 takes it; after the heal
//!   exactly one Master.
//! - `quorum` with a real etcd on its own lab host: never two VIPs through a cut; kill -9 of
//!   the holder's daemon lets n2 take over within TTL + check run + master-down interval.
//! - `heartbeat_interface eth1` (a second bridge): VRRP cut on eth0 only changes nothing, no
//!   alarm; the same cut without the extra path gives two Masters. The same for a unicast
//!   pair (each peer's adverts also go over eth1 to the peer's address) and for an IPv6 pair
//!   (adverts over eth1 keep eth0's link-local source).
//!
//! Needs root, nft, python3, curl, Debian's etcd, `cargo build -p wasmalived`, `make plugins`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::{Duration, Instant};

use wasmalived_e2e::config::Proto;
use wasmalived_e2e::guards::{
    master_down, Guard, GuardStatus, GuardedPair, CHECK_INTERVAL_S, ETCD_TTL_S,
};
use wasmalived_e2e::partition::{cut, heal, Cut, SecondLink};
use wasmalived_e2e::{now_epoch, wait_for, LabError, Result, NODES};

/// Slack on every bound: two busy cores are shared with other test runs.
const SLACK: Duration = Duration::from_secs(3);

/// The `notify_split_brain` hook: appends its arguments (after the output file) to a file.
const HOOK: &str = "#!/bin/sh\nout=\"$1\"\nshift\necho \"$*\" >> \"$out\"\n";

/// Installs the hook script and a `notify_split_brain` line per node; returns the hook
/// output file of each node.
fn install_hook(gp: &mut GuardedPair) -> Result<[std::path::PathBuf; 2]> {
    let dir = gp.pair.lab.dir().to_path_buf();
    let script = dir.join("split-brain-hook.sh");
    fs::write(&script, HOOK).map_err(|e| LabError::io("writing the hook script", e))?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
        .map_err(|e| LabError::io("chmod of the hook script", e))?;
    let outs = [dir.join("hook-n1.out"), dir.join("hook-n2.out")];
    for (lines, out) in gp.instance_lines.iter_mut().zip(&outs) {
        lines.push(format!(
            "notify_split_brain \"{} {}\"",
            script.display(),
            out.display()
        ));
    }
    Ok(outs)
}

/// Waits until `file` has a line equal to `line`.
fn wait_hook_line(gp: &GuardedPair, file: &std::path::Path, line: &str) -> Result<Duration> {
    wait_for(
        &format!("hook output {} to contain {line:?}", file.display()),
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            Ok(fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .any(|l| l.trim() == line))
        },
        || {
            format!(
                "hook output now: {:?}\n{}",
                fs::read_to_string(file).unwrap_or_default(),
                gp.summary(20)
            )
        },
    )
}

/// Waits until node `i`'s status satisfies `pred`.
fn wait_status(
    gp: &GuardedPair,
    i: usize,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&GuardStatus) -> bool,
) -> Result<GuardStatus> {
    let mut last = None;
    wait_for(
        &format!("{} to be {what}", NODES[i]),
        timeout,
        Duration::from_millis(50),
        || {
            let s = gp.status(i)?;
            let ok = pred(&s);
            last = Some(s);
            Ok(ok)
        },
        || format!("status now: {:?}\n{}", gp.status(i).ok(), gp.summary(20)),
    )?;
    last.ok_or_else(|| LabError::check("no status read"))
}

fn expect(cond: bool, gp: &GuardedPair, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(LabError::check(format!("{}\n{}", msg(), gp.summary(25))))
    }
}

/// In Fault because of a guard verdict (not just waiting for the check's first result).
fn guard_fault(s: &GuardStatus) -> bool {
    s.state == "FAULT"
        && !s.fault_reasons.is_empty()
        && s.fault_reasons
            .iter()
            .all(|r| !r.contains("waiting for the first result"))
}

/// Two-way VRRP cut on both nodes.
fn cut_both(gp: &GuardedPair, c: &Cut) -> Result<()> {
    for n in NODES {
        cut(&gp.pair.lab, n, c)?;
    }
    Ok(())
}

fn heal_both(gp: &GuardedPair) -> Result<()> {
    for n in NODES {
        heal(&gp.pair.lab, n)?;
    }
    Ok(())
}

#[test]
fn unguarded_one_way_cut_raises_the_split_brain_alarm_and_clears_after_heal() -> Result<()> {
    let mut gp = GuardedPair::new("sbone", Guard::None)?;
    let hooks = install_hook(&mut gp)?;
    gp.start_both()?;
    let s = gp.status(0)?;
    expect(!s.split_brain && s.split_brain_events == 0, &gp, || {
        format!("no alarm expected before the cut: {s:?}")
    })?;

    // n2 stops hearing n1; n1 still hears n2.
    cut(&gp.pair.lab, NODES[1], &Cut::VrrpIn)?;
    let took = gp.wait_both_hold(master_down(99) + SLACK)?;
    eprintln!("one-way cut: VIP on both nodes after {took:.2?}");
    let s2 = gp.status(1)?;
    expect(s2.state == "MASTER", &gp, || {
        format!("n2 should be Master behind the cut: {s2:?}")
    })?;
    // n1 keeps receiving adverts from a Master it did not make step down → alarm.
    let s1 = wait_status(
        &gp,
        0,
        "in split-brain alarm",
        Duration::from_secs(5),
        |s| s.split_brain,
    )?;
    expect(
        s1.split_brain_events >= 1 && s1.state == "MASTER",
        &gp,
        || format!("n1 in alarm should count it and stay Master: {s1:?}"),
    )?;
    let log = fs::read_to_string(gp.daemon(0)?.proc.log_path()).unwrap_or_default();
    expect(
        log.contains("split brain: another Master advertises this VRID"),
        &gp,
        || "n1's log has no split-brain error line".into(),
    )?;
    wait_hook_line(&gp, &hooks[0], "INSTANCE VI_1 SPLIT_BRAIN 100")?;
    expect(!gp.status(1)?.split_brain, &gp, || {
        "n2 hears nobody behind the cut and has no evidence; its alarm must stay down".into()
    })?;

    heal(&gp.pair.lab, NODES[1])?;
    let t = Instant::now();
    let m = gp.wait_one_master(master_down(99) + SLACK)?;
    expect(m == 0, &gp, || {
        format!("after the heal {} is Master, expected n1", NODES[m])
    })?;
    eprintln!("heal: one Master (n1) after {:.2?}", t.elapsed());
    let s1 = wait_status(&gp, 0, "out of alarm", Duration::from_secs(5), |s| {
        !s.split_brain
    })?;
    expect(s1.split_brain_events == 1, &gp, || {
        format!("one alarm expected in all: {s1:?}")
    })?;
    wait_hook_line(&gp, &hooks[0], "INSTANCE VI_1 SPLIT_BRAIN_CLEARED 100")?;
    gp.pair
        .lab
        .expect_sole_holder_for(&NODES, gp.pair.vip(), NODES[0], Duration::from_secs(1))?;
    gp.pair.pass()
}

#[test]
fn unguarded_two_way_cut_gives_two_masters_and_one_after_heal() -> Result<()> {
    let mut gp = GuardedPair::new("sbtwo", Guard::None)?;
    gp.start_both()?;
    cut_both(&gp, &Cut::VrrpIn)?;
    let took = gp.wait_both_hold(master_down(99) + SLACK)?;
    let states = [gp.status(0)?.state, gp.status(1)?.state];
    eprintln!("two-way cut: VIP on both after {took:.2?}, states {states:?}");
    expect(states == ["MASTER", "MASTER"], &gp, || {
        format!("both should be Master behind a two-way cut: {states:?}")
    })?;
    // It stays that way: nothing on either side can tell.
    thread::sleep(Duration::from_secs(2));
    expect(gp.holders()? == [0, 1], &gp, || {
        "the dual Master should last".into()
    })?;

    heal_both(&gp)?;
    let t = Instant::now();
    let m = gp.wait_one_master(master_down(99) + SLACK)?;
    expect(m == 0, &gp, || {
        format!("after the heal {} is Master, expected n1", NODES[m])
    })?;
    eprintln!("heal: one Master after {:.2?}", t.elapsed());
    gp.pair
        .lab
        .expect_sole_holder_for(&NODES, gp.pair.vip(), NODES[0], Duration::from_secs(1))?;
    gp.pair.pass()
}

#[test]
fn disk_lock_never_gives_two_masters_through_a_partition_and_its_heal() -> Result<()> {
    let mut gp = GuardedPair::new("sbdisk", Guard::DiskLock)?;
    gp.start_both()?;
    let s2 = wait_status(&gp, 1, "in Fault (n1 holds the lease)", SLACK, guard_fault)?;
    expect(!s2.fault_reasons.is_empty(), &gp, || {
        format!("n2 in Fault without a reason: {s2:?}")
    })?;
    eprintln!("n2 stands down: {:?}", s2.fault_reasons);

    let sampler = gp
        .pair
        .lab
        .sample_vip(&NODES, gp.pair.vip(), Duration::from_millis(5))?;
    cut_both(&gp, &Cut::VrrpIn)?;
    // Long enough for n2 to have taken over twice over without the guard, and for the lease
    // to have been renewed several times.
    thread::sleep(Duration::from_secs(10));
    let s2 = gp.status(1)?;
    expect(s2.state == "FAULT", &gp, || {
        format!("n2 should still stand down behind the cut: {s2:?}")
    })?;
    heal_both(&gp)?;
    let t = Instant::now();
    let m = gp.wait_one_master(master_down(99) + SLACK)?;
    eprintln!("heal: one Master ({}) after {:.2?}", NODES[m], t.elapsed());
    thread::sleep(Duration::from_secs(1));
    let tl = sampler.stop()?;
    tl.expect_never_two()?;
    // The sampler forks `ip` per node and sample, so its rate depends on the machine's load;
    // what matters is that it kept sampling through the cut and the heal (~11 s): at least
    // one round per 100 ms on average.
    expect(tl.samples.len() > 110, &gp, || {
        format!("too few VIP samples: {}", tl.samples.len())
    })?;
    eprintln!("{} VIP samples, never on both nodes", tl.samples.len());
    gp.pair.pass()
}

#[test]
fn quorum_witnesses_isolated_master_drops_the_vip_and_the_other_takes_it() -> Result<()> {
    let mut gp = GuardedPair::new("sbquor", Guard::QuorumWitness)?;
    gp.start_both()?;
    let s2 = wait_status(&gp, 1, "Backup with quorum", SLACK, |s| s.state == "BACKUP")?;
    expect(s2.fault_reasons.is_empty(), &gp, || format!("{s2:?}"))?;

    cut(&gp.pair.lab, NODES[0], &Cut::Isolate)?;
    let t_cut = now_epoch();
    // n1 loses quorum at its next check run (interval + probe timeout), drops the VIP;
    // n2, which still reaches the witnesses, takes over after its master-down interval.
    let bound = Duration::from_secs(2 * u64::from(CHECK_INTERVAL_S)) + master_down(99) + SLACK;
    gp.wait_master(1, bound)?;
    eprintln!(
        "isolation: n2 sole Master after {:.2} s",
        now_epoch() - t_cut
    );
    let s1 = wait_status(&gp, 0, "in Fault (no quorum)", SLACK, guard_fault)?;
    eprintln!("n1: {:?}", s1.fault_reasons);
    expect(
        s1.fault_reasons
            .iter()
            .any(|r| r.contains("quorum") || r.contains("chk_guard")),
        &gp,
        || format!("n1's fault reasons should name the quorum check: {s1:?}"),
    )?;
    gp.pair
        .lab
        .expect_sole_holder_for(&NODES, gp.pair.vip(), NODES[1], Duration::from_secs(2))?;

    heal(&gp.pair.lab, NODES[0])?;
    // n1 regains quorum at its next run, leaves Fault and preempts (priority 100 > 99).
    let bound = Duration::from_secs(2 * u64::from(CHECK_INTERVAL_S)) + master_down(100) + SLACK;
    // n2 holds the VIP until n1 is back (one Master all along), then n1 takes over.
    let took = gp.wait_master(0, bound)?;
    eprintln!("heal: n1 is the one Master again after {took:.2?}");
    gp.pair
        .lab
        .expect_sole_holder_for(&NODES, gp.pair.vip(), NODES[0], Duration::from_secs(2))?;
    let s2 = gp.status(1)?;
    expect(s2.state == "BACKUP" && !s2.split_brain, &gp, || {
        format!("n2 should be a plain Backup after the heal: {s2:?}")
    })?;
    gp.pair.pass()
}

#[test]
fn quorum_etcd_never_two_masters_and_takeover_after_kill9_of_the_holder() -> Result<()> {
    let mut gp = GuardedPair::new("sbetcd", Guard::QuorumEtcd)?;
    gp.start_both()?;
    let s2 = wait_status(&gp, 1, "in Fault (n1 holds the key)", SLACK, guard_fault)?;
    eprintln!("n2 stands down: {:?}", s2.fault_reasons);

    let sampler = gp
        .pair
        .lab
        .sample_vip(&NODES, gp.pair.vip(), Duration::from_millis(5))?;
    cut_both(&gp, &Cut::VrrpIn)?;
    thread::sleep(Duration::from_secs(ETCD_TTL_S + 4));
    heal_both(&gp)?;
    let m = gp.wait_one_master(master_down(99) + SLACK)?;
    expect(m == 0, &gp, || {
        format!("{} is Master, expected n1 (the key holder)", NODES[m])
    })?;
    let tl = sampler.stop()?;
    tl.expect_never_two()?;
    eprintln!(
        "{} VIP samples through the cut, never on both",
        tl.samples.len()
    );

    // A real crash of the holder: its lease is no longer kept alive; etcd deletes the key
    // after the TTL, n2's next run takes it, n2 leaves Fault and wins the election.
    let sampler = gp
        .pair
        .lab
        .sample_vip(&NODES, gp.pair.vip(), Duration::from_millis(5))?;
    let t_kill = gp.pair.crash(0)?;
    let bound = Guard::QuorumEtcd.takeover_delay_bound() + master_down(99) + SLACK;
    gp.pair
        .lab
        .wait_sole_holder(&NODES, gp.pair.vip(), NODES[1], bound)?;
    let tl = sampler.stop()?;
    let took = tl.first_on(NODES[1], t_kill).map(|t| t - t_kill);
    eprintln!(
        "kill -9 of n1 -> VIP on n2 after {took:?} s (bound: TTL {ETCD_TTL_S} s + run + \
         master-down = {:.2} s)",
        (bound - SLACK).as_secs_f64()
    );
    let s2 = gp.status(1)?;
    expect(s2.state == "MASTER", &gp, || format!("{s2:?}"))?;
    gp.pair.pass()
}

#[test]
fn heartbeat_interface_survives_a_vrrp_cut_on_eth0() -> Result<()> {
    let mut gp = GuardedPair::new("sbhb", Guard::None)?;
    let link = SecondLink::new(&gp.pair.lab)?;
    link.attach(&gp.pair.lab, NODES[0], "198.51.100.1/24")?;
    link.attach(&gp.pair.lab, NODES[1], "198.51.100.2/24")?;
    for lines in &mut gp.instance_lines {
        lines.push("heartbeat_interface eth1".into());
    }
    gp.start_both()?;

    let eth0_only = Cut::VrrpInOn("eth0".into());
    cut_both(&gp, &eth0_only)?;
    // Longer than several master-down intervals: adverts over eth1 keep n2 Backup.
    gp.pair
        .lab
        .expect_sole_holder_for(&NODES, gp.pair.vip(), NODES[0], master_down(99) * 4)?;
    let (s1, s2) = (gp.status(0)?, gp.status(1)?);
    expect(
        s1.state == "MASTER"
            && s2.state == "BACKUP"
            && !s1.split_brain
            && !s2.split_brain
            && s1.split_brain_events == 0
            && s2.split_brain_events == 0,
        &gp,
        || format!("with the eth1 path: expected n1 Master, n2 Backup, no alarm: {s1:?} {s2:?}"),
    )?;
    eprintln!("eth0 VRRP cut with heartbeat_interface eth1: n1 stays the only Master");

    // The same cut without the extra path: two Masters.
    gp.pair.term(0)?;
    gp.pair.term(1)?;
    for lines in &mut gp.instance_lines {
        lines.clear();
    }
    gp.start(0)?;
    gp.pair.lab.wait_sole_holder(
        &NODES,
        gp.pair.vip(),
        NODES[0],
        master_down(100) * 2 + SLACK,
    )?;
    gp.start(1)?;
    let took = gp.wait_both_hold(master_down(99) * 2 + SLACK)?;
    eprintln!("same cut without heartbeat_interface: VIP on both after {took:.2?}");

    heal_both(&gp)?;
    let m = gp.wait_one_master(master_down(99) + SLACK)?;
    expect(m == 0, &gp, || {
        format!("after the heal {} is Master", NODES[m])
    })?;
    drop(link);
    gp.pair.pass()
}

/// A unicast pair sends its adverts to the peer's address over every path: with VRRP cut on
/// eth0, the adverts over eth1 (the peer's eth0 address, reached on eth1) keep n2 Backup and
/// neither side raises the split-brain alarm.
#[test]
fn heartbeat_interface_carries_unicast_adverts() -> Result<()> {
    let mut gp = GuardedPair::new("sbhbu", Guard::None)?;
    let link = SecondLink::new(&gp.pair.lab)?;
    link.attach(&gp.pair.lab, NODES[0], "198.51.100.1/24")?;
    link.attach(&gp.pair.lab, NODES[1], "198.51.100.2/24")?;
    for (i, lines) in gp.instance_lines.iter_mut().enumerate() {
        let (me, peer) = (i + 1, 2 - i);
        lines.push(format!("unicast_src_ip 192.0.2.{me}"));
        lines.push(format!("unicast_peer {{\n        192.0.2.{peer}\n    }}"));
        lines.push("heartbeat_interface eth1".into());
    }
    gp.start_both()?;
    cut_both(&gp, &Cut::VrrpInOn("eth0".into()))?;
    gp.pair
        .lab
        .expect_sole_holder_for(&NODES, gp.pair.vip(), NODES[0], master_down(99) * 4)?;
    let (s1, s2) = (gp.status(0)?, gp.status(1)?);
    expect(
        s1.state == "MASTER"
            && s2.state == "BACKUP"
            && s1.split_brain_events == 0
            && s2.split_brain_events == 0,
        &gp,
        || format!("unicast over eth1: expected n1 Master, n2 Backup, no alarm: {s1:?} {s2:?}"),
    )?;
    heal_both(&gp)?;
    drop(link);
    gp.pair.pass()
}

/// An IPv6 pair: the adverts on eth1 carry the sender's eth0 link-local source (built with
/// the IPv6 header, as the kernel would not send it there), so with VRRP cut on eth0 n2 stays
/// Backup hearing one router, and no alarm is raised.
#[test]
fn heartbeat_interface_carries_ipv6_adverts_with_the_primary_source() -> Result<()> {
    let mut gp = GuardedPair::with_proto("sbhb6", Guard::None, Proto::V3Ipv6)?;
    let link = SecondLink::new(&gp.pair.lab)?;
    link.attach(&gp.pair.lab, NODES[0], "198.51.100.1/24")?;
    link.attach(&gp.pair.lab, NODES[1], "198.51.100.2/24")?;
    for lines in &mut gp.instance_lines {
        lines.push("heartbeat_interface eth1".into());
    }
    gp.start_both()?;
    cut_both(&gp, &Cut::VrrpInOn("eth0".into()))?;
    gp.pair
        .lab
        .expect_sole_holder_for(&NODES, gp.pair.vip(), NODES[0], master_down(99) * 4)?;
    let (s1, s2) = (gp.status(0)?, gp.status(1)?);
    expect(
        s1.state == "MASTER"
            && s2.state == "BACKUP"
            && s1.split_brain_events == 0
            && s2.split_brain_events == 0,
        &gp,
        || format!("IPv6 over eth1: expected n1 Master, n2 Backup, no alarm: {s1:?} {s2:?}"),
    )?;

    // The cut does stop IPv6 adverts on eth0: without the extra path, two Masters.
    gp.pair.term(0)?;
    gp.pair.term(1)?;
    for lines in &mut gp.instance_lines {
        lines.clear();
    }
    gp.start(0)?;
    gp.pair.lab.wait_sole_holder(
        &NODES,
        gp.pair.vip(),
        NODES[0],
        master_down(100) * 2 + SLACK,
    )?;
    gp.start(1)?;
    gp.wait_both_hold(master_down(99) * 2 + SLACK)?;
    heal_both(&gp)?;
    drop(link);
    gp.pair.pass()
}
