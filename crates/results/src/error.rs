//! The crate's one error type, and its mapping to HTTP responses (the only place where that
//! mapping happens).

use std::path::PathBuf;

use alloy::primitives::{Address, B256, U256};
use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use poco_api::http::ErrorBody;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the result store: a refusal of a request, or a failure of
/// the store.
///
/// Refusals map to a 4xx response whose JSON body `{"error", "code"}`
/// ([`poco_api::http::ErrorBody`]) carries the message and a stable machine-readable code
/// ([`Error::code`]); the client turns such a response back into
/// [`poco_api::results::Error::Refused`]. Failures of the store itself (chain, storage) map to 5xx responses that
/// never show their cause, which is logged instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---------------------------------------------------------------- 400
    /// A header or path parameter is malformed.
    #[error("invalid {what}: {reason}")]
    BadRequest {
        /// What is malformed (a header name, the task id...).
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The task index does not belong to the deal, or does not give the task id of the path.
    #[error(
        "task {task_id} is not task {index} of deal {deal_id}: the task id must be \
         keccak256(dealid ‖ idx) with idx in the deal's range"
    )]
    TaskMismatch {
        /// The task id in the path.
        task_id: B256,
        /// The deal named by the request.
        deal_id: B256,
        /// The task index named by the request.
        index: U256,
    },

    // ---------------------------------------------------------------- 401
    /// An authentication header is missing.
    #[error("missing {header} header: {hint}")]
    MissingAuth {
        /// The header.
        header: &'static str,
        /// What it should hold.
        hint: String,
    },
    /// The request's timestamp is too far from the store's clock.
    #[error(
        "stale request: timestamp {timestamp} is more than {max_age}s away from the store's \
         clock ({now}); sign each request when sending it"
    )]
    StaleRequest {
        /// The request's timestamp (unix seconds).
        timestamp: u64,
        /// The store's clock (unix seconds).
        now: u64,
        /// The accepted distance, in seconds.
        max_age: u64,
    },
    /// The same signed request was already received.
    #[error("replayed request: this signed request was already received; sign a new one")]
    ReplayedRequest,
    /// The body is not the one the request signature covers.
    #[error("the body's sha256 is {actual}, but the signed request says {signed}")]
    ContentHashMismatch {
        /// What the signed header says.
        signed: B256,
        /// What the body hashes to.
        actual: B256,
    },
    /// The download challenge is unknown or was already used.
    #[error(
        "unknown download challenge: it was never issued for this task, or it was already \
         used; get a new one from GET /results/{{taskid}}/challenge"
    )]
    UnknownChallenge,
    /// The download challenge expired.
    #[error("the download challenge expired at {expired_at}; get a new one")]
    ExpiredChallenge {
        /// When it expired (unix seconds).
        expired_at: u64,
    },

    // ---------------------------------------------------------------- 403
    /// The upload ticket is not the deal's scheduler's signature for this worker and task.
    #[error(
        "worker {worker} is not the uploader the scheduler chose for task {task_id}: the upload \
         ticket must be the signature of the deal's scheduler {scheduler} for this worker and task"
    )]
    NotChosenWorker {
        /// The worker that signed the request.
        worker: Address,
        /// The task.
        task_id: B256,
        /// The deal's scheduler.
        scheduler: Address,
    },
    /// The download is not signed by the deal's beneficiary.
    #[error("{signer} is not the beneficiary of task {task_id}; only the beneficiary downloads")]
    NotBeneficiary {
        /// Who signed the challenge.
        signer: Address,
        /// The task.
        task_id: B256,
    },

    /// A signed `HEAD` by somebody who is neither the deal's beneficiary nor its scheduler.
    #[error(
        "{signer} is neither the beneficiary nor the scheduler of task {task_id}: send the HEAD \
         unsigned to learn whether the result exists"
    )]
    NotEntitled {
        /// Who signed the request.
        signer: Address,
        /// The task.
        task_id: B256,
    },

    /// A publication of an app's code not signed by the app's owner.
    #[error(
        "{signer} does not own app {app} (its owner is {owner}); only the owner publishes its code"
    )]
    NotAppOwner {
        /// Who signed the request.
        signer: Address,
        /// The app.
        app: Address,
        /// Its owner on-chain.
        owner: Address,
    },

    // ---------------------------------------------------------------- 404
    /// No app registered at this address.
    #[error("no app is registered at {app} on this chain")]
    UnknownApp {
        /// The address named.
        app: Address,
    },
    /// No code stored under this checksum.
    #[error("no app code is published with sha256 {checksum}")]
    UnknownCode {
        /// The checksum asked for.
        checksum: B256,
    },
    /// No deal with this id on the chain.
    #[error("unknown deal {deal_id}: no such deal on this chain")]
    UnknownDeal {
        /// The deal id.
        deal_id: B256,
    },
    /// No such endpoint.
    #[error("no such endpoint: {path}")]
    NoRoute {
        /// The path requested.
        path: String,
    },
    /// No result stored for this task.
    #[error("no result stored for task {task_id}")]
    UnknownResult {
        /// The task.
        task_id: B256,
    },

    // ---------------------------------------------------------------- 409
    /// A publication whose checksum is not the app's registered one.
    #[error(
        "app {app} is registered with checksum {registered}, not {published}: publish the file \
         it was registered with"
    )]
    CodeMismatch {
        /// The app.
        app: Address,
        /// Its registered checksum.
        registered: B256,
        /// The checksum of the publication.
        published: B256,
    },
    /// A result is already stored for this task.
    #[error("a result was already uploaded for task {task_id}; a result is uploaded only once")]
    AlreadyUploaded {
        /// The task.
        task_id: B256,
    },
    /// Another upload of this task is being processed.
    #[error("another upload of task {task_id} is in progress")]
    UploadInProgress {
        /// The task.
        task_id: B256,
    },
    /// The task has no final consensus yet (or failed), so no result can be checked.
    #[error("task {task_id} cannot take a result yet: {reason}")]
    TaskNotReady {
        /// The task.
        task_id: B256,
        /// What the chain says.
        reason: String,
    },

    // ---------------------------------------------------------------- 401, 413, 422
    /// A refusal the store shares with its clients, with the same code: a bad signature, a
    /// body or an archive too large, an archive that is not a clean tar or whose digest is not
    /// the task's consensus.
    #[error(transparent)]
    Checked(poco_api::results::Error),

    // ---------------------------------------------------------------- 429 / 408
    /// The store holds too many pending challenges, replay records or uploads right now.
    #[error("the result store is busy ({what}); try again shortly")]
    Busy {
        /// What is full.
        what: &'static str,
    },
    /// The request took longer than the store allows.
    #[error("the request took longer than {seconds}s")]
    Timeout {
        /// The limit, in seconds.
        seconds: u64,
    },

    // ---------------------------------------------------------------- 5xx (never shown)
    /// The chain could not be read.
    #[error("chain error: {0}")]
    Chain(#[from] poco_chain::Error),
    /// The chain's deal log does not match the deal hash the contract stores.
    #[error("the DealCreated log of deal {deal_id} does not match its on-chain hash")]
    DealInconsistent {
        /// The deal.
        deal_id: B256,
    },
    /// The contract knows the deal but its `DealCreated` log was not found.
    #[error(
        "no DealCreated log for deal {deal_id} from block {from_block}: is the configured first \
         block right?"
    )]
    DealLogMissing {
        /// The deal.
        deal_id: B256,
        /// The first block searched.
        from_block: u64,
    },
    /// The object store failed.
    #[error("object store error: {0}")]
    Storage(#[from] object_store::Error),
    /// Stored metadata is corrupt.
    #[error("corrupt metadata for task {task_id}: {reason}")]
    CorruptMetadata {
        /// The task.
        task_id: B256,
        /// Why.
        reason: String,
    },

    // ---------------------------------------------------------------- configuration, files
    /// A bug or an unexpected state of the store.
    #[error("internal error: {0}")]
    Internal(String),
    /// The configuration is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A local file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    // ---------------------------------------------------------------- signing
    /// Signing with a local key failed.
    #[error("signing failed: {0}")]
    Signing(poco_primitives::Error),
}

