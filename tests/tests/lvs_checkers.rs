//! keepalived's `DNS_CHECK`, `SMTP_CHECK` and `FILE_CHECK` on the LVS director, against real
//! servers in namespaces: Debian's dnsmasq answers the DNS checks, aiosmtpd the SMTP
//! dialogue, and a `track_file` written by the test moves a real server's weight.
//!
//! Bounds come from the checker settings (as in `lvs_director.rs`): with `delay_loop 1`,
//! `connect_timeout 1`, `retry 1`, `delay_before_retry 1`, a server whose service dies is
//! down at most `D + C + R × (B + C)` = 4 s later and back at most `D + C` = 2 s after it
//! recovers; a `FILE_CHECK` reacts to the file's change at once (inotify; its real server's
//! `delay_loop` is 60 s, so only the watch can meet the bound). Every wait adds [`SLACK`] for the daemon's latency on a loaded machine.

use std::fs;
use std::path::Path;
use std::time::Duration;

use wasmalived_e2e::alerts::wait_listening;
use wasmalived_e2e::lvs::{LvsLab, Mode};
use wasmalived_e2e::{wait_for, LabError, Proc, Result};

/// The daemon's own latency on a loaded machine.
const SLACK: Duration = Duration::from_secs(3);
/// Start-up: the daemon starts, programs the pool.
const START: Duration = Duration::from_secs(20);
/// The name dnsmasq answers (an A record), and its address.
const DNS_NAME: &str = "www.example.test";
/// The SMTP port aiosmtpd listens on.
const SMTP_PORT: u16 = 2525;

/// Down within `D + C + R × (B + C)`.
fn down_bound() -> Duration {
    Duration::from_secs(4) + SLACK
}

/// Up within `D + C`; a FILE_CHECK's change within the same bound (it applies at once).
fn up_bound() -> Duration {
    Duration::from_secs(2) + SLACK
}

/// dnsmasq on `rs` port 53, answering only `DNS_NAME` (no upstream, no hosts file); returns
/// once its socket is bound, so a bound measured after it is the checker's alone.
fn dnsmasq(l: &LvsLab, rs: usize) -> Result<Proc> {
    let name = &l.real_servers[rs];
    let listen = format!("{}:53", l.rs_addr(rs));
    let proc = l.lab.spawn(
        name,
        &[
            "/usr/sbin/dnsmasq",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--user=root",
            "--bind-interfaces",
            &format!("--listen-address={}", l.rs_addr(rs)),
            "--port=53",
            &format!("--address=/{DNS_NAME}/192.0.2.80"),
            "--log-facility=-",
        ],
        format!("{name}-dnsmasq.log"),
    )?;
    wait_for(
        &format!("dnsmasq listening on {listen}"),
        START,
        Duration::from_millis(50),
        || Ok(l.lab.run(name, &["ss", "-lun"])?.contains(&listen)),
        || l.lab.log_summary(20),
    )?;
    Ok(proc)
}

/// aiosmtpd on `rs` port [`SMTP_PORT`]; returns once it listens.
fn aiosmtpd(l: &LvsLab, rs: usize) -> Result<Proc> {
    let name = &l.real_servers[rs];
    let listen = format!("{}:{SMTP_PORT}", l.rs_addr(rs));
    let proc = l.lab.spawn(
        name,
        &["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", &listen],
        format!("{name}-aiosmtpd.log"),
    )?;
    wait_listening(&l.lab, name, &[&listen])?;
    Ok(proc)
}

/// Writes `value` to the tracked file the way an operator's `echo N > file` does.
fn write_value(path: &Path, value: &str) -> Result<()> {
    fs::write(path, format!("{value}\n"))
        .map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

#[test]
fn dns_smtp_and_file_checks_follow_real_services_and_the_tracked_file() -> Result<()> {
    let mut l = LvsLab::new("lvschk", Mode::Nat, 3)?;
    let mut dns = dnsmasq(&l, 0)?;
    let mut smtp = aiosmtpd(&l, 1)?;
    let weight_file = l.lab.dir().join("rs3.weight");
    write_value(&weight_file, "0")?;
    let timing = "connect_timeout 1\n            retry 1\n            delay_before_retry 1";
    let members = vec![
        (
            0,
            1,
            format!("DNS_CHECK {{\n            connect_port 53\n            type A\n            name {DNS_NAME}\n            {timing}\n        }}"),
        ),
        (
            1,
            1,
            format!("SMTP_CHECK {{\n            connect_port {SMTP_PORT}\n            helo_name checker.example.test\n            {timing}\n        }}"),
        ),
        (
            2,
            2,
            // delay_loop 60 on this server: only the file's change (inotify) can move its
            // weight within the bounds below.
            "delay_loop 60\n        FILE_CHECK {\n            track_file rs3_weight\n        }"
                .to_owned(),
        ),
    ];
    let services = format!(
        "track_file rs3_weight {{\n    file {}\n    weight 1\n}}\n{}",
        weight_file.display(),
        l.virtual_server_with("    lb_algo wrr\n    delay_loop 1", &members)
    );
    // One director is enough: the checkers are what this test is about.
    let config = l.config(0, &services);
    l.start_director(0, &config)?;
    l.wait_master(0, START)?;
    let pool = |l: &LvsLab, members: &[(usize, u64)]| -> Vec<(String, u64)> {
        members
            .iter()
            .map(|(i, w)| (format!("{}:80", l.rs_addr(*i)), *w))
            .collect()
    };
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1), (2, 2)]), START)?;

    // FILE_CHECK: the value times the weight (1) is added to rs3's configured weight (2);
    // a sum below zero keeps it in the pool at weight 0, as keepalived's real_weight.
    write_value(&weight_file, "3")?;
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1), (2, 5)]), up_bound())?;
    write_value(&weight_file, "-5")?;
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1), (2, 0)]), up_bound())?;
    write_value(&weight_file, "0")?;
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1), (2, 2)]), up_bound())?;

    // DNS_CHECK: dnsmasq stops, its port is unreachable, rs1 leaves; it comes back.
    dns.kill9_group()?;
    l.wait_pool(0, &pool(&l, &[(1, 1), (2, 2)]), down_bound())?;
    let status = l.status(0)?;
    let rs1 = &status["virtual_servers"][0]["real_servers"][0];
    // The sandboxed stock plugin `dns` ran it (its identity is `dns@DIGEST`).
    let runner = rs1["checkers"][0]["runner"].as_str().unwrap_or_default();
    if rs1["checkers"][0]["state"] != "down" || !runner.starts_with("dns@") {
        return Err(LabError::check(format!(
            "rs1's DNS_CHECK should be down: {rs1}\n{}",
            l.lab.log_summary(30)
        )));
    }
    dns = dnsmasq(&l, 0)?;
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1), (2, 2)]), up_bound())?;

    // SMTP_CHECK: aiosmtpd stops, rs2 leaves; it comes back.
    smtp.kill9_group()?;
    l.wait_pool(0, &pool(&l, &[(0, 1), (2, 2)]), down_bound())?;
    smtp = aiosmtpd(&l, 1)?;
    l.wait_pool(0, &pool(&l, &[(0, 1), (1, 1), (2, 2)]), up_bound())?;
    drop((dns, smtp));
    l.lab.pass()
}
