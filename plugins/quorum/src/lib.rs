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
wit_bindgen::generate!({ path: "../../wit", world: "check-plugin" });

mod b64;
mod config;
mod etcd;
mod http;
mod probe;
mod votes;

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::log::{log, Level};
use wasmalived::plugin::scratch;
use wasmalived::plugin::types::{Measurement, Params, Status, Verdict};

use config::{Config, Etcd, Severity, Witnesses};
use etcd::{Client, How, Outcome};
use votes::tally;

/// Scratch key of the etcd lease id we hold (decimal).
const LEASE_KEY: &str = "etcd_lease";

struct Quorum;

impl Guest for Quorum {
    fn check(params: Params) -> Verdict {
        match Config::from_params(&params) {
            Ok(Config::Witnesses(w)) => witnesses(&w),
            Ok(Config::Etcd(e)) => etcd(&e),
            Err(e) => verdict(Status::Fail(e), None, vec![]),
        }
    }
}

fn witnesses(c: &Witnesses) -> Verdict {
    let results = probe::probe_all(&c.witnesses, c.timeout_ms);
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
    log(Level::Warn, &format!("quorum: {reason}"));
    verdict(severity(c.on_loss, reason), None, measurements)
}

fn etcd(c: &Etcd) -> Verdict {
    let known = scratch::get(LEASE_KEY)
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse::<i64>().ok());
    let client = Client::new(c);
    match client.run(known) {
        Ok(Outcome::Holding { lease, ttl_s, how }) => {
            if known != Some(lease) {
                if let Err(e) = scratch::set(LEASE_KEY, lease.to_string().as_bytes()) {
                    log(Level::Warn, &format!("quorum: scratch set: {e}"));
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
                log(Level::Info, &format!("quorum: {m}"));
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
                return stand_down(&format!("lost the key: {reason}"));
            }
            verdict(severity(c.on_conflict, reason), None, vec![])
        }
        Ok(Outcome::Lost(reason)) => stand_down(&reason),
        Err(e) => {
            if known.is_some() {
                return stand_down(&format!("cannot confirm our lease: {e}"));
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
fn stand_down(reason: &str) -> Verdict {
    scratch::remove(LEASE_KEY);
    let reason = format!("{reason}; standing down");
    log(Level::Error, &format!("quorum: {reason}"));
    verdict(Status::Fatal(reason), None, vec![])
}

fn severity(s: Severity, reason: String) -> Status {
    match s {
        Severity::Fail => Status::Fail(reason),
        Severity::Fatal => Status::Fatal(reason),
    }
}

fn measurement(name: &str, value: f64) -> Measurement {
    Measurement {
        name: name.into(),
        value,
    }
}

fn verdict(status: Status, message: Option<String>, measurements: Vec<Measurement>) -> Verdict {
    Verdict {
        status,
        message,
        measurements,
    }
}

export!(Quorum);
