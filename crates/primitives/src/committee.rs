//! Committee deals (tag `committee`), as `PocoTasks` draws them.
//!
//! A committee deal's contributors are not chosen by the scheduler: each task has
//! [`committee_size`] seats (odd, 1 to 31, from the deal's trust), and seat `j` goes to the
//! member at position [`seat_position`]`(seed, taskid, j, n)` of the workerpool's active set,
//! where `n` is the pool's active member count at match and the position is read as it was at
//! the match's membership epoch. A result is the consensus once its voters hold a majority of
//! the seats ([`is_majority`]).
//!
//! A pool takes a committee deal only with at least [`min_committee_members`] active members,
//! and only from a request that names it. Sizes come from the binomial tail: a committee of
//! size `c` serves trust `t` when an attacker holding a quarter of the members wins a majority
//! of `c` independent seats with probability below `1 / t` ([`largest_trust_served`] computes
//! it, and the sizes below are checked against it).

use alloy::{
    primitives::{B256, U256, keccak256},
    sol_types::SolValue,
};

/// The largest trust each committee size serves, for the sizes 1, 3, 5, ..., 31.
pub const COMMITTEE_TRUSTS: [u64; 16] =
    [3, 6, 9, 14, 20, 29, 41, 57, 80, 112, 155, 215, 296, 408, 560, 768];
/// The highest trust a committee deal may ask for (matching rule 0x0a).
pub const MAX_COMMITTEE_TRUST: u64 = 768;
/// The fewest active members a pool needs for any committee deal.
pub const MIN_COMMITTEE_MEMBERS: u64 = 4;
/// The bond a worker freezes to become a member of a workerpool, in nRLC (10 RLC).
pub const MEMBER_BOND: u64 = 10_000_000_000;
/// What a member loses from its bond per wrong or silent seat, in nRLC (1 RLC).
pub const SEAT_PENALTY: u64 = 1_000_000_000;

/// The committee size (odd, 1 to 31) that serves `trust`; `None` above
/// [`MAX_COMMITTEE_TRUST`]. Trust 0 is trust 1.
pub fn committee_size(trust: U256) -> Option<u64> {
    let index = COMMITTEE_TRUSTS.iter().position(|&max| trust <= U256::from(max))?;
    Some(2 * index as u64 + 1)
}

/// The fewest active members a workerpool needs at match to take a committee deal of `trust`:
/// as many as the committee has seats, and never fewer than [`MIN_COMMITTEE_MEMBERS`]. `None`
/// when no committee serves `trust`.
pub fn min_committee_members(trust: U256) -> Option<u64> {
    committee_size(trust).map(|size| size.max(MIN_COMMITTEE_MEMBERS))
}

/// The member position drawn for seat `seat` of task `task_id`:
/// `keccak256(abi.encode(seed, taskid, seat)) mod member_count`.
///
/// # Panics
///
/// When `member_count` is zero (the contract never draws from an empty set).
pub fn seat_position(seed: B256, task_id: B256, seat: u64, member_count: u64) -> u64 {
    assert!(member_count != 0, "a committee is drawn from at least one member");
    let word = U256::from_be_bytes(keccak256((seed, task_id, U256::from(seat)).abi_encode()).0);
    (word % U256::from(member_count)).to::<u64>()
}

/// The positions drawn for every seat of task `task_id`, in seat order.
pub fn seat_positions(seed: B256, task_id: B256, size: u64, member_count: u64) -> Vec<u64> {
    (0..size).map(|seat| seat_position(seed, task_id, seat, member_count)).collect()
}

/// Whether `seats` of a committee of `size` seats are a majority.
pub const fn is_majority(seats: u64, size: u64) -> bool {
    seats * 2 > size
}

/// The largest trust a committee of `size` seats serves: the largest `t` such that an attacker
/// holding a quarter of the members wins a majority of the seats with probability below
/// `1 / t`. With `N = Σ_{k > size/2} C(size, k) 3^(size - k)`, that probability is
/// `N / 4^size`, so `t = floor((4^size - 1) / N)`.
pub fn largest_trust_served(size: u64) -> U256 {
    let choose = |n: u64, k: u64| {
        (0..k).fold(U256::from(1), |acc, i| acc * U256::from(n - i) / U256::from(i + 1))
    };
    let wins = (size.div_ceil(2)..=size)
        .fold(U256::ZERO, |acc, k| acc + choose(size, k) * U256::from(3).pow(U256::from(size - k)));
    (U256::from(4).pow(U256::from(size)) - U256::from(1)) / wins
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::b256;

    #[test]
    fn the_sizes_serve_the_trusts_the_binomial_tail_gives() {
        for (index, &max) in COMMITTEE_TRUSTS.iter().enumerate() {
            let size = 2 * index as u64 + 1;
            assert_eq!(largest_trust_served(size), U256::from(max), "size {size}");
            assert_eq!(committee_size(U256::from(max)), Some(size));
            assert_eq!(committee_size(U256::from(max + 1)), (size < 31).then_some(size + 2));
        }
        assert_eq!(committee_size(U256::ZERO), Some(1));
        assert_eq!(committee_size(U256::from(MAX_COMMITTEE_TRUST + 1)), None);
    }

    #[test]
    fn a_pool_needs_four_members_and_one_per_seat() {
        assert_eq!(min_committee_members(U256::from(1)), Some(4));
        assert_eq!(min_committee_members(U256::from(14)), Some(7));
        assert_eq!(min_committee_members(U256::from(20)), Some(9));
        assert_eq!(min_committee_members(U256::from(768)), Some(31));
        assert_eq!(min_committee_members(U256::from(769)), None);
    }

    #[test]
    fn a_majority_is_more_than_half_the_seats() {
        assert!(is_majority(2, 3));
        assert!(!is_majority(1, 3));
        assert!(is_majority(1, 1));
        assert!(!is_majority(15, 31));
        assert!(is_majority(16, 31));
    }

    /// A position is the hash of the three ABI-encoded words (seed, task id, seat index), modulo
    /// the member count. (`committee_draw_equals_the_contracts` compares it with the contract.)
    #[test]
    fn positions_hash_the_seed_the_task_and_the_seat() {
        let seed = b256!("0x1111111111111111111111111111111111111111111111111111111111111111");
        let task = b256!("0x2222222222222222222222222222222222222222222222222222222222222222");
        let encoded = [seed.0, task.0, U256::from(3).to_be_bytes::<32>()].concat();
        let word = U256::from_be_bytes(keccak256(&encoded).0);
        assert_eq!(seat_position(seed, task, 3, 7), (word % U256::from(7)).to::<u64>());
        let positions = seat_positions(seed, task, 5, 7);
        assert_eq!(positions.len(), 5);
        assert!(positions.iter().all(|&p| p < 7));
        assert_eq!(positions[3], seat_position(seed, task, 3, 7));
    }
}
