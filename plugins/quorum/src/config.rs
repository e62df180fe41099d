//! The check's parameters, parsed and validated. Every error names the parameter.

use std::fmt;
use std::net::SocketAddr;

use wasmalived_plugin_sdk::{Params, Url};

/// Default time budget of one run (all probes / all etcd requests together).
pub const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// Default etcd lease TTL.
pub const DEFAULT_TTL_S: u64 = 10;
/// Longest accepted `node_id`.
const MAX_NODE_ID: usize = 255;

/// `fail` or `fatal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Counts towards `fall`.
    Fail,
    /// Stand down now.
    Fatal,
}

/// One witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witness {
    /// `tcp:IP:PORT`: reached when a TCP connection opens.
    Tcp(SocketAddr),
    /// `http://...`: reached on any 2xx/3xx answer to a GET.
    Http(Url),
}

/// A witness as written in the config (for messages and `tie_breaker`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedWitness {
    /// As written.
    pub text: String,
    /// Parsed.
    pub witness: Witness,
}

impl fmt::Display for NamedWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `mode witnesses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnesses {
    /// The witnesses, in order.
    pub witnesses: Vec<NamedWitness>,
    /// Index of the tie-breaker in `witnesses`.
    pub tie_breaker: Option<usize>,
    /// Budget for all probes together.
    pub timeout_ms: u64,
    /// Verdict without quorum.
    pub on_loss: Severity,
}

/// `mode etcd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Etcd {
    /// Base URL of etcd's client endpoint (`http://IP:2379`).
    pub endpoint: Url,
    /// The arbitration key.
    pub key: String,
    /// Our value under the key.
    pub node_id: String,
    /// Lease TTL in seconds.
    pub ttl_s: u64,
    /// Budget for all requests of one run together.
    pub timeout_ms: u64,
    /// Verdict while another node holds the key (or etcd cannot be reached and we hold
    /// nothing).
    pub on_conflict: Severity,
}

/// The parsed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    /// Count reachable witnesses.
    Witnesses(Witnesses),
    /// Hold an etcd lease on a key.
    Etcd(Etcd),
}

impl Config {
    /// Parse `params` (the last occurrence of a key wins, except the repeatable `witness`).
    pub fn from_params(params: &Params) -> Result<Config, String> {
        let get = |k: &str| params.get(k);
        let timeout_ms = match get("timeout_ms") {
            None => DEFAULT_TIMEOUT_MS,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 && n <= 600_000 => n,
                _ => return Err(format!("bad parameter timeout_ms=`{v}`: 1..600000")),
            },
        };
        match get("mode") {
            None | Some("witnesses") => witnesses(params, timeout_ms),
            Some("etcd") => etcd(params, timeout_ms),
            Some(m) => Err(format!("bad parameter mode=`{m}`: witnesses or etcd")),
        }
    }
}

fn severity(key: &str, v: Option<&str>, default: Severity) -> Result<Severity, String> {
    match v {
        None => Ok(default),
        Some("fail") => Ok(Severity::Fail),
        Some("fatal") => Ok(Severity::Fatal),
        Some(v) => Err(format!("bad parameter {key}=`{v}`: fail or fatal")),
    }
}

fn witnesses(params: &Params, timeout_ms: u64) -> Result<Config, String> {
    let get = |k: &str| params.get(k);
    let list: Vec<NamedWitness> = params
        .all("witness")
        .map(parse_witness)
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err(
            "parameter `witness` is required (repeatable: tcp:IP:PORT or http://...)".into(),
        );
    }
    for (i, w) in list.iter().enumerate() {
        if list[..i].iter().any(|o| o.witness == w.witness) {
            return Err(format!("bad parameter witness=`{w}`: listed twice"));
        }
    }
    let tie_breaker = match get("tie_breaker") {
        None => None,
        Some(t) => {
            let parsed = parse_witness(t)
                .map_err(|e| e.replace("parameter witness", "parameter tie_breaker"))?;
            let i = list
                .iter()
                .position(|w| w.witness == parsed.witness)
                .ok_or_else(|| {
                    format!("bad parameter tie_breaker=`{t}`: not one of the witnesses")
                })?;
            Some(i)
        }
    };
    Ok(Config::Witnesses(Witnesses {
        witnesses: list,
        tie_breaker,
        timeout_ms,
        on_loss: severity("on_loss", get("on_loss"), Severity::Fail)?,
    }))
}

fn parse_witness(v: &str) -> Result<NamedWitness, String> {
    let witness = if let Some(addr) = v.strip_prefix("tcp:") {
        Witness::Tcp(addr.parse::<SocketAddr>().map_err(|_| {
            format!("bad parameter witness=`{v}`: expected tcp:IP:PORT (a literal IP)")
        })?)
    } else if v.starts_with("http://") || v.starts_with("https://") {
        Witness::Http(Url::parse(v).map_err(|e| format!("bad parameter witness=`{v}`: {e}"))?)
    } else {
        return Err(format!(
            "bad parameter witness=`{v}`: expected tcp:IP:PORT or http://..."
        ));
    };
    Ok(NamedWitness {
        text: v.to_string(),
        witness,
    })
}

