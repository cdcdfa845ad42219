//! Workerpool benchmark, on the devnet harness (`poco_devnet::cluster::Cluster`: anvil with
//! the contracts, the result store, the scheduler and workers running the wasmtime sandbox, all
//! real, the services in this process):
//!
//! - latency: from the moment the requester sends `matchOrders` to the moment its result is
//!   downloaded from the result store (beneficiary-signed download), for a trivial app
//!   (`apps/testing/argecho`), at trust 1 and at trust 4 (workers' scores set back to zero
//!   before every run, so each run needs as many replicas as with fresh workers); each run
//!   also shows when the deal was mined and when the task was COMPLETED on-chain;
//! - throughput: the finalized tasks per second of one 1,000-task trust-1 deal on 8 workers,
//!   counted from the chain's `TaskFinalize` events, from `matchOrders` to the last one, and
//!   in the steady state (between the 10th and the 90th percentile of finalizations).
//!
//! Run with `cargo run --release -p poco-bench --bin pool [-- options]`:
//! - `--runs 10`: measured latency runs at each trust level (after one warm-up run);
//! - `--tasks 1000`, `--workers 8`, `--slots 8`: the throughput deal and pool;
//! - `--latency-workers 4`: workers of the latency pool (trust 4 needs at least 2);
//! - `--skip-latency`, `--skip-throughput`;
//! - `--block-time 5`: once the cluster is set up, anvil mines a block every 5 seconds
//!   instead of one per transaction (as a real chain does), and each latency run also counts
//!   the blocks from the deal's block to the one at which its result was downloadable.
//!
//! Prints the conditions (cores, anvil mining, build, slots, the services' polling periods)
//! with the figures.

use poco_bench::{Milestones, percentile, watch_task};
use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    primitives::B256,
    providers::{Provider, ext::AnvilApi},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use clap::{Parser, builder::RangedU64ValueParser};
use eyre::{Result, WrapErr, bail, eyre};
use poco_api::results::ResultStoreClient;
use poco_chain::{ChainClient, ClientConfig};
use poco_contracts::bindings::IPoco;
use poco_devnet::cluster::Cluster;
use poco_primitives::Deal;
use poco_test_utils::{OrderSpec, deal_of};
use poco_worker::exec::WasmExecutor;

/// The trivial app every deal runs.
const APP: &str = "testing/argecho";
/// Its arguments.
const PARAMS: &str = r#"{"iexec_args":"hello"}"#;
/// How often the benchmark looks for the result or the chain's events.
const PROBE: Duration = Duration::from_millis(10);

/// Workerpool latency (matchOrders to downloaded result) and throughput (finalized tasks/s).
#[derive(Debug, Parser)]
struct Options {
    /// Measured latency runs at each trust level (after one warm-up run).
    #[arg(long, default_value_t = 10, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    runs: usize,
    /// Tasks of the throughput deal.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    tasks: u64,
    /// Workers of the throughput pool.
    #[arg(long, default_value_t = 8, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    workers: usize,
    /// Slots of each throughput worker.
    #[arg(long, default_value_t = 8, value_parser = RangedU64ValueParser::<u32>::new().range(1..))]
    slots: u32,
    /// Workers of the latency pool (trust 4 with fresh scores needs at least 2).
    #[arg(long, default_value_t = 4, value_parser = RangedU64ValueParser::<usize>::new().range(2..))]
    latency_workers: usize,
    /// Skips the latency runs.
    #[arg(long = "skip-latency", action = clap::ArgAction::SetFalse)]
    latency: bool,
    /// Skips the throughput deal.
    #[arg(long = "skip-throughput", action = clap::ArgAction::SetFalse)]
    throughput: bool,
    /// Mine a block every this many seconds once the cluster is set up (default: a block
    /// per transaction, at once).
    #[arg(long = "block-time", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=60))]
    block_time: Option<u64>,
}

