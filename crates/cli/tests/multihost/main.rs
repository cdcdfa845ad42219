//! Marketplaces on several hosts, run through the `poco` binary alone: a chain mining a block
//! every second (not a block per transaction), the protocol deployed on it by `poco protocol
//! deploy`, and every participant a host of its own (a loopback address and a poco home
//! holding the network's profile).
//!
//! - [`consortium`]: a trust-4 deal with a liar among five workers and an honest worker killed
//!   in the middle of it.
//! - [`failover`]: a pool whose scheduler runs as two processes on one PostgreSQL database, the
//!   active one killed or paused in the middle of a deal.
//!
//! Each checks that every balance moves exactly as the protocol's rules say for the
//! contributions the chain recorded, to the nRLC.

#[path = "../common/mod.rs"]
mod common;
mod consortium;
mod failover;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use poco_chain::ChainClient;
use poco_primitives::Deal;
use poco_test_utils::task_payout_on_chain;
use serde_json::Value;
use tempfile::TempDir;

use crate::common::{Service, bound, json, poco_env, root, serve_files_on, text, with};

/// The development key that deploys the protocol (and so holds the new token's supply).
const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// The network's name on every host.
const NETWORK: &str = "consortium";

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

    /// Adds the network by its protocol's address, as a host joining it does, with `more`
    /// (the market's URL, the confirmation depth...).
    fn join(&self, network: &Deployed, more: &[&str]) {
        let from_block = network.block.to_string();
        let poco = network.poco.to_string();
        let base = [
            "network",
            "add",
            NETWORK,
            "--rpc.url",
            &network.rpc_url,
            "--poco.address",
            &poco,
            "--from-block",
            &from_block,
        ];
        json(self.path(), &with(&base, more));
    }

    /// The address this host signs with.
    fn address(&self) -> Address {
        poco_sdk::devnet::role_key(self.role).unwrap().address()
    }

    /// Buys a deal with `poco run` in the background: `args` after the app's address.
    fn buy(&self, app: &str, args: &[&str], data: &Path) -> Run {
        let downloads = data.join("downloads");
        let out = data.join("run.json");
        let log = data.join("run.log");
        let options = [
            "--network",
            NETWORK,
            "--devnet-account",
            self.role,
            "--json",
            "--yes",
            // The requester checks the app can be fetched before paying: here, from loopback.
            "--fetch.allow",
            "127.0.0.0/8",
            "run",
            app,
            "--download",
            downloads.to_str().unwrap(),
        ];
        let (stdout, stderr) =
            (std::fs::File::create(&out).unwrap(), std::fs::File::create(&log).unwrap());
        let child = Command::new(env!("CARGO_BIN_EXE_poco"))
            .arg("--home")
            .arg(self.path())
            .args(with(&options, args))
            .env_remove("POCO_NETWORK")
            .env_remove("POCO_RPC_URL")
            .env_remove("POCO_MARKET_URL")
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        Run { child, out, log, downloads }
    }
}

/// The market on 127.0.0.2, run by `market_host`, and the result store on 127.0.0.3, run by
/// `results_host`, their files under `data`: each service and its URL.
fn start_market_and_results(
    market_host: &Host,
    results_host: &Host,
    data: &Path,
) -> ((Service, String), (Service, String)) {
    let market_dir = data.join("market");
    let mut market = market_host.service(&[
        "market",
        "run",
        "--listen",
        "127.0.0.2:0",
        "--data.dir",
        market_dir.to_str().unwrap(),
    ]);
    let market_url = format!("http://{}", bound(&market.line("market listening on")));
    let results_dir = data.join("results");
    let mut results = results_host.service(&[
        "result-store",
        "run",
        "--listen",
        "127.0.0.3:0",
        "--storage",
        results_dir.to_str().unwrap(),
    ]);
    let results_url = format!("http://{}", bound(&results.line("result store listening on")));
    ((market, market_url), (results, results_url))
}

/// Sends RLC from `deployer` (who holds the supply) to each host, the amount beside it.
fn hand_out(deployer: &Host, shares: &[(&Host, &str)]) {
    for (host, amount) in shares {
        deployer.json(&["wallet", "send", amount, "--to", &host.address().to_string()]);
    }
}

