//! `quorum`: a split-brain guard (arbiter). Healthy only while this node sees a majority —
//! of witnesses it can reach, or through an etcd lease on a key.
//!
//! # Parameters, `mode witnesses` (the default)
//! | key           | default | meaning                                                         |
//! |---------------|---------|-----------------------------------------------------------------|
//! | `witness`     | —       | repeatable: `tcp:IP:PORT` (reached when a connection opens) or `http://…` (reached on any 2xx/3xx answer to a GET) |
//! | `tie_breaker` | —       | one of the witnesses, as written: it decides a tie              |
//! | `timeout_ms`  | `1000`  | all witnesses are probed at once within this budget             |
//! | `on_loss`     | `fail`  | `fail` or `fatal`: the verdict without quorum                   |
//!
//! Votes: this node counts itself (1) plus each witness it reaches; total = 1 + witnesses.
//! Quorum needs more than half of the total; exactly half (a tie, possible with an odd
//! number of witnesses) wins only when the `tie_breaker` is among the reached. With two
//! nodes, give each the same witnesses (the gateway, a third host): the isolated node sees
//! only itself and loses, the connected one keeps quorum.
//!
//! # Parameters, `mode etcd`
//! | key           | default | meaning                                                         |
//! |---------------|---------|-----------------------------------------------------------------|
//! | `etcd`        | —       | etcd's client URL, e.g. `http://198.51.100.10:2379`             |
//! | `key`         | —       | the arbitration key, e.g. `/wasmalived/VI_1`                    |
//! | `node_id`     | —       | this node's value under the key                                 |
//! | `ttl_s`       | `10`    | lease TTL (etcd raises very small TTLs to its minimum, ~3 s at the default election timeout) |
//! | `timeout_ms`  | `1000`  | all requests of one run within this budget; must be < `ttl_s`   |
//! | `on_conflict` | `fatal` | `fail` or `fatal`: the verdict while another node holds the key |
//!
//! The node whose put created the key (with its lease) holds it and keeps the lease alive
//! every run (`etcd.rs`); the lease id is kept in `scratch`, and recovered from etcd (the
//! key's lease) when scratch is empty, e.g. after a daemon restart. If the holder dies or
//! stops renewing, etcd deletes the key after the TTL and the next node's run takes it.
//! Timing: the holder stands down at its first run that cannot confirm the lease, so
//! `check interval + timeout` must stay well below `ttl_s` — keep it ≤ `ttl_s / 2`.
//! etcd measures the TTL on its own clock: no clock sync between the nodes is needed.
//!
//! # Grants
//! witnesses: `allow_tcp IP:PORT` for each `tcp:` witness, `allow_http URL` for each `http`
//! one; etcd: `allow_http http://ETCD:2379/`.
//!
//! # Verdicts
//! - `ok` — quorum (measurements `votes`, `total`; the message lists unreachable witnesses)
//!   / we hold the key under a live lease (measurement `lease_ttl_s`; message `acquired` or
//!   `recovered` when not a plain renewal).
//! - `on_loss` (witnesses) — no quorum; the reason lists the unreachable witnesses and why.
//! - `on_conflict` (etcd) — another node holds the key, or etcd cannot be reached while we
//!   hold nothing.
//! - `fatal` (etcd), always — we held the key and cannot confirm it any more (keepalive
//!   failed, TTL 0, etcd unreachable, another node has it): stand down; the stored lease id
//!   is dropped.
//! - `fail` — a bad parameter (the reason names it).
mod b64;
mod config;
mod etcd;
mod http;
mod probe;
mod votes;

use wasmalived_plugin_sdk::{export_check, Check, Host, Measurement, Params, Status, Verdict};

use config::{Config, Etcd, Severity, Witnesses};
use etcd::{Client, How, Outcome};
use votes::tally;

/// Scratch key of the etcd lease id we hold (decimal).
const LEASE_KEY: &str = "etcd_lease";

/// The check.
pub struct Quorum;

impl Check for Quorum {
    fn check(host: &impl Host, params: &Params) -> Verdict {
        match Config::from_params(params) {
            Ok(Config::Witnesses(w)) => witnesses(host, &w),
            Ok(Config::Etcd(e)) => etcd(host, &e),
            Err(e) => verdict(Status::Fail(e), None, vec![]),
        }
    }
}

export_check!(Quorum);

