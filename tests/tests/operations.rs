//! The operator's habits (issue 13): keepalived's dump signals and files (written without
//! following a planted symlink), `wasmalived maintenance on|off` on a real pair (handover
//! with priority 0, kept across a reload, a dead peer and a restart), and the log formats
//! (plain text off a terminal, JSON lines).
//!
//! Needs the daemon: `cargo build -p wasmalived` (or `WASMALIVED_BIN`), root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmalived_e2e::cmd;
use wasmalived_e2e::{
    wait_for, wasmalived_bin, Daemon, Impl, Lab, LabError, Pair, Proto, Result, INSTANCE, NODES,
};

const W: Impl = Impl::Wasmalived;

/// `wasmalived --signum=NAME`: the number to send.
fn signum(name: &str) -> Result<String> {
    let bin = wasmalived_bin()?;
    Ok(
        cmd::run(&[&bin.to_string_lossy(), &format!("--signum={name}")])?
            .trim()
            .to_owned(),
    )
}

/// How often `needle` occurs in the daemon's log.
fn log_count(d: &Daemon, needle: &str) -> usize {
    fs::read_to_string(d.proc.log_path())
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Sends keepalived's signal `name` (by its `--signum` number) and waits until the log has
/// one more `needle` line than before.
fn signal_and_wait(d: &Daemon, name: &str, needle: &str) -> Result<()> {
    let before = log_count(d, needle);
    d.proc.signal(&signum(name)?)?;
    wait_for(
        &format!("{needle:?} after the {name} signal"),
        Duration::from_secs(5),
        Duration::from_millis(20),
        || Ok(log_count(d, needle) > before),
        || d.proc.log_tail(20),
    )
    .map(|_| ())
}

/// A file the dump wrote: its text, after checking it is a private regular file.
fn dump_file(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    let meta =
        fs::symlink_metadata(&path).map_err(|e| LabError::io(path.display().to_string(), e))?;
    if !meta.file_type().is_file() || meta.permissions().mode() & 0o777 != 0o600 {
        return Err(LabError::check(format!(
            "{} should be a regular file with mode 0600: {meta:?}",
            path.display()
        )));
    }
    fs::read_to_string(&path).map_err(|e| LabError::io(path.display().to_string(), e))
}

fn expect_contains(text: &str, what: &str, needle: &str) -> Result<()> {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(LabError::check(format!(
            "{what} should contain {needle:?}:\n{text}"
        )))
    }
}

/// A lab with one node, n1.
fn single_node(test: &str) -> Result<Lab> {
    let mut lab = Lab::new(test)?;
    lab.add_node(NODES[0], "192.0.2.1/24", "2001:db8::1/64")?;
    Ok(lab)
}

/// wasmalived on n1 running VI_1 alone (`env` for the daemon), once it is Master.
fn start_master(lab: &Lab, env: &[(&str, &str)]) -> Result<Daemon> {
    let conf = Proto::V3Ipv4.conf(NODES[0], "MASTER", 100).render();
    let d = lab.start_daemon_env(W, NODES[0], &conf, env)?;
    let bound = Proto::V3Ipv4.master_down(100) + Duration::from_secs(5);
    lab.wait_state(&d, INSTANCE, "MASTER", bound)?;
    Ok(d)
}

