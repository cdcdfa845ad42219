//! Errors of the worker.

use std::path::PathBuf;

use alloy::primitives::B256;

use crate::exec::ExecError;

/// What can go wrong running a worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sandbox could not run the task.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The chain failed or refused a transaction.
    #[error(transparent)]
    Chain(#[from] poco_chain::Error),
    /// The protocol core refused something.
    #[error(transparent)]
    Protocol(#[from] poco_primitives::Error),
    /// The result store refused or failed an upload.
    #[error("result store: {0}")]
    ResultStore(#[from] poco_api::results::Error),
    /// The scheduler refused a request or could not be reached.
    #[error(transparent)]
    Scheduler(#[from] poco_api::pool::Error),
    /// An app, a dataset or an input file could not be fetched, or the fetch policy refused
    /// its URL.
    #[error(transparent)]
    Fetch(#[from] poco_fetch::FetchError),
    /// The app or dataset fetched does not have the checksum registered on-chain.
    #[error(
        "{what} at {url} has sha256 {actual}, but {expected} is registered: refusing to use it"
    )]
    ChecksumMismatch {
        /// App or dataset.
        what: &'static str,
        /// Where it came from.
        url: String,
        /// The registered checksum.
        expected: B256,
        /// The checksum of what was fetched.
        actual: B256,
    },
    #[error(
        "the app needs the Python runtime {name} (interpreter sha256 {module_sha256:x}), \
         which this worker does not know"
    )]
    /// An app bundle names a runtime this version of the worker does not know.
    UnknownRuntime {
        /// The name the bundle gives it.
        name: String,
        /// Its interpreter's sha256.
        module_sha256: B256,
    },
    /// The deal handed out is not the one on-chain.
    #[error("the deal of task {0} does not match the chain: refusing the assignment")]
    ForgedDeal(B256),
    /// The run ended in a way other replicas would not reproduce (a wall-clock timeout): there
    /// is no result to commit.
    #[error("no result that replicas could agree on: {0}")]
    NoAgreedResult(String),
    /// The request parameters are unusable.
    #[error("invalid request parameters: {0}")]
    Params(String),
    /// The worker's free balance cannot cover the stake a contribution locks.
    #[error(
        "the worker's balance {balance} nRLC cannot cover the {stake} nRLC stake: deposit more"
    )]
    InsufficientStake {
        /// The free balance.
        balance: String,
        /// The stake needed.
        stake: String,
    },
    /// The SMS refused a request or could not be reached (TEE tasks).
    #[error("SMS: {0}")]
    Sms(#[from] poco_api::sms::Error),
    /// A TEE task cannot run here (no TEE configured, a framework the enclave cannot serve, a
    /// challenge key that does not match the authorization...).
    #[error("TEE task refused: {0}")]
    Tee(String),
    /// A file or directory could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The data folder was (nearly) full when an app's run ended: a write of the app may have
    /// been refused for lack of room, so its output may not be what other replicas get, and
    /// it is not committed.
    #[error(
        "{path}: {free_bytes} bytes free after the app's run: a write may have failed for lack \
         of room, the result is not trusted"
    )]
    DiskFull {
        /// The data folder.
        path: PathBuf,
        /// The bytes free in it after the run.
        free_bytes: u64,
    },
    /// The result store refused an upload, or failed it too many times: the worker stopped
    /// trying to upload this result.
    #[error("the result was not uploaded: {0}")]
    UploadAbandoned(String),
    /// A stored task state is corrupt.
    #[error("corrupt task state {path}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// Whether the error is the worker's own storage failing: a file or folder of its data
    /// folder that could not be written or read (a full disk among others). A task whose files
    /// fail so before it is computed is handed back to the scheduler, not failed.
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            Self::Io { .. }
                | Self::State { .. }
                | Self::DiskFull { .. }
                | Self::Exec(ExecError::Io { .. })
        )
    }

    /// Whether the error is a write refused for lack of room (the disk full, a quota used up).
    pub fn is_out_of_space(&self) -> bool {
        match self {
            Self::Io { source, .. } | Self::Exec(ExecError::Io { source, .. }) => {
                crate::runtime::disk::is_out_of_space(source)
            }
            Self::DiskFull { .. } => true,
            _ => false,
        }
    }

    /// What the worker tells the scheduler about a task it gives up, which the scheduler
    /// writes in the task's log, read by the requester: the cause without this machine's
    /// paths and files.
    pub fn reported(&self) -> String {
        match self {
            Self::Io { .. }
            | Self::State { .. }
            | Self::DiskFull { .. }
            | Self::Exec(ExecError::Io { .. }) => {
                "a fault of the worker's own machine (its storage): another worker takes the task"
                    .to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// Shorthand for results of the worker.
pub type Result<T, E = Error> = std::result::Result<T, E>;
