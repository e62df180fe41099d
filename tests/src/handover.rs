//! Handover overlap between two live nodes. When a Backup takes over from a Master that is
//! still running (its priority dropped, or a preemption), the old Master holds the VIP until
//! the new Master's first advert reaches it: a sub-millisecond overlap that is part of VRRP
//! (RFC 3768 §6.4.3: a Master receiving a higher-priority advert becomes Backup). A
//! [`VipSampler`](crate::VipSampler) round queries the nodes one after the other, so it can
//! report such an overlap, or one that never happened, in a round or two. These helpers bound
//! the overlap instead of forbidding it; a Master that does not yield shows up as a long one.

use std::time::Duration;

use crate::error::{LabError, Result};
use crate::sampler::Timeline;

impl Timeline {
    /// Spans `(start, end)` during which more than one node was seen holding the VIP: from
    /// the first round with several holders to the next round with at most one (or the last
    /// round, if the overlap lasts until the end).
    pub fn overlap_spans(&self) -> Vec<(f64, f64)> {
        let mut spans = Vec::new();
        let mut open: Option<f64> = None;
        for s in &self.samples {
            let holders = s.present.iter().filter(|p| **p == Some(true)).count();
            match (holders > 1, open) {
                (true, None) => open = Some(s.t),
                (false, Some(start)) => {
                    spans.push((start, s.t));
                    open = None;
                }
                _ => {}
            }
        }
        if let (Some(start), Some(last)) = (open, self.samples.last()) {
            spans.push((start, last.t));
        }
        spans
    }

    /// Fails if the VIP was seen on several nodes for longer than `max` at a time.
    pub fn expect_overlap_at_most(&self, max: Duration) -> Result<()> {
        let spans = self.overlap_spans();
        match spans.iter().find(|(a, b)| b - a > max.as_secs_f64()) {
            None => Ok(()),
            Some((a, b)) => Err(LabError::check(format!(
                "VIP {} was on several nodes for {:.3} s (from t={a:.3}; allowed: a handover \
                 overlap of at most {max:?}); all overlaps: {spans:?}",
                self.ip,
                b - a
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sampler::Timeline;
    use std::time::Duration;

    #[test]
    fn short_handover_overlap_passes_long_one_fails() {
        let t = Timeline::of_two(&[
            (1.00, [true, false]),
            (1.01, [true, true]),
            (1.02, [false, true]),
            (2.00, [true, true]),
            (2.50, [true, true]),
            (3.00, [true, false]),
        ]);
        assert_eq!(t.overlap_spans(), vec![(1.01, 1.02), (2.0, 3.0)]);
        assert!(t.expect_overlap_at_most(Duration::from_millis(50)).is_err());
        assert!(t.expect_overlap_at_most(Duration::from_secs(2)).is_ok());
        let t = Timeline::of_two(&[(1.0, [true, true]), (1.2, [true, true])]);
        assert_eq!(t.overlap_spans(), vec![(1.0, 1.2)]);
        let t = Timeline::of_two(&[(1.0, [true, false]), (1.2, [false, true])]);
        assert!(t.overlap_spans().is_empty());
    }
}
