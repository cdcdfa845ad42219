//! End-to-end tests of a workerpool, all real: anvil with the contracts, the result store, the
//! scheduler, workers running apps in the wasmtime sandbox. Deals are matched on-chain and
//! followed until their results are downloaded, or their tasks claimed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy::primitives::{Address, B256, U256};
use poco_devnet::cluster::{ByzantineExecutor, Cluster};
use poco_primitives::{result::result_digest_of_dir, tag::Tag};
use poco_test_utils::{OrderSpec, RLC, app_module, task_payout_on_chain, wait_until};
use poco_worker::{
    exec::{ExecFuture, ExecSpec, Executor, WasmExecutor},
    runtime::{TaskParams, task_spec},
};

mod disk;
mod outputs;
mod python;
mod strangers;

const MINUTE: Duration = Duration::from_secs(60);

/// (a) Trust 1, one worker: the downloaded result is byte for byte what the app gives when
/// run locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_one_result_is_what_the_app_gives_locally() {
    let mut cluster = Cluster::start(1, "pi").await;
    cluster.start_worker(0);
    let params = r#"{"iexec_args":"200000 7"}"#;
    let deal = cluster.deal(1, 1, params).await;
    cluster.wait_completed(&deal, MINUTE).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let downloaded = cluster.download(task_id).await;

    let local = cluster.scratch().join("local");
    let (input, output) = (local.join("in"), local.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&output).unwrap();
    let spec = task_spec(
        app_module("pi"),
        &input,
        &output,
        &deal,
        task_id,
        &TaskParams::parse(params).unwrap(),
        None,
        &[],
    )
    .unwrap();
    let outcome = WasmExecutor::new().unwrap().execute(spec).await.unwrap();
    assert!(outcome.status.success());
    let unpacked = cluster.scratch().join("downloaded");
    downloaded.unpack_to(&unpacked).unwrap();
    for file in ["result.txt", "computed.json"] {
        assert_eq!(
            std::fs::read(unpacked.join(file)).unwrap(),
            std::fs::read(output.join(file)).unwrap(),
            "{file} differs from a local run"
        );
    }
    assert_eq!(downloaded.digest, result_digest_of_dir(&output).unwrap());
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    assert_eq!(poco.viewTask(task_id).call().await.unwrap().resultDigest, downloaded.digest);
}

