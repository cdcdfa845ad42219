// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "./utils/PocoFixture.sol";
import {GroupIdentity} from "./utils/Mocks.sol";
import {IPoco} from "../src/interfaces/IPoco.sol";
import {Workerpool} from "../src/registries/Workerpools.sol";

/// @notice matchOrders (protocol.md §2): the deal written, the funds locked, the events, the
/// deal id, partial fills, deals without a dataset, restrictions by address and by ERC-734
/// group, deposit-and-match through `RLC.approveAndCall`, and sponsoring.
contract MatchOrdersTest is PocoFixture {
    uint256 internal constant PRICE = APP_PRICE + DATASET_PRICE + WP_PRICE;

    function _expectedDeal(OrderSet memory s, uint256 botFirst, uint256 botSize)
        internal
        view
        returns (Deal memory d)
    {
        d.requestHash = hashRequest(s.request);
        d.app = s.app.app;
        d.appOwner = appOwner;
        d.appPrice = s.app.appprice;
        if (s.dataset.dataset != address(0)) {
            d.dataset = s.dataset.dataset;
            d.datasetOwner = datasetOwner;
            d.datasetPrice = s.dataset.datasetprice;
        }
        d.workerpool = s.workerpool.workerpool;
        d.scheduler = scheduler;
        d.workerpoolPrice = s.workerpool.workerpoolprice;
        d.requester = s.request.requester;
        d.sponsor = s.request.requester;
        d.beneficiary = s.request.beneficiary;
        d.callback = s.request.callback;
        d.tag = s.app.tag | (s.dataset.tag & ~bytes32(uint256(0xe))) | s.request.tag;
        d.category = s.request.category;
        d.trust = s.request.trust == 0 ? 1 : s.request.trust;
        d.startTime = block.timestamp;
        d.timeref = T_XS;
        d.botFirst = botFirst;
        d.botSize = botSize;
        d.workerStake = percent(s.workerpool.workerpoolprice, 30);
        d.schedulerRewardRatio = 1;
        d.paramsHash = keccak256(bytes(s.request.params));
    }

    function _assertDealEq(Deal memory a, Deal memory b) internal pure {
        assertEq(keccak256(abi.encode(a)), keccak256(abi.encode(b)), "deal");
    }

    // ================================================================== success path

    function test_matchOrders_success() public {
        vm.warp(1_700_000_000);
        OrderSet memory s = signedOrders(4, 3);
        bytes32 requestHash = hashRequest(s.request);
        bytes32 expectedId = keccak256(abi.encodePacked(requestHash, uint256(0)));
        Deal memory expected = _expectedDeal(s, 0, 3);
        uint256 pocoRlc = rlc.balanceOf(address(poco));

        vm.expectEmit(address(poco));
        emit OrdersMatched(
            expectedId,
            hashApp(s.app),
            hashDataset(s.dataset),
            hashWorkerpool(s.workerpool),
            requestHash,
            3
        );
        vm.expectEmit(address(poco));
        emit DealCreated(expectedId, workerpool, requester, expected, s.request.params);
        // Anyone may send the match; the requester pays.
        vm.prank(stranger);
        (bytes32 dealid, Deal memory deal) = matchSet(s);

        assertEq(dealid, expectedId);
        _assertDealEq(deal, expected);
        assertEq(poco.viewDealHash(dealid), keccak256(abi.encode(expected)));
        assertEq(deal.startTime, 1_700_000_000);

        assertEq(bal(requester), INITIAL_DEPOSIT - 3 * PRICE);
        assertEq(frz(requester), 3 * PRICE);
        uint256 stake = (WP_PRICE * 30 / 100) * 3;
        assertEq(stake, 3 * 6_000_000_002);
        assertEq(bal(scheduler), INITIAL_DEPOSIT - stake);
        assertEq(frz(scheduler), stake);
        assertEq(bal(stranger), 0);
        assertEq(frz(stranger), 0);
        // No token moves: funds move inside the escrow.
        assertEq(rlc.balanceOf(address(poco)), pocoRlc);

        assertEq(poco.viewConsumed(hashApp(s.app)), 3);
        assertEq(poco.viewConsumed(hashDataset(s.dataset)), 3);
        assertEq(poco.viewConsumed(hashWorkerpool(s.workerpool)), 3);
        assertEq(poco.viewConsumed(requestHash), 3);
    }

    /// Prices are the offers', not the request's maxima; trust 0 means 1.
    function test_matchOrders_paysOfferedPrices() public {
        OrderSet memory s = defaultOrders();
        s.request.appmaxprice = 100 * RLC_UNIT;
        s.request.datasetmaxprice = 100 * RLC_UNIT;
        s.request.workerpoolmaxprice = 100 * RLC_UNIT;
        s.request.trust = 0;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        assertEq(deal.appPrice, APP_PRICE);
        assertEq(deal.datasetPrice, DATASET_PRICE);
        assertEq(deal.workerpoolPrice, WP_PRICE);
        assertEq(deal.trust, 1);
        assertEq(frz(requester), PRICE);
    }

    function test_matchOrders_tags() public {
        OrderSet memory s = defaultOrders();
        s.app.tag = bytes32(uint256(0x9)); // TEE + TDX
        s.dataset.tag = bytes32(uint256(0x3)); // TEE + Scone: the framework bit is ignored
        s.request.tag = bytes32(uint256(0x100)); // some feature flag
        s.workerpool.tag = bytes32(uint256(0xf09)); // TDX pool with extra features
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        assertEq(deal.tag, bytes32(uint256(0x109)));
    }

    /// An app order may ask for TEE while nobody else does (protocol.md §2.2, 0x07).
    function test_matchOrders_teeAppAloneIsFine() public {
        OrderSet memory s = defaultOrders();
        s.app.tag = TEE_TAG;
        s.workerpool.tag = TEE_TAG;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        assertEq(deal.tag, TEE_TAG);
    }

    // ================================================================== partial fills

    function test_partialFills_twoDealsOfOneRequest() public {
        OrderSet memory s = signedOrders(1, 5);
        s.workerpool.volume = 2;
        signAll(s);
        bytes32 requestHash = hashRequest(s.request);
        (bytes32 id1, Deal memory d1) = matchSet(s);
        assertEq(d1.botFirst, 0);
        assertEq(d1.botSize, 2);
        assertEq(id1, keccak256(abi.encodePacked(requestHash, uint256(0))));
        assertEq(poco.viewConsumed(requestHash), 2);

        // A second workerpool order serves the rest of the request.
        s.workerpool.volume = 10;
        s.workerpool.salt = keccak256("second pool order");
        signAll(s);
        vm.warp(block.timestamp + 100);
        (bytes32 id2, Deal memory d2) = matchSet(s);
        assertEq(d2.botFirst, 2);
        assertEq(d2.botSize, 3);
        assertEq(id2, keccak256(abi.encodePacked(requestHash, uint256(2))));
        assertTrue(id1 != id2);
        assertEq(d2.startTime, d1.startTime + 100);
        assertEq(poco.viewConsumed(requestHash), 5);
        assertEq(poco.viewConsumed(hashWorkerpool(s.workerpool)), 3);
        assertEq(poco.viewConsumed(hashApp(s.app)), 5);
        assertEq(frz(requester), 5 * PRICE);

        // Disjoint index ranges: each deal only knows its own tasks.
        poco.initialize(d1, 1);
        poco.initialize(d2, 2);
        poco.initialize(d2, 4);
        vm.expectRevert(abi.encodeWithSelector(TaskIndexOutOfRange.selector, 2, 0, 2));
        poco.initialize(d1, 2);
        vm.expectRevert(abi.encodeWithSelector(TaskIndexOutOfRange.selector, 1, 2, 3));
        poco.initialize(d2, 1);
        assertTrue(taskIdOf(id1, 1) != taskIdOf(id2, 2));

        // The request is used up.
        s.workerpool.salt = keccak256("third pool order");
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(NoVolumeLeft.selector));
    }

    /// The deal takes the smallest volume left among the orders.
    function test_partialFills_minimumOfRemainingVolumes() public {
        OrderSet memory s = defaultOrders();
        s.app.volume = 7;
        s.dataset.volume = 4;
        s.workerpool.volume = 9;
        s.request.volume = 8;
        signAll(s);
        (, Deal memory d) = matchSet(s);
        assertEq(d.botSize, 4);
        // The dataset order is used up; a new one gives min(7-4, 9-4, 8-4) = 3.
        s.dataset.salt = keccak256("dataset 2");
        signAll(s);
        (, d) = matchSet(s);
        assertEq(d.botFirst, 4);
        assertEq(d.botSize, 3);
    }

    // ================================================================== without dataset

    function test_datasetLessDeal() public {
        OrderSet memory s = orderSetWithoutDataset();
        s.request.volume = 2;
        signAll(s);
        vm.expectEmit(address(poco));
        emit OrdersMatched(
            keccak256(abi.encodePacked(hashRequest(s.request), uint256(0))),
            hashApp(s.app),
            bytes32(0),
            hashWorkerpool(s.workerpool),
            hashRequest(s.request),
            2
        );
        (, Deal memory deal) = matchSet(s);
        _assertDealEq(deal, _expectedDeal(s, 0, 2));
        assertEq(deal.dataset, address(0));
        assertEq(deal.datasetOwner, address(0));
        assertEq(deal.datasetPrice, 0);
        assertEq(frz(requester), 2 * (APP_PRICE + WP_PRICE));
        assertEq(poco.viewConsumed(bytes32(0)), 0);

        // Finalized: nothing goes to any dataset owner.
        uint256 datasetOwnerBalance = bal(datasetOwner);
        contributeAndFinalizeAs(deal, 0, workers[0], DIGEST_A);
        assertEq(bal(datasetOwner), datasetOwnerBalance);
        assertEq(bal(appOwner), INITIAL_DEPOSIT + APP_PRICE);
        assertEq(frz(requester), APP_PRICE + WP_PRICE);
    }

    /// Without a dataset, the dataset order's other fields are irrelevant, except its price.
    function test_datasetLessDeal_ignoresEmptyDatasetOrderVolume() public {
        OrderSet memory s = orderSetWithoutDataset();
        s.dataset.volume = 0;
        s.dataset.sign = hex"deadbeef";
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        assertEq(deal.botSize, 1);
    }

    // ================================================================== restrictions

    function test_restrictionsByExactAddress() public {
        OrderSet memory s = defaultOrders();
        s.app.datasetrestrict = dataset;
        s.app.workerpoolrestrict = workerpool;
        s.app.requesterrestrict = requester;
        s.dataset.apprestrict = app;
        s.dataset.workerpoolrestrict = workerpool;
        s.dataset.requesterrestrict = requester;
        s.workerpool.apprestrict = app;
        s.workerpool.datasetrestrict = dataset;
        s.workerpool.requesterrestrict = requester;
        s.request.workerpool = workerpool;
        signAll(s);
        matchSet(s);
    }

    function test_restrictionsByErc734Group() public {
        GroupIdentity requesters = new GroupIdentity();
        GroupIdentity pools = new GroupIdentity();
        GroupIdentity apps = new GroupIdentity();
        GroupIdentity datasets = new GroupIdentity();
        requesters.setMember(requester, true);
        pools.setMember(workerpool, true);
        apps.setMember(app, true);
        datasets.setMember(dataset, true);

        OrderSet memory s = defaultOrders();
        s.app.datasetrestrict = address(datasets);
        s.app.workerpoolrestrict = address(pools);
        s.app.requesterrestrict = address(requesters);
        s.dataset.apprestrict = address(apps);
        s.dataset.workerpoolrestrict = address(pools);
        s.dataset.requesterrestrict = address(requesters);
        s.workerpool.apprestrict = address(apps);
        s.workerpool.datasetrestrict = address(datasets);
        s.workerpool.requesterrestrict = address(requesters);
        s.request.workerpool = address(pools);
        s.request.volume = 2;
        signAll(s);
        matchSet(s);

        // Out of the group, out of the market: the request's pool restriction is checked first.
        pools.setMember(workerpool, false);
        expectMatchRevert(
            s,
            abi.encodeWithSelector(RequestWorkerpoolRestricted.selector, address(pools), workerpool)
        );
        pools.setMember(workerpool, true);
        requesters.setMember(requester, false);
        expectMatchRevert(
            s,
            abi.encodeWithSelector(AppRequesterRestricted.selector, address(requesters), requester)
        );
    }

    /// The group is asked about the account with purpose 4 (GROUPMEMBER) and nothing else.
    function test_restrictionGroupIsQueriedWithPurpose4() public {
        GroupIdentity group = new GroupIdentity();
        group.setMember(requester, true);
        OrderSet memory s = defaultOrders();
        s.workerpool.requesterrestrict = address(group);
        signAll(s);
        vm.expectCall(
            address(group),
            abi.encodeCall(GroupIdentity.keyHasPurpose, (bytes32(uint256(uint160(requester))), 4))
        );
        matchSet(s);
    }

    // ================================================================== deposit and match

    function test_approveAndCall_depositAndMatch() public {
        OrderSet memory s = signedOrders(1, 2);
        setBalance(requester, 0);
        uint256 walletBefore = rlc.balanceOf(requester);
        uint256 pocoBefore = rlc.balanceOf(address(poco));
        bytes memory data =
            abi.encodeCall(IPoco.matchOrders, (s.app, s.dataset, s.workerpool, s.request));

        vm.recordLogs();
        vm.prank(requester);
        assertTrue(rlc.approveAndCall(address(poco), 2 * PRICE, data));
        bytes32 dealid = keccak256(abi.encodePacked(hashRequest(s.request), uint256(0)));
        Deal memory deal = dealFromLogs(dealid);

        assertEq(deal.sponsor, requester);
        assertEq(deal.botSize, 2);
        assertEq(poco.viewDealHash(dealid), keccak256(abi.encode(deal)));
        assertEq(rlc.balanceOf(requester), walletBefore - 2 * PRICE);
        assertEq(rlc.balanceOf(address(poco)), pocoBefore + 2 * PRICE);
        assertEq(bal(requester), 0);
        assertEq(frz(requester), 2 * PRICE);
        assertEq(rlc.allowance(requester, address(poco)), 0);
    }

    function test_approveAndCall_depositOnly() public {
        vm.prank(stranger);
        rlc.approveAndCall(address(poco), 42, "");
        assertEq(bal(stranger), 42);
    }

    /// A failing match undoes the deposit too: all or nothing.
    function test_approveAndCall_failedMatchRevertsDeposit() public {
        OrderSet memory s = signedOrders(1, 2);
        setBalance(requester, 0);
        bytes memory data =
            abi.encodeCall(IPoco.matchOrders, (s.app, s.dataset, s.workerpool, s.request));
        vm.prank(requester);
        vm.expectRevert(
            abi.encodeWithSelector(SponsorBalanceTooLow.selector, requester, 2 * PRICE, PRICE)
        );
        rlc.approveAndCall(address(poco), PRICE, data);
        assertEq(bal(requester), 0);
    }

    // ================================================================== sponsoring

    function test_sponsorMatchOrders() public {
        OrderSet memory s = signedOrders(1, 2);
        bytes32 expectedId = keccak256(abi.encodePacked(hashRequest(s.request), uint256(0)));
        vm.expectEmit(address(poco));
        emit DealSponsored(expectedId, sponsor);
        (bytes32 dealid, Deal memory deal) = sponsorMatchSet(s, sponsor);
        assertEq(dealid, expectedId);
        assertEq(deal.sponsor, sponsor);
        assertEq(deal.requester, requester);
        assertEq(frz(sponsor), 2 * PRICE);
        assertEq(bal(sponsor), INITIAL_DEPOSIT - 2 * PRICE);
        assertEq(frz(requester), 0);
        assertEq(bal(requester), INITIAL_DEPOSIT);
    }

    // ================================================================== policy snapshot

    function test_dealSnapshotsPoolPolicy() public {
        vm.prank(scheduler);
        Workerpool(workerpool).changePolicy(35, 5);
        (, Deal memory deal) = matchDefault(1, 1);
        assertEq(deal.workerStake, WP_PRICE * 35 / 100);
        assertEq(deal.schedulerRewardRatio, 5);
        // The scheduler's own stake does not depend on the policy.
        assertEq(frz(scheduler), WP_PRICE * 30 / 100);
    }
}
