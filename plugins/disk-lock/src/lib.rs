//! `disk-lock`: a split-brain guard. Healthy only while this node holds a lease on shared
//! storage (an NFS or other shared mount) that only one node can hold at a time.
//!
//! # Parameters
//! | key               | default            | meaning                                              |
//! |-------------------|--------------------|------------------------------------------------------|
//! | `dir`             | —                  | the shared directory as the plugin sees it (the granted path, or below it) |
//! | `node_id`         | —                  | this node's id in the lease (A-Z a-z 0-9 . _ -, ≤ 64) |
//! | `lease_ms`        | —                  | lease duration                                       |
//! | `renew_margin_ms` | `lease_ms / 2`     | a holder that cannot renew stands down once less than this is left; `0 < margin < lease_ms` |
//! | `on_conflict`     | `fatal`            | `fail` or `fatal`: the verdict while another node holds the lease |
//! | `name`            | `wasmalived.lease` | lease file name prefix: files are `NAME.GENERATION`  |
//!
//! # Grants
//! `allow_dir SHARED rw` (CLI: `--dir SHARED:rw`) covering `dir`. Nothing else: the plugin uses
//! the filesystem, the wall clock and random, and the always-granted `log` and `scratch`.
//!
//! # What one run does
//! Read the newest lease generation (see `store.rs`). If there is none, it is ours, or it
//! expired (or is unreadable and older than `lease_ms`), create the next generation with us
//! as holder and expiry `now + lease_ms`; creation is exclusive (temp file + fsync + `link`),
//! so of two nodes racing for one generation exactly one wins, and the winner re-lists and
//! reads its file back to confirm. A live holder therefore renews every run and the
//! generation counts the renewals.
//!
//! # Verdicts
//! - `ok` — we hold the lease: it was taken or renewed this run, *or* the renewal failed
//!   (storage error) but the lease we last wrote still has at least `renew_margin_ms` left
//!   (the message says so). Measurements `lease_remaining_ms`, `generation`.
//! - `on_conflict` (`fatal` by default, or `fail`) — another node holds an unexpired lease
//!   (reason names it and the time left), an unreadable lease file is younger than
//!   `lease_ms` (held by an unknown node), we lost a race for a generation, or the storage
//!   fails while we hold nothing.
//! - `fatal` always — *we held the lease and lose it*: our renewal failed and less than
//!   `renew_margin_ms` is left, or another node now holds it. The node stands down.
//! - `fail` — a bad parameter (the reason names it).
//!
//! # Timing and clock assumptions
//! Expiry times are wall-clock milliseconds written by the holder and compared by the other
//! nodes against *their* wall clocks, so the nodes' clocks must agree within a known bound
//! (run NTP/chrony; call the bound `skew`). An unreadable file is aged by its mtime, which
//! on NFS comes from the server's clock: it must be within `skew` too. For a holder that
//! cannot renew to stand down before another node may take over:
//!
//! ```text
//! renew_margin_ms > check interval + check timeout + skew
//! lease_ms        > renew_margin_ms + check interval   (so one failed renewal is survivable)
//! ```
//! e.g. `interval 1`, `timeout 1`, skew 500 ms: `renew_margin_ms 3000`, `lease_ms 6000`.
//! A crashed holder simply stops renewing: its lease expires after `lease_ms` and the next
//! node takes it over within one check interval after that.
//!
//! A holder that cannot renew measures what is left of its own lease by the smaller of two
//! reckonings: the wall clock against the expiry it wrote, and the monotonic clock since it
//! wrote it. A wall clock that steps back during a storage outage (NTP correcting a fast
//! clock, an operator's `date -s`) therefore never keeps a holder past the moment the other
//! nodes see its lease expire; one that steps forward only makes it stand down sooner.
//!
//! State across runs: the lease we last wrote (generation, expiry, monotonic write time,
//! duration) is kept in `scratch`, so a run whose storage fails can still tell whether we
//! hold a lease and how long it lasts.
wit_bindgen::generate!({ path: "../../wit", world: "check-plugin" });

