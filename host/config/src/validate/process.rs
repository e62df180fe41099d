//! `vrrp_track_process NAME { … }`, read as keepalived 2.2.7 reads it
//! (`keepalived/vrrp/vrrp_parser.c`: `vrrp_tprocess_*_handler`).

use std::time::Duration;

use super::values::no_block;
use super::{section_name, unknown, Places};
use crate::compat::{read_decimal, read_int, read_unsigned, take_number, OnReject};
use crate::diag::Diags;
use crate::model::{Origin, ParamMatch, ProcessPattern, VrrpTrackProcess};
use crate::parser::Node;

/// keepalived's limit on `delay`, `fork_delay`, `terminate_delay`: an hour, in µs.
const MAX_DELAY_US: u64 = 3600 * 1_000_000;
/// The kernel's `comm` holds 15 bytes (TASK_COMM_LEN - 1).
const MAX_COMM: usize = 15;

/// What the block said, keyword by keyword, in keepalived's order of effects.
struct Draft {
    pattern: Option<ProcessPattern>,
    param_match: Option<ParamMatch>,
    full_command: bool,
    quorum: u32,
    quorum_max: u32,
    fork_delay: Option<Duration>,
    terminate_delay: Option<Duration>,
    weight: Option<(i32, bool)>,
}

/// Builds one `vrrp_track_process`; `None` when keepalived drops it (no `process`).
pub(crate) fn build(
    node: &Node,
    ordinal: usize,
    d: &mut Diags,
) -> Option<(VrrpTrackProcess, Places)> {
    let name = section_name(node, d)?;
    let body = node.block.as_ref()?;
    let mut draft = Draft {
        pattern: None,
        param_match: None,
        full_command: false,
        quorum: 1,
        quorum_max: u32::MAX,
        fork_delay: None,
        terminate_delay: None,
        weight: None,
    };
    for child in &body.nodes {
        apply(&mut draft, name, child, d);
    }
    let Some(mut pattern) = draft.pattern else {
        d.warn(
            body.end(),
            format!("vrrp_track_process {name}: process name not specified; removed, as keepalived does"),
        );
        return None;
    };
    // keepalived: parameters imply `param_match` exact; `param_match` and parameters imply
    // `full_command`.
    pattern.param_match = draft.param_match.or(if pattern.params.is_empty() {
        None
    } else {
        Some(ParamMatch::Exact)
    });
    pattern.full_command = draft.full_command || pattern.param_match.is_some();
    if !pattern.full_command && pattern.name.len() > MAX_COMM {
        d.warn(
            node.span(),
            format!(
                "vrrp_track_process {name}: process '{}' is longer than the {MAX_COMM} bytes of a process name (comm), so it never matches; add full_command to compare the command line",
                pattern.name
            ),
        );
    }
    let (weight, weight_reverse) = draft.weight.unwrap_or((0, false));
    let process = VrrpTrackProcess {
        name: name.to_owned(),
        pattern,
        quorum: draft.quorum,
        quorum_max: draft.quorum_max,
        fork_delay: draft.fork_delay,
        terminate_delay: draft.terminate_delay,
        weight,
        weight_reverse,
        origin: Origin(node.span().clone()),
    };
    Some((process, Places::new(ordinal, node.span().clone())))
}

