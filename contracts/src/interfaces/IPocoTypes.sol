// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title The data types of the poco protocol
/// @notice Order structs are wire-compatible with iExec PoCo v5: same fields, same order, same
/// EIP-712 type strings. The deal is ours: it is committed on-chain as a hash and passed back in
/// calldata by every task-lifecycle call, which keeps matching and the lifecycle cheap.
interface IPocoTypes {
    struct AppOrder {
        address app;
        uint256 appprice;
        uint256 volume;
        bytes32 tag;
        address datasetrestrict;
        address workerpoolrestrict;
        address requesterrestrict;
        bytes32 salt;
        bytes sign;
    }

    struct DatasetOrder {
        address dataset;
        uint256 datasetprice;
        uint256 volume;
        bytes32 tag;
        address apprestrict;
        address workerpoolrestrict;
        address requesterrestrict;
        bytes32 salt;
        bytes sign;
    }

    struct WorkerpoolOrder {
        address workerpool;
        uint256 workerpoolprice;
        uint256 volume;
        bytes32 tag;
        uint256 category;
        uint256 trust;
        address apprestrict;
        address datasetrestrict;
        address requesterrestrict;
        bytes32 salt;
        bytes sign;
    }

    struct RequestOrder {
        address app;
        uint256 appmaxprice;
        address dataset;
        uint256 datasetmaxprice;
        address workerpool;
        uint256 workerpoolmaxprice;
        address requester;
        uint256 volume;
        bytes32 tag;
        uint256 category;
        uint256 trust;
        address beneficiary;
        address callback;
        string params;
        bytes32 salt;
        bytes sign;
    }

    /// @notice What `manage*Order` does with an order.
    enum OrderOperation {
        /// Presign: record the owner as signer, for owners that cannot sign (contracts).
        SIGN,
        /// Close: consume the whole volume so that the order can never be matched again.
        CLOSE
    }

    struct AppOrderOperation {
        AppOrder order;
        OrderOperation operation;
        bytes sign;
    }

    struct DatasetOrderOperation {
        DatasetOrder order;
        OrderOperation operation;
        bytes sign;
    }

    struct WorkerpoolOrderOperation {
        WorkerpoolOrder order;
        OrderOperation operation;
        bytes sign;
    }

    struct RequestOrderOperation {
        RequestOrder order;
        OrderOperation operation;
        bytes sign;
    }

    /// @notice The EIP-712 domain, as returned by `domain()` and hashed into the separator.
    struct EIP712Domain {
        string name;
        string version;
        uint256 chainId;
        address verifyingContract;
    }

    /// @notice A deal: everything agreed at match time. Written once as
    /// `keccak256(abi.encode(deal))` under its id, emitted in full in `DealCreated`, and passed
    /// back by the task-lifecycle calls, which check it against the stored hash.
    /// `dealid = keccak256(abi.encodePacked(requestHash, botFirst))`.
    struct Deal {
        /// EIP-712 digest of the request order; with `botFirst` it gives the deal id.
        bytes32 requestHash;
        address app;
        address appOwner;
        uint256 appPrice;
        /// Zero for a deal without a dataset (then owner and price are zero too).
        address dataset;
        address datasetOwner;
        uint256 datasetPrice;
        address workerpool;
        /// The workerpool owner at match time: signs authorizations, finalizes, is paid.
        address scheduler;
        uint256 workerpoolPrice;
        address requester;
        /// Who paid for the deal (the requester, unless sponsored).
        address sponsor;
        address beneficiary;
        address callback;
        /// Combined demand: app tag | dataset tag without TEE framework bits | request tag.
        bytes32 tag;
        uint256 category;
        /// `max(request.trust, 1)`.
        uint256 trust;
        /// Block timestamp at match; every deadline counts from here.
        uint256 startTime;
        /// The category's time reference T, in seconds.
        uint256 timeref;
        /// Task indices of this deal are `[botFirst, botFirst + botSize)` (request-relative).
        uint256 botFirst;
        uint256 botSize;
        /// Stake each worker locks per contribution (snapshot of the pool policy).
        uint256 workerStake;
        /// Percentage of the workers' reward kept by the scheduler (snapshot of the pool policy).
        uint256 schedulerRewardRatio;
        /// keccak256 of the request's `params` string (the string itself is in `DealCreated`).
        bytes32 paramsHash;
    }

    enum TaskStatus {
        UNSET,
        ACTIVE,
        REVEALING,
        COMPLETED,
        FAILED
    }

    enum ContributionStatus {
        UNSET,
        CONTRIBUTED,
        PROVED,
        REJECTED
    }

    /// @notice The on-chain state of a task, as returned by `viewTask`.
    struct Task {
        TaskStatus status;
        uint256 contributors;
        uint256 reveals;
        uint256 winners;
        uint256 revealDeadline;
        /// 1 + the sum of all group weights (the denominator of the credibility).
        uint256 consensusTotal;
        /// The revealed result digest, set at finalize.
        bytes32 resultDigest;
    }

    /// @notice A worker's contribution to a task, as returned by `viewContribution`.
    /// Only prefixes of the result hash and seal are stored: 120 bits each bind the worker to
    /// its answer as firmly as the full hashes for any practical purpose.
    struct Contribution {
        ContributionStatus status;
        /// floor(log2(worker weight)), at least 1: the worker's share in the reward split.
        uint256 weight;
        bytes15 resultHashPrefix;
        bytes15 resultSealPrefix;
    }

    /// @notice The consensus group of one result hash, as returned by `viewGroup`.
    struct Group {
        /// Product of the weights of the workers who voted for this hash.
        uint256 weight;
        /// How many workers voted for it.
        uint256 size;
        /// Whether this hash is the task's consensus.
        bool consensus;
    }

    struct Category {
        string name;
        string description;
        uint256 workClockTimeRef;
    }

    /// @notice A worker's membership of a workerpool, as returned by `viewMembership`.
    struct Membership {
        /// In the pool's active set: drawn for committee deals matched now.
        bool active;
        /// Its position in the active set (its last one, once it left).
        uint256 position;
        /// What is left of its bond, frozen in its account.
        uint256 bond;
        /// When it left or was expelled (zero while active): the bond is released
        /// `memberExitDelay()` later.
        uint256 leftAt;
    }

    /// @notice A committee deal's draw, as returned by `viewDraw`.
    struct Draw {
        /// Active members of the pool at match: seats are drawn among positions below it.
        uint256 memberCount;
        /// The pool's membership epoch at match: each position resolves to its holder then.
        uint256 epoch;
        /// The block whose hash seeds the draw.
        uint256 seedBlock;
        /// The seed, once fixed (zero before).
        bytes32 seed;
    }

    /// @notice iExec v3 naming of an escrow account: `stake` is the free balance.
    struct Account {
        uint256 stake;
        uint256 locked;
    }
}
