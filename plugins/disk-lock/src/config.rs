//! The check's parameters, parsed and validated. Every error names the parameter.

use std::path::PathBuf;

use wasmalived_plugin_sdk::Params;

/// Default lease file name prefix (files are `NAME.GENERATION`).
pub const DEFAULT_NAME: &str = "wasmalived.lease";
/// Longest accepted `node_id`.
const MAX_NODE_ID: usize = 64;

/// What a node that is not entitled to the lease reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// `fail`: counts towards `fall` (priority drops by `weight`, or Fault with weight 0).
    Fail,
    /// `fatal`: stand down now (Fault at once). The default.
    Fatal,
}

/// The parsed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The shared directory, as the plugin sees it (the granted guest path or below it).
    pub dir: PathBuf,
    /// This node's id, as written in the lease.
    pub node_id: String,
    /// Lease duration.
    pub lease_ms: u64,
    /// A holder whose renewal fails stands down once less than this is left.
    pub renew_margin_ms: u64,
    /// Verdict kind when another node holds the lease.
    pub on_conflict: OnConflict,
    /// Lease file name prefix.
    pub name: String,
}

impl Config {
    /// Parse `params` (the last occurrence of a key wins).
    pub fn from_params(params: &Params) -> Result<Config, String> {
        let get = |k: &str| params.get(k);
        let dir = get("dir").ok_or("parameter `dir` is required")?;
        if !dir.starts_with('/') {
            return Err(format!(
                "bad parameter dir=`{dir}`: expected an absolute path (the granted directory)"
            ));
        }
        let node_id = get("node_id").ok_or("parameter `node_id` is required")?;
        if node_id.is_empty() || node_id.len() > MAX_NODE_ID || !node_id.chars().all(id_char) {
            return Err(format!(
                "bad parameter node_id=`{node_id}`: 1-{MAX_NODE_ID} characters of A-Z a-z 0-9 . _ -"
            ));
        }
        let lease_ms = match get("lease_ms") {
            None => return Err("parameter `lease_ms` is required".into()),
            Some(v) => positive("lease_ms", v)?,
        };
        let renew_margin_ms = match get("renew_margin_ms") {
            None => lease_ms / 2,
            Some(v) => positive("renew_margin_ms", v)?,
        };
        if renew_margin_ms == 0 || renew_margin_ms >= lease_ms {
            return Err(format!(
                "bad parameter renew_margin_ms={renew_margin_ms}: must be > 0 and < \
                 lease_ms={lease_ms}"
            ));
        }
        let on_conflict = match get("on_conflict") {
            None | Some("fatal") => OnConflict::Fatal,
            Some("fail") => OnConflict::Fail,
            Some(v) => return Err(format!("bad parameter on_conflict=`{v}`: fail or fatal")),
        };
        let name = get("name").unwrap_or(DEFAULT_NAME);
        if name.is_empty()
            || name.starts_with('.')
            || name.len() > 128
            || !name.chars().all(id_char)
        {
            return Err(format!(
                "bad parameter name=`{name}`: a plain file name (A-Z a-z 0-9 . _ -, not \
                 starting with `.`)"
            ));
        }
        Ok(Config {
            dir: PathBuf::from(dir),
            node_id: node_id.to_string(),
            lease_ms,
            renew_margin_ms,
            on_conflict,
            name: name.to_string(),
        })
    }
}

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

fn positive(key: &str, v: &str) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 && n <= u64::from(u32::MAX) => Ok(n),
        _ => Err(format!(
            "bad parameter {key}=`{v}`: a positive number of milliseconds"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn parses_with_defaults() {
        let c = Config::from_params(&p(&[
            ("dir", "/shared"),
            ("node_id", "n1"),
            ("lease_ms", "10000"),
        ]))
        .expect("config");
        assert_eq!(c.renew_margin_ms, 5000);
        assert_eq!(c.on_conflict, OnConflict::Fatal);
        assert_eq!(c.name, DEFAULT_NAME);
    }

    #[test]
    fn margin_must_be_below_lease() {
        let e = Config::from_params(&p(&[
            ("dir", "/shared"),
            ("node_id", "n1"),
            ("lease_ms", "1000"),
            ("renew_margin_ms", "1000"),
        ]))
        .expect_err("margin == lease");
        assert!(e.contains("renew_margin_ms"), "{e}");
    }

    #[test]
    fn rejects_bad_values_naming_them() {
        let base = [("dir", "/shared"), ("node_id", "n1"), ("lease_ms", "1000")];
        for (k, v) in [
            ("dir", "shared"),
            ("node_id", "a b"),
            ("node_id", ""),
            ("lease_ms", "0"),
            ("lease_ms", "x"),
            ("on_conflict", "maybe"),
            ("name", "../x"),
            ("name", ".hidden"),
        ] {
            let mut pairs = base.to_vec();
            pairs.push((k, v));
            let e = Config::from_params(&p(&pairs)).expect_err(k);
            assert!(e.contains(k), "{k}={v}: {e}");
        }
    }
}
