//! Event-driven checks (issue 14 §1), end to end: a check that names the processes it counted
//! (`wake.on-exit`) runs again the moment one exits, not at its next interval.
//!
//! - nginx killed on the Master → the `nginx-process` check (`interval 10`,
//!   `fatal_when_none true`) is woken by the exit, says `fatal`, the Master enters Fault and
//!   the Backup holds the VIP after its skew time — far sooner than the 10 s interval would
//!   allow. VRRPv3, `advert_int 0.1` (Backup skew 61 ms).
//! - a process that keeps exiting and coming back cannot make its check spin: the early runs
//!   stay within the rate limit (a burst, then one per 100 ms), counted in `status`.
//! - a maintenance flag touched on the Master → the stock `file` check (`interval 10`,
//!   `verdict fatal`), which names its flag (`wake.on-change`), runs at once, the Master
//!   enters Fault and the Backup holds the VIP after its skew time; removing the flag brings
//!   the check back up at once too.
//! - a check that asks to watch a path outside its granted directory is refused, and its
//!   status says which path and which grant.
//! - nginx killed on the Master → the stock `tcp` check on its port (`interval 10`,
//!   `wake_on_disconnect true`, weight 0) is woken by the connection the daemon held to nginx
//!   closing (`wake.on-disconnect`), fails, the Master enters Fault and the Backup holds the
//!   VIP after its skew time.
//!
//! Needs root, nginx, `cargo build -p wasmalived` and `make plugins`.

use std::path::Path;
use std::time::{Duration, Instant};

use wasmalived_e2e::{
    now_epoch, plugin_check, plugin_path, wasmalived_bin, with_checks, CheckStatus, CheckTiming,
    Impl, LabError, Pair, Proto, Result, CLIENT, INSTANCE, NODES,
};

const W: Impl = Impl::Wasmalived;
const PROTO: Proto = Proto::V3Ipv4;
/// n1 is the Master.
const PRIOS: [u8; 2] = [101, 100];
const CHECK: &str = "chk_nginx";
/// A long interval: only the wake can make the check see the exit in time.
const TIMING: CheckTiming = CheckTiming {
    interval: 10,
    timeout: Some(2),
    fall: 1,
    rise: 1,
    weight: -10,
};
/// Slack on top of the protocol bound: the CI machine has 2 busy cores. Still far below the
/// interval, which is the bound without the wake.
const MARGIN: Duration = Duration::from_millis(1500);
/// The early-run rate limit of the daemon (`checks::wake`): a burst, then one per gap.
const EARLY_BURST: u64 = 3;
const EARLY_GAP: Duration = Duration::from_millis(100);

#[test]
fn nginx_killed_wakes_its_check_and_the_backup_takes_over_within_its_skew_time() -> Result<()> {
    wasmalived_bin()?;
    let plugin = plugin_path("nginx_process")?;
    let mut pair = Pair::new("evfatal", PROTO, [W, W])?;
    for (i, p) in PRIOS.iter().enumerate() {
        pair.confs[i] = pair.confs[i].clone().priority(*p);
    }
    let nginx = [
        pair.lab.start_nginx(NODES[0])?,
        pair.lab.start_nginx(NODES[1])?,
    ];
    let block = plugin_check(
        CHECK,
        &plugin,
        &[("process", "nginx"), ("fatal_when_none", "true")],
        &["allow_processes netns"],
        &TIMING,
    );
    let texts = [
        with_checks(&pair.confs[0].render(), &block, &[CHECK])?,
        with_checks(&pair.confs[1].render(), &block, &[CHECK])?,
    ];
    pair.start_n1_then_n2([&texts[0], &texts[1]])?;
    pair.wait_check_up_on_both(CHECK, Duration::from_secs(5))?;
    // The exit wakes the check: `fatal` → Fault (priority-0 advert) → the Backup takes over
    // after its skew time (RFC 5798 §6.4.2).
    expect_woken_takeover(&pair, CHECK, "nginx killed", "fatal", || {
        pair.lab.kill_nginx(&nginx[0])
    })?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[1], Duration::from_secs(3))?;
    pair.pass()
}

