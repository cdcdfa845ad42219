// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {PocoBase} from "./PocoBase.sol";
import {PocoStorage, AccountWord, MembershipWord, PoolWord, DrawWord} from "./libs/PocoStorage.sol";
import {Orders} from "./libs/Orders.sol";
import {Signatures} from "./libs/Signatures.sol";
import {AppRegistry} from "./registries/Apps.sol";
import {DatasetRegistry} from "./registries/Datasets.sol";
import {WorkerpoolRegistry} from "./registries/Workerpools.sol";

/// @notice ERC-734 group membership, as used by order restrictions.
interface IERC734 {
    function keyHasPurpose(bytes32 key, uint256 purpose) external view returns (bool);
}

/// @notice What `Poco` reads from its task module at construction.
interface ITasksModule {
    function committeeSeedDelay() external view returns (uint256);
}

/// @title poco: escrow, categories, orders and matching; the task lifecycle by delegation
/// @notice The single address users talk to. Calls this contract does not implement (the task
/// lifecycle: initialize, contribute, reveal, reopen, finalize, claim, contributeAndFinalize and
/// their views) are delegated to the `PocoTasks` module fixed at construction, which works on the
/// same storage. Nothing here is upgradeable.
contract Poco is PocoBase, Ownable {
    using AccountWord for uint256;
    using MembershipWord for uint256;
    using PoolWord for uint256;
    using SafeERC20 for IERC20;

    uint256 private constant GROUP_MEMBER_PURPOSE = 4;

    IERC20 private immutable _token;
    AppRegistry private immutable _apps;
    DatasetRegistry private immutable _datasets;
    WorkerpoolRegistry private immutable _workerpools;
    address private immutable _tasksModule;
    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedSeparator;
    /// Blocks between a committee deal's match and the block whose hash seeds its draw.
    uint256 private immutable _seedDelay;

    /// Everything `matchOrders` computes before it writes, kept in memory to spare the stack.
    struct Match {
        bytes32 appHash;
        bytes32 datasetHash;
        bytes32 workerpoolHash;
        bytes32 requestHash;
        uint256 volume;
        uint256 workerStakeRatio;
    }

    constructor(
        address owner_,
        IERC20 token_,
        AppRegistry apps_,
        DatasetRegistry datasets_,
        WorkerpoolRegistry workerpools_,
        address tasksModule_
    ) Ownable(owner_) {
        _token = token_;
        _apps = apps_;
        _datasets = datasets_;
        _workerpools = workerpools_;
        _tasksModule = tasksModule_;
        _seedDelay = ITasksModule(tasksModule_).committeeSeedDelay();
        _cachedChainId = block.chainid;
        _cachedSeparator = Orders.domainSeparator(block.chainid, address(this));
        _createCategory("XS", "{}", 300);
        _createCategory("S", "{}", 1200);
        _createCategory("M", "{}", 3600);
        _createCategory("L", "{}", 10_800);
        _createCategory("XL", "{}", 36_000);
    }

    /// Everything else is the task lifecycle: run it in the task module, on this storage.
    fallback() external {
        address module = _tasksModule;
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), module, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }

    // ================================================================== configuration views

    function token() external view returns (address) {
        return address(_token);
    }

    function appregistry() external view returns (address) {
        return address(_apps);
    }

    function datasetregistry() external view returns (address) {
        return address(_datasets);
    }

    function workerpoolregistry() external view returns (address) {
        return address(_workerpools);
    }

    function tasksModule() external view returns (address) {
        return _tasksModule;
    }

    function burnAccount() external pure returns (address) {
        return BURN_ACCOUNT;
    }

    function callbackGas() external pure returns (uint256) {
        return CALLBACK_GAS;
    }

    function domain() external view returns (EIP712Domain memory) {
        return EIP712Domain(Orders.DOMAIN_NAME, Orders.DOMAIN_VERSION, block.chainid, address(this));
    }

    function eip712domainSeparator() public view returns (bytes32) {
        if (block.chainid == _cachedChainId) return _cachedSeparator;
        return Orders.domainSeparator(block.chainid, address(this));
    }

    // ================================================================== escrow

    function deposit(uint256 amount) external {
        _deposit(msg.sender, msg.sender, amount);
    }

    function depositFor(uint256 amount, address target) external {
        _deposit(msg.sender, target, amount);
    }

    function withdraw(uint256 amount) external {
        _withdraw(msg.sender, amount);
    }

    function withdrawTo(uint256 amount, address target) external {
        _withdraw(target, amount);
    }

    /// Deposit, then optionally match, in one transaction (`RLC.approveAndCall`). Only the token
    /// itself may call this, so nobody can spend a holder's allowance on the holder's behalf.
    function receiveApproval(address sender, uint256 amount, address token_, bytes calldata data)
        external
        returns (bool)
    {
        if (msg.sender != address(_token) || token_ != address(_token)) {
            revert UnauthorizedTokenCall(msg.sender);
        }
        _deposit(sender, sender, amount);
        if (data.length == 0) return true;
        bytes4 selector = bytes4(data[0:4]);
        if (selector != this.matchOrders.selector) revert UnsupportedOperation(selector);
        // The request order is the 4th argument; its requester is its 7th field.
        uint256 requestOffset = 4 + uint256(bytes32(data[100:132]));
        address requester =
            address(uint160(uint256(bytes32(data[requestOffset + 192:requestOffset + 224]))));
        if (requester != sender) revert CallerIsNotTheRequester(sender, requester);
        (bool ok, bytes memory answer) = address(this).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(answer, 0x20), mload(answer))
            }
        }
        return true;
    }

    function balanceOf(address account) external view returns (uint256) {
        return _layout().accounts[account].balance();
    }

    function frozenOf(address account) external view returns (uint256) {
        return _layout().accounts[account].frozen();
    }

    function viewAccount(address account) external view returns (Account memory) {
        uint256 word = _layout().accounts[account];
        return Account(word.balance(), word.frozen());
    }

    function viewScore(address worker) external view returns (uint256) {
        return _layout().accounts[worker].score();
    }

    function _deposit(address from, address target, uint256 amount) private {
        if (target == address(0)) revert ZeroAddress();
        if (target == BURN_ACCOUNT) revert BurnAccountDeposit();
        _credit(target, amount);
        _token.safeTransferFrom(from, address(this), amount);
        emit Deposit(target, amount);
    }

    function _withdraw(address target, uint256 amount) private {
        if (target == address(0)) revert ZeroAddress();
        _debit(msg.sender, amount);
        _token.safeTransfer(target, amount);
        emit Withdraw(msg.sender, amount);
    }

    // ================================================================== committees

    /// Any worker may join any workerpool: the scheduler neither admits nor refuses members,
    /// so it cannot fill a pool with its own workers unopposed. The worker becomes the last
    /// active member and bonds `MEMBER_BOND` of its balance.
    function joinWorkerpool(address workerpool) external {
        if (!_workerpools.isRegistered(workerpool)) revert UnknownAsset(workerpool);
        if (_layout().memberships[workerpool][msg.sender] != 0) {
            revert AlreadyMember(workerpool, msg.sender);
        }
        _addMember(workerpool, msg.sender);
    }

    /// Leaves the active set at once: deals matched from now on never draw the worker. Seats
    /// it holds in deals matched before stay its own (and may still be penalized), which is
    /// why the bond stays frozen for `MEMBER_EXIT_DELAY`.
    function leaveWorkerpool(address workerpool) external {
        uint256 membership = _layout().memberships[workerpool][msg.sender];
        if (!membership.isActive()) revert NotMember(workerpool, msg.sender);
        _removeMember(workerpool, msg.sender, membership);
        emit MemberLeft(workerpool, msg.sender);
    }

    /// Returns what is left of the bond, `MEMBER_EXIT_DELAY` after leaving (or being expelled).
    function releaseBond(address workerpool) external {
        mapping(address => uint256) storage memberships = _layout().memberships[workerpool];
        uint256 membership = memberships[msg.sender];
        if (membership == 0) revert NotMember(workerpool, msg.sender);
        uint256 until = membership.leftAt() + MEMBER_EXIT_DELAY;
        if (membership.isActive() || block.timestamp < until) {
            revert BondLocked(workerpool, msg.sender, membership.isActive() ? 0 : until);
        }
        delete memberships[msg.sender];
        _unlock(msg.sender, membership.bond());
        emit BondReleased(workerpool, msg.sender, membership.bond());
    }

    function memberBond() external pure returns (uint256) {
        return MEMBER_BOND;
    }

    function seatPenalty() external pure returns (uint256) {
        return SEAT_PENALTY;
    }

    function memberExitDelay() external pure returns (uint256) {
        return MEMBER_EXIT_DELAY;
    }

    function countMembers(address workerpool) external view returns (uint256) {
        return _layout().members[workerpool].state.activeCount();
    }

    function membershipEpoch(address workerpool) external view returns (uint256) {
        return _layout().members[workerpool].state.epoch();
    }

    function viewMember(address workerpool, uint256 position)
        external
        view
        returns (address worker, bool active)
    {
        uint256 state = _layout().members[workerpool].state;
        if (position >= state.activeCount()) return (address(0), false);
        return (_holderAt(workerpool, position, state.epoch()), true);
    }

    function viewMemberAt(address workerpool, uint256 position, uint256 epoch)
        external
        view
        returns (address)
    {
        return _holderAt(workerpool, position, epoch);
    }

    function viewMembership(address workerpool, address worker)
        external
        view
        returns (Membership memory)
    {
        uint256 word = _layout().memberships[workerpool][worker];
        if (word == 0) return Membership(false, 0, 0, 0);
        return Membership(word.isActive(), word.position(), word.bond(), word.leftAt());
    }

    function committeeSize(uint256 trust) external pure returns (uint256) {
        return _committeeSize(trust);
    }

    function minCommitteeMembers(uint256 trust) external pure returns (uint256) {
        return _minCommitteeMembers(trust);
    }

    // ================================================================== categories

    function createCategory(string calldata name, string calldata description, uint256 timeref)
        external
        onlyOwner
        returns (uint256)
    {
        return _createCategory(name, description, timeref);
    }

    function viewCategory(uint256 catid) external view returns (Category memory) {
        Category[] storage categories = _layout().categories;
        if (catid >= categories.length) revert UnknownCategory(catid);
        return categories[catid];
    }

    function countCategory() external view returns (uint256) {
        return _layout().categories.length;
    }

    function _createCategory(string memory name, string memory description, uint256 timeref)
        private
        returns (uint256 catid)
    {
        // A deal ends 10 T after its match: bounding T keeps every deal shorter than a
        // leaving member's bond delay, so a seat can always be penalized.
        if (timeref == 0 || timeref > MEMBER_EXIT_DELAY / FINAL_DEADLINE_RATIO) {
            revert InvalidTimeRef(timeref);
        }
        Category[] storage categories = _layout().categories;
        catid = categories.length;
        categories.push(Category(name, description, timeref));
        emit CreateCategory(catid, name, description, timeref);
    }

    // ================================================================== orders

    function verifySignature(address signer, bytes32 hash, bytes calldata sign)
        external
        view
        returns (bool)
    {
        return Signatures.isValid(signer, hash, sign);
    }

    function verifyPresignatureOrSignature(address signer, bytes32 hash, bytes calldata sign)
        external
        view
        returns (bool)
    {
        return _isSigned(signer, hash, sign);
    }

    function viewConsumed(bytes32 orderHash) external view returns (uint256) {
        return _layout().consumed[orderHash];
    }

    function viewPresigned(bytes32 orderHash) external view returns (address) {
        return _layout().presigned[orderHash];
    }

    function hashAppOrder(AppOrder calldata order) external view returns (bytes32) {
        return Orders.digest(eip712domainSeparator(), Orders.hash(order));
    }

    function hashDatasetOrder(DatasetOrder calldata order) external view returns (bytes32) {
        return Orders.digest(eip712domainSeparator(), Orders.hash(order));
    }

    function hashWorkerpoolOrder(WorkerpoolOrder calldata order) external view returns (bytes32) {
        return Orders.digest(eip712domainSeparator(), Orders.hash(order));
    }

    function hashRequestOrder(RequestOrder calldata order) external view returns (bytes32) {
        return Orders.digest(eip712domainSeparator(), Orders.hash(order));
    }

    function manageAppOrder(AppOrderOperation calldata op) external {
        bytes32 separator = eip712domainSeparator();
        address owner_ = _apps.ownerOrZero(op.order.app);
        _authorizeOperation(owner_, Orders.digest(separator, Orders.hash(op)), op.sign);
        bytes32 orderHash = Orders.digest(separator, Orders.hash(op.order));
        if (_applyOperation(orderHash, owner_, op.order.volume, op.operation)) {
            emit SignedAppOrder(orderHash);
        } else {
            emit ClosedAppOrder(orderHash);
        }
    }

    function manageDatasetOrder(DatasetOrderOperation calldata op) external {
        bytes32 separator = eip712domainSeparator();
        address owner_ = _datasets.ownerOrZero(op.order.dataset);
        _authorizeOperation(owner_, Orders.digest(separator, Orders.hash(op)), op.sign);
        bytes32 orderHash = Orders.digest(separator, Orders.hash(op.order));
        if (_applyOperation(orderHash, owner_, op.order.volume, op.operation)) {
            emit SignedDatasetOrder(orderHash);
        } else {
            emit ClosedDatasetOrder(orderHash);
        }
    }

    function manageWorkerpoolOrder(WorkerpoolOrderOperation calldata op) external {
        bytes32 separator = eip712domainSeparator();
        address owner_ = _workerpools.ownerOrZero(op.order.workerpool);
        _authorizeOperation(owner_, Orders.digest(separator, Orders.hash(op)), op.sign);
        bytes32 orderHash = Orders.digest(separator, Orders.hash(op.order));
        if (_applyOperation(orderHash, owner_, op.order.volume, op.operation)) {
            emit SignedWorkerpoolOrder(orderHash);
        } else {
            emit ClosedWorkerpoolOrder(orderHash);
        }
    }

    function manageRequestOrder(RequestOrderOperation calldata op) external {
        bytes32 separator = eip712domainSeparator();
        address owner_ = op.order.requester;
        _authorizeOperation(owner_, Orders.digest(separator, Orders.hash(op)), op.sign);
        bytes32 orderHash = Orders.digest(separator, Orders.hash(op.order));
        if (_applyOperation(orderHash, owner_, op.order.volume, op.operation)) {
            emit SignedRequestOrder(orderHash);
        } else {
            emit ClosedRequestOrder(orderHash);
        }
    }

    /// The caller is the owner, or brings the owner's signature of the operation.
    function _authorizeOperation(address owner_, bytes32 operationHash, bytes calldata sign)
        private
        view
    {
        if (owner_ == address(0)) revert NotOrderOwner(owner_);
        if (msg.sender != owner_ && !Signatures.isValid(owner_, operationHash, sign)) {
            revert NotOrderOwner(owner_);
        }
    }

    /// Presigns or closes an order; returns true for a presign.
    function _applyOperation(
        bytes32 orderHash,
        address owner_,
        uint256 volume,
        OrderOperation operation
    ) private returns (bool) {
        if (operation == OrderOperation.SIGN) {
            _layout().presigned[orderHash] = owner_;
            return true;
        }
        _layout().consumed[orderHash] = volume;
        return false;
    }

    /// Presigned by `signer`, or signed by it (ECDSA or ERC-1271).
    function _isSigned(address signer, bytes32 hash, bytes calldata sign)
        private
        view
        returns (bool)
    {
        if (signer == address(0)) return false;
        if (sign.length != 0 && Signatures.isValid(signer, hash, sign)) return true;
        return _layout().presigned[hash] == signer;
    }

    // ================================================================== matching

    function matchOrders(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) external returns (bytes32) {
        return _matchOrders(
            appOrder, datasetOrder, workerpoolOrder, requestOrder, requestOrder.requester
        );
    }

    function sponsorMatchOrders(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) external returns (bytes32 dealid) {
        dealid = _matchOrders(appOrder, datasetOrder, workerpoolOrder, requestOrder, msg.sender);
        emit DealSponsored(dealid, msg.sender);
    }

    function viewDealHash(bytes32 dealid) external view returns (bytes32) {
        return _layout().deals[dealid];
    }

    function _matchOrders(
        AppOrder calldata app,
        DatasetOrder calldata dataset,
        WorkerpoolOrder calldata workerpool,
        RequestOrder calldata request,
        address sponsor
    ) private returns (bytes32 dealid) {
        Deal memory deal;
        _checkCompatibility(app, dataset, workerpool, request, deal);
        _checkRestrictions(app, dataset, workerpool, request);
        Match memory m = _checkAuthenticity(app, dataset, workerpool, request, deal);
        m.volume = _availableVolume(app, dataset, workerpool, request, m);

        deal.requestHash = m.requestHash;
        deal.app = app.app;
        deal.appPrice = app.appprice;
        if (dataset.dataset != address(0)) {
            deal.dataset = dataset.dataset;
            deal.datasetPrice = dataset.datasetprice;
        }
        deal.workerpool = workerpool.workerpool;
        deal.workerpoolPrice = workerpool.workerpoolprice;
        deal.requester = request.requester;
        deal.sponsor = sponsor;
        deal.beneficiary = request.beneficiary;
        deal.callback = request.callback;
        deal.category = request.category;
        deal.trust = request.trust == 0 ? 1 : request.trust;
        deal.startTime = block.timestamp;
        deal.botFirst = _layout().consumed[m.requestHash];
        deal.botSize = m.volume;
        deal.workerStake = _percent(workerpool.workerpoolprice, m.workerStakeRatio);
        deal.paramsHash = keccak256(bytes(request.params));

        _lockFunds(deal);

        PocoStorage.Layout storage $ = _layout();
        $.consumed[m.appHash] += m.volume;
        if (deal.dataset != address(0)) $.consumed[m.datasetHash] += m.volume;
        $.consumed[m.workerpoolHash] += m.volume;
        $.consumed[m.requestHash] = deal.botFirst + m.volume;

        dealid = _dealId(m.requestHash, deal.botFirst);
        $.deals[dealid] = keccak256(abi.encode(deal));
        if (deal.tag & COMMITTEE_BIT != 0) {
            // Only the members active now can be drawn, from the hash of a block that does not
            // exist yet (see `PocoTasks`).
            uint256 state = $.members[deal.workerpool].state;
            uint256 needed = _minCommitteeMembers(deal.trust);
            if (state.activeCount() < needed) {
                revert CommitteeTooSmall(deal.workerpool, state.activeCount(), needed);
            }
            $.draws[dealid] =
                DrawWord.pack(state.activeCount(), state.epoch(), block.number + _seedDelay);
        }

        emit OrdersMatched(
            dealid, m.appHash, m.datasetHash, m.workerpoolHash, m.requestHash, m.volume
        );
        emit DealCreated(dealid, deal.workerpool, deal.requester, deal, request.params);
    }

    /// Rules 0x00 to 0x09: category, trust, prices and tags. Fills the deal's tag and timeref.
    function _checkCompatibility(
        AppOrder calldata app,
        DatasetOrder calldata dataset,
        WorkerpoolOrder calldata workerpool,
        RequestOrder calldata request,
        Deal memory deal
    ) private view {
        if (request.category != workerpool.category) {
            revert CategoryMismatch(request.category, workerpool.category);
        }
        Category[] storage categories = _layout().categories;
        if (request.category >= categories.length) revert UnknownCategory(request.category);
        if (request.trust > workerpool.trust) {
            revert TrustNotOffered(request.trust, workerpool.trust);
        }
        if (request.trust > MAX_TRUST) revert TrustOutOfRange(request.trust);
        if (request.appmaxprice < app.appprice) {
            revert AppPriceTooHigh(app.appprice, request.appmaxprice);
        }
        if (request.datasetmaxprice < dataset.datasetprice) {
            revert DatasetPriceTooHigh(dataset.datasetprice, request.datasetmaxprice);
        }
        if (request.workerpoolmaxprice < workerpool.workerpoolprice) {
            revert WorkerpoolPriceTooHigh(workerpool.workerpoolprice, request.workerpoolmaxprice);
        }
        if (app.appprice > AccountWord.AMOUNT_MAX) revert PriceOutOfRange(app.appprice);
        if (dataset.datasetprice > AccountWord.AMOUNT_MAX) {
            revert PriceOutOfRange(dataset.datasetprice);
        }
        if (workerpool.workerpoolprice > AccountWord.AMOUNT_MAX) {
            revert PriceOutOfRange(workerpool.workerpoolprice);
        }
        bytes32 tag = app.tag | (dataset.tag & ~TEE_FRAMEWORK_BITS) | request.tag;
        bytes32 missing = tag & ~workerpool.tag;
        if (missing != 0) revert TagNotOffered(missing);
        if ((tag ^ app.tag) & TEE_BIT != 0) revert TeeAppRequired();
        if (tag & COMMITTEE_BIT != 0) {
            if (request.trust > MAX_COMMITTEE_TRUST) {
                revert TrustBeyondCommittee(request.trust, MAX_COMMITTEE_TRUST);
            }
            // A committee is as honest as its pool's members: only the requester may choose
            // the pool, so that nobody can match its request with a pool of their own.
            if (request.workerpool != workerpool.workerpool) {
                revert CommitteePoolNotChosen(request.workerpool, workerpool.workerpool);
            }
        }
        deal.tag = tag;
        deal.timeref = categories[request.category].workClockTimeRef;
    }

    /// Rules 0x10 to 0x1b: the orders name each other, and every restriction lets the others in.
    function _checkRestrictions(
        AppOrder calldata app,
        DatasetOrder calldata dataset,
        WorkerpoolOrder calldata workerpool,
        RequestOrder calldata request
    ) private view {
        if (request.app != app.app) {
            revert AppMismatch(request.app, app.app);
        }
        if (request.dataset != dataset.dataset) {
            revert DatasetMismatch(request.dataset, dataset.dataset);
        }
        if (!_allows(request.workerpool, workerpool.workerpool)) {
            revert RequestWorkerpoolRestricted(request.workerpool, workerpool.workerpool);
        }
        if (!_allows(app.datasetrestrict, dataset.dataset)) {
            revert AppDatasetRestricted(app.datasetrestrict, dataset.dataset);
        }
        if (!_allows(app.workerpoolrestrict, workerpool.workerpool)) {
            revert AppWorkerpoolRestricted(app.workerpoolrestrict, workerpool.workerpool);
        }
        if (!_allows(app.requesterrestrict, request.requester)) {
            revert AppRequesterRestricted(app.requesterrestrict, request.requester);
        }
        if (!_allows(dataset.apprestrict, app.app)) {
            revert DatasetAppRestricted(dataset.apprestrict, app.app);
        }
        if (!_allows(dataset.workerpoolrestrict, workerpool.workerpool)) {
            revert DatasetWorkerpoolRestricted(dataset.workerpoolrestrict, workerpool.workerpool);
        }
        if (!_allows(dataset.requesterrestrict, request.requester)) {
            revert DatasetRequesterRestricted(dataset.requesterrestrict, request.requester);
        }
        if (!_allows(workerpool.apprestrict, app.app)) {
            revert WorkerpoolAppRestricted(workerpool.apprestrict, app.app);
        }
        if (!_allows(workerpool.datasetrestrict, dataset.dataset)) {
            revert WorkerpoolDatasetRestricted(workerpool.datasetrestrict, dataset.dataset);
        }
        if (!_allows(workerpool.requesterrestrict, request.requester)) {
            revert WorkerpoolRequesterRestricted(workerpool.requesterrestrict, request.requester);
        }
    }

    /// Rules 0x20 to 0x50: assets registered, orders signed by their current owners. Fills the
    /// deal's owners and returns the order hashes and the pool's stake policy.
    function _checkAuthenticity(
        AppOrder calldata app,
        DatasetOrder calldata dataset,
        WorkerpoolOrder calldata workerpool,
        RequestOrder calldata request,
        Deal memory deal
    ) private view returns (Match memory m) {
        bytes32 separator = eip712domainSeparator();

        address appOwner = _apps.ownerOrZero(app.app);
        if (appOwner == address(0)) revert AppNotRegistered(app.app);
        m.appHash = Orders.digest(separator, Orders.hash(app));
        if (!_isSigned(appOwner, m.appHash, app.sign)) revert InvalidAppOrderSignature(appOwner);
        deal.appOwner = appOwner;

        if (dataset.dataset != address(0)) {
            address datasetOwner = _datasets.ownerOrZero(dataset.dataset);
            if (datasetOwner == address(0)) revert DatasetNotRegistered(dataset.dataset);
            m.datasetHash = Orders.digest(separator, Orders.hash(dataset));
            if (!_isSigned(datasetOwner, m.datasetHash, dataset.sign)) {
                revert InvalidDatasetOrderSignature(datasetOwner);
            }
            deal.datasetOwner = datasetOwner;
        }

        (address scheduler, uint256 stakeRatio, uint256 schedulerRatio) =
            _workerpools.ownerAndPolicy(workerpool.workerpool);
        if (scheduler == address(0)) revert WorkerpoolNotRegistered(workerpool.workerpool);
        m.workerpoolHash = Orders.digest(separator, Orders.hash(workerpool));
        if (!_isSigned(scheduler, m.workerpoolHash, workerpool.sign)) {
            revert InvalidWorkerpoolOrderSignature(scheduler);
        }
        deal.scheduler = scheduler;
        deal.schedulerRewardRatio = schedulerRatio;
        m.workerStakeRatio = stakeRatio;

        m.requestHash = Orders.digest(separator, Orders.hash(request));
        if (!_isSigned(request.requester, m.requestHash, request.sign)) {
            revert InvalidRequestOrderSignature(request.requester);
        }
    }

    /// Rule 0x60: the volume all orders still have in common.
    function _availableVolume(
        AppOrder calldata app,
        DatasetOrder calldata dataset,
        WorkerpoolOrder calldata workerpool,
        RequestOrder calldata request,
        Match memory m
    ) private view returns (uint256 volume) {
        mapping(bytes32 => uint256) storage consumed = _layout().consumed;
        volume = app.volume - consumed[m.appHash];
        if (dataset.dataset != address(0)) {
            volume = _min(volume, dataset.volume - consumed[m.datasetHash]);
        }
        volume = _min(volume, workerpool.volume - consumed[m.workerpoolHash]);
        volume = _min(volume, request.volume - consumed[m.requestHash]);
        if (volume == 0) revert NoVolumeLeft();
    }

    /// Rules 0x70 and 0x71: lock the price from the sponsor, then the stake from the scheduler.
    function _lockFunds(Deal memory deal) private {
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 price = deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
        uint256 needed = _mulCapped(price, deal.botSize);
        uint256 word = accounts[deal.sponsor];
        if (word.balance() < needed) {
            revert SponsorBalanceTooLow(deal.sponsor, needed, word.balance());
        }
        accounts[deal.sponsor] = _locked(deal.sponsor, word, needed);

        needed = _mulCapped(_percent(deal.workerpoolPrice, WORKERPOOL_STAKE_RATIO), deal.botSize);
        word = accounts[deal.scheduler];
        if (word.balance() < needed) {
            revert SchedulerStakeTooLow(deal.scheduler, needed, word.balance());
        }
        accounts[deal.scheduler] = _locked(deal.scheduler, word, needed);
    }

    /// a * b, or the largest uint256 when that overflows (then no balance can cover it).
    function _mulCapped(uint256 a, uint256 b) private pure returns (uint256) {
        if (a == 0) return 0;
        if (b > type(uint256).max / a) return type(uint256).max;
        return a * b;
    }

    /// A restriction lets `account` in when it is zero, equal to it, or an ERC-734 group that
    /// has it as a member.
    function _allows(address restriction, address account) private view returns (bool) {
        if (restriction == address(0) || restriction == account) return true;
        if (restriction.code.length == 0) return false;
        (bool ok, bytes memory answer) = restriction.staticcall(
            abi.encodeCall(
                IERC734.keyHasPurpose, (bytes32(uint256(uint160(account))), GROUP_MEMBER_PURPOSE)
            )
        );
        return ok && answer.length >= 32 && abi.decode(answer, (uint256)) == 1;
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}
