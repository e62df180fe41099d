//! Checks drive priority (issue 4), end to end: two wasmalived nodes, a real nginx in each
//! node's namespace serving a page that names the node, and a client fetching the VIP.
//!
//! - weight: nginx killed on the Master → the `nginx-process` plugin's check goes down after
//!   `fall` runs, priority 101 − 10 = 91 < 100, the Backup takes over; nginx back → preemption.
//! - fatal: the plugin's remediation (`/bin/true`) does not bring nginx back → `fatal` → the
//!   Master enters Fault at once (priority-0 advert), the Backup takes over after its skew
//!   time, much faster than a master-down interval; nginx back → it leaves Fault and preempts.
//! - keepalived's `script` form run by wasmalived (a shell script testing a marker file).
//! - weight 0: the instance waits in Fault until the check has reported once, and a down
//!   weight-0 check keeps it in Fault.
//! - `on_fatal stop_daemon`: the daemon releases the VIP and exits.
//!
//! All with VRRPv2, `advert_int 1` (master-down interval of the Backup: 3.61 s, skew 0.61 s).
//! Needs root, nginx, curl, `cargo build -p wasmalived` and `make plugins`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmalived_e2e::{
    now_epoch, plugin_check, plugin_path, script_check, wasmalived_bin, with_checks, with_global,
    CheckTiming, Impl, LabError, Pair, Proc, Proto, Result, CLIENT, INSTANCE, NODES,
};

const W: Impl = Impl::Wasmalived;
const PROTO: Proto = Proto::V2Pass;
/// n1 and n2: a weight of -10 on n1 drops it below n2.
const PRIOS: [u8; 2] = [101, 100];
const CHECK: &str = "chk_nginx";
/// The nginx check: every second, down after 2 failures, up after 1 success; down costs
/// n1 its mastership (weight -10, see [`PRIOS`]).
const NGINX_TIMING: CheckTiming = CheckTiming {
    interval: 1,
    timeout: None,
    fall: 2,
    rise: 1,
    weight: -10,
};
/// Extra slack for every timing bound: the CI machine has 2 busy cores.
const MARGIN: Duration = Duration::from_millis(1500);
/// Longest time the VIP may be seen on both nodes when a live Master hands over (see
/// `wasmalived_e2e::handover`): the real overlap is well under a millisecond, the sampler
/// queries the nodes one after the other, and the CI machine is loaded.
const HANDOVER_OVERLAP: Duration = Duration::from_millis(250);

/// Checks node `i`'s instance state and effective priority in `status --json`.
fn expect_status(pair: &Pair, i: usize, state: &str, effective: i64) -> Result<()> {
    let d = pair.daemon(i)?;
    let st = d.instance_status(INSTANCE)?;
    if st.state != state || st.effective_priority != effective {
        return Err(LabError::check(format!(
            "{}: expected {INSTANCE} {state} with effective priority {effective}, status says \
             {} with {}/{} (log {})",
            NODES[i],
            st.state,
            st.priority,
            st.effective_priority,
            d.proc.log_path().display()
        )));
    }
    Ok(())
}

/// Checks node `i`'s check state in `status --json`.
fn expect_check(pair: &Pair, i: usize, check: &str, state: &str) -> Result<()> {
    let d = pair.daemon(i)?;
    let c = d.check_status(check)?;
    if c.state != state {
        return Err(LabError::check(format!(
            "{}: expected check {check} {state}, status says {} ({})\n{}",
            NODES[i],
            c.state,
            c.last,
            d.proc.log_tail(20)
        )));
    }
    Ok(())
}

/// A pair with nginx running on both nodes and priorities 101/100; nothing else started.
fn nginx_pair(test: &str) -> Result<(Pair, [Proc; 2])> {
    wasmalived_bin()?;
    let mut pair = Pair::new(test, PROTO, [W, W])?;
    for (i, p) in PRIOS.iter().enumerate() {
        pair.confs[i] = pair.confs[i].clone().priority(*p);
    }
    let nginx = [
        pair.lab.start_nginx(NODES[0])?,
        pair.lab.start_nginx(NODES[1])?,
    ];
    Ok((pair, nginx))
}

