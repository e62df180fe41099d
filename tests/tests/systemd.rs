//! Running under systemd (issue 13), without systemd as PID 1: the test plays the service
//! manager. It binds the `NOTIFY_SOCKET` and reads what the daemon announces (readiness,
//! reloads, stop, status line, watchdog pings, and no pings once the protocol loop is stuck),
//! checks the shipped unit with `systemd-analyze verify`, and runs a failover with
//! `script_user`, notify hooks and the nginx-process plugin under exactly the unit's
//! capability set (`setpriv`, the set parsed from the unit so the two cannot drift apart).
//!
//! Needs root, systemd (for `systemd-analyze`), util-linux's `setpriv`, libcap2-bin's
//! `capsh`, nginx, `make plugins`, and the daemon built with `--features fault-injection`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use wasmalived_e2e::features::{instance, lab_with_nodes, script, SETTLE};
use wasmalived_e2e::systemd::{
    setpriv_prefix, unit_capabilities, unit_path, unit_text, NotifySocket,
};
use wasmalived_e2e::{
    cmd, plugin_check, plugin_path, script_check, wait_for, wasmalived_bin, CheckTiming, Daemon,
    Impl, Lab, LabError, Result,
};

const W: Impl = Impl::Wasmalived;
const VIP: &str = "192.0.2.250";

/// A config with `global_defs` lines `global`, then `blocks`.
fn config(router_id: &str, global: &[&str], blocks: &[String]) -> String {
    let global: String = global.iter().map(|l| format!("    {l}\n")).collect();
    format!(
        "global_defs {{\n    router_id {router_id}\n    vrrp_version 3\n{global}}}\n{}",
        blocks.join("")
    )
}

/// A directory anyone may create files in (sticky), for hooks running as `nobody`.
fn drop_box(lab: &Lab, name: &str) -> Result<std::path::PathBuf> {
    let dir = lab.dir().join(name);
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| LabError::io(format!("chmod {}", dir.display()), e))?;
    Ok(dir)
}

/// Fails unless the daemon was built with fault injection (its log says it is armed).
fn expect_fault_armed(lab: &Lab, d: &Daemon) -> Result<()> {
    wait_for(
        "the daemon to arm the injected fault",
        SETTLE,
        Duration::from_millis(20),
        || Ok(d.proc.log_tail(200).contains("fault injection armed")),
        || {
            format!(
                "the daemon was built without --features fault-injection (make test builds it)\n{}",
                lab.log_summary(20)
            )
        },
    )
    .map(|_| ())
}

