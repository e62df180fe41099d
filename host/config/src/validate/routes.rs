//! Route and rule lines as keepalived reads them (`alloc_route` in `vrrp_iproute.c`,
//! `alloc_rule` in `vrrp_iprule.c`), for `virtual_routes` / `static_routes` and
//! `virtual_rules` / `static_rules`.
//!
//! keepalived skips a line it cannot read and carries on; so does this parser, with a
//! warning at the word that made it skip (an error under `--strict`). Options keepalived
//! has and this daemon does not model (multipath `nexthop`, `mtu`, `uidrange`, …) skip the
//! line the same way, naming the option: never a route or rule installed without part of
//! what was written.

use std::net::IpAddr;

use super::addresses::scope;
use crate::diag::{Diags, Span};
use crate::lexer::Word;
use crate::parser::Node;
use crate::route::{
    Prefix, RouteKind, RouteSpec, RuleAction, RuleSpec, RULE_START_PREFERENCE, TABLE_MAIN,
};

/// Route options keepalived reads that this daemon does not model.
const UNSUPPORTED_ROUTE_OPTIONS: &[&str] = &[
    "from",
    "tos",
    "dsfield",
    "protocol",
    "onlink",
    "encap",
    "expires",
    "mtu",
    "hoplimit",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "realms",
    "rto_min",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "pref",
    "ttl-propagate",
    "fastopen_no_cookie",
    "add",
    "prepend",
    "append",
    "or",
    "nexthop",
    "vrf",
    "as",
];

/// Route types keepalived reads that this daemon does not model.
const UNSUPPORTED_ROUTE_TYPES: &[&str] = &[
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "throw",
    "nat",
    "xresolve",
];

/// Rule options keepalived reads that this daemon does not model.
const UNSUPPORTED_RULE_OPTIONS: &[&str] = &[
    "not",
    "tos",
    "dsfield",
    "realms",
    "suppress_prefixlength",
    "sup_pl",
    "suppress_ifgroup",
    "sup_group",
    "tunnel-id",
    "uidrange",
    "l3mdev",
    "protocol",
    "ipproto",
    "sport",
    "dport",
    "goto",
    "nop",
];

/// keepalived's count-down of preferences for rules written without one, per family,
/// across the whole configuration in the order it is read.
#[derive(Debug)]
pub(crate) struct RulePreferences {
    next_v4: u32,
    next_v6: u32,
}

impl Default for RulePreferences {
    fn default() -> Self {
        Self {
            next_v4: RULE_START_PREFERENCE,
            next_v6: RULE_START_PREFERENCE,
        }
    }
}

impl RulePreferences {
    fn take(&mut self, ipv6: bool) -> u32 {
        let next = if ipv6 {
            &mut self.next_v6
        } else {
            &mut self.next_v4
        };
        let value = *next;
        *next = next.saturating_sub(1);
        value
    }
}

/// The words of one block line, keyword first.
fn words(line: &Node) -> Vec<&Word> {
    std::iter::once(&line.keyword).chain(&line.args).collect()
}

/// `ADDR[/LEN]`, or `default` / `any` / `all` (`None` family: the route's).
enum Selector {
    Prefix(Prefix),
    Any,
}

fn selector(text: &str) -> Option<Selector> {
    if matches!(text, "default" | "any" | "all") {
        return Some(Selector::Any);
    }
    prefix(text).map(Selector::Prefix)
}

/// `ADDR[/LEN]` with a length within the family's width.
fn prefix(text: &str) -> Option<Prefix> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some(Prefix { addr, len })
}

/// A routing table by number or by the names of the standard `rt_tables`.
fn table(text: &str) -> Option<u32> {
    match text {
        "main" => Some(TABLE_MAIN),
        "local" => Some(255),
        "default" => Some(253),
        _ => text.parse().ok(),
    }
}

/// A number as `strtoul(…, 0)` reads it: decimal, `0x` hexadecimal or `0` octal.
fn c_unsigned(text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        u32::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    }
}