/// Starts both nodes with `blocks[i]` (vrrp_script text) tracked as `CHECK`, waits for n1
/// to be Master with the check up and the client to read n1's page through the VIP.
fn start_tracking(pair: &mut Pair, blocks: [&str; 2], globals: &[&str]) -> Result<()> {
    let text = |i: usize| -> Result<String> {
        with_global(
            &with_checks(&pair.confs[i].render(), blocks[i], &[CHECK])?,
            globals,
        )
    };
    let texts = [text(0)?, text(1)?];
    pair.start_n1_then_n2([&texts[0], &texts[1]])?;
    pair.wait_check_up_on_both(CHECK, Duration::from_secs(5))?;
    expect_status(pair, 0, "MASTER", i64::from(PRIOS[0]))?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(5))?;
    Ok(())
}

/// After a failover measured from `t0`, fails unless the VIP reached node `to` within `bound`.
fn expect_took(
    pair: &Pair,
    tl: &wasmalived_e2e::Timeline,
    to: usize,
    t0: f64,
    bound: Duration,
    what: &str,
) -> Result<f64> {
    let took = tl.first_on(NODES[to], t0).map(|t| t - t0);
    eprintln!(
        "{what}: VIP on {} after {took:?} s (bound {:.3} s)",
        NODES[to],
        bound.as_secs_f64()
    );
    match took {
        Some(s) if s <= bound.as_secs_f64() => Ok(s),
        _ => Err(LabError::check(format!(
            "{what}: the VIP reached {} after {took:?} s, bound {:.3} s\n{}",
            NODES[to],
            bound.as_secs_f64(),
            pair.lab.log_summary(25)
        ))),
    }
}

#[test]
fn nginx_down_lowers_priority_and_the_backup_takes_over() -> Result<()> {
    let plugin = plugin_path("nginx_process")?;
    let (mut pair, nginx) = nginx_pair("cfweight")?;
    let timing = NGINX_TIMING;
    let block = plugin_check(
        CHECK,
        &plugin,
        &[("process", "nginx")],
        &["allow_processes netns"],
        &timing,
    );
    start_tracking(&mut pair, [&block, &block], &[])?;
    let sampler = pair
        .lab
        .sample_vip(&NODES, pair.vip(), Duration::from_millis(10))?;

    // nginx dies on the Master.
    let t_kill = now_epoch();
    pair.lab.kill_nginx(&nginx[0])?;
    // fall × interval until the check is down, then the Backup ignores the lower-priority
    // adverts and takes over when its master-down timer expires (RFC 3768 §6.4.2).
    let bound = timing.interval() * timing.fall + PROTO.master_down(PRIOS[1]) + MARGIN;
    pair.expect_master(1, bound + Duration::from_secs(3))?;
    expect_check(&pair, 0, CHECK, "down")?;
    expect_status(&pair, 0, "BACKUP", 91)?;
    expect_status(&pair, 1, "MASTER", 100)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[1], Duration::from_secs(3))?;

    // nginx is back: rise 1 → priority 101 again → n1 preempts.
    let t_back = now_epoch();
    let _nginx = pair.lab.start_nginx(NODES[0])?;
    let back_bound = timing.interval() * timing.rise + PROTO.master_down(PRIOS[1]) + MARGIN;
    pair.expect_master(0, back_bound + Duration::from_secs(3))?;
    expect_check(&pair, 0, CHECK, "up")?;
    expect_status(&pair, 0, "MASTER", 101)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(3))?;

    let tl = sampler.stop()?;
    tl.expect_overlap_at_most(HANDOVER_OVERLAP)?;
    expect_took(&pair, &tl, 1, t_kill, bound, "nginx killed (weight -10)")?;
    // start_nginx waits for nginx to answer, so t_back is early by that much: still a bound.
    expect_took(
        &pair,
        &tl,
        0,
        t_back,
        back_bound + Duration::from_secs(1),
        "nginx back",
    )?;
    pair.pass()
}

