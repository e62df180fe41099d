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
mod config;
mod decide;
mod lease;
mod store;

use std::time::Duration;

use wasmalived_plugin_sdk::{export_check, Check, Host, Params, Status, Verdict};

use config::{Config, OnConflict};
use decide::{after_failed_renewal, decide, Decision, OwnLease, Standing, Taken};
use lease::Lease;
use store::{epoch_ms, Publish, Store};

/// Scratch key of the lease we last wrote: `GENERATION EXPIRES_MS`.
const HELD_KEY: &str = "held";

/// The check.
pub struct DiskLock;

impl Check for DiskLock {
    fn check(host: &impl Host, params: &Params) -> Verdict {
        match Config::from_params(params) {
            Ok(config) => run(host, &config),
            Err(e) => verdict(Status::Fail(e), None, None),
        }
    }
}

export_check!(DiskLock);

/// The lease we wrote last (from scratch): `GENERATION EXPIRES_MS WRITTEN_MONO_MS LEASE_MS`.
#[derive(Debug, Clone, Copy)]
struct Held {
    generation: u64,
    lease: OwnLease,
}

impl Held {
    fn load(host: &impl Host) -> Option<Held> {
        let text = host.scratch_get_str(HELD_KEY)?;
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

    fn store(self, host: &impl Host) {
        let l = self.lease;
        let text = format!(
            "{} {} {} {}",
            self.generation, l.expires_ms, l.written_mono_ms, l.lease_ms
        );
        if let Err(e) = host.scratch_set(HELD_KEY, text.as_bytes()) {
            host.warn(&format!("disk-lock: scratch set: {e}"));
        }
    }

    fn forget(host: &impl Host) {
        host.scratch_remove(HELD_KEY);
    }
}

fn run(host: &impl Host, c: &Config) -> Verdict {
    // The monotonic time *before* anything is read: the lease written this run counts from
    // no later than this, so its monotonic reckoning never overstates what is left.
    let mono_start = monotonic_ms(host);
    let now = epoch_ms(host.wall_clock());
    let held = Held::load(host);
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
            return storage_failed(host, c, held, now, &error);
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
                host,
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
            match store.publish(&lease, host.random_u64()) {
                Ok(Publish::Won) => {
                    Held {
                        generation,
                        lease: OwnLease {
                            expires_ms: lease.expires_ms,
                            written_mono_ms: mono_start,
                            lease_ms: c.lease_ms,
                        },
                    }
                    .store(host);
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
                        host.info(&format!("disk-lock: {m} (generation {generation})"));
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
                        host,
                        c,
                        held,
                        format!("lost the race for lease generation {generation} to {who}"),
                        generation,
                    )
                }
                Err(e) => storage_failed(host, c, held, now, &format!("writing {}: {e}", dir(c))),
            }
        }
    }
}

