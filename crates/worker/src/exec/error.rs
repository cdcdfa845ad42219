//! The errors of the execution module.

use std::io;
use std::path::PathBuf;

/// A task that could not be run at all.
///
/// A run that starts always ends in an [`ExecOutcome`](super::ExecOutcome), whatever the app
/// does (exits, traps, runs out of fuel or memory, times out); this error is for what prevents
/// the run: a bad module, a bad specification, or a host problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The module is not valid WebAssembly, or uses a feature the sandbox refuses (threads,
    /// relaxed SIMD, ...).
    #[error("the app module does not compile: {reason}")]
    Compile {
        /// What the compiler said.
        reason: String,
    },
    /// The module has no `_start` function taking and returning nothing: it is not a WASI
    /// command.
    #[error(
        "the app module exports no `_start` function of type `() -> ()`: it is not a WASI command"
    )]
    MissingStart,
    /// The module imports something the sandbox does not provide (only WASI preview 1 is).
    #[error("the app module cannot be linked: {reason}")]
    Link {
        /// Which import is missing or mistyped.
        reason: String,
    },
    /// The arguments could not be split into argv.
    #[error(transparent)]
    InvalidArgs(#[from] poco_primitives::args::ArgsError),
    /// An environment variable the caller passed is not allowed.
    #[error("invalid environment variable {name:?}: {reason}")]
    InvalidEnv {
        /// The variable's name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A directory to mount is missing, is not a directory, or cannot be opened.
    #[error("cannot mount the {what} {path}: {source}")]
    Io {
        /// Which directory: "input directory" or "output directory".
        what: &'static str,
        /// Its host path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The WebAssembly engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {reason}")]
    Engine {
        /// What went wrong.
        reason: String,
    },
    /// The folder of compiled modules cannot be used: not a folder, not this user's, open to
    /// others (it holds native code the worker runs), or not creatable.
    #[error("cannot use {path} as the compiled-module cache: {reason}")]
    ModuleCache {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A bug or a host failure inside the executor (a panicked compile task, an unexpected
    /// wasmtime error).
    #[error("internal error of the executor: {reason}")]
    Internal {
        /// What went wrong.
        reason: String,
    },
}

impl ExecError {
    /// Whether the app itself is at fault: its module is invalid, is not a WASI command, or
    /// needs imports the sandbox does not give. Every worker would fail the same way, so the
    /// failure is a deterministic property of the app, unlike a host error.
    pub fn is_app_fault(&self) -> bool {
        matches!(self, Self::Compile { .. } | Self::MissingStart | Self::Link { .. })
    }

    /// Whether the specification given by the caller is at fault (arguments, environment).
    pub fn is_spec_fault(&self) -> bool {
        matches!(self, Self::InvalidArgs(_) | Self::InvalidEnv { .. })
    }
}

/// The result type of the execution module.
pub type Result<T, E = ExecError> = std::result::Result<T, E>;