#[test]
fn fatal_verdict_faults_the_master_at_once() -> Result<()> {
    let plugin = plugin_path("nginx_process")?;
    let (mut pair, nginx) = nginx_pair("cffatal")?;
    let timing = NGINX_TIMING;
    let settle = Duration::from_millis(200);
    let block = plugin_check(
        CHECK,
        &plugin,
        &[
            ("process", "nginx"),
            ("remediation", "restart"),
            ("settle_ms", "200"),
        ],
        &["allow_processes netns", "remediation restart \"/bin/true\""],
        &timing,
    );
    start_tracking(&mut pair, [&block, &block], &[])?;
    let cap = pair.lab.capture_bridge("bridge")?;
    let sampler = pair
        .lab
        .sample_vip(&NODES, pair.vip(), Duration::from_millis(10))?;

    let t_kill = now_epoch();
    pair.lab.kill_nginx(&nginx[0])?;
    // The next run (≤ 1 interval) finds no nginx, runs the remediation, settles, still
    // finds none → fatal → Fault: priority 0 now, so the Backup waits only its skew time.
    let bound = timing.interval() + settle + PROTO.skew(PRIOS[1]) + MARGIN;
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[1], bound + Duration::from_secs(3))?;
    pair.lab
        .wait_state(pair.daemon(0)?, INSTANCE, "FAULT", Duration::from_secs(2))?;
    pair.lab
        .wait_state(pair.daemon(1)?, INSTANCE, "MASTER", Duration::from_secs(2))?;
    expect_check(&pair, 0, CHECK, "fatal")?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[1], Duration::from_secs(3))?;
    // n1 stays in Fault (and without the VIP) while nginx is down.
    pair.lab
        .expect_sole_holder_for(&NODES, pair.vip(), NODES[1], Duration::from_secs(2))?;
    pair.lab
        .wait_state(pair.daemon(0)?, INSTANCE, "FAULT", Duration::ZERO)?;

    // nginx back: the check is OK again (rise 1) → n1 leaves Fault and preempts.
    let t_back = now_epoch();
    let _nginx = pair.lab.start_nginx(NODES[0])?;
    pair.expect_master(
        0,
        timing.interval() + PROTO.master_down(PRIOS[1]) * 2 + MARGIN * 2,
    )?;
    expect_check(&pair, 0, CHECK, "up")?;
    expect_status(&pair, 0, "MASTER", 101)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(3))?;

    let tl = sampler.stop()?;
    // Fault removes the VIP before the Backup takes it: no overlap at all in the failover.
    // Preempting back is a live handover.
    if let Some(span) = tl.overlap_spans().iter().find(|(a, _)| *a < t_back) {
        return Err(LabError::check(format!(
            "the VIP was on both nodes during the fatal failover: {span:?}"
        )));
    }
    tl.expect_overlap_at_most(HANDOVER_OVERLAP)?;
    let took = expect_took(&pair, &tl, 1, t_kill, bound, "nginx killed (fatal)")?;
    let master_down = PROTO.master_down(PRIOS[1]).as_secs_f64();
    if took >= master_down {
        return Err(LabError::check(format!(
            "fatal failover took {took:.3} s, not faster than a master-down interval \
             ({master_down:.3} s)"
        )));
    }
    let packets = cap.stop()?;
    pair.expect_priority_zero_from(&packets, 0, t_kill)?;
    pair.pass()
}

/// Writes an executable (0755) shell script.
fn write_script(path: &Path, body: &str) -> Result<()> {
    fs::write(path, format!("#!/bin/sh\n{body}\n"))
        .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| LabError::io(format!("chmod {}", path.display()), e))
}

