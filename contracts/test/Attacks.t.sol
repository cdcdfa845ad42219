// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "./utils/PocoFixture.sol";
import {IPoco} from "../src/interfaces/IPoco.sol";
import {Workerpool} from "../src/registries/Workerpools.sol";

/// @notice A token impostor: calls `receiveApproval` pretending to relay an RLC approval.
contract FakeToken {
    function relay(IPoco poco, address holder, uint256 amount, address rlc, bytes calldata data)
        external
    {
        poco.receiveApproval(holder, amount, rlc, data);
    }
}

/// @notice The weaknesses of protocol.md §9 that poco closes, each attack shown failing. The
/// findings of the later protocol review are in `Findings.t.sol`.
contract AttacksTest is PocoFixture {
    uint256 internal constant PRICE = APP_PRICE + DATASET_PRICE + WP_PRICE;
    uint256 internal constant STAKE = 6_000_000_002;

    // §9.11 (kitty draining by self-dealing) is closed by removing the kitty: see
    // `Findings.t.sol`, finding 2, where every seized amount either pays the task's proved
    // workers or is burned.

    // ================================================================== §9.5 unbounded loops

    function test_attack5_33rdContributionReverts() public {
        OrderSet memory s = defaultOrders();
        s.workerpool.trust = 1 << 40;
        s.request.trust = 1 << 40;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        address[] memory list = newWorkers(1000, 33);
        bytes32 taskid;
        for (uint256 i; i < 32; ++i) {
            taskid = contributeAs(deal, 0, list[i], DIGEST_A);
        }
        assertEq(poco.viewTask(taskid).contributors, 32);
        assertEq(status(taskid), ACTIVE); // 2^32 is far from trust 2^40
        bytes memory auth = authorization(list[32], taskid, address(0));
        vm.prank(list[32]);
        vm.expectRevert(abi.encodeWithSelector(TooManyContributors.selector, taskid, 32));
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(list[32], taskid, DIGEST_A),
            address(0),
            "",
            auth
        );

        // A task full of contributors can still be claimed, within bounded gas.
        vm.warp(finalDeadline(deal));
        // Measure as in a transaction of its own: the storage the claim reads starts cold.
        vm.cool(address(poco));
        vm.cool(tasksModule);
        uint256 gasBefore = gasleft();
        poco.claim(deal, 0, _first(list, 32));
        uint256 used = gasBefore - gasleft();
        emit log_named_uint("claim gas, 32 contributors", used);
        // Measured about 0.35M cold; the bound is twice that, far below any block gas limit.
        assertLt(used, 700_000);
        assertEq(status(taskid), FAILED);
    }

    /// The largest task there can be: 32 contributors, 2 of them wrong, 30 revealed winners.
    function test_attack5_finalizeWith32ContributorsIsBounded() public {
        // Trust 2^27 + 1: two dissenters (weight 2 each), then 30 agreeing fresh workers reach
        // 2^30 > 5 * 2^27 on the 32nd contribution, not before (2^29 <= 5 * 2^27).
        uint256 trust = (1 << 27) + 1;
        OrderSet memory s = defaultOrders();
        s.workerpool.trust = trust;
        s.request.trust = trust;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        address[] memory list = newWorkers(2000, 32);
        bytes32 taskid = contributeAs(deal, 0, list[0], DIGEST_B);
        contributeAs(deal, 0, list[1], DIGEST_C);
        for (uint256 i = 2; i < 32; ++i) {
            assertEq(status(taskid), ACTIVE);
            contributeAs(deal, 0, list[i], DIGEST_A);
        }
        assertEq(status(taskid), REVEALING);
        assertEq(poco.viewTask(taskid).winners, 30);
        for (uint256 i = 2; i < 32; ++i) {
            revealAs(taskid, list[i], DIGEST_A);
        }
        address[] memory all = sorted(list);
        vm.cool(address(poco));
        vm.cool(tasksModule);
        vm.prank(scheduler);
        uint256 gasBefore = gasleft();
        poco.finalize(deal, 0, DIGEST_A, "ipfs://result", "", all);
        uint256 used = gasBefore - gasleft();
        emit log_named_uint("finalize gas, 32 contributors", used);
        // Measured about 0.42M cold; the bound leaves room and is far below any block gas limit.
        assertLt(used, 1_000_000);
        assertEq(status(taskid), COMPLETED);
        // Every winner paid the same (equal log-weights), both dissenters slashed.
        uint256 workersReward = (WP_PRICE + 2 * STAKE) * 99 / 100;
        assertEq(bal(list[2]), INITIAL_DEPOSIT + workersReward / 30);
        assertEq(bal(list[0]), INITIAL_DEPOSIT - STAKE);
    }

    function _first(address[] memory list, uint256 n) internal pure returns (address[] memory) {
        address[] memory out = new address[](n);
        for (uint256 i; i < n; ++i) {
            out[i] = list[i];
        }
        return sorted(out);
    }

    // ================================================================== §9.13 policies

    function test_attack13_policyBounds() public {
        vm.startPrank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(InvalidPolicy.selector, 101, 0));
        Workerpool(workerpool).changePolicy(101, 0);
        vm.expectRevert(abi.encodeWithSelector(InvalidPolicy.selector, 0, 51));
        Workerpool(workerpool).changePolicy(0, 51);
        vm.expectRevert(abi.encodeWithSelector(InvalidPolicy.selector, 0, 100));
        workerpoolRegistry.setPolicy(workerpool, 0, 100);
        // The extreme values allowed.
        Workerpool(workerpool).changePolicy(100, 50);
        vm.stopPrank();
        assertEq(Workerpool(workerpool).m_workerStakeRatioPolicy(), 100);
        assertEq(Workerpool(workerpool).m_schedulerRewardRatioPolicy(), 50);
    }

    /// The scheduler raises the stake and its own cut after the deal: the deal's terms hold.
    function test_attack13_policyChangeAfterMatchDoesNotChangeDeal() public {
        (bytes32 dealid, Deal memory deal) = matchDefault(1, 1);
        assertEq(deal.workerStake, STAKE);
        assertEq(deal.schedulerRewardRatio, 1);
        bytes32 stored = poco.viewDealHash(dealid);

        vm.prank(scheduler);
        Workerpool(workerpool).changePolicy(100, 50);
        assertEq(poco.viewDealHash(dealid), stored);

        // A deal carrying the new policy is not the deal.
        Deal memory forged = abi.decode(abi.encode(deal), (Deal));
        forged.workerStake = WP_PRICE;
        forged.schedulerRewardRatio = 50;
        vm.expectRevert(abi.encodeWithSelector(UnknownDeal.selector, dealid));
        poco.initialize(forged, 0);

        address w = workers[0];
        bytes32 taskid = contributeAs(deal, 0, w, DIGEST_A);
        assertEq(frz(w), STAKE);
        revealAs(taskid, w, DIGEST_A);
        finalizeAs(deal, 0, DIGEST_A, list1(w));
        assertEq(bal(w), INITIAL_DEPOSIT + WP_PRICE * 99 / 100);

        // Deals matched afterwards get the new terms.
        OrderSet memory s = signedOrders(1, 1);
        s.request.salt = keccak256("after the change");
        signAll(s);
        (, Deal memory later) = matchSet(s);
        assertEq(later.workerStake, WP_PRICE);
        assertEq(later.schedulerRewardRatio, 50);
    }

    // ================================================================== §9.14 receiveApproval

    /// The requester has approved poco for all its RLC. Nobody but the token can turn that
    /// allowance into a deposit, let alone a match.
    function test_attack14_receiveApprovalOnlyFromToken() public {
        OrderSet memory s = signedOrders(1, 1);
        bytes memory data =
            abi.encodeCall(IPoco.matchOrders, (s.app, s.dataset, s.workerpool, s.request));
        uint256 allowance = rlc.allowance(requester, address(poco));
        uint256 wallet = rlc.balanceOf(requester);
        assertGt(allowance, 1000 * RLC_UNIT);

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(UnauthorizedTokenCall.selector, stranger));
        poco.receiveApproval(requester, 1000 * RLC_UNIT, address(rlc), data);

        FakeToken fake = new FakeToken();
        vm.expectRevert(abi.encodeWithSelector(UnauthorizedTokenCall.selector, address(fake)));
        fake.relay(poco, requester, 1000 * RLC_UNIT, address(rlc), data);

        assertEq(rlc.allowance(requester, address(poco)), allowance);
        assertEq(rlc.balanceOf(requester), wallet);
        assertEq(bal(requester), INITIAL_DEPOSIT);
        assertEq(poco.viewConsumed(hashRequest(s.request)), 0);
    }

    // ================================================================== §9.15 sponsoring

    /// The sponsor pays a finalized task and is refunded a claimed one; the requester's
    /// account never moves.
    function test_attack15_sponsoredDealChargesAndRefundsSponsorOnly() public {
        (address r, uint256 rKey) = makeAddrAndKey("sponsoredRequester");
        fund(r, 50 * RLC_UNIT);
        OrderSet memory s = defaultOrders();
        s.request.requester = r;
        s.request.volume = 3;
        signAll(s);
        signRequest(s.request, rKey);
        (, Deal memory deal) = sponsorMatchSet(s, sponsor);
        assertEq(frz(sponsor), 3 * PRICE);
        assertEq(bal(sponsor), INITIAL_DEPOSIT - 3 * PRICE);

        // Task 0: finalized through the replicated path.
        bytes32 t0 = contributeAs(deal, 0, workers[0], DIGEST_A);
        revealAs(t0, workers[0], DIGEST_A);
        finalizeAs(deal, 0, DIGEST_A, list1(workers[0]));
        // Task 1: the fast path.
        contributeAndFinalizeAs(deal, 1, workers[1], DIGEST_A);
        assertEq(frz(sponsor), PRICE);
        assertEq(bal(sponsor), INITIAL_DEPOSIT - 3 * PRICE);
        // Task 2: claimed, refunded to the sponsor.
        vm.warp(finalDeadline(deal));
        poco.claim(deal, 2, emptyList());
        assertEq(frz(sponsor), 0);
        assertEq(bal(sponsor), INITIAL_DEPOSIT - 2 * PRICE);

        assertEq(bal(r), 50 * RLC_UNIT);
        assertEq(frz(r), 0);
    }

    // ================================================================== §9.16 claim punishes

    /// Consensus is reached, some winners reveal, the scheduler never finalizes. The claim
    /// refunds the requester, seizes the stakes of the wrong contributor and of the silent
    /// winners (cutting their scores) and the scheduler's stake, and pays all of it to the
    /// revealed winners, who did the work the scheduler left unpaid.
    function test_attack16_claimAfterConsensusPunishesWrongAndSilent() public {
        (, Deal memory deal) = matchDefault(4, 1);
        address wrong = workers[2];
        address[4] memory winners = [workers[0], workers[1], workers[3], workers[4]];
        for (uint256 i; i < NUM_WORKERS; ++i) {
            setScore(workers[i], 9); // weight 2
        }
        bytes32 taskid = contributeAs(deal, 0, wrong, DIGEST_B);
        for (uint256 i; i < 4; ++i) {
            contributeAs(deal, 0, winners[i], DIGEST_A);
        }
        assertEq(status(taskid), REVEALING);
        revealAs(taskid, winners[0], DIGEST_A);
        revealAs(taskid, winners[1], DIGEST_A);

        vm.warp(finalDeadline(deal));
        address[] memory all = new address[](5);
        all[0] = wrong;
        for (uint256 i; i < 4; ++i) {
            all[i + 1] = winners[i];
        }
        vm.expectEmit(address(poco));
        emit TaskClaimed(taskid);
        poco.claim(deal, 0, sorted(all));

        assertEq(status(taskid), FAILED);
        // Revealed winners: stake back and, each, half of the scheduler's stake and of the
        // three seized stakes; score untouched.
        for (uint256 i; i < 2; ++i) {
            assertEq(bal(winners[i]), INITIAL_DEPOSIT + (STAKE + 3 * STAKE) / 2);
            assertEq(frz(winners[i]), 0);
            assertEq(poco.viewScore(winners[i]), 9);
        }
        // Silent winners and the wrong contributor: stake seized, score x2/3.
        address[3] memory faulty = [winners[2], winners[3], wrong];
        for (uint256 i; i < 3; ++i) {
            assertEq(bal(faulty[i]), INITIAL_DEPOSIT - STAKE);
            assertEq(frz(faulty[i]), 0);
            assertEq(poco.viewScore(faulty[i]), 6);
        }
        assertEq(frz(BURN_ACCOUNT), 0, "everything seized was earned by the revealed winners");
        assertEq(frz(requester), 0);
        assertEq(bal(requester), INITIAL_DEPOSIT);
        assertEq(frz(scheduler), 0);
        assertEq(bal(scheduler), INITIAL_DEPOSIT - STAKE);
    }

    // ================================================================== §9.12 Sybil workers

    /// The pool of the committee attacks: nine honest members and the scheduler's three Sybil
    /// workers, a quarter of the members.
    function _sybilPool() internal returns (address[] memory honest, address[] memory sybils) {
        honest = newWorkers(3000, 9);
        sybils = newWorkers(3100, 3);
        joinPool(honest);
        joinPool(sybils);
    }

    /// The first seed (from `label`) for which the Sybils hold exactly `wanted` of the `size`
    /// seats of task 0 of the committee deal `matchCommittee(trust, ...)` will make.
    function _seedGivingSybils(
        string memory label,
        uint256 trust,
        address[] memory sybils,
        uint256 wanted
    ) internal view returns (bytes32 seed) {
        bytes32 taskid = taskIdOf(dealIdOf(hashRequest(committeeOrders(trust).request), 0), 0);
        uint256 size = poco.committeeSize(trust);
        uint256 count = poco.countMembers(workerpool);
        for (uint256 i;; ++i) {
            seed = keccak256(abi.encode(label, i));
            uint256 held;
            for (uint256 k; k < sybils.length; ++k) {
                held += seatsOf(seed, taskid, size, count, sybils[k]);
            }
            if (held == wanted) return seed;
        }
    }

    /// Without the committee tag a deal keeps the reference's trust model, where the scheduler
    /// picks the contributors: two fresh workers of its own carry trust 4 on a wrong result.
    /// This is why a requester who does not trust the scheduler asks for a committee.
    function test_attack12_withoutACommitteeTheSchedulerPicksTheVoters() public {
        (, Deal memory deal) = matchDefault(4, 1);
        address[] memory sybils = newWorkers(3100, 2);
        contributeAs(deal, 0, sybils[0], DIGEST_B);
        bytes32 taskid = contributeAs(deal, 0, sybils[1], DIGEST_B);
        assertEq(status(taskid), REVEALING);
        assertTrue(poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_B)).consensus);
    }

    /// The same attack on a committee deal: the scheduler authorizes its own workers, but only
    /// drawn members may vote, and Sybils bonded after the match are never drawn for it.
    function test_attack12_schedulerChosenWorkersAreRefusedOnACommitteeDeal() public {
        (address[] memory honest, address[] memory sybils) = _sybilPool();
        bytes32 seed = _seedGivingSybils("no sybil seat", 4, sybils, 0);
        (, Deal memory deal) = matchCommittee(4, seed);
        bytes32 taskid = taskIdOf(deal, 0);
        for (uint256 k; k < sybils.length; ++k) {
            expectContributeRevert(
                deal, 0, sybils[k], abi.encodeWithSelector(NotDrawn.selector, taskid, sybils[k])
            );
        }
        address[] memory late = newWorkers(3200, 4);
        joinPool(late);
        for (uint256 k; k < late.length; ++k) {
            expectContributeRevert(
                deal, 0, late[k], abi.encodeWithSelector(NotDrawn.selector, taskid, late[k])
            );
        }
        // The drawn honest members carry the task.
        address[] memory seats = poco.viewCommittee(deal, 0);
        for (uint256 j; j < seats.length && status(taskid) != REVEALING; ++j) {
            if (uint8(poco.viewContribution(taskid, seats[j]).status) == 0) {
                contributeAs(deal, 0, seats[j], DIGEST_A);
            }
        }
        assertEq(status(taskid), REVEALING);
        assertTrue(poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_A)).consensus);
        honest; // the seats went to them
    }

    /// A Sybil that is drawn holds one seat of three: its wrong answer, sent first, is no
    /// consensus; the honest majority's is, and at finalize the Sybil loses its stake, a third
    /// of its score, a seat's penalty from its bond and its membership.
    function test_attack12_aDrawnSybilWithoutAMajorityLosesItsStake() public {
        (, address[] memory sybils) = _sybilPool();
        bytes32 seed = _seedGivingSybils("one sybil seat", 4, sybils, 1);
        (, Deal memory deal) = matchCommittee(4, seed);
        address[] memory seats = poco.viewCommittee(deal, 0);
        address sybil;
        for (uint256 k; k < sybils.length; ++k) {
            if (_isIn(seats, sybils[k])) sybil = sybils[k];
        }
        setScore(sybil, 30);

        bytes32 taskid = contributeAs(deal, 0, sybil, DIGEST_B);
        assertEq(status(taskid), ACTIVE);
        address[] memory voters = new address[](3);
        voters[0] = sybil;
        uint256 count = 1;
        for (uint256 j; j < seats.length && status(taskid) != REVEALING; ++j) {
            if (uint8(poco.viewContribution(taskid, seats[j]).status) == 0) {
                contributeAs(deal, 0, seats[j], DIGEST_A);
                voters[count++] = seats[j];
            }
        }
        assertEq(status(taskid), REVEALING);
        assertTrue(poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_A)).consensus);
        assertFalse(poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_B)).consensus);
        voters = _first(voters, count); // sorted, as finalize wants them
        for (uint256 i; i < count; ++i) {
            if (voters[i] != sybil) revealAs(taskid, voters[i], DIGEST_A);
        }
        vm.expectEmit(address(poco));
        emit FaultyContribution(sybil, taskid);
        finalizeAs(deal, 0, DIGEST_A, sorted(voters));
        assertEq(status(taskid), COMPLETED);
        assertEq(bal(sybil), INITIAL_DEPOSIT - MEMBER_BOND - STAKE);
        assertEq(frz(sybil), MEMBER_BOND - SEAT_PENALTY);
        assertEq(poco.viewScore(sybil), 20);
        assertFalse(poco.viewMembership(workerpool, sybil).active, "expelled");
        for (uint256 i; i < count; ++i) {
            if (voters[i] != sybil) assertGt(bal(voters[i]), INITIAL_DEPOSIT - MEMBER_BOND);
        }
    }

    /// For any draw, the Sybils' wrong answer becomes the consensus exactly when they hold a
    /// majority of the seats (trust 20: 9 seats among 12 members), never through the
    /// scheduler's choice; else the honest seats carry the right answer.
    function testFuzz_attack12_aWrongResultNeedsAMajorityOfTheSeats(bytes32 seed) public {
        vm.assume(seed != 0);
        (address[] memory honest, address[] memory sybils) = _sybilPool();
        (, Deal memory deal) = matchCommittee(20, seed);
        bytes32 taskid = taskIdOf(deal, 0);
        uint256 size = poco.committeeSize(20);
        assertEq(size, 9);
        uint256 count = poco.countMembers(workerpool);
        uint256 sybilSeats;
        for (uint256 k; k < sybils.length; ++k) {
            sybilSeats += seatsOf(seed, taskid, size, count, sybils[k]);
        }
        for (uint256 k; k < sybils.length && status(taskid) != REVEALING; ++k) {
            if (seatsOf(seed, taskid, size, count, sybils[k]) != 0) {
                contributeAs(deal, 0, sybils[k], DIGEST_B);
            }
        }
        if (sybilSeats * 2 > size) {
            assertEq(status(taskid), REVEALING);
            assertTrue(poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_B)).consensus);
            return;
        }
        if (sybilSeats != 0) assertEq(status(taskid), ACTIVE);
        for (uint256 k; k < honest.length && status(taskid) != REVEALING; ++k) {
            if (seatsOf(seed, taskid, size, count, honest[k]) != 0) {
                contributeAs(deal, 0, honest[k], DIGEST_A);
            }
        }
        assertEq(status(taskid), REVEALING);
        assertTrue(poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_A)).consensus);
    }

    function _isIn(address[] memory list, address worker) internal pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == worker) return true;
        }
        return false;
    }
}
