//! A check's parameters, typed: every value is parsed once, and every error names the
//! parameter and says what was expected (`bad parameter timeout_ms=`soon`: a whole number`).
//!
//! ```
//! use std::time::Duration;
//! use wasmalived_plugin_sdk::{ParamError, Params};
//!
//! let params = Params::from_pairs([("port", "8080"), ("timeout", "250ms")]);
//! let port: u16 = params.value("port").required()?;
//! let retries: u32 = params.value("retries").range(1..=5).default(3)?;
//! let timeout: Duration = params.value("timeout").default(Duration::from_secs(1))?;
//! assert_eq!((port, retries, timeout), (8080, 3, Duration::from_millis(250)));
//!
//! let e = params.value::<bool>("port").required().unwrap_err();
//! assert_eq!(e.to_string(), "bad parameter port=`8080`: true or false");
//! # Ok::<(), ParamError>(())
//! ```
//!
//! Keys are matched exactly; values are trimmed; when a key is given several times the last
//! one wins (as a later line in a config overrides an earlier one), except through
//! [`Params::all`], which is for repeatable keys.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Bound, RangeBounds};
use std::time::Duration;

/// The parameters of one check run, as the configuration lists them, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parameters from `(key, value)` pairs, in order.
    pub fn new(pairs: Vec<(String, String)>) -> Params {
        Params { pairs }
    }

    /// Parameters from borrowed pairs (handy in tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Params {
        Params::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The pairs as given.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The value of `key`, trimmed; the last occurrence wins.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
    }

    /// Every value of a repeatable `key`, trimmed, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.trim())
    }

    /// Whether `key` is given at all.
    pub fn contains(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// The keys not in `known`, in order, each once: for checks that refuse unknown keys.
    pub fn unknown<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::new();
        for (k, _) in &self.pairs {
            if !known.contains(&k.as_str()) && !out.contains(&k.as_str()) {
                out.push(k);
            }
        }
        out
    }

    /// A typed view of `key`: parse it as `T`, optionally within a range, with a default.
    pub fn value<'a, T: FromParam>(&'a self, key: &'a str) -> Value<'a, T> {
        Value {
            key,
            raw: self.get(key),
            hint: Hint::Type,
            check: None,
            _type: PhantomData,
        }
    }

    /// A comma-separated list under `key` (`a, b,c`): trimmed items, empty items refused.
    /// `Ok(None)` when the key is absent.
    pub fn list(&self, key: &str) -> Result<Option<Vec<String>>, ParamError> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        let items: Vec<String> = raw.split(',').map(|s| s.trim().to_string()).collect();
        if items.iter().any(String::is_empty) {
            return Err(ParamError::invalid(
                key,
                raw,
                Some("a comma-separated list without empty items"),
            ));
        }
        Ok(Some(items))
    }
}

impl From<Vec<(String, String)>> for Params {
    fn from(pairs: Vec<(String, String)>) -> Params {
        Params::new(pairs)
    }
}

/// Why a parameter cannot be used. The message always names the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// A required parameter is absent: ``parameter `KEY` is required[ WHEN]``.
    Missing {
        /// The parameter.
        key: String,
        /// When it is required, if not always (e.g. `in mode etcd`).
        when: Option<String>,
    },
    /// A value that does not parse or is out of range: ``bad parameter KEY=`VALUE`[: HINT]``.
    Invalid {
        /// The parameter.
        key: String,
        /// The value as given (trimmed).
        value: String,
        /// What was expected, if said.
        expected: Option<String>,
    },
    /// Anything else, e.g. two parameters that do not fit together; the text names them.
    Other(String),
}

impl ParamError {
    /// ``parameter `KEY` is required``.
    pub fn missing(key: &str) -> ParamError {
        ParamError::Missing {
            key: key.to_string(),
            when: None,
        }
    }

