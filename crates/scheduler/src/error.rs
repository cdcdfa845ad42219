//! Errors of the scheduler.

use alloy::primitives::{Address, B256};

/// What can go wrong in the scheduler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store (SQLite or PostgreSQL) failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The store's migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The chain failed or refused a transaction.
    #[error(transparent)]
    Chain(#[from] poco_chain::Error),
    /// A stored value is corrupt.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The protocol core refused something.
    #[error(transparent)]
    Protocol(#[from] poco_primitives::Error),
    /// The listener failed.
    #[error("server error: {0}")]
    Server(#[from] std::io::Error),
    /// A request was not signed by who it claims.
    #[error("bad request signature: {0}")]
    BadSignature(String),
    /// A request from a worker that is not registered.
    #[error("worker {0} is not registered: register first")]
    UnknownWorker(Address),
    /// A worker the pool's admission rule does not accept.
    #[error("worker {worker} is not admitted (rule {rule:?}): {requirement}")]
    NotAdmitted {
        /// The worker.
        worker: Address,
        /// The rule's name (`allow-list`, `bonded`).
        rule: &'static str,
        /// What the rule asks of a worker.
        requirement: &'static str,
    },
    /// A report from the worker holding the replica, but not expected in the task's or the
    /// replica's state (a `computed` after the replica contributed, an `uploaded` before
    /// anyone was asked to upload...). Nothing changed.
    #[error("report {report:?} of worker {worker} not expected now for task {task}: {reason}")]
    UnexpectedReport {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
        /// The report's kind (`computed`, `uploaded`, `failed`).
        report: &'static str,
        /// Why it is not expected.
        reason: String,
    },
    /// An `uploaded` report from a worker that was not asked to upload the task's result.
    #[error("worker {worker} was not asked to upload the result of task {task}")]
    NotUploader {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
    },
    /// An `uploaded` report naming a location outside the pool's result stores.
    #[error(
        "location {location:?} of task {task} is not one of this pool's result stores: \
         expected {expected:?}"
    )]
    ForeignLocation {
        /// The task.
        task: B256,
        /// The location reported.
        location: String,
        /// The location expected (the first result store's).
        expected: String,
    },
    /// The configuration cannot work.
    #[error("configuration: {0}")]
    Config(String),
    /// A request whose timestamp is too far from the scheduler's clock, or a request already
    /// accepted (a replay).
    #[error(
        "stale or replayed request (timestamp {timestamp}): a signed request is accepted once, \
         stamped with the current unix time in seconds, at most {max_age_secs} s from the \
         scheduler's clock",
        max_age_secs = crate::api::CLOCK_SKEW_SECS
    )]
    Replayed {
        /// The request's timestamp, in seconds since the Unix epoch.
        timestamp: u64,
    },
    /// A report about a task the worker was not given.
    #[error("task {task} was not assigned to {worker}")]
    NotAssigned {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
    },
    /// A hand-back the scheduler cannot take: the worker computed the task or contributed to
    /// it, or its replica is no longer held. Nothing changed.
    #[error("worker {worker} cannot hand task {task} back: {reason}")]
    CannotHandBack {
        /// The task.
        task: B256,
        /// The worker.
        worker: Address,
        /// Why not.
        reason: String,
    },
    /// A task the scheduler does not know.
    #[error("unknown task {0}")]
    UnknownTask(B256),
    /// A request the API refuses as malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The SMS refused or failed a challenge request.
    #[error("SMS: {0}")]
    Sms(#[from] poco_api::sms::Error),
    /// Only the requester may read a task's logs.
    #[error("only the requester of the deal may read this task's logs")]
    NotRequester,
    /// A write of an instance whose lease of the pool is gone: another instance took it (its
    /// token is greater). Nothing was written.
    #[error(
        "this scheduler instance no longer holds the pool's lease (token {token}): another \
         instance took over, nothing was written"
    )]
    Fenced {
        /// The token the instance held (0: it never held the lease).
        token: i64,
    },
    /// A request to an instance that is not the pool's active one (a standby, one catching up
    /// with the chain, or one whose lease ran out): it acts on nothing and hands out nothing.
    #[error("this scheduler instance is not the active one{}", match active {
        Some(url) if !url.is_empty() => format!(": the active instance is at {url}"),
        _ => String::new(),
    })]
    Standby {
        /// The URL of the active instance, when known.
        active: Option<String>,
    },
    /// The instance lost the pool's lease (another took it, or it could not renew it in time):
    /// it stops at once, so that only one instance acts.
    #[error(
        "this scheduler instance lost the pool's lease ({0}): stopping; another instance is active"
    )]
    LeaseLost(String),
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

impl Error {
    /// Whether the error says this instance is not (or no longer) the pool's active one.
    pub fn is_standby(&self) -> bool {
        matches!(self, Self::Fenced { .. } | Self::Standby { .. } | Self::LeaseLost(_))
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
