// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @notice A contract wallet (ERC-1271): valid signatures are those of its signer key; the signer
/// can also make it call anything (to presign orders, transfer NFTs...).
contract ERC1271Wallet {
    bytes4 internal constant MAGIC = 0x1626ba7e;
    address public immutable signer;

    constructor(address signer_) {
        signer = signer_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature)
        external
        view
        returns (bytes4)
    {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return MAGIC;
        return 0xffffffff;
    }

    function execute(address target, bytes calldata data) external returns (bytes memory) {
        require(msg.sender == signer, "not signer");
        (bool ok, bytes memory answer) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(answer, 0x20), mload(answer))
            }
        }
        return answer;
    }
}

/// @notice An ERC-734 identity used as a whitelist group: members hold purpose 4.
contract GroupIdentity {
    mapping(address => bool) public member;

    function setMember(address account, bool isMember) external {
        member[account] = isMember;
    }

    function keyHasPurpose(bytes32 key, uint256 purpose) external view returns (bool) {
        return purpose == 4 && member[address(uint160(uint256(key)))];
    }
}

/// @notice An ERC-734 group whose lookup always reverts: a restriction naming it lets nobody in.
contract RevertingGroup {
    function keyHasPurpose(bytes32, uint256) external pure returns (bool) {
        revert("no");
    }
}

/// @notice A results consumer that records what it receives and how much gas it was given.
contract ResultConsumer {
    uint256 public calls;
    bytes32 public lastTaskid;
    bytes public lastResults;
    uint256 public gasAtEntry;

    function receiveResult(bytes32 taskid, bytes calldata results) external {
        gasAtEntry = gasleft();
        ++calls;
        lastTaskid = taskid;
        lastResults = results;
    }
}

/// @notice A results consumer that always reverts.
contract RevertingConsumer {
    function receiveResult(bytes32, bytes calldata) external pure {
        revert("consumer broken");
    }
}

/// @notice An ERC-20 with a supply far above 2^96, to reach the escrow's amount bound.
contract BigToken is ERC20 {
    constructor() ERC20("Big", "BIG") {
        _mint(msg.sender, 1 << 120);
    }
}
