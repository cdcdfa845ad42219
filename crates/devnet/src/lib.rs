//! `poco-devnet`: a whole marketplace on one machine: anvil with the protocol, the market, a workerpool's
//! scheduler and workers, the result store and the secret management service (SMS), as one
//! process with one data directory.
//!
//! Layout of `<home>/devnet/`: `chain/` (anvil state, deployment, the chain node's status),
//! `market/`, `scheduler/`, `results/`, `sms/` (its database and master key), `workers/<n>/`,
//! `ports.json` (the services' addresses, taken again at the next start) and `devnet.json`
//! (endpoints and accounts of the running devnet, removed when it stops). Starting again
//! resumes the same chain and services, on the same addresses.
//!
//! # Confidential tasks: INSECURE simulation
//!
//! The devnet's SMS runs in the INSECURE simulation mode: it trusts quotes signed by a
//! simulation key the devnet makes at each start, and the TEE workers (`tee_workers`) run TEE
//! tasks in simulated enclaves (a RAM-backed directory of this machine) quoting with that key.
//! It exercises the whole confidential path (encrypted datasets, secrets, encrypted results)
//! and protects nothing from whoever runs the devnet. The workerpool then also sells
//! TEE-tagged work, which its scheduler hands to TEE workers only.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

//!
//! The SDK keeps what a client of a running devnet needs ([`poco_sdk::devnet`]: whether one
//! runs, its endpoints, the roles' keys, stopping it); this crate starts one, in this process
//! ([`up`]), and builds the smaller clusters end-to-end tests and benchmarks drive
//! ([`cluster`]: a workerpool whose services a test can kill and restart).

pub mod cluster;

use std::{
    collections::BTreeMap,
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use poco_chain::{
    Devnet, DevnetConfig,
    files::{private_dir, write_private},
};
use poco_contracts::Deployment;
use poco_fetch::{FetchPolicy, IpNet};
use poco_primitives::{Amount, Tag, WorkerpoolOrder};
use poco_sdk::{
    AnySigned, Endpoints, Error, Poco, Result,
    devnet::{DevnetInfo, DevnetLock, devnet_dir, info_path, running},
    orders::new_salt,
};
use serde::{Deserialize, Serialize};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tracing::{info, warn};

/// How to start a devnet.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The poco home directory; the devnet lives in `<home>/devnet`.
    pub home: PathBuf,
    /// Honest workers.
    pub workers: usize,
    /// Workers that commit wrong results (to watch consensus catch them).
    pub byzantine_workers: usize,
    /// Task slots per worker.
    pub slots: u32,
    /// Workers that also run TEE tasks, in INSECURE simulated enclaves.
    pub tee_workers: usize,
    /// The workerpool's price per task.
    pub workerpool_price: Amount,
    /// What the operator lets the devnet's workers fetch beyond the default policy (on top
    /// of the devnet's own staged files, which they always may): e.g. a local server of
    /// input files (`--fetch.allow 127.0.0.0/8`).
    pub fetch: FetchPolicy,
    /// A folder of Python runtime parts named by their sha256 (`target/runtimes/sha256` after
    /// `scripts/python-runtime.sh`): the workers' runtime source for Python apps. `None`: the
    /// workers run Python apps only with a runtime already in their cache.
    pub python_runtime: Option<PathBuf>,
    /// Where the workers keep compiled modules (default: `<home>/devnet/modules`).
    pub module_cache: Option<PathBuf>,
    /// Where the services keep their data besides the devnet's folder; used when the devnet is
    /// created, and then kept with it (the default: whatever it was created with).
    pub engines: Engines,
}

/// Where the devnet's services keep their data, chosen when the devnet is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Engines {
    /// A PostgreSQL server, as the URL of a database there: the market, the scheduler and the
    /// SMS each get a database of their own beside it (`<database>_market`, `_scheduler`,
    /// `_sms`; made anew when the devnet is). `None`: SQLite files in the devnet's folder.
    pub postgres: Option<String>,
    /// An S3 bucket (`s3://bucket/prefix`) for the result store. `None`: a folder.
    pub s3: Option<String>,
    /// A mode-600 file of `AWS_*` settings for [`Engines::s3`] (else the environment's): its
    /// path is kept with the devnet, never its content.
    pub s3_settings: Option<PathBuf>,
}

impl Engines {
    fn describe(&self) -> String {
        let databases = match &self.postgres {
            Some(_) => "PostgreSQL",
            None => "SQLite files",
        };
        let results = self.s3.as_deref().unwrap_or("a folder");
        format!("databases on {databases}, results in {results}")
    }
}