/// What the store makes of the archive and signature checks it shares with its clients: their
/// refusals as they are, a failure to read a file or to sign as its own.
impl From<poco_api::results::Error> for Error {
    fn from(error: poco_api::results::Error) -> Self {
        use poco_api::results::Error as Api;
        match error {
            Api::Signing(error) => Self::Signing(error),
            Api::Io { path, source } => Self::Io { path, source },
            checked => Self::Checked(checked),
        }
    }
}

impl Error {
    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } | Self::TaskMismatch { .. } => StatusCode::BAD_REQUEST,
            Self::MissingAuth { .. }
            | Self::StaleRequest { .. }
            | Self::ReplayedRequest
            | Self::ContentHashMismatch { .. }
            | Self::UnknownChallenge
            | Self::ExpiredChallenge { .. } => StatusCode::UNAUTHORIZED,
            Self::NotChosenWorker { .. }
            | Self::NotBeneficiary { .. }
            | Self::NotEntitled { .. }
            | Self::NotAppOwner { .. } => StatusCode::FORBIDDEN,
            Self::UnknownDeal { .. }
            | Self::NoRoute { .. }
            | Self::UnknownResult { .. }
            | Self::UnknownApp { .. }
            | Self::UnknownCode { .. } => StatusCode::NOT_FOUND,
            Self::CodeMismatch { .. }
            | Self::AlreadyUploaded { .. }
            | Self::UploadInProgress { .. }
            | Self::TaskNotReady { .. } => StatusCode::CONFLICT,
            Self::Checked(error) => {
                use poco_api::results::Error as Api;
                match error {
                    Api::BadSignature { .. } => StatusCode::UNAUTHORIZED,
                    Api::TooLarge { .. } | Api::TooManyFiles { .. } => {
                        StatusCode::PAYLOAD_TOO_LARGE
                    }
                    Api::InvalidArchive { .. } | Api::DigestMismatch { .. } => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
            Self::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Chain(_) => StatusCode::BAD_GATEWAY,
            Self::DealInconsistent { .. }
            | Self::DealLogMissing { .. }
            | Self::Internal(_)
            | Self::Storage(_)
            | Self::CorruptMetadata { .. }
            | Self::Config(_)
            | Self::Io { .. }
            | Self::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code of this error, as sent in error responses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad_request",
            Self::TaskMismatch { .. } => "task_mismatch",
            Self::MissingAuth { .. } => "missing_auth",
            Self::StaleRequest { .. } => "stale_request",
            Self::ReplayedRequest => "replayed_request",
            Self::ContentHashMismatch { .. } => "content_hash_mismatch",
            Self::UnknownChallenge => "unknown_challenge",
            Self::ExpiredChallenge { .. } => "expired_challenge",
            Self::NotChosenWorker { .. } => "not_chosen_worker",
            Self::NotBeneficiary { .. } => "not_beneficiary",
            Self::NotEntitled { .. } => "not_entitled",
            Self::NotAppOwner { .. } => "not_app_owner",
            Self::UnknownApp { .. } => "unknown_app",
            Self::UnknownCode { .. } => "unknown_code",
            Self::CodeMismatch { .. } => "code_mismatch",
            Self::UnknownDeal { .. } => "unknown_deal",
            Self::NoRoute { .. } => "not_found",
            Self::UnknownResult { .. } => "unknown_result",
            Self::AlreadyUploaded { .. } => "already_uploaded",
            Self::UploadInProgress { .. } => "upload_in_progress",
            Self::TaskNotReady { .. } => "task_not_ready",
            Self::Checked(error) => error.code(),
            Self::Busy { .. } => "busy",
            Self::Timeout { .. } => "timeout",
            Self::Chain(_) => "chain_unavailable",
            Self::DealInconsistent { .. }
            | Self::DealLogMissing { .. }
            | Self::Internal(_)
            | Self::Storage(_)
            | Self::CorruptMetadata { .. }
            | Self::Config(_)
            | Self::Io { .. }
            | Self::Signing(_) => "internal",
        }
    }

    /// Whether this is a refusal of the request (a 4xx), as opposed to a failure of the store.
    pub fn is_refusal(&self) -> bool {
        self.status().is_client_error()
    }

    /// Whether trying the same thing again later may succeed: the store or the chain was
    /// unavailable or busy, or the task had no final consensus yet.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Busy { .. }
            | Self::Timeout { .. }
            | Self::TaskNotReady { .. }
            | Self::UploadInProgress { .. } => true,
            Self::Chain(error) => error.is_transient(),
            _ => false,
        }
    }

    /// The JSON body sent for this error. A 5xx carries a generic message only.
    pub fn body(&self) -> ErrorBody {
        let status = self.status();
        let error = if status.is_server_error() {
            match self {
                Self::Chain(_) => "the chain could not be read; try again later".to_owned(),
                _ => "internal error of the result store".to_owned(),
            }
        } else {
            self.to_string()
        };
        ErrorBody { error, code: self.code().to_owned() }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, code = self.code(), "request failed");
        } else {
            tracing::debug!(error = %self, code = self.code(), "request refused");
        }
        let mut response = (status, Json(self.body())).into_response();
        response.extensions_mut().insert(ErrorCode(self.code().to_owned()));
        response
    }
}

/// The code of an error response, attached to it for the metrics.
#[derive(Debug, Clone)]
pub(crate) struct ErrorCode(pub(crate) String);

#[cfg(test)]
mod tests {
    use poco_api::results::Error as Api;

    use super::*;

    #[test]
    fn server_errors_hide_their_cause() {
        let error = Error::CorruptMetadata { task_id: B256::ZERO, reason: "secret path".into() };
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = error.body();
        assert_eq!(body.code, "internal");
        assert!(!body.error.contains("secret"), "{}", body.error);
    }

    #[test]
    fn refusals_say_what_was_wrong() {
        let error = Error::from(Api::TooLarge { what: "the body", size: 10, limit: 5 });
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(error.is_refusal());
        assert_eq!(error.body().code, "too_large");
        assert!(error.body().error.contains("limit is 5"));
        let error = Error::from(Api::DigestMismatch {
            task_id: B256::ZERO,
            digest: B256::repeat_byte(1),
            expected: Some(B256::repeat_byte(2)),
        });
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(error.to_string().contains(&B256::repeat_byte(2).to_string()));
    }
}
