//! The services: `poco market run`, `poco scheduler run`, `poco worker run`,
//! `poco result-store run`, `poco sms run`. Each runs until Ctrl-C or SIGTERM.
//!
//! Each service's options are resolved once: the command line (a flag, else its environment
//! variable), else the service's section of the configuration file, else the default. The
//! chain comes from `--network` or the flags; the devnet's file is read only when neither names
//! a chain.

use std::{collections::HashSet, net::SocketAddr, path::Path, str::FromStr, sync::Arc};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use tokio::net::TcpListener;

use crate::{
    Failure,
    cli::{
        AdmitRule, MarketServe, ResultsCommand, ResultsServe, SchedulerCommand, SchedulerRun,
        SmsCommand, SmsServe, WorkerCommand, WorkerRun,
    },
    context::Context,
};

/// A value given on the command line or in the configuration file, layered over another.
trait Layer {
    /// `self` when it is given, else `below`.
    fn over(self, below: Self) -> Self;
}

impl<T> Layer for Option<T> {
    fn over(self, below: Self) -> Self {
        self.or(below)
    }
}

impl<T> Layer for Vec<T> {
    fn over(self, below: Self) -> Self {
        if self.is_empty() { below } else { self }
    }
}

/// `$top`'s fields layered over `$below`'s; the fields after `;` are the command line's only.
macro_rules! layered {
    ($top:ident over $below:ident as $ty:ident { $($field:ident),* $(,)? } $(; $($own:ident),*)?) => {
        $ty {
            $($field: Layer::over($top.$field, $below.$field),)*
            $($($own: $top.$own,)*)?
        }
    };
}

impl MarketServe {
    fn over(self, file: Self) -> Self {
        layered!(self over file as MarketServe {
            listen, public_url, data_dir, db_url, confirmations, trusted_proxies, header_timeout,
            idle_timeout, max_connections_per_client, max_connections, max_websockets_per_client,
            max_websockets, rate_per_client, rate_client_burst, rate_per_owner, rate_owner_burst,
            max_open_orders_per_wallet, cors_origins,
        })
    }
}

impl SchedulerRun {
    fn over(self, file: Self) -> Self {
        layered!(self over file as SchedulerRun {
            workerpool, listen, public_url, db_url, results_urls, confirmations, admit,
            admit_workers, admit_file, heartbeat, worker_timeout, replica_timeout, upload_timeout,
            bond_cache, lease_ttl,
        })
    }
}

impl WorkerRun {
    fn over(self, file: Self) -> Self {
        layered!(self over file as WorkerRun {
            scheduler_url, slots, data_dir, min_free_mib, memory_mib, upload_attempts,
            concurrent_uploads, runtime_sources, enclave_dir,
        }; insecure_simulation, simulation_key_file, byzantine)
    }
}

impl ResultsServe {
    fn over(self, file: Self) -> Self {
        layered!(self over file as ResultsServe {
            listen, public_url, storage, s3_settings, max_concurrent_uploads, request_timeout,
            challenge_ttl, max_request_age,
        })
    }
}