impl DevnetOptions {
    /// A devnet under `home` with 4 honest workers of 2 slots, no TEE worker, and a pool at
    /// 1 RLC per task.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self {
            home: home.into(),
            workers: 4,
            byzantine_workers: 0,
            slots: 2,
            tee_workers: 0,
            workerpool_price: Amount::from_rlc(1),
            fetch: FetchPolicy::default(),
            python_runtime: None,
            module_cache: None,
            engines: Engines::default(),
        }
    }
}

/// What the devnet keeps between runs besides the chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Setup {
    workerpool: Address,
    /// Where the services keep their data (devnets made before this was recorded: the
    /// defaults).
    #[serde(default)]
    engines: Engines,
}

/// Runs a devnet until `shutdown` resolves: calls `ready` once every service answers.
pub async fn up(
    options: DevnetOptions,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(&DevnetInfo),
) -> Result<()> {
    if let Some(info) = running(&options.home) {
        return Err(Error::Devnet(format!(
            "a devnet already runs in {} (pid {}): stop it with `poco devnet down`",
            options.home.display(),
            info.pid
        )));
    }
    let dir = devnet_dir(&options.home);
    private_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    // Held until this function returns: clients signal only the process that holds it.
    let _lock = DevnetLock::acquire(&options.home)?;
    let workers = options.workers + options.tee_workers + options.byzantine_workers;
    let mut config = DevnetConfig::new(dir.join("chain"));
    config.workers = workers.max(1);
    // Anvil restarted behind the same endpoint when it dies, nothing answered left unsaved.
    config.supervised = true;
    let devnet = Devnet::open_or_create(config).await?;
    let available = devnet.accounts().workers.len();
    if workers > available {
        // Dropping the devnet stops its chain.
        return Err(Error::Devnet(format!(
            "this devnet was created with {available} worker account(s), and {workers} workers \
             are asked for ({} honest, {} TEE, {} byzantine): ask for at most {available}, or \
             start afresh with `poco devnet reset`",
            options.workers, options.tee_workers, options.byzantine_workers
        )));
    }
    let deployment = *devnet.deployment();
    let accounts = devnet.accounts().clone();
    let rpc = devnet.rpc_url().to_owned();

    // The workerpool, created once.
    let setup_path = dir.join("setup.json");
    let recorded =
        std::fs::read(&setup_path).ok().and_then(|b| serde_json::from_slice::<Setup>(&b).ok());
    let fresh = recorded.is_none();
    let setup = match recorded {
        Some(setup) => {
            let asked = &options.engines;
            if *asked != Engines::default() && *asked != setup.engines {
                return Err(Error::Devnet(format!(
                    "this devnet keeps its data in {}, not where this start asks ({}): start it \
                     without --postgres and --s3, or start afresh with `poco devnet reset`",
                    setup.engines.describe(),
                    asked.describe()
                )));
            }
            setup
        }
        None => {
            let scheduler = connect(&rpc, &deployment, None, accounts.scheduler.clone()).await?;
            let workerpool = scheduler.deploy_workerpool("devnet workerpool").await?;
            let setup = Setup { workerpool, engines: options.engines.clone() };
            write_json(&setup_path, &setup).map_err(|e| Error::io(&setup_path, e))?;
            setup
        }
    };
    let engines = setup.engines.clone();
    info!(engines = %engines.describe(), "the services' data");
    // A database of its own for each service on the PostgreSQL server, emptied for a new
    // devnet (what it held belongs to the chain that was reset).
    let mut databases = BTreeMap::new();
    if let Some(server) = &engines.postgres {
        for name in ["market", "scheduler", "sms"] {
            let url = poco_storage::postgres_database(server, name, fresh)
                .await
                .map_err(|e| service("PostgreSQL", e))?;
            databases.insert(name, url);
        }
    }

    // Each service on the address it had in the previous run, so that what was pointed at
    // the devnet's services (a browser tab, a service run by hand) still reaches them.
    let mut ports = Ports::load(dir.join("ports.json"));
    let (stop, stopped) = watch::channel(false);
    let mut services = JoinSet::new();
    let wait = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };

    // Result store.
    let listener = ports.listen("result store").await?;
    let results_url =
        format!("http://{}", listener.local_addr().map_err(|e| Error::io("listener", e))?);
    let mut results = poco_results::Config::new(rpc.clone(), deployment.poco);
    results.storage = match &engines.s3 {
        Some(url) => {
            let settings = engines.s3_settings.clone();
            poco_results::StorageConfig::S3 { url: url.clone(), settings }
        }
        None => poco_results::StorageConfig::Local { root: dir.join("results") },
    };
    results.chain.from_block = deployment.block;
    let s = stopped.clone();
    services.spawn(async move {
        poco_results::serve(results, listener, wait(s))
            .await
            .map_err(|e| service("result store", e))
    });

    // Market.
    let listener = ports.listen("market").await?;
    let market_url =
        format!("http://{}", listener.local_addr().map_err(|e| Error::io("listener", e))?);
    let mut market_config =
        poco_market::MarketConfig::new(dir.join("market"), rpc.clone(), deployment);
    market_config.database_url = databases.get("market").cloned();
    let market =
        poco_market::Service::open(market_config).await.map_err(|e| service("market", e))?;
    let s = stopped.clone();
    services.spawn(
        async move { market.run(listener, wait(s)).await.map_err(|e| service("market", e)) },
    );

    // The SMS, in INSECURE simulation mode: it trusts this run's simulation key, which the TEE
    // workers' simulated enclaves quote with.
    let listener = ports.listen("SMS").await?;
    let sms_url =
        format!("http://{}", listener.local_addr().map_err(|e| Error::io("listener", e))?);
    let simulation_key = PrivateKeySigner::random();
    let sms_dir = dir.join("sms");
    let mut sms = poco_sms::SmsConfig::new(
        rpc.clone(),
        deployment.poco,
        databases
            .get("sms")
            .cloned()
            .unwrap_or_else(|| format!("sqlite://{}", sms_dir.join("sms.db").display())),
        sms_dir.join("master.key"),
    );
    sms.attestation.simulation =
        Some(poco_sms::SimulationConfig { trusted_signers: vec![simulation_key.address()] });
    let s = stopped.clone();
    services.spawn(async move {
        poco_sms::serve(sms, listener, wait(s)).await.map_err(|e| service("SMS", e))
    });

    // Scheduler.
    let listener = ports.listen("scheduler").await?;
    let scheduler_url =
        format!("http://{}", listener.local_addr().map_err(|e| Error::io("listener", e))?);
    private_dir(&dir.join("scheduler")).map_err(|e| Error::io(dir.join("scheduler"), e))?;
    let database = databases
        .get("scheduler")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("scheduler/scheduler.db").display()));
    let mut scheduler_config = poco_scheduler::SchedulerConfig::new(
        rpc.clone(),
        deployment,
        setup.workerpool,
        accounts.scheduler.clone(),
        database,
        results_url.clone(),
    );
    scheduler_config.sms_url = Some(sms_url.clone());
    // The devnet's own workers (honest, TEE and byzantine alike) are its pool's allow-list.
    scheduler_config.admission = poco_scheduler::Admission::AllowList(
        accounts.workers.iter().take(workers).map(|key| key.address()).collect(),
    );
    let s = stopped.clone();
    services.spawn(async move {
        poco_scheduler::run(scheduler_config, listener, wait(s))
            .await
            .map_err(|e| service("scheduler", e))
    });
    ports.save();
    // Ready when every service answers; a service that fails first (a corrupt database, a
    // port taken) is reported at once with its own error, not as a health check's timeout.
    let healthy = async {
        wait_healthy("scheduler", &format!("{scheduler_url}/health")).await?;
        wait_healthy("market", &format!("{market_url}/health")).await?;
        wait_healthy("result store", &format!("{results_url}/health")).await?;
        wait_healthy("SMS", &format!("{sms_url}/health")).await
    };
    tokio::select! {
        ready = healthy => ready?,
        Some(ended) = services.join_next() => return Err(ended_early(ended)),
    }

    // Workers fetch the devnet's staged files, apps' code from its result store, and what the
    // operator allowed: never the devnet's other services.
    let files = poco_sdk::assets::files_dir(&options.home);
    private_dir(&files).map_err(|e| Error::io(&files, e))?;
    let staged = FetchPolicy {
        provided_dirs: vec![files.clone()],
        app_origins: vec![results_url.clone()],
        ..FetchPolicy::default()
    };
    let mut worker_fetch = staged.clone().widened_by(&options.fetch);
    let runtime_sources: Vec<String> =
        options.python_runtime.iter().map(|dir| format!("file://{}", dir.display())).collect();
    worker_fetch.provided_dirs.extend(options.python_runtime.iter().cloned());
    // One executor for every honest worker: a module (the Python runtime above all) compiles
    // once, and is kept on disk (the devnet's folder unless told) for the next start.
    let modules = options.module_cache.clone().unwrap_or_else(|| dir.join("modules"));
    let honest_executor = poco_worker::exec::WasmExecutor::with_module_cache(32, modules)
        .map_err(|e| service("worker", e))?;
    let client_fetch = FetchPolicy {
        allow_results: vec![IpNet::from(std::net::IpAddr::from([127, 0, 0, 1]))],
        ..staged
    }
    .widened_by(&options.fetch);

    // Workers: the honest ones, the TEE ones, the byzantine ones last.
    let tee_workers = options.workers..options.workers + options.tee_workers;
    if !tee_workers.is_empty() {
        warn!(
            tee_workers = options.tee_workers,
            "TEE workers run in INSECURE simulated enclaves: for trying the confidential path only"
        );
    }
    for (index, key) in accounts.workers.iter().enumerate().take(workers) {
        let mut config = poco_worker::WorkerConfig::new(
            scheduler_url.clone(),
            rpc.clone(),
            key.clone(),
            dir.join(format!("workers/{index}")),
        );
        config.slots = options.slots;
        config.fetch = worker_fetch.clone();
        config.runtime_sources = runtime_sources.clone();
        if tee_workers.contains(&index) {
            let mut tee =
                poco_worker::tee::TeeConfig::simulation(sms_url.clone(), simulation_key.clone());
            tee.workspace_root = enclave_root();
            config.tee = Some(tee);
        }
        let byzantine = index >= options.workers + options.tee_workers;
        let executor: Arc<dyn poco_worker::exec::Executor> = if byzantine {
            Arc::new(poco_worker::exec::FaultyExecutor::new().map_err(|e| service("worker", e))?)
        } else {
            Arc::new(honest_executor.clone())
        };
        let s = stopped.clone();
        services.spawn(async move {
            poco_worker::run(config, executor, wait(s)).await.map_err(|e| service("worker", e))
        });
    }

    // The pool sells its work on the market.
    let scheduler =
        connect(&rpc, &deployment, Some(market_url.clone()), accounts.scheduler.clone()).await?;
    let price = options.workerpool_price;
    sync_pool_order(&scheduler, setup.workerpool, price, Tag::NONE, true).await?;
    // TEE work is sold only while TEE workers run to serve it.
    sync_pool_order(&scheduler, setup.workerpool, price, Tag::TEE, options.tee_workers > 0).await?;

    let mut roles: Vec<(String, Address)> = vec![
        ("owner".into(), accounts.owner.address()),
        ("requester".into(), accounts.requester.address()),
        ("app-provider".into(), accounts.app_provider.address()),
        ("dataset-provider".into(), accounts.dataset_provider.address()),
        ("scheduler".into(), accounts.scheduler.address()),
    ];
    for (index, key) in accounts.workers.iter().enumerate().take(workers) {
        roles.push((format!("worker-{index}"), key.address()));
    }
    let info = DevnetInfo {
        pid: std::process::id(),
        rpc_url: rpc.clone(),
        market_url,
        scheduler_url,
        results_url,
        sms_url: Some(sms_url),
        insecure_simulation: true,
        deployment,
        workerpool: setup.workerpool,
        accounts: roles,
        byzantine_workers: options.byzantine_workers,
        tee_workers: options.tee_workers,
        client_fetch,
    };
    let info_file = info_path(&options.home);
    write_json(&info_file, &info).map_err(|e| Error::io(&info_file, e))?;
    ready(&info);

    // Run until asked to stop, or until a service fails.
    tokio::pin!(shutdown);
    let outcome = tokio::select! {
        () = &mut shutdown => Ok(()),
        Some(joined) = services.join_next() => match joined {
            Ok(Ok(())) => Err(Error::Devnet("a service stopped unexpectedly".into())),
            Ok(Err(error)) => Err(error),
            Err(panic) => Err(Error::Devnet(format!("a service panicked: {panic}"))),
        },
    };
    info!("stopping the devnet");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while services.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("some services did not stop in time");
        services.abort_all();
    }
    let _ = std::fs::remove_file(info_path(&options.home));
    devnet.stop();
    outcome
}

