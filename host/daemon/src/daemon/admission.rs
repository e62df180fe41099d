//! Fair admission of received datagrams into the router's queue. Anyone on the LAN can send to
//! the VRRP multicast group; a host flooding it must not crowd its peers' adverts out of the
//! queue (a Backup that misses them takes over: two Masters). While the queue has room,
//! everything is admitted; once it is half full, each source address may queue a burst and
//! then a steady rate — far above what any VRRP speaker sends (VRRPv3's fastest advert, 10 ms,
//! for dozens of instances), far below a flood. A router slower than that rate (a loaded
//! machine, a debug build) would still let the flooder fill the queue, so its last quarter is
//! kept for quiet sources: once it is three-quarters full, only a source with at least half
//! its burst left gets in — a peer's bucket stays full, a flooder's is empty. Sans-IO: the
//! caller passes the time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Datagrams a source may queue at once under pressure.
pub const BURST: f64 = 500.0;
/// Datagrams per second a source may queue under pressure.
pub const RATE: f64 = 2_000.0;
/// Sources tracked at most; beyond, new sources share one bucket (a spoofed-source flood
/// cannot grow the map).
pub const MAX_SOURCES: usize = 1024;
/// How full the queue is, as [`Admission::admit`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueueLoad {
    /// Under half full: everything gets in.
    Light,
    /// Half full or more: a source needs a token.
    Half,
    /// Three-quarters full or more: a source needs half its burst left (quiet sources only).
    NearlyFull,
}

impl QueueLoad {
    /// The load of a queue with `free` of `capacity` slots free.
    pub fn of(free: usize, capacity: usize) -> Self {
        if free > capacity / 2 {
            QueueLoad::Light
        } else if free > capacity / 4 {
            QueueLoad::Half
        } else {
            QueueLoad::NearlyFull
        }
    }
}

/// A source not seen for this long is forgotten when room is needed.
const IDLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Self {
        Bucket {
            tokens: BURST,
            last: now,
        }
    }

    /// Refill, then spend a token — into debt (down to minus a burst) when there is none, so
    /// a source sending above [`RATE`] stays empty however often it is refused. Whether at
    /// least `needed` tokens were there.
    fn take(&mut self, now: Instant, needed: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * RATE).min(BURST);
        self.last = now;
        let enough = self.tokens >= needed;
        self.tokens = (self.tokens - 1.0).max(-BURST);
        enough
    }
}

/// Per-source buckets of one receive path.
#[derive(Debug, Default)]
pub struct Admission {
    sources: HashMap<IpAddr, Bucket>,
    /// The bucket sources share once [`MAX_SOURCES`] are tracked.
    overflow: Option<Bucket>,
}

impl Admission {
    /// Whether a datagram from `src` may be queued at `load`. Every datagram spends a token,
    /// so a flooding source is already out of tokens when the pressure starts.
    pub fn admit(&mut self, src: IpAddr, load: QueueLoad, now: Instant) -> bool {
        let bucket = match self.bucket(src, now) {
            Some(b) => b,
            None => self.overflow.get_or_insert_with(|| Bucket::full(now)),
        };
        match load {
            QueueLoad::Light => {
                bucket.take(now, 1.0);
                true
            }
            QueueLoad::Half => bucket.take(now, 1.0),
            QueueLoad::NearlyFull => bucket.take(now, BURST / 2.0),
        }
    }

    fn bucket(&mut self, src: IpAddr, now: Instant) -> Option<&mut Bucket> {
        if !self.sources.contains_key(&src) && self.sources.len() >= MAX_SOURCES {
            self.sources
                .retain(|_, b| now.saturating_duration_since(b.last) < IDLE);
            if self.sources.len() >= MAX_SOURCES {
                return None;
            }
        }
        Some(self.sources.entry(src).or_insert_with(|| Bucket::full(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn without_pressure_everything_is_admitted() {
        let mut a = Admission::default();
        let now = Instant::now();
        assert!((0..10_000).all(|_| a.admit(ip("192.0.2.100"), QueueLoad::Light, now)));
    }

    #[test]
    fn under_pressure_a_flooder_is_cut_and_a_peer_is_not() {
        let mut a = Admission::default();
        let t0 = Instant::now();
        // A flood of 50 000 datagrams in one second, a peer's advert every 10 ms.
        let mut flood_admitted = 0;
        let mut peer_admitted = 0;
        for i in 0..50_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 20);
            if a.admit(ip("192.0.2.100"), QueueLoad::Half, now) {
                flood_admitted += 1;
            }
            if i % 500 == 0 && a.admit(ip("192.0.2.1"), QueueLoad::Half, now) {
                peer_admitted += 1;
            }
        }
        assert_eq!(peer_admitted, 100, "every advert of the peer");
        let bound = (BURST + RATE) as u32 + 1;
        assert!(flood_admitted <= bound, "{flood_admitted} > {bound}");
    }

    #[test]
    fn a_nearly_full_queue_takes_only_quiet_sources() {
        let mut a = Admission::default();
        let t0 = Instant::now();
        // A flooder that has spent its burst, a peer that has sent an advert now and then.
        for i in 0..1_000u32 {
            a.admit(
                ip("192.0.2.100"),
                QueueLoad::Half,
                t0 + Duration::from_micros(u64::from(i)),
            );
        }
        assert!(a.admit(ip("192.0.2.1"), QueueLoad::Half, t0));
        // The router is too slow for the flooder's rate: the queue fills to three quarters.
        // Its refill (RATE per second) never brings it back to half a burst while it floods.
        let mut flood_admitted = 0;
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_millis(1) + Duration::from_micros(u64::from(i) * 100);
            if a.admit(ip("192.0.2.100"), QueueLoad::NearlyFull, now) {
                flood_admitted += 1;
            }
            if i % 1_000 == 0 {
                assert!(
                    a.admit(ip("192.0.2.1"), QueueLoad::NearlyFull, now),
                    "the peer's advert at step {i}"
                );
            }
        }
        assert_eq!(flood_admitted, 0);
    }

    #[test]
    fn a_spoofed_source_flood_cannot_grow_the_map() {
        let mut a = Admission::default();
        let now = Instant::now();
        for i in 0..(MAX_SOURCES as u32 * 4) {
            let src = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            a.admit(src, QueueLoad::Half, now);
        }
        assert!(a.sources.len() <= MAX_SOURCES);
        // Forgotten when idle, so a real peer gets its own bucket again later.
        let later = now + IDLE * 2;
        assert!(a.admit(ip("192.0.2.1"), QueueLoad::Half, later));
        assert!(a.sources.contains_key(&ip("192.0.2.1")));
    }
}
