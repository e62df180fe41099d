//! Live reload (issue 4), end to end: SIGHUP with a changed check weight or an added VIP is
//! applied while the Master keeps its VIP (sampled every 10 ms the whole time); a broken
//! config is refused with its place (file:line:col) and the old one keeps running; a config
//! file rewritten in place is picked up without a signal; and `wasmalived -t -f` exit codes.
//!
//! Needs root, `cargo build -p wasmalived` and (for the exit-2 case) `make plugins`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wasmalived_e2e::{
    script_check, wait_for, wasmalived_bin, with_checks, CheckTiming, Daemon, Impl, LabError, Pair,
    Proto, Result, Timeline, INSTANCE, NODES,
};

const W: Impl = Impl::Wasmalived;
const PROTO: Proto = Proto::V2Pass;
const CHECK: &str = "chk_true";
/// A second VIP added by a reload.
const VIP2: &str = "192.0.2.201";

/// A check that is always up (`/bin/true`) with `weight`.
fn true_check(weight: i32) -> String {
    let timing = CheckTiming {
        interval: 1,
        timeout: Some(1),
        fall: 1,
        rise: 1,
        weight,
    };
    script_check(CHECK, "/bin/true", &timing)
}

/// n1's config: priority 100 (`PRIORITIES`) tracking the always-up check with `weight`.
fn n1_config(pair: &Pair, weight: i32, vips: &[&str]) -> Result<String> {
    let mut conf = pair.confs[0].clone();
    conf.instance_mut().vips = vips.iter().map(|v| v.to_string()).collect();
    with_checks(&conf.render(), &true_check(weight), &[CHECK])
}

/// Rewrites `daemon`'s config file in place.
fn rewrite(daemon: &Daemon, text: &str) -> Result<()> {
    fs::write(&daemon.conf, text)
        .map_err(|e| LabError::io(format!("rewriting {}", daemon.conf.display()), e))
}

/// Waits until the log of `daemon` contains `needle`.
fn wait_log(daemon: &Daemon, needle: &str, timeout: Duration) -> Result<Duration> {
    wait_for(
        &format!("{} to log {needle:?}", daemon.describe()),
        timeout,
        Duration::from_millis(50),
        || Ok(fs::read_to_string(daemon.proc.log_path()).is_ok_and(|l| l.contains(needle))),
        || daemon.proc.log_tail(30),
    )
}

/// Waits until n1's effective priority is `prio`.
fn wait_priority(pair: &Pair, prio: i64, timeout: Duration) -> Result<Duration> {
    let d = pair.daemon(0)?;
    wait_for(
        &format!("effective priority {prio} on {}", d.describe()),
        timeout,
        Duration::from_millis(50),
        || Ok(d.instance_status(INSTANCE)?.effective_priority == prio),
        || {
            format!(
                "status: {:?}\n{}",
                d.instance_status(INSTANCE).ok(),
                d.proc.log_tail(30)
            )
        },
    )
}

/// Fails unless n1 held the VIP, and n2 did not, in every sample of `tl`.
fn expect_n1_throughout(tl: &Timeline, what: &str) -> Result<()> {
    tl.expect_never_two()?;
    let bad = tl
        .samples
        .iter()
        .find(|s| s.present.first() != Some(&Some(true)) || s.present.get(1) == Some(&Some(true)));
    if tl.samples.len() < 10 {
        return Err(LabError::check(format!(
            "{what}: only {} VIP samples were taken",
            tl.samples.len()
        )));
    }
    match bad {
        None => Ok(()),
        Some(s) => Err(LabError::check(format!(
            "{what}: the Master did not keep VIP {} the whole time: at t={:.3} holders were \
             {:?} of {:?} ({} samples)",
            tl.ip,
            s.t,
            s.present,
            tl.nodes,
            tl.samples.len()
        ))),
    }
}

/// A pair with n1 Master tracking the always-up check with weight +5 (100 + 5 = 105).
fn tracking_pair(test: &str) -> Result<Pair> {
    wasmalived_bin()?;
    let mut pair = Pair::new(test, PROTO, [W, W])?;
    let text = n1_config(&pair, 5, &[PROTO.vip_config()])?;
    pair.start_with(0, &text)?;
    // n1 alone first: started together, both could become Master for a moment.
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[0], pair.election_timeout())?;
    pair.start(1)?;
    pair.expect_master(0, pair.election_timeout())?;
    wait_priority(&pair, 105, Duration::from_secs(5))?;
    Ok(pair)
}