#[test]
fn the_unit_passes_systemd_analyze_verify() -> Result<()> {
    let bin = wasmalived_bin()?;
    let unit = unit_text()?;
    // `verify` wants ExecStart= to exist: the unit as shipped, pointing at the built binary.
    let dir =
        Path::new(wasmalived_e2e::lab::LAB_ROOT).join(format!("sdverify-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    let copy = dir.join("wasmalived.service");
    let text = unit.replace("/usr/sbin/wasmalived", &bin.to_string_lossy());
    std::fs::write(&copy, text)
        .map_err(|e| LabError::io(format!("writing {}", copy.display()), e))?;
    // --man=no: the man page is installed by the package, not on a build machine.
    let out = cmd::output(&[
        "systemd-analyze",
        "verify",
        "--man=no",
        &copy.to_string_lossy(),
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    // A bad directive is only a warning (exit 0): any output fails the test too.
    if !out.status.success() || !stderr.trim().is_empty() {
        return Err(LabError::check(format!(
            "systemd-analyze verify {} ({}): {}\n{stderr}",
            unit_path().display(),
            out.status,
            String::from_utf8_lossy(&out.stdout)
        )));
    }
    Ok(())
}

#[test]
fn readiness_reloads_stop_status_and_watchdog_pings_are_notified() -> Result<()> {
    let lab = lab_with_nodes("sdnotify", 1)?;
    let out = drop_box(&lab, "out")?;
    let env_file = out.join("check-env");
    let check = script(&lab, "check.sh", &format!("env > {}", env_file.display()))?;
    let timing = CheckTiming {
        interval: 1,
        timeout: None,
        fall: 1,
        rise: 1,
        weight: 0,
    };
    let text = config(
        "n1",
        &["script_user root"],
        &[
            script_check("chk_env", &check, &timing),
            instance(
                "VI_1",
                51,
                "MASTER",
                100,
                "1",
                &[VIP],
                "    track_script {\n        chk_env\n    }",
            ),
        ],
    );
    let socket = NotifySocket::bind(&lab.dir().join("notify.sock"))?;
    let watchdog = Duration::from_secs(2);
    let path = socket.path().to_string_lossy().into_owned();
    let usec = watchdog.as_micros().to_string();
    let d = lab.start_daemon_env(
        W,
        "n1",
        &text,
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", &usec)],
    )?;

    // READY=1 once the daemon is up: its control socket answers by then.
    let ready = socket.wait("READY=1", 0, SETTLE, |n| n.has("READY=1"))?;
    let status = d.status_json();
    if status.is_err() {
        return Err(LabError::check(format!(
            "READY=1 was sent before the control socket answered: {status:?}\n{}",
            d.proc.log_tail(30)
        )));
    }
    // The status line follows the instance and its check.
    socket.wait(
        "STATUS= with VI_1 MASTER and its check up",
        0,
        SETTLE,
        |n| n.value("STATUS") == Some("VI_1 MASTER; 1 check up"),
    )?;
    // Pings keep coming, twice per watchdog timeout.
    let pings = socket.with_line("WATCHDOG=1").len();
    wait_for(
        "three more WATCHDOG=1 pings",
        watchdog * 4,
        Duration::from_millis(50),
        || Ok(socket.with_line("WATCHDOG=1").len() >= pings + 3),
        || format!("received: {:?}", socket.summary()),
    )?;
    // Check scripts do not inherit the manager's variables (they could speak for the daemon).
    let env = std::fs::read_to_string(&env_file)
        .map_err(|e| LabError::io("reading the check's env", e))?;
    for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC"] {
        if env.lines().any(|l| l.starts_with(&format!("{var}="))) {
            return Err(LabError::check(format!(
                "a check script inherited {var}:\n{env}"
            )));
        }
    }

    // SIGHUP: RELOADING=1 with the monotonic time, then READY=1 again.
    let before = socket.received().len().max(ready + 1);
    d.proc.signal("HUP")?;
    let reloading = socket.wait("RELOADING=1", before, SETTLE, |n| n.has("RELOADING=1"))?;
    let usec = socket.received()[reloading]
        .value("MONOTONIC_USEC")
        .map(str::parse::<u64>);
    if !matches!(usec, Some(Ok(u)) if u > 0) {
        return Err(LabError::check(format!(
            "RELOADING=1 without a MONOTONIC_USEC: {:?}",
            socket.summary()
        )));
    }
    socket.wait("READY=1 after the reload", reloading + 1, SETTLE, |n| {
        n.has("READY=1")
    })?;

    // SIGTERM: STOPPING=1, then a clean exit.
    let before = socket.received().len();
    d.term()?;
    socket.wait("STOPPING=1", before, SETTLE, |n| n.has("STOPPING=1"))?;
    let exit = d.wait_exit(Duration::from_secs(20))?;
    if !exit.success() {
        return Err(LabError::check(format!(
            "the daemon exited with {exit}\n{}",
            d.proc.log_tail(30)
        )));
    }
    lab.pass()
}

#[test]
fn a_stalled_protocol_loop_stops_the_watchdog_pings() -> Result<()> {
    let lab = lab_with_nodes("sdstall", 1)?;
    let text = config(
        "n1",
        &["script_user root"],
        &[instance("VI_1", 51, "MASTER", 100, "1", &[VIP], "")],
    );
    let socket = NotifySocket::bind(&lab.dir().join("notify.sock"))?;
    let watchdog = Duration::from_secs(1);
    let period = watchdog / 2;
    let path = socket.path().to_string_lossy().into_owned();
    let usec = watchdog.as_micros().to_string();
    let d = lab.start_daemon_env(
        W,
        "n1",
        &text,
        &[
            ("NOTIFY_SOCKET", &path),
            ("WATCHDOG_USEC", &usec),
            ("WASMALIVED_FAULT", "stall-router-after-ms=4000"),
        ],
    )?;
    expect_fault_armed(&lab, &d)?;
    socket.wait("READY=1", 0, SETTLE, |n| n.has("READY=1"))?;
    wait_for(
        "the router driver to stall",
        SETTLE,
        Duration::from_millis(10),
        || Ok(d.proc.log_tail(200).contains("the router driver stalls")),
        || d.proc.log_tail(30),
    )?;
    let stalled = Instant::now();
    let healthy = socket.with_line("WATCHDOG=1").len();
    if healthy < 2 {
        return Err(LabError::check(format!(
            "the healthy loop sent {healthy} pings in 4 s (every {period:?} expected): {:?}",
            socket.summary()
        )));
    }
    // systemd would restart the daemon after one timeout without a ping; watch three.
    std::thread::sleep(watchdog * 3);
    // A ping already queued when the loop stalled may be read up to one period late.
    let late: Vec<Duration> = socket
        .with_line("WATCHDOG=1")
        .iter()
        .filter(|n| n.at > stalled + period)
        .map(|n| n.at - stalled)
        .collect();
    if !late.is_empty() {
        return Err(LabError::check(format!(
            "the stalled loop still pinged the watchdog, {late:?} after the stall\n{}",
            d.proc.log_tail(30)
        )));
    }
    // The process is alive (its control socket answers): only the pings say it is stuck.
    if !d.proc.is_running() || d.status_json().is_err() {
        return Err(LabError::check(format!(
            "the stalled daemon should still run and answer `status`\n{}",
            d.proc.log_tail(30)
        )));
    }
    lab.pass()
}

/// The capabilities of process `pid` (`CapEff` in /proc decoded by `capsh`), lower-case.
fn effective_capabilities(pid: u32) -> Result<Vec<String>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| LabError::io(format!("reading /proc/{pid}/status"), e))?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(str::trim)
        .ok_or_else(|| LabError::parse("CapEff in /proc/PID/status", &status))?;
    let decoded = cmd::run(&["capsh", &format!("--decode={hex}")])?;
    let names = decoded.trim().split_once('=').map(|(_, n)| n).unwrap_or("");
    let mut caps: Vec<String> = names
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    caps.sort();
    Ok(caps)
}

#[test]
fn a_failover_runs_with_exactly_the_units_capabilities() -> Result<()> {
    let unit = unit_text()?;
    let wrapper = setpriv_prefix(&unit)?;
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut expected: Vec<String> = unit_capabilities(&unit)?
        .iter()
        .map(|c| c.to_lowercase())
        .collect();
    expected.sort();
    let nginx_plugin = plugin_path("nginx_process")?;
    let lab = lab_with_nodes("sdcaps", 2)?;
    let out = drop_box(&lab, "out")?;
    let out_s = out.to_string_lossy().into_owned();
    // keepalived's generic hook: `HOOK NODE` + TYPE NAME STATE PRIORITY, as script_user.
    let hook = script(
        &lab,
        "notify.sh",
        &format!("node=$1; shift; echo \"$(id -u) $*\" >> {out_s}/notify-$node"),
    )?;
    // A check that always outlives its timeout: killing its group (another user's) needs
    // CAP_KILL. It records its user and the pid of its child (the sleep, in its group).
    let hang = script(
        &lab,
        "hang.sh",
        &format!("sleep 60 & echo \"$(id -u) $!\" > {out_s}/hang-$1.tmp; mv {out_s}/hang-$1.tmp {out_s}/hang-$1; wait"),
    )?;
    let nginx_timing = CheckTiming {
        interval: 1,
        timeout: None,
        fall: 2,
        rise: 1,
        weight: -10,
    };
    // Never up, so its positive weight never applies: it only proves the kill.
    let hang_timing = CheckTiming {
        interval: 1,
        timeout: Some(1),
        fall: 1,
        rise: 1,
        weight: 5,
    };
    let node_conf = |node: &str, state: &str, prio: u8| {
        config(
            node,
            &["script_user nobody"],
            &[
                plugin_check("chk_nginx", &nginx_plugin, &[("process", "nginx")], &["allow_processes netns"], &nginx_timing),
                script_check("chk_hang", &format!("{hang} {node}"), &hang_timing),
                instance(
                    "VI_1",
                    51,
                    state,
                    prio,
                    "1",
                    &[VIP],
                    &format!("    notify \"{hook} {node}\"\n    track_script {{\n        chk_nginx\n        chk_hang\n    }}"),
                ),
            ],
        )
    };
    let nginx = [lab.start_nginx("n1")?, lab.start_nginx("n2")?];
    let d1 = lab.start_daemon_wrapped(W, "n1", &node_conf("n1", "MASTER", 101), &[], &wrapper)?;
    lab.wait_sole_holder(&["n1", "n2"], VIP, "n1", SETTLE)?;
    let d2 = lab.start_daemon_wrapped(W, "n2", &node_conf("n2", "BACKUP", 100), &[], &wrapper)?;
    lab.wait_state(&d2, "VI_1", "BACKUP", SETTLE)?;
    for d in [&d1, &d2] {
        let caps = effective_capabilities(d.proc.pid())?;
        if caps != expected {
            return Err(LabError::check(format!(
                "{} runs with {caps:?}, the unit grants {expected:?}",
                d.describe()
            )));
        }
        // nginx-process reads /proc/PID/ns/net of nginx (root's, with every capability).
        lab.wait_check(d, "chk_nginx", "up", Duration::from_secs(5))?;
    }

    // The hung check runs as nobody and is killed with its child when it times out.
    let record = out.join("hang-n1");
    wait_for(
        "the hung check to start",
        SETTLE,
        Duration::from_millis(20),
        || Ok(record.exists()),
        || lab.log_summary(20),
    )?;
    let line = std::fs::read_to_string(&record)
        .map_err(|e| LabError::io("reading the hung check's record", e))?;
    let (uid, child) = line
        .trim()
        .split_once(' ')
        .ok_or_else(|| LabError::parse("hang record", &line))?;
    if uid != "65534" {
        return Err(LabError::check(format!(
            "the check ran as uid {uid}, script_user is nobody"
        )));
    }
    let child_proc = Path::new("/proc").join(child);
    wait_for(
        "the timed-out check's child to be killed",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || Ok(!child_proc.exists()),
        || lab.log_summary(20),
    )?;

    // nginx dies on n1: its check goes down, 101 - 10 < 100, n2 takes over.
    lab.kill_nginx(&nginx[0])?;
    lab.wait_check(&d1, "chk_nginx", "down", SETTLE)?;
    lab.wait_sole_holder(&["n1", "n2"], VIP, "n2", SETTLE)?;
    lab.wait_state(&d2, "VI_1", "MASTER", SETTLE)?;
    lab.wait_state(&d1, "VI_1", "BACKUP", SETTLE)?;
    // The hooks ran as nobody, on both sides.
    for (node, line) in [
        ("n1", "65534 INSTANCE VI_1 BACKUP"),
        ("n2", "65534 INSTANCE VI_1 MASTER"),
    ] {
        let file = out.join(format!("notify-{node}"));
        wait_for(
            &format!("{node}'s notify hook to record `{line}`"),
            SETTLE,
            Duration::from_millis(20),
            || {
                Ok(std::fs::read_to_string(&file)
                    .is_ok_and(|t| t.lines().any(|l| l.starts_with(line))))
            },
            || {
                format!(
                    "{}: {:?}\n{}",
                    file.display(),
                    std::fs::read_to_string(&file),
                    lab.log_summary(20)
                )
            },
        )?;
    }
    lab.pass()
}
