//! keepalived's notifications beside the notify scripts ([`crate::notify`]): the notify FIFO
//! lines ([`fifo`]), the alert mails ([`mail`]) and what the LVS director says in both
//! ([`lvs`]).
//!
//! The daemon builds one [`Alerts`] per configuration ([`Alerts::prepare`]) and hands it to
//! the router driver, which calls [`Alerts::state_changed`] for every notify hook it runs and
//! [`Alerts::priority_changed`] when tracking moves an instance's priority, and to the LVS
//! director ([`lvs::ServiceAlerts`]). Nothing waits: a FIFO write is non-blocking and a mail
//! is queued (see the modules).
//!
//! Which FIFO gets which lines (keepalived's `notify_fifo_vs`/`_rs`, `vrrp_notify.c`):
//! `notify_fifo` every line, `vrrp_notify_fifo` the VRRP ones, `lvs_notify_fifo` the LVS
//! ones. Two keywords naming one path share one open FIFO.

pub mod fifo;
pub mod lvs;
pub mod mail;

use std::collections::HashSet;
use std::sync::Arc;

use tracing::error;
use wasmalived_config::{self as config, Config};

use self::fifo::FifoSink;
use self::mail::{Alert, AlertState, Mailer, Subject};
use crate::notify::{NotifyKind, NotifyState};

/// Everything a configuration asks to be told about state and priority changes.
#[derive(Debug, Default)]
pub struct Alerts {
    /// `notify_fifo`: every line.
    global_fifo: Option<Arc<FifoSink>>,
    /// `vrrp_notify_fifo`: the VRRP lines.
    vrrp_fifo: Option<Arc<FifoSink>>,
    /// `lvs_notify_fifo`: the LVS director's lines.
    lvs_fifo: Option<Arc<FifoSink>>,
    mailer: Option<Mailer>,
    router_id: String,
    no_email_faults: bool,
    no_checker_emails: bool,
    /// Instances with `notify_priority_changes` in force.
    priority_changes: HashSet<String>,
    /// Instances whose `smtp_alert` is on.
    mail_instances: HashSet<String>,
    /// Sync groups whose `smtp_alert` is on.
    mail_groups: HashSet<String>,
}

impl Alerts {
    /// Open the FIFOs and start the mailer of `config`. FIFOs already open with the same
    /// settings (`previous`, on reload) are kept, so a reader never sees its FIFO vanish.
    /// What cannot be set up is logged and left out, as keepalived does.
    pub fn prepare(config: &Config, previous: Option<&Alerts>) -> Alerts {
        let g = &config.global;
        let host = host_name();
        // One FIFO for the VRRP and LVS lines: its reader is either one's script.
        let mut vrrp_fifo = g.vrrp_notify_fifo.clone();
        if let (Some(vrrp), Some(lvs)) = (&mut vrrp_fifo, &g.lvs_notify_fifo) {
            if vrrp.path == lvs.path && vrrp.script.is_none() {
                vrrp.script.clone_from(&lvs.script);
            }
        }
        let mut opened: Vec<Arc<FifoSink>> = previous
            .map(|p| p.fifos().cloned().collect())
            .unwrap_or_default();
        let mut sink = |keyword: &str, fifo: Option<&config::NotifyFifo>| {
            let fifo = fifo?;
            if let Some(kept) = opened.iter().find(|f| f.path() == fifo.path) {
                return Some(kept.clone());
            }
            match open_fifo(fifo, g) {
                Ok(sink) => {
                    let sink = Arc::new(sink);
                    opened.push(sink.clone());
                    Some(sink)
                }
                Err(err) => {
                    error!("{keyword}: {err}");
                    None
                }
            }
        };
        let global_fifo = sink("notify_fifo", g.notify_fifo.as_ref());
        let vrrp_fifo = sink("vrrp_notify_fifo", vrrp_fifo.as_ref());
        let lvs_fifo = sink("lvs_notify_fifo", g.lvs_notify_fifo.as_ref());
        let mailer = match Mailer::spawn(&g.smtp, &host) {
            Ok(m) => m,
            Err(err) => {
                error!("alert mails disabled: {err}");
                None
            }
        };
        Alerts {
            global_fifo,
            vrrp_fifo,
            lvs_fifo,
            mailer,
            router_id: g.router_id.clone().unwrap_or(host),
            no_email_faults: g.smtp.no_email_faults,
            no_checker_emails: g.smtp.no_checker_emails,
            priority_changes: config
                .instances
                .iter()
                .filter(|i| config.notify_priority_changes(i))
                .map(|i| i.name.clone())
                .collect(),
            mail_instances: config
                .instances
                .iter()
                .filter(|i| config.instance_smtp_alert(i))
                .map(|i| i.name.clone())
                .collect(),
            mail_groups: config
                .sync_groups
                .iter()
                .filter(|s| config.group_smtp_alert(s))
                .map(|s| s.name.clone())
                .collect(),
        }
    }

