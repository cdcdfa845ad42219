// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @title Signature checks for orders, operations, authorizations and enclave results
/// @notice An EOA signs with a 65-byte (r, s, v) or a 64-byte EIP-2098 (r, vs) signature, with a
/// low `s` (malleable signatures are refused). A contract signer answers ERC-1271. The ECDSA path
/// is tried first, so an EOA signature costs no account lookup.
library Signatures {
    /// Whether `signature` is `signer`'s signature of `hash`, by ECDSA or ERC-1271.
    function isValid(address signer, bytes32 hash, bytes calldata signature)
        internal
        view
        returns (bool)
    {
        if (signer == address(0)) return false;
        if (recover(hash, signature) == signer) return true;
        if (signer.code.length == 0) return false;
        (bool ok, bytes memory answer) =
            signer.staticcall(abi.encodeCall(IERC1271.isValidSignature, (hash, signature)));
        return ok && answer.length >= 32
            && abi.decode(answer, (bytes32)) == bytes32(IERC1271.isValidSignature.selector);
    }

    /// The ECDSA signer of `hash`, or the zero address for any malformed or malleable signature.
    function recover(bytes32 hash, bytes calldata signature) internal pure returns (address) {
        address recovered;
        ECDSA.RecoverError err;
        if (signature.length == 65) {
            (recovered, err,) = ECDSA.tryRecoverCalldata(hash, signature);
        } else if (signature.length == 64) {
            bytes32 r = bytes32(signature[0:32]);
            bytes32 vs = bytes32(signature[32:64]);
            (recovered, err,) = ECDSA.tryRecover(hash, r, vs);
        } else {
            return address(0);
        }
        return err == ECDSA.RecoverError.NoError ? recovered : address(0);
    }

    /// `keccak256("\x19Ethereum Signed Message:\n32" ‖ hash)`: what `personal_sign` signs.
    function toEthSignedMessageHash(bytes32 hash) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            mstore(0x00, "\x19Ethereum Signed Message:\n32")
            mstore(0x1c, hash)
            result := keccak256(0x00, 0x3c)
        }
    }
}