fn witnesses(host: &impl Host, c: &Witnesses) -> Verdict {
    let results = probe::probe_all(host, &c.witnesses, c.timeout_ms);
    let reached: Vec<bool> = results.iter().map(Result::is_ok).collect();
    let t = tally(&reached, c.tie_breaker);
    let unreachable: Vec<String> = c
        .witnesses
        .iter()
        .zip(&results)
        .filter_map(|(w, r)| r.as_ref().err().map(|e| format!("{w} ({e})")))
        .collect();
    let measurements = vec![
        measurement("votes", t.votes as f64),
        measurement("total", t.total as f64),
    ];
    let unreachable = if unreachable.is_empty() {
        String::new()
    } else {
        format!("; unreachable: {}", unreachable.join(", "))
    };
    if t.outcome.has_quorum() {
        let message = (!unreachable.is_empty() || t.outcome == votes::Outcome::TieWon).then(|| {
            let tie = if t.outcome == votes::Outcome::TieWon {
                " (tie won by the tie-breaker)"
            } else {
                ""
            };
            format!("{} of {} votes{tie}{unreachable}", t.votes, t.total)
        });
        return verdict(Status::Ok, message, measurements);
    }
    let what = match (t.outcome, c.tie_breaker) {
        (votes::Outcome::TieLost, Some(i)) => {
            format!("tie without the tie-breaker {}", c.witnesses[i])
        }
        (votes::Outcome::TieLost, None) => "tie and no tie_breaker".to_string(),
        _ => "no majority".to_string(),
    };
    let reason = format!(
        "no quorum: {} of {} votes, {what}{unreachable}",
        t.votes, t.total
    );
    host.warn(&format!("quorum: {reason}"));
    verdict(severity(c.on_loss, reason), None, measurements)
}

fn etcd(host: &impl Host, c: &Etcd) -> Verdict {
    let known = host
        .scratch_get_str(LEASE_KEY)
        .and_then(|s| s.parse::<i64>().ok());
    let client = Client::new(host, c);
    match client.run(known) {
        Ok(Outcome::Holding { lease, ttl_s, how }) => {
            if known != Some(lease) {
                if let Err(e) = host.scratch_set(LEASE_KEY, lease.to_string().as_bytes()) {
                    host.warn(&format!("quorum: scratch set: {e}"));
                }
            }
            let message = match how {
                How::Renewed => None,
                How::Acquired => Some(format!("acquired `{}` with lease {lease:x}", c.key)),
                How::Recovered => Some(format!(
                    "recovered `{}` and its lease {lease:x} from etcd",
                    c.key
                )),
            };
            if let Some(m) = &message {
                host.info(&format!("quorum: {m}"));
            }
            verdict(
                Status::Ok,
                message,
                vec![measurement("lease_ttl_s", ttl_s as f64)],
            )
        }
        Ok(Outcome::HeldBy(holder)) => {
            let reason = format!("`{}` is held by `{holder}`", c.key);
            if known.is_some() {
                return stand_down(host, &format!("lost the key: {reason}"));
            }
            verdict(severity(c.on_conflict, reason), None, vec![])
        }
        Ok(Outcome::Lost(reason)) => stand_down(host, &reason),
        Err(e) => {
            if known.is_some() {
                return stand_down(host, &format!("cannot confirm our lease: {e}"));
            }
            verdict(
                severity(c.on_conflict, format!("cannot take `{}`: {e}", c.key)),
                None,
                vec![],
            )
        }
    }
}

/// We held the key and cannot keep it: forget the lease id and stand down.
fn stand_down(host: &impl Host, reason: &str) -> Verdict {
    host.scratch_remove(LEASE_KEY);
    let reason = format!("{reason}; standing down");
    host.error(&format!("quorum: {reason}"));
    verdict(Status::Fatal(reason), None, vec![])
}

fn severity(s: Severity, reason: String) -> Status {
    match s {
        Severity::Fail => Status::Fail(reason),
        Severity::Fatal => Status::Fatal(reason),
    }
}

fn measurement(name: &str, value: f64) -> Measurement {
    Measurement::new(name, value)
}

