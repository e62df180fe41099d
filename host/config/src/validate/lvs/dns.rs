//! `DNS_CHECK { type T; name N }` (keepalived 2.2.7's `check/check_dns.c`): a query of type
//! `type` (default SOA; A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY, any case) for
//! `name` (default the root). keepalived reports and ignores an unknown type, a name with an
//! empty label (`a..b`, `.a`) and a second `name` (`-t` exits 5, the file runs): warnings
//! here, with the same fallback. A label longer than 63 bytes or a name longer than 253
//! cannot be encoded (keepalived would send a corrupt query): an error.

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
                let Some(w) = one_arg(line, d) else { continue };
                match DnsType::from_name(&w.text) {
                    Some(t) => check.qtype = t,
                    None => d.warn(
                        &w.span,
                        format!("unknown DNS_CHECK type '{}' (expected one of A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY); ignored, as keepalived does", w.text),
                    ),
                }
            }
            "name" => {
                let Some(w) = one_arg(line, d) else { continue };
                if named {
                    d.warn(
                        &w.span,
                        "DNS_CHECK name is already given; ignored, as keepalived does",
                    );
                    continue;
                }
                match name_problem(&w.text) {
                    None => {
                        named = true;
                        check.name = w.text.clone();
                    }
                    Some(problem @ Problem::EmptyLabel) => d.warn(
                        &w.span,
                        format!(
                            "bad DNS_CHECK name '{}': {problem}; ignored, as keepalived does",
                            w.text
                        ),
                    ),
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

/// Why a name cannot be queried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// keepalived's own check (reported and ignored there).
    EmptyLabel,
    /// RFC 1035 §2.3.4: a label is at most 63 bytes.
    LongLabel,
    /// RFC 1035 §2.3.4: a name is at most 255 bytes encoded.
    LongName,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Problem::EmptyLabel => "it has an empty label",
            Problem::LongLabel => "a label is longer than 63 bytes",
            Problem::LongName => "it is longer than 253 bytes",
        })
    }
}

/// Why `name` cannot be queried, if it cannot.
fn name_problem(name: &str) -> Option<Problem> {
    if name == "." {
        return None;
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.split('.').any(str::is_empty) {
        return Some(Problem::EmptyLabel);
    }
    if trimmed.split('.').any(|l| l.len() > MAX_LABEL) {
        return Some(Problem::LongLabel);
    }
    if trimmed.len() > MAX_NAME {
        return Some(Problem::LongName);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{name_problem, Problem};

    #[test]
    fn names_follow_keepalived_and_rfc_1035() {
        for ok in [".", "example.com", "www.example.com.", "a"] {
            assert_eq!(name_problem(ok), None, "{ok}");
        }
        for bad in [".a", "a..b", "", "..", &format!("{}.com", "x".repeat(64))] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
        let long = vec!["abcdefghi"; 26].join(".");
        assert_eq!(name_problem(&long), Some(Problem::LongName));
        assert_eq!(name_problem("a..b"), Some(Problem::EmptyLabel));
    }
}
