//! Benchmark programs of poco: each runs the real parts (anvil with the contracts, the
//! services, the wasmtime sandbox) and prints its figures with the conditions it ran in. They
//! sit beside the data flow, not in it: nothing else depends on this crate.
//!
//! The programs are under `src/bin/`, each run with `cargo run --release -p poco-bench --bin
//! NAME`: `gas` (gas per step of the task lifecycle), `exec` (WebAssembly execution against
//! the same program built natively), `market` (orderbook publish rate and query latency at
//! 10^5 and 10^6 orders, SQLite and PostgreSQL), `pool` (workerpool latency from matchOrders to
//! a downloadable result, and finalized tasks per second), `tee` (the confidential path in
//! simulation against the plain one), `reads` (the JSON-RPC requests of reading a deal and
//! a task on a chain of 100,000 blocks, with a market and without) and `explorer` (the weight
//! of the explorer's files and its pages' paint times in Chromium over 10,000 deals). This
//! library holds what they share.

mod lifecycle;
pub mod reads;

use std::time::{Duration, Instant};

use alloy::primitives::B256;
use eyre::{Result, bail};
use poco_api::results::{DownloadedResult, ResultStoreClient};
use poco_devnet::cluster::Cluster;

pub use lifecycle::Lifecycle;

/// The machine's CPU model, as `/proc/cpuinfo` names it.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// One deal's milestones, from the moment its `matchOrders` was sent.
#[derive(Debug, Clone, Copy)]
pub struct Milestones {
    /// The deal mined.
    pub mined: Duration,
    /// Its task COMPLETED on-chain.
    pub completed: Duration,
    /// Its result downloaded by the requester.
    pub downloaded: Duration,
}

/// Watches `task_id` of `cluster`, looking every `probe`, until it is COMPLETED on-chain and
/// its result downloaded (trust 1 completes first, then uploads; trust > 1 the other way);
/// at most 120 s after `start`. Returns when each came, counted from `start`, and the result.
pub async fn watch_task(
    cluster: &Cluster,
    task_id: B256,
    start: Instant,
    probe: Duration,
) -> Result<(Duration, Duration, DownloadedResult)> {
    let results = ResultStoreClient::new(&cluster.results_url)?;
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    let (mut completed, mut downloaded) = (None, None);
    let deadline = start + Duration::from_secs(120);
    loop {
        if completed.is_none() && poco.viewTask(task_id).call().await?.status == 3 {
            completed = Some(start.elapsed());
        }
        if downloaded.is_none() && matches!(results.exists(task_id).await, Ok(true)) {
            let result = results.download(task_id, &cluster.net.accounts().requester).await?;
            downloaded = Some((start.elapsed(), result));
        }
        if let Some(completed) = completed
            && let Some((downloaded, result)) = downloaded.take()
        {
            return Ok((completed, downloaded, result));
        }
        if Instant::now() > deadline {
            bail!("task {task_id} not done after 120 s");
        }
        tokio::time::sleep(probe).await;
    }
}

/// The value at percentile `p` (0 to 1, nearest rank) of durations sorted in ascending order.
///
/// # Panics
/// When `sorted` is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
