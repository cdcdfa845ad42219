//! Benchmark programs of poco: each prints its figures and the conditions it ran in.
//!
//! The programs are under `src/bin/`: `gas` (gas per step of the task lifecycle, on a real
//! anvil), `exec` (WebAssembly execution time against the same program built natively). This
//! library holds what they share.

mod lifecycle;

pub use lifecycle::Lifecycle;
