//! Alert mails (keepalived's `smtp_alert`, `keepalived/core/smtp.c`), sent off the protocol
//! loop: the driver queues a mail without waiting ([`Mailer::send`]); one task sends them in
//! order, each bounded by `smtp_connect_timeout`. A full queue drops the mail (counted and
//! logged), so a dead or slow SMTP server can never delay VRRP.
//!
//! The mail is keepalived's: `Subject: [ROUTER_ID] VRRP Instance NAME - Entering MASTER
//! state` (or `VRRP Group NAME - …`) and a one-line body such as `=> VRRP Instance is now
//! owning VRRP VIPs <=`, from `notification_email_from` to every `notification_email`,
//! with `HELO smtp_helo_name`, no TLS (keepalived has none).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument as _};
use wasmalived_config::SmtpSettings;

/// Mails queued and not yet sent; beyond this new ones are dropped.
pub const MAIL_QUEUE: usize = 32;

/// One alert: subject and body as keepalived writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The `Subject:` line.
    pub subject: String,
    /// The body.
    pub body: String,
}

/// What the instance or group is, for the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `VRRP Instance NAME`.
    Instance,
    /// `VRRP Group NAME`.
    Group,
}

/// A state an alert is sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Became Master.
    Master,
    /// Became Backup.
    Backup,
    /// Entered Fault.
    Fault,
    /// Stopped.
    Stop,
}

impl Alert {
    /// keepalived's alert for `name` entering `state` (`vrrp_smtp_notifier`,
    /// `vrrp_sync_smtp_notifier`).
    pub fn state_change(router_id: &str, what: Subject, name: &str, state: AlertState) -> Self {
        let (event, body) = match (what, state) {
            (Subject::Instance, AlertState::Master) => (
                "Entering MASTER state",
                "=> VRRP Instance is now owning VRRP VIPs <=",
            ),
            (Subject::Instance, AlertState::Backup) => (
                "Entering BACKUP state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            (Subject::Instance, AlertState::Fault) => (
                "Entering FAULT state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            (Subject::Instance, AlertState::Stop) => ("Stopping", "=> VRRP Instance stopping <="),
            (Subject::Group, AlertState::Master) => (
                "Entering MASTER state",
                "=> All VRRP group instances are now in MASTER state <=",
            ),
            (Subject::Group, AlertState::Backup) => (
                "Entering BACKUP state",
                "=> All VRRP group instances are now in BACKUP state <=",
            ),
            (Subject::Group, AlertState::Fault) => (
                "Entering FAULT state",
                "=> All VRRP group instances are now in FAULT state <=",
            ),
            (Subject::Group, AlertState::Stop) => (
                "Stopping",
                "=> All VRRP group instances are now stopping <=",
            ),
        };
        let kind = match what {
            Subject::Instance => "VRRP Instance",
            Subject::Group => "VRRP Group",
        };
        Alert {
            subject: format!("[{router_id}] {kind} {name} - {event}"),
            body: body.to_owned(),
        }
    }
}

/// Why the mail settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    /// `notification_email_from` or a `notification_email` is not a mail address.
    #[error("bad mail address '{address}': {source}")]
    Address {
        /// As configured.
        address: String,
        /// Cause.
        source: lettre::address::AddressError,
    },
}

/// The queue of alert mails; cloning shares it.
#[derive(Debug, Clone)]
pub struct Mailer {
    tx: mpsc::Sender<Alert>,
    dropped: Arc<AtomicU64>,
}

impl Mailer {
    /// Start the sending task for `settings` (`None` when mails cannot be sent: no
    /// `smtp_server` or no `notification_email`, as in keepalived). `host_name` is the
    /// default HELO name and the host part of the default sender.
    pub fn spawn(settings: &SmtpSettings, host_name: &str) -> Result<Option<Self>, MailSetupError> {
        let Some(server) = settings.server.clone().filter(|_| settings.enabled()) else {
            return Ok(None);
        };
        let from_text = settings
            .from
            .clone()
            .unwrap_or_else(|| format!("{}@{host_name}", current_user()));
        let from = mailbox(&from_text)?;
        let to = settings
            .to
            .iter()
            .map(|t| mailbox(t))
            .collect::<Result<Vec<_>, _>>()?;
        let helo = settings
            .helo_name
            .clone()
            .unwrap_or_else(|| host_name.to_owned());
        let timeout = settings.connect_timeout;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
            .port(server.port)
            .hello_name(ClientId::Domain(helo))
            .timeout(Some(timeout))
            .build();
        let (tx, mut rx) = mpsc::channel::<Alert>(MAIL_QUEUE);
        let span =
            tracing::info_span!("smtp", server = %format!("{}:{}", server.host, server.port));
        tokio::spawn(
            async move {
                while let Some(alert) = rx.recv().await {
                    deliver(&transport, &from, &to, alert, timeout).await;
                }
            }
            .instrument(span),
        );
        Ok(Some(Mailer {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }))
    }

