//! Connections that survive a director failover (issue 11, `lvs_sync_daemon` on the
//! nftables backend): a long-lived TCP connection through the VIP (NAT, round robin) keeps
//! echoing after the Master director's machine dies — with the sync on. The same run with
//! the sync off shows what breaks, so the first test cannot pass vacuously.
//!
//! The run, identical in both tests but for `lvs_sync_daemon`: an echo server on each real
//! server answers every line with its name; the client connects until its connection is on
//! rs2 (round robin alternates), then sends a line and reads the echo every 100 ms. It is
//! paused while everything is acknowledged (no side has data in flight), d1 dies (daemon,
//! conntrackd and links), d2 takes over, and the client resumes: the first segment d2 sees
//! of the connection is the client's. Without a synced entry d2 schedules that segment
//! afresh — its round robin starts at rs1, which has no such connection and resets it; with
//! the entry (synced while d1 was Master) d2 translates it to rs2 as d1 did.
//!
//! Bounds: the takeover within the master-down interval; a synced entry reaches d2 within
//! conntrackd's event path (one multicast message); everything after the resume within
//! [`AFTER`], which no retransmission backoff reaches from a fresh send.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use wasmalived_e2e::lvs::{LvsLab, Mode, CLIENT, VIP};
use wasmalived_e2e::{wait_for, LabError, Proc, Result};

/// The daemon's own latency on a loaded machine.
const SLACK: Duration = Duration::from_secs(3);
/// Start-up: the daemon starts, loads the plugins, programs the pool.
const START: Duration = Duration::from_secs(20);
/// d2's master-down interval (priority 100, advert_int 1): 3 × 1 s + (256 − 100)/256 s.
const MASTER_DOWN: Duration = Duration::from_millis(3610);
/// How long the steps after the resume may take: a few exchanges, or the reset.
const AFTER: Duration = Duration::from_secs(20);
/// The echo service's port.
const PORT: u16 = 7000;
/// Echoes the client must see after the failover.
const ECHOES_AFTER: usize = 10;

/// Answers each line with `<name> <line>` (threads: the checkers connect too).
const ECHO_SERVER: &str = r#"import socketserver, sys
name = sys.argv[1]
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(("%s %s\n" % (name, line.decode().strip())).encode())
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
Server(("0.0.0.0", int(sys.argv[2])), Echo).serve_forever()
"#;

/// Connects until the connection is on `want`, then one line and its echo every 100 ms,
/// logged (`connected SERVER PORT`, `ok N SERVER`, or `error KIND …` and exit) until the
/// stop file exists.
const CLIENT_LOOP: &str = r#"import os, socket, sys, time
vip, port, want, log, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
out = open(log, "a", buffering=1)
def exchange(s, f, n):
    s.sendall(("%d\n" % n).encode())
    line = f.readline()
    if not line:
        raise ConnectionError("closed by the peer")
    return line.split()[0]
for attempt in range(10):
    s = socket.create_connection((vip, port), timeout=10)
    f = s.makefile("r")
    if exchange(s, f, 0) == want:
        break
    s.close()
else:
    out.write("error never reached %s\n" % want)
    sys.exit(2)
out.write("connected %s %d\n" % (want, s.getsockname()[1]))
s.settimeout(30)
n = 1
while not os.path.exists(stop):
    try:
        server = exchange(s, f, n)
    except Exception as e:
        out.write("error %s %s\n" % (type(e).__name__, e))
        sys.exit(1)
    out.write("ok %d %s\n" % (n, server))
    n += 1
    time.sleep(0.1)
out.write("done\n")
"#;

#[test]
fn with_lvs_sync_daemon_a_long_lived_nat_connection_survives_the_masters_death() -> Result<()> {
    let run = failover_run("lvssync", true)?;
    let after = run.echoes_after();
    run.expect(run.error().is_none() && after.len() >= ECHOES_AFTER, || {
        format!("the connection must keep echoing after the failover: {after:?}")
    })?;
    run.expect(after.iter().all(|s| s == "rs2"), || {
        format!("the same real server must answer: {after:?}")
    })?;
    // conntrackd runs as the daemon's child and stops with it.
    run.expect(conntrackds(&run.l, "d2")? == 1, || {
        "d2 must run one conntrackd".to_owned()
    })?;
    let d2 = run.l.director(1)?;
    d2.term()?;
    d2.wait_exit(START)?;
    run.expect(conntrackds(&run.l, "d2")? == 0, || {
        "conntrackd must stop with the daemon".to_owned()
    })?;
    run.finish()
}

/// How many conntrackd processes run on `node`.
fn conntrackds(l: &LvsLab, node: &str) -> Result<usize> {
    let ns = &l.lab.node(node)?.ns;
    let pids = wasmalived_e2e::cmd::run(&["ip", "netns", "pids", ns])?;
    Ok(pids
        .split_whitespace()
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "conntrackd")
        })
        .count())
}

#[test]
fn without_connection_sync_the_new_master_resets_the_connection() -> Result<()> {
    let run = failover_run("lvsnosync", false)?;
    let error = run.error();
    run.expect(
        error
            .as_deref()
            .is_some_and(|e| e.starts_with("ConnectionResetError")),
        || {
            format!(
                "without sync the connection must be reset; got {error:?} after {:?}",
                run.echoes_after()
            )
        },
    )?;
    run.finish()
}

/// A run up to the client's verdict after the failover.
struct Run {
    l: LvsLab,
    log: PathBuf,
    stop: PathBuf,
    resumed_at: usize,
    _client: Proc,
}