impl SmsServe {
    fn over(self, file: Self) -> Self {
        layered!(self over file as SmsServe {
            listen, public_url, data_dir, db_url, master_key, collateral_dir, session_ttl,
            max_request_age, max_secret_bytes,
        }; insecure_simulation, simulation_signers)
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

async fn listen(address: &str) -> Result<TcpListener, Failure> {
    TcpListener::bind(address)
        .await
        .map_err(|e| Failure::config(format!("cannot listen on {address}: {e}")))
}

fn service(name: &str, error: impl std::fmt::Display) -> Failure {
    Failure::config(format!("{name}: {error}"))
}

/// Seconds as a duration, at least one.
fn seconds(value: u64) -> std::time::Duration {
    std::time::Duration::from_secs(value.max(1))
}

/// A service's public URL checked (`http` or `https`, a host, no user name, password, query
/// or fragment) and without its trailing slash.
pub(crate) fn public_url(flag: &str, raw: &str) -> Result<String, Failure> {
    let bad = |why: &str| Failure::config(format!("{flag} {raw:?}: {why}"));
    let url = url::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("a user name or password has no place in a public URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query or fragment has no place in a public URL"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// What a service tells its clients it is at: the public URL given, else the address it is
/// bound to (which clients can use only when it is not a wildcard; the operator is told).
fn advertised(
    name: &str,
    given: Option<&str>,
    bound: SocketAddr,
) -> Result<Option<String>, Failure> {
    if let Some(raw) = given {
        return public_url("--public-url", raw).map(Some);
    }
    if bound.ip().is_unspecified() {
        eprintln!(
            "WARNING: the {name} listens on {bound} and has no --public-url: it cannot tell \
             its clients where to reach it"
        );
        return Ok(None);
    }
    Ok(Some(format!("http://{bound}")))
}

/// The startup line of a service.
fn announce(name: &str, bound: SocketAddr, public: Option<&str>) {
    match public {
        Some(url) => eprintln!("{name} listening on {bound}, reached at {url}"),
        None => eprintln!("{name} listening on {bound}"),
    }
}

/// `poco market run`.
pub(crate) async fn market(context: &Context, flags: MarketServe) -> Result<(), Failure> {
    let options = flags.over(context.sections.market.clone());
    let cors = poco_market::api::CorsOrigins::parse(&options.cors_origins)
        .map_err(|e| Failure::usage(format!("--http.cors-origin: {e}")))?;
    let data_dir = options.data_dir.unwrap_or_else(|| "market-data".into());
    if options.db_url.is_none() {
        private_data_dir(&data_dir)?;
    }
    let client = context.client().await?;
    let mut config =
        poco_market::MarketConfig::new(data_dir, client.rpc_url(), *client.deployment());
    config.database_url = options.db_url;
    config.confirmations = options.confirmations.unwrap_or_else(|| context.default_confirmations());
    config.trusted_proxies = options.trusted_proxies;
    config.cors = cors;
    let server = &mut config.server;
    server.header_read_timeout = seconds(options.header_timeout.unwrap_or(10));
    server.idle_timeout = seconds(options.idle_timeout.unwrap_or(60));
    if let Some(n) = options.max_connections_per_client {
        server.max_connections_per_client = n.max(1);
    }
    if let Some(n) = options.max_connections {
        server.max_connections = n.max(1);
    }
    let limits = &mut config.limits;
    if let Some(n) = options.max_websockets_per_client {
        limits.max_websocket_clients_per_client = n.max(1);
    }
    if let Some(n) = options.max_websockets {
        limits.max_websocket_clients = n.max(1);
    }
    for (value, slot) in [
        (options.rate_per_client, &mut limits.ip_rate_per_second),
        (options.rate_client_burst, &mut limits.ip_burst),
        (options.rate_per_owner, &mut limits.address_rate_per_second),
        (options.rate_owner_burst, &mut limits.address_burst),
    ] {
        if let Some(value) = value {
            if value.is_nan() || value <= 0.0 {
                return Err(Failure::config(format!(
                    "market rate limits must be positive numbers, not {value}"
                )));
            }
            *slot = value;
        }
    }
    if let Some(n) = options.max_open_orders_per_wallet {
        limits.max_open_orders_per_wallet = n.max(1);
    }
    let listener = listen(options.listen.as_deref().unwrap_or("127.0.0.1:8080")).await?;
    let bound = listener.local_addr().map_err(|e| service("market", e))?;
    config.public_url = advertised("market", options.public_url.as_deref(), bound)?;
    let confirmations = config.confirmations;
    let public = config.public_url.clone();
    let market = poco_market::Service::open(config).await.map_err(|e| service("market", e))?;
    announce("market", bound, public.as_deref());
    let site = public.clone().unwrap_or_else(|| format!("http://{bound}"));
    eprintln!(
        "explorer at {}/ (the API: {}/openapi.json)",
        site.trim_end_matches('/'),
        site.trim_end_matches('/')
    );
    eprintln!("the book follows the chain {confirmations} block(s) behind its head");
    market.run(listener, shutdown_signal()).await.map_err(|e| service("market", e))
}

/// `poco scheduler run`.
pub(crate) async fn scheduler(context: &Context, command: SchedulerCommand) -> Result<(), Failure> {
    let SchedulerCommand::Run(flags) = command;
    let options = flags.over(context.sections.scheduler.clone());
    let workerpool = options.workerpool.ok_or_else(|| {
        Failure::config(format!(
            "which workerpool? Pass --workerpool ADDRESS, or set `workerpool` in the [scheduler] \
             section of {}",
            context.config_path().display()
        ))
    })?;
    let admission = admission(
        options.admit.unwrap_or(AdmitRule::Bonded),
        options.admit_workers,
        options.admit_file.as_deref(),
    )?;
    let mut results_urls = options.results_urls;
    if results_urls.is_empty() {
        results_urls.extend(context.network_results_url());
    }
    let mut stores = results_urls.into_iter();
    let first = stores.next().ok_or_else(|| {
        Failure::config(
            "the pool needs a result store: pass --results.url URL (its public URL), set \
             `results_urls` in the [scheduler] section, or name one in the network's profile",
        )
    })?;
    let client = context.signing_client().await?;
    let mut config = poco_scheduler::SchedulerConfig::new(
        client.rpc_url(),
        *client.deployment(),
        workerpool,
        client.wallet()?.clone(),
        options.db_url.unwrap_or_else(|| "sqlite://scheduler.db".into()),
        first,
    );
    config.result_stores.extend(stores);
    config.sms_url = context.sms_url();
    config.admission = admission;
    config.confirmations = options.confirmations.unwrap_or_else(|| context.default_confirmations());
    if let Some(value) = options.heartbeat {
        config.heartbeat_interval = seconds(value);
    }
    if let Some(value) = options.worker_timeout {
        config.worker_timeout = seconds(value);
    }
    if let Some(value) = options.replica_timeout {
        config.replica_timeout = seconds(value);
    }
    if let Some(value) = options.upload_timeout {
        config.upload_timeout = seconds(value);
    }
    if let Some(value) = options.bond_cache {
        config.bond_cache = std::time::Duration::from_secs(value);
    }
    if let Some(ttl) = options.lease_ttl {
        config.lease = poco_scheduler::LeaseConfig::lasting(std::time::Duration::from_secs(ttl));
    }
    check_result_stores(&config.result_stores).await?;
    let listener = listen(options.listen.as_deref().unwrap_or("127.0.0.1:8070")).await?;
    let bound = listener.local_addr().map_err(|e| service("scheduler", e))?;
    let public = advertised("scheduler", options.public_url.as_deref(), bound)?;
    config.instance_url = public.clone();
    announce(&format!("scheduler of {workerpool}"), bound, public.as_deref());
    if config.database_url.starts_with("postgres") {
        eprintln!(
            "PostgreSQL: other instances of this pool's scheduler may share the database; the \
             holder of the pool's lease acts (lease {:?}), the others stand by",
            config.lease.ttl
        );
    }
    if let Some(url) = &public {
        eprintln!("workers join with `poco worker run --scheduler.url {url}`");
    }
    eprintln!(
        "results go to {}; events are acted on {} block(s) behind the head",
        config.result_stores.join(", "),
        config.confirmations
    );
    match &config.sms_url {
        Some(sms) => eprintln!("TEE deals get their enclave challenges from the SMS at {sms}"),
        None => eprintln!("no SMS (--sms.url): TEE deals are not served"),
    }
    match &config.admission {
        poco_scheduler::Admission::Open => eprintln!(
            "WARNING: admission is open (--admit open): any stranger can register and be \
             handed this pool's tasks"
        ),
        rule => eprintln!("admission: {} ({})", rule.name(), rule.requirement()),
    }
    poco_scheduler::run(config, listener, shutdown_signal())
        .await
        .map_err(|e| service("scheduler", e))
}

/// Asks each result store which URL it is reached at (its `/health`), and refuses a store
/// that says another one than the scheduler names it by: results' locations, written on-chain,
/// would point where requesters may not reach. A store that does not answer (not started
/// yet) or says nothing is only noted.
async fn check_result_stores(stores: &[String]) -> Result<(), Failure> {
    let http = poco_api::http::client(std::time::Duration::from_secs(5));
    for store in stores {
        let named = public_url("--results.url", store)?;
        let answer = match http.get(format!("{named}/health")).send().await {
            Ok(answer) if answer.status().is_success() => answer,
            Ok(answer) => {
                eprintln!("note: the result store {named} answered {}", answer.status());
                continue;
            }
            Err(_) => {
                eprintln!("note: the result store {named} does not answer yet");
                continue;
            }
        };
        let Ok(health) = answer.json::<serde_json::Value>().await else { continue };
        let Some(advertised) = health.get("publicUrl").and_then(|url| url.as_str()) else {
            continue;
        };
        if public_url("publicUrl", advertised).ok().as_deref() != Some(named.as_str()) {
            return Err(Failure::config(format!(
                "the result store named {named} says it is reached at {advertised}: name it by \
                 that URL in --results.url (results' locations are written on-chain, and \
                 requesters download from them), or fix its --public-url"
            )));
        }
    }
    Ok(())
}

/// The admission rule the flags describe: an allow-list needs at least one worker, and the
/// other rules take none.
fn admission(
    rule: AdmitRule,
    workers: Vec<Address>,
    file: Option<&Path>,
) -> Result<poco_scheduler::Admission, Failure> {
    let listed = !workers.is_empty() || file.is_some();
    match rule {
        AdmitRule::Bonded | AdmitRule::Open if listed => {
            Err(Failure::config("--admit.worker and --admit.file go with --admit allow-list only"))
        }
        AdmitRule::Bonded => Ok(poco_scheduler::Admission::Bonded),
        AdmitRule::Open => Ok(poco_scheduler::Admission::Open),
        AdmitRule::AllowList => {
            let mut allowed: HashSet<Address> = workers.into_iter().collect();
            if let Some(path) = file {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
                for (number, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or_default().trim();
                    if line.is_empty() {
                        continue;
                    }
                    let address = Address::from_str(line).map_err(|_| {
                        Failure::config(format!(
                            "{}:{}: {line:?} is not an address",
                            path.display(),
                            number + 1
                        ))
                    })?;
                    allowed.insert(address);
                }
            }
            if allowed.is_empty() {
                return Err(Failure::config(
                    "--admit allow-list needs workers: --admit.worker ADDRESS or --admit.file FILE",
                ));
            }
            Ok(poco_scheduler::Admission::AllowList(allowed))
        }
    }
}

/// `poco worker run`.
pub(crate) async fn worker(context: &Context, command: WorkerCommand) -> Result<(), Failure> {
    let WorkerCommand::Run(flags) = command;
    let options = flags.over(context.sections.worker.clone());
    let mut scheduler_urls = options.scheduler_url.into_iter();
    let scheduler_url = scheduler_urls.next().ok_or_else(|| {
        Failure::config(format!(
            "which scheduler? Pass --scheduler.url URL, or set `scheduler_url` in the [worker] \
             section of {}",
            context.config_path().display()
        ))
    })?;
    let client = context.signing_client().await?;
    let mut config = poco_worker::WorkerConfig::new(
        scheduler_url,
        client.rpc_url(),
        client.wallet()?.clone(),
        options.data_dir.unwrap_or_else(|| "worker-data".into()),
    );
    config.scheduler_urls.extend(scheduler_urls);
    config.slots = options.slots.unwrap_or(2).max(1);
    if let Some(mib) = options.memory_mib {
        config.memory_bytes = mib.max(1).saturating_mul(1 << 20);
    }
    if let Some(mib) = options.min_free_mib {
        config.min_free_bytes = mib.saturating_mul(1 << 20);
    }
    if let Some(attempts) = options.upload_attempts {
        config.upload_attempts = attempts.max(1);
    }
    if let Some(uploads) = options.concurrent_uploads {
        config.concurrent_uploads = uploads.max(1);
    }
    config.runtime_sources = options.runtime_sources.unwrap_or_default();
    config.fetch = context.fetch_policy().clone();
    if options.insecure_simulation
        && let Some(path) = options.simulation_key_file
    {
        let sms = context.sms_url().ok_or_else(|| {
            Failure::config("TEE tasks need the SMS that provisions their enclaves: pass --sms.url")
        })?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
        let key = PrivateKeySigner::from_str(text.trim()).map_err(|_| {
            Failure::config(format!("{}: not a private key in hexadecimal", path.display()))
        })?;
        let enclave_dir = options.enclave_dir.unwrap_or_else(|| "/dev/shm".into());
        eprintln!(
            "INSECURE simulated enclave: TEE tasks run in {} of this machine, readable by its \
             owner, with quotes signed by {} (for tests and demos only)",
            enclave_dir.display(),
            key.address()
        );
        let mut tee = poco_worker::tee::TeeConfig::simulation(sms, key);
        tee.workspace_root = enclave_dir;
        config.tee = Some(tee);
    }
    let executor: Arc<dyn poco_worker::exec::Executor> = if options.byzantine {
        eprintln!(
            "WARNING: --testing.byzantine: this worker commits wrong results and loses stakes"
        );
        Arc::new(poco_worker::exec::FaultyExecutor::new().map_err(|e| service("worker", e))?)
    } else {
        // Compiled modules are kept on disk: the Python runtime compiles once per machine.
        let modules = config.data_dir.join("modules");
        Arc::new(
            poco_worker::exec::WasmExecutor::with_module_cache(32, modules)
                .map_err(|e| service("worker", e))?,
        )
    };
    poco_worker::run(config, executor, shutdown_signal()).await.map_err(|e| service("worker", e))
}

/// `poco result-store run`.
pub(crate) async fn results(context: &Context, command: ResultsCommand) -> Result<(), Failure> {
    let (ResultsCommand::Run(flags) | ResultsCommand::Serve(flags)) = command;
    let options = flags.over(context.sections.results.clone());
    let mut storage: poco_results::StorageConfig = options
        .storage
        .as_deref()
        .unwrap_or("results")
        .parse()
        .map_err(|e| service("result store", e))?;
    match (&mut storage, options.s3_settings) {
        (poco_results::StorageConfig::S3 { settings, .. }, file) => *settings = file,
        (_, Some(_)) => {
            return Err(Failure::usage("--storage.s3-settings is for an s3:// --storage"));
        }
        (_, None) => {}
    }
    let client = context.client().await?;
    let mut config = poco_results::Config::new(client.rpc_url(), client.deployment().poco);
    config.storage = storage;
    config.chain.from_block = client.deployment().block;
    if let Some(n) = options.max_concurrent_uploads {
        config.max_concurrent_uploads = n.max(1);
    }
    if let Some(value) = options.request_timeout {
        config.request_timeout = seconds(value);
    }
    if let Some(value) = options.challenge_ttl {
        config.challenge_ttl = seconds(value);
    }
    if let Some(value) = options.max_request_age {
        config.max_request_age = seconds(value);
    }
    let listener = listen(options.listen.as_deref().unwrap_or("127.0.0.1:8090")).await?;
    let bound = listener.local_addr().map_err(|e| service("result store", e))?;
    config.public_url = advertised("result store", options.public_url.as_deref(), bound)?;
    announce("result store", bound, config.public_url.as_deref());
    poco_results::serve(config, listener, shutdown_signal())
        .await
        .map_err(|e| service("result store", e))
}

/// `poco sms run`.
pub(crate) async fn sms(context: &Context, command: SmsCommand) -> Result<(), Failure> {
    let (SmsCommand::Run(flags) | SmsCommand::Serve(flags)) = command else {
        return Err(Failure::config("not a service command"));
    };
    let options = flags.over(context.sections.sms.clone());
    let client = context.client().await?;
    let data_dir = options.data_dir.unwrap_or_else(|| "sms-data".into());
    private_data_dir(&data_dir)?;
    let database_url =
        options.db_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("sms.db").display()));
    let master_key = options.master_key.unwrap_or_else(|| data_dir.join("master.key"));
    let mut config = poco_sms::SmsConfig::new(
        client.rpc_url(),
        client.deployment().poco,
        database_url,
        master_key,
    );
    config.attestation.dcap.collateral_dir = options.collateral_dir;
    if let Some(value) = options.session_ttl {
        config.session_ttl = seconds(value);
    }
    if let Some(value) = options.max_request_age {
        config.max_request_age = seconds(value);
    }
    if let Some(bytes) = options.max_secret_bytes {
        config.max_secret_bytes = bytes.max(1);
    }
    if options.insecure_simulation {
        eprintln!(
            "WARNING: INSECURE simulation: quotes signed by {} are trusted as enclaves; they \
             prove nothing about the hardware. Never keep real secrets in this SMS.",
            options
                .simulation_signers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        config.attestation.simulation =
            Some(poco_sms::SimulationConfig { trusted_signers: options.simulation_signers });
    }
    let listener = listen(options.listen.as_deref().unwrap_or("127.0.0.1:8060")).await?;
    let bound = listener.local_addr().map_err(|e| service("SMS", e))?;
    config.public_url = advertised("SMS", options.public_url.as_deref(), bound)?;
    announce("SMS", bound, config.public_url.as_deref());
    poco_sms::serve(config, listener, shutdown_signal()).await.map_err(|e| service("SMS", e))
}

/// Creates a service's data folder (0700), or checks that an existing one is private.
fn private_data_dir(dir: &std::path::Path) -> Result<(), Failure> {
    poco_chain::files::private_dir(dir)
        .map_err(|e| Failure::config(format!("{}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_checked_and_normalised() {
        assert_eq!(
            public_url("x", "https://market.example.org/").unwrap(),
            "https://market.example.org"
        );
        assert_eq!(public_url("x", "http://10.0.0.2:8080").unwrap(), "http://10.0.0.2:8080");
        assert_eq!(
            public_url("x", "https://example.org/poco/").unwrap(),
            "https://example.org/poco"
        );
        for bad in [
            "market.example.org",
            "ftp://market.example.org",
            "https://user:pw@market.example.org",
            "https://market.example.org/?a=b",
            "https://market.example.org/#x",
            "file:///tmp/x",
        ] {
            assert!(public_url("--public-url", bad).is_err(), "{bad}");
        }
        let error = public_url("--public-url", "ftp://x").unwrap_err();
        assert!(error.message.starts_with("--public-url \"ftp://x\""), "{error:?}");
    }

    #[test]
    fn the_command_line_beats_the_file_field_by_field() {
        let file = MarketServe {
            listen: Some("0.0.0.0:1".into()),
            confirmations: Some(5),
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
            ..MarketServe::default()
        };
        let flags = MarketServe { confirmations: Some(1), ..MarketServe::default() };
        let merged = flags.over(file);
        assert_eq!(merged.confirmations, Some(1), "the flag");
        assert_eq!(merged.listen.as_deref(), Some("0.0.0.0:1"), "the file");
        assert_eq!(merged.trusted_proxies.len(), 1, "the file's list");
        assert_eq!(merged.public_url, None, "neither: the default");
        // The simulation is never taken from the file.
        let file =
            WorkerRun { slots: Some(8), concurrent_uploads: Some(3), ..WorkerRun::default() };
        let merged = WorkerRun::default().over(file);
        assert_eq!(merged.slots, Some(8));
        assert_eq!(merged.concurrent_uploads, Some(3));
        assert!(!merged.insecure_simulation);
    }
}
