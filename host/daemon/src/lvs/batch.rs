//! Probes that come due close together run on one timer wake-up.
//!
//! Each probe keeps its own schedule (keepalived's `delay_loop` / `delay_before_retry`), and
//! the probes of one `delay_loop` are spread over it (`manager.rs`, `steady_share`). Left
//! alone, 100 probes at `delay_loop 1` would wake their executor thread 100 times a second,
//! once per run, and the runs' connects would complete on as many more wake-ups. Instead a
//! due time is moved back to the start of its *batch slot*: a grid of [`BATCH_SLOT`]s shared
//! by every probe of the process, so the probes due in one slot fire on one wake-up of their
//! thread, start their connects together and see them complete together.
//!
//! A due time only ever moves earlier, never later: no interval is longer than configured,
//! so every detection bound keepalived's settings imply holds. Moving back by less than a
//! slot, a probe checks at most one slot early; in steady state its period is still its
//! interval (the next due time is computed from a slot start plus the run's short duration,
//! and falls back onto the same phase), and an interval that is not a whole number of slots
//! is shortened to one that is. The slot is at most [`BATCH_SHARE`] of the interval, so a
//! short interval is never shortened by more than that share.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::time::Instant;

/// The longest batch slot: probes due within this much of each other may share a wake-up.
pub const BATCH_SLOT: Duration = Duration::from_millis(100);
/// A slot is at most this share of the probe's interval (1/10: 10 %).
pub const BATCH_SHARE: u32 = 10;

/// Where the slot grid starts: one origin for the process, so that the probes of every
/// thread and virtual server share slots.
static GRID_ORIGIN: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);

/// When a probe whose next run is due at `due`, `interval` after its last one, runs: the
/// start of `due`'s slot (module doc). Never later than `due`.
pub fn batched(due: Instant, interval: Duration) -> Instant {
    slot_start(due, Instant::from_std(*GRID_ORIGIN), interval)
}

/// The start of the slot holding `due`, on a grid from `origin` with slots of
/// min([`BATCH_SLOT`], `interval` / [`BATCH_SHARE`]).
fn slot_start(due: Instant, origin: Instant, interval: Duration) -> Instant {
    let slot = BATCH_SLOT.min(interval / BATCH_SHARE).as_nanos();
    if slot == 0 || due <= origin {
        return due;
    }
    let since = due.duration_since(origin).as_nanos();
    let into_slot = u64::try_from(since % slot).unwrap_or(0);
    due - Duration::from_nanos(into_slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn due_times_move_back_to_their_slot_start_never_later() {
        let origin = Instant::now();
        for ms in [0u64, 1, 49, 50, 51, 999, 1000, 1049, 123_456] {
            let due = origin + Duration::from_millis(ms);
            let at = slot_start(due, origin, SECOND);
            assert!(at <= due, "{ms} ms: later than due");
            assert!(due - at < BATCH_SLOT, "{ms} ms: moved back a slot or more");
            assert_eq!(
                at.duration_since(origin).as_millis() % BATCH_SLOT.as_millis(),
                0,
                "{ms} ms: not a slot start"
            );
        }
    }

    #[test]
    fn probes_due_within_one_slot_share_a_wake_up() {
        let origin = Instant::now();
        let base = origin + Duration::from_millis(1000);
        let wakes: Vec<Instant> = [3u64, 17, 42, 99]
            .iter()
            .map(|ms| slot_start(base + Duration::from_millis(*ms), origin, SECOND))
            .collect();
        assert!(wakes.iter().all(|w| *w == base), "{wakes:?}");
        // The next slot is another wake-up.
        assert_eq!(
            slot_start(base + BATCH_SLOT, origin, SECOND),
            base + BATCH_SLOT
        );
    }

    #[test]
    fn a_steady_probe_keeps_its_interval_and_phase() {
        let origin = Instant::now();
        // A run takes 3 ms; the next is due `delay_loop` after it ends.
        let run = Duration::from_millis(3);
        let mut at = slot_start(origin + Duration::from_millis(730), origin, SECOND);
        let first = at;
        for k in 1..=100u32 {
            let next = slot_start(at + run + SECOND, origin, SECOND);
            assert_eq!(next - at, SECOND, "period {k}");
            at = next;
        }
        assert_eq!(at - first, SECOND * 100);
    }

    #[test]
    fn short_intervals_get_short_slots() {
        let origin = Instant::now();
        let interval = Duration::from_millis(100);
        let due = origin + Duration::from_millis(1019);
        let at = slot_start(due, origin, interval);
        // A slot of 100 ms / 10 = 10 ms: moved back at most 10 ms, i.e. 10 % of the interval.
        assert_eq!(at, origin + Duration::from_millis(1010));
        // Too short to batch at all.
        assert_eq!(slot_start(due, origin, Duration::from_nanos(10)), due);
    }

    #[test]
    fn times_before_the_grid_are_left_alone() {
        let origin = Instant::now() + SECOND;
        let due = origin - Duration::from_millis(7);
        assert_eq!(slot_start(due, origin, SECOND), due);
    }
}
