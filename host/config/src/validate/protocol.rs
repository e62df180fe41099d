//! Protocol-level resolution for an instance: address family, advert interval in the
//! version's unit, authentication.

use std::net::IpAddr;
use std::time::Duration;

use super::unknown;
use super::values::{one_arg, parse_decimal_seconds};
use crate::defaults as def;
use crate::diag::{Diags, Span};
use crate::lexer::Word;
use crate::model::AuthPass;
use crate::parser::Node;
use crate::vip::VipSpec;
use wasmalived_proto::vrrp::types::{AdvertInterval, Centiseconds, Family, Seconds, Version};

/// `authentication { auth_type PASS|AH  auth_pass SECRET }`.
pub(crate) fn auth_block<'n>(
    node: &'n Node,
    d: &mut Diags,
) -> (Option<&'n Word>, Option<&'n Word>, Span) {
    let (mut kind, mut pass) = (None, None);
    for line in super::track::block_lines(node, d) {
        match line.keyword.text.as_str() {
            "auth_type" => kind = one_arg(line, d).or(kind),
            "auth_pass" => pass = one_arg(line, d).or(pass),
            _ => unknown(line, "authentication", d),
        }
    }
    (kind, pass, node.span().clone())
}

pub(crate) fn auth(
    auth: Option<(Option<&Word>, Option<&Word>, Span)>,
    version: Version,
    d: &mut Diags,
) -> Option<AuthPass> {
    let (kind, pass, at) = auth?;
    if version == Version::V3 {
        d.warn(
            &at,
            "VRRPv3 has no authentication (RFC 5798 §9); authentication ignored",
        );
        return None;
    }
    match kind.map(|k| (k, k.text.as_str())) {
        Some((_, "PASS")) => {}
        Some((k, "AH")) => {
            d.warn(&k.span, "auth_type AH is not supported by wasmalived; adverts are sent without authentication");
            return None;
        }
        Some((k, other)) => {
            d.error(
                &k.span,
                format!("bad auth_type '{other}': expected PASS or AH"),
            );
            return None;
        }
        None => {
            d.warn(&at, "authentication without auth_type is ignored");
            return None;
        }
    }
    let Some(pass) = pass.filter(|p| !p.text.is_empty()) else {
        d.error(&at, "auth_type PASS needs an auth_pass");
        return None;
    };
    let mut text = pass.text.clone();
    if text.len() > def::AUTH_PASS_MAX_LEN {
        let mut cut = def::AUTH_PASS_MAX_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        d.warn(
            &pass.span,
            format!(
                "auth_pass is longer than {} bytes; only '{text}' is used, as keepalived does",
                def::AUTH_PASS_MAX_LEN
            ),
        );
    }
    Some(AuthPass(text))
}

/// The addresses an instance's family derives from, each with its place.
pub(crate) struct Addresses<'a> {
    /// `virtual_ipaddress` entries.
    pub(crate) vips: &'a [(VipSpec, Span)],
    /// `unicast_src_ip`.
    pub(crate) unicast_src_ip: &'a Option<(IpAddr, Span)>,
    /// `mcast_src_ip`.
    pub(crate) mcast_src_ip: &'a Option<(IpAddr, Span)>,
    /// `unicast_peer` entries.
    pub(crate) peers: &'a [(IpAddr, Span)],
}

/// The instance's family: from the VIPs, then the unicast/source addresses; mixing is an error.
pub(crate) fn family(addrs: &Addresses<'_>, name: &str, d: &mut Diags) -> Option<Family> {
    let s = addrs;
    let fam = |a: &IpAddr| if a.is_ipv4() { Family::V4 } else { Family::V6 };
    let addrs = s
        .vips
        .iter()
        .map(|(v, at)| (fam(&v.addr), at, "virtual address"))
        .chain(
            s.unicast_src_ip
                .iter()
                .map(|(a, at)| (fam(a), at, "unicast_src_ip")),
        )
        .chain(
            s.mcast_src_ip
                .iter()
                .map(|(a, at)| (fam(a), at, "mcast_src_ip")),
        )
        .chain(s.peers.iter().map(|(a, at)| (fam(a), at, "unicast peer")));
    let mut first: Option<(Family, &Span)> = None;
    let mut ok = true;
    for (f, at, what) in addrs {
        match first {
            None => first = Some((f, at)),
            Some((f0, at0)) if f0 != f => {
                d.error(at, format!("vrrp_instance {name}: this {what} is {f:?} but the instance is {f0:?} (from {at0}); one instance is one address family"));
                ok = false;
            }
            Some(_) => {}
        }
    }
    ok.then(|| first.map_or(Family::V4, |(f, _)| f))
}

/// `advert_int` in the version's unit: v2 whole seconds 1..=255, v3 0.01..=40.95 s.
pub(crate) fn advert_int(
    word: Option<&Word>,
    version: Version,
    instance: &Span,
    d: &mut Diags,
) -> Option<AdvertInterval> {
    let value = match word {
        None => def::ADVERT_INT,
        Some(w) => match parse_decimal_seconds(&w.text) {
            Some(v) => v,
            None => {
                d.error(
                    &w.span,
                    format!(
                        "bad advert_int '{}': expected seconds, e.g. 1 or 0.5",
                        w.text
                    ),
                );
                return None;
            }
        },
    };
    let micros = value.as_micros();
    let at = word.map_or(instance, |w| &w.span);
    let place = |d: &mut Diags, msg: String| d.error(at, msg);
    match version {
        Version::V2 => {
            let whole = micros.is_multiple_of(1_000_000);
            match u8::try_from(micros / 1_000_000)
                .ok()
                .filter(|_| whole)
                .and_then(Seconds::new)
            {
                Some(s) => Some(AdvertInterval::V2(s)),
                None if !whole => {
                    place(d, format!("advert_int {}: VRRPv2 advertises whole seconds (1..=255); use version 3 for fractions", fmt_secs(value)));
                    None
                }
                None => {
                    place(
                        d,
                        format!(
                            "advert_int {} is out of range for VRRPv2: 1..=255 seconds",
                            fmt_secs(value)
                        ),
                    );
                    None
                }
            }
        }
        Version::V3 => {
            if !micros.is_multiple_of(10_000) {
                place(
                    d,
                    format!(
                        "advert_int {}: VRRPv3 counts centiseconds (0.01 s steps)",
                        fmt_secs(value)
                    ),
                );
                return None;
            }
            match u16::try_from(micros / 10_000)
                .ok()
                .and_then(Centiseconds::new)
            {
                Some(cs) => Some(AdvertInterval::V3(cs)),
                None => {
                    place(
                        d,
                        format!(
                            "advert_int {} is out of range for VRRPv3: 0.01..=40.95 seconds",
                            fmt_secs(value)
                        ),
                    );
                    None
                }
            }
        }
    }
}

fn fmt_secs(v: Duration) -> String {
    format!("{}", v.as_secs_f64())
}
