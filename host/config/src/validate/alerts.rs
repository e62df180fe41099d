//! The `global_defs` keywords of keepalived's notifications beside the notify scripts: the
//! notify FIFOs (`notify_fifo`, `vrrp_notify_fifo`, `lvs_notify_fifo` and their `*_script`),
//! `vrrp_notify_priority_changes`, and the alert mails (`notification_email`,
//! `notification_email_from`, `smtp_server`, `smtp_helo_name`, `smtp_connect_timeout`,
//! `smtp_alert`, `smtp_alert_vrrp`, `smtp_alert_checker`, `no_email_faults`,
//! `no_checker_emails`), as keepalived's `global_parser.c` reads them.

use std::path::PathBuf;
use std::time::Duration;

use super::track::{block_lines, notify_script, run_as};
use crate::compat::{self, flag_args, one_value, read_unsigned, OnReject};
use crate::defaults as def;
use crate::diag::Diags;
use crate::model::{GlobalDefs, NotifyFifo, SmtpServer};
use crate::parser::Node;

/// keepalived's `smtp_connect_timeout` limit (`UINT_MAX / TIMER_HZ`), seconds.
const MAX_SMTP_TIMEOUT: u64 = u32::MAX as u64 / 1_000_000;

/// Applies `node` if it is one of these keywords; `false` otherwise.
pub(crate) fn apply(g: &mut GlobalDefs, node: &Node, d: &mut Diags) -> bool {
    let kw = node.keyword.text.as_str();
    match kw {
        "notify_fifo" => fifo(&mut g.notify_fifo, node, "", d),
        "vrrp_notify_fifo" => fifo(&mut g.vrrp_notify_fifo, node, "vrrp_", d),
        "notify_fifo_script" => fifo_script(&mut g.notify_fifo, node, "", d),
        "vrrp_notify_fifo_script" => fifo_script(&mut g.vrrp_notify_fifo, node, "vrrp_", d),
        "lvs_notify_fifo" => fifo(&mut g.lvs_notify_fifo, node, "lvs_", d),
        "lvs_notify_fifo_script" => fifo_script(&mut g.lvs_notify_fifo, node, "lvs_", d),
        "vrrp_notify_priority_changes" => {
            if let Some(on) = compat::boolean(node, d) {
                g.notify_priority_changes = on;
            }
        }
        "notification_email" => {
            for line in block_lines(node, d) {
                for w in std::iter::once(&line.keyword).chain(&line.args) {
                    g.smtp.to.push(w.text.clone());
                }
            }
        }
        "notification_email_from" => {
            if let Some(w) = one_value(node, d) {
                g.smtp.from = Some(w.text.clone());
            }
        }
        "smtp_server" => smtp_server(g, node, d),
        "smtp_helo_name" => {
            if let Some(w) = one_value(node, d) {
                g.smtp.helo_name = Some(w.text.clone());
            }
        }
        "smtp_connect_timeout" => {
            let Some(w) = one_value(node, d) else {
                return true;
            };
            if let Some(secs) = compat::take_number(
                read_unsigned(&w.text, 0, MAX_SMTP_TIMEOUT, true),
                w,
                kw,
                OnReject::Ignore,
                d,
            ) {
                let secs = if secs == 0 {
                    d.warn(
                        &w.span,
                        "smtp_connect_timeout must be more than 0; using 1, as keepalived does",
                    );
                    1
                } else {
                    secs
                };
                g.smtp.connect_timeout = Duration::from_secs(secs);
            }
        }
        "smtp_alert" => g.smtp.alert = compat::boolean(node, d).or(g.smtp.alert),
        "smtp_alert_vrrp" => g.smtp.alert_vrrp = compat::boolean(node, d).or(g.smtp.alert_vrrp),
        "smtp_alert_checker" => {
            g.smtp.alert_checker = compat::boolean(node, d).or(g.smtp.alert_checker)
        }
        "no_email_faults" => {
            flag_args(node, d);
            g.smtp.no_email_faults = true;
        }
        "no_checker_emails" => {
            if let Some(on) = compat::boolean(node, d) {
                g.smtp.no_checker_emails = on;
            }
        }
        _ => return false,
    }
    true
}

