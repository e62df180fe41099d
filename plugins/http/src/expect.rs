//! The set of acceptable HTTP statuses: `200-399`, `200,204`, `200-299,301`.

use std::fmt;

/// Accepted status codes as inclusive ranges, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
    text: String,
}

impl StatusSet {
    /// Parse a comma-separated list of codes and `LOW-HIGH` ranges (100..=599).
    pub fn parse(s: &str) -> Result<StatusSet, String> {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim) {
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (code(lo)?, code(hi)?),
                None => (code(part)?, code(part)?),
            };
            if lo > hi {
                return Err(format!("empty range `{part}`"));
            }
            ranges.push((lo, hi));
        }
        Ok(StatusSet {
            ranges,
            text: s.split_whitespace().collect(),
        })
    }

    /// Whether `status` is accepted.
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

fn code(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(c) if (100..=599).contains(&c) => Ok(c),
        _ => Err(format!("`{s}` is not a status code (100-599)")),
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists() {
        let s = StatusSet::parse("200-299, 301").expect("set");
        assert!(s.contains(200) && s.contains(299) && s.contains(301));
        assert!(!s.contains(300) && !s.contains(503));
        assert_eq!(s.to_string(), "200-299,301");
        let s = StatusSet::parse("204").expect("set");
        assert!(s.contains(204) && !s.contains(200));
    }

    #[test]
    fn rejects_bad() {
        for bad in ["", "abc", "99", "600", "300-200", "200-", "200,,204"] {
            assert!(StatusSet::parse(bad).is_err(), "{bad}");
        }
    }
}
