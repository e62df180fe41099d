//! keepalived's notifications beside the notify scripts, end to end (issue 12): `track_file`
//! with `init_file`, the notify FIFO with `notify_priority_changes` (the same scenario run
//! with keepalived on both nodes pins the expected lines), and alert mails delivered to a
//! real SMTP server (Debian's python3-aiosmtpd) in a namespace, while a server that never
//! answers does not delay a failover.
//!
//! Needs the daemon: `cargo build -p wasmalived` (or `WASMALIVED_BIN`), root, keepalived,
//! python3-aiosmtpd (`scripts/setup.sh`).

use std::path::Path;
use std::time::Duration;

use wasmalived_e2e::alerts::{wait_listening, Smtpd, PYTHON};
use wasmalived_e2e::features::{conf, instance, lab_with_nodes as lab, skew, SETTLE};
use wasmalived_e2e::{wait_for, Impl, Lab, LabError, Result};

const W: Impl = Impl::Wasmalived;
const K: Impl = Impl::Keepalived;
const N1: &str = "n1";
const N2: &str = "n2";
const PAIR: [&str; 2] = [N1, N2];
const VIP: &str = "192.0.2.200";

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `path` has a line equal to `line`.
fn wait_line(lab: &Lab, path: &Path, line: &str) -> Result<()> {
    wait_for(
        &format!("{} to have the line {line:?}", path.display()),
        SETTLE,
        Duration::from_millis(20),
        || Ok(lines(path).iter().any(|l| l == line)),
        || format!("lines now: {:#?}\n{}", lines(path), lab.log_summary(20)),
    )
    .map(|_| ())
}

