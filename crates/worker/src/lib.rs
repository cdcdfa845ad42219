//! The poco worker: the program a compute provider runs, on any machine with a wallet and some
//! stake, to sell its computing power to a workerpool.
//!
//! For each task its scheduler hands it, a worker fetches the app and the dataset, runs the app in
//! a sandbox, commits to its result and later reveals it (PoCo's commit–reveal), and uploads the
//! result when it is the one asked to. It sits below the scheduler, beside the chain client, in
//! the data flow `primitives -> contracts -> chain -> worker`.
//!
//! Modules:
//! - [`exec`]: sandboxed execution of one task. The [`exec::Executor`] trait is the execution
//!   backend; [`exec::WasmExecutor`] runs WebAssembly apps (WASI preview 1) deterministically
//!   under wasmtime, so that replicas of a task agree bit for bit.

pub mod exec;
