//! A market on a throwaway devnet, for schema-driven fuzzing (`fuzz/schemathesis.sh`).
//!
//! Starts anvil with the protocol deployed, registers an app, a dataset and a workerpool,
//! publishes a few orders and matches one deal (so that every GET has something to return),
//! then serves the market on `127.0.0.1:<port>` until interrupted (Ctrl-C or SIGTERM).
//!
//! Usage: `cargo run -p poco-market --example fuzz_server -- [port] [sqlite|postgres]`
//! (PostgreSQL at `$POCO_TEST_DATABASE_URL`, in a fresh database).

use std::time::Duration;

use alloy::primitives::B256;
use poco_market::{Limits, MarketConfig};
use poco_test_utils::{OrderSpec, RLC, TestNet};
use sqlx::{Connection, Executor};
use tokio::net::TcpListener;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter("poco_market=warn")
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(18_645);
    let backend = args.next().unwrap_or_else(|| "sqlite".into());

    let net = TestNet::start(1).await;
    let accounts = net.accounts().clone();
    let app = net.create_app(&accounts.app_provider, "fuzz-app", B256::ZERO).await;
    let dataset = net.create_dataset(&accounts.dataset_provider, "fuzz-data", B256::ZERO).await;
    let workerpool = net.create_workerpool(&accounts.scheduler, "fuzz pool").await;

    let dir = tempfile::tempdir()?;
    let mut config = MarketConfig::new(dir.path(), net.devnet().rpc_url(), *net.deployment());
    config.poll_interval = Duration::from_millis(100);
    config.limits = Limits::unlimited();
    if backend == "postgres" {
        let base = std::env::var("POCO_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("poco_market_fuzz_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&base).await?;
        admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).await?;
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await?;
        let (prefix, _) = base.rsplit_once('/').ok_or("a database URL with a path")?;
        config.database_url = Some(format!("{prefix}/{name}"));
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let service = poco_market::Service::open(config).await?;

    // Some orders and a deal, straight through the library.
    let spec = OrderSpec {
        app,
        dataset: Some(dataset),
        workerpool,
        dataset_price: RLC / 10,
        volume: 5,
        ..OrderSpec::default()
    };
    let orders = net.orders(&spec);
    let market = service.market().clone();
    let server = tokio::spawn(service.run(listener, async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while market.store().asset(workerpool).await?.is_none() {
        if tokio::time::Instant::now() > deadline {
            return Err("the market did not index the devnet".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for order in [
        poco_market::model::AnySigned::App(orders.app.clone()),
        poco_market::model::AnySigned::Dataset(orders.dataset.clone()),
        poco_market::model::AnySigned::Workerpool(orders.workerpool.clone()),
        poco_market::model::AnySigned::Request(orders.request.clone()),
    ] {
        market.publish(order).await?;
    }
    net.match_orders(&accounts.requester, &orders).await?;
    eprintln!("fuzz server: the market listens on http://127.0.0.1:{port} ({backend})");
    println!("ready");
    server.await??;
    Ok(())
}