    /// ``bad parameter KEY=`VALUE`: EXPECTED`` (or without the `: EXPECTED`).
    pub fn invalid(key: &str, value: &str, expected: Option<&str>) -> ParamError {
        ParamError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.map(str::to_string),
        }
    }

    /// Say when a [`ParamError::Missing`] parameter is required (`in mode etcd`).
    pub fn when(self, when: &str) -> ParamError {
        match self {
            ParamError::Missing { key, .. } => ParamError::Missing {
                key,
                when: Some(when.to_string()),
            },
            other => other,
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Missing { key, when: None } => write!(f, "parameter `{key}` is required"),
            ParamError::Missing {
                key,
                when: Some(when),
            } => write!(f, "parameter `{key}` is required {when}"),
            ParamError::Invalid {
                key,
                value,
                expected: None,
            } => write!(f, "bad parameter {key}=`{value}`"),
            ParamError::Invalid {
                key,
                value,
                expected: Some(hint),
            } => write!(f, "bad parameter {key}=`{value}`: {hint}"),
            ParamError::Other(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for ParamError {}

impl From<ParamError> for String {
    fn from(e: ParamError) -> String {
        e.to_string()
    }
}

/// A type a parameter can be parsed as.
pub trait FromParam: Sized {
    /// What a valid value looks like, for error messages (`a whole number`).
    const EXPECTED: &'static str;

    /// Parse a trimmed value; `None` if it is not one.
    fn from_param(value: &str) -> Option<Self>;
}

macro_rules! from_param_via_from_str {
    ($($t:ty => $expected:literal),* $(,)?) => {$(
        impl FromParam for $t {
            const EXPECTED: &'static str = $expected;
            fn from_param(value: &str) -> Option<Self> {
                value.parse().ok()
            }
        }
    )*};
}

from_param_via_from_str! {
    u8 => "a whole number",
    u16 => "a whole number",
    u32 => "a whole number",
    u64 => "a whole number",
    usize => "a whole number",
    i32 => "a whole number",
    i64 => "a whole number",
    f64 => "a number",
    IpAddr => "a literal IP address",
    SocketAddr => "IP:PORT (a literal IP)",
}

impl FromParam for String {
    const EXPECTED: &'static str = "a string";
    fn from_param(value: &str) -> Option<Self> {
        Some(value.to_string())
    }
}

impl FromParam for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_param(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => None,
        }
    }
}

impl FromParam for Duration {
    const EXPECTED: &'static str = "a duration such as 500ms, 2s or 1m";
    /// `250ms`, `2s`, `1.5s`, `1m`; a bare number is seconds.
    fn from_param(value: &str) -> Option<Self> {
        let split = value
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(value.len());
        let (number, unit) = value.split_at(split);
        let n: f64 = number.trim().parse().ok()?;
        let seconds = match unit.trim() {
            "ms" => n / 1000.0,
            "" | "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return None,
        };
        Duration::try_from_secs_f64(seconds).ok()
    }
}

/// What an error says was expected.
#[derive(Debug, Clone, Copy)]
enum Hint<'a> {
    /// The type's [`FromParam::EXPECTED`], or the range's wording when one is set.
    Type,
    /// As given.
    Text(&'a str),
    /// Nothing: ``bad parameter KEY=`VALUE` `` alone.
    None,
}

/// A value check and how an error words what it wants.
type Validator<'a, T> = (Box<dyn Fn(&T) -> bool + 'a>, String);

/// A typed view of one parameter, from [`Params::value`]. Finish it with
/// [`required`](Value::required), [`default`](Value::default) or
/// [`optional`](Value::optional).
pub struct Value<'a, T> {
    key: &'a str,
    raw: Option<&'a str>,
    hint: Hint<'a>,
    /// A range check and its wording.
    check: Option<Validator<'a, T>>,
    _type: PhantomData<T>,
}

impl<'a, T: FromParam + PartialOrd + fmt::Display + 'a> Value<'a, T> {
    /// Accept only values in `range` (`1..=5`, `1..`); the error says the range.
    pub fn range(mut self, range: impl RangeBounds<T> + 'a) -> Value<'a, T> {
        let wording = range_wording(&range);
        self.check = Some((Box::new(move |v: &T| range.contains(v)), wording));
        self
    }
}

impl<'a, T: FromParam + 'a> Value<'a, T> {
    /// Accept only values for which `valid` holds; `expected` says what is wanted.
    pub fn check(mut self, valid: impl Fn(&T) -> bool + 'a, expected: &str) -> Value<'a, T> {
        self.check = Some((Box::new(valid), expected.to_string()));
        self
    }

    /// Say `expected` in the error instead of the type's or range's wording.
    pub fn hint(mut self, expected: &'a str) -> Value<'a, T> {
        self.hint = Hint::Text(expected);
        self
    }

    /// Say nothing but the key and the value in the error (``bad parameter KEY=`VALUE` ``).
    pub fn no_hint(mut self) -> Value<'a, T> {
        self.hint = Hint::None;
        self
    }

    /// The value; `Ok(None)` when the key is absent.
    pub fn optional(self) -> Result<Option<T>, ParamError> {
        let Some(raw) = self.raw else {
            return Ok(None);
        };
        let parsed = T::from_param(raw);
        let passes = match (&parsed, &self.check) {
            (Some(v), Some((valid, _))) => valid(v),
            (Some(_), None) => true,
            (None, _) => false,
        };
        match parsed {
            Some(v) if passes => Ok(Some(v)),
            _ => {
                let expected = match self.hint {
                    Hint::None => None,
                    Hint::Text(t) => Some(t.to_string()),
                    Hint::Type => Some(match &self.check {
                        Some((_, wording)) => wording.clone(),
                        None => T::EXPECTED.to_string(),
                    }),
                };
                Err(ParamError::Invalid {
                    key: self.key.to_string(),
                    value: raw.to_string(),
                    expected,
                })
            }
        }
    }

    /// The value, or [`ParamError::Missing`] when the key is absent.
    pub fn required(self) -> Result<T, ParamError> {
        let key = self.key;
        self.optional()?.ok_or_else(|| ParamError::missing(key))
    }

    /// The value, or `default` when the key is absent (a present but bad value is an error).
    pub fn default(self, default: T) -> Result<T, ParamError> {
        Ok(self.optional()?.unwrap_or(default))
    }
}

