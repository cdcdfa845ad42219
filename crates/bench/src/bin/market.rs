//! Market benchmark: publish throughput and query latency of the orderbook at 10^5 and 10^6
//! open orders, on SQLite and PostgreSQL.
//!
//! Run with `cargo run --release -p poco-bench --bin market -- [options]`:
//! - `--sizes 100000,1000000`: book sizes to measure at (ascending);
//! - `--backends sqlite,postgres`: PostgreSQL at `$POCO_TEST_DATABASE_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/postgres`), in a fresh database dropped at the end;
//! - `--publish 20000`: orders published for the throughput figure, at each size;
//! - `--concurrency 64`: publications in flight;
//! - `--queries 2000`: queries of each sort for the latency figures.
//!
//! What is measured, at each size:
//! - publish: `Market::publish`, each in its own task, the service's whole publication path
//!   but HTTP: JSON-typed order in, EIP-712 hash, ECDSA signature recovery, owner / consumed volume / stake /
//!   cap checks against the mirror, persisted in a committed transaction (publications are
//!   group-committed);
//! - orderbook: a first page (20) of a filtered book (workerpool orders by category and
//!   trust, app orders by app, request orders by category), library call and over HTTP;
//! - best match: `Market::best_match`, with its `match_orders` check, library and HTTP.
//!
//! The book is seeded straight into the store (signed orders, not verified again), and the
//! chain mirror (registries, categories, balances) is filled through the store as the
//! follower fills it; no chain node is involved, as in the steady state where the mirror
//! answers every read.

use poco_bench::percentile;
use poco_market::chain::EmptyChain;
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::local::PrivateKeySigner,
};
use clap::{Parser, builder::RangedU64ValueParser};
use eyre::{Result, WrapErr, eyre};
use futures::{StreamExt, stream};
use poco_market::{
    Limits, Market,
    api::{ApiState, router},
    matching::Wanted,
    model::{AnySigned, OrderRecord, SignatureKind, Status},
    store::{
        ChainBatch, ChainEvent, LocatedChainEvent, OrderQuery, PostgresStore, Publication,
        RoleFilter, SqliteStore, Store,
    },
};
use poco_primitives::{
    AppOrder, DatasetOrder, Order, OrderKind, PocoDomain, RequestOrder, Tag, WorkerpoolOrder,
};
use sqlx::{Connection, Executor};

const RLC: u64 = 1_000_000_000;
const APPS: usize = 1_000;
const DATASETS: usize = 200;
const POOLS: usize = 300;
const CATEGORIES: u64 = 5;

/// Orderbook publish rate and query latency at each book size, on each backend.
#[derive(Debug, Parser)]
struct Options {
    /// Book sizes to measure at (ascending).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    sizes: Vec<usize>,
    /// Backends: `sqlite`, `postgres` (at `$POCO_TEST_DATABASE_URL`).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// Orders published for the throughput figure, at each size.
    #[arg(long, default_value_t = 20_000)]
    publish: usize,
    /// Publications in flight.
    #[arg(long, default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    concurrency: usize,
    /// Queries of each sort for the latency figures.
    #[arg(long, default_value_t = 2_000, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    queries: usize,
}

/// A small deterministic generator (xorshift64*), so that every run sees the same book.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The actors and assets of the benchmark.
struct World {
    domain: PocoDomain,
    app_owners: Vec<PrivateKeySigner>,
    dataset_owners: Vec<PrivateKeySigner>,
    schedulers: Vec<PrivateKeySigner>,
    requesters: Vec<PrivateKeySigner>,
    apps: Vec<Address>,
    datasets: Vec<Address>,
    pools: Vec<Address>,
}

fn key(role: u8, index: usize) -> PrivateKeySigner {
    let seed = keccak256([&[role][..], &index.to_be_bytes()].concat());
    PrivateKeySigner::from_bytes(&seed).expect("a valid key")
}

fn asset(role: u8, index: usize) -> Address {
    Address::from_slice(&keccak256([&[role, 0xa5][..], &index.to_be_bytes()].concat())[12..])
}

impl World {
    fn new() -> Self {
        Self {
            domain: PocoDomain::new(31_337, Address::repeat_byte(0x50)),
            app_owners: (0..50).map(|i| key(1, i)).collect(),
            dataset_owners: (0..20).map(|i| key(2, i)).collect(),
            schedulers: (0..60).map(|i| key(3, i)).collect(),
            requesters: (0..500).map(|i| key(4, i)).collect(),
            apps: (0..APPS).map(|i| asset(1, i)).collect(),
            datasets: (0..DATASETS).map(|i| asset(2, i)).collect(),
            pools: (0..POOLS).map(|i| asset(3, i)).collect(),
        }
    }

