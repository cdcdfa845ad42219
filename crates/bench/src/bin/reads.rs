//! Reads benchmark: how many JSON-RPC requests reading a task (what `poco task show` does:
//! `Poco::task`) and a deal (`Poco::deal`) cost on a chain with a long history, with a market
//! that indexed the deal and without one, counted by a proxy in front of anvil. Request
//! counts, not times: they are what a long chain makes grow, and what a public endpoint
//! limits.
//!
//! Run with `cargo run --release -p poco-bench --bin reads` (100,000 blocks: 50,000 before the
//! deal, 50,000 after; `--before` and `--after` change them).

use alloy::providers::Provider;
use eyre::Result;
use poco_bench::reads::{ReadsChain, former_requests};
use poco_test_utils::rpc::Traffic;

/// The requests of reading a task and a deal on a long chain, with a market and without.
#[derive(Debug, clap::Parser)]
struct Options {
    /// Empty blocks mined between the deployment and the deal.
    #[arg(long, default_value_t = 50_000)]
    before: u64,
    /// Empty blocks mined after the deal and its completed task.
    #[arg(long, default_value_t = 50_000)]
    after: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let options = <Options as clap::Parser>::parse();
    let started = std::time::Instant::now();
    let mut chain = Box::pin(ReadsChain::build(options.before, options.after)).await?;
    let built = started.elapsed();
    let market = chain.start_market().await?;
    let with_market = chain.measure(Some(market)).await?;
    let without = chain.measure(None).await?;
    let client = chain.client(None).await?;
    let node: String =
        client.chain().provider().raw_request("web3_clientVersion".into(), ()).await?;
    let deployed = chain.deployment().block;
    let (former_task, former_deal) = chain.former_requests();

    println!(
        "poco reads benchmark: JSON-RPC requests of one read, counted by a proxy in front of anvil"
    );
    println!(
        "conditions: {node}, machine {}; protocol deployed at block {deployed}, the deal matched \
         and its one task completed at block {} (and {}), head {} ({} blocks of history); \
         eth_getLogs over at most {} blocks; market: SQLite, following anvil, the deal indexed; \
         chain built in {:.1} s",
        poco_bench::cpu_model(),
        chain.deal_block,
        chain.deal_block + 1,
        chain.head,
        chain.head - deployed,
        poco_sdk::LOG_RANGE,
        built.as_secs_f64(),
    );
    println!(
        "the task read: {} with results at {}",
        with_market.task_view.status,
        with_market.task_view.results.as_deref().unwrap_or("(none)")
    );
    println!();
    println!(
        "{:<44} {:>9} {:>12} {:>13}   calls",
        "read", "requests", "eth_getLogs", "answer bytes"
    );
    row("Poco::task, the market knows the deal", &with_market.task);
    row("Poco::task, no market", &without.task);
    row("Poco::deal, the market knows the deal", &with_market.deal);
    row("Poco::deal, no market", &without.deal);
    row("(Poco::connect, before each of the above)", &with_market.connect);
    println!();
    println!("the former reads (a scan of the whole history, counted from their code):");
    println!("  {:<42} {:>9}", "Poco::task", former_task);
    println!("  {:<42} {:>9}", "Poco::deal", former_deal);
    let (task_10m, deal_10m) = former_requests(0, 10_000_000, poco_sdk::LOG_RANGE + 1);
    println!(
        "  on a chain of 10,000,000 blocks they would make {task_10m} and {deal_10m}; the reads \
         through a market stay at {} and {}",
        with_market.task.requests, with_market.deal.requests
    );
    chain.stop().await
}

fn row(name: &str, traffic: &Traffic) {
    println!(
        "{name:<44} {:>9} {:>12} {:>13}   {}",
        traffic.requests,
        traffic.count("eth_getLogs"),
        traffic.answer_bytes,
        traffic.summary()
    );
}