/// `1..=5` as `a value in 1..=5`, `1..` as `at least 1`.
fn range_wording<T: fmt::Display>(range: &impl RangeBounds<T>) -> String {
    match (range.start_bound(), range.end_bound()) {
        (Bound::Included(lo), Bound::Unbounded) => format!("at least {lo}"),
        (Bound::Excluded(lo), Bound::Unbounded) => format!("more than {lo}"),
        (Bound::Unbounded, Bound::Included(hi)) => format!("at most {hi}"),
        (Bound::Unbounded, Bound::Excluded(hi)) => format!("less than {hi}"),
        (Bound::Included(lo), Bound::Included(hi)) => format!("{lo} to {hi}"),
        (Bound::Included(lo), Bound::Excluded(hi)) => format!("at least {lo} and less than {hi}"),
        (Bound::Excluded(lo), Bound::Included(hi)) => format!("more than {lo} and at most {hi}"),
        (Bound::Excluded(lo), Bound::Excluded(hi)) => format!("more than {lo} and less than {hi}"),
        (Bound::Unbounded, Bound::Unbounded) => "any value".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_occurrence_wins_and_values_are_trimmed() {
        let p = Params::from_pairs([("a", "1"), ("b", " 2 "), ("a", "3")]);
        assert_eq!(p.get("a"), Some("3"));
        assert_eq!(p.get("b"), Some("2"));
        assert_eq!(p.get("c"), None);
        assert_eq!(p.all("a").collect::<Vec<_>>(), ["1", "3"]);
        assert!(p.contains("b") && !p.contains("c"));
        assert_eq!(p.unknown(&["a"]), ["b"]);
    }

    #[test]
    fn typed_values_with_defaults() {
        let p = Params::from_pairs([("n", "7"), ("on", "yes"), ("t", "1.5s"), ("ms", "20ms")]);
        assert_eq!(p.value::<u32>("n").required(), Ok(7));
        assert_eq!(p.value::<u32>("missing").default(4), Ok(4));
        assert_eq!(p.value::<u32>("missing").optional(), Ok(None));
        assert_eq!(p.value::<bool>("on").required(), Ok(true));
        assert_eq!(
            p.value::<Duration>("t").required(),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            p.value::<Duration>("ms").required(),
            Ok(Duration::from_millis(20))
        );
    }

    #[test]
    fn errors_name_the_parameter_and_the_expectation() {
        let p = Params::from_pairs([("n", "0"), ("x", "abc"), ("d", "5y")]);
        let e = |r: Result<u32, ParamError>| r.unwrap_err().to_string();
        assert_eq!(
            e(p.value("x").required()),
            "bad parameter x=`abc`: a whole number"
        );
        assert_eq!(
            e(p.value("n").range(1..).required()),
            "bad parameter n=`0`: at least 1"
        );
        assert_eq!(
            e(p.value("n").range(1..=9).required()),
            "bad parameter n=`0`: 1 to 9"
        );
        assert_eq!(
            e(p.value("n").range(1..).hint("a number >= 1").default(1)),
            "bad parameter n=`0`: a number >= 1"
        );
        assert_eq!(
            e(p.value("x").no_hint().default(1)),
            "bad parameter x=`abc`"
        );
        assert_eq!(
            e(p.value("n")
                .check(|n| n % 2 == 1, "an odd number")
                .required()),
            "bad parameter n=`0`: an odd number"
        );
        assert_eq!(
            e(p.value("absent").required()),
            "parameter `absent` is required"
        );
        assert_eq!(
            ParamError::missing("etcd").when("in mode etcd").to_string(),
            "parameter `etcd` is required in mode etcd"
        );
        let d = p.value::<Duration>("d").required().unwrap_err();
        assert_eq!(
            d.to_string(),
            "bad parameter d=`5y`: a duration such as 500ms, 2s or 1m"
        );
    }

    #[test]
    fn lists_split_on_commas() {
        let p = Params::from_pairs([("l", "a, b,c"), ("bad", "a,,b")]);
        assert_eq!(
            p.list("l"),
            Ok(Some(vec!["a".into(), "b".into(), "c".into()]))
        );
        assert_eq!(p.list("absent"), Ok(None));
        assert!(p.list("bad").unwrap_err().to_string().contains("bad"));
    }

    #[test]
    fn durations_and_bools() {
        for (s, ms) in [("2", 2000), ("500ms", 500), ("1m", 60_000), ("0.25s", 250)] {
            assert_eq!(
                Duration::from_param(s),
                Some(Duration::from_millis(ms)),
                "{s}"
            );
        }
        for bad in ["-1s", "5y", "s", ""] {
            assert_eq!(Duration::from_param(bad), None, "{bad}");
        }
        assert_eq!(bool::from_param("Off"), Some(false));
        assert_eq!(bool::from_param("maybe"), None);
    }
}
