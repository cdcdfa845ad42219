// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {CommonBase} from "forge-std/Base.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {IPoco} from "../../src/interfaces/IPoco.sol";
import {IPocoTypes} from "../../src/interfaces/IPocoTypes.sol";
import {RLC} from "../../src/token/RLC.sol";
import {WorkerpoolRegistry, Workerpool} from "../../src/registries/Workerpools.sol";
import {OrderHashing} from "../utils/OrderHashing.sol";

/// @notice Drives poco through random sequences of market and lifecycle actions, and keeps a
/// ghost bookkeeping of what every account must have frozen, of every order's volume, of every
/// deal's hash and of every task's payments.
///
/// Every action only makes calls that must succeed (the invariant test runs with
/// fail-on-revert): an action whose preconditions do not hold is a no-op. Deals are rebuilt
/// here from the orders, independently of `DealCreated`, and checked against the stored hash.
contract PocoHandler is CommonBase, StdUtils, IPocoTypes {
    address internal constant KITTY = 0x99c2268479b93fDe36232351229815DF80837e23;
    uint256 internal constant T = 300;
    uint256 internal constant KITTY_MIN = 1e9;
    uint256 internal constant MEMBER_BOND = 10e9;
    bytes32 internal constant DIGEST_A = keccak256("handler A");
    bytes32 internal constant DIGEST_B = keccak256("handler B");

    uint8 internal constant UNSET = 0;
    uint8 internal constant ACTIVE = 1;
    uint8 internal constant REVEALING = 2;
    uint8 internal constant COMPLETED = 3;
    uint8 internal constant FAILED = 4;

    uint8 internal constant CONTRIBUTED = 1;
    uint8 internal constant PROVED = 2;
    uint8 internal constant REJECTED = 3;

    struct Actors {
        address requester;
        uint256 requesterKey;
        address requester2;
        uint256 requester2Key;
        address appOwner;
        uint256 appOwnerKey;
        address datasetOwner;
        uint256 datasetOwnerKey;
        address scheduler;
        uint256 schedulerKey;
        address sponsor;
        address app;
        address dataset;
        address workerpool;
    }

    struct DealRecord {
        Deal deal;
        bytes32 dealid;
        bytes32 hash;
    }

    IPoco public immutable poco;
    RLC public immutable rlc;
    WorkerpoolRegistry public immutable wpRegistry;
    Actors internal a;
    address[] internal _workers;
    address[] internal _accounts;

    // Current offers and request.
    AppOrder internal _appOrder;
    DatasetOrder internal _datasetOrder;
    WorkerpoolOrder internal _wpOrder;
    RequestOrder internal _request;
    bool internal _requestWithDataset;
    uint256 internal _nonce;

    // ------------------------------------------------------------------ ghosts
    DealRecord[] internal _deals;
    bytes32[] internal _orders;
    mapping(bytes32 => uint256) public orderVolume;
    mapping(address => uint256) public ghostFrozen;
    mapping(address => bool) internal _member;
    mapping(address => uint256) internal _leftAt;

    bytes32[] internal _tasks;
    mapping(bytes32 => bool) internal _taskKnown;
    mapping(bytes32 => uint256) internal _taskDeal;
    mapping(bytes32 => uint256) internal _taskIdx;
    mapping(bytes32 => address[]) internal _contributors;
    mapping(bytes32 => mapping(address => bytes32)) internal _digestOf;
    mapping(bytes32 => mapping(address => uint8)) internal _contribution;
    mapping(bytes32 => bytes32) internal _consensusDigest;
    mapping(bytes32 => uint8) public ghostStatus;
    mapping(bytes32 => uint256) public payments;
    bytes32[] internal _finished;

    mapping(bytes32 => uint256) public calls;

    constructor(
        IPoco poco_,
        RLC rlc_,
        WorkerpoolRegistry wpRegistry_,
        Actors memory actors_,
        address[] memory workers_,
        address[] memory accounts_
    ) {
        poco = poco_;
        rlc = rlc_;
        wpRegistry = wpRegistry_;
        a = actors_;
        _workers = workers_;
        _accounts = accounts_;
        _newAppOrder(1);
        _newDatasetOrder(2);
        _newWorkerpoolOrder(3);
        _newRequest(4);
    }

    // ================================================================== views for invariants

    function accounts() external view returns (address[] memory) {
        return _accounts;
    }

    function dealCount() external view returns (uint256) {
        return _deals.length;
    }

    function dealAt(uint256 i) external view returns (Deal memory, bytes32 dealid, bytes32 hash) {
        DealRecord storage r = _deals[i];
        return (r.deal, r.dealid, r.hash);
    }

    function orders() external view returns (bytes32[] memory) {
        return _orders;
    }

    function finished() external view returns (bytes32[] memory) {
        return _finished;
    }

    function tasks() external view returns (bytes32[] memory) {
        return _tasks;
    }

    // ================================================================== market actions

    function matchDeal(uint256 seed) external {
        if (_remaining(_appOrder.volume, _hashApp(_appOrder)) == 0) _newAppOrder(seed);
        if (_remaining(_datasetOrder.volume, _hashDataset(_datasetOrder)) == 0) {
            _newDatasetOrder(seed >> 8);
        }
        if (_remaining(_wpOrder.volume, _hashWp(_wpOrder)) == 0) _newWorkerpoolOrder(seed >> 16);
        if ((seed >> 24) % 2 == 0 || _remaining(_request.volume, _hashRequest(_request)) == 0) {
            _newRequest(seed >> 32);
        }

        AppOrder memory app = _appOrder;
        DatasetOrder memory dso;
        if (_requestWithDataset) dso = _datasetOrder;
        WorkerpoolOrder memory wp = _wpOrder;
        RequestOrder memory req = _request;
        bytes32 requestHash = _hashRequest(req);

        uint256 volume = _min(
            _remaining(app.volume, _hashApp(app)),
            _min(_remaining(wp.volume, _hashWp(wp)), _remaining(req.volume, requestHash))
        );
        if (_requestWithDataset) volume = _min(volume, _remaining(dso.volume, _hashDataset(dso)));

        bool sponsored = (seed >> 40) % 3 == 0;
        Deal memory deal = _expectedDeal(app, dso, wp, req, requestHash, volume);
        deal.sponsor = sponsored ? a.sponsor : req.requester;
        uint256 price = deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
        uint256 schedulerStake = deal.workerpoolPrice * 30 / 100;
        _ensureBalance(deal.sponsor, price * volume);
        _ensureBalance(a.scheduler, schedulerStake * volume);

        bytes32 dealid;
        if (sponsored) {
            vm.prank(a.sponsor);
            dealid = poco.sponsorMatchOrders(app, dso, wp, req);
        } else {
            vm.prank(_workers[seed % _workers.length]); // anyone may match
            dealid = poco.matchOrders(app, dso, wp, req);
        }
        bytes32 hash = keccak256(abi.encode(deal));
        require(dealid == keccak256(abi.encodePacked(requestHash, deal.botFirst)), "deal id");
        require(poco.viewDealHash(dealid) == hash, "rebuilt deal differs from the stored one");

        _deals.push(DealRecord(deal, dealid, hash));
        ghostFrozen[deal.sponsor] += price * volume;
        ghostFrozen[a.scheduler] += schedulerStake * volume;
        calls["matchDeal"]++;
    }

    /// One of the rarer actions: close an offer, change the pool policy, deposit, withdraw, or
    /// a worker's next step in the pool's membership.
    function misc(uint256 seed, uint256 actorSeed, uint256 amountSeed) external {
        uint256 action = seed % 5;
        if (action == 0) closeOffer(seed >> 8);
        else if (action == 1) changePolicy(seed >> 8);
        else if (action == 2) deposit(actorSeed, amountSeed);
        else if (action == 3) withdraw(actorSeed, amountSeed);
        else membership(actorSeed);
    }

    /// A worker joins the pool (bonding), asks to leave, or releases its bond once the exit
    /// delay has passed (sometimes waiting for it first).
    function membership(uint256 seed) public {
        address worker = _workers[seed % _workers.length];
        uint256 leftAt = _leftAt[worker];
        if (!_member[worker]) {
            _ensureBalance(worker, MEMBER_BOND);
            vm.prank(worker);
            poco.joinWorkerpool(a.workerpool);
            _member[worker] = true;
            ghostFrozen[worker] += MEMBER_BOND;
        } else if (leftAt == 0) {
            vm.prank(worker);
            poco.leaveWorkerpool(a.workerpool);
            _leftAt[worker] = block.timestamp;
        } else {
            if ((seed >> 8) % 4 == 0 && block.timestamp < leftAt + 7 days) {
                vm.warp(leftAt + 7 days);
            }
            if (block.timestamp < leftAt + 7 days) return;
            vm.prank(worker);
            poco.releaseBond(a.workerpool);
            _member[worker] = false;
            _leftAt[worker] = 0;
            ghostFrozen[worker] -= MEMBER_BOND;
        }
        calls["membership"]++;
    }

    function closeOffer(uint256 seed) public {
        if (seed % 2 == 0) {
            vm.prank(a.appOwner);
            poco.manageAppOrder(AppOrderOperation(_appOrder, OrderOperation.CLOSE, ""));
        } else {
            vm.prank(a.scheduler);
            poco.manageWorkerpoolOrder(WorkerpoolOrderOperation(_wpOrder, OrderOperation.CLOSE, ""));
        }
        calls["closeOffer"]++;
    }

    /// The scheduler changes its pool's policy: only deals matched afterwards see it.
    function changePolicy(uint256 seed) public {
        vm.prank(a.scheduler);
        Workerpool(a.workerpool).changePolicy(seed % 101, (seed >> 8) % 51);
        calls["changePolicy"]++;
    }

    function deposit(uint256 actorSeed, uint256 amountSeed) public {
        address account = _accounts[actorSeed % _accounts.length];
        uint256 amount = bound(amountSeed, 0, _min(rlc.balanceOf(account), 1000e9));
        vm.prank(account);
        poco.deposit(amount);
        calls["deposit"]++;
    }

    function withdraw(uint256 actorSeed, uint256 amountSeed) public {
        address account = _accounts[actorSeed % _accounts.length];
        uint256 amount = bound(amountSeed, 0, poco.balanceOf(account));
        vm.prank(account);
        poco.withdraw(amount);
        calls["withdraw"]++;
    }

    function warp(uint256 seed) external {
        // Mostly short steps inside a deal's life, sometimes a long one past its deadlines.
        uint256 step = seed % 4 == 0 ? bound(seed >> 2, 1, 8 * T) : bound(seed >> 2, 1, T);
        vm.warp(block.timestamp + step);
        calls["warp"]++;
    }

    // ================================================================== lifecycle actions

    /// One contribution, or two on the same task when `answer` says so.
    function contribute(uint256 dealSeed, uint256 idxSeed, uint256 workerSeed, uint256 answer)
        external
    {
        _contribute(dealSeed, idxSeed, workerSeed, answer);
        if ((answer >> 8) % 2 == 0) {
            _contribute(dealSeed, idxSeed, workerSeed % _workers.length + 1, answer >> 16);
        }
    }

    function _contribute(uint256 dealSeed, uint256 idxSeed, uint256 workerSeed, uint256 answer)
        internal
    {
        (bool found, uint256 di, uint256 idx, bytes32 taskid,) =
            _findOpenTask(dealSeed, idxSeed, false);
        if (!found) return;
        Deal memory deal = _deals[di].deal;
        address worker;
        for (uint256 i; i < _workers.length && worker == address(0); ++i) {
            address candidate = _workers[(workerSeed % _workers.length + i) % _workers.length];
            if (_contribution[taskid][candidate] == 0) worker = candidate;
        }
        if (worker == address(0)) return;

        bytes32 digest = answer % 4 == 0 ? DIGEST_B : DIGEST_A;
        _ensureBalance(worker, deal.workerStake);
        bytes memory auth = _authorization(worker, taskid);
        vm.prank(worker);
        poco.contribute(
            deal,
            idx,
            keccak256(abi.encodePacked(taskid, digest)),
            keccak256(abi.encodePacked(worker, taskid, digest)),
            address(0),
            "",
            auth
        );

        _register(taskid, di, idx);
        _contributors[taskid].push(worker);
        _digestOf[taskid][worker] = digest;
        _contribution[taskid][worker] = CONTRIBUTED;
        ghostFrozen[worker] += deal.workerStake;
        if (_status(taskid) == REVEALING) {
            ghostStatus[taskid] = REVEALING;
            _consensusDigest[taskid] = digest;
        } else {
            ghostStatus[taskid] = ACTIVE;
        }
        calls["contribute"]++;
    }

    /// One reveal, or two when `workerSeed` says so.
    function reveal(uint256 taskSeed, uint256 workerSeed) external {
        _reveal(taskSeed, workerSeed);
        if ((workerSeed >> 8) % 2 == 0) _reveal(taskSeed, workerSeed % 64 + 1);
    }

    function _reveal(uint256 taskSeed, uint256 workerSeed) internal {
        (bool found, bytes32 taskid) = _findRevealing(taskSeed, FOR_REVEAL);
        if (!found) return;
        bytes32 digest = _consensusDigest[taskid];
        address[] storage list = _contributors[taskid];
        for (uint256 i; i < list.length; ++i) {
            address worker = list[(workerSeed % list.length + i) % list.length];
            if (_contribution[taskid][worker] == CONTRIBUTED && _digestOf[taskid][worker] == digest)
            {
                vm.prank(worker);
                poco.reveal(taskid, digest);
                _contribution[taskid][worker] = PROVED;
                calls["reveal"]++;
                return;
            }
        }
    }

    function finalize(uint256 taskSeed) external {
        (bool found, bytes32 taskid) = _findRevealing(taskSeed, FOR_FINALIZE);
        if (!found) return;
        Deal memory deal = _deals[_taskDeal[taskid]].deal;

        uint256 share = _kittyShare(deal.workerpoolPrice);
        vm.prank(deal.scheduler);
        poco.finalize(
            deal, _taskIdx[taskid], _consensusDigest[taskid], "", "", _sorted(_contributors[taskid])
        );

        _settle(deal, taskid);
        ghostFrozen[KITTY] -= share;
        _finish(taskid, COMPLETED);
        calls["finalize"]++;
    }

    function reopen(uint256 taskSeed) external {
        (bool found, bytes32 taskid) = _findRevealing(taskSeed, FOR_REOPEN);
        if (!found) return;
        Deal memory deal = _deals[_taskDeal[taskid]].deal;
        Task memory task = poco.viewTask(taskid);
        bytes32 digest = _consensusDigest[taskid];
        address[] storage list = _contributors[taskid];
        address[] memory winners = new address[](task.winners);
        uint256 n;
        for (uint256 i; i < list.length; ++i) {
            if (
                _contribution[taskid][list[i]] == CONTRIBUTED
                    && _digestOf[taskid][list[i]] == digest
            ) {
                winners[n++] = list[i];
            }
        }
        require(n == task.winners, "winners");
        vm.prank(deal.scheduler);
        poco.reopen(
            deal, _taskIdx[taskid], keccak256(abi.encodePacked(taskid, digest)), _sorted(winners)
        );
        for (uint256 i; i < n; ++i) {
            _contribution[taskid][winners[i]] = REJECTED;
        }
        ghostStatus[taskid] = ACTIVE;
        _consensusDigest[taskid] = 0;
        calls["reopen"]++;
    }

    function claim(uint256 dealSeed, uint256 idxSeed) external {
        (bool found, uint256 di, uint256 idx, bytes32 taskid, uint8 st) =
            _findOpenTask(dealSeed, idxSeed, true);
        if (!found) return;
        Deal memory deal = _deals[di].deal;

        address[] storage list = _contributors[taskid];
        uint256 faulty;
        for (uint256 i; i < list.length; ++i) {
            uint8 c = _contribution[taskid][list[i]];
            if (c == REJECTED || (st == REVEALING && c == CONTRIBUTED)) ++faulty;
        }
        poco.claim(deal, idx, _sorted(list));

        _register(taskid, di, idx);
        _settle(deal, taskid);
        ghostFrozen[KITTY] += deal.workerpoolPrice * 30 / 100 + faulty * deal.workerStake;
        _finish(taskid, FAILED);
        calls["claim"]++;
    }

    function contributeAndFinalize(uint256 dealSeed, uint256 idxSeed, uint256 workerSeed) external {
        (bool found, uint256 di, uint256 idx, bytes32 taskid, uint8 st) =
            _findOpenTask(dealSeed, idxSeed, false);
        if (!found) return;
        Deal memory deal = _deals[di].deal;
        if (deal.trust != 1 || st == REVEALING || _contributors[taskid].length != 0) return;

        address worker = _workers[workerSeed % _workers.length];
        uint256 share = _kittyShare(deal.workerpoolPrice);
        bytes memory auth = _authorization(worker, taskid);
        vm.prank(worker);
        poco.contributeAndFinalize(deal, idx, DIGEST_A, "", "", address(0), "", auth);

        _register(taskid, di, idx);
        ghostFrozen[deal.sponsor] -= deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
        ghostFrozen[deal.scheduler] -= deal.workerpoolPrice * 30 / 100;
        ghostFrozen[KITTY] -= share;
        _finish(taskid, COMPLETED);
        calls["contributeAndFinalize"]++;
    }

    /// Tries to settle a finished task a second time, by every path. None may succeed; if one
    /// did, the task's payment counter would show it.
    function replayFinished(uint256 taskSeed) external {
        if (_finished.length == 0) return;
        bytes32 taskid = _finished[taskSeed % _finished.length];
        Deal memory deal = _deals[_taskDeal[taskid]].deal;
        uint256 idx = _taskIdx[taskid];
        address[] memory list = _sorted(_contributors[taskid]);
        (bool ok,) = address(poco).call(abi.encodeCall(IPoco.claim, (deal, idx, list)));
        if (ok) payments[taskid]++;
        vm.prank(deal.scheduler);
        (ok,) = address(poco)
            .call(
                abi.encodeCall(
                    IPoco.finalize,
                    (deal, idx, _consensusDigest[taskid], bytes(""), bytes(""), list)
                )
            );
        if (ok) payments[taskid]++;
        address worker = _workers[taskSeed % _workers.length];
        bytes memory auth = _authorization(worker, taskid);
        vm.prank(worker);
        (ok,) = address(poco)
            .call(
                abi.encodeCall(
                    IPoco.contributeAndFinalize,
                    (deal, idx, DIGEST_A, bytes(""), bytes(""), address(0), bytes(""), auth)
                )
            );
        if (ok) payments[taskid]++;
        vm.prank(worker);
        (ok,) = address(poco).call(abi.encodeCall(IPoco.initialize, (deal, idx)));
        require(!ok, "finished task initialized again");
        calls["replayFinished"]++;
    }

    // ================================================================== internals

    function _min(uint256 x, uint256 y) internal pure returns (uint256) {
        return x < y ? x : y;
    }

    function _sep() internal view returns (bytes32) {
        return OrderHashing.separator(block.chainid, address(poco));
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _hashApp(AppOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(_sep(), OrderHashing.hash(o));
    }

    function _hashDataset(DatasetOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(_sep(), OrderHashing.hash(o));
    }

    function _hashWp(WorkerpoolOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(_sep(), OrderHashing.hash(o));
    }

    function _hashRequest(RequestOrder memory o) internal view returns (bytes32) {
        return OrderHashing.digest(_sep(), OrderHashing.hash(o));
    }

    function _remaining(uint256 volume, bytes32 hash) internal view returns (uint256) {
        return volume - poco.viewConsumed(hash);
    }

    function _track(bytes32 hash, uint256 volume) internal {
        _orders.push(hash);
        orderVolume[hash] = volume;
    }

    function _newAppOrder(uint256 seed) internal {
        AppOrder memory o;
        o.app = a.app;
        o.appprice = bound(seed, 0, 5e9);
        o.volume = bound(seed >> 64, 1, 8);
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashApp(o);
        o.sign = _sign(a.appOwnerKey, h);
        _appOrder = o;
        _track(h, o.volume);
    }

    function _newDatasetOrder(uint256 seed) internal {
        DatasetOrder memory o;
        o.dataset = a.dataset;
        o.datasetprice = bound(seed, 0, 3e9);
        o.volume = bound(seed >> 64, 1, 8);
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashDataset(o);
        o.sign = _sign(a.datasetOwnerKey, h);
        _datasetOrder = o;
        _track(h, o.volume);
    }

    function _newWorkerpoolOrder(uint256 seed) internal {
        WorkerpoolOrder memory o;
        o.workerpool = a.workerpool;
        o.workerpoolprice = seed % 5 == 0 ? 0 : bound(seed, 0, 30e9);
        o.volume = bound(seed >> 64, 1, 12);
        o.trust = 100;
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashWp(o);
        o.sign = _sign(a.schedulerKey, h);
        _wpOrder = o;
        _track(h, o.volume);
    }

    function _newRequest(uint256 seed) internal {
        RequestOrder memory o;
        bool second = seed % 2 == 1;
        o.requester = second ? a.requester2 : a.requester;
        _requestWithDataset = (seed >> 1) % 2 == 0;
        o.app = a.app;
        o.appmaxprice = 1000e9;
        o.dataset = _requestWithDataset ? a.dataset : address(0);
        o.datasetmaxprice = 1000e9;
        o.workerpoolmaxprice = 1000e9;
        o.volume = bound(seed >> 8, 1, 6);
        uint256[6] memory trusts = [uint256(0), 1, 1, 2, 3, 4];
        o.trust = trusts[(seed >> 16) % 6];
        o.beneficiary = o.requester;
        o.params = "handler";
        o.salt = bytes32(++_nonce);
        bytes32 h = _hashRequest(o);
        o.sign = _sign(second ? a.requester2Key : a.requesterKey, h);
        _request = o;
        _track(h, o.volume);
    }

    /// The deal `matchOrders` must write, built from the orders and protocol.md §2.4.
    function _expectedDeal(
        AppOrder memory app,
        DatasetOrder memory dso,
        WorkerpoolOrder memory wp,
        RequestOrder memory req,
        bytes32 requestHash,
        uint256 volume
    ) internal view returns (Deal memory d) {
        (, uint256 stakeRatio, uint256 schedulerRatio) = wpRegistry.viewWorkerpool(wp.workerpool);
        d.requestHash = requestHash;
        d.app = app.app;
        d.appOwner = a.appOwner;
        d.appPrice = app.appprice;
        if (dso.dataset != address(0)) {
            d.dataset = dso.dataset;
            d.datasetOwner = a.datasetOwner;
            d.datasetPrice = dso.datasetprice;
        }
        d.workerpool = wp.workerpool;
        d.scheduler = a.scheduler;
        d.workerpoolPrice = wp.workerpoolprice;
        d.requester = req.requester;
        d.beneficiary = req.beneficiary;
        d.callback = req.callback;
        d.tag = app.tag | (dso.tag & ~bytes32(uint256(0xe))) | req.tag;
        d.category = req.category;
        d.trust = req.trust == 0 ? 1 : req.trust;
        d.startTime = block.timestamp;
        d.timeref = T;
        d.botFirst = poco.viewConsumed(requestHash);
        d.botSize = volume;
        d.workerStake = wp.workerpoolprice * stakeRatio / 100;
        d.schedulerRewardRatio = schedulerRatio;
        d.paramsHash = keccak256(bytes(req.params));
    }

    function _ensureBalance(address account, uint256 amount) internal {
        uint256 balance = poco.balanceOf(account);
        if (balance >= amount) return;
        vm.prank(account);
        poco.deposit(amount - balance);
    }

    function _authorization(address worker, bytes32 taskid) internal view returns (bytes memory) {
        bytes32 h = keccak256(abi.encodePacked(worker, taskid, address(0)));
        return
            _sign(
                a.schedulerKey, keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", h))
            );
    }

    function _taskId(bytes32 dealid, uint256 idx) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(dealid, idx));
    }

    function _status(bytes32 taskid) internal view returns (uint8) {
        return uint8(poco.viewTask(taskid).status);
    }

    function _register(bytes32 taskid, uint256 di, uint256 idx) internal {
        if (_taskKnown[taskid]) return;
        _taskKnown[taskid] = true;
        _taskDeal[taskid] = di;
        _taskIdx[taskid] = idx;
        _tasks.push(taskid);
    }

    /// A task still open (UNSET, ACTIVE, or REVEALING when `expired`) of a deal open to
    /// contributions (`expired` false) or past its final deadline (`expired` true), scanning
    /// deals and tasks from random starts.
    function _findOpenTask(uint256 dealSeed, uint256 idxSeed, bool expired)
        internal
        view
        returns (bool, uint256 di, uint256 idx, bytes32 taskid, uint8 st)
    {
        uint256 n = _deals.length;
        for (uint256 i; i < n; ++i) {
            di = (dealSeed % n + i) % n;
            Deal storage deal = _deals[di].deal;
            if (expired != (block.timestamp >= deal.startTime + 10 * deal.timeref)) continue;
            if (!expired && block.timestamp >= deal.startTime + 7 * deal.timeref) continue;
            uint256 size = deal.botSize;
            for (uint256 j; j < size; ++j) {
                idx = deal.botFirst + (idxSeed % size + j) % size;
                taskid = _taskId(_deals[di].dealid, idx);
                st = _status(taskid);
                if (st == UNSET || st == ACTIVE || (expired && st == REVEALING)) {
                    return (true, di, idx, taskid, st);
                }
            }
        }
        return (false, 0, 0, bytes32(0), 0);
    }

    uint8 internal constant FOR_REVEAL = 0;
    uint8 internal constant FOR_FINALIZE = 1;
    uint8 internal constant FOR_REOPEN = 2;

    /// A REVEALING task on which `purpose` (reveal, finalize, reopen) can be done now.
    function _findRevealing(uint256 seed, uint8 purpose) internal view returns (bool, bytes32) {
        uint256 n = _tasks.length;
        for (uint256 i; i < n; ++i) {
            bytes32 taskid = _tasks[(seed % n + i) % n];
            if (ghostStatus[taskid] != REVEALING) continue;
            Deal storage deal = _deals[_taskDeal[taskid]].deal;
            if (block.timestamp >= deal.startTime + 10 * deal.timeref) continue;
            Task memory task = poco.viewTask(taskid);
            bool windowOpen = block.timestamp < task.revealDeadline;
            bool ok;
            if (purpose == FOR_REVEAL) {
                ok = windowOpen && task.reveals < task.winners;
            } else if (purpose == FOR_FINALIZE) {
                ok = task.reveals == task.winners || (task.reveals > 0 && !windowOpen);
            } else {
                ok = task.reveals == 0 && !windowOpen;
            }
            if (ok) return (true, taskid);
        }
        return (false, bytes32(0));
    }

    /// The kitty share of a successful task, per protocol.md §5.2 with poco's price cap.
    function _kittyShare(uint256 wpPrice) internal view returns (uint256 share) {
        uint256 kitty = ghostFrozen[KITTY];
        if (kitty == 0 || wpPrice == 0) return 0;
        share = kitty / 10;
        if (share < KITTY_MIN) share = KITTY_MIN;
        if (share > kitty) share = kitty;
        if (share > wpPrice) share = wpPrice;
    }

    /// Frozen amounts released by the end of a task: the price, the scheduler's stake and
    /// every contributor's stake.
    function _settle(Deal memory deal, bytes32 taskid) internal {
        ghostFrozen[deal.sponsor] -= deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
        ghostFrozen[deal.scheduler] -= deal.workerpoolPrice * 30 / 100;
        address[] storage list = _contributors[taskid];
        for (uint256 i; i < list.length; ++i) {
            ghostFrozen[list[i]] -= deal.workerStake;
        }
    }

    function _finish(bytes32 taskid, uint8 finalStatus) internal {
        ghostStatus[taskid] = finalStatus;
        payments[taskid]++;
        _finished.push(taskid);
    }

    function _sorted(address[] memory list) internal pure returns (address[] memory out) {
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
}