#[test]
fn sighup_with_a_changed_weight_keeps_the_vip() -> Result<()> {
    let pair = tracking_pair("rlweight")?;
    let sampler = pair
        .lab
        .sample_vip(&NODES, pair.vip(), Duration::from_millis(10))?;
    std::thread::sleep(Duration::from_millis(300));
    let d = pair.daemon(0)?;
    rewrite(d, &n1_config(&pair, 20, &[PROTO.vip_config()])?)?;
    d.proc.signal("HUP")?;
    wait_log(d, "SIGHUP: reloading", Duration::from_secs(3))?;
    wait_priority(&pair, 120, Duration::from_secs(3))?;
    // Same check command: its state (up) is kept, it does not restart from init.
    let c = d.check_status(CHECK)?;
    if c.state != "up" {
        return Err(LabError::check(format!(
            "after the reload check {CHECK} is {} ({}), expected it to stay up",
            c.state, c.last
        )));
    }
    // A few more adverts with the new priority, then the file watcher's own reload (which
    // must find nothing to do).
    std::thread::sleep(Duration::from_millis(1500));
    let tl = sampler.stop()?;
    expect_n1_throughout(&tl, "SIGHUP with weight 5 → 20")?;
    pair.expect_master(0, Duration::from_secs(1))?;
    if !d.proc.is_running() {
        return Err(LabError::check("n1's daemon exited during the reload"));
    }
    pair.pass()
}

#[test]
fn sighup_with_an_added_vip_adds_it_without_dropping_the_old() -> Result<()> {
    let pair = tracking_pair("rlvip")?;
    let sampler = pair
        .lab
        .sample_vip(&NODES, pair.vip(), Duration::from_millis(10))?;
    std::thread::sleep(Duration::from_millis(300));
    // Both nodes get the new VIP list, as an operator would roll it out.
    let vips = [PROTO.vip_config(), VIP2];
    let mut n2 = pair.confs[1].clone();
    n2.instance_mut().vips = vips.iter().map(|v| v.to_string()).collect();
    rewrite(pair.daemon(1)?, &n2.render())?;
    pair.daemon(1)?.proc.signal("HUP")?;
    let d = pair.daemon(0)?;
    rewrite(d, &n1_config(&pair, 5, &vips)?)?;
    d.proc.signal("HUP")?;
    wait_for(
        &format!("{VIP2} on n1 after SIGHUP"),
        Duration::from_secs(3),
        Duration::from_millis(20),
        || pair.lab.has_addr(NODES[0], VIP2),
        || d.proc.log_tail(30),
    )?;
    pair.lab
        .expect_ping("client", VIP2, Duration::from_secs(3))?;
    std::thread::sleep(Duration::from_millis(1500));
    let tl = sampler.stop()?;
    expect_n1_throughout(&tl, "SIGHUP adding a VIP")?;
    if pair.lab.has_addr(NODES[1], VIP2)? {
        return Err(LabError::check("the Backup configured the new VIP"));
    }
    pair.expect_master(0, Duration::from_secs(1))?;
    pair.pass()
}

#[test]
fn broken_config_is_refused_and_the_old_one_keeps_running() -> Result<()> {
    let pair = tracking_pair("rlbroken")?;
    let sampler = pair
        .lab
        .sample_vip(&NODES, pair.vip(), Duration::from_millis(10))?;
    let d = pair.daemon(0)?;
    // A bad VRID on a known line (keepalived refuses it too; a bad priority it would replace
    // by its default): the message must name file:line:col.
    let good = n1_config(&pair, 20, &[PROTO.vip_config()])?;
    let broken = break_vrid(&good)?;
    let line = broken
        .lines()
        .position(|l| l == BAD_VRID_LINE)
        .ok_or_else(|| LabError::check("the broken config lost its bad line"))?
        + 1;
    rewrite(d, &broken)?;
    d.proc.signal("HUP")?;
    let place = format!("{}:{line}:23:", d.conf.display());
    wait_log(d, "reload refused", Duration::from_secs(3))?;
    wait_log(d, &place, Duration::from_secs(1))?;
    // The old config (weight 5) runs on: priority 105, Master, VIP kept.
    std::thread::sleep(Duration::from_millis(1500));
    if !d.proc.is_running() {
        return Err(LabError::check(format!(
            "n1's daemon exited on a broken config\n{}",
            d.proc.log_tail(20)
        )));
    }
    wait_priority(&pair, 105, Duration::ZERO)?;
    let tl = sampler.stop()?;
    expect_n1_throughout(&tl, "SIGHUP with a broken config")?;
    pair.expect_master(0, Duration::from_secs(1))?;
    // Fixing the file applies the fixed config (here without a signal: the file watcher).
    rewrite(d, &good)?;
    wait_priority(&pair, 120, Duration::from_secs(5))?;
    pair.pass()
}

