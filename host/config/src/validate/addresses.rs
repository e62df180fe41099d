//! Addresses as keepalived reads them: `virtual_ipaddress` lines (`alloc_ipaddress`),
//! `unicast_peer` lines (`alloc_vrrp_unicast_peer`) and single source addresses
//! (`inet_stosockaddr`).

use std::net::{IpAddr, Ipv4Addr};

use crate::compat::{self, read_unsigned, OnReject};
use crate::diag::Diags;
use crate::lexer::Word;
use crate::parser::Node;
use crate::vip::{Scope, VipSpec};

/// keepalived's VIP options this daemon parses and ignores (with a warning).
const IGNORED_FLAGS: &[&str] = &[
    "home",
    "-nodad",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "no_track",
    "use_vmac",
];
/// Ignored options that take a value.
const IGNORED_WITH_VALUE: &[&str] = &["peer", "preferred_lft"];
/// Longest address label (IFNAMSIZ - 1).
const MAX_LABEL: usize = 15;

/// One `virtual_ipaddress` line: `<IP>[/<PREFIX>] [brd <IP>|+|-] [dev <IF>] [scope <SCOPE>]
/// [label <LABEL>] …`; `None` when keepalived skips the address (with a warning).
pub(crate) fn vip_line(line: &Node, d: &mut Diags) -> Option<VipSpec> {
    let addr = &line.keyword;
    let opts = line.args.as_slice();
    let (ip_text, prefix_text) = match addr.text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (addr.text.as_str(), None),
    };
    let Ok(ip) = ip_text.parse::<IpAddr>() else {
        d.warn(
            &addr.span,
            format!("bad virtual address '{}': not an IPv4 or IPv6 address; skipped, as keepalived does", addr.text),
        );
        return None;
    };
    let mut vip = VipSpec::host(ip);
    if let Some(p) = prefix_text {
        let max = vip.prefix_len;
        let default = format!("/{max}");
        if let Some(v) = compat::take_number(
            read_unsigned(p, 0, u64::from(max), true),
            addr,
            "prefix length in",
            OnReject::Use(&default),
            d,
        ) {
            vip.prefix_len = u8::try_from(v).unwrap_or(max);
        }
    }
    let mut broadcast: Option<&Word> = None;
    let mut i = 0;
    while i < opts.len() {
        let key = &opts[i];
        let value = opts.get(i + 1);
        let takes_value = matches!(
            key.text.as_str(),
            "dev" | "scope" | "brd" | "broadcast" | "label"
        ) || IGNORED_WITH_VALUE.contains(&key.text.as_str());
        if takes_value && value.is_none() {
            d.warn(
                &key.span,
                format!(
                    "'{}' needs a value; address {} skipped, as keepalived does",
                    key.text, addr.text
                ),
            );
            return None;
        }
        match (key.text.as_str(), value) {
            ("dev", Some(v)) => {
                if vip.dev.is_some() {
                    d.warn(
                        &key.span,
                        format!(
                            "dev given twice for {}; address skipped, as keepalived does",
                            addr.text
                        ),
                    );
                    return None;
                }
                vip.dev = Some(v.text.clone());
                i += 2;
            }
            ("scope", Some(v)) => {
                match scope(&v.text) {
                    Some(s) => vip.scope = Some(s),
                    None => d.warn(
                        &v.span,
                        format!("bad scope '{}' (expected global, site, link, host, nowhere or their numbers); scope ignored, as keepalived does", v.text),
                    ),
                }
                i += 2;
            }
            ("brd" | "broadcast", Some(v)) => {
                if ip.is_ipv6() {
                    d.warn(&key.span, format!("a broadcast address for the IPv6 address {}; address skipped, as keepalived does", addr.text));
                    return None;
                }
                if v.text != "+" && v.text != "-" && v.text.parse::<Ipv4Addr>().is_err() {
                    d.warn(
                        &v.span,
                        format!(
                            "bad broadcast address '{}'; address {} skipped, as keepalived does",
                            v.text, addr.text
                        ),
                    );
                    return None;
                }
                broadcast = Some(v);
                i += 2;
            }
            ("label", Some(v)) => {
                if v.text.chars().count() > MAX_LABEL {
                    d.warn(&v.span, format!("label '{}' is longer than {MAX_LABEL} characters; address {} skipped, as keepalived does", v.text, addr.text));
                    return None;
                }
                vip.label = Some(v.text.clone());
                i += 2;
            }
            (k, _) if IGNORED_FLAGS.contains(&k) => {
                d.warn(
                    &key.span,
                    format!("address option '{k}' is not supported by wasmalived; ignored"),
                );
                i += 1;
            }
            (k, _) if IGNORED_WITH_VALUE.contains(&k) => {
                d.warn(
                    &key.span,
                    format!("address option '{k}' is not supported by wasmalived; ignored"),
                );
                i += 2;
            }
            (other, _) => {
                d.warn(
                    &key.span,
                    format!("unknown address option '{other}' (expected brd, dev, scope or label); ignored, as keepalived does"),
                );
                i += 1;
            }
        }
    }
    if let (Some(b), IpAddr::V4(a)) = (broadcast, ip) {
        vip.brd = match b.text.as_str() {
            "+" | "-" if vip.prefix_len > 30 => {
                d.warn(&b.span, format!("prefix length /{} is too long for a broadcast address; broadcast ignored, as keepalived does", vip.prefix_len));
                None
            }
            "+" => Some(Ipv4Addr::from(u32::from(a) | host_mask(vip.prefix_len))),
            "-" => Some(Ipv4Addr::from(u32::from(a) & !host_mask(vip.prefix_len))),
            text => text.parse().ok(),
        };
    }
    if ip.is_ipv6() {
        if vip.scope.take().is_some() {
            d.warn(
                &addr.span,
                format!(
                    "a scope for the IPv6 address {}; scope ignored, as keepalived does",
                    addr.text
                ),
            );
        }
        if vip.label.take().is_some() {
            d.warn(
                &addr.span,
                format!(
                    "a label for the IPv6 address {}; label ignored, as keepalived does",
                    addr.text
                ),
            );
        }
    }
    Some(vip)
}

