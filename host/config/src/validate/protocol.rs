//! Protocol-level resolution for an instance: authentication and the advert interval in
//! the version's unit, as keepalived settles them when an instance is complete.

use std::time::Duration;

use super::track::block_lines;
use super::unknown;
use crate::compat::one_value;
use crate::defaults as def;
use crate::diag::{Diags, Span};
use crate::model::{AuthPass, InitialState};
use crate::parser::Node;
use wasmalived_proto::vrrp::types::{
    AdvertInterval, Centiseconds, Family, Priority, Seconds, Version,
};

/// `auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthType {
    Pass,
    Ah,
}

/// What `authentication { … }` blocks said (all of them, in order).
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthDraft {
    kind: Option<(AuthType, Span)>,
    /// The password as keepalived keeps it (at most 8 bytes), with its place.
    pass: Option<(String, Span)>,
    at: Option<Span>,
}

impl AuthDraft {
    /// `authentication { auth_type PASS|AH  auth_pass SECRET }`.
    pub(crate) fn apply(&mut self, node: &Node, d: &mut Diags) {
        self.at.get_or_insert_with(|| node.span().clone());
        for line in block_lines(node, d) {
            match line.keyword.text.as_str() {
                "auth_type" => {
                    let Some(w) = one_value(line, d) else {
                        continue;
                    };
                    match w.text.as_str() {
                        "PASS" => self.kind = Some((AuthType::Pass, w.span.clone())),
                        "AH" => self.kind = Some((AuthType::Ah, w.span.clone())),
                        other => d.warn(
                            &w.span,
                            format!("bad auth_type '{other}' (expected PASS or AH); ignored, as keepalived does"),
                        ),
                    }
                }
                "auth_pass" => {
                    let Some(w) = one_value(line, d) else {
                        continue;
                    };
                    let mut text = w.text.clone();
                    if text.len() > def::AUTH_PASS_MAX_LEN {
                        let mut cut = def::AUTH_PASS_MAX_LEN;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                        d.warn(
                            &w.span,
                            format!(
                                "auth_pass is longer than {} bytes; only '{text}' is used, as keepalived does",
                                def::AUTH_PASS_MAX_LEN
                            ),
                        );
                    }
                    self.pass = Some((text, w.span.clone()));
                }
                _ => unknown(line, "authentication", d),
            }
        }
    }
}

/// The password in force, as keepalived decides when the instance is complete; the second
/// value is `true` when AH authentication makes the instance start as BACKUP.
#[allow(clippy::too_many_arguments)]
pub(crate) fn auth(
    draft: AuthDraft,
    version: Version,
    family: Family,
    strict: bool,
    state: InitialState,
    priority: Priority,
    name: &str,
    d: &mut Diags,
) -> (Option<AuthPass>, bool) {
    let Some((kind, kind_at)) = draft.kind else {
        if let Some(at) = &draft.at {
            d.warn(at, format!("vrrp_instance {name}: authentication without auth_type; no authentication, as keepalived does"));
        }
        return (None, false);
    };
    let at = draft.at.unwrap_or(kind_at.clone());
    let password = draft.pass.as_ref().filter(|(p, _)| !p.is_empty());
    if strict {
        d.warn(&at, format!("vrrp_instance {name}: strict mode does not allow authentication; ignored, as keepalived does"));
        return (None, false);
    }
    if version == Version::V3 {
        d.warn(&at, "VRRPv3 has no authentication (RFC 5798 §9); authentication ignored, as keepalived does");
        return (None, false);
    }
    let Some((password, _)) = password else {
        d.warn(&at, format!("vrrp_instance {name}: authentication without auth_pass; ignored, as keepalived does"));
        return (None, false);
    };
    match kind {
        AuthType::Pass => (Some(AuthPass(password.clone())), false),
        AuthType::Ah => {
            if family == Family::V6 {
                d.warn(
                    &kind_at,
                    "auth_type AH is not possible with IPv6; ignored, as keepalived does",
                );
                return (None, false);
            }
            let backup = state == InitialState::Master && !priority.is_owner();
            if backup {
                d.warn(&kind_at, format!("vrrp_instance {name}: state MASTER and AH authentication; starting as BACKUP, as keepalived does"));
            }
            d.warn(&kind_at, "auth_type AH is not supported by wasmalived; adverts are sent without authentication");
            (None, backup)
        }
    }
}

/// The advert interval in the version's unit, as keepalived completes it: the default 1 s;
/// VRRPv2 counts whole seconds (a fraction is rounded half up, 0 becomes 1 s); VRRPv3
/// counts centiseconds (rounded half up, 0 becomes 0.01 s) up to 40.95 s.
pub(crate) fn advert_interval(
    advert_us: Option<(u64, Span)>,
    version: Version,
    name: &str,
    instance: &Span,
    d: &mut Diags,
) -> AdvertInterval {
    let (us, at) = advert_us.unwrap_or((
        u64::try_from(def::ADVERT_INT.as_micros()).unwrap_or(1_000_000),
        instance.clone(),
    ));
    let show = |us: u64| format!("{}", Duration::from_micros(us).as_secs_f64());
    match version {
        Version::V2 => {
            let mut secs = us / 1_000_000;
            if us % 1_000_000 != 0 {
                secs = ((us + 500_000) / 1_000_000).max(1);
                d.warn(
                    &at,
                    format!("vrrp_instance {name}: advert_int {} s: VRRPv2 advertises whole seconds; rounded to {secs} s, as keepalived does (use version 3 for fractions)", show(us)),
                );
            }
            let secs = u8::try_from(secs.min(255)).unwrap_or(255);
            AdvertInterval::V2(Seconds::new(secs).unwrap_or(Seconds::new(1).expect("1 s is valid")))
        }
        Version::V3 => {
            let mut cs = us / 10_000;
            if cs >= 4096 {
                cs = 4095;
                d.warn(
                    &at,
                    format!("vrrp_instance {name}: advert_int {} s is out of range for VRRPv3; using 40.95 s, as keepalived does", show(us)),
                );
            } else if us % 10_000 != 0 {
                cs = ((us + 5_000) / 10_000).max(1);
                d.warn(
                    &at,
                    format!("vrrp_instance {name}: advert_int {} s: VRRPv3 counts centiseconds; rounded to {} s, as keepalived does", show(us), show(cs * 10_000)),
                );
            }
            let cs = u16::try_from(cs).unwrap_or(4095);
            AdvertInterval::V3(
                Centiseconds::new(cs).unwrap_or(Centiseconds::new(1).expect("10 ms is valid")),
            )
        }
    }
}