#[test]
fn config_file_rewritten_in_place_is_reloaded() -> Result<()> {
    let pair = tracking_pair("rlinotify")?;
    let sampler = pair
        .lab
        .sample_vip(&NODES, pair.vip(), Duration::from_millis(10))?;
    std::thread::sleep(Duration::from_millis(300));
    let d = pair.daemon(0)?;
    // No signal: only the file changes (same inode, truncated and rewritten).
    rewrite(d, &n1_config(&pair, 30, &[PROTO.vip_config()])?)?;
    let took = wait_priority(&pair, 130, Duration::from_secs(5))?;
    eprintln!("config file rewrite → new priority after {took:?} (debounce 0.5 s)");
    wait_log(d, "configuration file changed", Duration::from_secs(1))?;
    let log = fs::read_to_string(d.proc.log_path()).unwrap_or_default();
    if log.contains("SIGHUP") {
        return Err(LabError::check(
            "the test sent no SIGHUP, yet the log shows one",
        ));
    }
    std::thread::sleep(Duration::from_millis(500));
    let tl = sampler.stop()?;
    expect_n1_throughout(&tl, "config file rewritten")?;
    pair.pass()
}

/// The line [`break_vrid`] writes.
const BAD_VRID_LINE: &str = "    virtual_router_id abc";

/// `config` with its VRID replaced by a word that is no number: an instance without a
/// VRID, which keepalived refuses too.
fn break_vrid(config: &str) -> Result<String> {
    let line = format!("    virtual_router_id {}\n", wasmalived_e2e::VRID);
    if !config.contains(&line) {
        return Err(LabError::check(format!(
            "no {line:?} to break in:\n{config}"
        )));
    }
    Ok(config.replacen(&line, &format!("{BAD_VRID_LINE}\n"), 1))
}

/// A scratch directory for `-t` runs, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Result<Scratch> {
        let dir = Path::new("/tmp/wasmalived-e2e").join(format!("{tag}-{}", std::process::id()));
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        Ok(Scratch(dir))
    }

    fn write(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.0.join(name);
        fs::write(&p, text).map_err(|e| LabError::io(format!("writing {}", p.display()), e))?;
        Ok(p)
    }

    /// `wasmalived -t -f CONF --state-dir DIR`: exit code and stdout+stderr.
    fn config_test(&self, conf: &Path) -> Result<(Option<i32>, String)> {
        let bin = wasmalived_bin()?;
        let out = Command::new(&bin)
            .arg("-t")
            .arg("-f")
            .arg(conf)
            .arg("--state-dir")
            .arg(self.0.join("state"))
            .output()
            .map_err(|e| LabError::io(format!("running {} -t", bin.display()), e))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.code(), text))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn config_test_exit_codes() -> Result<()> {
    let plugin = wasmalived_e2e::plugin_path("nginx_process")?;
    let s = Scratch::new("rl-config-test")?;
    let base = PROTO.conf("n1", "MASTER", 100).render();
    let timing = CheckTiming {
        interval: 1,
        timeout: None,
        fall: 2,
        rise: 1,
        weight: -10,
    };

    let good = with_checks(&base, &true_check(5), &[CHECK])?;
    let p = s.write("good.conf", &good)?;
    let (code, text) = s.config_test(&p)?;
    if code != Some(0) {
        return Err(LabError::check(format!(
            "-t on a good config exited {code:?}:\n{text}"
        )));
    }

    let broken = break_vrid(&good)?;
    let line = broken
        .lines()
        .position(|l| l == BAD_VRID_LINE)
        .ok_or_else(|| LabError::check("the broken config lost its bad line"))?
        + 1;
    let p = s.write("broken.conf", &broken)?;
    let (code, text) = s.config_test(&p)?;
    let place = format!("{}:{line}:23:", p.display());
    if code != Some(1) || !text.contains(&place) {
        return Err(LabError::check(format!(
            "-t on a config with a bad VRID: want exit 1 and {place:?}, got {code:?}:\n{text}"
        )));
    }

    // nginx-process reads the process table; the check grants no `allow_processes`.
    let block =
        wasmalived_e2e::plugin_check("chk_nginx", &plugin, &[("process", "nginx")], &[], &timing);
    let ungranted = with_checks(&base, &block, &["chk_nginx"])?;
    let p = s.write("ungranted.conf", &ungranted)?;
    let (code, text) = s.config_test(&p)?;
    if code != Some(2) || !text.contains("processes") {
        return Err(LabError::check(format!(
            "-t on a plugin importing an ungranted capability: want exit 2 naming \
             `processes`, got {code:?}:\n{text}"
        )));
    }
    Ok(())
}