/// n1 (priority 100) tracks a file with `weight -1`, `init_file 0 overwrite` (the file
/// holds 7 before the start, which would put n1 below n2's 99) and
/// `notify_priority_changes`; a reader (`cat`) follows n1's notify FIFO. The file goes to
/// 20 (→ 80, n2 preempts), back to 0 (→ 100, n1 preempts), then n1 stops. Returns the
/// FIFO lines.
fn fifo_scenario(test: &str, kind: Impl) -> Result<(Lab, Vec<String>)> {
    let lab = lab(test, 2)?;
    let fifo = lab.dir().join("n1.fifo");
    let value = lab.dir().join("n1.prio");
    let out = lab.dir().join("n1-fifo.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .map_err(|e| LabError::io("mkfifo".to_owned(), e))?;
    if !made.success() {
        return Err(LabError::check(format!("mkfifo {} failed", fifo.display())));
    }
    write(&value, "7\n")?;
    let reader = lab.spawn(N1, &["cat", &fifo.display().to_string()], &out)?;
    let global = format!(
        "global_defs {{\n    notify_fifo {}\n}}\ntrack_file prio {{\n    file {}\n    weight -1\n    init_file 0 overwrite\n}}\n",
        fifo.display(),
        value.display()
    );
    let c1 = conf(
        N1,
        &[
            global,
            instance(
                "VI_1",
                55,
                "MASTER",
                100,
                "0.1",
                &[VIP],
                "    notify_priority_changes\n    track_file {\n        prio\n    }",
            ),
        ],
    );
    let c2 = conf(N2, &[instance("VI_1", 55, "BACKUP", 99, "0.1", &[VIP], "")]);
    let d1 = lab.start_daemon(kind, N1, &c1)?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", SETTLE)?;
    let d2 = lab.start_daemon(kind, N2, &c2)?;
    lab.wait_state(&d2, "VI_1", "BACKUP", SETTLE)?;
    // init_file overwrote the 7.
    let now = std::fs::read_to_string(&value).unwrap_or_default();
    if now.trim() != "0" {
        return Err(LabError::check(format!(
            "init_file 0 overwrite left {now:?} in {}",
            value.display()
        )));
    }

    write(&value, "20\n")?;
    lab.wait_sole_holder(&PAIR, VIP, N2, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "BACKUP", SETTLE)?;
    wait_line(&lab, &out, "INSTANCE \"VI_1\" BACKUP 80")?;

    write(&value, "0\n")?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", SETTLE)?;
    lab.wait_state(&d2, "VI_1", "BACKUP", SETTLE)?;

    d1.term()?;
    d1.wait_exit(Duration::from_secs(5))?;
    wait_line(&lab, &out, "INSTANCE \"VI_1\" STOP 100")?;
    d2.term()?;
    d2.wait_exit(Duration::from_secs(5))?;
    let _ = reader.term();
    Ok((lab, lines(&out)))
}

/// The FIFO lines both implementations must write for [`fifo_scenario`]; `state MASTER`
/// may first report BACKUP (keepalived starts there).
fn expect_fifo_lines(lab: &Lab, got: &[String]) -> Result<()> {
    let expected = [
        "INSTANCE \"VI_1\" MASTER 100",
        "INSTANCE \"VI_1\" MASTER_PRIORITY 80",
        "INSTANCE \"VI_1\" BACKUP 80",
        "INSTANCE \"VI_1\" BACKUP_PRIORITY 100",
        "INSTANCE \"VI_1\" MASTER 100",
        "INSTANCE \"VI_1\" STOP 100",
    ];
    let got: Vec<&str> = got.iter().map(String::as_str).collect();
    let got = match got.first() {
        Some(&"INSTANCE \"VI_1\" BACKUP 100") => &got[1..],
        _ => &got[..],
    };
    if got != expected {
        return Err(LabError::check(format!(
            "notify FIFO lines differ\n expected {expected:#?}\n got {got:#?}\n{}",
            lab.log_summary(20)
        )));
    }
    Ok(())
}

/// wasmalived on both nodes: keepalived's FIFO format, the priority lines of
/// `notify_priority_changes`, `track_file` moving the Master, `init_file overwrite`.
#[test]
fn notify_fifo_and_track_file_follow_keepalived() -> Result<()> {
    let (lab, got) = fifo_scenario("ntfifo", W)?;
    expect_fifo_lines(&lab, &got)?;
    lab.pass()
}

/// The same scenario with keepalived on both nodes pins the expected lines.
#[test]
fn notify_fifo_and_track_file_reference_keepalived() -> Result<()> {
    let (lab, got) = fifo_scenario("ntfifokl", K)?;
    expect_fifo_lines(&lab, &got)?;
    lab.pass()
}

/// n1 sends its alerts to aiosmtpd on n3; n2's SMTP server (also on n3) accepts and never
/// answers, with a long `smtp_connect_timeout`. n1 becomes Master: the mail arrives with
/// keepalived's subject, body, sender and recipients. n1 stops while n2's mails hang: n2
/// still takes over within its master-down bound.
#[test]
fn alert_mails_reach_an_smtp_server_and_a_dead_one_never_delays_failover() -> Result<()> {
    let lab = lab("ntsmtp", 3)?;
    let smtpd = Smtpd::start(&lab, "n3", "192.0.2.3", 2525, "smtpd")?;
    let silent = "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('192.0.2.3',2526))\ns.listen(64)\nheld=[]\nwhile True:\n    c,_=s.accept()\n    held.append(c)\n";
    let _silent = lab.spawn("n3", &[PYTHON, "-c", silent], "silent.log")?;
    wait_listening(&lab, "n3", &["192.0.2.3:2526"])?;
    let smtp = |port: u16, timeout: u32| {
        format!(
            "global_defs {{\n    notification_email {{\n        ops@example.org\n        noc@example.org\n    }}\n    notification_email_from vrrp@example.org\n    smtp_server 192.0.2.3 {port}\n    smtp_connect_timeout {timeout}\n    smtp_helo_name lab\n    smtp_alert\n}}\n"
        )
    };
    let adv = 0.1;
    let c1 = conf(
        N1,
        &[
            smtp(2525, 5),
            instance("VI_1", 55, "MASTER", 100, "0.1", &[VIP], ""),
        ],
    );
    let c2 = conf(
        N2,
        &[
            smtp(2526, 600),
            instance("VI_1", 55, "BACKUP", 99, "0.1", &[VIP], ""),
        ],
    );
    let d1 = lab.start_daemon(W, N1, &c1)?;
    lab.wait_sole_holder(&PAIR, VIP, N1, SETTLE)?;
    lab.wait_state(&d1, "VI_1", "MASTER", SETTLE)?;
    let d2 = lab.start_daemon(W, N2, &c2)?;
    lab.wait_state(&d2, "VI_1", "BACKUP", SETTLE)?;

    let subject = "Subject: [n1] VRRP Instance VI_1 - Entering MASTER state";
    let mail = smtpd.wait_mail(&lab, &[subject], SETTLE)?;
    for needed in [
        "From: vrrp@example.org",
        "ops@example.org",
        "noc@example.org",
        "=> VRRP Instance is now owning VRRP VIPs <=",
    ] {
        if !mail.contains(needed) {
            return Err(LabError::check(format!(
                "the MASTER alert mail lacks {needed:?}:\n{mail}"
            )));
        }
    }

    // n2 has queued its BACKUP mail to the silent server. n1 stops (priority 0): n2 must be
    // Master within the skew time plus a generous margin — its mail can only be late.
    let bound = Duration::from_secs_f64(3.0 * adv + skew(99, adv)) + Duration::from_secs(2);
    d1.term()?;
    d1.wait_exit(Duration::from_secs(5))?;
    lab.wait_state(&d2, "VI_1", "MASTER", bound)?;
    lab.wait_sole_holder(&PAIR, VIP, N2, bound)?;
    if smtpd.mails().iter().any(|m| m.contains("[n2]")) {
        return Err(LabError::check(
            "a mail of n2 reached the real server; its server was the silent one".to_owned(),
        ));
    }
    d2.term()?;
    d2.wait_exit(Duration::from_secs(5))?;
    lab.pass()
}
