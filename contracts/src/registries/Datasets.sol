// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Registry, RegistryEntry} from "./Registry.sol";

/// @title The dataset registry: datasets for sale, as ERC-721 tokens
contract DatasetRegistry is Registry {
    struct DatasetData {
        string name;
        /// Where the dataset is fetched from (URL or content address).
        bytes multiaddr;
        /// sha256 of the dataset file (of the encrypted file for a confidential dataset).
        bytes32 checksum;
    }

    mapping(address => DatasetData) private _datasets;

    event DatasetCreated(address indexed dataset, address indexed owner, string name);

    constructor() Registry("poco datasets", "POCO-DATASET", address(new Dataset(address(this)))) {}

    function createDataset(
        address owner,
        string calldata name,
        bytes calldata multiaddr,
        bytes32 checksum
    ) external returns (address dataset) {
        dataset = _register(owner, _salt(owner, name, multiaddr, checksum));
        _datasets[dataset] = DatasetData(name, multiaddr, checksum);
        emit DatasetCreated(dataset, owner, name);
    }

    function predictDataset(
        address owner,
        string calldata name,
        bytes calldata multiaddr,
        bytes32 checksum
    ) external view returns (address) {
        return _predict(_salt(owner, name, multiaddr, checksum));
    }

    function viewDataset(address dataset) external view returns (DatasetData memory) {
        if (!isRegistered(dataset)) revert UnknownAsset(dataset);
        return _datasets[dataset];
    }

    function _salt(address owner, string calldata name, bytes calldata multiaddr, bytes32 checksum)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(owner, name, multiaddr, checksum));
    }
}

/// @title A dataset: its own address, owner and metadata views (iExec `Dataset` compatible)
contract Dataset is RegistryEntry {
    constructor(address registry_) RegistryEntry(registry_) {}

    function m_datasetName() external view returns (string memory) {
        return DatasetRegistry(registry).viewDataset(address(this)).name;
    }

    function m_datasetMultiaddr() external view returns (bytes memory) {
        return DatasetRegistry(registry).viewDataset(address(this)).multiaddr;
    }

    function m_datasetChecksum() external view returns (bytes32) {
        return DatasetRegistry(registry).viewDataset(address(this)).checksum;
    }
}
