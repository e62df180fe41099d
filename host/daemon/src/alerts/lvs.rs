//! What the LVS director tells the notify FIFOs and the alert mails, in keepalived 2.2.7's
//! words (`check/ipwrapper.c` `notify_fifo_vs`/`notify_fifo_rs`/`do_vs_notifies`,
//! `core/smtp.c` `smtp_alert`, the checkers' epilogues such as `check_tcp.c` `tcp_epilog`).
//!
//! Names are keepalived's `FMT_VS`/`FMT_RS`: `[192.0.2.10]:tcp:80`, `[2001:db8::10]:udp:53`,
//! `FWM 7`, `[GROUP]:0` for a `virtual_server group`.
//!
//! ```text
//! VS [192.0.2.10]:tcp:80 UP                              quorum gained (and at the start)
//! RS [198.51.100.11]:tcp:80 [192.0.2.10]:tcp:80 DOWN     real server out of the pool
//! ```
//!
//! Mails (only with `smtp_server` and `notification_email`):
//! - a real server's checker changing state, when the real server's `smtp_alert` is on:
//!   `[ROUTER_ID] Realserver RS of virtual server VS - DOWN` (the real server's state), body
//!   the checker's (`=> TCP CHECK failed on service <=`). With `no_checker_emails`, only a
//!   change that moves the real server mails. A `MISC_CHECK` also mails its first result.
//! - a quorum change, when the virtual server's `smtp_alert` is on:
//!   `[ROUTER_ID] Virtualserver VS - UP`, body `=> Gained quorum 2+0=2 <= 3 <=`.
//! - with `omega`, at shutdown: `… - DOWN` and `=> Shutting down <=` for both; a real
//!   server a reload removes: `… - DOWN` and `=> Removing <=`.

use std::net::SocketAddr;

use wasmalived_config::lvs::{CheckerKind, RealServer, ServiceAddr, VirtualServer};
use wasmalived_config::Config;

use super::mail::Alert;
use super::Alerts;

/// One virtual server's notification settings, resolved when a configuration is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAlerts {
    /// keepalived's name of the virtual server.
    name: String,
    quorum: u32,
    hysteresis: u32,
    /// The virtual server's effective `smtp_alert`.
    mail_quorum: bool,
    /// Per real server (configuration order): keepalived's name and effective `smtp_alert`.
    real_servers: Vec<(String, bool)>,
}

/// A checker's state change, as the director saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckerChange<'a> {
    /// What the checker is.
    pub kind: &'a CheckerKind,
    /// The checker's state after this result.
    pub checker_up: bool,
    /// The checker's state changed with this result.
    pub changed: bool,
    /// This was the checker's first decisive result (and did not change its state).
    pub first: bool,
    /// The real server's state after this result.
    pub server_up: bool,
    /// The real server's state changed with this result.
    pub server_changed: bool,
}

impl ServiceAlerts {
    /// The settings of `vs` in `config`.
    pub fn new(vs: &VirtualServer, config: &Config) -> Self {
        ServiceAlerts {
            name: service_name(vs),
            quorum: vs.quorum,
            hysteresis: vs.hysteresis,
            mail_quorum: config.virtual_server_smtp_alert(vs),
            real_servers: vs
                .real_servers
                .iter()
                .map(|rs| (real_server_name(vs, rs), config.real_server_smtp_alert(rs)))
                .collect(),
        }
    }

    /// Real server `rs` came up or went down: its FIFO line.
    pub fn real_server(&self, alerts: &Alerts, rs: usize, up: bool) {
        if let Some((name, _)) = self.real_servers.get(rs) {
            alerts.write_lvs(&rs_line(name, &self.name, up));
        }
    }

    /// The quorum was gained or lost (`initial`: at the start or a reload): the FIFO line
    /// and, with `smtp_alert`, the mail.
    pub fn quorum(&self, alerts: &Alerts, up: bool, initial: bool, weight: u64, threshold: u64) {
        alerts.write_lvs(&vs_line(&self.name, up));
        if let Some(alert) = self.quorum_mail(alerts.router_id(), up, initial, weight, threshold) {
            alerts.mail(alert);
        }
    }

