//! The consensus maths of PoCo, exactly as `PocoTasks` computes them.
//!
//! Sarmenta's credibility in integers. A worker of score `s` weighs
//! `w = max(floor(s / 3), 3) - 1` ([`worker_weight`]; 2 for a fresh worker, `s / 3 - 1` from
//! score 12 on). A result's group weighs the product of its voters' weights; the total starts
//! at 1 (the "every answer is wrong" term) and grows by each group's increase. A result is the
//! consensus once `group × trust > total × (trust - 1)`, i.e. its credibility
//! `group / total` exceeds `1 - 1/trust`. Only the group just voted for is tested: a vote can
//! only raise the credibility of its own result. Trust 0 or 1 accepts the first contribution.
//!
//! Votes are grouped by the 120-bit prefix of their result hash ([`vote_key`]): it is what a
//! contribution stores and what a reveal opens, so two hashes with one prefix are one result.
//!
//! A task takes at most [`MAX_CONTRIBUTORS`] contributions, and its total must stay at most
//! 2^184 - 1 ([`MAX_CONSENSUS_TOTAL`]; the contract reverts with `ConsensusOverflow` above).
//! Each contribution also records `floor(log2 w)` ([`log_weight`]), its share of the reward.
//!
//! [`Consensus`] replays a task contribution by contribution; [`contributions_needed`] tells a
//! scheduler how many more agreeing workers a task needs. Scores move at finalize: a proved
//! contribution raises its worker's score by one when [`raises_score`] (a replicated task, a
//! stake of at least [`MIN_SCORED_STAKE`] at risk, no rise yet in the current
//! [`SCORE_PERIOD`]); a faulty one cuts it by a third ([`score_after_fault`]).

use alloy::primitives::{B256, U256};

use crate::error::{Error, Result};

/// The most contributions a task accepts.
pub const MAX_CONTRIBUTORS: usize = 32;
/// The largest consensus total a task can hold: 2^184 - 1.
pub const MAX_CONSENSUS_TOTAL: U256 = U256::from_limbs([u64::MAX, u64::MAX, (1 << 56) - 1, 0]);

/// A worker's weight from its score: `max(floor(score / 3), 3) - 1`, at least 2.
pub const fn worker_weight(score: u64) -> u64 {
    let third = score / 3;
    (if third < 3 { 3 } else { third }) - 1
}

/// `floor(log2(weight))`: a contribution's share in the reward split (at least 1 for any real
/// weight, which is at least 2).
pub const fn log_weight(weight: u64) -> u8 {
    if weight < 2 { 0 } else { weight.ilog2() as u8 }
}

/// The least stake a proved contribution must have locked for its worker's score to rise, in
/// nRLC (1 RLC): reputation is earned with funds at risk.
pub const MIN_SCORED_STAKE: u64 = 1_000_000_000;
/// A worker's score rises at most once per period (one day): reputation takes time to earn.
pub const SCORE_PERIOD: u64 = 86_400;

/// The scoring period of a block timestamp, counted from 1 as the contract counts.
pub const fn score_period(timestamp: u64) -> u64 {
    timestamp / SCORE_PERIOD + 1
}

/// Whether a contribution proved at finalize raises its worker's score: the task was
/// replicated (more than one contributor), the contribution staked at least
/// [`MIN_SCORED_STAKE`], and the score last rose in an earlier period than the one of
/// `timestamp`.
pub fn raises_score(
    replicated: bool,
    stake: U256,
    last_scored_period: u64,
    timestamp: u64,
) -> bool {
    replicated
        && stake >= U256::from(MIN_SCORED_STAKE)
        && last_scored_period < score_period(timestamp)
}

/// The score of a worker whose contribution was proved at finalize: one more when it
/// [`raises_score`], unchanged otherwise.
pub const fn score_after_success(score: u64, raised: bool) -> u64 {
    if raised { score.saturating_add(1) } else { score }
}

