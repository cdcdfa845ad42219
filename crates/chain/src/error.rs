//! Errors of chain access.

use std::{path::PathBuf, time::Duration};

use alloy::{
    contract, primitives::B256, providers::PendingTransactionError, transports::TransportError,
};
use poco_contracts::Revert;

/// What can go wrong talking to the chain or running the devnet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The contract refused the call.
    #[error("{0}")]
    Reverted(Revert),
    /// The RPC endpoint failed or could not be reached.
    #[error("RPC error: {0}")]
    Rpc(#[from] TransportError),
    /// Waiting for a transaction failed.
    #[error("waiting for the transaction failed: {0}")]
    Pending(#[from] PendingTransactionError),
    /// A transaction was sent but not mined (or not confirmed) in time. It may still be mined
    /// later: its nonce is taken.
    #[error(
        "transaction {hash} was sent but not {} within {} s: the chain may have stalled, or \
         the fee is too low for it to be mined; it may still be mined later, so look it up \
         before sending the same thing again",
        confirmed(*confirmations),
        waited.as_secs()
    )]
    NotMined {
        /// The transaction's hash.
        hash: B256,
        /// How long it was waited for.
        waited: Duration,
        /// The confirmations it was waited for, on top of the block including it.
        confirmations: u64,
    },
    /// A contract call failed for another reason than a revert.
    #[error("contract call failed: {0}")]
    Contract(contract::Error),
    /// The RPC URL is not valid.
    #[error("invalid RPC URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// A transaction was needed but the client has no wallet.
    #[error("this needs a wallet to sign transactions, and none is configured")]
    NoWallet,
    /// The anvil binary cannot be found.
    #[error(
        "anvil not found at {0}: run `npm ci` at the repository root, or set POCO_ANVIL to its path"
    )]
    AnvilNotFound(PathBuf),
    /// anvil did not start.
    #[error("anvil did not start: {0}")]
    AnvilStart(String),
    /// A devnet file is missing, unreadable or corrupt.
    #[error("devnet file {path}: {reason}")]
    DevnetFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The contracts layer failed (deployment).
    #[error(transparent)]
    Contracts(poco_contracts::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether trying again later may succeed (network trouble, not a refusal).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Rpc(error) => is_transient_transport(error),
            Self::Pending(PendingTransactionError::TransportError(error)) => {
                is_transient_transport(error)
            }
            Self::Contract(contract::Error::TransportError(error)) => is_transient_transport(error),
            Self::NotMined { .. } => true,
            _ => false,
        }
    }

    /// The transport's error, when the endpoint failed or answered with an error.
    pub fn transport(&self) -> Option<&TransportError> {
        match self {
            Self::Rpc(error)
            | Self::Pending(PendingTransactionError::TransportError(error))
            | Self::Contract(contract::Error::TransportError(error)) => Some(error),
            _ => None,
        }
    }

    /// The HTTP status and body of the endpoint's refusal (401, 403, 429...), when it answered
    /// one instead of a JSON-RPC response.
    pub fn http_refusal(&self) -> Option<(u16, &str)> {
        use alloy::transports::{RpcError, TransportErrorKind};
        match self.transport()? {
            RpcError::Transport(TransportErrorKind::HttpError(http)) => {
                Some((http.status, http.body.as_str()))
            }
            _ => None,
        }
    }

    /// The decoded revert, when the chain refused the call.
    pub fn revert(&self) -> Option<&Revert> {
        match self {
            Self::Reverted(revert) => Some(revert),
            Self::Contracts(poco_contracts::Error::Reverted(revert)) => Some(revert),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

impl From<contract::Error> for Error {
    fn from(error: contract::Error) -> Self {
        match Revert::from_contract_error(&error) {
            Some(revert) => Self::Reverted(revert),
            None => Self::Contract(error),
        }
    }
}

impl From<poco_contracts::Error> for Error {
    fn from(error: poco_contracts::Error) -> Self {
        match error {
            poco_contracts::Error::Reverted(revert) => Self::Reverted(revert),
            other => Self::Contracts(other),
        }
    }
}

/// "mined" or "confirmed N blocks deep", for [`Error::NotMined`].
fn confirmed(confirmations: u64) -> String {
    match confirmations {
        0 => "mined".into(),
        n => format!("mined and confirmed {n} blocks deep"),
    }
}

/// Network-level failures worth retrying: rate limits, unavailability, dropped connections.
pub(crate) fn is_transient_transport(error: &TransportError) -> bool {
    use alloy::transports::{RpcError, TransportErrorKind};
    match error {
        RpcError::Transport(kind) => match kind {
            TransportErrorKind::BackendGone | TransportErrorKind::PubsubUnavailable => true,
            TransportErrorKind::Custom(inner) => {
                // The cause is often deep in the chain (reqwest -> hyper: "connection closed
                // before message completed"), so every level is read.
                let mut message = String::new();
                let mut level: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
                while let Some(error) = level {
                    message.push_str(&error.to_string().to_lowercase());
                    message.push('\n');
                    level = error.source();
                }
                ["connection", "timed out", "timeout", "reset", "broken pipe", "eof"]
                    .iter()
                    .any(|needle| message.contains(needle))
            }
            other => other.is_retry_err(),
        },
        RpcError::ErrorResp(payload) => payload.is_retry_err(),
        _ => false,
    }
}