    /// keepalived's `SMTP_MSG_VS` mail for a quorum change, if `smtp_alert` is on.
    fn quorum_mail(
        &self,
        router_id: &str,
        up: bool,
        initial: bool,
        weight: u64,
        threshold: u64,
    ) -> Option<Alert> {
        if !self.mail_quorum {
            return None;
        }
        let event = match (up, initial) {
            (true, true) => "Starting with quorum up",
            (true, false) => "Gained quorum",
            (false, true) => "Starting with quorum down",
            (false, false) => "Lost quorum",
        };
        // keepalived writes `+` whichever way the threshold was crossed.
        let body = format!(
            "=> {event} {}+{}={threshold} <= {weight} <=",
            self.quorum, self.hysteresis
        );
        Some(self.vs_alert(router_id, up, body))
    }

    /// A checker of real server `rs` recorded a result: the mail keepalived's checker sends
    /// for it, if any.
    pub fn checker(&self, alerts: &Alerts, rs: usize, change: &CheckerChange<'_>) {
        let Some((rs_name, true)) = self.real_servers.get(rs) else {
            return;
        };
        if let Some(body) = checker_mail(change, alerts.no_checker_emails()) {
            alerts.mail(rs_alert(
                alerts.router_id(),
                rs_name,
                &self.name,
                change.server_up,
                body,
            ));
        }
    }

    /// Real server `rs`, alive until now, leaves: removed by a reload, or at shutdown with
    /// `omega` (`stopping`) — keepalived's `clear_service_rs`: the `RS … DOWN` line and,
    /// with `smtp_alert`, `=> Removing <=` or `=> Shutting down <=`.
    pub fn real_server_cleared(&self, alerts: &Alerts, rs: usize, stopping: bool) {
        let Some((rs_name, mail)) = self.real_servers.get(rs) else {
            return;
        };
        alerts.write_lvs(&rs_line(rs_name, &self.name, false));
        if *mail {
            let body = if stopping { SHUTTING_DOWN } else { REMOVING };
            alerts.mail(rs_alert(
                alerts.router_id(),
                rs_name,
                &self.name,
                false,
                body.into(),
            ));
        }
    }

    /// `omega` at shutdown: the virtual server goes down.
    pub fn shutdown(&self, alerts: &Alerts) {
        alerts.write_lvs(&vs_line(&self.name, false));
        if self.mail_quorum {
            alerts.mail(self.vs_alert(alerts.router_id(), false, SHUTTING_DOWN.into()));
        }
    }

    fn vs_alert(&self, router_id: &str, up: bool, body: String) -> Alert {
        Alert {
            subject: format!(
                "[{router_id}] Virtualserver {} - {}",
                self.name,
                up_down(up)
            ),
            body,
        }
    }
}

/// The body of a mail at shutdown (`omega`).
const SHUTTING_DOWN: &str = "=> Shutting down <=";
/// The body of a mail for a real server a reload removed.
const REMOVING: &str = "=> Removing <=";

/// keepalived's `FMT_VS`: `[IP]:PROTO:PORT`, `FWM N`, `[GROUP]:0`.
pub fn service_name(vs: &VirtualServer) -> String {
    match &vs.addr {
        ServiceAddr::Socket(addr) => trio(*addr, vs.protocol.name()),
        ServiceAddr::Fwmark(mark) => format!("FWM {mark}"),
        // A group's service address is unset in keepalived: port 0.
        ServiceAddr::Group(name) => format!("[{name}]:0"),
    }
}

/// keepalived's `FMT_RS`: the real server's address with the service's protocol.
pub fn real_server_name(vs: &VirtualServer, rs: &RealServer) -> String {
    trio(rs.addr, vs.protocol.name())
}

fn trio(addr: SocketAddr, protocol: &str) -> String {
    format!("[{}]:{protocol}:{}", addr.ip(), addr.port())
}

/// `VS NAME UP|DOWN`.
pub fn vs_line(vs: &str, up: bool) -> String {
    format!("VS {vs} {}\n", up_down(up))
}

/// `RS NAME VS UP|DOWN`.
pub fn rs_line(rs: &str, vs: &str, up: bool) -> String {
    format!("RS {rs} {vs} {}\n", up_down(up))
}