    /// Queue `alert` without waiting; a full queue drops it (counted, logged).
    pub fn send(&self, alert: Alert) {
        if let Err(err) = self.tx.try_send(alert) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                let subject = match &err {
                    mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a) => {
                        a.subject.clone()
                    }
                };
                warn!(%subject, dropped, "alert mail queue full (SMTP server slow or down): mail dropped");
            }
        }
    }

    /// Mails dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn mailbox(address: &str) -> Result<Mailbox, MailSetupError> {
    address.parse().map_err(|source| MailSetupError::Address {
        address: address.to_owned(),
        source,
    })
}

/// The daemon's user name (keepalived's default sender is `USER@HOST`).
fn current_user() -> String {
    if rustix::process::geteuid().is_root() {
        "root".to_owned()
    } else {
        std::env::var("USER").unwrap_or_else(|_| "wasmalived".to_owned())
    }
}

/// Send one mail, bounded by `timeout` (lettre's own timeout bounds each socket operation;
/// this bounds the whole exchange).
async fn deliver(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    to: &[Mailbox],
    alert: Alert,
    timeout: Duration,
) {
    let mut builder = Message::builder().from(from.clone()).date_now();
    for rcpt in to {
        builder = builder.to(rcpt.clone());
    }
    let message = match builder.subject(alert.subject.clone()).body(alert.body) {
        Ok(m) => m,
        Err(err) => {
            warn!(subject = %alert.subject, error = %err, "alert mail not built");
            return;
        }
    };
    match tokio::time::timeout(timeout, transport.send(message)).await {
        Ok(Ok(response)) => {
            info!(subject = %alert.subject, code = %response.code(), "alert mail sent");
        }
        Ok(Err(err)) => warn!(subject = %alert.subject, error = %err, "alert mail not sent"),
        Err(_) => {
            warn!(subject = %alert.subject, ?timeout, "alert mail not sent: SMTP server did not answer in time")
        }
    }
    debug!("alert mail done");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_bodies_are_keepalived_s() {
        let a = Alert::state_change("lb1", Subject::Instance, "VI_1", AlertState::Master);
        assert_eq!(
            a.subject,
            "[lb1] VRRP Instance VI_1 - Entering MASTER state"
        );
        assert_eq!(a.body, "=> VRRP Instance is now owning VRRP VIPs <=");
        let a = Alert::state_change("lb1", Subject::Group, "G", AlertState::Fault);
        assert_eq!(a.subject, "[lb1] VRRP Group G - Entering FAULT state");
        assert_eq!(
            a.body,
            "=> All VRRP group instances are now in FAULT state <="
        );
        let a = Alert::state_change("r", Subject::Instance, "V", AlertState::Stop);
        assert_eq!(a.subject, "[r] VRRP Instance V - Stopping");
    }

    #[tokio::test]
    async fn no_server_or_no_recipient_means_no_mailer() {
        let mut s = SmtpSettings::default();
        assert!(Mailer::spawn(&s, "h").unwrap().is_none());
        s.to.push("ops@example.org".into());
        assert!(Mailer::spawn(&s, "h").unwrap().is_none());
        s.server = Some(wasmalived_config::SmtpServer {
            host: "192.0.2.1".into(),
            port: 25,
        });
        assert!(Mailer::spawn(&s, "h").unwrap().is_some());
        s.to.push("not an address".into());
        assert!(Mailer::spawn(&s, "h").is_err());
    }

    #[tokio::test]
    async fn a_server_that_never_answers_only_drops_mails() {
        // A listener that accepts and never speaks: sends wait, the queue fills, `send`
        // never blocks.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let s = SmtpSettings {
            server: Some(wasmalived_config::SmtpServer {
                host: "127.0.0.1".into(),
                port,
            }),
            to: vec!["ops@example.org".into()],
            connect_timeout: Duration::from_secs(30),
            ..SmtpSettings::default()
        };
        let mailer = Mailer::spawn(&s, "h").unwrap().unwrap();
        for _ in 0..MAIL_QUEUE * 2 + 2 {
            mailer.send(Alert::state_change(
                "r",
                Subject::Instance,
                "V",
                AlertState::Master,
            ));
        }
        // `send` is synchronous: reaching this line means it never waited for the server.
        assert!(mailer.dropped() >= MAIL_QUEUE as u64);
    }
}
