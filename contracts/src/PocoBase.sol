// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IPocoEvents, IPocoTypes} from "./interfaces/IPoco.sol";
import {IPocoErrors} from "./interfaces/IPocoErrors.sol";
import {PocoStorage, AccountWord} from "./libs/PocoStorage.sol";

/// @title Constants and escrow primitives shared by `Poco` and its task module
/// @notice An account holds a free balance and a frozen amount, both in nRLC. Funds move only
/// between accounts held by this contract, so the RLC it holds always equals the sum of every
/// account's balance and frozen amount. The primitives:
/// - lock: balance -> frozen, of the same account;
/// - unlock: frozen -> balance, of the same account;
/// - seize: frozen -> out of the account, to be rewarded to others in the same call;
/// - reward: into an account's balance, from what was seized in the same call.
abstract contract PocoBase is IPocoEvents, IPocoErrors {
    using AccountWord for uint256;

    /// The frozen-only account that collects the stakes of schedulers whose tasks fail and pays
    /// a share to the schedulers of successful tasks (top 20 bytes of keccak256("iExecKitty"), - 1).
    address internal constant KITTY = 0x99c2268479b93fDe36232351229815DF80837e23;
    /// Share of the kitty paid per successful task, in percent, at least `KITTY_MIN`...
    uint256 internal constant KITTY_RATIO = 10;
    uint256 internal constant KITTY_MIN = 1e9;
    /// Percentage of the workerpool price the scheduler stakes per task.
    uint256 internal constant WORKERPOOL_STAKE_RATIO = 30;

    uint256 internal constant CONTRIBUTION_DEADLINE_RATIO = 7;
    uint256 internal constant REVEAL_DEADLINE_RATIO = 2;
    uint256 internal constant FINAL_DEADLINE_RATIO = 10;

    /// Tag bit 0: the deal needs a TEE.
    bytes32 internal constant TEE_BIT = bytes32(uint256(1));
    /// Tag bits 1-3: TEE frameworks (Scone, Gramine, TDX), ignored in dataset tags.
    bytes32 internal constant TEE_FRAMEWORK_BITS = bytes32(uint256(0xe));

    /// Tag bit 9: the deal's contributors are drawn by the contract from the workerpool's
    /// bonded members (a committee), so the scheduler cannot choose who votes (see `PocoTasks`).
    bytes32 internal constant COMMITTEE_BIT = bytes32(uint256(1 << 9));
    /// Bond a worker freezes to become a member of a workerpool.
    uint256 internal constant MEMBER_BOND = 10e9;
    /// How long a leaving member's bond stays frozen.
    uint256 internal constant MEMBER_EXIT_DELAY = 7 days;
    /// The largest trust each committee size serves, 16 bits per size, for the sizes 1, 3, 5,
    /// ..., 31 from the lowest bits up: 3, 6, 9, 14, 20, 29, 41, 57, 80, 112, 155, 215, 296,
    /// 408, 560, 768. A committee of size c serves trust t when an attacker holding a quarter
    /// of the pool's members wins a majority of its c independently drawn seats with a
    /// probability below 1 / t (the binomial tail; `CommitteeSizes.t.sol` recomputes it).
    uint256 internal constant COMMITTEE_TRUSTS =
        0x030002300198012800d7009b0070005000390029001d0014000e000900060003;
    /// Highest trust a committee deal may ask for.
    uint256 internal constant MAX_COMMITTEE_TRUST = 768;

    /// Highest trust a request may ask for.
    uint256 internal constant MAX_TRUST = type(uint64).max;
    /// Highest number of contributions a task accepts: bounds every loop over contributors.
    uint256 internal constant MAX_CONTRIBUTORS = 32;
    /// Gas given to a deal's callback at finalize.
    uint256 internal constant CALLBACK_GAS = 200_000;

    /// The committee size serving `trust` (odd, 1 to 31); zero above `MAX_COMMITTEE_TRUST`.
    function _committeeSize(uint256 trust) internal pure returns (uint256) {
        for (uint256 i; i < 16; ++i) {
            if (trust <= (COMMITTEE_TRUSTS >> (16 * i)) & 0xffff) return 2 * i + 1;
        }
        return 0;
    }

    function _layout() internal pure returns (PocoStorage.Layout storage) {
        return PocoStorage.main();
    }

    function _credit(address account, uint256 amount) internal {
        if (amount == 0) return;
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[account];
        uint256 balance = word.balance() + amount;
        if (balance > AccountWord.AMOUNT_MAX) revert AmountOutOfRange(balance);
        accounts[account] = AccountWord.pack(balance, word.frozen(), word.score());
    }

    function _debit(address account, uint256 amount) internal {
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[account];
        uint256 balance = word.balance();
        if (balance < amount) revert InsufficientBalance(account, amount, balance);
        accounts[account] = AccountWord.pack(balance - amount, word.frozen(), word.score());
    }

    /// Moves `amount` from the account's frozen part to its balance.
    function _unlock(address account, uint256 amount) internal {
        if (amount == 0) return;
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[account];
        uint256 balance = word.balance() + amount;
        if (balance > AccountWord.AMOUNT_MAX) revert AmountOutOfRange(balance);
        accounts[account] = AccountWord.pack(balance, word.frozen() - amount, word.score());
    }

    /// Takes `amount` out of the account's frozen part; the caller rewards it elsewhere.
    function _seize(address account, uint256 amount) internal {
        if (amount == 0) return;
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[account];
        accounts[account] = AccountWord.pack(word.balance(), word.frozen() - amount, word.score());
    }

    /// Adds `amount` to the kitty.
    function _feedKitty(uint256 amount) internal {
        if (amount == 0) return;
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 frozen = accounts[KITTY].frozen() + amount;
        if (frozen > AccountWord.AMOUNT_MAX) revert AmountOutOfRange(frozen);
        accounts[KITTY] = AccountWord.pack(0, frozen, 0);
    }

    /// `amount * ratio / 100`, rounded down.
    function _percent(uint256 amount, uint256 ratio) internal pure returns (uint256) {
        return amount * ratio / 100;
    }

    /// The id of a deal: keccak256(requestHash ‖ botFirst).
    function _dealId(bytes32 requestHash, uint256 botFirst) internal pure returns (bytes32 id) {
        assembly ("memory-safe") {
            mstore(0x00, requestHash)
            mstore(0x20, botFirst)
            id := keccak256(0x00, 0x40)
        }
    }

    /// The id of a task: keccak256(dealid ‖ idx).
    function _taskId(bytes32 dealid, uint256 idx) internal pure returns (bytes32 id) {
        assembly ("memory-safe") {
            mstore(0x00, dealid)
            mstore(0x20, idx)
            id := keccak256(0x00, 0x40)
        }
    }
}
