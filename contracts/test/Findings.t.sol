// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "./utils/PocoFixture.sol";

/// @notice A results consumer that answers every delivery with 150 KB of return data.
contract LoudConsumer {
    fallback() external {
        assembly {
            log0(149984, 32)
            return(0, 150000)
        }
    }
}

/// @notice A results consumer that uses as much memory as `LoudConsumer` but returns nothing.
contract QuietConsumer {
    fallback() external {
        assembly {
            log0(149984, 32)
            return(0, 0)
        }
    }
}

/// @notice The findings of the protocol review, each replayed as the attack it described and
/// shown failing. docs/protocol.md states the rule that closes each one and why it holds.
///
/// The attacker is one party with several accounts: an app, a workerpool and a requester of
/// its own, and workers; `_holdings` sums everything its accounts own (wallet RLC, free
/// balance, frozen amount), so a gain anywhere among them shows.
contract FindingsTest is PocoFixture {
    uint256 internal constant STAKE = 6_000_000_002;

    address internal attacker;
    uint256 internal attackerKey;
    address internal attackerApp;
    address internal attackerPool;
    address[] internal attackerWorkers;

    function setUp() public override {
        super.setUp();
        (attacker, attackerKey) = makeAddrAndKey("attacker");
        fund(attacker, INITIAL_DEPOSIT);
        attackerApp =
            appRegistry.createApp(attacker, "mine", "WASM", "ipfs://mine", keccak256("m"), "");
        attackerPool = workerpoolRegistry.createWorkerpool(attacker, "my pool");
        for (uint256 i; i < 4; ++i) {
            address worker = makeAddr(string.concat("attacker worker ", vm.toString(i)));
            fund(worker, 100 * RLC_UNIT);
            attackerWorkers.push(worker);
        }
    }

    /// Everything the attacker's accounts own, in nRLC.
    function _holdings() internal view returns (uint256 total) {
        total = _owned(attacker);
        for (uint256 i; i < attackerWorkers.length; ++i) {
            total += _owned(attackerWorkers[i]);
        }
    }

    function _owned(address account) internal view returns (uint256) {
        return rlc.balanceOf(account) + bal(account) + frz(account);
    }

    /// Orders of the attacker's own app, pool and request, signed by it.
    function _selfDealtOrders(uint256 price, uint256 trust, uint256 volume, string memory salt)
        internal
        view
        returns (OrderSet memory s)
    {
        s.app.app = attackerApp;
        s.app.volume = volume;
        s.app.salt = keccak256(bytes(salt));
        s.workerpool.workerpool = attackerPool;
        s.workerpool.workerpoolprice = price;
        s.workerpool.volume = volume;
        s.workerpool.trust = trust;
        s.workerpool.salt = keccak256(bytes(salt));
        s.request.app = attackerApp;
        s.request.workerpool = attackerPool;
        s.request.workerpoolmaxprice = price;
        s.request.requester = attacker;
        s.request.volume = volume;
        s.request.trust = trust;
        s.request.salt = keccak256(bytes(salt));
        signApp(s.app, attackerKey);
        signWorkerpool(s.workerpool, attackerKey);
        signRequest(s.request, attackerKey);
    }

    // ================================================================== finding 1

    /// A committee request that leaves the pool open (the old default) cannot be matched at
    /// all, so nobody can bring it to a pool of their own; a request pinned to the honest pool
    /// cannot be matched with the attacker's; and the attacker's pool with one bonded worker is
    /// too small to take any committee deal.
    function test_finding1_aCommitteeRequestOnlyGoesToThePoolItNames() public {
        joinPool(newWorkers(100, 8));
        vm.prank(attackerWorkers[0]);
        poco.joinWorkerpool(attackerPool);

        // The victim's request with "any pool", matched with the attacker's pool order.
        OrderSet memory s = committeeOrders(20);
        s.request.workerpool = address(0);
        s.workerpool.workerpool = attackerPool;
        s.workerpool.tag = COMMITTEE_TAG;
        signRequest(s.request, requesterKey);
        signWorkerpool(s.workerpool, attackerKey);
        expectMatchRevert(
            s, abi.encodeWithSelector(CommitteePoolNotChosen.selector, address(0), attackerPool)
        );

        // The victim pins the honest pool: the attacker's pool order does not fit it.
        s.request.workerpool = workerpool;
        signRequest(s.request, requesterKey);
        expectMatchRevert(
            s, abi.encodeWithSelector(CommitteePoolNotChosen.selector, workerpool, attackerPool)
        );

        // Even a request naming the attacker's pool is refused while it has one member.
        s.request.workerpool = attackerPool;
        signRequest(s.request, requesterKey);
        expectMatchRevert(s, abi.encodeWithSelector(CommitteeTooSmall.selector, attackerPool, 1, 9));
    }

    // ================================================================== finding 2

    /// A failed task's seized stake is burned; then the attacker self-deals sixty priced
    /// trust-1 tasks through `contributeAndFinalize`. Each returns exactly its capital: there
    /// is no pot to take from.
    function test_finding2_selfDealtTasksTakeNothingFromFailedTasks() public {
        OrderSet memory failed = signedOrders(1, 1);
        failed.workerpool.workerpoolprice = 200 * RLC_UNIT;
        failed.request.workerpoolmaxprice = 200 * RLC_UNIT;
        signAll(failed);
        (, Deal memory lost) = matchSet(failed);
        vm.warp(finalDeadline(lost));
        poco.claim(lost, 0, emptyList());
        assertEq(frz(BURN_ACCOUNT), 60 * RLC_UNIT);

        uint256 before = _holdings();
        (, Deal memory deal) = matchSet(_selfDealtOrders(10 * RLC_UNIT, 1, 60, "self"));
        for (uint256 i; i < 60; ++i) {
            bytes32 taskid = taskIdOf(deal, i);
            bytes memory auth = authorizationBy(attackerKey, attacker, taskid, address(0));
            vm.prank(attacker);
            poco.contributeAndFinalize(deal, i, DIGEST_A, "", "", address(0), "", auth);
            assertEq(status(taskid), COMPLETED);
        }
        assertEq(_holdings(), before, "the attacker ends with exactly what it had");
        assertEq(frz(BURN_ACCOUNT), 60 * RLC_UNIT, "nothing left the burn account");
    }

    /// The attacker requests tasks that cannot converge (its workers answer differently) from
    /// an honest pool's open order, lets them fail and is refunded. The victim's stakes are
    /// burned, not pooled: the attacker's self-dealing afterwards harvests nothing, and the
    /// attack earns the attacker nothing at any step.
    function test_finding2_aGriefingRequesterCannotHarvestTheSchedulersStake() public {
        uint256 before = _holdings();
        uint256 victimBefore = bal(scheduler) + frz(scheduler);

        OrderSet memory s = defaultOrders();
        s.workerpool.workerpoolprice = 200 * RLC_UNIT;
        s.request.requester = attacker;
        s.request.workerpoolmaxprice = 200 * RLC_UNIT;
        s.request.trust = 3;
        s.request.volume = 1;
        signAll(s);
        signRequest(s.request, attackerKey);
        (, Deal memory deal) = matchSet(s);
        // Two of the honest pool's workers run the attacker's app: it answers differently.
        bytes32 taskid = contributeAs(deal, 0, workers[0], DIGEST_A);
        contributeAs(deal, 0, workers[1], DIGEST_B);
        assertEq(status(taskid), ACTIVE);
        vm.warp(finalDeadline(deal));
        poco.claim(deal, 0, list2(workers[0], workers[1]));
        assertEq(_holdings(), before, "refunded, nothing more");
        assertEq(bal(scheduler) + frz(scheduler), victimBefore - 60 * RLC_UNIT);
        assertEq(frz(BURN_ACCOUNT), 60 * RLC_UNIT);

        // The harvest the kitty allowed: self-dealt successes right after.
        (, Deal memory own) = matchSet(_selfDealtOrders(100 * RLC_UNIT, 1, 10, "harvest"));
        for (uint256 i; i < 10; ++i) {
            bytes memory auth = authorizationBy(attackerKey, attacker, taskIdOf(own, i), address(0));
            vm.prank(attacker);
            poco.contributeAndFinalize(own, i, DIGEST_A, "", "", address(0), "", auth);
        }
        assertEq(_holdings(), before, "the victim's stake went to nobody");
    }

    /// The stakes of wrong voters seized at a claim are not harvestable either: they go to the
    /// task's revealed winners, or are burned.
    function test_finding2_workerStakesSeizedAtClaimAreNotPooled() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, workers[0], DIGEST_B); // wrong
        for (uint256 i = 1; i < 5; ++i) {
            contributeAs(deal, 0, workers[i], DIGEST_A); // 2^4 > 19 * 3 / 4
        }
        assertEq(status(taskid), REVEALING);
        // Nobody reveals; the task is claimed.
        vm.warp(finalDeadline(deal));
        address[] memory all = new address[](5);
        for (uint256 i; i < 5; ++i) {
            all[i] = workers[i];
        }
        poco.claim(deal, 0, sorted(all));
        assertEq(frz(BURN_ACCOUNT), STAKE + 5 * STAKE, "nobody proved anything: all burned");

        uint256 before = _holdings();
        (, Deal memory own) = matchSet(_selfDealtOrders(100 * RLC_UNIT, 1, 5, "after claim"));
        for (uint256 i; i < 5; ++i) {
            bytes memory auth = authorizationBy(attackerKey, attacker, taskIdOf(own, i), address(0));
            vm.prank(attacker);
            poco.contributeAndFinalize(own, i, DIGEST_A, "", "", address(0), "", auth);
        }
        assertEq(_holdings(), before);
    }

    // ================================================================== finding 3

    /// Twelve throwaway members join the honest pool, leave, and take their bonds back. The
    /// draws of later committee deals land on active members only: every task's seats are held
    /// by the ten honest members, and every task completes when they vote.
    function test_finding3_departedMembersAreNeverDrawn() public {
        address[] memory honest = newWorkers(100, 10);
        joinPool(honest);
        address[] memory churn = newWorkers(200, 12);
        joinPool(churn);
        for (uint256 i; i < churn.length; ++i) {
            vm.prank(churn[i]);
            poco.leaveWorkerpool(workerpool);
        }
        vm.warp(block.timestamp + 7 days);
        for (uint256 i; i < churn.length; ++i) {
            vm.prank(churn[i]);
            poco.releaseBond(workerpool);
        }
        assertEq(poco.countMembers(workerpool), 10);

        OrderSet memory s = committeeOrders(20); // 9 seats
        s.request.volume = 20;
        signAll(s);
        (bytes32 dealid, Deal memory deal) = matchSet(s);
        seedCommittee(dealid, keccak256("churn"));
        for (uint256 idx; idx < 20; ++idx) {
            address[] memory seats = poco.viewCommittee(deal, idx);
            bytes32 taskid = taskIdOf(deal, idx);
            for (uint256 j; j < seats.length; ++j) {
                assertTrue(_isIn(honest, seats[j]), "a seat went to a departed member");
                if (status(taskid) == ACTIVE || status(taskid) == UNSET) {
                    if (uint8(poco.viewContribution(taskid, seats[j]).status) == 0) {
                        contributeAs(deal, idx, seats[j], DIGEST_A);
                    }
                }
            }
            assertEq(status(taskid), REVEALING, "the honest members carry every task");
        }
    }

    // ================================================================== finding 4

    /// A worker who knows the digest votes for the consensus hash with its last bit flipped.
    /// Its vote lands in the consensus group (votes are grouped by the stored prefix), so the
    /// honest need no extra replication, and it is an ordinary winner: finalize does not wait.
    function test_finding4_aLookAlikeHashVotesWithTheResultItCopies() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, workers[0], DIGEST_A);
        bytes32 real = resultHashOf(taskid, DIGEST_A);
        bytes32 lookAlike = real ^ bytes32(uint256(1));
        address copier = workers[1];
        bytes memory auth = authorization(copier, taskid, address(0));
        vm.prank(copier);
        poco.contribute(
            deal, 0, lookAlike, resultSealOf(copier, taskid, DIGEST_A), address(0), "", auth
        );
        assertEq(status(taskid), REVEALING, "two agreeing votes reach trust 4");
        Group memory group = poco.viewGroup(taskid, real);
        assertEq(group.size, 2);
        assertTrue(group.consensus);
        assertEq(poco.viewTask(taskid).winners, 2);

        revealAs(taskid, workers[0], DIGEST_A);
        revealAs(taskid, copier, DIGEST_A);
        finalizeAs(deal, 0, DIGEST_A, list2(workers[0], copier)); // no wait for the deadline
        assertEq(status(taskid), COMPLETED);
    }

    /// A vote whose prefix differs from the consensus is a different result: it can never be
    /// revealed as the consensus, and it loses its stake.
    function test_finding4_aDifferentPrefixIsADifferentResult() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, workers[0], DIGEST_A);
        bytes32 forged = resultHashOf(taskid, DIGEST_A) ^ bytes32(uint256(1) << 255);
        address forger = workers[1];
        bytes memory auth = authorization(forger, taskid, address(0));
        vm.prank(forger);
        poco.contribute(
            deal, 0, forged, resultSealOf(forger, taskid, DIGEST_A), address(0), "", auth
        );
        assertEq(status(taskid), ACTIVE);
        for (uint256 i = 2; i < 5; ++i) {
            contributeAs(deal, 0, workers[i], DIGEST_A); // the forged group keeps growing total
        }
        assertEq(status(taskid), REVEALING);
        vm.prank(forger);
        vm.expectRevert(abi.encodeWithSelector(RevealMismatch.selector, taskid, forger));
        poco.reveal(taskid, DIGEST_A);
    }

    // ================================================================== finding 5

    /// Zero-priced self-dealt trust-3 tasks where two of the attacker's workers agree risk no
    /// funds: they raise no score, however many are run.
    function test_finding5_freeTasksEarnNoReputation() public {
        _farm(0, 30, "free");
        assertEq(poco.viewScore(attackerWorkers[0]), 0);
        assertEq(poco.viewScore(attackerWorkers[1]), 0);
    }

    /// With stakes at risk, a score still rises at most once a day: 300 tasks in a day make one
    /// point, and the weight that carries trust 100 alone (score 303) takes 303 days.
    function test_finding5_reputationTakesTime() public {
        _farm(10 * RLC_UNIT, 300, "priced");
        assertEq(poco.viewScore(attackerWorkers[0]), 1);
        assertEq(poco.viewScore(attackerWorkers[1]), 1);
        uint256 time = block.timestamp;
        for (uint256 day = 1; day < 5; ++day) {
            time += 1 days;
            vm.warp(time);
            _farm(10 * RLC_UNIT, 3, string.concat("day ", vm.toString(day)));
        }
        assertEq(poco.viewScore(attackerWorkers[0]), 5);
    }

    /// Runs `volume` self-dealt trust-3 tasks at `price` on which two attacker workers agree.
    function _farm(uint256 price, uint256 volume, string memory salt) internal {
        (, Deal memory deal) = matchSet(_selfDealtOrders(price, 3, volume, salt));
        address a = attackerWorkers[0];
        address b = attackerWorkers[1];
        for (uint256 i; i < volume; ++i) {
            bytes32 taskid = taskIdOf(deal, i);
            _selfContribute(deal, i, a);
            _selfContribute(deal, i, b);
            revealAs(taskid, a, DIGEST_A);
            revealAs(taskid, b, DIGEST_A);
            vm.prank(attacker);
            poco.finalize(deal, i, DIGEST_A, "", "", list2(a, b));
        }
    }

    function _selfContribute(Deal memory deal, uint256 idx, address worker) internal {
        bytes32 taskid = taskIdOf(deal, idx);
        bytes memory auth = authorizationBy(attackerKey, worker, taskid, address(0));
        vm.prank(worker);
        poco.contribute(
            deal,
            idx,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(worker, taskid, DIGEST_A),
            address(0),
            "",
            auth
        );
    }

    // ================================================================== finding 6

    /// Nobody can deposit for the burn account (a deposit there would belong to no one); what a
    /// claim burns stays counted, so the RLC poco holds is the sum of its accounts.
    function test_finding6_nobodyCanDepositForTheBurnAccount() public {
        vm.prank(attacker);
        vm.expectRevert(BurnAccountDeposit.selector);
        poco.depositFor(5 * RLC_UNIT, BURN_ACCOUNT);

        (, Deal memory deal) = matchDefault(1, 1);
        vm.warp(finalDeadline(deal));
        poco.claim(deal, 0, emptyList());
        assertEq(frz(BURN_ACCOUNT), STAKE);
        assertEq(bal(BURN_ACCOUNT), 0);
        assertEq(poco.burnAccount(), BURN_ACCOUNT);
        address[8] memory accounts = [
            requester, appOwner, datasetOwner, scheduler, sponsor, stranger, BURN_ACCOUNT, attacker
        ];
        uint256 sum;
        for (uint256 i; i < accounts.length; ++i) {
            sum += bal(accounts[i]) + frz(accounts[i]);
        }
        for (uint256 i; i < workers.length; ++i) {
            sum += bal(workers[i]) + frz(workers[i]);
        }
        for (uint256 i; i < attackerWorkers.length; ++i) {
            sum += bal(attackerWorkers[i]) + frz(attackerWorkers[i]);
        }
        assertEq(rlc.balanceOf(address(poco)), sum);
    }

    // ================================================================== finding 7

    /// A consumer that returns 150 KB costs the finalizer what a consumer doing the same work
    /// and returning nothing costs: the return data is never copied. (What a consumer spends
    /// itself is bounded by the 200k gas it is given.)
    function test_finding7_finalizeDoesNotPayForCallbackReturnData() public {
        uint256 quiet = _finalizeGasWith(address(new QuietConsumer()), "quiet");
        uint256 loud = _finalizeGasWith(address(new LoudConsumer()), "loud");
        assertLt(loud, quiet + 1000, "finalize paid for the callback's return data");
    }

    /// The gas of a finalize that delivers to `consumer` (trust 4, two agreeing workers).
    function _finalizeGasWith(address consumer, string memory salt) internal returns (uint256) {
        OrderSet memory s = signedOrders(4, 1);
        s.request.callback = consumer;
        s.request.salt = keccak256(bytes(salt));
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        bytes memory data = abi.encode(salt);
        bytes32 digest = keccak256(data);
        bytes32 taskid = contributeAs(deal, 0, workers[0], digest);
        contributeAs(deal, 0, workers[1], digest);
        revealAs(taskid, workers[0], digest);
        revealAs(taskid, workers[1], digest);
        address[] memory list = list2(workers[0], workers[1]);
        vm.prank(scheduler);
        uint256 gasBefore = gasleft();
        poco.finalize(deal, 0, digest, "ipfs://result", data, list);
        return gasBefore - gasleft();
    }

    function _isIn(address[] memory list, address worker) internal pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == worker) return true;
        }
        return false;
    }
}
