// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice A results consumer that keeps the last delivery.
contract RecordingConsumer {
    uint256 public deliveries;
    bytes32 public lastTaskid;

    function receiveResult(bytes32 taskid, bytes calldata) external {
        ++deliveries;
        lastTaskid = taskid;
    }
}

/// @notice A results consumer that refuses every delivery.
contract RefusingConsumer {
    function receiveResult(bytes32, bytes calldata) external pure {
        revert("refused");
    }
}

/// @notice A results consumer that answers every delivery with 100 KB of return data.
contract BulkyConsumer {
    fallback() external {
        assembly {
            mstore(99968, 1)
            return(0, 100000)
        }
    }
}