fn up_down(up: bool) -> &'static str {
    if up {
        "UP"
    } else {
        "DOWN"
    }
}

/// keepalived's `SMTP_MSG_RS` mail: the subject names the real server's state.
fn rs_alert(router_id: &str, rs: &str, vs: &str, server_up: bool, body: String) -> Alert {
    Alert {
        subject: format!(
            "[{router_id}] Realserver {rs} of virtual server {vs} - {}",
            up_down(server_up)
        ),
        body,
    }
}

/// The body of the mail keepalived's checker sends for `change`, or `None` when it sends
/// none: a checker mails when its state changes (a `MISC_CHECK` also on its first result);
/// with `no_checker_emails` only when the real server's state changed too.
pub fn checker_mail(change: &CheckerChange<'_>, no_checker_emails: bool) -> Option<String> {
    let misc = matches!(change.kind, CheckerKind::Misc(_));
    let decisive = change.changed || (misc && change.first);
    if !decisive || (no_checker_emails && !change.server_changed) {
        return None;
    }
    let up = change.checker_up;
    let body = match change.kind {
        CheckerKind::Tcp(_) => format!("=> TCP CHECK {} on service <=", succeed(up)),
        CheckerKind::Udp(_) => format!("=> UDP CHECK {} on service <=", succeed(up)),
        CheckerKind::Ping => format!("=> ICMP CHECK {} on service <=", succeed(up)),
        CheckerKind::Http(_) if up => "=> CHECK succeed on service <=".to_owned(),
        CheckerKind::Http(_) => "=> CHECK failed on service : HTTP request failed <=".to_owned(),
        CheckerKind::Misc(_) => format!(
            "=> MISC CHECK {} on service <=",
            if up { "succeeded" } else { "failed" }
        ),
        CheckerKind::Plugin(_) => format!("=> PLUGIN CHECK {} on service <=", succeed(up)),
        CheckerKind::Dns(_) => format!("=> DNS_CHECK: {} on service <=", succeed(up)),
        CheckerKind::Smtp(_) => format!("=> CHECK {} on service <=", succeed(up)),
        // keepalived's tracked-file checker changes the server's state without a mail.
        CheckerKind::File(_) => return None,
    };
    Some(body)
}