/// What votes are grouped by: the 120 high bits of the result hash, the part a contribution
/// stores (the rest zeroed).
pub fn vote_key(result_hash: B256) -> B256 {
    let mut key = result_hash;
    key.0[15..].fill(0);
    key
}

/// The score of a worker whose contribution was wrong, unrevealed or rejected:
/// `floor(score × 2 / 3)`.
pub const fn score_after_fault(score: u64) -> u64 {
    (score as u128 * 2 / 3) as u64
}

/// The voters of one result: every hash with the same [`vote_key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Group {
    /// The first result hash voted for in this group.
    pub result_hash: B256,
    /// The product of the voters' weights.
    pub weight: U256,
    /// How many workers voted for it.
    pub size: usize,
}

/// What one contribution did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vote {
    /// The worker's weight `w`.
    pub weight: u64,
    /// `floor(log2 w)`, recorded with the contribution.
    pub log_weight: u8,
    /// `Some(winners)` when this vote reached consensus: the size of the winning group.
    pub winners: Option<usize>,
}

impl Vote {
    /// Whether this vote reached consensus.
    pub const fn reached_consensus(&self) -> bool {
        self.winners.is_some()
    }
}

/// The consensus state of one task, fed contribution by contribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consensus {
    trust: U256,
    total: U256,
    groups: Vec<Group>,
    contributors: usize,
    consensus: Option<B256>,
}

impl Consensus {
    /// A freshly initialized task of a deal with trust `trust` (0 counts as 1, as in deals).
    pub fn new(trust: u64) -> Self {
        Self {
            trust: U256::from(trust.max(1)),
            total: U256::from(1),
            groups: Vec::new(),
            contributors: 0,
            consensus: None,
        }
    }

    /// The trust level.
    pub fn trust(&self) -> u64 {
        self.trust.to()
    }

    /// 1 + the sum of all group weights: the denominator of the credibility.
    pub const fn total(&self) -> U256 {
        self.total
    }

    /// The groups, in the order of their first vote.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group of `result_hash` (of every hash with its [`vote_key`]), if anyone voted for it.
    pub fn group(&self, result_hash: B256) -> Option<&Group> {
        self.groups.iter().find(|group| vote_key(group.result_hash) == vote_key(result_hash))
    }

    /// How many contributions the task received (rejected ones included).
    pub const fn contributors(&self) -> usize {
        self.contributors
    }

    /// The consensus result hash, once reached.
    pub const fn consensus(&self) -> Option<B256> {
        self.consensus
    }

    /// Records a contribution for `result_hash` by a worker of score `score`.
    ///
    /// Fails as `contribute` reverts: after consensus (the task is no longer open), beyond
    /// [`MAX_CONTRIBUTORS`], for a zero hash, or when the total would exceed
    /// [`MAX_CONSENSUS_TOTAL`]; the state is then unchanged.
    pub fn contribute(&mut self, result_hash: B256, score: u64) -> Result<Vote> {
        if let Some(consensus) = self.consensus {
            return Err(Error::ConsensusAlreadyReached { consensus });
        }
        if self.contributors >= MAX_CONTRIBUTORS {
            return Err(Error::TooManyContributors { max: MAX_CONTRIBUTORS });
        }
        if result_hash.is_zero() {
            return Err(Error::EmptyResultHash);
        }
        let weight = worker_weight(score);
        let key = vote_key(result_hash);
        let index = self.groups.iter().position(|group| vote_key(group.result_hash) == key);
        let before = index.map_or(U256::ZERO, |index| self.groups[index].weight);
        let after = if before.is_zero() { U256::from(weight) } else { before * U256::from(weight) };
        let total = self.total + after - before;
        if total > MAX_CONSENSUS_TOTAL {
            return Err(Error::ConsensusOverflow);
        }
        let group = match index {
            Some(index) => &mut self.groups[index],
            None => {
                self.groups.push(Group { result_hash, weight: U256::ZERO, size: 0 });
                self.groups.last_mut().expect("just pushed")
            }
        };
        group.weight = after;
        group.size += 1;
        let size = group.size;
        self.total = total;
        self.contributors += 1;
        let reached = after * self.trust > total * (self.trust - U256::from(1));
        if reached {
            self.consensus = Some(group.result_hash);
        }
        Ok(Vote { weight, log_weight: log_weight(weight), winners: reached.then_some(size) })
    }

