//! How long a check's runs take: a cumulative histogram since the check started (what the
//! Prometheus endpoint exports) and the most recent runs (what `status` reports p50/p99 of).
//!
//! A run's latency is the scheduler's measure, from the start of the run to its result; a
//! run that times out counts with its timeout. The histogram's buckets are fixed
//! ([`BUCKETS`]): they span a plugin run on a warm instance (well under a millisecond) to a
//! script or a slow HTTP check near keepalived's longest timeouts. The quantiles are exact
//! (nearest rank) over the last [`WINDOW`] runs, so they follow a check that slowed down
//! instead of averaging its whole life.

use std::collections::VecDeque;
use std::time::Duration;

/// Upper bounds of the histogram's buckets, in seconds (a last `+Inf` bucket follows).
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How many recent runs the quantiles are computed over.
pub const WINDOW: usize = 256;

/// The run latencies of one check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLatency {
    /// Runs per bucket (not cumulative); the last entry is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: Duration,
    count: u64,
    recent: VecDeque<Duration>,
}

impl RunLatency {
    /// Count one run that took `took`.
    pub fn record(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum = self.sum.saturating_add(took);
        self.count += 1;
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(took);
    }

    /// Runs counted since the check started.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Total time of those runs.
    pub fn sum(&self) -> Duration {
        self.sum
    }

    /// `(upper bound in seconds, runs in that bucket)`, not cumulative, ending with
    /// `(f64::INFINITY, runs over the last bound)`.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().copied())
    }

    /// The `q` quantile (0.0..=1.0, nearest rank) of the last [`WINDOW`] runs; `None`
    /// before the first run.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.recent.is_empty() {
            return None;
        }
        let mut sorted: Vec<Duration> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        // Nearest rank: the smallest value with at least q·n values at or below it.
        let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
        Some(sorted[rank.clamp(1, sorted.len()) - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn runs_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let mut l = RunLatency::default();
        for took in [ms(0), ms(1), ms(2), ms(30), Duration::from_secs(11)] {
            l.record(took);
        }
        let b: Vec<(f64, u64)> = l.buckets().filter(|(_, n)| *n > 0).collect();
        // 0 and 1 ms ≤ 0.0005/0.001; 2 ms ≤ 0.0025; 30 ms ≤ 0.05; 11 s only in +Inf.
        assert_eq!(
            b,
            [
                (0.0005, 1),
                (0.001, 1),
                (0.0025, 1),
                (0.05, 1),
                (f64::INFINITY, 1)
            ]
        );
        assert_eq!(l.count(), 5);
        assert_eq!(l.sum(), Duration::from_millis(11_033));
        assert_eq!(l.buckets().count(), BUCKETS.len() + 1);
    }

    #[test]
    fn quantiles_are_nearest_rank_over_the_recent_window() {
        let mut l = RunLatency::default();
        assert_eq!(l.quantile(0.5), None);
        for n in 1..=100 {
            l.record(ms(n));
        }
        assert_eq!(l.quantile(0.5), Some(ms(50)));
        assert_eq!(l.quantile(0.99), Some(ms(99)));
        assert_eq!(l.quantile(1.0), Some(ms(100)));
        assert_eq!(l.quantile(0.0), Some(ms(1)));
        // A check that slowed down: the window forgets the fast runs, the histogram does not.
        for _ in 0..WINDOW {
            l.record(ms(700));
        }
        assert_eq!(l.quantile(0.5), Some(ms(700)));
        assert_eq!(l.quantile(0.99), Some(ms(700)));
        assert_eq!(l.count(), 100 + WINDOW as u64);
    }
}