    fn app_owner(&self, app: usize) -> &PrivateKeySigner {
        &self.app_owners[app % self.app_owners.len()]
    }
    fn dataset_owner(&self, dataset: usize) -> &PrivateKeySigner {
        &self.dataset_owners[dataset % self.dataset_owners.len()]
    }
    fn scheduler(&self, pool: usize) -> &PrivateKeySigner {
        &self.schedulers[pool % self.schedulers.len()]
    }

    /// The mirror of a chain where every asset is registered, the categories exist and every
    /// scheduler and requester has a large free balance.
    async fn register(&self, store: &dyn Store) -> Result<()> {
        let mut events = Vec::new();
        let mut transfer = |kind, asset, owner: Address| {
            events.push(LocatedChainEvent {
                event: ChainEvent::AssetTransfer { kind, asset, from: Address::ZERO, to: owner },
                block: 1,
                transaction: B256::ZERO,
                log_index: events.len() as u64,
            });
        };
        for (i, app) in self.apps.iter().enumerate() {
            transfer(OrderKind::App, *app, self.app_owner(i).address());
        }
        for (i, dataset) in self.datasets.iter().enumerate() {
            transfer(OrderKind::Dataset, *dataset, self.dataset_owner(i).address());
        }
        for (i, pool) in self.pools.iter().enumerate() {
            transfer(OrderKind::Workerpool, *pool, self.scheduler(i).address());
        }
        for id in 0..CATEGORIES {
            events.push(LocatedChainEvent {
                event: ChainEvent::Category { id, timeref: 300 * (id + 1) },
                block: 1,
                transaction: B256::ZERO,
                log_index: events.len() as u64,
            });
        }
        let applied = store
            .apply_batch(ChainBatch {
                from: 1,
                next: 2,
                events,
                balances: vec![],
                balance_block: 1,
            })
            .await?;
        if !applied {
            return Err(eyre!("the store already holds a chain"));
        }
        let plenty = U256::from(10u64).pow(U256::from(30));
        for account in self.schedulers.iter().chain(&self.requesters) {
            store.store_balance(account.address(), plenty, 1).await?;
        }
        Ok(())
    }

