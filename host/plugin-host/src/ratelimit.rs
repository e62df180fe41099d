//! A token bucket: what a plugin can make the host do repeatedly across runs (log lines,
//! remediation commands) is limited per check, not only per run, so a check at a short
//! interval cannot turn a per-run bound into a flood.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A bucket of `capacity` tokens refilled at one token per `refill`.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: u32,
    refill: Duration,
    tokens: u32,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32, refill: Duration, now: Instant) -> Self {
        TokenBucket {
            capacity,
            refill,
            tokens: capacity,
            last: now,
        }
    }

    /// Take one token at `now` if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// How long from `now` until a token is available (zero if one is).
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens > 0 {
            return Duration::ZERO;
        }
        (self.last + self.refill).saturating_duration_since(now)
    }

    fn refill(&mut self, now: Instant) {
        if self.refill.is_zero() {
            self.tokens = self.capacity;
            return;
        }
        let elapsed = now.saturating_duration_since(self.last);
        let earned = elapsed.as_nanos() / self.refill.as_nanos();
        if earned == 0 {
            return;
        }
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(earned).min(self.capacity);
        // Keep the fractional part: advance by whole refill periods only.
        self.last += self.refill * earned;
        if self.tokens == self.capacity {
            self.last = now;
        }
    }
}

/// A bucket shared by the runs of one check.
pub type SharedBucket = Arc<Mutex<TokenBucket>>;

/// A new shared bucket.
pub fn shared(capacity: u32, refill: Duration) -> SharedBucket {
    Arc::new(Mutex::new(TokenBucket::new(
        capacity,
        refill,
        Instant::now(),
    )))
}

/// Take a token from a shared bucket now.
pub fn try_take(bucket: &SharedBucket) -> bool {
    bucket
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .try_take(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, Duration::from_secs(10), t0);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0), "burst spent");
        assert_eq!(b.wait(t0), Duration::from_secs(10));
        assert!(!b.try_take(t0 + Duration::from_secs(9)));
        assert!(b.try_take(t0 + Duration::from_secs(10)));
        assert!(!b.try_take(t0 + Duration::from_secs(11)));
        // A long quiet spell refills to capacity, no more.
        let later = t0 + Duration::from_secs(1000);
        assert!(b.try_take(later) && b.try_take(later) && b.try_take(later));
        assert!(!b.try_take(later));
    }

    #[test]
    fn partial_periods_carry_over_until_the_bucket_is_full() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2, Duration::from_millis(100), t0);
        assert!(b.try_take(t0) && b.try_take(t0));
        // 150 ms: one token earned, 50 ms carried over; 50 ms more earns the next.
        assert!(b.try_take(t0 + Duration::from_millis(150)));
        assert!(b.try_take(t0 + Duration::from_millis(200)));
        assert!(!b.try_take(t0 + Duration::from_millis(250)));
    }
}
