// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoBase} from "./PocoBase.sol";
import {
    AccountWord,
    TaskWord,
    ContributionWord,
    GroupWord,
    MembershipWord,
    DrawWord
} from "./libs/PocoStorage.sol";
import {Signatures} from "./libs/Signatures.sol";

/// @notice Implemented by contracts that want a deal's results delivered on-chain.
interface IOracleConsumer {
    function receiveResult(bytes32 taskid, bytes calldata results) external;
}

/// @title The task lifecycle of poco: initialize, contribute, reveal, reopen, finalize, claim
/// @notice Runs only through `Poco`'s fallback (delegatecall), on `Poco`'s storage. Every call
/// about a task brings its deal, checked against the hash stored at match time, so the deal
/// costs one storage word however many calls it takes. The rules and why they hold are in
/// docs/protocol.md; the ones that close an attack are summed up here.
///
/// Consensus (Sarmenta's credibility, as in iExec PoCo): a worker of score s weighs
/// w = max(s / 3, 3) - 1; a result's group weighs the product of its voters' weights; the total
/// is 1 + the sum of all groups; a result is the consensus once group * trust > total * (trust - 1).
/// Votes are grouped by the 120-bit prefix of their result hash, which is what a contribution
/// stores and what a reveal opens: a vote for a look-alike hash (same prefix) is a vote for
/// the same result, and a vote with another prefix can never be revealed as the consensus.
///
/// Contributors are not kept in a list: the calls that settle a task (finalize, claim, reopen)
/// take the list as an argument and check it against the stored contributions (sorted, no
/// stranger, none missing), and a task takes at most `MAX_CONTRIBUTORS` contributions, so every
/// loop is bounded.
///
/// Money: a successful task pays its providers and its proved workers, and the stakes of wrong
/// or silent workers go to the same task's reward. A claimed task refunds its sponsor; what it
/// seizes (the scheduler's stake, the stakes of wrong or silent voters, the bonds of silent
/// seats) goes to the task's proved workers when there are some, and is burned otherwise. No
/// seized amount is ever kept for later tasks: whoever finalizes next could be a self-dealer.
/// A score rises only on a replicated task, with at least `MIN_SCORED_STAKE` at risk, and at
/// most once per `SCORE_PERIOD`.
///
/// Committee deals (tag bit 9) take the choice of contributors from the scheduler: a task has
/// `_committeeSize(trust)` seats, seat j goes to the member at position
/// keccak256(seed, taskid, j) mod n, where n is the pool's active member count at match and a
/// position resolves to whoever held it at the match's membership epoch. A result is the
/// consensus once its voters hold a majority of the seats. The seed is the hash of the block
/// `committeeSeedDelay()` blocks after the match: it does not exist when the match is made,
/// so no matcher can try the draw and revert, nor choose who produces that block. It is read
/// with `blockhash` or, beyond 256 blocks, from the EIP-2935 history contract; when it cannot
/// be read any more, `drawCommittee` (or `initialize`) seeds the deal again from a later
/// block, so a deal never dies of the window. A seat needs no scheduler authorization (except
/// in TEE deals, where the authorization binds the enclave): a seat holder's silence is its
/// own, and a seat that is wrong, or silent while a task fails for want of a majority, costs
/// its member `SEAT_PENALTY` of its bond and its membership.
contract PocoTasks is PocoBase {
    using AccountWord for uint256;
    using TaskWord for uint256;
    using ContributionWord for uint256;
    using GroupWord for uint256;
    using MembershipWord for uint256;
    using DrawWord for uint256;

    uint8 private constant UNSET = uint8(TaskStatus.UNSET);
    uint8 private constant ACTIVE = uint8(TaskStatus.ACTIVE);
    uint8 private constant REVEALING = uint8(TaskStatus.REVEALING);
    uint8 private constant COMPLETED = uint8(TaskStatus.COMPLETED);
    uint8 private constant FAILED = uint8(TaskStatus.FAILED);

    uint8 private constant CONTRIBUTED = uint8(ContributionStatus.CONTRIBUTED);
    uint8 private constant PROVED = uint8(ContributionStatus.PROVED);
    uint8 private constant REJECTED = uint8(ContributionStatus.REJECTED);

    /// A freshly initialized task: ACTIVE, consensus total 1 (the "every answer is wrong" term).
    uint256 private constant NEW_TASK = uint256(ACTIVE) | (1 << 72);

    /// EIP-2935: the system contract that serves the hashes of the last 8191 blocks.
    address private constant BLOCK_HASH_HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;
    uint256 private constant BLOCK_HASH_HISTORY_WINDOW = 8191;

    /// Blocks between a committee deal's match and the block whose hash seeds its draw.
    uint256 private immutable _seedDelay;

    constructor(uint256 seedDelay) {
        _seedDelay = seedDelay;
    }

    function committeeSeedDelay() external view returns (uint256) {
        return _seedDelay;
    }

    // ================================================================== views

    function viewTask(bytes32 taskid) external view returns (Task memory) {
        uint256 word = _layout().tasks[taskid];
        return Task(
            TaskStatus(word.taskStatus()),
            word.contributors(),
            word.reveals(),
            word.winners(),
            word.revealDeadline(),
            word.total(),
            _layout().resultDigests[taskid]
        );
    }

    function viewContribution(bytes32 taskid, address worker)
        external
        view
        returns (Contribution memory)
    {
        uint256 word = _layout().contributions[taskid][worker];
        return Contribution(
            ContributionStatus(word.contributionStatus()),
            word.logWeight(),
            bytes15(uint120(word.hashPrefix())),
            bytes15(uint120(word.sealPrefix()))
        );
    }

    /// The group of `resultHash`, which is the group of every hash sharing its 120-bit prefix.
    function viewGroup(bytes32 taskid, bytes32 resultHash) external view returns (Group memory) {
        uint256 word = _layout().groups[taskid][ContributionWord.prefix(resultHash)];
        return Group(word.groupWeight(), word.groupSize(), word.isConsensus());
    }

    function resultFor(bytes32 taskid) external view returns (bytes memory) {
        uint8 status = _layout().tasks[taskid].taskStatus();
        if (status != COMPLETED) revert WrongTaskStatus(taskid, status);
        return _layout().resultsCallbacks[taskid];
    }

    function viewCommittee(Deal calldata deal, uint256 idx)
        external
        view
        returns (address[] memory seats)
    {
        bytes32 dealid = _checkDeal(deal);
        bytes32 taskid = _taskOf(deal, dealid, idx);
        if (deal.tag & COMMITTEE_BIT == 0) return seats;
        bytes32 seed = _layout().drawSeeds[dealid];
        if (seed == 0) seed = _readySeed(dealid);
        uint256 draw = _layout().draws[dealid];
        seats = new address[](_committeeSize(deal.trust));
        for (uint256 j; j < seats.length; ++j) {
            seats[j] = _holderAt(
                deal.workerpool, _seat(seed, taskid, j, draw.memberCount()), draw.epoch()
            );
        }
    }

    function viewDraw(bytes32 dealid) external view returns (Draw memory) {
        uint256 word = _layout().draws[dealid];
        return Draw(word.memberCount(), word.epoch(), word.seedBlock(), _layout().drawSeeds[dealid]);
    }

    // ================================================================== initialize

    function initialize(Deal calldata deal, uint256 idx) external returns (bytes32 taskid) {
        bytes32 dealid = _checkDeal(deal);
        _drawIfReady(deal, dealid);
        taskid = _initialize(deal, dealid, idx);
    }

    /// Initializes the tasks of `indexes` that are not initialized yet (a task a worker already
    /// initialized by contributing is skipped, so a batch never fails for it).
    function initializeArray(Deal calldata deal, uint256[] calldata indexes) external {
        bytes32 dealid = _checkDeal(deal);
        _drawIfReady(deal, dealid);
        for (uint256 i; i < indexes.length; ++i) {
            _initialize(deal, dealid, indexes[i], false);
        }
    }

    function _initialize(Deal calldata deal, bytes32 dealid, uint256 idx)
        private
        returns (bytes32 taskid)
    {
        return _initialize(deal, dealid, idx, true);
    }

    function _initialize(Deal calldata deal, bytes32 dealid, uint256 idx, bool strict)
        private
        returns (bytes32 taskid)
    {
        taskid = _taskOf(deal, dealid, idx);
        uint256 deadline = _contributionDeadline(deal);
        if (block.timestamp >= deadline) revert ContributionDeadlineReached(taskid, deadline);
        mapping(bytes32 => uint256) storage tasks = _layout().tasks;
        uint256 word = tasks[taskid];
        if (word != 0) {
            if (strict) revert WrongTaskStatus(taskid, word.taskStatus());
            return taskid;
        }
        tasks[taskid] = NEW_TASK;
        emit TaskInitialize(taskid, deal.workerpool);
    }

    // ================================================================== contribute

    /// Commits a worker's vote. An uninitialized task of the deal is initialized on the way.
    function contribute(
        Deal calldata deal,
        uint256 idx,
        bytes32 resultHash,
        bytes32 resultSeal,
        address enclaveChallenge,
        bytes calldata enclaveSign,
        bytes calldata authorizationSign
    ) external {
        bytes32 dealid = _checkDeal(deal);
        bytes32 taskid = _taskOf(deal, dealid, idx);
        uint256 task = _openTask(deal, taskid);
        if (task.contributors() >= MAX_CONTRIBUTORS) {
            revert TooManyContributors(taskid, MAX_CONTRIBUTORS);
        }
        if (resultHash == 0) revert EmptyResultHash();
        _checkContributor(
            deal,
            taskid,
            keccak256(abi.encodePacked(resultHash, resultSeal)),
            enclaveChallenge,
            enclaveSign,
            authorizationSign
        );
        // A committee member votes with its seats, and is paid by them.
        uint256 seats = deal.tag & COMMITTEE_BIT == 0 ? 0 : _seatsOf(deal, dealid, taskid);
        uint256 weight = _lockStake(msg.sender, deal.workerStake);
        uint256 rewardWeight = seats == 0 ? _log2(weight) : seats;
        _layout().contributions[taskid][msg.sender] =
            ContributionWord.pack(CONTRIBUTED, rewardWeight, resultHash, resultSeal);
        emit TaskContribute(taskid, msg.sender, resultHash);
        _vote(deal, taskid, task, resultHash, seats == 0 ? weight : seats);
    }

    /// The task word of an ACTIVE task still open to contributions (initialized if UNSET).
    function _openTask(Deal calldata deal, bytes32 taskid) private view returns (uint256 task) {
        task = _layout().tasks[taskid];
        if (task == 0) task = NEW_TASK;
        else if (task.taskStatus() != ACTIVE) revert WrongTaskStatus(taskid, task.taskStatus());
        uint256 deadline = _contributionDeadline(deal);
        if (block.timestamp >= deadline) revert ContributionDeadlineReached(taskid, deadline);
        if (_layout().contributions[taskid][msg.sender] != 0) {
            revert AlreadyContributed(taskid, msg.sender);
        }
    }

    /// The scheduler authorized the caller (a committee seat is its own authorization, except
    /// in a TEE deal); the enclave, if any, signed the result.
    function _checkContributor(
        Deal calldata deal,
        bytes32 taskid,
        bytes32 enclaveMessage,
        address enclaveChallenge,
        bytes calldata enclaveSign,
        bytes calldata authorizationSign
    ) private view {
        bool tee = deal.tag & TEE_BIT != 0;
        if (tee && enclaveChallenge == address(0)) revert EnclaveChallengeRequired(taskid);
        if (tee || deal.tag & COMMITTEE_BIT == 0) {
            bytes32 authorization = Signatures.toEthSignedMessageHash(
                keccak256(abi.encodePacked(msg.sender, taskid, enclaveChallenge))
            );
            if (!Signatures.isValid(deal.scheduler, authorization, authorizationSign)) {
                revert InvalidAuthorization(taskid, msg.sender);
            }
        }
        if (
            enclaveChallenge != address(0)
                && Signatures.recover(
                        Signatures.toEthSignedMessageHash(enclaveMessage), enclaveSign
                    ) != enclaveChallenge
        ) revert InvalidEnclaveSignature(taskid, enclaveChallenge);
    }

    /// Locks the worker's stake and returns its weight w = max(score / 3, 3) - 1.
    function _lockStake(address worker, uint256 stake) private returns (uint256 weight) {
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[worker];
        uint256 balance = word.balance();
        if (balance < stake) revert InsufficientBalance(worker, stake, balance);
        uint256 frozen = word.frozen() + stake;
        if (frozen > AccountWord.AMOUNT_MAX) revert AmountOutOfRange(frozen);
        accounts[worker] = word.withAmounts(balance - stake, frozen);
        weight = word.score() / 3;
        if (weight < 3) weight = 3;
        weight -= 1;
    }

    /// Adds a vote of `weight` for `resultHash`; opens the reveal phase on consensus. A group
    /// weighs the product of its voters' weights, or in a committee deal the sum of their seats.
    function _vote(
        Deal calldata deal,
        bytes32 taskid,
        uint256 task,
        bytes32 resultHash,
        uint256 weight
    ) private {
        mapping(uint256 => uint256) storage groups = _layout().groups[taskid];
        uint256 key = ContributionWord.prefix(resultHash);
        uint256 group = groups[key];
        uint256 before = group.groupWeight();
        bool committee = deal.tag & COMMITTEE_BIT != 0;
        uint256 after_ = committee || before == 0 ? before + weight : before * weight;
        uint256 total = task.total() + after_ - before;
        if (total > TaskWord.TOTAL_MAX) revert ConsensusOverflow(taskid);
        uint256 size = group.groupSize() + 1;
        uint256 trust = deal.trust;

        uint8 status = ACTIVE;
        uint256 winners;
        uint256 revealDeadline;
        bool consensus =
            committee ? after_ * 2 > _committeeSize(trust) : after_ * trust > total * (trust - 1);
        if (consensus) {
            status = REVEALING;
            winners = size;
            revealDeadline = block.timestamp + REVEAL_DEADLINE_RATIO * deal.timeref;
            emit TaskConsensus(taskid, resultHash);
        }
        groups[key] = GroupWord.pack(consensus, size, after_);
        _layout().tasks[taskid] =
            TaskWord.pack(status, task.contributors() + 1, 0, winners, revealDeadline, total);
    }

    // ================================================================== reveal

    /// Opens a winning contribution: the digest must give both its hash and its seal.
    function reveal(bytes32 taskid, bytes32 resultDigest) external {
        mapping(bytes32 => uint256) storage tasks = _layout().tasks;
        uint256 task = tasks[taskid];
        if (task.taskStatus() != REVEALING) revert WrongTaskStatus(taskid, task.taskStatus());
        if (block.timestamp >= task.revealDeadline()) {
            revert RevealDeadlineReached(taskid, task.revealDeadline());
        }
        mapping(address => uint256) storage contributions = _layout().contributions[taskid];
        uint256 contribution = contributions[msg.sender];
        if (contribution.contributionStatus() != CONTRIBUTED) {
            revert NoContribution(taskid, msg.sender);
        }
        bytes32 resultHash = keccak256(abi.encodePacked(taskid, resultDigest));
        bytes32 resultSeal = keccak256(abi.encodePacked(msg.sender, taskid, resultDigest));
        uint256 key = ContributionWord.prefix(resultHash);
        if (
            contribution.hashPrefix() != key
                || contribution.sealPrefix() != ContributionWord.prefix(resultSeal)
        ) revert RevealMismatch(taskid, msg.sender);
        if (!_layout().groups[taskid][key].isConsensus()) revert NotConsensus(taskid, resultHash);
        contributions[msg.sender] = contribution.withStatus(PROVED);
        tasks[taskid] = task + (1 << 16); // one more reveal
        emit TaskReveal(taskid, msg.sender, resultDigest);
    }

    // ================================================================== reopen

    /// When nobody revealed in time, rejects the consensus and its voters and reopens the task.
    /// `winners` are the voters of the consensus, sorted by address.
    function reopen(Deal calldata deal, uint256 idx, bytes32 consensus, address[] calldata winners)
        external
    {
        bytes32 taskid = _taskOf(deal, _checkDeal(deal), idx);
        if (msg.sender != deal.scheduler) revert OnlyScheduler(deal.scheduler);
        mapping(bytes32 => uint256) storage tasks = _layout().tasks;
        uint256 task = tasks[taskid];
        if (task.taskStatus() != REVEALING) revert WrongTaskStatus(taskid, task.taskStatus());
        if (block.timestamp < task.revealDeadline()) {
            revert RevealDeadlineNotReached(taskid, task.revealDeadline());
        }
        uint256 finalDeadline = _finalDeadline(deal);
        if (block.timestamp >= finalDeadline) revert FinalDeadlineReached(taskid, finalDeadline);
        if (task.reveals() != 0) revert AlreadyRevealed(taskid);
        mapping(uint256 => uint256) storage groups = _layout().groups[taskid];
        uint256 hashPrefix = ContributionWord.prefix(consensus);
        uint256 group = groups[hashPrefix];
        if (!group.isConsensus()) revert NotConsensus(taskid, consensus);
        if (winners.length != group.groupSize()) revert WrongContributorList(taskid);

        mapping(address => uint256) storage contributions = _layout().contributions[taskid];
        address previous;
        for (uint256 i; i < winners.length; ++i) {
            address winner = winners[i];
            uint256 contribution = contributions[winner];
            if (
                winner <= previous || contribution.contributionStatus() != CONTRIBUTED
                    || contribution.hashPrefix() != hashPrefix
            ) revert WrongContributorList(taskid);
            contributions[winner] = contribution.withStatus(REJECTED);
            previous = winner;
        }
        delete groups[hashPrefix];
        tasks[taskid] =
            TaskWord.pack(ACTIVE, task.contributors(), 0, 0, 0, task.total() - group.groupWeight());
        emit TaskReopen(taskid);
    }

    // ================================================================== finalize

    /// Closes a task on its consensus: pays the providers and the proved workers, seizes the
    /// stakes of the others. `contributors` are all the task's contributors, sorted by address.
    function finalize(
        Deal calldata deal,
        uint256 idx,
        bytes32 resultDigest,
        bytes calldata results,
        bytes calldata resultsCallback,
        address[] calldata contributors
    ) external {
        bytes32 taskid = _taskOf(deal, _checkDeal(deal), idx);
        if (msg.sender != deal.scheduler) revert OnlyScheduler(deal.scheduler);
        mapping(bytes32 => uint256) storage tasks = _layout().tasks;
        uint256 task = tasks[taskid];
        if (task.taskStatus() != REVEALING) revert WrongTaskStatus(taskid, task.taskStatus());
        uint256 finalDeadline = _finalDeadline(deal);
        if (block.timestamp >= finalDeadline) revert FinalDeadlineReached(taskid, finalDeadline);
        if (
            task.reveals() != task.winners()
                && (task.reveals() == 0 || block.timestamp < task.revealDeadline())
        ) revert NotEnoughReveals(taskid, task.reveals(), task.winners());
        bytes32 resultHash = keccak256(abi.encodePacked(taskid, resultDigest));
        if (!_layout().groups[taskid][ContributionWord.prefix(resultHash)].isConsensus()) {
            revert NotConsensus(taskid, resultHash);
        }
        _storeResult(deal, taskid, resultDigest, resultsCallback);
        tasks[taskid] = (task & ~uint256(0xff)) | COMPLETED;

        uint256 schedulerGain = _payProviders(deal);
        schedulerGain += _rewardWorkers(deal, taskid, task.contributors(), contributors);
        _credit(deal.scheduler, schedulerGain);

        emit TaskFinalize(taskid, results);
        _callback(deal, taskid, resultsCallback);
    }

    /// Pays the workers per protocol §5.4 and returns the scheduler's share of the reward. The
    /// stakes of wrong or silent voters, and in a committee deal the penalties of their seats,
    /// join the reward of this task.
    function _rewardWorkers(
        Deal calldata deal,
        bytes32 taskid,
        uint256 count,
        address[] calldata contributors
    ) private returns (uint256 schedulerShare) {
        uint256[] memory words = _contributionWords(taskid, count, contributors);
        uint256 stake = deal.workerStake;
        bool committee = deal.tag & COMMITTEE_BIT != 0;
        uint256 totalReward = deal.workerpoolPrice;
        uint256 totalWeight;
        for (uint256 i; i < words.length; ++i) {
            if (words[i].contributionStatus() == PROVED) {
                totalWeight += words[i].logWeight();
            } else {
                totalReward += _penalizeContribution(
                    deal, taskid, contributors[i], words[i].logWeight(), committee
                );
            }
        }
        uint256 workersReward = _percent(totalReward, 100 - deal.schedulerRewardRatio);
        bool scored = count > 1 && stake >= MIN_SCORED_STAKE;
        uint256 distributed;
        for (uint256 i; i < words.length; ++i) {
            if (words[i].contributionStatus() != PROVED) continue;
            address worker = contributors[i];
            uint256 reward = workersReward * words[i].logWeight() / totalWeight;
            distributed += reward;
            _settleWorker(worker, stake, stake + reward, scored);
            emit AccurateContribution(worker, taskid, reward);
        }
        schedulerShare = totalReward - distributed;
    }

    // ================================================================== contributeAndFinalize

    /// Trust-1 fast path: one authorized worker contributes, reveals and finalizes at once. No
    /// stake is locked and no score changes: the answer is not replicated.
    function contributeAndFinalize(
        Deal calldata deal,
        uint256 idx,
        bytes32 resultDigest,
        bytes calldata results,
        bytes calldata resultsCallback,
        address enclaveChallenge,
        bytes calldata enclaveSign,
        bytes calldata authorizationSign
    ) external {
        if (deal.trust != 1) revert TrustNotOne(deal.trust);
        bytes32 dealid = _checkDeal(deal);
        bytes32 taskid = _taskOf(deal, dealid, idx);
        uint256 task = _openTask(deal, taskid);
        if (task.contributors() != 0) revert TaskHasContributions(taskid);
        if (deal.tag & COMMITTEE_BIT != 0) _seatsOf(deal, dealid, taskid); // its single seat
        bytes32 resultHash = keccak256(abi.encodePacked(taskid, resultDigest));
        _checkContributor(
            deal,
            taskid,
            keccak256(
                abi.encodePacked(
                    resultHash, keccak256(abi.encodePacked(msg.sender, taskid, resultDigest))
                )
            ),
            enclaveChallenge,
            enclaveSign,
            authorizationSign
        );
        _storeResult(deal, taskid, resultDigest, resultsCallback);
        _layout().tasks[taskid] = TaskWord.pack(
            COMPLETED,
            1,
            1,
            1,
            block.timestamp + REVEAL_DEADLINE_RATIO * deal.timeref,
            task.total() + 1
        );

        uint256 workerReward = _percent(deal.workerpoolPrice, 100 - deal.schedulerRewardRatio);
        _credit(msg.sender, workerReward);
        _credit(deal.scheduler, _payProviders(deal) + deal.workerpoolPrice - workerReward);

        emit TaskContribute(taskid, msg.sender, resultHash);
        emit TaskFinalize(taskid, results);
        _callback(deal, taskid, resultsCallback);
    }

    // ================================================================== claim

    /// Fails a task that was not finalized by its final deadline: the sponsor is refunded. The
    /// scheduler's stake, the stakes of voters known to be wrong or silent and, in a committee
    /// deal, the penalties of their seats and of silent seats are seized: they go to the task's
    /// proved workers if it has some, and are burned otherwise. Anyone may call it.
    /// `contributors` are all the task's contributors, sorted.
    function claim(Deal calldata deal, uint256 idx, address[] calldata contributors) external {
        _claim(deal, _checkDeal(deal), idx, contributors);
    }

    function claimArray(
        Deal calldata deal,
        uint256[] calldata indexes,
        address[][] calldata contributors
    ) external {
        if (indexes.length != contributors.length) {
            revert LengthMismatch();
        }
        bytes32 dealid = _checkDeal(deal);
        for (uint256 i; i < indexes.length; ++i) {
            _claim(deal, dealid, indexes[i], contributors[i]);
        }
    }

    function _claim(
        Deal calldata deal,
        bytes32 dealid,
        uint256 idx,
        address[] calldata contributors
    ) private {
        bytes32 taskid = _taskOf(deal, dealid, idx);
        mapping(bytes32 => uint256) storage tasks = _layout().tasks;
        uint256 task = tasks[taskid];
        uint8 status = task.taskStatus();
        if (status != UNSET && status != ACTIVE && status != REVEALING) {
            revert WrongTaskStatus(taskid, status);
        }
        uint256 finalDeadline = _finalDeadline(deal);
        if (block.timestamp < finalDeadline) revert FinalDeadlineNotReached(taskid, finalDeadline);
        tasks[taskid] = (task & ~uint256(0xff)) | FAILED;

        _unlock(deal.sponsor, deal.appPrice + deal.datasetPrice + deal.workerpoolPrice);
        uint256 seized = _percent(deal.workerpoolPrice, WORKERPOOL_STAKE_RATIO);
        _seize(deal.scheduler, seized);

        uint256[] memory words = _contributionWords(taskid, task.contributors(), contributors);
        uint256 stake = deal.workerStake;
        bool committee = deal.tag & COMMITTEE_BIT != 0;
        uint256 provedWeight;
        for (uint256 i; i < words.length; ++i) {
            uint8 contribution = words[i].contributionStatus();
            // Once a consensus exists, every voter who did not prove it was wrong or silent.
            // Before it, only voters rejected by a reopen are known to have failed.
            if (contribution == PROVED) {
                provedWeight += words[i].logWeight();
            } else if (
                contribution == REJECTED || (status == REVEALING && contribution == CONTRIBUTED)
            ) {
                seized += _penalizeContribution(
                    deal, taskid, contributors[i], words[i].logWeight(), committee
                );
            } else {
                _settleWorker(contributors[i], stake, stake, false);
            }
        }
        // Seats nobody voted with, while others did, kept the task from a majority.
        if (committee && deal.tag & TEE_BIT == 0 && status == ACTIVE && words.length != 0) {
            seized += _penalizeSilentSeats(deal, dealid, taskid);
        }

        uint256 paid;
        for (uint256 i; i < words.length && provedWeight != 0; ++i) {
            if (words[i].contributionStatus() != PROVED) continue;
            uint256 reward = seized * words[i].logWeight() / provedWeight;
            paid += reward;
            _settleWorker(contributors[i], stake, stake + reward, false);
            emit AccurateContribution(contributors[i], taskid, reward);
        }
        _burn(seized - paid);
        emit TaskClaimed(taskid);
    }

    /// Seizes a wrong or silent voter's stake, cuts its score and, in a committee deal,
    /// penalizes its seats. Returns the amount seized.
    function _penalizeContribution(
        Deal calldata deal,
        bytes32 taskid,
        address worker,
        uint256 seats,
        bool committee
    ) private returns (uint256 seized) {
        seized = deal.workerStake;
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[worker];
        accounts[worker] = word.withAmounts(word.balance(), word.frozen() - seized)
            .withScore(word.score() * 2 / 3);
        if (committee) seized += _penalizeMember(deal.workerpool, worker, seats);
        emit FaultyContribution(worker, taskid);
    }

    /// Penalizes every seat of the task whose holder did not contribute. Returns the amount
    /// seized.
    function _penalizeSilentSeats(Deal calldata deal, bytes32 dealid, bytes32 taskid)
        private
        returns (uint256 seized)
    {
        bytes32 seed = _layout().drawSeeds[dealid];
        uint256 draw = _layout().draws[dealid];
        mapping(address => uint256) storage contributions = _layout().contributions[taskid];
        uint256 size = _committeeSize(deal.trust);
        for (uint256 j; j < size; ++j) {
            address holder = _holderAt(
                deal.workerpool, _seat(seed, taskid, j, draw.memberCount()), draw.epoch()
            );
            if (contributions[holder] != 0) continue;
            seized += _penalizeMember(deal.workerpool, holder, 1);
            emit SilentSeat(taskid, holder);
        }
    }

    // ================================================================== committees

    /// Fixes the seed of a committee deal once its seed block is past, or seeds it again from
    /// a later block when that block's hash can no longer be read. Anyone may call it; the
    /// scheduler's `initialize` does it too.
    function drawCommittee(Deal calldata deal) external {
        _drawIfReady(deal, _checkDeal(deal));
    }

    /// The seats the caller holds in the task's committee (at least one, or the call reverts).
    /// Fixes the deal's seed on the first call that can.
    function _seatsOf(Deal calldata deal, bytes32 dealid, bytes32 taskid)
        private
        returns (uint256 seats)
    {
        bytes32 seed = _layout().drawSeeds[dealid];
        if (seed == 0) {
            seed = _readySeed(dealid);
            _layout().drawSeeds[dealid] = seed;
            emit CommitteeDrawn(dealid, seed);
        }
        uint256 draw = _layout().draws[dealid];
        uint256 memberCount = draw.memberCount();
        uint256 epoch = draw.epoch();
        uint256 size = _committeeSize(deal.trust);
        uint256 membership = _layout().memberships[deal.workerpool][msg.sender];
        uint256 leftEpoch = membership.leftEpoch();
        if (
            membership != 0 && membership.movedEpoch() <= epoch
                && (leftEpoch == 0 || leftEpoch > epoch)
        ) {
            // The caller held the same position from before the match until after it.
            uint256 position = membership.position();
            for (uint256 j; j < size; ++j) {
                if (_seat(seed, taskid, j, memberCount) == position) ++seats;
            }
        } else if (membership != 0 && membership.movedEpoch() > epoch) {
            // The caller moved (or joined again) since: resolve every seat at the match.
            for (uint256 j; j < size; ++j) {
                address holder =
                    _holderAt(deal.workerpool, _seat(seed, taskid, j, memberCount), epoch);
                if (holder == msg.sender) ++seats;
            }
        }
        if (seats == 0) revert NotDrawn(taskid, msg.sender);
    }

    /// Stores the seed of a committee deal when its seed block's hash can be read, or moves
    /// the seed block past the current one when it can no longer be.
    function _drawIfReady(Deal calldata deal, bytes32 dealid) private {
        if (deal.tag & COMMITTEE_BIT == 0 || _layout().drawSeeds[dealid] != 0) return;
        uint256 draw = _layout().draws[dealid];
        uint256 seedBlock = draw.seedBlock();
        if (block.number <= seedBlock) return;
        bytes32 seed = _blockHash(seedBlock);
        if (seed != 0) {
            _layout().drawSeeds[dealid] = seed;
            emit CommitteeDrawn(dealid, seed);
        } else {
            seedBlock = block.number + _seedDelay;
            _layout().draws[dealid] = draw.withSeedBlock(seedBlock);
            emit CommitteeReseeded(dealid, seedBlock);
        }
    }

    /// The seed of a committee deal not stored yet: the hash of its seed block.
    function _readySeed(bytes32 dealid) private view returns (bytes32 seed) {
        uint256 seedBlock = _layout().draws[dealid].seedBlock();
        if (block.number <= seedBlock) revert DrawNotReady(dealid, seedBlock + 1);
        seed = _blockHash(seedBlock);
        if (seed == 0) revert DrawExpired(dealid);
    }

    /// The hash of a past block: from `blockhash` for the last 256, from the EIP-2935 history
    /// contract (where the chain has it) for the last 8191; zero otherwise.
    function _blockHash(uint256 number) private view returns (bytes32 hash) {
        hash = blockhash(number);
        if (hash != 0 || number >= block.number) return hash;
        if (block.number - number > BLOCK_HASH_HISTORY_WINDOW) return 0;
        (bool ok, bytes memory answer) = BLOCK_HASH_HISTORY.staticcall(abi.encode(number));
        if (ok && answer.length == 32) hash = abi.decode(answer, (bytes32));
    }

    /// The member position drawn for seat `j` of a task.
    function _seat(bytes32 seed, bytes32 taskid, uint256 j, uint256 memberCount)
        private
        pure
        returns (uint256)
    {
        return uint256(keccak256(abi.encode(seed, taskid, j))) % memberCount;
    }

    // ================================================================== shared steps

    /// The deal id, after checking the deal against the hash stored at match time.
    function _checkDeal(Deal calldata deal) private view returns (bytes32 dealid) {
        dealid = _dealId(deal.requestHash, deal.botFirst);
        if (_layout().deals[dealid] != keccak256(abi.encode(deal))) revert UnknownDeal(dealid);
    }

    /// The task id of index `idx`, which must be in the deal's bag of tasks.
    function _taskOf(Deal calldata deal, bytes32 dealid, uint256 idx)
        private
        pure
        returns (bytes32)
    {
        if (idx < deal.botFirst || idx - deal.botFirst >= deal.botSize) {
            revert TaskIndexOutOfRange(idx, deal.botFirst, deal.botSize);
        }
        return _taskId(dealid, idx);
    }

    function _contributionDeadline(Deal calldata deal) private pure returns (uint256) {
        return deal.startTime + CONTRIBUTION_DEADLINE_RATIO * deal.timeref;
    }

    function _finalDeadline(Deal calldata deal) private pure returns (uint256) {
        return deal.startTime + FINAL_DEADLINE_RATIO * deal.timeref;
    }

    /// Reads the contributions of `contributors`, which must be exactly the task's `count`
    /// contributors sorted by address.
    function _contributionWords(bytes32 taskid, uint256 count, address[] calldata contributors)
        private
        view
        returns (uint256[] memory words)
    {
        if (contributors.length != count) revert WrongContributorList(taskid);
        mapping(address => uint256) storage contributions = _layout().contributions[taskid];
        words = new uint256[](count);
        address previous;
        for (uint256 i; i < count; ++i) {
            address worker = contributors[i];
            uint256 word = contributions[worker];
            if (worker <= previous || word == 0) revert WrongContributorList(taskid);
            words[i] = word;
            previous = worker;
        }
    }

    /// Success of a task: the sponsor pays its price, app and dataset owners get theirs, and
    /// the scheduler's stake is released. Returns the stake, which the scheduler gets back.
    function _payProviders(Deal calldata deal) private returns (uint256 schedulerStake) {
        _seize(deal.sponsor, deal.appPrice + deal.datasetPrice + deal.workerpoolPrice);
        _credit(deal.appOwner, deal.appPrice);
        _credit(deal.datasetOwner, deal.datasetPrice);
        schedulerStake = _percent(deal.workerpoolPrice, WORKERPOOL_STAKE_RATIO);
        _seize(deal.scheduler, schedulerStake);
    }

    /// Releases `stake` from the worker's frozen part and credits it `amount` (stake + reward).
    /// A `scored` contribution raises the score by one, if it has not risen yet this period.
    function _settleWorker(address worker, uint256 stake, uint256 amount, bool scored) private {
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[worker];
        uint256 balance = word.balance() + amount;
        if (balance > AccountWord.AMOUNT_MAX) revert AmountOutOfRange(balance);
        word = word.withAmounts(balance, word.frozen() - stake);
        uint256 period = block.timestamp / SCORE_PERIOD + 1; // periods count from 1
        if (scored && word.scoredPeriod() < period) {
            word = word.withScore(word.score() + 1, period);
        }
        accounts[worker] = word;
    }

    /// Checks the callback rule and stores the result.
    function _storeResult(
        Deal calldata deal,
        bytes32 taskid,
        bytes32 resultDigest,
        bytes calldata resultsCallback
    ) private {
        if (deal.callback == address(0)) {
            if (resultsCallback.length != 0) revert InvalidResultsCallback(taskid);
        } else {
            if (keccak256(resultsCallback) != resultDigest) revert InvalidResultsCallback(taskid);
            _layout().resultsCallbacks[taskid] = resultsCallback;
        }
        _layout().resultDigests[taskid] = resultDigest;
    }

    /// Calls the deal's callback with `CALLBACK_GAS` gas, ignoring its outcome and never
    /// copying what it returns, so a consumer cannot make the finalizer pay for return data.
    /// The caller must leave enough gas for the callback to get its whole allowance (EIP-150
    /// keeps 1/64 back).
    function _callback(Deal calldata deal, bytes32 taskid, bytes calldata resultsCallback) private {
        address consumer = deal.callback;
        if (consumer == address(0)) return;
        uint256 gasLeft = gasleft();
        if (gasLeft < CALLBACK_GAS * 64 / 63 + 10_000) revert CallbackGasTooLow(gasLeft);
        bytes memory data = abi.encodeCall(IOracleConsumer.receiveResult, (taskid, resultsCallback));
        assembly ("memory-safe") {
            // A failing consumer must not block payment: the outcome is ignored.
            pop(call(CALLBACK_GAS, consumer, 0, add(data, 0x20), mload(data), 0, 0))
        }
    }

    /// floor(log2(x)) for x >= 2, which is always at least 1.
    function _log2(uint256 x) private pure returns (uint256 result) {
        while (x > 1) {
            x >>= 1;
            ++result;
        }
    }
}
