//! A marketplace on several hosts, run through the `poco` binary alone: a chain mining a block
//! every second (not a block per transaction), the protocol deployed on it by `poco protocol
//! deploy`, and every participant a host of its own, with its own poco home holding the
//! network's profile: the market on 127.0.0.2, the result store on 127.0.0.3, the app's file
//! on a web server of 127.0.0.4, the scheduler on 127.0.0.5, five workers (one of them a liar)
//! fetching the app over HTTP, an app provider and a requester. A trust-4 deal of two tasks is
//! bought with `poco run --network`, one honest worker is killed with SIGKILL in the middle
//! of it and started again, and every balance moves exactly as the protocol's rules say for
//! the contributions the chain recorded, to the nRLC.

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use poco_chain::{ChainClient, ClientConfig};
use poco_primitives::Deal;
use poco_test_utils::task_payout_on_chain;
use serde_json::Value;
use tempfile::TempDir;

use crate::common::{Anvil, Service, bound, json, poco_env, root, serve_files_on, text, with};

/// The development key that deploys the protocol (and so holds the new token's supply).
const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// The network's name on every host.
const NETWORK: &str = "consortium";
/// Prices: the app's and the pool's, per task.
const APP_PRICE: &str = "1 RLC";
const POOL_PRICE: &str = "4 RLC";
/// The deal's tasks.
const VOLUME: &str = "2";
/// How long the whole deal may take at a block a second.
const DEAL_TIME: Duration = Duration::from_secs(480);

/// One participant's machine: a poco home of its own.
struct Host {
    home: TempDir,
    /// The devnet role whose development key this host signs with (anvil funds it with ETH).
    role: &'static str,
}

