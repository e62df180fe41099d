//! The LVS director's notifications end to end (issue 12): keepalived's `VS …`/`RS …` lines
//! in `notify_fifo` and `lvs_notify_fifo`, and the `smtp_alert` mails of virtual and real
//! servers delivered to a real SMTP server (Debian's python3-aiosmtpd) in a namespace.
//!
//! keepalived cannot run here as the reference: its checker process programs IPVS, which the
//! lab's kernel lacks. The expected lines and mails are those of keepalived 2.2.7's source
//! (`check/ipwrapper.c` `notify_fifo_vs`/`notify_fifo_rs`/`do_vs_notifies`, `core/smtp.c`,
//! `check/check_tcp.c`), as `host/daemon/src/alerts/lvs.rs` documents them.
//!
//! Bounds as in `lvs_director.rs`: with `delay_loop 1`, `connect_timeout 1`, `retry 1`,
//! `delay_before_retry 1`, a dead server is seen down within 4 s and back within 2 s, plus
//! [`SLACK`] for the daemon's own latency.

use std::time::Duration;

use wasmalived_e2e::alerts::{FifoReader, Smtpd};
use wasmalived_e2e::lvs::{LvsLab, Mode, CLIENT};
use wasmalived_e2e::{LabError, Result};

/// The daemon's own latency on a loaded machine (a check result, a FIFO write, a mail).
const SLACK: Duration = Duration::from_secs(3);
/// Start-up: the daemon starts, loads the plugins, programs the pool.
const START: Duration = Duration::from_secs(20);
/// Down within `D + C + R × (B + C)` = 1 + 1 + 1 × (1 + 1).
const DOWN: Duration = Duration::from_secs(4);
/// Up within `D + C`.
const UP: Duration = Duration::from_secs(2);
/// `delay_loop 1`, `connect_timeout 1`, `retry 1`, `delay_before_retry 1`.
const TCP_CHECK: &str = "TCP_CHECK {\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }";

const VS: &str = "[192.0.2.10]:tcp:80";
const RS1: &str = "[198.51.100.11]:tcp:80";

