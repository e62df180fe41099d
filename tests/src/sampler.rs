//! A thread that polls which nodes hold a VIP every few milliseconds, so tests can assert
//! "never on two nodes at once" and read takeover times off the timeline.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::cmd;
use crate::error::{LabError, Result};
use crate::lab::{parse_ip, Lab};
use crate::timing::now_epoch;

/// One poll round: when, and which of the sampled nodes held the VIP.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Wall-clock seconds (epoch) at the start of the round.
    pub t: f64,
    /// `present[i]` for `Timeline::nodes[i]`; `None` if the poll failed.
    pub present: Vec<Option<bool>>,
}

/// Everything a [`VipSampler`] saw.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// The sampled node names, in sample order.
    pub nodes: Vec<String>,
    /// The VIP.
    pub ip: IpAddr,
    /// Poll rounds in time order.
    pub samples: Vec<Sample>,
}

impl Timeline {
    fn holders(&self, s: &Sample) -> Vec<String> {
        self.nodes
            .iter()
            .zip(&s.present)
            .filter(|(_, p)| **p == Some(true))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The first round in which more than one node held the VIP, with those nodes.
    pub fn first_overlap(&self) -> Option<(f64, Vec<String>)> {
        self.samples
            .iter()
            .map(|s| (s.t, self.holders(s)))
            .find(|(_, h)| h.len() > 1)
    }

    /// Fails if the VIP was ever seen on two nodes in the same round.
    pub fn expect_never_two(&self) -> Result<()> {
        match self.first_overlap() {
            None => Ok(()),
            Some((t, h)) => Err(LabError::check(format!(
                "VIP {} was on {h:?} at the same time (t={t:.3}, {} samples)",
                self.ip,
                self.samples.len()
            ))),
        }
    }

    /// The first time at or after `after` that `node` was seen holding the VIP.
    pub fn first_on(&self, node: &str, after: f64) -> Option<f64> {
        let i = self.nodes.iter().position(|n| n == node)?;
        self.samples
            .iter()
            .find(|s| s.t >= after && s.present.get(i) == Some(&Some(true)))
            .map(|s| s.t)
    }

    /// The holders in the last round.
    pub fn last_holders(&self) -> Vec<String> {
        self.samples
            .last()
            .map(|s| self.holders(s))
            .unwrap_or_default()
    }
}

/// A running sampler; [`VipSampler::stop`] returns the [`Timeline`].
pub struct VipSampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Timeline>>,
}

impl VipSampler {
    /// Starts polling `ip -n NS -o addr show` on `nodes` every `every` for `vip`.
    pub fn start(lab: &Lab, nodes: &[&str], vip: &str, every: Duration) -> Result<VipSampler> {
        let ip = parse_ip(vip)?;
        let mut ns = Vec::new();
        for n in nodes {
            ns.push(lab.node(n)?.ns.clone());
        }
        let names: Vec<String> = nodes.iter().map(|s| s.to_string()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = thread::spawn(move || {
            let mut tl = Timeline {
                nodes: names,
                ip,
                samples: Vec::new(),
            };
            // A round that starts after `stop` was requested always runs to the end, so
            // the timeline covers everything that happened before `stop()` was called
            // (a takeover seen by the caller is always in it).
            loop {
                let stopping = stop2.load(Ordering::SeqCst);
                let t = now_epoch();
                let present = ns
                    .iter()
                    .map(|ns| {
                        cmd::run(&["ip", "-n", ns, "-o", "addr", "show"])
                            .ok()
                            .map(|text| addr_present(&text, ip))
                    })
                    .collect();
                tl.samples.push(Sample { t, present });
                if stopping {
                    break;
                }
                thread::sleep(every);
            }
            tl
        });
        Ok(VipSampler {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the thread after one more complete round and returns what it saw: every state
    /// the caller observed before this call is in the timeline.
    pub fn stop(mut self) -> Result<Timeline> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .ok_or_else(|| LabError::check("sampler already stopped"))?
            .join()
            .map_err(|_| LabError::check("VIP sampler thread panicked"))
    }
}

impl Drop for VipSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn addr_present(text: &str, ip: IpAddr) -> bool {
    text.split_whitespace()
        .filter_map(|w| w.split('/').next())
        .any(|w| w.parse::<IpAddr>() == Ok(ip))
}

#[cfg(test)]
impl Timeline {
    /// A timeline of VIP 192.0.2.200 on nodes `n1`, `n2`: `(t, [on n1, on n2])` rows.
    pub(crate) fn of_two(rows: &[(f64, [bool; 2])]) -> Timeline {
        Timeline {
            nodes: vec!["n1".into(), "n2".into()],
            ip: "192.0.2.200".parse().unwrap(),
            samples: rows
                .iter()
                .map(|(t, p)| Sample {
                    t: *t,
                    present: p.iter().map(|b| Some(*b)).collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_and_takeover_times() {
        let t = Timeline::of_two(&[
            (1.0, [true, false]),
            (2.0, [false, false]),
            (3.0, [false, true]),
        ]);
        assert!(t.expect_never_two().is_ok());
        assert_eq!(t.first_on("n2", 1.5), Some(3.0));
        assert_eq!(t.first_on("n1", 1.5), None);
        assert_eq!(t.last_holders(), vec!["n2".to_string()]);
        let t = Timeline::of_two(&[(1.0, [true, true])]);
        assert!(t.expect_never_two().is_err());
    }

    #[test]
    fn address_match_is_exact() {
        let ip: IpAddr = "192.0.2.20".parse().unwrap();
        assert!(!addr_present("inet 192.0.2.200/32 scope global", ip));
        assert!(addr_present("inet 192.0.2.20/24 scope global", ip));
    }
}
