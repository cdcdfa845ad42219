//! The scheduler against a real chain, driven through its HTTP API by workers written in the
//! tests (they sign requests and send transactions themselves), so that every decision of the
//! scheduler can be observed and forced.

mod api;
mod flow;
mod hand_back;
mod reorg;
mod rules;

use std::{future::Future, time::Duration};

use alloy::{
    primitives::{Address, B256, Bytes},
    signers::local::PrivateKeySigner,
};
use poco_api::pool::{
    Assignment, HAND_BACK_PATH, HandBack, HandBackCause, Heartbeat, HeartbeatResponse, PoolInfo,
    Registration, Report, Unhealthy, WorkRequest, WorkResponse,
};
use poco_contracts::bindings::IPocoTypes;
use poco_primitives::{
    Deal, ResultCommitment,
    request::{RequestHeaders, SignedRequest, unix_seconds},
};
use poco_scheduler::{Admission, SchedulerConfig};
use poco_test_utils::{OrderSpec, TestNet, postgres::TestDatabase};
use serde::{Serialize, de::DeserializeOwned};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// A second result store of the pool, declared with a trailing slash.
const SECOND_RESULT_STORE: &str = "http://results-2.invalid/";

/// Where the scheduler under test keeps its state.
enum Database {
    /// A SQLite file in a temporary directory (the default).
    Sqlite(tempfile::TempDir),
    /// A database made for the test on the PostgreSQL test server, dropped by
    /// [`Pool::finish`].
    Postgres(TestDatabase),
}

impl Database {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh database on the PostgreSQL server. A server that does not answer fails the
    /// test: a test asked to run on PostgreSQL never passes without it.
    async fn postgres() -> Self {
        Self::Postgres(TestDatabase::create("scheduler_it").await)
    }

    fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}", dir.path().join("scheduler.db").display()),
            Self::Postgres(database) => database.url.clone(),
        }
    }
}

/// A devnet with an app, a workerpool and a running scheduler.
struct Pool {
    net: TestNet,
    app: Address,
    workerpool: Address,
    url: String,
    database: Database,
    scheduler: Option<(JoinHandle<poco_scheduler::Result<()>>, oneshot::Sender<()>)>,
    salt: std::sync::atomic::AtomicU64,
    /// How long a replica and a worker may stay silent (the scheduler's defaults otherwise).
    silence: Option<Duration>,
    /// How long an uploader has before another revealer is asked (the default otherwise).
    upload_timeout: Option<Duration>,
    /// Who may work for the pool; `None`: the devnet's worker accounts (an allow-list).
    admission: Option<Admission>,
    /// How deep a block must be before the scheduler acts on it (the default otherwise).
    confirmations: Option<u64>,
    /// How long a worker that handed a task back waits before it may be given it again (the
    /// default otherwise).
    hand_back_pause: Option<Duration>,
    /// The result store the scheduler checks uploads in before it finalizes.
    results_url: String,
    _results: (oneshot::Sender<()>, tempfile::TempDir),
}

impl Pool {
    /// A pool whose scheduler keeps its state in SQLite.
    async fn start(workers: usize) -> Self {
        Self::start_on(workers, Database::sqlite()).await
    }

    /// A pool whose scheduler keeps its state in `database`.
    async fn start_on(workers: usize, database: Database) -> Self {
        Box::pin(Self::start_with(workers, database, None)).await
    }

    /// A pool (on SQLite) whose scheduler admits workers by `admission`.
    async fn start_admitting(workers: usize, admission: Admission) -> Self {
        Box::pin(Self::start_with(workers, Database::sqlite(), Some(admission))).await
    }

