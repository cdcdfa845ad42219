// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IPocoTypes} from "./IPocoTypes.sol";
import {IPocoErrors} from "./IPocoErrors.sol";

/// @title Events of the poco protocol
interface IPocoEvents is IPocoTypes {
    // escrow
    event Deposit(address indexed account, uint256 amount);
    event Withdraw(address indexed account, uint256 amount);

    // orders
    event SignedAppOrder(bytes32 appHash);
    event SignedDatasetOrder(bytes32 datasetHash);
    event SignedWorkerpoolOrder(bytes32 workerpoolHash);
    event SignedRequestOrder(bytes32 requestHash);
    event ClosedAppOrder(bytes32 appHash);
    event ClosedDatasetOrder(bytes32 datasetHash);
    event ClosedWorkerpoolOrder(bytes32 workerpoolHash);
    event ClosedRequestOrder(bytes32 requestHash);

    // matching
    /// @notice Same signature as iExec's, so that existing tools find the deal id.
    event OrdersMatched(
        bytes32 dealid,
        bytes32 appHash,
        bytes32 datasetHash,
        bytes32 workerpoolHash,
        bytes32 requestHash,
        uint256 volume
    );
    /// @notice The whole deal, for schedulers, workers and indexers. `deal` hashes to the value
    /// stored under `dealid`; `params` hashes to `deal.paramsHash`.
    event DealCreated(
        bytes32 indexed dealid,
        address indexed workerpool,
        address indexed requester,
        Deal deal,
        string params
    );
    event DealSponsored(bytes32 indexed dealid, address indexed sponsor);

    // categories
    event CreateCategory(uint256 catid, string name, string description, uint256 workClockTimeRef);

    // task lifecycle
    event TaskInitialize(bytes32 indexed taskid, address indexed workerpool);
    event TaskContribute(bytes32 indexed taskid, address indexed worker, bytes32 resultHash);
    event TaskConsensus(bytes32 indexed taskid, bytes32 consensus);
    event TaskReveal(bytes32 indexed taskid, address indexed worker, bytes32 digest);
    event TaskReopen(bytes32 indexed taskid);
    event TaskFinalize(bytes32 indexed taskid, bytes results);
    event TaskClaimed(bytes32 indexed taskid);
    /// @notice A contributor whose answer was proved: stake back, reward paid.
    event AccurateContribution(address indexed worker, bytes32 indexed taskid, uint256 reward);
    /// @notice A contributor that was wrong or silent: stake seized, score cut by a third.
    event FaultyContribution(address indexed worker, bytes32 indexed taskid);
    /// @notice Seized funds that nobody earned joined the burn account, for good.
    event Burned(uint256 amount);

    // committees
    /// @notice A worker bonded `memberBond()` and became member `position` of the workerpool.
    event MemberJoined(address indexed workerpool, address indexed worker, uint256 position);
    /// @notice A member left the active set: drawn no more for later deals, bond frozen a while.
    event MemberLeft(address indexed workerpool, address indexed worker);
    /// @notice A member held a wrong or silent seat: `penalty` was taken from its bond and it
    /// left the active set, as if it had left.
    event MemberExpelled(address indexed workerpool, address indexed worker, uint256 penalty);
    /// @notice A seat's holder did not vote while the task failed for want of a majority.
    event SilentSeat(bytes32 indexed taskid, address indexed worker);
    /// @notice The seed of a committee deal's draw is fixed: the seats can be read.
    event CommitteeDrawn(bytes32 indexed dealid, bytes32 seed);
    /// @notice The seed block's hash could no longer be read: the draw waits for `seedBlock`.
    event CommitteeReseeded(bytes32 indexed dealid, uint256 seedBlock);
    /// @notice A former member's bond went back to its balance.
    event BondReleased(address indexed workerpool, address indexed worker, uint256 amount);
}

/// @title The poco protocol: escrow, orders, matching and the task lifecycle, at one address
interface IPoco is IPocoEvents, IPocoErrors {
    // ------------------------------------------------------------------ configuration views
    function token() external view returns (address);
    function appregistry() external view returns (address);
    function datasetregistry() external view returns (address);
    function workerpoolregistry() external view returns (address);
    function domain() external view returns (EIP712Domain memory);
    function eip712domainSeparator() external view returns (bytes32);
    /// @notice The frozen-only account that burned funds join: its frozen part is the total burned.
    function burnAccount() external pure returns (address);
    function callbackGas() external view returns (uint256);

    // ------------------------------------------------------------------ escrow
    function deposit(uint256 amount) external;
    function depositFor(uint256 amount, address target) external;
    function withdraw(uint256 amount) external;
    function withdrawTo(uint256 amount, address target) external;
    /// @notice Called by the RLC token from `approveAndCall`: deposits `amount` for `sender`,
    /// then, when `data` is a `matchOrders` call whose requester is `sender`, matches it.
    function receiveApproval(address sender, uint256 amount, address token, bytes calldata data)
        external
        returns (bool);
    function balanceOf(address account) external view returns (uint256);
    function frozenOf(address account) external view returns (uint256);
    function viewAccount(address account) external view returns (Account memory);
    function viewScore(address worker) external view returns (uint256);

    // ------------------------------------------------------------------ categories
    function createCategory(string calldata name, string calldata description, uint256 timeref)
        external
        returns (uint256);
    function viewCategory(uint256 catid) external view returns (Category memory);
    function countCategory() external view returns (uint256);

