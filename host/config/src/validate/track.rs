//! Pieces shared by instances and sync groups: `track_script`, `track_interface`,
//! `notify_*`, run-as users; and `vrrp_sync_group` itself.

use super::values::{command, no_block};
use super::{section_name, unknown, Places};
use crate::compat::{self, read_int, OnReject};
use crate::defaults::MAX_WEIGHT;
use crate::diag::{Diags, Span};
use crate::lexer::Word;
use crate::model::{
    Notify, NotifyScript, Origin, RunAs, TrackInterface, TrackProcess, TrackScript, VrrpSyncGroup,
    WeightOverride,
};
use crate::parser::Node;

/// `USER [GROUP]` from `words`; `None` (and an error if malformed) otherwise.
pub(crate) fn run_as(node: &Node, words: &[Word], d: &mut Diags) -> Option<RunAs> {
    no_block(node, d);
    match words {
        [user] => Some(RunAs {
            user: user.text.clone(),
            group: None,
        }),
        [user, group] => Some(RunAs {
            user: user.text.clone(),
            group: Some(group.text.clone()),
        }),
        [] => {
            d.error(
                node.span(),
                format!("{} needs a user name", node.keyword.text),
            );
            None
        }
        [_, _, extra, ..] => {
            d.error(
                &extra.span,
                format!(
                    "{} takes USER [GROUP]; unexpected '{}'",
                    node.keyword.text, extra.text
                ),
            );
            None
        }
    }
}

/// Applies a `notify*` keyword to `notify`; `false` if `node` is not one.
pub(crate) fn notify(notify: &mut Notify, node: &Node, d: &mut Diags) -> bool {
    let slot = match node.keyword.text.as_str() {
        "notify_master" => &mut notify.master,
        "notify_backup" => &mut notify.backup,
        "notify_fault" => &mut notify.fault,
        "notify_stop" => &mut notify.stop,
        "notify" => &mut notify.any,
        "notify_split_brain" => &mut notify.split_brain,
        _ => return false,
    };
    let Some(script) = notify_script(node, d) else {
        return true;
    };
    if slot.is_some() {
        d.warn(
            node.span(),
            format!(
                "{} given twice; the first one is used, as keepalived does",
                node.keyword.text
            ),
        );
        return true;
    }
    *slot = Some(script);
    true
}

/// `KEYWORD "CMD ARGS" [USER [GROUP]]`: a notify command (no shell) and its user.
pub(crate) fn notify_script(node: &Node, d: &mut Diags) -> Option<NotifyScript> {
    no_block(node, d);
    let Some((cmd, rest)) = node.args.split_first() else {
        d.error(
            node.span(),
            format!("{} needs a command", node.keyword.text),
        );
        return None;
    };
    let argv = command(node, std::slice::from_ref(cmd), d)?;
    let user = if rest.is_empty() {
        None
    } else {
        Some(run_as(node, rest, d)?)
    };
    Some(NotifyScript { argv, user })
}

/// The weight part of a `track_script` / `track_interface` line, as keepalived reads it:
/// `None` when keepalived ignores the whole line (with a warning), else the weight given
/// (`None` inside: none, or one keepalived rejected) and the reverse word (`None`: not
/// given). `reverse_words` are the words accepted after the weight.
#[allow(clippy::type_complexity)]
fn track_weight(
    owner: &str,
    line: &Node,
    reverse_words: &[&str],
    on_bad_weight: &str,
    d: &mut Diags,
) -> Option<(Option<i32>, Option<bool>)> {
    let name = &line.keyword.text;
    let Some((kw, rest)) = line.args.split_first() else {
        return Some((None, None));
    };
    if kw.text != "weight" {
        d.warn(
            &kw.span,
            format!("{owner}: unknown option '{}' after {name}; the line is ignored, as keepalived does", kw.text),
        );
        return None;
    }
    let Some((value, rest)) = rest.split_first() else {
        d.warn(
            &kw.span,
            format!("{owner}: weight without a value for {name}; the line is ignored, as keepalived does"),
        );
        return None;
    };
    let weight = compat::take_number(
        read_int(&value.text, -254, 254, true),
        value,
        "weight",
        OnReject::Use(on_bad_weight),
        d,
    )
    .map(|w| {
        if w.abs() == 254 {
            d.warn(
                &value.span,
                format!(
                    "weight {w}: the limit is ±{MAX_WEIGHT}; using {}, as keepalived does",
                    w.signum() * i64::from(MAX_WEIGHT)
                ),
            );
            w.signum() * i64::from(MAX_WEIGHT)
        } else {
            w
        }
    })
    .and_then(|w| i32::try_from(w).ok());
    let reverse = match rest.first() {
        None => None,
        Some(r) if r.text == "reverse" => Some(true),
        Some(r) if reverse_words.contains(&r.text.as_str()) => Some(false),
        Some(r) => {
            d.warn(
                &r.span,
                format!(
                    "{owner}: unknown weight option '{}' for {name}; ignored, as keepalived does",
                    r.text
                ),
            );
            None
        }
    };
    if let Some(extra) = rest.get(1) {
        d.warn(
            &extra.span,
            format!(
                "'{}' and what follows ignored, as keepalived does",
                extra.text
            ),
        );
    }
    Some((weight, reverse))
}

