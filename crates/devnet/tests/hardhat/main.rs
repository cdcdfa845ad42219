//! The end-to-end path on a second EVM implementation: Hardhat's node (EDR) in place of anvil.
//!
//! The protocol is deployed on the node; the app provider and the scheduler publish their
//! orders on a real market; the requester finds them there and matches them; a trust-4 task is
//! replicated on four honest workers and a liar, finalized by the scheduler, and its result
//! downloaded, checked against the digest certified on-chain and against a local run of the
//! app; every balance changes exactly as the protocol says, to the nRLC. The same scenario runs
//! on anvil too, so that both nodes are held to one behaviour (`docs/EVM-NODES.md` says where
//! they differ).
//!
//! Hardhat is pinned in `package.json`: without `npm ci` at the repository root these tests
//! fail, saying so.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
};
use poco_devnet::cluster::{ByzantineExecutor, Cluster};
use poco_fetch::{FetchPolicy, IpNet};
use poco_market::MarketConfig;
use poco_primitives::{Amount, AppOrder, WorkerpoolOrder, result::result_digest_of_dir};
use poco_sdk::{
    AnySigned, Endpoints, Poco, RunSpec, TaskStatus, orders::new_salt, tasks::Decryption,
};
use poco_test_utils::{
    ChainNode, RLC, TestNet, app_module, apps_dir, task_payout_on_chain, wait_until,
};
use poco_worker::{
    exec::{Executor, WasmExecutor},
    runtime::{TaskParams, task_spec},
};
use tokio::{net::TcpListener, sync::oneshot};

const MINUTE: Duration = Duration::from_secs(60);

/// The pool's price per task: each contribution stakes 30% of it (1.2 RLC).
const POOL_PRICE: u64 = 4 * RLC;

/// The app's arguments: digits of pi, enough work to be a real run.
const ARGS: &str = "50000 3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_deal_bought_on_the_market_completes_on_hardhat() {
    let net = start(ChainNode::Hardhat).await;
    let hardhat = net.hardhat().expect("the net started Hardhat's node");
    eprintln!("Hardhat's node listened {:?} after it was spawned", hardhat.started_in());
    let version = net.owner().provider().get_client_version().await.unwrap();
    assert!(version.starts_with("HardhatNetwork/3."), "the chain is Hardhat's node: {version}");
    Box::pin(replicated_deal_bought_on_the_market(net)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_deal_bought_on_the_market_completes_on_anvil() {
    let net = start(ChainNode::Anvil).await;
    let version = net.owner().provider().get_client_version().await.unwrap();
    assert!(version.starts_with("anvil/"), "the chain is anvil: {version}");
    Box::pin(replicated_deal_bought_on_the_market(net)).await;
}

/// The test-only RPC methods the harness uses (moving the clock, mining, writing storage)
/// work on Hardhat's node through [`TestNet`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_moves_the_clock_mines_and_sets_scores_on_hardhat() {
    let net = TestNet::start_on(ChainNode::Hardhat, 1).await;
    assert_eq!(net.node(), ChainNode::Hardhat);
    let provider = net.owner().provider();
    let (block, time) = (provider.get_block_number().await.unwrap(), net.now().await);
    net.warp(86_400).await;
    assert_eq!(provider.get_block_number().await.unwrap(), block + 1, "warp mines one block");
    let moved = net.now().await - time;
    assert!((86_400..86_400 + 60).contains(&moved), "the clock moved {moved} s, not a day");
    net.mine(5).await;
    assert_eq!(provider.get_block_number().await.unwrap(), block + 6, "five more blocks");
    let worker = net.accounts().workers[0].address();
    net.set_score(worker, 42).await;
    let poco = net.owner().poco(net.deployment().poco);
    assert_eq!(poco.viewScore(worker).call().await.unwrap(), U256::from(42));
    // The score shares its word with the account's balance, which is left as it was.
    assert_eq!(poco.balanceOf(worker).call().await.unwrap(), U256::from(1_000 * RLC));
}

/// A devnet of 5 workers on `node`, saying how long it took to be up (the figures of
/// `docs/EVM-NODES.md`; nothing is asserted on them).
async fn start(node: ChainNode) -> TestNet {
    let started = Instant::now();
    let net = TestNet::start_on(node, 5).await;
    eprintln!("{node:?}: the devnet (node, deployment, funding) was up in {:?}", started.elapsed());
    net
}