    // ------------------------------------------------------------------ orders
    function verifySignature(address signer, bytes32 hash, bytes calldata sign)
        external
        view
        returns (bool);
    function viewConsumed(bytes32 orderHash) external view returns (uint256);
    function viewPresigned(bytes32 orderHash) external view returns (address);
    function hashAppOrder(AppOrder calldata order) external view returns (bytes32);
    function hashDatasetOrder(DatasetOrder calldata order) external view returns (bytes32);
    function hashWorkerpoolOrder(WorkerpoolOrder calldata order) external view returns (bytes32);
    function hashRequestOrder(RequestOrder calldata order) external view returns (bytes32);
    function manageAppOrder(AppOrderOperation calldata operation) external;
    function manageDatasetOrder(DatasetOrderOperation calldata operation) external;
    function manageWorkerpoolOrder(WorkerpoolOrderOperation calldata operation) external;
    function manageRequestOrder(RequestOrderOperation calldata operation) external;

    // ------------------------------------------------------------------ matching
    function matchOrders(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) external returns (bytes32 dealid);
    /// @notice Like `matchOrders`, but the caller pays instead of the requester.
    function sponsorMatchOrders(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) external returns (bytes32 dealid);
    function viewDealHash(bytes32 dealid) external view returns (bytes32);

    // ------------------------------------------------------------------ committees
    /// @notice Bonds `memberBond()` of the caller's balance to become a member of `workerpool`,
    /// which committee deals draw their contributors from.
    function joinWorkerpool(address workerpool) external;
    /// @notice Stops being drawn for deals matched from now on; the bond is released by
    /// `releaseBond` once `memberExitDelay()` has passed.
    function leaveWorkerpool(address workerpool) external;
    function releaseBond(address workerpool) external;
    function memberBond() external pure returns (uint256);
    /// @notice What a member loses from its bond per wrong or silent committee seat.
    function seatPenalty() external pure returns (uint256);
    function memberExitDelay() external pure returns (uint256);
    /// @notice How many members `workerpool` has in its active set (positions 0 to count - 1).
    function countMembers(address workerpool) external view returns (uint256);
    /// @notice The workerpool's membership epoch: one more at every join, leave or expulsion.
    function membershipEpoch(address workerpool) external view returns (uint256);
    /// @notice The active member at `position` now; `active` is false past the active set.
    function viewMember(address workerpool, uint256 position)
        external
        view
        returns (address worker, bool active);
    /// @notice The member that held `position` at membership `epoch` (zero if none did).
    function viewMemberAt(address workerpool, uint256 position, uint256 epoch)
        external
        view
        returns (address);
    function viewMembership(address workerpool, address worker)
        external
        view
        returns (Membership memory);
    /// @notice The committee size that serves `trust`: zero when no committee serves it.
    function committeeSize(uint256 trust) external pure returns (uint256);
    /// @notice The fewest active members a pool needs at match for a committee deal of `trust`.
    function minCommitteeMembers(uint256 trust) external pure returns (uint256);
    /// @notice Blocks between a committee deal's match and the block whose hash seeds it.
    function committeeSeedDelay() external view returns (uint256);

    // ------------------------------------------------------------------ task lifecycle
    function initialize(Deal calldata deal, uint256 idx) external returns (bytes32 taskid);
    function initializeArray(Deal calldata deal, uint256[] calldata indexes) external;
    function contribute(
        Deal calldata deal,
        uint256 idx,
        bytes32 resultHash,
        bytes32 resultSeal,
        address enclaveChallenge,
        bytes calldata enclaveSign,
        bytes calldata authorizationSign
    ) external;
    function reveal(bytes32 taskid, bytes32 resultDigest) external;
    function reopen(Deal calldata deal, uint256 idx, bytes32 consensus, address[] calldata winners)
        external;
    function finalize(
        Deal calldata deal,
        uint256 idx,
        bytes32 resultDigest,
        bytes calldata results,
        bytes calldata resultsCallback,
        address[] calldata contributors
    ) external;
    function contributeAndFinalize(
        Deal calldata deal,
        uint256 idx,
        bytes32 resultDigest,
        bytes calldata results,
        bytes calldata resultsCallback,
        address enclaveChallenge,
        bytes calldata enclaveSign,
        bytes calldata authorizationSign
    ) external;
    function claim(Deal calldata deal, uint256 idx, address[] calldata contributors) external;
    function claimArray(
        Deal calldata deal,
        uint256[] calldata indexes,
        address[][] calldata contributors
    ) external;

    function viewTask(bytes32 taskid) external view returns (Task memory);
    function viewContribution(bytes32 taskid, address worker)
        external
        view
        returns (Contribution memory);
    function viewGroup(bytes32 taskid, bytes32 resultHash) external view returns (Group memory);
    /// @notice The seats of a committee task: one member per seat, drawn with replacement; a
    /// worker holding k seats casts k votes. Reverts while the draw cannot be made.
    function viewCommittee(Deal calldata deal, uint256 idx)
        external
        view
        returns (address[] memory seats);
    function viewDraw(bytes32 dealid) external view returns (Draw memory);
    /// @notice Fixes a committee deal's seed once its seed block is past, or seeds it again from
    /// a later block when that block's hash can no longer be read. Anyone may call it.
    function drawCommittee(Deal calldata deal) external;
    /// @notice ERC-1154: the callback data of a completed task.
    function resultFor(bytes32 taskid) external view returns (bytes memory);
}
