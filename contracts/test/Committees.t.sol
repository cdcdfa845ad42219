// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "./utils/PocoFixture.sol";

/// @notice Workerpool membership and committee deals: bonds, the active set and its history,
/// the draw and its seed, the majority rule, seat penalties, and every committee error with
/// its exact arguments. The attacks they close are in `Attacks.t.sol` and `Findings.t.sol`.
contract CommitteesTest is PocoFixture {
    bytes32 internal constant SEED = keccak256("seed");
    uint256 internal constant STAKE = 6_000_000_002;
    /// EIP-2935's history contract, as deployed on chains that have it.
    address internal constant HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;
    /// The runtime code EIP-2935 specifies for it: `get` answers the hash of one of the last
    /// 8191 blocks from slot `number % 8191`.
    bytes internal constant HISTORY_CODE =
        hex"3373fffffffffffffffffffffffffffffffffffffffe14604657602036036042575f35600143038111604257611fff81430311604257611fff9006545f5260205ff35b5f5ffd5b5f35611fff60014303065500";

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
            assertEq(poco.minCommitteeMembers(maxTrust), c < 4 ? 4 : c);
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
        uint256 epoch = poco.membershipEpoch(workerpool);
        vm.expectEmit(address(poco));
        emit MemberJoined(workerpool, worker, 8);
        vm.prank(worker);
        poco.joinWorkerpool(workerpool);
        assertEq(bal(worker), INITIAL_DEPOSIT - MEMBER_BOND);
        assertEq(frz(worker), MEMBER_BOND);
        assertEq(poco.countMembers(workerpool), 9);
        assertEq(poco.membershipEpoch(workerpool), epoch + 1);
        (address listed, bool active) = poco.viewMember(workerpool, 8);
        assertEq(listed, worker);
        assertTrue(active);
        (listed, active) = poco.viewMember(workerpool, 9);
        assertEq(listed, address(0));
        assertFalse(active);
        Membership memory m = poco.viewMembership(workerpool, worker);
        assertTrue(m.active);
        assertEq(m.position, 8);
        assertEq(m.bond, MEMBER_BOND);
        assertEq(m.leftAt, 0);
        assertEq(poco.memberBond(), MEMBER_BOND);
        assertEq(poco.seatPenalty(), SEAT_PENALTY);
        assertEq(poco.memberExitDelay(), 7 days);
    }

    /// A member who leaves hands its position to the last member; the position's earlier
    /// holder stays readable at the epochs it held it.
    function test_leaveHandsThePositionToTheLastMember() public {
        address leaver = members[2];
        uint256 position = poco.viewMembership(workerpool, leaver).position;
        (address last,) = poco.viewMember(workerpool, 7);
        uint256 before = poco.membershipEpoch(workerpool);

        vm.expectEmit(address(poco));
        emit MemberLeft(workerpool, leaver);
        vm.prank(leaver);
        poco.leaveWorkerpool(workerpool);

        assertEq(poco.countMembers(workerpool), 7);
        assertEq(poco.membershipEpoch(workerpool), before + 1);
        (address now_, bool active) = poco.viewMember(workerpool, position);
        assertEq(now_, last);
        assertTrue(active);
        (, active) = poco.viewMember(workerpool, 7);
        assertFalse(active, "the last position is past the active set");
        assertEq(poco.viewMemberAt(workerpool, position, before), leaver);
        assertEq(poco.viewMemberAt(workerpool, position, before + 1), last);
        assertEq(poco.viewMemberAt(workerpool, 7, before), last);
        assertEq(poco.viewMembership(workerpool, last).position, position);
        Membership memory m = poco.viewMembership(workerpool, leaver);
        assertFalse(m.active);
        assertEq(m.leftAt, block.timestamp);
        assertEq(m.bond, MEMBER_BOND);
    }

    function test_leaveThenReleaseAfterTheDelay() public {
        address worker = members[3];
        vm.prank(worker);
        poco.leaveWorkerpool(workerpool);

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

        // Joining again makes it the last active member.
        vm.prank(worker);
        poco.joinWorkerpool(workerpool);
        assertEq(poco.countMembers(workerpool), 8);
        (address listed, bool active) = poco.viewMember(workerpool, 7);
        assertEq(listed, worker);
        assertTrue(active);
    }

    function test_errorAlreadyMember() public {
        vm.prank(members[0]);
        vm.expectRevert(abi.encodeWithSelector(AlreadyMember.selector, workerpool, members[0]));
        poco.joinWorkerpool(workerpool);
        // A member that left holds its bond until released: it cannot join again before.
        vm.startPrank(members[0]);
        poco.leaveWorkerpool(workerpool);
        vm.expectRevert(abi.encodeWithSelector(AlreadyMember.selector, workerpool, members[0]));
        poco.joinWorkerpool(workerpool);
        vm.stopPrank();
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

    /// A category longer than a tenth of the bond delay would let a deal outlive the bonds of
    /// its seats: refused.
    function test_errorCategoryOutlivingBonds() public {
        vm.startPrank(pocoOwner);
        poco.createCategory("longest", "{}", 60_480);
        vm.expectRevert(abi.encodeWithSelector(InvalidTimeRef.selector, 60_481));
        poco.createCategory("too long", "{}", 60_481);
        vm.stopPrank();
    }

    // ================================================================== matching

    function test_errorTrustBeyondCommittee() public {
        OrderSet memory s = committeeOrders(769);
        s.workerpool.trust = 1000;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(TrustBeyondCommittee.selector, 769, 768));
    }

    /// A committee request names its pool; "any pool" (zero) or a group of pools is refused.
    function test_errorCommitteePoolNotChosen() public {
        OrderSet memory s = committeeOrders(4);
        s.request.workerpool = address(0);
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(CommitteePoolNotChosen.selector, address(0), workerpool)
        );
    }

    /// A pool needs at least four active members, and as many as the committee has seats.
    function test_errorCommitteeTooSmall() public {
        address smallPool = workerpoolRegistry.createWorkerpool(scheduler, "small");
        for (uint256 i; i < 3; ++i) {
            vm.prank(members[i]);
            poco.joinWorkerpool(smallPool);
        }
        OrderSet memory s = committeeOrders(4);
        s.workerpool.workerpool = smallPool;
        s.request.workerpool = smallPool;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(CommitteeTooSmall.selector, smallPool, 3, 4));
        // Eight members are not enough for trust 20's nine seats.
        s = committeeOrders(20);
        expectMatchRevert(s, abi.encodeWithSelector(CommitteeTooSmall.selector, workerpool, 8, 9));
        // A member leaving takes the pool below the minimum: counted are active members only.
        vm.prank(members[3]);
        poco.joinWorkerpool(smallPool);
        vm.prank(members[3]);
        poco.leaveWorkerpool(smallPool);
        s = committeeOrders(4);
        s.workerpool.workerpool = smallPool;
        s.request.workerpool = smallPool;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(CommitteeTooSmall.selector, smallPool, 3, 4));
    }

    function test_committeeTagMustBeOffered() public {
        OrderSet memory s = committeeOrders(4);
        s.workerpool.tag = 0;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(TagNotOffered.selector, COMMITTEE_TAG));
    }

    // ================================================================== the seed

    /// The draw is seeded by the hash of the block `SEED_DELAY` blocks after the match: not
    /// before that block exists.
    function test_errorDrawNotReadyBeforeTheSeedBlock() public {
        uint256 matchBlock = vm.getBlockNumber();
        (bytes32 dealid, Deal memory deal) = matchSet(committeeOrders(4));
        Draw memory draw = poco.viewDraw(dealid);
        assertEq(draw.seedBlock, matchBlock + SEED_DELAY);
        assertEq(draw.memberCount, 8);
        assertEq(draw.epoch, poco.membershipEpoch(workerpool));
        assertEq(draw.seed, 0);
        bytes32 taskid = taskIdOf(deal, 0);
        for (uint256 b = matchBlock; b <= draw.seedBlock; ++b) {
            vm.roll(b);
            expectContributeRevert(
                deal,
                0,
                members[0],
                abi.encodeWithSelector(DrawNotReady.selector, dealid, draw.seedBlock + 1)
            );
            vm.expectRevert(
                abi.encodeWithSelector(DrawNotReady.selector, dealid, draw.seedBlock + 1)
            );
            poco.viewCommittee(deal, 0);
        }
        // Initializing is never refused for it, and fixes nothing yet.
        poco.initialize(deal, 0);
        assertEq(status(taskid), ACTIVE);
        assertEq(poco.viewDraw(dealid).seed, 0);
        // From the next block on, the seed is fixed by the first call that can.
        vm.roll(draw.seedBlock + 1);
        vm.setBlockhash(draw.seedBlock, SEED);
        vm.expectEmit(address(poco));
        emit CommitteeDrawn(dealid, SEED);
        poco.drawCommittee(deal);
        assertEq(poco.viewDraw(dealid).seed, SEED);
    }

    /// Past 256 blocks, on a chain without EIP-2935, the seed block's hash is gone: the deal is
    /// seeded again from a later block and runs to the end.
    function test_anExpiredSeedIsDrawnAgain() public {
        (bytes32 dealid, Deal memory deal) = matchSet(committeeOrders(4));
        uint256 seedBlock = poco.viewDraw(dealid).seedBlock;
        vm.roll(seedBlock + 257);
        vm.expectRevert(abi.encodeWithSelector(DrawExpired.selector, dealid));
        poco.viewCommittee(deal, 0);
        expectContributeRevert(
            deal, 0, members[0], abi.encodeWithSelector(DrawExpired.selector, dealid)
        );
        uint256 next = vm.getBlockNumber() + SEED_DELAY;
        vm.expectEmit(address(poco));
        emit CommitteeReseeded(dealid, next);
        poco.drawCommittee(deal);
        assertEq(poco.viewDraw(dealid).seedBlock, next);

        vm.roll(next + 1);
        vm.setBlockhash(next, SEED);
        bytes32 taskid = _voteToConsensus(deal, 0, DIGEST_A);
        assertEq(status(taskid), REVEALING);
        assertEq(poco.viewDraw(dealid).seed, SEED);
    }

    /// With EIP-2935, the seed block's hash is read from the history contract for 8191 blocks.
    function test_theSeedIsReadFromBlockHashHistory() public {
        vm.etch(HISTORY, HISTORY_CODE);
        (bytes32 dealid, Deal memory deal) = matchSet(committeeOrders(4));
        uint256 seedBlock = poco.viewDraw(dealid).seedBlock;
        vm.store(HISTORY, bytes32(seedBlock % 8191), SEED);
        vm.roll(seedBlock + 5000);
        poco.drawCommittee(deal);
        assertEq(poco.viewDraw(dealid).seed, SEED);
        // Beyond the history window, the deal is seeded again.
        (bytes32 late, Deal memory lateDeal) = matchSet(_orders(4, "late"));
        vm.roll(poco.viewDraw(late).seedBlock + 8192);
        poco.drawCommittee(lateDeal);
        assertEq(poco.viewDraw(late).seed, 0);
        assertEq(poco.viewDraw(late).seedBlock, vm.getBlockNumber() + SEED_DELAY);
    }

    /// A seed fixed by `initialize` in time keeps the draw past every window.
    function test_initializeFixesTheSeedForLaterContributions() public {
        (, Deal memory deal) = matchCommittee(4, SEED);
        poco.initialize(deal, 0);
        address[] memory seats = poco.viewCommittee(deal, 0);
        vm.roll(vm.getBlockNumber() + 10_000);
        assertEq(poco.viewCommittee(deal, 0), seats);
        bytes32 taskid = contributeAs(deal, 0, seats[0], DIGEST_A);
        assertEq(poco.viewContribution(taskid, seats[0]).weight, _count(seats, seats[0]));
    }

    // ================================================================== the draw

    function test_viewCommitteeDrawsAsContributeChecks() public {
        joinPool(newWorkers(300, 12)); // 20 members for trust 100's 19 seats
        (, Deal memory deal) = matchCommittee(100, SEED);
        address[] memory seats = poco.viewCommittee(deal, 0);
        assertEq(seats.length, 19);
        bytes32 taskid = taskIdOf(deal, 0);
        uint256 count = poco.countMembers(workerpool);
        for (uint256 j; j < seats.length; ++j) {
            assertEq(seats[j], seatHolder(SEED, taskid, j, count));
        }
        // Every member with a seat may contribute, with as many votes as seats; the others not.
        for (uint256 p; p < count; ++p) {
            (address member,) = poco.viewMember(workerpool, p);
            uint256 seats_ = _count(seats, member);
            if (seats_ == 0) {
                _expectNotDrawn(deal, 0, member);
            } else if (status(taskid) != REVEALING) {
                contributeAs(deal, 0, member, DIGEST_A);
                assertEq(poco.viewContribution(taskid, member).weight, seats_);
            }
        }
        assertEq(status(taskid), REVEALING);
        // A deal without the tag has no committee.
        (, Deal memory plain) = matchDefault(4, 1);
        assertEq(poco.viewCommittee(plain, 0).length, 0);
    }

    /// A seat is its own authorization: a drawn member contributes without the scheduler's
    /// signature, so the scheduler cannot silence it.
    function test_aSeatNeedsNoAuthorization() public {
        (, Deal memory deal) = matchCommittee(4, SEED);
        address holder = poco.viewCommittee(deal, 0)[0];
        bytes32 taskid = taskIdOf(deal, 0);
        vm.prank(holder);
        poco.contribute(
            deal,
            0,
            resultHashOf(taskid, DIGEST_A),
            resultSealOf(holder, taskid, DIGEST_A),
            address(0),
            "",
            ""
        );
        assertEq(uint8(poco.viewContribution(taskid, holder).status), 1);
    }

    /// In a TEE committee deal the authorization binds the enclave: still required.
    function test_aTeeSeatNeedsTheAuthorization() public {
        OrderSet memory s = committeeOrders(4);
        s.app.tag = TEE_TAG;
        s.workerpool.tag = COMMITTEE_TAG | TEE_TAG;
        signAll(s);
        (bytes32 dealid, Deal memory deal) = matchSet(s);
        seedCommittee(dealid, SEED);
        address holder = poco.viewCommittee(deal, 0)[0];
        bytes32 taskid = taskIdOf(deal, 0);
        bytes32 resultHash = resultHashOf(taskid, DIGEST_A);
        bytes32 resultSeal = resultSealOf(holder, taskid, DIGEST_A);
        bytes memory enclaveSign = enclaveSignature(enclaveKey, resultHash, resultSeal);
        vm.prank(holder);
        vm.expectRevert(abi.encodeWithSelector(InvalidAuthorization.selector, taskid, holder));
        poco.contribute(deal, 0, resultHash, resultSeal, enclave, enclaveSign, "");
        contributeTeeAs(deal, 0, holder, DIGEST_A);
    }

    function test_errorNotDrawnForALateJoiner() public {
        (bytes32 dealid, Deal memory deal) = matchSet(committeeOrders(4));
        // Joins after the match, in its block: never drawn for this deal.
        address late = newWorker(300);
        vm.prank(late);
        poco.joinWorkerpool(workerpool);
        seedCommittee(dealid, SEED);
        _expectNotDrawn(deal, 0, late);
        _expectNotDrawn(deal, 0, stranger);
        assertFalse(_isIn(poco.viewCommittee(deal, 0), late));
    }

    /// A member who left before the match is never drawn: its position went to the last member,
    /// who holds the seats drawn there.
    function test_errorNotDrawnAfterLeavingBeforeTheMatch() public {
        address leaver = members[0];
        uint256 position = poco.viewMembership(workerpool, leaver).position;
        (address last,) = poco.viewMember(workerpool, 7);
        vm.prank(leaver);
        poco.leaveWorkerpool(workerpool);
        // A seed that draws the leaver's old position for task 0 (7 members now).
        bytes32 taskid = taskIdOf(dealIdOf(hashRequest(committeeOrders(4).request), 0), 0);
        bytes32 seed;
        for (uint256 i;; ++i) {
            seed = keccak256(abi.encode("leaver", i));
            if (uint256(keccak256(abi.encode(seed, taskid, 0))) % 7 == position) break;
        }
        (, Deal memory deal) = matchCommittee(4, seed);
        assertEq(taskIdOf(deal, 0), taskid);
        _expectNotDrawn(deal, 0, leaver);
        assertEq(poco.viewCommittee(deal, 0)[0], last);
        contributeAs(deal, 0, last, DIGEST_A);
    }

    /// Members who leave after the match keep their seats in it, and the member moved into a
    /// leaver's position does not take them.
    function test_seatsOfADealDoNotMoveWithLaterChanges() public {
        (, Deal memory deal) = matchCommittee(4, SEED);
        address[] memory seats = poco.viewCommittee(deal, 0);
        // Every member but the first seat holder leaves, then strangers join.
        for (uint256 i; i < members.length; ++i) {
            if (members[i] != seats[0]) {
                vm.prank(members[i]);
                poco.leaveWorkerpool(workerpool);
            }
        }
        joinPool(newWorkers(400, 5));
        assertEq(poco.viewCommittee(deal, 0), seats);
        bytes32 taskid = _voteToConsensus(deal, 0, DIGEST_A);
        assertEq(status(taskid), REVEALING);
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

    // ================================================================== seat penalties

    /// A seat holder that voted against the consensus loses its stake, a seat's penalty per
    /// seat it held, and its membership; the penalty joins the task's reward.
    function test_aWrongSeatIsPenalizedAndExpelled() public {
        (bytes32 seed, address wrong) = _seedWithSingleSeatHolder(4, "wrong seat");
        (, Deal memory deal) = matchCommittee(4, seed);
        address[] memory seats = poco.viewCommittee(deal, 0);
        bytes32 taskid = contributeAs(deal, 0, wrong, DIGEST_B);
        address[] memory voters = new address[](3);
        voters[0] = wrong;
        uint256 n = 1;
        for (uint256 j; j < seats.length && status(taskid) != REVEALING; ++j) {
            if (uint8(poco.viewContribution(taskid, seats[j]).status) == 0) {
                contributeAs(deal, 0, seats[j], DIGEST_A);
                voters[n++] = seats[j];
            }
        }
        assertEq(n, 3);
        for (uint256 i = 1; i < n; ++i) {
            revealAs(taskid, voters[i], DIGEST_A);
        }
        uint256 countBefore = poco.countMembers(workerpool);
        vm.expectEmit(address(poco));
        emit MemberExpelled(workerpool, wrong, SEAT_PENALTY);
        finalizeAs(deal, 0, DIGEST_A, sorted(voters));
        assertEq(frz(wrong), MEMBER_BOND - SEAT_PENALTY);
        assertEq(bal(wrong), INITIAL_DEPOSIT - MEMBER_BOND - STAKE);
        Membership memory m = poco.viewMembership(workerpool, wrong);
        assertFalse(m.active);
        assertEq(m.bond, MEMBER_BOND - SEAT_PENALTY);
        assertEq(poco.countMembers(workerpool), countBefore - 1);
        // The two winners share 99% of the price plus the stake and the penalty.
        uint256 workersReward = (WP_PRICE + STAKE + SEAT_PENALTY) * 99 / 100;
        assertEq(bal(voters[1]), INITIAL_DEPOSIT - MEMBER_BOND + workersReward / 2);
        // The expelled member's bond is released after the delay like a leaver's.
        vm.warp(block.timestamp + 7 days);
        vm.prank(wrong);
        poco.releaseBond(workerpool);
        assertEq(frz(wrong), 0);
        assertEq(bal(wrong), INITIAL_DEPOSIT - STAKE - SEAT_PENALTY);
    }

    /// A task that failed for want of a majority while some seats voted: every silent seat
    /// loses a seat's penalty and its membership, burned with the scheduler's stake.
    function test_silentSeatsArePenalizedWhenTheTaskFails() public {
        (bytes32 seed, address voter) = _seedWithSingleSeatHolder(4, "silent seats");
        (, Deal memory deal) = matchCommittee(4, seed);
        address[] memory seats = poco.viewCommittee(deal, 0);
        bytes32 taskid = contributeAs(deal, 0, voter, DIGEST_A);
        vm.warp(finalDeadline(deal));
        poco.claim(deal, 0, list1(voter));
        assertEq(status(taskid), FAILED);
        uint256 penalties;
        for (uint256 j; j < seats.length; ++j) {
            if (seats[j] == voter) continue;
            penalties += SEAT_PENALTY;
            assertFalse(poco.viewMembership(workerpool, seats[j]).active);
        }
        assertEq(penalties, 2 * SEAT_PENALTY);
        assertEq(frz(BURN_ACCOUNT), STAKE + penalties);
        assertEq(bal(voter), INITIAL_DEPOSIT - MEMBER_BOND, "its stake back");
        assertTrue(poco.viewMembership(workerpool, voter).active);
    }

    /// Seats nobody voted with are not penalized when nobody voted at all (the task may not
    /// have been runnable), nor when a majority was reached without them.
    function test_silenceIsPenalizedOnlyWhenItKeptTheMajorityAway() public {
        (, Deal memory deal) = matchCommittee(4, SEED);
        vm.warp(finalDeadline(deal));
        poco.claim(deal, 0, emptyList());
        assertEq(frz(BURN_ACCOUNT), STAKE);
        for (uint256 i; i < members.length; ++i) {
            assertTrue(poco.viewMembership(workerpool, members[i]).active);
        }
    }

    // ================================================================== helpers

    /// The orders of a committee deal of `trust` with a request salted by `salt`, signed.
    function _orders(uint256 trust, string memory salt) internal view returns (OrderSet memory s) {
        s = committeeOrders(trust);
        s.request.salt = keccak256(bytes(salt));
        signAll(s);
    }

    /// A seed (from `label`) for which task 0 of `committeeOrders(trust)` has three distinct
    /// seat holders; returns one of them.
    function _seedWithSingleSeatHolder(uint256 trust, string memory label)
        internal
        view
        returns (bytes32 seed, address holder)
    {
        bytes32 taskid = taskIdOf(dealIdOf(hashRequest(committeeOrders(trust).request), 0), 0);
        for (uint256 i;; ++i) {
            seed = keccak256(abi.encode(label, i));
            address a = seatHolder(seed, taskid, 0, 8);
            address b = seatHolder(seed, taskid, 1, 8);
            address c = seatHolder(seed, taskid, 2, 8);
            if (a != b && b != c && a != c) return (seed, a);
        }
    }

    /// Every seat holder of task `idx` votes `digest` until the task reaches consensus.
    function _voteToConsensus(Deal memory deal, uint256 idx, bytes32 digest)
        internal
        returns (bytes32 taskid)
    {
        taskid = taskIdOf(deal, idx);
        address[] memory seats = poco.viewCommittee(deal, idx);
        for (uint256 j; j < seats.length && status(taskid) != REVEALING; ++j) {
            if (uint8(poco.viewContribution(taskid, seats[j]).status) == 0) {
                contributeAs(deal, idx, seats[j], digest);
            }
        }
    }

    function _count(address[] memory list, address worker) internal pure returns (uint256 n) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == worker) ++n;
        }
    }

    function _isIn(address[] memory list, address worker) internal pure returns (bool) {
        return _count(list, worker) != 0;
    }

    function _expectNotDrawn(Deal memory deal, uint256 idx, address worker) internal {
        bytes memory err = abi.encodeWithSelector(NotDrawn.selector, taskIdOf(deal, idx), worker);
        expectContributeRevert(deal, idx, worker, err);
    }
}
