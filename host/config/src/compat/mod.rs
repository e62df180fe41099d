//! keepalived compatibility: where keepalived 2.2.7 takes a doubtful value and carries on,
//! the validators do the same thing and say so.
//!
//! Every leniency here is a warning (an error under `--strict`, see
//! [`crate::LoadOptions::strict`]) at the `file:line:column` of the word concerned, and its
//! message says what was done instead, ending with "as keepalived does". The classes:
//!
//! - *numbers* ([`number`]): a number followed by text (`priority 100;`, `interval 2x`,
//!   `advert_int 1,backup`), out of range, or with too many decimals is read, rounded,
//!   ignored or replaced by a default exactly as keepalived's readers do, keyword by
//!   keyword ([`take`]);
//! - *flag keywords with an argument* (`nopreempt 1`, `vrrp_strict off`): keepalived
//!   ignores the argument and sets the flag ([`flag_args`]);
//! - *booleans* not spelled `on|off|true|false|yes|no` (`strict_mode 1`): the keyword is
//!   ignored ([`boolean`]);
//! - *extra words* after a single value: ignored ([`one_value`]);
//! - and, in the validators: `state SLAVE` (BACKUP), a second definition of a name (the
//!   first stays), an address with a prefix length where an address is expected (the
//!   address is used), VIPs of the other address family (ignored), sync groups without
//!   members (removed), unknown or later-defined `track_script` names (ignored), stray
//!   braces (see [`crate::parser`] and [`crate::reflow`]).

pub(crate) mod number;

use std::fmt::Display;

use crate::diag::Diags;
use crate::lexer::Word;
use crate::parser::Node;
pub(crate) use number::{check_true_false, read_decimal, read_int, read_unsigned, Reading};

/// What keepalived does when it rejects a keyword's value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OnReject<'a> {
    /// The keyword is ignored (what was set before, or the default, stays).
    Ignore,
    /// This value is used instead (described for the message, e.g. "the default 100").
    Use(&'a str),
}

/// Reports keepalived's verdict on `word` read as `what`, and returns the value keepalived
/// uses from it (`None`: the caller applies `on_reject`). `show` formats a value.
pub(crate) fn take<T>(
    reading: Reading<T>,
    word: &Word,
    what: &str,
    on_reject: OnReject<'_>,
    show: impl Fn(&T) -> String,
    d: &mut Diags,
) -> Option<T> {
    match reading {
        Reading::Exact(v) => Some(v),
        Reading::Adjusted { value, why } => {
            d.warn(
                &word.span,
                format!(
                    "{what} '{}': {why}; using {}, as keepalived does",
                    word.text,
                    show(&value)
                ),
            );
            Some(value)
        }
        Reading::Rejected { why } => {
            match on_reject {
                OnReject::Ignore => d.warn(
                    &word.span,
                    format!(
                        "bad {what} '{}' ({why}); ignored, as keepalived does",
                        word.text
                    ),
                ),
                OnReject::Use(instead) => d.warn(
                    &word.span,
                    format!(
                        "bad {what} '{}' ({why}); using {instead}, as keepalived does",
                        word.text
                    ),
                ),
            }
            None
        }
    }
}

/// [`take`] for plain numbers.
pub(crate) fn take_number<T: Display>(
    reading: Reading<T>,
    word: &Word,
    what: &str,
    on_reject: OnReject<'_>,
    d: &mut Diags,
) -> Option<T> {
    take(reading, word, what, on_reject, ToString::to_string, d)
}

/// Formats microseconds as seconds (`1500000` → `1.5 s`).
pub(crate) fn show_micros(us: &u64) -> String {
    format!("{} s", *us as f64 / 1_000_000.0)
}

/// The value of a keyword that takes one (keepalived uses the first word and ignores any
/// others, with a warning here). A missing value stops keepalived: an error. (A block after
/// such a keyword never reaches the validators: [`crate::reflow`] handles it.)
pub(crate) fn one_value<'n>(node: &'n Node, d: &mut Diags) -> Option<&'n Word> {
    match node.args.as_slice() {
        [] => {
            d.error(node.span(), format!("{} needs a value", node.keyword.text));
            None
        }
        [value, extra @ ..] => {
            if let Some(first) = extra.first() {
                d.warn(
                    &first.span,
                    format!(
                        "{} takes one value; '{}' and what follows ignored, as keepalived does",
                        node.keyword.text, first.text
                    ),
                );
            }
            Some(value)
        }
    }
}

/// A flag keyword (`nopreempt`, `accept`, `vrrp_strict`, …): keepalived sets it whatever
/// follows, so an argument is ignored with a warning saying the flag is set.
pub(crate) fn flag_args(node: &Node, d: &mut Diags) {
    if let Some(first) = node.args.first() {
        let words: Vec<&str> = node.args.iter().map(|w| w.text.as_str()).collect();
        d.warn(
            &first.span,
            format!(
                "{kw} takes no value; '{}' ignored and {kw} is set, as keepalived does",
                words.join(" "),
                kw = node.keyword.text
            ),
        );
    }
}