    /// The `n`th order of the generated book, signed.
    fn order(&self, n: u64) -> AnySigned {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n.wrapping_mul(0x1000_0000_01b3));
        let salt = B256::from(U256::from(n));
        let zero = Address::ZERO;
        match rng.below(10) {
            0..=2 => {
                let app = rng.below(APPS as u64) as usize;
                let order = AppOrder {
                    app: self.apps[app],
                    appprice: U256::from(rng.below(5 * RLC)),
                    volume: U256::from(1 + rng.below(1_000)),
                    tag: if rng.chance(10) { Tag::TEE.0 } else { B256::ZERO },
                    workerpoolrestrict: if rng.chance(5) {
                        self.pools[rng.below(POOLS as u64) as usize]
                    } else {
                        zero
                    },
                    salt,
                    ..Default::default()
                };
                AnySigned::App(order.sign(self.app_owner(app), &self.domain).expect("signs"))
            }
            3 => {
                let dataset = rng.below(DATASETS as u64) as usize;
                let order = DatasetOrder {
                    dataset: self.datasets[dataset],
                    datasetprice: U256::from(rng.below(2 * RLC)),
                    volume: U256::from(1 + rng.below(1_000)),
                    apprestrict: if rng.chance(5) {
                        self.apps[rng.below(APPS as u64) as usize]
                    } else {
                        zero
                    },
                    salt,
                    ..Default::default()
                };
                AnySigned::Dataset(
                    order.sign(self.dataset_owner(dataset), &self.domain).expect("signs"),
                )
            }
            4..=6 => {
                let pool = rng.below(POOLS as u64) as usize;
                let mut tag = Tag::NONE;
                if rng.chance(25) {
                    tag |= Tag::TEE;
                }
                if rng.chance(10) {
                    tag |= Tag::GPU;
                }
                let order = WorkerpoolOrder {
                    workerpool: self.pools[pool],
                    workerpoolprice: U256::from(rng.below(5 * RLC)),
                    volume: U256::from(1 + rng.below(1_000)),
                    tag: tag.0,
                    category: U256::from(rng.below(CATEGORIES)),
                    trust: U256::from(rng.below(9)),
                    requesterrestrict: if rng.chance(5) {
                        self.requesters[rng.below(self.requesters.len() as u64) as usize].address()
                    } else {
                        zero
                    },
                    salt,
                    ..Default::default()
                };
                AnySigned::Workerpool(
                    order.sign(self.scheduler(pool), &self.domain).expect("signs"),
                )
            }
            _ => {
                let requester = &self.requesters[rng.below(self.requesters.len() as u64) as usize];
                let order = RequestOrder {
                    app: self.apps[rng.below(APPS as u64) as usize],
                    appmaxprice: U256::from(rng.below(5 * RLC)),
                    workerpoolmaxprice: U256::from(rng.below(5 * RLC)),
                    requester: requester.address(),
                    volume: U256::from(1 + rng.below(100)),
                    category: U256::from(rng.below(CATEGORIES)),
                    trust: U256::from(rng.below(5)),
                    beneficiary: requester.address(),
                    params: format!("{{\"iexec_args\":\"run {n}\"}}"),
                    salt,
                    ..Default::default()
                };
                AnySigned::Request(order.sign(requester, &self.domain).expect("signs"))
            }
        }
    }

    /// Signs orders `range` on every core.
    fn orders(self: &Arc<Self>, range: std::ops::Range<u64>) -> Vec<AnySigned> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let chunk = (range.end - range.start).div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let start = range.start + t * chunk;
                    let end = (start + chunk).min(range.end);
                    let world = self.clone();
                    scope.spawn(move || (start..end).map(|n| world.order(n)).collect::<Vec<_>>())
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("signing thread")).collect()
        })
    }

    /// The owner that signed `order`.
    fn signer_of(&self, order: &AnySigned) -> Address {
        match order {
            AnySigned::Request(o) => o.requester,
            other => {
                poco_primitives::signature::recover_signer(other.hash(&self.domain), other.sign())
                    .unwrap_or_default()
            }
        }
    }

    /// Stores signed orders as the market would after checking them (no second check).
    async fn seed(&self, store: &dyn Store, orders: Vec<AnySigned>) -> Result<()> {
        let owners: HashMap<Address, Address> = self
            .apps
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, self.app_owner(i).address()))
            .chain(
                self.datasets
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (*d, self.dataset_owner(i).address())),
            )
            .chain(self.pools.iter().enumerate().map(|(i, p)| (*p, self.scheduler(i).address())))
            .collect();
        let mut batch = Vec::with_capacity(2_000);
        for order in orders {
            let kind = order.kind();
            let owner = match &order {
                AnySigned::Request(o) => o.requester,
                other => owners[&other.asset()],
            };
            let coverage = order.coverage_per_task().map(|per_task| (owner, per_task));
            batch.push(Publication {
                record: OrderRecord {
                    hash: order.hash(&self.domain),
                    order,
                    status: Status::Open,
                    remaining: U256::ZERO,
                    owner,
                    signature: SignatureKind::Eoa,
                    published_at: 0,
                    updated_at: 0,
                    reason: None,
                },
                owner_of: (kind != OrderKind::Request).then_some(owner),
                coverage,
                cap: u64::MAX,
            });
            if batch.len() == 2_000 {
                check(store.publish(std::mem::take(&mut batch)).await?)?;
            }
        }
        if !batch.is_empty() {
            check(store.publish(batch).await?)?;
        }
        Ok(())
    }
}

fn check(outcomes: Vec<poco_market::Result<poco_market::store::Published>>) -> Result<()> {
    for outcome in outcomes {
        outcome.wrap_err("a seeded order was refused")?;
    }
    Ok(())
}