impl Host {
    fn new(role: &'static str) -> Self {
        Self { home: tempfile::tempdir().unwrap(), role }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    /// `poco --json --network consortium --devnet-account <role> <args>`: must succeed.
    fn json(&self, args: &[&str]) -> Value {
        json(self.path(), &with(&["--network", NETWORK, "--devnet-account", self.role], args))
    }

    /// Starts `poco --network consortium --devnet-account <role> <args>` in the background.
    fn service(&self, args: &[&str]) -> Service {
        let full = with(&["--network", NETWORK, "--devnet-account", self.role], args);
        Service::start(self.path(), &full, &[])
    }

    /// Adds the network by its protocol's address, as a host joining it does.
    fn join(&self, chain: &str, poco: &str, from_block: &str, urls: &[&str]) {
        let base = [
            "network",
            "add",
            NETWORK,
            "--rpc.url",
            chain,
            "--poco.address",
            poco,
            "--from-block",
            from_block,
        ];
        json(self.path(), &with(&base, urls));
    }

    /// The address this host signs with.
    fn address(&self) -> Address {
        poco_sdk::devnet::role_key(self.role).unwrap().address()
    }
}

/// Everything an account holds in RLC: its wallet, and its poco account, free and frozen
/// (what gas costs is paid in ETH and does not count).
fn holdings(host: &Host, account: Address) -> U256 {
    let balance = host.json(&["account", "balance", &account.to_string()]);
    ["wallet", "free", "frozen"]
        .iter()
        .map(|field| balance[*field].as_str().unwrap().parse::<U256>().unwrap())
        .sum()
}

/// A `poco` command running in the background, its standard output and error kept in `out`
/// and `err`.
fn spawn(home: &Path, args: &[&str], out: &Path, err: &Path) -> Child {
    let (out, err) = (std::fs::File::create(out).unwrap(), std::fs::File::create(err).unwrap());
    Command::new(env!("CARGO_BIN_EXE_poco"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("POCO_NETWORK")
        .env_remove("POCO_RPC_URL")
        .env_remove("POCO_MARKET_URL")
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap()
}

/// Whether a deal is in the chain.
async fn a_deal_exists(chain: &ChainClient, poco: Address, from: u64) -> bool {
    use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
    use poco_contracts::bindings::IPoco;
    let filter = Filter::new()
        .address(poco)
        .event_signature(IPoco::DealCreated::SIGNATURE_HASH)
        .from_block(from);
    !chain.provider().get_logs(&filter).await.unwrap().is_empty()
}

/// Whether `worker` contributed to a task.
async fn contributed(chain: &ChainClient, poco: Address, worker: Address, from: u64) -> bool {
    use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
    use poco_contracts::bindings::IPoco;
    let filter = Filter::new()
        .address(poco)
        .event_signature(IPoco::TaskContribute::SIGNATURE_HASH)
        .from_block(from);
    chain.provider().get_logs(&filter).await.unwrap().iter().any(|log| {
        IPoco::TaskContribute::decode_log(&log.inner).is_ok_and(|event| event.data.worker == worker)
    })
}

/// What the protocol's rules (protocol §5) say each account gains (positive) or loses for the
/// deal's tasks, given the contributions the chain recorded: the requester pays the app and
/// the pool for each task; the app's owner earns its price; each task pays its workers and
/// its scheduler as [`poco_primitives::payout`] computes.
async fn expected_changes(
    chain: &ChainClient,
    poco: Address,
    deal: &Deal,
    tasks: &[B256],
    workers: &[Address],
) -> BTreeMap<Address, (U256, U256)> {
    let mut changes: BTreeMap<Address, (U256, U256)> = BTreeMap::new();
    let mut gain = |account: Address, amount: U256| changes.entry(account).or_default().0 += amount;
    let per_task = deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
    let mut losses: Vec<(Address, U256)> = vec![(deal.sponsor, per_task * U256::from(tasks.len()))];
    gain(deal.appOwner, deal.appPrice * U256::from(tasks.len()));
    for task in tasks {
        let payout = task_payout_on_chain(chain, poco, deal, *task, workers).await;
        for (worker, reward) in payout.rewards {
            gain(worker, reward);
        }
        gain(deal.scheduler, payout.scheduler);
        losses.extend(payout.seized);
    }
    for (account, amount) in losses {
        changes.entry(account).or_default().1 += amount;
    }
    changes
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
    let deployed = {
        let args = ["--json", "protocol", "deploy", "--network", NETWORK, "--rpc.url", &chain.url];
        let out = poco_env(deployer.path(), &args, &[("POCO_PRIVATE_KEY", DEPLOYER_KEY)]);
        assert!(out.status.success(), "protocol deploy: {}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(deployed["confirmations"], 2, "services off a devnet follow 2 blocks behind");
    let poco = deployed["deployment"]["poco"].as_str().unwrap().to_owned();
    let deployed_at = deployed["deployment"]["block"].as_u64().unwrap();
    let from_block = deployed_at.to_string();
    let poco_address: Address = poco.parse().unwrap();

    // The market (127.0.0.2) and the result store (127.0.0.3), each on its host.
    let market_host = Host::new("owner");
    market_host.join(&chain.url, &poco, &from_block, &[]);
    let data = tempfile::tempdir().unwrap();
    let market_dir = data.path().join("market");
    let mut market = market_host.service(&[
        "market",
        "run",
        "--listen",
        "127.0.0.2:0",
        "--data.dir",
        market_dir.to_str().unwrap(),
    ]);
    let market_url = format!("http://{}", bound(&market.line("market listening on")));
    let results_host = Host::new("owner");
    results_host.join(&chain.url, &poco, &from_block, &[]);
    let results_dir = data.path().join("results");
    let mut results = results_host.service(&[
        "result-store",
        "run",
        "--listen",
        "127.0.0.3:0",
        "--storage",
        results_dir.to_str().unwrap(),
    ]);
    let results_url = format!("http://{}", bound(&results.line("result store listening on")));

    // Every other host joins the network, knowing the market and the result store.
    let joined = |role: &'static str| {
        let host = Host::new(role);
        let urls = ["--market.url", &market_url, "--results.url", &results_url];
        host.join(&chain.url, &poco, &from_block, &urls);
        host
    };
    let app_provider = joined("app-provider");
    let pool_owner = joined("scheduler");
    let requester = joined("requester");
    let workers: Vec<Host> =
        ["worker-0", "worker-1", "worker-2", "worker-3", "worker-4"].map(joined).into();

    // RLC for those who pay or stake, from the deployer who holds the supply.
    for (host, amount) in std::iter::once((&requester, "20 RLC"))
        .chain(std::iter::once((&pool_owner, "20 RLC")))
        .chain(workers.iter().map(|w| (w, "10 RLC")))
    {
        let to = host.address().to_string();
        deployer.json(&["wallet", "send", amount, "--to", &to]);
    }

    // The app, served over HTTP by a web server of its own (127.0.0.4).
    let wasm = std::fs::read(root().join("apps/testing/argecho/argecho.wasm")).unwrap();
    let files = serve_files_on("127.0.0.4", vec![("/argecho.wasm", wasm)]);
    let app_url = format!("{files}/argecho.wasm");
    let app = app_provider.json(&[
        "app",
        "deploy",
        "--name",
        "argecho",
        "--file",
        "apps/testing/argecho/argecho.wasm",
        "--url",
        &app_url,
    ]);
    let app = app["address"].as_str().unwrap().to_owned();
    app_provider.json(&[
        "order", "publish", "app", "--asset", &app, "--price", APP_PRICE, "--volume", VOLUME,
    ]);

    // The pool: registered, its stake deposited, its order published, its scheduler started
    // (127.0.0.5) with the five workers as its allow-list.
    let pool = pool_owner.json(&["workerpool", "deploy", "--description", "consortium pool"]);
    let pool = pool["address"].as_str().unwrap().to_owned();
    pool_owner.json(&["account", "deposit", "20 RLC"]);
    pool_owner.json(&[
        "order",
        "publish",
        "workerpool",
        "--asset",
        &pool,
        "--price",
        POOL_PRICE,
        "--volume",
        VOLUME,
        "--trust",
        "4",
    ]);
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
    let before: Vec<U256> = accounts.iter().map(|a| holdings(&requester, *a)).collect();

    // The requester buys the deal and waits for its results, in the background.
    let downloads = data.path().join("downloads");
    let run_out = data.path().join("run.json");
    let run_log = data.path().join("run.log");
    let args = with(
        &[
            "--network",
            NETWORK,
            "--devnet-account",
            "requester",
            "--json",
            "--yes",
            // The requester checks the app can be fetched before paying: here, from loopback.
            "--fetch.allow",
            "127.0.0.0/8",
        ],
        &[
            "run",
            &app,
            "--args",
            "hello",
            "--trust",
            "4",
            "--volume",
            VOLUME,
            "--max-price",
            "5 RLC",
            "--download",
            downloads.to_str().unwrap(),
        ],
    );
    let mut run = spawn(requester.path(), &args, &run_out, &run_log);

    // Mid-deal, an honest worker is killed at once, and started again a little later.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reader =
        runtime.block_on(ChainClient::connect(&chain.url, None, ClientConfig::default())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !runtime.block_on(a_deal_exists(&reader, poco_address, deployed_at)) {
        if Instant::now() > deadline || run.try_wait().unwrap().is_some() {
            panic!(
                "no deal: {}{}",
                std::fs::read_to_string(&run_log).unwrap_or_default(),
                std::fs::read_to_string(&run_out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let liar = workers[0].address();
    while !runtime.block_on(contributed(&reader, poco_address, liar, deployed_at)) {
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
    let deadline = Instant::now() + DEAL_TIME;
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            panic!(
                "the deal did not complete within {DEAL_TIME:?}: {}",
                std::fs::read_to_string(&run_log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let log = std::fs::read_to_string(&run_log).unwrap();
    assert!(status.success(), "poco run failed: {log}");
    let output = std::fs::read_to_string(&run_out).unwrap();
    let outcome: Value = serde_json::from_str(&output)
        .unwrap_or_else(|e| panic!("{e}: the run's JSON result: {output}"));
    let tasks: Vec<B256> = outcome["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["status"], "COMPLETED", "{t}");
            t["taskId"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(tasks.len(), 2);

    // The certified results were downloaded: the honest output, not the liar's.
    for task in &tasks {
        let text = std::fs::read_to_string(downloads.join(task.to_string()).join("result.txt"))
            .unwrap_or_else(|e| panic!("the result of {task}: {e}"));
        assert_eq!(text, "hello\n");
    }

    // Every balance moved exactly as the rules say for what the chain recorded.
    let deal_id = outcome["dealId"].as_str().unwrap();
    let shown = requester.json(&["deal", "show", deal_id]);
    let deal: Deal = serde_json::from_value(shown["deal"]["deal"].clone()).unwrap();
    let worker_accounts: Vec<Address> = workers.iter().map(Host::address).collect();
    let expected =
        runtime.block_on(expected_changes(&reader, poco_address, &deal, &tasks, &worker_accounts));
    let (liar_gained, liar_lost) = expected.get(&liar).copied().unwrap_or_default();
    assert!(liar_lost > U256::ZERO && liar_gained.is_zero(), "the liar lost its stakes");
    for (account, before) in accounts.iter().zip(&before) {
        let (gained, lost) = expected.get(account).copied().unwrap_or_default();
        let after = holdings(&requester, *account);
        assert_eq!(after, *before + gained - lost, "the holdings of {account}");
    }
    drop((market, results, scheduler, running));
}