    /// `name` (an instance, or a group) entered `state`: a FIFO line and, if its
    /// `smtp_alert` is on, a mail (keepalived's `send_instance_notifies` /
    /// `send_group_notifies`).
    pub fn state_changed(&self, kind: NotifyKind, name: &str, state: NotifyState, priority: u8) {
        let (word, alert_state) = match state {
            NotifyState::Master => ("MASTER", AlertState::Master),
            NotifyState::Backup => ("BACKUP", AlertState::Backup),
            NotifyState::Fault => ("FAULT", AlertState::Fault),
            NotifyState::Stop => ("STOP", AlertState::Stop),
            // Ours; keepalived's FIFO readers do not expect it.
            NotifyState::SplitBrain | NotifyState::SplitBrainCleared => return,
        };
        let (kind_word, subject, mails) = match kind {
            NotifyKind::Instance => ("INSTANCE", Subject::Instance, &self.mail_instances),
            NotifyKind::Group => ("GROUP", Subject::Group, &self.mail_groups),
        };
        self.write_vrrp(&fifo::state_line(kind_word, name, word, priority));
        let faults_muted = self.no_email_faults && alert_state == AlertState::Fault;
        if let (Some(mailer), true, false) = (&self.mailer, mails.contains(name), faults_muted) {
            mailer.send(Alert::state_change(
                &self.router_id,
                subject,
                name,
                alert_state,
            ));
        }
    }

    /// Tracking moved the effective priority of instance `name` (not in Fault): with
    /// `notify_priority_changes`, a `MASTER_PRIORITY` or `BACKUP_PRIORITY` line
    /// (keepalived's `send_instance_priority_notifies`).
    pub fn priority_changed(&self, name: &str, master: bool, priority: u8) {
        if self.priority_changes.contains(name) {
            let word = if master {
                "MASTER_PRIORITY"
            } else {
                "BACKUP_PRIORITY"
            };
            self.write_vrrp(&fifo::state_line("INSTANCE", name, word, priority));
        }
    }

    /// The router id mails are signed with (`router_id`, else the host name).
    pub fn router_id(&self) -> &str {
        &self.router_id
    }

    /// `no_checker_emails`: checker mails only when a real server's state changes.
    pub fn no_checker_emails(&self) -> bool {
        self.no_checker_emails
    }

    /// Queue `alert` if mails are configured (`smtp_server` and `notification_email`).
    pub fn mail(&self, alert: Alert) {
        if let Some(mailer) = &self.mailer {
            mailer.send(alert);
        }
    }

    /// Write an LVS director line to `notify_fifo` and `lvs_notify_fifo`.
    pub fn write_lvs(&self, line: &str) {
        self.write_to(line, self.lvs_fifo.as_ref());
    }

    fn write_vrrp(&self, line: &str) {
        self.write_to(line, self.vrrp_fifo.as_ref());
    }