/// How the chain mines, for the figures' conditions.
fn mining(block_time: Option<u64>) -> String {
    match block_time {
        Some(seconds) => {
            format!("interval mining, a block every {seconds} s (automine during the set-up only)")
        }
        None => "automine (a block per transaction, at once)".to_owned(),
    }
}

/// Switches the cluster's anvil from a block per transaction to a block every `seconds`.
async fn set_block_time(cluster: &Cluster, seconds: u64) -> Result<()> {
    let provider = cluster.net.owner().provider();
    provider.anvil_set_auto_mine(false).await.wrap_err("evm_setAutomine")?;
    provider.anvil_set_interval_mining(seconds).await.wrap_err("evm_setIntervalMining")?;
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// A client of the requester that polls for receipts every few milliseconds, so that the
/// benchmark's own waiting does not blur the figures.
async fn requester(cluster: &Cluster) -> Result<ChainClient> {
    let config = ClientConfig { poll_interval: PROBE, ..ClientConfig::default() };
    let wallet = cluster.net.accounts().requester.clone();
    Ok(ChainClient::connect(cluster.net.devnet().rpc_url(), Some(wallet), config).await?)
}

/// Sends the `matchOrders` of `spec` (with the cluster's app and pool) and returns the deal
/// and its block.
async fn match_deal(
    cluster: &Cluster,
    client: &ChainClient,
    spec: OrderSpec,
) -> Result<(Deal, u64)> {
    let spec = OrderSpec { app: cluster.app, workerpool: cluster.workerpool, ..spec };
    let orders = cluster.net.orders(&spec);
    let poco = client.poco(cluster.net.deployment().poco);
    let receipt = client.send(orders.call(&poco)).await.wrap_err("matchOrders")?;
    let block = receipt.block_number.ok_or_else(|| eyre!("a receipt without its block"))?;
    let deal = deal_of(&receipt).ok_or_else(|| eyre!("matchOrders created no deal"))?;
    Ok((deal, block))
}

/// Starts workers `0..count` with `slots` slots each and the harness's polling periods.
fn start_workers(cluster: &mut Cluster, count: usize, slots: u32) -> Result<()> {
    let executor = Arc::new(WasmExecutor::new()?);
    for index in 0..count {
        let mut config = cluster.worker_config(index);
        config.slots = slots;
        cluster.start_worker_with(index, config, executor.clone());
    }
    Ok(())
}

/// One latency run's milestones, and the blocks from the deal's block to the head at which
/// its result was downloaded.
async fn latency_run(
    cluster: &Cluster,
    client: &ChainClient,
    trust: u64,
    salt: u64,
) -> Result<(Milestones, u64)> {
    let spec = OrderSpec { trust, volume: 1, params: PARAMS.into(), salt, ..OrderSpec::default() };
    let start = Instant::now();
    let (deal, deal_block) = match_deal(cluster, client, spec).await?;
    let mined = start.elapsed();
    let task_id = deal.task_id(deal.botFirst)?;
    let (completed, downloaded, result) =
        watch_task(cluster, task_id, start, PROBE).await.wrap_err(format!("trust {trust}"))?;
    let head = client.provider().get_block_number().await?;
    if result.digest == B256::ZERO {
        bail!("an empty result");
    }
    Ok((Milestones { mined, completed, downloaded }, head.saturating_sub(deal_block)))
}

async fn latency(options: &Options) -> Result<()> {
    let mut cluster = Cluster::start(options.latency_workers, APP).await;
    start_workers(&mut cluster, options.latency_workers, 1)?;
    let client = requester(&cluster).await?;
    if let Some(seconds) = options.block_time {
        set_block_time(&cluster, seconds).await?;
    }
    let workers: Vec<_> = cluster.net.accounts().workers.iter().map(|w| w.address()).collect();
    println!(
        "\n(i) latency, matchOrders sent -> result downloaded, app {APP}, {} workers of 1 slot, \
         one task per deal, {} runs after 1 warm-up",
        options.latency_workers, options.runs
    );
    print_periods(&cluster);
    let mut salt = 0;
    for trust in [1, 4] {
        let mut runs = Vec::new();
        for run in 0..=options.runs {
            if trust > 1 {
                for worker in &workers {
                    cluster.net.set_score(*worker, 0).await;
                }
            }
            salt += 1;
            let (outcome, blocks) = latency_run(&cluster, &client, trust, salt).await?;
            if run == 0 {
                println!(
                    "  trust {trust} warm-up: {} (first fetch and compile of the app)",
                    ms(outcome.downloaded)
                );
            } else {
                runs.push((outcome, blocks));
            }
            // Let the pool settle (heartbeats free the slots) before the next deal.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let summary = |pick: fn(&Milestones) -> Duration| {
            let mut values: Vec<Duration> = runs.iter().map(|(run, _)| pick(run)).collect();
            values.sort_unstable();
            format!(
                "min {:>7}  p50 {:>7}  max {:>7}",
                ms(values[0]),
                ms(percentile(&values, 0.5)),
                ms(values[values.len() - 1])
            )
        };
        println!("  trust {trust}, {} runs:", runs.len());
        println!("    downloadable result  {}", summary(|r| r.downloaded));
        println!("    deal mined           {}", summary(|r| r.mined));
        println!("    task COMPLETED       {}", summary(|r| r.completed));
        let all: Vec<String> = runs.iter().map(|(r, _)| ms(r.downloaded)).collect();
        println!("    every run: {}", all.join(", "));
        let mut blocks: Vec<u64> = runs.iter().map(|(_, blocks)| *blocks).collect();
        blocks.sort_unstable();
        println!(
            "    blocks from the deal's block to a downloadable result: min {}  p50 {}  max {} \
             ({})",
            blocks[0],
            blocks[(blocks.len() - 1) / 2],
            blocks[blocks.len() - 1],
            mining(options.block_time)
        );
    }
    Ok(())
}

async fn throughput(options: &Options) -> Result<()> {
    let mut cluster = Cluster::start(options.workers, APP).await;
    start_workers(&mut cluster, options.workers, options.slots)?;
    let client = requester(&cluster).await?;
    if let Some(seconds) = options.block_time {
        set_block_time(&cluster, seconds).await?;
    }
    let provider = cluster.net.owner().provider().clone();
    // Give the workers a moment to register before the deal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "\n(ii) throughput: one trust-1 deal of {} tasks, app {APP}, {} workers of {} slots",
        options.tasks, options.workers, options.slots
    );
    print_periods(&cluster);
    // Cheap orders: the requester's deposit pays for the whole deal.
    let spec = OrderSpec {
        trust: 1,
        volume: options.tasks,
        params: PARAMS.into(),
        app_price: 1_000,
        workerpool_price: 10_000,
        salt: 1,
        ..OrderSpec::default()
    };
    let start_block = provider.get_block_number().await?;
    let start = Instant::now();
    let (deal, _) = match_deal(&cluster, &client, spec).await?;
    let mined = start.elapsed();
    let first_block = provider.get_block_number().await?;
    let tasks: std::collections::HashSet<B256> = deal.tasks().map(|(_, id)| id).collect();
    let mut finalized: Vec<Duration> = Vec::with_capacity(tasks.len());
    let mut seen = std::collections::HashSet::new();
    let mut from = start_block + 1;
    let limit = Duration::from_secs(60 + options.tasks / 2);
    let mut next_report = Duration::from_secs(5);
    while finalized.len() < tasks.len() {
        if start.elapsed() > limit {
            bail!("only {} of {} tasks finalized after {limit:?}", finalized.len(), tasks.len());
        }
        let head = provider.get_block_number().await?;
        if head >= from {
            let filter = Filter::new()
                .address(cluster.net.deployment().poco)
                .event_signature(IPoco::TaskFinalize::SIGNATURE_HASH)
                .from_block(from)
                .to_block(head);
            let now = start.elapsed();
            for log in provider.get_logs(&filter).await? {
                let event = IPoco::TaskFinalize::decode_log(&log.inner)?;
                if tasks.contains(&event.data.taskid) && seen.insert(event.data.taskid) {
                    finalized.push(now);
                }
            }
            from = head + 1;
        }
        if start.elapsed() >= next_report {
            println!("    {:>5.1} s: {} finalized", start.elapsed().as_secs_f64(), finalized.len());
            next_report += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = finalized[finalized.len() - 1];
    let n = finalized.len();
    let (p10, p90) = (finalized[n / 10], finalized[n * 9 / 10]);
    let steady = (n * 9 / 10 - n / 10) as f64 / (p90 - p10).as_secs_f64();
    let last_block = provider.get_block_number().await?;
    // Every result must also be in the result store (trust 1: uploaded just after finalize).
    let results = ResultStoreClient::new(&cluster.results_url)?;
    let mut missing: Vec<B256> = tasks.iter().copied().collect();
    let uploads_deadline = Instant::now() + Duration::from_secs(30);
    while !missing.is_empty() && Instant::now() < uploads_deadline {
        let mut still = Vec::new();
        for task in missing {
            if !matches!(results.exists(task).await, Ok(true)) {
                still.push(task);
            }
        }
        missing = still;
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let uploaded_at = start.elapsed();
    println!(
        "  deal mined after {}; first task finalized at {}; all {n} at {:.2} s",
        ms(mined),
        ms(finalized[0]),
        total.as_secs_f64()
    );
    println!(
        "  finalized tasks per second: {:.1} (all, from matchOrders), {:.1} (steady state, 10th \
         to 90th percentile)",
        n as f64 / total.as_secs_f64(),
        steady
    );
    println!(
        "  results in the store: {} of {n} (checked until {:.2} s)",
        n - missing.len(),
        uploaded_at.as_secs_f64()
    );
    println!(
        "  blocks mined during the deal: {} ({:.1} per second)",
        last_block - first_block,
        (last_block - first_block) as f64 / total.as_secs_f64()
    );
    if let Ok(text) = reqwest::get(format!("{}/metrics", cluster.scheduler_url())).await {
        let text = text.text().await.unwrap_or_default();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            println!("    scheduler metric: {line}");
        }
    }
    Ok(())
}

/// The harness's polling periods.
fn print_periods(cluster: &Cluster) {
    let scheduler = cluster.scheduler_config();
    let worker = cluster.worker_config(0);
    println!(
        "  scheduler: SQLite store, engine tick {} ms, heartbeats every {} ms, chain follower \
         polls every 100 ms, {} confirmations, at most {} uncontributed tasks per worker slot; \
         workers: ask for work every {} ms, a slot freed once its task is computed, poll for \
         receipts every {} ms, {} uploads at once",
        scheduler.tick.as_millis(),
        scheduler.heartbeat_interval.as_millis(),
        scheduler.confirmations,
        poco_scheduler::IN_FLIGHT_PER_SLOT,
        worker.work_poll.as_millis(),
        ClientConfig::default().poll_interval.as_millis(),
        worker.concurrent_uploads,
    );
}

/// The 1, 5 and 15-minute load averages (other processes share the cores).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn anvil_version() -> String {
    let anvil = std::env::var("POCO_ANVIL").unwrap_or_else(|_| "anvil".into());
    Command::new(&anvil)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| format!("{anvil} (version unknown)"))
}

fn main() -> Result<()> {
    let options = Options::parse();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = cores.max(2);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    runtime.block_on(async {
        println!("workerpool benchmark");
        println!(
            "  build: {}; {cores} cores (tokio: {threads} threads shared by the scheduler, the \
             workers, the result store and this client; anvil in its own process)",
            if cfg!(debug_assertions) { "debug" } else { "release" }
        );
        println!("  chain: {}, {}", anvil_version(), mining(options.block_time));
        println!("  load average before: {}", load());
        if options.latency {
            Box::pin(latency(&options)).await?;
        }
        if options.throughput {
            Box::pin(throughput(&options)).await?;
        }
        println!("\n  load average after: {}", load());
        Ok(())
    })
}
