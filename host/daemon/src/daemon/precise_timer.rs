//! Sleeping until an instant with the kernel's high-resolution timers, woken through the
//! async runtime's own reactor.
//!
//! tokio's timer wheel has a 1 ms resolution and rounds deadlines up. A VRRP advert or a
//! master-down deadline needs better than that (keepalived is +0.2–0.3 ms late), so the
//! protocol path sleeps on a `timerfd`: the kernel's hrtimer wakes the epoll of the runtime
//! thread that waits, the same thread that then sends the advert. Nothing else is involved —
//! no blocking-pool thread (which is `SCHED_OTHER` even when the protocol threads run
//! `SCHED_RR`, and which checks, compiles and file I/O compete for) and no hand-off between
//! threads.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};

/// Sleep until `at` on a one-shot `CLOCK_MONOTONIC` timerfd (the clock `Instant` reads).
///
/// The timer is armed with the time left until `at`, measured just before arming, so the
/// wake-up is at `at` within the kernel's timer slack (50 µs for a normal thread, none for a
/// real-time one). Returns at once if `at` has passed. An error (no file descriptors left,
/// no reactor) is returned, not slept through: the caller falls back to a coarser timer.
///
/// Must be called from within a tokio runtime with I/O enabled.
pub async fn sleep_until(at: Instant) -> io::Result<()> {
    let left = at.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Ok(());
    }
    let timer = crate::net::sys::register_timerfd(arm(left)?)?;
    loop {
        let mut ready = timer.readable().await?;
        let mut expirations = [0u8; 8];
        match rustix::io::read(timer.get_ref(), &mut expirations) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
            Err(err) => return Err(err.into()),
        }
    }
}

/// A non-blocking timerfd that expires once, `after` from now.
fn arm(after: Duration) -> io::Result<OwnedFd> {
    let fd = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    let value = Timespec::try_from(after)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "deadline out of range"))?;
    let once = Itimerspec {
        it_interval: Timespec::default(),
        it_value: value,
    };
    timerfd_settime(&fd, TimerfdTimerFlags::empty(), &once)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_no_earlier_than_the_deadline() {
        for micros in [1, 300, 2_500, 20_000] {
            let at = Instant::now() + Duration::from_micros(micros);
            sleep_until(at).await.unwrap();
            assert!(Instant::now() >= at, "woke before a {micros} µs deadline");
        }
    }

    #[tokio::test]
    async fn a_passed_deadline_returns_at_once() {
        let past = Instant::now();
        std::thread::sleep(Duration::from_millis(1));
        // No timer is armed for it (a zero `it_value` would disarm, never fire).
        tokio::time::timeout(Duration::from_secs(5), sleep_until(past))
            .await
            .expect("a passed deadline must not wait")
            .unwrap();
    }
}
