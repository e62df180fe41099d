//! `keepalived.data`: the running state and the configuration, readable, in keepalived's
//! `------< SECTION >------` / `Name = value` layout (`vrrp_print.c`, `dump_data_vrrp`).
//!
//! Everything comes from the status document (the daemon's one view of its state) and the
//! configuration in force; the configuration is printed as `wasmalived -t --dump-config`
//! prints it (every effective value: VIPs, tracked scripts, LVS pools).

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::control::{CheckStatus, InstanceStatus, Status, VirtualServerStatus};

/// The data file's text for `status`, written at `now`, with `config` (the
/// `--dump-config` text of the configuration in force, if one was applied).
pub fn render(status: &Status, config: Option<&str>, now: SystemTime) -> String {
    let mut out = String::new();
    section(&mut out, "wasmalived data dump");
    field(&mut out, 1, "Date", httpdate::fmt_http_date(now));
    field(&mut out, 1, "Pid", status.pid);
    field(&mut out, 1, "Configuration file", &status.config);
    section(&mut out, "VRRP Topology");
    for i in &status.instances {
        instance(&mut out, i);
    }
    section(&mut out, "VRRP Scripts");
    for c in &status.checks {
        check(&mut out, c);
    }
    if !status.virtual_servers.is_empty() {
        section(&mut out, "LVS Topology");
        for vs in &status.virtual_servers {
            virtual_server(&mut out, vs);
        }
    }
    if !status.paths.is_empty() {
        section(&mut out, "Receive paths");
        for p in &status.paths {
            field(&mut out, 1, "Path", format!("{} {}", p.interface, p.family));
            for (name, n) in &p.counters {
                field(&mut out, 2, name, n);
            }
        }
    }
    section(&mut out, "Configuration in force");
    out.push_str(config.unwrap_or("(none applied yet)\n"));
    out
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "------< {title} >------");
}

fn field(out: &mut String, depth: usize, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{:width$}{name} = {value}", "", width = depth * 2 - 1);
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn instance(out: &mut String, i: &InstanceStatus) {
    field(out, 1, "VRRP Instance", &i.name);
    field(out, 2, "State", &i.state);
    field(out, 2, "Maintenance", yes_no(i.maintenance));
    field(out, 2, "Interface", &i.interface);
    field(out, 2, "Virtual Router ID", i.vrid);
    field(out, 2, "VRRP Version", i.version);
    field(out, 2, "Address family", &i.family);
    field(out, 2, "Base priority", i.priority);
    field(out, 2, "Effective priority", i.effective_priority);
    if !i.fault_reasons.is_empty() {
        field(out, 2, "Fault", i.fault_reasons.join("; "));
    }
    field(out, 2, "Split brain", yes_no(i.split_brain));
}

fn check(out: &mut String, c: &CheckStatus) {
    field(out, 1, "VRRP Script", &c.name);
    field(out, 2, "Status", &c.state);
    field(out, 2, "Runner", &c.runner);
    if !c.last.is_empty() {
        field(out, 2, "Last result", &c.last);
    }
    if let Some(kind) = &c.failure_kind {
        field(out, 2, "Failure kind", kind);
    }
    field(out, 2, "Runs", c.runs);
    field(out, 2, "Skipped ticks", c.skipped);
    for (name, value) in &c.measurements {
        field(out, 2, &format!("Measurement {name}"), value);
    }
}

fn virtual_server(out: &mut String, vs: &VirtualServerStatus) {
    field(out, 1, "Virtual server", &vs.name);
    field(out, 2, "Scheduler", &vs.scheduler);
    if vs.scheduler_used != vs.scheduler {
        field(out, 2, "Scheduler running", &vs.scheduler_used);
    }
    field(out, 2, "Forwarding", &vs.forwarding);
    field(out, 2, "Backend", &vs.backend);
    field(
        out,
        2,
        "Quorum",
        format!(
            "{} ({} of {})",
            if vs.quorum_up { "up" } else { "DOWN" },
            vs.live_weight,
            vs.quorum
        ),
    );
    field(
        out,
        2,
        "Sorry server active",
        yes_no(vs.sorry_server_active),
    );
    field(out, 2, "Checks suspended", yes_no(vs.suspended));
    if let Some(err) = &vs.apply_error {
        field(out, 2, "Data path error", err);
    }
    for rs in &vs.real_servers {
        field(out, 2, "Real server", &rs.address);
        field(out, 3, "Alive", yes_no(rs.alive));
        field(out, 3, "Weight", rs.weight);
        match rs.pool_weight {
            Some(w) => field(out, 3, "In pool with weight", w),
            None => field(out, 3, "In pool", "no"),
        }
        for c in &rs.checkers {
            field(
                out,
                3,
                "Checker",
                format!("{} {} [{}]", c.name, c.state, c.runner),
            );
            if !c.last.is_empty() {
                field(
                    out,
                    4,
                    "Last result",
                    format!("{} ({:.1} ms, {} runs)", c.last, c.last_ms, c.runs),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dump_has_each_instance_check_and_the_configuration() {
        let status = Status {
            pid: 42,
            config: "/etc/keepalived/keepalived.conf".into(),
            instances: vec![InstanceStatus {
                name: "VI_1".into(),
                state: "BACKUP".into(),
                interface: "eth0".into(),
                vrid: 51,
                version: 3,
                family: "ipv4".into(),
                priority: 100,
                effective_priority: 90,
                maintenance: true,
                ..Default::default()
            }],
            checks: vec![CheckStatus {
                name: "chk_nginx".into(),
                state: "down".into(),
                runner: "nginx-process@1234".into(),
                last: "fail: no worker".into(),
                failure_kind: Some("fail".into()),
                runs: 3,
                ..Default::default()
            }],
            ..Default::default()
        };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        let text = render(&status, Some("global_defs\n"), at);
        let expected = "\
------< wasmalived data dump >------
 Date = Sun, 06 Nov 1994 08:49:37 GMT
 Pid = 42
 Configuration file = /etc/keepalived/keepalived.conf
------< VRRP Topology >------
 VRRP Instance = VI_1
   State = BACKUP
   Maintenance = yes
   Interface = eth0
   Virtual Router ID = 51
   VRRP Version = 3
   Address family = ipv4
   Base priority = 100
   Effective priority = 90
   Split brain = no
------< VRRP Scripts >------
 VRRP Script = chk_nginx
   Status = down
   Runner = nginx-process@1234
   Last result = fail: no worker
   Failure kind = fail
   Runs = 3
   Skipped ticks = 0
------< Configuration in force >------
global_defs
";
        assert_eq!(text, expected);
    }
}
