// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Every way a poco call can be refused
/// @notice One custom error per failure. The matching errors are listed in the order
/// `matchOrders` checks them; the code in brackets is the rule number the off-chain matching
/// function reports for the same failure (iExec's `iExecV5-matchOrders-0xNN` numbering, with
/// poco's own rules in the gaps).
interface IPocoErrors {
    // ---------------------------------------------------------------- matching: compatibility
    /// [0x00] The request asks for another category than the workerpool serves.
    error CategoryMismatch(uint256 requested, uint256 offered);
    /// [0x01] The category does not exist.
    error UnknownCategory(uint256 category);
    /// [0x02] The request wants more trust than the workerpool agrees to deliver.
    error TrustNotOffered(uint256 requested, uint256 offered);
    /// [0x08] The request's trust is above 2^64 - 1.
    error TrustOutOfRange(uint256 trust);
    /// [0x03] The app price is above the request's maximum.
    error AppPriceTooHigh(uint256 price, uint256 maxPrice);
    /// [0x04] The dataset price is above the request's maximum.
    error DatasetPriceTooHigh(uint256 price, uint256 maxPrice);
    /// [0x05] The workerpool price is above the request's maximum.
    error WorkerpoolPriceTooHigh(uint256 price, uint256 maxPrice);
    /// [0x09] A price is above 2^96 - 1 nRLC, more than can ever be held in an account.
    error PriceOutOfRange(uint256 price);
    /// [0x06] The deal needs tag bits that the workerpool does not offer.
    error TagNotOffered(bytes32 missing);
    /// [0x07] The dataset or the request needs TEE but the app order does not carry the TEE bit.
    error TeeAppRequired();
    /// [0x0a] A committee deal asks for more trust than the largest committee serves.
    error TrustBeyondCommittee(uint256 trust, uint256 maxTrust);
    /// [0x0b] A committee request must name the workerpool it is matched with: a committee is
    /// as honest as its pool's members, and only the requester may choose them.
    error CommitteePoolNotChosen(address requested, address workerpool);

    // ---------------------------------------------------------------- matching: restrictions
    /// [0x10] The request names another app than the app order.
    error AppMismatch(address requested, address offered);
    /// [0x11] The request names another dataset than the dataset order.
    error DatasetMismatch(address requested, address offered);
    /// [0x12] The request's workerpool restriction excludes this workerpool.
    error RequestWorkerpoolRestricted(address restriction, address workerpool);
    /// [0x13] The app order's dataset restriction excludes this dataset.
    error AppDatasetRestricted(address restriction, address dataset);
    /// [0x14] The app order's workerpool restriction excludes this workerpool.
    error AppWorkerpoolRestricted(address restriction, address workerpool);
    /// [0x15] The app order's requester restriction excludes this requester.
    error AppRequesterRestricted(address restriction, address requester);
    /// [0x16] The dataset order's app restriction excludes this app.
    error DatasetAppRestricted(address restriction, address app);
    /// [0x17] The dataset order's workerpool restriction excludes this workerpool.
    error DatasetWorkerpoolRestricted(address restriction, address workerpool);
    /// [0x18] The dataset order's requester restriction excludes this requester.
    error DatasetRequesterRestricted(address restriction, address requester);
    /// [0x19] The workerpool order's app restriction excludes this app.
    error WorkerpoolAppRestricted(address restriction, address app);
    /// [0x1a] The workerpool order's dataset restriction excludes this dataset.
    error WorkerpoolDatasetRestricted(address restriction, address dataset);
    /// [0x1b] The workerpool order's requester restriction excludes this requester.
    error WorkerpoolRequesterRestricted(address restriction, address requester);

    // ---------------------------------------------------------------- matching: authenticity
    /// [0x20] The app is not in the app registry.
    error AppNotRegistered(address app);
    /// [0x21] The app order is neither signed nor presigned by the app's current owner.
    error InvalidAppOrderSignature(address owner);
    /// [0x30] The dataset is not in the dataset registry.
    error DatasetNotRegistered(address dataset);
    /// [0x31] The dataset order is neither signed nor presigned by the dataset's current owner.
    error InvalidDatasetOrderSignature(address owner);
    /// [0x40] The workerpool is not in the workerpool registry.
    error WorkerpoolNotRegistered(address workerpool);
    /// [0x41] The workerpool order is neither signed nor presigned by the pool's current owner.
    error InvalidWorkerpoolOrderSignature(address owner);
    /// [0x50] The request order is neither signed nor presigned by its requester.
    error InvalidRequestOrderSignature(address requester);

    // ---------------------------------------------------------------- matching: volume, funds
    /// [0x60] One of the orders has no volume left (consumed or closed).
    error NoVolumeLeft();
    /// [0x70] The sponsor's free balance does not cover the deal's price.
    error SponsorBalanceTooLow(address sponsor, uint256 needed, uint256 available);
    /// [0x71] The scheduler's free balance does not cover its stake on the deal.
    error SchedulerStakeTooLow(address scheduler, uint256 needed, uint256 available);
    /// [0x80] A committee deal on a workerpool with too few active members (checked last:
    /// orders do not say who the members are).
    error CommitteeTooSmall(address workerpool, uint256 activeMembers, uint256 needed);