/// keepalived's default interface (`DFLT_INTERFACE`), where a static address without `dev`
/// goes.
const DEFAULT_INTERFACE: &str = "eth0";

/// One `static_ipaddress` line: a `virtual_ipaddress` line whose address always has its
/// interface (keepalived puts one without `dev` on its default interface, `eth0`).
pub(crate) fn static_address_line(line: &Node, d: &mut Diags) -> Option<VipSpec> {
    let mut address = vip_line(line, d)?;
    if address.dev.is_none() {
        d.warn(
            line.span(),
            format!(
                "static address {} has no dev; using {DEFAULT_INTERFACE}, as keepalived does",
                line.keyword.text
            ),
        );
        address.dev = Some(DEFAULT_INTERFACE.to_owned());
    }
    Some(address)
}

/// The host bits of an IPv4 prefix.
fn host_mask(prefix: u8) -> u32 {
    u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)
}

/// An address scope by name or number (as `ip` and keepalived's rt_scopes table).
pub(super) fn scope(text: &str) -> Option<Scope> {
    match text {
        "global" | "0" => Some(Scope::Global),
        "site" | "200" => Some(Scope::Site),
        "link" | "253" => Some(Scope::Link),
        "host" | "254" => Some(Scope::Host),
        "nowhere" | "255" => Some(Scope::Nowhere),
        _ => None,
    }
}

/// A single address (`mcast_src_ip`, `unicast_src_ip`, a unicast peer) as keepalived's
/// `inet_stosockaddr` reads it: text from the first `/` or `-` on is dropped (with a
/// warning here); `None` when it is not an address (keepalived skips the keyword).
pub(crate) fn source_address(word: &Word, what: &str, d: &mut Diags) -> Option<IpAddr> {
    let text = word.text.as_str();
    let cut = text.find(['/', '-']).unwrap_or(text.len());
    let (addr_text, rest) = text.split_at(cut);
    let parsed = if text.contains(':') {
        addr_text.parse::<std::net::Ipv6Addr>().map(IpAddr::V6).ok()
    } else {
        addr_text.parse::<Ipv4Addr>().map(IpAddr::V4).ok()
    };
    let Some(addr) = parsed else {
        d.warn(
            &word.span,
            format!(
                "bad {what} '{text}': not an IPv4 or IPv6 address; skipped, as keepalived does"
            ),
        );
        return None;
    };
    if !rest.is_empty() {
        d.warn(
            &word.span,
            format!(
                "{what} '{text}': '{rest}' ignored; using the address {addr}, as keepalived does"
            ),
        );
    }
    Some(addr)
}

