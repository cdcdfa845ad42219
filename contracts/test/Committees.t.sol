// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "./utils/PocoFixture.sol";

/// @notice Workerpool membership and committee deals: bonds, the draw, the majority rule, and
/// every committee error with its exact arguments. The attack they close is in `Attacks.t.sol`.
contract CommitteesTest is PocoFixture {
    bytes32 internal constant SEED = keccak256("seed");
    uint256 internal constant STAKE = 6_000_000_002;

    address[] internal members;

    function setUp() public override {
        super.setUp();
        members = newWorkers(100, 8);
        joinPool(members);
    }

    // ================================================================== committee sizes

    /// Each size serves exactly the trusts for which an attacker holding a quarter of the
    /// members wins a majority of the seats with probability below 1 / trust: with
    /// N = sum over k > c/2 of C(c, k) 3^(c - k), that probability is N / 4^c.
    function test_committeeSizesMeetTheirTrust() public view {
        uint256 previousMax;
        for (uint256 c = 1; c <= 31; c += 2) {
            uint256 n;
            for (uint256 k = (c + 1) / 2; k <= c; ++k) {
                n += _choose(c, k) * 3 ** (c - k);
            }
            uint256 all = 4 ** c;
            uint256 maxTrust = (all - 1) / n; // the largest t with t * n < 4^c
            assertLt(maxTrust * n, all);
            assertGe((maxTrust + 1) * n, all);
            assertEq(poco.committeeSize(maxTrust), c);
            assertEq(poco.committeeSize(previousMax + 1), c);
            previousMax = maxTrust;
        }
        assertEq(previousMax, 768);
        assertEq(poco.committeeSize(769), 0);
        assertEq(poco.committeeSize(0), 1);
    }

    function _choose(uint256 n, uint256 k) internal pure returns (uint256 result) {
        result = 1;
        for (uint256 i; i < k; ++i) {
            result = result * (n - i) / (i + 1);
        }
    }

    // ================================================================== membership

    function test_joinBondsAndLists() public {
        address worker = newWorker(200);
        vm.expectEmit(address(poco));
        emit MemberJoined(workerpool, worker, 8);
        vm.prank(worker);
        poco.joinWorkerpool(workerpool);
        assertEq(bal(worker), INITIAL_DEPOSIT - MEMBER_BOND);
        assertEq(frz(worker), MEMBER_BOND);
        assertEq(poco.countMembers(workerpool), 9);
        (address listed, bool active) = poco.viewMember(workerpool, 8);
        assertEq(listed, worker);
        assertTrue(active);
        (listed, active) = poco.viewMember(workerpool, 9);
        assertEq(listed, address(0));
        assertFalse(active);
        assertEq(poco.memberBond(), MEMBER_BOND);
        assertEq(poco.memberExitDelay(), 7 days);
    }

    function test_leaveThenReleaseAfterTheDelay() public {
        address worker = members[3];
        (, bool active) = poco.viewMember(workerpool, _position(worker));
        assertTrue(active);
        vm.expectEmit(address(poco));
        emit MemberLeft(workerpool, worker);
        vm.prank(worker);
        poco.leaveWorkerpool(workerpool);
        (, active) = poco.viewMember(workerpool, _position(worker));
        assertFalse(active);

        uint256 until = block.timestamp + 7 days;
        vm.warp(until - 1);
        vm.prank(worker);
        vm.expectRevert(abi.encodeWithSelector(BondLocked.selector, workerpool, worker, until));
        poco.releaseBond(workerpool);

        vm.warp(until);
        vm.expectEmit(address(poco));
        emit BondReleased(workerpool, worker, MEMBER_BOND);
        vm.prank(worker);
        poco.releaseBond(workerpool);
        assertEq(bal(worker), INITIAL_DEPOSIT);
        assertEq(frz(worker), 0);

        // Joining again takes a new position; the old one stays, inactive.
        vm.prank(worker);
        poco.joinWorkerpool(workerpool);
        assertEq(poco.countMembers(workerpool), 9);
        (address listed, bool stillActive) = poco.viewMember(workerpool, 8);
        assertEq(listed, worker);
        assertTrue(stillActive);
    }

    /// The position of a worker in the default pool's member list (a linear search).
    function _position(address worker) internal view returns (uint256) {
        uint256 count = poco.countMembers(workerpool);
        for (uint256 i; i < count; ++i) {
            (address listed,) = poco.viewMember(workerpool, i);
            if (listed == worker) return i;
        }
        revert("not listed");
    }

    function test_errorAlreadyMember() public {
        vm.prank(members[0]);
        vm.expectRevert(abi.encodeWithSelector(AlreadyMember.selector, workerpool, members[0]));
        poco.joinWorkerpool(workerpool);
    }

    function test_errorJoinNeedsTheBond() public {
        address poor = newWorker(201);
        setBalance(poor, MEMBER_BOND - 1);
        vm.prank(poor);
        vm.expectRevert(
            abi.encodeWithSelector(InsufficientBalance.selector, poor, MEMBER_BOND, MEMBER_BOND - 1)
        );
        poco.joinWorkerpool(workerpool);
    }

    function test_errorJoinUnknownWorkerpool() public {
        vm.prank(members[0]);
        vm.expectRevert(abi.encodeWithSelector(UnknownAsset.selector, app));
        poco.joinWorkerpool(app);
    }

    function test_errorNotMember() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotMember.selector, workerpool, stranger));
        poco.leaveWorkerpool(workerpool);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotMember.selector, workerpool, stranger));
        poco.releaseBond(workerpool);
        // Leaving twice.
        vm.startPrank(members[0]);
        poco.leaveWorkerpool(workerpool);
        vm.expectRevert(abi.encodeWithSelector(NotMember.selector, workerpool, members[0]));
        poco.leaveWorkerpool(workerpool);
        vm.stopPrank();
    }

    function test_errorBondLockedWhileStaying() public {
        vm.prank(members[0]);
        vm.expectRevert(abi.encodeWithSelector(BondLocked.selector, workerpool, members[0], 0));
        poco.releaseBond(workerpool);
    }

    // ================================================================== matching

    function test_errorTrustBeyondCommittee() public {
        OrderSet memory s = committeeOrders(769);
        s.workerpool.trust = 1000;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(TrustBeyondCommittee.selector, 769, 768));
    }

    function test_errorEmptyCommittee() public {
        address emptyPool = workerpoolRegistry.createWorkerpool(scheduler, "empty");
        OrderSet memory s = committeeOrders(4);
        s.workerpool.workerpool = emptyPool;
        s.request.workerpool = emptyPool;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(EmptyCommittee.selector, emptyPool));
    }

    function test_committeeTagMustBeOffered() public {
        OrderSet memory s = committeeOrders(4);
        s.workerpool.tag = 0;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(TagNotOffered.selector, COMMITTEE_TAG));
    }

    // ================================================================== the draw

    function test_errorDrawNotReadyInTheBlockOfTheMatch() public {
        uint256 matchBlock = vm.getBlockNumber();
        (bytes32 dealid, Deal memory deal) = matchSet(committeeOrders(4));
        bytes32 taskid = taskIdOf(deal, 0);
        expectContributeRevert(
            deal,
            0,
            members[0],
            abi.encodeWithSelector(DrawNotReady.selector, dealid, matchBlock + 1)
        );
        vm.expectRevert(abi.encodeWithSelector(DrawNotReady.selector, dealid, matchBlock + 1));
        poco.viewCommittee(deal, 0);
        // Initializing is never refused for it.
        poco.initialize(deal, 0);
        assertEq(status(taskid), ACTIVE);
    }

    function test_errorDrawExpiredAfter256Blocks() public {
        uint256 matchBlock = vm.getBlockNumber();
        (bytes32 dealid, Deal memory deal) = matchSet(committeeOrders(4));
        vm.roll(matchBlock + 257); // blockhash(matchBlock) is gone
        vm.expectRevert(abi.encodeWithSelector(DrawExpired.selector, dealid));
        poco.viewCommittee(deal, 0);
        bytes32 taskid = taskIdOf(deal, 0);
        expectContributeRevert(
            deal, 0, members[0], abi.encodeWithSelector(DrawExpired.selector, dealid)
        );
        // The deal can still end: claimed after its final deadline, the sponsor refunded.
        vm.warp(finalDeadline(deal));
        poco.claim(deal, 0, emptyList());
        assertEq(status(taskid), FAILED);
        assertEq(bal(requester), INITIAL_DEPOSIT);
    }

    /// A seed fixed by `initialize` in time keeps the draw past the 256-block window.
    function test_initializeFixesTheSeedForLaterContributions() public {
        (, Deal memory deal) = matchCommittee(4, SEED);
        poco.initialize(deal, 0);
        address[] memory seats = poco.viewCommittee(deal, 0);
        vm.roll(vm.getBlockNumber() + 1000);
        assertEq(poco.viewCommittee(deal, 0), seats);
        bytes32 taskid = contributeAs(deal, 0, seats[0], DIGEST_A);
        assertEq(poco.viewContribution(taskid, seats[0]).weight, _count(seats, seats[0]));
    }

    function test_viewCommitteeDrawsAsContributeChecks() public {
        (, Deal memory deal) = matchCommittee(100, SEED); // 19 seats
        address[] memory seats = poco.viewCommittee(deal, 0);
        assertEq(seats.length, 19);
        bytes32 taskid = taskIdOf(deal, 0);
        for (uint256 j; j < seats.length; ++j) {
            assertEq(seats[j], seatHolder(SEED, taskid, j, members.length));
        }
        // Every member with a seat may contribute, with as many votes as seats; the others not.
        for (uint256 i; i < members.length; ++i) {
            uint256 seats_ = _count(seats, members[i]);
            if (seats_ == 0) {
                _expectNotDrawn(deal, 0, members[i]);
            } else if (status(taskid) != REVEALING) {
                contributeAs(deal, 0, members[i], DIGEST_A);
                assertEq(poco.viewContribution(taskid, members[i]).weight, seats_);
            }
        }
        assertEq(status(taskid), REVEALING);
        // A deal without the tag has no committee.
        (, Deal memory plain) = matchDefault(4, 1);
        assertEq(poco.viewCommittee(plain, 0).length, 0);
    }

    function test_errorNotDrawnForALateJoiner() public {
        (, Deal memory deal) = matchSet(committeeOrders(4));
        // Joins after the match, in its block: never drawn for this deal.
        address late = newWorker(300);
        vm.prank(late);
        poco.joinWorkerpool(workerpool);
        uint256 matchBlock = vm.getBlockNumber();
        vm.roll(matchBlock + 1);
        vm.setBlockhash(matchBlock, SEED);
        _expectNotDrawn(deal, 0, late);
        _expectNotDrawn(deal, 0, stranger);
    }

    function test_errorNotDrawnAfterLeavingBeforeTheMatch() public {
        // Find a seed that gives members[0] a seat, then make it leave before the match.
        bytes32 seed;
        bytes32 taskid;
        for (uint256 i;; ++i) {
            seed = keccak256(abi.encode("leaver", i));
            taskid = taskIdOf(dealIdOf(hashRequest(committeeOrders(4).request), 0), 0);
            if (seatsOf(seed, taskid, 3, members.length, members[0]) != 0) break;
        }
        vm.prank(members[0]);
        poco.leaveWorkerpool(workerpool);
        vm.warp(block.timestamp + 1);
        (, Deal memory deal) = matchCommittee(4, seed);
        assertEq(taskIdOf(deal, 0), taskid);
        _expectNotDrawn(deal, 0, members[0]);
    }

    function test_committeeTrustOneThroughContributeAndFinalize() public {
        (, Deal memory deal) = matchCommittee(1, SEED);
        address[] memory seats = poco.viewCommittee(deal, 0);
        assertEq(seats.length, 1);
        address other = seats[0] == members[0] ? members[1] : members[0];
        bytes32 taskid = taskIdOf(deal, 0);
        bytes memory auth = authorization(other, taskid, address(0));
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(NotDrawn.selector, taskid, other));
        poco.contributeAndFinalize(deal, 0, DIGEST_A, "ipfs://result", "", address(0), "", auth);
        contributeAndFinalizeAs(deal, 0, seats[0], DIGEST_A);
        assertEq(status(taskid), COMPLETED);
    }

    // ================================================================== helpers

    function _count(address[] memory list, address worker) internal pure returns (uint256 n) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == worker) ++n;
        }
    }

    function _expectNotDrawn(Deal memory deal, uint256 idx, address worker) internal {
        bytes memory err = abi.encodeWithSelector(NotDrawn.selector, taskIdOf(deal, idx), worker);
        expectContributeRevert(deal, idx, worker, err);
    }
}
