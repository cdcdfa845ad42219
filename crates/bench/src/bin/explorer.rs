//! Explorer benchmark: the weight of the explorer's files, and how fast its deal page and its
//! market page draw in Chromium over a market holding many deals.
//!
//! Run with `cargo run --release -p poco-bench --bin explorer -- [--deals 10000] [--runs 5]`.
//! Needs `npm ci` (playwright-core) and Debian's `chromium`.
//!
//! The market's store (SQLite, in a temporary folder) is seeded through the store as the
//! follower fills it: `--deals` deals of one task each, spread over 100 apps and 10 pools, and,
//! for the deal measured, 3 tasks with 5 contributions and their outcomes each. The market then
//! serves its API and the explorer over HTTP on 127.0.0.1, no chain node involved (the mirror
//! answers every read). Each run opens the page in a new browser page and reports the time to
//! the first contentful paint and to the view drawn (its heading and tables in place).

use std::{process::Command, sync::Arc, time::Instant};

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use clap::Parser;
use eyre::{Result, WrapErr, eyre};
use poco_market::chain::EmptyChain;
use poco_market::{
    Limits, Market,
    api::{ApiState, router},
    model::TaskEventKind,
    store::{ChainBatch, ChainEvent, LocatedChainEvent, SqliteStore, Store},
};
use poco_primitives::{Deal, OrderKind, PocoDomain};

#[derive(Debug, Parser)]
struct Options {
    /// Deals in the market.
    #[arg(long, default_value_t = 10_000)]
    deals: u64,
    /// Page loads measured of each view.
    #[arg(long, default_value_t = 5)]
    runs: u32,
}

fn address(kind: &str, n: u64) -> Address {
    Address::from_slice(&keccak256(format!("{kind}-{n}"))[12..])
}

/// The `n`th deal: an app and a pool among many, one task (three for the first).
fn deal(n: u64) -> Deal {
    Deal {
        requestHash: keccak256(format!("request-{n}")),
        app: address("app", n % 100),
        appOwner: address("app-owner", n % 100),
        appPrice: U256::from(100_000_000u64),
        workerpool: address("pool", n % 10),
        scheduler: address("scheduler", n % 10),
        workerpoolPrice: U256::from(1_000_000_000u64),
        requester: address("requester", n % 1000),
        beneficiary: address("requester", n % 1000),
        category: U256::ZERO,
        trust: U256::from(4),
        startTime: U256::from(1_796_000_000 + n),
        botFirst: U256::ZERO,
        botSize: U256::from(if n == 0 { 3 } else { 1 }),
        workerStake: U256::from(300_000_000u64),
        ..Deal::default()
    }
}

