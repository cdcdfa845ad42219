//! Errors of the SDK: each names its cause and, where there is one, the fix.

use alloy::primitives::{Address, B256};
use poco_primitives::Amount;

/// What can go wrong using poco.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A transaction or call needs a wallet and none is configured.
    #[error("no wallet configured: this needs one to sign")]
    NoWallet,
    /// A wallet could not be opened.
    #[error(transparent)]
    Wallet(#[from] poco_chain::wallet::WalletError),
    /// The free balance does not cover what is needed.
    #[error(
        "{account} has {available} free in its poco account but {needed} is needed: deposit \
         {missing} more with `poco account deposit \"{missing}\"`"
    )]
    InsufficientFunds {
        /// The account.
        account: Address,
        /// What it has.
        available: Amount,
        /// What is needed.
        needed: Amount,
        /// The difference.
        missing: Amount,
    },
    /// The wallet does not hold enough RLC to deposit.
    #[error(
        "{account} holds {available} in its wallet but {needed} is needed in its poco account: \
         get RLC tokens into the wallet first, then `poco account deposit`"
    )]
    InsufficientTokens {
        /// The account.
        account: Address,
        /// What it holds.
        available: Amount,
        /// What is needed.
        needed: Amount,
    },
    /// The wallet holds less than it was asked to send.
    #[error("{account} holds {available} in its wallet, less than the {needed} to send")]
    CannotSend {
        /// The wallet.
        account: Address,
        /// What it holds, with its unit.
        available: String,
        /// What it was asked to send, with its unit.
        needed: String,
    },
    /// No set of orders can run what was asked.
    #[error("no matching orders: {0}")]
    NoMatch(String),
    /// The address given is not a registered asset of that kind.
    #[error(
        "{address} is not a registered {kind}: check the address, or list yours with `poco {kind} list`"
    )]
    UnknownAsset {
        /// App, dataset or workerpool.
        kind: &'static str,
        /// The address given.
        address: Address,
    },
    /// A deal that does not exist.
    #[error("no deal {0} on this chain")]
    UnknownDeal(B256),
    /// A task of no known deal.
    #[error("no task {0} in any deal on this chain")]
    UnknownTask(B256),
    /// The chain refused or failed.
    #[error(transparent)]
    Chain(#[from] poco_chain::Error),
    /// The chain endpoint cannot be reached.
    #[error("cannot reach the chain at {url}")]
    ChainDown {
        /// The endpoint.
        url: String,
        /// Why (the transport's causes).
        cause: String,
    },
    /// The chain endpoint answered with an HTTP refusal instead of serving the request: a
    /// provider's key missing or wrong (401, 403), or its rate limit reached (429).
    #[error("the chain endpoint {url} refused the request (HTTP {status})")]
    ChainRefused {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of its answer.
        body: String,
    },
    /// The market cannot be reached.
    #[error("cannot reach the market at {url}")]
    MarketDown {
        /// The market's URL.
        url: String,
        /// Why (the transport's causes).
        cause: String,
    },
    /// The market refused a request.
    #[error("the market refused: {message} ({code})")]
    MarketRefused {
        /// Its stable error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The result store failed or refused.
    #[error(transparent)]
    Results(#[from] poco_api::results::Error),
    /// The result store refused to publish an app's code.
    #[error("the result store refused to publish the app's code: {message}")]
    PublishRefused {
        /// The HTTP status.
        status: u16,
        /// The store's stable error code (`not_app_owner`, `code_mismatch`...).
        code: String,
        /// What was wrong.
        message: String,
    },
    /// The protocol core refused something (bad amount, bad tag, bad order...).
    #[error(transparent)]
    Protocol(#[from] poco_primitives::Error),
    /// A URL could not be fetched, or the fetch policy refused it.
    #[error(transparent)]
    Fetch(#[from] poco_fetch::FetchError),
    /// A run would fail for a reason visible before paying: nothing was sent.
    #[error("{0}; nothing was paid")]
    RunCheck(String),
    /// A downloaded result does not match the chain.
    #[error("the result of task {task} does not match its on-chain digest: refusing to write it")]
    ResultMismatch {
        /// The task.
        task: B256,
    },
    /// The result of a task is not available yet.
    #[error("task {task} has no result yet (status {status})")]
    NoResultYet {
        /// The task.
        task: B256,
        /// Its status.
        status: String,
    },
    /// A configuration problem, or an operation the state of things refuses.
    #[error("{0}")]
    Config(String),
    /// A value given by the caller that can never be right (exit code 2 on the command line).
    #[error("{0}")]
    InvalidInput(String),
    /// A devnet problem.
    #[error("{0}")]
    Devnet(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A service of the devnet failed.
    #[error("{service}: {message}")]
    Service {
        /// Which service.
        service: &'static str,
        /// What happened.
        message: String,
    },
    /// The secret management service (SMS) cannot be reached.
    #[error("cannot reach the SMS at {url}")]
    SmsDown {
        /// The SMS's URL.
        url: String,
        /// Why (the transport's causes).
        cause: String,
    },
    /// The SMS refused a request (its JSON error, never a secret value).
    #[error("the SMS refused: {message}")]
    SmsRefused {
        /// The HTTP status.
        status: u16,
        /// The SMS's stable error code (`not_owner`, `already_set`...).
        code: String,
        /// What was wrong.
        message: String,
    },
    /// The SMS, or a crypto helper of the confidential path, failed otherwise.
    #[error(transparent)]
    Sms(poco_api::sms::Error),
    /// Something a confidential task needs is not set at the SMS.
    #[error("{what} is not set at the SMS: {hint}")]
    NotSetAtSms {
        /// What is missing.
        what: String,
        /// How to set it.
        hint: String,
    },
    /// A local key file that does not exist.
    #[error("no {what} at {}: {hint}", path.display())]
    MissingKey {
        /// Which key.
        what: &'static str,
        /// Where it was looked for.
        path: std::path::PathBuf,
        /// How to get one.
        hint: String,
    },
    /// A local key file that exists but does not hold a key of the expected kind.
    #[error("{}: {reason}", path.display())]
    BadKeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An encrypted result that the local result key cannot open.
    #[error("the result of task {task} is encrypted for its beneficiary, and {reason}")]
    ResultKey {
        /// The task.
        task: B256,
        /// Why it cannot be opened, and what to do.
        reason: String,
    },
}

impl From<poco_api::sms::Error> for Error {
    fn from(error: poco_api::sms::Error) -> Self {
        match error {
            poco_api::sms::Error::Unreachable { url, message } => {
                Self::SmsDown { url, cause: message }
            }
            poco_api::sms::Error::Refused { status, code, message } => {
                Self::SmsRefused { status, code, message }
            }
            other => Self::Sms(other),
        }
    }
}

impl Error {
    /// The chain endpoint `url` failed with `error` before serving anything: refused (an HTTP
    /// status instead of a JSON-RPC answer) or not reached, with the cause.
    pub fn chain_unusable(url: &str, error: &poco_chain::Error) -> Self {
        match error.http_refusal() {
            Some((status, body)) => Self::ChainRefused {
                url: url.to_owned(),
                status,
                body: body.trim().chars().take(200).collect(),
            },
            None => Self::ChainDown {
                url: url.to_owned(),
                cause: poco_primitives::error::causes(error),
            },
        }
    }

    /// What caused the failure, beyond what its message says: the transport's error of an
    /// endpoint that cannot be reached, the answer of one that refused.
    pub fn cause(&self) -> Option<&str> {
        match self {
            Self::ChainDown { cause, .. }
            | Self::MarketDown { cause, .. }
            | Self::SmsDown { cause, .. } => Some(cause),
            Self::ChainRefused { body, .. } if !body.is_empty() => Some(body),
            _ => None,
        }
    }
    /// A local file or directory that could not be read or written.
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// What kind of failure this is: what a program decides on (the CLI's exit codes).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NoWallet | Self::Wallet(_) => ErrorKind::Wallet,
            Self::InsufficientFunds { .. }
            | Self::InsufficientTokens { .. }
            | Self::CannotSend { .. } => ErrorKind::Funds,
            Self::NoMatch(_) => ErrorKind::NoMatch,
            Self::UnknownAsset { .. } | Self::UnknownDeal(_) | Self::UnknownTask(_) => {
                ErrorKind::NotFound
            }
            Self::ChainDown { .. } => ErrorKind::ChainUnreachable,
            Self::ChainRefused { status: 401 | 403, .. } => ErrorKind::Refused,
            Self::ChainRefused { .. } => ErrorKind::ChainUnreachable,
            Self::MarketDown { .. } => ErrorKind::MarketUnreachable,
            Self::Chain(error) if error.revert().is_some() => ErrorKind::Refused,
            Self::Chain(poco_chain::Error::NotMined { .. }) => ErrorKind::NotMined,
            Self::Chain(_) => ErrorKind::Chain,
            Self::MarketRefused { .. } => ErrorKind::Market,
            Self::Results(_) | Self::ResultMismatch { .. } | Self::NoResultYet { .. } => {
                ErrorKind::Result
            }
            Self::Protocol(_) | Self::InvalidInput(_) => ErrorKind::Input,
            Self::Config(_) => ErrorKind::Config,
            Self::Fetch(_) => ErrorKind::Fetch,
            Self::RunCheck(_) => ErrorKind::RunCheck,
            Self::Devnet(_) | Self::Service { .. } => ErrorKind::Devnet,
            Self::Io { .. } => ErrorKind::Io,
            Self::SmsDown { .. } => ErrorKind::SmsUnreachable,
            Self::SmsRefused { status, .. } => match status {
                401 | 403 | 409 => ErrorKind::Refused,
                404 => ErrorKind::NotFound,
                400 | 413 | 422 => ErrorKind::Input,
                _ => ErrorKind::Sms,
            },
            Self::PublishRefused { status, .. } => match status {
                401 | 403 | 409 => ErrorKind::Refused,
                404 => ErrorKind::NotFound,
                400 | 413 | 422 => ErrorKind::Input,
                _ => ErrorKind::Result,
            },
            Self::Sms(_) => ErrorKind::Sms,
            Self::NotSetAtSms { .. } | Self::MissingKey { .. } => ErrorKind::NotFound,
            Self::BadKeyFile { .. } => ErrorKind::Input,
            Self::ResultKey { .. } => ErrorKind::Result,
        }
    }

    /// A short, stable name of the error's kind, for `--json` output.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The kinds of failure of the SDK. Programs decide on these (the CLI maps each to an exit
/// code, and must name every one), never on an error's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No wallet, or one that cannot be opened.
    Wallet,
    /// Not enough funds or tokens, or a transfer that cannot be sent.
    Funds,
    /// No compatible orders.
    NoMatch,
    /// An asset, deal, task, secret or key that does not exist.
    NotFound,
    /// The chain cannot be reached.
    ChainUnreachable,
    /// The market cannot be reached.
    MarketUnreachable,
    /// The SMS cannot be reached.
    SmsUnreachable,
    /// The chain or the SMS refused the operation.
    Refused,
    /// A transaction was sent but not mined (or not confirmed) in time; it may be mined later.
    NotMined,
    /// The chain failed otherwise.
    Chain,
    /// The market refused a request.
    Market,
    /// A result that cannot be had, or does not match its on-chain digest.
    Result,
    /// Malformed input.
    Input,
    /// A configuration problem.
    Config,
    /// Fetching an app or a dataset failed.
    Fetch,
    /// A check before running failed.
    RunCheck,
    /// The devnet failed.
    Devnet,
    /// A local file could not be read or written.
    Io,
    /// The SMS failed otherwise.
    Sms,
}

impl ErrorKind {
    /// Its stable name, as `--json` output shows it.
    pub fn code(self) -> &'static str {
        match self {
            Self::Wallet => "wallet",
            Self::Funds => "funds",
            Self::NoMatch => "no_match",
            Self::NotFound => "not_found",
            Self::ChainUnreachable => "chain_unreachable",
            Self::MarketUnreachable => "market_unreachable",
            Self::SmsUnreachable => "sms_unreachable",
            Self::Refused => "refused",
            Self::NotMined => "not_mined",
            Self::Chain => "chain",
            Self::Market => "market",
            Self::Result => "result",
            Self::Input => "input",
            Self::Config => "config",
            Self::Fetch => "fetch",
            Self::RunCheck => "run_check",
            Self::Devnet => "devnet",
            Self::Io => "io",
            Self::Sms => "sms",
        }
    }
}

/// Shorthand for results of the SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;
