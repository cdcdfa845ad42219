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
