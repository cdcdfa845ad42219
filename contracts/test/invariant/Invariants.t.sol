// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {PocoFixture} from "../utils/PocoFixture.sol";
import {PocoHandler} from "./PocoHandler.sol";

/// @notice Handler-based invariants of poco's escrow and task lifecycle. The handler matches
/// deals (plain and sponsored, partial fills, with and without dataset), contributes, reveals,
/// reopens, finalizes, claims, takes the fast path, replays finished tasks, closes offers,
/// changes the pool policy, deposits, withdraws and warps time. Every call it makes must succeed
/// (fail-on-revert). Runs and depth are in foundry.toml's `[invariant]` section.
contract InvariantsTest is PocoFixture {
    PocoHandler internal handler;

    function setUp() public override {
        super.setUp();
        address[] memory accounts = new address[](7 + NUM_WORKERS);
        accounts[0] = requester;
        accounts[1] = stranger;
        accounts[2] = appOwner;
        accounts[3] = datasetOwner;
        accounts[4] = scheduler;
        accounts[5] = sponsor;
        accounts[6] = beneficiary;
        for (uint256 i; i < NUM_WORKERS; ++i) {
            accounts[7 + i] = workers[i];
        }
        handler = new PocoHandler(
            poco,
            rlc,
            workerpoolRegistry,
            PocoHandler.Actors({
                requester: requester,
                requesterKey: requesterKey,
                requester2: stranger,
                requester2Key: strangerKey,
                appOwner: appOwner,
                appOwnerKey: appOwnerKey,
                datasetOwner: datasetOwner,
                datasetOwnerKey: datasetOwnerKey,
                scheduler: scheduler,
                schedulerKey: schedulerKey,
                sponsor: sponsor,
                app: app,
                dataset: dataset,
                workerpool: workerpool
            }),
            workers,
            accounts
        );
        // The beneficiary never receives RLC; give it a wallet so deposits and withdrawals
        // from it are exercised too.
        fund(beneficiary, 0);

        bytes4[] memory selectors = new bytes4[](10);
        selectors[0] = PocoHandler.matchDeal.selector;
        selectors[1] = PocoHandler.contribute.selector;
        selectors[2] = PocoHandler.reveal.selector;
        selectors[3] = PocoHandler.finalize.selector;
        selectors[4] = PocoHandler.reopen.selector;
        selectors[5] = PocoHandler.claim.selector;
        selectors[6] = PocoHandler.contributeAndFinalize.selector;
        selectors[7] = PocoHandler.replayFinished.selector;
        selectors[8] = PocoHandler.warp.selector;
        selectors[9] = PocoHandler.misc.selector;
        targetSelector(FuzzSelector(address(handler), selectors));
        targetContract(address(handler));
    }

    /// (a) The RLC held by poco is exactly the sum of every account's balance and frozen
    /// amount, the kitty's included.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_a_rlcHeldEqualsAccounts() public view {
        address[] memory accounts = handler.accounts();
        uint256 sum = poco.frozenOf(KITTY) + poco.balanceOf(KITTY);
        for (uint256 i; i < accounts.length; ++i) {
            sum += poco.balanceOf(accounts[i]) + poco.frozenOf(accounts[i]);
        }
        assertEq(rlc.balanceOf(address(poco)), sum, "RLC held != accounts");
        assertEq(poco.balanceOf(KITTY), 0, "kitty has a free balance");
    }

    /// (b) Every frozen amount is backed by what the ghost bookkeeping says it must hold:
    /// outstanding deal prices, scheduler stakes, worker stakes, and the kitty.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_b_frozenMatchesObligations() public view {
        address[] memory accounts = handler.accounts();
        for (uint256 i; i < accounts.length; ++i) {
            assertEq(poco.frozenOf(accounts[i]), handler.ghostFrozen(accounts[i]), "frozen");
        }
        assertEq(poco.frozenOf(KITTY), handler.ghostFrozen(KITTY), "kitty");
    }

    /// (c) No order is consumed beyond its volume.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_c_noOrderOverconsumed() public view {
        bytes32[] memory hashes = handler.orders();
        for (uint256 i; i < hashes.length; ++i) {
            assertLe(poco.viewConsumed(hashes[i]), handler.orderVolume(hashes[i]), "consumed");
        }
    }

    /// (d) A task is paid at most once, and a COMPLETED or FAILED task stays so.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_d_taskPaidAtMostOnce() public view {
        bytes32[] memory done = handler.finished();
        for (uint256 i; i < done.length; ++i) {
            assertEq(handler.payments(done[i]), 1, "payments");
            assertEq(status(done[i]), handler.ghostStatus(done[i]), "final status changed");
        }
        bytes32[] memory all = handler.tasks();
        for (uint256 i; i < all.length; ++i) {
            assertLe(handler.payments(all[i]), 1, "payments");
        }
    }

    /// (e) A stored deal hash never changes once written.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_e_dealHashesNeverChange() public view {
        uint256 n = handler.dealCount();
        for (uint256 i; i < n; ++i) {
            (Deal memory deal, bytes32 dealid, bytes32 hash) = handler.dealAt(i);
            assertEq(poco.viewDealHash(dealid), hash, "deal hash changed");
            assertEq(keccak256(abi.encode(deal)), hash, "deal record");
        }
    }
}
