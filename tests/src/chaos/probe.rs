//! The client's view: a `ping` to the VIP every few milliseconds for the whole run, and the
//! outage it saw in any time window (the MTTR of a round).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::process::Proc;
use crate::timing::wait_for;

/// Time between two probes (ping sends slower when the machine is busy; a lost probe is
/// what counts, not a late one).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// Silence at the end of a window longer than this counts as an outage (no later reply tells
/// whether probes were lost).
pub const TAIL_GAP: Duration = Duration::from_millis(100);

/// One echo reply: when it arrived (epoch seconds) and its `icmp_seq`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reply {
    /// Receive time, epoch seconds.
    pub t: f64,
    /// ICMP sequence number (wraps at 65,536).
    pub seq: u16,
}

/// `ping -D -i 0.01 VIP` running in the client's namespace.
pub struct Prober {
    proc: Proc,
    log: PathBuf,
}

impl Prober {
    /// Starts probing `vip` from `client` and waits for the first reply.
    pub fn start(lab: &Lab, client: &str, vip: &str, timeout: Duration) -> Result<Prober> {
        let log = lab.dir().join("client-probe.log");
        let interval = format!("{}", PROBE_INTERVAL.as_secs_f64());
        // Line-buffered, so that the log can be read while it runs; -D prints each reply's
        // receive time in epoch seconds.
        let proc = lab.spawn(
            client,
            &["stdbuf", "-oL", "ping", "-n", "-D", "-i", &interval, vip],
            &log,
        )?;
        let prober = Prober { proc, log };
        wait_for(
            &format!("{client} to get its first ping reply from {vip}"),
            timeout,
            Duration::from_millis(20),
            || Ok(!prober.replies()?.is_empty()),
            || format!("{}\n{}", prober.proc.log_tail(5), lab.log_summary(15)),
        )?;
        Ok(prober)
    }

    /// Every reply so far.
    pub fn replies(&self) -> Result<Vec<Reply>> {
        if let Some(status) = self.proc.try_status()? {
            return Err(LabError::check(format!(
                "the client's ping exited ({status}): {}",
                self.proc.log_tail(5)
            )));
        }
        let text = fs::read_to_string(&self.log)
            .map_err(|e| LabError::io(format!("reading {}", self.log.display()), e))?;
        Ok(parse_replies(&text))
    }

    /// Stops the probe; returns every reply.
    pub fn stop(self) -> Result<Vec<Reply>> {
        let replies = self.replies()?;
        self.proc.kill9_group()?;
        Ok(replies)
    }
}

/// Replies in `ping -D` output: `[1765091234.123456] 64 bytes from …: icmp_seq=7 …`.
pub fn parse_replies(text: &str) -> Vec<Reply> {
    text.lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| {
            let t = l.strip_prefix('[')?.split_once(']')?.0.parse().ok()?;
            let seq = l
                .split_once("icmp_seq=")?
                .1
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u32>()
                .ok()?;
            Some(Reply {
                t,
                seq: (seq % 65_536) as u16,
            })
        })
        .collect()
}

/// How long the client went without reaching the VIP within `[from, to]` (epoch seconds):
/// the time between consecutive replies with probes lost between them, clipped to the
/// window, plus silence longer than [`TAIL_GAP`] from the last reply to `to`.
pub fn outage(replies: &[Reply], from: f64, to: f64) -> Duration {
    let mut total = 0.0;
    let mut prev: Option<Reply> = None;
    for &r in replies {
        if let Some(p) = prev {
            let lost = r.seq.wrapping_sub(p.seq) > 1;
            let (a, b) = (p.t.max(from), r.t.min(to));
            if lost && b > a {
                total += b - a;
            }
        }
        prev = Some(r);
        if r.t > to {
            break;
        }
    }
    match prev {
        // Not a single reply: the whole window was down.
        None => total = to - from,
        Some(p) if p.t < to && to - p.t > TAIL_GAP.as_secs_f64() => total += to - p.t.max(from),
        Some(_) => {}
    }
    Duration::from_secs_f64(total.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_d_lines_are_parsed() {
        let text = "PING 192.0.2.200 (192.0.2.200) 56(84) bytes of data.\n\
                    [1765091234.123456] 64 bytes from 192.0.2.200: icmp_seq=1 ttl=64 time=0.051 ms\n\
                    [1765091234.133456] From 192.0.2.100 icmp_seq=2 Destination Host Unreachable\n\
                    [1765091234.143456] 64 bytes from 192.0.2.200: icmp_seq=65539 ttl=64 time=0.040 ms\n";
        let r = parse_replies(text);
        assert_eq!(r.len(), 2);
        assert!((r[1].t - 1_765_091_234.143_456).abs() < 1e-6);
        assert_eq!((r[0].seq, r[1].seq), (1, 3));
    }

    /// Replies every 10 ms with `seq` counting up, skipping `lost` sequence numbers at
    /// `hole_at` (the hole lasts `lost` × 10 ms more).
    fn replies(n: u16, hole_at: u16, lost: u16) -> Vec<Reply> {
        (0..n)
            .map(|i| {
                let seq = if i < hole_at { i } else { i + lost };
                Reply {
                    t: f64::from(seq) * 0.01,
                    seq,
                }
            })
            .collect()
    }

    #[test]
    fn outage_counts_lost_probes_inside_the_window() {
        // 200 replies, 50 probes lost after the 100th: replies at 0.99 then 1.50.
        let r = replies(200, 100, 50);
        let d = outage(&r, 0.5, 2.4).as_secs_f64();
        assert!((d - 0.51).abs() < 1e-6, "{d}");
        // Clipped: the window starts inside the hole.
        let d = outage(&r, 1.2, 2.4).as_secs_f64();
        assert!((d - 0.3).abs() < 1e-6, "{d}");
        // No loss in the window: no outage.
        assert_eq!(outage(&r, 1.6, 2.0), Duration::ZERO);
        // Silence to the end of the window counts (last reply at 2.49).
        let d = outage(&r, 2.0, 3.0).as_secs_f64();
        assert!((d - (3.0 - 2.49)).abs() < 1e-6, "{d}");
        assert_eq!(outage(&[], 0.0, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn a_late_reply_without_loss_is_no_outage() {
        // ping itself was descheduled for 300 ms but lost nothing.
        let r = [
            Reply { t: 0.0, seq: 10 },
            Reply { t: 0.3, seq: 11 },
            Reply { t: 0.31, seq: 12 },
        ];
        assert_eq!(outage(&r, 0.0, 0.31), Duration::ZERO);
        // Sequence numbers wrap.
        let r = [
            Reply {
                t: 0.0,
                seq: 65_535,
            },
            Reply { t: 0.01, seq: 0 },
        ];
        assert_eq!(outage(&r, 0.0, 0.01), Duration::ZERO);
    }
}
