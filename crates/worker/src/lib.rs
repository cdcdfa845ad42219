//! The poco worker: the program a compute provider runs, on any machine with a wallet and some
//! stake, to sell its computing power to a workerpool.
//!
//! For each task its scheduler hands it, a worker fetches the app and the dataset, runs the app in
//! a sandbox, commits to its result and later reveals it (PoCo's commit–reveal), and uploads the
//! result when it is the one asked to. It talks to its scheduler, the result store and the SMS
//! through their clients in `poco-api`, and to the chain through `poco-chain`; it depends on no
//! other service (see `docs/ARCHITECTURE.md`).
//!
//! Modules:
//! - [`exec`]: sandboxed execution of one task. The [`exec::Executor`] trait is the execution
//!   backend; [`exec::WasmExecutor`] runs WebAssembly apps (WASI preview 1) deterministically
//!   under wasmtime, so that replicas of a task agree bit for bit.
//! - [`runtime`]: the worker's loop ([`run`]): registration with the scheduler, pulling work up
//!   to its slots, fetching apps and datasets checked against their on-chain checksums,
//!   committing results (`contribute`, or `contributeAndFinalize` for trust 1), revealing and
//!   uploading when asked, and resuming the tasks in flight after a restart; handing back at
//!   once a task whose files cannot be written (a full disk), and taking no work while its data
//!   folder is short of space.
//! - [`tee`]: the TEE backend: tasks of TEE deals run inside an enclave boundary that gets its
//!   secrets from the SMS after attestation, and sign their result with the task's enclave
//!   challenge key (today an explicitly enabled, INSECURE simulation of an enclave).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod error;
pub mod exec;
pub mod runtime;
pub mod tee;

pub use error::{Error, Result};
pub use runtime::{WorkerConfig, run};