    /// Rejects the consensus (nobody revealed it in time), as `reopen` does: its group is
    /// removed from the total and the task takes contributions again. Its voters stay counted
    /// as contributors and cannot vote again.
    pub fn reopen(&mut self) -> Result<()> {
        let consensus = self.consensus.take().ok_or(Error::NoConsensus)?;
        let index = self
            .groups
            .iter()
            .position(|group| vote_key(group.result_hash) == vote_key(consensus))
            .expect("the consensus has a group");
        self.total -= self.groups.remove(index).weight;
        Ok(())
    }

    /// How many more contributions agreeing with the best group (the one that needs the
    /// fewest; a new result when nobody contributed yet) reach consensus, if the next workers
    /// have the scores `candidates`, in order, and are fresh (weight 2) after those.
    ///
    /// `Some(0)` once consensus is reached; `None` when it cannot be reached within
    /// [`MAX_CONTRIBUTORS`] contributions or before the total overflows.
    pub fn contributions_needed(&self, candidates: &[u64]) -> Option<usize> {
        if self.consensus.is_some() {
            return Some(0);
        }
        let targets: Vec<B256> = if self.groups.is_empty() {
            vec![B256::with_last_byte(1)]
        } else {
            self.groups.iter().map(|group| group.result_hash).collect()
        };
        targets.into_iter().filter_map(|target| self.needed_for(target, candidates)).min()
    }

    fn needed_for(&self, target: B256, candidates: &[u64]) -> Option<usize> {
        let mut state = self.clone();
        let mut scores = candidates.iter().copied().chain(std::iter::repeat(0));
        for needed in 1.. {
            let score = scores.next().expect("endless");
            if state.contribute(target, score).ok()?.reached_consensus() {
                return Some(needed);
            }
        }
        unreachable!("contributions are bounded by MAX_CONTRIBUTORS")
    }
}