impl Run {
    fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The servers that echoed after the resume.
    fn echoes_after(&self) -> Vec<String> {
        self.lines()[self.resumed_at..]
            .iter()
            .filter_map(|l| l.strip_prefix("ok "))
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect()
    }

    /// The client's error line, if it stopped on one.
    fn error(&self) -> Option<String> {
        self.lines()
            .iter()
            .find_map(|l| l.strip_prefix("error ").map(str::to_owned))
    }

    fn expect(&self, cond: bool, what: impl FnOnce() -> String) -> Result<()> {
        if cond {
            Ok(())
        } else {
            Err(LabError::check(format!(
                "{}\nclient log:\n{}\n{}",
                what(),
                self.lines().join("\n"),
                self.l.lab.log_summary(40)
            )))
        }
    }

    fn finish(self) -> Result<()> {
        let _ = fs::write(&self.stop, "");
        self.l.lab.pass()
    }
}

fn failover_run(tag: &str, sync: bool) -> Result<Run> {
    let mut l = LvsLab::new(tag, Mode::Nat, 2)?;
    let echo = l.lab.dir().join("echo.py");
    let client = l.lab.dir().join("client.py");
    for (path, text) in [(&echo, ECHO_SERVER), (&client, CLIENT_LOOP)] {
        fs::write(path, text)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    }
    for i in 0..2 {
        let rs = l.real_servers[i].clone();
        let echo = echo.to_string_lossy();
        l.lab.spawn(
            &rs,
            &["python3", &echo, &rs, &PORT.to_string()],
            format!("{rs}-echo.log"),
        )?;
    }
    let mut services = String::new();
    if sync {
        services.push_str("global_defs {\n    lvs_sync_daemon eth1 VI_CLIENT\n}\n");
    }
    let _ = write!(
        services,
        "virtual_server {VIP} {PORT} {{\n    lb_kind NAT\n    protocol TCP\n    lb_algo rr\n    delay_loop 1\n"
    );
    for i in 0..2 {
        let _ = writeln!(
            services,
            "    real_server {} {PORT} {{\n        weight 1\n        TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}",
            l.rs_addr(i)
        );
    }
    services.push_str("}\n");
    let pool: Vec<(String, u64)> = (0..2)
        .map(|i| (format!("{}:{PORT}", l.rs_addr(i)), 1))
        .collect();
    for i in 0..2 {
        let c = l.config(i, &services);
        l.start_director(i, &c)?;
    }
    l.wait_master(0, START)?;
    l.wait_pool(0, &pool, START)?;
    l.wait_pool(1, &pool, START)?;

    let log = l.lab.dir().join("client.log");
    let stop = l.lab.dir().join("client.stop");
    let client = l.lab.spawn(
        CLIENT,
        &[
            "python3",
            &client.to_string_lossy(),
            VIP,
            &PORT.to_string(),
            "rs2",
            &log.to_string_lossy(),
            &stop.to_string_lossy(),
        ],
        "client.out",
    )?;
    let read = || fs::read_to_string(&log).unwrap_or_default();
    wait_for(
        "the client's connection to echo on rs2",
        START,
        Duration::from_millis(50),
        || Ok(read().lines().filter(|l| l.starts_with("ok ")).count() >= 3),
        || format!("client log:\n{}\n{}", read(), l.lab.log_summary(30)),
    )?;
    let port = read()
        .lines()
        .find_map(|l| l.strip_prefix("connected rs2 ").map(str::to_owned))
        .ok_or_else(|| LabError::check(format!("no connection line in\n{}", read())))?;
    let tracked_on_d2 = || -> Result<bool> {
        let table = l.lab.run(
            "d2",
            &["conntrack", "-L", "-p", "tcp", "--dport", &PORT.to_string()],
        )?;
        Ok(table
            .lines()
            .any(|e| e.contains(&format!("sport={port} ")) && e.contains("src=198.51.100.12")))
    };
    if sync {
        // d1's entry (with its translation to rs2) is in d2's kernel table before d1 dies.
        wait_for(
            "the connection's entry to be synced to d2",
            Duration::from_secs(5) + SLACK,
            Duration::from_millis(50),
            tracked_on_d2,
            || l.lab.log_summary(40),
        )?;
    } else if tracked_on_d2()? {
        return Err(LabError::check(
            "without sync d2 must not know the connection",
        ));
    }

    // Pause the client once nothing is in flight on either side.
    client.signal("STOP")?;
    let quiet = |node: &str, filter: &str| -> Result<bool> {
        let out = l
            .lab
            .run(node, &["ss", "-tnH", "state", "established", filter])?;
        Ok(out
            .lines()
            .all(|line| line.split_whitespace().nth(1) == Some("0")))
    };
    wait_for(
        "the connection to be quiet",
        Duration::from_secs(5) + SLACK,
        Duration::from_millis(50),
        || {
            Ok(quiet(CLIENT, &format!("dport = :{PORT}"))?
                && quiet("rs2", &format!("sport = :{PORT}"))?)
        },
        || l.lab.log_summary(20),
    )?;
    let resumed_at = read().lines().count();
    l.crash_director(0)?;
    l.wait_master(1, MASTER_DOWN + SLACK)?;
    client.signal("CONT")?;
    let settled = |text: &str| {
        text.lines().any(|l| l.starts_with("error "))
            || text
                .lines()
                .skip(resumed_at)
                .filter(|l| l.starts_with("ok "))
                .count()
                >= ECHOES_AFTER
    };
    let _ = wait_for(
        "the client to echo or fail after the failover",
        AFTER,
        Duration::from_millis(50),
        || Ok(settled(&read())),
        String::new,
    );
    Ok(Run {
        l,
        log,
        stop,
        resumed_at,
        _client: client,
    })
}