/// The RAM-backed directory simulated enclaves work in (`/dev/shm`), or the system's temporary
/// directory where there is none; never inside the devnet's data directory.
fn enclave_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
}

/// Makes the market show an open order of the pool with `tag` when `wanted` (publishing one
/// unless one is open) and none when not (unpublishing those left by an earlier run).
async fn sync_pool_order(
    scheduler: &Poco,
    workerpool: Address,
    price: Amount,
    tag: Tag,
    wanted: bool,
) -> Result<()> {
    let market = scheduler.market()?;
    let query = [("workerpool", workerpool.to_string()), ("category", "0".to_owned())];
    let open = market.orderbook(poco_primitives::OrderKind::Workerpool, &query).await?;
    let same_tag = |view: &poco_market::model::OrderView| {
        view.order.get("tag").and_then(|t| serde_json::from_value::<B256>(t.clone()).ok())
            == Some(tag.0)
    };
    let mut tagged = open.orders.iter().filter(|view| same_tag(view)).peekable();
    if !wanted {
        for view in tagged {
            scheduler.unpublish(poco_primitives::OrderKind::Workerpool, view.order_hash).await?;
        }
        return Ok(());
    }
    if tagged.peek().is_some() {
        return Ok(());
    }
    let order = WorkerpoolOrder {
        workerpool,
        workerpoolprice: price.nrlc(),
        volume: U256::from(1_000),
        tag: tag.0,
        category: U256::ZERO,
        trust: U256::from(100),
        salt: new_salt(),
        ..Default::default()
    };
    let signed = scheduler.sign(order)?;
    scheduler.publish(&AnySigned::Workerpool(signed)).await?;
    Ok(())
}

