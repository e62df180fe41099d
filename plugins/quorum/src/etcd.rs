//! `mode etcd`: hold an etcd lease on a key, through etcd's v3 JSON gateway (`/v3/...`, as
//! served by etcd 3.4 — Debian 12's `etcd-server` — and later) over wasi:http.
//!
//! One run:
//! 1. `POST /v3/kv/range {key}` — who holds the key?
//! 2. ours (value = `node_id`) → `POST /v3/lease/keepalive {ID}` with the key's lease (this
//!    recovers the lease after a daemon restart, when `scratch` is empty); a TTL of 0 means
//!    the lease is gone → stand down;
//! 3. absent → if we held it (our lease expired or was revoked) stand down this run; else
//!    `POST /v3/lease/grant {TTL}` then `POST /v3/kv/txn` "if create_revision(key)
//!    == 0 then put key=node_id with the lease else range key": exactly one node's put
//!    succeeds; a loser revokes the lease it granted;
//! 4. someone else's → conflict.
//!
//! int64 fields (lease IDs, TTLs, revisions) travel as JSON strings, keys and values as
//! base64, as the gateway's proto3 JSON mapping wants.

use std::time::Duration;

use serde_json::{json, Value};
use wasmalived_plugin_sdk::Host;

use crate::b64;
use crate::config::Etcd;
use crate::http;

/// What one run found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// We hold the key under a live lease.
    Holding {
        /// The lease.
        lease: i64,
        /// TTL etcd reports after the keepalive or grant, in seconds.
        ttl_s: i64,
        /// How we got it this run.
        how: How,
    },
    /// Another node holds the key.
    HeldBy(String),
    /// The key carries our id but we could not keep its lease (expired, or no lease).
    Lost(String),
}

/// How a [`Outcome::Holding`] came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// The key was free and our put won.
    Acquired,
    /// Our lease, kept alive.
    Renewed,
    /// Our key and lease found in etcd without a lease id of our own (daemon restart).
    Recovered,
}

/// A client for one run: every request shares one deadline.
pub struct Client<'a, H> {
    host: &'a H,
    config: &'a Etcd,
    /// The deadline on the host's monotonic clock.
    end: Duration,
}

/// One key-value as the gateway returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kv {
    value: String,
    lease: i64,
}