    async fn start_with(workers: usize, database: Database, admission: Option<Admission>) -> Self {
        let net = TestNet::start(workers).await;
        let accounts = net.accounts().clone();
        let app = net.create_app(&accounts.app_provider, "app", B256::ZERO).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "pool").await;
        let (results_url, results) = start_result_store(&net).await;
        let mut pool = Self {
            net,
            app,
            workerpool,
            url: String::new(),
            database,
            scheduler: None,
            salt: 0.into(),
            silence: None,
            upload_timeout: None,
            admission,
            confirmations: None,
            hand_back_pause: None,
            results_url,
            _results: results,
        };
        pool.start_scheduler().await;
        pool
    }

    /// A pool (on SQLite) whose scheduler gives replicas and workers only `silence` before it
    /// hands their work to others.
    /// A pool (on SQLite) whose scheduler gives an uploader only `timeout`.
    async fn start_hurried(workers: usize, timeout: Duration) -> Self {
        let mut pool = Self::start(workers).await;
        pool.upload_timeout = Some(timeout);
        pool.kill_scheduler().await;
        pool.start_scheduler().await;
        pool
    }

    /// A pool whose scheduler keeps its state in `database` and acts on blocks
    /// `confirmations` deep.
    async fn start_confirming(workers: usize, database: Database, confirmations: u64) -> Self {
        let mut pool = Self::start_on(workers, database).await;
        pool.confirmations = Some(confirmations);
        pool.kill_scheduler().await;
        pool.start_scheduler().await;
        pool
    }

    /// A pool whose scheduler keeps its state in `database` and gives a task back to the
    /// worker that handed it back after `pause`.
    async fn start_pausing(workers: usize, database: Database, pause: Duration) -> Self {
        let mut pool = Self::start_on(workers, database).await;
        pool.hand_back_pause = Some(pause);
        pool.kill_scheduler().await;
        pool.start_scheduler().await;
        pool
    }

    async fn start_impatient(workers: usize, silence: Duration) -> Self {
        let mut pool = Self::start(workers).await;
        pool.silence = Some(silence);
        pool.kill_scheduler().await;
        pool.start_scheduler().await;
        pool
    }

    fn config(&self) -> SchedulerConfig {
        let mut config = SchedulerConfig::new(
            self.net.devnet().rpc_url(),
            *self.net.deployment(),
            self.workerpool,
            self.net.accounts().scheduler.clone(),
            self.database.url(),
            &self.results_url,
        );
        config.result_stores.push(SECOND_RESULT_STORE.into());
        config.tick = Duration::from_millis(50);
        // A killed scheduler's lease expires soon: its restart takes over quickly.
        config.lease = poco_scheduler::LeaseConfig {
            ttl: Duration::from_secs(2),
            renew_every: Duration::from_millis(300),
            margin: Duration::from_millis(600),
            poll: Duration::from_millis(100),
        };
        config.admission = self.admission.clone().unwrap_or_else(|| {
            Admission::AllowList(self.net.accounts().workers.iter().map(|k| k.address()).collect())
        });
        // A bond released is seen at once.
        config.bond_cache = Duration::from_millis(200);
        if let Some(timeout) = self.upload_timeout {
            config.upload_timeout = timeout;
        }
        if let Some(silence) = self.silence {
            config.replica_timeout = silence;
            config.worker_timeout = silence;
        }
        if let Some(confirmations) = self.confirmations {
            config.confirmations = confirmations;
        }
        if let Some(pause) = self.hand_back_pause {
            config.hand_back_pause = pause;
        }
        config
    }

    /// Starts (or restarts, on the same database) the scheduler.
    async fn start_scheduler(&mut self) {
        // A restart listens where the scheduler was, as a real restart would.
        let address = self.url.strip_prefix("http://").unwrap_or("127.0.0.1:0").to_owned();
        let listener = TcpListener::bind(&address).await.unwrap();
        self.url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        let config = self.config();
        let handle = tokio::spawn(poco_scheduler::run(config, listener, async {
            let _ = stopped.await;
        }));
        self.scheduler = Some((handle, stop));
        // Ready once it answers as the active instance (on PostgreSQL, a restart after a kill
        // first waits for the lease of the killed one to expire).
        eventually("the scheduler answers as the active instance", || async {
            reqwest::get(format!("{}/health", self.url))
                .await
                .is_ok_and(|answer| answer.status().is_success())
        })
        .await;
    }

    /// Kills the scheduler at once, as `kill -9` would: nothing is shut down cleanly.
    async fn kill_scheduler(&mut self) {
        if let Some((handle, _stop)) = self.scheduler.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// Stops the scheduler and drops its PostgreSQL database, if it has one (a failed test
    /// leaves it behind, under a name of its own, for a look).
    async fn finish(mut self) {
        self.kill_scheduler().await;
        if let Database::Postgres(database) = &self.database {
            database.clone().drop_database().await;
        }
    }

    async fn deal(&self, trust: u64, volume: u64) -> Deal {
        let salt = self.salt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let spec = OrderSpec {
            app: self.app,
            workerpool: self.workerpool,
            trust,
            volume,
            salt,
            ..OrderSpec::default()
        };
        let accounts = self.net.accounts();
        self.net.match_orders(&accounts.requester, &self.net.orders(&spec)).await.unwrap().0
    }

    /// Uploads [`result_archive`] as the result of `deal`'s task `task_id`, as `worker` with the
    /// scheduler's `ticket`; returns the location to report.
    async fn upload(&self, worker: &Worker, deal: &Deal, task_id: B256, ticket: &Bytes) -> String {
        let (index, _) = deal.tasks().find(|(_, id)| *id == task_id).expect("a task of the deal");
        let task = poco_api::results::TaskRef { deal_id: deal.id(), index };
        let client = poco_api::results::ResultStoreClient::new(&self.results_url).unwrap();
        let archive = bytes::Bytes::from(result_archive().0);
        client.upload(task, archive, ticket, &worker.key).await.expect("the upload is accepted");
        format!("{}/results/{task_id}", self.results_url)
    }

    fn worker(&self, index: usize) -> Worker {
        self.worker_with(self.net.accounts().workers[index].clone())
    }

    /// A worker of wallet `key` (a stranger's, say).
    fn worker_with(&self, key: PrivateKeySigner) -> Worker {
        Worker { key, url: self.url.clone(), http: reqwest::Client::new() }
    }

    async fn task_status(&self, task_id: B256) -> u8 {
        let poco = self.net.owner().poco(self.net.deployment().poco);
        poco.viewTask(task_id).call().await.unwrap().status
    }
}