/// A keyword with an optional `<BOOL>` (`strict_mode`, `smtp_alert`, …): none means on; a
/// word keepalived does not read as a boolean leaves the setting unchanged (`None`).
pub(crate) fn boolean(node: &Node, d: &mut Diags) -> Option<bool> {
    let Some(word) = node.args.first() else {
        return Some(true);
    };
    if let Some(extra) = node.args.get(1) {
        d.warn(
            &extra.span,
            format!(
                "{} takes one value; '{}' and what follows ignored, as keepalived does",
                node.keyword.text, extra.text
            ),
        );
    }
    let value = check_true_false(&word.text);
    if value.is_none() {
        d.warn(
            &word.span,
            format!(
                "bad boolean '{}' for {} (expected on|off|true|false|yes|no); {} ignored, as keepalived does",
                word.text, node.keyword.text, node.keyword.text
            ),
        );
    }
    value
}

/// The name of a keepalived section (`vrrp_instance NAME {`). keepalived skips a
/// `vrrp_instance` or `vrrp_sync_group` that has no name or more than one (a warning here);
/// a `vrrp_script` takes its first word (a missing name stops keepalived: an error).
pub(crate) fn section_name<'n>(node: &'n Node, d: &mut Diags) -> Option<&'n str> {
    let kw = node.keyword.text.as_str();
    let skips = kw != "vrrp_script" && kw != "vrrp_track_process";
    if node.block.is_none() {
        d.error(node.span(), format!("{kw} needs a block {{ … }}"));
        return None;
    }
    match node.args.as_slice() {
        [] if skips => {
            d.warn(
                node.span(),
                format!("{kw} needs a name; section skipped, as keepalived does"),
            );
            None
        }
        [] => {
            d.error(node.span(), format!("{kw} needs a name"));
            None
        }
        [name] => Some(name.text.as_str()),
        [_, extra, ..] if skips => {
            d.warn(
                &extra.span,
                format!(
                    "{kw} takes one name; unexpected '{}', section skipped, as keepalived does",
                    extra.text
                ),
            );
            None
        }
        [name, extra, ..] => {
            d.warn(
                &extra.span,
                format!(
                    "{kw} takes one name; '{}' and what follows ignored, as keepalived does",
                    extra.text
                ),
            );
            Some(name.text.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    fn node(text: &str) -> Node {
        let file: Arc<Path> = Arc::from(PathBuf::from("t.conf"));
        let mut words = text.split(' ').enumerate().map(|(i, t)| Word {
            text: t.into(),
            quoted: false,
            span: Span::new(file.clone(), 1, i as u32 * 10 + 1),
        });
        let keyword = words.next().expect("keyword");
        Node {
            keyword,
            args: words.collect(),
            block: None,
        }
    }

    fn messages(d: Diags) -> Vec<String> {
        d.into_vec().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn flag_with_argument_is_set() {
        let mut d = Diags::default();
        flag_args(&node("nopreempt 0"), &mut d);
        assert_eq!(
            messages(d),
            ["t.conf:1:11: warning: nopreempt takes no value; '0' ignored and nopreempt is set, as keepalived does"]
        );
    }

    #[test]
    fn booleans() {
        let mut d = Diags::default();
        assert_eq!(boolean(&node("strict_mode"), &mut d), Some(true));
        assert_eq!(boolean(&node("strict_mode off"), &mut d), Some(false));
        assert!(d.into_vec().is_empty());
        let mut d = Diags::default();
        assert_eq!(boolean(&node("strict_mode 1"), &mut d), None);
        assert_eq!(
            messages(d),
            ["t.conf:1:11: warning: bad boolean '1' for strict_mode (expected on|off|true|false|yes|no); strict_mode ignored, as keepalived does"]
        );
    }

    #[test]
    fn numbers_say_what_was_used() {
        let n = node("priority 150;");
        let mut d = Diags::default();
        let v = take_number(
            read_unsigned(&n.args[0].text, 1, 255, false),
            &n.args[0],
            "priority",
            OnReject::Use("the default 100"),
            &mut d,
        );
        assert_eq!(v, None);
        assert_eq!(
            messages(d),
            ["t.conf:1:11: warning: bad priority '150;' (text after the number: ';'); using the default 100, as keepalived does"]
        );
        let n = node("interval 2;");
        let mut d = Diags::default();
        let v = take_number(
            read_unsigned(&n.args[0].text, 0, 100, true),
            &n.args[0],
            "interval",
            OnReject::Ignore,
            &mut d,
        );
        assert_eq!(v, Some(2));
        assert_eq!(
            messages(d),
            ["t.conf:1:11: warning: interval '2;': text after the number: ';'; using 2, as keepalived does"]
        );
    }

    #[test]
    fn extra_values_are_ignored() {
        let mut d = Diags::default();
        assert_eq!(
            one_value(&node("interface eth0 eth1"), &mut d).map(|w| w.text.as_str()),
            Some("eth0")
        );
        assert!(messages(d)[0].contains("'eth1' and what follows ignored"));
        let mut d = Diags::default();
        assert!(one_value(&node("interface"), &mut d).is_none());
        assert!(d.has_errors());
    }
}
