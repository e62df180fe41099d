//! What to do given the lease directory's newest generation: a pure function of what was
//! read, who we are and the wall-clock time, so every case is unit-tested.

use crate::lease::Lease;

/// The newest lease generation found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// No lease file at all.
    Absent,
    /// The newest generation, readable.
    Held(Lease),
    /// The newest generation's file exists but cannot be trusted (garbled, truncated, wrong
    /// generation). `age_ms` is now minus its mtime, if the filesystem reports one.
    Unreadable {
        /// Its generation (from the file name).
        generation: u64,
        /// Why it is unreadable.
        reason: String,
        /// How long ago it was last modified.
        age_ms: Option<u64>,
    },
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write generation `generation` with us as the holder (exclusive create: whoever
    /// creates it first wins).
    Take {
        /// The generation to create.
        generation: u64,
        /// What we are taking it from (for the message).
        from: Taken,
    },
    /// Someone else holds the lease, or might.
    Conflict {
        /// The holder, if the file is readable.
        holder: Option<String>,
        /// The newest generation.
        generation: u64,
        /// How long until it can be taken over (by our clock).
        remaining_ms: u64,
        /// Human-readable detail (e.g. why the file is unreadable).
        detail: String,
    },
}

/// Where a [`Decision::Take`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// No lease existed.
    Nothing,
    /// Our own lease, still valid: a renewal.
    Ours,
    /// Our own lease, already expired.
    OursExpired,
    /// Another node's expired lease.
    Expired(String),
    /// An unreadable file older than a lease duration.
    Unreadable,
}

/// Decide, at wall-clock `now_ms`, for node `node_id` with leases of `lease_ms`.
///
/// - no lease → take generation 1;
/// - our lease (valid or not) → renew with the next generation;
/// - another node's lease past its expiry → take over with the next generation;
/// - another node's unexpired lease → conflict;
/// - an unreadable newest file → held by an unknown node until its mtime is `lease_ms` old
///   (a writer that left it must have finished or died by then: a live holder rewrites every
///   run); without an mtime it stays a conflict.
pub fn decide(observed: &Observed, node_id: &str, now_ms: u64, lease_ms: u64) -> Decision {
    match observed {
        Observed::Absent => Decision::Take {
            generation: 1,
            from: Taken::Nothing,
        },
        Observed::Held(lease) => {
            let next = lease.generation.saturating_add(1);
            if lease.holder == node_id {
                let from = if lease.expires_ms > now_ms {
                    Taken::Ours
                } else {
                    Taken::OursExpired
                };
                Decision::Take {
                    generation: next,
                    from,
                }
            } else if lease.expires_ms <= now_ms {
                Decision::Take {
                    generation: next,
                    from: Taken::Expired(lease.holder.clone()),
                }
            } else {
                Decision::Conflict {
                    holder: Some(lease.holder.clone()),
                    generation: lease.generation,
                    remaining_ms: lease.expires_ms - now_ms,
                    detail: String::new(),
                }
            }
        }
        Observed::Unreadable {
            generation,
            reason,
            age_ms,
        } => match age_ms {
            Some(age) if *age >= lease_ms => Decision::Take {
                generation: generation.saturating_add(1),
                from: Taken::Unreadable,
            },
            Some(age) => Decision::Conflict {
                holder: None,
                generation: *generation,
                remaining_ms: lease_ms - age,
                detail: format!("unreadable lease file ({reason})"),
            },
            None => Decision::Conflict {
                holder: None,
                generation: *generation,
                remaining_ms: lease_ms,
                detail: format!("unreadable lease file ({reason}) and no mtime to age it"),
            },
        },
    }
}

/// Where a node stands when it could not read or write the lease this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// We hold a lease with at least the renew margin left: stay healthy, retry next run.
    Keep {
        /// Time left on our lease.
        left_ms: u64,
    },
    /// We hold a lease but less than the margin is left: stand down now, before it can
    /// expire for the other nodes.
    StandDown {
        /// Time left on our lease.
        left_ms: u64,
    },
    /// We hold nothing (as far as we know).
    NotHolder,
}

/// Our own lease as we wrote it: its wall-clock expiry (what the other nodes compare with
/// their clocks) and, on our monotonic clock, when we wrote it and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnLease {
    /// Wall-clock expiry written in the file.
    pub expires_ms: u64,
    /// Our monotonic clock at the write, in ms.
    pub written_mono_ms: u64,
    /// The lease duration.
    pub lease_ms: u64,
}

impl OwnLease {
    /// Time left, by the *smaller* of the two clocks' reckoning: the wall clock (it may have
    /// stepped forward: the other nodes may see our lease expire sooner) and the monotonic
    /// clock (the wall clock may have stepped back: our lease expires for the others when
    /// `lease_ms` has really passed, whatever our wall clock says). So a holder cut off from
    /// the storage never outlives its lease because its clock stepped.
    pub fn left_ms(&self, now_ms: u64, now_mono_ms: u64) -> u64 {
        let by_wall = self.expires_ms.saturating_sub(now_ms);
        let elapsed = now_mono_ms.saturating_sub(self.written_mono_ms);
        let by_monotonic = self.lease_ms.saturating_sub(elapsed);
        by_wall.min(by_monotonic)
    }
}