fn succeed(up: bool) -> &'static str {
    if up {
        "succeed"
    } else {
        "failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::test_config;
    use wasmalived_config::lvs::TcpCheck;

    fn change(kind: &CheckerKind, up: bool) -> CheckerChange<'_> {
        CheckerChange {
            kind,
            checker_up: up,
            changed: true,
            first: false,
            server_up: up,
            server_changed: true,
        }
    }

    #[test]
    fn names_and_lines_are_keepalived_s() {
        let c = test_config(
            "virtual_server 192.0.2.10 80 {\n real_server 198.51.100.11 8080 {\n }\n}\nvirtual_server 2001:db8::10 53 {\n protocol UDP\n real_server 2001:db8::11 53 {\n }\n}\nvirtual_server fwmark 7 {\n real_server 198.51.100.12 80 {\n }\n}\nvirtual_server_group web {\n 192.0.2.20 80\n}\nvirtual_server group web {\n real_server 198.51.100.13 80 {\n }\n}\n",
        );
        let names: Vec<(String, String)> = c
            .virtual_servers
            .iter()
            .map(|vs| (service_name(vs), real_server_name(vs, &vs.real_servers[0])))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "[192.0.2.10]:tcp:80".into(),
                    "[198.51.100.11]:tcp:8080".into()
                ),
                (
                    "[2001:db8::10]:udp:53".into(),
                    "[2001:db8::11]:udp:53".into()
                ),
                ("FWM 7".into(), "[198.51.100.12]:tcp:80".into()),
                ("[web]:0".into(), "[198.51.100.13]:tcp:80".into()),
            ]
        );
        assert_eq!(
            vs_line("[192.0.2.10]:tcp:80", true),
            "VS [192.0.2.10]:tcp:80 UP\n"
        );
        assert_eq!(
            rs_line("[198.51.100.11]:tcp:80", "[192.0.2.10]:tcp:80", false),
            "RS [198.51.100.11]:tcp:80 [192.0.2.10]:tcp:80 DOWN\n"
        );
    }

    #[test]
    fn mail_subjects_and_bodies_are_keepalived_s() {
        let a = rs_alert(
            "lb1",
            "[198.51.100.11]:tcp:80",
            "[192.0.2.10]:tcp:80",
            false,
            checker_mail(
                &change(&CheckerKind::Tcp(TcpCheck::default()), false),
                false,
            )
            .unwrap(),
        );
        assert_eq!(
            a.subject,
            "[lb1] Realserver [198.51.100.11]:tcp:80 of virtual server [192.0.2.10]:tcp:80 - DOWN"
        );
        assert_eq!(a.body, "=> TCP CHECK failed on service <=");
        let c = test_config("virtual_server 192.0.2.10 80 {\n real_server 198.51.100.11 80 {\n HTTP_GET {\n url {\n path /\n }\n }\n }\n}\n");
        let http = &c.virtual_servers[0].real_servers[0].checkers[0].kind;
        assert_eq!(
            checker_mail(&change(http, true), false).as_deref(),
            Some("=> CHECK succeed on service <=")
        );
        assert_eq!(
            checker_mail(&change(http, false), false).as_deref(),
            Some("=> CHECK failed on service : HTTP request failed <=")
        );
        assert_eq!(
            checker_mail(&change(&CheckerKind::Ping, true), false).as_deref(),
            Some("=> ICMP CHECK succeed on service <=")
        );
    }

    #[test]
    fn which_checker_results_mail() {
        let tcp = CheckerKind::Tcp(TcpCheck::default());
        // No change: no mail (a retry, or a first result confirming the start).
        let same = CheckerChange {
            changed: false,
            first: true,
            ..change(&tcp, true)
        };
        assert_eq!(checker_mail(&same, false), None);
        // A second checker of a server already down fails: a mail, unless no_checker_emails.
        let other = CheckerChange {
            server_changed: false,
            ..change(&tcp, false)
        };
        assert!(checker_mail(&other, false).is_some());
        assert_eq!(checker_mail(&other, true), None);
        assert!(checker_mail(&change(&tcp, false), true).is_some());
        // MISC_CHECK mails its first result too (keepalived's check_misc.c).
        let c = test_config("virtual_server 192.0.2.10 80 {\n real_server 198.51.100.11 80 {\n MISC_CHECK {\n misc_path /bin/true\n }\n }\n}\n");
        let misc = &c.virtual_servers[0].real_servers[0].checkers[0].kind;
        let first = CheckerChange {
            changed: false,
            first: true,
            server_changed: false,
            ..change(misc, true)
        };
        assert_eq!(
            checker_mail(&first, false).as_deref(),
            Some("=> MISC CHECK succeeded on service <=")
        );
    }

    #[test]
    fn precedence_reaches_the_service_settings() {
        let c = test_config("global_defs {\n smtp_alert_checker off\n}\nvirtual_server 192.0.2.10 80 {\n quorum 2\n hysteresis 1\n smtp_alert\n real_server 198.51.100.11 80 {\n weight 2\n smtp_alert on\n }\n real_server 198.51.100.12 80 {\n }\n}\n");
        let s = ServiceAlerts::new(&c.virtual_servers[0], &c);
        assert!(s.mail_quorum);
        assert_eq!(
            s.real_servers,
            [
                ("[198.51.100.11]:tcp:80".to_owned(), true),
                ("[198.51.100.12]:tcp:80".to_owned(), false)
            ]
        );
        let a = s.quorum_mail("lb1", false, false, 1, 1).expect("on");
        assert_eq!(a.subject, "[lb1] Virtualserver [192.0.2.10]:tcp:80 - DOWN");
        assert_eq!(a.body, "=> Lost quorum 2+1=1 <= 1 <=");
        let a = s.quorum_mail("lb1", true, true, 2, 3).expect("on");
        assert_eq!(a.subject, "[lb1] Virtualserver [192.0.2.10]:tcp:80 - UP");
        assert_eq!(a.body, "=> Starting with quorum up 2+1=3 <= 2 <=");
        let off = ServiceAlerts {
            mail_quorum: false,
            ..s
        };
        assert_eq!(off.quorum_mail("lb1", true, false, 2, 3), None);
    }
}