/// Latency percentiles of a set of samples.
struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    Latency {
        p50: percentile(&samples, 0.50),
        p99: percentile(&samples, 0.99),
        max: *samples.last().expect("samples"),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// A best-match request.
fn wanted(world: &World, rng: &mut Rng) -> Wanted {
    let requester = &world.requesters[rng.below(world.requesters.len() as u64) as usize];
    Wanted {
        app: world.apps[rng.below(APPS as u64) as usize],
        dataset: rng.chance(30).then(|| world.datasets[rng.below(DATASETS as u64) as usize]),
        workerpool: None,
        requester: requester.address(),
        beneficiary: None,
        category: rng.below(CATEGORIES),
        trust: rng.below(4),
        tag: if rng.chance(20) { Tag::TEE } else { Tag::NONE },
        app_max_price: U256::from(5 * RLC),
        dataset_max_price: U256::from(2 * RLC),
        workerpool_max_price: U256::from(5 * RLC),
        volume: U256::from(1),
    }
}

/// An orderbook query: a first page of one of three filtered books.
fn book_query(world: &World, rng: &mut Rng) -> (OrderQuery, String) {
    match rng.below(3) {
        0 => {
            let mut q = OrderQuery::new(OrderKind::Workerpool, 20);
            let (category, trust) = (rng.below(CATEGORIES), rng.below(4));
            q.category = Some(category);
            q.min_trust = Some(trust);
            (q, format!("/workerpoolorders?category={category}&minTrust={trust}"))
        }
        1 => {
            let mut q = OrderQuery::new(OrderKind::App, 20);
            let app = world.apps[rng.below(APPS as u64) as usize];
            q.asset = Some(app);
            q.workerpool = RoleFilter::Any;
            (q, format!("/apporders?app={app}&workerpool=any"))
        }
        _ => {
            let mut q = OrderQuery::new(OrderKind::Request, 20);
            let category = rng.below(CATEGORIES);
            q.category = Some(category);
            (q, format!("/requestorders?category={category}"))
        }
    }
}

async fn open_store(
    backend: &str,
    dir: &std::path::Path,
) -> Result<(Arc<dyn Store>, Option<(String, String)>)> {
    match backend {
        "sqlite" => {
            let url = format!("sqlite://{}", dir.join("market.sqlite").display());
            Ok((Arc::new(SqliteStore::open(&url, 4).await?), None))
        }
        "postgres" => {
            let base = std::env::var("POCO_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!("poco_market_bench_{}", std::process::id());
            let mut admin = sqlx::PgConnection::connect(&base)
                .await
                .wrap_err_with(|| format!("PostgreSQL at {base}"))?;
            admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).await?;
            admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await?;
            let (prefix, _) =
                base.rsplit_once('/').ok_or_else(|| eyre!("a database URL with a path"))?;
            let store = PostgresStore::connect(&format!("{prefix}/{name}"), 16).await?;
            Ok((Arc::new(store), Some((base, name))))
        }
        other => Err(eyre!("unknown backend {other} (sqlite, postgres)")),
    }
}

async fn run_backend(options: &Options, world: &Arc<World>, backend: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (store, admin) = open_store(backend, dir.path()).await?;
    world.register(store.as_ref()).await?;
    let market =
        Market::new(store.clone(), Arc::new(EmptyChain), world.domain, Limits::unlimited());
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = router(ApiState::new(market.clone(), stopped));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    let mut next_order = 0u64;
    let mut seeded = 0usize;
    for &size in &options.sizes {
        // Seed up to the size (the orders published below count towards it).
        let started = Instant::now();
        while seeded < size {
            let count = (size - seeded).min(100_000) as u64;
            let orders = world.orders(next_order..next_order + count);
            next_order += count;
            world.seed(store.as_ref(), orders).await?;
            seeded += count as usize;
        }
        let seed_time = started.elapsed();
        let open: u64 = store.open_counts().await?.iter().sum();
        println!("\n== {backend}, {open} open orders (seeded in {:.1} s)", seed_time.as_secs_f64());

        // Publish throughput.
        let orders = world.orders(next_order..next_order + options.publish as u64);
        next_order += options.publish as u64;
        let started = Instant::now();
        let results: Vec<_> = stream::iter(orders)
            .map(|order| {
                // One task per publication, as the service runs one per request, so that
                // signature recoveries spread over the runtime's threads.
                let market = market.clone();
                async move {
                    tokio::spawn(async move { market.publish(order).await })
                        .await
                        .map_err(|e| poco_market::Error::Internal(e.to_string()))?
                }
            })
            .buffer_unordered(options.concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed();
        let created = results
            .iter()
            .filter(|r| matches!(r, Ok(poco_market::store::Published::Created(_))))
            .count();
        if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
            return Err(eyre!("a publication failed: {error}"));
        }
        seeded += created;
        println!(
            "publish      {created} orders in {:.2} s: {:.0} orders/s (concurrency {})",
            elapsed.as_secs_f64(),
            created as f64 / elapsed.as_secs_f64(),
            options.concurrency
        );

        // Orderbook and best-match latency, library then HTTP.
        let mut rng = Rng(0xdead_beef ^ size as u64);
        let mut library = Vec::with_capacity(options.queries);
        let mut over_http = Vec::with_capacity(options.queries);
        let mut rows = 0usize;
        for _ in 0..options.queries {
            let (query, path) = book_query(world, &mut rng);
            let started = Instant::now();
            rows += market.orders(query).await?.items.len();
            library.push(started.elapsed());
            let started = Instant::now();
            let response = http.get(format!("http://{address}{path}")).send().await?;
            let status = response.status();
            let _ = response.bytes().await?;
            over_http.push(started.elapsed());
            if !status.is_success() {
                return Err(eyre!("GET {path}: {status}"));
            }
        }
        let (lib, web) = (latency(library), latency(over_http));
        println!(
            "orderbook    library p50 {} p99 {} max {} | HTTP p50 {} p99 {} ({:.1} rows/page)",
            ms(lib.p50),
            ms(lib.p99),
            ms(lib.max),
            ms(web.p50),
            ms(web.p99),
            rows as f64 / options.queries as f64
        );
        let mut library = Vec::with_capacity(options.queries);
        let mut over_http = Vec::with_capacity(options.queries);
        let mut found = 0usize;
        let mut slowest: Option<(Duration, Wanted, bool)> = None;
        for _ in 0..options.queries {
            let wanted = wanted(world, &mut rng);
            let started = Instant::now();
            let answer = market.best_match(&wanted).await?;
            let took = started.elapsed();
            found += usize::from(answer.found);
            library.push(took);
            if slowest.as_ref().is_none_or(|(most, ..)| took > *most) {
                slowest = Some((took, wanted.clone(), answer.found));
            }
            let mut path = format!(
                "/bestmatch?app={}&requester={}&category={}&trust={}&appmaxprice={}&datasetmaxprice={}&workerpoolmaxprice={}",
                wanted.app,
                wanted.requester,
                wanted.category,
                wanted.trust,
                wanted.app_max_price,
                wanted.dataset_max_price,
                wanted.workerpool_max_price
            );
            if let Some(dataset) = wanted.dataset {
                path.push_str(&format!("&dataset={dataset}"));
            }
            if !wanted.tag.is_empty() {
                path.push_str("&tag=tee");
            }
            let started = Instant::now();
            let response = http.get(format!("http://{address}{path}")).send().await?;
            let status = response.status();
            let _ = response.bytes().await?;
            over_http.push(started.elapsed());
            if !status.is_success() {
                return Err(eyre!("GET {path}: {status}"));
            }
        }
        let (lib, web) = (latency(library), latency(over_http));
        println!(
            "best match   library p50 {} p99 {} max {} | HTTP p50 {} p99 {} ({:.0}% found)",
            ms(lib.p50),
            ms(lib.p99),
            ms(lib.max),
            ms(web.p50),
            ms(web.p99),
            100.0 * found as f64 / options.queries as f64
        );
        if let Some((took, wanted, found)) = slowest {
            println!(
                "             slowest: {} (found: {found}) for app {} dataset {:?} category {} \
                 trust {} tag {:?}",
                ms(took),
                wanted.app,
                wanted.dataset,
                wanted.category,
                wanted.trust,
                wanted.tag
            );
        }
    }
    server.abort();
    drop(market);
    drop(store);
    if let Some((base, name)) = admin {
        let mut admin = sqlx::PgConnection::connect(&base).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .await?;
    }
    Ok(())
}

/// Where the publication time goes, per order: signature recovery on one core, and the
/// store's commit of a batch.
async fn breakdown(world: &Arc<World>) -> Result<()> {
    let orders = world.orders(u64::MAX / 2..u64::MAX / 2 + 2_000);
    let started = Instant::now();
    let mut recovered = 0usize;
    for order in &orders {
        recovered += usize::from(world.signer_of(order) != Address::ZERO);
    }
    let recovery = started.elapsed() / orders.len() as u32;
    let started = Instant::now();
    for order in &orders {
        std::hint::black_box(order.hash(&world.domain));
    }
    let hashing = started.elapsed() / orders.len() as u32;
    println!(
        "per order, one core: EIP-712 hash {:.1} µs, ECDSA recovery {:.1} µs ({recovered} recovered)",
        hashing.as_secs_f64() * 1e6,
        recovery.as_secs_f64() * 1e6
    );
    Ok(())
}

fn conditions(options: &Options) {
    let cpu = poco_bench::cpu_model();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("poco market benchmark");
    println!("machine: {cpu}, {cores} cores");
    println!(
        "book: {}% app / {}% dataset / {}% workerpool / {}% request orders over {APPS} apps, {DATASETS} datasets, \
         {POOLS} pools, {CATEGORIES} categories; 5-10% restricted, 10-25% TEE",
        30, 10, 30, 30
    );
    println!(
        "sizes {:?}; {} publications at concurrency {}; {} queries of each sort, sequential",
        options.sizes, options.publish, options.concurrency, options.queries
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let mut options = Options::parse();
    options.sizes.sort_unstable();
    conditions(&options);
    let world = Arc::new(World::new());
    breakdown(&world).await?;
    for backend in &options.backends {
        run_backend(&options, &world, backend)
            .await
            .wrap_err_with(|| format!("backend {backend}"))?;
    }
    Ok(())
}
