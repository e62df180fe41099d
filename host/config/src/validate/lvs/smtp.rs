//! `SMTP_CHECK { helo_name NAME; host { … } … }` (keepalived's `check/check_smtp.c`).
//!
//! keepalived turns each deprecated `host { connect_ip …; connect_port …; bindto …;
//! connect_timeout … }` block into a checker of its own (all must pass, as any checkers of a
//! real server), and keeps the block's own checker — against the real server, or the
//! `connect_ip`/`connect_port` written at its level — only when the block sets a connection
//! keyword (`connect_ip`, `connect_port`, `bindto`, `bind_port`, `bind_if`, `fwmark`,
//! `connect_timeout`) or has no `host`. Timing keywords (`retry`, `delay_before_retry`,
//! `delay_loop`, `warmup`, `alpha`) apply to all of them, wherever written; a host's
//! `connect_timeout` defaults to the real server's (not the block's). Defaults: `helo_name`
//! `smtpchecker.keepalived.org`, `retry` 1, `delay_before_retry` 1 s.

use std::net::SocketAddr;

use crate::diag::Diags;
use crate::lvs::{Checker, CheckerKind, SmtpCheck, SMTP_DEFAULT_HELO};
use crate::model::Origin;
use crate::parser::Node;

use super::super::unknown;
use super::super::values::one_arg;
use super::{Connection, Timing};

/// One `host { … }` as read.
struct Host<'n> {
    node: &'n Node,
    conn: Connection,
    connect_timeout: Option<std::time::Duration>,
}

/// The checkers of one `SMTP_CHECK` block of real server `rs` (none if it has errors).
pub(super) fn build(node: &Node, rs: SocketAddr, rs_timing: Timing, d: &mut Diags) -> Vec<Checker> {
    let errors_before = d.error_count();
    if let Some(arg) = node.args.first() {
        d.error(&arg.span, "SMTP_CHECK takes no value, only a block");
    }
    let mut timing = Timing::default();
    let mut conn = Connection::default();
    let mut helo_name = None;
    let mut hosts = Vec::new();
    let lines: &[Node] = node.block.as_ref().map_or(&[], |b| b.nodes.as_slice());
    for line in lines {
        if timing.apply(line, d) || conn.apply(line, d) {
            continue;
        }
        match line.keyword.text.as_str() {
            "helo_name" => helo_name = one_arg(line, d).map(|w| w.text.clone()).or(helo_name),
            "host" => hosts.push(host(line, &mut timing, d)),
            _ => unknown(line, "SMTP_CHECK", d),
        }
    }
    if !hosts.is_empty() {
        d.warn(
            &hosts[0].node.keyword.span,
            "the SMTP_CHECK host block is deprecated (as in keepalived); write one SMTP_CHECK per address",
        );
    }
    if d.error_count() > errors_before {
        return Vec::new();
    }
    let kind = CheckerKind::Smtp(SmtpCheck {
        helo_name: helo_name.unwrap_or_else(|| SMTP_DEFAULT_HELO.to_owned()),
    });
    let own = conn.touched || timing.connect_timeout.is_some() || hosts.is_empty();
    let shared = timing.over(rs_timing);
    let mut checkers = Vec::new();
    if own {
        checkers.push(Checker {
            kind: kind.clone(),
            target: conn.target(rs),
            bind: conn.bind,
            timing: shared.resolve("SMTP_CHECK"),
            origin: Origin(node.span().clone()),
        });
    }
    for h in hosts {
        let timing = Timing {
            connect_timeout: h.connect_timeout.or(rs_timing.connect_timeout),
            ..shared
        };
        checkers.push(Checker {
            kind: kind.clone(),
            target: h.conn.target(rs),
            bind: h.conn.bind,
            timing: timing.resolve("SMTP_CHECK"),
            origin: Origin(h.node.span().clone()),
        });
    }
    checkers
}

/// One `host { … }`: its connection keywords; timing keywords go to the block's `timing`.
fn host<'n>(node: &'n Node, timing: &mut Timing, d: &mut Diags) -> Host<'n> {
    let mut h = Host {
        node,
        conn: Connection::default(),
        connect_timeout: None,
    };
    if node.block.is_none() {
        d.error(node.span(), "host needs a block { connect_ip … }");
    }
    for line in node.block.as_ref().map_or(&[][..], |b| b.nodes.as_slice()) {
        if line.keyword.text == "connect_timeout" {
            let mut own = Timing::default();
            own.apply(line, d);
            h.connect_timeout = own.connect_timeout.or(h.connect_timeout);
        } else if !(timing.apply(line, d) || h.conn.apply(line, d)) {
            unknown(line, "host", d);
        }
    }
    h
}
