//! Deals and tasks: what `matchOrders` writes, and the ids derived from it.
//!
//! A deal is everything agreed at match time. The contract stores only
//! `keccak256(abi.encode(deal))` ([`Deal::hash`]) under the deal id, emits the full deal in
//! `DealCreated`, and every task-lifecycle call passes the deal back, checked against that hash;
//! so [`Deal`] mirrors the contract's struct field for field, in the same order.
//!
//! Ids: `dealid = keccak256(requestHash ‖ botFirst)` and `taskid = keccak256(dealid ‖ idx)`,
//! each over two 32-byte words. Task indices are relative to the **request order**: a deal owns
//! the indices `[botFirst, botFirst + botSize)`, so the deals cut from one request order get
//! disjoint indices and distinct ids.
//!
//! Deadlines count from the deal's start, in multiples of its category's time reference `T`
//! ([`crate::category`]): contributions before `start + 7T`, finalization before
//! `start + 10T`, reveals within `2T` of consensus.

use alloy::{
    primitives::{B256, U256, keccak256},
    sol,
    sol_types::SolValue,
};
use serde::{Deserialize, Serialize};

use crate::{
    category::{CONTRIBUTION_DEADLINE_RATIO, FINAL_DEADLINE_RATIO, REVEAL_DEADLINE_RATIO},
    error::{Error, Result},
    tag::Tag,
};

sol! {
    /// A deal, exactly as `IPocoTypes.Deal`. JSON uses the Solidity field names.
    #[derive(Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Deal {
        /// EIP-712 digest of the request order; with `botFirst` it gives the deal id.
        bytes32 requestHash;
        /// The app.
        #[serde(with = "crate::serde_helpers::address")]
        address app;
        /// The app owner at match time, paid the app price.
        #[serde(with = "crate::serde_helpers::address")]
        address appOwner;
        /// Price per task paid to the app owner, in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 appPrice;
        /// The dataset; zero for a deal without one (then owner and price are zero too).
        #[serde(with = "crate::serde_helpers::address")]
        address dataset;
        /// The dataset owner at match time.
        #[serde(with = "crate::serde_helpers::address")]
        address datasetOwner;
        /// Price per task paid to the dataset owner, in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 datasetPrice;
        /// The workerpool.
        #[serde(with = "crate::serde_helpers::address")]
        address workerpool;
        /// The workerpool owner at match time: signs authorizations, finalizes, is paid.
        #[serde(with = "crate::serde_helpers::address")]
        address scheduler;
        /// Price per task for the execution, in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 workerpoolPrice;
        /// Who signed the request order.
        #[serde(with = "crate::serde_helpers::address")]
        address requester;
        /// Who paid for the deal (the requester, unless sponsored).
        #[serde(with = "crate::serde_helpers::address")]
        address sponsor;
        /// Who gets the results.
        #[serde(with = "crate::serde_helpers::address")]
        address beneficiary;
        /// Contract called with each task's result at finalize (zero: none).
        #[serde(with = "crate::serde_helpers::address")]
        address callback;
        /// Combined demand: app tag | dataset tag without TEE framework bits | request tag.
        bytes32 tag;
        /// The category.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 category;
        /// `max(request.trust, 1)`.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 trust;
        /// Block timestamp at match; every deadline counts from here.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 startTime;
        /// The category's time reference `T`, in seconds.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 timeref;
        /// First task index of the deal (request-relative).
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 botFirst;
        /// Number of tasks of the deal.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 botSize;
        /// Stake each worker locks per contribution (snapshot of the pool policy), in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 workerStake;
        /// Percentage of the workers' reward kept by the scheduler (snapshot of the pool policy).
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 schedulerRewardRatio;
        /// keccak256 of the request's `params` string (the string itself is in `DealCreated`).
        bytes32 paramsHash;
    }
}

/// The id of the deal cut from request order `request_hash` at task index `bot_first`:
/// `keccak256(requestHash ‖ botFirst)`.
pub fn deal_id(request_hash: B256, bot_first: U256) -> B256 {
    keccak256((request_hash, bot_first).abi_encode())
}

/// The id of task `idx` of deal `deal_id`: `keccak256(dealid ‖ idx)`.
pub fn task_id(deal_id: B256, idx: U256) -> B256 {
    keccak256((deal_id, idx).abi_encode())
}

impl Deal {
    /// `keccak256(abi.encode(deal))`: what the contract stores under the deal id.
    pub fn hash(&self) -> B256 {
        keccak256(self.abi_encode())
    }

    /// The deal id: `keccak256(requestHash ‖ botFirst)`.
    pub fn id(&self) -> B256 {
        deal_id(self.requestHash, self.botFirst)
    }

    /// The combined demand tag.
    pub fn demand(&self) -> Tag {
        Tag(self.tag)
    }

    /// Whether the deal has a dataset.
    pub fn has_dataset(&self) -> bool {
        !self.dataset.is_zero()
    }

    /// Whether the deal needs a TEE (tag bit 0): contributions must then carry an enclave
    /// challenge.
    pub fn is_tee(&self) -> bool {
        self.demand().is_tee()
    }