/// Someone else holds the lease. If we held it until now, we lost it: stand down (fatal).
fn conflict(
    host: &impl Host,
    c: &Config,
    held: Option<Held>,
    reason: String,
    generation: u64,
) -> Verdict {
    let measurements = Some((0, generation));
    if let Some(h) = held {
        Held::forget(host);
        let reason = format!(
            "lost our lease (generation {}): {reason}; standing down",
            h.generation
        );
        host.error(&format!("disk-lock: {reason}"));
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
fn storage_failed(
    host: &impl Host,
    c: &Config,
    held: Option<Held>,
    now: u64,
    error: &str,
) -> Verdict {
    host.warn(&format!("disk-lock: {error}"));
    match (
        held,
        after_failed_renewal(
            held.map(|h| h.lease),
            now,
            monotonic_ms(host),
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
            Held::forget(host);
            let reason = format!(
                "cannot renew our lease (generation {}): {error}; {left_ms} ms left < \
                 renew_margin_ms={}; standing down",
                h.generation, c.renew_margin_ms
            );
            host.error(&format!("disk-lock: {reason}"));
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
fn monotonic_ms(host: &impl Host) -> u64 {
    millis(host.monotonic())
}

/// `d` in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn dir(c: &Config) -> String {
    c.dir.display().to_string()
}

/// A verdict with optional measurements `(lease_remaining_ms, generation)`.
fn verdict(status: Status, message: Option<String>, lease: Option<(u64, u64)>) -> Verdict {
    let v = Verdict::new(status).with_message_opt(message);
    match lease {
        Some((remaining, generation)) => v
            .measure("lease_remaining_ms", remaining as f64)
            .measure("generation", generation as f64),
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use wasmalived_plugin_sdk::testing::FakeHost;

    use super::*;

    /// The directory the nodes share.
    type Shared = crate::store::tests::Tmp;

    fn dir(shared: &Shared) -> &str {
        shared.0.to_str().expect("utf-8 path")
    }

    fn run(host: &FakeHost, shared: &Shared, node: &str, extra: &[(&str, &str)]) -> Verdict {
        let mut params = vec![
            ("dir", dir(shared)),
            ("node_id", node),
            ("lease_ms", "6000"),
            ("renew_margin_ms", "3000"),
        ];
        params.extend_from_slice(extra);
        host.run::<DiskLock>(&params)
    }

    #[test]
    fn one_holder_renews_and_the_other_conflicts() {
        let shared = Shared::new("conflict");
        let (a, b) = (FakeHost::new(), FakeHost::new());
        let v = run(&a, &shared, "a", &[]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(v.message.as_deref(), Some("acquired the lease"));
        assert_eq!(v.measurement("generation"), Some(1.0));
        assert_eq!(v.measurement("lease_remaining_ms"), Some(6000.0));
        a.advance(Duration::from_secs(1));
        let v = run(&a, &shared, "a", &[]);
        assert_eq!((v.kind(), v.message.as_deref()), ("ok", None), "a renewal");
        assert_eq!(v.measurement("generation"), Some(2.0));

        b.advance(Duration::from_secs(2));
        let v = run(&b, &shared, "b", &[]);
        assert_eq!(v.kind(), "fatal");
        assert_eq!(
            v.reason(),
            Some("lease held by `a` for another 5000 ms (generation 2)")
        );
        let v = run(&b, &shared, "b", &[("on_conflict", "fail")]);
        assert_eq!(v.kind(), "fail");
    }

    #[test]
    fn a_crashed_holder_is_taken_over_after_its_lease() {
        let shared = Shared::new("takeover");
        let (a, b) = (FakeHost::new(), FakeHost::new());
        assert!(run(&a, &shared, "a", &[]).is_ok());
        // `a` stops running; `b` waits out the lease.
        b.advance(Duration::from_millis(6000));
        let v = run(&b, &shared, "b", &[]);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(
            v.message.as_deref(),
            Some("took over the expired lease of `a`")
        );
        // `a` comes back: it held the lease, so losing it is fatal whatever on_conflict says.
        a.advance(Duration::from_millis(6500));
        let v = run(&a, &shared, "a", &[("on_conflict", "fail")]);
        assert_eq!(v.kind(), "fatal");
        assert!(
            v.reason()
                .is_some_and(|r| r.starts_with("lost our lease (generation 1): lease held by `b`")),
            "{v:?}"
        );
        assert_eq!(a.scratch(HELD_KEY), None, "the held lease is forgotten");
    }

    #[test]
    fn a_holder_cut_off_from_storage_stands_down_before_its_lease_ends() {
        let shared = Shared::new("outage");
        let a = FakeHost::new();
        assert!(run(&a, &shared, "a", &[]).is_ok());
        std::fs::remove_dir_all(&shared.0).expect("cut the storage");
        a.advance(Duration::from_millis(2000));
        let v = run(&a, &shared, "a", &[]);
        assert!(v.is_ok(), "{v:?}");
        assert!(
            v.message
                .as_deref()
                .is_some_and(|m| m.contains("is valid for another 4000 ms")),
            "{v:?}"
        );
        assert!(a.logged("(is it granted? `allow_dir DIR rw`, CLI `--dir DIR:rw`)"));
        a.advance(Duration::from_millis(1500));
        let v = run(&a, &shared, "a", &[]);
        assert_eq!(v.kind(), "fatal");
        assert!(
            v.reason()
                .is_some_and(|r| r.contains("2500 ms left < renew_margin_ms=3000; standing down")),
            "{v:?}"
        );
        // Holding nothing now, the same outage is an ordinary conflict (fatal by default).
        let v = run(&a, &shared, "a", &[("on_conflict", "fail")]);
        assert_eq!(v.kind(), "fail");
        assert!(v
            .reason()
            .is_some_and(|r| r.starts_with("cannot take the lease: reading")));
    }

    #[test]
    fn a_wall_clock_stepping_back_never_stretches_the_lease() {
        let shared = Shared::new("clock-step");
        let a = FakeHost::new();
        assert!(run(&a, &shared, "a", &[]).is_ok());
        std::fs::remove_dir_all(&shared.0).expect("cut the storage");
        // An hour back on the wall clock would leave the written expiry far ahead; the
        // monotonic clock says 3.5 s of the 6 s lease are gone.
        a.step_wall_clock(Duration::from_secs(3600), false);
        a.advance(Duration::from_millis(3500));
        let v = run(&a, &shared, "a", &[]);
        assert_eq!(v.kind(), "fatal", "{v:?}");
        assert_eq!(v.measurement("lease_remaining_ms"), Some(2500.0));
    }

    #[test]
    fn bad_parameters_fail_naming_them() {
        let a = FakeHost::new();
        let v = a.run::<DiskLock>(&[("dir", "/shared"), ("node_id", "a")]);
        assert_eq!(v.reason(), Some("parameter `lease_ms` is required"));
        assert!(v.measurements.is_empty());
    }
}