/// The standing of a node whose renewal failed at `now_ms` (wall) / `now_mono_ms`
/// (monotonic), given the lease it last wrote (if any) and its renew margin.
pub fn after_failed_renewal(
    held: Option<OwnLease>,
    now_ms: u64,
    now_mono_ms: u64,
    margin_ms: u64,
) -> Standing {
    match held {
        None => Standing::NotHolder,
        Some(lease) => {
            let left_ms = lease.left_ms(now_ms, now_mono_ms);
            if left_ms >= margin_ms {
                Standing::Keep { left_ms }
            } else {
                Standing::StandDown { left_ms }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: u64 = 10_000;

    fn held(holder: &str, generation: u64, expires_ms: u64) -> Observed {
        Observed::Held(Lease {
            holder: holder.into(),
            generation,
            written_ms: expires_ms.saturating_sub(LEASE),
            expires_ms,
        })
    }

    #[test]
    fn absent_is_taken_at_generation_one() {
        assert_eq!(
            decide(&Observed::Absent, "a", 1000, LEASE),
            Decision::Take {
                generation: 1,
                from: Taken::Nothing
            }
        );
    }

    #[test]
    fn own_lease_is_renewed_valid_or_not() {
        let d = decide(&held("a", 4, 5000), "a", 1000, LEASE);
        assert_eq!(
            d,
            Decision::Take {
                generation: 5,
                from: Taken::Ours
            }
        );
        let d = decide(&held("a", 4, 5000), "a", 5000, LEASE);
        assert_eq!(
            d,
            Decision::Take {
                generation: 5,
                from: Taken::OursExpired
            }
        );
    }

    #[test]
    fn fresh_foreign_lease_conflicts_until_its_expiry() {
        let d = decide(&held("b", 9, 5000), "a", 4999, LEASE);
        assert_eq!(
            d,
            Decision::Conflict {
                holder: Some("b".into()),
                generation: 9,
                remaining_ms: 1,
                detail: String::new()
            }
        );
        // At the expiry instant it is free.
        let d = decide(&held("b", 9, 5000), "a", 5000, LEASE);
        assert_eq!(
            d,
            Decision::Take {
                generation: 10,
                from: Taken::Expired("b".into())
            }
        );
    }

    #[test]
    fn unreadable_file_is_held_by_unknown_until_a_lease_old() {
        let u = |age_ms| Observed::Unreadable {
            generation: 3,
            reason: "checksum mismatch".into(),
            age_ms,
        };
        match decide(&u(Some(LEASE - 1)), "a", 0, LEASE) {
            Decision::Conflict {
                holder: None,
                remaining_ms: 1,
                ..
            } => {}
            d => panic!("{d:?}"),
        }
        assert_eq!(
            decide(&u(Some(LEASE)), "a", 0, LEASE),
            Decision::Take {
                generation: 4,
                from: Taken::Unreadable
            }
        );
        assert!(matches!(
            decide(&u(None), "a", 0, LEASE),
            Decision::Conflict { holder: None, .. }
        ));
    }

    /// A lease written at wall 0 / monotonic 5000 for 1100 ms.
    fn own(expires_ms: u64) -> Option<OwnLease> {
        Some(OwnLease {
            expires_ms,
            written_mono_ms: 5000,
            lease_ms: 1100,
        })
    }

    #[test]
    fn failed_renewal_keeps_only_while_the_margin_is_left() {
        assert_eq!(after_failed_renewal(None, 5, 5, 100), Standing::NotHolder);
        assert_eq!(
            after_failed_renewal(own(1100), 1000, 6000, 100),
            Standing::Keep { left_ms: 100 }
        );
        assert_eq!(
            after_failed_renewal(own(1099), 1000, 6000, 100),
            Standing::StandDown { left_ms: 99 }
        );
        // Already expired: stand down (nothing left).
        assert_eq!(
            after_failed_renewal(own(900), 1000, 6000, 100),
            Standing::StandDown { left_ms: 0 }
        );
    }

    #[test]
    fn a_wall_clock_stepping_back_does_not_extend_our_lease() {
        // Written at wall 20 000 (expires 21 100), monotonic 5000. 1050 ms later the wall
        // clock has stepped back 10 s: by the wall the lease has 10 s left; really 50 ms.
        assert_eq!(
            after_failed_renewal(own(21_100), 11_050, 6050, 100),
            Standing::StandDown { left_ms: 50 }
        );
        // Stepping forward shortens it by the wall, which is the safe side too.
        assert_eq!(
            after_failed_renewal(own(1100), 1090, 5010, 100),
            Standing::StandDown { left_ms: 10 }
        );
    }
}