#[test]
fn dump_signals_write_keepalived_s_files_and_never_follow_a_planted_symlink() -> Result<()> {
    wasmalived_bin()?;
    let lab = single_node("opdump")?;
    // keepalived's directory is $TMPDIR when absolute: a private one in the lab's directory.
    let scratch = lab.dir().to_path_buf();
    let dir: PathBuf = scratch.join("tmp");
    fs::create_dir(&dir).map_err(|e| LabError::io(dir.display().to_string(), e))?;
    let dir_text = dir.to_string_lossy().into_owned();
    let d = start_master(&lab, &[("TMPDIR", &dir_text)])?;

    // CVE-2018-19044: a link at keepalived.data to a file an attacker wants overwritten.
    let victim = scratch.join("victim");
    fs::write(&victim, "precious\n").map_err(|e| LabError::io(victim.display().to_string(), e))?;
    let data = dir.join("keepalived.data");
    std::os::unix::fs::symlink(&victim, &data)
        .map_err(|e| LabError::io(data.display().to_string(), e))?;
    signal_and_wait(&d, "DATA", "Data dump not written")?;
    let untouched =
        fs::read_to_string(&victim).map_err(|e| LabError::io(victim.display().to_string(), e))?;
    let still_link = fs::symlink_metadata(&data).is_ok_and(|m| m.file_type().is_symlink());
    if untouched != "precious\n" || !still_link {
        return Err(LabError::check(format!(
            "the planted link was followed or replaced: victim {untouched:?}, link kept {still_link}"
        )));
    }
    expect_contains(&d.proc.log_tail(20), "the log", "symbolic link")?;

    // Without the link the dump is written: state, checks section, the configuration.
    fs::remove_file(&data).map_err(|e| LabError::io(data.display().to_string(), e))?;
    signal_and_wait(&d, "DATA", "Data dump written")?;
    let text = dump_file(&dir, "keepalived.data")?;
    expect_contains(&text, "keepalived.data", "VRRP Instance = VI_1")?;
    expect_contains(&text, "keepalived.data", "State = MASTER")?;
    expect_contains(
        &text,
        "keepalived.data",
        "------< Configuration in force >------",
    )?;
    expect_contains(&text, "keepalived.data", Proto::V3Ipv4.vip())?;

    // Stats in keepalived's layout; STATS_CLEAR writes, then counts from zero again, while
    // `status` keeps the real totals.
    signal_and_wait(&d, "STATS", "Stats dump written")?;
    let stats = dump_file(&dir, "keepalived.stats")?;
    expect_contains(
        &stats,
        "keepalived.stats",
        "VRRP Instance: VI_1\n  Advertisements:\n",
    )?;
    expect_contains(&stats, "keepalived.stats", "  Became master: 1\n")?;
    signal_and_wait(&d, "STATS_CLEAR", "StatsClear dump written")?;
    expect_contains(
        &dump_file(&dir, "keepalived.stats")?,
        "keepalived.stats after STATS_CLEAR",
        "  Became master: 1\n",
    )?;
    signal_and_wait(&d, "STATS", "Stats dump written")?;
    expect_contains(
        &dump_file(&dir, "keepalived.stats")?,
        "keepalived.stats after a clear",
        "  Became master: 0\n",
    )?;
    let totals = d.instance_status(INSTANCE)?;
    if totals.counter("became_master") != 1 {
        return Err(LabError::check(format!(
            "status should keep the real totals after STATS_CLEAR: {totals:?}"
        )));
    }

    // JSON: the status document.
    signal_and_wait(&d, "JSON", "Json dump written")?;
    let json = dump_file(&dir, "keepalived.json")?;
    let instances = wasmalived_e2e::daemon::parse_status(&json)?;
    if instances.len() != 1 || instances[0].state != "MASTER" {
        return Err(LabError::check(format!(
            "keepalived.json should be the status document:\n{json}"
        )));
    }

    // Logs to a file: plain text, no colour escapes.
    let log = fs::read_to_string(d.proc.log_path()).unwrap_or_default();
    if log.contains("\x1b[") {
        return Err(LabError::check(format!(
            "a log file got ANSI escapes: {}",
            d.proc.log_path().display()
        )));
    }
    lab.pass()
}

#[test]
fn json_logs_are_one_object_per_line_with_level_message_and_span_fields() -> Result<()> {
    wasmalived_bin()?;
    let lab = single_node("opjson")?;
    let d = start_master(&lab, &[("WASMALIVED_LOG_FORMAT", "json")])?;
    d.term()?;
    d.wait_exit(Duration::from_secs(10))?;
    let log = fs::read_to_string(d.proc.log_path()).map_err(|e| LabError::io("log", e))?;
    let mut state_change = None;
    for (n, line) in log.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            LabError::check(format!("log line {} is not JSON ({e}): {line:?}", n + 1))
        })?;
        if v["level"].as_str().is_none() || v["fields"]["message"].as_str().is_none() {
            return Err(LabError::check(format!(
                "log line {} has no level or message: {line}",
                n + 1
            )));
        }
        if v["fields"]["message"] == "state change" && v["fields"]["to"] == "MASTER" {
            state_change = Some(v);
        }
    }
    let v = state_change
        .ok_or_else(|| LabError::check(format!("no state change to MASTER logged:\n{log}")))?;
    if v["span"]["instance"] != INSTANCE || v["span"]["vrid"].as_u64().is_none() {
        return Err(LabError::check(format!(
            "the state change should carry its span's fields (instance, vrid): {v}"
        )));
    }
    lab.pass()
}

