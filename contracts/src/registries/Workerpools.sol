// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Registry, RegistryEntry} from "./Registry.sol";
import {IPocoErrors} from "../interfaces/IPocoErrors.sol";

/// @title The workerpool registry: pools of workers run by a scheduler, as ERC-721 tokens
/// @notice Each pool has a policy: the stake a worker locks per contribution (a percentage of
/// the pool price) and the share of the workers' reward the scheduler keeps. Policies are
/// bounded here and snapshotted into every deal at match time, so a change never affects a deal
/// already made, and a worker reads the terms of a deal before it contributes.
contract WorkerpoolRegistry is Registry {
    /// A worker never stakes more than the task's price.
    uint256 public constant MAX_WORKER_STAKE_RATIO = 100;
    /// The scheduler never keeps more than half of the workers' reward.
    uint256 public constant MAX_SCHEDULER_REWARD_RATIO = 50;
    uint256 public constant DEFAULT_WORKER_STAKE_RATIO = 30;
    uint256 public constant DEFAULT_SCHEDULER_REWARD_RATIO = 1;

    struct Policy {
        uint8 workerStakeRatio;
        uint8 schedulerRewardRatio;
    }

    mapping(address => string) private _descriptions;
    mapping(address => Policy) private _policies;

    event WorkerpoolCreated(address indexed workerpool, address indexed owner, string description);
    event PolicyUpdate(
        address indexed workerpool,
        uint256 oldWorkerStakeRatioPolicy,
        uint256 newWorkerStakeRatioPolicy,
        uint256 oldSchedulerRewardRatioPolicy,
        uint256 newSchedulerRewardRatioPolicy
    );

    constructor()
        Registry("poco workerpools", "POCO-POOL", address(new Workerpool(address(this))))
    {}

    function createWorkerpool(address owner, string calldata description)
        external
        returns (address workerpool)
    {
        workerpool = _register(owner, _salt(owner, description));
        _descriptions[workerpool] = description;
        _policies[workerpool] =
            Policy(uint8(DEFAULT_WORKER_STAKE_RATIO), uint8(DEFAULT_SCHEDULER_REWARD_RATIO));
        emit WorkerpoolCreated(workerpool, owner, description);
    }

    function predictWorkerpool(address owner, string calldata description)
        external
        view
        returns (address)
    {
        return _predict(_salt(owner, description));
    }

    /// Sets a pool's policy; only its owner may.
    function setPolicy(address workerpool, uint256 workerStakeRatio, uint256 schedulerRewardRatio)
        external
    {
        _requireOwner(workerpool);
        _setPolicy(workerpool, workerStakeRatio, schedulerRewardRatio);
    }

    /// Sets the calling pool's policy: the path of `Workerpool.changePolicy`, which checks the
    /// pool's owner itself.
    function setPolicyFromWorkerpool(uint256 workerStakeRatio, uint256 schedulerRewardRatio)
        external
    {
        if (!isRegistered(msg.sender)) revert UnknownAsset(msg.sender);
        _setPolicy(msg.sender, workerStakeRatio, schedulerRewardRatio);
    }

    function viewWorkerpool(address workerpool)
        external
        view
        returns (string memory description, uint256 workerStakeRatio, uint256 schedulerRewardRatio)
    {
        if (!isRegistered(workerpool)) revert UnknownAsset(workerpool);
        Policy memory policy = _policies[workerpool];
        return (_descriptions[workerpool], policy.workerStakeRatio, policy.schedulerRewardRatio);
    }

    /// Owner and policy in one call, for matching; the owner is zero for an unknown pool.
    function ownerAndPolicy(address workerpool)
        external
        view
        returns (address owner, uint256 workerStakeRatio, uint256 schedulerRewardRatio)
    {
        Policy memory policy = _policies[workerpool];
        return (ownerOrZero(workerpool), policy.workerStakeRatio, policy.schedulerRewardRatio);
    }

    function _setPolicy(address workerpool, uint256 workerStakeRatio, uint256 schedulerRewardRatio)
        private
    {
        if (
            workerStakeRatio > MAX_WORKER_STAKE_RATIO
                || schedulerRewardRatio > MAX_SCHEDULER_REWARD_RATIO
        ) revert InvalidPolicy(workerStakeRatio, schedulerRewardRatio);
        Policy memory old = _policies[workerpool];
        _policies[workerpool] = Policy(uint8(workerStakeRatio), uint8(schedulerRewardRatio));
        emit PolicyUpdate(
            workerpool,
            old.workerStakeRatio,
            workerStakeRatio,
            old.schedulerRewardRatio,
            schedulerRewardRatio
        );
    }

    function _salt(address owner, string calldata description) private pure returns (bytes32) {
        return keccak256(abi.encode(owner, description));
    }
}

/// @title A workerpool: its own address, owner, description and policy views (iExec compatible)
contract Workerpool is RegistryEntry {
    constructor(address registry_) RegistryEntry(registry_) {}

    function m_workerpoolDescription() external view returns (string memory description) {
        (description,,) = WorkerpoolRegistry(registry).viewWorkerpool(address(this));
    }

    function m_workerStakeRatioPolicy() external view returns (uint256 ratio) {
        (, ratio,) = WorkerpoolRegistry(registry).viewWorkerpool(address(this));
    }

    function m_schedulerRewardRatioPolicy() external view returns (uint256 ratio) {
        (,, ratio) = WorkerpoolRegistry(registry).viewWorkerpool(address(this));
    }

    /// Changes the pool's policy, within the registry's bounds; only the pool's owner may.
    function changePolicy(uint256 newWorkerStakeRatioPolicy, uint256 newSchedulerRewardRatioPolicy)
        external
    {
        if (msg.sender != owner()) revert IPocoErrors.NotAssetOwner(address(this), msg.sender);
        WorkerpoolRegistry(registry)
            .setPolicyFromWorkerpool(newWorkerStakeRatioPolicy, newSchedulerRewardRatioPolicy);
    }
}