mod config;
mod decide;
mod lease;
mod store;

use std::time::SystemTime;

use exports::wasmalived::plugin::check::Guest;
use wasmalived::plugin::log::{log, Level};
use wasmalived::plugin::scratch;
use wasmalived::plugin::types::{Measurement, Params, Status, Verdict};

use config::{Config, OnConflict};
use decide::{after_failed_renewal, decide, Decision, OwnLease, Standing, Taken};
use lease::Lease;
use store::{epoch_ms, Publish, Store};

/// Scratch key of the lease we last wrote: `GENERATION EXPIRES_MS`.
const HELD_KEY: &str = "held";

struct DiskLock;

impl Guest for DiskLock {
    fn check(params: Params) -> Verdict {
        match Config::from_params(&params) {
            Ok(config) => run(&config),
            Err(e) => verdict(Status::Fail(e), None, None),
        }
    }
}

/// The lease we wrote last (from scratch): `GENERATION EXPIRES_MS WRITTEN_MONO_MS LEASE_MS`.
#[derive(Debug, Clone, Copy)]
struct Held {
    generation: u64,
    lease: OwnLease,
}

impl Held {
    fn load() -> Option<Held> {
        let raw = scratch::get(HELD_KEY)?;
        let text = String::from_utf8(raw).ok()?;
        let mut fields = text.split(' ').map(str::parse::<u64>);
        let mut next = || fields.next()?.ok();
        Some(Held {
            generation: next()?,
            lease: OwnLease {
                expires_ms: next()?,
                written_mono_ms: next()?,
                lease_ms: next()?,
            },
        })
    }

    fn store(self) {
        let l = self.lease;
        let text = format!(
            "{} {} {} {}",
            self.generation, l.expires_ms, l.written_mono_ms, l.lease_ms
        );
        if let Err(e) = scratch::set(HELD_KEY, text.as_bytes()) {
            log(Level::Warn, &format!("disk-lock: scratch set: {e}"));
        }
    }

    fn forget() {
        scratch::remove(HELD_KEY);
    }
}

fn run(c: &Config) -> Verdict {
    // The monotonic time *before* anything is read: the lease written this run counts from
    // no later than this, so its monotonic reckoning never overstates what is left.
    let mono_start = monotonic_ms();
    let now = epoch_ms(SystemTime::now());
    let held = Held::load();
    let store = Store::new(&c.dir, &c.name);
    let observed = match store.observe(now) {
        Ok(o) => o,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (is it granted? `allow_dir DIR rw`, CLI `--dir DIR:rw`)"
            } else {
                ""
            };
            let error = format!("reading {}: {e}{hint}", dir(c));
            return storage_failed(c, held, now, &error);
        }
    };
    match decide(&observed, &c.node_id, now, c.lease_ms) {
        Decision::Conflict {
            holder,
            generation,
            remaining_ms,
            detail,
        } => {
            let who = holder.map_or_else(|| "an unknown node".to_string(), |h| format!("`{h}`"));
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            };
            conflict(
                c,
                held,
                format!(
                    "lease held by {who} for another {remaining_ms} ms (generation \
                     {generation}){detail}"
                ),
                generation,
            )
        }
        Decision::Take { generation, from } => {
            let lease = Lease {
                holder: c.node_id.clone(),
                generation,
                written_ms: now,
                expires_ms: now.saturating_add(c.lease_ms),
            };
            match store.publish(&lease, wasi::random::random::get_random_u64()) {
                Ok(Publish::Won) => {
                    Held {
                        generation,
                        lease: OwnLease {
                            expires_ms: lease.expires_ms,
                            written_mono_ms: mono_start,
                            lease_ms: c.lease_ms,
                        },
                    }
                    .store();
                    store.cleanup(generation, now, c.lease_ms.saturating_mul(2));
                    let message = match from {
                        Taken::Ours => None,
                        Taken::Nothing => Some("acquired the lease".to_string()),
                        Taken::OursExpired => Some("re-acquired our own expired lease".to_string()),
                        Taken::Expired(h) => Some(format!("took over the expired lease of `{h}`")),
                        Taken::Unreadable => Some(
                            "took over an unreadable lease file older than lease_ms".to_string(),
                        ),
                    };
                    if let Some(m) = &message {
                        log(
                            Level::Info,
                            &format!("disk-lock: {m} (generation {generation})"),
                        );
                    }
                    verdict(Status::Ok, message, Some((c.lease_ms, generation)))
                }
                Ok(Publish::Lost) => {
                    // Someone else created this generation first: who?
                    let who = match store.observe(now) {
                        Ok(decide::Observed::Held(l)) => format!("`{}`", l.holder),
                        _ => "another node".to_string(),
                    };
                    conflict(
                        c,
                        held,
                        format!("lost the race for lease generation {generation} to {who}"),
                        generation,
                    )
                }
                Err(e) => storage_failed(c, held, now, &format!("writing {}: {e}", dir(c))),
            }
        }
    }
}

