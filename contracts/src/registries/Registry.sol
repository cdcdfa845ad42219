// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {IPocoErrors} from "../interfaces/IPocoErrors.sol";

/// @title An ERC-721 registry of assets, each asset a contract address of its own
/// @notice Every asset (app, dataset, workerpool) is a minimal clone of the registry's `master`
/// implementation, created with CREATE2 so that its address is known in advance. The NFT token
/// id is the asset address; whoever holds the token owns the asset and signs its orders, so
/// transferring the token hands over the asset and voids every order its previous owner signed.
abstract contract Registry is ERC721, IPocoErrors {
    /// The implementation every asset of this registry is a clone of.
    address public immutable master;

    constructor(string memory name_, string memory symbol_, address master_)
        ERC721(name_, symbol_)
    {
        master = master_;
    }

    /// Whether `entry` is an asset of this registry.
    function isRegistered(address entry) public view returns (bool) {
        return _ownerOf(uint256(uint160(entry))) != address(0);
    }

    /// The owner of `entry`, or the zero address when it is not registered here.
    function ownerOrZero(address entry) public view returns (address) {
        return _ownerOf(uint256(uint160(entry)));
    }

    function _predict(bytes32 salt) internal view returns (address) {
        return Clones.predictDeterministicAddress(master, salt);
    }

    function _register(address owner, bytes32 salt) internal returns (address entry) {
        entry = Clones.cloneDeterministic(master, salt);
        _mint(owner, uint256(uint160(entry)));
    }

    function _requireOwner(address entry) internal view {
        address owner = _ownerOf(uint256(uint160(entry)));
        if (owner == address(0)) revert UnknownAsset(entry);
        if (owner != msg.sender) revert NotAssetOwner(entry, msg.sender);
    }
}

/// @title What every asset contract answers: its owner and its registry
abstract contract RegistryEntry {
    /// The registry this asset belongs to. An immutable of the master implementation, which
    /// every clone executes, so each clone knows its registry without storing it.
    address public immutable registry;

    constructor(address registry_) {
        registry = registry_;
    }

    /// The current holder of this asset's registry token.
    function owner() public view returns (address) {
        return Registry(registry).ownerOf(uint256(uint160(address(this))));
    }
}