/// The JSON log lines of `path` whose message is `message` (lines that are not JSON, such
/// as the plain `wasmalived: …` error also printed on stderr, are skipped).
fn json_lines_with_message(path: &Path, message: &str) -> Result<Vec<serde_json::Value>> {
    let log = fs::read_to_string(path).map_err(|e| LabError::io(path.display().to_string(), e))?;
    Ok(log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(message))
        })
        .collect())
}

/// The `slow-log` fault: every write of the log writer takes 300 ms longer, as on a loaded
/// disk, so lines are still queued when the daemon stops.
const SLOW_LOG: &str = "slow-log-after-ms=0";

/// Log lines go through a queue that one writer thread drains (issue 14 §4: a protocol
/// thread never waits for the disk); what is queued when `main` returns is written out on
/// every exit path. With a log sink made slow (`slow-log` fault), the daemon's last line
/// after SIGTERM (logged just before `main` returns, with the count of lines the queue
/// dropped: none here) and the error of a start that fails on its configuration still
/// reach the log: without the final drain they are lost with the writer thread.
#[test]
fn the_daemon_s_last_lines_reach_the_log_at_sigterm_and_at_a_fatal_error() -> Result<()> {
    let bin = wasmalived_bin()?;
    let lab = single_node("oplast")?;
    let d = start_master(
        &lab,
        &[
            ("WASMALIVED_LOG_FORMAT", "json"),
            ("WASMALIVED_FAULT", SLOW_LOG),
        ],
    )?;
    d.term()?;
    d.wait_exit(Duration::from_secs(10))?;
    let stopped = json_lines_with_message(d.proc.log_path(), "wasmalived stopped")?;
    match stopped.as_slice() {
        [line] if line["fields"]["log_lines_dropped"] == 0 => {}
        _ => {
            return Err(LabError::check(format!(
            "one \"wasmalived stopped\" line with log_lines_dropped 0 expected: {stopped:?}\n{}",
            d.proc.log_tail(10)
        )))
        }
    }

    let missing = lab.dir().join("missing.conf");
    let state_dir = lab.dir().join("fatal-state");
    fs::create_dir(&state_dir).map_err(|e| LabError::io(state_dir.display().to_string(), e))?;
    let fatal = lab.spawn(
        NODES[0],
        &[
            "env",
            &format!("WASMALIVED_FAULT={SLOW_LOG}"),
            &bin.to_string_lossy(),
            "-n",
            "-l",
            "--log-format",
            "json",
            "-f",
            &missing.to_string_lossy(),
            "--state-dir",
            &state_dir.to_string_lossy(),
        ],
        "fatal.log",
    )?;
    let status = fatal
        .wait_exit(Duration::from_secs(10))?
        .ok_or_else(|| LabError::check("wasmalived with a missing config file still running"))?;
    let errors: Vec<serde_json::Value> = json_lines_with_message(fatal.log_path(), "missing.conf")?
        .into_iter()
        .filter(|v| v["level"] == "ERROR")
        .collect();
    if status.code() != Some(1) || errors.is_empty() {
        return Err(LabError::check(format!(
            "exit 1 and the error as a JSON log line expected, got {status:?}:\n{}",
            fatal.log_tail(10)
        )));
    }
    lab.pass()
}

/// `wasmalived maintenance on|off VI_1` against node `i`'s daemon.
fn maintenance(pair: &Pair, i: usize, mode: &str) -> Result<String> {
    let bin = wasmalived_bin()?;
    let d = pair.daemon(i)?;
    cmd::run(&[
        &bin.to_string_lossy(),
        "maintenance",
        mode,
        INSTANCE,
        "--state-dir",
        &d.state_dir.to_string_lossy(),
    ])
}

/// Node `i`'s VI_1 is BACKUP and in maintenance, per `status --json`.
fn expect_maintenance_backup(pair: &Pair, i: usize) -> Result<()> {
    let d = pair.daemon(i)?;
    let doc: serde_json::Value = serde_json::from_str(&d.status_json()?)
        .map_err(|e| LabError::check(format!("status JSON: {e}")))?;
    let inst = &doc["instances"][0];
    if inst["state"] != "BACKUP" || inst["maintenance"] != true {
        return Err(LabError::check(format!(
            "{}: expected VI_1 BACKUP in maintenance, status says {inst}",
            d.describe()
        )));
    }
    Ok(())
}