/// Someone else holds the lease. If we held it until now, we lost it: stand down (fatal).
fn conflict(c: &Config, held: Option<Held>, reason: String, generation: u64) -> Verdict {
    let measurements = Some((0, generation));
    if let Some(h) = held {
        Held::forget();
        let reason = format!(
            "lost our lease (generation {}): {reason}; standing down",
            h.generation
        );
        log(Level::Error, &format!("disk-lock: {reason}"));
        return verdict(Status::Fatal(reason), None, measurements);
    }
    let status = match c.on_conflict {
        OnConflict::Fail => Status::Fail(reason),
        OnConflict::Fatal => Status::Fatal(reason),
    };
    verdict(status, None, measurements)
}

/// The storage failed. A holder keeps going while its last lease has `renew_margin_ms` left,
/// and stands down (fatal) after; a non-holder cannot take the lease (`on_conflict`).
fn storage_failed(c: &Config, held: Option<Held>, now: u64, error: &str) -> Verdict {
    log(Level::Warn, &format!("disk-lock: {error}"));
    match (
        held,
        after_failed_renewal(
            held.map(|h| h.lease),
            now,
            monotonic_ms(),
            c.renew_margin_ms,
        ),
    ) {
        (Some(h), Standing::Keep { left_ms }) => verdict(
            Status::Ok,
            Some(format!(
                "renewal failed ({error}); our lease (generation {}) is valid for another \
                 {left_ms} ms",
                h.generation
            )),
            Some((left_ms, h.generation)),
        ),
        (Some(h), Standing::StandDown { left_ms }) => {
            Held::forget();
            let reason = format!(
                "cannot renew our lease (generation {}): {error}; {left_ms} ms left < \
                 renew_margin_ms={}; standing down",
                h.generation, c.renew_margin_ms
            );
            log(Level::Error, &format!("disk-lock: {reason}"));
            verdict(Status::Fatal(reason), None, Some((left_ms, h.generation)))
        }
        _ => {
            let reason = format!("cannot take the lease: {error}");
            let status = match c.on_conflict {
                OnConflict::Fail => Status::Fail(reason),
                OnConflict::Fatal => Status::Fatal(reason),
            };
            verdict(status, None, None)
        }
    }
}

/// The host's monotonic clock in ms (the same clock in every run of the check).
fn monotonic_ms() -> u64 {
    wasi::clocks::monotonic_clock::now() / 1_000_000
}

fn dir(c: &Config) -> String {
    c.dir.display().to_string()
}

/// A verdict with optional measurements `(lease_remaining_ms, generation)`.
fn verdict(status: Status, message: Option<String>, lease: Option<(u64, u64)>) -> Verdict {
    let measurements = lease
        .map(|(remaining, generation)| {
            vec![
                Measurement {
                    name: "lease_remaining_ms".into(),
                    value: remaining as f64,
                },
                Measurement {
                    name: "generation".into(),
                    value: generation as f64,
                },
            ]
        })
        .unwrap_or_default();
    Verdict {
        status,
        message,
        measurements,
    }
}

export!(DiskLock);
