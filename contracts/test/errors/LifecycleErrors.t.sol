// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "../utils/PocoFixture.sol";
import {ResultConsumer} from "../utils/Mocks.sol";
import {IPoco} from "../../src/interfaces/IPoco.sol";

/// @notice Every error of the task lifecycle, each asserted with its exact arguments.
/// `TooManyContributors` is covered by `Attacks.t.sol` (attack 5).
contract LifecycleErrorsTest is PocoFixture {
    address internal w0;
    address internal w1;
    address internal w2;

    function setUp() public override {
        super.setUp();
        w0 = workers[0];
        w1 = workers[1];
        w2 = workers[2];
    }

    function _teeDeal() internal returns (Deal memory deal) {
        OrderSet memory s = defaultOrders();
        s.app.tag = TEE_TAG;
        s.workerpool.tag = TEE_TAG;
        s.request.tag = TEE_TAG;
        signAll(s);
        (, deal) = matchSet(s);
    }

    /// A trust-4 deal whose task 0 reached consensus on DIGEST_A with w0 and w1.
    function _revealingTask() internal returns (Deal memory deal, bytes32 taskid) {
        (, deal) = matchDefault(4, 1);
        contributeAs(deal, 0, w0, DIGEST_A);
        taskid = contributeAs(deal, 0, w1, DIGEST_A);
        assertEq(status(taskid), REVEALING);
    }

    // ================================================================== deal and index

    function test_UnknownDeal_alteredDeal() public {
        (bytes32 dealid, Deal memory deal) = matchDefault(1, 1);
        deal.workerpoolPrice = 0;
        vm.expectRevert(abi.encodeWithSelector(UnknownDeal.selector, dealid));
        poco.initialize(deal, 0);
        deal.workerpoolPrice = WP_PRICE;
        deal.scheduler = stranger;
        bytes32 taskid = taskIdOf(dealid, 0);
        bytes memory auth = authorizationBy(strangerKey, w0, taskid, address(0));
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(UnknownDeal.selector, dealid));
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(w0, taskid, DIGEST_A),
            address(0),
            "",
            auth
        );
    }

    function test_UnknownDeal_missingDeal() public {
        (, Deal memory deal) = matchDefault(1, 1);
        deal.botFirst = 1;
        bytes32 missing = dealIdOf(deal.requestHash, 1);
        vm.warp(finalDeadline(deal));
        vm.expectRevert(abi.encodeWithSelector(UnknownDeal.selector, missing));
        poco.claim(deal, 1, emptyList());
    }

    function test_TaskIndexOutOfRange() public {
        OrderSet memory s = signedOrders(1, 5);
        s.app.volume = 2;
        signAll(s);
        (, Deal memory first) = matchSet(s);
        s.app.salt = keccak256("second app order");
        signAll(s);
        (, Deal memory second) = matchSet(s);
        assertEq(second.botFirst, 2);
        assertEq(second.botSize, 2);
        vm.expectRevert(abi.encodeWithSelector(TaskIndexOutOfRange.selector, 2, 0, 2));
        poco.initialize(first, 2);
        vm.expectRevert(abi.encodeWithSelector(TaskIndexOutOfRange.selector, 1, 2, 2));
        poco.initialize(second, 1);
        vm.expectRevert(abi.encodeWithSelector(TaskIndexOutOfRange.selector, 4, 2, 2));
        poco.initialize(second, 4);
        poco.initialize(second, 3);
    }

    // ================================================================== statuses

    function test_WrongTaskStatus_initializeTwice() public {
        (bytes32 dealid, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = poco.initialize(deal, 0);
        assertEq(taskid, taskIdOf(dealid, 0));
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, ACTIVE));
        poco.initialize(deal, 0);
    }

    function test_WrongTaskStatus_revealWhileActive() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, ACTIVE));
        poco.reveal(taskid, DIGEST_A);
    }

    function test_WrongTaskStatus_finalizeWhileActive() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, ACTIVE));
        poco.finalize(deal, 0, DIGEST_A, "", "", list1(w0));
    }

    function test_WrongTaskStatus_contributeAfterConsensus() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        bytes memory auth = authorization(w2, taskid, address(0));
        vm.prank(w2);
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, REVEALING));
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(w2, taskid, DIGEST_A),
            address(0),
            "",
            auth
        );
    }

    function test_WrongTaskStatus_reopenWhileActive() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, ACTIVE));
        poco.reopen(deal, 0, resultHashOf(taskid, DIGEST_A), list1(w0));
    }

    function test_WrongTaskStatus_claimCompleted() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = contributeAndFinalizeAs(deal, 0, w0, DIGEST_A);
        vm.warp(finalDeadline(deal));
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, COMPLETED));
        poco.claim(deal, 0, emptyList());
    }

    function test_WrongTaskStatus_claimTwice() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = taskIdOf(deal, 0);
        vm.warp(finalDeadline(deal));
        poco.claim(deal, 0, emptyList());
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, FAILED));
        poco.claim(deal, 0, emptyList());
    }

    function test_WrongTaskStatus_contributeAndFinalizeAfterContribution() public {
        // Trust 1: the first contribution is the consensus, the task is REVEALING.
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        bytes memory auth = authorization(w1, taskid, address(0));
        vm.prank(w1);
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, REVEALING));
        poco.contributeAndFinalize(deal, 0, DIGEST_A, "", "", address(0), "", auth);
    }

    function test_TaskHasContributions_contributeAndFinalizeAfterReopen() public {
        // A trust-1 deal whose task was reopened: ACTIVE again, with one (rejected) contributor.
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
        vm.warp(poco.viewTask(taskid).revealDeadline);
        vm.prank(scheduler);
        poco.reopen(deal, 0, resultHashOf(taskid, DIGEST_A), list1(w0));
        assertEq(status(taskid), ACTIVE);
        bytes memory auth = authorization(w1, taskid, address(0));
        vm.prank(w1);
        vm.expectRevert(abi.encodeWithSelector(TaskHasContributions.selector, taskid));
        poco.contributeAndFinalize(deal, 0, DIGEST_A, "", "", address(0), "", auth);
    }

    function test_WrongTaskStatus_resultForPending() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = taskIdOf(deal, 0);
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, UNSET));
        poco.resultFor(taskid);
        poco.initialize(deal, 0);
        vm.expectRevert(abi.encodeWithSelector(WrongTaskStatus.selector, taskid, ACTIVE));
        poco.resultFor(taskid);
    }

    // ================================================================== deadlines

    function test_ContributionDeadlineReached() public {
        (, Deal memory deal) = matchDefault(1, 2);
        uint256 deadline = contributionDeadline(deal);
        assertEq(deadline, deal.startTime + 7 * T_XS);
        vm.warp(deadline);
        bytes32 taskid = taskIdOf(deal, 0);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionDeadlineReached.selector, taskid, deadline)
        );
        poco.initialize(deal, 0);
        bytes memory auth = authorization(w0, taskid, address(0));
        vm.prank(w0);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionDeadlineReached.selector, taskid, deadline)
        );
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(w0, taskid, DIGEST_A),
            address(0),
            "",
            auth
        );
        vm.prank(w0);
        vm.expectRevert(
            abi.encodeWithSelector(ContributionDeadlineReached.selector, taskid, deadline)
        );
        poco.contributeAndFinalize(deal, 0, DIGEST_A, "", "", address(0), "", auth);
    }

    function test_RevealDeadlineReached() public {
        (, bytes32 taskid) = _revealingTask();
        uint256 deadline = block.timestamp + 2 * T_XS;
        assertEq(poco.viewTask(taskid).revealDeadline, deadline);
        vm.warp(deadline);
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(RevealDeadlineReached.selector, taskid, deadline));
        poco.reveal(taskid, DIGEST_A);
    }

    function test_RevealDeadlineNotReached() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        uint256 deadline = poco.viewTask(taskid).revealDeadline;
        vm.warp(deadline - 1);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(RevealDeadlineNotReached.selector, taskid, deadline));
        poco.reopen(deal, 0, resultHashOf(taskid, DIGEST_A), list2(w0, w1));
    }

    function test_FinalDeadlineReached_finalize() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        revealAs(taskid, w0, DIGEST_A);
        revealAs(taskid, w1, DIGEST_A);
        uint256 deadline = finalDeadline(deal);
        vm.warp(deadline);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(FinalDeadlineReached.selector, taskid, deadline));
        poco.finalize(deal, 0, DIGEST_A, "", "", list2(w0, w1));
    }

    function test_FinalDeadlineReached_reopen() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        uint256 deadline = finalDeadline(deal);
        vm.warp(deadline);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(FinalDeadlineReached.selector, taskid, deadline));
        poco.reopen(deal, 0, resultHashOf(taskid, DIGEST_A), list2(w0, w1));
    }

    function test_FinalDeadlineNotReached() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = taskIdOf(deal, 0);
        uint256 deadline = finalDeadline(deal);
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(FinalDeadlineNotReached.selector, taskid, deadline));
        poco.claim(deal, 0, emptyList());
    }

    // ================================================================== contribute

    function test_AlreadyContributed() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, w0, DIGEST_A);
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
    }

    function test_EnclaveChallengeRequired() public {
        Deal memory deal = _teeDeal();
        bytes32 taskid = taskIdOf(deal, 0);
        bytes memory auth = authorization(w0, taskid, address(0));
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(EnclaveChallengeRequired.selector, taskid));
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(w0, taskid, DIGEST_A),
            address(0),
            "",
            auth
        );
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(EnclaveChallengeRequired.selector, taskid));
        poco.contributeAndFinalize(deal, 0, DIGEST_A, "", "", address(0), "", auth);
    }

    function test_InvalidAuthorization() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = taskIdOf(deal, 0);
        bytes32 h = resultHashOf(taskid, DIGEST_A);
        bytes32 seal = resultSealOf(w0, taskid, DIGEST_A);
        bytes memory err = abi.encodeWithSelector(InvalidAuthorization.selector, taskid, w0);

        // Signed by someone else than the scheduler.
        bytes memory auth = authorizationBy(strangerKey, w0, taskid, address(0));
        vm.prank(w0);
        vm.expectRevert(err);
        poco.contribute(deal, 0, h, seal, address(0), "", auth);
        // Issued to another worker.
        auth = authorization(w1, taskid, address(0));
        vm.prank(w0);
        vm.expectRevert(err);
        poco.contribute(deal, 0, h, seal, address(0), "", auth);
        // Issued for another task.
        auth = authorization(w0, taskIdOf(deal, 1), address(0));
        vm.prank(w0);
        vm.expectRevert(err);
        poco.contribute(deal, 0, h, seal, address(0), "", auth);
        // Issued for another enclave challenge.
        auth = authorization(w0, taskid, enclave);
        vm.prank(w0);
        vm.expectRevert(err);
        poco.contribute(deal, 0, h, seal, address(0), "", auth);
        // The raw hash signed without the personal_sign prefix.
        auth = sign65(schedulerKey, keccak256(abi.encodePacked(w0, taskid, address(0))));
        vm.prank(w0);
        vm.expectRevert(err);
        poco.contributeAndFinalize(deal, 0, DIGEST_A, "", "", address(0), "", auth);
    }

    function test_InvalidEnclaveSignature() public {
        Deal memory deal = _teeDeal();
        bytes32 taskid = taskIdOf(deal, 0);
        bytes32 h = resultHashOf(taskid, DIGEST_A);
        bytes32 seal = resultSealOf(w0, taskid, DIGEST_A);
        bytes memory auth = authorization(w0, taskid, enclave);
        bytes memory err = abi.encodeWithSelector(InvalidEnclaveSignature.selector, taskid, enclave);

        bytes memory wrongKey = enclaveSignature(strangerKey, h, seal);
        vm.prank(w0);
        vm.expectRevert(err);
        poco.contribute(deal, 0, h, seal, enclave, wrongKey, auth);

        bytes memory wrongResult =
            enclaveSignature(enclaveKey, resultHashOf(taskid, DIGEST_B), seal);
        vm.prank(w0);
        vm.expectRevert(err);
        poco.contribute(deal, 0, h, seal, enclave, wrongResult, auth);

        vm.prank(w0);
        vm.expectRevert(err);
        poco.contributeAndFinalize(deal, 0, DIGEST_B, "", "", enclave, wrongResult, auth);
    }

    function test_EmptyResultHash() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = taskIdOf(deal, 0);
        bytes memory auth = authorization(w0, taskid, address(0));
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(EmptyResultHash.selector));
        poco.contribute(deal, 0, bytes32(0), bytes32(0), address(0), "", auth);
    }

    function test_InsufficientBalance_workerStake() public {
        (, Deal memory deal) = matchDefault(1, 1);
        address poor = makeAddr("poor");
        bytes32 taskid = taskIdOf(deal, 0);
        bytes memory auth = authorization(poor, taskid, address(0));
        vm.prank(poor);
        vm.expectRevert(
            abi.encodeWithSelector(InsufficientBalance.selector, poor, deal.workerStake, 0)
        );
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(poor, taskid, DIGEST_A),
            address(0),
            "",
            auth
        );
    }

    /// The running total of a task no longer fits 184 bits. Only reachable with workers of huge
    /// weight (scores near 2^64, written directly) voting against each other at maximal trust.
    function test_ConsensusOverflow() public {
        OrderSet memory s = defaultOrders();
        s.workerpool.trust = type(uint64).max;
        s.request.trust = type(uint64).max;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        uint256 score = 3 * ((uint256(1) << 30) + 1); // weight 2^30
        address[] memory voters = newWorkers(50, 13);
        for (uint256 i; i < voters.length; ++i) {
            setScore(voters[i], score);
        }
        // Two groups growing together never reach consensus; six votes each weigh 2^180.
        bytes32 taskid;
        for (uint256 i; i < 12; ++i) {
            taskid = contributeAs(deal, 0, voters[i], i % 2 == 0 ? DIGEST_A : DIGEST_B);
        }
        assertEq(poco.viewGroup(taskid, resultHashOf(taskid, DIGEST_A)).weight, 1 << 180);
        assertEq(poco.viewTask(taskid).consensusTotal, 1 + (1 << 181));
        bytes memory auth = authorization(voters[12], taskid, address(0));
        vm.prank(voters[12]);
        vm.expectRevert(abi.encodeWithSelector(ConsensusOverflow.selector, taskid));
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(voters[12], taskid, DIGEST_A),
            address(0),
            "",
            auth
        );
    }

    // ================================================================== reveal

    function test_NoContribution() public {
        (, bytes32 taskid) = _revealingTask();
        vm.prank(w2);
        vm.expectRevert(abi.encodeWithSelector(NoContribution.selector, taskid, w2));
        poco.reveal(taskid, DIGEST_A);
        // A second reveal: the contribution is PROVED, no longer CONTRIBUTED.
        revealAs(taskid, w0, DIGEST_A);
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(NoContribution.selector, taskid, w0));
        poco.reveal(taskid, DIGEST_A);
    }

    function test_RevealMismatch() public {
        (, bytes32 taskid) = _revealingTask();
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(RevealMismatch.selector, taskid, w0));
        poco.reveal(taskid, DIGEST_B);
    }

    /// A loser reveals its own (true to its vote) digest: not the consensus.
    function test_NotConsensus_reveal() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, w2, DIGEST_B);
        contributeAs(deal, 0, w0, DIGEST_A);
        contributeAs(deal, 0, w1, DIGEST_A);
        contributeAs(deal, 0, workers[3], DIGEST_A);
        contributeAs(deal, 0, workers[4], DIGEST_A);
        assertEq(status(taskid), REVEALING);
        vm.prank(w2);
        vm.expectRevert(
            abi.encodeWithSelector(NotConsensus.selector, taskid, resultHashOf(taskid, DIGEST_B))
        );
        poco.reveal(taskid, DIGEST_B);
    }

    function test_NotConsensus_finalize() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        revealAs(taskid, w0, DIGEST_A);
        revealAs(taskid, w1, DIGEST_A);
        vm.prank(scheduler);
        vm.expectRevert(
            abi.encodeWithSelector(NotConsensus.selector, taskid, resultHashOf(taskid, DIGEST_B))
        );
        poco.finalize(deal, 0, DIGEST_B, "", "", list2(w0, w1));
    }

    function test_NotConsensus_reopen() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        vm.warp(poco.viewTask(taskid).revealDeadline);
        bytes32 wrong = resultHashOf(taskid, DIGEST_B);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(NotConsensus.selector, taskid, wrong));
        poco.reopen(deal, 0, wrong, list2(w0, w1));
    }

    // ================================================================== reopen and finalize

    function test_OnlyScheduler() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(OnlyScheduler.selector, scheduler));
        poco.finalize(deal, 0, DIGEST_A, "", "", list2(w0, w1));
        vm.warp(poco.viewTask(taskid).revealDeadline);
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(OnlyScheduler.selector, scheduler));
        poco.reopen(deal, 0, resultHashOf(taskid, DIGEST_A), list2(w0, w1));
    }

    function test_NotEnoughReveals() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(NotEnoughReveals.selector, taskid, 0, 2));
        poco.finalize(deal, 0, DIGEST_A, "", "", list2(w0, w1));
        revealAs(taskid, w0, DIGEST_A);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(NotEnoughReveals.selector, taskid, 1, 2));
        poco.finalize(deal, 0, DIGEST_A, "", "", list2(w0, w1));
    }

    function test_NotEnoughReveals_noRevealAfterWindow() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        vm.warp(poco.viewTask(taskid).revealDeadline);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(NotEnoughReveals.selector, taskid, 0, 2));
        poco.finalize(deal, 0, DIGEST_A, "", "", list2(w0, w1));
    }

    function test_AlreadyRevealed() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        revealAs(taskid, w0, DIGEST_A);
        vm.warp(poco.viewTask(taskid).revealDeadline);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(AlreadyRevealed.selector, taskid));
        poco.reopen(deal, 0, resultHashOf(taskid, DIGEST_A), list2(w0, w1));
    }

    function test_InvalidResultsCallback_noCallbackDeal() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        revealAs(taskid, w0, DIGEST_A);
        revealAs(taskid, w1, DIGEST_A);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(InvalidResultsCallback.selector, taskid));
        poco.finalize(deal, 0, DIGEST_A, "", hex"01", list2(w0, w1));
    }

    function test_InvalidResultsCallback_callbackDeal() public {
        ResultConsumer consumer = new ResultConsumer();
        OrderSet memory s = defaultOrders();
        s.request.callback = address(consumer);
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        bytes memory data = abi.encode(uint256(42));
        bytes32 digest = keccak256(data);
        bytes32 taskid = contributeAs(deal, 0, w0, digest);
        revealAs(taskid, w0, digest);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(InvalidResultsCallback.selector, taskid));
        poco.finalize(deal, 0, digest, "", abi.encode(uint256(43)), list1(w0));
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(InvalidResultsCallback.selector, taskid));
        poco.finalize(deal, 0, digest, "", "", list1(w0));
        // The data whose keccak256 is the digest is accepted.
        vm.prank(scheduler);
        poco.finalize(deal, 0, digest, "", data, list1(w0));
        assertEq(poco.resultFor(taskid), data);
    }

    function test_InvalidResultsCallback_contributeAndFinalize() public {
        (, Deal memory deal) = matchDefault(1, 1);
        bytes32 taskid = taskIdOf(deal, 0);
        bytes memory auth = authorization(w0, taskid, address(0));
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(InvalidResultsCallback.selector, taskid));
        poco.contributeAndFinalize(deal, 0, DIGEST_A, "", hex"beef", address(0), "", auth);
    }

    function test_WrongContributorList_finalize() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        revealAs(taskid, w0, DIGEST_A);
        revealAs(taskid, w1, DIGEST_A);
        bytes memory err = abi.encodeWithSelector(WrongContributorList.selector, taskid);
        address[] memory good = list2(w0, w1);

        address[] memory missing = list1(w0);
        address[] memory unsorted = new address[](2);
        unsorted[0] = good[1];
        unsorted[1] = good[0];
        address[] memory duplicate = new address[](2);
        duplicate[0] = good[0];
        duplicate[1] = good[0];
        address[] memory withStranger = list2(w0, w2);

        address[][4] memory lists = [missing, unsorted, duplicate, withStranger];
        for (uint256 i; i < 4; ++i) {
            vm.prank(scheduler);
            vm.expectRevert(err);
            poco.finalize(deal, 0, DIGEST_A, "", "", lists[i]);
        }
        finalizeAs(deal, 0, DIGEST_A, good);
        assertEq(status(taskid), COMPLETED);
    }

    function test_WrongContributorList_claim() public {
        (Deal memory deal, bytes32 taskid) = _revealingTask();
        vm.warp(finalDeadline(deal));
        vm.expectRevert(abi.encodeWithSelector(WrongContributorList.selector, taskid));
        poco.claim(deal, 0, list1(w1));
    }

    function test_WrongContributorList_reopen() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = contributeAs(deal, 0, w2, DIGEST_B);
        contributeAs(deal, 0, w0, DIGEST_A);
        contributeAs(deal, 0, w1, DIGEST_A);
        contributeAs(deal, 0, workers[3], DIGEST_A);
        contributeAs(deal, 0, workers[4], DIGEST_A);
        assertEq(status(taskid), REVEALING);
        vm.warp(poco.viewTask(taskid).revealDeadline);
        bytes32 consensus = resultHashOf(taskid, DIGEST_A);
        bytes memory err = abi.encodeWithSelector(WrongContributorList.selector, taskid);
        // Wrong length.
        vm.prank(scheduler);
        vm.expectRevert(err);
        poco.reopen(deal, 0, consensus, list3(w0, w1, workers[3]));
        // Right length, but the loser instead of a winner.
        address[] memory winners = new address[](4);
        winners[0] = w0;
        winners[1] = w1;
        winners[2] = workers[3];
        winners[3] = w2;
        vm.prank(scheduler);
        vm.expectRevert(err);
        poco.reopen(deal, 0, consensus, sorted(winners));
    }

    function test_TrustNotOne() public {
        (, Deal memory deal) = matchDefault(4, 1);
        bytes32 taskid = taskIdOf(deal, 0);
        bytes memory auth = authorization(w0, taskid, address(0));
        vm.prank(w0);
        vm.expectRevert(abi.encodeWithSelector(TrustNotOne.selector, 4));
        poco.contributeAndFinalize(deal, 0, DIGEST_A, "", "", address(0), "", auth);
    }

    function test_LengthMismatch() public {
        (, Deal memory deal) = matchDefault(1, 2);
        vm.warp(finalDeadline(deal));
        uint256[] memory indexes = new uint256[](2);
        indexes[1] = 1;
        address[][] memory contributors = new address[][](1);
        vm.expectRevert(abi.encodeWithSelector(LengthMismatch.selector));
        poco.claimArray(deal, indexes, contributors);
    }

    /// The callback must get its whole gas allowance: a finalize sent with too little gas for it
    /// reverts instead of silently starving the consumer.
    function test_CallbackGasTooLow() public {
        ResultConsumer consumer = new ResultConsumer();
        OrderSet memory s = defaultOrders();
        s.request.callback = address(consumer);
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        bytes memory callbackData = abi.encode("the answer", uint256(42));
        bytes32 digest = keccak256(callbackData);
        bytes32 taskid = contributeAs(deal, 0, w0, digest);
        revealAs(taskid, w0, digest);
        bytes memory call = abi.encodeCall(
            IPoco.finalize, (deal, 0, digest, bytes("ipfs://r"), callbackData, list1(w0))
        );

        // Find a gas limit that runs the whole finalize but leaves too little for the callback.
        uint256 gasLimit;
        uint256 gasLeft;
        for (uint256 g = 100_000; g < 1_000_000; g += 5000) {
            vm.prank(scheduler);
            (bool ok, bytes memory answer) = address(poco).call{gas: g}(call);
            assertFalse(ok, "finalize succeeded before the callback check was seen");
            if (answer.length == 36 && bytes4(answer) == CallbackGasTooLow.selector) {
                gasLimit = g;
                assembly ("memory-safe") {
                    gasLeft := mload(add(answer, 36))
                }
                break;
            }
        }
        assertGt(gasLimit, 0, "no gas limit hits the callback check");
        assertLt(gasLeft, CALLBACK_GAS * 64 / 63 + 10_000);

        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(CallbackGasTooLow.selector, gasLeft));
        poco.finalize{gas: gasLimit}(deal, 0, digest, "ipfs://r", callbackData, list1(w0));
        assertEq(consumer.calls(), 0);

        // With enough gas the consumer gets its whole allowance.
        vm.prank(scheduler);
        poco.finalize{gas: 2_000_000}(deal, 0, digest, "ipfs://r", callbackData, list1(w0));
        assertEq(consumer.calls(), 1);
        assertGt(consumer.gasAtEntry(), CALLBACK_GAS - 5000);
    }
}
