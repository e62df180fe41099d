//! `vrrp_rt_priority`, `vrrp_cpu_affinity`, `vrrp_no_swap`, `vrrp_priority` (global_defs):
//! how the protocol threads run; `checker_priority`: how the plugin executor threads run.
//! Read as keepalived 2.2.7 reads them (`core/global_parser.c`, `get_realtime_priority`,
//! `get_cpu_affinity`, `vrrp_no_swap_handler`, `get_priority`):
//! - a nice value (`vrrp_priority`, `checker_priority`) outside -20–19, or not a number, is
//!   an error keepalived reports and then ignores (the default stays); so here: a warning
//!   with its place, the setting ignored (an error with `--strict`);
//! - a priority outside `SCHED_RR`'s 1–99 is clamped to it (a warning); one that is not a
//!   number is ignored;
//! - one bad CPU number voids the whole affinity list (keepalived resets the set at the first
//!   error);
//! - `vrrp_no_swap` is a flag.

use crate::compat::{flag_args, read_int, Reading};
use crate::defaults as def;
use crate::diag::Diags;
use crate::model::{CheckerThreads, ProtocolThreads};
use crate::parser::Node;

use super::values::no_block;

/// Apply `node` if it is one of these keywords; false if it is not.
pub(crate) fn apply(
    t: &mut ProtocolThreads,
    checkers: &mut CheckerThreads,
    node: &Node,
    d: &mut Diags,
) -> bool {
    match node.keyword.text.as_str() {
        "vrrp_priority" => {
            if let Some(n) = nice(node, "vrrp", d) {
                t.nice = Some(n);
            }
        }
        "checker_priority" => {
            if let Some(n) = nice(node, "checker", d) {
                checkers.nice = Some(n);
            }
        }
        "vrrp_rt_priority" => {
            if let Some(p) = rt_priority(node, d) {
                t.rt_priority = Some(p);
            }
        }
        "vrrp_cpu_affinity" => {
            if let Some(cpus) = cpu_affinity(node, d) {
                t.cpu_affinity = cpus;
            }
        }
        "vrrp_no_swap" => {
            flag_args(node, d);
            t.no_swap = true;
        }
        _ => return false,
    }
    true
}

fn rt_priority(node: &Node, d: &mut Diags) -> Option<u8> {
    no_block(node, d);
    let Some(w) = node.args.first() else {
        d.warn(
            node.span(),
            "vrrp_rt_priority needs a priority (1-99); ignored, as keepalived does",
        );
        return None;
    };
    let (min, max) = (def::RT_PRIORITY_MIN, def::RT_PRIORITY_MAX);
    let value = match read_int(&w.text, i64::MIN, i64::MAX, true) {
        Reading::Exact(v) | Reading::Adjusted { value: v, .. } => v,
        Reading::Rejected { why } => {
            d.warn(
                &w.span,
                format!(
                    "bad vrrp_rt_priority '{}' ({why}); ignored, as keepalived does",
                    w.text
                ),
            );
            return None;
        }
    };
    let clamped = value.clamp(i64::from(min), i64::from(max));
    if clamped != value {
        d.warn(
            &w.span,
            format!("vrrp_rt_priority {value} is outside {min}-{max}; {clamped} used, as keepalived does"),
        );
    }
    u8::try_from(clamped).ok()
}

/// A nice value, as keepalived's `get_priority` reads it: a whole number in -20–19
/// (`process` names whose: `vrrp`, `checker`).
fn nice(node: &Node, process: &str, d: &mut Diags) -> Option<i8> {
    no_block(node, d);
    let keyword = &node.keyword.text;
    let Some(w) = node.args.first() else {
        d.warn(
            node.span(),
            format!("{keyword} needs a nice value (-20-19): no {process} priority given; ignored, as keepalived does"),
        );
        return None;
    };
    let (min, max) = (def::NICE_MIN, def::NICE_MAX);
    match read_int(&w.text, i64::from(min), i64::from(max), false) {
        Reading::Exact(v) => i8::try_from(v).ok(),
        Reading::Adjusted { why, .. } | Reading::Rejected { why } => {
            d.warn(
                &w.span,
                format!(
                    "invalid {process} priority '{}' for {keyword} ({why}: a nice value); ignored, as keepalived does",
                    w.text
                ),
            );
            None
        }
    }
}

fn cpu_affinity(node: &Node, d: &mut Diags) -> Option<Vec<u16>> {
    no_block(node, d);
    if node.args.is_empty() {
        d.warn(
            node.span(),
            "vrrp_cpu_affinity needs at least one CPU number; ignored, as keepalived does",
        );
        return None;
    }
    let mut cpus = Vec::new();
    for w in &node.args {
        match read_int(&w.text, 0, i64::from(def::MAX_CPU_ID), false) {
            Reading::Exact(v) => {
                let cpu = u16::try_from(v).unwrap_or(def::MAX_CPU_ID);
                if !cpus.contains(&cpu) {
                    cpus.push(cpu);
                }
            }
            Reading::Adjusted { why, .. } | Reading::Rejected { why } => {
                d.warn(
                    &w.span,
                    format!(
                        "bad CPU '{}' in vrrp_cpu_affinity ({why}); the whole list is ignored, as keepalived does",
                        w.text
                    ),
                );
                return Some(Vec::new());
            }
        }
    }
    Some(cpus)
}