/// The address family the words of one line agree on.
#[derive(Default)]
struct FamilyOf {
    ipv6: Option<bool>,
}

impl FamilyOf {
    /// Records one more address family; `false` if it conflicts with an earlier one.
    fn agree(&mut self, ipv6: bool) -> bool {
        *self.ipv6.get_or_insert(ipv6) == ipv6
    }
}

/// Why a line is skipped: the warning, at `at`.
struct Skip<'w> {
    at: &'w Span,
    why: String,
}

impl<'w> Skip<'w> {
    fn new(at: &'w Span, why: impl Into<String>) -> Self {
        Self {
            at,
            why: why.into(),
        }
    }
}

/// The value after `words[i]`, or a skip naming the option that lacks it.
fn value<'w>(words: &[&'w Word], i: usize) -> Result<&'w Word, Skip<'w>> {
    words
        .get(i + 1)
        .copied()
        .ok_or_else(|| Skip::new(&words[i].span, format!("'{}' needs a value", words[i].text)))
}

/// keepalived watches the routes and rules it installs (unless `no_track`): a Master whose
/// route or rule is deleted behind its back becomes Backup, a deleted static one is put
/// back. This daemon does not; said once per configuration.
fn not_tracked(at: &Span, d: &mut Diags) {
    d.warn_once(
        "route-tracking",
        at,
        "wasmalived does not watch the routes and rules it installs (keepalived makes a Master whose route or rule is deleted a Backup, and puts a deleted static one back); not tracked (no_track says so and silences this)",
    );
}

/// One route line; `None` when it is skipped (with a warning, as keepalived does).
/// `what` names the block in messages (`virtual route`, `static route`).
pub(crate) fn route_line(line: &Node, what: &str, d: &mut Diags) -> Option<RouteSpec> {
    let words = words(line);
    match read_route(&words, d) {
        Ok(route) => {
            if !route.no_track && route.dev.is_none() {
                d.warn(
                    line.span(),
                    format!(
                        "{what} {} has no dev: not tracked, as keepalived does",
                        route.dst
                    ),
                );
            } else if !route.no_track {
                not_tracked(line.span(), d);
            }
            Some(route)
        }
        Err(skip) => {
            d.warn(
                skip.at,
                format!("{}; {what} skipped, as keepalived does", skip.why),
            );
            None
        }
    }
}