fn touch(path: &Path) -> Result<()> {
    fs::write(path, b"down\n").map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

fn remove(path: &Path) -> Result<()> {
    fs::remove_file(path).map_err(|e| LabError::io(format!("removing {}", path.display()), e))
}

/// A marker-file check for each node: `chk-<node>.sh` fails while `<node>.down` exists.
/// Returns the scripts' paths and the markers' paths.
fn marker_scripts(pair: &Pair, sleep: &str) -> Result<([PathBuf; 2], [PathBuf; 2])> {
    let dir = pair.lab.dir().to_path_buf();
    let mk = |node: &str| -> Result<(PathBuf, PathBuf)> {
        let script = dir.join(format!("chk-{node}.sh"));
        let marker = dir.join(format!("{node}.down"));
        write_script(&script, &format!("{sleep}[ ! -e '{}' ]", marker.display()))?;
        Ok((script, marker))
    };
    let (s1, m1) = mk(NODES[0])?;
    let (s2, m2) = mk(NODES[1])?;
    Ok(([s1, s2], [m1, m2]))
}

#[test]
fn keepalived_script_form_moves_the_vip() -> Result<()> {
    let (mut pair, _nginx) = nginx_pair("cfscript")?;
    let (scripts, markers) = marker_scripts(&pair, "")?;
    let timing = CheckTiming {
        interval: 1,
        timeout: Some(1),
        fall: 2,
        rise: 1,
        weight: -10,
    };
    let blocks = [
        script_check(CHECK, &scripts[0].display().to_string(), &timing),
        script_check(CHECK, &scripts[1].display().to_string(), &timing),
    ];
    // The scripts live in a root-owned 0755 directory under the sticky /tmp: they pass
    // keepalived's script security walk, which is enforced here.
    start_tracking(
        &mut pair,
        [&blocks[0], &blocks[1]],
        &["enable_script_security"],
    )?;
    let sampler = pair
        .lab
        .sample_vip(&NODES, pair.vip(), Duration::from_millis(10))?;

    let t_down = now_epoch();
    touch(&markers[0])?;
    let bound = timing.interval() * timing.fall + PROTO.master_down(PRIOS[1]) + MARGIN;
    pair.expect_master(1, bound + Duration::from_secs(3))?;
    expect_check(&pair, 0, CHECK, "down")?;
    expect_status(&pair, 0, "BACKUP", 91)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[1], Duration::from_secs(3))?;

    let t_up = now_epoch();
    remove(&markers[0])?;
    let back = timing.interval() + PROTO.master_down(PRIOS[1]) + MARGIN;
    pair.expect_master(0, back + Duration::from_secs(3))?;
    expect_status(&pair, 0, "MASTER", 101)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(3))?;

    let tl = sampler.stop()?;
    tl.expect_overlap_at_most(HANDOVER_OVERLAP)?;
    expect_took(&pair, &tl, 1, t_down, bound, "script check down")?;
    expect_took(&pair, &tl, 0, t_up, back, "script check up")?;
    pair.pass()
}

