// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {CommonBase} from "forge-std/Base.sol";
import {IPoco} from "../../src/interfaces/IPoco.sol";
import {IPocoTypes} from "../../src/interfaces/IPocoTypes.sol";
import {RLC} from "../../src/token/RLC.sol";

/// @notice What the invariant handler expects poco to hold, computed from the protocol's rules
/// by code of its own: every account's total (balance + frozen) and frozen part, every score,
/// every pool membership, every order's consumption, every task's status and votes. It also
/// groups accounts into parties (one per honest actor, one for all of the attacker's accounts)
/// and keeps, per party, what it may have gained: payments by other parties for tasks that
/// reached consensus, and what such tasks seized from other parties.
///
/// The amounts are never read back from poco. Reading a contribution's recorded weight or a
/// committee's seat list is the only thing taken from it, and the recorded weight is checked
/// against the weight computed here from the model's scores.
abstract contract PocoModel is CommonBase, IPocoTypes {
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;
    uint256 internal constant T = 300;
    uint256 internal constant RLC_UNIT = 1e9;
    uint256 internal constant SCHEDULER_STAKE_RATIO = 30;
    uint256 internal constant MEMBER_BOND = 10e9;
    uint256 internal constant SEAT_PENALTY = 1e9;
    uint256 internal constant EXIT_DELAY = 7 days;
    uint256 internal constant SCORE_PERIOD = 1 days;
    uint256 internal constant MIN_SCORED_STAKE = 1e9;
    uint256 internal constant SEED_DELAY = 2;
    bytes32 internal constant TEE = bytes32(uint256(1));
    bytes32 internal constant COMMITTEE = bytes32(uint256(1 << 9));
    bytes32 internal constant STORAGE_LOCATION =
        0xead258fb6175f388339f52c25147b390ee515d7673a97ddadff4ce845ca04f00;
    /// The handler never lets more than this many workers vote on one task.
    uint256 internal constant MAX_VOTES = 8;

    uint8 internal constant UNSET = 0;
    uint8 internal constant ACTIVE = 1;
    uint8 internal constant REVEALING = 2;
    uint8 internal constant COMPLETED = 3;
    uint8 internal constant FAILED = 4;

    uint8 internal constant CONTRIBUTED = 1;
    uint8 internal constant PROVED = 2;
    uint8 internal constant REJECTED = 3;

    // ------------------------------------------------------------------ reach counters
    uint256 internal constant A_MATCH_PLAIN = 0;
    uint256 internal constant A_MATCH_COMMITTEE = 1;
    uint256 internal constant A_MATCH_TEE = 2;
    uint256 internal constant A_CONTRIBUTE = 3;
    uint256 internal constant A_CONTRIBUTE_COMMITTEE = 4;
    uint256 internal constant A_REVEAL = 5;
    uint256 internal constant A_FINALIZE = 6;
    uint256 internal constant A_REOPEN = 7;
    uint256 internal constant A_CLAIM = 8;
    uint256 internal constant A_CONTRIBUTE_AND_FINALIZE = 9;
    uint256 internal constant A_REPLAY = 10;
    uint256 internal constant A_CLOSE_ORDER = 11;
    uint256 internal constant A_CHANGE_POLICY = 12;
    uint256 internal constant A_MOVE_FUNDS = 13;
    uint256 internal constant A_MEMBERSHIP = 14;
    uint256 internal constant A_WARP = 15;
    uint256 internal constant A_SET_SCORE = 16;
    uint256 internal constant A_ATTACK_SELF_DEAL = 17;
    uint256 internal constant A_ATTACK_GRIEF = 18;
    uint256 internal constant A_ATTACK_FORBIDDEN = 19;
    uint256 internal constant A_ATTACK_CHURN = 20;
    uint256 internal constant A_ATTACK_LOOK_ALIKE = 21;
    uint256 internal constant O_DEALS = 22;
    uint256 internal constant O_SPONSORED = 23;
    uint256 internal constant O_PARTIAL_FILLS = 24;
    uint256 internal constant O_WITH_DATASET = 25;
    uint256 internal constant O_COMMITTEE_DEALS = 26;
    uint256 internal constant O_TEE_DEALS = 27;
    uint256 internal constant O_CALLBACK_DEALS = 28;
    uint256 internal constant O_CONTRIBUTIONS = 29;
    uint256 internal constant O_WRONG_VOTES = 30;
    uint256 internal constant O_LOOK_ALIKE_VOTES = 31;
    uint256 internal constant O_COMMITTEE_CONTRIBUTIONS = 32;
    uint256 internal constant O_TEE_CONTRIBUTIONS = 33;
    uint256 internal constant O_CONSENSUS = 34;
    uint256 internal constant O_REVEALS = 35;
    uint256 internal constant O_FINALIZES = 36;
    uint256 internal constant O_CALLBACK_FINALIZES = 37;
    uint256 internal constant O_CONTRIBUTE_AND_FINALIZES = 38;
    uint256 internal constant O_REOPENS = 39;
    uint256 internal constant O_CLAIMS_UNSET = 40;
    uint256 internal constant O_CLAIMS_ACTIVE = 41;
    uint256 internal constant O_CLAIMS_REVEALING = 42;
    uint256 internal constant O_CLAIMS_REVEALING_PROVED = 43;
    uint256 internal constant O_FAULTY_PENALIZED = 44;
    uint256 internal constant O_SILENT_SEATS = 45;
    uint256 internal constant O_EXPELLED = 46;
    uint256 internal constant O_SCORE_RISES = 47;
    uint256 internal constant O_JOINS = 48;
    uint256 internal constant O_LEAVES = 49;
    uint256 internal constant O_RELEASES = 50;
    uint256 internal constant O_ORDERS_CLOSED = 51;
    uint256 internal constant O_ATTACKER_SELF_DEALS = 52;
    uint256 internal constant O_ATTACKER_SALES = 53;
    uint256 internal constant O_ATTACKER_GRIEF_CLAIMS = 54;
    uint256 internal constant O_FAILED_ADVERSARIAL = 55;
    uint256 internal constant O_REPLAYS_REFUSED = 56;
    uint256 internal constant O_CATCH_UPS = 57;
    uint256 internal constant COUNTERS = 58;

    struct DealRec {
        Deal deal;
        bytes32 dealid;
        bytes32 hash;
        /// The app of this deal never gives the same answer twice (the attacker's griefing app).
        bool noisy;
    }

    struct TaskRec {
        bool known;
        uint256 deal;
        uint256 idx;
        uint8 status;
        uint256 reveals;
        uint256 winners;
        /// The answer of the consensus group, while REVEALING.
        uint256 consensus;
        uint256 revealDeadline;
        /// 1 + the sum of all group weights.
        uint256 total;
        uint256 payments;
    }

    struct Vote {
        uint8 status;
        /// The answer voted for (a look-alike vote counts as the answer it copies).
        uint256 answer;
        /// The reward weight: floor(log2 w) in plain deals, seats in committee deals.
        uint256 weight;
    }

    struct Member {
        bool exists;
        bool active;
        uint256 bond;
        uint256 leftAt;
    }

    /// What one settlement seized, in all and per party.
    struct Seizure {
        uint256 total;
        uint256[] byParty;
    }

    IPoco internal poco;
    RLC internal rlc;

    /// The time and block the handler moved the chain to (never read back from the chain
    /// inside an action, where via-IR may keep an old value).
    uint256 internal _now;
    uint256 internal _block;

    // ------------------------------------------------------------------ deals and tasks
    DealRec[] internal _deals;
    mapping(bytes32 => TaskRec) internal _tasks;
    bytes32[] internal _taskList;
    bytes32[] internal _finished;
    mapping(bytes32 => uint8) internal _finalStatus;
    mapping(bytes32 => address[]) internal _voters;
    mapping(bytes32 => mapping(address => Vote)) internal _votes;
    mapping(bytes32 => mapping(uint256 => uint256)) internal _groupWeight;
    mapping(bytes32 => mapping(uint256 => uint256)) internal _groupSize;

    // ------------------------------------------------------------------ ledger
    address[] internal _accounts;
    mapping(address => uint256) public expTotal;
    mapping(address => uint256) public expFrozen;

    // ------------------------------------------------------------------ parties
    uint256 public partyCount;
    uint256 public attackerParty;
    mapping(address => uint256) public partyOf;
    mapping(uint256 => address[]) internal _partyAccounts;
    mapping(uint256 => uint256) public partyStart;
    mapping(uint256 => uint256) public partyAllowed;

    // ------------------------------------------------------------------ workers and pools
    address[] internal _allWorkers;
    mapping(address => uint256) public expScore;
    mapping(address => uint256) internal _scoredPeriod;
    address[] internal _pools;
    mapping(address => mapping(address => Member)) internal _members;
    mapping(address => uint256) public expActive;
    mapping(address => uint256) internal _stakeRatio;
    mapping(address => uint256) internal _schedulerRatio;

    // ------------------------------------------------------------------ orders
    bytes32[] internal _orderList;
    mapping(bytes32 => uint256) public orderVolume;
    mapping(bytes32 => uint256) public expConsumed;

    // ------------------------------------------------------------------ reach and violations
    uint256[COUNTERS] internal _counts;
    uint256 public handlerCalls;
    /// Adversarial calls that succeeded although they must fail.
    uint256 public violations;
    string public lastViolation;

    // ================================================================== views for invariants

    function accounts() external view returns (address[] memory) {
        return _accounts;
    }

    function partyAccounts(uint256 party) external view returns (address[] memory) {
        return _partyAccounts[party];
    }

    function allWorkers() external view returns (address[] memory) {
        return _allWorkers;
    }

    function pools() external view returns (address[] memory) {
        return _pools;
    }

    function expMember(address pool, address worker)
        external
        view
        returns (bool exists, bool active, uint256 bond)
    {
        Member storage m = _members[pool][worker];
        return (m.exists, m.active, m.bond);
    }

    function orders() external view returns (bytes32[] memory) {
        return _orderList;
    }

    function taskList() external view returns (bytes32[] memory) {
        return _taskList;
    }

    function finishedList() external view returns (bytes32[] memory) {
        return _finished;
    }

    function taskState(bytes32 taskid) external view returns (uint8 status, uint256 payments) {
        TaskRec storage t = _tasks[taskid];
        return (t.status, t.payments);
    }

    function finalStatus(bytes32 taskid) external view returns (uint8) {
        return _finalStatus[taskid];
    }

    function dealCount() external view returns (uint256) {
        return _deals.length;
    }

    function dealAt(uint256 i) external view returns (Deal memory, bytes32 dealid, bytes32 hash) {
        DealRec storage r = _deals[i];
        return (r.deal, r.dealid, r.hash);
    }

    function counter(uint256 i) external view returns (uint256) {
        return _counts[i];
    }

    function counterCount() external pure returns (uint256) {
        return COUNTERS;
    }

    function claims() external view returns (uint256) {
        return _counts[O_CLAIMS_UNSET] + _counts[O_CLAIMS_ACTIVE] + _counts[O_CLAIMS_REVEALING];
    }

    function reopens() external view returns (uint256) {
        return _counts[O_REOPENS];
    }

    function committeeContributions() external view returns (uint256) {
        return _counts[O_COMMITTEE_CONTRIBUTIONS];
    }

    function counterName(uint256 i) external pure returns (string memory) {
        string[COUNTERS] memory names = [
            "action matchPlain",
            "action matchCommittee",
            "action matchTee",
            "action contribute",
            "action contributeCommittee",
            "action reveal",
            "action finalize",
            "action reopen",
            "action claim",
            "action contributeAndFinalize",
            "action replayFinished",
            "action closeOrder",
            "action changePolicy",
            "action moveFunds",
            "action membership",
            "action warp",
            "action setScore",
            "action attackSelfDeal",
            "action attackGrief",
            "action attackForbidden",
            "action attackChurn",
            "action attackLookAlike",
            "deals matched",
            "deals sponsored",
            "partial fills (botFirst > 0)",
            "deals with a dataset",
            "committee deals",
            "TEE deals",
            "callback deals",
            "contributions",
            "wrong votes",
            "look-alike votes",
            "committee contributions",
            "TEE contributions",
            "consensus reached",
            "reveals",
            "finalizes",
            "callback finalizes",
            "contributeAndFinalize",
            "reopens",
            "claims of UNSET tasks",
            "claims of ACTIVE tasks",
            "claims of REVEALING tasks",
            "claims of REVEALING tasks paying proved workers",
            "faulty contributions penalized",
            "silent-seat penalties",
            "members expelled",
            "score rises",
            "pool joins",
            "pool leaves",
            "bond releases",
            "orders closed",
            "attacker self-deals",
            "attacker sales to honest requesters",
            "attacker grief claims",
            "failed adversarial calls",
            "replays refused",
            "catch-up steps"
        ];
        return names[i];
    }

    // ================================================================== ledger primitives

    function _addAccount(address account, uint256 party) internal {
        _accounts.push(account);
        expTotal[account] = poco.balanceOf(account) + poco.frozenOf(account);
        expFrozen[account] = poco.frozenOf(account);
        if (party != 0) {
            partyOf[account] = party;
            _partyAccounts[party].push(account);
            partyStart[party] += _holdings(account);
        }
    }

    function _newParty() internal returns (uint256) {
        return ++partyCount;
    }

    function _holdings(address account) internal view returns (uint256) {
        return rlc.balanceOf(account) + poco.balanceOf(account) + poco.frozenOf(account);
    }

    function _free(address account) internal view returns (uint256) {
        return expTotal[account] - expFrozen[account];
    }

    function _lock(address account, uint256 amount) internal {
        expFrozen[account] += amount;
    }

    function _unlock(address account, uint256 amount) internal {
        expFrozen[account] -= amount;
    }

    function _credit(address account, uint256 amount) internal {
        expTotal[account] += amount;
    }

    /// Takes a frozen amount out of an account for good (a price paid).
    function _spend(address account, uint256 amount) internal {
        expFrozen[account] -= amount;
        expTotal[account] -= amount;
    }

    /// Takes a frozen amount out of an account as a seizure of the task being settled.
    function _seize(address account, uint256 amount, Seizure memory s) internal {
        _spend(account, amount);
        s.total += amount;
        s.byParty[partyOf[account]] += amount;
    }

    function _burn(uint256 amount) internal {
        expTotal[BURN] += amount;
        expFrozen[BURN] += amount;
    }

    function _newSeizure() internal view returns (Seizure memory s) {
        s.byParty = new uint256[](partyCount + 1);
    }

    /// A task reached consensus and was settled: every party may have gained the price (when
    /// it was paid and the sponsor is another party) and what was seized from other parties.
    function _allowGains(Deal memory deal, Seizure memory s, bool pricePaid) internal {
        uint256 price = deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
        uint256 payer = partyOf[deal.sponsor];
        for (uint256 p = 1; p <= partyCount; ++p) {
            uint256 gain = s.total - s.byParty[p];
            if (pricePaid && payer != p) gain += price;
            partyAllowed[p] += gain;
        }
    }

    // ================================================================== time

    function _warpTo(uint256 time) internal {
        if (time <= _now) return;
        _now = time;
        vm.warp(time);
    }

    function _finalDeadline(Deal memory deal) internal pure returns (uint256) {
        return deal.startTime + 10 * deal.timeref;
    }

    function _contributionDeadline(Deal memory deal) internal pure returns (uint256) {
        return deal.startTime + 7 * deal.timeref;
    }

    // ================================================================== rules

    /// The committee size that serves `trust` (1, 3, 5, ...).
    function _committeeSize(uint256 trust) internal pure returns (uint256) {
        uint16[16] memory maxTrust =
            [uint16(3), 6, 9, 14, 20, 29, 41, 57, 80, 112, 155, 215, 296, 408, 560, 768];
        for (uint256 i; i < 16; ++i) {
            if (trust <= maxTrust[i]) return 2 * i + 1;
        }
        revert("trust beyond committees");
    }

    function _minMembers(uint256 trust) internal pure returns (uint256) {
        uint256 size = _committeeSize(trust);
        return size > 4 ? size : 4;
    }

    /// A worker's vote weight: max(score / 3, 3) - 1.
    function _voteWeight(address worker) internal view returns (uint256 w) {
        w = expScore[worker] / 3;
        if (w < 3) w = 3;
        w -= 1;
    }

    function _log2(uint256 x) internal pure returns (uint256 r) {
        while (x > 1) {
            x >>= 1;
            ++r;
        }
    }

    function _isCommittee(Deal memory deal) internal pure returns (bool) {
        return deal.tag & COMMITTEE != 0;
    }

    function _isTee(Deal memory deal) internal pure returns (bool) {
        return deal.tag & TEE != 0;
    }

    function _taskId(bytes32 dealid, uint256 idx) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(dealid, idx));
    }

    // ================================================================== tasks

    function _register(bytes32 taskid, uint256 di, uint256 idx)
        internal
        returns (TaskRec storage t)
    {
        t = _tasks[taskid];
        if (!t.known) {
            t.known = true;
            t.deal = di;
            t.idx = idx;
            t.status = ACTIVE;
            t.total = 1;
            _taskList.push(taskid);
        }
    }

    function _finish(bytes32 taskid, uint8 status) internal {
        TaskRec storage t = _tasks[taskid];
        t.status = status;
        ++t.payments;
        _finalStatus[taskid] = status;
        _finished.push(taskid);
    }

    /// A vote was cast: lock the stake, add the vote to its group, open the reveal phase on
    /// consensus. Returns the reward weight the contribution must record.
    function _modelVote(
        bytes32 taskid,
        uint256 di,
        uint256 idx,
        address worker,
        uint256 answer,
        uint256 seats
    ) internal returns (uint256 weight) {
        TaskRec storage t = _register(taskid, di, idx);
        Deal storage deal = _deals[di].deal;
        _lock(worker, deal.workerStake);
        bool committee = deal.tag & COMMITTEE != 0;
        uint256 w = _voteWeight(worker);
        weight = committee ? seats : _log2(w);
        uint256 voteWeight = committee ? seats : w;
        uint256 before = _groupWeight[taskid][answer];
        uint256 after_ = committee || before == 0 ? before + voteWeight : before * voteWeight;
        t.total = t.total + after_ - before;
        uint256 size = _groupSize[taskid][answer] + 1;
        _groupWeight[taskid][answer] = after_;
        _groupSize[taskid][answer] = size;
        _votes[taskid][worker] = Vote(CONTRIBUTED, answer, weight);
        _voters[taskid].push(worker);
        uint256 trust = deal.trust;
        bool consensus =
            committee ? after_ * 2 > _committeeSize(trust) : after_ * trust > t.total * (trust - 1);
        if (consensus) {
            t.status = REVEALING;
            t.winners = size;
            t.consensus = answer;
            t.reveals = 0;
            t.revealDeadline = _now + 2 * T;
            ++_counts[O_CONSENSUS];
        }
    }

    function _modelReveal(bytes32 taskid, address worker) internal {
        _votes[taskid][worker].status = PROVED;
        ++_tasks[taskid].reveals;
        ++_counts[O_REVEALS];
    }

    function _modelReopen(bytes32 taskid) internal {
        TaskRec storage t = _tasks[taskid];
        address[] storage voters = _voters[taskid];
        for (uint256 i; i < voters.length; ++i) {
            Vote storage v = _votes[taskid][voters[i]];
            if (v.status == CONTRIBUTED && v.answer == t.consensus) v.status = REJECTED;
        }
        t.total -= _groupWeight[taskid][t.consensus];
        delete _groupWeight[taskid][t.consensus];
        delete _groupSize[taskid][t.consensus];
        t.status = ACTIVE;
        t.reveals = 0;
        t.winners = 0;
        t.revealDeadline = 0;
        ++_counts[O_REOPENS];
    }

    /// The sponsor pays the price, app and dataset owners are paid, the scheduler's stake is
    /// released (the caller credits it back with the scheduler's share).
    function _payProviders(Deal memory deal) internal returns (uint256 schedulerStake) {
        _spend(deal.sponsor, deal.appPrice + deal.datasetPrice + deal.workerpoolPrice);
        _credit(deal.appOwner, deal.appPrice);
        _credit(deal.datasetOwner, deal.datasetPrice);
        schedulerStake = deal.workerpoolPrice * SCHEDULER_STAKE_RATIO / 100;
        _spend(deal.scheduler, schedulerStake);
    }

    /// A wrong or silent voter: stake seized, score cut by a third, and in a committee deal a
    /// seat's penalty per seat taken from its bond.
    function _penalizeVote(Deal memory deal, bytes32 taskid, address worker, Seizure memory s)
        internal
    {
        _seize(worker, deal.workerStake, s);
        expScore[worker] = expScore[worker] * 2 / 3;
        if (_isCommittee(deal)) {
            _penalizeMember(deal.workerpool, worker, _votes[taskid][worker].weight, s);
        }
        ++_counts[O_FAULTY_PENALIZED];
    }

    function _penalizeMember(address pool, address worker, uint256 seats, Seizure memory s)
        internal
    {
        Member storage m = _members[pool][worker];
        if (!m.exists) return;
        uint256 penalty = seats * SEAT_PENALTY;
        if (penalty > m.bond) penalty = m.bond;
        if (m.active) {
            m.active = false;
            m.leftAt = _now;
            --expActive[pool];
            ++_counts[O_EXPELLED];
        }
        m.bond -= penalty;
        _seize(worker, penalty, s);
    }

    function _modelFinalize(bytes32 taskid) internal {
        TaskRec storage t = _tasks[taskid];
        Deal memory deal = _deals[t.deal].deal;
        Seizure memory s = _newSeizure();
        uint256 schedulerGain = _payProviders(deal);
        address[] storage voters = _voters[taskid];
        uint256 totalReward = deal.workerpoolPrice;
        uint256 totalWeight;
        for (uint256 i; i < voters.length; ++i) {
            Vote storage v = _votes[taskid][voters[i]];
            if (v.status == PROVED) {
                totalWeight += v.weight;
            } else {
                uint256 before = s.total;
                _penalizeVote(deal, taskid, voters[i], s);
                totalReward += s.total - before;
            }
        }
        uint256 workersReward = totalReward * (100 - deal.schedulerRewardRatio) / 100;
        bool scored = voters.length > 1 && deal.workerStake >= MIN_SCORED_STAKE;
        uint256 period = _now / SCORE_PERIOD + 1;
        uint256 distributed;
        for (uint256 i; i < voters.length; ++i) {
            address worker = voters[i];
            Vote storage v = _votes[taskid][worker];
            if (v.status != PROVED) continue;
            uint256 reward = workersReward * v.weight / totalWeight;
            distributed += reward;
            _unlock(worker, deal.workerStake);
            _credit(worker, reward);
            if (scored && _scoredPeriod[worker] < period) {
                ++expScore[worker];
                _scoredPeriod[worker] = period;
                ++_counts[O_SCORE_RISES];
            }
        }
        schedulerGain += totalReward - distributed;
        _credit(deal.scheduler, schedulerGain);
        _finish(taskid, COMPLETED);
        _allowGains(deal, s, true);
        ++_counts[O_FINALIZES];
    }

    function _modelContributeAndFinalize(bytes32 taskid, uint256 di, uint256 idx, address worker)
        internal
    {
        _register(taskid, di, idx);
        Deal memory deal = _deals[di].deal;
        uint256 stake = _payProviders(deal);
        uint256 workerReward = deal.workerpoolPrice * (100 - deal.schedulerRewardRatio) / 100;
        _credit(worker, workerReward);
        _credit(deal.scheduler, stake + deal.workerpoolPrice - workerReward);
        _finish(taskid, COMPLETED);
        _allowGains(deal, _newSeizure(), true);
        ++_counts[O_CONTRIBUTE_AND_FINALIZES];
    }

    function _modelClaim(bytes32 taskid, uint256 di, uint256 idx, address[] memory seats) internal {
        uint8 status = _tasks[taskid].known ? _tasks[taskid].status : UNSET;
        _register(taskid, di, idx);
        Deal memory deal = _deals[di].deal;
        Seizure memory s = _newSeizure();
        _unlock(deal.sponsor, deal.appPrice + deal.datasetPrice + deal.workerpoolPrice);
        _seize(deal.scheduler, deal.workerpoolPrice * SCHEDULER_STAKE_RATIO / 100, s);
        address[] storage voters = _voters[taskid];
        uint256 provedWeight;
        for (uint256 i; i < voters.length; ++i) {
            Vote storage v = _votes[taskid][voters[i]];
            if (v.status == PROVED) {
                provedWeight += v.weight;
            } else if (v.status == REJECTED || (status == REVEALING && v.status == CONTRIBUTED)) {
                _penalizeVote(deal, taskid, voters[i], s);
            } else {
                _unlock(voters[i], deal.workerStake);
            }
        }
        if (_isCommittee(deal) && !_isTee(deal) && status == ACTIVE && voters.length != 0) {
            for (uint256 j; j < seats.length; ++j) {
                if (_votes[taskid][seats[j]].status != UNSET) continue;
                _penalizeMember(deal.workerpool, seats[j], 1, s);
                ++_counts[O_SILENT_SEATS];
            }
        }
        uint256 paid;
        for (uint256 i; i < voters.length && provedWeight != 0; ++i) {
            Vote storage v = _votes[taskid][voters[i]];
            if (v.status != PROVED) continue;
            uint256 reward = s.total * v.weight / provedWeight;
            paid += reward;
            _unlock(voters[i], deal.workerStake);
            _credit(voters[i], reward);
        }
        _burn(s.total - paid);
        _finish(taskid, FAILED);
        if (status == REVEALING && provedWeight != 0) {
            _allowGains(deal, s, false);
            ++_counts[O_CLAIMS_REVEALING_PROVED];
        }
        if (status == UNSET) ++_counts[O_CLAIMS_UNSET];
        else if (status == ACTIVE) ++_counts[O_CLAIMS_ACTIVE];
        else ++_counts[O_CLAIMS_REVEALING];
    }

    // ================================================================== pools

    function _modelJoin(address pool, address worker) internal {
        _lock(worker, MEMBER_BOND);
        _members[pool][worker] = Member(true, true, MEMBER_BOND, 0);
        ++expActive[pool];
        ++_counts[O_JOINS];
    }

    function _modelLeave(address pool, address worker) internal {
        Member storage m = _members[pool][worker];
        m.active = false;
        m.leftAt = _now;
        --expActive[pool];
        ++_counts[O_LEAVES];
    }

    function _modelRelease(address pool, address worker) internal {
        _unlock(worker, _members[pool][worker].bond);
        delete _members[pool][worker];
        ++_counts[O_RELEASES];
    }

    // ================================================================== orders

    function _trackOrder(bytes32 hash, uint256 volume) internal {
        _orderList.push(hash);
        orderVolume[hash] = volume;
    }

    function _remaining(bytes32 hash) internal view returns (uint256) {
        return orderVolume[hash] - expConsumed[hash];
    }

    // ================================================================== violations

    /// Records an adversarial call that succeeded although it must fail.
    function _violation(string memory what) internal {
        ++violations;
        lastViolation = what;
    }
}
