//! Attacks on a workerpool's scheduler: a stranger registering to be handed tasks, and a
//! worker handed a task reporting its result "uploaded" early at a place of its choosing, so
//! that the scheduler never asks an honest revealer to upload and finalizes with the
//! attacker's URL. Each runs on real services (anvil with the contracts, the result store,
//! the scheduler, honest workers in the wasmtime sandbox) while an honest requester's deal
//! runs to its end: the result is stored at the pool's store, the task is finalized on-chain
//! with that location, and the requester downloads it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use alloy::{
    primitives::{B256, Bytes},
    providers::Provider,
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use poco_api::pool::{Registration, Report, WorkRequest, WorkResponse};
use poco_contracts::bindings::IPoco;
use poco_devnet::cluster::Cluster;
use poco_primitives::request::SignedRequest;
use tokio::net::TcpListener;

const MINUTE: Duration = Duration::from_secs(60);
/// A short run of the `pi` app.
const PARAMS: &str = r#"{"iexec_args":"2000 1"}"#;
/// How many rounds the attack loops run at most (one every 100 ms).
const ATTACK_ROUNDS: usize = 1_200;

/// Someone talking to the scheduler's worker API directly, with a wallet of its own.
#[derive(Clone)]
struct Attacker {
    key: PrivateKeySigner,
    url: String,
    http: reqwest::Client,
}

impl Attacker {
    fn new(key: PrivateKeySigner, url: String) -> Self {
        Self { key, url, http: reqwest::Client::new() }
    }