/// Where a `track_script` line was written and what it left for the cross-reference pass.
#[derive(Debug, Clone)]
pub(crate) struct TrackPlace {
    /// The line.
    pub(crate) span: Span,
    /// Whether `reverse`/`noreverse` was given (else a weight given here takes the
    /// script's reverse flag, as in keepalived).
    pub(crate) reverse_given: bool,
}

/// `track_script { NAME [weight N [reverse|noreverse]] … }`, with the place of each line.
/// Names are resolved later ([`super::xref`]).
pub(crate) fn track_scripts(
    node: &Node,
    out: &mut Vec<TrackScript>,
    places: &mut Vec<TrackPlace>,
    d: &mut Diags,
) {
    for (name, weight, place) in named_tracks(node, "track_script", "the script's weight", d) {
        out.push(TrackScript { name, weight });
        places.push(place);
    }
}

/// `track_process { NAME [weight N [reverse|noreverse]] … }`, as [`track_scripts`]
/// (keepalived's `alloc_track_process` reads the lines as `alloc_track_script` does).
pub(crate) fn track_processes(
    node: &Node,
    out: &mut Vec<TrackProcess>,
    places: &mut Vec<TrackPlace>,
    d: &mut Diags,
) {
    for (name, weight, place) in named_tracks(node, "track_process", "the process's weight", d) {
        out.push(TrackProcess { name, weight });
        places.push(place);
    }
}

/// The lines of a block of named trackers: name, weight override, place.
fn named_tracks(
    node: &Node,
    owner: &str,
    on_bad_weight: &str,
    d: &mut Diags,
) -> Vec<(String, Option<WeightOverride>, TrackPlace)> {
    let mut out = Vec::new();
    for line in block_lines(node, d) {
        let Some((weight, reverse)) = track_weight(owner, line, &["noreverse"], on_bad_weight, d)
        else {
            continue;
        };
        out.push((
            line.keyword.text.clone(),
            weight.map(|weight| WeightOverride {
                weight,
                reverse: reverse.unwrap_or(false),
            }),
            TrackPlace {
                span: line.span().clone(),
                reverse_given: reverse.is_some(),
            },
        ));
    }
    out
}

/// `track_interface { IFNAME [weight N [reverse]] … }`; `owner` names the instance or group.
pub(crate) fn track_interfaces(
    node: &Node,
    owner: &str,
    out: &mut Vec<TrackInterface>,
    d: &mut Diags,
) {
    for line in block_lines(node, d) {
        let name = &line.keyword.text;
        if out.iter().any(|t| &t.name == name) {
            d.warn(
                line.span(),
                format!(
                    "{owner}: track_interface {name} listed twice; ignored, as keepalived does"
                ),
            );
            continue;
        }
        let Some((weight, reverse)) = track_weight(owner, line, &[], "0", d) else {
            continue;
        };
        out.push(TrackInterface {
            name: name.clone(),
            weight: weight.unwrap_or(0),
            reverse: reverse.unwrap_or(false),
        });
    }
}

