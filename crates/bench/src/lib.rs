//! Benchmark programs of poco: each runs the real parts (anvil with the contracts, the
//! services, the wasmtime sandbox) and prints its figures with the conditions it ran in. They
//! sit beside the data flow, not in it: nothing else depends on this crate.
//!
//! The programs are under `src/bin/`, each run with `cargo run --release -p poco-bench --bin
//! NAME`: `gas` (gas per step of the task lifecycle), `exec` (WebAssembly execution against
//! the same program built natively), `market` (orderbook publish rate and query latency at
//! 10^5 and 10^6 orders, SQLite and PostgreSQL), `pool` (workerpool latency from matchOrders to
//! a downloadable result, and finalized tasks per second) and `tee` (the confidential path in
//! simulation against the plain one). This library holds what they share.

mod lifecycle;

use std::time::Duration;

pub use lifecycle::Lifecycle;

/// The value at percentile `p` (0 to 1, nearest rank) of durations sorted in ascending order.
///
/// # Panics
/// When `sorted` is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
