//! The worker's main loop: register with the scheduler, pull work up to the free slots, run
//! each task through fetch, sandboxed execution, commitment, reveal and upload, and recover
//! the tasks in flight after a restart.
//!
//! A task is never dropped in silence. One whose files cannot be written before it is computed
//! (its state at receipt, its inputs, its output: a full disk, say) is handed back to the
//! scheduler at once with the cause, and the other tasks of the same reply are kept; the
//! scheduler gives it to the next worker. After the commitment is on-chain, a state that cannot
//! be saved is kept in memory and the task goes on (a restart resumes it from its last saved
//! stage: each step checks the chain first). Before asking for work, the worker checks the free
//! space of its data folder: below [`WorkerConfig::min_free_bytes`] it asks for none and says
//! it is unhealthy in its heartbeats, until space returns.

pub(crate) mod disk;
mod fetch;
mod heartbeat;
pub mod params;
pub mod python;
mod state;
mod tee;

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, Bytes, keccak256},
    providers::DynProvider,
    signers::local::PrivateKeySigner,
};
use poco_api::pool::{
    Action, ContributionMode, HandBack, HandBackCause, Heartbeat, PoolInfo, Registration, Report,
    SchedulerClient, Unhealthy,
};
use poco_api::results::{
    ResultStoreClient, TaskRef, UploadLimits,
    archive::{inspect_archive, pack_dir},
};
use poco_chain::{ChainClient, ClientConfig, files};
use poco_contracts::bindings::{AppRegistry, DatasetRegistry, IPoco::IPocoInstance, IPocoTypes};
use poco_fetch::Source;
use poco_primitives::{
    ResultCommitment,
    app_bundle::{self, AppBundle},
    result::{FAILURE_FILE, FailureRecord, result_digest_of_dir},
};
use tracing::{debug, info, warn};

pub use self::params::TaskParams;
use self::{
    fetch::Fetcher,
    state::{Stage, TaskDir, TaskState},
};
use crate::{
    Error, Result,
    exec::{ExecSpec, Executor, Limits, OutputQuota, PythonLaunch},
};

/// How to run a worker.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The URLs of the pool's scheduler instances (at least one): requests go to the one that
    /// answers as the active instance, and move to the next when it is unreachable or a
    /// standby.
    pub scheduler_urls: Vec<String>,
    /// The chain's JSON-RPC endpoint.
    pub rpc_url: String,
    /// The worker's wallet: signs requests and transactions, holds the stake.
    pub wallet: PrivateKeySigner,
    /// Where tasks in progress and the app cache live.
    pub data_dir: PathBuf,
    /// How many tasks are fetched and computed at once. A computed task waiting for the chain
    /// (its commitment mined, consensus, reveal, upload) leaves its slot to the next one; the
    /// scheduler lets a worker hold a few tasks per slot uncontributed, so the results kept on
    /// disk stay within that many times what the result store takes in one upload.
    pub slots: u32,
    /// Memory given to one app, in bytes.
    pub memory_bytes: u64,
    /// How often to ask for work when slots are free.
    pub work_poll: Duration,
    /// What the worker may fetch on behalf of others (apps, datasets, input files): public
    /// `http(s)` only by default.
    pub fetch: poco_fetch::FetchPolicy,
    /// Most fuel (instructions) an app gets, whatever its category allows.
    pub fuel_cap: Option<u64>,
    /// How to run TEE tasks; `None` (the default): the worker does not take them.
    pub tee: Option<crate::tee::TeeConfig>,
    /// What the result store takes in one upload (the store's defaults unless told): a result
    /// whose archive does not fit is recorded as a failure of the app instead of being
    /// committed, so the worker never commits to a result it cannot upload; the sandbox's
    /// output quota is derived from it.
    pub store_limits: UploadLimits,
    /// How many times in all an upload that failed for a reason that may pass (the store
    /// unreachable or busy) is tried before the worker gives up on it (default
    /// [`DEFAULT_UPLOAD_ATTEMPTS`]). It protects the worker and the store from retrying
    /// forever; a refusal that cannot change (a 4xx such as 413 or 400) is never retried.
    pub upload_attempts: u32,
    /// The wait after the first failed upload, doubled after each further one (default
    /// [`DEFAULT_UPLOAD_BACKOFF`]).
    pub upload_backoff: Duration,
    /// How many results the worker uploads at once (default [`DEFAULT_CONCURRENT_UPLOADS`]).
    /// The others wait their turn, which is not a failed attempt: a burst of results (a block
    /// that finalized many tasks at once) does not meet the store's own bound on concurrent
    /// uploads as a wall of refusals that use up every attempt.
    pub concurrent_uploads: u32,
    /// Where the worker fetches the parts of a Python runtime it does not have yet: base
    /// URLs, each part at `<base>/<sha256 hex>`, tried in order under the fetch policy. A
    /// part is used only with the sha256 the app names. Empty (the default): only what the
    /// worker's cache already holds.
    pub runtime_sources: Vec<String>,
    /// The least free space, in bytes, the data folder must have for the worker to ask for
    /// work (default [`DEFAULT_MIN_FREE_BYTES`]). Below it, the worker asks for none, says it
    /// is unhealthy in its heartbeats (the scheduler gives it nothing meanwhile) and logs it,
    /// until space returns; the tasks it holds go on. 0 turns the check off.
    pub min_free_bytes: u64,
}