/// Fires `trigger` (an event n1's check `check` watches) and expects the check to run early
/// and turn `state` (`fatal`, or `down` for a check that makes its instance Fault), n1 to
/// enter Fault and n2 to hold the VIP alone within its skew time
/// (RFC 5798 §6.4.2), timed by a VIP sampler; long before the check's interval. Returns
/// n1's check status after the takeover.
fn expect_woken_takeover(
    pair: &Pair,
    check: &str,
    what: &str,
    state: &str,
    trigger: impl FnOnce() -> Result<()>,
) -> Result<CheckStatus> {
    let before = pair.daemon(0)?.check_status(check)?;
    let sampler = pair
        .lab
        .sample_vip(&NODES, pair.vip(), Duration::from_millis(5))?;
    let t_trigger = now_epoch();
    trigger()?;
    let bound = PROTO.skew(PRIOS[1]) + MARGIN;
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[1], bound + Duration::from_secs(3))?;
    pair.lab
        .wait_state(pair.daemon(0)?, INSTANCE, "FAULT", Duration::from_secs(2))?;
    let after = pair.daemon(0)?.check_status(check)?;
    let tl = sampler.stop()?;
    let took = tl.first_on(NODES[1], t_trigger).map(|t| t - t_trigger);
    eprintln!(
        "{what}: VIP on {} after {took:?} s (bound {:.3} s, interval {} s); check runs {} -> {}, \
         woken {} -> {}",
        NODES[1],
        bound.as_secs_f64(),
        TIMING.interval,
        before.runs,
        after.runs,
        before.woken,
        after.woken
    );
    if after.state != state || after.woken <= before.woken {
        return Err(LabError::check(format!(
            "{what}: n1's check should be {state} after an early run: {after:?}\n{}",
            pair.lab.log_summary(25)
        )));
    }
    match took {
        Some(s) if s <= bound.as_secs_f64() => Ok(after),
        _ => Err(LabError::check(format!(
            "{what}: the VIP reached {} after {took:?} s, bound {:.3} s (the check's interval is \
             {} s)\n{}",
            NODES[1],
            bound.as_secs_f64(),
            TIMING.interval,
            pair.lab.log_summary(25)
        ))),
    }
}

#[test]
fn a_flapping_process_cannot_make_its_check_spin() -> Result<()> {
    wasmalived_bin()?;
    let plugin = plugin_path("nginx_process")?;
    let mut pair = Pair::new("evflap", PROTO, [W, W])?;
    // Processes named `sleep` that exit every 20 ms, overlapping so that some always run
    // (each lives 0.5 s: ~25 at once, so even a shell loop stalled for most of that by a
    // loaded machine leaves some): every run finds some to watch, and each exit would wake
    // the check. `fall` is high so the instance is not disturbed while it flaps.
    let _flapper = pair.lab.spawn(
        NODES[0],
        &["sh", "-c", "while :; do sleep 0.5 & sleep 0.02; done"],
        "flapper.log",
    )?;
    let timing = CheckTiming {
        interval: 10,
        timeout: Some(2),
        fall: 1000,
        rise: 1,
        weight: -10,
    };
    let block = plugin_check(
        "chk_flap",
        &plugin,
        &[("process", "sleep")],
        &["allow_processes netns"],
        &timing,
    );
    let text = with_checks(&pair.confs[0].render(), &block, &["chk_flap"])?;
    pair.start_with(0, &text)?;
    pair.expect_master(0, pair.election_timeout())?;
    let d = pair.daemon(0)?;
    let first = d.check_status("chk_flap")?;
    let t0 = Instant::now();
    // Watch it for a while (the window is measured, not assumed).
    std::thread::sleep(Duration::from_secs(3));
    let last = d.check_status("chk_flap")?;
    let window = t0.elapsed();
    let runs = last.runs - first.runs;
    let woken = last.woken - first.woken;
    // Early runs: at most the burst plus one per gap over the window (+1 for the edges);
    // the interval adds none in 3 s.
    let bound = EARLY_BURST + (window.as_millis() / EARLY_GAP.as_millis()) as u64 + 1;
    eprintln!(
        "flapping process: {runs} runs ({woken} woken early) in {:.3} s, bound {bound}",
        window.as_secs_f64()
    );
    if woken == 0 {
        return Err(LabError::check(format!(
            "the check was never woken by the flapping process: {last:?}\n{}",
            d.proc.log_tail(20)
        )));
    }
    if runs > bound {
        return Err(LabError::check(format!(
            "{runs} runs in {:.3} s: the early-run rate limit allows {bound}",
            window.as_secs_f64()
        )));
    }
    pair.pass()
}