    fn write_to(&self, line: &str, own: Option<&Arc<FifoSink>>) {
        for fifo in self.global_fifo.iter().chain(own) {
            fifo.write_line(line);
        }
    }

    /// Every open FIFO (a shared one once).
    fn fifos(&self) -> impl Iterator<Item = &Arc<FifoSink>> {
        let mut seen: Vec<&Arc<FifoSink>> = Vec::new();
        for f in [&self.global_fifo, &self.vrrp_fifo, &self.lvs_fifo]
            .into_iter()
            .flatten()
        {
            if !seen.iter().any(|s| Arc::ptr_eq(s, f)) {
                seen.push(f);
            }
        }
        seen.into_iter()
    }
}

fn open_fifo(fifo: &config::NotifyFifo, global: &config::GlobalDefs) -> anyhow::Result<FifoSink> {
    let owner = match &fifo.owner {
        Some(o) => {
            let resolved = wasmalived_sys::user::RunAs::resolve(&o.user, o.group.as_deref())?;
            Some((resolved.uid, resolved.gid))
        }
        None => None,
    };
    let script = match &fifo.script {
        Some(s) => Some(crate::programs::hook(&s.argv, s.user.as_ref(), global)?),
        None => None,
    };
    Ok(FifoSink::open(&fifo.path, owner, script.as_ref())?)
}

/// The host name (keepalived's default `router_id`, HELO name and sender host).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    fn read_all(path: &std::path::Path) -> String {
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .expect("reader");
        let mut got = String::new();
        reader.read_to_string(&mut got).ok();
        got
    }

    #[tokio::test]
    async fn each_fifo_gets_its_lines_and_a_shared_one_gets_them_once() {
        let dir = std::env::temp_dir().join(format!("wa-alerts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (all, vrrp, lvs) = (dir.join("all"), dir.join("vrrp"), dir.join("lvs"));
        let config = |lvs_path: &std::path::Path| {
            crate::lvs::test_config(&format!(
                "global_defs {{\n notify_fifo {}\n vrrp_notify_fifo {}\n lvs_notify_fifo {}\n}}\n",
                all.display(),
                vrrp.display(),
                lvs_path.display()
            ))
        };
        let alerts = Alerts::prepare(&config(&lvs), None);
        alerts.state_changed(NotifyKind::Instance, "VI_1", NotifyState::Master, 100);
        alerts.write_lvs("VS [192.0.2.10]:tcp:80 UP\n");
        assert_eq!(
            read_all(&all),
            "INSTANCE \"VI_1\" MASTER 100\nVS [192.0.2.10]:tcp:80 UP\n"
        );
        assert_eq!(read_all(&vrrp), "INSTANCE \"VI_1\" MASTER 100\n");
        assert_eq!(read_all(&lvs), "VS [192.0.2.10]:tcp:80 UP\n");
        // The LVS FIFO naming the VRRP one: one FIFO, both kinds of lines, each once; the
        // FIFOs already open are kept across the reload.
        let reloaded = Alerts::prepare(&config(&vrrp), Some(&alerts));
        assert!(Arc::ptr_eq(
            reloaded.vrrp_fifo.as_ref().unwrap(),
            reloaded.lvs_fifo.as_ref().unwrap()
        ));
        assert!(Arc::ptr_eq(
            reloaded.global_fifo.as_ref().unwrap(),
            alerts.global_fifo.as_ref().unwrap()
        ));
        reloaded.write_lvs("RS [198.51.100.11]:tcp:80 [192.0.2.10]:tcp:80 DOWN\n");
        reloaded.state_changed(NotifyKind::Group, "G", NotifyState::Backup, 0);
        assert_eq!(
            read_all(&vrrp),
            "RS [198.51.100.11]:tcp:80 [192.0.2.10]:tcp:80 DOWN\nGROUP \"G\" BACKUP 0\n"
        );
        assert_eq!(reloaded.fifos().count(), 2);
        drop((alerts, reloaded));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
