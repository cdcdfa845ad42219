// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IPocoTypes} from "../../src/interfaces/IPocoTypes.sol";

/// @notice EIP-712 hashing of orders written for the tests, independently of `src/libs/Orders.sol`:
/// the type hashes are the literal values of protocol.md §1.6, every struct hash is one plain
/// `abi.encode` and the digest is built with `abi.encodePacked`.
library OrderHashing {
    bytes32 internal constant EIP712DOMAIN_TYPEHASH =
        0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f;
    bytes32 internal constant APPORDER_TYPEHASH =
        0x60815a0eeec47dddf1615fe53b31d016c31444e01b9d796db365443a6445d008;
    bytes32 internal constant DATASETORDER_TYPEHASH =
        0x6cfc932a5a3d22c4359295b9f433edff52b60703fa47690a04a83e40933dd47c;
    bytes32 internal constant WORKERPOOLORDER_TYPEHASH =
        0xaa3429fb281b34691803133d3d978a75bb77c617ed6bc9aa162b9b30920022bb;
    bytes32 internal constant REQUESTORDER_TYPEHASH =
        0xf24e853034a3a450aba845a82914fbb564ad85accca6cf62be112a154520fae0;

    string internal constant APPORDER_TYPE =
        "AppOrder(address app,uint256 appprice,uint256 volume,bytes32 tag,address datasetrestrict,address workerpoolrestrict,address requesterrestrict,bytes32 salt)";
    string internal constant DATASETORDER_TYPE =
        "DatasetOrder(address dataset,uint256 datasetprice,uint256 volume,bytes32 tag,address apprestrict,address workerpoolrestrict,address requesterrestrict,bytes32 salt)";
    string internal constant WORKERPOOLORDER_TYPE =
        "WorkerpoolOrder(address workerpool,uint256 workerpoolprice,uint256 volume,bytes32 tag,uint256 category,uint256 trust,address apprestrict,address datasetrestrict,address requesterrestrict,bytes32 salt)";
    string internal constant REQUESTORDER_TYPE =
        "RequestOrder(address app,uint256 appmaxprice,address dataset,uint256 datasetmaxprice,address workerpool,uint256 workerpoolmaxprice,address requester,uint256 volume,bytes32 tag,uint256 category,uint256 trust,address beneficiary,address callback,string params,bytes32 salt)";

    function appOperationTypehash() internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked("AppOrderOperation(AppOrder order,uint256 operation)", APPORDER_TYPE)
        );
    }

    function datasetOperationTypehash() internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                "DatasetOrderOperation(DatasetOrder order,uint256 operation)", DATASETORDER_TYPE
            )
        );
    }

    function workerpoolOperationTypehash() internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                "WorkerpoolOrderOperation(WorkerpoolOrder order,uint256 operation)",
                WORKERPOOLORDER_TYPE
            )
        );
    }

    function requestOperationTypehash() internal pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                "RequestOrderOperation(RequestOrder order,uint256 operation)", REQUESTORDER_TYPE
            )
        );
    }

    function separator(uint256 chainId, address verifyingContract) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                EIP712DOMAIN_TYPEHASH,
                keccak256("iExecODB"),
                keccak256("5.0.0"),
                chainId,
                verifyingContract
            )
        );
    }

    function digest(bytes32 domainSeparator, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", domainSeparator, structHash));
    }

    function hash(IPocoTypes.AppOrder memory o) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                APPORDER_TYPEHASH,
                o.app,
                o.appprice,
                o.volume,
                o.tag,
                o.datasetrestrict,
                o.workerpoolrestrict,
                o.requesterrestrict,
                o.salt
            )
        );
    }

    function hash(IPocoTypes.DatasetOrder memory o) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                DATASETORDER_TYPEHASH,
                o.dataset,
                o.datasetprice,
                o.volume,
                o.tag,
                o.apprestrict,
                o.workerpoolrestrict,
                o.requesterrestrict,
                o.salt
            )
        );
    }

    function hash(IPocoTypes.WorkerpoolOrder memory o) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                WORKERPOOLORDER_TYPEHASH,
                o.workerpool,
                o.workerpoolprice,
                o.volume,
                o.tag,
                o.category,
                o.trust,
                o.apprestrict,
                o.datasetrestrict,
                o.requesterrestrict,
                o.salt
            )
        );
    }

    function hash(IPocoTypes.RequestOrder memory o) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                REQUESTORDER_TYPEHASH,
                o.app,
                o.appmaxprice,
                o.dataset,
                o.datasetmaxprice,
                o.workerpool,
                o.workerpoolmaxprice,
                o.requester,
                o.volume,
                o.tag,
                o.category,
                o.trust,
                o.beneficiary,
                o.callback,
                keccak256(bytes(o.params)),
                o.salt
            )
        );
    }

    function hashOperation(IPocoTypes.AppOrder memory o, uint256 operation)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(appOperationTypehash(), hash(o), operation));
    }

    function hashOperation(IPocoTypes.DatasetOrder memory o, uint256 operation)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(datasetOperationTypehash(), hash(o), operation));
    }

    function hashOperation(IPocoTypes.WorkerpoolOrder memory o, uint256 operation)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(workerpoolOperationTypehash(), hash(o), operation));
    }

    function hashOperation(IPocoTypes.RequestOrder memory o, uint256 operation)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(requestOperationTypehash(), hash(o), operation));
    }
}
