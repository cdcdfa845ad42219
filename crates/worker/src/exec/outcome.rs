//! How a run ended: [`ExecOutcome`], [`ExitStatus`], [`TrapKind`], [`CapturedOutput`].

use std::fmt;
use std::time::Duration;

/// The result of a run that started: how it ended, what it printed, what it cost.
///
/// The files it wrote are in the output directory of its [`ExecSpec`](super::ExecSpec).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecOutcome {
    /// How the app ended.
    pub status: ExitStatus,
    /// What it wrote on stdout, up to the limit.
    pub stdout: CapturedOutput,
    /// What it wrote on stderr, up to the limit.
    pub stderr: CapturedOutput,
    /// The fuel it burnt (deterministic unless the run [timed out](ExitStatus::TimedOut)).
    pub fuel_consumed: u64,
    /// How long instantiating and running took (compiling excluded).
    pub wall_time: Duration,
    /// How long compiling the module took, or `None` when it came from the cache.
    pub compile_time: Option<Duration>,
    /// The sha256 of the module, the app checksum.
    pub module_sha256: [u8; 32],
    /// The most linear memory the app had at once, in bytes.
    pub peak_memory_bytes: u64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// The app returned from `_start` (status 0) or called `proc_exit` with this status.
    Exited(i32),
    /// The app burnt all its fuel. Deterministic: it happens at the same instruction on every
    /// machine.
    OutOfFuel,
    /// The app needed more memory than its limit, and then trapped or exited with a nonzero
    /// status (an app that copes with a failed allocation and exits 0 is [`Exited(0)`]).
    ///
    /// [`Exited(0)`]: ExitStatus::Exited
    OutOfMemory,
    /// The app trapped.
    Trapped(TrapKind),
    /// The wall-clock safety net stopped the app. Not deterministic: the result of such a run
    /// must not be contributed.
    TimedOut,
    /// The app went past the quota of its output directory and was stopped (or, for a
    /// breach only the walk after the run saw, failed then). Deterministic: the sandbox counts
    /// what the app asks for, the same on every machine. What it wrote was removed.
    OutputQuotaExceeded(QuotaExceeded),
}

/// Which quota of the output directory an app went past, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("went past the output quota: {kind} (the limit is {limit})")]
pub struct QuotaExceeded {
    /// Which quota.
    pub kind: QuotaKind,
    /// The limit it set.
    pub limit: u64,
}

/// The quotas of the output directory (see [`OutputQuota`](super::OutputQuota)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaKind {
    /// Too many bytes of file content.
    Bytes,
    /// Too many files and directories.
    Entries,
    /// A path too long, in bytes.
    PathBytes,
    /// A path too deep, in components.
    Depth,
}

impl fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bytes => "too many bytes in /iexec_out",
            Self::Entries => "too many files and directories in /iexec_out",
            Self::PathBytes => "a path in /iexec_out too long, in bytes",
            Self::Depth => "a path in /iexec_out too deep, in components",
        })
    }
}

impl ExitStatus {
    /// Whether the app exited with status 0.
    pub fn success(&self) -> bool {
        *self == Self::Exited(0)
    }

    /// The exit status, when the app exited with one.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Self::Exited(code) => Some(*code),
            _ => None,
        }
    }

    /// Whether every worker running the same task would see the same status (all but
    /// [`TimedOut`](Self::TimedOut)).
    pub fn is_deterministic(&self) -> bool {
        !matches!(self, Self::TimedOut)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exited with status {code}"),
            Self::OutOfFuel => f.write_str("ran out of fuel"),
            Self::OutOfMemory => f.write_str("ran out of memory"),
            Self::Trapped(kind) => write!(f, "trapped: {kind}"),
            Self::TimedOut => f.write_str("timed out"),
            Self::OutputQuotaExceeded(exceeded) => write!(f, "{exceeded}"),
        }
    }
}

/// Why an app trapped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrapKind {
    /// It executed `unreachable` (what C's `abort()` and Rust's panics compile to).
    Unreachable,
    /// It accessed linear memory out of bounds.
    MemoryOutOfBounds,
    /// It overflowed the call stack.
    StackOverflow,
    /// It divided an integer by zero.
    IntegerDivisionByZero,
    /// An integer operation overflowed (`i32::MIN / -1`).
    IntegerOverflow,
    /// It converted a NaN or an out-of-range float to an integer.
    BadConversionToInteger,
    /// It called through a null table entry.
    IndirectCallToNull,
    /// It called through a table entry of the wrong type.
    BadSignature,
    /// It accessed a table out of bounds.
    TableOutOfBounds,
    /// A misaligned atomic access.
    HeapMisaligned,
    /// A host function (the WASI implementation) refused a call and stopped the app.
    Host(String),
    /// Another trap, with wasmtime's description.
    Other(String),
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable => f.write_str("unreachable executed"),
            Self::MemoryOutOfBounds => f.write_str("out-of-bounds memory access"),
            Self::StackOverflow => f.write_str("call stack exhausted"),
            Self::IntegerDivisionByZero => f.write_str("integer divide by zero"),
            Self::IntegerOverflow => f.write_str("integer overflow"),
            Self::BadConversionToInteger => f.write_str("invalid conversion to integer"),
            Self::IndirectCallToNull => f.write_str("indirect call to a null table entry"),
            Self::BadSignature => f.write_str("indirect call type mismatch"),
            Self::TableOutOfBounds => f.write_str("out-of-bounds table access"),
            Self::HeapMisaligned => f.write_str("misaligned memory access"),
            Self::Host(message) => write!(f, "host error: {message}"),
            Self::Other(message) => f.write_str(message),
        }
    }
}

/// What an app wrote on one of its output streams, up to the limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CapturedOutput {
    /// The first bytes written, at most the limit.
    pub bytes: Vec<u8>,
    /// Whether the app wrote more than the limit (the rest was dropped).
    pub truncated: bool,
    /// How many bytes the app wrote in all.
    pub total_bytes: u64,
}

impl CapturedOutput {
    /// The captured bytes as text, invalid UTF-8 replaced.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}