/// How many more agreeing contributions a task of trust `trust` needs to reach consensus,
/// given the contributions already made (`(result hash, worker score)`, in order) and the
/// scores of the next candidate workers (fresh workers, of weight 2, after those).
///
/// `Some(0)` when the contributions made already reached consensus; `None` when consensus is
/// out of reach (too many contributors or an overflowing total), or when the contributions
/// made are not a valid history.
pub fn contributions_needed(
    trust: u64,
    contributed: &[(B256, u64)],
    candidates: &[u64],
) -> Option<usize> {
    let mut consensus = Consensus::new(trust);
    for &(result_hash, score) in contributed {
        if consensus.contribute(result_hash, score).ok()?.reached_consensus() {
            return Some(0);
        }
    }
    consensus.contributions_needed(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hash(byte: u8) -> B256 {
        B256::repeat_byte(byte)
    }

    /// The score that gives weight `w` (w >= 3).
    fn score_for(weight: u64) -> u64 {
        (weight + 1) * 3
    }

    #[test]
    fn weights() {
        assert_eq!(worker_weight(0), 2);
        assert_eq!(worker_weight(11), 2);
        assert_eq!(worker_weight(12), 3);
        assert_eq!(worker_weight(100), 32);
        assert_eq!(worker_weight(300), 99);
        assert_eq!(worker_weight(303), 100);
        assert_eq!(worker_weight(u64::MAX), u64::MAX / 3 - 1);
        assert_eq!(
            [log_weight(2), log_weight(3), log_weight(4), log_weight(32), log_weight(99)],
            [1, 1, 2, 5, 6]
        );
        assert_eq!(log_weight(u64::MAX), 63);
    }

    #[test]
    fn scores() {
        assert_eq!(score_after_success(10, true), 11);
        assert_eq!(score_after_success(10, false), 10);
        let rlc = U256::from(MIN_SCORED_STAKE);
        assert!(raises_score(true, rlc, 0, 5));
        assert!(!raises_score(false, rlc, 0, 5), "an unreplicated task proves nothing");
        assert!(!raises_score(true, rlc - U256::from(1), 0, 5), "nothing at risk");
        assert!(!raises_score(true, rlc, 1, SCORE_PERIOD - 1), "once per period");
        assert!(raises_score(true, rlc, 1, SCORE_PERIOD));
        assert_eq!(score_after_fault(10), 6);
        assert_eq!(score_after_fault(2), 1);
        assert_eq!(score_after_fault(1), 0);
        assert_eq!(score_after_fault(u64::MAX), (u64::MAX as u128 * 2 / 3) as u64);
    }

    #[test]
    fn max_total_is_2_pow_184_minus_1() {
        assert_eq!(MAX_CONSENSUS_TOTAL, (U256::from(1) << 184) - U256::from(1));
    }

    #[test]
    fn trust_3_with_dissent_reaches_on_the_fourth_contribution() {
        // protocol.md §4.3: X(2), Y(2), X(4), X(8), fresh workers.
        let (x, y) = (hash(0x58), hash(0x59));
        let mut consensus = Consensus::new(3);
        assert!(!consensus.contribute(x, 0).unwrap().reached_consensus());
        assert!(!consensus.contribute(y, 0).unwrap().reached_consensus());
        assert!(!consensus.contribute(x, 0).unwrap().reached_consensus());
        assert_eq!(consensus.group(x).unwrap().weight, U256::from(4));
        let vote = consensus.contribute(x, 0).unwrap();
        assert_eq!(vote, Vote { weight: 2, log_weight: 1, winners: Some(3) });
        assert_eq!(consensus.group(x).unwrap().weight, U256::from(8));
        assert_eq!(consensus.total(), U256::from(1 + 2 + 8));
        assert_eq!(consensus.consensus(), Some(x));
        assert!(matches!(consensus.contribute(y, 0), Err(Error::ConsensusAlreadyReached { .. })));
        assert_eq!(contributions_needed(3, &[(x, 0), (y, 0)], &[]), Some(2));
        assert_eq!(contributions_needed(3, &[(x, 0), (y, 0), (x, 0), (x, 0)], &[]), Some(0));
    }

    #[test]
    fn trust_100_with_scores_12_100_300() {
        // protocol.md §4.3: 17 (w 3), 42 (w 32), 42 (w 99).
        let (seventeen, forty_two) = (hash(17), hash(42));
        let mut consensus = Consensus::new(100);
        assert_eq!(consensus.contribute(seventeen, 12).unwrap().weight, 3);
        let vote = consensus.contribute(forty_two, 100).unwrap();
        assert_eq!((vote.weight, vote.log_weight, vote.winners), (32, 5, None));
        let vote = consensus.contribute(forty_two, 300).unwrap();
        assert_eq!((vote.weight, vote.log_weight, vote.winners), (99, 6, Some(2)));
        assert_eq!(consensus.group(forty_two).unwrap().weight, U256::from(3168));
        assert_eq!(consensus.total(), U256::from(3172));
        // With only the first two, the scheduler needs one worker of weight 99, or more fresh ones.
        let made = [(seventeen, 12), (forty_two, 100)];
        assert_eq!(contributions_needed(100, &made, &[300]), Some(1));
        // Fresh workers: 32·2^4 = 512 against 1 + 3 + 512 is the first above 99%.
        assert_eq!(contributions_needed(100, &made, &[]), Some(4));
    }

    #[test]
    fn fresh_workers_needed_is_ceil_log2_trust() {
        for (trust, needed) in [
            (0, 1),
            (1, 1),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (8, 3),
            (9, 4),
            (100, 7),
            (1 << 20, 20),
        ] {
            assert_eq!(contributions_needed(trust, &[], &[]), Some(needed), "trust {trust}");
        }
        // Out of reach: 2^32 > trust needs 33 fresh workers, one more than a task takes.
        assert_eq!(contributions_needed((1 << 32) + 1, &[], &[]), None);
        assert_eq!(contributions_needed(1 << 32, &[], &[]), Some(32));
    }

    #[test]
    fn a_heavy_worker_alone_reaches_consensus() {
        assert_eq!(contributions_needed(100, &[], &[score_for(100)]), Some(1));
        assert_eq!(contributions_needed(100, &[], &[score_for(99)]), Some(2));
        assert!(Consensus::new(100).contribute(hash(1), 303).unwrap().reached_consensus());
        assert!(!Consensus::new(100).contribute(hash(1), 302).unwrap().reached_consensus());
    }

    #[test]
    fn trust_one_accepts_the_first_contribution() {
        for trust in [0, 1] {
            let mut consensus = Consensus::new(trust);
            assert_eq!(consensus.contribute(hash(1), 0).unwrap().winners, Some(1));
        }
    }

    #[test]
    fn refusals_leave_the_state_unchanged() {
        let mut consensus = Consensus::new(u64::MAX);
        assert!(matches!(consensus.contribute(B256::ZERO, 0), Err(Error::EmptyResultHash)));
        // Weights near 2^62.4: dissent keeps the credibility low while one group's product
        // grows; its third vote would exceed 2^184.
        let heavy = u64::MAX;
        for byte in [2, 3, 1, 1] {
            assert!(!consensus.contribute(hash(byte), heavy).unwrap().reached_consensus());
        }
        let before = consensus.clone();
        assert!(matches!(consensus.contribute(hash(1), heavy), Err(Error::ConsensusOverflow)));
        assert_eq!(consensus, before);

        let mut consensus = Consensus::new(u64::MAX);
        for i in 0..MAX_CONTRIBUTORS {
            consensus.contribute(hash(i as u8 + 1), 0).unwrap();
        }
        assert!(matches!(
            consensus.contribute(hash(1), 0),
            Err(Error::TooManyContributors { max: 32 })
        ));
        assert_eq!(consensus.contributions_needed(&[]), None);
    }

    /// A hash that differs from another only past its 120-bit prefix votes with it; one that
    /// differs within the prefix is another result.
    #[test]
    fn votes_are_grouped_by_their_stored_prefix() {
        let real = B256::repeat_byte(0x42);
        let mut look_alike = real;
        look_alike.0[31] ^= 1;
        let mut other = real;
        other.0[0] ^= 0x80;
        assert_eq!(vote_key(real), vote_key(look_alike));
        assert_ne!(vote_key(real), vote_key(other));

        let mut consensus = Consensus::new(4);
        consensus.contribute(real, 0).unwrap();
        let vote = consensus.contribute(look_alike, 0).unwrap();
        assert_eq!(vote.winners, Some(2), "two agreeing fresh votes reach trust 4");
        assert_eq!(consensus.groups().len(), 1);
        assert_eq!(consensus.group(look_alike).unwrap().size, 2);

        let mut split = Consensus::new(4);
        split.contribute(real, 0).unwrap();
        assert!(!split.contribute(other, 0).unwrap().reached_consensus());
        assert_eq!(split.groups().len(), 2);
    }

    #[test]
    fn reopen_removes_the_consensus_group() {
        let (x, y) = (hash(1), hash(2));
        let mut consensus = Consensus::new(4);
        assert!(matches!(consensus.reopen(), Err(Error::NoConsensus)));
        consensus.contribute(y, 0).unwrap();
        for _ in 0..4 {
            consensus.contribute(x, 0).unwrap();
        }
        // 16 · 4 > (1 + 2 + 16) · 3
        assert_eq!(consensus.consensus(), Some(x));
        assert_eq!(consensus.total(), U256::from(1 + 2 + 16));
        consensus.reopen().unwrap();
        assert_eq!(
            (consensus.consensus(), consensus.group(x), consensus.total()),
            (None, None, U256::from(3))
        );
        assert_eq!(consensus.contributors(), 5);
        // A new vote for the rejected hash starts a new group.
        assert_eq!(consensus.contribute(x, 0).unwrap().winners, None);
        assert_eq!(consensus.group(x).unwrap().weight, U256::from(2));
        assert_eq!(consensus.contributions_needed(&[]), Some(3));
    }

    fn history() -> impl Strategy<Value = (u64, Vec<(u8, u64)>)> {
        (
            prop_oneof![0u64..20, 20u64..10_000, Just(u64::MAX)],
            proptest::collection::vec((1u8..4, prop_oneof![0u64..12, 12u64..2_000]), 0..40),
        )
    }

    proptest! {
        #[test]
        fn state_matches_the_definition((trust, votes) in history()) {
            let mut consensus = Consensus::new(trust);
            let mut accepted: Vec<(B256, u64)> = Vec::new();
            for (byte, score) in votes {
                let before = consensus.clone();
                match consensus.contribute(hash(byte), score) {
                    Ok(vote) => {
                        accepted.push((hash(byte), vote.weight));
                        // Groups are products, the total is 1 + their sum.
                        let mut total = U256::from(1);
                        for group in consensus.groups() {
                            let weights = accepted.iter().filter(|(h, _)| *h == group.result_hash);
                            let product = weights.clone().fold(U256::from(1), |p, (_, w)| p * U256::from(*w));
                            prop_assert_eq!(group.weight, product);
                            prop_assert_eq!(group.size, weights.count());
                            total += group.weight;
                        }
                        prop_assert_eq!(consensus.total(), total);
                        // Consensus: credibility of the voted group above 1 - 1/trust.
                        let t = U256::from(trust.max(1));
                        let group = consensus.group(hash(byte)).unwrap();
                        prop_assert_eq!(vote.reached_consensus(), group.weight * t > total * (t - U256::from(1)));
                    }
                    Err(_) => prop_assert_eq!(&consensus, &before),
                }
            }
        }

        #[test]
        fn contributions_needed_is_exact((trust, votes) in history(), candidates in proptest::collection::vec(0u64..1_000, 0..4)) {
            let mut consensus = Consensus::new(trust);
            for (byte, score) in votes.into_iter().take(8) {
                if consensus.contribute(hash(byte), score).is_err() || consensus.consensus().is_some() {
                    break;
                }
            }
            let Some(needed) = consensus.contributions_needed(&candidates) else {
                return Ok(());
            };
            if needed == 0 {
                prop_assert!(consensus.consensus().is_some());
                return Ok(());
            }
            // Some group reaches consensus with exactly `needed` more votes, none with fewer.
            let scores: Vec<u64> = candidates.iter().copied().chain(std::iter::repeat(0)).take(needed).collect();
            let targets: Vec<B256> = if consensus.groups().is_empty() {
                vec![hash(0xff)]
            } else {
                consensus.groups().iter().map(|g| g.result_hash).collect()
            };
            let mut reached_with_needed = false;
            for target in targets {
                let mut state = consensus.clone();
                for (i, &score) in scores.iter().enumerate() {
                    let vote = state.contribute(target, score).unwrap();
                    if vote.reached_consensus() {
                        prop_assert_eq!(i + 1, needed, "reached earlier than claimed");
                        reached_with_needed = true;
                    }
                }
            }
            prop_assert!(reached_with_needed);
        }

        #[test]
        fn more_trust_never_needs_fewer_fresh_workers(a in 0u64..1 << 31, b in 0u64..1 << 31) {
            let (low, high) = (a.min(b), a.max(b));
            prop_assert!(contributions_needed(low, &[], &[]) <= contributions_needed(high, &[], &[]));
        }
    }
}
