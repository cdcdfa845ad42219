//! What can go wrong on the client side of the SMS: its crypto, its formats, and talking to it.

use crate::http::Refusal;

/// What can go wrong with the SMS's client, its crypto helpers or its formats.
///
/// Messages never carry a secret value: only names, addresses and reasons.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Encryption or decryption failed (wrong key, corrupt data).
    #[error("crypto: {0}")]
    Crypto(String),
    /// A measurement or a piece of evidence is malformed.
    #[error("attestation refused: {0}")]
    Attestation(String),
    /// A value sent to the SMS is malformed (a secret name...).
    #[error("{0}")]
    BadRequest(String),
    /// Signing a request or a quote failed, or a signature does not recover.
    #[error(transparent)]
    Signing(#[from] poco_primitives::Error),
    /// The SMS refused a request of this client (its JSON error body).
    #[error("the SMS refused ({status}, {code}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The machine-readable code.
        code: String,
        /// The message.
        message: String,
    },
    /// The SMS could not be reached, or its answer could not be read to the end.
    #[error("SMS at {url}: {message}")]
    Unreachable {
        /// The SMS's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The SMS answered something this client does not understand.
    #[error("SMS at {url}: unexpected answer: {message}")]
    UnexpectedAnswer {
        /// The SMS's URL.
        url: String,
        /// What was wrong with it.
        message: String,
    },
}

impl Error {
    /// Whether trying again later may succeed (the SMS was unreachable, the task is not active
    /// yet).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Refused { status, code, .. } => {
                *status >= 500 || code == "task_not_active" || code == "no_challenge"
            }
            _ => false,
        }
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Self::Refused { status: refusal.status, code: refusal.code, message: refusal.message }
    }
}

/// Shorthand for results of the SMS's client side.
pub type Result<T, E = Error> = std::result::Result<T, E>;
