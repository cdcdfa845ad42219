//! Sandboxed execution of one task: the app, its inputs at `/iexec_in`, its result in
//! `/iexec_out`.
//!
//! The [`Executor`] trait is the execution backend the worker drives; [`WasmExecutor`] is the
//! one for WebAssembly apps (WASI preview 1 commands) under wasmtime, and for Python apps, which
//! the pinned Python runtime (itself a WebAssembly module) runs with their code mounted at
//! [`GUEST_APP`] (see [`PythonLaunch`]); a TEE backend will sit beside it. A backend takes an [`ExecSpec`] (module, argv, directories, environment, limits,
//! seed, clock) and returns an [`ExecOutcome`] (an [`ExitStatus`], captured stdout and stderr,
//! fuel and time), or an [`ExecError`] when the run cannot even start.
//!
//! # Determinism
//!
//! PoCo's consensus needs replicas of a task to agree bit for bit, so the WebAssembly sandbox
//! gives an app nothing that differs between workers or between runs:
//! - the environment holds only `IEXEC_IN=/iexec_in`, `IEXEC_OUT=/iexec_out` and the `IEXEC_*`
//!   variables of the spec, in name order; `argv[0]` is always [`ARGV0`];
//! - the wall clock and the monotonic clock are frozen at the spec's [`clock`](ExecSpec::clock);
//!   the CPU-time clocks are not available;
//! - the random sources are SHA-256 streams seeded by the spec's [`seed`](ExecSpec::seed);
//! - no network (no socket can be opened or used), no threads, no relaxed SIMD, and every NaN
//!   a float operation produces is the canonical one;
//! - the only files are the two mounts: the input directory read-only, the output directory
//!   read-write (and for a Python app its code and the runtime's standard library, both
//!   read-only); stdin is empty;
//! - memory is capped, and fuel (one unit per WebAssembly instruction, roughly) bounds the run
//!   at the same instruction on every machine; a wall-clock timeout is only a safety net, and
//!   a run it stops is [`ExitStatus::TimedOut`], the one non-deterministic status.
//!
//! What still comes from the host, so a deterministic app must not depend on it: the order in
//! which a directory lists its entries (sort the names, as the example apps do), the times,
//! inode numbers and link counts `stat` reports, and how long `sleep` takes (it really sleeps,
//! bounded by the timeout). A sandbox-side file-system layer that fixes these is future work.
//!
//! # Example
//!
//! ```no_run
//! use poco_worker::exec::{split_args, ExecSpec, Executor, Limits, WasmExecutor};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let executor = WasmExecutor::new()?;
//! let module = std::fs::read("apps/pi/pi.wasm")?;
//! let spec = ExecSpec::new(module, "/tmp/task/in", "/tmp/task/out")
//!     .with_args(split_args("1000000 42")?)
//!     .with_limits(Limits::default().with_fuel(5_000_000_000));
//! let outcome = executor.execute(spec).await?;
//! assert!(outcome.status.success());
//! println!("{}", outcome.stdout.to_string_lossy());
//! # Ok(())
//! # }
//! ```

mod error;
mod faulty;
mod outcome;
mod spec;
mod wasm;

use std::future::Future;
use std::pin::Pin;

pub use error::{ExecError, Result};
pub use faulty::FaultyExecutor;
pub use outcome::{CapturedOutput, ExecOutcome, ExitStatus, QuotaExceeded, QuotaKind, TrapKind};
pub use poco_primitives::args::split_args;
pub use spec::{
    ARGV0, ExecSpec, GUEST_APP, GUEST_IN, GUEST_OUT, GUEST_PYTHON_LIB, Limits, OutputQuota,
    PYTHON_ARGV0, PythonLaunch,
};
pub use wasm::{DiskCacheStats, WasmExecutor, module_sha256};

/// The future an [`Executor`] returns.
pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<ExecOutcome>> + Send + 'a>>;

/// An execution backend: runs one task in a sandbox.
///
/// Object safe, so a worker can hold a `Box<dyn Executor>` per kind of task (standard
/// WebAssembly, TEE, ...).
pub trait Executor: Send + Sync {
    /// A short name of the backend for logs and metrics, such as `"wasm"`.
    fn backend(&self) -> &'static str;

    /// Runs the task `spec` describes, to the end or to one of its limits.
    ///
    /// Whatever the app does, a run that starts ends in an [`ExecOutcome`]; an [`ExecError`]
    /// means it could not start (invalid module or spec, missing directory, host failure).
    fn execute(&self, spec: ExecSpec) -> ExecFuture<'_>;
}