/// The scenario, on the node `net` runs on.
async fn replicated_deal_bought_on_the_market(net: TestNet) {
    let started = Instant::now();
    let node = net.node();
    let mut cluster = Cluster::on(net, "pi").await;
    let (market_url, _market) = start_market(&cluster).await;
    let accounts = cluster.net.accounts().clone();
    let endpoints = Endpoints {
        rpc_url: cluster.net.devnet().rpc_url().to_owned(),
        market_url: Some(market_url),
        poco: cluster.net.deployment().poco,
        from_block: cluster.net.deployment().block,
        confirmations: 0,
        receipt_timeout: poco_sdk::DEFAULT_RECEIPT_TIMEOUT,
    };
    let connect = |key: &alloy::signers::local::PrivateKeySigner| {
        let (endpoints, key) = (endpoints.clone(), key.clone());
        async move { Poco::connect(&endpoints, Some(key)).await.expect("a client") }
    };
    // The requester reads the app's file:// URL to check it, and downloads from the local
    // result store.
    let local = FetchPolicy {
        provided_dirs: vec![apps_dir()],
        allow_results: vec![IpNet::from(IpAddr::from([127, 0, 0, 1]))],
        ..FetchPolicy::default()
    };
    let requester = connect(&accounts.requester).await.with_fetch_policy(local);
    let app_provider = connect(&accounts.app_provider).await;
    let scheduler = connect(&accounts.scheduler).await;

    // The sellers publish their orders on the market.
    let app_order = AppOrder {
        app: cluster.app,
        appprice: U256::from(RLC),
        volume: U256::from(1),
        salt: new_salt(),
        ..AppOrder::default()
    };
    let app_order = app_provider.sign(app_order).unwrap();
    app_provider.publish(&AnySigned::App(app_order.clone())).await.expect("the app order");
    let pool_order = WorkerpoolOrder {
        workerpool: cluster.workerpool,
        workerpoolprice: U256::from(POOL_PRICE),
        volume: U256::from(1),
        trust: U256::from(4),
        salt: new_salt(),
        ..WorkerpoolOrder::default()
    };
    let pool_order = scheduler.sign(pool_order).unwrap();
    scheduler.publish(&AnySigned::Workerpool(pool_order.clone())).await.expect("the pool order");

    // The requester finds them there: exactly those, at their prices.
    let mut spec = RunSpec::new(cluster.app);
    spec.trust = 4;
    spec.args = Some(ARGS.into());
    let plan = requester.plan_run(&spec).await.expect("the market proposes a match");
    assert_eq!(plan.app, app_order, "the market served the published app order");
    assert_eq!(plan.workerpool, pool_order, "the market served the published pool order");
    assert_eq!(plan.costs.total, Amount::from_nrlc(U256::from(RLC + POOL_PRICE)));
    assert_eq!(plan.costs.to_deposit, Amount::from_nrlc(U256::ZERO));

    let liar = accounts.workers[0].address();
    let honest: Vec<Address> = accounts.workers[1..].iter().map(|w| w.address()).collect();
    let mut everyone = vec![
        accounts.requester.address(),
        accounts.app_provider.address(),
        accounts.scheduler.address(),
        liar,
    ];
    everyone.extend(&honest);
    let before = cluster.balances(&everyone).await;

    let deal = requester.execute(&plan, false).await.expect("the match");
    assert_eq!(deal.deal.trust, U256::from(4));
    let task_id = deal.tasks[0];

    // The liar and one honest worker contribute first, so that the liar's dissent is on
    // record before the others join: then four honest votes are needed (2^4 against a total
    // of 1 + 2 + 16, protocol §4.3), and the liar is always among the contributors.
    let config = cluster.worker_config(0);
    cluster.start_worker_with(0, config, Arc::new(ByzantineExecutor::new().unwrap()));
    cluster.start_worker(1);
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    wait_until("the liar and one honest worker contributed", MINUTE, || async {
        poco.viewTask(task_id).call().await.unwrap().contributors == U256::from(2)
    })
    .await;
    for index in 2..5 {
        cluster.start_worker(index);
    }
    let watched = requester.watch(&deal, 3 * MINUTE, |_| {}).await.expect("the deal is followed");
    assert_eq!(watched[0].status, TaskStatus::Completed, "the task completed: {watched:?}");
    assert_eq!(watched[0].contributors, 5, "the liar and four honest workers contributed");
    let task = poco.viewTask(task_id).call().await.unwrap();
    for worker in &honest {
        let contribution = poco.viewContribution(task_id, *worker).call().await.unwrap();
        assert_eq!(contribution.status, 2, "{worker} proved the consensus");
    }
    let lie = poco.viewContribution(task_id, liar).call().await.unwrap();
    let truth = poco.viewContribution(task_id, honest[0]).call().await.unwrap();
    assert_ne!(lie.status, 2, "the liar proved nothing");
    assert_ne!(lie.resultHashPrefix, truth.resultHashPrefix, "the liar voted for another result");

    // The result: certified on-chain, downloaded by the requester (the SDK checks it against
    // the digest), and what the app gives when run locally.
    let downloaded = cluster.scratch().join("downloaded");
    requester.download_result(task_id, &downloaded, &Decryption::Keep).await.expect("the result");
    let local = cluster.scratch().join("local");
    let (input, output) = (local.join("in"), local.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&output).unwrap();
    let params = TaskParams::parse(&deal.params).unwrap();
    let spec =
        task_spec(app_module("pi"), &input, &output, &deal.deal, task_id, &params, None, &[])
            .unwrap();
    let outcome = WasmExecutor::new().unwrap().execute(spec).await.unwrap();
    assert!(outcome.status.success());
    for file in ["result.txt", "computed.json"] {
        assert_eq!(
            std::fs::read(downloaded.join(file)).unwrap(),
            std::fs::read(output.join(file)).unwrap(),
            "{file} differs from a local run"
        );
    }
    assert!(!downloaded.join("forged.txt").exists(), "the consensus is the honest result");
    assert_eq!(task.resultDigest, result_digest_of_dir(&output).unwrap());

    // Payouts (protocol §5): the liar's stake (30% of the pool price) is seized into the
    // reward, the four honest workers share it equally (fresh workers, log-weight 1 each), the
    // scheduler gets the rest and its own stake back; the app owner gets its 1 RLC; the
    // requester pays 1 RLC + the pool price.
    let net = &cluster.net;
    let workers: Vec<Address> = [liar].into_iter().chain(honest.iter().copied()).collect();
    let payout =
        task_payout_on_chain(net.owner(), net.deployment().poco, &deal.deal, task_id, &workers)
            .await;
    let stake = U256::from(POOL_PRICE * 30 / 100);
    assert_eq!(payout.seized, [(liar, stake)]);
    let each = payout.rewards[0].1;
    assert_eq!(payout.rewards, honest.iter().map(|w| (*w, each)).collect::<Vec<_>>());
    let expected_change: Vec<(U256, bool)> = vec![
        (U256::from(RLC + POOL_PRICE), false), // requester pays
        (U256::from(RLC), true),               // app owner earns
        (payout.scheduler, true),              // scheduler earns its share
        (stake, false),                        // the liar loses its stake
        (each, true),
        (each, true),
        (each, true),
        (each, true),
    ];
    cluster.assert_balance_changes(&everyone, &before, &expected_change).await;
    for worker in &honest {
        assert_eq!(cluster.score(*worker).await, U256::from(1), "a replicated success scores 1");
    }
    assert_eq!(cluster.score(liar).await, U256::ZERO, "the liar earns no score");

    // The same orders again: refused, and the node's revert data decodes to the rule broken
    // (the orders' volume is used up, rule 0x60).
    let refused = requester.execute(&plan, false).await.expect_err("a replayed match");
    let poco_sdk::Error::Chain(chain) = &refused else { panic!("not a chain refusal: {refused}") };
    let revert = chain.revert().unwrap_or_else(|| panic!("no decoded revert: {refused}"));
    assert_eq!(revert.matching_rule(), Some(0x60), "{revert}");

    eprintln!("{node:?}: the scenario took {:?} after the devnet was up", started.elapsed());
}

/// The market on 127.0.0.1, following `cluster`'s chain; runs until the sender is dropped.
async fn start_market(cluster: &Cluster) -> (String, oneshot::Sender<()>) {
    let net = &cluster.net;
    let mut config = MarketConfig::new(
        cluster.data_dir().join("market"),
        net.devnet().rpc_url(),
        *net.deployment(),
    );
    config.poll_interval = Duration::from_millis(50);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let outcome = poco_market::serve(config, listener, async move {
            let _ = stopped.await;
        })
        .await;
        if let Err(error) = outcome {
            panic!("the market stopped: {error}");
        }
    });
    // Ready once it has followed the chain past the app's and the pool's registration.
    let head = net.owner().provider().get_block_number().await.unwrap();
    let http = poco_api::http::client(Duration::from_secs(5));
    let health = format!("http://{address}/health");
    wait_until("the market follows the chain", MINUTE, || async {
        let Ok(response) = http.get(&health).send().await else { return false };
        let health: serde_json::Value = response.json().await.unwrap_or_default();
        health["checkpoint"].as_u64().is_some_and(|checkpoint| checkpoint > head)
    })
    .await;
    (format!("http://{address}"), stop)
}
