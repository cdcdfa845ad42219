// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IPocoTypes} from "../interfaces/IPocoTypes.sol";

/// @title The storage of the poco protocol, shared by `Poco` and the modules it delegates to
/// @notice One ERC-7201 namespace. Hot state is packed so that each step writes as few slots as
/// possible:
/// - an account is one word: free balance (96 bits), frozen amount (96 bits), worker score (64);
/// - a deal is one word: the hash of the `Deal` struct;
/// - a task is one word: status, counters, reveal deadline and the consensus total;
/// - a contribution is one word: status, weight, and 120-bit prefixes of its hash and seal;
/// - a consensus group is one word: consensus flag, size and the product of weights;
/// - a pool membership is one word: position, epochs of the last move and of leaving, leaving
///   time and the bond left.
library PocoStorage {
    /// @custom:storage-location erc7201:poco.storage.main
    struct Layout {
        mapping(address => uint256) accounts;
        mapping(bytes32 => uint256) consumed;
        mapping(bytes32 => address) presigned;
        mapping(bytes32 => bytes32) deals;
        mapping(bytes32 => uint256) tasks;
        mapping(bytes32 => bytes32) resultDigests;
        mapping(bytes32 => bytes) resultsCallbacks;
        mapping(bytes32 => mapping(address => uint256)) contributions;
        /// Consensus groups of a task, keyed by the 120-bit prefix of the result hash: votes are
        /// grouped by what a contribution stores and a reveal opens, nothing finer.
        mapping(bytes32 => mapping(uint256 => uint256)) groups;
        IPocoTypes.Category[] categories;
        /// The bonded members of each workerpool (see `Members`).
        mapping(address => Members) members;
        /// workerpool => worker => `MembershipWord` (zero: no bond held in that pool).
        mapping(address => mapping(address => uint256)) memberships;
        /// Committee deals: the `DrawWord` written at match.
        mapping(bytes32 => uint256) draws;
        /// Committee deals: the random seed of the draw, once fixed.
        mapping(bytes32 => bytes32) drawSeeds;
    }

    /// The active members of a workerpool hold the positions `[0, count)`, with no gap: a member
    /// who leaves (or is expelled) hands its position to the last one. Every change opens a new
    /// membership epoch; a committee deal records the epoch and the count at match and draws
    /// positions below that count, each resolved to whoever held it at that epoch. A position's
    /// current holder is its head; the holders it had before are kept, oldest first, in its
    /// history, so that a draw never lands on a member who was not active at match.
    struct Members {
        /// `PoolWord`: current epoch and active member count.
        uint256 state;
        /// position => `HolderWord` of its current holder.
        mapping(uint256 => uint256) heads;
        /// position => its earlier `HolderWord`s, oldest first.
        mapping(uint256 => uint256[]) history;
    }

    // keccak256(abi.encode(uint256(keccak256("poco.storage.main")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant LOCATION =
        0xead258fb6175f388339f52c25147b390ee515d7673a97ddadff4ce845ca04f00;

    function main() internal pure returns (Layout storage $) {
        bytes32 location = LOCATION;
        assembly {
            $.slot := location
        }
    }
}

/// @title Packing of an account word: [scored period 32][score 32][frozen 96][balance 96]
/// The scored period is the last `SCORE_PERIOD` in which the worker's score rose (see
/// `PocoBase`): a score rises at most once per period.
library AccountWord {
    uint256 internal constant AMOUNT_MAX = type(uint96).max;
    uint256 private constant AMOUNT_MASK = type(uint96).max;
    uint256 private constant AMOUNTS_MASK = (1 << 192) - 1;

    function balance(uint256 word) internal pure returns (uint256) {
        return word & AMOUNT_MASK;
    }

    function frozen(uint256 word) internal pure returns (uint256) {
        return (word >> 96) & AMOUNT_MASK;
    }

    function score(uint256 word) internal pure returns (uint256) {
        return (word >> 192) & type(uint32).max;
    }

    function scoredPeriod(uint256 word) internal pure returns (uint256) {
        return word >> 224;
    }

    /// The word with new amounts; score and scored period kept.
    function withAmounts(uint256 word, uint256 balance_, uint256 frozen_)
        internal
        pure
        returns (uint256)
    {
        return (word & ~AMOUNTS_MASK) | balance_ | (frozen_ << 96);
    }

    /// The word with a new score; amounts and scored period kept.
    function withScore(uint256 word, uint256 score_) internal pure returns (uint256) {
        return (word & ~(uint256(type(uint32).max) << 192)) | (score_ << 192);
    }

    /// The word with a new score, scored in `period`; amounts kept.
    function withScore(uint256 word, uint256 score_, uint256 period)
        internal
        pure
        returns (uint256)
    {
        return (word & AMOUNTS_MASK) | (score_ << 192) | (period << 224);
    }
}

/// @title Packing of a task word:
/// [total 184][revealDeadline 40][winners 8][reveals 8][contributors 8][status 8]
library TaskWord {
    uint256 internal constant TOTAL_MAX = (1 << 184) - 1;

    function taskStatus(uint256 word) internal pure returns (uint8) {
        return uint8(word);
    }

    function contributors(uint256 word) internal pure returns (uint256) {
        return (word >> 8) & 0xff;
    }

    function reveals(uint256 word) internal pure returns (uint256) {
        return (word >> 16) & 0xff;
    }

    function winners(uint256 word) internal pure returns (uint256) {
        return (word >> 24) & 0xff;
    }

    function revealDeadline(uint256 word) internal pure returns (uint256) {
        return (word >> 32) & 0xffffffffff;
    }

    function total(uint256 word) internal pure returns (uint256) {
        return word >> 72;
    }

    function pack(
        uint256 status_,
        uint256 contributors_,
        uint256 reveals_,
        uint256 winners_,
        uint256 revealDeadline_,
        uint256 total_
    ) internal pure returns (uint256) {
        return status_ | (contributors_ << 8) | (reveals_ << 16) | (winners_ << 24)
            | (revealDeadline_ << 32) | (total_ << 72);
    }
}