    // ---------------------------------------------------------------- escrow
    /// An amount does not fit in an account (above 2^96 - 1 nRLC).
    error AmountOutOfRange(uint256 amount);
    /// A withdrawal or lock asks for more than the free balance.
    error InsufficientBalance(address account, uint256 needed, uint256 available);
    /// `receiveApproval` was not called by the RLC token itself.
    error UnauthorizedTokenCall(address caller);
    /// `receiveApproval` carried a call other than `matchOrders`.
    error UnsupportedOperation(bytes4 selector);
    /// Deposit-and-match carried a request order of another requester.
    error CallerIsNotTheRequester(address caller, address requester);
    /// The zero address cannot hold an account.
    error ZeroAddress();
    /// Nobody may deposit for the burn account: what it holds is burned, not owned.
    error BurnAccountDeposit();

    // ---------------------------------------------------------------- order management
    /// `manage*Order` by someone who is neither the order owner nor holds its signature.
    error NotOrderOwner(address owner);

    // ---------------------------------------------------------------- categories
    /// A category's time reference must be positive and at most 60,480 s (a tenth of a leaving
    /// member's bond delay, so that every deal ends while the bonds of its seats are held).
    error InvalidTimeRef(uint256 timeref);

    // ---------------------------------------------------------------- task lifecycle
    /// The deal passed does not match the hash stored at match time (or the deal does not exist).
    error UnknownDeal(bytes32 dealid);
    /// The task index is outside the deal's bag of tasks.
    error TaskIndexOutOfRange(uint256 idx, uint256 botFirst, uint256 botSize);
    /// The task is not in the status the call needs.
    error WrongTaskStatus(bytes32 taskid, uint8 status);
    /// The contribution window (start + 7T) is over.
    error ContributionDeadlineReached(bytes32 taskid, uint256 deadline);
    /// The reveal window is over.
    error RevealDeadlineReached(bytes32 taskid, uint256 deadline);
    /// The reveal window is not over yet.
    error RevealDeadlineNotReached(bytes32 taskid, uint256 deadline);
    /// The final deadline (start + 10T) is over: the task can only be claimed.
    error FinalDeadlineReached(bytes32 taskid, uint256 deadline);
    /// The final deadline (start + 10T) is not reached: the task cannot be claimed yet.
    error FinalDeadlineNotReached(bytes32 taskid, uint256 deadline);
    /// The worker already contributed to this task.
    error AlreadyContributed(bytes32 taskid, address worker);
    /// The task already has the maximum number of contributors.
    error TooManyContributors(bytes32 taskid, uint256 max);
    /// A TEE deal needs an enclave challenge.
    error EnclaveChallengeRequired(bytes32 taskid);
    /// The authorization is not the scheduler's signature of (worker, taskid, enclave challenge).
    error InvalidAuthorization(bytes32 taskid, address worker);
    /// The enclave signature does not come from the enclave challenge.
    error InvalidEnclaveSignature(bytes32 taskid, address enclaveChallenge);
    /// The result hash is zero.
    error EmptyResultHash();
    /// The running consensus weight no longer fits the task's storage.
    error ConsensusOverflow(bytes32 taskid);
    /// The caller has no contribution in the status the call needs.
    error NoContribution(bytes32 taskid, address worker);
    /// The revealed digest does not open the worker's contribution.
    error RevealMismatch(bytes32 taskid, address worker);
    /// The digest (or hash) given is not the task's consensus.
    error NotConsensus(bytes32 taskid, bytes32 resultHash);
    /// Only the deal's scheduler may call this.
    error OnlyScheduler(address scheduler);
    /// Finalize before every winner revealed and before the reveal deadline, or with no reveal.
    error NotEnoughReveals(bytes32 taskid, uint256 reveals, uint256 winners);
    /// Reopen while someone revealed.
    error AlreadyRevealed(bytes32 taskid);
    /// The results callback data does not match the deal's callback rules.
    error InvalidResultsCallback(bytes32 taskid);
    /// The contributor list passed is not the task's: wrong length, unsorted, or a stranger.
    error WrongContributorList(bytes32 taskid);
    /// `contributeAndFinalize` on a task that already has contributions (after a reopen).
    error TaskHasContributions(bytes32 taskid);
    /// `contributeAndFinalize` on a deal with trust above 1.
    error TrustNotOne(uint256 trust);
    /// Not enough gas left to give the callback its full gas allowance.
    error CallbackGasTooLow(uint256 gasLeft);
    /// Array arguments of different lengths.
    error LengthMismatch();

    // ---------------------------------------------------------------- committees
    /// The worker is already a member of the workerpool.
    error AlreadyMember(address workerpool, address worker);
    /// The worker is not a member of the workerpool (or has already asked to leave).
    error NotMember(address workerpool, address worker);
    /// The member's bond stays frozen until `until`.
    error BondLocked(address workerpool, address worker, uint256 until);
    /// The committee of a deal cannot be drawn before block `readyAt`.
    error DrawNotReady(bytes32 dealid, uint256 readyAt);
    /// The hash of the block that seeds the committee can no longer be read: `drawCommittee`
    /// seeds the deal again from a later block.
    error DrawExpired(bytes32 dealid);
    /// The worker holds no seat in the task's committee.
    error NotDrawn(bytes32 taskid, address worker);

    // ---------------------------------------------------------------- registries
    /// A workerpool policy out of bounds.
    error InvalidPolicy(uint256 workerStakeRatio, uint256 schedulerRewardRatio);
    /// Only the owner of the asset may do this.
    error NotAssetOwner(address asset, address caller);
    /// The asset is not registered here.
    error UnknownAsset(address asset);
}
