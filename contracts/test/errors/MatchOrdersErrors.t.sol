// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "../utils/PocoFixture.sol";
import {GroupIdentity, RevertingGroup} from "../utils/Mocks.sol";

/// @notice Every error `matchOrders` can raise, each reached with orders that pass every earlier
/// check (all orders correctly signed unless the signature is the point), asserted with its
/// exact arguments.
contract MatchOrdersErrorsTest is PocoFixture {
    address internal other;

    function setUp() public override {
        super.setUp();
        other = makeAddr("other");
    }

    // ================================================================== compatibility 0x00-0x09

    function test_CategoryMismatch() public {
        OrderSet memory s = defaultOrders();
        s.request.category = 1;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(CategoryMismatch.selector, 1, 0));
    }

    function test_UnknownCategory() public {
        OrderSet memory s = defaultOrders();
        s.request.category = 5;
        s.workerpool.category = 5;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(UnknownCategory.selector, 5));
    }

    function test_UnknownCategory_view() public {
        assertEq(poco.countCategory(), 5);
        vm.expectRevert(abi.encodeWithSelector(UnknownCategory.selector, 5));
        poco.viewCategory(5);
    }

    function test_TrustNotOffered() public {
        OrderSet memory s = defaultOrders();
        s.request.trust = 101;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(TrustNotOffered.selector, 101, 100));
    }

    function test_TrustOutOfRange() public {
        uint256 trust = uint256(type(uint64).max) + 1;
        OrderSet memory s = defaultOrders();
        s.request.trust = trust;
        s.workerpool.trust = trust;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(TrustOutOfRange.selector, trust));
        // The largest trust accepted is 2^64 - 1.
        s.request.trust = trust - 1;
        signAll(s);
        (, Deal memory deal) = matchSet(s);
        assertEq(deal.trust, trust - 1);
    }

    function test_AppPriceTooHigh() public {
        OrderSet memory s = defaultOrders();
        s.app.appprice = APP_PRICE + 1;
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(AppPriceTooHigh.selector, APP_PRICE + 1, APP_PRICE)
        );
    }

    function test_DatasetPriceTooHigh() public {
        OrderSet memory s = defaultOrders();
        s.request.datasetmaxprice = DATASET_PRICE - 1;
        signAll(s);
        expectMatchRevert(
            s,
            abi.encodeWithSelector(DatasetPriceTooHigh.selector, DATASET_PRICE, DATASET_PRICE - 1)
        );
    }

    /// protocol.md §2.2 0x04: checked even without a dataset.
    function test_DatasetPriceTooHigh_withoutDataset() public {
        OrderSet memory s = orderSetWithoutDataset();
        s.dataset.datasetprice = 1;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(DatasetPriceTooHigh.selector, 1, 0));
    }

    function test_WorkerpoolPriceTooHigh() public {
        OrderSet memory s = defaultOrders();
        s.request.workerpoolmaxprice = 7;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(WorkerpoolPriceTooHigh.selector, WP_PRICE, 7));
    }

    function test_PriceOutOfRange_app() public {
        OrderSet memory s = defaultOrders();
        s.app.appprice = AMOUNT_MAX + 1;
        s.request.appmaxprice = type(uint256).max;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(PriceOutOfRange.selector, AMOUNT_MAX + 1));
    }

    function test_PriceOutOfRange_dataset() public {
        OrderSet memory s = defaultOrders();
        s.dataset.datasetprice = AMOUNT_MAX + 1;
        s.request.datasetmaxprice = AMOUNT_MAX + 1;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(PriceOutOfRange.selector, AMOUNT_MAX + 1));
    }

    function test_PriceOutOfRange_workerpool() public {
        OrderSet memory s = defaultOrders();
        s.workerpool.workerpoolprice = type(uint256).max;
        s.request.workerpoolmaxprice = type(uint256).max;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(PriceOutOfRange.selector, type(uint256).max));
    }

    function test_TagNotOffered() public {
        OrderSet memory s = defaultOrders();
        s.app.tag = bytes32(uint256(0x20));
        s.dataset.tag = bytes32(uint256(0x100));
        s.request.tag = bytes32(uint256(0x10));
        s.workerpool.tag = bytes32(uint256(0x10));
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(TagNotOffered.selector, bytes32(uint256(0x120)))
        );
    }

    /// A dataset's TEE framework bits (1-3) are not demanded from the pool, its TEE bit is.
    function test_TagNotOffered_datasetTeeBitStillCounts() public {
        OrderSet memory s = defaultOrders();
        s.app.tag = TEE_TAG;
        s.dataset.tag = bytes32(uint256(0x3)); // TEE + Scone
        s.workerpool.tag = bytes32(uint256(0x8)); // TDX only, no TEE bit
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(TagNotOffered.selector, TEE_TAG));
    }

    function test_TeeAppRequired_byRequest() public {
        OrderSet memory s = defaultOrders();
        s.request.tag = TEE_TAG;
        s.workerpool.tag = TEE_TAG;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(TeeAppRequired.selector));
    }

    function test_TeeAppRequired_byDataset() public {
        OrderSet memory s = defaultOrders();
        s.dataset.tag = bytes32(uint256(0x5)); // TEE + Gramine
        s.workerpool.tag = bytes32(uint256(0xf));
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(TeeAppRequired.selector));
    }

    // ================================================================== restrictions 0x10-0x1b

    function test_AppMismatch() public {
        OrderSet memory s = defaultOrders();
        s.request.app = other;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(AppMismatch.selector, other, app));
    }

    function test_DatasetMismatch() public {
        OrderSet memory s = defaultOrders();
        s.request.dataset = other;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(DatasetMismatch.selector, other, dataset));
    }

    function test_DatasetMismatch_requestWantsNoDataset() public {
        OrderSet memory s = defaultOrders();
        s.request.dataset = address(0);
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(DatasetMismatch.selector, address(0), dataset));
    }

    function test_RequestWorkerpoolRestricted() public {
        OrderSet memory s = defaultOrders();
        s.request.workerpool = other;
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(RequestWorkerpoolRestricted.selector, other, workerpool)
        );
    }

    function test_AppDatasetRestricted() public {
        OrderSet memory s = defaultOrders();
        s.app.datasetrestrict = other;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(AppDatasetRestricted.selector, other, dataset));
    }

    /// protocol.md §2.2: without a dataset the dataset checked is address 0.
    function test_AppDatasetRestricted_withoutDataset() public {
        OrderSet memory s = orderSetWithoutDataset();
        s.app.datasetrestrict = dataset;
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(AppDatasetRestricted.selector, dataset, address(0))
        );
    }

    function test_AppWorkerpoolRestricted() public {
        OrderSet memory s = defaultOrders();
        s.app.workerpoolrestrict = other;
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(AppWorkerpoolRestricted.selector, other, workerpool)
        );
    }

    function test_AppRequesterRestricted() public {
        OrderSet memory s = defaultOrders();
        s.app.requesterrestrict = other;
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(AppRequesterRestricted.selector, other, requester)
        );
    }

    function test_DatasetAppRestricted() public {
        OrderSet memory s = defaultOrders();
        s.dataset.apprestrict = other;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(DatasetAppRestricted.selector, other, app));
    }

    function test_DatasetWorkerpoolRestricted() public {
        OrderSet memory s = defaultOrders();
        s.dataset.workerpoolrestrict = other;
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(DatasetWorkerpoolRestricted.selector, other, workerpool)
        );
    }

    function test_DatasetRequesterRestricted() public {
        OrderSet memory s = defaultOrders();
        s.dataset.requesterrestrict = other;
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(DatasetRequesterRestricted.selector, other, requester)
        );
    }

    function test_WorkerpoolAppRestricted() public {
        OrderSet memory s = defaultOrders();
        s.workerpool.apprestrict = other;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(WorkerpoolAppRestricted.selector, other, app));
    }

    function test_WorkerpoolDatasetRestricted() public {
        OrderSet memory s = defaultOrders();
        s.workerpool.datasetrestrict = other;
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(WorkerpoolDatasetRestricted.selector, other, dataset)
        );
    }

    function test_WorkerpoolRequesterRestricted() public {
        OrderSet memory s = defaultOrders();
        s.workerpool.requesterrestrict = other;
        signAll(s);
        expectMatchRevert(
            s, abi.encodeWithSelector(WorkerpoolRequesterRestricted.selector, other, requester)
        );
    }

    /// A group that does not list the account, and a group whose lookup reverts, both refuse.
    function test_WorkerpoolRequesterRestricted_groups() public {
        GroupIdentity group = new GroupIdentity();
        group.setMember(other, true);
        OrderSet memory s = defaultOrders();
        s.workerpool.requesterrestrict = address(group);
        signAll(s);
        expectMatchRevert(
            s,
            abi.encodeWithSelector(
                WorkerpoolRequesterRestricted.selector, address(group), requester
            )
        );

        RevertingGroup broken = new RevertingGroup();
        s.workerpool.requesterrestrict = address(broken);
        signAll(s);
        expectMatchRevert(
            s,
            abi.encodeWithSelector(
                WorkerpoolRequesterRestricted.selector, address(broken), requester
            )
        );
    }

    // ================================================================== authenticity 0x20-0x50

    function test_AppNotRegistered() public {
        OrderSet memory s = defaultOrders();
        s.app.app = other;
        s.request.app = other;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(AppNotRegistered.selector, other));
    }

    /// A dataset is not an app: each registry only knows its own assets.
    function test_AppNotRegistered_assetOfAnotherRegistry() public {
        OrderSet memory s = defaultOrders();
        s.app.app = dataset;
        s.request.app = dataset;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(AppNotRegistered.selector, dataset));
    }

    function test_InvalidAppOrderSignature() public {
        OrderSet memory s = signAll(defaultOrders());
        signApp(s.app, strangerKey);
        expectMatchRevert(s, abi.encodeWithSelector(InvalidAppOrderSignature.selector, appOwner));
        // No signature and no presignature.
        s.app.sign = "";
        expectMatchRevert(s, abi.encodeWithSelector(InvalidAppOrderSignature.selector, appOwner));
    }

    function test_DatasetNotRegistered() public {
        OrderSet memory s = defaultOrders();
        s.dataset.dataset = other;
        s.request.dataset = other;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(DatasetNotRegistered.selector, other));
    }

    function test_InvalidDatasetOrderSignature() public {
        OrderSet memory s = signAll(defaultOrders());
        signDataset(s.dataset, appOwnerKey);
        expectMatchRevert(
            s, abi.encodeWithSelector(InvalidDatasetOrderSignature.selector, datasetOwner)
        );
    }

    function test_WorkerpoolNotRegistered() public {
        OrderSet memory s = defaultOrders();
        s.workerpool.workerpool = other;
        s.request.workerpool = address(0);
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(WorkerpoolNotRegistered.selector, other));
    }

    function test_InvalidWorkerpoolOrderSignature() public {
        OrderSet memory s = signAll(defaultOrders());
        signWorkerpool(s.workerpool, requesterKey);
        expectMatchRevert(
            s, abi.encodeWithSelector(InvalidWorkerpoolOrderSignature.selector, scheduler)
        );
    }

    function test_InvalidRequestOrderSignature() public {
        OrderSet memory s = signAll(defaultOrders());
        signRequest(s.request, strangerKey);
        expectMatchRevert(
            s, abi.encodeWithSelector(InvalidRequestOrderSignature.selector, requester)
        );
    }

    /// A valid signature of another order does not carry over (the request's volume changed).
    function test_InvalidRequestOrderSignature_tamperedOrder() public {
        OrderSet memory s = signAll(defaultOrders());
        s.request.volume = 2;
        expectMatchRevert(
            s, abi.encodeWithSelector(InvalidRequestOrderSignature.selector, requester)
        );
    }

    // ================================================================== volume and funds 0x60-0x71

    function test_NoVolumeLeft_consumed() public {
        OrderSet memory s = signedOrders(1, 1);
        matchSet(s);
        expectMatchRevert(s, abi.encodeWithSelector(NoVolumeLeft.selector));
    }

    function test_NoVolumeLeft_closed() public {
        OrderSet memory s = signedOrders(1, 1);
        vm.prank(scheduler);
        poco.manageWorkerpoolOrder(WorkerpoolOrderOperation(s.workerpool, OrderOperation.CLOSE, ""));
        expectMatchRevert(s, abi.encodeWithSelector(NoVolumeLeft.selector));
    }

    function test_NoVolumeLeft_zeroVolume() public {
        OrderSet memory s = defaultOrders();
        s.app.volume = 0;
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(NoVolumeLeft.selector));
    }

    function test_SponsorBalanceTooLow() public {
        OrderSet memory s = signedOrders(1, 3);
        uint256 needed = (APP_PRICE + DATASET_PRICE + WP_PRICE) * 3;
        setBalance(requester, needed - 1);
        expectMatchRevert(
            s, abi.encodeWithSelector(SponsorBalanceTooLow.selector, requester, needed, needed - 1)
        );
        // One more nRLC and it matches.
        setBalance(requester, needed);
        matchSet(s);
        assertEq(bal(requester), 0);
        assertEq(frz(requester), needed);
    }

    function test_SponsorBalanceTooLow_sponsor() public {
        OrderSet memory s = signedOrders(1, 1);
        uint256 needed = APP_PRICE + DATASET_PRICE + WP_PRICE;
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(SponsorBalanceTooLow.selector, stranger, needed, 0));
        poco.sponsorMatchOrders(s.app, s.dataset, s.workerpool, s.request);
    }

    /// price x volume overflowing uint256 is reported as an unpayable amount, not a panic.
    function test_SponsorBalanceTooLow_overflowingTotal() public {
        OrderSet memory s = defaultOrders();
        uint256 volume = type(uint256).max / 2;
        s.app.volume = volume;
        s.dataset.volume = volume;
        s.workerpool.volume = volume;
        s.request.volume = volume;
        signAll(s);
        expectMatchRevert(
            s,
            abi.encodeWithSelector(
                SponsorBalanceTooLow.selector, requester, type(uint256).max, INITIAL_DEPOSIT
            )
        );
    }

    function test_SchedulerStakeTooLow() public {
        OrderSet memory s = signedOrders(1, 2);
        uint256 needed = percent(WP_PRICE, 30) * 2;
        setBalance(scheduler, needed - 1);
        expectMatchRevert(
            s, abi.encodeWithSelector(SchedulerStakeTooLow.selector, scheduler, needed, needed - 1)
        );
    }
}