#[test]
fn weight_zero_check_holds_the_instance_in_fault() -> Result<()> {
    let (mut pair, _nginx) = nginx_pair("cfzero")?;
    // Each run takes 1.5 s, so the first result arrives 1.5 s after start-up.
    let (scripts, markers) = marker_scripts(&pair, "sleep 1.5\n")?;
    let timing = CheckTiming {
        interval: 2,
        timeout: Some(2),
        fall: 1,
        rise: 1,
        weight: 0,
    };
    let block = script_check(CHECK, &scripts[0].display().to_string(), &timing);
    let text = with_checks(&pair.confs[0].render(), &block, &[CHECK])?;

    // n1 alone: until the check has reported once the instance must be in Fault, not
    // Backup (a Backup alone would become Master after its master-down interval).
    pair.start_with(0, &text)?;
    let d = pair.daemon(0)?;
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(LabError::check(format!(
                "check {CHECK} never reported; states seen {seen:?}\n{}",
                d.proc.log_tail(25)
            )));
        }
        // The control socket needs a moment after start-up.
        let (Ok(inst), Ok(chk)) = (d.instance_status(INSTANCE), d.check_status(CHECK)) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        if chk.state != "init" {
            break;
        }
        if seen.last() != Some(&inst.state) {
            seen.push(inst.state.clone());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if seen.is_empty() || seen.iter().any(|s| s != "FAULT") {
        return Err(LabError::check(format!(
            "before its weight-0 check reported, {INSTANCE} should be FAULT; states seen {seen:?}"
        )));
    }
    // Reported OK: Backup, then Master (alone on the link).
    pair.lab.wait_sole_holder(
        &NODES,
        pair.vip(),
        NODES[0],
        PROTO.master_down(PRIOS[0]) + Duration::from_secs(4),
    )?;

    // n2 joins (no checks); the weight-0 check goes down → n1 Fault, n2 takes over.
    pair.start(1)?;
    pair.lab
        .wait_state(pair.daemon(1)?, INSTANCE, "BACKUP", pair.election_timeout())?;
    touch(&markers[0])?;
    pair.lab.wait_sole_holder(
        &NODES,
        pair.vip(),
        NODES[1],
        timing.interval() * 2 + PROTO.skew(PRIOS[1]) + Duration::from_secs(4),
    )?;
    pair.lab
        .wait_state(pair.daemon(0)?, INSTANCE, "FAULT", Duration::from_secs(2))?;
    // It stays in Fault while the check is down: several check runs, never the VIP.
    let sampler = pair
        .lab
        .sample_vip(&NODES, pair.vip(), Duration::from_millis(20))?;
    let until = Instant::now() + timing.interval() * 3;
    while Instant::now() < until {
        let st = pair.daemon(0)?.instance_status(INSTANCE)?.state;
        if st != "FAULT" {
            return Err(LabError::check(format!(
                "n1 left FAULT ({st}) while its weight-0 check is down\n{}",
                pair.lab.log_summary(20)
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let tl = sampler.stop()?;
    if tl.first_on(NODES[0], 0.0).is_some() {
        return Err(LabError::check("n1 held the VIP while in FAULT"));
    }
    expect_check(&pair, 0, CHECK, "down")?;

    // Check OK again: n1 leaves Fault and preempts (101 > 100).
    remove(&markers[0])?;
    pair.expect_master(
        0,
        timing.interval() * 2 + PROTO.master_down(PRIOS[1]) + Duration::from_secs(4),
    )?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[0], Duration::from_secs(3))?;
    pair.pass()
}

#[test]
fn on_fatal_stop_daemon_releases_the_vip_and_exits() -> Result<()> {
    let plugin = plugin_path("nginx_process")?;
    let (mut pair, nginx) = nginx_pair("cfstop")?;
    let timing = NGINX_TIMING;
    let grants = ["allow_processes netns", "remediation restart \"/bin/true\""];
    let params = [
        ("process", "nginx"),
        ("remediation", "restart"),
        ("settle_ms", "200"),
    ];
    let stop_grants = [grants[0], grants[1], "on_fatal stop_daemon"];
    let b1 = plugin_check(CHECK, &plugin, &params, &stop_grants, &timing);
    let b2 = plugin_check(CHECK, &plugin, &params, &grants, &timing);
    start_tracking(&mut pair, [&b1, &b2], &[])?;

    let t_kill = now_epoch();
    pair.lab.kill_nginx(&nginx[0])?;
    let d = pair.daemon(0)?;
    let status = d.wait_exit(timing.interval() + Duration::from_secs(8))?;
    let t_exit = now_epoch();
    eprintln!(
        "n1 wasmalived exited {status} {:.3} s after nginx was killed",
        t_exit - t_kill
    );
    if pair.lab.has_addr(NODES[0], pair.vip())? {
        return Err(LabError::check(format!(
            "n1's daemon stopped on a fatal verdict but left the VIP behind\n{}",
            d.proc.log_tail(25)
        )));
    }
    let log = fs::read_to_string(d.proc.log_path()).unwrap_or_default();
    if !log.contains("stop_daemon") {
        return Err(LabError::check(format!(
            "n1's daemon exited without saying why (no `stop_daemon` in its log)\n{}",
            d.proc.log_tail(25)
        )));
    }
    // It released with priority 0: n2 takes over after its skew time, not a master-down.
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[1], PROTO.skew(PRIOS[1]) + MARGIN)?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[1], Duration::from_secs(3))?;
    pair.pass()
}
