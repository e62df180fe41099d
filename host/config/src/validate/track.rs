//! Pieces shared by instances and sync groups: `track_script`, `track_interface`,
//! `notify_*`, run-as users; and `vrrp_sync_group` itself.

use super::values::{command, int, no_args, no_block};
use super::{section_name, unknown, Places};
use crate::defaults::MAX_WEIGHT;
use crate::diag::{Diags, Span};
use crate::lexer::Word;
use crate::model::{
    Notify, NotifyScript, Origin, RunAs, TrackInterface, TrackScript, VrrpSyncGroup, WeightOverride,
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
            format!("{} given twice; the last one is used", node.keyword.text),
        );
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

/// `weight N [reverse|noreverse|no_reverse]` starting at `words[0] == "weight"`.
fn weight(owner: &Word, words: &[Word], d: &mut Diags) -> Option<WeightOverride> {
    match words {
        [kw, value, rest @ ..] if kw.text == "weight" => {
            let weight = i32::try_from(int(
                value,
                "weight",
                -i64::from(MAX_WEIGHT),
                i64::from(MAX_WEIGHT),
                d,
            )?)
            .ok()?;
            let reverse = match rest {
                [] => false,
                [r] if r.text == "reverse" => true,
                [r] if r.text == "noreverse" || r.text == "no_reverse" => false,
                [r, ..] => {
                    d.error(
                        &r.span,
                        format!(
                            "unexpected '{}' after the weight of {}: expected reverse or noreverse",
                            r.text, owner.text
                        ),
                    );
                    return None;
                }
            };
            Some(WeightOverride { weight, reverse })
        }
        [other, ..] => {
            d.error(
                &other.span,
                format!(
                    "unexpected '{}' after {}: expected weight N [reverse]",
                    other.text, owner.text
                ),
            );
            None
        }
        [] => None,
    }
}

/// `track_script { NAME [weight N [reverse]] … }`, with the place of each line.
pub(crate) fn track_scripts(
    node: &Node,
    out: &mut Vec<TrackScript>,
    spans: &mut Vec<Span>,
    d: &mut Diags,
) {
    for line in block_lines(node, d) {
        if line.block.is_some() {
            d.error(line.span(), "track_script lines take no block");
            continue;
        }
        let w = if line.args.is_empty() {
            None
        } else {
            weight(&line.keyword, &line.args, d)
        };
        if !line.args.is_empty() && w.is_none() {
            continue;
        }
        out.push(TrackScript {
            name: line.keyword.text.clone(),
            weight: w,
        });
        spans.push(line.span().clone());
    }
}

/// `track_interface { IFNAME [weight N [reverse]] … }`.
pub(crate) fn track_interfaces(node: &Node, out: &mut Vec<TrackInterface>, d: &mut Diags) {
    for line in block_lines(node, d) {
        if line.block.is_some() {
            d.error(line.span(), "track_interface lines take no block");
            continue;
        }
        let w = if line.args.is_empty() {
            None
        } else {
            weight(&line.keyword, &line.args, d)
        };
        if !line.args.is_empty() && w.is_none() {
            continue;
        }
        let w = w.unwrap_or(WeightOverride {
            weight: 0,
            reverse: false,
        });
        out.push(TrackInterface {
            name: line.keyword.text.clone(),
            weight: w.weight,
            reverse: w.reverse,
        });
    }
}

/// The lines of a value block such as `track_script { … }` (an error if it has none).
pub(crate) fn block_lines<'n>(node: &'n Node, d: &mut Diags) -> &'n [Node] {
    if let Some(extra) = node.args.first() {
        d.error(
            &extra.span,
            format!("{} takes a block, not '{}'", node.keyword.text, extra.text),
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

/// `vrrp_sync_group NAME { group { … } track_script { … } notify_* … }`.
pub(crate) fn build_sync_group(
    node: &Node,
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
        track_interfaces: Vec::new(),
        notify: Notify::default(),
        tracking_weight: false,
        origin: Origin(node.span().clone()),
    };
    let mut have_group = false;
    for child in &body.nodes {
        match child.keyword.text.as_str() {
            "group" => {
                if have_group {
                    d.error(
                        child.span(),
                        format!("group given twice in vrrp_sync_group {name}"),
                    );
                }
                have_group = true;
                for line in block_lines(child, d) {
                    for word in std::iter::once(&line.keyword).chain(&line.args) {
                        g.instances.push(word.text.clone());
                        places.members.push(word.span.clone());
                    }
                }
            }
            "track_script" => {
                track_scripts(child, &mut g.track_scripts, &mut places.track_scripts, d)
            }
            "track_interface" => track_interfaces(child, &mut g.track_interfaces, d),
            "sync_group_tracking_weight" | "global_tracking" => {
                no_args(child, d);
                g.tracking_weight = true;
            }
            "smtp_alert" => d.warn(
                child.span(),
                "smtp_alert is not supported by wasmalived; ignored",
            ),
            _ if notify(&mut g.notify, child, d) => {}
            _ => unknown(child, "vrrp_sync_group", d),
        }
    }
    if !have_group {
        d.error(
            node.span(),
            format!("vrrp_sync_group {name} has no group {{ … }} of instances"),
        );
        return None;
    }
    Some((g, places))
}