/// `[vrrp_]notify_fifo PATH [USER [GROUP]]`: the first one counts, as in keepalived.
fn fifo(slot: &mut Option<NotifyFifo>, node: &Node, prefix: &str, d: &mut Diags) {
    let Some((path, owner)) = node.args.split_first() else {
        d.warn(
            node.span(),
            format!("no {prefix}notify_fifo name given; ignored, as keepalived does"),
        );
        return;
    };
    if slot
        .as_ref()
        .is_some_and(|f| !f.path.as_os_str().is_empty())
    {
        d.warn(
            &path.span,
            format!(
                "{prefix}notify_fifo already given; '{}' ignored, as keepalived does",
                path.text
            ),
        );
        return;
    }
    let owner = if owner.is_empty() {
        None
    } else {
        match run_as(node, owner, d) {
            Some(o) => Some(o),
            None => return,
        }
    };
    let entry = slot.get_or_insert_with(|| NotifyFifo {
        path: PathBuf::new(),
        owner: None,
        script: None,
    });
    entry.path = PathBuf::from(&path.text);
    entry.owner = owner;
}

/// `[vrrp_]notify_fifo_script CMD [USER [GROUP]]`: the first one counts.
fn fifo_script(slot: &mut Option<NotifyFifo>, node: &Node, prefix: &str, d: &mut Diags) {
    let Some(script) = notify_script(node, d) else {
        return;
    };
    if slot.as_ref().is_some_and(|f| f.script.is_some()) {
        d.warn(
            node.span(),
            format!("{prefix}notify_fifo_script already given; ignored, as keepalived does"),
        );
        return;
    }
    slot.get_or_insert_with(|| NotifyFifo {
        path: PathBuf::new(),
        owner: None,
        script: None,
    })
    .script = Some(script);
}

/// `smtp_server HOST [PORT]`: an address or a host name, and a port (default 25).
fn smtp_server(g: &mut GlobalDefs, node: &Node, d: &mut Diags) {
    let Some((host, rest)) = node.args.split_first() else {
        d.warn(
            node.span(),
            "smtp_server needs a host; ignored, as keepalived does",
        );
        return;
    };
    let port = match rest.first() {
        None => def::SMTP_PORT,
        Some(p) => match p.text.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => {
                d.warn(
                    &p.span,
                    format!(
                        "invalid smtp server {} {}; ignored, as keepalived does",
                        host.text, p.text
                    ),
                );
                return;
            }
        },
    };
    let plausible = !host.text.is_empty()
        && host
            .text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c))
        && !host.text.starts_with('-');
    if !plausible {
        d.warn(
            &host.span,
            format!(
                "invalid smtp server {} {port}; ignored, as keepalived does",
                host.text
            ),
        );
        return;
    }
    g.smtp.server = Some(SmtpServer {
        host: host.text.clone(),
        port,
    });
}

/// What keepalived settles once `global_defs` is read (`global_data.c`): a FIFO script
/// without a FIFO is dropped; a `vrrp_notify_fifo` or `lvs_notify_fifo` naming the
/// `notify_fifo` is ignored; when the LVS and VRRP FIFOs are one and both have a script,
/// the LVS script is ignored.
pub(crate) fn finish(g: &mut GlobalDefs, d: &mut Diags, at: &crate::diag::Span) {
    for (slot, prefix) in [
        (&mut g.notify_fifo, ""),
        (&mut g.vrrp_notify_fifo, "vrrp_"),
        (&mut g.lvs_notify_fifo, "lvs_"),
    ] {
        if slot.as_ref().is_some_and(|f| f.path.as_os_str().is_empty()) {
            d.warn(
                at,
                format!("{prefix}notify_fifo_script without a {prefix}notify_fifo; ignored, as keepalived does"),
            );
            *slot = None;
        }
    }
    if let (Some(global), Some(vrrp)) = (&g.notify_fifo, &g.vrrp_notify_fifo) {
        if global.path == vrrp.path {
            d.warn(
                at,
                format!(
                    "notify FIFO {} is both notify_fifo and vrrp_notify_fifo; vrrp_notify_fifo ignored, as keepalived does",
                    vrrp.path.display()
                ),
            );
            g.vrrp_notify_fifo = None;
        }
    }
    if let (Some(global), Some(lvs)) = (&g.notify_fifo, &g.lvs_notify_fifo) {
        if global.path == lvs.path {
            d.warn(
                at,
                format!(
                    "notify FIFO {} is both notify_fifo and lvs_notify_fifo; lvs_notify_fifo ignored, as keepalived does",
                    lvs.path.display()
                ),
            );
            g.lvs_notify_fifo = None;
        }
    }
    if let (Some(vrrp), Some(lvs)) = (&g.vrrp_notify_fifo, &mut g.lvs_notify_fifo) {
        if vrrp.path == lvs.path && vrrp.script.is_some() && lvs.script.is_some() {
            d.warn(
                at,
                format!(
                    "notify FIFO {} is both vrrp_notify_fifo and lvs_notify_fifo, each with a script; lvs_notify_fifo_script ignored, as keepalived does",
                    lvs.path.display()
                ),
            );
            lvs.script = None;
        }
    }
}
