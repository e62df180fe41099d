//! Value parsers shared by the validators: numbers, durations, addresses, sizes, commands.
//! Each reports a diagnostic at the word's place and returns `None` on bad input.

use std::net::IpAddr;
use std::time::Duration;

use crate::diag::Diags;
use crate::lexer::Word;
use crate::parser::Node;

/// The single value of `node` (`keyword VALUE`), or an error.
pub(crate) fn one_arg<'n>(node: &'n Node, d: &mut Diags) -> Option<&'n Word> {
    no_block(node, d);
    match node.args.as_slice() {
        [value] => Some(value),
        [] => {
            d.error(node.span(), format!("{} needs a value", node.keyword.text));
            None
        }
        [_, extra, ..] => {
            d.error(
                &extra.span,
                format!(
                    "{} takes one value; unexpected '{}'",
                    node.keyword.text, extra.text
                ),
            );
            None
        }
    }
}

/// Reports a block after a keyword that takes none.
pub(crate) fn no_block(node: &Node, d: &mut Diags) {
    if let Some(block) = &node.block {
        d.error(
            &block.open,
            format!("{} does not take a block", node.keyword.text),
        );
    }
}

/// A decimal number of seconds (`3`, `0.5`, `.25`), microsecond resolution, at most `max`.
pub(crate) fn seconds(word: &Word, what: &str, max: Duration, d: &mut Diags) -> Option<Duration> {
    match parse_decimal_seconds(&word.text) {
        Some(v) if v <= max => Some(v),
        _ => {
            d.error(
                &word.span,
                format!(
                    "bad {what} '{}': expected seconds 0..={} (decimals allowed)",
                    word.text,
                    max.as_secs_f64()
                ),
            );
            None
        }
    }
}

/// Parses `123`, `1.5`, `.5`, `2.` into a duration; `None` for anything else.
pub(crate) fn parse_decimal_seconds(text: &str) -> Option<Duration> {
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
        || int_part.len() > 12
    {
        return None;
    }
    let secs: u64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().ok()?
    };
    let mut micros: u32 = 0;
    for (i, b) in frac_part.bytes().enumerate() {
        if i >= 6 {
            break;
        }
        micros += u32::from(b - b'0') * 10u32.pow(5 - u32::try_from(i).ok()?);
    }
    Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

/// An unsigned integer in `min..=max` as `u32`, read strictly (an error otherwise). Used by
/// the LVS sections (`validate/lvs.rs`); the VRRP sections read numbers as keepalived does
/// ([`crate::compat`]).
pub(crate) fn uint(word: &Word, what: &str, min: u32, max: u32, d: &mut Diags) -> Option<u32> {
    match word.text.parse::<i64>() {
        Ok(v) if (i64::from(min)..=i64::from(max)).contains(&v) => u32::try_from(v).ok(),
        _ => {
            d.error(
                &word.span,
                format!(
                    "bad {what} '{}': expected an integer {min}..={max}",
                    word.text
                ),
            );
            None
        }
    }
}

/// An optional `<BOOL>` value of an LVS keyword: none means `true`; read as keepalived
/// does ([`crate::compat::boolean`]: a word that is not a boolean is ignored with a warning).
pub(crate) fn flag(node: &Node, d: &mut Diags) -> Option<bool> {
    no_block(node, d);
    crate::compat::boolean(node, d)
}

/// An IPv4 or IPv6 address.
pub(crate) fn ip(word: &Word, what: &str, d: &mut Diags) -> Option<IpAddr> {
    match word.text.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            d.error(
                &word.span,
                format!("bad {what} '{}': not an IPv4 or IPv6 address", word.text),
            );
            None
        }
    }
}

/// A byte size: `67108864`, `64K`, `64M`, `1G` (also `KiB`/`MiB`/`GiB`, `KB`…; binary units).
pub(crate) fn size(word: &Word, what: &str, min: u64, max: u64, d: &mut Diags) -> Option<u64> {
    let parsed = parse_size(&word.text).filter(|v| (min..=max).contains(v));
    if parsed.is_none() {
        d.error(
            &word.span,
            format!(
                "bad {what} '{}': expected a size {min}..={max} bytes, e.g. 64M",
                word.text
            ),
        );
    }
    parsed
}

fn parse_size(text: &str) -> Option<u64> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    number.checked_mul(1u64 << shift)
}

/// Splits a command line as keepalived does (no shell): whitespace separates arguments,
/// single or double quotes keep spaces, a backslash escapes the next character.
pub(crate) fn split_command(text: &str) -> Result<Vec<String>, String> {
    let mut argv = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e) => current.push(e),
                            None => return Err("a backslash ends the command".into()),
                        },
                        Some(other) => current.push(other),
                        None => return Err(format!("unterminated {c} quote in command")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(e) => current.push(e),
                    None => return Err("a backslash ends the command".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    argv.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            other => {
                in_word = true;
                current.push(other);
            }
        }
    }
    if in_word {
        argv.push(current);
    }
    Ok(argv)
}

/// The command given by the words of a statement (`script "…"` or `script /bin/x arg`).
pub(crate) fn command(node: &Node, words: &[Word], d: &mut Diags) -> Option<Vec<String>> {
    let joined = words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    match split_command(&joined) {
        Ok(argv) if !argv.is_empty() => Some(argv),
        Ok(_) => {
            d.error(
                node.span(),
                format!("{} needs a command", node.keyword.text),
            );
            None
        }
        Err(e) => {
            let at = words.first().map_or(node.span(), |w| &w.span);
            d.error(at, format!("bad command for {}: {e}", node.keyword.text));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(parse_decimal_seconds("3"), Some(ms(3000)));
        assert_eq!(parse_decimal_seconds("0.5"), Some(ms(500)));
        assert_eq!(parse_decimal_seconds(".25"), Some(ms(250)));
        assert_eq!(parse_decimal_seconds("2."), Some(ms(2000)));
        assert_eq!(
            parse_decimal_seconds("0.000001"),
            Some(Duration::from_micros(1))
        );
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "abc",
            "1.2.3",
            " 1",
            "99999999999999999999",
        ] {
            assert_eq!(parse_decimal_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn commands_split_like_keepalived() {
        let s = |t: &str| split_command(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(
            s("/usr/bin/ps -C nginx --no-heading"),
            ["/usr/bin/ps", "-C", "nginx", "--no-heading"]
        );
        assert_eq!(
            s("/usr/sbin/nginx -g 'daemon on;'"),
            ["/usr/sbin/nginx", "-g", "daemon on;"]
        );
        assert_eq!(s(r"a\ b  'c d'e"), ["a b", "c de"]);
        assert_eq!(s("x ''"), ["x", ""]);
        assert!(split_command("a 'b").is_err());
        assert!(split_command("a \\").is_err());
    }
}
