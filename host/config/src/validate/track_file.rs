//! `track_file NAME { file PATH weight N [reverse] init_file [VALUE] [overwrite] }` (and
//! its deprecated synonym `vrrp_track_file`), and the `track_file { NAME [weight N
//! [reverse|noreverse]] }` blocks of instances and sync groups, as keepalived's
//! `trackers/track_file.c` reads them: every doubtful value is a warning with the fallback
//! keepalived uses.

use std::path::PathBuf;

use super::track::block_lines;
use super::{section_name, unknown};
use crate::compat::{self, one_value, read_int, OnReject};
use crate::defaults::TRACK_FILE_WEIGHT;
use crate::diag::Diags;
use crate::model::{Origin, TrackFile, TrackFileDef, TrackFileInit};
use crate::parser::Node;

/// Largest weight magnitude keepalived accepts for a tracked file (`[-254..254]`).
const MAX_FILE_WEIGHT: i64 = 254;

/// A `track_file` / `vrrp_track_file` section; `None` when keepalived drops it (no `file`).
/// A weight keepalived rejects is ignored (the default 1 stays), as keepalived does.
pub(crate) fn build_def(node: &Node, d: &mut Diags) -> Option<TrackFileDef> {
    if node.keyword.text == "vrrp_track_file" {
        d.warn(
            node.span(),
            "vrrp_track_file is deprecated in keepalived; read as track_file",
        );
    }
    let name = section_name(node, d)?;
    let body = node.block.as_ref()?;
    let mut path: Option<PathBuf> = None;
    let mut weight = TRACK_FILE_WEIGHT;
    let mut reverse = false;
    let mut init = None;
    for child in &body.nodes {
        let kw = child.keyword.text.as_str();
        match kw {
            "file" => {
                let Some(w) = one_value(child, d) else {
                    continue;
                };
                if path.is_some() {
                    d.warn(
                        &w.span,
                        format!(
                            "track_file {name}: file given twice; '{}' ignored, as keepalived does",
                            w.text
                        ),
                    );
                } else {
                    path = Some(PathBuf::from(&w.text));
                }
            }
            "weight" => {
                let Some((value, rest)) = child.args.split_first() else {
                    d.warn(
                        child.span(),
                        format!("track_file {name}: weight without a value; ignored, as keepalived does"),
                    );
                    continue;
                };
                if weight != TRACK_FILE_WEIGHT {
                    d.warn(
                        &value.span,
                        format!("track_file {name}: weight given twice; '{}' ignored, as keepalived does", value.text),
                    );
                    continue;
                }
                weight = compat::take_number(
                    read_int(&value.text, -MAX_FILE_WEIGHT, MAX_FILE_WEIGHT, true),
                    value,
                    "track_file weight",
                    OnReject::Ignore,
                    d,
                )
                .and_then(|w| i32::try_from(w).ok())
                .unwrap_or(TRACK_FILE_WEIGHT);
                match rest.first() {
                    None => {}
                    Some(r) if r.text == "reverse" => reverse = true,
                    Some(r) => d.warn(
                        &r.span,
                        format!("track_file {name}: unknown weight option '{}'; ignored, as keepalived does", r.text),
                    ),
                }
            }
            "init_file" => init = Some(init_file(child, name, d)),
            _ => unknown(child, "track_file", d),
        }
    }
    let Some(path) = path else {
        d.warn(
            node.span(),
            format!("track_file {name} has no file; section ignored, as keepalived does"),
        );
        return None;
    };
    Some(TrackFileDef {
        name: name.to_owned(),
        path,
        weight,
        reverse,
        init,
        origin: Origin(node.span().clone()),
    })
}

/// `init_file [VALUE] [overwrite]` (words in any order, as keepalived reads them).
fn init_file(node: &Node, name: &str, d: &mut Diags) -> TrackFileInit {
    let mut init = TrackFileInit {
        value: 0,
        overwrite: false,
    };
    for w in &node.args {
        let text = w.text.as_str();
        if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            match read_int(text, i64::from(i32::MIN), i64::from(i32::MAX), false).value() {
                Some(v) => {
                    if !(-MAX_FILE_WEIGHT..=MAX_FILE_WEIGHT).contains(&v) {
                        d.warn(
                            &w.span,
                            format!("track_file {name}: init value {v} is outside the sensible range [-254, 254]; written anyway, as keepalived does"),
                        );
                    }
                    init.value = i32::try_from(v).unwrap_or_default();
                }
                None => {
                    d.warn(
                        &w.span,
                        format!("track_file {name}: init value '{text}' is invalid; using 0, as keepalived does"),
                    );
                    init.value = 0;
                }
            }
        } else if text == "overwrite" {
            init.overwrite = true;
        } else {
            d.warn(
                &w.span,
                format!("track_file {name}: unknown init_file option '{text}'; ignored, as keepalived does"),
            );
        }
    }
    init
}

/// An instance's or sync group's `track_file { NAME [weight N [reverse|noreverse]] … }`.
/// keepalived resolves each name when it reads the line, so only a `track_file` defined
/// before (`defined`) is found; unknown names, duplicates and malformed lines are
/// ignored with a warning, as keepalived does.
pub(crate) fn track_files(
    node: &Node,
    owner: &str,
    defined: &[TrackFileDef],
    out: &mut Vec<TrackFile>,
    d: &mut Diags,
) {
    for line in block_lines(node, d) {
        let name = &line.keyword.text;
        let Some(def) = defined.iter().find(|f| &f.name == name) else {
            d.warn(
                line.span(),
                format!("{owner}: track file {name} not found (a track_file must be defined before it is tracked); ignored, as keepalived does"),
            );
            continue;
        };
        if out.iter().any(|t| &t.name == name) {
            d.warn(
                line.span(),
                format!("{owner}: duplicate track_file {name}; ignored, as keepalived does"),
            );
            continue;
        }
        let (mut weight, mut reverse) = (def.weight, def.reverse);
        if let Some((kw, rest)) = line.args.split_first() {
            if kw.text != "weight" {
                d.warn(
                    &kw.span,
                    format!("{owner}: unknown track file option '{}'; the line is ignored, as keepalived does", kw.text),
                );
                continue;
            }
            let Some((value, rest)) = rest.split_first() else {
                d.warn(
                    &kw.span,
                    format!("{owner}: weight without a value for track file {name}; the line is ignored, as keepalived does"),
                );
                continue;
            };
            if let Some(w) = compat::take_number(
                read_int(&value.text, -MAX_FILE_WEIGHT, MAX_FILE_WEIGHT, true),
                value,
                "track_file weight",
                OnReject::Ignore,
                d,
            )
            .and_then(|w| i32::try_from(w).ok())
            {
                weight = w;
            }
            match rest.first().map(|r| (r, r.text.as_str())) {
                None => {}
                Some((_, "reverse")) => reverse = true,
                Some((_, "noreverse")) => reverse = false,
                Some((r, other)) => {
                    d.warn(
                        &r.span,
                        format!("{owner}: unknown weight option '{other}' for track file {name}; the line is ignored, as keepalived does"),
                    );
                    continue;
                }
            }
        }
        out.push(TrackFile {
            name: name.clone(),
            weight,
            reverse,
        });
    }
}