/// A worker written by the test: it talks to the scheduler and to the chain itself.
struct Worker {
    key: PrivateKeySigner,
    url: String,
    http: reqwest::Client,
}

/// The signature headers of `key`'s request `method path` with `body`, stamped `timestamp`
/// (unix seconds, or anything a test wants to try) and a fresh random nonce.
fn sign(
    key: &PrivateKeySigner,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: u64,
) -> RequestHeaders {
    let request = SignedRequest { timestamp, ..SignedRequest::fresh(method, path, body) };
    request.headers_signed_by(key).unwrap()
}

impl Worker {
    fn address(&self) -> Address {
        self.key.address()
    }

    /// The headers of a POST of `body` to `path` signed by this worker, stamped `timestamp`.
    fn sign_post(&self, path: &str, body: &[u8], timestamp: u64) -> RequestHeaders {
        sign(&self.key, "POST", path, body, timestamp)
    }

    /// Sends a POST with the signature headers `headers` (right or wrong) and returns the
    /// status and body.
    async fn post_signed(
        &self,
        path: &str,
        body: &[u8],
        headers: &RequestHeaders,
    ) -> (u16, String) {
        let mut request = self.http.post(format!("{}{path}", self.url));
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let response = request
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Sends a POST signed by this worker, stamped `timestamp` (unix seconds), and returns the
    /// status and body.
    async fn post_raw(&self, path: &str, body: &[u8], timestamp: u64) -> (u16, String) {
        self.post_signed(path, body, &self.sign_post(path, body, timestamp)).await
    }

    async fn post<T: Serialize, R: DeserializeOwned>(&self, path: &str, body: &T) -> R {
        let body = serde_json::to_vec(body).unwrap();
        let (status, text) = self.post_raw(path, &body, unix_seconds()).await;
        assert!(status < 300, "POST {path}: {status} {text}");
        if text.is_empty() {
            serde_json::from_str("null").unwrap()
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    async fn register(&self, slots: u32) -> PoolInfo {
        self.post("/workers/register", &Registration { slots, tee: false, version: "test".into() })
            .await
    }

    async fn ask(&self, free_slots: u32) -> Vec<Assignment> {
        let response: WorkResponse = self.post("/work", &WorkRequest { free_slots }).await;
        response.assignments
    }

    async fn heartbeat(&self, running: Vec<B256>) -> HeartbeatResponse {
        self.post("/workers/heartbeat", &Heartbeat { running, unhealthy: None }).await
    }

    /// A heartbeat saying the worker runs nothing and is `unhealthy` (or well).
    async fn health(&self, unhealthy: Option<Unhealthy>) -> HeartbeatResponse {
        self.post("/workers/heartbeat", &Heartbeat { running: vec![], unhealthy }).await
    }

    /// Hands `task_id` back for `cause`; the status and the JSON body (`null` when empty).
    async fn hand_back(&self, task_id: B256, cause: HandBackCause) -> (u16, serde_json::Value) {
        let body = serde_json::to_vec(&HandBack { task_id, cause }).unwrap();
        let (status, text) = self.post_raw(HAND_BACK_PATH, &body, unix_seconds()).await;
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"))
        };
        (status, json)
    }

    async fn report(&self, report: Report) {
        let () = self.post("/reports", &report).await;
    }

    /// Contributes `digest` on-chain with the assignment's authorization; returns the receipt.
    async fn contribute(
        &self,
        net: &TestNet,
        assignment: &Assignment,
        digest: B256,
    ) -> alloy::rpc::types::TransactionReceipt {
        let commitment = ResultCommitment::new(self.address(), assignment.task_id, digest);
        let (client, poco) = net.poco(&self.key);
        let call = poco.contribute(
            IPocoTypes::Deal::from(&assignment.deal),
            assignment.index,
            commitment.result_hash,
            commitment.result_seal,
            Address::ZERO,
            Bytes::new(),
            assignment.authorization.clone(),
        );
        client.send(call).await.expect("the scheduler's authorization is accepted")
    }

    async fn reveal(&self, net: &TestNet, task_id: B256, digest: B256) {
        let (client, poco) = net.poco(&self.key);
        client.send(poco.reveal(task_id, digest)).await.expect("reveal");
    }
}

/// A result store for `net`'s chain on 127.0.0.1: its URL, and what keeps it running.
async fn start_result_store(net: &TestNet) -> (String, (oneshot::Sender<()>, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = poco_results::Config::new(net.devnet().rpc_url(), net.deployment().poco);
    config.chain.from_block = net.deployment().block;
    config.storage = poco_results::StorageConfig::Local { root: dir.path().join("results") };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(poco_results::serve(config, listener, async {
        let _ = stopped.await;
    }));
    (url, (stop, dir))
}

/// The result archive honest test workers upload, and its result digest (their consensus).
fn result_archive() -> (Vec<u8>, B256) {
    let archive = poco_api::results::archive::pack_files([("result.txt", &b"42\n"[..])]).unwrap();
    let limits = poco_api::results::ArchiveLimits::default();
    let digest = poco_api::results::archive::inspect_archive(&archive, &limits).unwrap().digest;
    (archive, digest)
}

/// Waits (bounded: 30 s) until `condition` holds.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Polls (bounded: 30 s) until `probe` gives a value.
async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}