/// The lines of a value block such as `track_script { … }` (an error if it has none).
pub(crate) fn block_lines<'n>(node: &'n Node, d: &mut Diags) -> &'n [Node] {
    if let Some(extra) = node.args.first() {
        d.warn(
            &extra.span,
            format!(
                "{} takes a block; '{}' ignored, as keepalived does",
                node.keyword.text, extra.text
            ),
        );
    }
    match &node.block {
        Some(b) => &b.nodes,
        None => {
            d.error(
                node.span(),
                format!("{} needs a block {{ … }}", node.keyword.text),
            );
            &[]
        }
    }
}

/// `vrrp_sync_group NAME { group { … } track_script { … } notify_* … }`. Members are
/// resolved later ([`super::xref`]); a group without a `group` block is kept empty (and
/// removed there, as keepalived removes it).
pub(crate) fn build_sync_group(
    node: &Node,
    track_file_defs: &[crate::model::TrackFileDef],
    ordinal: usize,
    d: &mut Diags,
) -> Option<(VrrpSyncGroup, Places)> {
    let name = section_name(node, d)?;
    let body = node.block.as_ref()?;
    let mut places = Places::new(ordinal, node.span().clone());
    let mut g = VrrpSyncGroup {
        name: name.to_owned(),
        instances: Vec::new(),
        track_scripts: Vec::new(),
        track_processes: Vec::new(),
        track_interfaces: Vec::new(),
        track_files: Vec::new(),
        notify_priority_changes: None,
        smtp_alert: None,
        notify: Notify::default(),
        tracking_weight: false,
        origin: Origin(node.span().clone()),
    };
    let mut have_group = false;
    for child in &body.nodes {
        match child.keyword.text.as_str() {
            "group" => {
                if have_group {
                    d.warn(
                        child.span(),
                        format!("vrrp_sync_group {name}: group given twice; the second is ignored, as keepalived does"),
                    );
                    continue;
                }
                have_group = true;
                for line in block_lines(child, d) {
                    for word in std::iter::once(&line.keyword).chain(&line.args) {
                        g.instances.push(word.text.clone());
                        places.members.push(word.span.clone());
                    }
                }
                if g.instances.is_empty() {
                    let at = child.block.as_ref().map_or(child.span(), |b| b.end());
                    d.warn(
                        at,
                        format!("vrrp_sync_group {name} has an empty group block"),
                    );
                }
            }
            "track_script" => {
                track_scripts(child, &mut g.track_scripts, &mut places.track_scripts, d)
            }
            "track_process" => track_processes(
                child,
                &mut g.track_processes,
                &mut places.track_processes,
                d,
            ),
            "track_interface" => {
                let owner = format!("vrrp_sync_group {name}");
                track_interfaces(child, &owner, &mut g.track_interfaces, d)
            }
            "sync_group_tracking_weight" => {
                compat::flag_args(child, d);
                g.tracking_weight = true;
            }
            "global_tracking" => {
                compat::flag_args(child, d);
                d.warn(
                    child.span(),
                    "global_tracking is deprecated in keepalived; read as sync_group_tracking_weight",
                );
                g.tracking_weight = true;
            }
            "smtp_alert" => g.smtp_alert = compat::boolean(child, d).or(g.smtp_alert),
            "notify_priority_changes" => {
                g.notify_priority_changes = compat::boolean(child, d).or(g.notify_priority_changes)
            }
            "track_file" => {
                let owner = format!("vrrp_sync_group {name}");
                super::track_file::track_files(
                    child,
                    &owner,
                    track_file_defs,
                    &mut g.track_files,
                    d,
                )
            }
            "track_bfd" => d.warn(
                child.span(),
                format!(
                    "{} is not supported by wasmalived; ignored",
                    child.keyword.text
                ),
            ),
            _ if notify(&mut g.notify, child, d) => {}
            _ => unknown(child, "vrrp_sync_group", d),
        }
    }
    if !have_group {
        d.warn(
            node.span(),
            format!("vrrp_sync_group {name} has no group {{ … }} of instances"),
        );
    }
    Some((g, places))
}
