// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "./utils/PocoFixture.sol";

/// @notice Property tests against models written here from protocol.md:
/// - matchOrders over random prices, volumes, tags, trust, categories and balances: either it
///   matches with exact accounting, or it reverts with the error the model of §2.2 predicts;
/// - consensus over random sequences of (score, answer) contributions: at every step the task's
///   status, consensus total and groups are those of the model of §4.2.
contract FuzzTest is PocoFixture {
    // ================================================================== matchOrders

    struct MatchInput {
        uint256 appPrice;
        uint256 datasetPrice;
        uint256 wpPrice;
        uint256 appMaxDelta;
        uint256 datasetMaxDelta;
        uint256 wpMaxDelta;
        uint256 appVolume;
        uint256 datasetVolume;
        uint256 wpVolume;
        uint256 requestVolume;
        uint256 appTag;
        uint256 datasetTag;
        uint256 wpTag;
        uint256 requestTag;
        uint256 requestTrust;
        uint256 wpTrust;
        uint256 categories;
        uint256 requesterBalance;
        uint256 schedulerBalance;
        bool withDataset;
    }

    // Each generator mostly produces a valid value and sometimes breaks one rule, so that
    // matches and every kind of refusal both come up often. The rule-breaking branches use
    // residues that the fuzzer's favourite inputs (0, 1, 2, type(uint256).max) do not have.

    /// A price: up to 1000 RLC, sometimes beyond what an account can hold.
    function _price(uint256 raw) internal pure returns (uint256) {
        if (raw % 32 == 13) return AMOUNT_MAX + (raw >> 200);
        return bound(raw >> 5, 0, 1000 * RLC_UNIT);
    }

    /// A maximum price: at least the price, sometimes just below it.
    function _maxPrice(uint256 price, uint256 raw) internal pure returns (uint256) {
        uint256 delta = (raw >> 3) & 0xffff;
        if (raw % 8 == 5) return price > delta ? price - delta - 1 : 0;
        return price + delta;
    }

    function _volume(uint256 raw) internal pure returns (uint256) {
        if (raw % 32 == 13) return 0;
        return bound(raw >> 5, 1, 50);
    }

    function _balance(uint256 raw) internal pure returns (uint256) {
        if (raw % 8 == 5) return bound(raw >> 3, 0, 100 * RLC_UNIT);
        return WALLET_RLC - bound(raw >> 3, 0, WALLET_RLC / 2);
    }

    function _mulCapped(uint256 a, uint256 b) internal pure returns (uint256) {
        if (a == 0) return 0;
        if (b > type(uint256).max / a) return type(uint256).max;
        return a * b;
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    /// The model: the error `matchOrders` must raise (empty when it must match), and the deal's
    /// volume.
    function _predict(OrderSet memory s, bool withDataset, uint256 requesterBal, uint256 schedBal)
        internal
        view
        returns (bytes memory err, uint256 volume)
    {
        RequestOrder memory r = s.request;
        if (r.category != s.workerpool.category) {
            return (
                abi.encodeWithSelector(
                    CategoryMismatch.selector, r.category, s.workerpool.category
                ),
                0
            );
        }
        if (r.category >= 5) {
            return (abi.encodeWithSelector(UnknownCategory.selector, r.category), 0);
        }
        if (r.trust > s.workerpool.trust) {
            return
                (abi.encodeWithSelector(TrustNotOffered.selector, r.trust, s.workerpool.trust), 0);
        }
        if (r.trust > type(uint64).max) {
            return (abi.encodeWithSelector(TrustOutOfRange.selector, r.trust), 0);
        }
        if (r.appmaxprice < s.app.appprice) {
            return
                (abi.encodeWithSelector(AppPriceTooHigh.selector, s.app.appprice, r.appmaxprice), 0);
        }
        if (r.datasetmaxprice < s.dataset.datasetprice) {
            return (
                abi.encodeWithSelector(
                    DatasetPriceTooHigh.selector, s.dataset.datasetprice, r.datasetmaxprice
                ),
                0
            );
        }
        if (r.workerpoolmaxprice < s.workerpool.workerpoolprice) {
            return (
                abi.encodeWithSelector(
                    WorkerpoolPriceTooHigh.selector,
                    s.workerpool.workerpoolprice,
                    r.workerpoolmaxprice
                ),
                0
            );
        }
        uint256[3] memory prices =
            [s.app.appprice, s.dataset.datasetprice, s.workerpool.workerpoolprice];
        for (uint256 i; i < 3; ++i) {
            if (prices[i] > AMOUNT_MAX) {
                return (abi.encodeWithSelector(PriceOutOfRange.selector, prices[i]), 0);
            }
        }
        uint256 tag = uint256(s.app.tag) | (uint256(s.dataset.tag) & ~uint256(0xe)) | uint256(r.tag);
        uint256 missing = tag & ~uint256(s.workerpool.tag);
        if (missing != 0) return (abi.encodeWithSelector(TagNotOffered.selector, missing), 0);
        if ((tag ^ uint256(s.app.tag)) & 1 != 0) {
            return (abi.encodeWithSelector(TeeAppRequired.selector), 0);
        }
        volume = _min(s.app.volume, _min(s.workerpool.volume, r.volume));
        if (withDataset) volume = _min(volume, s.dataset.volume);
        if (volume == 0) return (abi.encodeWithSelector(NoVolumeLeft.selector), 0);
        uint256 price = s.app.appprice + (withDataset ? s.dataset.datasetprice : 0)
            + s.workerpool.workerpoolprice;
        uint256 needed = _mulCapped(price, volume);
        if (requesterBal < needed) {
            return (
                abi.encodeWithSelector(
                    SponsorBalanceTooLow.selector, requester, needed, requesterBal
                ),
                0
            );
        }
        needed = _mulCapped(s.workerpool.workerpoolprice * 30 / 100, volume);
        if (schedBal < needed) {
            return
                (
                    abi.encodeWithSelector(
                        SchedulerStakeTooLow.selector, scheduler, needed, schedBal
                    ),
                    0
                );
        }
    }

    function testFuzz_matchOrders(MatchInput memory input) public {
        checkMatch(input);
    }

    /// Runs one match against the model; returns the selector of the error, or zero.
    function checkMatch(MatchInput memory input) internal returns (bytes4) {
        OrderSet memory s = input.withDataset ? defaultOrders() : orderSetWithoutDataset();
        s.app.appprice = _price(input.appPrice);
        s.dataset.datasetprice = _price(input.datasetPrice);
        s.workerpool.workerpoolprice = _price(input.wpPrice);
        s.request.appmaxprice = _maxPrice(s.app.appprice, input.appMaxDelta);
        s.request.datasetmaxprice = _maxPrice(s.dataset.datasetprice, input.datasetMaxDelta);
        s.request.workerpoolmaxprice = _maxPrice(s.workerpool.workerpoolprice, input.wpMaxDelta);
        s.app.volume = _volume(input.appVolume);
        s.dataset.volume = _volume(input.datasetVolume);
        s.workerpool.volume = _volume(input.wpVolume);
        s.request.volume = _volume(input.requestVolume);

        // Tags over bits 0 (TEE), 1-3 (TEE frameworks), 4 and 5. The pool mostly offers a
        // superset of the demand, and the app order mostly carries TEE when it is demanded.
        s.dataset.tag = bytes32(input.datasetTag & 0x2f);
        s.request.tag = bytes32(input.requestTag & 0x31);
        s.app.tag = bytes32(input.appTag & 0x12);
        bytes32 demand = s.app.tag | (s.dataset.tag & ~bytes32(uint256(0xe))) | s.request.tag;
        if ((input.appTag >> 8) % 6 != 4) s.app.tag |= demand & TEE_TAG;
        demand |= s.app.tag;
        s.workerpool.tag = (input.wpTag >> 8) % 6 == 4
            ? bytes32(input.wpTag & 0x3f)
            : demand | bytes32(input.wpTag & 0x3f);

        // Trust: mostly within what the pool offers, sometimes above it or out of range.
        s.request.trust = input.requestTrust % 16 == 9
            ? uint256(type(uint64).max) + (input.requestTrust >> 252)
            : bound(input.requestTrust >> 4, 0, 12);
        s.workerpool.trust = input.wpTrust % 8 == 5
            ? bound(input.wpTrust >> 3, 0, 12)
            : s.request.trust + ((input.wpTrust >> 3) % 4);

        // Category: mostly one that exists on both sides.
        if (input.categories % 10 == 7) {
            s.request.category = (input.categories >> 8) % 7;
            s.workerpool.category = (input.categories >> 16) % 7;
        } else {
            s.request.category = (input.categories >> 8) % 5;
            s.workerpool.category = s.request.category;
        }
        signAll(s);

        uint256 requesterBal = _balance(input.requesterBalance);
        uint256 schedBal = _balance(input.schedulerBalance);
        setBalance(requester, requesterBal);
        setBalance(scheduler, schedBal);
        uint256 pocoRlc = rlc.balanceOf(address(poco));

        (bytes memory err, uint256 volume) = _predict(s, input.withDataset, requesterBal, schedBal);
        if (err.length != 0) {
            expectMatchRevert(s, err);
            return bytes4(err);
        }

        (bytes32 dealid, Deal memory deal) = matchSet(s);
        uint256 price = deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
        uint256 schedulerStake = deal.workerpoolPrice * 30 / 100 * volume;
        assertEq(deal.botSize, volume);
        assertEq(deal.botFirst, 0);
        assertEq(deal.appPrice, s.app.appprice);
        assertEq(deal.datasetPrice, input.withDataset ? s.dataset.datasetprice : 0);
        assertEq(deal.workerpoolPrice, s.workerpool.workerpoolprice);
        assertEq(deal.trust, s.request.trust == 0 ? 1 : s.request.trust);
        assertEq(deal.tag, s.app.tag | (s.dataset.tag & ~bytes32(uint256(0xe))) | s.request.tag);
        assertEq(deal.workerStake, s.workerpool.workerpoolprice * 30 / 100);
        assertEq(dealid, dealIdOf(hashRequest(s.request), 0));
        assertEq(poco.viewDealHash(dealid), keccak256(abi.encode(deal)));
        assertEq(bal(requester), requesterBal - price * volume);
        assertEq(frz(requester), price * volume);
        assertEq(bal(scheduler), schedBal - schedulerStake);
        assertEq(frz(scheduler), schedulerStake);
        assertEq(rlc.balanceOf(address(poco)), pocoRlc);
        assertEq(poco.viewConsumed(hashApp(s.app)), volume);
        assertEq(poco.viewConsumed(hashWorkerpool(s.workerpool)), volume);
        assertEq(poco.viewConsumed(hashRequest(s.request)), volume);
        assertEq(poco.viewConsumed(hashDataset(s.dataset)), input.withDataset ? volume : 0);
        return bytes4(0);
    }

    // ================================================================== consensus

    uint256 internal constant TOTAL_MAX = (uint256(1) << 184) - 1;

    /// The model of protocol.md §4.2 for one task.
    struct Model {
        uint256 trust;
        uint256 total;
        uint256 contributors;
        bool revealing;
        uint256 winners;
        bytes32 consensus;
        uint256[3] groupWeight;
        uint256[3] groupSize;
    }

    function _trustFor(uint256 raw) internal pure returns (uint256) {
        uint256 mode = raw % 4;
        if (mode == 0) return bound(raw >> 2, 1, 4);
        if (mode == 1) return bound(raw >> 2, 1, 128);
        if (mode == 2) return bound(raw >> 2, 1, 1_000_000);
        return bound(raw >> 2, 1, type(uint64).max);
    }

    function _scoreFor(uint256 step) internal pure returns (uint256) {
        uint256 mode = (step >> 16) % 4;
        if (mode < 2) return bound(step & 0xffff, 0, 11); // weight 2
        if (mode == 2) return bound(step & 0xffff, 0, 400);
        // Rarely, a score near the 32-bit limit: weights up to 2^30 can overflow the total.
        if ((step >> 20) % 4 == 1) return bound(step >> 64, 0, type(uint32).max);
        return step & 0xffff;
    }

    function testFuzz_consensus(uint256 trustSeed, uint256[] calldata steps) public {
        checkConsensus(trustSeed, steps);
    }

    /// Plays the contributions against the model. Returns how the sequence ended: 0 still
    /// ACTIVE, 1 consensus reached, 2 refused after consensus, 3 TooManyContributors,
    /// 4 ConsensusOverflow.
    function checkConsensus(uint256 trustSeed, uint256[] memory steps) internal returns (uint8) {
        Model memory m;
        m.trust = _trustFor(trustSeed);
        m.total = 1;
        OrderSet memory s = defaultOrders();
        s.workerpool.trust = m.trust;
        s.request.trust = m.trust;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        bytes32 taskid = taskIdOf(deal, 0);

        uint256 n = steps.length < 40 ? steps.length : 40;
        for (uint256 i; i < n; ++i) {
            address worker = address(uint160(0x100000 + i));
            uint256 score = _scoreFor(steps[i]);
            uint256 answer = (steps[i] >> 24) % 3;
            bytes32 digest = keccak256(abi.encode("answer", answer));
            bytes32 resultHash = resultHashOf(taskid, digest);
            fundEscrow(worker, deal.workerStake);
            setScore(worker, score);

            uint256 w = score / 3 < 3 ? 2 : score / 3 - 1;
            uint256 before = m.groupWeight[answer];
            uint256 after_ = before == 0 ? w : before * w;
            uint256 total = m.total + after_ - before;

            bytes memory expected;
            if (m.revealing) {
                expected = abi.encodeWithSelector(WrongTaskStatus.selector, taskid, REVEALING);
            } else if (m.contributors == MAX_CONTRIBUTORS) {
                expected = abi.encodeWithSelector(TooManyContributors.selector, taskid, 32);
            } else if (total > TOTAL_MAX) {
                expected = abi.encodeWithSelector(ConsensusOverflow.selector, taskid);
            }
            bytes memory auth = authorization(worker, taskid, address(0));
            if (expected.length != 0) {
                vm.expectRevert(expected);
                vm.prank(worker);
                poco.contribute(
                    deal, 0, resultHash, resultSealOf(worker, taskid, digest), address(0), "", auth
                );
                return m.revealing ? 2 : m.contributors == MAX_CONTRIBUTORS ? 3 : 4;
            }
            vm.prank(worker);
            poco.contribute(
                deal, 0, resultHash, resultSealOf(worker, taskid, digest), address(0), "", auth
            );

            m.groupWeight[answer] = after_;
            m.groupSize[answer] += 1;
            m.total = total;
            m.contributors += 1;
            if (after_ * m.trust > total * (m.trust - 1)) {
                m.revealing = true;
                m.winners = m.groupSize[answer];
                m.consensus = resultHash;
            }

            Task memory task = poco.viewTask(taskid);
            assertEq(uint8(task.status), m.revealing ? REVEALING : ACTIVE, "status");
            assertEq(task.consensusTotal, m.total, "total");
            assertEq(task.contributors, m.contributors, "contributors");
            assertEq(task.winners, m.winners, "winners");
            Group memory g = poco.viewGroup(taskid, resultHash);
            assertEq(g.weight, after_, "group weight");
            assertEq(g.size, m.groupSize[answer], "group size");
            assertEq(g.consensus, m.revealing && m.consensus == resultHash, "group consensus");
            uint256 logWeight;
            while (w > 1) {
                w >>= 1;
                ++logWeight;
            }
            assertEq(poco.viewContribution(taskid, worker).weight, logWeight, "log weight");
        }
        return m.revealing ? 1 : 0;
    }
}
