//! The errors of the SMS, its client and its crypto helpers, and how the service answers them.

use std::path::PathBuf;

use alloy::primitives::{Address, B256};
use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use poco_api::http::ErrorBody;
use tracing::error;

/// What can go wrong in the SMS, its client or its crypto helpers.
///
/// Messages never carry a secret value: only names, addresses and reasons.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request was not signed by who it claims, or its signature is malformed.
    #[error("bad request signature: {0}")]
    BadSignature(String),
    /// A signed request that is too old, too far in the future, or already seen.
    #[error(
        "stale or replayed request (timestamp {timestamp}): a signed request is accepted once, \
         stamped with the current unix time in seconds, at most {max_age_secs} s from the SMS's \
         clock"
    )]
    Replayed {
        /// The request's timestamp, in seconds since the Unix epoch.
        timestamp: u64,
        /// How far from the SMS's clock a timestamp may be, in seconds.
        max_age_secs: u64,
    },
    /// The signer may not write this secret (not the on-chain owner, not the requester...).
    #[error("{signer} may not {action}: {reason}")]
    NotOwner {
        /// Who signed.
        signer: Address,
        /// What was attempted.
        action: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// A write-once secret that is already set.
    #[error("{what} is already set and cannot be changed")]
    AlreadySet {
        /// Which secret.
        what: String,
    },
    /// An asset that is not registered on-chain.
    #[error("{what} {address} is not registered")]
    UnknownAsset {
        /// App or dataset.
        what: &'static str,
        /// Its address.
        address: Address,
    },
    /// A secret that is not set.
    #[error("{0} is not set")]
    NotFound(String),
    /// A malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// A request body above the service's limit.
    #[error("the body is larger than {limit} bytes")]
    TooLarge {
        /// The most bytes a body may have.
        limit: usize,
    },
    /// The deal presented is not the one on-chain.
    #[error("deal {0} is not on-chain as presented")]
    UnknownDeal(B256),
    /// A deal without the TEE tag: nothing of it runs in an enclave.
    #[error("deal {0} does not have the TEE tag")]
    NotTee(B256),
    /// The task is not ACTIVE on-chain.
    #[error("task {task_id} is not active (on-chain status {status})")]
    TaskNotActive {
        /// The task.
        task_id: B256,
        /// Its on-chain status.
        status: u8,
    },
    /// No enclave challenge was created for the task (the scheduler asks for it first).
    #[error("no enclave challenge exists for task {0}")]
    NoChallenge(B256),
    /// The worker does not hold the scheduler's authorization for this task and challenge.
    #[error("worker {worker} holds no authorization of the deal's scheduler for task {task_id}")]
    Unauthorized {
        /// The worker.
        worker: Address,
        /// The task.
        task_id: B256,
    },
    /// A session that does not exist, expired, was used, or belongs to another worker.
    #[error("session refused: {0}")]
    Session(String),
    /// The quote does not prove what it must: verification, measurement, binding, freshness.
    #[error("attestation refused: {0}")]
    Attestation(String),
    /// The deal asks for a hardware TEE framework and the evidence is a simulation.
    #[error(
        "INSECURE simulation attestation refused: the deal asks for the {0} framework, which \
         needs real hardware"
    )]
    SimulationRefused(&'static str),
    /// Something the session needs is not available (a dataset key, a result key...).
    #[error("cannot provision the session: {0}")]
    Provisioning(String),
    /// Encryption or decryption failed (wrong key, corrupt data).
    #[error("crypto: {0}")]
    Crypto(String),
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] poco_chain::Error),
    /// The protocol core refused something.
    #[error(transparent)]
    Protocol(#[from] poco_primitives::Error),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database's schema cannot be migrated (a migration failed, or one recorded as
    /// applied was changed since).
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value is corrupt or was sealed under another master key.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The master key file is missing, unreadable or too open.
    #[error("master key {path}: {reason}")]
    MasterKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The server's listener failed.
    #[error("server error: {0}")]
    Server(#[from] std::io::Error),
    /// A shared check of the SMS's formats or crypto failed in an unexpected way.
    #[error(transparent)]
    Api(poco_api::sms::Error),
}

/// Opening the store fails as it always did: the database's and the migrator's errors as they
/// are, a legacy schema ahead of this release as a corrupt value, the database file as I/O.
impl From<poco_storage::StorageError> for Error {
    fn from(error: poco_storage::StorageError) -> Self {
        use poco_storage::StorageError as Storage;
        match error {
            Storage::Database(error) => Self::Database(error),
            Storage::Migration(error) => Self::Migration(error),
            error @ Storage::LegacyVersion { .. } => Self::corrupt(error),
            Storage::File(error) => Self::Server(error),
        }
    }
}

/// The refusals the SMS shares with its clients' formats and crypto keep their codes.
impl From<poco_api::sms::Error> for Error {
    fn from(error: poco_api::sms::Error) -> Self {
        use poco_api::sms::Error as Api;
        match error {
            Api::Crypto(reason) => Self::Crypto(reason),
            Api::Attestation(reason) => Self::Attestation(reason),
            Api::BadRequest(reason) => Self::BadRequest(reason),
            Api::Signing(error) => Self::Protocol(error),
            other => Self::Api(other),
        }
    }
}

impl Error {
    /// The stable machine-readable code of this error, as the service answers it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSignature(_) => "bad_signature",
            Self::Replayed { .. } => "replayed_request",
            Self::NotOwner { .. } => "not_owner",
            Self::AlreadySet { .. } => "already_set",
            Self::UnknownAsset { .. } => "unknown_asset",
            Self::NotFound(_) => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::TooLarge { .. } => "too_large",
            Self::UnknownDeal(_) => "unknown_deal",
            Self::NotTee(_) => "not_tee",
            Self::TaskNotActive { .. } => "task_not_active",
            Self::NoChallenge(_) => "no_challenge",
            Self::Unauthorized { .. } => "unauthorized_worker",
            Self::Session(_) => "session_refused",
            Self::Attestation(_) => "attestation_refused",
            Self::SimulationRefused(_) => "simulation_refused",
            Self::Provisioning(_) => "provisioning_failed",
            _ => "internal",
        }
    }

    /// The HTTP status the service answers this error with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadSignature(_) | Self::Replayed { .. } => StatusCode::UNAUTHORIZED,
            Self::NotOwner { .. }
            | Self::Unauthorized { .. }
            | Self::Attestation(_)
            | Self::SimulationRefused(_)
            | Self::NotTee(_) => StatusCode::FORBIDDEN,
            Self::AlreadySet { .. } | Self::TaskNotActive { .. } => StatusCode::CONFLICT,
            Self::UnknownAsset { .. }
            | Self::NotFound(_)
            | Self::UnknownDeal(_)
            | Self::NoChallenge(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) | Self::Session(_) | Self::Provisioning(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Chain(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }
}

/// The one place errors become HTTP responses: 4xx say what was wrong, 5xx never leak
/// internals and log their cause.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = if status.is_server_error() {
            error!(error = %self, "internal error");
            let message = if matches!(self, Self::Chain(_)) { "the chain failed" } else { "" };
            ErrorBody {
                error: if message.is_empty() { "internal error".into() } else { message.into() },
                code: if message.is_empty() { "internal".into() } else { "chain".into() },
            }
        } else {
            ErrorBody { error: self.to_string(), code: self.code().to_owned() }
        };
        (status, Json(body)).into_response()
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
