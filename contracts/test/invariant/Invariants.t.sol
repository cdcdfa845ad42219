// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {console} from "forge-std/console.sol";
import {PocoFixture} from "../utils/PocoFixture.sol";
import {PocoHandler} from "./PocoHandler.sol";
import {RecordingConsumer, RefusingConsumer, BulkyConsumer} from "./Consumers.sol";

/// @notice Handler-based invariants of poco: money conservation against the handler's own
/// ledger, and the property the protocol exists for: no party ends with more than it started
/// with, except through payments by other parties for work that reached consensus.
///
/// `PocoHandler` drives plain, sponsored, partly filled, dataset, committee, TEE and callback
/// deals through contributions (wrong ones and look-alike votes included), reveals,
/// finalizations, reopenings, claims and the trust-1 fast path, with replays of finished
/// tasks, order closes, policy changes, deposits, withdrawals, pool joins, leaves and bond
/// releases, scores and time warps; and an attacker owning an app, a workerpool, a requester
/// account and four workers, who self-deals, griefs the honest pool, churns in it, copies the
/// consensus and makes calls that must fail. Every handler call must succeed (fail-on-revert).
/// Runs and depth are in foundry.toml's `[invariant]` section.
contract InvariantsTest is PocoFixture {
    PocoHandler internal handler;
    address internal attacker;

    function setUp() public override {
        super.setUp();
        fund(beneficiary, 0);
        address[] memory honest = new address[](10);
        for (uint256 i; i < 10; ++i) {
            honest[i] = i < NUM_WORKERS ? workers[i] : newWorker(i);
        }
        uint256 attackerKey;
        (attacker, attackerKey) = makeAddrAndKey("attacker");
        fund(attacker, INITIAL_DEPOSIT);
        (address attackerRequester, uint256 attackerRequesterKey) =
            makeAddrAndKey("attacker requester");
        fund(attackerRequester, INITIAL_DEPOSIT);
        address[] memory attackerWorkers = new address[](4);
        for (uint256 i; i < 4; ++i) {
            attackerWorkers[i] = makeAddr(string.concat("attacker worker ", vm.toString(i)));
            fund(attackerWorkers[i], 100 * RLC_UNIT);
        }
        address attackerApp =
            appRegistry.createApp(attacker, "mine", "WASM", "ipfs://mine", keccak256("m"), "");
        address attackerPool = workerpoolRegistry.createWorkerpool(attacker, "my pool");
        address[] memory consumers = new address[](3);
        consumers[0] = address(new RecordingConsumer());
        consumers[1] = address(new RefusingConsumer());
        consumers[2] = address(new BulkyConsumer());

        handler = new PocoHandler(
            poco,
            rlc,
            workerpoolRegistry,
            PocoHandler.Actors({
                requester: requester,
                requesterKey: requesterKey,
                requester2: stranger,
                requester2Key: strangerKey,
                sponsor: sponsor,
                appOwner: appOwner,
                appOwnerKey: appOwnerKey,
                datasetOwner: datasetOwner,
                datasetOwnerKey: datasetOwnerKey,
                scheduler: scheduler,
                schedulerKey: schedulerKey,
                beneficiary: beneficiary,
                enclave: enclave,
                enclaveKey: enclaveKey,
                attacker: attacker,
                attackerKey: attackerKey,
                attackerRequester: attackerRequester,
                attackerRequesterKey: attackerRequesterKey,
                app: app,
                dataset: dataset,
                pool: workerpool,
                attackerApp: attackerApp,
                attackerPool: attackerPool
            }),
            honest,
            attackerWorkers,
            consumers
        );

        bytes4[] memory selectors = new bytes4[](22);
        selectors[0] = PocoHandler.matchPlain.selector;
        selectors[1] = PocoHandler.matchCommittee.selector;
        selectors[2] = PocoHandler.matchTee.selector;
        selectors[3] = PocoHandler.contribute.selector;
        selectors[4] = PocoHandler.contributeCommittee.selector;
        selectors[5] = PocoHandler.reveal.selector;
        selectors[6] = PocoHandler.finalize.selector;
        selectors[7] = PocoHandler.reopen.selector;
        selectors[8] = PocoHandler.claim.selector;
        selectors[9] = PocoHandler.contributeAndFinalize.selector;
        selectors[10] = PocoHandler.replayFinished.selector;
        selectors[11] = PocoHandler.closeOrder.selector;
        selectors[12] = PocoHandler.changePolicy.selector;
        selectors[13] = PocoHandler.moveFunds.selector;
        selectors[14] = PocoHandler.membership.selector;
        selectors[15] = PocoHandler.warp.selector;
        selectors[16] = PocoHandler.setScore.selector;
        selectors[17] = PocoHandler.attackSelfDeal.selector;
        selectors[18] = PocoHandler.attackGrief.selector;
        selectors[19] = PocoHandler.attackForbidden.selector;
        selectors[20] = PocoHandler.attackChurn.selector;
        selectors[21] = PocoHandler.attackLookAlike.selector;
        targetSelector(FuzzSelector(address(handler), selectors));
        targetContract(address(handler));
    }

    // ================================================================== money

    /// (a) Every account holds what the handler's ledger says: balance + frozen equals the
    /// total computed from the rules, and the frozen part equals the frozen part computed.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_a_accountsMatchLedger() public view {
        address[] memory list = handler.accounts();
        for (uint256 i; i < list.length; ++i) {
            address account = list[i];
            uint256 total = poco.balanceOf(account) + poco.frozenOf(account);
            if (total != handler.expTotal(account)) {
                assertEq(total, handler.expTotal(account), _about("total of", account));
            }
            if (poco.frozenOf(account) != handler.expFrozen(account)) {
                assertEq(
                    poco.frozenOf(account), handler.expFrozen(account), _about("frozen of", account)
                );
            }
        }
        assertEq(poco.balanceOf(BURN_ACCOUNT), 0, "the burn account has a free balance");
    }

    /// (b) The RLC poco holds is the sum of every account's balance and frozen part (burn
    /// account included), and the sum of the ledger's totals.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_b_rlcHeldEqualsAccounts() public view {
        address[] memory list = handler.accounts();
        uint256 sum;
        uint256 expected;
        for (uint256 i; i < list.length; ++i) {
            sum += poco.balanceOf(list[i]) + poco.frozenOf(list[i]);
            expected += handler.expTotal(list[i]);
        }
        assertEq(rlc.balanceOf(address(poco)), sum, "RLC held != sum of the accounts");
        assertEq(rlc.balanceOf(address(poco)), expected, "RLC held != sum of the ledger");
    }

    // ================================================================== the party property

    /// (f) No party ends with more than it started with, except through payments by other
    /// parties for work that reached consensus: for every party, wallet RLC + balance + frozen
    /// of all its accounts <= what they held at the start + what it was allowed to gain (the
    /// prices other parties paid for tasks that reached consensus, and what such tasks seized
    /// from other parties).
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_f_noPartyGainsWithoutConsensus() public view {
        uint256 parties = handler.partyCount();
        for (uint256 p = 1; p <= parties; ++p) {
            uint256 holdings = _partyHoldings(p);
            uint256 bound = handler.partyStart(p) + handler.partyAllowed(p);
            if (holdings > bound) {
                address first = handler.partyAccounts(p)[0];
                assertLe(holdings, bound, _about("gain beyond its allowance: party of", first));
            }
        }
    }

    /// (g) The same property for the attacker alone, and no adversarial call ever succeeded.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_g_attackerNeverProfits() public view {
        uint256 p = handler.attackerParty();
        assertLe(
            _partyHoldings(p),
            handler.partyStart(p) + handler.partyAllowed(p),
            "the attacker's accounts gained beyond payments for work that reached consensus"
        );
        assertEq(handler.violations(), 0, handler.lastViolation());
    }

    // ================================================================== bookkeeping

    /// (c) No order is consumed beyond its volume, and each is consumed exactly as matched or
    /// closed.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_c_ordersWithinVolume() public view {
        bytes32[] memory hashes = handler.orders();
        for (uint256 i; i < hashes.length; ++i) {
            uint256 consumed = poco.viewConsumed(hashes[i]);
            assertLe(consumed, handler.orderVolume(hashes[i]), "order consumed beyond its volume");
            assertEq(consumed, handler.expConsumed(hashes[i]), "order consumption");
        }
    }

    /// (d) A task is paid at most once, a COMPLETED or FAILED task stays so, and every task
    /// the handler touched is in the status the model says.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_d_tasksPaidOnceAndFinal() public view {
        bytes32[] memory all = handler.taskList();
        for (uint256 i; i < all.length; ++i) {
            (uint8 expected, uint256 payments) = handler.taskState(all[i]);
            assertLe(payments, 1, "a task was paid twice");
            assertEq(status(all[i]), expected, "task status");
        }
        bytes32[] memory done = handler.finishedList();
        for (uint256 i; i < done.length; ++i) {
            assertEq(status(done[i]), handler.finalStatus(done[i]), "a final status changed");
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

    /// (h) Scores, memberships (active flag and bond left) and active member counts are what
    /// the rules make them.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_h_scoresAndMemberships() public view {
        address[] memory list = handler.allWorkers();
        address[] memory pools = handler.pools();
        for (uint256 i; i < list.length; ++i) {
            uint256 score = poco.viewScore(list[i]);
            if (score != handler.expScore(list[i])) {
                assertEq(score, handler.expScore(list[i]), _about("score of", list[i]));
            }
            for (uint256 k; k < pools.length; ++k) {
                Membership memory m = poco.viewMembership(pools[k], list[i]);
                (bool exists, bool active, uint256 bond) = handler.expMember(pools[k], list[i]);
                if (m.active != active || m.bond != (exists ? bond : 0)) {
                    assertEq(m.active, active, _about("membership of", list[i]));
                    assertEq(m.bond, exists ? bond : 0, _about("bond of", list[i]));
                }
            }
        }
        for (uint256 k; k < pools.length; ++k) {
            assertEq(poco.countMembers(pools[k]), handler.expActive(pools[k]), "active members");
        }
    }

    // ================================================================== reach

    /// Prints what the run reached, and requires a claim, a reopen and a committee
    /// contribution in every full run.
    function afterInvariant() public view {
        console.log(
            "reach summary: runs x depth = %d x %d; this run: %d handler calls",
            handler.RUNS(),
            handler.DEPTH(),
            handler.handlerCalls()
        );
        for (uint256 i; i < handler.counterCount(); ++i) {
            console.log(string.concat("  ", handler.counterName(i), ":"), handler.counter(i));
        }
        uint256 p = handler.attackerParty();
        uint256 holdings = _partyHoldings(p);
        uint256 start = handler.partyStart(p);
        console.log("  attacker holdings - start (nRLC, signed):");
        console.logInt(int256(holdings) - int256(start));
        console.log("  attacker allowed gain (nRLC):", handler.partyAllowed(p));
        // A replayed or shrunk counterexample is shorter than a run: only full runs must reach.
        if (handler.handlerCalls() < handler.DEPTH()) return;
        assertGt(handler.claims(), 0, "the run reached no claim");
        assertGt(handler.reopens(), 0, "the run reached no reopen");
        assertGt(handler.committeeContributions(), 0, "the run reached no committee contribution");
    }

    // ================================================================== helpers

    function _partyHoldings(uint256 p) internal view returns (uint256 total) {
        address[] memory list = handler.partyAccounts(p);
        for (uint256 i; i < list.length; ++i) {
            total += rlc.balanceOf(list[i]) + poco.balanceOf(list[i]) + poco.frozenOf(list[i]);
        }
    }

    function _about(string memory what, address account) internal view returns (string memory) {
        return string.concat(what, " ", vm.getLabel(account));
    }
}
