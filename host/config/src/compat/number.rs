//! keepalived's number readers (`lib/parser.c`: `read_unsigned_func`, `read_int_func`,
//! `read_decimal_unsigned_long_func`) and `check_true_false`, reproduced so that a value
//! keepalived accepts, rounds or rejects is accepted, rounded or rejected here.
//!
//! The "lenient" readers are those keepalived calls with `ignore_error`: when the word is a
//! number followed by other text (`2;`, `3x`, `100,backup`), a running keepalived logs a
//! warning and uses the number the word starts with, if that number is in range. (Under
//! `keepalived -t` the same word is reported and rejected; what matters for a migration is
//! what the running daemon does.) The strict readers reject such a word.

/// How keepalived judges a word read as a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reading<T> {
    /// A number in range, as written.
    Exact(T),
    /// Accepted with a warning: `value` is what keepalived uses; `why` what it complained
    /// about (text after the number, too many decimals).
    Adjusted { value: T, why: String },
    /// Rejected.
    Rejected { why: String },
}

impl<T> Reading<T> {
    /// The value keepalived uses, if any.
    pub(crate) fn value(self) -> Option<T> {
        match self {
            Reading::Exact(v) | Reading::Adjusted { value: v, .. } => Some(v),
            Reading::Rejected { .. } => None,
        }
    }
}

/// `strtol`/`strtoul` base 10: leading whitespace, a sign, digits. The value (saturated),
/// whether a `-` was read, and how many characters were consumed (0 when no digits).
fn strtol10(text: &str) -> (i128, bool, usize) {
    let bytes = text.as_bytes();
    let mut p = 0;
    while bytes.get(p).is_some_and(u8::is_ascii_whitespace) {
        p += 1;
    }
    let negative = bytes.get(p) == Some(&b'-');
    if matches!(bytes.get(p), Some(b'-' | b'+')) {
        p += 1;
    }
    let digits_start = p;
    let mut value: i128 = 0;
    while let Some(d) = bytes.get(p).filter(|b| b.is_ascii_digit()) {
        value = (value * 10 + i128::from(d - b'0')).min(i128::from(u64::MAX) * 2);
        p += 1;
    }
    if p == digits_start {
        return (0, false, 0);
    }
    (if negative { -value } else { value }, negative, p)
}

/// keepalived's `read_unsigned` / `read_unsigned64` in `min..=max`.
pub(crate) fn read_unsigned(text: &str, min: u64, max: u64, lenient: bool) -> Reading<u64> {
    let trimmed = text.trim_start();
    let (value, _, used) = strtol10(trimmed);
    let in_range = value >= i128::from(min) && value <= i128::from(max);
    let why = if trimmed.starts_with('-') {
        "a negative number".to_owned()
    } else if used < trimmed.len() {
        if used == 0 {
            "not a number".to_owned()
        } else {
            format!("text after the number: '{}'", &trimmed[used..])
        }
    } else if !in_range {
        format!("outside {min}..={max}")
    } else {
        return Reading::Exact(u64::try_from(value).unwrap_or(max));
    };
    // keepalived takes an unsigned value even from "-0"; a real negative wraps out of range.
    let value = if trimmed.starts_with('-') && value != 0 {
        -1
    } else {
        value.abs()
    };
    match u64::try_from(value) {
        Ok(v) if lenient && (min..=max).contains(&v) => Reading::Adjusted { value: v, why },
        _ => Reading::Rejected { why },
    }
}

/// keepalived's `read_int` in `min..=max`.
pub(crate) fn read_int(text: &str, min: i64, max: i64, lenient: bool) -> Reading<i64> {
    let (value, _, used) = strtol10(text);
    let in_range = value >= i128::from(min) && value <= i128::from(max);
    let why = if used < text.len() {
        if used == 0 {
            "not a number".to_owned()
        } else {
            format!("text after the number: '{}'", &text[used..])
        }
    } else if !in_range {
        format!("outside {min}..={max}")
    } else {
        return Reading::Exact(i64::try_from(value).unwrap_or(max));
    };
    match i64::try_from(value) {
        Ok(v) if lenient && (min..=max).contains(&v) => Reading::Adjusted { value: v, why },
        _ => Reading::Rejected { why },
    }
}

