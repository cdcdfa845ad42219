// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "../utils/PocoFixture.sol";
import {BigToken} from "../utils/Mocks.sol";
import {IPoco} from "../../src/interfaces/IPoco.sol";
import {Workerpool} from "../../src/registries/Workerpools.sol";
import {OrderHashing} from "../utils/OrderHashing.sol";

/// @notice The errors of the escrow, order management, categories and registries, each asserted
/// with its exact arguments.
contract AccountErrorsTest is PocoFixture {
    // ================================================================== escrow

    /// RLC's whole supply (8.7e16 nRLC) is far below 2^96 nRLC, so the bound is reached with a
    /// token of larger supply plugged into a second Poco.
    function test_AmountOutOfRange() public {
        BigToken big = new BigToken();
        IPoco bigPoco = IPoco(
            deployCode(
                "Poco.sol:Poco",
                abi.encode(
                    pocoOwner,
                    address(big),
                    address(appRegistry),
                    address(datasetRegistry),
                    address(workerpoolRegistry),
                    tasksModule
                )
            )
        );
        big.approve(address(bigPoco), type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(AmountOutOfRange.selector, AMOUNT_MAX + 1));
        bigPoco.deposit(AMOUNT_MAX + 1);

        bigPoco.deposit(AMOUNT_MAX);
        assertEq(bigPoco.balanceOf(address(this)), AMOUNT_MAX);
        vm.expectRevert(abi.encodeWithSelector(AmountOutOfRange.selector, AMOUNT_MAX + 1));
        bigPoco.deposit(1);
        vm.expectRevert(abi.encodeWithSelector(AmountOutOfRange.selector, AMOUNT_MAX + 5));
        bigPoco.depositFor(5, address(this));
    }

    function test_InsufficientBalance_withdraw() public {
        vm.prank(requester);
        vm.expectRevert(
            abi.encodeWithSelector(
                InsufficientBalance.selector, requester, INITIAL_DEPOSIT + 1, INITIAL_DEPOSIT
            )
        );
        poco.withdraw(INITIAL_DEPOSIT + 1);
    }

    /// Frozen funds cannot be withdrawn: only the free balance counts.
    function test_InsufficientBalance_frozenNotWithdrawable() public {
        matchDefault(1, 1);
        uint256 free = bal(requester);
        assertGt(frz(requester), 0);
        vm.prank(requester);
        vm.expectRevert(
            abi.encodeWithSelector(InsufficientBalance.selector, requester, free + 1, free)
        );
        poco.withdrawTo(free + 1, stranger);
    }

    function test_UnauthorizedTokenCall() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(UnauthorizedTokenCall.selector, stranger));
        poco.receiveApproval(requester, 1, address(rlc), "");
    }

    function test_UnsupportedOperation() public {
        bytes memory data = abi.encodeCall(IPoco.deposit, (1));
        vm.prank(requester);
        vm.expectRevert(
            abi.encodeWithSelector(UnsupportedOperation.selector, IPoco.deposit.selector)
        );
        rlc.approveAndCall(address(poco), 1, data);
    }

    function test_CallerIsNotTheRequester() public {
        OrderSet memory s = signedOrders(1, 1);
        bytes memory data =
            abi.encodeCall(IPoco.matchOrders, (s.app, s.dataset, s.workerpool, s.request));
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(CallerIsNotTheRequester.selector, stranger, requester)
        );
        rlc.approveAndCall(address(poco), 100 * RLC_UNIT, data);
    }

    function test_ZeroAddress_depositFor() public {
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(ZeroAddress.selector));
        poco.depositFor(1, address(0));
    }

    function test_ZeroAddress_withdrawTo() public {
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(ZeroAddress.selector));
        poco.withdrawTo(1, address(0));
    }

    // ================================================================== order management

    function test_NotOrderOwner_app() public {
        AppOrder memory o = appOrder();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, appOwner));
        poco.manageAppOrder(AppOrderOperation(o, OrderOperation.CLOSE, ""));
        // A signature by someone else than the owner does not authorize either.
        bytes memory sign = sign65(
            strangerKey, OrderHashing.digest(domainSeparator(), OrderHashing.hashOperation(o, 1))
        );
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, appOwner));
        poco.manageAppOrder(AppOrderOperation(o, OrderOperation.CLOSE, sign));
    }

    function test_NotOrderOwner_unregisteredApp() public {
        AppOrder memory o = appOrder();
        o.app = stranger;
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, address(0)));
        poco.manageAppOrder(AppOrderOperation(o, OrderOperation.SIGN, ""));
    }

    function test_NotOrderOwner_dataset() public {
        vm.prank(appOwner);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, datasetOwner));
        poco.manageDatasetOrder(DatasetOrderOperation(datasetOrder(), OrderOperation.SIGN, ""));
    }

    function test_NotOrderOwner_workerpool() public {
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, scheduler));
        poco.manageWorkerpoolOrder(
            WorkerpoolOrderOperation(workerpoolOrder(), OrderOperation.CLOSE, "")
        );
    }

    function test_NotOrderOwner_request() public {
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, requester));
        poco.manageRequestOrder(RequestOrderOperation(requestOrder(), OrderOperation.CLOSE, ""));
    }

    /// A presignature does not authorize an operation (protocol.md §1.8): only the owner or its
    /// signature of the operation does.
    function test_NotOrderOwner_presignatureIsNotAnOperationSignature() public {
        RequestOrder memory o = requestOrder();
        vm.prank(requester);
        poco.manageRequestOrder(RequestOrderOperation(o, OrderOperation.SIGN, ""));
        assertEq(poco.viewPresigned(hashRequest(o)), requester);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, requester));
        poco.manageRequestOrder(RequestOrderOperation(o, OrderOperation.CLOSE, ""));
    }

    // ================================================================== categories

    function test_InvalidTimeRef() public {
        vm.startPrank(pocoOwner);
        vm.expectRevert(abi.encodeWithSelector(InvalidTimeRef.selector, 0));
        poco.createCategory("zero", "{}", 0);
        // A deal lives 10 T: T may not exceed a tenth of the member bond delay (7 days).
        uint256 tooLong = 60_481;
        vm.expectRevert(abi.encodeWithSelector(InvalidTimeRef.selector, tooLong));
        poco.createCategory("long", "{}", tooLong);
        // The bounds themselves are accepted.
        assertEq(poco.createCategory("one", "{}", 1), 5);
        assertEq(poco.createCategory("max", "{}", 60_480), 6);
        vm.stopPrank();
        assertEq(poco.viewCategory(6).workClockTimeRef, 60_480);
    }

    // ================================================================== registries

    function test_InvalidPolicy() public {
        vm.startPrank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(InvalidPolicy.selector, 101, 1));
        workerpoolRegistry.setPolicy(workerpool, 101, 1);
        vm.expectRevert(abi.encodeWithSelector(InvalidPolicy.selector, 30, 51));
        workerpoolRegistry.setPolicy(workerpool, 30, 51);
        vm.expectRevert(abi.encodeWithSelector(InvalidPolicy.selector, 2 ** 255, 0));
        Workerpool(workerpool).changePolicy(2 ** 255, 0);
        vm.stopPrank();
    }

    function test_NotAssetOwner() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotAssetOwner.selector, workerpool, stranger));
        workerpoolRegistry.setPolicy(workerpool, 10, 10);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotAssetOwner.selector, workerpool, stranger));
        Workerpool(workerpool).changePolicy(10, 10);
    }

    function test_UnknownAsset() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(UnknownAsset.selector, stranger));
        workerpoolRegistry.setPolicy(stranger, 10, 10);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(UnknownAsset.selector, stranger));
        workerpoolRegistry.setPolicyFromWorkerpool(10, 10);
        vm.expectRevert(abi.encodeWithSelector(UnknownAsset.selector, dataset));
        appRegistry.viewApp(dataset);
        vm.expectRevert(abi.encodeWithSelector(UnknownAsset.selector, app));
        datasetRegistry.viewDataset(app);
        vm.expectRevert(abi.encodeWithSelector(UnknownAsset.selector, app));
        workerpoolRegistry.viewWorkerpool(app);
    }
}