fn verdict(status: Status, message: Option<String>, measurements: Vec<Measurement>) -> Verdict {
    Verdict::new(status)
        .with_message_opt(message)
        .with_measurements(measurements)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::rc::Rc;

    use serde_json::{json, Value};
    use wasmalived_plugin_sdk::net::{HttpError, HttpRequest, NetError};
    use wasmalived_plugin_sdk::testing::{response, FakeHost, FakeReply};

    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn witnesses_majority_and_ties() {
        let host = FakeHost::new();
        host.listen(addr("192.0.2.1:22"));
        host.serve_http("http://192.0.2.2/", |_| response(503, "down"));
        let params = [
            ("witness", "tcp:192.0.2.1:22"),
            ("witness", "http://192.0.2.2/health"),
        ];
        let v = host.run::<Quorum>(&params);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(
            v.message.as_deref(),
            Some("2 of 3 votes; unreachable: http://192.0.2.2/health (status 503)")
        );
        assert_eq!(
            (v.measurement("votes"), v.measurement("total")),
            (Some(2.0), Some(3.0))
        );

        // Three witnesses, one reached: a tie, won only with the tie-breaker reached.
        let mut tie = params.to_vec();
        tie.push(("witness", "tcp:192.0.2.3:22"));
        host.tcp_reply(addr("192.0.2.3:22"), FakeReply::Hang);
        let v = host.run::<Quorum>(&tie);
        assert_eq!(v.kind(), "fail");
        assert!(
            v.reason().is_some_and(|r| r.starts_with(
                "no quorum: 2 of 4 votes, tie and no tie_breaker; unreachable: \
                 http://192.0.2.2/health (status 503), tcp:192.0.2.3:22 (timeout after 1000ms)"
            )),
            "{v:?}"
        );
        tie.push(("tie_breaker", "tcp:192.0.2.1:22"));
        let v = host.run::<Quorum>(&tie);
        assert!(v.is_ok(), "{v:?}");
        assert!(v
            .message
            .as_deref()
            .is_some_and(|m| m.contains("(tie won by the tie-breaker)")));
    }

    #[test]
    fn an_isolated_node_loses_quorum() {
        let host = FakeHost::new();
        let v = host.run::<Quorum>(&[
            ("witness", "tcp:192.0.2.1:22"),
            ("witness", "http://192.0.2.2/"),
            ("on_loss", "fatal"),
        ]);
        assert_eq!(v.kind(), "fatal");
        assert_eq!(
            v.reason(),
            Some(
                "no quorum: 1 of 3 votes, no majority; unreachable: tcp:192.0.2.1:22 \
                 (connection refused), http://192.0.2.2/ (request denied (URL not granted))"
            )
        );
        assert!(host.logged("quorum: no quorum"));
    }

    /// Just enough of etcd's v3 JSON gateway: one key, leases with TTLs, no clock.
    #[derive(Default)]
    struct Etcd {
        key: Option<(String, i64)>,
        leases: BTreeMap<i64, i64>,
        next_lease: i64,
    }

    impl Etcd {
        fn answer(&mut self, path: &str, body: &Value) -> Value {
            let b64 = |s: &str| crate::b64::encode(s.as_bytes());
            match path {
                "/v3/kv/range" => match &self.key {
                    Some((value, lease)) => json!({"kvs": [{
                        "key": b64("k"), "value": b64(value), "lease": lease.to_string()
                    }]}),
                    None => json!({"header": {}}),
                },
                "/v3/lease/grant" => {
                    self.next_lease += 1;
                    let ttl: i64 = body["TTL"].as_str().expect("TTL").parse().expect("ttl");
                    self.leases.insert(self.next_lease, ttl);
                    json!({"ID": self.next_lease.to_string(), "TTL": ttl.to_string()})
                }
                "/v3/kv/txn" => {
                    if self.key.is_some() {
                        let range = self.answer("/v3/kv/range", &json!({}));
                        return json!({"succeeded": false,
                                      "responses": [{"response_range": range}]});
                    }
                    let put = &body["success"][0]["request_put"];
                    let value =
                        crate::b64::decode(put["value"].as_str().expect("value")).expect("base64");
                    let lease = put["lease"].as_str().expect("lease").parse().expect("id");
                    self.key = Some((String::from_utf8(value).expect("utf-8"), lease));
                    json!({"succeeded": true})
                }
                "/v3/lease/keepalive" => {
                    let id: i64 = body["ID"].as_str().expect("ID").parse().expect("id");
                    let ttl = self.leases.get(&id).copied().unwrap_or(0);
                    json!({"result": {"ID": id.to_string(), "TTL": ttl.to_string()}})
                }
                "/v3/lease/revoke" => {
                    let id: i64 = body["ID"].as_str().expect("ID").parse().expect("id");
                    self.leases.remove(&id);
                    if self.key.as_ref().is_some_and(|(_, l)| *l == id) {
                        self.key = None;
                    }
                    json!({})
                }
                other => panic!("unexpected etcd call {other}"),
            }
        }
    }

    /// A host whose `http://192.0.2.10:2379/` is `etcd`.
    fn with_etcd(etcd: &Rc<RefCell<Etcd>>) -> FakeHost {
        let host = FakeHost::new();
        let etcd = Rc::clone(etcd);
        host.serve_http("http://192.0.2.10:2379/", move |r: &HttpRequest| {
            let body: Value =
                serde_json::from_slice(r.body.as_deref().unwrap_or(b"{}")).expect("json body");
            let answer = etcd.borrow_mut().answer(&r.url.path, &body);
            response(200, &answer.to_string())
        });
        host
    }

    fn etcd_params(node: &str) -> Vec<(&str, &str)> {
        vec![
            ("mode", "etcd"),
            ("etcd", "http://192.0.2.10:2379"),
            ("key", "/wasmalived/vip"),
            ("node_id", node),
            ("ttl_s", "5"),
        ]
    }

    #[test]
    fn etcd_acquire_renew_and_conflict() {
        let etcd = Rc::new(RefCell::new(Etcd::default()));
        let (a, b) = (with_etcd(&etcd), with_etcd(&etcd));
        let v = a.run::<Quorum>(&etcd_params("a"));
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(
            v.message.as_deref(),
            Some("acquired `/wasmalived/vip` with lease 1")
        );
        assert_eq!(v.measurement("lease_ttl_s"), Some(5.0));
        assert_eq!(a.scratch(LEASE_KEY).as_deref(), Some("1"));
        let v = a.run::<Quorum>(&etcd_params("a"));
        assert_eq!((v.kind(), v.message.as_deref()), ("ok", None), "a renewal");

        let v = b.run::<Quorum>(&etcd_params("b"));
        assert_eq!(v.kind(), "fatal");
        assert_eq!(v.reason(), Some("`/wasmalived/vip` is held by `a`"));

        // A restarted daemon (empty scratch) recovers its key and lease from etcd.
        a.clear_scratch();
        let v = a.run::<Quorum>(&etcd_params("a"));
        assert_eq!(
            v.message.as_deref(),
            Some("recovered `/wasmalived/vip` and its lease 1 from etcd")
        );
    }

    #[test]
    fn etcd_holder_stands_down_when_its_lease_is_gone() {
        let etcd = Rc::new(RefCell::new(Etcd::default()));
        let a = with_etcd(&etcd);
        assert!(a.run::<Quorum>(&etcd_params("a")).is_ok());
        // The lease expires in etcd: the key goes with it.
        etcd.borrow_mut()
            .answer("/v3/lease/revoke", &json!({"ID": "1"}));
        let v = a.run::<Quorum>(&etcd_params("a"));
        assert_eq!(v.kind(), "fatal");
        assert_eq!(
            v.reason(),
            Some(
                "key `/wasmalived/vip` is gone (our lease expired or was revoked); standing \
                 down"
            )
        );
        assert_eq!(a.scratch(LEASE_KEY), None);
        // Next run it takes the free key again.
        assert!(a.run::<Quorum>(&etcd_params("a")).is_ok());
    }

    #[test]
    fn etcd_unreachable() {
        let host = FakeHost::new();
        host.serve_http("http://192.0.2.10:2379/", |_| {
            FakeReply::Error(NetError::Http(HttpError::Refused))
        });
        let v = host.run::<Quorum>(&etcd_params("a"));
        assert_eq!(v.kind(), "fatal");
        assert_eq!(
            v.reason(),
            Some("cannot take `/wasmalived/vip`: etcd /v3/kv/range: connection refused")
        );
        host.set_scratch(LEASE_KEY, "7");
        let v = host.run::<Quorum>(&etcd_params("a"));
        assert_eq!(
            v.reason(),
            Some("cannot confirm our lease: etcd /v3/kv/range: connection refused; standing down")
        );
        // A hung etcd uses up the run's budget.
        let host2 = FakeHost::new();
        host2.serve_http("http://192.0.2.10:2379/", |_| FakeReply::Hang);
        let v = host2.run::<Quorum>(&etcd_params("a"));
        assert_eq!(
            v.reason(),
            Some("cannot take `/wasmalived/vip`: etcd /v3/kv/range: timeout after 1000ms")
        );
    }
}