    /// Whether the deal's contributors are drawn by the contracts from the workerpool's bonded
    /// members (tag bit 9): only the holders of a task's seats may contribute to it.
    pub fn is_committee(&self) -> bool {
        self.demand().is_superset_of(Tag::COMMITTEE)
    }

    /// The end (exclusive) of the deal's task indices: `botFirst + botSize`.
    pub fn bot_end(&self) -> U256 {
        self.botFirst.saturating_add(self.botSize)
    }

    /// Whether `idx` is one of the deal's task indices.
    pub fn contains_task(&self, idx: U256) -> bool {
        idx >= self.botFirst && idx < self.bot_end()
    }

    /// The id of the deal's task `idx` (a request-relative index), which must be in
    /// `[botFirst, botFirst + botSize)`.
    pub fn task_id(&self, idx: U256) -> Result<B256> {
        if !self.contains_task(idx) {
            return Err(Error::TaskIndexOutOfRange {
                idx,
                bot_first: self.botFirst,
                bot_size: self.botSize,
            });
        }
        Ok(task_id(self.id(), idx))
    }

    /// Every task of the deal as `(idx, taskid)`, in index order.
    pub fn tasks(&self) -> impl Iterator<Item = (U256, B256)> + '_ {
        let id = self.id();
        let mut next = self.botFirst;
        let end = self.bot_end();
        std::iter::from_fn(move || {
            (next < end).then(|| {
                let idx = next;
                next += U256::from(1);
                (idx, task_id(id, idx))
            })
        })
    }

    /// Contributions are accepted strictly before `startTime + 7T`.
    pub fn contribution_deadline(&self) -> U256 {
        self.startTime + U256::from(CONTRIBUTION_DEADLINE_RATIO) * self.timeref
    }

    /// Finalization is possible strictly before `startTime + 10T`; from then on the task can
    /// only be claimed.
    pub fn final_deadline(&self) -> U256 {
        self.startTime + U256::from(FINAL_DEADLINE_RATIO) * self.timeref
    }

    /// The reveal deadline of a task whose consensus was reached at `consensus_time`:
    /// `consensus_time + 2T`.
    pub fn reveal_deadline(&self, consensus_time: U256) -> U256 {
        consensus_time + U256::from(REVEAL_DEADLINE_RATIO) * self.timeref
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, b256};

    fn deal() -> Deal {
        Deal {
            requestHash: B256::repeat_byte(0x42),
            app: Address::repeat_byte(1),
            workerpool: Address::repeat_byte(2),
            trust: U256::from(1),
            startTime: U256::from(1_000),
            timeref: U256::from(300),
            botFirst: U256::from(5),
            botSize: U256::from(3),
            ..Default::default()
        }
    }

    #[test]
    fn ids_hash_two_words() {
        let request_hash = B256::repeat_byte(0x42);
        let mut words = request_hash.to_vec();
        words.extend_from_slice(&U256::from(5).to_be_bytes::<32>());
        assert_eq!(deal_id(request_hash, U256::from(5)), keccak256(&words));
        assert_eq!(deal().id(), keccak256(&words));
        let mut words = deal().id().to_vec();
        words.extend_from_slice(&U256::from(6).to_be_bytes::<32>());
        assert_eq!(deal().task_id(U256::from(6)).unwrap(), keccak256(words));
        // Known value: keccak256 of 64 zero bytes.
        assert_eq!(
            deal_id(B256::ZERO, U256::ZERO),
            b256!("0xad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5")
        );
    }

    #[test]
    fn hash_is_keccak_of_the_abi_encoding() {
        let deal = deal();
        let encoded = deal.abi_encode();
        assert_eq!(encoded.len(), 24 * 32, "every field is one word, no offset");
        assert_eq!(&encoded[..32], deal.requestHash.as_slice());
        assert_eq!(&encoded[32 + 12..64], deal.app.as_slice());
        assert_eq!(&encoded[19 * 32..20 * 32], &U256::from(5).to_be_bytes::<32>());
        assert_eq!(deal.hash(), keccak256(encoded));
    }

    #[test]
    fn bag_of_tasks() {
        let deal = deal();
        assert!(!deal.contains_task(U256::from(4)));
        assert!(deal.contains_task(U256::from(5)));
        assert!(deal.contains_task(U256::from(7)));
        assert!(!deal.contains_task(U256::from(8)));
        assert!(matches!(deal.task_id(U256::from(8)), Err(Error::TaskIndexOutOfRange { .. })));
        let tasks: Vec<_> = deal.tasks().collect();
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[0], (U256::from(5), task_id(deal.id(), U256::from(5))));
        assert_eq!(tasks[2].0, U256::from(7));
    }

    #[test]
    fn deadlines() {
        let deal = deal();
        assert_eq!(deal.contribution_deadline(), U256::from(1_000 + 2_100));
        assert_eq!(deal.final_deadline(), U256::from(1_000 + 3_000));
        assert_eq!(deal.reveal_deadline(U256::from(2_000)), U256::from(2_600));
    }

    #[test]
    fn json_round_trip() {
        let deal = deal();
        let json = serde_json::to_value(&deal).unwrap();
        assert_eq!(json["botFirst"], "5");
        assert_eq!(json["requestHash"], B256::repeat_byte(0x42).to_string());
        assert_eq!(serde_json::from_value::<Deal>(json).unwrap(), deal);
    }
}