fn etcd(params: &Params, timeout_ms: u64) -> Result<Config, String> {
    let get = |k: &str| params.get(k);
    let endpoint = get("etcd").ok_or("parameter `etcd` is required in mode etcd")?;
    let endpoint =
        Url::parse(endpoint).map_err(|e| format!("bad parameter etcd=`{endpoint}`: {e}"))?;
    let key = get("key").ok_or("parameter `key` is required in mode etcd")?;
    if key.is_empty() {
        return Err("bad parameter key=``: empty".into());
    }
    let node_id = get("node_id").ok_or("parameter `node_id` is required in mode etcd")?;
    if node_id.is_empty() || node_id.len() > MAX_NODE_ID || node_id.chars().any(char::is_control) {
        return Err(format!(
            "bad parameter node_id=`{node_id}`: 1-{MAX_NODE_ID} printable characters"
        ));
    }
    let ttl_s = match get("ttl_s") {
        None => DEFAULT_TTL_S,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=86_400).contains(&n) => n,
            _ => return Err(format!("bad parameter ttl_s=`{v}`: 1..86400 seconds")),
        },
    };
    if timeout_ms >= ttl_s.saturating_mul(1000) {
        return Err(format!(
            "bad parameter timeout_ms={timeout_ms}: must be below ttl_s={ttl_s} (and interval + \
             timeout below ttl_s / 2)"
        ));
    }
    Ok(Config::Etcd(Etcd {
        endpoint,
        key: key.to_string(),
        node_id: node_id.to_string(),
        ttl_s,
        timeout_ms,
        on_conflict: severity("on_conflict", get("on_conflict"), Severity::Fatal)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn witnesses_with_tie_breaker() {
        let c = Config::from_params(&p(&[
            ("witness", "tcp:192.0.2.1:22"),
            ("witness", "http://192.0.2.2/health"),
            ("tie_breaker", "http://192.0.2.2/health"),
        ]))
        .expect("config");
        let Config::Witnesses(w) = c else {
            panic!("{c:?}")
        };
        assert_eq!(w.witnesses.len(), 2);
        assert_eq!(w.tie_breaker, Some(1));
        assert_eq!(
            (w.timeout_ms, w.on_loss),
            (DEFAULT_TIMEOUT_MS, Severity::Fail)
        );
    }

    #[test]
    fn bad_witness_parameters_are_named() {
        for (pairs, needle) in [
            (vec![], "witness"),
            (vec![("witness", "192.0.2.1:22")], "witness"),
            (vec![("witness", "tcp:host:22")], "witness"),
            (
                vec![
                    ("witness", "tcp:192.0.2.1:22"),
                    ("witness", "tcp:192.0.2.1:22"),
                ],
                "listed twice",
            ),
            (
                vec![
                    ("witness", "tcp:192.0.2.1:22"),
                    ("tie_breaker", "tcp:192.0.2.9:22"),
                ],
                "tie_breaker",
            ),
            (
                vec![("witness", "tcp:192.0.2.1:22"), ("on_loss", "x")],
                "on_loss",
            ),
            (
                vec![("witness", "tcp:192.0.2.1:22"), ("timeout_ms", "0")],
                "timeout_ms",
            ),
            (vec![("mode", "paxos")], "mode"),
        ] {
            let e = Config::from_params(&p(&pairs)).expect_err(needle);
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn etcd_mode() {
        let c = Config::from_params(&p(&[
            ("mode", "etcd"),
            ("etcd", "http://198.51.100.10:2379"),
            ("key", "/wasmalived/vip"),
            ("node_id", "n1"),
            ("ttl_s", "5"),
        ]))
        .expect("config");
        let Config::Etcd(e) = c else { panic!("{c:?}") };
        assert_eq!(e.endpoint.authority, "198.51.100.10:2379");
        assert_eq!((e.ttl_s, e.on_conflict), (5, Severity::Fatal));
        let e = Config::from_params(&p(&[
            ("mode", "etcd"),
            ("etcd", "http://198.51.100.10:2379"),
            ("key", "k"),
            ("node_id", "n1"),
            ("ttl_s", "1"),
            ("timeout_ms", "1000"),
        ]))
        .expect_err("timeout >= ttl");
        assert!(e.contains("timeout_ms"), "{e}");
        let e = Config::from_params(&p(&[("mode", "etcd"), ("etcd", "h:1")])).expect_err("bad url");
        assert!(e.contains("etcd"), "{e}");
    }
}
