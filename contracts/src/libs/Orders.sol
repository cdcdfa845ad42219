// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IPocoTypes} from "../interfaces/IPocoTypes.sol";

/// @title EIP-712 hashing of orders and order operations
/// @notice The type strings are those of iExec PoCo v5, so that orders signed by existing iExec
/// tools hash, verify and match here. A struct hash is keccak256 of the type hash followed by
/// every field (the signature excluded, `params` replaced by its keccak256), each as a word.
library Orders {
    bytes32 internal constant EIP712DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );
    bytes32 internal constant APPORDER_TYPEHASH = keccak256(
        "AppOrder(address app,uint256 appprice,uint256 volume,bytes32 tag,address datasetrestrict,address workerpoolrestrict,address requesterrestrict,bytes32 salt)"
    );
    bytes32 internal constant DATASETORDER_TYPEHASH = keccak256(
        "DatasetOrder(address dataset,uint256 datasetprice,uint256 volume,bytes32 tag,address apprestrict,address workerpoolrestrict,address requesterrestrict,bytes32 salt)"
    );
    bytes32 internal constant WORKERPOOLORDER_TYPEHASH = keccak256(
        "WorkerpoolOrder(address workerpool,uint256 workerpoolprice,uint256 volume,bytes32 tag,uint256 category,uint256 trust,address apprestrict,address datasetrestrict,address requesterrestrict,bytes32 salt)"
    );
    bytes32 internal constant REQUESTORDER_TYPEHASH = keccak256(
        "RequestOrder(address app,uint256 appmaxprice,address dataset,uint256 datasetmaxprice,address workerpool,uint256 workerpoolmaxprice,address requester,uint256 volume,bytes32 tag,uint256 category,uint256 trust,address beneficiary,address callback,string params,bytes32 salt)"
    );
    bytes32 internal constant APPORDEROPERATION_TYPEHASH = keccak256(
        "AppOrderOperation(AppOrder order,uint256 operation)AppOrder(address app,uint256 appprice,uint256 volume,bytes32 tag,address datasetrestrict,address workerpoolrestrict,address requesterrestrict,bytes32 salt)"
    );
    bytes32 internal constant DATASETORDEROPERATION_TYPEHASH = keccak256(
        "DatasetOrderOperation(DatasetOrder order,uint256 operation)DatasetOrder(address dataset,uint256 datasetprice,uint256 volume,bytes32 tag,address apprestrict,address workerpoolrestrict,address requesterrestrict,bytes32 salt)"
    );
    bytes32 internal constant WORKERPOOLORDEROPERATION_TYPEHASH = keccak256(
        "WorkerpoolOrderOperation(WorkerpoolOrder order,uint256 operation)WorkerpoolOrder(address workerpool,uint256 workerpoolprice,uint256 volume,bytes32 tag,uint256 category,uint256 trust,address apprestrict,address datasetrestrict,address requesterrestrict,bytes32 salt)"
    );
    bytes32 internal constant REQUESTORDEROPERATION_TYPEHASH = keccak256(
        "RequestOrderOperation(RequestOrder order,uint256 operation)RequestOrder(address app,uint256 appmaxprice,address dataset,uint256 datasetmaxprice,address workerpool,uint256 workerpoolmaxprice,address requester,uint256 volume,bytes32 tag,uint256 category,uint256 trust,address beneficiary,address callback,string params,bytes32 salt)"
    );

    string internal constant DOMAIN_NAME = "iExecODB";
    string internal constant DOMAIN_VERSION = "5.0.0";

    function domainSeparator(uint256 chainId, address verifyingContract)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                EIP712DOMAIN_TYPEHASH,
                keccak256(bytes(DOMAIN_NAME)),
                keccak256(bytes(DOMAIN_VERSION)),
                chainId,
                verifyingContract
            )
        );
    }

    /// The EIP-712 digest `keccak256(0x1901 ‖ separator ‖ structHash)`.
    function digest(bytes32 separator, bytes32 structHash) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), separator)
            mstore(add(ptr, 0x22), structHash)
            result := keccak256(ptr, 0x42)
        }
    }

    function hash(IPocoTypes.AppOrder calldata order) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                APPORDER_TYPEHASH,
                order.app,
                order.appprice,
                order.volume,
                order.tag,
                order.datasetrestrict,
                order.workerpoolrestrict,
                order.requesterrestrict,
                order.salt
            )
        );
    }

    function hash(IPocoTypes.DatasetOrder calldata order) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                DATASETORDER_TYPEHASH,
                order.dataset,
                order.datasetprice,
                order.volume,
                order.tag,
                order.apprestrict,
                order.workerpoolrestrict,
                order.requesterrestrict,
                order.salt
            )
        );
    }

    function hash(IPocoTypes.WorkerpoolOrder calldata order) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                WORKERPOOLORDER_TYPEHASH,
                order.workerpool,
                order.workerpoolprice,
                order.volume,
                order.tag,
                order.category,
                order.trust,
                order.apprestrict,
                order.datasetrestrict,
                order.requesterrestrict,
                order.salt
            )
        );
    }

    function hash(IPocoTypes.RequestOrder calldata order) internal pure returns (bytes32) {
        // Encoded in two halves to stay within the stack; the bytes are those of one abi.encode
        // because every element is a 32-byte word.
        return keccak256(
            bytes.concat(
                abi.encode(
                    REQUESTORDER_TYPEHASH,
                    order.app,
                    order.appmaxprice,
                    order.dataset,
                    order.datasetmaxprice,
                    order.workerpool,
                    order.workerpoolmaxprice,
                    order.requester
                ),
                abi.encode(
                    order.volume,
                    order.tag,
                    order.category,
                    order.trust,
                    order.beneficiary,
                    order.callback,
                    keccak256(bytes(order.params)),
                    order.salt
                )
            )
        );
    }

    function hash(IPocoTypes.AppOrderOperation calldata op) internal pure returns (bytes32) {
        return keccak256(abi.encode(APPORDEROPERATION_TYPEHASH, hash(op.order), op.operation));
    }

    function hash(IPocoTypes.DatasetOrderOperation calldata op) internal pure returns (bytes32) {
        return keccak256(abi.encode(DATASETORDEROPERATION_TYPEHASH, hash(op.order), op.operation));
    }

    function hash(IPocoTypes.WorkerpoolOrderOperation calldata op) internal pure returns (bytes32) {
        return
            keccak256(abi.encode(WORKERPOOLORDEROPERATION_TYPEHASH, hash(op.order), op.operation));
    }

    function hash(IPocoTypes.RequestOrderOperation calldata op) internal pure returns (bytes32) {
        return keccak256(abi.encode(REQUESTORDEROPERATION_TYPEHASH, hash(op.order), op.operation));
    }
}