async fn seed(store: &dyn Store, deals: u64) -> Result<B256> {
    let at = |event, block: u64, log_index: u64| LocatedChainEvent {
        event,
        block,
        transaction: keccak256(block.to_be_bytes()),
        log_index,
    };
    let mut events = Vec::new();
    for n in 0..100 {
        let (asset, to) = (address("app", n), address("app-owner", n));
        let event =
            ChainEvent::AssetTransfer { kind: OrderKind::App, asset, from: Address::ZERO, to };
        events.push(at(event, 1, n));
    }
    for n in 0..10 {
        let (asset, to) = (address("pool", n), address("scheduler", n));
        let kind = OrderKind::Workerpool;
        events.push(at(
            ChainEvent::AssetTransfer { kind, asset, from: Address::ZERO, to },
            1,
            100 + n,
        ));
    }
    let mut block = 2;
    for n in 0..deals {
        let deal = deal(n);
        let deal_id = deal.id();
        let created =
            ChainEvent::DealCreated { deal_id, deal: Box::new(deal), params: "{}".into() };
        events.push(at(created, block, n % 100));
        if n % 100 == 99 {
            block += 1;
        }
    }
    block += 1;
    // The measured deal's tasks: 5 contributions each, one of them wrong.
    let measured = deal(0);
    let mut log_index = 0;
    for index in 0..3u64 {
        let task_id = measured.task_id(U256::from(index)).map_err(|e| eyre!("{e}"))?;
        let mut task = |kind, account, word: Option<B256>, results: Option<Bytes>| {
            log_index += 1;
            at(ChainEvent::Task { task_id, kind, account, word, results }, block, log_index)
        };
        events.push(task(TaskEventKind::Initialize, Some(measured.workerpool), None, None));
        for w in 0..5 {
            let vote = if w == 4 { B256::repeat_byte(2) } else { B256::repeat_byte(1) };
            events.push(task(
                TaskEventKind::Contribute,
                Some(address("worker", w)),
                Some(vote),
                None,
            ));
        }
        events.push(task(TaskEventKind::Consensus, None, Some(B256::repeat_byte(1)), None));
        let url = Bytes::from(format!("https://results.example/{task_id}").into_bytes());
        events.push(task(TaskEventKind::Finalize, None, None, Some(url)));
        for w in 0..4 {
            let reward = Some(B256::from(U256::from(321_750_000u64)));
            events.push(task(TaskEventKind::Accurate, Some(address("worker", w)), reward, None));
        }
        events.push(task(TaskEventKind::Faulty, Some(address("worker", 4)), None, None));
    }
    let batch =
        ChainBatch { from: 1, next: block + 1, events, balances: vec![], balance_block: block };
    if !store.apply_batch(batch).await? {
        return Err(eyre!("the store already holds a chain"));
    }
    Ok(measured.id())
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = Options::parse();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node = root.join("node_modules/.bin/node");
    if !node.is_file() {
        return Err(eyre!("no {}: run `npm ci` at the repository root", node.display()));
    }
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("market.sqlite").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url, 4).await?);
    let started = Instant::now();
    let deal_id = seed(store.as_ref(), options.deals).await?;
    let seeded = started.elapsed();
    let domain = PocoDomain::new(31337, Address::repeat_byte(1));
    let market = Market::new(store, Arc::new(EmptyChain), domain, Limits::default());
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let app = router(ApiState::new(market, stopped));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .await
    });

    let script = root.join("explorer/tests/paint.mjs");
    let measure = tokio::task::spawn_blocking({
        let (base, runs) = (base.clone(), options.runs);
        move || {
            Command::new(node)
                .arg(script)
                .env("MARKET_URL", base)
                .env("DEAL_ID", deal_id.to_string())
                .env("RUNS", runs.to_string())
                .env("EXPLORER_DIR", root.join("crates/market/explorer"))
                .output()
        }
    });
    let out = measure.await?.wrap_err("node runs")?;
    if !out.status.success() {
        return Err(eyre!("the browser run failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let figures: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    println!(
        "explorer benchmark: {} deals in the market (seeded in {seeded:.1?}), SQLite",
        options.deals
    );
    println!(
        "machine: {}, {} cores; {}",
        poco_bench::cpu_model(),
        std::thread::available_parallelism()?,
        figures["browser"].as_str().unwrap_or("?")
    );
    println!();
    println!("assets        bytes    gzipped");
    for file in figures["assets"].as_array().into_iter().flatten() {
        println!(
            "{:<12} {:>7}  {:>9}",
            file["name"].as_str().unwrap_or("?"),
            file["bytes"].as_u64().unwrap_or(0),
            file["gzipped"].as_u64().unwrap_or(0)
        );
    }
    let total = |key: &str| figures[key].as_u64().unwrap_or(0);
    println!("{:<12} {:>7}  {:>9}", "total", total("totalBytes"), total("totalGzipped"));
    println!();
    println!(
        "view ({} runs, new page each)   first paint p50 / max   drawn p50 / max",
        options.runs
    );
    for view in ["deal", "market"] {
        let v = &figures["views"][view];
        println!(
            "{view:<32} {:>6} / {:>5} ms      {:>5} / {:>5} ms",
            v["paintP50"].as_i64().unwrap_or(-1),
            v["paintMax"].as_i64().unwrap_or(-1),
            v["drawnP50"].as_i64().unwrap_or(-1),
            v["drawnMax"].as_i64().unwrap_or(-1)
        );
    }
    Ok(())
}
