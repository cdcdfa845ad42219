// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "./utils/PocoFixture.sol";
import {ResultConsumer, RevertingConsumer} from "./utils/Mocks.sol";
import {Workerpool} from "../src/registries/Workerpools.sol";

/// @notice The task lifecycle (protocol.md §3-§5): initialize, contribute (with and without an
/// enclave), consensus at trust 1, 3, 4 and 100, reveal, finalize with exact payouts, reopen,
/// claim, contributeAndFinalize, callbacks, resultFor and the 7T / 2T / 10T deadlines.
contract LifecycleTest is PocoFixture {
    uint256 internal constant PRICE = APP_PRICE + DATASET_PRICE + WP_PRICE;
    /// 30% of WP_PRICE: the scheduler's stake per task, and the default worker stake.
    uint256 internal constant STAKE = 6_000_000_002;

    address internal w0;
    address internal w1;
    address internal w2;
    address internal w3;

    function setUp() public override {
        super.setUp();
        w0 = workers[0];
        w1 = workers[1];
        w2 = workers[2];
        w3 = workers[3];
    }

    function _ordersWithPrices(
        uint256 appPrice,
        uint256 datasetPrice,
        uint256 wpPrice,
        uint256 trust,
        uint256 volume
    ) internal view returns (OrderSet memory s) {
        s = defaultOrders();
        s.app.appprice = appPrice;
        s.dataset.datasetprice = datasetPrice;
        s.workerpool.workerpoolprice = wpPrice;
        s.request.appmaxprice = appPrice;
        s.request.datasetmaxprice = datasetPrice;
        s.request.workerpoolmaxprice = wpPrice;
        s.request.trust = trust;
        s.request.volume = volume;
        signAll(s);
    }

    // ================================================================== initialize

    function test_initialize() public {
        (bytes32 dealid, Deal memory deal) = matchDefault(1, 3);
        bytes32 taskid = taskIdOf(dealid, 1);
        vm.expectEmit(address(poco));
        emit TaskInitialize(taskid, workerpool);
        vm.prank(stranger); // anyone may initialize
        assertEq(poco.initialize(deal, 1), taskid);
        Task memory task = poco.viewTask(taskid);
        assertEq(uint8(task.status), ACTIVE);
        assertEq(task.contributors, 0);
        assertEq(task.consensusTotal, 1);
        assertEq(status(taskIdOf(dealid, 0)), UNSET);
    }

    function test_initializeArray() public {
        (bytes32 dealid, Deal memory deal) = matchDefault(1, 3);
        uint256[] memory indexes = new uint256[](2);
        indexes[0] = 0;
        indexes[1] = 2;
        vm.expectEmit(address(poco));
        emit TaskInitialize(taskIdOf(dealid, 0), workerpool);
        vm.expectEmit(address(poco));
        emit TaskInitialize(taskIdOf(dealid, 2), workerpool);
        poco.initializeArray(deal, indexes);
        assertEq(status(taskIdOf(dealid, 0)), ACTIVE);
        assertEq(status(taskIdOf(dealid, 1)), UNSET);
        assertEq(status(taskIdOf(dealid, 2)), ACTIVE);
        // Tasks already initialized are skipped: the batch still initializes the others.
        indexes[0] = 1;
        poco.initializeArray(deal, indexes);
        assertEq(status(taskIdOf(dealid, 1)), ACTIVE);
        // But an index outside the deal fails the whole batch.
        (, Deal memory other) = matchDefault(1, 2);
        indexes[0] = 0;
        indexes[1] = 5;
        vm.expectRevert(abi.encodeWithSelector(TaskIndexOutOfRange.selector, 5, 0, 2));
        poco.initializeArray(other, indexes);
        assertEq(status(taskIdOf(other, 0)), UNSET);
    }

    // ================================================================== contribute

    function test_contribute_initializesImplicitlyAndLocksStake() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = taskIdOf(deal, 0);
        assertEq(status(taskid), UNSET);
        vm.expectEmit(address(poco));
        emit TaskContribute(taskid, w0, resultHashOf(taskid, DIGEST_A));
        contributeAs(deal, 0, w0, DIGEST_A);
        Task memory task = poco.viewTask(taskid);
        assertEq(uint8(task.status), ACTIVE);
        assertEq(task.contributors, 1);
        assertEq(task.consensusTotal, 3);
        assertEq(frz(w0), STAKE);
        assertEq(bal(w0), INITIAL_DEPOSIT - STAKE);
        Contribution memory c = poco.viewContribution(taskid, w0);
        assertEq(uint8(c.status), 1); // CONTRIBUTED
        assertEq(c.weight, 1);
        assertEq(c.resultHashPrefix, bytes15(resultHashOf(taskid, DIGEST_A)));
        assertEq(c.resultSealPrefix, bytes15(resultSealOf(w0, taskid, DIGEST_A)));
    }

    function test_contribute_tee() public {
        OrderSet memory s = defaultOrders();
        s.app.tag = bytes32(uint256(0x3));
        s.workerpool.tag = bytes32(uint256(0x3));
        s.request.tag = TEE_TAG;
        s.request.trust = 4;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        bytes32 taskid = contributeTeeAs(deal, 0, w0, DIGEST_A);
        assertEq(status(taskid), ACTIVE);
        contributeTeeAs(deal, 0, w1, DIGEST_A);
        assertEq(status(taskid), REVEALING);
        revealAs(taskid, w0, DIGEST_A);
        revealAs(taskid, w1, DIGEST_A);
        finalizeAs(deal, 0, DIGEST_A, list2(w0, w1));
        assertEq(status(taskid), COMPLETED);
    }

    /// A non-TEE deal still accepts an enclave-backed contribution (protocol.md §3.4).
    function test_contribute_enclaveOnNonTeeDeal() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = contributeTeeAs(deal, 0, w0, DIGEST_A);
        assertEq(status(taskid), REVEALING);
    }

    // ================================================================== consensus (§4)

    function test_consensus_trust1_firstContributionWins() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = taskIdOf(deal, 0);
        vm.expectEmit(address(poco));
        emit TaskConsensus(taskid, resultHashOf(taskid, DIGEST_A));
        contributeAs(deal, 0, w0, DIGEST_A);
        Task memory task = poco.viewTask(taskid);
        assertEq(uint8(task.status), REVEALING);
        assertEq(task.winners, 1);
        assertEq(task.revealDeadline, block.timestamp + 2 * T_XS);
        Group memory g = poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_A));
        assertEq(g.weight, 2);
        assertEq(g.size, 1);
        assertTrue(g.consensus);
    }

    /// Trust 4 with fresh workers (weight 2): two agreeing votes (2^2 >= 4).
    function test_consensus_trust4_twoFreshWorkers() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        assertEq(status(taskid), ACTIVE); // 2*4 = 8 <= 3*3 = 9
        contributeAs(deal, 0, w1, DIGEST_A);
        assertEq(status(taskid), REVEALING); // 4*4 = 16 > 5*3 = 15
        assertEq(poco.viewTask(taskid).consensusTotal, 5);
        assertEq(poco.viewTask(taskid).winners, 2);
    }

    /// protocol.md §4.3: with trust 3, X(2) Y(2) X(4) X(8) reaches consensus on the fourth vote.
    function test_consensus_trust3_dissent() public {
        (, Deal memory deal) = matchDefault(3, 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        assertEq(status(taskid), ACTIVE); // 2*3 = 6, not > 3*2 = 6
        contributeAs(deal, 0, w1, DIGEST_B);
        assertEq(status(taskid), ACTIVE);
        contributeAs(deal, 0, w2, DIGEST_A);
        assertEq(status(taskid), ACTIVE); // 4*3 = 12 <= 7*2 = 14
        assertEq(poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_A)).weight, 4);
        contributeAs(deal, 0, w3, DIGEST_A);
        assertEq(status(taskid), REVEALING); // 8*3 = 24 > 11*2 = 22
        Task memory task = poco.viewTask(taskid);
        assertEq(task.consensusTotal, 11);
        assertEq(task.winners, 3);
        assertEq(task.contributors, 4);
        assertFalse(poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_B)).consensus);
    }

    /// Trust 100 with fresh workers: ceil(log2(100)) = 7 agreeing votes.
    function test_consensus_trust100_sevenFreshWorkers() public {
        (, Deal memory deal) = matchDefault(100, 1);
        address[] memory list = newWorkers(100, 7);
        bytes32 taskid;
        for (uint256 i; i < 6; ++i) {
            taskid = contributeAs(deal, 0, list[i], DIGEST_A);
        }
        assertEq(status(taskid), ACTIVE); // 64*100 = 6400 <= 65*99 = 6435
        contributeAs(deal, 0, list[6], DIGEST_A);
        assertEq(status(taskid), REVEALING); // 128*100 = 12800 > 129*99 = 12771
    }

    function test_consensus_weightsFromScores() public {
        OrderSet memory s = defaultOrders();
        s.workerpool.trust = 1_000_000;
        s.request.trust = 1_000_000;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        uint256[6] memory scores = [uint256(0), 11, 12, 100, 300, 3000];
        uint256[6] memory weights = [uint256(2), 2, 3, 32, 99, 999];
        uint256[6] memory logWeights = [uint256(1), 1, 1, 5, 6, 9];
        address[] memory list = newWorkers(200, 6);
        bytes32 taskid = taskIdOf(deal, 0);
        uint256 total = 1;
        for (uint256 i; i < 6; ++i) {
            setScore(list[i], scores[i]);
            bytes32 digest = keccak256(abi.encode(i));
            contributeAs(deal, 0, list[i], digest);
            total += weights[i];
            assertEq(poco.viewGroup(taskid, resultHashOf(taskid, digest)).weight, weights[i]);
            assertEq(poco.viewContribution(taskid, list[i]).weight, logWeights[i]);
        }
        assertEq(poco.viewTask(taskid).consensusTotal, total);
    }

    // ================================================================== finalize payouts (§5)

    function test_finalize_trust1_payouts() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        vm.expectEmit(address(poco));
        emit TaskReveal(taskid, w0, DIGEST_A);
        revealAs(taskid, w0, DIGEST_A);
        assertEq(poco.viewTask(taskid).reveals, 1);

        uint256 workersReward = WP_PRICE * 99 / 100;
        assertEq(workersReward, 19_800_000_006);
        vm.expectEmit(address(poco));
        emit AccurateContribution(w0, taskid, workersReward);
        vm.expectEmit(address(poco));
        emit TaskFinalize(taskid, "ipfs://result");
        finalizeAs(deal, 0, DIGEST_A, list1(w0));

        assertEq(status(taskid), COMPLETED);
        assertEq(poco.viewTask(taskid).resultDigest, DIGEST_A);
        assertEq(frz(requester), 0);
        assertEq(bal(requester), INITIAL_DEPOSIT - PRICE);
        assertEq(bal(appOwner), INITIAL_DEPOSIT + APP_PRICE);
        assertEq(bal(datasetOwner), INITIAL_DEPOSIT + DATASET_PRICE);
        assertEq(frz(w0), 0);
        assertEq(bal(w0), INITIAL_DEPOSIT + workersReward);
        assertEq(frz(scheduler), 0);
        assertEq(bal(scheduler), INITIAL_DEPOSIT + 200_000_001);
        // Not replicated: no score for a lone worker.
        assertEq(poco.viewScore(w0), 0);
        assertEq(poco.resultFor(taskid), "");
        assertEq(uint8(poco.viewContribution(taskid, w0).status), 2); // PROVED
    }

    /// The worked example of protocol.md §5.4, with the scores of §4.3: pool policy stake 35%,
    /// scheduler ratio 5%; prices app 0, dataset 1 RLC, pool 20 RLC; trust 100; votes 17 (w 3),
    /// 42 (w 32), 42 (w 99).
    function test_finalize_protocolWorkedExample() public {
        vm.prank(scheduler);
        Workerpool(workerpool).changePolicy(35, 5);
        OrderSet memory s = _ordersWithPrices(0, RLC_UNIT, 20 * RLC_UNIT, 100, 1);
        (, Deal memory deal) = matchSet(s);
        assertEq(frz(requester), 21 * RLC_UNIT);
        assertEq(frz(scheduler), 6 * RLC_UNIT);
        assertEq(deal.workerStake, 7 * RLC_UNIT);

        address loser = w0;
        address second = w1;
        address third = w2;
        setScore(loser, 12);
        setScore(second, 100);
        setScore(third, 300);
        bytes32 d17 = keccak256("17");
        bytes32 d42 = keccak256("42");
        bytes32 taskid = contributeAs(deal, 0, loser, d17);
        contributeAs(deal, 0, second, d42);
        assertEq(status(taskid), ACTIVE); // 32*100 = 3200 <= 36*99 = 3564
        contributeAs(deal, 0, third, d42);
        assertEq(status(taskid), REVEALING); // 3168*100 = 316800 > 3172*99 = 314028
        assertEq(poco.viewGroup(taskid, resultHashOf(taskid, d42)).weight, 3168);
        assertEq(poco.viewTask(taskid).consensusTotal, 3172);
        assertEq(frz(loser), 7 * RLC_UNIT);

        revealAs(taskid, second, d42);
        revealAs(taskid, third, d42);
        uint256 schedulerBefore = bal(scheduler);
        vm.expectEmit(address(poco));
        emit FaultyContribution(loser, taskid);
        finalizeAs(deal, 0, d42, list3(loser, second, third));

        // totalReward = 20 + 7 = 27 RLC; workersReward = 27 * 95% = 25.65 RLC, split 5:6.
        uint256 r2 = 11_659_090_909; // floor(25.65e9 * 5 / 11)
        uint256 r3 = 13_990_909_090; // floor(25.65e9 * 6 / 11)
        assertEq(r2, uint256(25_650_000_000) * 5 / 11);
        assertEq(r3, uint256(25_650_000_000) * 6 / 11);
        assertEq(bal(second), INITIAL_DEPOSIT + r2);
        assertEq(bal(third), INITIAL_DEPOSIT + r3);
        assertEq(bal(loser), INITIAL_DEPOSIT - 7 * RLC_UNIT);
        assertEq(frz(second) + frz(third) + frz(loser), 0);
        // Scheduler: its 6 RLC stake back plus 27 - r2 - r3 = 1.350000001 RLC.
        assertEq(bal(scheduler), schedulerBefore + 6 * RLC_UNIT + 1_350_000_001);
        assertEq(frz(scheduler), 0);
        assertEq(bal(datasetOwner), INITIAL_DEPOSIT + RLC_UNIT);
        assertEq(bal(appOwner), INITIAL_DEPOSIT);
        assertEq(frz(requester), 0);
        assertEq(bal(requester), INITIAL_DEPOSIT - 21 * RLC_UNIT);
        // Scores: winners +1 (replicated task), loser x2/3.
        assertEq(poco.viewScore(second), 101);
        assertEq(poco.viewScore(third), 301);
        assertEq(poco.viewScore(loser), 8);
    }

    /// A winner who does not reveal is faulty: once the reveal window is over the scheduler
    /// finalizes with the reveals it has, and the silent winner's stake goes to the others.
    function test_finalize_afterRevealWindowWithSilentWinner() public {
        (, Deal memory deal) = matchDefault(4, 1);
        setScore(w0, 6);
        setScore(w1, 9);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        contributeAs(deal, 0, w1, DIGEST_A);
        revealAs(taskid, w0, DIGEST_A);
        vm.warp(poco.viewTask(taskid).revealDeadline);
        finalizeAs(deal, 0, DIGEST_A, list2(w0, w1));

        uint256 totalReward = WP_PRICE + STAKE;
        uint256 workersReward = totalReward * 99 / 100;
        assertEq(bal(w0), INITIAL_DEPOSIT + workersReward);
        assertEq(bal(w1), INITIAL_DEPOSIT - STAKE);
        assertEq(frz(w0) + frz(w1), 0);
        assertEq(bal(scheduler), INITIAL_DEPOSIT + totalReward - workersReward);
        assertEq(poco.viewScore(w0), 7);
        assertEq(poco.viewScore(w1), 6);
    }

    /// No bonus comes out of failed tasks: after a claim burned a scheduler's stake, the next
    /// successful task pays its scheduler its stake and its share, nothing more.
    function test_finalize_noBonusFromFailedTasks() public {
        (, Deal memory failed) = matchDefault(1, 1);
        vm.warp(finalDeadline(failed));
        poco.claim(failed, 0, emptyList());
        assertEq(frz(BURN_ACCOUNT), STAKE);

        Deal memory deal = _freshDeal("after a failure");
        uint256 before = bal(scheduler);
        contributeAndFinalizeAs(deal, 0, w0, DIGEST_A);
        assertEq(bal(scheduler), before + STAKE + (WP_PRICE - WP_PRICE * 99 / 100));
        assertEq(frz(BURN_ACCOUNT), STAKE);
    }

    /// A trust-1, volume-1 deal of the default orders with a request salted by `salt`.
    function _freshDeal(string memory salt) internal returns (Deal memory deal) {
        OrderSet memory s = signedOrders(1, 1);
        s.request.salt = keccak256(bytes(salt));
        signAll(s);
        (, deal) = matchSet(s);
    }

    /// A score rises on a replicated task with at least 1 RLC at stake, once per day at most.
    function test_finalize_scoreRisesOncePerPeriod() public {
        for (uint256 i; i < 3; ++i) {
            Deal memory deal = _freshDealOfTrust(4, string.concat("score ", vm.toString(i)));
            bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
            contributeAs(deal, 0, w1, DIGEST_A);
            revealAs(taskid, w0, DIGEST_A);
            revealAs(taskid, w1, DIGEST_A);
            finalizeAs(deal, 0, DIGEST_A, list2(w0, w1));
        }
        assertEq(poco.viewScore(w0), 1, "three tasks in one period: one point");
        vm.warp(block.timestamp + SCORE_PERIOD);
        Deal memory next = _freshDealOfTrust(4, "next day");
        bytes32 nextTask = contributeAs(next, 0, w0, DIGEST_A);
        contributeAs(next, 0, w1, DIGEST_A);
        revealAs(nextTask, w0, DIGEST_A);
        revealAs(nextTask, w1, DIGEST_A);
        finalizeAs(next, 0, DIGEST_A, list2(w0, w1));
        assertEq(poco.viewScore(w0), 2);
        assertEq(poco.viewScore(w1), 2);
    }

    /// A replicated task whose stake is below 1 RLC raises no score: nothing was at risk.
    function test_finalize_noScoreWithoutStakeAtRisk() public {
        OrderSet memory s = _ordersWithPrices(0, 0, 3 * RLC_UNIT, 4, 1); // stake 0.9 RLC
        (, Deal memory deal) = matchSet(s);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        contributeAs(deal, 0, w1, DIGEST_A);
        revealAs(taskid, w0, DIGEST_A);
        revealAs(taskid, w1, DIGEST_A);
        finalizeAs(deal, 0, DIGEST_A, list2(w0, w1));
        assertEq(deal.workerStake, 900_000_000);
        assertEq(poco.viewScore(w0), 0);
        assertEq(poco.viewScore(w1), 0);
    }

    function _freshDealOfTrust(uint256 trust, string memory salt)
        internal
        returns (Deal memory deal)
    {
        OrderSet memory s = signedOrders(trust, 1);
        s.request.salt = keccak256(bytes(salt));
        signAll(s);
        (, deal) = matchSet(s);
    }

    // ================================================================== reopen

    function test_reopen() public {
        (, Deal memory deal) = matchDefault(4, 1);
        setScore(w0, 9);
        setScore(w1, 30);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        contributeAs(deal, 0, w1, DIGEST_A); // w: 2 and 9 -> group 18, total 19
        bytes32 consensus = resultHashOf(taskid, DIGEST_A);
        assertEq(status(taskid), REVEALING);
        vm.warp(poco.viewTask(taskid).revealDeadline);

        vm.expectEmit(address(poco));
        emit TaskReopen(taskid);
        vm.prank(scheduler);
        poco.reopen(deal, 0, consensus, list2(w0, w1));

        Task memory task = poco.viewTask(taskid);
        assertEq(uint8(task.status), ACTIVE);
        assertEq(task.contributors, 2);
        assertEq(task.winners, 0);
        assertEq(task.revealDeadline, 0);
        assertEq(task.consensusTotal, 1);
        Group memory g = poco.viewGroup(taskid, consensus);
        assertEq(g.weight, 0);
        assertFalse(g.consensus);
        assertEq(uint8(poco.viewContribution(taskid, w0).status), 3); // REJECTED
        assertEq(uint8(poco.viewContribution(taskid, w1).status), 3);

        // Rejected workers cannot vote again.
        bytes memory auth = authorization(w0, taskid, address(0));
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(AlreadyContributed.selector, taskid, w0));
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_B),
            resultSealOf(w0, taskid, DIGEST_B),
            address(0),
            "",
            auth
        );

        // New workers reach a consensus on another answer, and the rejected ones pay for it.
        contributeAs(deal, 0, w2, DIGEST_B);
        contributeAs(deal, 0, w3, DIGEST_B);
        assertEq(status(taskid), REVEALING);
        assertEq(poco.viewTask(taskid).winners, 2);
        revealAs(taskid, w2, DIGEST_B);
        revealAs(taskid, w3, DIGEST_B);
        finalizeAs(deal, 0, DIGEST_B, sorted(_four(w0, w1, w2, w3)));

        uint256 totalReward = WP_PRICE + 2 * STAKE;
        uint256 workersReward = totalReward * 99 / 100;
        assertEq(bal(w2), INITIAL_DEPOSIT + workersReward / 2);
        assertEq(bal(w3), INITIAL_DEPOSIT + workersReward / 2);
        assertEq(bal(w0), INITIAL_DEPOSIT - STAKE);
        assertEq(bal(w1), INITIAL_DEPOSIT - STAKE);
        assertEq(poco.viewScore(w0), 6);
        assertEq(poco.viewScore(w1), 20);
        assertEq(poco.viewScore(w2), 1);
        assertEq(bal(scheduler), INITIAL_DEPOSIT + totalReward - 2 * (workersReward / 2));
        assertEq(poco.viewTask(taskid).resultDigest, DIGEST_B);
    }

    function _four(address a, address b, address c, address d)
        internal
        pure
        returns (address[] memory l)
    {
        l = new address[](4);
        l[0] = a;
        l[1] = b;
        l[2] = c;
        l[3] = d;
    }

    // ================================================================== claim

    function test_claim_unsetTask() public {
        (bytes32 dealid, Deal memory deal) = matchDefault(1, 2);
        bytes32 taskid = taskIdOf(dealid, 1);
        vm.warp(finalDeadline(deal));
        vm.expectEmit(address(poco));
        emit TaskClaimed(taskid);
        vm.prank(stranger); // anyone may claim
        poco.claim(deal, 1, emptyList());
        assertEq(status(taskid), FAILED);
        assertEq(frz(requester), PRICE);
        assertEq(bal(requester), INITIAL_DEPOSIT - PRICE);
        assertEq(frz(scheduler), STAKE);
        assertEq(bal(scheduler), INITIAL_DEPOSIT - 2 * STAKE);
        assertEq(frz(BURN_ACCOUNT), STAKE, "nobody proved anything: the stake is burned");
        assertEq(bal(BURN_ACCOUNT), 0);
    }

    function test_claim_activeTaskRefundsContributors() public {
        (, Deal memory deal) = matchDefault(4, 1);
        setScore(w0, 11); // weight 2: no consensus alone at trust 4
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        assertEq(status(taskid), ACTIVE);
        vm.warp(finalDeadline(deal));
        poco.claim(deal, 0, list1(w0));
        assertEq(status(taskid), FAILED);
        assertEq(bal(w0), INITIAL_DEPOSIT);
        assertEq(frz(w0), 0);
        assertEq(poco.viewScore(w0), 11);
        assertEq(bal(requester), INITIAL_DEPOSIT);
        assertEq(frz(requester), 0);
        assertEq(frz(BURN_ACCOUNT), STAKE);
    }

    /// Contributors rejected by a reopen are known to be wrong: claim seizes their stake.
    function test_claim_afterReopenSeizesRejected() public {
        (, Deal memory deal) = matchDefault(1, 1);
        setScore(w0, 30);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        vm.warp(poco.viewTask(taskid).revealDeadline);
        vm.prank(scheduler);
        poco.reopen(deal, 0, resultHashOf(taskid, DIGEST_A), list1(w0));
        vm.warp(finalDeadline(deal));
        vm.expectEmit(address(poco));
        emit FaultyContribution(w0, taskid);
        poco.claim(deal, 0, list1(w0));
        assertEq(bal(w0), INITIAL_DEPOSIT - STAKE);
        assertEq(frz(w0), 0);
        assertEq(poco.viewScore(w0), 20);
        assertEq(frz(BURN_ACCOUNT), 2 * STAKE);
    }

    function test_claimArray() public {
        (bytes32 dealid, Deal memory deal) = matchDefault(4, 3);
        contributeAs(deal, 1, w0, DIGEST_A);
        vm.warp(finalDeadline(deal));
        uint256[] memory indexes = new uint256[](2);
        indexes[0] = 0;
        indexes[1] = 1;
        address[][] memory contributors = new address[][](2);
        contributors[0] = emptyList();
        contributors[1] = list1(w0);
        poco.claimArray(deal, indexes, contributors);
        assertEq(status(taskIdOf(dealid, 0)), FAILED);
        assertEq(status(taskIdOf(dealid, 1)), FAILED);
        assertEq(status(taskIdOf(dealid, 2)), UNSET);
        assertEq(frz(requester), PRICE);
        assertEq(frz(w0), 0);
        assertEq(frz(BURN_ACCOUNT), 2 * STAKE);
    }

    // ================================================================== contributeAndFinalize

    function test_contributeAndFinalize() public {
        (bytes32 dealid, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = taskIdOf(dealid, 0);
        setScore(w0, 5);
        vm.expectEmit(address(poco));
        emit TaskContribute(taskid, w0, resultHashOf(taskid, DIGEST_A));
        vm.expectEmit(address(poco));
        emit TaskFinalize(taskid, "ipfs://result");
        contributeAndFinalizeAs(deal, 0, w0, DIGEST_A);

        Task memory task = poco.viewTask(taskid);
        assertEq(uint8(task.status), COMPLETED);
        assertEq(task.contributors, 1);
        assertEq(task.reveals, 1);
        assertEq(task.winners, 1);
        assertEq(task.resultDigest, DIGEST_A);
        assertEq(task.revealDeadline, block.timestamp + 2 * T_XS);

        uint256 workerReward = WP_PRICE * 99 / 100;
        assertEq(bal(w0), INITIAL_DEPOSIT + workerReward);
        assertEq(frz(w0), 0);
        assertEq(poco.viewScore(w0), 5);
        assertEq(bal(scheduler), INITIAL_DEPOSIT + WP_PRICE - workerReward);
        assertEq(frz(scheduler), 0);
        assertEq(bal(appOwner), INITIAL_DEPOSIT + APP_PRICE);
        assertEq(bal(datasetOwner), INITIAL_DEPOSIT + DATASET_PRICE);
        assertEq(frz(requester), 0);
        assertEq(bal(requester), INITIAL_DEPOSIT - PRICE);
    }

    /// The fast path needs no stake: a worker with an empty account can use it.
    function test_contributeAndFinalize_noStakeNeeded() public {
        (, Deal memory deal) = matchDefault(1, 1);
        address poor = makeAddr("poor");
        contributeAndFinalizeAs(deal, 0, poor, DIGEST_A);
        assertEq(bal(poor), WP_PRICE * 99 / 100);
    }

    function test_contributeAndFinalize_tee() public {
        OrderSet memory s = defaultOrders();
        s.app.tag = bytes32(uint256(0x9));
        s.workerpool.tag = bytes32(uint256(0x9));
        s.dataset.tag = bytes32(uint256(0x3));
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        bytes32 taskid = taskIdOf(deal, 0);
        bytes32 h = resultHashOf(taskid, DIGEST_A);
        bytes32 seal = resultSealOf(w0, taskid, DIGEST_A);
        bytes memory enclaveSign = enclaveSignature(enclaveKey, h, seal);
        bytes memory auth = authorization(w0, taskid, enclave);
        vm.prank(w0);
        poco.contributeAndFinalize(deal, 0, DIGEST_A, "ipfs://r", "", enclave, enclaveSign, auth);
        assertEq(status(taskid), COMPLETED);
        assertEq(bal(w0), INITIAL_DEPOSIT + WP_PRICE * 99 / 100);
    }

    // ================================================================== callbacks

    function _callbackDeal(address callback) internal returns (Deal memory deal) {
        OrderSet memory s = defaultOrders();
        s.request.callback = callback;
        signAll(s);
        (, deal) = matchSet(s);
    }

    function test_callback_consumerReceivesResult() public {
        ResultConsumer consumer = new ResultConsumer();
        Deal memory deal = _callbackDeal(address(consumer));
        bytes memory data = abi.encode(uint256(1234), "price");
        bytes32 digest = keccak256(data);
        bytes32 taskid = contributeAs(deal, 0, w0, digest);
        revealAs(taskid, w0, digest);
        vm.expectCall(
            address(consumer), abi.encodeCall(ResultConsumer.receiveResult, (taskid, data))
        );
        vm.prank(scheduler);
        poco.finalize(deal, 0, digest, "ipfs://r", data, list1(w0));
        assertEq(consumer.calls(), 1);
        assertEq(consumer.lastTaskid(), taskid);
        assertEq(consumer.lastResults(), data);
        assertEq(poco.resultFor(taskid), data);
    }

    function test_callback_contributeAndFinalize() public {
        ResultConsumer consumer = new ResultConsumer();
        Deal memory deal = _callbackDeal(address(consumer));
        bytes memory data = "fast answer";
        bytes32 taskid = taskIdOf(deal, 0);
        bytes memory auth = authorization(w0, taskid, address(0));
        vm.prank(w0);
        poco.contributeAndFinalize(deal, 0, keccak256(data), "", data, address(0), "", auth);
        assertEq(consumer.lastResults(), data);
        assertEq(poco.resultFor(taskid), data);
    }

    function test_callback_revertingConsumerDoesNotBlockPayment() public {
        RevertingConsumer consumer = new RevertingConsumer();
        Deal memory deal = _callbackDeal(address(consumer));
        bytes memory data = "ignored";
        bytes32 digest = keccak256(data);
        bytes32 taskid = contributeAs(deal, 0, w0, digest);
        revealAs(taskid, w0, digest);
        vm.prank(scheduler);
        poco.finalize(deal, 0, digest, "ipfs://r", data, list1(w0));
        assertEq(status(taskid), COMPLETED);
        assertEq(bal(w0), INITIAL_DEPOSIT + WP_PRICE * 99 / 100);
        assertEq(bal(appOwner), INITIAL_DEPOSIT + APP_PRICE);
        assertEq(frz(requester), 0);
        assertEq(poco.resultFor(taskid), data);
    }

    // ================================================================== deadlines

    function test_deadlines_contributionWindowIs7T() public {
        (, Deal memory deal) = matchDefault(4, 2);
        // Task 1 initialized late still closes at start + 7T.
        vm.warp(deal.startTime + 6 * T_XS);
        poco.initialize(deal, 1);
        vm.warp(deal.startTime + 7 * T_XS - 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        contributeAs(deal, 1, w0, DIGEST_A);
        vm.warp(deal.startTime + 7 * T_XS);
        bytes memory auth = authorization(w1, taskid, address(0));
        vm.prank(w1);
        vm.expectRevert(
            abi.encodeWithSelector(
                ContributionDeadlineReached.selector, taskid, deal.startTime + 7 * T_XS
            )
        );
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(w1, taskid, DIGEST_A),
            address(0),
            "",
            auth
        );
    }

    function test_deadlines_revealWindowIs2TFromConsensus() public {
        (, Deal memory deal) = matchDefault(4, 1);
        vm.warp(deal.startTime + 5 * T_XS);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        contributeAs(deal, 0, w1, DIGEST_A);
        uint256 revealDeadline = deal.startTime + 7 * T_XS;
        assertEq(poco.viewTask(taskid).revealDeadline, revealDeadline);
        vm.warp(revealDeadline - 1);
        revealAs(taskid, w0, DIGEST_A);
        vm.warp(revealDeadline);
        vm.prank(w1);
        vm.expectRevert(
            abi.encodeWithSelector(RevealDeadlineReached.selector, taskid, revealDeadline)
        );
        poco.reveal(taskid, DIGEST_A);
        // After the window, the scheduler finalizes with the reveals it has.
        finalizeAs(deal, 0, DIGEST_A, list2(w0, w1));
        assertEq(status(taskid), COMPLETED);
    }

    function test_deadlines_finalizeBefore10TClaimFrom10T() public {
        (, Deal memory deal) = matchDefault(1, 2);
        bytes32 task0 = contributeAs(deal, 0, w0, DIGEST_A);
        revealAs(task0, w0, DIGEST_A);
        bytes32 task1 = contributeAs(deal, 1, w1, DIGEST_A);
        revealAs(task1, w1, DIGEST_A);
        vm.warp(deal.startTime + 10 * T_XS - 1);
        finalizeAs(deal, 0, DIGEST_A, list1(w0));
        vm.expectRevert(
            abi.encodeWithSelector(
                FinalDeadlineNotReached.selector, task1, deal.startTime + 10 * T_XS
            )
        );
        poco.claim(deal, 1, list1(w1));
        vm.warp(deal.startTime + 10 * T_XS);
        // The revealed worker of a claimed task gets its stake back, and the scheduler's stake
        // for the work the scheduler left unpaid.
        poco.claim(deal, 1, list1(w1));
        assertEq(status(task0), COMPLETED);
        assertEq(status(task1), FAILED);
        assertEq(bal(w1), INITIAL_DEPOSIT + STAKE);
        assertEq(frz(w1), 0);
    }

    function test_deadlines_otherCategory() public {
        OrderSet memory s = defaultOrders();
        s.request.category = 3; // L: T = 10800 s
        s.workerpool.category = 3;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        assertEq(deal.timeref, 10_800);
        bytes32 taskid = taskIdOf(deal, 0);
        vm.warp(deal.startTime + 10 * 10_800 - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                FinalDeadlineNotReached.selector, taskid, deal.startTime + 108_000
            )
        );
        poco.claim(deal, 0, emptyList());
    }
}