/// keepalived's `read_decimal_unsigned`: a decimal with up to `shift` places, returned
/// times 10^`shift` (e.g. `shift` 6 reads seconds as microseconds), in `min..=max` of those
/// units. More places than `shift` are rounded (half up) with a warning. Text after the
/// number makes keepalived read a scaled-down value, which almost never is in range.
pub(crate) fn read_decimal(
    text: &str,
    min: u64,
    max: u64,
    shift: u32,
    lenient: bool,
) -> Reading<u64> {
    if text.starts_with('-') {
        return Reading::Rejected {
            why: "a negative number".into(),
        };
    }
    let (int_part, frac) = match text.find('.') {
        Some(dp) => (&text[..dp], Some(&text[dp + 1..])),
        None => (text, None),
    };
    let mut round_up = false;
    let mut too_many = false;
    let mut kept_frac = frac.unwrap_or("");
    if kept_frac.len() > shift as usize {
        too_many = true;
        round_up = kept_frac.as_bytes()[shift as usize] >= b'5';
        kept_frac = &kept_frac[..shift as usize];
    }
    let zeros = "0".repeat(shift as usize - kept_frac.len());
    let joined = format!("{int_part}{kept_frac}{zeros}");
    let (value, _, used) = strtol10(&joined);
    let value = value.max(0) + i128::from(round_up);
    let valid = used == joined.len() && used > 0;
    let unit = 10u128.pow(shift) as f64;
    let show = |v: u64| format!("{}", v as f64 / unit);
    let in_range = value >= i128::from(min) && value <= i128::from(max);
    if !valid {
        let why = "not a decimal number".to_owned();
        return match u64::try_from(value) {
            Ok(v) if lenient && in_range => Reading::Adjusted { value: v, why },
            _ => Reading::Rejected { why },
        };
    }
    if !in_range {
        return Reading::Rejected {
            why: format!("outside {}..={}", show(min), show(max)),
        };
    }
    let value = u64::try_from(value).unwrap_or(max);
    if too_many {
        Reading::Adjusted {
            value,
            why: format!(
                "more than {shift} decimal places, rounded to {}",
                show(value)
            ),
        }
    } else {
        Reading::Exact(value)
    }
}

/// keepalived's `check_true_false`: exactly `true`/`on`/`yes` or `false`/`off`/`no`.
pub(crate) fn check_true_false(text: &str) -> Option<bool> {
    match text {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adjusted<T>(r: Reading<T>) -> Option<T> {
        match r {
            Reading::Adjusted { value, .. } => Some(value),
            _ => None,
        }
    }

    #[test]
    fn unsigned_like_keepalived() {
        assert_eq!(read_unsigned("150", 1, 255, false), Reading::Exact(150));
        assert_eq!(read_unsigned(" 7", 1, 255, false), Reading::Exact(7));
        assert!(matches!(
            read_unsigned("150;", 1, 255, false),
            Reading::Rejected { .. }
        ));
        assert_eq!(adjusted(read_unsigned("150;", 1, 255, true)), Some(150));
        assert_eq!(adjusted(read_unsigned("3x", 1, 100, true)), Some(3));
        assert_eq!(
            adjusted(read_unsigned("abc", 0, 100, true)),
            Some(0),
            "no digits reads 0"
        );
        assert!(matches!(
            read_unsigned("abc", 1, 100, true),
            Reading::Rejected { .. }
        ));
        assert!(matches!(
            read_unsigned("256", 1, 255, true),
            Reading::Rejected { .. }
        ));
        assert!(matches!(
            read_unsigned("-5", 0, 255, true),
            Reading::Rejected { .. }
        ));
        assert_eq!(adjusted(read_unsigned("-0", 0, 255, true)), Some(0));
        assert!(matches!(
            read_unsigned("99999999999999999999999", 0, u64::MAX, true),
            Reading::Rejected { .. }
        ));
        match read_unsigned("2;", 0, 10, true) {
            Reading::Adjusted { why, .. } => assert_eq!(why, "text after the number: ';'"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn int_like_keepalived() {
        assert_eq!(read_int("-253", -253, 253, true), Reading::Exact(-253));
        assert_eq!(read_int("+5", -253, 253, false), Reading::Exact(5));
        assert!(matches!(
            read_int("300", -253, 253, true),
            Reading::Rejected { .. }
        ));
        assert_eq!(adjusted(read_int("-5x", -253, 253, true)), Some(-5));
    }

    #[test]
    fn decimals_like_keepalived() {
        let us = |t: &str, lenient| read_decimal(t, 10_000, 255_000_000, 6, lenient);
        assert_eq!(us("1", false), Reading::Exact(1_000_000));
        assert_eq!(us("0.5", false), Reading::Exact(500_000));
        assert_eq!(us(".25", false), Reading::Exact(250_000));
        assert_eq!(
            adjusted(us("1.00000051", true)),
            Some(1_000_001),
            "rounded half up"
        );
        assert!(
            matches!(us("1;", true), Reading::Rejected { .. }),
            "1; reads as 1 µs"
        );
        assert!(matches!(us("-1", true), Reading::Rejected { .. }));
        assert!(matches!(us("300", true), Reading::Rejected { .. }));
        assert!(matches!(us("0.001", true), Reading::Rejected { .. }));
        assert_eq!(adjusted(read_decimal("0x", 0, 10, 6, true)), Some(0));
    }

    #[test]
    fn booleans_are_exact_lowercase_words() {
        assert_eq!(check_true_false("yes"), Some(true));
        assert_eq!(check_true_false("off"), Some(false));
        for not_bool in ["1", "0", "True", "YES", "enabled", ""] {
            assert_eq!(check_true_false(not_bool), None, "{not_bool}");
        }
    }
}
