//! Fair admission of received datagrams into the router's queue. Anyone on the LAN can send to
//! the VRRP multicast group; a host flooding it must not crowd its peers' adverts out of the
//! queue (a Backup that misses them takes over: two Masters). While the queue has room,
//! everything is admitted; once it is half full, each source address may queue a burst and
//! then a steady rate — far above what any VRRP speaker sends (VRRPv3's fastest advert, 10 ms,
//! for dozens of instances), far below a flood. Sans-IO: the caller passes the time.

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

    /// Refill, then take a token if there is one.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * RATE).min(BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
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
    /// Whether a datagram from `src` may be queued; `pressure`: the queue is half full or more.
    /// Every datagram spends a token, so a flooding source is already out of tokens when the
    /// pressure starts.
    pub fn admit(&mut self, src: IpAddr, pressure: bool, now: Instant) -> bool {
        let bucket = match self.bucket(src, now) {
            Some(b) => b,
            None => self.overflow.get_or_insert_with(|| Bucket::full(now)),
        };
        let had_token = bucket.take(now);
        had_token || !pressure
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
        assert!((0..10_000).all(|_| a.admit(ip("192.0.2.100"), false, now)));
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
            if a.admit(ip("192.0.2.100"), true, now) {
                flood_admitted += 1;
            }
            if i % 500 == 0 && a.admit(ip("192.0.2.1"), true, now) {
                peer_admitted += 1;
            }
        }
        assert_eq!(peer_admitted, 100, "every advert of the peer");
        let bound = (BURST + RATE) as u32 + 1;
        assert!(flood_admitted <= bound, "{flood_admitted} > {bound}");
    }

    #[test]
    fn a_spoofed_source_flood_cannot_grow_the_map() {
        let mut a = Admission::default();
        let now = Instant::now();
        for i in 0..(MAX_SOURCES as u32 * 4) {
            let src = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            a.admit(src, true, now);
        }
        assert!(a.sources.len() <= MAX_SOURCES);
        // Forgotten when idle, so a real peer gets its own bucket again later.
        let later = now + IDLE * 2;
        assert!(a.admit(ip("192.0.2.1"), true, later));
        assert!(a.sources.contains_key(&ip("192.0.2.1")));
    }
}
