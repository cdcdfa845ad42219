// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Implemented by contracts that accept `approveAndCall`.
interface ITokenSpender {
    function receiveApproval(address sender, uint256 amount, address token, bytes calldata data)
        external
        returns (bool);
}

/// @title RLC for devnets: an ERC-20 with 9 decimals and `approveAndCall`
/// @notice Production deployments use the existing RLC token; this one mints the whole supply
/// (87 million RLC) to its deployer, who funds the devnet's accounts.
contract RLC is ERC20 {
    uint256 public constant TOTAL_SUPPLY = 87_000_000 * 1e9;

    constructor() ERC20("RLC", "RLC") {
        _mint(msg.sender, TOTAL_SUPPLY);
    }

    function decimals() public pure override returns (uint8) {
        return 9;
    }

    /// Approves `spender` for `amount`, then calls its `receiveApproval` in the same transaction.
    function approveAndCall(address spender, uint256 amount, bytes calldata data)
        external
        returns (bool)
    {
        _approve(msg.sender, spender, amount);
        return ITokenSpender(spender).receiveApproval(msg.sender, amount, address(this), data);
    }
}
