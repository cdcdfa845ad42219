//! The market on 127.0.0.2, the result store on 127.0.0.3, the app's file on a web server of
//! 127.0.0.4, the scheduler on 127.0.0.5, five workers (one of them a liar) fetching the app
//! over HTTP, an app provider and a requester. A trust-4 deal of two tasks is bought with
//! `poco run --network`, one honest worker is killed with SIGKILL in the middle of it and
//! started again.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use poco_chain::{ChainClient, ClientConfig};
use poco_contracts::bindings::IPoco;

use super::{
    Host, check_holdings, deal_of, deploy, expected_changes, hand_out, holdings, publish_app,
    publish_pool, start_market_and_results,
};
use crate::common::{Anvil, Service, bound};

/// Prices: the app's and the pool's, per task.
const APP_PRICE: &str = "1 RLC";
const POOL_PRICE: &str = "4 RLC";
/// The deal's tasks.
const VOLUME: &str = "2";
/// How long the whole deal may take at a block a second.
const DEAL_TIME: Duration = Duration::from_secs(480);

/// Whether a deal is in the chain.
async fn a_deal_exists(chain: &ChainClient, poco: Address, from: u64) -> bool {
    let filter = Filter::new()
        .address(poco)
        .event_signature(IPoco::DealCreated::SIGNATURE_HASH)
        .from_block(from);
    !chain.provider().get_logs(&filter).await.unwrap().is_empty()
}

/// Whether `worker` contributed to a task.
async fn contributed(chain: &ChainClient, poco: Address, worker: Address, from: u64) -> bool {
    let filter = Filter::new()
        .address(poco)
        .event_signature(IPoco::TaskContribute::SIGNATURE_HASH)
        .from_block(from);
    chain.provider().get_logs(&filter).await.unwrap().iter().any(|log| {
        IPoco::TaskContribute::decode_log(&log.inner).is_ok_and(|event| event.data.worker == worker)
    })
}