async fn connect(
    rpc: &str,
    deployment: &Deployment,
    market: Option<String>,
    key: PrivateKeySigner,
) -> Result<Poco> {
    let endpoints = Endpoints {
        rpc_url: rpc.to_owned(),
        market_url: market,
        poco: deployment.poco,
        from_block: deployment.block,
        confirmations: 0,
        receipt_timeout: poco_sdk::DEFAULT_RECEIPT_TIMEOUT,
    };
    Poco::connect(&endpoints, Some(key)).await
}

/// The addresses the devnet's services listen on, kept from one run to the next in
/// `ports.json`.
struct Ports {
    path: PathBuf,
    addresses: BTreeMap<String, SocketAddr>,
}

impl Ports {
    /// The addresses of the previous run (none if it left no readable record).
    fn load(path: PathBuf) -> Self {
        let addresses = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self { path, addresses }
    }

    /// A listener for `service` on its previous address, or on a free port of 127.0.0.1 when
    /// it had none or another program took it (the change is logged).
    async fn listen(&mut self, service: &str) -> Result<TcpListener> {
        if let Some(address) = self.addresses.get(service) {
            match TcpListener::bind(address).await {
                Ok(listener) => return Ok(listener),
                Err(e) => warn!(
                    service,
                    %address,
                    error = %e,
                    "the service cannot have its previous address: it takes another"
                ),
            }
        }
        let listener =
            TcpListener::bind("127.0.0.1:0").await.map_err(|e| Error::io("127.0.0.1:0", e))?;
        let address = listener.local_addr().map_err(|e| Error::io("127.0.0.1:0", e))?;
        self.addresses.insert(service.to_owned(), address);
        Ok(listener)
    }

    /// Records the addresses for the next run (a failure is logged: the next run takes others).
    fn save(&self) {
        if let Err(e) = write_json(&self.path, &self.addresses) {
            warn!(path = %self.path.display(), error = %e, "cannot record the services' addresses");
        }
    }
}

async fn wait_healthy(service_name: &'static str, url: &str) -> Result<()> {
    let http = poco_api::http::client(Duration::from_secs(5));
    for _ in 0..300 {
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::Service { service: service_name, message: "did not answer within 30 s".into() })
}

/// The error of a service that ended while the devnet started.
fn ended_early(ended: std::result::Result<Result<()>, tokio::task::JoinError>) -> Error {
    match ended {
        Ok(Err(error)) => error,
        Ok(Ok(())) => {
            Error::Service { service: "a service", message: "stopped at start-up".into() }
        }
        Err(panicked) => Error::Service { service: "a service", message: panicked.to_string() },
    }
}

fn service(name: &'static str, error: impl std::fmt::Display) -> Error {
    Error::Service { service: name, message: error.to_string() }
}

/// Writes `value` as JSON to `path`, private to this user.
fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        private_dir(parent)?;
    }
    let json = serde_json::to_vec_pretty(value).expect("serializable");
    write_private(path, &json)
}
