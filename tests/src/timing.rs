//! Clocks and waiting: wall-clock seconds (to line up with tcpdump and `ip -ts` timestamps),
//! polling with a deadline, and medians for the benchmark.

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{LabError, Result};

/// Seconds since the Unix epoch, as tcpdump's `-tt` prints them.
pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Polls `f` every `poll_every` until it returns `true` (→ `true`) or `timeout` passes
/// (→ `false`). Errors from `f` count as "not yet".
pub fn wait_until(
    timeout: Duration,
    poll_every: Duration,
    mut f: impl FnMut() -> Result<bool>,
) -> bool {
    let start = Instant::now();
    loop {
        if matches!(f(), Ok(true)) {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        thread::sleep(poll_every);
    }
}

/// Like [`wait_until`] but returns how long it took, or a [`LabError::Timeout`] naming
/// `what`, with `detail()` (observed state, log tails) evaluated only on failure.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    poll_every: Duration,
    mut f: impl FnMut() -> Result<bool>,
    detail: impl FnOnce() -> String,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last_err = None;
    loop {
        match f() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() >= timeout {
            let mut d = detail();
            if let Some(e) = last_err {
                d.push_str(&format!("\nlast error while polling: {e}"));
            }
            return Err(LabError::Timeout {
                what: what.to_string(),
                after: start.elapsed(),
                detail: d,
            });
        }
        thread::sleep(poll_every);
    }
}

/// Median of `values` (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Converts a UTC civil date and time to seconds since the epoch (Howard Hinnant's
/// `days_from_civil`), for `ip -ts` timestamps printed with `TZ=UTC`.
pub fn utc_to_epoch(year: i64, month: u32, day: u32, secs_of_day: f64) -> f64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days as f64 * 86_400.0 + secs_of_day
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn civil_epoch_matches_known_dates() {
        assert_eq!(utc_to_epoch(1970, 1, 1, 0.0), 0.0);
        // date -u -d 2026-11-26T07:32:23 +%s
        assert_eq!(
            utc_to_epoch(2026, 11, 26, 7.0 * 3600.0 + 32.0 * 60.0 + 23.0),
            1_795_678_343.0
        );
        assert_eq!(utc_to_epoch(2000, 3, 1, 0.0), 951_868_800.0);
    }

    #[test]
    fn wait_until_times_out_and_succeeds() {
        assert!(!wait_until(
            Duration::from_millis(30),
            Duration::from_millis(5),
            || Ok(false)
        ));
        let mut n = 0;
        assert!(wait_until(
            Duration::from_secs(1),
            Duration::from_millis(1),
            || {
                n += 1;
                Ok(n > 3)
            }
        ));
    }
}
