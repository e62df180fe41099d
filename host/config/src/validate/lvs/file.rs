//! `FILE_CHECK { track_file NAME; weight W [reverse|noreverse] }` (keepalived 2.2.7's
//! `check/check_file.c`): the real server follows the value of a `track_file` defined above
//! it. `weight` (−2147483647..=2147483647) defaults to the track file's `weight` and
//! `reverse`. No other keyword: a FILE_CHECK has no connection, no schedule, no retries and
//! no `alpha` (its state is known as soon as the file is read). keepalived reports a
//! `track_file` not defined above and drops a checker without one, and reports and ignores
//! a bad weight (`-t` exits 5, the file runs): warnings here, with the same fallback.

use std::net::SocketAddr;

use crate::compat::read_int;
use crate::diag::Diags;
use crate::lvs::{Checker, CheckerKind, FileCheck};
use crate::model::{Origin, TrackFileDef};
use crate::parser::Node;

use super::super::unknown;
use super::super::values::one_arg;
use super::Timing;

/// keepalived's `IPVS_WEIGHT_LIMIT`.
const WEIGHT_LIMIT: i64 = i32::MAX as i64;

/// The checker of one `FILE_CHECK` block of real server `rs`; `None` if it has errors.
pub(super) fn build(
    node: &Node,
    rs: SocketAddr,
    rs_timing: Timing,
    track_files: &[TrackFileDef],
    d: &mut Diags,
) -> Option<Checker> {
    let errors_before = d.error_count();
    if let Some(arg) = node.args.first() {
        d.error(&arg.span, "FILE_CHECK takes no value, only a block");
    }
    let mut file: Option<&TrackFileDef> = None;
    let mut weight = None;
    for line in node.block.as_ref().map_or(&[][..], |b| b.nodes.as_slice()) {
        match line.keyword.text.as_str() {
            "track_file" => {
                let Some(w) = one_arg(line, d) else { continue };
                match track_files.iter().find(|f| f.name == w.text) {
                    Some(f) => file = Some(f),
                    None => d.warn(
                        &w.span,
                        format!(
                            "track_file {} is not defined above this virtual_server; ignored, as keepalived does",
                            w.text
                        ),
                    ),
                }
            }
            "weight" => weight = weight_line(line, d).or(weight),
            _ => unknown(line, "FILE_CHECK", d),
        }
    }
    if d.error_count() > errors_before {
        return None;
    }
    let Some(file) = file else {
        d.warn(
            node.span(),
            "FILE_CHECK has no track_file; the checker is ignored, as keepalived does",
        );
        return None;
    };
    let (weight, reverse) = weight.unwrap_or((file.weight, file.reverse));
    let mut timing = rs_timing.resolve("FILE_CHECK");
    // keepalived: the state is known at once (no alpha, no warm-up), and a fault is final
    // until the file changes (no retries).
    timing.alpha = false;
    timing.retry = 0;
    timing.warmup = std::time::Duration::ZERO;
    Some(Checker {
        kind: CheckerKind::File(FileCheck {
            track_file: file.name.clone(),
            path: file.path.clone(),
            weight,
            reverse,
        }),
        target: rs,
        bind: None,
        timing,
        origin: Origin(node.span().clone()),
    })
}

/// `weight W [reverse|noreverse]`.
fn weight_line(line: &Node, d: &mut Diags) -> Option<(i32, bool)> {
    let Some((value, rest)) = line.args.split_first() else {
        d.warn(
            line.span(),
            "FILE_CHECK weight without a value; ignored, as keepalived does",
        );
        return None;
    };
    let Some(weight) = read_int(&value.text, -WEIGHT_LIMIT, WEIGHT_LIMIT, true)
        .value()
        .and_then(|w| i32::try_from(w).ok())
    else {
        d.warn(
            &value.span,
            format!(
                "bad FILE_CHECK weight '{}' (expected an integer in -{WEIGHT_LIMIT}..={WEIGHT_LIMIT}); ignored, as keepalived does",
                value.text
            ),
        );
        return None;
    };
    let reverse = match rest {
        [] => false,
        [r] if r.text == "reverse" => true,
        [r] if r.text == "noreverse" => false,
        [r, ..] => {
            d.warn(
                &r.span,
                format!(
                    "unknown FILE_CHECK weight option '{}' (expected reverse or noreverse); the weight is ignored, as keepalived does",
                    r.text
                ),
            );
            return None;
        }
    };
    Some((weight, reverse))
}