/// Nobody holds the VIP, for `period`.
fn expect_vip_nowhere_for(pair: &Pair, period: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < period {
        let holders = pair.lab.holders(&NODES, pair.vip())?;
        if !holders.is_empty() {
            return Err(LabError::check(format!(
                "the VIP should be nowhere (n1 in maintenance, n2 stopped), after {:.2?} it is on {holders:?}\n{}",
                start.elapsed(),
                pair.lab.log_summary(25)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[test]
fn maintenance_hands_over_at_once_and_holds_through_reload_peer_loss_and_restart() -> Result<()> {
    wasmalived_bin()?;
    let proto = Proto::V3Ipv4;
    let mut pair = Pair::new("opmaint", proto, [W, W])?;
    pair.start_both()?;
    pair.expect_master(0, pair.election_timeout())?;

    // The Master stands down with priority 0 (RFC 5798 §6.4.3 release): n2 takes over
    // after its skew time because of that advert, not after a master-down interval.
    let answer = maintenance(&pair, 0, "on")?;
    if !answer.starts_with("ok:") {
        return Err(LabError::check(format!("maintenance on: {answer}")));
    }
    pair.lab
        .wait_sole_holder(&NODES, pair.vip(), NODES[1], pair.failover_timeout())?;
    let n1 = pair.daemon(0)?.instance_status(INSTANCE)?;
    let n2_log = fs::read_to_string(pair.daemon(1)?.proc.log_path()).unwrap_or_default();
    let released = n2_log
        .lines()
        .any(|l| l.contains("to=MASTER") && l.contains("reason=master sent priority 0"));
    if n1.counter("tx_priority_zero") != 1 || !released {
        return Err(LabError::check(format!(
            "n1 should have released with one priority-0 advert ({n1:?}) and n2 taken over \
             because of it (its log says so: {released})\n{}",
            pair.lab.log_summary(20)
        )));
    }
    expect_maintenance_backup(&pair, 0)?;
    // Windows long enough for a wrong takeover to happen many times over (100 ms adverts).
    let hold = proto.master_down(101) * 10;

    // A reload that raises n1's priority above n2's: still no preemption.
    pair.confs[0] = pair.confs[0].clone().priority(101);
    let d = pair.daemon(0)?;
    fs::write(&d.conf, pair.confs[0].render())
        .map_err(|e| LabError::io(d.conf.display().to_string(), e))?;
    d.proc.signal("HUP")?;
    wait_for(
        "n1's priority 101 after the reload",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || Ok(pair.daemon(0)?.instance_status(INSTANCE)?.priority == 101),
        || pair.lab.log_summary(20),
    )?;
    pair.lab
        .expect_sole_holder_for(&NODES, pair.vip(), NODES[1], hold)?;
    expect_maintenance_backup(&pair, 0)?;

    // The peer goes away: maintenance means never Master, so the VIP is nowhere.
    pair.term(1)?;
    expect_vip_nowhere_for(&pair, hold)?;
    expect_maintenance_backup(&pair, 0)?;

    // A restart keeps it (the set is in the state directory).
    pair.term(0)?;
    pair.start(0)?;
    pair.lab
        .wait_state(pair.daemon(0)?, INSTANCE, "BACKUP", Duration::from_secs(10))?;
    expect_vip_nowhere_for(&pair, hold)?;
    expect_maintenance_backup(&pair, 0)?;

    // An unknown instance is refused with its reason.
    let bin = wasmalived_bin()?;
    let out = cmd::output(&[
        &bin.to_string_lossy(),
        "maintenance",
        "on",
        "VI_404",
        "--state-dir",
        &pair.daemon(0)?.state_dir.to_string_lossy(),
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !stderr.contains("no vrrp_instance named \"VI_404\"") {
        return Err(LabError::check(format!(
            "maintenance of an unknown instance should fail and say why: {stderr}"
        )));
    }

    // Off: normal again — n1 takes over after a master-down interval.
    let answer = maintenance(&pair, 0, "off")?;
    if !answer.starts_with("ok:") {
        return Err(LabError::check(format!("maintenance off: {answer}")));
    }
    pair.lab.wait_sole_holder(
        &NODES,
        pair.vip(),
        NODES[0],
        proto.master_down(101) + Duration::from_secs(2),
    )?;
    pair.pass()
}