/// @title Packing of a contribution word: [sealPrefix 120][hashPrefix 120][weight 8][status 8]
library ContributionWord {
    function contributionStatus(uint256 word) internal pure returns (uint8) {
        return uint8(word);
    }

    function logWeight(uint256 word) internal pure returns (uint256) {
        return (word >> 8) & 0xff;
    }

    function hashPrefix(uint256 word) internal pure returns (uint256) {
        return (word >> 16) & ((1 << 120) - 1);
    }

    function sealPrefix(uint256 word) internal pure returns (uint256) {
        return word >> 136;
    }

    /// The 120 high bits of a hash.
    function prefix(bytes32 value) internal pure returns (uint256) {
        return uint256(value) >> 136;
    }

    function pack(uint256 status_, uint256 weight_, bytes32 resultHash, bytes32 resultSeal)
        internal
        pure
        returns (uint256)
    {
        return status_ | (weight_ << 8) | (prefix(resultHash) << 16) | (prefix(resultSeal) << 136);
    }

    function withStatus(uint256 word, uint256 status_) internal pure returns (uint256) {
        return (word & ~uint256(0xff)) | status_;
    }
}

/// @title Packing of a consensus group word: [weight 240][size 8][consensus 8]
library GroupWord {
    uint256 internal constant WEIGHT_MAX = (1 << 240) - 1;

    function isConsensus(uint256 word) internal pure returns (bool) {
        return word & 0xff != 0;
    }

    function groupSize(uint256 word) internal pure returns (uint256) {
        return (word >> 8) & 0xff;
    }

    function groupWeight(uint256 word) internal pure returns (uint256) {
        return word >> 16;
    }

    function pack(bool consensus_, uint256 size_, uint256 weight_) internal pure returns (uint256) {
        return (consensus_ ? 1 : 0) | (size_ << 8) | (weight_ << 16);
    }
}

/// @title Packing of a pool membership word:
/// [bond 64][leftAt 40][left epoch 48][moved epoch 48][position + 1 32]
library MembershipWord {
    /// The member's position in the pool (its last one, once it left).
    function position(uint256 word) internal pure returns (uint256) {
        return (word & type(uint32).max) - 1;
    }

    /// The epoch in which the member took its current position (joining, or moved there when
    /// another member left).
    function movedEpoch(uint256 word) internal pure returns (uint256) {
        return (word >> 32) & type(uint48).max;
    }

    /// The epoch in which the member left the active set (zero while it is active).
    function leftEpoch(uint256 word) internal pure returns (uint256) {
        return (word >> 80) & type(uint48).max;
    }

    /// When the member left the active set (zero while it is active).
    function leftAt(uint256 word) internal pure returns (uint256) {
        return (word >> 128) & type(uint40).max;
    }

    /// The bond still frozen for this membership.
    function bond(uint256 word) internal pure returns (uint256) {
        return word >> 168;
    }

    function isActive(uint256 word) internal pure returns (bool) {
        return word != 0 && leftEpoch(word) == 0;
    }

    function pack(
        uint256 position_,
        uint256 movedEpoch_,
        uint256 leftEpoch_,
        uint256 leftAt_,
        uint256 bond_
    ) internal pure returns (uint256) {
        return (position_ + 1) | (movedEpoch_ << 32) | (leftEpoch_ << 80) | (leftAt_ << 128)
            | (bond_ << 168);
    }

    function withBond(uint256 word, uint256 bond_) internal pure returns (uint256) {
        return (word & ((1 << 168) - 1)) | (bond_ << 168);
    }
}

/// @title Packing of a workerpool's member state: [epoch 64][active count 64]
library PoolWord {
    function activeCount(uint256 word) internal pure returns (uint256) {
        return word & type(uint64).max;
    }

    function epoch(uint256 word) internal pure returns (uint256) {
        return word >> 64;
    }

    function pack(uint256 activeCount_, uint256 epoch_) internal pure returns (uint256) {
        return activeCount_ | (epoch_ << 64);
    }
}

/// @title Packing of a position holder: [since epoch 64][worker 160]
library HolderWord {
    function worker(uint256 word) internal pure returns (address) {
        return address(uint160(word));
    }

    function sinceEpoch(uint256 word) internal pure returns (uint256) {
        return word >> 160;
    }

    function pack(address worker_, uint256 sinceEpoch_) internal pure returns (uint256) {
        return uint256(uint160(worker_)) | (sinceEpoch_ << 160);
    }
}

/// @title Packing of a committee deal's draw word: [seed block 64][epoch 64][members 64]
library DrawWord {
    /// How many members were active at match: the draw picks positions below it.
    function memberCount(uint256 word) internal pure returns (uint256) {
        return word & type(uint64).max;
    }

    /// The pool's membership epoch at match: positions resolve to their holders then.
    function epoch(uint256 word) internal pure returns (uint256) {
        return (word >> 64) & type(uint64).max;
    }

    /// The block whose hash seeds the draw.
    function seedBlock(uint256 word) internal pure returns (uint256) {
        return word >> 128;
    }

    function pack(uint256 memberCount_, uint256 epoch_, uint256 seedBlock_)
        internal
        pure
        returns (uint256)
    {
        return memberCount_ | (epoch_ << 64) | (seedBlock_ << 128);
    }

    function withSeedBlock(uint256 word, uint256 seedBlock_) internal pure returns (uint256) {
        return (word & ((1 << 128) - 1)) | (seedBlock_ << 128);
    }
}