/// One `unicast_peer` line: `<IP> [min_ttl N] [max_ttl N]`.
pub(crate) fn peer_line(line: &Node, d: &mut Diags) -> Option<IpAddr> {
    let addr = source_address(&line.keyword, "unicast peer", d)?;
    let mut rest = line.args.as_slice();
    while let [key, tail @ ..] = rest {
        let Some(value) = tail.first() else {
            d.warn(
                &key.span,
                format!("'{}' needs a value; ignored, as keepalived does", key.text),
            );
            break;
        };
        match (
            key.text.as_str(),
            read_unsigned(&value.text, 0, 255, false).value(),
        ) {
            ("min_ttl" | "max_ttl", Some(_)) => d.warn(
                &key.span,
                format!("{} is not supported by wasmalived; ignored", key.text),
            ),
            (_, None) => d.warn(
                &value.span,
                format!(
                    "'{} {}' after a unicast peer: not a TTL 0..=255; ignored, as keepalived does",
                    key.text, value.text
                ),
            ),
            (other, Some(_)) => {
                d.warn(&key.span, format!("unknown unicast_peer option '{other}'; it and the rest of the line ignored, as keepalived does"));
                break;
            }
        }
        rest = &tail[1..];
    }
    Some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn line(text: &str) -> Node {
        let file: Arc<Path> = Arc::from(PathBuf::from("t.conf"));
        let mut words = text.split(' ').enumerate().map(|(i, t)| Word {
            text: t.into(),
            quoted: false,
            span: Span::new(file.clone(), 1, i as u32 + 1),
        });
        Node {
            keyword: words.next().expect("address"),
            args: words.collect(),
            block: None,
        }
    }

    fn vip(text: &str) -> (Option<VipSpec>, Vec<String>) {
        let mut d = Diags::default();
        let v = vip_line(&line(text), &mut d);
        (v, d.into_vec().iter().map(|x| x.message.clone()).collect())
    }

    #[test]
    fn full_vip_line() {
        let (v, diags) = vip("192.0.2.200/24 brd 192.0.2.255 dev eth1 scope link label eth1:1");
        assert!(diags.is_empty(), "{diags:?}");
        let v = v.expect("parsed");
        assert_eq!(v.prefix_len, 24);
        assert_eq!(v.brd, Some("192.0.2.255".parse().expect("ip")));
        assert_eq!(v.dev.as_deref(), Some("eth1"));
        assert_eq!(v.scope, Some(Scope::Link));
        assert_eq!(v.label.as_deref(), Some("eth1:1"));
    }

    #[test]
    fn default_prefixes_and_computed_broadcasts() {
        assert_eq!(vip("192.0.2.1").0.map(|v| v.prefix_len), Some(32));
        assert_eq!(vip("2001:db8::1").0.map(|v| v.prefix_len), Some(128));
        assert_eq!(
            vip("192.0.2.1/24 brd +").0.and_then(|v| v.brd),
            Some("192.0.2.255".parse().expect("ip"))
        );
        assert_eq!(
            vip("192.0.2.1/24 brd -").0.and_then(|v| v.brd),
            Some("192.0.2.0".parse().expect("ip"))
        );
        let (v, w) = vip("192.0.2.1/31 brd +");
        assert!(v.expect("kept").brd.is_none() && w[0].contains("too long for a broadcast"));
    }

    #[test]
    fn lenient_vips_like_keepalived() {
        let (v, w) = vip("192.0.2.1/33");
        assert_eq!(v.map(|v| v.prefix_len), Some(32));
        assert!(w[0].contains("using /32, as keepalived does"), "{w:?}");
        let (v, w) = vip("192.0.2.1 bogus");
        assert!(
            v.is_some() && w[0].contains("unknown address option 'bogus'"),
            "{w:?}"
        );
        let (v, w) = vip("2001:db8::1 scope link label x");
        let v = v.expect("kept");
        assert!(
            v.scope.is_none() && v.label.is_none() && w.len() == 2,
            "{w:?}"
        );
        let (v, w) = vip("192.0.2.1 no_track");
        assert!(v.is_some() && w[0].contains("not supported"));
    }

    #[test]
    fn vips_keepalived_skips() {
        for (text, why) in [
            ("192.0.2.300", "not an IPv4 or IPv6 address"),
            (
                "2001:db8::1 brd 192.0.2.255",
                "broadcast address for the IPv6",
            ),
            ("192.0.2.1 dev", "needs a value"),
            ("192.0.2.1 dev a dev b", "dev given twice"),
            ("192.0.2.1 brd x", "bad broadcast"),
            ("192.0.2.1 label abcdefghijklmnop", "longer than 15"),
        ] {
            let (v, w) = vip(text);
            assert!(v.is_none(), "{text}");
            assert!(
                w[0].contains(why) && w[0].contains("skipped, as keepalived does"),
                "{text}: {w:?}"
            );
        }
    }

    #[test]
    fn source_addresses_drop_a_prefix_length() {
        let mut d = Diags::default();
        let w = line("192.0.2.2/24").keyword;
        assert_eq!(
            source_address(&w, "unicast peer", &mut d),
            Some("192.0.2.2".parse().expect("ip"))
        );
        let msgs: Vec<String> = d.into_vec().iter().map(|x| x.message.clone()).collect();
        assert_eq!(msgs, ["unicast peer '192.0.2.2/24': '/24' ignored; using the address 192.0.2.2, as keepalived does"]);
        let mut d = Diags::default();
        assert_eq!(
            source_address(&line("2001:db8::2/64").keyword, "x", &mut d),
            Some("2001:db8::2".parse().expect("ip"))
        );
        assert_eq!(source_address(&line("peer-one").keyword, "x", &mut d), None);
    }
}