/// (b) Trust 4 with a lying worker among the first two contributions: four honest workers
/// agree, the liar loses its stake and its score goes down, the honest ones are paid, every
/// balance exact to the nRLC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byzantine_worker_is_outvoted_and_slashed() {
    let mut cluster = Cluster::start(5, "pi").await;
    let accounts = cluster.net.accounts().clone();
    let liar = accounts.workers[0].address();
    let honest: Vec<Address> = accounts.workers[1..].iter().map(|w| w.address()).collect();
    // A pool price of 4 RLC: each contribution stakes 1.2 RLC, enough at risk for a score.
    let price = 4 * RLC;
    let priced = |params: &str| OrderSpec {
        trust: 4,
        volume: 1,
        workerpool_price: price,
        params: params.into(),
        ..OrderSpec::default()
    };
    // First the future liar works honestly beside worker 1 and earns a score, so that its
    // fault can be seen lowering it.
    cluster.start_worker(0);
    cluster.start_worker(1);
    let warm_up = cluster.deal_with(priced(r#"{"iexec_args":"1000 1"}"#)).await;
    cluster.wait_completed(&warm_up, 2 * MINUTE).await;
    assert_eq!(cluster.score(liar).await, U256::from(1), "a replicated success scores 1");
    cluster.kill_worker(0).await;
    // A score rises at most once a day: the next deal comes a day later.
    cluster.net.warp(86_400).await;

    let mut everyone = vec![
        accounts.requester.address(),
        accounts.app_provider.address(),
        accounts.scheduler.address(),
        liar,
    ];
    everyone.extend(&honest);
    let before = cluster.balances(&everyone).await;

    let config = cluster.worker_config(0);
    cluster.start_worker_with(0, config, Arc::new(ByzantineExecutor::new().unwrap()));
    let deal = cluster.deal_with(priced(r#"{"iexec_args":"50000 3"}"#)).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    wait_until("the liar and one honest worker contributed", MINUTE, || async {
        poco.viewTask(task_id).call().await.unwrap().contributors == U256::from(2)
    })
    .await;
    for index in 2..5 {
        cluster.start_worker(index);
    }
    cluster.wait_completed(&deal, 2 * MINUTE).await;

    // Payouts (protocol §5): the liar's stake (30% of the pool price) is seized into the
    // reward, the four honest workers share it equally (log-weight 1 each), the scheduler gets
    // the rest (its stake came back); the app owner gets its 1 RLC; the requester pays 1 RLC +
    // the pool price.
    let net = &cluster.net;
    let workers: Vec<Address> = [liar].into_iter().chain(honest.iter().copied()).collect();
    let payout =
        task_payout_on_chain(net.owner(), net.deployment().poco, &deal, task_id, &workers).await;
    let stake = U256::from(price * 30 / 100);
    assert_eq!(payout.seized, [(liar, stake)]);
    let each = payout.rewards[0].1;
    assert_eq!(payout.rewards, honest.iter().map(|w| (*w, each)).collect::<Vec<_>>());
    let expected_change: Vec<(U256, bool)> = vec![
        (U256::from(RLC + price), false), // requester pays
        (U256::from(RLC), true),          // app owner earns
        (payout.scheduler, true),         // scheduler earns its share (its stake came back)
        (stake, false),                   // the liar loses its stake
        (each, true),
        (each, true),
        (each, true),
        (each, true),
    ];
    cluster.assert_balance_changes(&everyone, &before, &expected_change).await;
    // A fault keeps two thirds of the score, rounded down (protocol §5): 1 -> 0.
    assert_eq!(cluster.score(liar).await, U256::ZERO, "the liar's score is reduced");
    assert_eq!(cluster.score(honest[0]).await, U256::from(2), "a second success");
    for worker in &honest[1..] {
        assert_eq!(cluster.score(*worker).await, U256::from(1), "honest workers gain reputation");
    }
    let downloaded = cluster.download(task_id).await;
    let unpacked = cluster.scratch().join("result");
    downloaded.unpack_to(&unpacked).unwrap();
    assert!(!unpacked.join("forged.txt").exists(), "the consensus is the honest result");
}

/// (c) A worker killed in the middle of a task: the task goes to another worker and completes
/// before its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_survives_its_worker_being_killed() {
    let mut cluster = Cluster::start(2, "testing/sleeper").await;
    cluster.start_worker(0);
    let deal = cluster.deal(1, 1, r#"{"iexec_args":"3"}"#).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let status = format!("{}/tasks/{task_id}", cluster.scheduler_url());
    wait_until("worker 0 runs the task", MINUTE, || async {
        let body = reqwest::get(&status).await.unwrap().text().await.unwrap();
        body.contains("\"state\":\"assigned\"") || body.contains("\"state\":\"computed\"")
    })
    .await;
    cluster.kill_worker(0).await;
    cluster.start_worker(1);
    cluster.wait_completed(&deal, MINUTE).await;
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    let contribution = poco
        .viewContribution(task_id, cluster.net.accounts().workers[0].address())
        .call()
        .await
        .unwrap();
    assert_eq!(contribution.status, 0, "the killed worker never contributed");
}

/// (d) The scheduler killed in the middle of a 20-task deal and restarted: every task
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_completes_across_a_scheduler_kill() {
    let mut cluster = Cluster::start(2, "pi").await;
    for index in 0..2 {
        let mut config = cluster.worker_config(index);
        config.slots = 4;
        let executor = WasmExecutor::new().unwrap();
        cluster.start_worker_with(index, config, Arc::new(executor));
    }
    // Short computations: the test is about the scheduler's restart, and on a loaded machine
    // 20,000 digits of pi per replica left too few tasks done before the kill.
    let deal = cluster.deal(4, 20, r#"{"iexec_args":"2000 1"}"#).await;
    let tasks: Vec<B256> = deal.tasks().map(|(_, id)| id).collect();
    wait_until("some tasks are done", 3 * MINUTE, || async {
        let mut done = 0;
        for task in &tasks {
            done += usize::from(cluster.status(*task).await == 3);
        }
        done >= 3
    })
    .await;
    cluster.kill_scheduler().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start_scheduler().await;
    cluster.wait_completed(&deal, 3 * MINUTE).await;
}

/// The demo's pool: four honest workers and a liar, one slot each, a trust-4 deal of three
/// tasks. A worker that contributed waits for the consensus without holding its slot, so the
/// tasks the liar's dissent keeps open still find the workers they need, and the deal
/// completes (holding the slots deadlocked it: every worker waiting on a consensus that needed
/// another one's slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slot_workers_complete_a_replicated_deal_despite_a_liar() {
    let mut cluster = Cluster::start(5, "pi").await;
    let config = cluster.worker_config(4);
    cluster.start_worker_with(4, config, Arc::new(ByzantineExecutor::new().unwrap()));
    for index in 0..4 {
        cluster.start_worker(index);
    }
    let deal = cluster.deal(4, 3, r#"{"iexec_args":"2000 1"}"#).await;
    cluster.wait_completed(&deal, 2 * MINUTE).await;
}

/// A committee deal: the contract draws each task's seats from the pool's bonded members and
/// the scheduler hands the task to the seat holders only. Four workers bond, a fifth does not:
/// the deal completes, the scheduler gave each task to seat holders only, nobody else
/// contributed, and the seat holders who proved the result hold a majority of the seats and
/// weigh as many votes as they hold seats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committee_deal_runs_on_the_drawn_members_only() {
    let mut cluster = Cluster::start(5, "pi").await;
    let accounts = cluster.net.accounts().clone();
    let members: Vec<Address> = accounts.workers[..4].iter().map(|w| w.address()).collect();
    for worker in &accounts.workers[..4] {
        let (client, poco) = cluster.net.poco(worker);
        client.send(poco.joinWorkerpool(cluster.workerpool)).await.expect("joinWorkerpool");
    }
    // The worker that did not bond asks for work alone first: it must get nothing.
    cluster.start_worker(4);
    let spec = OrderSpec {
        trust: 4,
        volume: 2,
        tag: Tag::COMMITTEE.0,
        params: r#"{"iexec_args":"2000 1"}"#.into(),
        ..OrderSpec::default()
    };
    let deal = cluster.deal_with(spec).await;
    for (_, task_id) in deal.tasks() {
        wait_until("the scheduler initialized the task", MINUTE, || async {
            cluster.status(task_id).await == 1
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for index in 0..4 {
        cluster.start_worker(index);
    }
    cluster.wait_completed(&deal, 2 * MINUTE).await;

    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    let outsider = accounts.workers[4].address();
    for (index, task_id) in deal.tasks() {
        let seats = poco.viewCommittee((&deal).into(), index).call().await.unwrap();
        assert_eq!(seats.len(), 3, "trust 4 takes a committee of 3 seats");
        assert!(seats.iter().all(|seat| members.contains(seat)));
        let status = format!("{}/tasks/{task_id}", cluster.scheduler_url());
        let body = reqwest::get(&status).await.unwrap().text().await.unwrap();
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        for replica in status["replicas"].as_array().unwrap() {
            let worker: Address = replica["worker"].as_str().unwrap().parse().unwrap();
            assert!(seats.contains(&worker), "the task was given to {worker}, who holds no seat");
        }
        let mut proved_seats = 0;
        for worker in members.iter().chain([&outsider]) {
            let contribution = poco.viewContribution(task_id, *worker).call().await.unwrap();
            let held = seats.iter().filter(|seat| *seat == worker).count();
            if held == 0 {
                assert_eq!(contribution.status, 0, "{worker} holds no seat but contributed");
            } else if contribution.status == 2 {
                assert_eq!(contribution.weight, U256::from(held), "a vote per seat");
                proved_seats += held;
            }
        }
        assert!(proved_seats * 2 > seats.len(), "the result is proved by a majority of seats");
    }
}

/// (e) A deal nobody works on: after its final deadline the scheduler claims it and the
/// requester gets exactly its money back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_that_cannot_complete_is_claimed_and_refunded() {
    let cluster_start = Cluster::start(0, "pi").await;
    let mut cluster = cluster_start;
    let requester = cluster.net.accounts().requester.address();
    let before = cluster.balance(requester).await;
    let deal = cluster.deal(1, 3, "").await;
    assert_eq!(cluster.balance(requester).await, before - U256::from(3 * 3 * RLC));
    cluster.net.warp(10 * 300).await;
    let tasks: Vec<B256> = deal.tasks().map(|(_, id)| id).collect();
    wait_until("every task is claimed", MINUTE, || async {
        for task in &tasks {
            if cluster.status(*task).await != 4 {
                return false;
            }
        }
        true
    })
    .await;
    assert_eq!(cluster.balance(requester).await, before, "refunded to the nRLC");
}

/// An executor that counts its runs.
#[derive(Debug)]
struct Counting {
    inner: WasmExecutor,
    runs: Arc<AtomicUsize>,
}

impl Executor for Counting {
    fn backend(&self) -> &'static str {
        "counting"
    }

    fn execute(&self, spec: ExecSpec) -> ExecFuture<'_> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.inner.execute(spec)
    }
}

/// An app whose bytes do not match its registered checksum is never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_with_the_wrong_checksum_is_not_run() {
    let mut cluster = Cluster::start(1, "pi").await;
    let accounts = cluster.net.accounts().clone();
    let url = format!("file://{}", poco_test_utils::apps_dir().join("pi/pi.wasm").display());
    cluster.app = cluster
        .net
        .create_app_at(&accounts.app_provider, "forged", &url, B256::repeat_byte(0xee))
        .await;
    let runs = Arc::new(AtomicUsize::new(0));
    let config = cluster.worker_config(0);
    let executor = Counting { inner: WasmExecutor::new().unwrap(), runs: runs.clone() };
    cluster.start_worker_with(0, config, Arc::new(executor));
    let deal = cluster.deal(1, 1, "").await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let status = format!("{}/tasks/{task_id}", cluster.scheduler_url());
    wait_until("the worker reports its refusal", MINUTE, || async {
        reqwest::get(&status).await.unwrap().text().await.unwrap().contains("\"state\":\"failed\"")
    })
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the app was never run");
    let poco = cluster.net.owner().poco(cluster.net.deployment().poco);
    let task = poco.viewTask(task_id).call().await.unwrap();
    assert_eq!(task.contributors, U256::ZERO, "no contribution");
}

/// Apps that loop for ever or exhaust memory end with a recorded failure, agreed on and
/// finalized like any result: no task stays stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_and_greedy_apps_end_in_recorded_failures() {
    for (app, expected) in
        [("testing/loop", "ran out of fuel"), ("testing/memhog", "ran out of memory")]
    {
        let mut cluster = Cluster::start(1, app).await;
        let mut config = cluster.worker_config(0);
        config.fuel_cap = Some(2_000_000_000);
        config.memory_bytes = 32 << 20;
        cluster.start_worker_with(0, config, Arc::new(WasmExecutor::new().unwrap()));
        let deal = cluster.deal(1, 1, "").await;
        cluster.wait_completed(&deal, MINUTE).await;
        let task_id = deal.task_id(deal.botFirst).unwrap();
        let unpacked = cluster.scratch().join("result");
        cluster.download(task_id).await.unpack_to(&unpacked).unwrap();
        let failure = std::fs::read_to_string(unpacked.join("poco-failure.json")).unwrap();
        assert!(failure.contains(expected), "{app}: {failure}");
    }
}