/// `provider` deploys the `argecho` test app, served over HTTP by a web server of its own
/// (127.0.0.4), and publishes its order for `volume` tasks at `price`: the app's address.
fn publish_app(provider: &Host, price: &str, volume: &str) -> String {
    let wasm = std::fs::read(root().join("apps/testing/argecho/argecho.wasm")).unwrap();
    let files = serve_files_on("127.0.0.4", vec![("/argecho.wasm", wasm)]);
    let url = format!("{files}/argecho.wasm");
    let file = "apps/testing/argecho/argecho.wasm";
    let app = provider.json(&["app", "deploy", "--name", "argecho", "--file", file, "--url", &url]);
    let app = app["address"].as_str().unwrap().to_owned();
    provider
        .json(&["order", "publish", "app", "--asset", &app, "--price", price, "--volume", volume]);
    app
}

/// `owner` registers a workerpool, deposits its stake (20 RLC) and publishes its order for
/// `volume` tasks at `price` and `trust`: the pool's address.
fn publish_pool(owner: &Host, description: &str, price: &str, volume: &str, trust: &str) -> String {
    let pool = owner.json(&["workerpool", "deploy", "--description", description]);
    let pool = pool["address"].as_str().unwrap().to_owned();
    owner.json(&["account", "deposit", "20 RLC"]);
    let order = ["--asset", &pool, "--price", price, "--volume", volume, "--trust", trust];
    owner.json(&with(&["order", "publish", "workerpool"], &order));
    pool
}

/// The protocol as `poco protocol deploy` put it on the chain.
struct Deployed {
    rpc_url: String,
    poco: Address,
    /// The block of the deployment.
    block: u64,
    /// What the command printed.
    output: Value,
}

/// Deploys the protocol on the chain at `rpc_url` from `deployer`'s home, with `more` flags.
fn deploy(deployer: &Host, rpc_url: &str, more: &[&str]) -> Deployed {
    let args = ["--json", "protocol", "deploy", "--network", NETWORK, "--rpc.url", rpc_url];
    let out = poco_env(deployer.path(), &with(&args, more), &[("POCO_PRIVATE_KEY", DEPLOYER_KEY)]);
    assert!(out.status.success(), "protocol deploy: {}", text(&out));
    let output = serde_json::from_slice::<Value>(&out.stdout).unwrap();
    Deployed {
        rpc_url: rpc_url.to_owned(),
        poco: output["deployment"]["poco"].as_str().unwrap().parse().unwrap(),
        block: output["deployment"]["block"].as_u64().unwrap(),
        output,
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

/// A `poco run` in the background: its JSON result goes to `out`, its log to `log`, the
/// results it downloads to `downloads`.
struct Run {
    child: Child,
    out: PathBuf,
    log: PathBuf,
    downloads: PathBuf,
}

impl Run {
    /// Whether the command ended already.
    fn ended(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// What it wrote so far, for a failure's message.
    fn output(&self) -> String {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        format!("{}{}", read(&self.log), read(&self.out))
    }

    /// Waits for the command's end (bounded by `limit`); it must succeed with every task
    /// COMPLETED: returns its JSON result and its tasks.
    fn finish(mut self, limit: Duration) -> (Value, Vec<B256>) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the deal did not complete within {limit:?}: {}", self.output());
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        assert!(status.success(), "poco run failed: {}", self.output());
        let output = std::fs::read_to_string(&self.out).unwrap();
        let outcome: Value = serde_json::from_str(&output)
            .unwrap_or_else(|e| panic!("{e}: the run's JSON result: {output}"));
        let tasks = outcome["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t["status"], "COMPLETED", "{t}");
                t["taskId"].as_str().unwrap().parse().unwrap()
            })
            .collect();
        (outcome, tasks)
    }
}

/// The deal of a run's JSON result, as `requester` reads it from the chain.
fn deal_of(requester: &Host, outcome: &Value) -> Deal {
    let shown = requester.json(&["deal", "show", outcome["dealId"].as_str().unwrap()]);
    serde_json::from_value(shown["deal"]["deal"].clone()).unwrap()
}

/// What the protocol's rules (protocol §5) say each account gains and loses for the deal's
/// tasks, given the contributions the chain recorded: the requester pays the app and the pool
/// for each task; the app's owner earns its price; each task pays its workers and its
/// scheduler as [`poco_primitives::payout`] computes, and seizes the stakes of the wrong.
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

/// Checks that each of `accounts` (with what it held before) holds exactly what `changes`
/// says now.
fn check_holdings(
    reader: &Host,
    accounts: &[(Address, U256)],
    changes: &BTreeMap<Address, (U256, U256)>,
) {
    for (account, before) in accounts {
        let (gained, lost) = changes.get(account).copied().unwrap_or_default();
        let after = holdings(reader, *account);
        assert_eq!(after, *before + gained - lost, "the holdings of {account}");
    }
}
