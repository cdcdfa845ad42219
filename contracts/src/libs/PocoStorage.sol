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
/// - a pool membership is one word: position in the pool's member list and leaving time.
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
        mapping(bytes32 => mapping(bytes32 => uint256)) groups;
        IPocoTypes.Category[] categories;
        /// Every worker that ever bonded to a workerpool, in joining order; never reordered,
        /// so that a position drawn for a committee always names the same worker.
        mapping(address => address[]) members;
        /// workerpool => worker => `MembershipWord` (zero: not a member).
        mapping(address => mapping(address => uint256)) memberships;
        /// Committee deals: the `DrawWord` written at match.
        mapping(bytes32 => uint256) draws;
        /// Committee deals: the random seed of the draw, once fixed.
        mapping(bytes32 => bytes32) drawSeeds;
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

/// @title Packing of an account word: [score 64][frozen 96][balance 96]
library AccountWord {
    uint256 internal constant AMOUNT_MAX = type(uint96).max;
    uint256 private constant AMOUNT_MASK = type(uint96).max;

    function balance(uint256 word) internal pure returns (uint256) {
        return word & AMOUNT_MASK;
    }

    function frozen(uint256 word) internal pure returns (uint256) {
        return (word >> 96) & AMOUNT_MASK;
    }

    function score(uint256 word) internal pure returns (uint256) {
        return word >> 192;
    }

    function pack(uint256 balance_, uint256 frozen_, uint256 score_)
        internal
        pure
        returns (uint256)
    {
        return balance_ | (frozen_ << 96) | (score_ << 192);
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

/// @title Packing of a pool membership word: [leftAt 40][position + 1 64]
library MembershipWord {
    /// Position of the worker in the pool's member list.
    function position(uint256 word) internal pure returns (uint256) {
        return (word & type(uint64).max) - 1;
    }

    /// When the worker asked to leave (zero while it stays).
    function leftAt(uint256 word) internal pure returns (uint256) {
        return word >> 64;
    }

    function pack(uint256 position_, uint256 leftAt_) internal pure returns (uint256) {
        return (position_ + 1) | (leftAt_ << 64);
    }
}

/// @title Packing of a committee deal's draw word: [match block 64][members at match 64]
library DrawWord {
    /// How many members the pool had at match: only they can be drawn.
    function memberCount(uint256 word) internal pure returns (uint256) {
        return word & type(uint64).max;
    }

    /// The block of the match, whose hash seeds the draw.
    function matchBlock(uint256 word) internal pure returns (uint256) {
        return word >> 64;
    }

    function pack(uint256 memberCount_, uint256 matchBlock_) internal pure returns (uint256) {
        return memberCount_ | (matchBlock_ << 64);
    }
}
