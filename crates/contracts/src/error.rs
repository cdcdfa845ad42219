//! Errors of the contract layer.

use alloy::{contract, providers::PendingTransactionError, transports::TransportError};

use crate::Revert;

/// What can go wrong when deploying or calling the contracts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The chain refused the call; the revert is decoded.
    #[error("the contract refused the call: {0}")]
    Reverted(Revert),
    /// A contract creation was mined but failed.
    #[error("deploying {contract} failed")]
    DeploymentFailed {
        /// Name of the contract being deployed.
        contract: &'static str,
    },
    /// A deployment journal that cannot go on: another chain, another deployer, a contract it
    /// records that the chain does not hold as recorded.
    #[error("the deployment journal does not fit this chain: {reason}")]
    JournalMismatch {
        /// What does not fit.
        reason: String,
    },
    /// A deployment journal that cannot be written, or a creation that cannot be signed or
    /// waited for.
    #[error("{0}")]
    Journal(String),
    /// An address given as the token that is not an ERC-20 contract.
    #[error("{token} is not an ERC-20 token: {reason}")]
    NotAToken {
        /// The address given.
        token: alloy::primitives::Address,
        /// What it failed to answer.
        reason: String,
    },
    /// The RPC endpoint failed or could not be reached.
    #[error("RPC error: {0}")]
    Transport(#[from] TransportError),
    /// Waiting for a transaction failed.
    #[error("waiting for the transaction failed: {0}")]
    Pending(#[from] PendingTransactionError),
    /// Any other failure of a contract call.
    #[error("contract call failed: {0}")]
    Contract(contract::Error),
}

impl From<contract::Error> for Error {
    fn from(error: contract::Error) -> Self {
        match Revert::from_contract_error(&error) {
            Some(revert) => Self::Reverted(revert),
            None => Self::Contract(error),
        }
    }
}
