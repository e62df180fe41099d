//! Counting votes: this node plus every witness it reached, out of one plus all witnesses.

/// The result of a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Votes seen: 1 (this node) + witnesses reached.
    pub votes: usize,
    /// Votes configured: 1 + witnesses.
    pub total: usize,
    /// The verdict of the count.
    pub outcome: Outcome,
}

/// Whether the count gives quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// More than half of the votes.
    Majority,
    /// Exactly half, and the tie-breaker witness is among them.
    TieWon,
    /// Exactly half, without the tie-breaker (or none named).
    TieLost,
    /// Less than half.
    Minority,
}

impl Outcome {
    /// Whether this node has quorum.
    pub fn has_quorum(self) -> bool {
        matches!(self, Outcome::Majority | Outcome::TieWon)
    }
}

/// Count: `reached[i]` says whether witness `i` answered; `tie_breaker` is a witness index.
pub fn tally(reached: &[bool], tie_breaker: Option<usize>) -> Tally {
    let total = reached.len() + 1;
    let votes = 1 + reached.iter().filter(|r| **r).count();
    let outcome = if votes * 2 > total {
        Outcome::Majority
    } else if votes * 2 == total {
        if tie_breaker.is_some_and(|i| reached.get(i) == Some(&true)) {
            Outcome::TieWon
        } else {
            Outcome::TieLost
        }
    } else {
        Outcome::Minority
    };
    Tally {
        votes,
        total,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_of_one_plus_witnesses() {
        // 2 witnesses: total 3.
        assert_eq!(tally(&[true, true], None).outcome, Outcome::Majority);
        assert_eq!(tally(&[true, false], None).outcome, Outcome::Majority);
        assert_eq!(tally(&[false, false], None).outcome, Outcome::Minority);
        let t = tally(&[false, true], None);
        assert_eq!((t.votes, t.total), (2, 3));
    }

    #[test]
    fn ties_lose_unless_the_tie_breaker_is_reached() {
        // 1 witness: total 2, a lone node has exactly half.
        assert_eq!(tally(&[false], None).outcome, Outcome::TieLost);
        assert_eq!(tally(&[false], Some(0)).outcome, Outcome::TieLost);
        assert_eq!(tally(&[true], None).outcome, Outcome::Majority);
        // 3 witnesses: total 4; self + 1 = half.
        assert_eq!(
            tally(&[true, false, false], Some(0)).outcome,
            Outcome::TieWon
        );
        assert_eq!(
            tally(&[true, false, false], Some(1)).outcome,
            Outcome::TieLost
        );
        assert_eq!(tally(&[true, false, false], None).outcome, Outcome::TieLost);
        assert!(!Outcome::TieLost.has_quorum() && Outcome::TieWon.has_quorum());
    }
}