fn read_route<'w>(words: &[&'w Word], d: &mut Diags) -> Result<RouteSpec, Skip<'w>> {
    let mut family = FamilyOf::default();
    let mut mixed = |ipv6: bool, at: &'w Span| {
        if family.agree(ipv6) {
            Ok(())
        } else {
            Err(Skip::new(
                at,
                "cannot mix IPv4 and IPv6 addresses in a route",
            ))
        }
    };
    let mut dst: Option<(Selector, &Span)> = None;
    let mut route = RouteSpec {
        dst: Prefix {
            addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            len: 0,
        },
        kind: RouteKind::Unicast,
        via: None,
        dev: None,
        src: None,
        table: TABLE_MAIN,
        metric: None,
        scope: None,
        no_track: false,
    };
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        match w.text.as_str() {
            "inet" | "inet6" => mixed(w.text == "inet6", &w.span)?,
            "src" => {
                let v = value(words, i)?;
                let ip: IpAddr = v.text.parse().map_err(|_| {
                    Skip::new(&v.span, format!("invalid route src address {}", v.text))
                })?;
                mixed(ip.is_ipv6(), &v.span)?;
                route.src = Some(ip);
                i += 1;
            }
            "via" | "gw" => {
                if w.text == "gw" {
                    d.warn(
                        &w.span,
                        "'gw' is deprecated; read as 'via', as keepalived does",
                    );
                }
                let mut v = value(words, i)?;
                if v.text == "inet" || v.text == "inet6" {
                    mixed(v.text == "inet6", &v.span)?;
                    i += 1;
                    v = value(words, i)?;
                }
                let ip: IpAddr = v.text.parse().map_err(|_| {
                    Skip::new(&v.span, format!("invalid route via address {}", v.text))
                })?;
                mixed(ip.is_ipv6(), &v.span)?;
                route.via = Some(ip);
                i += 1;
            }
            "dev" | "oif" => {
                route.dev = Some(value(words, i)?.text.clone());
                i += 1;
            }
            "table" => {
                let v = value(words, i)?;
                route.table = table(&v.text).ok_or_else(|| {
                    Skip::new(&v.span, format!("routing table {} not found", v.text))
                })?;
                i += 1;
            }
            "metric" | "priority" | "preference" => {
                let v = value(words, i)?;
                route.metric = Some(
                    v.text
                        .parse()
                        .map_err(|_| Skip::new(&v.span, format!("invalid metric {}", v.text)))?,
                );
                i += 1;
            }
            "scope" => {
                let v = value(words, i)?;
                route.scope = Some(scope(&v.text).ok_or_else(|| {
                    Skip::new(&v.span, format!("scope {} not found or invalid", v.text))
                })?);
                i += 1;
            }
            "no_track" => route.no_track = true,
            "track_group" => {
                value(words, i)?;
                d.warn(
                    &w.span,
                    "track_group is not supported by wasmalived; ignored (the route is installed once, at start-up)",
                );
                i += 1;
            }
            k if UNSUPPORTED_ROUTE_OPTIONS.contains(&k) => {
                return Err(Skip::new(
                    &w.span,
                    format!("route option '{k}' is not supported by wasmalived"),
                ));
            }
            _ => {
                let mut at = i;
                if words[at].text == "to" {
                    at += 1;
                }
                let mut kind_word = words.get(at).copied();
                let kind = match kind_word.map(|k| k.text.as_str()) {
                    Some("unicast") => Some(RouteKind::Unicast),
                    Some("blackhole") => Some(RouteKind::Blackhole),
                    Some("unreachable") => Some(RouteKind::Unreachable),
                    Some("prohibit") => Some(RouteKind::Prohibit),
                    Some(t) if UNSUPPORTED_ROUTE_TYPES.contains(&t) => {
                        return Err(Skip::new(
                            &words[at].span,
                            format!("route type '{t}' is not supported by wasmalived"),
                        ));
                    }
                    _ => {
                        kind_word = None;
                        None
                    }
                };
                if let Some(kind) = kind {
                    route.kind = kind;
                    at += 1;
                }
                let Some(target) = words.get(at).copied() else {
                    let after = kind_word.unwrap_or(w);
                    return Err(Skip::new(
                        &after.span,
                        format!("'{}' needs a destination", after.text),
                    ));
                };
                let sel = selector(&target.text).ok_or_else(|| {
                    Skip::new(
                        &target.span,
                        format!("unknown route keyword or bad destination {}", target.text),
                    )
                })?;
                if let Selector::Prefix(p) = &sel {
                    mixed(p.addr.is_ipv6(), &target.span)?;
                }
                dst = Some((sel, &target.span));
                i = at;
            }
        }
        i += 1;
    }
    let Some((dst, _)) = dst else {
        return Err(Skip::new(&words[0].span, "route has no destination"));
    };
    route.dst = match dst {
        Selector::Prefix(p) => p,
        Selector::Any => Prefix {
            addr: if family.ipv6 == Some(true) {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
            },
            len: 0,
        },
    };
    Ok(route)
}

