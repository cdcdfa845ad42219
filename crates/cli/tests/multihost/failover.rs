//! A pool's scheduler without a single point of failure: two scheduler processes of one pool
//! share one PostgreSQL database, each on a loopback host of its own (127.0.0.5 and 127.0.0.6);
//! one is active, the other stands by. Four workers name both (`--scheduler.url A,B`). A
//! trust-2 deal of 20 tasks runs while the active one is killed (SIGKILL, its folder deleted),
//! or paused (SIGSTOP) until the standby took over and then woken: the standby finishes every
//! task from the database and the chain, no task is paid twice nor claimed, every balance is
//! exact to the nRLC, and a woken former active instance sends no transaction and hands out no
//! task.

use std::{
    collections::{BTreeMap, HashSet},
    path::Path,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use poco_chain::{ChainClient, ClientConfig};
use poco_contracts::bindings::IPoco;
use poco_primitives::Deal;
use poco_test_utils::postgres::TestDatabase;
use tempfile::TempDir;

use super::{
    Deployed, Host, NETWORK, Run, check_holdings, deal_of, deploy, expected_changes, hand_out,
    holdings, publish_app, publish_pool, start_market_and_results,
};
use crate::common::{Anvil, Service, bound, rpc, with};

/// The deal's tasks.
const VOLUME: &str = "20";
/// How long the whole deal may take, failover included.
const DEAL_TIME: Duration = Duration::from_secs(300);
/// What a scheduler logs when it sends a transaction, hands out a task, takes the lease, acts.
const SENDS: &str = "sending a transaction";
const ASSIGNS: &str = "task assigned";
const TAKES: &str = "lease acquired";
const ACTIVE: &str = "caught up: active";

/// A marketplace on loopback hosts with a pool whose order is published and whose scheduler
/// is not started yet.
struct Market {
    chain: Anvil,
    data: TempDir,
    database: TestDatabase,
    network: Deployed,
    requester: Host,
    app_provider: Host,
    pool_owner: Host,
    workers: Vec<Host>,
    app: String,
    pool: String,
    results_url: String,
    /// The chain, the protocol, the market (127.0.0.2), the result store (127.0.0.3) and the
    /// app's web server (127.0.0.4) that keep running.
    services: Vec<Service>,
    runtime: tokio::runtime::Runtime,
    reader: ChainClient,
    /// Who holds what before the deal.
    accounts: Vec<(Address, U256)>,
}

impl Market {
    fn start() -> Self {
        let started = Instant::now();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let database = runtime.block_on(TestDatabase::create("failover"));
        let chain = Anvil::start(&["--block-time", "1"]);
        // Transactions and services wait for no confirmation: the deal's speed is not what
        // this tests.
        let deployer = Host::new("owner");
        let network = deploy(&deployer, &chain.url, &["--confirmations", "0"]);

        let data = tempfile::tempdir().unwrap();
        let market_host = Host::new("owner");
        market_host.join(&network, &["--confirmations", "0"]);
        let ((market, market_url), (results, results_url)) =
            start_market_and_results(&market_host, &market_host, data.path());
        let joined = |role: &'static str| {
            let host = Host::new(role);
            let urls = ["--market.url", &market_url, "--results.url", &results_url];
            host.join(&network, &with(&urls, &["--confirmations", "0"]));
            host
        };
        let app_provider = joined("app-provider");
        let pool_owner = joined("scheduler");
        let requester = joined("requester");
        let workers: Vec<Host> =
            ["worker-0", "worker-1", "worker-2", "worker-3"].map(joined).into();
        let mut shares = vec![(&requester, "20 RLC"), (&pool_owner, "20 RLC")];
        shares.extend(workers.iter().map(|w| (w, "10 RLC")));
        hand_out(&deployer, &shares);
        let app = publish_app(&app_provider, "0.1 RLC", VOLUME);
        let pool = publish_pool(&pool_owner, "failover pool", "0.4 RLC", VOLUME, "2");
        for worker in &workers {
            worker.json(&["account", "deposit", "5 RLC"]);
        }
        let reader = runtime
            .block_on(ChainClient::connect(&chain.url, None, ClientConfig::default()))
            .unwrap();
        let mut accounts = vec![requester.address(), app_provider.address(), pool_owner.address()];
        accounts.extend(workers.iter().map(Host::address));
        let accounts = accounts.into_iter().map(|a| (a, holdings(&requester, a))).collect();
        println!("market ready in {:.1} s", started.elapsed().as_secs_f64());
        Self {
            chain,
            data,
            database,
            network,
            requester,
            app_provider,
            pool_owner,
            workers,
            app,
            pool,
            results_url,
            services: vec![market, results],
            runtime,
            reader,
            accounts,
        }
    }

    /// A scheduler instance of the pool on the loopback host `ip`, its home `home`; returns it
    /// and its URL once it listens.
    fn scheduler(&self, ip: &str, home: &Path) -> (Service, String) {
        let listen = format!("{ip}:0");
        let mut args = with(
            &["--network", NETWORK, "--devnet-account", self.pool_owner.role],
            &[
                "scheduler",
                "run",
                "--workerpool",
                &self.pool,
                "--listen",
                &listen,
                "--db.url",
                &self.database.url,
                "--results.url",
                &self.results_url,
                "--confirmations",
                "0",
                "--admit",
                "allow-list",
            ],
        );
        let workers: Vec<String> = self.workers.iter().map(|w| w.address().to_string()).collect();
        for worker in &workers {
            args.extend(["--admit.worker", worker.as_str()]);
        }
        // The pool's network profile, as the pool owner's host has it.
        copy_dir(self.pool_owner.path(), home);
        let mut service = Service::start(home, &args, &[]);
        let url = format!("http://{}", bound(&service.line("listening on")));
        (service, url)
    }

    /// The four workers, naming both scheduler instances.
    fn workers(&self, schedulers: &str) -> Vec<Service> {
        (0..self.workers.len())
            .map(|index| {
                let dir = self.data.path().join(format!("worker-{index}"));
                self.workers[index].service(&[
                    "--fetch.allow",
                    "127.0.0.0/8",
                    "worker",
                    "run",
                    "--scheduler.url",
                    schedulers,
                    "--data.dir",
                    dir.to_str().unwrap(),
                    "--slots",
                    "2",
                ])
            })
            .collect()
    }

    /// The requester buys the deal and waits for its results, in the background.
    fn buy(&self) -> Run {
        let args = ["--args", "hello", "--trust", "2", "--volume", VOLUME, "--max-price", "1 RLC"];
        self.requester.buy(&self.app, &args, self.data.path())
    }

    /// How many tasks the chain shows finalized, and claimed, by task.
    fn outcomes(&self) -> (BTreeMap<B256, usize>, BTreeMap<B256, usize>) {
        let count = |signature| {
            let filter = Filter::new()
                .address(self.network.poco)
                .event_signature(signature)
                .from_block(self.network.block);
            let logs = self.runtime.block_on(self.reader.provider().get_logs(&filter)).unwrap();
            let mut counts: BTreeMap<B256, usize> = BTreeMap::new();
            for log in logs {
                *counts.entry(log.topics()[1]).or_default() += 1;
            }
            counts
        };
        (count(IPoco::TaskFinalize::SIGNATURE_HASH), count(IPoco::TaskClaimed::SIGNATURE_HASH))
    }

    /// Waits (bounded) until the chain shows `finalized` tasks finalized.
    fn wait_for_progress(&self, run: &mut Run, finalized: usize) {
        let deadline = Instant::now() + Duration::from_secs(240);
        while self.outcomes().0.len() < finalized {
            if Instant::now() > deadline || run.ended() {
                panic!("no progress: {}", run.output());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The run's outcome once it ends (bounded): its deal and tasks, each completed.
    fn finish(&self, run: Run) -> (Deal, Vec<B256>) {
        let (outcome, tasks) = run.finish(DEAL_TIME);
        assert_eq!(tasks.len(), 20);
        (deal_of(&self.requester, &outcome), tasks)
    }

    /// Every task finalized exactly once, none claimed, and every balance moved exactly as the
    /// protocol's rules say for the contributions the chain recorded, to the nRLC.
    fn check_accounts(&self, deal: &Deal, tasks: &[B256]) {
        let (finalized, claimed) = self.outcomes();
        for task in tasks {
            assert_eq!(finalized.get(task), Some(&1), "task {task} is paid exactly once");
        }
        assert!(claimed.is_empty(), "no task is claimed: {claimed:?}");
        let workers: Vec<Address> = self.workers.iter().map(Host::address).collect();
        let poco = self.network.poco;
        let changes =
            self.runtime.block_on(expected_changes(&self.reader, poco, deal, tasks, &workers));
        check_holdings(&self.requester, &self.accounts, &changes);
        assert_eq!(deal.appOwner, self.app_provider.address());
    }

    /// The hashes of the transactions the scheduler's wallet had mined from block `from` on.
    fn scheduler_transactions(&self, from: u64) -> Vec<String> {
        let scheduler = self.pool_owner.address().to_string().to_lowercase();
        let head = rpc(&self.chain.url, "eth_blockNumber", &serde_json::json!([]));
        let head =
            u64::from_str_radix(head.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        let mut hashes = Vec::new();
        for number in from..=head {
            let block = rpc(
                &self.chain.url,
                "eth_getBlockByNumber",
                &serde_json::json!([format!("{number:#x}"), true]),
            );
            for tx in block["transactions"].as_array().unwrap() {
                if tx["from"].as_str().unwrap().to_lowercase() == scheduler {
                    hashes.push(tx["hash"].as_str().unwrap().to_owned());
                }
            }
        }
        hashes
    }

    fn block_number(&self) -> u64 {
        let head = rpc(&self.chain.url, "eth_blockNumber", &serde_json::json!([]));
        u64::from_str_radix(head.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    fn finish_database(self) {
        let Self { runtime, database, services, chain, .. } = self;
        drop((services, chain));
        runtime.block_on(database.drop_database());
    }
}

/// Copies the files of `from` into `to` (a poco home: the network profile).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Waits (bounded) for a line of `service` containing `needle`; returns when it came.
fn wait_line(service: &mut Service, needle: &str) -> Instant {
    service.line(needle);
    Instant::now()
}

/// Sends `POST /work` with a made-up signature to the instance at `address`: its status line and
/// JSON answer.
fn forged_work_request(address: &str) -> (String, serde_json::Value) {
    use std::io::{Read, Write};
    let body = r#"{"freeSlots":1}"#;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /work HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         x-poco-signature: 0x00\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}")))
}

/// Two instances up: the first active, the second standing by; the workers started.
fn two_schedulers(market: &Market, homes: &TempDir) -> (Service, Service, Vec<Service>) {
    let (mut first, first_url) = market.scheduler("127.0.0.5", &homes.path().join("a"));
    first.line(ACTIVE);
    let (mut second, second_url) = market.scheduler("127.0.0.6", &homes.path().join("b"));
    second.line("standby: another instance");
    assert!(
        !second.lines().iter().any(|line| line.contains(TAKES)),
        "two instances: one is active"
    );
    let health = crate::common::get(second_url.trim_start_matches("http://"), "/health");
    assert_eq!(health["status"], "standby", "{health}");
    assert_eq!(health["active"], first_url.as_str(), "{health}");
    // A worker's request, even a forged one, gets the active instance's URL from a standby,
    // and nothing else.
    let (status, body) = forged_work_request(second_url.trim_start_matches("http://"));
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert_eq!(body["code"], "standby", "{body}");
    assert_eq!(body["active"], first_url.as_str(), "{body}");
    let workers = market.workers(&format!("{first_url},{second_url}"));
    (first, second, workers)
}

/// The active scheduler is killed (SIGKILL) in the middle of a trust-2 deal of 20 tasks and its
/// folder deleted: the standby takes over from the database and the chain, finishes every task,
/// nothing is paid twice nor claimed, and every balance is exact.
#[test]
#[ignore = "needs PostgreSQL"]
fn the_standby_finishes_the_deal_when_the_active_scheduler_is_killed() {
    let market = Market::start();
    let homes = tempfile::tempdir().unwrap();
    let (mut first, mut second, workers) = two_schedulers(&market, &homes);
    let mut run = market.buy();
    market.wait_for_progress(&mut run, 2);
    let standby_lines: Vec<String> = second.lines().to_vec();
    assert!(
        !standby_lines.iter().any(|line| line.contains(SENDS) || line.contains(ASSIGNS)),
        "a standby neither sends nor hands out anything: {standby_lines:#?}"
    );
    assert!(first.lines().iter().any(|line| line.contains(ASSIGNS)));

    // SIGKILL, and the instance's folder is gone.
    let killed = Instant::now();
    drop(first);
    std::fs::remove_dir_all(homes.path().join("a")).unwrap();
    let finalized_at_kill = market.outcomes().0.len();
    let took = wait_line(&mut second, TAKES) - killed;
    let active = wait_line(&mut second, ACTIVE) - killed;
    let acted = loop {
        let deadline = killed + Duration::from_secs(60);
        if second.lines().iter().any(|line| line.contains(SENDS) || line.contains(ASSIGNS)) {
            break killed.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "the new active instance never acted: {:#?}",
            second.lines()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "failover: {finalized_at_kill} of 20 tasks finalized at the kill; the standby took the \
         lease {:.2} s after the SIGKILL, was active (caught up) after {:.2} s, and acted (first \
         assignment or transaction) after {:.2} s",
        took.as_secs_f64(),
        active.as_secs_f64(),
        acted.as_secs_f64()
    );
    assert!(finalized_at_kill < 20, "the kill came in the middle of the deal");
    assert!(acted < Duration::from_secs(15), "the standby takes over within seconds");

    let (deal, tasks) = market.finish(run);
    market.check_accounts(&deal, &tasks);
    drop((second, workers));
    market.finish_database();
}

/// The active scheduler is paused (SIGSTOP) until the standby took over, then woken (SIGCONT):
/// it sends no transaction, hands out no task, and stops; the deal completes, every balance
/// exact.
#[test]
#[ignore = "needs PostgreSQL"]
fn a_paused_active_scheduler_woken_after_a_takeover_acts_on_nothing() {
    let market = Market::start();
    let homes = tempfile::tempdir().unwrap();
    let (mut first, mut second, workers) = two_schedulers(&market, &homes);
    let mut run = market.buy();
    market.wait_for_progress(&mut run, 2);

    first.signal("STOP");
    let stopped = Instant::now();
    let took = wait_line(&mut second, TAKES) - stopped;
    // What the paused instance sent before its pause is mined by now (a block a second, and
    // the lease lasts 5 s).
    let taken_at_block = market.block_number();
    wait_line(&mut second, ACTIVE);
    // The new active instance works a while before the old one wakes.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !second.lines().iter().any(|line| line.contains(ASSIGNS) || line.contains(SENDS)) {
        assert!(
            Instant::now() < deadline,
            "the new active instance never acted: {:#?}",
            second.lines()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let before_wake = first.lines().len();
    first.signal("CONT");
    let woken = Instant::now();
    let code = first.exit_code();
    let after_wake: Vec<String> = first.lines()[before_wake..].to_vec();
    println!(
        "split brain: the standby took the lease {:.2} s after the SIGSTOP; the woken instance \
         stopped {:.2} s after the SIGCONT, having written {} line(s): {:#?}",
        took.as_secs_f64(),
        woken.elapsed().as_secs_f64(),
        after_wake.len(),
        after_wake
    );
    assert_ne!(code, Some(0), "the woken instance stops with an error");
    assert!(
        after_wake.iter().any(|line| line.contains("lost the pool's lease")),
        "it says why it stops: {after_wake:#?}"
    );
    assert!(
        !after_wake.iter().any(|line| line.contains("lease released")),
        "it gives up nothing: the lease is another's: {after_wake:#?}"
    );
    // (It may log the receipts of transactions it sent before its pause: those were mined
    // before the takeover, as the chain's check below shows.)
    for line in &after_wake {
        assert!(
            !line.contains(SENDS) && !line.contains(ASSIGNS),
            "the woken instance acted: {line}"
        );
    }

    let (deal, tasks) = market.finish(run);
    // Every transaction of the scheduler's wallet since the pause is one the new active
    // instance sent.
    let second_log = second.lines().join("\n");
    let sent_since: Vec<String> = market.scheduler_transactions(taken_at_block + 1);
    let foreign: HashSet<&String> =
        sent_since.iter().filter(|hash| !second_log.contains(hash.as_str())).collect();
    println!(
        "split brain: {} transaction(s) of the scheduler's wallet since the pause, all the new \
         active instance's",
        sent_since.len()
    );
    assert!(foreign.is_empty(), "transactions the new active instance did not send: {foreign:?}");
    market.check_accounts(&deal, &tasks);
    drop((second, workers));
    market.finish_database();
}