/// The whole marketplace on separate loopback hosts, through the CLI: a trust-4 deal with a
/// liar among five workers and an honest worker killed in the middle of it completes, the
/// requester downloads the certified results, and every balance is exact.
#[test]
fn a_trust_4_deal_completes_across_hosts_with_a_liar_and_a_killed_worker() {
    // The chain: anvil on its own, a block every second.
    let chain = Anvil::start(&["--block-time", "1"]);

    // The deployer's host deploys the protocol once and hands out RLC.
    let deployer = Host::new("owner");
    let network = deploy(&deployer, &chain.url, &[]);
    assert_eq!(network.output["confirmations"], 2, "services off a devnet follow 2 blocks behind");

    // The market (127.0.0.2) and the result store (127.0.0.3), each on its host.
    let market_host = Host::new("owner");
    market_host.join(&network, &[]);
    let results_host = Host::new("owner");
    results_host.join(&network, &[]);
    let data = tempfile::tempdir().unwrap();
    let ((market, market_url), (results, results_url)) =
        start_market_and_results(&market_host, &results_host, data.path());

    // Every other host joins the network, knowing the market and the result store.
    let joined = |role: &'static str| {
        let host = Host::new(role);
        host.join(&network, &["--market.url", &market_url, "--results.url", &results_url]);
        host
    };
    let app_provider = joined("app-provider");
    let pool_owner = joined("scheduler");
    let requester = joined("requester");
    let workers: Vec<Host> =
        ["worker-0", "worker-1", "worker-2", "worker-3", "worker-4"].map(joined).into();

    // RLC for those who pay or stake, from the deployer who holds the supply.
    let mut shares = vec![(&requester, "20 RLC"), (&pool_owner, "20 RLC")];
    shares.extend(workers.iter().map(|w| (w, "10 RLC")));
    hand_out(&deployer, &shares);

    // The app, served over HTTP by a web server of its own (127.0.0.4).
    let app = publish_app(&app_provider, APP_PRICE, VOLUME);

    // The pool: registered, its stake deposited, its order published, its scheduler started
    // (127.0.0.5) with the five workers as its allow-list.
    let pool = publish_pool(&pool_owner, "consortium pool", POOL_PRICE, VOLUME, "4");
    let worker_addresses: Vec<String> = workers.iter().map(|w| w.address().to_string()).collect();
    let database = format!("sqlite://{}", data.path().join("scheduler.db").display());
    let mut scheduler_args = vec![
        "scheduler",
        "run",
        "--workerpool",
        &pool,
        "--listen",
        "127.0.0.5:0",
        "--db.url",
        &database,
        "--results.url",
        &results_url,
        "--admit",
        "allow-list",
        "--workers.timeout",
        "10",
    ];
    for address in &worker_addresses {
        scheduler_args.extend(["--admit.worker", address.as_str()]);
    }
    let mut scheduler = pool_owner.service(&scheduler_args);
    let scheduler_url = format!("http://{}", bound(&scheduler.line("listening on")));

    // The workers: each deposits what it stakes, then works; worker-0 lies.
    let worker_dirs: Vec<PathBuf> =
        (0..workers.len()).map(|i| data.path().join(format!("worker-{i}"))).collect();
    let start_worker = |index: usize| {
        let dir = worker_dirs[index].to_str().unwrap().to_owned();
        let mut args = vec![
            "--fetch.allow",
            "127.0.0.0/8",
            "worker",
            "run",
            "--scheduler.url",
            &scheduler_url,
            "--data.dir",
            &dir,
            "--slots",
            "1",
        ];
        if index == 0 {
            args.push("--testing.byzantine");
        }
        workers[index].service(&args)
    };
    for worker in &workers {
        worker.json(&["account", "deposit", "5 RLC"]);
    }
    // The liar and one honest worker first, so that the liar surely contributes: the others
    // join once it has.
    let mut running: Vec<Option<Service>> =
        (0..workers.len()).map(|i| (i < 2).then(|| start_worker(i))).collect();

    // Who holds what before the deal.
    let mut accounts: Vec<Address> =
        vec![requester.address(), app_provider.address(), pool_owner.address()];
    accounts.extend(workers.iter().map(Host::address));
    let accounts: Vec<(Address, U256)> =
        accounts.into_iter().map(|a| (a, holdings(&requester, a))).collect();

    // The requester buys the deal and waits for its results, in the background.
    let args = ["--args", "hello", "--trust", "4", "--volume", VOLUME, "--max-price", "5 RLC"];
    let mut run = requester.buy(&app, &args, data.path());

    // Mid-deal, an honest worker is killed at once, and started again a little later.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reader =
        runtime.block_on(ChainClient::connect(&chain.url, None, ClientConfig::default())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !runtime.block_on(a_deal_exists(&reader, network.poco, network.block)) {
        if Instant::now() > deadline || run.ended() {
            panic!("no deal: {}", run.output());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let liar = workers[0].address();
    while !runtime.block_on(contributed(&reader, network.poco, liar, network.block)) {
        assert!(Instant::now() < deadline + DEAL_TIME, "the liar never contributed");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(running[1].take().expect("worker-1 runs")); // SIGKILL, in the middle of the deal
    for (index, slot) in running.iter_mut().enumerate().skip(2) {
        *slot = Some(start_worker(index));
    }
    std::thread::sleep(Duration::from_secs(5));
    running[1] = Some(start_worker(1));

    // The run ends by itself (bounded).
    let downloads = run.downloads.clone();
    let (outcome, tasks) = run.finish(DEAL_TIME);
    assert_eq!(tasks.len(), 2);

    // The certified results were downloaded: the honest output, not the liar's.
    for task in &tasks {
        let text = std::fs::read_to_string(downloads.join(task.to_string()).join("result.txt"))
            .unwrap_or_else(|e| panic!("the result of {task}: {e}"));
        assert_eq!(text, "hello\n");
    }

    // Every balance moved exactly as the rules say for what the chain recorded.
    let deal = deal_of(&requester, &outcome);
    let worker_accounts: Vec<Address> = workers.iter().map(Host::address).collect();
    let expected =
        runtime.block_on(expected_changes(&reader, network.poco, &deal, &tasks, &worker_accounts));
    let (liar_gained, liar_lost) = expected.get(&liar).copied().unwrap_or_default();
    assert!(liar_lost > U256::ZERO && liar_gained.is_zero(), "the liar lost its stakes");
    check_holdings(&requester, &accounts, &expected);
    drop((market, results, scheduler, running));
}
