// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IPocoEvents, IPocoTypes} from "./interfaces/IPoco.sol";
import {IPocoErrors} from "./interfaces/IPocoErrors.sol";
import {
    PocoStorage,
    AccountWord,
    MembershipWord,
    PoolWord,
    HolderWord
} from "./libs/PocoStorage.sol";

/// @title Constants, escrow primitives and workerpool membership, shared by `Poco` and its
/// task module
/// @notice An account holds a free balance and a frozen amount, both in nRLC. Funds move only
/// between accounts held by this contract, so the RLC it holds always equals the sum of every
/// account's balance and frozen amount. The primitives:
/// - lock: balance -> frozen, of the same account;
/// - unlock: frozen -> balance, of the same account;
/// - seize: frozen -> out of the account, to be rewarded to others in the same call;
/// - reward: into an account's balance, from what was seized in the same call;
/// - burn: what was seized and earned by nobody goes to the frozen part of `BURN_ACCOUNT`,
///   which no key controls, no call unlocks and no deposit may credit.
abstract contract PocoBase is IPocoEvents, IPocoErrors {
    using AccountWord for uint256;
    using MembershipWord for uint256;
    using PoolWord for uint256;
    using HolderWord for uint256;

    /// The frozen-only account that holds every burned amount: stakes and bonds seized from a
    /// task that nobody proved. Nothing is ever paid out of it (see "Burning" in
    /// docs/protocol.md: a pot paid to later tasks can always be harvested by self-dealing).
    address internal constant BURN_ACCOUNT = 0x000000000000000000000000000000000000dEaD;
    /// Percentage of the workerpool price the scheduler stakes per task.
    uint256 internal constant WORKERPOOL_STAKE_RATIO = 30;

    uint256 internal constant CONTRIBUTION_DEADLINE_RATIO = 7;
    uint256 internal constant REVEAL_DEADLINE_RATIO = 2;
    uint256 internal constant FINAL_DEADLINE_RATIO = 10;

    /// A contribution raises its worker's score only if it staked at least this much: a score
    /// is earned with funds at risk.
    uint256 internal constant MIN_SCORED_STAKE = 1e9;
    /// A worker's score rises at most once per period: reputation takes time to earn, whatever
    /// the number of tasks (self-dealt or not) a worker runs.
    uint256 internal constant SCORE_PERIOD = 1 days;

    /// Tag bit 0: the deal needs a TEE.
    bytes32 internal constant TEE_BIT = bytes32(uint256(1));
    /// Tag bits 1-3: TEE frameworks (Scone, Gramine, TDX), ignored in dataset tags.
    bytes32 internal constant TEE_FRAMEWORK_BITS = bytes32(uint256(0xe));

    /// Tag bit 9: the deal's contributors are drawn by the contract from the workerpool's
    /// active members (a committee), so the scheduler cannot choose who votes (see `PocoTasks`).
    bytes32 internal constant COMMITTEE_BIT = bytes32(uint256(1 << 9));
    /// Bond a worker freezes to become a member of a workerpool.
    uint256 internal constant MEMBER_BOND = 10e9;
    /// What a member loses from its bond for each committee seat it held wrong or silent; the
    /// member is also expelled from the pool.
    uint256 internal constant SEAT_PENALTY = 1e9;
    /// How long the bond of a member who left stays frozen: longer than any deal's life (the
    /// longest time reference a category may have is bounded by it), so a bond is there for
    /// every seat its member may still be penalized for.
    uint256 internal constant MEMBER_EXIT_DELAY = 7 days;
    /// A committee deal needs at least this many active members in its pool, and at least as
    /// many as the committee has seats.
    uint256 internal constant MIN_COMMITTEE_MEMBERS = 4;
    /// The largest trust each committee size serves, 16 bits per size, for the sizes 1, 3, 5,
    /// ..., 31 from the lowest bits up: 3, 6, 9, 14, 20, 29, 41, 57, 80, 112, 155, 215, 296,
    /// 408, 560, 768. A committee of size c serves trust t when an attacker holding a quarter
    /// of the pool's members wins a majority of its c independently drawn seats with a
    /// probability below 1 / t (the binomial tail; `Committees.t.sol` recomputes it).
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

    /// The fewest active members a pool needs to take a committee deal of `trust`.
    function _minCommitteeMembers(uint256 trust) internal pure returns (uint256) {
        uint256 size = _committeeSize(trust);
        return size > MIN_COMMITTEE_MEMBERS ? size : MIN_COMMITTEE_MEMBERS;
    }

    function _layout() internal pure returns (PocoStorage.Layout storage) {
        return PocoStorage.main();
    }

    // ================================================================== escrow primitives

    function _credit(address account, uint256 amount) internal {
        if (amount == 0) return;
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[account];
        uint256 balance = word.balance() + amount;
        if (balance > AccountWord.AMOUNT_MAX) revert AmountOutOfRange(balance);
        accounts[account] = word.withAmounts(balance, word.frozen());
    }

    function _debit(address account, uint256 amount) internal {
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[account];
        uint256 balance = word.balance();
        if (balance < amount) revert InsufficientBalance(account, amount, balance);
        accounts[account] = word.withAmounts(balance - amount, word.frozen());
    }

    /// Moves `amount` from the account's balance to its frozen part.
    function _lock(address account, uint256 amount) internal {
        mapping(address => uint256) storage accounts = _layout().accounts;
        accounts[account] = _locked(account, accounts[account], amount);
    }

    /// The account word with `amount` moved from its balance to its frozen part.
    function _locked(address account, uint256 word, uint256 amount)
        internal
        pure
        returns (uint256)
    {
        uint256 balance = word.balance();
        if (balance < amount) revert InsufficientBalance(account, amount, balance);
        uint256 frozen = word.frozen() + amount;
        if (frozen > AccountWord.AMOUNT_MAX) revert AmountOutOfRange(frozen);
        return word.withAmounts(balance - amount, frozen);
    }

    /// Moves `amount` from the account's frozen part to its balance.
    function _unlock(address account, uint256 amount) internal {
        if (amount == 0) return;
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[account];
        uint256 balance = word.balance() + amount;
        if (balance > AccountWord.AMOUNT_MAX) revert AmountOutOfRange(balance);
        accounts[account] = word.withAmounts(balance, word.frozen() - amount);
    }

    /// Takes `amount` out of the account's frozen part; the caller rewards or burns it.
    function _seize(address account, uint256 amount) internal {
        if (amount == 0) return;
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 word = accounts[account];
        accounts[account] = word.withAmounts(word.balance(), word.frozen() - amount);
    }

    /// Burns `amount` seized in the same call: it joins the burn account's frozen part.
    function _burn(uint256 amount) internal {
        if (amount == 0) return;
        mapping(address => uint256) storage accounts = _layout().accounts;
        uint256 frozen = accounts[BURN_ACCOUNT].frozen() + amount;
        if (frozen > AccountWord.AMOUNT_MAX) revert AmountOutOfRange(frozen);
        accounts[BURN_ACCOUNT] = AccountWord.withAmounts(0, 0, frozen);
        emit Burned(amount);
    }

    /// `amount * ratio / 100`, rounded down.
    function _percent(uint256 amount, uint256 ratio) internal pure returns (uint256) {
        return amount * ratio / 100;
    }

    // ================================================================== workerpool members

    /// Adds `worker` as the last active member of `workerpool`, bonding `MEMBER_BOND`.
    function _addMember(address workerpool, address worker) internal {
        PocoStorage.Members storage members = _layout().members[workerpool];
        uint256 state = members.state;
        uint256 epoch = state.epoch() + 1;
        uint256 position = state.activeCount();
        _setHolder(members, position, worker, epoch);
        members.state = PoolWord.pack(position + 1, epoch);
        _lock(worker, MEMBER_BOND);
        _layout().memberships[workerpool][worker] =
            MembershipWord.pack(position, epoch, 0, 0, MEMBER_BOND);
        emit MemberJoined(workerpool, worker, position);
    }

    /// Takes an active member out of the active set: the last member takes its position. The
    /// bond stays frozen until `releaseBond`, `MEMBER_EXIT_DELAY` later.
    function _removeMember(address workerpool, address worker, uint256 membership) internal {
        PocoStorage.Members storage members = _layout().members[workerpool];
        uint256 state = members.state;
        uint256 epoch = state.epoch() + 1;
        uint256 last = state.activeCount() - 1;
        uint256 position = membership.position();
        if (position != last) {
            address moved = members.heads[last].worker();
            _setHolder(members, position, moved, epoch);
            mapping(address => uint256) storage memberships = _layout().memberships[workerpool];
            uint256 movedWord = memberships[moved];
            memberships[moved] = MembershipWord.pack(position, epoch, 0, 0, movedWord.bond());
        }
        // Position `last` keeps its head: no deal matched from now on draws it until a new
        // member takes it, and deals matched before still resolve it to its holder then.
        members.state = PoolWord.pack(last, epoch);
        _layout().memberships[workerpool][worker] = MembershipWord.pack(
            position, membership.movedEpoch(), epoch, block.timestamp, membership.bond()
        );
    }

    /// Makes `worker` the holder of `position` from `epoch` on, keeping the previous holder in
    /// the position's history.
    function _setHolder(
        PocoStorage.Members storage members,
        uint256 position,
        address worker,
        uint256 epoch
    ) private {
        uint256 previous = members.heads[position];
        if (previous != 0) members.history[position].push(previous);
        members.heads[position] = HolderWord.pack(worker, epoch);
    }

    /// The worker that held `position` of the pool at `epoch`. Only positions below the
    /// active count of that epoch have one.
    function _holderAt(address workerpool, uint256 position, uint256 epoch)
        internal
        view
        returns (address)
    {
        PocoStorage.Members storage members = _layout().members[workerpool];
        uint256 head = members.heads[position];
        if (head.sinceEpoch() <= epoch) return head.worker();
        uint256[] storage history = members.history[position];
        for (uint256 i = history.length; i > 0; --i) {
            uint256 holder = history[i - 1];
            if (holder.sinceEpoch() <= epoch) return holder.worker();
        }
        return address(0);
    }

    /// Takes up to `seats` times `SEAT_PENALTY` from the bond `worker` holds in `workerpool`,
    /// and expels it from the active set if it is still there. Returns the amount seized.
    function _penalizeMember(address workerpool, address worker, uint256 seats)
        internal
        returns (uint256 penalty)
    {
        mapping(address => uint256) storage memberships = _layout().memberships[workerpool];
        uint256 membership = memberships[worker];
        if (membership == 0) return 0;
        penalty = seats * SEAT_PENALTY;
        uint256 bond = membership.bond();
        if (penalty > bond) penalty = bond;
        if (membership.isActive()) {
            _removeMember(workerpool, worker, membership);
            membership = memberships[worker];
            emit MemberExpelled(workerpool, worker, penalty);
        }
        memberships[worker] = membership.withBond(bond - penalty);
        _seize(worker, penalty);
    }

    // ================================================================== ids

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
