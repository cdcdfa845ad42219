// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IPoco} from "../../src/interfaces/IPoco.sol";
import {IPocoErrors} from "../../src/interfaces/IPocoErrors.sol";
import {RLC} from "../../src/token/RLC.sol";
import {WorkerpoolRegistry, Workerpool} from "../../src/registries/Workerpools.sol";
import {OrderHashing} from "../utils/OrderHashing.sol";
import {PocoModel} from "./PocoModel.sol";

/// @notice Drives poco through random sequences of market, lifecycle, membership and attack
/// actions, and keeps `PocoModel` in step with every call it makes.
///
/// Honest actors: two requesters, a sponsor, the app and dataset owners, the scheduler of the
/// honest pool and ten workers (eight of them members of the pool at the start). The attacker is
/// one party with several accounts: its own app and workerpool (both owned by `attacker`), its own
/// requester account and four workers, members of its pool. It self-deals, griefs the honest
/// pool with an app whose answers never converge, churns in the honest pool, copies the
/// consensus with look-alike votes, and makes calls that must fail (low-level: one that
/// succeeds is a violation, and so is one refused for another reason than the rule it tests).
///
/// Every action makes only calls that must succeed (the invariants run with fail-on-revert);
/// an action whose preconditions do not hold is a no-op, or makes them hold (matches a deal,
/// warps time) when it drives an outcome every run must reach. From call `CATCH_UP_FROM` on,
/// every action first drives the outcomes the run has not reached yet.
contract PocoHandler is PocoModel {
    struct Actors {
        address requester;
        uint256 requesterKey;
        address requester2;
        uint256 requester2Key;
        address sponsor;
        address appOwner;
        uint256 appOwnerKey;
        address datasetOwner;
        uint256 datasetOwnerKey;
        address scheduler;
        uint256 schedulerKey;
        address beneficiary;
        address enclave;
        uint256 enclaveKey;
        address attacker;
        uint256 attackerKey;
        address attackerRequester;
        uint256 attackerRequesterKey;
        address app;
        address dataset;
        address pool;
        address attackerApp;
        address attackerPool;
    }

    /// What a new request asks for.
    struct Want {
        address requester;
        uint256 key;
        address app;
        address dataset;
        address pool;
        bytes32 tag;
        uint256 trust;
        uint256 volume;
        address callback;
    }

    /// The campaign's shape, as configured in foundry.toml's [invariant] section.
    uint256 public constant RUNS = 32;
    uint256 public constant DEPTH = 150;
    uint256 internal constant CATCH_UP_FROM = DEPTH - 4;
    /// Answers from this id on are the noise of the griefing app: each is given once.
    uint256 internal constant NOISE = 1000;

    uint8 internal constant W_ANY = 0;
    uint8 internal constant W_COMMITTEE = 1;
    uint8 internal constant W_TRUST_ONE = 2;
    uint8 internal constant W_PLAIN_FRESH = 3;
    uint8 internal constant W_COPYABLE = 4;
    uint8 internal constant W_PLAIN = 5;
    uint8 internal constant W_HONEST = 6;

    WorkerpoolRegistry internal wpRegistry;
    Actors internal a;
    bytes32 internal _separator;
    address[] internal _honestWorkers;
    address[] internal _attackerWorkers;
    address[] internal _consumers;
    uint256 internal _nonce;

    // The honest offers on the market, replaced when used up.
    AppOrder internal _appOrder;
    AppOrder internal _teeAppOrder;
    DatasetOrder internal _datasetOrder;
    WorkerpoolOrder internal _poolOrder;
    /// The last plain request, matched again while it has volume left (a partial fill).
    RequestOrder internal _pendingRequest;
    bytes32 internal _pendingHash;

    modifier action(uint256 id) {
        ++handlerCalls;
        ++_counts[id];
        _now = vm.getBlockTimestamp();
        _block = vm.getBlockNumber();
        if (handlerCalls >= CATCH_UP_FROM) _catchUp();
        _;
    }

    constructor(
        IPoco poco_,
        RLC rlc_,
        WorkerpoolRegistry registry_,
        Actors memory actors_,
        address[] memory honestWorkers_,
        address[] memory attackerWorkers_,
        address[] memory consumers_
    ) {
        poco = poco_;
        rlc = rlc_;
        wpRegistry = registry_;
        a = actors_;
        _honestWorkers = honestWorkers_;
        _attackerWorkers = attackerWorkers_;
        _consumers = consumers_;
        _separator = OrderHashing.separator(block.chainid, address(poco_));
        _now = vm.getBlockTimestamp();
        _block = vm.getBlockNumber();

        _addAccount(BURN, 0);
        _addAccount(actors_.requester, _newParty());
        _addAccount(actors_.requester2, _newParty());
        _addAccount(actors_.sponsor, _newParty());
        _addAccount(actors_.appOwner, _newParty());
        _addAccount(actors_.datasetOwner, _newParty());
        _addAccount(actors_.scheduler, _newParty());
        _addAccount(actors_.beneficiary, _newParty());
        for (uint256 i; i < honestWorkers_.length; ++i) {
            _addAccount(honestWorkers_[i], _newParty());
            _allWorkers.push(honestWorkers_[i]);
        }
        attackerParty = _newParty();
        _addAccount(actors_.attacker, attackerParty);
        _addAccount(actors_.attackerRequester, attackerParty);
        for (uint256 i; i < attackerWorkers_.length; ++i) {
            _addAccount(attackerWorkers_[i], attackerParty);
            _allWorkers.push(attackerWorkers_[i]);
        }

        _pools.push(actors_.pool);
        _pools.push(actors_.attackerPool);
        _stakeRatio[actors_.pool] = 30;
        _schedulerRatio[actors_.pool] = 1;
        _stakeRatio[actors_.attackerPool] = 30;
        _schedulerRatio[actors_.attackerPool] = 1;
        for (uint256 i; i < 8; ++i) {
            _join(actors_.pool, honestWorkers_[i]);
        }
        for (uint256 i; i < attackerWorkers_.length; ++i) {
            _join(actors_.attackerPool, attackerWorkers_[i]);
        }
        // Some workers start with a reputation, so that vote and reward weights vary.
        _writeScore(honestWorkers_[0], 30);
        _writeScore(honestWorkers_[1], 60);
        _writeScore(honestWorkers_[2], 12);
        _newAppOrder(1, false);
        _newAppOrder(2, true);
        _newDatasetOrder(3);
        _newPoolOrder(4);
        delete _counts;
    }

    // ================================================================== market actions

    function matchPlain(uint256 seed) external action(A_MATCH_PLAIN) {
        _matchHonest(seed, false, true, 0);
    }

    function matchTee(uint256 seed) external action(A_MATCH_TEE) {
        _matchHonest(seed, true, true, 0);
    }

    /// A committee deal on the honest pool; its first task sometimes gets a vote at once.
    function matchCommittee(uint256 seed) external action(A_MATCH_COMMITTEE) {
        (bool ok, uint256 di) = _matchCommittee(seed);
        if (!ok || (seed >> 60) % 2 == 0) return;
        uint256 idx = _deals[di].deal.botFirst;
        address worker = _pickVoter(di, idx, seed >> 64, false);
        if (worker == address(0)) return;
        (uint256 answer, bool lookAlike) = _pickAnswer(di, idx, seed >> 96);
        _vote(di, idx, worker, answer, lookAlike);
    }

    /// Closes one of the honest offers or the pending request, by its owner or by anyone with
    /// the owner's signature of the operation.
    function closeOrder(uint256 seed) external action(A_CLOSE_ORDER) {
        uint256 k = seed % 5;
        bool relayed = (seed >> 8) % 3 == 0;
        address caller;
        bytes32 h;
        if (k == 0 || k == 1) {
            AppOrder memory o = k == 0 ? _appOrder : _teeAppOrder;
            AppOrderOperation memory op = AppOrderOperation(o, OrderOperation.CLOSE, "");
            if (relayed) op.sign = _signOperation(a.appOwnerKey, OrderHashing.hashOperation(o, 1));
            caller = relayed ? a.sponsor : a.appOwner;
            vm.prank(caller);
            poco.manageAppOrder(op);
            h = _hashApp(o);
        } else if (k == 2) {
            DatasetOrder memory o = _datasetOrder;
            DatasetOrderOperation memory op = DatasetOrderOperation(o, OrderOperation.CLOSE, "");
            if (relayed) {
                op.sign = _signOperation(a.datasetOwnerKey, OrderHashing.hashOperation(o, 1));
            }
            caller = relayed ? a.sponsor : a.datasetOwner;
            vm.prank(caller);
            poco.manageDatasetOrder(op);
            h = _hashDataset(o);
        } else if (k == 3) {
            WorkerpoolOrder memory o = _poolOrder;
            WorkerpoolOrderOperation memory op =
                WorkerpoolOrderOperation(o, OrderOperation.CLOSE, "");
            if (relayed) {
                op.sign = _signOperation(a.schedulerKey, OrderHashing.hashOperation(o, 1));
            }
            caller = relayed ? a.sponsor : a.scheduler;
            vm.prank(caller);
            poco.manageWorkerpoolOrder(op);
            h = _hashPool(o);
        } else {
            if (_pendingHash == 0) return;
            RequestOrder memory o = _pendingRequest;
            RequestOrderOperation memory op = RequestOrderOperation(o, OrderOperation.CLOSE, "");
            if (relayed) {
                op.sign = _signOperation(_keyOf(o.requester), OrderHashing.hashOperation(o, 1));
            }
            caller = relayed ? a.sponsor : o.requester;
            vm.prank(caller);
            poco.manageRequestOrder(op);
            h = _pendingHash;
        }
        expConsumed[h] = orderVolume[h];
        ++_counts[O_ORDERS_CLOSED];
    }

    /// The honest scheduler changes its pool's policy (deals already made keep theirs).
    function changePolicy(uint256 seed) external action(A_CHANGE_POLICY) {
        _setPolicy(a.scheduler, a.pool, seed);
    }

    /// Deposits (plain or through `approveAndCall`), withdrawals, and moves between accounts
    /// of one party.
    function moveFunds(uint256 seed) external action(A_MOVE_FUNDS) {
        address from = _anyone(seed);
        address[] storage mates = _partyAccounts[partyOf[from]];
        address to = mates[(seed >> 8) % mates.length];
        uint256 amount = 1 + (seed >> 16) % 200e9;
        uint256 op = (seed >> 60) % 5;
        if (op < 3) {
            vm.startPrank(from);
            if (op == 0) {
                poco.deposit(amount);
            } else if (op == 1) {
                rlc.approveAndCall(address(poco), amount, "");
                rlc.approve(address(poco), type(uint256).max);
            } else {
                poco.depositFor(amount, to);
            }
            vm.stopPrank();
            _credit(op == 2 ? to : from, amount);
            return;
        }
        uint256 free = _free(from);
        if (free == 0) return;
        amount = 1 + amount % free;
        vm.prank(from);
        if (op == 3) poco.withdraw(amount);
        else poco.withdrawTo(amount, to);
        expTotal[from] -= amount;
    }

    /// An honest worker's next step in the honest pool: join, leave, or release its bond
    /// (sometimes waiting for the exit delay first).
    function membership(uint256 seed) external action(A_MEMBERSHIP) {
        _membershipStep(_honestWorkers[seed % _honestWorkers.length], seed >> 8);
    }

    function warp(uint256 seed) external action(A_WARP) {
        uint256 k = seed % 10;
        if (k < 6) {
            _warpTo(_now + 1 + (seed >> 8) % 400);
        } else if (k < 8) {
            _warpTo(_now + 3 * T);
        } else if (k == 8) {
            _warpTo(_now + 1 days);
        } else if (_deals.length != 0) {
            Deal storage deal = _deals[(seed >> 8) % _deals.length].deal;
            uint256 ratio = (seed >> 16) % 2 == 0 ? 7 : 10;
            _warpTo(deal.startTime + ratio * deal.timeref);
        }
    }

    /// Gives a worker a reputation score (written in storage, as PocoFixture.setScore does).
    function setScore(uint256 seed) external action(A_SET_SCORE) {
        uint8[6] memory scores = [0, 5, 12, 30, 60, 100];
        _writeScore(_allWorkers[seed % _allWorkers.length], scores[(seed >> 8) % 6]);
    }

    // ================================================================== lifecycle actions

    function contribute(uint256 seed) external action(A_CONTRIBUTE) {
        (bool found, uint256 di, uint256 idx) = _findOpen(seed, W_ANY);
        if (!found) return;
        address worker = _pickVoter(di, idx, seed >> 64, false);
        if (worker == address(0)) return;
        (uint256 answer, bool lookAlike) = _pickAnswer(di, idx, seed >> 96);
        _vote(di, idx, worker, answer, lookAlike);
    }

    /// A vote on a committee task, matching a committee deal first when none is open.
    function contributeCommittee(uint256 seed) external action(A_CONTRIBUTE_COMMITTEE) {
        _driveCommitteeVote(seed);
    }

    function reveal(uint256 seed) external action(A_REVEAL) {
        uint256 n = _taskList.length;
        for (uint256 i; i < n; ++i) {
            bytes32 taskid = _taskList[(seed % n + i) % n];
            TaskRec storage t = _tasks[taskid];
            if (t.status != REVEALING || _now >= t.revealDeadline || t.reveals == t.winners) {
                continue;
            }
            _revealWinners(taskid, 1 + (seed >> 128) % t.winners);
            return;
        }
    }

    /// Finalizes a task in its reveal phase, revealing or waiting for the reveal deadline as
    /// needed; when there is none, honest workers first vote an open task to consensus.
    function finalize(uint256 seed) external action(A_FINALIZE) {
        bytes32 taskid = _findFinalizable(seed);
        if (taskid == 0) taskid = _driveConsensus(seed);
        if (taskid == 0) return;
        TaskRec storage t = _tasks[taskid];
        if (t.reveals == 0) _revealWinners(taskid, (seed >> 128) % 2 == 0 ? t.winners : 1);
        if (t.reveals < t.winners) {
            if (_now < t.revealDeadline && (seed >> 136) % 2 == 0) {
                _revealWinners(taskid, t.winners);
            } else {
                _warpTo(t.revealDeadline);
            }
        }
        _finalizeTask(taskid);
    }

    /// Reopens a task nobody revealed; drives one there when there is none.
    function reopen(uint256 seed) external action(A_REOPEN) {
        _driveReopen(seed);
    }

    /// Claims a task past its final deadline; when there is none, warps past the final
    /// deadline of a task still open.
    function claim(uint256 seed) external action(A_CLAIM) {
        _driveClaim(seed);
    }

    /// The trust-1 fast path, on a task nobody contributed to (a fresh deal when none is open).
    function contributeAndFinalize(uint256 seed) external action(A_CONTRIBUTE_AND_FINALIZE) {
        (bool found, uint256 di, uint256 idx) = _findOpen(seed, W_TRUST_ONE);
        if (!found) {
            if (seed % 4 == 0) {
                (found, di) = _matchCommitteeOf(seed, 1);
            }
            if (!found) di = _matchHonest(seed, (seed >> 2) % 3 == 0, false, 1);
            idx = _deals[di].deal.botFirst;
        }
        address worker = _isCommittee(_deals[di].deal)
            ? _pickVoter(di, idx, seed >> 64, false)
            : _honestWorkers[(seed >> 64) % _honestWorkers.length];
        if (worker == address(0)) return;
        _cafTask(di, idx, worker);
    }

    /// Tries to settle a finished task again, by every path: all must fail.
    function replayFinished(uint256 seed) external action(A_REPLAY) {
        uint256 n = _finished.length;
        if (n == 0) return;
        bytes32 taskid = _finished[seed % n];
        TaskRec storage t = _tasks[taskid];
        Deal memory deal = _deals[t.deal].deal;
        uint256 idx = t.idx;
        address[] memory voters = _sorted(_voters[taskid]);
        bytes memory data = _answerData(taskid, t.consensus);
        bytes memory callbackData = deal.callback == address(0) ? bytes("") : data;
        bytes memory call_ = abi.encodeCall(IPoco.claim, (deal, idx, voters));
        if (!_replay(_anyone(seed >> 8), call_, "a finished task was claimed")) ++t.payments;
        call_ = abi.encodeCall(
            IPoco.finalize, (deal, idx, keccak256(data), bytes(""), callbackData, voters)
        );
        if (!_replay(deal.scheduler, call_, "a finished task was finalized")) ++t.payments;
        address worker = _honestWorkers[(seed >> 16) % _honestWorkers.length];
        bytes32 digest = _digest(taskid, 0);
        (address challenge, bytes memory enclaveSign, bytes memory auth) =
            _fastPathProof(deal, taskid, worker, digest);
        call_ = abi.encodeCall(
            IPoco.contributeAndFinalize,
            (deal, idx, digest, bytes(""), callbackData, challenge, enclaveSign, auth)
        );
        if (!_replay(worker, call_, "a finished task was fast-pathed")) ++t.payments;
        _replay(worker, abi.encodeCall(IPoco.initialize, (deal, idx)), "a task initialized again");
    }

    // ================================================================== attacker actions

    /// Self-dealing: priced trust-1 tasks through the fast path, or trust-3 tasks two of its
    /// workers agree on (sometimes with a third that votes wrong); or selling its pool's work
    /// to an honest requester.
    function attackSelfDeal(uint256 seed) external action(A_ATTACK_SELF_DEAL) {
        if ((seed >> 200) % 4 == 0) _setPolicy(a.attacker, a.attackerPool, seed >> 100);
        uint256 variant = seed % 3;
        uint256 volume = 1 + (seed >> 8) % 3;
        uint256 trust = variant == 0 ? 1 : 3;
        WorkerpoolOrder memory wo = _attackerPoolOrder(seed >> 32, volume, 0);
        AppOrder memory ao;
        RequestOrder memory ro;
        Want memory w;
        w.volume = volume;
        w.trust = (seed >> 16) % 2 == 0 ? 1 : 3;
        if (variant == 2) {
            _freshOffers(seed >> 48, false, false);
            ao = _appOrder;
            w.requester = a.requester;
            w.key = a.requesterKey;
            w.app = a.app;
            ro = _newRequest(w);
        } else {
            ao = _attackerAppOrder(seed >> 48, volume);
            w.requester = a.attackerRequester;
            w.key = a.attackerRequesterKey;
            w.app = a.attackerApp;
            w.pool = a.attackerPool;
            w.trust = trust;
            ro = _newRequest(w);
        }
        DatasetOrder memory none;
        address payer = variant != 2 && (seed >> 56) % 3 == 0 ? a.attacker : address(0);
        uint256 di = _match(ao, none, wo, ro, payer, false, 0);
        ++_counts[variant == 2 ? O_ATTACKER_SALES : O_ATTACKER_SELF_DEALS];
        Deal storage deal = _deals[di].deal;
        for (uint256 i; i < deal.botSize; ++i) {
            uint256 idx = deal.botFirst + i;
            if (deal.trust == 1) {
                uint256 n = _attackerWorkers.length;
                _cafTask(di, idx, _attackerWorkers[(seed % n + i) % n]);
            } else {
                _attackerAgree(di, idx, (seed >> 64) + i);
            }
        }
    }

    /// The attacker's requester asks the honest pool to run the attacker's app, whose answers
    /// never converge: honest workers answer differently, the task fails and the attacker
    /// claims it, refunded.
    function attackGrief(uint256 seed) external action(A_ATTACK_GRIEF) {
        bool committee = seed % 3 == 0;
        if (committee) {
            _fillPool(4);
            committee = expActive[a.pool] >= 4;
        }
        (,, WorkerpoolOrder memory wo) = _freshOffers(seed >> 8, false, false);
        AppOrder memory ao = _attackerAppOrder(seed >> 16, 1);
        Want memory w;
        w.requester = a.attackerRequester;
        w.key = a.attackerRequesterKey;
        w.app = a.attackerApp;
        w.pool = committee ? a.pool : address(0);
        w.tag = committee ? COMMITTEE : bytes32(0);
        w.trust = (committee ? 4 : 3) + (seed >> 4) % 3;
        w.volume = 1;
        DatasetOrder memory none;
        uint256 di = _match(ao, none, wo, _newRequest(w), address(0), true, 0);
        uint256 idx = _deals[di].deal.botFirst;
        bytes32 taskid = _taskId(_deals[di].dealid, idx);
        for (uint256 k; k < 2; ++k) {
            if (!_isOpen(taskid)) break;
            address worker = _pickVoter(di, idx, (seed >> 24) + k, false);
            if (worker == address(0)) break;
            _vote(di, idx, worker, NOISE + ++_nonce, false);
        }
        _warpTo(_finalDeadline(_deals[di].deal));
        _claimTask(di, idx, a.attacker);
        ++_counts[O_ATTACKER_GRIEF_CLAIMS];
    }

    /// An attacker worker joins, leaves or releases its bond in the honest pool.
    function attackChurn(uint256 seed) external action(A_ATTACK_CHURN) {
        _membershipStep(_attackerWorkers[seed % _attackerWorkers.length], seed >> 8);
    }

    /// An attacker worker votes for the hash an honest worker published, last bit flipped,
    /// sealed with the true digest it never computed.
    function attackLookAlike(uint256 seed) external action(A_ATTACK_LOOK_ALIKE) {
        (bool found, uint256 di, uint256 idx) = _findOpen(seed, W_COPYABLE);
        address copier;
        if (found) copier = _pickVoter(di, idx, seed >> 64, true);
        if (copier == address(0)) {
            // A task no single vote can settle, on which an honest worker publishes first.
            di = _matchHonest(seed, false, false, 40);
            idx = _deals[di].deal.botFirst;
            _vote(di, idx, _pickVoter(di, idx, seed >> 72, false), 0, false);
            copier = _pickVoter(di, idx, seed >> 64, true);
            if (copier == address(0) || !_isOpen(_taskId(_deals[di].dealid, idx))) return;
        }
        _vote(di, idx, copier, 0, true);
    }

    /// One call that must fail. The fallback when a variant has nothing to act on: a deposit
    /// for the burn account.
    function attackForbidden(uint256 seed) external action(A_ATTACK_FORBIDDEN) {
        uint256 v = seed % 11;
        bool done;
        if (v == 1) done = _tryStealCommittee(seed >> 8);
        else if (v == 2) done = _tryFinalizeOthers(seed >> 8);
        else if (v == 3) done = _tryEarlyClaim(seed >> 8);
        else if (v == 4) done = _tryForgedAuthorization(seed >> 8);
        else if (v == 5) done = _tryUndrawnSeat(seed >> 8);
        else if (v == 6) done = _tryFalseReveal(seed >> 8);
        else if (v == 7) done = _tryOverdraw(seed >> 8);
        else if (v == 8) done = _tryMatchForOthers(seed >> 8);
        else if (v == 9) done = _tryCloseOthersOrder(seed >> 8);
        else if (v == 10) done = _tryBondTricks(seed >> 8);
        if (!done) _tryBurnDeposit(seed >> 8);
    }

    // ================================================================== drivers

    /// Drives, once the run is near its end, every outcome it must reach and has not.
    function _catchUp() internal {
        uint256 seed = uint256(keccak256(abi.encode(handlerCalls, _now)));
        if (_counts[O_COMMITTEE_CONTRIBUTIONS] == 0) {
            _driveCommitteeVote(seed);
            ++_counts[O_CATCH_UPS];
        }
        if (_counts[O_REOPENS] == 0) {
            _driveReopen(seed);
            ++_counts[O_CATCH_UPS];
        }
        if (_counts[O_CLAIMS_UNSET] + _counts[O_CLAIMS_ACTIVE] + _counts[O_CLAIMS_REVEALING] == 0) {
            _driveClaim(seed);
            ++_counts[O_CATCH_UPS];
        }
    }

    function _driveCommitteeVote(uint256 seed) internal {
        (bool found, uint256 di, uint256 idx) = _findOpen(seed, W_COMMITTEE);
        address worker;
        if (found) worker = _pickVoter(di, idx, seed >> 64, false);
        if (worker == address(0)) {
            (found, di) = _matchCommittee(seed);
            require(found, "no committee deal could be matched");
            idx = _deals[di].deal.botFirst;
            worker = _pickVoter(di, idx, seed >> 64, false);
        }
        (uint256 answer, bool lookAlike) = _pickAnswer(di, idx, seed >> 96);
        _vote(di, idx, worker, answer, lookAlike);
    }

    function _driveReopen(uint256 seed) internal {
        bytes32 taskid = _findReopenable(seed);
        if (taskid == 0) {
            (bool found, uint256 di, uint256 idx) = _findOpen(seed, W_PLAIN_FRESH);
            if (!found) {
                di = _matchHonest(seed, false, false, 1 + seed % 2);
                idx = _deals[di].deal.botFirst;
            }
            taskid = _taskId(_deals[di].dealid, idx);
            _vote(di, idx, _pickVoter(di, idx, seed >> 64, false), 0, false);
            require(_tasks[taskid].status == REVEALING, "one vote settles trust 2");
        }
        _warpTo(_tasks[taskid].revealDeadline);
        _reopenTask(taskid);
    }

    function _driveClaim(uint256 seed) internal {
        if (seed % 3 == 0 && _claimAfterReveal(seed >> 2)) return;
        (bool found, uint256 di, uint256 idx) = _findTask(seed, true);
        if (!found) {
            (found, di, idx) = _findTask(seed, false);
            if (!found) {
                di = _matchHonest(seed, false, true, 0);
                idx = _deals[di].deal.botFirst;
            }
            _warpTo(_finalDeadline(_deals[di].deal));
        }
        _claimTask(di, idx, _anyone(seed >> 64));
    }

    /// A task in its reveal phase that some winner revealed (or that one reveals now) is left
    /// unfinalized and claimed past its final deadline: what it seizes goes to the proved.
    function _claimAfterReveal(uint256 seed) internal returns (bool) {
        bytes32 taskid = _findRevealed(seed);
        if (taskid == 0) taskid = _driveConsensus(seed);
        if (taskid == 0) return false;
        TaskRec storage t = _tasks[taskid];
        if (t.reveals == 0) _revealWinners(taskid, 1 + (seed >> 8) % t.winners);
        _warpTo(_finalDeadline(_deals[t.deal].deal));
        _claimTask(t.deal, t.idx, _anyone(seed >> 64));
        return true;
    }

    /// Honest workers (or seat holders) vote the true answer on an open task of the honest
    /// pool until it reaches consensus; returns the task, or zero if it did not get there.
    function _driveConsensus(uint256 seed) internal returns (bytes32) {
        (bool found, uint256 di, uint256 idx) = _findOpen(seed, W_HONEST);
        if (!found) return 0;
        bytes32 taskid = _taskId(_deals[di].dealid, idx);
        for (uint256 k; k < MAX_VOTES && _isOpen(taskid); ++k) {
            address worker = _pickVoter(di, idx, (seed >> 64) + k, false);
            if (worker == address(0)) break;
            _vote(di, idx, worker, 0, false);
        }
        return _tasks[taskid].status == REVEALING ? taskid : bytes32(0);
    }

    /// The attacker's workers agree on its own task (a third sometimes votes wrong first),
    /// reveal and the attacker finalizes.
    function _attackerAgree(uint256 di, uint256 idx, uint256 seed) internal {
        bytes32 taskid = _taskId(_deals[di].dealid, idx);
        uint256 n = _attackerWorkers.length;
        if (seed % 3 == 0) _vote(di, idx, _attackerWorkers[(seed % n + 2) % n], 1, false);
        for (uint256 k; k < 2 && _isOpen(taskid); ++k) {
            _vote(di, idx, _attackerWorkers[(seed % n + k) % n], 0, false);
        }
        if (_tasks[taskid].status != REVEALING) return;
        _revealWinners(taskid, _tasks[taskid].winners);
        _finalizeTask(taskid);
    }

    // ================================================================== adversarial calls

    function _tryBurnDeposit(uint256 seed) internal {
        uint256 amount = 1 + seed % 100e9;
        _forbidden(
            a.attacker,
            address(poco),
            abi.encodeCall(IPoco.depositFor, (amount, BURN)),
            IPocoErrors.BurnAccountDeposit.selector,
            "a deposit for the burn account"
        );
    }

    /// An honest requester's committee request, pinned to the honest pool (or open), matched
    /// with the attacker's pool: everything else about the match is valid.
    function _tryStealCommittee(uint256 seed) internal returns (bool) {
        (AppOrder memory ao,,) = _freshOffers(seed, false, false);
        Want memory w;
        w.requester = a.requester;
        w.key = a.requesterKey;
        w.app = a.app;
        w.pool = seed % 2 == 0 ? a.pool : address(0);
        w.tag = COMMITTEE;
        w.trust = 4;
        w.volume = 1;
        RequestOrder memory ro = _newRequest(w);
        WorkerpoolOrder memory wo = _attackerPoolOrder(seed >> 8, 1, COMMITTEE);
        _ensureFree(a.requester, ao.appprice + wo.workerpoolprice);
        _ensureFree(a.attacker, ao.appprice + wo.workerpoolprice * 2);
        DatasetOrder memory none;
        bytes memory data = (seed >> 4) % 2 == 0
            ? abi.encodeCall(IPoco.matchOrders, (ao, none, wo, ro))
            : abi.encodeCall(IPoco.sponsorMatchOrders, (ao, none, wo, ro));
        _forbidden(
            a.attacker,
            address(poco),
            data,
            IPocoErrors.CommitteePoolNotChosen.selector,
            "an honest committee request matched with the attacker's pool"
        );
        return true;
    }

    function _tryFinalizeOthers(uint256 seed) internal returns (bool) {
        uint256 n = _taskList.length;
        for (uint256 i; i < n; ++i) {
            bytes32 taskid = _taskList[(seed % n + i) % n];
            TaskRec storage t = _tasks[taskid];
            Deal memory deal = _deals[t.deal].deal;
            if (t.status != REVEALING || deal.scheduler != a.scheduler) continue;
            bytes memory data = seed % 2 == 0
                ? abi.encodeCall(
                    IPoco.finalize,
                    (
                        deal,
                        t.idx,
                        _digest(taskid, t.consensus),
                        bytes(""),
                        bytes(""),
                        _sorted(_voters[taskid])
                    )
                )
                : abi.encodeCall(
                    IPoco.reopen,
                    (
                        deal,
                        t.idx,
                        keccak256(abi.encodePacked(taskid, _digest(taskid, t.consensus))),
                        new address[](0)
                    )
                );
            _forbidden(
                a.attacker,
                address(poco),
                data,
                IPocoErrors.OnlyScheduler.selector,
                "the attacker settled a task of the honest pool"
            );
            return true;
        }
        return false;
    }

    function _tryEarlyClaim(uint256 seed) internal returns (bool) {
        uint256 n = _deals.length;
        for (uint256 i; i < n; ++i) {
            uint256 di = (seed % n + i) % n;
            Deal memory deal = _deals[di].deal;
            if (_now >= _finalDeadline(deal)) continue;
            uint256 idx = deal.botFirst + (seed >> 16) % deal.botSize;
            bytes32 taskid = _taskId(_deals[di].dealid, idx);
            if (_statusOf(taskid) > REVEALING) continue;
            _forbidden(
                a.attacker,
                address(poco),
                abi.encodeCall(IPoco.claim, (deal, idx, _sorted(_voters[taskid]))),
                IPocoErrors.FinalDeadlineNotReached.selector,
                "a task claimed before its final deadline"
            );
            return true;
        }
        return false;
    }

    /// An attacker worker contributes to a plain task of the honest pool with an
    /// authorization it signed itself.
    function _tryForgedAuthorization(uint256 seed) internal returns (bool) {
        (bool found, uint256 di, uint256 idx) = _findOpen(seed, W_PLAIN);
        if (!found) return false;
        address worker = _pickVoter(di, idx, seed >> 64, true);
        if (worker == address(0)) return false;
        Deal memory deal = _deals[di].deal;
        bytes32 taskid = _taskId(_deals[di].dealid, idx);
        bytes32 digest = _digest(taskid, 0);
        bytes32 resultHash = keccak256(abi.encodePacked(taskid, digest));
        bytes32 seal = keccak256(abi.encodePacked(worker, taskid, digest));
        address challenge;
        bytes memory enclaveSign;
        if (_isTee(deal)) {
            challenge = a.enclave;
            enclaveSign = _enclaveSignature(resultHash, seal);
        }
        bytes memory auth = _sign(
            a.attackerKey, _ethSigned(keccak256(abi.encodePacked(worker, taskid, challenge)))
        );
        _forbidden(
            worker,
            address(poco),
            abi.encodeCall(
                IPoco.contribute, (deal, idx, resultHash, seal, challenge, enclaveSign, auth)
            ),
            IPocoErrors.InvalidAuthorization.selector,
            "a contribution with a forged authorization"
        );
        return true;
    }

    /// A worker without a seat votes on a committee task.
    function _tryUndrawnSeat(uint256 seed) internal returns (bool) {
        (bool found, uint256 di, uint256 idx) = _findOpen(seed, W_COMMITTEE);
        if (!found || _isTee(_deals[di].deal)) return false;
        Deal memory deal = _deals[di].deal;
        address[] memory seats = poco.viewCommittee(deal, idx);
        bytes32 taskid = _taskId(_deals[di].dealid, idx);
        uint256 n = _allWorkers.length;
        for (uint256 i; i < n; ++i) {
            address worker = _allWorkers[(n - 1 + n - i) % n];
            if (_count(seats, worker) != 0 || _votes[taskid][worker].status != UNSET) continue;
            bytes32 digest = _digest(taskid, 0);
            _forbidden(
                worker,
                address(poco),
                abi.encodeCall(
                    IPoco.contribute,
                    (
                        deal,
                        idx,
                        keccak256(abi.encodePacked(taskid, digest)),
                        keccak256(abi.encodePacked(worker, taskid, digest)),
                        address(0),
                        bytes(""),
                        bytes("")
                    )
                ),
                IPocoErrors.NotDrawn.selector,
                "a vote on a committee seat not drawn"
            );
            return true;
        }
        return false;
    }

    /// An attacker worker reveals the consensus it did not vote for (or never voted).
    function _tryFalseReveal(uint256 seed) internal returns (bool) {
        uint256 n = _taskList.length;
        for (uint256 i; i < n; ++i) {
            bytes32 taskid = _taskList[(seed % n + i) % n];
            TaskRec storage t = _tasks[taskid];
            if (t.status != REVEALING || _now >= t.revealDeadline) continue;
            for (uint256 k; k < _attackerWorkers.length; ++k) {
                address worker = _attackerWorkers[k];
                Vote storage v = _votes[taskid][worker];
                if (v.status == CONTRIBUTED && v.answer == t.consensus) continue;
                _forbidden(
                    worker,
                    address(poco),
                    abi.encodeCall(IPoco.reveal, (taskid, _digest(taskid, t.consensus))),
                    v.status == CONTRIBUTED
                        ? IPocoErrors.RevealMismatch.selector
                        : IPocoErrors.NoContribution.selector,
                    "a reveal of a result the worker did not vote for"
                );
                return true;
            }
        }
        return false;
    }

    function _tryOverdraw(uint256 seed) internal returns (bool) {
        address[] storage mine = _partyAccounts[attackerParty];
        address account = mine[seed % mine.length];
        uint256 amount = _free(account) + 1 + (seed >> 8) % 1e9;
        bytes memory data = (seed >> 40) % 2 == 0
            ? abi.encodeCall(IPoco.withdraw, (amount))
            : abi.encodeCall(IPoco.withdrawTo, (amount, a.attacker));
        _forbidden(
            account,
            address(poco),
            data,
            IPocoErrors.InsufficientBalance.selector,
            "a withdrawal beyond the free balance"
        );
        return true;
    }

    /// Deposit-and-match of an honest requester's request by the attacker, or a direct call of
    /// the token callback.
    function _tryMatchForOthers(uint256 seed) internal returns (bool) {
        if (seed % 2 == 0) {
            _forbidden(
                a.attacker,
                address(poco),
                abi.encodeCall(IPoco.receiveApproval, (a.attacker, 1e9, address(rlc), bytes(""))),
                IPocoErrors.UnauthorizedTokenCall.selector,
                "a direct call of the token callback"
            );
            return true;
        }
        (AppOrder memory ao,, WorkerpoolOrder memory wo) = _freshOffers(seed, false, false);
        Want memory w;
        w.requester = a.requester;
        w.key = a.requesterKey;
        w.app = a.app;
        w.trust = 1;
        w.volume = 1;
        RequestOrder memory ro = _newRequest(w);
        DatasetOrder memory none;
        _forbidden(
            a.attacker,
            address(rlc),
            abi.encodeCall(
                RLC.approveAndCall,
                (address(poco), 1e9, abi.encodeCall(IPoco.matchOrders, (ao, none, wo, ro)))
            ),
            IPocoErrors.CallerIsNotTheRequester.selector,
            "a deposit-and-match of another requester's request"
        );
        return true;
    }

    function _tryCloseOthersOrder(uint256 seed) internal returns (bool) {
        uint256 k = seed % 3;
        bytes memory data;
        if (k == 0) {
            AppOrderOperation memory op = AppOrderOperation(_appOrder, OrderOperation.CLOSE, "");
            op.sign = _signOperation(a.attackerKey, OrderHashing.hashOperation(op.order, 1));
            data = abi.encodeCall(IPoco.manageAppOrder, (op));
        } else if (k == 1) {
            data = abi.encodeCall(
                IPoco.manageWorkerpoolOrder,
                (WorkerpoolOrderOperation(_poolOrder, OrderOperation.CLOSE, ""))
            );
        } else {
            if (_pendingHash == 0) return false;
            data = abi.encodeCall(
                IPoco.manageRequestOrder,
                (RequestOrderOperation(_pendingRequest, OrderOperation.CLOSE, ""))
            );
        }
        _forbidden(
            a.attacker,
            address(poco),
            data,
            IPocoErrors.NotOrderOwner.selector,
            "an order closed by someone else"
        );
        return true;
    }

    /// An active member of the attacker's pool releases its bond, or joins again.
    function _tryBondTricks(uint256 seed) internal returns (bool) {
        address worker = _attackerWorkers[seed % _attackerWorkers.length];
        bool release = (seed >> 8) % 2 == 0;
        _forbidden(
            worker,
            address(poco),
            release
                ? abi.encodeCall(IPoco.releaseBond, (a.attackerPool))
                : abi.encodeCall(IPoco.joinWorkerpool, (a.attackerPool)),
            release ? IPocoErrors.BondLocked.selector : IPocoErrors.AlreadyMember.selector,
            "a bond released while active, or a second membership"
        );
        return true;
    }

    /// Makes a call that must fail with `expected`; anything else is a violation.
    function _forbidden(
        address from,
        address target,
        bytes memory data,
        bytes4 expected,
        string memory what
    ) internal {
        vm.prank(from);
        (bool ok, bytes memory answer) = target.call(data);
        if (ok) {
            _violation(what);
        } else if (answer.length < 4 || bytes4(answer) != expected) {
            _violation(string.concat(what, " (refused for another reason)"));
        } else {
            ++_counts[O_FAILED_ADVERSARIAL];
        }
    }

    /// Makes a call on a finished task that must fail; returns whether it did.
    function _replay(address from, bytes memory data, string memory what)
        internal
        returns (bool refused)
    {
        vm.prank(from);
        (bool ok,) = address(poco).call(data);
        if (ok) _violation(what);
        else ++_counts[O_REPLAYS_REFUSED];
        return !ok;
    }

    // ================================================================== matching

    /// A deal of the honest market: plain or TEE, with or without dataset, sponsored or not,
    /// sometimes with a callback, sometimes the rest of a partly filled request.
    function _matchHonest(uint256 seed, bool tee, bool anyTrust, uint256 trust)
        internal
        returns (uint256 di)
    {
        bool withDataset = seed % 2 == 0;
        RequestOrder memory ro;
        if (
            !tee && anyTrust && (seed >> 3) % 2 == 0 && _pendingHash != 0
                && _remaining(_pendingHash) != 0
        ) {
            ro = _pendingRequest;
            withDataset = ro.dataset != address(0);
        } else {
            uint8[8] memory plainTrusts = [0, 1, 1, 2, 3, 4, 5, 40];
            uint8[4] memory teeTrusts = [0, 1, 3, 4];
            Want memory w;
            bool second = (seed >> 4) % 2 == 1;
            w.requester = second ? a.requester2 : a.requester;
            w.key = second ? a.requester2Key : a.requesterKey;
            w.app = a.app;
            w.dataset = withDataset ? a.dataset : address(0);
            w.pool = (seed >> 5) % 2 == 0 ? address(0) : a.pool;
            w.tag = tee && (seed >> 6) % 2 == 0 ? TEE : bytes32(0);
            if (!anyTrust) w.trust = trust;
            else w.trust = tee ? teeTrusts[(seed >> 8) % 4] : plainTrusts[(seed >> 8) % 8];
            w.volume = 1 + (seed >> 16) % 4;
            if ((seed >> 24) % 3 == 0) w.callback = _consumers[(seed >> 26) % _consumers.length];
            ro = _newRequest(w);
        }
        (AppOrder memory ao, DatasetOrder memory dso, WorkerpoolOrder memory wo) =
            _freshOffers(seed >> 32, tee, withDataset);
        bool sponsored = (seed >> 1) % 3 == 0;
        uint256 how = sponsored ? 1 : ((seed >> 40) % 3 == 0 ? 2 : 0);
        di = _match(ao, dso, wo, ro, sponsored ? a.sponsor : address(0), false, how);
        if (!tee) {
            _pendingRequest = ro;
            _pendingHash = _hashRequest(ro);
        }
    }

    function _matchCommittee(uint256 seed) internal returns (bool, uint256) {
        uint8[8] memory trusts = [1, 2, 3, 4, 5, 6, 7, 9];
        return _matchCommitteeOf(seed, trusts[seed % 8]);
    }

    /// A committee deal of `trust` on the honest pool, which the request names; the pool is
    /// filled first when it lacks members (bringing back members whose bonds can be released).
    function _matchCommitteeOf(uint256 seed, uint256 trust) internal returns (bool, uint256) {
        _fillPool(_minMembers(trust));
        if (expActive[a.pool] < _minMembers(trust)) {
            trust = 3;
            if (expActive[a.pool] < 4) return (false, 0);
        }
        bool tee = (seed >> 3) % 4 == 0;
        bool withDataset = (seed >> 5) % 2 == 0;
        Want memory w;
        bool second = (seed >> 6) % 2 == 1;
        w.requester = second ? a.requester2 : a.requester;
        w.key = second ? a.requester2Key : a.requesterKey;
        w.app = a.app;
        w.dataset = withDataset ? a.dataset : address(0);
        w.pool = a.pool;
        w.tag = COMMITTEE;
        w.trust = trust;
        w.volume = 1 + (seed >> 8) % 3;
        if ((seed >> 12) % 3 == 0) w.callback = _consumers[(seed >> 14) % _consumers.length];
        RequestOrder memory ro = _newRequest(w);
        (AppOrder memory ao, DatasetOrder memory dso, WorkerpoolOrder memory wo) =
            _freshOffers(seed >> 32, tee, withDataset);
        bool sponsored = (seed >> 20) % 3 == 0;
        return (true, _match(ao, dso, wo, ro, sponsored ? a.sponsor : address(0), false, 0));
    }

    /// Matches the orders (sponsored by `payer` unless it is zero; else `how` 2 is the
    /// requester's deposit-and-match through `approveAndCall`, anything else `matchOrders`),
    /// checks the stored deal against the one built here from the orders, and records it.
    function _match(
        AppOrder memory ao,
        DatasetOrder memory dso,
        WorkerpoolOrder memory wo,
        RequestOrder memory ro,
        address payer,
        bool noisy,
        uint256 how
    ) internal returns (uint256 di) {
        bytes32 rh = _hashRequest(ro);
        Deal memory d = _expectedDeal(ao, dso, wo, ro, rh);
        d.sponsor = payer == address(0) ? ro.requester : payer;
        _fundDeal(d);
        vm.startPrank(payer != address(0) ? payer : ro.requester);
        if (payer != address(0)) {
            poco.sponsorMatchOrders(ao, dso, wo, ro);
        } else if (how == 2) {
            bytes memory data = abi.encodeCall(IPoco.matchOrders, (ao, dso, wo, ro));
            rlc.approveAndCall(address(poco), RLC_UNIT, data);
            rlc.approve(address(poco), type(uint256).max);
            _credit(ro.requester, RLC_UNIT);
        } else {
            poco.matchOrders(ao, dso, wo, ro);
        }
        vm.stopPrank();
        bytes32 dealid = keccak256(abi.encodePacked(rh, d.botFirst));
        bytes32 hash = keccak256(abi.encode(d));
        require(poco.viewDealHash(dealid) == hash, "stored deal differs from the orders'");
        _deals.push(DealRec(d, dealid, hash, noisy));
        di = _deals.length - 1;
        _recordMatch(d, ao, dso, wo, rh);
        if (_isCommittee(d)) _seedCommittee(di);
    }

    /// The deal `matchOrders` must write, built from the orders and the model's pool policy.
    function _expectedDeal(
        AppOrder memory ao,
        DatasetOrder memory dso,
        WorkerpoolOrder memory wo,
        RequestOrder memory ro,
        bytes32 rh
    ) internal view returns (Deal memory d) {
        uint256 volume = _min(_remaining(_hashApp(ao)), _remaining(_hashPool(wo)));
        volume = _min(volume, _remaining(rh));
        if (dso.dataset != address(0)) volume = _min(volume, _remaining(_hashDataset(dso)));
        require(volume != 0, "no volume left");
        d.requestHash = rh;
        d.app = ao.app;
        d.appOwner = ao.app == a.app ? a.appOwner : a.attacker;
        d.appPrice = ao.appprice;
        if (dso.dataset != address(0)) {
            d.dataset = dso.dataset;
            d.datasetOwner = a.datasetOwner;
            d.datasetPrice = dso.datasetprice;
        }
        d.workerpool = wo.workerpool;
        d.scheduler = wo.workerpool == a.pool ? a.scheduler : a.attacker;
        d.workerpoolPrice = wo.workerpoolprice;
        d.requester = ro.requester;
        d.beneficiary = ro.beneficiary;
        d.callback = ro.callback;
        d.tag = ao.tag | (dso.tag & ~bytes32(uint256(0xe))) | ro.tag;
        d.category = ro.category;
        d.trust = ro.trust == 0 ? 1 : ro.trust;
        d.startTime = _now;
        d.timeref = T;
        d.botFirst = expConsumed[rh];
        d.botSize = volume;
        d.workerStake = wo.workerpoolprice * _stakeRatio[wo.workerpool] / 100;
        d.schedulerRewardRatio = _schedulerRatio[wo.workerpool];
        d.paramsHash = keccak256(bytes(ro.params));
    }

    function _fundDeal(Deal memory d) internal {
        uint256 price = (d.appPrice + d.datasetPrice + d.workerpoolPrice) * d.botSize;
        uint256 stake = d.workerpoolPrice * SCHEDULER_STAKE_RATIO / 100 * d.botSize;
        if (d.sponsor == d.scheduler) {
            _ensureFree(d.sponsor, price + stake);
        } else {
            _ensureFree(d.sponsor, price);
            _ensureFree(d.scheduler, stake);
        }
    }

    function _recordMatch(
        Deal memory d,
        AppOrder memory ao,
        DatasetOrder memory dso,
        WorkerpoolOrder memory wo,
        bytes32 rh
    ) internal {
        _lock(d.sponsor, (d.appPrice + d.datasetPrice + d.workerpoolPrice) * d.botSize);
        _lock(d.scheduler, d.workerpoolPrice * SCHEDULER_STAKE_RATIO / 100 * d.botSize);
        expConsumed[_hashApp(ao)] += d.botSize;
        if (dso.dataset != address(0)) expConsumed[_hashDataset(dso)] += d.botSize;
        expConsumed[_hashPool(wo)] += d.botSize;
        expConsumed[rh] = d.botFirst + d.botSize;
        ++_counts[O_DEALS];
        if (d.sponsor != d.requester) ++_counts[O_SPONSORED];
        if (d.botFirst != 0) ++_counts[O_PARTIAL_FILLS];
        if (d.dataset != address(0)) ++_counts[O_WITH_DATASET];
        if (_isCommittee(d)) ++_counts[O_COMMITTEE_DEALS];
        if (_isTee(d)) ++_counts[O_TEE_DEALS];
        if (d.callback != address(0)) ++_counts[O_CALLBACK_DEALS];
    }

    /// Moves the chain past the seed block of a committee deal, gives it a hash and fixes the
    /// draw.
    function _seedCommittee(uint256 di) internal {
        DealRec storage r = _deals[di];
        Draw memory draw = poco.viewDraw(r.dealid);
        require(draw.seedBlock == _block + SEED_DELAY, "seed block");
        require(draw.memberCount == expActive[r.deal.workerpool], "members at match");
        _block = draw.seedBlock + 1;
        vm.roll(_block);
        vm.setBlockhash(draw.seedBlock, keccak256(abi.encode("seed", r.dealid)));
        poco.drawCommittee(r.deal);
    }

    // ================================================================== orders

    function _freshOffers(uint256 seed, bool tee, bool withDataset)
        internal
        returns (AppOrder memory ao, DatasetOrder memory dso, WorkerpoolOrder memory wo)
    {
        if (_remaining(_hashApp(tee ? _teeAppOrder : _appOrder)) == 0) {
            _newAppOrder(seed, tee);
        }
        if (_remaining(_hashPool(_poolOrder)) == 0) _newPoolOrder(seed >> 64);
        ao = tee ? _teeAppOrder : _appOrder;
        wo = _poolOrder;
        if (withDataset) {
            if (_remaining(_hashDataset(_datasetOrder)) == 0) _newDatasetOrder(seed >> 128);
            dso = _datasetOrder;
        }
    }

    function _newAppOrder(uint256 seed, bool tee) internal {
        AppOrder memory o;
        o.app = a.app;
        o.appprice = _price(seed, 5e9);
        o.volume = 1 + (seed >> 64) % 6;
        o.tag = tee ? TEE : bytes32(0);
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashApp(o);
        if ((seed >> 128) % 4 == 0) {
            vm.prank(a.appOwner);
            poco.manageAppOrder(AppOrderOperation(o, OrderOperation.SIGN, ""));
        } else {
            o.sign = _sign(a.appOwnerKey, h);
        }
        _trackOrder(h, o.volume);
        if (tee) _teeAppOrder = o;
        else _appOrder = o;
    }

    function _newDatasetOrder(uint256 seed) internal {
        DatasetOrder memory o;
        o.dataset = a.dataset;
        o.datasetprice = _price(seed, 3e9);
        o.volume = 1 + (seed >> 64) % 6;
        o.tag = (seed >> 100) % 2 == 0 ? bytes32(0) : bytes32(uint256(2));
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashDataset(o);
        o.sign = _sign(a.datasetOwnerKey, h);
        _trackOrder(h, o.volume);
        _datasetOrder = o;
    }

    function _newPoolOrder(uint256 seed) internal {
        WorkerpoolOrder memory o;
        o.workerpool = a.pool;
        o.workerpoolprice = seed % 6 == 0 ? 0 : 1 + (seed >> 8) % 40e9;
        o.volume = 1 + (seed >> 64) % 8;
        o.tag = TEE | COMMITTEE;
        o.trust = 100;
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashPool(o);
        if ((seed >> 128) % 4 == 0) {
            vm.prank(a.scheduler);
            poco.manageWorkerpoolOrder(WorkerpoolOrderOperation(o, OrderOperation.SIGN, ""));
        } else {
            o.sign = _sign(a.schedulerKey, h);
        }
        _trackOrder(h, o.volume);
        _poolOrder = o;
    }

    function _attackerAppOrder(uint256 seed, uint256 volume) internal returns (AppOrder memory o) {
        o.app = a.attackerApp;
        o.appprice = _price(seed, 5e9);
        o.volume = volume;
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashApp(o);
        o.sign = _sign(a.attackerKey, h);
        _trackOrder(h, volume);
    }

    function _attackerPoolOrder(uint256 seed, uint256 volume, bytes32 tag)
        internal
        returns (WorkerpoolOrder memory o)
    {
        o.workerpool = a.attackerPool;
        o.workerpoolprice = seed % 5 == 0 ? 0 : 1 + (seed >> 8) % 50e9;
        o.volume = volume;
        o.tag = tag;
        o.trust = 100;
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashPool(o);
        o.sign = _sign(a.attackerKey, h);
        _trackOrder(h, volume);
    }

    function _newRequest(Want memory w) internal returns (RequestOrder memory o) {
        o.app = w.app;
        o.appmaxprice = 1000e9;
        o.dataset = w.dataset;
        o.datasetmaxprice = w.dataset == address(0) ? 0 : 1000e9;
        o.workerpool = w.pool;
        o.workerpoolmaxprice = 1000e9;
        o.requester = w.requester;
        o.volume = w.volume;
        o.tag = w.tag;
        o.trust = w.trust;
        o.beneficiary = a.beneficiary;
        o.callback = w.callback;
        o.params = "invariant";
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashRequest(o);
        o.sign = _sign(w.key, h);
        _trackOrder(h, w.volume);
    }

    function _price(uint256 seed, uint256 max) internal pure returns (uint256) {
        return seed % 4 == 0 ? 0 : 1 + (seed >> 2) % max;
    }

    function _setPolicy(address owner, address pool, uint256 seed) internal {
        uint256 stakeRatio = seed % 101;
        uint256 schedulerRatio = (seed >> 8) % 51;
        vm.prank(owner);
        if ((seed >> 16) % 2 == 0) Workerpool(pool).changePolicy(stakeRatio, schedulerRatio);
        else wpRegistry.setPolicy(pool, stakeRatio, schedulerRatio);
        _stakeRatio[pool] = stakeRatio;
        _schedulerRatio[pool] = schedulerRatio;
    }

    // ================================================================== lifecycle steps

    /// Casts `worker`'s vote for `answer` (or a look-alike of its hash) with whatever the deal
    /// needs (authorization, enclave signature), then checks poco against the model.
    function _vote(uint256 di, uint256 idx, address worker, uint256 answer, bool lookAlike)
        internal
    {
        DealRec storage r = _deals[di];
        Deal memory deal = r.deal;
        bytes32 taskid = _taskId(r.dealid, idx);
        bytes32 digest = _digest(taskid, answer);
        bytes32 resultHash = keccak256(abi.encodePacked(taskid, digest));
        if (lookAlike) resultHash ^= bytes32(uint256(1));
        bytes32 seal = keccak256(abi.encodePacked(worker, taskid, digest));
        uint256 seats = _isCommittee(deal) ? _count(poco.viewCommittee(deal, idx), worker) : 0;
        _ensureFree(worker, deal.workerStake);
        _contributeCall(deal, idx, worker, taskid, resultHash, seal);
        uint256 weight = _modelVote(taskid, di, idx, worker, answer, seats);
        require(poco.viewContribution(taskid, worker).weight == weight, "recorded weight");
        require(uint8(poco.viewTask(taskid).status) == _tasks[taskid].status, "status of a vote");
        ++_counts[O_CONTRIBUTIONS];
        if (answer != 0) ++_counts[O_WRONG_VOTES];
        if (lookAlike) ++_counts[O_LOOK_ALIKE_VOTES];
        if (_isCommittee(deal)) ++_counts[O_COMMITTEE_CONTRIBUTIONS];
        if (_isTee(deal)) ++_counts[O_TEE_CONTRIBUTIONS];
    }

    function _contributeCall(
        Deal memory deal,
        uint256 idx,
        address worker,
        bytes32 taskid,
        bytes32 resultHash,
        bytes32 seal
    ) internal {
        address challenge;
        bytes memory enclaveSign;
        bytes memory auth;
        if (_isTee(deal)) {
            challenge = a.enclave;
            enclaveSign = _enclaveSignature(resultHash, seal);
        }
        if (_isTee(deal) || !_isCommittee(deal)) {
            auth = _authorization(deal.scheduler, worker, taskid, challenge);
        }
        vm.prank(worker);
        poco.contribute(deal, idx, resultHash, seal, challenge, enclaveSign, auth);
    }

    /// Reveals up to `count` more winners of a task in its reveal phase.
    function _revealWinners(bytes32 taskid, uint256 count) internal {
        TaskRec storage t = _tasks[taskid];
        bytes32 digest = _digest(taskid, t.consensus);
        address[] storage voters = _voters[taskid];
        uint256 done;
        for (uint256 i; i < voters.length && done < count; ++i) {
            Vote storage v = _votes[taskid][voters[i]];
            if (v.status != CONTRIBUTED || v.answer != t.consensus) continue;
            vm.prank(voters[i]);
            poco.reveal(taskid, digest);
            _modelReveal(taskid, voters[i]);
            ++done;
        }
    }

    function _finalizeTask(bytes32 taskid) internal {
        TaskRec storage t = _tasks[taskid];
        Deal memory deal = _deals[t.deal].deal;
        bytes memory data = _answerData(taskid, t.consensus);
        bytes memory callbackData = deal.callback == address(0) ? bytes("") : data;
        address[] memory voters = _sorted(_voters[taskid]);
        vm.prank(deal.scheduler);
        poco.finalize(deal, t.idx, keccak256(data), "ipfs://result", callbackData, voters);
        _modelFinalize(taskid);
        _checkCallback(deal, taskid, data);
    }

    function _reopenTask(bytes32 taskid) internal {
        TaskRec storage t = _tasks[taskid];
        Deal memory deal = _deals[t.deal].deal;
        address[] storage voters = _voters[taskid];
        address[] memory winners = new address[](t.winners);
        uint256 n;
        for (uint256 i; i < voters.length; ++i) {
            Vote storage v = _votes[taskid][voters[i]];
            if (v.status == CONTRIBUTED && v.answer == t.consensus) winners[n++] = voters[i];
        }
        require(n == t.winners, "winners");
        bytes32 consensus = keccak256(abi.encodePacked(taskid, _digest(taskid, t.consensus)));
        vm.prank(deal.scheduler);
        poco.reopen(deal, t.idx, consensus, _sorted(winners));
        _modelReopen(taskid);
    }

    function _claimTask(uint256 di, uint256 idx, address caller) internal {
        DealRec storage r = _deals[di];
        Deal memory deal = r.deal;
        bytes32 taskid = _taskId(r.dealid, idx);
        address[] memory seats;
        if (
            _isCommittee(deal) && !_isTee(deal) && _statusOf(taskid) == ACTIVE
                && _voters[taskid].length != 0
        ) seats = poco.viewCommittee(deal, idx);
        address[] memory voters = _sorted(_voters[taskid]);
        vm.prank(caller);
        poco.claim(deal, idx, voters);
        _modelClaim(taskid, di, idx, seats);
    }

    function _cafTask(uint256 di, uint256 idx, address worker) internal {
        DealRec storage r = _deals[di];
        Deal memory deal = r.deal;
        bytes32 taskid = _taskId(r.dealid, idx);
        bytes memory data = _answerData(taskid, 0);
        bytes32 digest = keccak256(data);
        (address challenge, bytes memory enclaveSign, bytes memory auth) =
            _fastPathProof(deal, taskid, worker, digest);
        bytes memory callbackData = deal.callback == address(0) ? bytes("") : data;
        vm.prank(worker);
        poco.contributeAndFinalize(
            deal, idx, digest, "ipfs://result", callbackData, challenge, enclaveSign, auth
        );
        _modelContributeAndFinalize(taskid, di, idx, worker);
        _checkCallback(deal, taskid, data);
        if (_isTee(deal)) ++_counts[O_TEE_CONTRIBUTIONS];
        if (_isCommittee(deal)) ++_counts[O_COMMITTEE_CONTRIBUTIONS];
    }

    function _fastPathProof(Deal memory deal, bytes32 taskid, address worker, bytes32 digest)
        internal
        view
        returns (address challenge, bytes memory enclaveSign, bytes memory auth)
    {
        if (_isTee(deal)) {
            challenge = a.enclave;
            enclaveSign = _enclaveSignature(
                keccak256(abi.encodePacked(taskid, digest)),
                keccak256(abi.encodePacked(worker, taskid, digest))
            );
        }
        if (_isTee(deal) || !_isCommittee(deal)) {
            auth = _authorization(deal.scheduler, worker, taskid, challenge);
        }
    }

    function _checkCallback(Deal memory deal, bytes32 taskid, bytes memory data) internal {
        if (deal.callback == address(0)) return;
        require(keccak256(poco.resultFor(taskid)) == keccak256(data), "callback data");
        ++_counts[O_CALLBACK_FINALIZES];
    }

    // ================================================================== pools

    function _membershipStep(address worker, uint256 seed) internal {
        Member storage m = _members[a.pool][worker];
        if (!m.exists) {
            _join(a.pool, worker);
        } else if (m.active) {
            vm.prank(worker);
            poco.leaveWorkerpool(a.pool);
            _modelLeave(a.pool, worker);
        } else {
            uint256 until = m.leftAt + EXIT_DELAY;
            if (_now < until && seed % 4 == 0) _warpTo(until);
            if (_now < until) return;
            _release(a.pool, worker);
        }
    }

    function _join(address pool, address worker) internal {
        _ensureFree(worker, MEMBER_BOND);
        vm.prank(worker);
        poco.joinWorkerpool(pool);
        _modelJoin(pool, worker);
    }

    function _release(address pool, address worker) internal {
        vm.prank(worker);
        poco.releaseBond(pool);
        _modelRelease(pool, worker);
    }

    /// Brings the honest pool to `needed` active members with honest workers, releasing the
    /// bonds of former members (waiting for the exit delay if it must).
    function _fillPool(uint256 needed) internal {
        for (uint256 round; round < 2 && expActive[a.pool] < needed; ++round) {
            uint256 latest;
            for (uint256 i; i < _honestWorkers.length && expActive[a.pool] < needed; ++i) {
                address worker = _honestWorkers[i];
                Member storage m = _members[a.pool][worker];
                if (m.exists && !m.active) {
                    if (_now >= m.leftAt + EXIT_DELAY) _release(a.pool, worker);
                    else if (m.leftAt + EXIT_DELAY > latest) latest = m.leftAt + EXIT_DELAY;
                }
                if (!m.exists) _join(a.pool, worker);
            }
            if (expActive[a.pool] < needed) _warpTo(latest);
        }
    }

    // ================================================================== finding tasks

    function _statusOf(bytes32 taskid) internal view returns (uint8) {
        TaskRec storage t = _tasks[taskid];
        return t.known ? t.status : UNSET;
    }

    /// Whether the task can take one more vote now.
    function _isOpen(bytes32 taskid) internal view returns (bool) {
        uint8 status = _statusOf(taskid);
        return (status == UNSET || status == ACTIVE) && _voters[taskid].length < MAX_VOTES;
    }

    function _dealWanted(DealRec storage r, uint8 want) internal view returns (bool) {
        Deal storage d = r.deal;
        if (d.workerpool != a.pool || _now >= d.startTime + 7 * d.timeref) return false;
        bool committee = d.tag & COMMITTEE != 0;
        bool tee = d.tag & TEE != 0;
        if (want == W_ANY) return true;
        if (r.noisy) return false;
        if (want == W_COMMITTEE) return committee;
        if (want == W_TRUST_ONE) return d.trust == 1;
        if (want == W_PLAIN_FRESH) return !committee && !tee && d.trust <= 2;
        if (want == W_COPYABLE) return !tee;
        if (want == W_HONEST) return true;
        return !committee;
    }

    function _taskWanted(bytes32 taskid, uint8 want) internal view returns (bool) {
        if (want == W_TRUST_ONE || want == W_PLAIN_FRESH) return _statusOf(taskid) == UNSET;
        if (want == W_COPYABLE) {
            return _statusOf(taskid) == ACTIVE && _groupSize[taskid][0] != 0
                && _voters[taskid].length < MAX_VOTES;
        }
        return _isOpen(taskid);
    }

    /// A task of the honest pool open to contributions, among deals fitting `want`.
    function _findOpen(uint256 seed, uint8 want)
        internal
        view
        returns (bool, uint256 di, uint256 idx)
    {
        uint256 n = _deals.length;
        for (uint256 i; i < n; ++i) {
            di = (seed % n + i) % n;
            DealRec storage r = _deals[di];
            if (!_dealWanted(r, want)) continue;
            uint256 size = r.deal.botSize;
            for (uint256 j; j < size; ++j) {
                idx = r.deal.botFirst + ((seed >> 32) + j) % size;
                if (_taskWanted(_taskId(r.dealid, idx), want)) return (true, di, idx);
            }
        }
        return (false, 0, 0);
    }

    /// A task not settled yet: past its final deadline when `expired`.
    function _findTask(uint256 seed, bool expired)
        internal
        view
        returns (bool, uint256 di, uint256 idx)
    {
        uint256 n = _deals.length;
        for (uint256 i; i < n; ++i) {
            di = (seed % n + i) % n;
            DealRec storage r = _deals[di];
            if (expired && _now < r.deal.startTime + 10 * r.deal.timeref) continue;
            uint256 size = r.deal.botSize;
            for (uint256 j; j < size; ++j) {
                idx = r.deal.botFirst + ((seed >> 32) + j) % size;
                if (_statusOf(_taskId(r.dealid, idx)) <= REVEALING) return (true, di, idx);
            }
        }
        return (false, 0, 0);
    }

    /// A task in its reveal phase that can be finalized now, or after reveals or a wait.
    function _findFinalizable(uint256 seed) internal view returns (bytes32) {
        uint256 n = _taskList.length;
        for (uint256 i; i < n; ++i) {
            bytes32 taskid = _taskList[(seed % n + i) % n];
            TaskRec storage t = _tasks[taskid];
            if (t.status != REVEALING) continue;
            Deal storage d = _deals[t.deal].deal;
            if (_now >= d.startTime + 10 * d.timeref) continue;
            if (t.reveals == 0 && _now >= t.revealDeadline) continue;
            return taskid;
        }
        return 0;
    }

    /// A task in its reveal phase that has a reveal, or can still get one.
    function _findRevealed(uint256 seed) internal view returns (bytes32) {
        uint256 n = _taskList.length;
        for (uint256 i; i < n; ++i) {
            bytes32 taskid = _taskList[(seed % n + i) % n];
            TaskRec storage t = _tasks[taskid];
            if (t.status == REVEALING && (t.reveals != 0 || _now < t.revealDeadline)) {
                return taskid;
            }
        }
        return 0;
    }

    /// A task in its reveal phase that nobody revealed, before its final deadline.
    function _findReopenable(uint256 seed) internal view returns (bytes32) {
        uint256 n = _taskList.length;
        for (uint256 i; i < n; ++i) {
            bytes32 taskid = _taskList[(seed % n + i) % n];
            TaskRec storage t = _tasks[taskid];
            if (t.status != REVEALING || t.reveals != 0) continue;
            Deal storage d = _deals[t.deal].deal;
            if (_now >= d.startTime + 10 * d.timeref) continue;
            return taskid;
        }
        return 0;
    }

    /// A worker that may vote on the task now: a seat holder in a committee deal, else an
    /// honest worker (or an attacker one, when `attackerSide`) of the pool; zero if none.
    function _pickVoter(uint256 di, uint256 idx, uint256 seed, bool attackerSide)
        internal
        view
        returns (address)
    {
        DealRec storage r = _deals[di];
        bytes32 taskid = _taskId(r.dealid, idx);
        if (r.deal.tag & COMMITTEE != 0) {
            address[] memory seats = poco.viewCommittee(r.deal, idx);
            for (uint256 j; j < seats.length; ++j) {
                address holder = seats[(seed % seats.length + j) % seats.length];
                if (_votes[taskid][holder].status != UNSET) continue;
                if (!_members[r.deal.workerpool][holder].exists) continue;
                if (attackerSide && partyOf[holder] != attackerParty) continue;
                return holder;
            }
            return address(0);
        }
        address[] storage list =
            attackerSide || r.deal.workerpool != a.pool ? _attackerWorkers : _honestWorkers;
        for (uint256 j; j < list.length; ++j) {
            address worker = list[(seed % list.length + j) % list.length];
            if (_votes[taskid][worker].status == UNSET) return worker;
        }
        return address(0);
    }

    /// Mostly the true answer; sometimes one of two wrong ones, or a look-alike of the true
    /// hash once someone published it. The griefing app only makes noise.
    function _pickAnswer(uint256 di, uint256 idx, uint256 seed)
        internal
        returns (uint256 answer, bool lookAlike)
    {
        DealRec storage r = _deals[di];
        if (r.noisy) return (NOISE + ++_nonce, false);
        uint256 x = seed % 100;
        if (x < 66) return (0, false);
        if (x < 78) return (1, false);
        if (x < 86) return (2, false);
        bytes32 taskid = _taskId(r.dealid, idx);
        return (0, r.deal.tag & TEE == 0 && _groupSize[taskid][0] != 0);
    }

    // ================================================================== small helpers

    function _anyone(uint256 seed) internal view returns (address) {
        return _accounts[1 + seed % (_accounts.length - 1)];
    }

    function _ensureFree(address account, uint256 amount) internal {
        uint256 free = _free(account);
        if (free >= amount) return;
        vm.prank(account);
        poco.deposit(amount - free);
        _credit(account, amount - free);
    }

    function _writeScore(address worker, uint256 score) internal {
        bytes32 slot = keccak256(abi.encode(worker, STORAGE_LOCATION));
        uint256 word = uint256(vm.load(address(poco), slot));
        word = (word & ((uint256(1) << 192) - 1)) | (score << 192);
        vm.store(address(poco), slot, bytes32(word));
        expScore[worker] = score;
        _scoredPeriod[worker] = 0;
    }

    function _answerData(bytes32 taskid, uint256 answer) internal pure returns (bytes memory) {
        return abi.encode("answer", taskid, answer);
    }

    function _digest(bytes32 taskid, uint256 answer) internal pure returns (bytes32) {
        return keccak256(_answerData(taskid, answer));
    }

    function _keyOf(address account) internal view returns (uint256) {
        if (account == a.scheduler) return a.schedulerKey;
        if (account == a.attacker) return a.attackerKey;
        if (account == a.requester) return a.requesterKey;
        if (account == a.requester2) return a.requester2Key;
        return a.attackerRequesterKey;
    }

    function _authorization(address scheduler, address worker, bytes32 taskid, address challenge)
        internal
        view
        returns (bytes memory)
    {
        return _sign(
            _keyOf(scheduler), _ethSigned(keccak256(abi.encodePacked(worker, taskid, challenge)))
        );
    }

    function _enclaveSignature(bytes32 resultHash, bytes32 seal)
        internal
        view
        returns (bytes memory)
    {
        return _sign(a.enclaveKey, _ethSigned(keccak256(abi.encodePacked(resultHash, seal))));
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _signOperation(uint256 key, bytes32 structHash) internal view returns (bytes memory) {
        return _sign(key, OrderHashing.digest(_separator, structHash));
    }

    function _ethSigned(bytes32 hash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", hash));
    }

    function _hashApp(AppOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(_separator, OrderHashing.hash(o));
    }

    function _hashDataset(DatasetOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(_separator, OrderHashing.hash(o));
    }

    function _hashPool(WorkerpoolOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(_separator, OrderHashing.hash(o));
    }

    function _hashRequest(RequestOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(_separator, OrderHashing.hash(o));
    }

    function _count(address[] memory list, address worker) internal pure returns (uint256 n) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == worker) ++n;
        }
    }

    function _min(uint256 x, uint256 y) internal pure returns (uint256) {
        return x < y ? x : y;
    }

    function _sorted(address[] memory list) internal pure returns (address[] memory out) {
        out = new address[](list.length);
        for (uint256 i; i < list.length; ++i) {
            address value = list[i];
            uint256 j = i;
            while (j > 0 && out[j - 1] > value) {
                out[j] = out[j - 1];
                --j;
            }
            out[j] = value;
        }
    }
}