    /// POSTs the JSON `body` to `path`, signed as the worker protocol wants; the status and
    /// the body.
    async fn post(&self, path: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        let headers =
            SignedRequest::fresh("POST", path, &body).headers_signed_by(&self.key).unwrap();
        let mut request = self.http.post(format!("{}{path}", self.url));
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let response =
            request.header("content-type", "application/json").body(body).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    async fn register(&self) -> (u16, serde_json::Value) {
        let registration = Registration { slots: 4, tee: false, version: "attacker".into() };
        self.post("/workers/register", serde_json::to_vec(&registration).unwrap()).await
    }

    /// Asks for work until given `task_id` (bounded); whether it was.
    async fn take(&self, task_id: B256) -> bool {
        for _ in 0..100 {
            let (status, body) = self
                .post("/work", serde_json::to_vec(&WorkRequest { free_slots: 4 }).unwrap())
                .await;
            if status != 200 {
                return false;
            }
            let work: WorkResponse = serde_json::from_value(body).unwrap();
            if work.assignments.iter().any(|a| a.task_id == task_id) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    async fn report_uploaded(&self, task_id: B256, location: &str) -> (u16, serde_json::Value) {
        let report = Report::Uploaded {
            task_id,
            location: location.to_owned(),
            callback_data: Bytes::new(),
        };
        self.post("/reports", serde_json::to_vec(&report).unwrap()).await
    }

    /// Reports `task_id` uploaded at each of `locations` in turn, every 100 ms, until `stop`
    /// (bounded); every answer's status and code.
    fn keep_reporting(
        &self,
        task_id: B256,
        locations: Vec<String>,
        stop: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<Vec<(u16, String)>> {
        let attacker = self.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for round in 0..ATTACK_ROUNDS {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let location = &locations[round % locations.len()];
                let (status, body) = attacker.report_uploaded(task_id, location).await;
                answers.push((status, body["code"].as_str().unwrap_or_default().to_owned()));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        })
    }
}

/// The `results` the task was finalized with on-chain.
async fn finalized_location(cluster: &Cluster, task_id: B256) -> String {
    let filter = Filter::new()
        .address(cluster.net.deployment().poco)
        .event_signature(IPoco::TaskFinalize::SIGNATURE_HASH)
        .topic1(task_id)
        .from_block(0);
    let logs = cluster.net.owner().provider().get_logs(&filter).await.unwrap();
    let log = logs.first().expect("a TaskFinalize event");
    let event = IPoco::TaskFinalize::decode_log(&log.inner).unwrap();
    String::from_utf8(event.data.results.to_vec()).unwrap()
}

/// The honest side: the task completes, finalized with the pool's store location, and the
/// requester downloads the result from there.
async fn assert_honest_result(cluster: &Cluster, deal: &poco_primitives::Deal, task_id: B256) {
    cluster.wait_completed(deal, 2 * MINUTE).await;
    let pool_location = format!("{}/results/{task_id}", cluster.results_url);
    assert_eq!(finalized_location(cluster, task_id).await, pool_location);
    let downloaded = cluster.download(task_id).await;
    let unpacked = cluster.scratch().join(format!("result-{task_id}"));
    downloaded.unpack_to(&unpacked).unwrap();
    let result = std::fs::read_to_string(unpacked.join("result.txt")).unwrap();
    assert!(!result.trim().is_empty(), "the app's result is in the archive");
}

/// Waits until the scheduler knows the task.
async fn scheduler_knows(cluster: &Cluster, task_id: B256) {
    let url = format!("{}/tasks/{task_id}", cluster.scheduler_url());
    poco_test_utils::wait_until("the scheduler knows the task", MINUTE, || async {
        reqwest::get(&url).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
}

/// A stranger's wallet registers at the pool's scheduler to be handed its tasks, then reports
/// a task's result uploaded at its own server, and keeps trying while honest workers run the
/// task. It is refused at every step (403 naming the rule), and the honest requester gets its
/// result from the pool's store, the task finalized with that location.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_can_neither_join_a_pool_nor_redirect_its_result() {
    let mut cluster = Cluster::start(3, "pi").await;
    let own_store = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let deal = cluster.deal(4, 1, PARAMS).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    scheduler_knows(&cluster, task_id).await;
    let evil = format!("http://{}/results/{task_id}", own_store.local_addr().unwrap());

    // Before any honest worker runs, the stranger registers, asks for the task and reports it.
    let stranger = Attacker::new(PrivateKeySigner::random(), cluster.scheduler_url());
    let (status, body) = stranger.register().await;
    let taken = stranger.take(task_id).await;
    let early = stranger.report_uploaded(task_id, &evil).await;

    // During the honest run, it keeps at it.
    for index in 0..3 {
        cluster.start_worker(index);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let attack = stranger.keep_reporting(task_id, vec![evil.clone()], stop.clone());
    let again = stranger.register().await;
    assert_honest_result(&cluster, &deal, task_id).await;
    stop.store(true, Ordering::Relaxed);
    let answers = attack.await.unwrap();

    assert_eq!(
        (status, body["code"].as_str(), body["rule"].as_str()),
        (403, Some("not_admitted"), Some("allow-list")),
        "{body}"
    );
    assert_eq!(again.0, 403, "{}", again.1);
    assert!(!taken, "the stranger was handed the task");
    assert_eq!(early.0, 403, "{}", early.1);
    assert!(!answers.is_empty());
    for (status, code) in &answers {
        assert!(*status == 403 && code == "unknown_worker", "{status} {code}");
    }
}

/// A worker of the pool is handed the task, and reports its result uploaded before consensus:
/// at its own server, and at the pool's store too (where nothing was uploaded). It keeps at it
/// while the honest workers run the task. Every report is refused (409 before consensus, 403
/// after: it is not the uploader), the scheduler asks an honest revealer to upload, and the
/// requester gets its result from the pool's store, the task finalized with that location.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_handed_a_task_cannot_take_over_its_upload() {
    let mut cluster = Cluster::start(4, "pi").await;
    // The insider never contributes, and keeps talking: its replica goes to an honest worker
    // once the replica timeout passes (shortened from 120 s, for the test's sake).
    let mut config = cluster.scheduler_config();
    config.replica_timeout = Duration::from_secs(5);
    cluster.kill_scheduler().await;
    cluster.start_scheduler_with(config).await;
    let own_store = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let deal = cluster.deal(4, 1, PARAMS).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    scheduler_knows(&cluster, task_id).await;
    let evil = format!("http://{}/results/{task_id}", own_store.local_addr().unwrap());
    let pool_location = format!("{}/results/{task_id}", cluster.results_url);

    // One of the pool's own accounts, run by hand: it takes the task first.
    let insider = Attacker::new(cluster.net.accounts().workers[3].clone(), cluster.scheduler_url());
    assert_eq!(insider.register().await.0, 200);
    assert!(insider.take(task_id).await, "the insider is handed the task");
    let early = [
        insider.report_uploaded(task_id, &evil).await,
        insider.report_uploaded(task_id, &pool_location).await,
    ];

    for index in 0..3 {
        cluster.start_worker(index);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let attack = insider.keep_reporting(task_id, vec![evil, pool_location], stop.clone());
    assert_honest_result(&cluster, &deal, task_id).await;
    stop.store(true, Ordering::Relaxed);
    let answers = attack.await.unwrap();

    for (status, body) in &early {
        assert_eq!((*status, body["code"].as_str()), (409, Some("unexpected_report")), "{body}");
    }
    assert!(!answers.is_empty());
    for (status, code) in &answers {
        let refused = matches!(
            (*status, code.as_str()),
            (409, "unexpected_report") | (403, "not_uploader" | "foreign_location")
        );
        assert!(refused, "{status} {code}");
    }
}
