//! Why a fetch failed, and whose fault it is.

use crate::Source;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL does not parse, or has a scheme that is never fetched.
    #[error("{kind} URL {url}: {reason}")]
    Unsupported {
        /// Who chose the URL.
        kind: Source,
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The fetch policy refuses what the URL points at.
    #[error(
        "{kind} URL {url} is refused: {reason} (the fetch policy reaches public addresses only \
         unless the operator allows more: --fetch.allow CIDR for a network, e.g. \
         --fetch.allow 127.0.0.0/8 for this machine's loopback, or --fetch.allow-dir DIR for \
         file:// URLs)"
    )]
    Refused {
        /// Who chose the URL.
        kind: Source,
        /// The URL.
        url: String,
        /// The rule that refused it.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{kind} URL {url}: the server answered {status}")]
    Status {
        /// Who chose the URL.
        kind: Source,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The content is larger than the policy reads.
    #[error("{kind} URL {url}: larger than {max_bytes} bytes")]
    TooLarge {
        /// Who chose the URL.
        kind: Source,
        /// The URL.
        url: String,
        /// The most bytes read.
        max_bytes: u64,
    },
    /// A `file://` URL names no readable file.
    #[error("{kind} URL {url}: {message}")]
    NoSuchFile {
        /// Who chose the URL.
        kind: Source,
        /// The URL.
        url: String,
        /// What the file system said.
        message: String,
    },
    /// The network failed: no answer, a name that does not resolve, a timeout, a broken
    /// connection.
    #[error("{kind} URL {url} could not be reached: {message}")]
    Unreachable {
        /// Who chose the URL.
        kind: Source,
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
}

impl FetchError {
    /// Whether the failure follows from the URL itself, the same for everyone who fetches it
    /// under the default policy: a URL that is malformed, refused, missing (a 4xx answer, no
    /// such file) or too large. Such a failure is the task's outcome. The others (the network,
    /// a server error) belong to whoever fetched and are worth trying again elsewhere.
    pub const fn is_request_fault(&self) -> bool {
        match self {
            Self::Unsupported { .. } | Self::Refused { .. } | Self::TooLarge { .. } => true,
            Self::NoSuchFile { .. } => true,
            Self::Status { status, .. } => *status >= 400 && *status < 500,
            Self::Unreachable { .. } => false,
        }
    }

    /// Who chose the URL.
    pub const fn kind(&self) -> Source {
        match self {
            Self::Unsupported { kind, .. }
            | Self::Refused { kind, .. }
            | Self::Status { kind, .. }
            | Self::TooLarge { kind, .. }
            | Self::NoSuchFile { kind, .. }
            | Self::Unreachable { kind, .. } => *kind,
        }
    }

    /// The failure in words that anyone fetching the same URL under the same policy would
    /// write: no address, path or message of the fetcher's own machine (a task's outcome must
    /// be the same on every worker).
    pub fn cause(&self) -> String {
        match self {
            Self::Unsupported { kind, reason, .. } => format!("{kind} URL: {reason}"),
            Self::Refused { kind, reason, .. } => format!("{kind} URL refused: {reason}"),
            Self::Status { kind, status, .. } => {
                format!("{kind} URL: the server answered {status}")
            }
            Self::TooLarge { kind, max_bytes, .. } => {
                format!("{kind} URL: larger than {max_bytes} bytes")
            }
            Self::NoSuchFile { kind, .. } => format!("{kind} URL: no such file"),
            Self::Unreachable { kind, .. } => format!("{kind} URL could not be reached"),
        }
    }
}