/// The default [`WorkerConfig::upload_attempts`].
pub const DEFAULT_UPLOAD_ATTEMPTS: u32 = 5;
/// The default [`WorkerConfig::concurrent_uploads`].
pub const DEFAULT_CONCURRENT_UPLOADS: u32 = 2;
/// The default [`WorkerConfig::min_free_bytes`]: 64 MiB, room for one result as large as the
/// result store takes in one upload by default (a task's output is bounded below that).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;
/// How little free space in the data folder, after an app's run, makes the run untrusted: the
/// app may have met a full disk (see `check_room_after_run`).
const FULL_DISK_MARGIN: u64 = 1 << 20;
/// The default [`WorkerConfig::upload_backoff`].
pub const DEFAULT_UPLOAD_BACKOFF: Duration = Duration::from_secs(2);
/// The longest wait between two upload attempts.
const MAX_UPLOAD_BACKOFF: Duration = Duration::from_secs(120);

/// The wait after the `failures`-th failed upload of `task_id`: `first` doubled after each
/// further failure (at most [`MAX_UPLOAD_BACKOFF`]), then shortened by up to a half, by an
/// amount the task id picks. Results that failed together (a store busy with a burst of them)
/// are tried again spread over that half, not all at the same instant.
fn upload_backoff(first: Duration, failures: u32, task_id: B256) -> Duration {
    let doubled = first.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let full = doubled.min(MAX_UPLOAD_BACKOFF);
    let spread = f64::from(task_id[failures as usize % 32]) / 255.0;
    full.mul_f64(1.0 - spread / 2.0)
}

impl WorkerConfig {
    /// A worker with the defaults: 2 slots, 512 MiB per app, asking for work every 200 ms
    /// while its data folder has 64 MiB free, the default fetch policy (public `http(s)` only,
    /// at most 256 MiB per file).
    pub fn new(
        scheduler_url: impl Into<String>,
        rpc_url: impl Into<String>,
        wallet: PrivateKeySigner,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            scheduler_urls: vec![scheduler_url.into()],
            rpc_url: rpc_url.into(),
            wallet,
            data_dir: data_dir.into(),
            slots: 2,
            memory_bytes: 512 << 20,
            work_poll: Duration::from_millis(200),
            fetch: poco_fetch::FetchPolicy::default(),
            fuel_cap: None,
            tee: None,
            store_limits: UploadLimits::default(),
            upload_attempts: DEFAULT_UPLOAD_ATTEMPTS,
            upload_backoff: DEFAULT_UPLOAD_BACKOFF,
            concurrent_uploads: DEFAULT_CONCURRENT_UPLOADS,
            runtime_sources: Vec::new(),
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
        }
    }
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("scheduler_urls", &self.scheduler_urls)
            .field("worker", &self.wallet.address())
            .field("data_dir", &self.data_dir)
            .field("slots", &self.slots)
            .field("min_free_bytes", &self.min_free_bytes)
            .field("fetch", &self.fetch)
            .field("tee", &self.tee)
            .finish_non_exhaustive()
    }
}

/// Runs a worker with `executor` until `shutdown` resolves. Tasks in flight stay on disk and
/// are resumed by the next run.
pub async fn run(
    config: WorkerConfig,
    executor: Arc<dyn Executor>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let worker = Worker::start(config, executor).await?;
    let _jobs = AbortJobs(worker.clone());
    worker.serve(shutdown).await
}

/// Aborts the worker's background steps when its run ends or is dropped: nothing of a stopped
/// worker keeps running (what was in flight resumes from disk at the next start).
struct AbortJobs(Arc<Worker>);

impl Drop for AbortJobs {
    fn drop(&mut self) {
        self.0.jobs.lock().expect("lock").abort_all();
    }
}

struct Worker {
    config: WorkerConfig,
    pool: PoolInfo,
    scheduler: SchedulerClient,
    chain: ChainClient,
    poco: IPocoInstance<DynProvider>,
    apps: Address,
    datasets: Address,
    results: ResultStoreClient,
    executor: Arc<dyn Executor>,
    fetcher: Fetcher,
    python: python::PythonRuntimes,
    tasks_dir: PathBuf,
    tasks: Mutex<HashMap<B256, TaskState>>,
    busy: Mutex<HashSet<B256>>,
    jobs: Mutex<tokio::task::JoinSet<()>>,
    /// The failed upload attempts of each task, and when the next one may start.
    upload_failures: Mutex<HashMap<B256, (u32, tokio::time::Instant)>>,
    /// The uploads that may run at once ([`WorkerConfig::concurrent_uploads`]).
    uploads: tokio::sync::Semaphore,
    /// Why the worker takes no new work, as last checked; `None` when healthy.
    health: Mutex<Option<Unhealthy>>,
}