fn apply(s: &mut Draft, name: &str, node: &Node, d: &mut Diags) {
    let kw = node.keyword.text.as_str();
    let owner = format!("vrrp_track_process {name}");
    match kw {
        "process" => {
            no_block(node, d);
            let Some((path, params)) = node.args.split_first() else {
                d.warn(
                    node.span(),
                    format!("{owner}: process needs a name; ignored"),
                );
                return;
            };
            if s.pattern.is_some() {
                d.warn(
                    node.span(),
                    format!(
                        "{owner}: process already set; '{}' ignored, as keepalived does",
                        path.text
                    ),
                );
                return;
            }
            s.pattern = Some(ProcessPattern {
                name: path.text.clone(),
                params: params.iter().map(|w| w.text.clone()).collect(),
                param_match: None,
                full_command: false,
            });
        }
        "param_match" => {
            no_block(node, d);
            s.param_match = match node.args.first().map(|w| w.text.as_str()) {
                None => Some(ParamMatch::Exact),
                Some("initial") => Some(ParamMatch::Initial),
                Some("partial") => Some(ParamMatch::Partial),
                Some(other) => {
                    d.warn(
                        &node.args[0].span,
                        format!("{owner}: invalid param_match type '{other}' (expected initial or partial, or none for exact); ignored, as keepalived does"),
                    );
                    return;
                }
            };
            s.full_command = true;
        }
        "full_command" => {
            no_block(node, d);
            s.full_command = true;
        }
        "weight" => weight(s, &owner, node, d),
        "quorum" => {
            let Some(word) = value(node, &owner, d) else {
                return;
            };
            let Some(q) = take_number(
                read_unsigned(&word.text, 1, 65535, true),
                word,
                "quorum",
                OnReject::Ignore,
                d,
            ) else {
                return;
            };
            let q = u32::try_from(q).unwrap_or(u32::MAX);
            if q > s.quorum_max {
                d.warn(
                    &word.span,
                    format!("{owner}: quorum {q} is greater than quorum_max {}; ignored, as keepalived does", s.quorum_max),
                );
                return;
            }
            s.quorum = q;
        }
        "quorum_max" => {
            let Some(word) = value(node, &owner, d) else {
                return;
            };
            let Some(max) = take_number(
                read_unsigned(&word.text, 0, 65535, true),
                word,
                "quorum_max",
                OnReject::Ignore,
                d,
            ) else {
                return;
            };
            let max = u32::try_from(max).unwrap_or(u32::MAX);
            // keepalived allows quorum_max 0 while quorum is the default 1.
            if (max != 0 || s.quorum > 1) && max < s.quorum {
                d.warn(
                    &word.span,
                    format!("{owner}: quorum_max {max} is less than quorum {}; ignored, as keepalived does", s.quorum),
                );
                return;
            }
            s.quorum_max = max;
            if max == 0 {
                s.quorum = 0;
            } else if s.quorum == 0 {
                s.quorum = 1;
            }
        }
        "delay" | "fork_delay" | "terminate_delay" => {
            let Some(word) = value(node, &owner, d) else {
                return;
            };
            let Some(us) = take_number(
                read_decimal(&word.text, 1, MAX_DELAY_US, 6, true),
                word,
                kw,
                OnReject::Ignore,
                d,
            ) else {
                return;
            };
            let delay = Some(Duration::from_micros(us));
            if kw != "fork_delay" {
                s.terminate_delay = delay;
            }
            if kw != "terminate_delay" {
                s.fork_delay = delay;
            }
        }
        _ => unknown(node, "vrrp_track_process", d),
    }
}

/// `weight N [reverse]` (−254..=254; a second `weight` is ignored, as keepalived does).
fn weight(s: &mut Draft, owner: &str, node: &Node, d: &mut Diags) {
    no_block(node, d);
    let Some((word, rest)) = node.args.split_first() else {
        d.warn(
            node.span(),
            format!("{owner}: no weight specified; ignored, as keepalived does"),
        );
        return;
    };
    if s.weight.is_some_and(|(w, _)| w != 0) {
        d.warn(
            node.span(),
            format!(
                "{owner}: weight already set; '{}' ignored, as keepalived does",
                word.text
            ),
        );
        return;
    }
    let Some(w) = take_number(
        read_int(&word.text, -254, 254, true),
        word,
        "weight",
        OnReject::Ignore,
        d,
    ) else {
        return;
    };
    let reverse = match rest.first() {
        None => false,
        Some(r) if r.text == "reverse" => true,
        Some(r) => {
            d.warn(
                &r.span,
                format!(
                    "{owner}: unknown weight option '{}'; ignored, as keepalived does",
                    r.text
                ),
            );
            false
        }
    };
    s.weight = Some((i32::try_from(w).unwrap_or(0), reverse));
}

/// The value of a numeric keyword (keepalived reads the first word).
fn value<'n>(node: &'n Node, owner: &str, d: &mut Diags) -> Option<&'n crate::lexer::Word> {
    no_block(node, d);
    let word = node.args.first();
    if word.is_none() {
        d.warn(
            node.span(),
            format!(
                "{owner}: {} needs a value; ignored, as keepalived does",
                node.keyword.text
            ),
        );
    }
    word
}