/// Two real servers of weight 1 under `quorum 2` with `omega`; the virtual server's
/// `smtp_alert` on, the real servers' left to keepalived's default (on). rs1's nginx dies and
/// comes back: each time its `RS` line then the quorum's `VS` line, a checker mail and a
/// quorum mail with keepalived's subjects and bodies. At the start the quorum is told up
/// (keepalived's "Starting with quorum up"); a reload removing rs2 tells it down
/// ("Removing"); at the stop (`omega`) every server and the quorum go down.
#[test]
fn real_server_and_quorum_changes_reach_the_fifos_and_the_mails() -> Result<()> {
    let mut l = LvsLab::new("lvsalert", Mode::Nat, 2)?;
    let smtpd = Smtpd::start(&l.lab, CLIENT, "192.0.2.100", 2525, "smtpd")?;
    let all = FifoReader::start(&l.lab, CLIENT, "all.fifo")?;
    let lvs = FifoReader::start(&l.lab, CLIENT, "lvs.fifo")?;
    let alerts = format!(
        "global_defs {{\n    notification_email {{\n        ops@example.org\n    }}\n    notification_email_from lvs@example.org\n    smtp_server 192.0.2.100 2525\n    smtp_connect_timeout 5\n    notify_fifo {}\n    lvs_notify_fifo {}\n}}\n",
        all.path.display(),
        lvs.path.display()
    );
    let vs = l.virtual_server(
        "    lb_algo rr\n    delay_loop 1\n    quorum 2\n    omega\n    smtp_alert",
        &[(0, 1), (1, 1)],
        TCP_CHECK,
    );
    let config = l.config(0, &format!("{alerts}{vs}"));
    l.start_director(0, &config)?;
    l.wait_master(0, START)?;
    let both = [
        (format!("{}:80", l.rs_addr(0)), 1),
        (format!("{}:80", l.rs_addr(1)), 1),
    ];
    l.wait_pool(0, &both, START)?;
    lvs.wait_lines(&l.lab, 1, SLACK)?;
    smtpd.wait_mail(
        &l.lab,
        &[
            &format!("Subject: [d1] Virtualserver {VS} - UP"),
            "=> Starting with quorum up 2+0=2 <= 2 <=",
            "From: lvs@example.org",
            "To: ops@example.org",
        ],
        SLACK,
    )?;

    // rs1 dies: out of the pool, the quorum (2) is lost.
    l.kill_nginx(0)?;
    l.wait_pool(0, &both[1..], DOWN + SLACK)?;
    lvs.wait_lines(&l.lab, 3, SLACK)?;
    let rs_down = format!("Subject: [d1] Realserver {RS1} of virtual server {VS} - DOWN");
    smtpd.wait_mail(
        &l.lab,
        &[&rs_down, "=> TCP CHECK failed on service <="],
        SLACK,
    )?;
    smtpd.wait_mail(
        &l.lab,
        &[
            &format!("Subject: [d1] Virtualserver {VS} - DOWN"),
            "=> Lost quorum 2+0=2 <= 1 <=",
        ],
        SLACK,
    )?;

    // rs1 recovers: back in the pool, the quorum is gained.
    l.start_nginx(0)?;
    l.wait_pool(0, &both, UP + SLACK)?;
    lvs.wait_lines(&l.lab, 5, SLACK)?;
    smtpd.wait_mail(
        &l.lab,
        &[
            &format!("Subject: [d1] Realserver {RS1} of virtual server {VS} - UP"),
            "=> TCP CHECK succeed on service <=",
        ],
        SLACK,
    )?;
    smtpd.wait_mail(
        &l.lab,
        &[
            &format!("Subject: [d1] Virtualserver {VS} - UP"),
            "=> Gained quorum 2+0=2 <= 2 <=",
        ],
        SLACK,
    )?;

    // A reload removes rs2 (the quorum is reduced to the weight left, 1): it is told down.
    let rs2 = format!("[{}]:tcp:80", l.rs_addr(1));
    let vs = l.virtual_server(
        "    lb_algo rr\n    delay_loop 1\n    quorum 2\n    omega\n    smtp_alert",
        &[(0, 1)],
        TCP_CHECK,
    );
    l.reload(0, &l.config(0, &format!("{alerts}{vs}")))?;
    l.wait_pool(0, &both[..1], START)?;
    lvs.wait_lines(&l.lab, 6, SLACK)?;
    smtpd.wait_mail(
        &l.lab,
        &[
            &format!("Subject: [d1] Realserver {rs2} of virtual server {VS} - DOWN"),
            "=> Removing <=",
        ],
        SLACK,
    )?;

    // omega: the stop takes every server and the quorum down, in the FIFOs too.
    let d1 = l.director(0)?;
    d1.term()?;
    d1.wait_exit(START)?;
    let got = lvs.wait_lines(&l.lab, 8, SLACK)?;
    let expected = [
        format!("VS {VS} UP"),
        format!("RS {RS1} {VS} DOWN"),
        format!("VS {VS} DOWN"),
        format!("RS {RS1} {VS} UP"),
        format!("VS {VS} UP"),
        format!("RS {rs2} {VS} DOWN"),
        format!("RS {RS1} {VS} DOWN"),
        format!("VS {VS} DOWN"),
    ];
    if got != expected {
        return Err(LabError::check(format!(
            "lvs_notify_fifo lines differ\n expected {expected:#?}\n got {got:#?}\n{}",
            l.lab.log_summary(30)
        )));
    }
    // notify_fifo has the same LVS lines, between the VRRP ones; lvs_notify_fifo has no
    // VRRP line.
    let everything = all.lines();
    let lvs_part: Vec<&String> = everything
        .iter()
        .filter(|line| line.starts_with("VS ") || line.starts_with("RS "))
        .collect();
    let vrrp_lines = everything
        .iter()
        .filter(|line| line.starts_with("INSTANCE ") || line.starts_with("GROUP "))
        .count();
    if lvs_part != expected.iter().collect::<Vec<_>>() || vrrp_lines == 0 {
        return Err(LabError::check(format!(
            "notify_fifo should carry the LVS lines and the VRRP ones: {everything:#?}"
        )));
    }
    // rs2's checker never changed: its only mail is the removal's.
    let rs2_mails: Vec<String> = smtpd
        .mails()
        .into_iter()
        .filter(|m| m.contains(&format!("Subject: [d1] Realserver {rs2}")))
        .collect();
    if rs2_mails.len() != 1 {
        return Err(LabError::check(format!(
            "rs2's checker did not change: one mail (its removal) expected, got {rs2_mails:#?}"
        )));
    }
    l.lab.pass()
}