impl Worker {
    async fn start(config: WorkerConfig, executor: Arc<dyn Executor>) -> Result<Arc<Self>> {
        let scheduler = SchedulerClient::with_urls(&config.scheduler_urls, config.wallet.clone());
        let pool = scheduler
            .register(&Registration {
                slots: config.slots,
                tee: config.tee.is_some(),
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .await?;
        let chain = ChainClient::connect(
            &config.rpc_url,
            Some(config.wallet.clone()),
            ClientConfig::default(),
        )
        .await?;
        let poco = chain.poco(pool.poco);
        let apps = poco.appregistry().call().await.map_err(poco_chain::Error::from)?;
        let datasets = poco.datasetregistry().call().await.map_err(poco_chain::Error::from)?;
        let results = ResultStoreClient::new(&pool.result_store)?;
        files::private_dir(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
        let tasks_dir = config.data_dir.join("tasks");
        for widening in config.fetch.widenings() {
            warn!(%widening, "the fetch policy is wider than the default");
        }
        let fetcher = Fetcher::new(config.data_dir.join("cache"), config.fetch.clone());
        let config_sources = config.runtime_sources.clone();
        let config_data_dir = config.data_dir.clone();
        let recovered = state::load_all(&tasks_dir)?;
        if let Some(tee) = &config.tee {
            tee::check_config(tee, &config.data_dir)?;
        }
        info!(
            worker = %config.wallet.address(),
            workerpool = %pool.workerpool,
            scheduler = %scheduler.url(),
            recovered = recovered.len(),
            "worker registered"
        );
        let worker = Arc::new(Self {
            tasks: Mutex::new(recovered.into_iter().map(|s| (s.assignment.task_id, s)).collect()),
            busy: Mutex::default(),
            jobs: Mutex::default(),
            upload_failures: Mutex::default(),
            uploads: tokio::sync::Semaphore::new(config.concurrent_uploads.max(1) as usize),
            health: Mutex::default(),
            config,
            pool,
            scheduler,
            chain,
            poco,
            apps,
            datasets,
            results,
            executor,
            python: python::PythonRuntimes::new(
                fetcher.clone(),
                config_sources,
                config_data_dir.join("runtimes"),
            ),
            fetcher,
            tasks_dir,
        });
        let recovered: Vec<B256> = worker.tasks.lock().expect("lock").keys().copied().collect();
        for task_id in recovered {
            worker.spawn_advance(task_id);
        }
        Ok(worker)
    }

    async fn serve(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let heartbeat = heartbeat::heartbeat_period(self.pool.heartbeat_interval_secs);
        let mut beat = tokio::time::interval(heartbeat);
        let mut ask = tokio::time::interval(self.config.work_poll);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = beat.tick() => {
                    if let Err(error) = self.heartbeat().await {
                        warn!(%error, "heartbeat failed");
                    }
                    self.sweep();
                }
                _ = ask.tick() => {
                    if let Err(error) = self.ask_for_work().await {
                        warn!(%error, "asking for work failed");
                    }
                }
            }
        }
    }

    async fn heartbeat(self: &Arc<Self>) -> Result<()> {
        let running: Vec<B256> = self.tasks.lock().expect("lock").keys().copied().collect();
        let unhealthy = self.health.lock().expect("lock").clone();
        let response = self.scheduler.heartbeat(&Heartbeat { running, unhealthy }).await?;
        for action in response.actions {
            match action {
                Action::Reveal { task_id } => self.spawn_step(task_id, Step::Reveal),
                Action::Upload { task_id, ticket } => {
                    self.spawn_step(task_id, Step::Upload(ticket))
                }
                Action::Abort { task_id, reason } => {
                    // A step in progress finishes first: a trust-1 task is over as soon as
                    // its contributeAndFinalize is mined, but its result is not uploaded yet.
                    // The task stays in the running list, so the next heartbeat aborts it, once
                    // its result is uploaded (a failed upload is retried by the sweep).
                    let owed = self.state(task_id).is_some_and(|s| owes_upload(&s));
                    if owed || self.busy.lock().expect("lock").contains(&task_id) {
                        debug!(task = %task_id, %reason, "abort deferred: step or upload pending");
                        continue;
                    }
                    debug!(task = %task_id, %reason, "task aborted");
                    self.forget(task_id);
                }
            }
        }
        Ok(())
    }

    async fn ask_for_work(self: &Arc<Self>) -> Result<()> {
        if self.check_health() {
            // The scheduler hears of it at once (it gives an unhealthy worker nothing).
            if let Err(error) = self.heartbeat().await {
                warn!(%error, "heartbeat failed");
            }
        }
        if self.health.lock().expect("lock").is_some() {
            return Ok(());
        }
        // A slot is taken while a task is fetched and computed. A computed task only waits for
        // the chain (its commitment mined, then consensus, reveal, upload) and leaves its slot
        // to the next one: waiting on blocks would otherwise bound a worker to one task per
        // slot per block. The scheduler bounds the tasks a worker holds uncontributed. Holding
        // the slot until consensus would deadlock replicated deals: every worker waiting on a
        // consensus that needs another worker's slot.
        let computing = self
            .tasks
            .lock()
            .expect("lock")
            .values()
            .filter(|task| matches!(task.stage, Stage::Received))
            .count() as u32;
        let free = self.config.slots.saturating_sub(computing);
        if free == 0 {
            return Ok(());
        }
        for assignment in self.scheduler.work(free).await?.assignments {
            let task_id = assignment.task_id;
            if self.tasks.lock().expect("lock").contains_key(&task_id) {
                debug!(task = %task_id, "assigned a task the worker holds already: kept as it is");
                continue;
            }
            let state = TaskState { assignment, stage: Stage::Received, revealed: false };
            let dir = TaskDir::new(&self.tasks_dir, task_id);
            if let Err(error) = dir.save(&state) {
                // The reply's other tasks are still taken; this one goes back at once.
                warn!(task = %task_id, %error, "the task cannot be saved: handing it back");
                if let Err(error) = dir.remove() {
                    debug!(task = %task_id, %error, "could not remove the task's files");
                }
                let cause = self.hand_back_cause(&error);
                let worker = self.clone();
                self.jobs
                    .lock()
                    .expect("lock")
                    .spawn(async move { worker.hand_back(task_id, cause).await });
                continue;
            }
            self.tasks.lock().expect("lock").insert(task_id, state);
            info!(task = %task_id, "task received");
            self.spawn_advance(task_id);
        }
        Ok(())
    }

    /// Checks the free space of the data folder against [`WorkerConfig::min_free_bytes`] and
    /// records the worker's health; logs a change. Returns whether it changed.
    fn check_health(&self) -> bool {
        let min_free_bytes = self.config.min_free_bytes;
        let now = match disk::free_bytes(&self.config.data_dir) {
            Ok(free_bytes) if free_bytes < min_free_bytes => {
                Some(Unhealthy::LowDisk { free_bytes, min_free_bytes })
            }
            Ok(_) => None,
            Err(error) => {
                // Not a reason to stop asking: a write that fails hands its task back.
                debug!(%error, "the data folder's free space cannot be read");
                None
            }
        };
        let mut health = self.health.lock().expect("lock");
        let changed = health.is_some() != now.is_some();
        match &now {
            Some(unhealthy) if changed => warn!(
                data_dir = %self.config.data_dir.display(), %unhealthy,
                "the worker is unhealthy: no new work until space returns"
            ),
            None if changed => info!(
                data_dir = %self.config.data_dir.display(),
                "space is back in the data folder: asking for work again"
            ),
            _ => {}
        }
        *health = now;
        changed
    }

    /// Refuses the outcome of a run that ended with the data folder (nearly) full: less than
    /// [`FULL_DISK_MARGIN`] (or [`WorkerConfig::min_free_bytes`], if smaller) free. A write of
    /// the app may have been refused for lack of room, so its output may not be what other
    /// replicas get: it is not committed, and the task is handed back.
    fn check_room_after_run(&self) -> Result<()> {
        let margin = self.config.min_free_bytes.min(FULL_DISK_MARGIN);
        match disk::free_bytes(&self.config.data_dir) {
            Ok(free_bytes) if free_bytes < margin => {
                Err(Error::DiskFull { path: self.config.data_dir.clone(), free_bytes })
            }
            _ => Ok(()),
        }
    }

    /// What to tell the scheduler when a task's files failed with `error`.
    fn hand_back_cause(&self, error: &Error) -> HandBackCause {
        let low = disk::free_bytes(&self.config.data_dir)
            .is_ok_and(|free| free < self.config.min_free_bytes.max(1));
        if error.is_out_of_space() || low {
            HandBackCause::DiskFull
        } else {
            HandBackCause::StorageFailed
        }
    }

    /// Hands a task the worker cannot keep back to the scheduler, so that another worker takes
    /// it at once. If the scheduler does not take it back (one from before hand-backs, or a
    /// refusal), the task is reported failed instead, which frees it as well; only if that
    /// fails too does the task wait for its replica to time out, which the log says.
    async fn hand_back(&self, task_id: B256, cause: HandBackCause) {
        let refusal = match self.scheduler.hand_back(&HandBack { task_id, cause }).await {
            Ok(()) => {
                info!(task = %task_id, %cause, "task handed back to the scheduler");
                return;
            }
            Err(error) => error,
        };
        warn!(task = %task_id, %cause, error = %refusal, "hand-back refused: reporting failure");
        let reason = format!("{cause}: another worker takes the task");
        if let Err(error) = self.scheduler.report(&Report::Failed { task_id, reason }).await {
            warn!(
                task = %task_id, %error,
                "the task could not be given back: it goes elsewhere once its replica times out"
            );
        }
    }

    fn forget(&self, task_id: B256) {
        self.tasks.lock().expect("lock").remove(&task_id);
        if let Err(error) = TaskDir::new(&self.tasks_dir, task_id).remove() {
            warn!(task = %task_id, %error, "could not remove the task's files");
        }
    }

    fn state(&self, task_id: B256) -> Option<TaskState> {
        self.tasks.lock().expect("lock").get(&task_id).cloned()
    }

    fn save(&self, state: TaskState) -> Result<()> {
        let task_id = state.assignment.task_id;
        TaskDir::new(&self.tasks_dir, task_id).save(&state)?;
        self.tasks.lock().expect("lock").insert(task_id, state);
        Ok(())
    }

    /// Records a stage reached on-chain (a commitment, a reveal, an upload): in memory in any
    /// case, since the task must go on (dropping it would lose the stake), and on disk if it
    /// can be written; otherwise a restart resumes the task from its last saved stage, each
    /// step checking the chain before it acts.
    fn record(&self, state: TaskState) {
        let task_id = state.assignment.task_id;
        if let Err(error) = TaskDir::new(&self.tasks_dir, task_id).save(&state) {
            warn!(
                task = %task_id, %error, stage = ?state.stage,
                "the task's progress cannot be saved: it goes on from memory"
            );
        }
        self.tasks.lock().expect("lock").insert(task_id, state);
    }

    /// Moves a task as far as it can go on its own: compute, then commit.
    fn spawn_advance(self: &Arc<Self>, task_id: B256) {
        self.spawn_step(task_id, Step::Advance);
    }

    /// Runs one step of a task in the background, one step per task at a time. A step that
    /// fails for good is reported to the scheduler and the task forgotten.
    fn spawn_step(self: &Arc<Self>, task_id: B256, step: Step) {
        if !self.busy.lock().expect("lock").insert(task_id) {
            return;
        }
        let worker = self.clone();
        let mut jobs = self.jobs.lock().expect("lock");
        while jobs.try_join_next().is_some() {}
        jobs.spawn(async move {
            let outcome = worker.step(task_id, &step).await;
            // The task stays busy until its failure is handled: a sweep or a heartbeat in
            // between would otherwise start the same step again (upload a refused result twice,
            // or act on a task about to be forgotten).
            if let Err(error) = outcome {
                let transient = matches!(&error, Error::Chain(e) if e.is_transient())
                    || matches!(&error, Error::Sms(e) if e.is_transient())
                    || matches!(error, Error::Scheduler(_) | Error::ResultStore(_));
                let received = worker.state(task_id).is_some_and(|s| s.stage == Stage::Received);
                if transient {
                    // Tried again: by the next heartbeat's sweep, or the scheduler's next ask.
                    warn!(task = %task_id, %error, "task step failed; will retry");
                } else if error.is_storage() && received {
                    // Nothing computed nor committed: the task goes back to the scheduler, for
                    // another worker (or this one, once its storage works again).
                    warn!(task = %task_id, %error, "the task's storage failed: handing it back");
                    worker.hand_back(task_id, worker.hand_back_cause(&error)).await;
                    worker.forget(task_id);
                } else {
                    warn!(task = %task_id, %error, "task failed");
                    let reason = error.reported();
                    let _ = worker.scheduler.report(&Report::Failed { task_id, reason }).await;
                    worker.forget(task_id);
                }
            }
            worker.busy.lock().expect("lock").remove(&task_id);
        });
    }

    /// Resumes the tasks that stopped short of their commitment, or of the upload of a
    /// trust-1 result (after a transient failure).
    fn sweep(self: &Arc<Self>) {
        let idle: Vec<B256> = {
            let tasks = self.tasks.lock().expect("lock");
            let busy = self.busy.lock().expect("lock");
            tasks
                .values()
                .filter(|state| {
                    matches!(state.stage, Stage::Received | Stage::Computed { .. })
                        || owes_upload(state)
                })
                .map(|state| state.assignment.task_id)
                .filter(|task_id| !busy.contains(task_id))
                .collect()
        };
        for task_id in idle {
            self.spawn_advance(task_id);
        }
    }

    async fn step(&self, task_id: B256, step: &Step) -> Result<()> {
        let Some(state) = self.state(task_id) else { return Ok(()) };
        match step {
            Step::Advance => {
                if owes_upload(&state)
                    && let Some(ticket) = state.assignment.upload_ticket.clone()
                {
                    return self.upload(state, &ticket).await;
                }
                let state = match state.stage {
                    Stage::Received => self.compute(state).await?,
                    _ => state,
                };
                if matches!(state.stage, Stage::Computed { .. }) {
                    self.commit(state).await?;
                }
                Ok(())
            }
            Step::Reveal => self.reveal(state).await,
            Step::Upload(ticket) => self.upload(state, ticket).await,
        }
    }

    // ------------------------------------------------------------------------ the steps

    /// Fetches, runs and digests the task.
    async fn compute(&self, mut state: TaskState) -> Result<TaskState> {
        if state.assignment.deal.is_tee() {
            return self.compute_tee(state).await;
        }
        let assignment = &state.assignment;
        let deal = &assignment.deal;
        let task_id = assignment.task_id;
        let on_chain =
            self.poco.viewDealHash(deal.id()).call().await.map_err(poco_chain::Error::from)?;
        if on_chain != deal.hash() || keccak256(assignment.params.as_bytes()) != deal.paramsHash {
            return Err(Error::ForgedDeal(task_id));
        }
        let dir = TaskDir::new(&self.tasks_dir, task_id);
        dir.reset_io()?;

        let apps = AppRegistry::new(self.apps, self.chain.provider().clone());
        let app = apps.viewApp(deal.app).call().await.map_err(poco_chain::Error::from)?;
        let url = String::from_utf8_lossy(&app.multiaddr).into_owned();
        let module = self.fetcher.fetch_checked(Source::App, &url, app.checksum).await?;
        let program = self.program(module, &dir).await?;

        let mut dataset_name = None;
        if !deal.dataset.is_zero() {
            let datasets = DatasetRegistry::new(self.datasets, self.chain.provider().clone());
            let dataset =
                datasets.viewDataset(deal.dataset).call().await.map_err(poco_chain::Error::from)?;
            let url = String::from_utf8_lossy(&dataset.multiaddr).into_owned();
            let bytes = self.fetcher.fetch_checked(Source::Dataset, &url, dataset.checksum).await?;
            let name = format!("{:#x}", deal.dataset);
            write_file(&dir.input().join(&name), &bytes)?;
            dataset_name = Some(name);
        }
        let prepared = match program {
            Err(failure) => Err(failure),
            Ok(program) => self
                .prepare_inputs(task_id, &assignment.params, &dir.input())
                .await?
                .map(|inputs| (program, inputs)),
        };
        let failure = match prepared {
            Err(failure) => Some(failure),
            Ok(((module, python), (params, input_names))) => {
                let mut spec = task_spec(
                    module,
                    &dir.input(),
                    &dir.output(),
                    deal,
                    task_id,
                    &params,
                    dataset_name,
                    &input_names,
                )?
                .with_limits(self.limits(deal));
                spec.python = python;
                let outcome = self.executor.execute(spec).await?;
                self.check_room_after_run()?;
                info!(task = %task_id, status = %outcome.status, fuel = outcome.fuel_consumed, "app ran");
                if !outcome.status.is_deterministic() {
                    // What the app wrote stays in this worker's log: a run that is not
                    // contributed is refunded, and the requester must not get its output
                    // for free through the scheduler's task log.
                    warn!(task = %task_id, stderr = %tail(&outcome.stderr.to_string_lossy()), "the app {}", outcome.status);
                    return Err(Error::NoAgreedResult(format!("the app {}", outcome.status)));
                }
                (!outcome.status.success()).then(|| {
                    FailureRecord::run(
                        outcome.status.to_string(),
                        outcome.status.exit_code(),
                        &outcome.stderr.to_string_lossy(),
                    )
                })
            }
        };
        if let Some(failure) = failure {
            // A failure of the request is a result like any other: every replica fails the
            // same way, and the requester pays for it as for any outcome.
            info!(task = %task_id, stage = ?failure.stage, cause = %failure.cause, "the task failed");
            write_file(&dir.output().join(FAILURE_FILE), failure.to_json().as_bytes())?;
        }
        if deal.callback.is_zero()
            && let Some(failure) = self.check_uploadable(task_id, &dir.output())?
        {
            write_file(&dir.output().join(FAILURE_FILE), failure.to_json().as_bytes())?;
        }
        let callback_data =
            if deal.callback.is_zero() { Bytes::new() } else { callback_data(&dir.output()) };
        let digest = if deal.callback.is_zero() {
            result_digest_of_dir(&dir.output())?
        } else {
            keccak256(&callback_data)
        };
        state.stage = Stage::Computed { digest, callback_data, enclave_sign: Bytes::new() };
        self.save(state.clone())?;
        let result_hash = ResultCommitment::new(self.address(), task_id, digest).result_hash;
        self.scheduler.report(&Report::Computed { task_id, result_hash }).await?;
        Ok(state)
    }

    /// What runs the app `module` (the registered file): the module itself, or for a Python app
    /// bundle the runtime it names, with its code laid out in the task's folder. A bundle
    /// that does not decode is the app's own failure, the same on every worker: it comes back
    /// as the failure to record.
    async fn program(
        &self,
        module: Vec<u8>,
        dir: &TaskDir,
    ) -> Result<std::result::Result<(Arc<[u8]>, Option<PythonLaunch>), FailureRecord>> {
        if !app_bundle::is_bundle(&module) {
            return Ok(Ok((module.into(), None)));
        }
        let bundle = match AppBundle::decode(&module) {
            Ok(bundle) => bundle,
            Err(error) => return Ok(Err(FailureRecord::run(format!("{error}"), None, ""))),
        };
        let (module, launch) = self.python.prepare(&bundle, &dir.app()).await?;
        Ok(Ok((module, Some(launch))))
    }

    /// Reads the request's parameters and fetches its input files into `input`; returns the
    /// parameters and the files' names there. A failure that is the request's own (parameters
    /// that do not parse, an input URL refused by the fetch policy, missing, too large or
    /// malformed) is the task's outcome, the same on every worker: it comes back as the
    /// failure to record, and nothing of a refused URL's target reaches the app. A failure of
    /// the worker's own (its network) is an error: the task is not contributed, and goes to
    /// another worker.
    async fn prepare_inputs(
        &self,
        task_id: B256,
        params: &str,
        input: &std::path::Path,
    ) -> Result<std::result::Result<(TaskParams, Vec<String>), FailureRecord>> {
        let params = match TaskParams::parse(params).and_then(|p| p.args().map(|_| p)) {
            Ok(params) => params,
            Err(error) => {
                warn!(task = %task_id, %error, "the request's parameters are malformed");
                let cause = format!("the request's parameters: {error}");
                return Ok(Err(FailureRecord::input(cause)));
            }
        };
        let mut names = Vec::new();
        for (i, url) in params.iexec_input_files.iter().enumerate() {
            match self.fetcher.fetch_input(url).await {
                Ok(bytes) => {
                    let name = input_file_name(url, i);
                    write_file(&input.join(&name), &bytes)?;
                    names.push(name);
                }
                Err(error) if error.is_request_fault() => {
                    warn!(task = %task_id, %error, "an input file of the request cannot be fetched");
                    let cause = format!("input file {}: {}", i + 1, error.cause());
                    return Ok(Err(FailureRecord::input(cause)));
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Ok((params, names)))
    }

    /// Commits the result on-chain: `contribute`, or `contributeAndFinalize` then upload.
    async fn commit(&self, mut state: TaskState) -> Result<()> {
        let Stage::Computed { digest, callback_data, enclave_sign } = state.stage.clone() else {
            return Ok(());
        };
        let assignment = state.assignment.clone();
        let deal = IPocoTypes::Deal::from(&assignment.deal);
        let task_id = assignment.task_id;
        match assignment.mode {
            ContributionMode::ContributeAndFinalize => {
                let task =
                    self.poco.viewTask(task_id).call().await.map_err(poco_chain::Error::from)?;
                if task.status != 3 {
                    let call = self.poco.contributeAndFinalize(
                        deal,
                        assignment.index,
                        digest,
                        Bytes::from(assignment.results_location.clone().into_bytes()),
                        callback_data.clone(),
                        assignment.enclave_challenge,
                        enclave_sign.clone(),
                        assignment.authorization.clone(),
                    );
                    self.chain.send(call).await?;
                    info!(task = %task_id, "contributed and finalized");
                }
                state.stage = Stage::Committed { digest, callback_data };
                state.revealed = true;
                self.record(state.clone());
                if let Some(ticket) = assignment.upload_ticket.clone() {
                    self.upload(state, &ticket).await?;
                }
            }
            ContributionMode::Contribute => {
                let mine = self
                    .poco
                    .viewContribution(task_id, self.address())
                    .call()
                    .await
                    .map_err(poco_chain::Error::from)?;
                if mine.status == 0 {
                    let balance = self
                        .poco
                        .balanceOf(self.address())
                        .call()
                        .await
                        .map_err(poco_chain::Error::from)?;
                    if balance < assignment.deal.workerStake {
                        return Err(Error::InsufficientStake {
                            balance: balance.to_string(),
                            stake: assignment.deal.workerStake.to_string(),
                        });
                    }
                    let commitment = ResultCommitment::new(self.address(), task_id, digest);
                    let call = self.poco.contribute(
                        deal,
                        assignment.index,
                        commitment.result_hash,
                        commitment.result_seal,
                        assignment.enclave_challenge,
                        enclave_sign.clone(),
                        assignment.authorization.clone(),
                    );
                    self.chain.send(call).await?;
                    info!(task = %task_id, "contributed");
                }
                state.stage = Stage::Committed { digest, callback_data };
                self.record(state);
            }
        }
        Ok(())
    }

    async fn reveal(&self, mut state: TaskState) -> Result<()> {
        let Stage::Committed { digest, .. } = state.stage else { return Ok(()) };
        if state.revealed {
            return Ok(());
        }
        let task_id = state.assignment.task_id;
        let mine = self
            .poco
            .viewContribution(task_id, self.address())
            .call()
            .await
            .map_err(poco_chain::Error::from)?;
        if mine.status == 1 {
            self.chain.send(self.poco.reveal(task_id, digest)).await?;
            info!(task = %task_id, "revealed");
        }
        state.revealed = true;
        self.record(state);
        Ok(())
    }

    /// Packs the output as it will be uploaded and checks it against what the store takes,
    /// before committing to it: a result that does not fit is the app's failure (the same on
    /// every worker), its output removed, and the failure record is the result.
    fn check_uploadable(
        &self,
        task_id: B256,
        output: &std::path::Path,
    ) -> Result<Option<FailureRecord>> {
        let limits = &self.config.store_limits;
        let cause = match pack_dir(output) {
            Err(error) => format!("its output cannot be packed into a result archive: {error}"),
            Ok(archive) if archive.len() as u64 > limits.max_body_bytes => format!(
                "its result archive is {} bytes, over the result store's {} bytes",
                archive.len(),
                limits.max_body_bytes
            ),
            Ok(archive) => match inspect_archive(&archive, &limits.archive) {
                Ok(_) => return Ok(None),
                Err(error) => format!("the result store would refuse its result: {error}"),
            },
        };
        warn!(task = %task_id, %cause, "the app's result cannot be uploaded");
        TaskDir::clear_dir(output)?;
        Ok(Some(FailureRecord::run(cause, None, "")))
    }

    /// Uploads the result, giving up for good on a refusal that cannot change and after
    /// [`WorkerConfig::upload_attempts`] failures that could; the attempts after a failure
    /// wait a doubling backoff, spread by the task (see [`upload_backoff`]). At most
    /// [`WorkerConfig::concurrent_uploads`] run at once; the others wait here.
    async fn upload(&self, state: TaskState, ticket: &Bytes) -> Result<()> {
        let task_id = state.assignment.task_id;
        if let Some((_, not_before)) = self.upload_failures.lock().expect("lock").get(&task_id)
            && tokio::time::Instant::now() < *not_before
        {
            return Ok(());
        }
        let attempt = {
            let _turn = self.uploads.acquire().await.expect("the semaphore is never closed");
            self.try_upload(state, ticket).await
        };
        let error = match attempt {
            Ok(()) => {
                self.upload_failures.lock().expect("lock").remove(&task_id);
                return Ok(());
            }
            Err(Error::ResultStore(error)) => error,
            Err(other) => return Err(other),
        };
        if !error.is_transient() {
            warn!(task = %task_id, %error, "the result store refused the result: not retried");
            self.upload_failures.lock().expect("lock").remove(&task_id);
            return Err(Error::UploadAbandoned(format!("the result store refused it: {error}")));
        }
        let mut failures = self.upload_failures.lock().expect("lock");
        let attempts = failures.get(&task_id).map_or(0, |(attempts, _)| *attempts) + 1;
        if attempts >= self.config.upload_attempts {
            failures.remove(&task_id);
            warn!(task = %task_id, %error, attempts, "the upload failed too many times: given up");
            return Err(Error::UploadAbandoned(format!(
                "{attempts} attempts failed, the last one: {error}"
            )));
        }
        let backoff = upload_backoff(self.config.upload_backoff, attempts, task_id);
        failures.insert(task_id, (attempts, tokio::time::Instant::now() + backoff));
        warn!(task = %task_id, %error, attempts, ?backoff, "the upload failed; will retry");
        Err(Error::ResultStore(error))
    }

    async fn try_upload(&self, mut state: TaskState, ticket: &Bytes) -> Result<()> {
        let Stage::Committed { callback_data, .. } = state.stage.clone() else { return Ok(()) };
        let assignment = &state.assignment;
        let task_id = assignment.task_id;
        let dir = TaskDir::new(&self.tasks_dir, task_id);
        // A deal with a callback gets its result on-chain, through the callback: nothing to
        // upload, the scheduler finalizes with the callback data.
        let location = if assignment.deal.callback.is_zero() {
            let archive = pack_dir(&dir.output())?;
            let task = TaskRef { deal_id: assignment.deal.id(), index: assignment.index };
            match self.results.upload(task, archive.into(), ticket, &self.config.wallet).await {
                Ok(_) => info!(task = %task_id, "result uploaded"),
                // Uploaded before a restart: the store keeps the first upload. (Its other
                // conflicts, a task not ready or an upload in progress, are retried: reporting
                // them as uploaded would name a location where nothing is stored.)
                Err(error) if error.is_already_stored() => {}
                Err(error) => return Err(error.into()),
            }
            assignment.results_location.clone()
        } else {
            String::new()
        };
        state.stage = Stage::Uploaded;
        self.record(state);
        self.scheduler.report(&Report::Uploaded { task_id, location, callback_data }).await?;
        Ok(())
    }

    fn address(&self) -> Address {
        self.config.wallet.address()
    }

    /// The limits of a run: fuel for the category's time (capped), the configured memory.
    fn limits(&self, deal: &poco_primitives::Deal) -> Limits {
        let limits = Limits::for_max_time(Duration::from_secs(deal.timeref.saturating_to()))
            .with_memory_bytes(self.config.memory_bytes)
            .with_files(OutputQuota::for_store(&self.config.store_limits));
        match self.config.fuel_cap {
            Some(cap) if cap < limits.fuel => limits.with_fuel(cap),
            _ => limits,
        }
    }
}

/// The sandbox run of a task, exactly as every worker makes it so that replicas agree: the
/// arguments from the request's `iexec_args`, the environment (`IEXEC_TASK_ID`, the dataset
/// and input file names), the random seed (the task id) and the clock (the deal's start
/// time). Limits are left at their defaults.
#[allow(clippy::too_many_arguments)]
pub fn task_spec(
    module: impl Into<Arc<[u8]>>,
    input_dir: &std::path::Path,
    output_dir: &std::path::Path,
    deal: &poco_primitives::Deal,
    task_id: B256,
    params: &TaskParams,
    dataset_name: Option<String>,
    input_names: &[String],
) -> Result<ExecSpec> {
    let mut spec = ExecSpec::new(module, input_dir, output_dir)
        .with_args(params.args()?)
        .with_env("IEXEC_TASK_ID", format!("{task_id:#x}"))
        .with_env("IEXEC_INPUT_FILES_NUMBER", input_names.len().to_string())
        .with_seed(task_id.0)
        .with_clock(Duration::from_secs(deal.startTime.saturating_to()));
    if let Some(name) = dataset_name {
        spec = spec.with_env("IEXEC_DATASET_FILENAME", name);
    }
    for (i, name) in input_names.iter().enumerate() {
        spec = spec.with_env(format!("IEXEC_INPUT_FILE_NAME_{}", i + 1), name.clone());
    }
    Ok(spec)
}

/// Whether a task still owes its result to the store: committed with
/// `contributeAndFinalize` (so already finalized), its upload not done.
fn owes_upload(state: &TaskState) -> bool {
    matches!(state.stage, Stage::Committed { .. })
        && state.assignment.mode == ContributionMode::ContributeAndFinalize
        && state.assignment.upload_ticket.is_some()
}

/// What a background step does.
enum Step {
    Advance,
    Reveal,
    Upload(Bytes),
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    files::write_private(path, bytes).map_err(|e| Error::io(path, e))
}

/// The name an input file gets in `/iexec_in`: the last segment of its URL, or `input-<n>`.
fn input_file_name(url: &str, index: usize) -> String {
    url.rsplit('/')
        .next()
        .filter(|name| !name.is_empty() && !name.starts_with('.') && name.len() < 128)
        .map(|name| {
            name.chars()
                .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
                .collect()
        })
        .unwrap_or_else(|| format!("input-{}", index + 1))
}

/// The callback data an app left in `computed.json` (`"callback-data": "0x..."`); empty if
/// none.
fn callback_data(output: &std::path::Path) -> Bytes {
    std::fs::read(output.join("computed.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|json| json.get("callback-data")?.as_str()?.parse::<Bytes>().ok())
        .unwrap_or_default()
}

fn tail(text: &str) -> String {
    let start = text.len().saturating_sub(400);
    text[text.floor_char_boundary(start)..].trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_backoff_doubles_within_its_cap_and_is_spread_by_the_task() {
        let first = Duration::from_secs(2);
        for task in 0..=255u8 {
            let task_id = B256::repeat_byte(task);
            for failures in 1..=12 {
                let full = first.saturating_mul(1 << (failures - 1)).min(MAX_UPLOAD_BACKOFF);
                let wait = upload_backoff(first, failures, task_id);
                assert!(wait <= full && wait >= full / 2, "{failures} failures: {wait:?}");
            }
        }
        let waits: HashSet<Duration> =
            (0..=255u8).map(|b| upload_backoff(first, 1, B256::repeat_byte(b))).collect();
        assert!(waits.len() > 200, "a burst's retries are spread: {} distinct waits", waits.len());
        assert_eq!(upload_backoff(first, 1, B256::ZERO), first);
        assert_eq!(upload_backoff(first, 40, B256::ZERO), MAX_UPLOAD_BACKOFF);
    }
}
