// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "./utils/PocoFixture.sol";
import {ERC1271Wallet} from "./utils/Mocks.sol";
import {OrderHashing} from "./utils/OrderHashing.sol";
import {IPoco} from "../src/interfaces/IPoco.sol";

/// @notice Who may sign orders, and how (protocol.md §1.7, §1.8): EOA signatures of 65 and 64
/// bytes, no malleable ones, ERC-1271 contract owners, presignatures and closes (by the owner or
/// by the owner's signed operation), and the loss of every order on an asset transfer.
contract SignaturesTest is PocoFixture {
    /// secp256k1 group order.
    uint256 internal constant N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    uint256 internal constant SIGN = 0;
    uint256 internal constant CLOSE = 1;

    // ================================================================== EOA signatures

    function test_eoa65ByteSignatureAccepted() public {
        OrderSet memory s = signAll(defaultOrders());
        assertEq(s.app.sign.length, 65);
        assertTrue(poco.verifySignature(appOwner, hashApp(s.app), s.app.sign));
        assertFalse(poco.verifySignature(datasetOwner, hashApp(s.app), s.app.sign));
        matchSet(s);
        assertEq(poco.viewConsumed(hashApp(s.app)), 1);
    }

    function test_eoa64ByteSignatureAccepted() public {
        OrderSet memory s = defaultOrders();
        s.app.sign = sign64(appOwnerKey, hashApp(s.app));
        s.dataset.sign = sign64(datasetOwnerKey, hashDataset(s.dataset));
        s.workerpool.sign = sign64(schedulerKey, hashWorkerpool(s.workerpool));
        s.request.sign = sign64(requesterKey, hashRequest(s.request));
        assertEq(s.app.sign.length, 64);
        assertTrue(poco.verifySignature(appOwner, hashApp(s.app), s.app.sign));
        (bytes32 dealid,) = matchSet(s);
        assertTrue(poco.viewDealHash(dealid) != bytes32(0));
    }

    /// The same signature in (r, s, v) and (r, vs) forms, for a key whose `v` is 28 as well.
    function testFuzz_compactAndFullFormsAgree(uint256 key, bytes32 digest) public pure {
        key = bound(key, 1, N - 1);
        address signerAddress = vm.addr(key);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        assertEq(ecrecover(digest, v, r, s), signerAddress);
        bytes memory compact = sign64(key, digest);
        (bytes32 cr, bytes32 vs) = abi.decode(compact, (bytes32, bytes32));
        assertEq(cr, r);
        assertEq(uint256(vs) >> 255, v - 27);
    }

    function test_malleableHighSSignatureRefused() public {
        OrderSet memory s = signAll(defaultOrders());
        bytes32 digest = hashApp(s.app);
        (uint8 v, bytes32 r, bytes32 lowS) = vm.sign(appOwnerKey, digest);
        bytes32 highS = bytes32(N - uint256(lowS));
        uint8 flippedV = v == 27 ? 28 : 27;
        // The twin signature is valid for raw ecrecover...
        assertEq(ecrecover(digest, flippedV, r, highS), appOwner);
        bytes memory malleable = abi.encodePacked(r, highS, flippedV);
        // ...but poco refuses it.
        assertFalse(poco.verifySignature(appOwner, digest, malleable));
        s.app.sign = malleable;
        expectMatchRevert(s, abi.encodeWithSelector(InvalidAppOrderSignature.selector, appOwner));
    }

    function test_malformedSignaturesRefused() public {
        OrderSet memory s = signAll(defaultOrders());
        bytes32 digest = hashApp(s.app);
        bytes memory good = s.app.sign;
        assertFalse(poco.verifySignature(appOwner, digest, ""));
        assertFalse(poco.verifySignature(appOwner, digest, abi.encodePacked(good, uint8(0))));
        bytes memory badV = abi.encodePacked(good);
        badV[64] = bytes1(uint8(29));
        assertFalse(poco.verifySignature(appOwner, digest, badV));
        // The zero address never signs.
        assertFalse(poco.verifySignature(address(0), digest, good));
    }

    // ================================================================== ERC-1271

    function test_erc1271WalletOwningAnAppSignsOrders() public {
        ERC1271Wallet wallet = new ERC1271Wallet(stranger);
        address walletApp = appRegistry.createApp(
            address(wallet), "wallet app", "WASM", "ipfs://w", keccak256("w"), ""
        );
        OrderSet memory s = defaultOrders();
        s.app.app = walletApp;
        s.request.app = walletApp;
        signAll(s);
        // Signed by the app's deployer key rather than the wallet's signer: refused.
        expectMatchRevert(
            s, abi.encodeWithSelector(InvalidAppOrderSignature.selector, address(wallet))
        );
        // Signed by the wallet's signer: the wallet answers ERC-1271, accepted.
        signApp(s.app, strangerKey);
        assertTrue(poco.verifySignature(address(wallet), hashApp(s.app), s.app.sign));
        (, Deal memory deal) = matchSet(s);
        assertEq(deal.appOwner, address(wallet));
    }

    function test_erc1271WalletPresignsOrders() public {
        ERC1271Wallet wallet = new ERC1271Wallet(stranger);
        address walletApp = appRegistry.createApp(
            address(wallet), "wallet app", "WASM", "ipfs://w", keccak256("w"), ""
        );
        OrderSet memory s = signAll(defaultOrders());
        s.app.app = walletApp;
        s.request.app = walletApp;
        signRequest(s.request, requesterKey);
        s.app.sign = "";
        vm.prank(stranger);
        wallet.execute(
            address(poco),
            abi.encodeCall(
                IPoco.manageAppOrder, (AppOrderOperation(s.app, OrderOperation.SIGN, ""))
            )
        );
        assertEq(poco.viewPresigned(hashApp(s.app)), address(wallet));
        matchSet(s);
    }

    /// An ERC-1271 wallet's signature of an operation authorizes it, sent by anyone.
    function test_erc1271WalletSignsOperation() public {
        ERC1271Wallet wallet = new ERC1271Wallet(stranger);
        address walletApp = appRegistry.createApp(
            address(wallet), "wallet app", "WASM", "ipfs://w", keccak256("w"), ""
        );
        AppOrder memory o = appOrder();
        o.app = walletApp;
        bytes memory sign = sign65(
            strangerKey,
            OrderHashing.digest(domainSeparator(), OrderHashing.hashOperation(o, CLOSE))
        );
        vm.prank(requester);
        poco.manageAppOrder(AppOrderOperation(o, OrderOperation.CLOSE, sign));
        assertEq(poco.viewConsumed(hashApp(o)), o.volume);
    }

    // ================================================================== presign and close

    function test_presignByOwner() public {
        OrderSet memory s = signAll(defaultOrders());
        s.app.sign = "";
        bytes32 appHash = hashApp(s.app);
        vm.expectEmit(address(poco));
        emit SignedAppOrder(appHash);
        vm.prank(appOwner);
        poco.manageAppOrder(AppOrderOperation(s.app, OrderOperation.SIGN, ""));
        assertEq(poco.viewPresigned(appHash), appOwner);
        matchSet(s);
        assertEq(poco.viewConsumed(appHash), 1);
    }

    function test_presignAllFourOrdersByOwners() public {
        OrderSet memory s = defaultOrders();
        vm.prank(appOwner);
        poco.manageAppOrder(AppOrderOperation(s.app, OrderOperation.SIGN, ""));
        vm.expectEmit(address(poco));
        emit SignedDatasetOrder(hashDataset(s.dataset));
        vm.prank(datasetOwner);
        poco.manageDatasetOrder(DatasetOrderOperation(s.dataset, OrderOperation.SIGN, ""));
        vm.expectEmit(address(poco));
        emit SignedWorkerpoolOrder(hashWorkerpool(s.workerpool));
        vm.prank(scheduler);
        poco.manageWorkerpoolOrder(WorkerpoolOrderOperation(s.workerpool, OrderOperation.SIGN, ""));
        vm.expectEmit(address(poco));
        emit SignedRequestOrder(hashRequest(s.request));
        vm.prank(requester);
        poco.manageRequestOrder(RequestOrderOperation(s.request, OrderOperation.SIGN, ""));
        matchSet(s);
    }

    /// The owner signs the operation off-chain; someone else sends it.
    function test_presignByOwnerSignedOperationSentByAnother() public {
        OrderSet memory s = signAll(defaultOrders());
        s.request.sign = "";
        bytes memory opSign = sign65(
            requesterKey,
            OrderHashing.digest(domainSeparator(), OrderHashing.hashOperation(s.request, SIGN))
        );
        vm.prank(stranger);
        poco.manageRequestOrder(RequestOrderOperation(s.request, OrderOperation.SIGN, opSign));
        assertEq(poco.viewPresigned(hashRequest(s.request)), requester);
        matchSet(s);

        // The operation signature is bound to the operation: it does not close the order.
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, requester));
        poco.manageRequestOrder(RequestOrderOperation(s.request, OrderOperation.CLOSE, opSign));
    }

    function test_presignedOrderOfAnotherOwnerIsRefused() public {
        OrderSet memory s = signAll(defaultOrders());
        // The stranger presigns "its" request naming the requester: the presign records the
        // order's owner only when the caller is that owner, so this is refused.
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, requester));
        poco.manageRequestOrder(RequestOrderOperation(s.request, OrderOperation.SIGN, ""));
        s.request.sign = "";
        expectMatchRevert(
            s, abi.encodeWithSelector(InvalidRequestOrderSignature.selector, requester)
        );
    }

    function test_closeByOwner() public {
        OrderSet memory s = signedOrders(1, 1);
        bytes32 appHash = hashApp(s.app);
        vm.expectEmit(address(poco));
        emit ClosedAppOrder(appHash);
        vm.prank(appOwner);
        poco.manageAppOrder(AppOrderOperation(s.app, OrderOperation.CLOSE, ""));
        assertEq(poco.viewConsumed(appHash), s.app.volume);
        expectMatchRevert(s, abi.encodeWithSelector(NoVolumeLeft.selector));
    }

    function test_closeEachOrderKind() public {
        OrderSet memory s = signedOrders(1, 1);
        vm.expectEmit(address(poco));
        emit ClosedDatasetOrder(hashDataset(s.dataset));
        vm.prank(datasetOwner);
        poco.manageDatasetOrder(DatasetOrderOperation(s.dataset, OrderOperation.CLOSE, ""));
        assertEq(poco.viewConsumed(hashDataset(s.dataset)), s.dataset.volume);
        expectMatchRevert(s, abi.encodeWithSelector(NoVolumeLeft.selector));

        vm.expectEmit(address(poco));
        emit ClosedRequestOrder(hashRequest(s.request));
        vm.prank(requester);
        poco.manageRequestOrder(RequestOrderOperation(s.request, OrderOperation.CLOSE, ""));
        assertEq(poco.viewConsumed(hashRequest(s.request)), s.request.volume);
    }

    /// A partially consumed order closed by a signed operation sent by someone else.
    function test_closeBySignedOperationAfterPartialFill() public {
        OrderSet memory s = signedOrders(1, 1);
        s.workerpool.volume = 5;
        signAll(s);
        matchSet(s);
        bytes32 wpHash = hashWorkerpool(s.workerpool);
        assertEq(poco.viewConsumed(wpHash), 1);
        bytes memory opSign = sign65(
            schedulerKey,
            OrderHashing.digest(domainSeparator(), OrderHashing.hashOperation(s.workerpool, CLOSE))
        );
        vm.prank(stranger);
        poco.manageWorkerpoolOrder(
            WorkerpoolOrderOperation(s.workerpool, OrderOperation.CLOSE, opSign)
        );
        assertEq(poco.viewConsumed(wpHash), 5);
        s.request.salt = keccak256("another request");
        signAll(s);
        expectMatchRevert(s, abi.encodeWithSelector(NoVolumeLeft.selector));
    }

    // ================================================================== asset transfers

    function test_transferredAppVoidsOldOwnersOrders() public {
        address newOwner;
        uint256 newOwnerKey;
        (newOwner, newOwnerKey) = makeAddrAndKey("newAppOwner");
        OrderSet memory signedSet = signAll(defaultOrders());

        OrderSet memory presignedSet = signAll(defaultOrders());
        presignedSet.app.salt = keccak256("presigned");
        presignedSet.app.sign = "";
        vm.prank(appOwner);
        poco.manageAppOrder(AppOrderOperation(presignedSet.app, OrderOperation.SIGN, ""));

        vm.prank(appOwner);
        appRegistry.transferFrom(appOwner, newOwner, uint256(uint160(app)));

        expectMatchRevert(
            signedSet, abi.encodeWithSelector(InvalidAppOrderSignature.selector, newOwner)
        );
        expectMatchRevert(
            presignedSet, abi.encodeWithSelector(InvalidAppOrderSignature.selector, newOwner)
        );
        // The old owner can no longer manage the app's orders either.
        vm.prank(appOwner);
        vm.expectRevert(abi.encodeWithSelector(NotOrderOwner.selector, newOwner));
        poco.manageAppOrder(AppOrderOperation(signedSet.app, OrderOperation.SIGN, ""));

        // The new owner's signature works, and the deal pays the new owner.
        signApp(signedSet.app, newOwnerKey);
        (, Deal memory deal) = matchSet(signedSet);
        assertEq(deal.appOwner, newOwner);
    }

    function test_transferredWorkerpoolChangesScheduler() public {
        (address newScheduler, uint256 newSchedulerKey) = makeAddrAndKey("newScheduler");
        fund(newScheduler, INITIAL_DEPOSIT);
        OrderSet memory s = signAll(defaultOrders());
        vm.prank(scheduler);
        workerpoolRegistry.transferFrom(scheduler, newScheduler, uint256(uint160(workerpool)));
        expectMatchRevert(
            s, abi.encodeWithSelector(InvalidWorkerpoolOrderSignature.selector, newScheduler)
        );
        signWorkerpool(s.workerpool, newSchedulerKey);
        (, Deal memory deal) = matchSet(s);
        assertEq(deal.scheduler, newScheduler);
        assertEq(frz(newScheduler), percent(WP_PRICE, 30));
        assertEq(frz(scheduler), 0);
    }
}
