//! What can go wrong on the client side of the result store: packing, checking and unpacking
//! archives, signing, and talking to a store.

use std::path::PathBuf;

use alloy::primitives::B256;

use crate::http::Refusal;

/// A `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a result archive or a request to a result store, as a
/// client sees it. The store's own refusals come back as [`Error::Refused`], with the store's
/// stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The archive's content, or a body, is larger than allowed.
    #[error("{what} is too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size (a lower bound when the reading stopped at the limit).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The archive holds more entries than allowed.
    #[error("the archive has more than {limit} entries")]
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// The archive is not a tar archive of regular files and directories with clean paths.
    #[error("invalid result archive: {reason}")]
    InvalidArchive {
        /// Why.
        reason: String,
    },
    /// An archive's digest is not the one expected (the task's on-chain consensus, or what the
    /// store announced).
    #[error(
        "the archive's result digest {digest} does not match the consensus of task {task_id} \
         on-chain{}",
        expected.map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    DigestMismatch {
        /// The task.
        task_id: B256,
        /// The archive's digest.
        digest: B256,
        /// The on-chain digest, when known.
        expected: Option<B256>,
    },
    /// A signature is malformed or does not recover to an address.
    #[error("bad {what} signature: {reason}")]
    BadSignature {
        /// Which signature.
        what: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// Signing with a local key failed.
    #[error("signing failed: {0}")]
    Signing(poco_primitives::Error),
    /// The store's URL is not usable.
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
    /// A bug or an unexpected state of this client.
    #[error("internal error: {0}")]
    Internal(String),
    /// The store refused a request (a 4xx, or a 5xx without detail).
    #[error("the result store refused the request ({status} {code}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The store's stable error code.
        code: String,
        /// The store's message.
        message: String,
    },
    /// The store could not be reached, or its response could not be read.
    #[error("HTTP error talking to the result store: {0}")]
    Http(#[from] reqwest::Error),
    /// The store answered something this client does not understand.
    #[error("unexpected response from the result store: {0}")]
    UnexpectedResponse(String),
    /// A download was stopped: larger than this client accepts, or than the store announced.
    #[error(
        "the download was stopped after {received} bytes: {reason} (this client accepts at most \
         {limit} bytes)"
    )]
    DownloadTooLarge {
        /// Bytes received (or announced) when it was stopped.
        received: u64,
        /// Why.
        reason: String,
        /// The client's limit, in bytes.
        limit: u64,
    },
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Self::Refused { status: refusal.status, code: refusal.code, message: refusal.message }
    }
}

impl Error {
    /// The store's code for a result that is already stored: an upload of a task whose result
    /// the store holds.
    pub const ALREADY_UPLOADED: &'static str = "already_uploaded";

    /// The stable code of this error as a refusal on the wire (the store answers the archive and
    /// signature checks it shares with its clients with these); `internal` for a failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::TooManyFiles { .. } => "too_many_files",
            Self::InvalidArchive { .. } => "invalid_archive",
            Self::DigestMismatch { .. } => "digest_mismatch",
            Self::BadSignature { .. } => "bad_signature",
            _ => "internal",
        }
    }

    /// Whether trying the same thing again later may succeed: the store was unreachable or
    /// busy, or the task had no final consensus yet.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Refused { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "busy" | "timeout" | "task_not_ready" | "upload_in_progress"
                    )
            }
            Self::Http(error) => error.is_connect() || error.is_timeout(),
            _ => false,
        }
    }

    /// Whether the store refused an upload because it already holds the task's result (which
    /// it accepted only if it was the task's consensus).
    pub fn is_already_stored(&self) -> bool {
        matches!(self, Self::Refused { status: 409, code, .. } if code == Self::ALREADY_UPLOADED)
    }

    /// Whether the store has no result for the task (yet).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Refused { status: 404, .. })
    }
}
