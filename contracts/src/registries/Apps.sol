// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Registry, RegistryEntry} from "./Registry.sol";

/// @title The app registry: applications for sale, as ERC-721 tokens
contract AppRegistry is Registry {
    struct AppData {
        string name;
        /// Execution format, e.g. "WASM".
        string appType;
        /// Where the app is fetched from (URL or content address).
        bytes multiaddr;
        /// sha256 of the app binary; workers refuse a binary that does not match.
        bytes32 checksum;
        /// TEE metadata (framework, version, enclave measurement); empty for standard apps.
        bytes mrenclave;
    }

    mapping(address => AppData) private _apps;

    event AppCreated(address indexed app, address indexed owner, string name);

    constructor() Registry("poco apps", "POCO-APP", address(new App(address(this)))) {}

    function createApp(
        address owner,
        string calldata name,
        string calldata appType,
        bytes calldata multiaddr,
        bytes32 checksum,
        bytes calldata mrenclave
    ) external returns (address app) {
        app = _register(owner, _salt(owner, name, appType, multiaddr, checksum, mrenclave));
        _apps[app] = AppData(name, appType, multiaddr, checksum, mrenclave);
        emit AppCreated(app, owner, name);
    }

    function predictApp(
        address owner,
        string calldata name,
        string calldata appType,
        bytes calldata multiaddr,
        bytes32 checksum,
        bytes calldata mrenclave
    ) external view returns (address) {
        return _predict(_salt(owner, name, appType, multiaddr, checksum, mrenclave));
    }

    function viewApp(address app) external view returns (AppData memory) {
        if (!isRegistered(app)) revert UnknownAsset(app);
        return _apps[app];
    }

    function _salt(
        address owner,
        string calldata name,
        string calldata appType,
        bytes calldata multiaddr,
        bytes32 checksum,
        bytes calldata mrenclave
    ) private pure returns (bytes32) {
        return keccak256(abi.encode(owner, name, appType, multiaddr, checksum, mrenclave));
    }
}

/// @title An app: its own address, owner and metadata views (iExec `App` compatible)
contract App is RegistryEntry {
    constructor(address registry_) RegistryEntry(registry_) {}

    function m_appName() external view returns (string memory) {
        return AppRegistry(registry).viewApp(address(this)).name;
    }

    function m_appType() external view returns (string memory) {
        return AppRegistry(registry).viewApp(address(this)).appType;
    }

    function m_appMultiaddr() external view returns (bytes memory) {
        return AppRegistry(registry).viewApp(address(this)).multiaddr;
    }

    function m_appChecksum() external view returns (bytes32) {
        return AppRegistry(registry).viewApp(address(this)).checksum;
    }

    function m_appMREnclave() external view returns (bytes memory) {
        return AppRegistry(registry).viewApp(address(this)).mrenclave;
    }
}