impl<'a, H: Host> Client<'a, H> {
    /// A client whose requests must all finish within the config's `timeout_ms`.
    pub fn new(host: &'a H, config: &'a Etcd) -> Client<'a, H> {
        let end = host.monotonic() + Duration::from_millis(config.timeout_ms);
        Client { host, config, end }
    }

    /// Do one run; `known` is the lease id we stored last time, if any.
    pub fn run(&self, known: Option<i64>) -> Result<Outcome, String> {
        match self.range()? {
            Some(kv) if kv.value == self.config.node_id => {
                if kv.lease == 0 {
                    return Ok(Outcome::Lost(format!(
                        "key `{}` holds our id without a lease; delete it",
                        self.config.key
                    )));
                }
                let ttl_s = self.keepalive(kv.lease)?;
                if ttl_s <= 0 {
                    return Ok(Outcome::Lost(format!(
                        "lease {:x} expired (keepalive TTL 0)",
                        kv.lease
                    )));
                }
                let how = if known == Some(kv.lease) {
                    How::Renewed
                } else {
                    How::Recovered
                };
                Ok(Outcome::Holding {
                    lease: kv.lease,
                    ttl_s,
                    how,
                })
            }
            Some(kv) => Ok(Outcome::HeldBy(kv.value)),
            // We held it and it is gone: our lease expired or was revoked. Somebody else may
            // have held it meanwhile; stand down once, take it again next run.
            None if known.is_some() => Ok(Outcome::Lost(format!(
                "key `{}` is gone (our lease expired or was revoked)",
                self.config.key
            ))),
            None => self.acquire(),
        }
    }

    /// Grant a lease and put the key with it if nobody created the key meanwhile.
    fn acquire(&self) -> Result<Outcome, String> {
        let answer = self.call(
            "/v3/lease/grant",
            &json!({ "TTL": self.config.ttl_s.to_string() }),
        )?;
        let lease = int(&answer, "ID")
            .filter(|id| *id != 0)
            .ok_or_else(|| format!("lease grant: no ID in {}", short(&answer)))?;
        let ttl_s = int(&answer, "TTL").unwrap_or(0);
        let key = b64::encode(self.config.key.as_bytes());
        let txn = json!({
            "compare": [{
                "key": key,
                "result": "EQUAL",
                "target": "CREATE",
                "create_revision": "0",
            }],
            "success": [{ "request_put": {
                "key": key,
                "value": b64::encode(self.config.node_id.as_bytes()),
                "lease": lease.to_string(),
            }}],
            "failure": [{ "request_range": { "key": key } }],
        });
        let answer = match self.call("/v3/kv/txn", &txn) {
            Ok(a) => a,
            Err(e) => {
                self.revoke(lease);
                return Err(e);
            }
        };
        if answer.get("succeeded").and_then(Value::as_bool) == Some(true) {
            return Ok(Outcome::Holding {
                lease,
                ttl_s,
                how: How::Acquired,
            });
        }
        // Lost the race: give our lease back, report the winner.
        self.revoke(lease);
        let winner = answer
            .get("responses")
            .and_then(|r| r.get(0))
            .and_then(|r| r.get("response_range"))
            .and_then(first_kv)
            .map_or_else(|| "another node".to_string(), |kv| kv.value);
        Ok(Outcome::HeldBy(winner))
    }

    /// The key's current value and lease.
    fn range(&self) -> Result<Option<Kv>, String> {
        let key = b64::encode(self.config.key.as_bytes());
        let answer = self.call("/v3/kv/range", &json!({ "key": key }))?;
        Ok(first_kv(&answer))
    }

    /// Keep `lease` alive; returns the TTL etcd reports (0: the lease does not exist).
    fn keepalive(&self, lease: i64) -> Result<i64, String> {
        let answer = self.call("/v3/lease/keepalive", &json!({ "ID": lease.to_string() }))?;
        // A streaming RPC: the gateway wraps each message as {"result": ...} or {"error": ...}.
        if let Some(e) = answer.get("error") {
            return Err(format!("lease keepalive: {}", short(e)));
        }
        let result = answer.get("result").unwrap_or(&answer);
        Ok(int(result, "TTL").unwrap_or(0))
    }

    /// Best effort: give a lease back (after losing a race or when standing down).
    pub fn revoke(&self, lease: i64) {
        let _ = self.call("/v3/lease/revoke", &json!({ "ID": lease.to_string() }));
    }

    /// POST `body` to `path`; a 200 answer's JSON, or an error with etcd's message.
    fn call(&self, path: &str, body: &Value) -> Result<Value, String> {
        let (status, bytes) = http::post_json(
            self.host,
            &self.config.endpoint,
            path,
            &body.to_string(),
            self.end,
            self.config.timeout_ms,
        )
        .map_err(|e| format!("etcd {path}: {e}"))?;
        // The keepalive stream may carry several JSON messages; the first one is ours.
        let text = String::from_utf8_lossy(&bytes);
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let value: Value = serde_json::from_str(first).map_err(|e| {
            format!(
                "etcd {path}: status {status}, not JSON ({e}): {}",
                cut(first)
            )
        })?;
        if status != 200 {
            let message = value
                .get("message")
                .or_else(|| value.get("error"))
                .map_or_else(|| short(&value), |m| m.as_str().unwrap_or("").to_string());
            return Err(format!("etcd {path}: status {status}: {message}"));
        }
        Ok(value)
    }
}

/// The first `kvs` entry of a range answer.
fn first_kv(answer: &Value) -> Option<Kv> {
    let kv = answer.get("kvs")?.get(0)?;
    let value = kv
        .get("value")
        .and_then(Value::as_str)
        .and_then(b64::decode)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    Some(Kv {
        value,
        lease: int(kv, "lease").unwrap_or(0),
    })
}

/// An int64 field, as a JSON string (proto3 mapping) or number.
fn int(v: &Value, field: &str) -> Option<i64> {
    match v.get(field)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn short(v: &Value) -> String {
    cut(&v.to_string())
}

fn cut(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gateway_json() {
        let range: Value = serde_json::from_str(
            r#"{"header":{"revision":"5"},"kvs":[{"key":"L3g=","create_revision":"4",
               "value":"bm9kZS1h","lease":"7587862072455862788"}],"count":"1"}"#,
        )
        .expect("json");
        assert_eq!(
            first_kv(&range),
            Some(Kv {
                value: "node-a".into(),
                lease: 7_587_862_072_455_862_788
            })
        );
        let empty: Value = serde_json::from_str(r#"{"header":{"revision":"5"}}"#).expect("json");
        assert_eq!(first_kv(&empty), None);
        let grant: Value = serde_json::from_str(r#"{"ID":"42","TTL":"10"}"#).expect("json");
        assert_eq!(
            (int(&grant, "ID"), int(&grant, "TTL")),
            (Some(42), Some(10))
        );
        let n: Value = serde_json::from_str(r#"{"TTL":3}"#).expect("json");
        assert_eq!(int(&n, "TTL"), Some(3));
    }
}