/// A private directory for node flags inside the lab's directory (granted with `allow_dir`).
fn flag_dir(pair: &Pair) -> Result<std::path::PathBuf> {
    let dir = pair.lab.dir().join("flags");
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

/// The stock `file` check: `fatal` while `flag` exists, `allow_dir` on `dir`.
fn maintenance_check(name: &str, flag: &Path, dir: &Path, timing: &CheckTiming) -> Result<String> {
    Ok(plugin_check(
        name,
        &plugin_path("file")?,
        &[("path", &flag.to_string_lossy()), ("verdict", "fatal")],
        &[&format!("allow_dir {}", dir.display())],
        timing,
    ))
}

#[test]
fn a_maintenance_flag_touched_wakes_its_check_and_the_backup_takes_over_within_its_skew_time(
) -> Result<()> {
    wasmalived_bin()?;
    let mut pair = Pair::new("evfile", PROTO, [W, W])?;
    for (i, p) in PRIOS.iter().enumerate() {
        pair.confs[i] = pair.confs[i].clone().priority(*p);
    }
    let dir = flag_dir(&pair)?;
    let flags = [dir.join("n1.maint"), dir.join("n2.maint")];
    const FLAG_CHECK: &str = "chk_maint";
    let text = |i: usize| -> Result<String> {
        let block = maintenance_check(FLAG_CHECK, &flags[i], &dir, &TIMING)?;
        with_checks(&pair.confs[i].render(), &block, &[FLAG_CHECK])
    };
    let texts = [text(0)?, text(1)?];
    pair.start_n1_then_n2([&texts[0], &texts[1]])?;
    // The first run follows the plugin's load (a compile on a cold cache, slow on a loaded
    // machine): a generous wait, not a bound on anything measured.
    pair.wait_check_up_on_both(FLAG_CHECK, Duration::from_secs(30))?;
    // The change wakes the check: `fatal` → Fault (priority-0 advert) → the Backup takes
    // over after its skew time (RFC 5798 §6.4.2).
    let after = expect_woken_takeover(
        &pair,
        FLAG_CHECK,
        "maintenance flag touched",
        "fatal",
        || {
            std::fs::write(&flags[0], "draining n1\n")
                .map_err(|e| LabError::io(format!("writing {}", flags[0].display()), e))
        },
    )?;
    // Removing the flag is a change too: an early run brings the check up again, long before
    // its next interval (10 s after the early run that saw the flag).
    std::fs::remove_file(&flags[0])
        .map_err(|e| LabError::io(format!("removing {}", flags[0].display()), e))?;
    pair.lab
        .wait_check(pair.daemon(0)?, FLAG_CHECK, "up", TIMING.interval() / 2)?;
    let recovered = pair.daemon(0)?.check_status(FLAG_CHECK)?;
    if recovered.woken <= after.woken {
        return Err(LabError::check(format!(
            "the check came back up without an early run (by its interval?): {recovered:?}"
        )));
    }
    pair.pass()
}

#[test]
fn a_path_outside_the_granted_directory_is_refused_naming_the_path_and_the_grant() -> Result<()> {
    wasmalived_bin()?;
    let mut pair = Pair::new("evdeny", PROTO, [W, W])?;
    let dir = flag_dir(&pair)?;
    // The flag is named outside the granted directory (and never created).
    let outside = pair.lab.dir().join("elsewhere").join("n1.maint");
    let block = maintenance_check("chk_outside", &outside, &dir, &TIMING)?;
    let text = with_checks(&pair.confs[0].render(), &block, &["chk_outside"])?;
    pair.start_with(0, &text)?;
    let d = pair.daemon(0)?;
    pair.lab
        .wait_check(d, "chk_outside", "down", Duration::from_secs(30))?;
    let status = d.check_status("chk_outside")?;
    let shown = outside.display().to_string();
    let want = format!("`{shown}` is not inside a directory the check is granted (`allow_dir`)");
    if !status.last.contains(&want) {
        return Err(LabError::check(format!(
            "the refusal should name the path and the grant ({want}): {status:?}\n{}",
            d.proc.log_tail(20)
        )));
    }
    pair.pass()
}

#[test]
fn nginx_killed_wakes_a_tcp_check_holding_a_connection_and_the_backup_takes_over_within_its_skew_time(
) -> Result<()> {
    wasmalived_bin()?;
    let plugin = plugin_path("tcp")?;
    let mut pair = Pair::new("evsock", PROTO, [W, W])?;
    for (i, p) in PRIOS.iter().enumerate() {
        pair.confs[i] = pair.confs[i].clone().priority(*p);
    }
    let nginx = [
        pair.lab.start_nginx(NODES[0])?,
        pair.lab.start_nginx(NODES[1])?,
    ];
    // Weight 0: a failing check puts its instance in Fault (a priority-0 advert), so the
    // Backup takes over after its skew time, as with `fatal`.
    let timing = CheckTiming {
        weight: 0,
        ..TIMING
    };
    const TCP_CHECK: &str = "chk_tcp";
    let text = |i: usize| -> Result<String> {
        let server = format!("{}:80", pair.lab.node(NODES[i])?.v4);
        let block = plugin_check(
            TCP_CHECK,
            &plugin,
            &[("address", &server), ("wake_on_disconnect", "true")],
            &[&format!("allow_tcp {server}")],
            &timing,
        );
        with_checks(&pair.confs[i].render(), &block, &[TCP_CHECK])
    };
    let texts = [text(0)?, text(1)?];
    pair.start_n1_then_n2([&texts[0], &texts[1]])?;
    pair.wait_check_up_on_both(TCP_CHECK, Duration::from_secs(30))?;
    let watched = pair.daemon(0)?.check_status(TCP_CHECK)?;
    if watched.wake_on_disconnect.is_empty() {
        return Err(LabError::check(format!(
            "n1's tcp check should name its server: {watched:?}"
        )));
    }
    // nginx's processes die, their kernel closes the connection the daemon held: the check
    // runs at once, cannot connect, and n1 enters Fault (RFC 5798 §6.4.2 on the Backup).
    expect_woken_takeover(&pair, TCP_CHECK, "nginx killed (tcp)", "down", || {
        pair.lab.kill_nginx(&nginx[0])
    })?;
    pair.lab
        .expect_http_from(CLIENT, pair.vip(), NODES[1], Duration::from_secs(3))?;
    pair.pass()
}
