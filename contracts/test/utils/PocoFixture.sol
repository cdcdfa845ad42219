// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";
import {TestBase} from "forge-std/Base.sol";
import {StdAssertions} from "forge-std/StdAssertions.sol";
import {StdInvariant} from "forge-std/StdInvariant.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {IPoco, IPocoEvents} from "../../src/interfaces/IPoco.sol";
import {IPocoErrors} from "../../src/interfaces/IPocoErrors.sol";
import {RLC} from "../../src/token/RLC.sol";
import {AppRegistry} from "../../src/registries/Apps.sol";
import {DatasetRegistry} from "../../src/registries/Datasets.sol";
import {WorkerpoolRegistry} from "../../src/registries/Workerpools.sol";
import {OrderHashing} from "./OrderHashing.sol";

/// @notice Shared deployment and helpers of the poco test suite.
/// The contracts are deployed from their build artifacts (`deployCode`), so a test file does not
/// embed (and recompile) their bytecode. Setup: RLC, the three registries, the task module and
/// Poco; named actors funded with RLC and an escrow deposit; one app, one dataset, one
/// workerpool. Helpers build and sign the four orders, match them, recover the `Deal` from
/// `DealCreated`, sign worker authorizations and enclave results, and drive the task lifecycle.
/// It leaves out forge-std's `StdCheats` (whose `Account` struct clashes with `IPocoTypes.Account`)
/// and brings its own `makeAddr`, `makeAddrAndKey` and `deployCode`.
abstract contract PocoFixture is
    TestBase,
    StdAssertions,
    StdUtils,
    StdInvariant,
    IPocoEvents,
    IPocoErrors
{
    bool public IS_TEST = true;

    // ------------------------------------------------------------------ constants
    uint256 internal constant RLC_UNIT = 1e9;
    uint256 internal constant APP_PRICE = 3 * RLC_UNIT;
    uint256 internal constant DATASET_PRICE = 1 * RLC_UNIT;
    /// 7 nRLC of dust make every percentage round.
    uint256 internal constant WP_PRICE = 20 * RLC_UNIT + 7;
    uint256 internal constant WALLET_RLC = 1_000_000 * RLC_UNIT;
    uint256 internal constant INITIAL_DEPOSIT = 10_000 * RLC_UNIT;
    uint256 internal constant NUM_WORKERS = 6;
    /// Category 0 (XS): T = 300 s.
    uint256 internal constant XS = 0;
    uint256 internal constant T_XS = 300;
    address internal constant BURN_ACCOUNT = 0x000000000000000000000000000000000000dEaD;
    bytes32 internal constant STORAGE_LOCATION =
        0xead258fb6175f388339f52c25147b390ee515d7673a97ddadff4ce845ca04f00;
    bytes32 internal constant TEE_TAG = bytes32(uint256(1));
    bytes32 internal constant COMMITTEE_TAG = bytes32(uint256(1 << 9));
    uint256 internal constant MEMBER_BOND = 10 * RLC_UNIT;
    uint256 internal constant SEAT_PENALTY = 1 * RLC_UNIT;
    /// The committee seed delay the fixture deploys with: the draw of a deal matched in block
    /// b is seeded by the hash of block b + 2.
    uint256 internal constant SEED_DELAY = 2;
    uint256 internal constant SCORE_PERIOD = 1 days;
    uint256 internal constant MAX_CONTRIBUTORS = 32;
    uint256 internal constant CALLBACK_GAS = 200_000;
    uint256 internal constant AMOUNT_MAX = type(uint96).max;

    uint8 internal constant UNSET = 0;
    uint8 internal constant ACTIVE = 1;
    uint8 internal constant REVEALING = 2;
    uint8 internal constant COMPLETED = 3;
    uint8 internal constant FAILED = 4;

    bytes32 internal constant DIGEST_A = keccak256("result A");
    bytes32 internal constant DIGEST_B = keccak256("result B");
    bytes32 internal constant DIGEST_C = keccak256("result C");

    // ------------------------------------------------------------------ deployment
    RLC internal rlc;
    AppRegistry internal appRegistry;
    DatasetRegistry internal datasetRegistry;
    WorkerpoolRegistry internal workerpoolRegistry;
    address internal tasksModule;
    IPoco internal poco;

    // ------------------------------------------------------------------ actors
    address internal pocoOwner;
    address internal requester;
    uint256 internal requesterKey;
    address internal appOwner;
    uint256 internal appOwnerKey;
    address internal datasetOwner;
    uint256 internal datasetOwnerKey;
    address internal scheduler;
    uint256 internal schedulerKey;
    address internal sponsor;
    uint256 internal sponsorKey;
    address internal beneficiary;
    address internal enclave;
    uint256 internal enclaveKey;
    address internal stranger;
    uint256 internal strangerKey;
    address[] internal workers;

    // ------------------------------------------------------------------ assets
    address internal app;
    address internal dataset;
    address internal workerpool;

    /// The four orders of one match.
    struct OrderSet {
        AppOrder app;
        DatasetOrder dataset;
        WorkerpoolOrder workerpool;
        RequestOrder request;
    }

    function setUp() public virtual {
        pocoOwner = makeAddr("pocoOwner");
        (requester, requesterKey) = makeAddrAndKey("requester");
        (appOwner, appOwnerKey) = makeAddrAndKey("appOwner");
        (datasetOwner, datasetOwnerKey) = makeAddrAndKey("datasetOwner");
        (scheduler, schedulerKey) = makeAddrAndKey("scheduler");
        (sponsor, sponsorKey) = makeAddrAndKey("sponsor");
        (enclave, enclaveKey) = makeAddrAndKey("enclave");
        (stranger, strangerKey) = makeAddrAndKey("stranger");
        beneficiary = makeAddr("beneficiary");

        rlc = RLC(deployCode("RLC.sol:RLC"));
        appRegistry = AppRegistry(deployCode("Apps.sol:AppRegistry"));
        datasetRegistry = DatasetRegistry(deployCode("Datasets.sol:DatasetRegistry"));
        workerpoolRegistry = WorkerpoolRegistry(deployCode("Workerpools.sol:WorkerpoolRegistry"));
        tasksModule = deployCode("PocoTasks.sol:PocoTasks", abi.encode(SEED_DELAY));
        poco = IPoco(
            deployCode(
                "Poco.sol:Poco",
                abi.encode(
                    pocoOwner,
                    address(rlc),
                    address(appRegistry),
                    address(datasetRegistry),
                    address(workerpoolRegistry),
                    tasksModule
                )
            )
        );
        vm.label(address(poco), "poco");
        vm.label(BURN_ACCOUNT, "burned");

        app = appRegistry.createApp(appOwner, "app", "WASM", "ipfs://app", keccak256("app"), "");
        dataset = datasetRegistry.createDataset(
            datasetOwner, "dataset", "ipfs://dataset", keccak256("dataset")
        );
        workerpool = workerpoolRegistry.createWorkerpool(scheduler, "pool");

        fund(requester, INITIAL_DEPOSIT);
        fund(appOwner, INITIAL_DEPOSIT);
        fund(datasetOwner, INITIAL_DEPOSIT);
        fund(scheduler, INITIAL_DEPOSIT);
        fund(sponsor, INITIAL_DEPOSIT);
        fund(stranger, 0);
        for (uint256 i; i < NUM_WORKERS; ++i) {
            workers.push(newWorker(i));
        }
        rlc.approve(address(poco), type(uint256).max);
    }

    // ================================================================== cheats

    function makeAddrAndKey(string memory name) internal returns (address addr, uint256 key) {
        key = uint256(keccak256(abi.encodePacked(name)));
        addr = vm.addr(key);
        vm.label(addr, name);
    }

    function makeAddr(string memory name) internal returns (address addr) {
        (addr,) = makeAddrAndKey(name);
    }

    function deployCode(string memory artifact) internal returns (address) {
        return vm.deployCode(artifact);
    }

    function deployCode(string memory artifact, bytes memory args) internal returns (address) {
        return vm.deployCode(artifact, args);
    }

    // ================================================================== actors and funds

    /// Sends RLC to `account`, approves poco for it and deposits `depositAmount`.
    function fund(address account, uint256 depositAmount) internal {
        rlc.transfer(account, WALLET_RLC);
        vm.startPrank(account);
        rlc.approve(address(poco), type(uint256).max);
        if (depositAmount != 0) poco.deposit(depositAmount);
        vm.stopPrank();
    }

    /// A funded worker named `worker<i>`.
    function newWorker(uint256 i) internal returns (address worker) {
        worker = makeAddr(string.concat("worker", vm.toString(i)));
        fund(worker, INITIAL_DEPOSIT);
    }

    /// `count` fresh funded workers, sorted by address.
    function newWorkers(uint256 first, uint256 count) internal returns (address[] memory list) {
        list = new address[](count);
        for (uint256 i; i < count; ++i) {
            list[i] = newWorker(first + i);
        }
        list = sorted(list);
    }

    /// Deposits `amount` from the fixture's own RLC into the escrow account of `account`.
    function fundEscrow(address account, uint256 amount) internal {
        poco.depositFor(amount, account);
    }

    /// Makes the escrow balance of `account` exactly `amount` (its frozen part is untouched).
    function setBalance(address account, uint256 amount) internal {
        uint256 current = poco.balanceOf(account);
        vm.startPrank(account);
        if (current > amount) poco.withdraw(current - amount);
        else if (current < amount) poco.deposit(amount - current);
        vm.stopPrank();
    }

    /// Sets a worker's reputation score in storage. A score of a few hundred takes hundreds of
    /// replicated tasks to earn; tests that need one write it directly.
    function setScore(address worker, uint256 score) internal {
        bytes32 slot = keccak256(abi.encode(worker, STORAGE_LOCATION));
        uint256 word = uint256(vm.load(address(poco), slot));
        word = (word & ((uint256(1) << 192) - 1)) | (score << 192);
        vm.store(address(poco), slot, bytes32(word));
        assertEq(poco.viewScore(worker), score);
    }

    function bal(address account) internal view returns (uint256) {
        return poco.balanceOf(account);
    }

    function frz(address account) internal view returns (uint256) {
        return poco.frozenOf(account);
    }

    // ================================================================== signatures

    function domainSeparator() internal view returns (bytes32) {
        return OrderHashing.separator(block.chainid, address(poco));
    }

    function sign65(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// EIP-2098 compact signature (r, vs), computed by hand from the 65-byte one.
    function sign64(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        bytes32 vs = bytes32(uint256(s) | (uint256(v - 27) << 255));
        return abi.encodePacked(r, vs);
    }

    function ethSigned(bytes32 hash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", hash));
    }

    function hashApp(AppOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(domainSeparator(), OrderHashing.hash(o));
    }

    function hashDataset(DatasetOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(domainSeparator(), OrderHashing.hash(o));
    }

    function hashWorkerpool(WorkerpoolOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(domainSeparator(), OrderHashing.hash(o));
    }

    function hashRequest(RequestOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(domainSeparator(), OrderHashing.hash(o));
    }

    // ================================================================== orders

    function appOrder() internal view returns (AppOrder memory o) {
        o.app = app;
        o.appprice = APP_PRICE;
        o.volume = 100;
        o.salt = keccak256("app salt");
    }

    function datasetOrder() internal view returns (DatasetOrder memory o) {
        o.dataset = dataset;
        o.datasetprice = DATASET_PRICE;
        o.volume = 100;
        o.salt = keccak256("dataset salt");
    }

    function workerpoolOrder() internal view returns (WorkerpoolOrder memory o) {
        o.workerpool = workerpool;
        o.workerpoolprice = WP_PRICE;
        o.volume = 100;
        o.category = XS;
        o.trust = 100;
        o.salt = keccak256("workerpool salt");
    }

    function requestOrder() internal view returns (RequestOrder memory o) {
        o.app = app;
        o.appmaxprice = APP_PRICE;
        o.dataset = dataset;
        o.datasetmaxprice = DATASET_PRICE;
        o.workerpool = workerpool;
        o.workerpoolmaxprice = WP_PRICE;
        o.requester = requester;
        o.volume = 1;
        o.category = XS;
        o.trust = 1;
        o.beneficiary = beneficiary;
        o.params = '{"args":"--n 3"}';
        o.salt = keccak256("request salt");
    }

    /// The default orders, unsigned.
    function defaultOrders() internal view returns (OrderSet memory s) {
        s.app = appOrder();
        s.dataset = datasetOrder();
        s.workerpool = workerpoolOrder();
        s.request = requestOrder();
    }

    /// The default orders without a dataset, unsigned.
    function orderSetWithoutDataset() internal view returns (OrderSet memory s) {
        s = defaultOrders();
        DatasetOrder memory none;
        s.dataset = none;
        s.request.dataset = address(0);
        s.request.datasetmaxprice = 0;
    }

    function signApp(AppOrder memory o, uint256 key) internal view returns (AppOrder memory) {
        o.sign = sign65(key, hashApp(o));
        return o;
    }

    function signDataset(DatasetOrder memory o, uint256 key)
        internal
        view
        returns (DatasetOrder memory)
    {
        o.sign = sign65(key, hashDataset(o));
        return o;
    }

    function signWorkerpool(WorkerpoolOrder memory o, uint256 key)
        internal
        view
        returns (WorkerpoolOrder memory)
    {
        o.sign = sign65(key, hashWorkerpool(o));
        return o;
    }

    function signRequest(RequestOrder memory o, uint256 key)
        internal
        view
        returns (RequestOrder memory)
    {
        o.sign = sign65(key, hashRequest(o));
        return o;
    }

    /// Signs every order with its default owner's key (the dataset order only with a dataset).
    function signAll(OrderSet memory s) internal view returns (OrderSet memory) {
        signApp(s.app, appOwnerKey);
        if (s.dataset.dataset != address(0)) signDataset(s.dataset, datasetOwnerKey);
        signWorkerpool(s.workerpool, schedulerKey);
        signRequest(s.request, requesterKey);
        return s;
    }

    /// The default orders, signed, with the request asking for `trust` and `volume`.
    function signedOrders(uint256 trust, uint256 volume) internal view returns (OrderSet memory s) {
        s = defaultOrders();
        s.request.trust = trust;
        s.request.volume = volume;
        signAll(s);
    }

    // ================================================================== matching

    function matchSet(OrderSet memory s) internal returns (bytes32 dealid, Deal memory deal) {
        vm.recordLogs();
        dealid = poco.matchOrders(s.app, s.dataset, s.workerpool, s.request);
        deal = dealFromLogs(dealid);
    }

    function sponsorMatchSet(OrderSet memory s, address payer)
        internal
        returns (bytes32 dealid, Deal memory deal)
    {
        vm.recordLogs();
        vm.prank(payer);
        dealid = poco.sponsorMatchOrders(s.app, s.dataset, s.workerpool, s.request);
        deal = dealFromLogs(dealid);
    }

    /// Matches the default orders for `trust` and `volume`.
    function matchDefault(uint256 trust, uint256 volume)
        internal
        returns (bytes32 dealid, Deal memory deal)
    {
        return matchSet(signedOrders(trust, volume));
    }

    /// Expects `matchOrders` of `s` to revert with exactly `err`.
    function expectMatchRevert(OrderSet memory s, bytes memory err) internal {
        vm.expectRevert(err);
        poco.matchOrders(s.app, s.dataset, s.workerpool, s.request);
    }

    /// The deal of `dealid`, decoded from the `DealCreated` event among the recorded logs.
    function dealFromLogs(bytes32 dealid) internal returns (Deal memory deal) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(poco) && logs[i].topics[0] == DealCreated.selector
                    && logs[i].topics[1] == dealid
            ) {
                (deal,) = abi.decode(logs[i].data, (Deal, string));
                return deal;
            }
        }
        revert("DealCreated not found");
    }

    // ================================================================== committees

    /// Each worker of `list` bonds to the default workerpool.
    function joinPool(address[] memory list) internal {
        for (uint256 i; i < list.length; ++i) {
            vm.prank(list[i]);
            poco.joinWorkerpool(workerpool);
        }
    }

    /// The default orders with the committee tag, for `trust`, signed.
    function committeeOrders(uint256 trust) internal view returns (OrderSet memory s) {
        s = defaultOrders();
        s.workerpool.tag = COMMITTEE_TAG;
        s.request.tag = COMMITTEE_TAG;
        s.request.trust = trust;
        signAll(s);
    }

    /// Matches a committee deal of `trust`, gives its seed block the hash `seed` and moves the
    /// chain to the next block, where the committee can be drawn.
    function matchCommittee(uint256 trust, bytes32 seed)
        internal
        returns (bytes32 dealid, Deal memory deal)
    {
        (dealid, deal) = matchSet(committeeOrders(trust));
        seedCommittee(dealid, seed);
    }

    /// Gives the seed block of committee deal `dealid` the hash `seed` and moves the chain to
    /// the block after it.
    function seedCommittee(bytes32 dealid, bytes32 seed) internal {
        uint256 seedBlock = poco.viewDraw(dealid).seedBlock;
        vm.roll(seedBlock + 1);
        vm.setBlockhash(seedBlock, seed);
    }

    /// The member of the default workerpool holding seat `j` of `taskid`, drawn as the
    /// contract draws it: position keccak(seed, taskid, j) mod `memberCount`, read in the
    /// member list as it is now (tests that use it change no membership after the match).
    function seatHolder(bytes32 seed, bytes32 taskid, uint256 j, uint256 memberCount)
        internal
        view
        returns (address worker)
    {
        uint256 position = uint256(keccak256(abi.encode(seed, taskid, j))) % memberCount;
        (worker,) = poco.viewMember(workerpool, position);
    }

    /// How many of the `size` seats of `taskid` the worker holds.
    function seatsOf(
        bytes32 seed,
        bytes32 taskid,
        uint256 size,
        uint256 memberCount,
        address worker
    ) internal view returns (uint256 seats) {
        for (uint256 j; j < size; ++j) {
            if (seatHolder(seed, taskid, j, memberCount) == worker) ++seats;
        }
    }

    // ================================================================== ids and results

    function dealIdOf(bytes32 requestHash, uint256 botFirst) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(requestHash, botFirst));
    }

    function taskIdOf(bytes32 dealid, uint256 idx) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(dealid, idx));
    }

    function taskIdOf(Deal memory deal, uint256 idx) internal pure returns (bytes32) {
        return taskIdOf(dealIdOf(deal.requestHash, deal.botFirst), idx);
    }

    function resultHashOf(bytes32 taskid, bytes32 digest) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(taskid, digest));
    }

    function resultSealOf(address worker, bytes32 taskid, bytes32 digest)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(worker, taskid, digest));
    }

    /// The scheduler's authorization of `worker` on `taskid` (personal_sign).
    function authorization(address worker, bytes32 taskid, address enclaveChallenge)
        internal
        view
        returns (bytes memory)
    {
        return authorizationBy(schedulerKey, worker, taskid, enclaveChallenge);
    }

    function authorizationBy(uint256 key, address worker, bytes32 taskid, address challenge)
        internal
        pure
        returns (bytes memory)
    {
        return sign65(key, ethSigned(keccak256(abi.encodePacked(worker, taskid, challenge))));
    }

    /// The enclave's signature of (resultHash, resultSeal) (personal_sign).
    function enclaveSignature(uint256 key, bytes32 resultHash, bytes32 resultSeal)
        internal
        pure
        returns (bytes memory)
    {
        return sign65(key, ethSigned(keccak256(abi.encodePacked(resultHash, resultSeal))));
    }

    // ================================================================== lifecycle

    function contributeAs(Deal memory deal, uint256 idx, address worker, bytes32 digest)
        internal
        returns (bytes32 taskid)
    {
        taskid = taskIdOf(deal, idx);
        bytes memory auth = authorization(worker, taskid, address(0));
        vm.prank(worker);
        poco.contribute(
            deal,
            idx,
            resultHashOf(taskid, digest),
            resultSealOf(worker, taskid, digest),
            address(0),
            "",
            auth
        );
    }

    /// Expects `worker`'s (authorized) contribution to task `idx` of `deal` to revert with
    /// exactly `err`.
    function expectContributeRevert(Deal memory deal, uint256 idx, address worker, bytes memory err)
        internal
    {
        bytes32 taskid = taskIdOf(deal, idx);
        bytes memory auth = authorization(worker, taskid, address(0));
        vm.prank(worker);
        vm.expectRevert(err);
        poco.contribute(
            deal,
            idx,
            resultHashOf(taskid, DIGEST_B),
            resultSealOf(worker, taskid, DIGEST_B),
            address(0),
            "",
            auth
        );
    }

    /// A TEE contribution, with the fixture's enclave as challenge.
    function contributeTeeAs(Deal memory deal, uint256 idx, address worker, bytes32 digest)
        internal
        returns (bytes32 taskid)
    {
        taskid = taskIdOf(deal, idx);
        bytes32 resultHash = resultHashOf(taskid, digest);
        bytes32 resultSeal = resultSealOf(worker, taskid, digest);
        bytes memory enclaveSign = enclaveSignature(enclaveKey, resultHash, resultSeal);
        bytes memory auth = authorization(worker, taskid, enclave);
        vm.prank(worker);
        poco.contribute(deal, idx, resultHash, resultSeal, enclave, enclaveSign, auth);
    }

    function revealAs(bytes32 taskid, address worker, bytes32 digest) internal {
        vm.prank(worker);
        poco.reveal(taskid, digest);
    }

    function finalizeAs(
        Deal memory deal,
        uint256 idx,
        bytes32 digest,
        address[] memory contributors
    ) internal {
        vm.prank(deal.scheduler);
        poco.finalize(deal, idx, digest, "ipfs://result", "", contributors);
    }

    function contributeAndFinalizeAs(Deal memory deal, uint256 idx, address worker, bytes32 digest)
        internal
        returns (bytes32 taskid)
    {
        taskid = taskIdOf(deal, idx);
        bytes memory auth = authorization(worker, taskid, address(0));
        vm.prank(worker);
        poco.contributeAndFinalize(deal, idx, digest, "ipfs://result", "", address(0), "", auth);
    }

    function status(bytes32 taskid) internal view returns (uint8) {
        return uint8(poco.viewTask(taskid).status);
    }

    /// Contribution deadline, reveal window and final deadline of a deal.
    function contributionDeadline(Deal memory deal) internal pure returns (uint256) {
        return deal.startTime + 7 * deal.timeref;
    }

    function finalDeadline(Deal memory deal) internal pure returns (uint256) {
        return deal.startTime + 10 * deal.timeref;
    }

    // ================================================================== lists

    function sorted(address[] memory list) internal pure returns (address[] memory out) {
        out = new address[](list.length);
        for (uint256 i; i < list.length; ++i) {
            address value = list[i];
            uint256 j = i;
            while (j > 0 && out[j - 1] > value) {
                out[j] = out[j - 1];
                --j;
            }
            out[j] = value;
        }
    }

    function list1(address a) internal pure returns (address[] memory l) {
        l = new address[](1);
        l[0] = a;
    }

    function list2(address a, address b) internal pure returns (address[] memory l) {
        l = new address[](2);
        l[0] = a;
        l[1] = b;
        l = sorted(l);
    }

    function list3(address a, address b, address c) internal pure returns (address[] memory l) {
        l = new address[](3);
        l[0] = a;
        l[1] = b;
        l[2] = c;
        l = sorted(l);
    }

    function emptyList() internal pure returns (address[] memory l) {
        l = new address[](0);
    }

    function percent(uint256 amount, uint256 ratio) internal pure returns (uint256) {
        return amount * ratio / 100;
    }
}
