//! `virtual_ipaddress` / `virtual_ipaddress_excluded` lines and `unicast_peer` lines.

use std::net::IpAddr;

use super::track::block_lines;
use super::values::{ip, uint};
use crate::diag::{Diags, Span};
use crate::lexer::Word;
use crate::parser::Node;
use crate::vip::{Scope, VipSpec};

/// keepalived's VIP options this daemon parses and ignores (with a warning).
const IGNORED_FLAGS: &[&str] = &[
    "home",
    "-nodad",
    "nodad",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "no_track",
    "use_vmac",
];
/// Ignored options that take a value.
const IGNORED_WITH_VALUE: &[&str] = &["peer", "preferred_lft", "track_group"];

/// The addresses of a `virtual_ipaddress`-style block, each with its place.
pub(crate) fn vip_block(node: &Node, d: &mut Diags) -> Vec<(VipSpec, Span)> {
    let mut out = Vec::new();
    for line in block_lines(node, d) {
        if line.block.is_some() {
            d.error(
                line.span(),
                format!("{} lines take no block", node.keyword.text),
            );
            continue;
        }
        if let Some(v) = vip_line(&line.keyword, &line.args, d) {
            out.push((v, line.span().clone()));
        }
    }
    out
}

/// `<IP>[/<PREFIX>] [brd <IP>] [dev <IF>] [scope <SCOPE>] [label <LABEL>]`.
fn vip_line(addr: &Word, opts: &[Word], d: &mut Diags) -> Option<VipSpec> {
    let (ip_text, prefix_text) = match addr.text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (addr.text.as_str(), None),
    };
    let Ok(ip) = ip_text.parse::<IpAddr>() else {
        d.error(
            &addr.span,
            format!(
                "bad virtual address '{}': not an IPv4 or IPv6 address",
                addr.text
            ),
        );
        return None;
    };
    let mut vip = VipSpec::host(ip);
    if let Some(p) = prefix_text {
        let max = vip.prefix_len;
        match p.parse::<u8>() {
            Ok(v) if v <= max => vip.prefix_len = v,
            _ => {
                d.error(
                    &addr.span,
                    format!(
                        "bad prefix length '/{p}' in '{}': expected 0..={max}",
                        addr.text
                    ),
                );
                return None;
            }
        }
    }
    let mut i = 0;
    while i < opts.len() {
        let key = &opts[i];
        let value = opts.get(i + 1);
        match key.text.as_str() {
            "brd" | "broadcast" => {
                let Some(v) = value else {
                    return missing(key, d);
                };
                match (ip, v.text.parse::<IpAddr>()) {
                    (IpAddr::V4(_), Ok(IpAddr::V4(b))) => vip.brd = Some(b),
                    (IpAddr::V6(_), _) => {
                        d.error(&key.span, "brd applies to IPv4 addresses only");
                        return None;
                    }
                    _ => {
                        d.error(&v.span, format!("bad broadcast address '{}'", v.text));
                        return None;
                    }
                }
                i += 2;
            }
            "dev" => {
                let Some(v) = value else {
                    return missing(key, d);
                };
                vip.dev = Some(v.text.clone());
                i += 2;
            }
            "label" => {
                let Some(v) = value else {
                    return missing(key, d);
                };
                vip.label = Some(v.text.clone());
                i += 2;
            }
            "scope" => {
                let Some(v) = value else {
                    return missing(key, d);
                };
                vip.scope = Some(match v.text.as_str() {
                    "global" => Scope::Global,
                    "site" => Scope::Site,
                    "link" => Scope::Link,
                    "host" => Scope::Host,
                    "nowhere" => Scope::Nowhere,
                    other => {
                        d.error(
                            &v.span,
                            format!(
                                "bad scope '{other}': expected global, site, link, host or nowhere"
                            ),
                        );
                        return None;
                    }
                });
                i += 2;
            }
            k if IGNORED_FLAGS.contains(&k) => {
                d.warn(
                    &key.span,
                    format!("address option '{k}' is not supported by wasmalived; ignored"),
                );
                i += 1;
            }
            k if IGNORED_WITH_VALUE.contains(&k) => {
                d.warn(
                    &key.span,
                    format!("address option '{k}' is not supported by wasmalived; ignored"),
                );
                i += 2;
            }
            other => {
                d.error(
                    &key.span,
                    format!("unknown address option '{other}': expected brd, dev, scope or label"),
                );
                return None;
            }
        }
    }
    Some(vip)
}

fn missing(key: &Word, d: &mut Diags) -> Option<VipSpec> {
    d.error(&key.span, format!("'{}' needs a value", key.text));
    None
}

/// `unicast_peer { <IP> [min_ttl N] [max_ttl N] … }`.
pub(crate) fn peers(node: &Node, d: &mut Diags) -> Vec<(IpAddr, Span)> {
    let mut out = Vec::new();
    for line in block_lines(node, d) {
        let Some(addr) = ip(&line.keyword, "unicast peer", d) else {
            continue;
        };
        let mut rest = line.args.as_slice();
        while let [key, tail @ ..] = rest {
            match (key.text.as_str(), tail.first()) {
                ("min_ttl" | "max_ttl", Some(v)) => {
                    if uint(v, &key.text, 0, 255, d).is_some() {
                        d.warn(
                            &key.span,
                            format!("{} is not supported by wasmalived; ignored", key.text),
                        );
                    }
                    rest = &tail[1..];
                }
                _ => {
                    d.error(&key.span, format!("unexpected '{}' after a unicast peer: one address per line (optionally min_ttl/max_ttl)", key.text));
                    break;
                }
            }
        }
        out.push((addr, line.span().clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn words(text: &str) -> Vec<Word> {
        let file: Arc<Path> = Arc::from(PathBuf::from("t.conf"));
        text.split(' ')
            .enumerate()
            .map(|(i, t)| Word {
                text: t.into(),
                quoted: false,
                span: Span::new(file.clone(), 1, i as u32 + 1),
            })
            .collect()
    }

    fn vip(text: &str) -> (Option<VipSpec>, Vec<String>) {
        let w = words(text);
        let mut d = Diags::default();
        let v = vip_line(&w[0], &w[1..], &mut d);
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
    fn default_prefixes() {
        assert_eq!(vip("192.0.2.1").0.map(|v| v.prefix_len), Some(32));
        assert_eq!(vip("2001:db8::1").0.map(|v| v.prefix_len), Some(128));
    }

    #[test]
    fn bad_vips() {
        assert!(vip("192.0.2.300").1[0].contains("bad virtual address"));
        assert!(vip("192.0.2.1/33").1[0].contains("bad prefix length"));
        assert!(vip("2001:db8::1 brd 1.2.3.4").1[0].contains("IPv4 addresses only"));
        assert!(vip("192.0.2.1 dev").1[0].contains("needs a value"));
        assert!(vip("192.0.2.1 bogus x").1[0].contains("unknown address option"));
        let (v, w) = vip("192.0.2.1 no_track");
        assert!(v.is_some() && w[0].contains("not supported"));
    }
}
