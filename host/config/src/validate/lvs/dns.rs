//! `DNS_CHECK { type T; name N }` (keepalived's `check/check_dns.c`): a query of type `type`
//! (default SOA; A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY, any case) for `name`
//! (default the root). keepalived refuses a name with an empty label (`a..b`, `.a`) and a
//! second `name`; an unknown type is reported and the default kept — both are errors here, as
//! they make `keepalived -t` fail. A label longer than 63 bytes or a name longer than 253
//! cannot be encoded (keepalived would send a corrupt query): refused too.

use crate::diag::Diags;
use crate::lvs::{CheckerKind, DnsCheck, DnsType};
use crate::parser::Node;

use super::super::unknown;
use super::super::values::one_arg;

/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;
/// Longest name in text form without the final dot (RFC 1035 §2.3.4: 255 bytes encoded).
const MAX_NAME: usize = 253;

/// The `DNS_CHECK`-specific lines.
pub(super) fn kind(lines: &[&Node], d: &mut Diags) -> Option<CheckerKind> {
    let mut check = DnsCheck {
        qtype: DnsType::default(),
        name: ".".to_owned(),
    };
    let mut named = false;
    for line in lines {
        match line.keyword.text.as_str() {
            "type" => {
                let w = one_arg(line, d)?;
                match DnsType::from_name(&w.text) {
                    Some(t) => check.qtype = t,
                    None => d.error(
                        &w.span,
                        format!("unknown DNS_CHECK type '{}': expected one of A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY", w.text),
                    ),
                }
            }
            "name" => {
                let w = one_arg(line, d)?;
                if named {
                    d.error(&w.span, "DNS_CHECK name is already given");
                    continue;
                }
                named = true;
                match name_problem(&w.text) {
                    None => check.name = w.text.clone(),
                    Some(problem) => d.error(
                        &w.span,
                        format!("bad DNS_CHECK name '{}': {problem}", w.text),
                    ),
                }
            }
            _ => unknown(line, "DNS_CHECK", d),
        }
    }
    Some(CheckerKind::Dns(check))
}

/// Why `name` cannot be queried, if it cannot.
fn name_problem(name: &str) -> Option<&'static str> {
    if name == "." {
        return None;
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.split('.').any(str::is_empty) {
        return Some("it has an empty label");
    }
    if trimmed.split('.').any(|l| l.len() > MAX_LABEL) {
        return Some("a label is longer than 63 bytes");
    }
    if trimmed.len() > MAX_NAME {
        return Some("it is longer than 253 bytes");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::name_problem;

    #[test]
    fn names_follow_keepalived_and_rfc_1035() {
        for ok in [".", "example.com", "www.example.com.", "a"] {
            assert_eq!(name_problem(ok), None, "{ok}");
        }
        for bad in [".a", "a..b", "", "..", &format!("{}.com", "x".repeat(64))] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
        let long = vec!["abcdefghi"; 26].join(".");
        assert_eq!(name_problem(&long), Some("it is longer than 253 bytes"));
    }
}