/// One rule line; `None` when it is skipped (with a warning, as keepalived does). A rule
/// without a preference takes keepalived's next one from `prefs`, with a warning.
pub(crate) fn rule_line(
    line: &Node,
    what: &str,
    prefs: &mut RulePreferences,
    d: &mut Diags,
) -> Option<RuleSpec> {
    let words = words(line);
    match read_rule(&words, d) {
        Ok((mut rule, preference)) => {
            rule.preference = match preference {
                Some(p) => p,
                None => {
                    let p = prefs.take(rule.ipv6);
                    d.warn(
                        line.span(),
                        format!("{what} has no preference; using {p}, as keepalived does (set one: rules are matched in preference order)"),
                    );
                    p
                }
            };
            if !rule.no_track {
                not_tracked(line.span(), d);
            }
            Some(rule)
        }
        Err(skip) => {
            d.warn(
                skip.at,
                format!("{}; {what} skipped, as keepalived does", skip.why),
            );
            None
        }
    }
}

fn read_rule<'w>(words: &[&'w Word], d: &mut Diags) -> Result<(RuleSpec, Option<u32>), Skip<'w>> {
    let mut family = FamilyOf::default();
    let mut mixed = |ipv6: bool, at: &'w Span| {
        if family.agree(ipv6) {
            Ok(())
        } else {
            Err(Skip::new(at, "rule specification mixes IPv4 and IPv6"))
        }
    };
    let mut from = None;
    let mut to = None;
    let mut iif = None;
    let mut oif = None;
    let mut fwmark = None;
    let mut preference = None;
    let mut action: Option<RuleAction> = None;
    let mut no_track = false;
    let mut set_action = |a: RuleAction, at: &'w Span| {
        if action.replace(a).is_some() {
            Err(Skip::new(
                at,
                "more than one of table/blackhole/prohibit/unreachable for a rule",
            ))
        } else {
            Ok(())
        }
    };
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        match w.text.as_str() {
            "inet" | "inet6" => mixed(w.text == "inet6", &w.span)?,
            "from" | "to" => {
                let v = value(words, i)?;
                let sel = selector(&v.text).ok_or_else(|| {
                    Skip::new(
                        &v.span,
                        format!("invalid rule {} address {}", w.text, v.text),
                    )
                })?;
                let slot = if w.text == "from" { &mut from } else { &mut to };
                *slot = match sel {
                    Selector::Prefix(p) => {
                        mixed(p.addr.is_ipv6(), &v.span)?;
                        Some(p)
                    }
                    Selector::Any => None,
                };
                i += 1;
            }
            "table" | "lookup" => {
                let v = value(words, i)?;
                let t = table(&v.text).filter(|t| *t != 0).ok_or_else(|| {
                    Skip::new(&v.span, format!("routing table {} not found or 0", v.text))
                })?;
                set_action(RuleAction::Table(t), &w.span)?;
                i += 1;
            }
            "preference" | "order" | "priority" => {
                let v = value(words, i)?;
                preference = Some(v.text.parse::<u32>().map_err(|_| {
                    Skip::new(&v.span, format!("invalid rule preference {}", v.text))
                })?);
                i += 1;
            }
            "fwmark" => {
                let v = value(words, i)?;
                let bad = || Skip::new(&v.span, format!("invalid rule fwmark {}", v.text));
                let (mark, mask) = match v.text.split_once('/') {
                    Some((m, k)) => (m, Some(k)),
                    None => (v.text.as_str(), None),
                };
                let mark = c_unsigned(mark).ok_or_else(bad)?;
                let mask = match mask {
                    Some(k) => Some(c_unsigned(k).ok_or_else(bad)?),
                    None => None,
                };
                fwmark = Some((mark, mask));
                i += 1;
            }
            "dev" | "iif" => {
                iif = Some(value(words, i)?.text.clone());
                i += 1;
            }
            "oif" => {
                oif = Some(value(words, i)?.text.clone());
                i += 1;
            }
            "no_track" => no_track = true,
            "track_group" => {
                value(words, i)?;
                d.warn(
                    &w.span,
                    "track_group is not supported by wasmalived; ignored (the rule is installed once, at start-up)",
                );
                i += 1;
            }
            k if UNSUPPORTED_RULE_OPTIONS.contains(&k) => {
                return Err(Skip::new(
                    &w.span,
                    format!("rule option '{k}' is not supported by wasmalived"),
                ));
            }
            _ => {
                let mut at = i;
                if words[at].text == "type" {
                    at += 1;
                }
                let Some(kind) = words.get(at).copied() else {
                    return Err(Skip::new(&w.span, "'type' needs a value"));
                };
                let a = match kind.text.as_str() {
                    "blackhole" => RuleAction::Blackhole,
                    "unreachable" => RuleAction::Unreachable,
                    "prohibit" => RuleAction::Prohibit,
                    other => {
                        return Err(Skip::new(
                            &kind.span,
                            format!("unknown rule option {other}"),
                        ))
                    }
                };
                set_action(a, &kind.span)?;
                i = at;
            }
        }
        i += 1;
    }
    let Some(action) = action else {
        return Err(Skip::new(&words[0].span, "no action specified for rule"));
    };
    let rule = RuleSpec {
        ipv6: family.ipv6.unwrap_or(false),
        from,
        to,
        iif,
        oif,
        fwmark,
        preference: 0,
        action,
        no_track,
    };
    Ok((rule, preference))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn node(text: &str) -> (Node, Diags) {
        let file: Arc<Path> = Arc::from(PathBuf::from("t.conf"));
        let mut words = text.split(' ').enumerate().map(|(i, t)| Word {
            text: t.into(),
            quoted: false,
            span: Span::new(file.clone(), 1, i as u32 + 1),
        });
        let node = Node {
            keyword: words.next().expect("a first word"),
            args: words.collect(),
            block: None,
        };
        (node, Diags::default())
    }

    fn route(line: &str) -> (Option<RouteSpec>, Vec<String>) {
        let (n, mut d) = node(line);
        let r = route_line(&n, "virtual route", &mut d);
        (r, d.into_vec().into_iter().map(|d| d.message).collect())
    }

    fn rule(line: &str, prefs: &mut RulePreferences) -> (Option<RuleSpec>, Vec<String>) {
        let (n, mut d) = node(line);
        let r = rule_line(&n, "virtual rule", prefs, &mut d);
        let diags = d.into_vec();
        assert!(diags.iter().all(|d| d.severity == Severity::Warning));
        (r, diags.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn a_gatewayed_route_with_every_supported_option() {
        let (r, w) = route(
            "src 192.0.2.1 198.51.100.0/24 via 192.0.2.254 dev eth0 table 100 metric 7 scope link",
        );
        let r = r.expect("read");
        assert!(
            w.len() == 1 && w[0].contains("does not watch the routes"),
            "{w:?}"
        );
        assert_eq!(r.dst.to_string(), "198.51.100.0/24");
        assert_eq!(r.via, Some("192.0.2.254".parse().unwrap()));
        assert_eq!(r.src, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(r.dev.as_deref(), Some("eth0"));
        assert_eq!((r.table, r.metric), (100, Some(7)));
        assert_eq!(r.scope, Some(crate::vip::Scope::Link));
        assert_eq!(r.kind, RouteKind::Unicast);
    }

    #[test]
    fn discard_routes_and_the_default_route_of_each_family() {
        let (r, w) = route("blackhole 203.0.113.0/24 no_track");
        let r = r.expect("read");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!((r.kind, r.no_track), (RouteKind::Blackhole, true));
        let (r, _) = route("to unreachable 2001:db8:1::/48 dev eth0");
        assert_eq!(r.expect("read").kind, RouteKind::Unreachable);
        let (r, _) = route("inet6 default via 2001:db8::1 dev eth0");
        assert_eq!(r.expect("read").dst.to_string(), "::/0");
        let (r, w) = route("0.0.0.0/0 gw 192.0.2.1 table 100");
        assert_eq!(r.expect("read").via, Some("192.0.2.1".parse().unwrap()));
        assert!(w.iter().any(|w| w.contains("'gw' is deprecated")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("not tracked")), "{w:?}");
    }

    #[test]
    fn what_keepalived_skips_or_this_daemon_does_not_model_is_skipped_by_name() {
        for (line, says) in [
            (
                "198.51.100.0/24 via 192.0.2.1 or 192.0.2.2",
                "'or' is not supported",
            ),
            (
                "198.51.100.0/24 dev eth0 mtu 1400",
                "'mtu' is not supported",
            ),
            (
                "local 198.51.100.1 dev eth0",
                "type 'local' is not supported",
            ),
            (
                "198.51.100.0/24 via 2001:db8::1",
                "cannot mix IPv4 and IPv6",
            ),
            (
                "198.51.100.0/24 dev eth0 table nosuch",
                "table nosuch not found",
            ),
            ("198.51.100./24 dev eth0", "bad destination 198.51.100./24"),
            ("via 192.0.2.1 dev eth0", "no destination"),
            ("198.51.100.0/24 dev", "'dev' needs a value"),
        ] {
            let (r, w) = route(line);
            assert!(r.is_none(), "{line}");
            assert!(
                w.iter().any(|w| w.contains(says) && w.contains("skipped")),
                "{line}: {w:?}"
            );
        }
    }

    #[test]
    fn rules_take_keepalived_s_count_down_per_family_when_no_preference_is_set() {
        let mut prefs = RulePreferences::default();
        let (r, w) = rule("from 192.0.2.0/24 table 100", &mut prefs);
        assert_eq!(r.expect("read").preference, 16384);
        assert!(w[0].contains("using 16384"), "{w:?}");
        let (r, _) = rule("from 2001:db8::/32 lookup 100", &mut prefs);
        assert_eq!(r.expect("read").preference, 16384);
        let (r, _) = rule("to 198.51.100.0/24 table 100", &mut prefs);
        assert_eq!(r.expect("read").preference, 16383);
        let (r, w) = rule(
            "from 192.0.2.0/24 to 198.51.100.0/24 iif eth0 oif eth1 fwmark 0x10/0xff preference 100 table main no_track",
            &mut prefs,
        );
        assert!(w.is_empty(), "{w:?}");
        let r = r.expect("read");
        assert_eq!(r.preference, 100);
        assert_eq!(r.fwmark, Some((16, Some(255))));
        assert_eq!(r.action, RuleAction::Table(TABLE_MAIN));
        assert_eq!(
            (r.iif.as_deref(), r.oif.as_deref()),
            (Some("eth0"), Some("eth1"))
        );
        let (r, _) = rule("to 203.0.113.0/24 prohibit priority 5", &mut prefs);
        assert_eq!(r.expect("read").action, RuleAction::Prohibit);
    }

    #[test]
    fn bad_rules_are_skipped_without_consuming_a_preference() {
        let mut prefs = RulePreferences::default();
        for (line, says) in [
            ("to 192.168.100./24 table 1", "invalid rule to address"),
            ("from 192.0.2.0/24", "no action"),
            ("from 192.0.2.0/24 table 0", "not found or 0"),
            ("from 192.0.2.0/24 table 1 blackhole", "more than one"),
            (
                "from 192.0.2.0/24 to 2001:db8::/32 table 1",
                "mixes IPv4 and IPv6",
            ),
            (
                "from 192.0.2.0/24 sport 80 table 1",
                "'sport' is not supported",
            ),
            (
                "from 192.0.2.0/24 fwmark 1/x table 1",
                "invalid rule fwmark",
            ),
        ] {
            let (r, w) = rule(line, &mut prefs);
            assert!(r.is_none(), "{line}");
            assert!(
                w.iter().any(|w| w.contains(says) && w.contains("skipped")),
                "{line}: {w:?}"
            );
        }
        let (r, _) = rule("from 192.0.2.0/24 table 1", &mut prefs);
        assert_eq!(r.expect("read").preference, RULE_START_PREFERENCE);
    }
}
