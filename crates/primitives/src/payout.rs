//! What finalizing a replicated task pays (protocol §5.4), computed as `finalize` does, for
//! deals without a committee: the pool's price plus the stakes of the wrong contributions is
//! the task's reward; the workers who proved the consensus share `100 - schedulerRewardRatio`
//! percent of it by their weights (rounded down, each), get their stake back, and the
//! scheduler keeps the rest. A wrong contribution (a rejected result, or a consensus
//! contribution never revealed) loses its stake.

use alloy::primitives::{Address, U256};

/// One contribution to a task, as finalize sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution {
    /// The worker.
    pub worker: Address,
    /// Whether it revealed the consensus result (`PROVED`).
    pub proved: bool,
    /// Its weight in the consensus (the log-weight of its score, at least 1).
    pub weight: U256,
}

/// The balance changes of one finalized task, besides the requester's payment and the app and
/// dataset owners' prices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPayout {
    /// Each worker who proved the consensus, with its reward (its stake comes back too).
    pub rewards: Vec<(Address, U256)>,
    /// Each worker who contributed wrongly, with the stake it loses.
    pub seized: Vec<(Address, U256)>,
    /// What the scheduler gets: its ratio of the reward and what the rounding left.
    pub scheduler: U256,
}

/// The payout of a task of a deal with `workerpool_price`, `worker_stake` and
/// `scheduler_reward_ratio` (percent), given its contributions. A task with no proved
/// contribution is not finalized: its payout is `None`.
pub fn task_payout(
    workerpool_price: U256,
    worker_stake: U256,
    scheduler_reward_ratio: U256,
    contributions: &[Contribution],
) -> Option<TaskPayout> {
    let hundred = U256::from(100);
    let mut payout = TaskPayout::default();
    let mut total = workerpool_price;
    let mut weights = U256::ZERO;
    for contribution in contributions {
        if contribution.proved {
            weights += contribution.weight;
        } else {
            total += worker_stake;
            payout.seized.push((contribution.worker, worker_stake));
        }
    }
    if weights.is_zero() {
        return None;
    }
    let workers_reward = total * (hundred - scheduler_reward_ratio.min(hundred)) / hundred;
    let mut distributed = U256::ZERO;
    for contribution in contributions.iter().filter(|c| c.proved) {
        let reward = workers_reward * contribution.weight / weights;
        distributed += reward;
        payout.rewards.push((contribution.worker, reward));
    }
    payout.scheduler = total - distributed;
    Some(payout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contribution(byte: u8, proved: bool, weight: u64) -> Contribution {
        Contribution { worker: Address::repeat_byte(byte), proved, weight: U256::from(weight) }
    }

    #[test]
    fn a_liars_stake_joins_the_reward_and_the_rounding_goes_to_the_scheduler() {
        // Price 1,000, stake 300, ratio 1%: the reward is 1,300, 1,287 of it for the workers.
        let contributions = [
            contribution(1, false, 1),
            contribution(2, true, 1),
            contribution(3, true, 1),
            contribution(4, true, 1),
            contribution(5, true, 1),
        ];
        let payout =
            task_payout(U256::from(1_000), U256::from(300), U256::from(1), &contributions).unwrap();
        assert_eq!(payout.seized, [(Address::repeat_byte(1), U256::from(300))]);
        let rewards: Vec<U256> = payout.rewards.iter().map(|(_, r)| *r).collect();
        assert_eq!(rewards, [U256::from(321); 4], "1,287 / 4, rounded down");
        assert_eq!(payout.scheduler, U256::from(1_300 - 4 * 321));
    }

    #[test]
    fn rewards_follow_the_weights() {
        let contributions = [contribution(1, true, 3), contribution(2, true, 1)];
        let payout =
            task_payout(U256::from(400), U256::ZERO, U256::from(0), &contributions).unwrap();
        assert_eq!(
            payout.rewards,
            [
                (Address::repeat_byte(1), U256::from(300)),
                (Address::repeat_byte(2), U256::from(100))
            ]
        );
        assert_eq!(payout.scheduler, U256::ZERO);
        assert!(payout.seized.is_empty());
    }

    #[test]
    fn a_task_nobody_proved_pays_nothing() {
        assert_eq!(
            task_payout(
                U256::from(400),
                U256::from(1),
                U256::from(5),
                &[contribution(1, false, 1)]
            ),
            None
        );
    }
}
